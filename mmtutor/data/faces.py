"""Cartoon faces drawn with OpenCV: the image modality of the spoken-reviews dataset.

Defined in the chapter on preprocessing ("Meet the data"). A face shows one of three
expressions: ``"smile"`` (mouth curved up, raised round brows, slightly narrowed eyes),
``"frown"`` (mouth curved down, brows slanting down towards the nose) or ``"smirk"`` (the
sarcasm marker: a lopsided mouth, one brow raised high, eyes rolled up). Everything else is a
nuisance that a model must learn to ignore: head size, position and tilt, skin, hair and
background colours, an occluding object, blur and pixel noise.

Shapes are drawn on a canvas four times larger than the output and shrunk with area averaging,
so that thin lines stay smooth at 64x64 pixels.
"""

import cv2
import numpy as np

__all__ = ["EXPRESSIONS", "draw_face"]

#: The expressions :func:`draw_face` can show.
EXPRESSIONS = ("frown", "smile", "smirk")

_SKIN = np.array([  # RGB: a range of skin tones, light to dark
    (255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96), (160, 105, 70),
    (120, 78, 50), (90, 60, 40), (250, 210, 180),
], dtype=np.float64)
_HAIR = np.array([
    (20, 20, 20), (60, 40, 25), (110, 70, 35), (180, 140, 80), (200, 200, 200), (150, 40, 20),
    (230, 200, 120),
], dtype=np.float64)
_SUPERSAMPLE = 4


def _color(c):
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _background(rng, s):
    """A plain, gradient or striped background (RGB float canvas s x s)."""
    a = rng.uniform(0, 255, 3)
    kind = rng.choice(3, p=[0.35, 0.45, 0.20])
    if kind == 0:
        return np.broadcast_to(a, (s, s, 3)).astype(np.float64).copy()
    b = rng.uniform(0, 255, 3)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:s, 0:s] / s
    t = np.cos(angle) * xx + np.sin(angle) * yy
    if kind == 2:  # soft stripes, like a curtain or wallpaper
        t = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
    else:
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    return a * (1 - t[..., None]) + b * t[..., None]


def _arc(img, center, axes, start, end, color, thick):
    cv2.ellipse(img, center, axes, 0, start, end, color, thick, cv2.LINE_AA)


def _draw(layer, mask, fn):
    """Draw the same shape on the colour layer and (in white) on the mask."""
    fn(layer, None)
    fn(mask, 255)


def _face_params(rng):
    """Draw every random trait of a face up front, whatever its expression.

    The same generator state then gives the same person, pose and scene with any expression,
    so that expressions can be compared side by side.
    """
    return {
        "skin": _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.92, 1.06),
        "line": np.array((40, 25, 20)) * rng.uniform(0.5, 1.5),
        "has_hair": rng.random() < 0.75,
        "hair": _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.2),
        "hair_h": rng.uniform(0.95, 1.12),
        "head_w": rng.uniform(0.78, 0.9),
        "eye_y": -0.12 + rng.uniform(-0.04, 0.04),
        "eye_dx": rng.uniform(0.3, 0.38),
        "look": rng.uniform(-0.04, 0.04, 2),
        "iris": rng.uniform(20, 140, 3),
        "mouth_y": 0.45 + rng.uniform(-0.04, 0.04),
        "mouth_w": rng.uniform(0.36, 0.46),
        "curve": rng.uniform(0.17, 0.26),
        "lip": np.array((150, 40, 50)) * rng.uniform(0.6, 1.1),
        "open_mouth": rng.random() < 0.4,
        "side": 1 if rng.random() < 0.5 else -1,  # which brow a smirk raises, which corner it lifts
    }


def _face_layer(f, s, expression, r):
    """Draw an upright face centred on an s x s canvas; returns (layer RGB, mask)."""
    layer = np.zeros((s, s, 3), np.uint8)
    mask = np.zeros((s, s), np.uint8)
    cx = cy = s // 2
    skin = f["skin"]
    dark = _color(skin * 0.45)
    line = _color(f["line"])
    t = max(2, int(round(0.09 * r)))  # stroke width of features: bold enough to survive 64x64
    P = lambda x, y: (int(round(cx + x * r)), int(round(cy + y * r)))  # noqa: E731
    L = lambda v: max(1, int(round(v * r)))  # noqa: E731

    def fill(color):
        return lambda img, m: color if m is None else m

    # Hair behind the head (sometimes none).
    if f["has_hair"]:
        hair = _color(f["hair"])
        _draw(layer, mask, lambda img, m: cv2.ellipse(
            img, P(0, -0.12), (L(0.98), L(f["hair_h"])), 0, 180, 360, fill(hair)(img, m), -1, cv2.LINE_AA))
    # Head and ears.
    head_w = f["head_w"]
    for side in (-1, 1):
        _draw(layer, mask, lambda img, m, side=side: cv2.ellipse(
            img, P(side * head_w, 0.02), (L(0.12), L(0.18)), 0, 0, 360, fill(_color(skin * 0.93))(img, m), -1,
            cv2.LINE_AA))
    _draw(layer, mask, lambda img, m: cv2.ellipse(
        img, (cx, cy), (L(head_w), L(1.0)), 0, 0, 360, fill(_color(skin))(img, m), -1, cv2.LINE_AA))
    _draw(layer, mask, lambda img, m: cv2.ellipse(
        img, (cx, cy), (L(head_w), L(1.0)), 0, 0, 360, fill(dark)(img, m), max(1, t // 2), cv2.LINE_AA))

    # Eyes: white, iris, pupil. Smiles narrow the eyes; a smirk rolls them up.
    eye_y, eye_dx = f["eye_y"], f["eye_dx"]
    eye_h = 0.08 if expression == "smile" else 0.12
    look = np.array([f["look"][0] * 0.75, -0.07]) if expression == "smirk" else f["look"]
    iris = _color(f["iris"])
    for side in (-1, 1):
        ex = side * eye_dx
        pupil = P(ex + look[0], eye_y + look[1] * (eye_h / 0.12))
        cv2.ellipse(layer, P(ex, eye_y), (L(0.15), L(eye_h)), 0, 0, 360, (250, 250, 250), -1, cv2.LINE_AA)
        cv2.circle(layer, pupil, L(0.065), iris, -1, cv2.LINE_AA)
        cv2.circle(layer, pupil, L(0.035), (10, 10, 10), -1, cv2.LINE_AA)
        cv2.ellipse(layer, P(ex, eye_y), (L(0.15), L(eye_h)), 0, 0, 360, line, max(1, t // 2), cv2.LINE_AA)

    # Brows.
    brow_y = eye_y - 0.2
    for side in (-1, 1):
        inner, outer = side * (eye_dx - 0.13), side * (eye_dx + 0.15)
        if expression == "smile":  # raised, round
            _arc(layer, P(side * eye_dx, brow_y + 0.06), (L(0.16), L(0.09)), 180, 360, line, t)
        elif expression == "frown":  # slanting down towards the nose
            cv2.line(layer, P(outer, brow_y - 0.07), P(inner, brow_y + 0.07), line, t, cv2.LINE_AA)
        elif side == f["side"]:  # smirk: one brow raised high and arched
            _arc(layer, P(side * eye_dx, brow_y - 0.02), (L(0.16), L(0.12)), 180, 360, line, t)
        else:  # the other flat and low
            cv2.line(layer, P(outer, brow_y + 0.05), P(inner, brow_y + 0.05), line, t, cv2.LINE_AA)

    # Nose.
    cv2.ellipse(layer, P(0, 0.14), (L(0.06), L(0.05)), 0, 0, 180, dark, max(1, t // 2), cv2.LINE_AA)

    # Mouth: the clearest cue.
    mouth_y, w, curve = f["mouth_y"], f["mouth_w"], f["curve"]
    lip = _color(f["lip"])
    if expression == "smile":
        if f["open_mouth"]:  # open, laughing mouth
            cv2.ellipse(layer, P(0, mouth_y - curve / 2), (L(w), L(curve * 1.1)), 0, 0, 180, (90, 20, 30), -1,
                        cv2.LINE_AA)
            cv2.line(layer, P(-w, mouth_y - curve / 2), P(w, mouth_y - curve / 2), lip, t, cv2.LINE_AA)
        _arc(layer, P(0, mouth_y - curve / 2), (L(w), L(curve)), 0, 180, lip, t)
    elif expression == "frown":
        _arc(layer, P(0, mouth_y + curve / 2), (L(w), L(curve)), 180, 360, lip, t)
    else:  # lopsided: flat on one side, hooked up on the other (the side of the raised brow)
        side = f["side"]
        pts = [(-side * w, mouth_y + 0.03), (side * w * 0.45, mouth_y + 0.03), (side * w * 0.8, mouth_y - 0.03),
               (side * w * 1.05, mouth_y - 0.15)]
        pts = np.array([P(x, y) for x, y in pts], np.int32)
        cv2.polylines(layer, [pts], False, lip, t, cv2.LINE_AA)
        # a dimple at the raised corner
        _arc(layer, P(side * w * 1.12, mouth_y - 0.15), (L(0.05), L(0.07)), 270 if side > 0 else 90,
             450 if side > 0 else 270, dark, max(1, t // 2))
    return layer, mask


def draw_face(expression, rng, *, size=64, noise=0.03):
    """Draw one face showing ``expression``, with random pose, colours, occlusion and noise.

    Defined in the chapter on preprocessing ("Meet the data").

    Parameters
    ----------
    expression : {"smile", "frown", "smirk"}
        What the face shows: a positive, a negative or a sarcastic reviewer.
    rng : numpy.random.Generator
        Source of randomness (the same state gives the same image).
    size : int, default 64
        Width and height of the image in pixels, 16 to 512.
    noise : float, default 0.03
        Standard deviation of the Gaussian pixel noise, as a fraction of the full 0-255 range.

    Returns
    -------
    numpy.ndarray
        uint8 RGB image of shape ``(size, size, 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.data.faces import draw_face
    >>> draw_face("smile", np.random.default_rng(0), size=32).shape
    (32, 32, 3)
    """
    if expression not in EXPRESSIONS:
        raise ValueError(f"expression must be one of {EXPRESSIONS}, got {expression!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 16 <= size <= 512:
        raise ValueError(f"size must be an integer from 16 to 512, got {size!r}")
    if not isinstance(noise, (int, float, np.floating)) or not 0 <= noise <= 1:
        raise ValueError(f"noise must be a number in [0, 1], got {noise!r}")
    s = int(size) * _SUPERSAMPLE
    face = _face_params(rng)
    scale = rng.uniform(0.72, 0.95)
    angle = rng.uniform(-15, 15)
    shift = rng.uniform(-0.07, 0.07, 2) * s
    occlude = rng.random() < 0.3
    occluder = {"side": 1 if rng.random() < 0.5 else -1, "dx": rng.uniform(0.55, 0.95),
                "dy": rng.uniform(-0.6, 0.3), "color": _color(rng.uniform(0, 255, 3)),
                "box": rng.random() < 0.5, "half": rng.uniform(0.18, 0.3), "angle": rng.uniform(0, 180)}
    sigma = rng.uniform(0.0, 0.9)
    r = 0.42 * s * scale  # head half-height in canvas pixels
    layer, mask = _face_layer(face, s, expression, r)

    # Pose: tilt, and shift the head off centre.
    m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, 1.0)
    m[:, 2] += shift
    layer = cv2.warpAffine(layer, m, (s, s), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    mask = cv2.warpAffine(mask, m, (s, s), flags=cv2.INTER_LINEAR, borderValue=0)

    # Shrink the face (colour premultiplied by coverage: the layer is black outside the mask)
    # and lay it over a background drawn at the output size.
    n = int(size)
    small = cv2.resize(layer, (n, n), interpolation=cv2.INTER_AREA).astype(np.float64)
    alpha = (cv2.resize(mask, (n, n), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0)[..., None]
    img = _background(rng, n) * (1 - alpha) + small

    # Occlusion: a hand or an object in front of one side of the face (never the whole mouth).
    if occlude:
        o = occluder
        k = n / s  # canvas to output pixels
        cx, cy = (s / 2 + shift[0]) * k, (s / 2 + shift[1]) * k
        rr = r * k
        ox, oy = cx + o["side"] * rr * o["dx"], cy + rr * o["dy"]
        if o["box"]:
            half = rr * o["half"]
            cv2.rectangle(img, (int(ox - half), int(oy - half * 1.4)), (int(ox + half), int(oy + half * 1.4)),
                          o["color"], -1, cv2.LINE_AA)
        else:
            cv2.ellipse(img, (int(ox), int(oy)), (max(1, int(rr * 0.22)), max(1, int(rr * 0.34))),
                        o["angle"], 0, 360, o["color"], -1, cv2.LINE_AA)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if noise > 0:
        img = img.astype(np.float64) + rng.normal(0.0, noise * 255.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
