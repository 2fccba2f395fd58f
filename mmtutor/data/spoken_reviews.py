"""The embedded "spoken reviews" dataset: generator, Bayes ceilings and cached loader.

Defined in the chapter on preprocessing ("Meet the data").

Each sample is a short review in three modalities: its text, a face showing the reviewer's
expression (PNG) and the review spoken aloud (WAV), with a binary sentiment label. The data are
drawn from a small generative model whose probabilities are known, so the best accuracy any
model can reach — the Bayes ceiling — is computed exactly for each modality alone and together.

The generative model
--------------------
For each sample, independently:

1. the label ``y`` is 0 (negative) or 1 (positive) with probability 1/2 each;
2. the sample is *sarcastic* (``s = 1``) with probability ``sarcasm_rate``;
3. each modality ``m`` has a cue ``c_m`` that equals ``y`` with probability
   ``reliability[m]`` and is flipped otherwise, independently given ``y``;
4. a sarcastic sample shows a sarcasm *marker* in the image and in the audio, each
   independently with probability ``marker_reliability`` (non-sarcastic samples never do);
5. what each modality shows:

   - text: a sentence whose literal polarity is ``c_text`` flipped when ``s = 1`` (sarcasm says
     the opposite of what it means, with nothing in the words to tell);
   - image: a smirk (one raised brow, eyes rolled up, lopsided mouth) if the marker is shown,
     otherwise a smile if ``c_image = 1`` and a frown if ``c_image = 0``;
   - audio: a sarcastic voice (slow, drawn out, exaggerated pitch swings) if the marker is shown,
     otherwise a positive (high, lively, fast) or negative (low, flat, slow, fading) voice for
     ``c_audio``;

6. with probability ``missing_rate`` one modality, chosen uniformly, is blanked.

A smirk or a sarcastic voice says nothing about ``y`` by itself, but it tells that the text
means the opposite of what it says: only a model that combines the modalities gets sarcastic
samples right. The ceilings assume the renderers show every cue clearly (noise, blur, occlusion
and background noise are nuisances that hide no cue).
"""

import contextlib
import hashlib
import io
import itertools
import json
import os
import shutil
import tempfile
import uuid
from importlib import metadata
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from mmtutor._fs import raise_if_interrupted, remove_stale, sigint_deferred
from mmtutor._validation import MODALITIES, check_int
from mmtutor.data.faces import draw_face
from mmtutor.data.grammar import DOMAINS, make_review

__all__ = [
    "DEFAULT_N", "DEFAULT_KNOBS", "SAMPLE_RATE", "TONES", "GENERATOR_VERSION",
    "check_knobs", "sample_factors", "bayes_ceilings", "bayes_predict", "voice_review",
    "make_spoken_reviews", "load_spoken_reviews", "default_home",
]

#: Bumped whenever the generator's output changes, so that cached copies are regenerated.
GENERATOR_VERSION = 1
#: Number of samples of the default dataset (generated in well under a minute on 2 CPU cores).
DEFAULT_N = 2000
#: Sample rate of the WAV files.
SAMPLE_RATE = 16000
#: The three voices of the audio modality, indexed by what the audio shows.
TONES = ("negative", "positive", "sarcastic")
_EXPRESSIONS = ("frown", "smile", "smirk")  # what the image shows: 0, 1, 2 (2 = marker)
_MODALITIES = MODALITIES  # the one definition, in mmtutor.data.manifest

#: Default values of the generator's knobs (read-only; pass changes to the functions).
DEFAULT_KNOBS = MappingProxyType({
    "image_size": 64,
    "reliability": MappingProxyType({"text": 0.95, "image": 0.85, "audio": 0.80}),
    "marker_reliability": 0.9,
    "sarcasm_rate": 0.2,
    "missing_rate": 0.05,
    "image_noise": 0.03,
    "snr_db": 20.0,
    "audio_seconds": 3.0,
})
_SPLITS = (("train", 0.70), ("val", 0.15), ("test", 0.15))


# --------------------------------------------------------------------------------------------
# Knobs


def _number(name, value, low, high, *, integer=False):
    kind = "an integer" if integer else "a number"
    types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok_type = isinstance(value, types)
    if isinstance(value, bool) or not ok_type or not np.isfinite(value):
        raise TypeError(f"{name} must be {kind} in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be {kind} in [{low}, {high}], got {value!r}")
    return int(value) if integer else float(value)


def check_knobs(**knobs):
    """Validate the generator's knobs and fill in the defaults.

    Defined in the chapter on preprocessing ("Meet the data").

    Parameters
    ----------
    image_size : int, default 64
        Width and height of the face images in pixels (16 to 512).
    reliability : dict, optional
        Probability that each modality's cue agrees with the label, by modality name
        ("text", "image", "audio"), each in [0.5, 1]. Modalities left out keep their defaults
        (0.95, 0.85, 0.80).
    marker_reliability : float, default 0.9
        Probability that a sarcastic sample shows its marker in the image, and (independently)
        in the audio; in [0, 1].
    sarcasm_rate : float, default 0.2
        Share of sarcastic samples, in [0, 0.5].
    missing_rate : float, default 0.05
        Share of samples with one modality blanked, in [0, 1].
    image_noise : float, default 0.03
        Standard deviation of the images' pixel noise as a fraction of 255, in [0, 0.5].
    snr_db : float, default 20.0
        Signal-to-noise ratio of the background noise added to the speech, in [-10, 80] dB.
    audio_seconds : float, default 3.0
        Length of every audio clip (speech is cut or padded to it), in [1, 10] seconds.

    Returns
    -------
    dict
        All knobs, validated, with the defaults filled in (``reliability`` complete).

    Examples
    --------
    >>> from mmtutor.data import check_knobs
    >>> check_knobs(sarcasm_rate=0.1)["reliability"]
    {'text': 0.95, 'image': 0.85, 'audio': 0.8}
    """
    unknown = sorted(set(knobs) - set(DEFAULT_KNOBS))
    if unknown:
        raise TypeError(f"unknown knob(s) {unknown}; the knobs are {sorted(DEFAULT_KNOBS)}")
    out = {k: v for k, v in DEFAULT_KNOBS.items() if k != "reliability"}
    rel = dict(DEFAULT_KNOBS["reliability"])
    given = knobs.get("reliability")
    if given is not None:
        if not isinstance(given, dict):
            raise TypeError(f"reliability must be a dict like {{'text': 0.9}}, got {given!r}")
        bad = sorted(set(given) - set(_MODALITIES))
        if bad:
            raise ValueError(f"reliability has unknown modalities {bad}; expected some of {list(_MODALITIES)}")
        for m, v in given.items():
            rel[m] = _number(f"reliability[{m!r}]", v, 0.5, 1.0)
    out["reliability"] = rel
    limits = {
        "image_size": (16, 512, True), "marker_reliability": (0.0, 1.0, False),
        "sarcasm_rate": (0.0, 0.5, False), "missing_rate": (0.0, 1.0, False),
        "image_noise": (0.0, 0.5, False), "snr_db": (-10.0, 80.0, False),
        "audio_seconds": (1.0, 10.0, False),
    }
    for name, (low, high, integer) in limits.items():
        if name in knobs:
            out[name] = _number(name, knobs[name], low, high, integer=integer)
    return {k: out[k] for k in DEFAULT_KNOBS}


def _check_n(n, minimum=1):
    return check_int(n, "n", minimum=minimum)


def _check_seed(seed):
    return check_int(seed, "seed", minimum=0)


# --------------------------------------------------------------------------------------------
# Hidden factors and ceilings


def _split_column(labels, sarcastic, rng):
    """70/15/15 train/val/test, stratified by (label, sarcastic), deterministic given rng."""
    split = np.empty(len(labels), dtype=object)
    for y, s in itertools.product((0, 1), (0, 1)):
        idx = np.flatnonzero((labels == y) & (sarcastic == s))
        idx = idx[rng.permutation(len(idx))]
        n_train = int(round(_SPLITS[0][1] * len(idx)))
        n_val = int(round(_SPLITS[1][1] * len(idx)))
        split[idx[:n_train]] = "train"
        split[idx[n_train:n_train + n_val]] = "val"
        split[idx[n_train + n_val:]] = "test"
    return split


def sample_factors(n, seed=0, **knobs):
    """Draw the hidden factors of ``n`` samples, without rendering any file.

    Defined in the chapter on preprocessing ("Meet the data"). :func:`make_spoken_reviews` draws
    exactly these factors (same ``n``, ``seed`` and knobs) and then renders each sample.

    Parameters
    ----------
    n : int
        Number of samples (at least 1).
    seed : int, default 0
        Seed of the random generator.
    **knobs
        The generator's knobs; see :func:`check_knobs`.

    Returns
    -------
    pandas.DataFrame
        One row per sample: ``id``, ``split``, ``label``, ``domain``, ``sarcastic``,
        ``text_cue``, ``image_cue``, ``audio_cue``, ``image_marker``, ``audio_marker``,
        ``literal`` (the literal polarity of the text), ``image_shows`` ("frown", "smile" or
        "smirk"), ``audio_shows`` ("negative", "positive" or "sarcastic"), and
        ``missing_text``, ``missing_image``, ``missing_audio`` (0 or 1).

    Examples
    --------
    >>> from mmtutor.data import sample_factors
    >>> f = sample_factors(1000, seed=0)
    >>> sorted(f["split"].unique())
    ['test', 'train', 'val']
    """
    n = _check_n(n)
    seed = _check_seed(seed)
    k = check_knobs(**knobs)
    rel = k["reliability"]
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sarcastic = (rng.random(n) < k["sarcasm_rate"]).astype(int)
    cues = {m: np.where(rng.random(n) < rel[m], y, 1 - y) for m in _MODALITIES}
    image_marker = (sarcastic & (rng.random(n) < k["marker_reliability"])).astype(int)
    audio_marker = (sarcastic & (rng.random(n) < k["marker_reliability"])).astype(int)
    missing = rng.random(n) < k["missing_rate"]
    which = rng.integers(0, 3, n)
    domains = np.array(list(DOMAINS))[rng.integers(0, len(DOMAINS), n)]
    split = _split_column(y, sarcastic, rng)
    width = max(5, len(str(n - 1)))
    literal = cues["text"] ^ sarcastic
    return pd.DataFrame({
        "id": [f"sr{i:0{width}d}" for i in range(n)],
        "split": split,
        "label": y,
        "domain": domains,
        "sarcastic": sarcastic,
        "text_cue": cues["text"],
        "image_cue": cues["image"],
        "audio_cue": cues["audio"],
        "image_marker": image_marker,
        "audio_marker": audio_marker,
        "literal": literal,
        "image_shows": np.array(_EXPRESSIONS)[np.where(image_marker == 1, 2, cues["image"])],
        "audio_shows": np.array(TONES)[np.where(audio_marker == 1, 2, cues["audio"])],
        "missing_text": (missing & (which == 0)).astype(int),
        "missing_image": (missing & (which == 1)).astype(int),
        "missing_audio": (missing & (which == 2)).astype(int),
    })


def _joint(knobs):
    """P(y, observation) for every full observation (text, image, audio); -1 = blank.

    Observations: text 0/1 (literal polarity), image 0/1/2 (frown/smile/smirk), audio 0/1/2
    (negative/positive/sarcastic voice). Enumerates every hidden factor with its probability.
    """
    rel, q = knobs["reliability"], knobs["marker_reliability"]
    rho, miss = knobs["sarcasm_rate"], knobs["missing_rate"]
    table = {}

    def p_cue(c, y, r):
        return r if c == y else 1 - r

    for y, s, ct, ci, ca, ki, ka in itertools.product((0, 1), repeat=7):
        p = 0.5 * (rho if s else 1 - rho)
        p *= p_cue(ct, y, rel["text"]) * p_cue(ci, y, rel["image"]) * p_cue(ca, y, rel["audio"])
        for k_m in (ki, ka):
            p *= (q if k_m else 1 - q) if s else (0.0 if k_m else 1.0)
        if p == 0.0:
            continue
        obs = (ct ^ s, 2 if ki else ci, 2 if ka else ca)
        for blank, p_blank in ((None, 1 - miss), (0, miss / 3), (1, miss / 3), (2, miss / 3)):
            if p_blank == 0.0:
                continue
            o = tuple(-1 if j == blank else v for j, v in enumerate(obs))
            table.setdefault(o, [0.0, 0.0])[y] += p * p_blank
    return table


def _check_modalities(modalities):
    if isinstance(modalities, str):
        modalities = (modalities,)
    modalities = tuple(modalities)
    bad = [m for m in modalities if m not in _MODALITIES]
    if bad or not modalities:
        raise ValueError(f"modalities must be a non-empty subset of {list(_MODALITIES)}, got {list(modalities)}")
    return modalities


def _posterior(knobs, modalities):
    """P(y, what ``modalities`` show) summed over what the others show."""
    keep = [m in modalities for m in _MODALITIES]
    out = {}
    for obs, p in _joint(knobs).items():
        o = tuple(v if kept else -1 for v, kept in zip(obs, keep))
        acc = out.setdefault(o, [0.0, 0.0])
        acc[0] += p[0]
        acc[1] += p[1]
    return out


def bayes_ceilings(**knobs):
    """The Bayes-optimal accuracy from each modality alone, each pair, and all three.

    Defined in the chapter on preprocessing ("Meet the data").

    Computed exactly by enumerating the generator's hidden factors with their probabilities
    (see the module docstring): for each observation ``o`` of the chosen modalities, the best
    guess is the label with the larger ``P(y, o)``, and the ceiling is
    ``sum over o of max_y P(y, o)``. A blank modality shows nothing.

    Parameters
    ----------
    **knobs
        The generator's knobs; see :func:`check_knobs`.

    Returns
    -------
    dict
        Keys "text", "image", "audio", "text+image", "text+audio", "image+audio", "all";
        values in [0.5, 1].

    Examples
    --------
    >>> from mmtutor.data import bayes_ceilings
    >>> c = bayes_ceilings()
    >>> c["all"] > max(c["text"], c["image"], c["audio"])
    True
    """
    k = check_knobs(**knobs)
    out = {}
    for r in (1, 2, 3):
        for combo in itertools.combinations(_MODALITIES, r):
            name = "all" if r == 3 else "+".join(combo)
            table = _posterior(k, combo)
            out[name] = float(sum(max(p) for p in table.values()))
    return out


def _observations(frame):
    """Code what each modality shows (as in :func:`_joint`) from a frame of hidden factors."""
    need = ["literal", "image_shows", "audio_shows", "missing_text", "missing_image", "missing_audio"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the hidden-factor columns {missing} (made by sample_factors)")
    text = np.where(frame["missing_text"].to_numpy() == 1, -1, frame["literal"].to_numpy())
    image = np.where(frame["missing_image"].to_numpy() == 1, -1,
                     frame["image_shows"].map({e: i for i, e in enumerate(_EXPRESSIONS)}).to_numpy())
    audio = np.where(frame["missing_audio"].to_numpy() == 1, -1,
                     frame["audio_shows"].map({t: i for i, t in enumerate(TONES)}).to_numpy())
    return np.stack([text, image, audio], axis=1).astype(int)


def bayes_predict(frame, modalities=_MODALITIES, **knobs):
    """Predict each sample's label with the Bayes-optimal rule, from its hidden factors.

    Defined in the chapter on evaluation: the rule that reaches the ceiling, to compare a
    trained model with, sample by sample.

    Parameters
    ----------
    frame : pandas.DataFrame
        Hidden factors, as returned by :func:`sample_factors` or stored in a generated
        dataset's manifest (columns ``literal``, ``image_shows``, ``audio_shows`` and the three
        ``missing_*`` flags).
    modalities : sequence of str, default ("text", "image", "audio")
        Which modalities the rule may look at.
    **knobs
        The knobs the data were generated with (see :func:`check_knobs`); for a generated
        dataset, ``**dataset.info["knobs"]``.

    Returns
    -------
    numpy.ndarray
        int array of predicted labels (ties go to 1).

    Examples
    --------
    >>> from mmtutor.data import sample_factors, bayes_predict
    >>> f = sample_factors(200, seed=1)
    >>> bayes_predict(f, ["text"]).shape
    (200,)
    """
    modalities = _check_modalities(modalities)
    k = check_knobs(**knobs)
    table = _posterior(k, modalities)
    keep = np.array([m in modalities for m in _MODALITIES])
    obs = np.where(keep, _observations(frame), -1)
    pred = np.empty(len(obs), dtype=int)
    for i, o in enumerate(map(tuple, obs)):
        p = table.get(o)
        pred[i] = 1 if p is None else int(p[1] >= p[0])
    return pred


# --------------------------------------------------------------------------------------------
# Rendering


def _prosody(tone, rng):
    """espeak-ng parameters and an energy envelope for a tone of voice."""
    if tone == "positive":  # high, lively, fast, a little louder towards the end
        return dict(pitch=rng.uniform(60, 78), pitch_range=rng.uniform(70, 95), rate=rng.uniform(185, 215),
                    volume=rng.uniform(105, 125), word_gap=0, end="!", env=(0.85, 1.1), wobble=0.0)
    if tone == "negative":  # low, flat, slow, fading
        return dict(pitch=rng.uniform(20, 36), pitch_range=rng.uniform(5, 22), rate=rng.uniform(125, 150),
                    volume=rng.uniform(75, 95), word_gap=0, end=".", env=(1.0, 0.5), wobble=0.0)
    if tone == "sarcastic":  # drawn out: very slow, gaps between words, exaggerated swings
        return dict(pitch=rng.uniform(42, 58), pitch_range=rng.uniform(95, 100), rate=rng.uniform(90, 110),
                    volume=rng.uniform(95, 115), word_gap=int(rng.integers(6, 12)), end="...",
                    env=(1.0, 1.0), wobble=rng.uniform(0.25, 0.4))
    raise ValueError(f"tone must be one of {TONES}, got {tone!r}")


_VOICES = ("en-us", "en-us+m1", "en-us+m3", "en+m2", "en")


def voice_review(text, tone="positive", *, seed=0, audio_seconds=3.0, snr_db=20.0, sr=SAMPLE_RATE):
    """Speak a review in a tone of voice, as the dataset's audio modality does.

    Defined in the chapter on preprocessing ("Meet the data"); use it to voice a review of
    your own and hear (or classify) what the models hear.

    The tone is carried by prosody: ``"positive"`` is high, lively and fast, ending on a rise;
    ``"negative"`` low, flat and slow, fading out; ``"sarcastic"`` slow and drawn out, with gaps
    between words and exaggerated pitch swings. Speaker (one of a few espeak-ng voices), start
    time and exact prosody vary with ``seed``; background noise is added at ``snr_db``.

    Parameters
    ----------
    text : str
        The review (non-empty).
    tone : {"positive", "negative", "sarcastic"}, default "positive"
    seed : int, default 0
        Seed of the random variations.
    audio_seconds : float, default 3.0
        Length of the result: speech is cut or padded with (noisy) silence to it.
    snr_db : float, default 20.0
        Signal-to-noise ratio of the added noise in dB (``None`` for none).
    sr : int, default 16000
        Sample rate.

    Returns
    -------
    numpy.ndarray
        float32 waveform of ``round(audio_seconds * sr)`` samples in [-1, 1].

    Examples
    --------
    >>> from mmtutor.data import voice_review
    >>> voice_review("The soup was cold.", "negative").shape
    (48000,)
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    _check_seed(seed)
    audio_seconds = _number("audio_seconds", audio_seconds, 0.1, 60.0)
    if snr_db is not None:
        snr_db = _number("snr_db", snr_db, -10.0, 80.0)
    return _render_audio(text, tone, np.random.default_rng(seed), audio_seconds, snr_db, sr)


def _render_audio(text, tone, rng, audio_seconds, snr_db, sr):
    from mmtutor.data.speech import synthesize

    p = _prosody(tone, rng)
    voice = _VOICES[int(rng.integers(len(_VOICES)))]
    spoken = text.strip().rstrip(".!?") + p["end"]
    wave = synthesize(spoken, rate=p["rate"], pitch=p["pitch"], pitch_range=p["pitch_range"],
                      volume=p["volume"], voice=voice, sr=sr, seed=int(rng.integers(2**31)),
                      word_gap=p["word_gap"])
    wave = wave.astype(np.float64) * 0.8  # headroom for the envelope and the noise
    t = np.linspace(0.0, 1.0, len(wave))
    env = p["env"][0] + (p["env"][1] - p["env"][0]) * t
    if p["wobble"]:  # exaggerated stress: slow swells of loudness
        freq = rng.uniform(1.5, 2.5) * len(wave) / sr
        env = env * (1 + p["wobble"] * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)))
    wave = wave * env
    length = int(round(audio_seconds * sr))
    start = int(rng.integers(0, int(0.15 * sr)))
    out = np.zeros(length)
    piece = wave[: max(0, length - start)]
    out[start:start + len(piece)] = piece
    if snr_db is not None:
        voiced = piece[np.abs(piece) > 0.01]
        power = float(np.mean(voiced**2)) if voiced.size else 1e-4
        from scipy.signal import lfilter

        # hiss (white) plus a low rumble (white noise through a one-pole low-pass filter)
        white = rng.standard_normal(length)
        rumble = lfilter([1.0], [1.0, -0.98], rng.standard_normal(length))
        rumble /= max(rumble.std(), 1e-12)
        noise = 0.6 * white + 0.8 * rumble
        noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise**2))
        out = out + noise
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _png_bytes(rgb):
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:  # pragma: no cover
        raise RuntimeError("OpenCV failed to encode a PNG")
    return buf.tobytes()


def _wav_bytes(wave, sr):
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _versions():
    names = ("mmtutor", "numpy", "pandas", "opencv-python-headless", "librosa", "soxr", "soundfile",
             "espeakng-loader")
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _render_into(folder, n, seed, knobs, progress):
    """Draw the factors, render every file into ``folder`` and write manifest and dataset.json."""
    from tqdm.auto import tqdm

    factors = sample_factors(n, seed, **knobs)
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    digests = []
    texts, images, audios = [], [], []
    rows = factors.itertuples(index=False)
    for i, row in enumerate(tqdm(rows, total=n, desc="spoken reviews", unit="sample", disable=not progress)):
        raise_if_interrupted()  # a Ctrl-C lost inside a C callback still stops the next sample
        r_text = np.random.default_rng([seed, i, 1])
        r_image = np.random.default_rng([seed, i, 2])
        r_audio = np.random.default_rng([seed, i, 3])
        sentence = make_review(r_text, row.domain, int(row.literal))
        texts.append("" if row.missing_text else sentence)
        if row.missing_image:
            images.append("")
        else:
            rel = f"images/{row.id}.png"
            data = _png_bytes(draw_face(row.image_shows, r_image, size=knobs["image_size"],
                                        noise=knobs["image_noise"]))
            (folder / rel).write_bytes(data)
            digests.append((rel, hashlib.sha256(data).hexdigest()))
            images.append(rel)
        if row.missing_audio:
            audios.append("")
        else:
            rel = f"audio/{row.id}.wav"
            wave = _render_audio(sentence, row.audio_shows, r_audio, knobs["audio_seconds"], knobs["snr_db"],
                                 SAMPLE_RATE)
            data = _wav_bytes(wave, SAMPLE_RATE)
            (folder / rel).write_bytes(data)
            digests.append((rel, hashlib.sha256(data).hexdigest()))
            audios.append(rel)
    manifest = factors.copy()
    manifest.insert(2, "text", texts)
    manifest.insert(3, "image", images)
    manifest.insert(4, "audio", audios)
    csv = manifest.to_csv(index=False, lineterminator="\n").encode("utf-8")
    (folder / "manifest.csv").write_bytes(csv)
    digests.append(("manifest.csv", hashlib.sha256(csv).hexdigest()))
    content = hashlib.sha256()
    for rel, digest in sorted(digests):
        content.update(f"{rel}\0{digest}\n".encode())
    info = {
        "name": "spoken_reviews",
        "generator_version": GENERATOR_VERSION,
        "n": n,
        "seed": seed,
        "knobs": knobs,
        "image_size": knobs["image_size"],
        "audio_seconds": knobs["audio_seconds"],
        "sample_rate": SAMPLE_RATE,
        "classes": ["negative", "positive"],
        "modalities": list(_MODALITIES),
        "splits": {name: int((manifest["split"] == name).sum()) for name, _ in _SPLITS},
        "ceilings": bayes_ceilings(**knobs),
        "versions": _versions(),
        "content_hash": content.hexdigest(),
    }
    (folder / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return info


_OUR_ENTRIES = ("manifest.csv", "dataset.json", "images", "audio")


def make_spoken_reviews(out_dir, n=DEFAULT_N, seed=0, *, progress=True, overwrite=False, **knobs):
    """Generate the spoken-reviews dataset into a folder.

    Defined in the chapter on preprocessing ("Meet the data").

    Writes ``manifest.csv`` (columns ``id``, ``split``, ``text``, ``image``, ``audio``,
    ``label`` and the hidden factors of :func:`sample_factors`), ``images/<id>.png`` (RGB faces),
    ``audio/<id>.wav`` (16 kHz mono 16-bit speech) and ``dataset.json`` (knobs, package
    versions, Bayes ceilings, content hash). A blanked modality has an empty manifest cell and no
    file. The same arguments (and package versions) give byte-identical files.

    Parameters
    ----------
    out_dir : str or path-like
        Folder to write into; created if needed. It must not hold a dataset already, unless
        ``overwrite=True``.
    n : int, default DEFAULT_N (2000)
        Number of samples, at least 10.
    seed : int, default 0
        Seed: the same seed gives the same dataset.
    progress : bool, default True
        Show a tqdm progress bar (notebooks pass False).
    overwrite : bool, default False
        Replace a dataset that mmtutor wrote into ``out_dir`` before: only its ``manifest.csv``,
        ``dataset.json`` and the files its manifest lists are replaced; other files, in
        ``images/`` and ``audio/`` too, are left alone. A folder whose ``images/`` or ``audio/``
        holds no mmtutor dataset is never written into, with or without ``overwrite``.
    **knobs
        The generator's knobs; see :func:`check_knobs`.

    Returns
    -------
    dict
        The content of ``dataset.json``.

    Examples
    --------
    >>> from mmtutor.data import make_spoken_reviews, load_manifest
    >>> info = make_spoken_reviews("/tmp/sr_demo", n=20, progress=False, overwrite=True)
    >>> len(load_manifest("/tmp/sr_demo"))
    20
    """
    n = _check_n(n, minimum=10)
    seed = _check_seed(seed)
    knobs = check_knobs(**knobs)
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir must be a path, got {out_dir!r}")
    if not str(out_dir).strip():
        raise ValueError("out_dir is empty; give the folder to write the dataset into")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, but {out} is a file")
    old_files = _check_replaceable(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out, r"\.tmp-spoken-reviews-(?P<pid>\d+)-.*")
    # Render into a temporary folder inside out_dir, then move the results in: an interrupted
    # run leaves the folder as it was.
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-spoken-reviews-{os.getpid()}-", dir=out))
    try:
        info = _render_into(tmp, n, seed, knobs, progress)
        new_files = {str(p.relative_to(tmp)) for folder in ("images", "audio") for p in (tmp / folder).iterdir()}
        clash = sorted(new_files & _foreign_files(out, old_files))
        if clash:
            raise FileExistsError(
                f"out_dir {out} holds files that mmtutor did not write but would overwrite: "
                f"{', '.join(clash[:5])}{' ...' if len(clash) > 5 else ''}; move them or choose another folder"
            )
        # Replace only what the old dataset's manifest lists, never other files in images/ or
        # audio/; Ctrl-C waits until the swap is complete.
        with sigint_deferred():
            _swap_in(tmp, out, old_files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _swap_in(tmp, out, old_files):
    """Replace the dataset files in ``out`` (those of ``old_files``) by the new ones in ``tmp``."""
    for rel in sorted(old_files) + ["manifest.csv", "dataset.json"]:
        with contextlib.suppress(FileNotFoundError):
            (out / rel).unlink()
    for folder in ("images", "audio"):
        target = out / folder
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        if target.exists():  # the user keeps other files there: move ours in one by one
            for p in (tmp / folder).iterdir():
                os.replace(p, target / p.name)
        else:
            os.replace(tmp / folder, target)
    os.replace(tmp / "manifest.csv", out / "manifest.csv")
    os.replace(tmp / "dataset.json", out / "dataset.json")


def _written_dataset(out):
    """The files of the mmtutor dataset in ``out`` (relative paths), or None if there is none."""
    try:
        info = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
        manifest = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if not isinstance(info, dict) or info.get("name") != "spoken_reviews" or "generator_version" not in info:
        return None
    files = set()
    for column in ("image", "audio"):
        if column in manifest.columns:
            files |= {f for f in manifest[column] if f and not os.path.isabs(f) and ".." not in Path(f).parts}
    return files


def _foreign_files(out, ours):
    """Files in ``out``'s images/ and audio/ that are not in ``ours`` (relative paths)."""
    found = set()
    for folder in ("images", "audio"):
        if (out / folder).is_dir():
            found |= {f"{folder}/{p.name}" for p in (out / folder).iterdir()}
    return found - set(ours)


def _check_replaceable(out, overwrite):
    """Refuse to write into ``out`` unless it is new, empty of our entries, or (with
    ``overwrite``) holds a dataset mmtutor wrote; return the files of that dataset."""
    present = [e for e in _OUR_ENTRIES if (out / e).exists()]
    if not present:
        return set()
    ours = _written_dataset(out)
    if ours is None:
        raise FileExistsError(
            f"out_dir {out} holds {', '.join(present)} but no dataset written by mmtutor (no readable "
            "manifest.csv and spoken-reviews dataset.json), so mmtutor will neither write into nor replace "
            "them, even with overwrite=True (--overwrite); choose a new or empty folder"
        )
    if not overwrite:
        raise FileExistsError(
            f"out_dir {out} already holds a spoken-reviews dataset; pass overwrite=True "
            "(--overwrite on the command line) to replace it (only its own files are replaced)"
        )
    return ours


# --------------------------------------------------------------------------------------------
# Cached default dataset


def default_home():
    """The folder where mmtutor caches generated data.

    Defined in the chapter on preprocessing ("Meet the data").

    Returns
    -------
    pathlib.Path
        ``$MMTUTOR_HOME`` if that environment variable is set, otherwise the user's cache
        folder (``platformdirs.user_cache_dir("mmtutor")``, e.g. ``~/.cache/mmtutor`` on Linux).

    Examples
    --------
    >>> from mmtutor.data import default_home
    >>> default_home().name != ""
    True
    """
    env = os.environ.get("MMTUTOR_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mmtutor"))


def _cache_key(n, seed, knobs):
    blob = json.dumps({"generator_version": GENERATOR_VERSION, "n": n, "seed": seed, "knobs": knobs},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def load_spoken_reviews(n=None, seed=0, *, home=None, progress=False, **knobs):
    """Load the spoken-reviews dataset, generating it once into the cache folder.

    Defined in the chapter on preprocessing ("Meet the data"). Every notebook of the book calls
    this; the first call generates the data (see :data:`DEFAULT_N`), later calls only read it.

    The data live in ``<home>/spoken_reviews-<key>``, where ``key`` is a hash of ``n``,
    ``seed``, the knobs and the generator version. Generation goes to a temporary folder that is
    renamed into place when complete, so two processes generating at once both end up reading
    one complete copy.

    Parameters
    ----------
    n : int, optional
        Number of samples; ``None`` for :data:`DEFAULT_N`.
    seed : int, default 0
    home : str or path-like, optional
        Cache folder; default :func:`default_home` (``$MMTUTOR_HOME`` or the user's cache dir).
    progress : bool, default False
        Show a progress bar while generating.
    **knobs
        The generator's knobs; see :func:`check_knobs`.

    Returns
    -------
    MultimodalDataset
        The whole dataset (use ``.subset("train")`` etc. for the splits).

    Examples
    --------
    >>> from mmtutor.data import load_spoken_reviews
    >>> ds = load_spoken_reviews()  # doctest: +SKIP
    >>> sorted(ds.info["ceilings"])  # doctest: +SKIP
    ['all', 'audio', 'image', 'image+audio', 'text', 'text+audio', 'text+image']
    """
    from mmtutor.data.manifest import load_manifest

    n = DEFAULT_N if n is None else _check_n(n, minimum=10)
    seed = _check_seed(seed)
    knobs = check_knobs(**knobs)
    home = default_home() if home is None else Path(home).expanduser()
    folder = home / f"spoken_reviews-{_cache_key(n, seed, knobs)}"
    if not (folder / "dataset.json").is_file():
        if folder.exists():
            # Complete copies appear in one rename, with dataset.json inside; a folder without it
            # was damaged by hand. Start again.
            shutil.rmtree(folder, ignore_errors=True)
        home.mkdir(parents=True, exist_ok=True)
        remove_stale(home, r"\.tmp-spoken_reviews-[0-9a-f]+-(?P<pid>\d+)-[0-9a-f]+")  # left by killed runs
        tmp = home / f".tmp-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _render_into(tmp, n, seed, knobs, progress)
            try:
                os.rename(tmp, folder)
            except OSError:
                if not (folder / "dataset.json").is_file():
                    raise  # not a lost race: a real error
                # another process finished first: use its copy
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_manifest(folder)
