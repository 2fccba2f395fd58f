"""Which modality, which pixels, which frames? Attribution for fusion models.

Defined in the chapter on challenges. Three tools, from the coarsest to the finest:

- :func:`modality_occlusion` -- hide one whole modality through the model's modality mask and
  measure how much the prediction changes;
- :func:`shapley_values` (any cooperative game) and :func:`modality_shapley` (the game whose
  players are a fusion model's modalities, a coalition being a setting of the mask) -- the exact
  Shapley values, from all ``2**M`` subsets;
- :func:`integrated_gradients` -- per-pixel / per-frame attributions along a straight path from
  a baseline to the input, with gradients from ``tf.GradientTape`` (TensorFlow backend).

:func:`deletion_effect` blanks the top-attributed (or random) elements of an input and measures
the change of the model's output: the faithfulness test of the chapter.

A fusion model here is a :class:`mmtutor.models.fusion_model.FusionModel` (or any Keras model
taking a dict with a ``"mask"`` entry) whose output is one sigmoid unit (two classes) or a
softmax over ``K`` classes.
"""

from math import factorial

import numpy as np

from mmtutor._validation import check_choice, check_int

__all__ = [
    "VALUES",
    "subset_masks",
    "shapley_values",
    "class_score",
    "modality_values",
    "modality_shapley",
    "modality_occlusion",
    "integrated_gradients",
    "top_fraction_mask",
    "deletion_effect",
]

#: What the value of a prediction can be: the log-odds or the probability of the target class.
VALUES = ("logodds", "probability")
_EPS = 1e-7


# ---------------------------------------------------------------------------------------------
# Shapley values of a cooperative game


def subset_masks(num_players):
    """All ``2**M`` coalitions of ``M`` players, as 0/1 rows.

    Defined in the chapter on challenges. Row ``s`` has a 1 in column ``i`` when bit ``i`` of
    ``s`` is set, so row 0 is the empty coalition and the last row the grand coalition.

    Parameters
    ----------
    num_players : int
        ``M``, between 1 and 16.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(2**M, M)``.

    Examples
    --------
    >>> subset_masks(2)
    array([[0., 0.],
           [1., 0.],
           [0., 1.],
           [1., 1.]], dtype=float32)
    """
    m = check_int(num_players, "num_players", minimum=1, maximum=16)
    s = np.arange(2 ** m)[:, None]
    return ((s >> np.arange(m)[None, :]) & 1).astype(np.float32)


def shapley_values(values, num_players=None):
    """Exact Shapley values of a cooperative game given by the values of all coalitions.

    Defined in the chapter on challenges. With ``M`` players and ``v(S)`` the value of coalition
    ``S``, player ``i`` receives

    ``phi_i = sum over S not containing i of |S|! (M - |S| - 1)! / M! * (v(S + i) - v(S))``,

    the average, over all orders in which the players could join, of what ``i`` adds when it
    joins (Shapley 1953). The values satisfy efficiency (``sum_i phi_i = v(all) - v(empty)``),
    symmetry and the null-player property.

    Parameters
    ----------
    values : array-like of shape (2**M,) or (2**M, n), or callable
        ``values[s]`` is the value of the coalition of row ``s`` of :func:`subset_masks` (bit
        ``i`` of ``s`` set when player ``i`` is in it); with a second axis, ``n`` games are solved
        at once. A callable is called with one 0/1 row (a coalition) and returns a number or an
        array of ``n`` numbers; it then needs ``num_players``.
    num_players : int, optional
        ``M``; inferred from the length of ``values`` when it is an array.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(M,)`` or ``(n, M)``.

    Examples
    --------
    >>> # v({0}) = 1, v({1}) = 2, v({0, 1}) = 5: the interaction 2 is split equally.
    >>> shapley_values([0.0, 1.0, 2.0, 5.0])
    array([2., 3.])
    """
    if callable(values):
        if num_players is None:
            raise ValueError("num_players is needed when values is a callable")
        masks = subset_masks(num_players)
        values = np.array([np.asarray(values(row.copy()), dtype=np.float64) for row in masks])
    values = np.asarray(values, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[0] < 2:
        raise ValueError(f"values must have shape (2**M,) or (2**M, n), got {values.shape}")
    m = int(round(np.log2(values.shape[0])))
    if 2 ** m != values.shape[0]:
        raise ValueError(f"values must hold 2**M coalition values (one per subset), got {values.shape[0]}")
    if num_players is not None and check_int(num_players, "num_players", minimum=1) != m:
        raise ValueError(f"num_players={num_players} needs {2 ** num_players} values, got {values.shape[0]}")
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    single = values.ndim == 1
    v = values[:, None] if single else values
    phi = np.zeros((m, v.shape[1]))
    for s in range(2 ** m):
        size = bin(s).count("1")
        for i in range(m):
            if s >> i & 1:
                continue
            weight = factorial(size) * factorial(m - size - 1) / factorial(m)
            phi[i] += weight * (v[s | (1 << i)] - v[s])
    return phi[:, 0] if single else phi.T


# ---------------------------------------------------------------------------------------------
# A fusion model's value of a prediction


def class_score(output, target, value="logodds"):
    """The log-odds or probability of a target class, from a model's output.

    Defined in the chapter on challenges.

    Parameters
    ----------
    output : array-like, shape (n,) or (n, 1) for a sigmoid unit, (n, K) for a softmax
    target : int or array-like of int, shape (n,)
        The class whose score is wanted.
    value : {"logodds", "probability"}, default "logodds"
        ``"logodds"`` is ``log p - log(1 - p)`` of the target class, with ``p`` clipped to
        ``[1e-7, 1 - 1e-7]``.

    Returns
    -------
    numpy.ndarray
        float64, shape (n,).
    """
    value = check_choice(value, "value", VALUES)
    out = np.asarray(output, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise ValueError(f"output must have shape (n,), (n, 1) or (n, K), got {out.shape}")
    n = len(out)
    target = _check_target(target, n, 2 if out.shape[1] == 1 else out.shape[1])
    if out.shape[1] == 1:
        p = np.where(target == 1, out[:, 0], 1.0 - out[:, 0])
    else:
        p = out[np.arange(n), target]
    if value == "probability":
        return p
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _check_target(target, n, num_classes):
    t = np.asarray(target)
    if t.ndim == 0:
        t = np.full(n, t)
    if t.shape != (n,) or not np.issubdtype(t.dtype, np.integer) and not np.issubdtype(t.dtype, np.bool_):
        raise ValueError(f"target must be an int or {n} ints (class indices), got {np.asarray(target)!r}"[:200])
    t = t.astype(int)
    if t.min() < 0 or t.max() >= num_classes:
        raise ValueError(f"target must be a class index in [0, {num_classes}), got values {sorted(set(t))[:5]}")
    return t


def _check_inputs(model, inputs):
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs must be a dict of modality name -> array (plus 'mask'), got {type(inputs).__name__}")
    modalities = list(getattr(model, "modalities", [k for k in inputs if k != "mask"]))
    missing = [m for m in modalities if m not in inputs]
    if missing:
        raise ValueError(f"inputs lack the modalities {missing} of the model")
    n = len(np.asarray(inputs[modalities[0]]))
    mask = inputs.get("mask")
    mask = np.ones((n, len(modalities)), np.float32) if mask is None else np.asarray(mask, np.float32)
    if mask.shape != (n, len(modalities)):
        raise ValueError(f"inputs['mask'] must have shape ({n}, {len(modalities)}), got {mask.shape}")
    return modalities, n, mask


def _predict(model, inputs, batch_size):
    from mmtutor._quiet import quiet_tf_data

    with quiet_tf_data():
        return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float64)


def _predicted_class(output):
    out = output if output.ndim == 2 else output[:, None]
    return (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)


def modality_values(model, inputs, *, target=None, value="logodds", batch_size=256):
    """The value of every coalition of modalities, one game per sample.

    Defined in the chapter on challenges. Coalition ``S`` is the input with the model's modality
    mask multiplied by the 0/1 row ``S`` of :func:`subset_masks`: the modalities outside ``S``
    are hidden as the model hides a missing modality. A modality already missing from a sample
    (0 in ``inputs["mask"]``) stays hidden in every coalition, so it is a null player.

    Parameters
    ----------
    model : FusionModel
        Takes a dict of inputs with a ``"mask"`` of shape ``(n, M)``.
    inputs : dict
        Modality name -> array, and optionally ``"mask"`` (default: all present).
    target : int or array of int, optional
        The class whose score is the value; default: the class the model predicts with all of
        the sample's modalities.
    value : {"logodds", "probability"}, default "logodds"
    batch_size : int, default 256

    Returns
    -------
    values : numpy.ndarray
        float64, shape ``(2**M, n)``: ``values[s, j]`` is the value of coalition ``s`` for
        sample ``j``.
    target : numpy.ndarray
        int, shape ``(n,)``, the class scored.
    """
    value = check_choice(value, "value", VALUES)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    modalities, n, mask = _check_inputs(model, inputs)
    masks = subset_masks(len(modalities))
    base = {k: v for k, v in inputs.items() if k != "mask"}
    # One call for all coalitions: the inputs repeated 2**M times, each copy with its own mask.
    stacked = {k: np.concatenate([np.asarray(v)] * len(masks)) for k, v in base.items()}
    stacked["mask"] = np.concatenate([mask * row[None, :] for row in masks])
    outputs = np.split(_predict(model, stacked, batch_size), len(masks))
    if target is None:
        target = _predicted_class(outputs[-1])
    values = np.stack([class_score(o, target, value) for o in outputs])
    return values, _check_target(target, n, 2 if outputs[-1].shape[-1] == 1 else outputs[-1].shape[-1])


def modality_shapley(model, inputs, *, target=None, value="logodds", batch_size=256):
    """Exact Shapley values of each modality for each sample of a fusion model.

    Defined in the chapter on challenges. The players are the model's modalities, the value of a
    coalition is the score (log-odds or probability) of the target class when only its
    modalities are shown (:func:`modality_values`); :func:`shapley_values` solves the game.
    ``phi.sum(axis=1) == v(all) - v(empty)`` for every sample.

    Parameters
    ----------
    model, inputs, target, value, batch_size
        As for :func:`modality_values`.

    Returns
    -------
    dict
        ``"phi"`` (n, M) Shapley values in the order of ``model.modalities``; ``"full"`` (n,)
        the value with all the sample's modalities; ``"empty"`` (n,) with none; ``"target"``
        (n,) the class scored; ``"values"`` (2**M, n) every coalition's value.
    """
    values, target = modality_values(model, inputs, target=target, value=value, batch_size=batch_size)
    return {"phi": shapley_values(values), "full": values[-1], "empty": values[0], "target": target,
            "values": values}


def modality_occlusion(model, inputs, *, target=None, value="logodds", batch_size=256):
    """How much the prediction changes when one whole modality is hidden.

    Defined in the chapter on challenges. For each modality ``m``: the score of the target
    class with all the sample's modalities minus the score with ``m`` hidden through the
    modality mask (a leave-one-out occlusion). A positive number means the modality supported
    the target class. A modality already missing from a sample gets 0.

    Parameters
    ----------
    model, inputs, target, value, batch_size
        As for :func:`modality_values`.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n, M)``, columns in the order of ``model.modalities``.
    """
    value = check_choice(value, "value", VALUES)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    modalities, n, mask = _check_inputs(model, inputs)
    base = {k: v for k, v in inputs.items() if k != "mask"}
    full = _predict(model, {**base, "mask": mask}, batch_size)
    if target is None:
        target = _predicted_class(full)
    v_full = class_score(full, target, value)
    out = np.zeros((n, len(modalities)))
    for i in range(len(modalities)):
        keep = np.ones(len(modalities), np.float32)
        keep[i] = 0.0
        out[:, i] = v_full - class_score(_predict(model, {**base, "mask": mask * keep}, batch_size), target, value)
    return out


# ---------------------------------------------------------------------------------------------
# Integrated gradients


def _require_tensorflow():
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"integrated_gradients takes its gradients with tf.GradientTape and needs the TensorFlow "
            f"backend of Keras; this Keras runs on {backend!r}. Set KERAS_BACKEND=tensorflow before "
            "importing keras."
        )
    import tensorflow as tf

    return tf


def integrated_gradients(model, inputs, baseline, target, steps=32, *, value="probability", batch_size=256):
    """Integrated gradients of a model's class score with respect to some of its inputs.

    Defined in the chapter on challenges. For an input ``x``, a baseline ``x'`` and a score
    ``f``, the attribution of element ``k`` is (Sundararajan et al. 2017)

    ``IG_k = (x_k - x'_k) * integral from 0 to 1 of df/dx_k (x' + a (x - x')) da``,

    computed here with the trapezoid rule on ``steps`` intervals. The attributions add up to
    ``f(x) - f(x')`` (completeness), up to the error of the rule. Every key of ``baseline`` is
    moved along the path at once; the other inputs (and the mask) stay as they are.

    Gradients come from ``tf.GradientTape``: the function needs Keras' TensorFlow backend and
    raises a RuntimeError on another.

    Parameters
    ----------
    model : keras.Model
        Takes the dict ``inputs``; outputs one sigmoid unit or a softmax.
    inputs : dict
        Model inputs (modality name -> array, optionally ``"mask"``), ``n`` samples.
    baseline : dict
        Modality name -> baseline array, of the shape of one sample or of all ``n`` samples: the
        input that stands for "this evidence is absent".
    target : int or array-like of int
        The class whose score is attributed, for all samples or one per sample.
    steps : int, default 32
        Intervals of the trapezoid rule (``steps + 1`` model evaluations per sample).
    value : {"probability", "logodds"}, default "probability"
        The score ``f`` of the target class (see :func:`class_score`).
    batch_size : int, default 256
        Path points evaluated per gradient call.

    Returns
    -------
    dict
        Modality name -> float32 attributions of the shape of ``inputs[name]``, and
        ``"f_input"``, ``"f_baseline"`` (n,) the scores at the two ends of the path.

    Raises
    ------
    RuntimeError
        On a Keras backend other than TensorFlow.
    """
    tf = _require_tensorflow()
    value = check_choice(value, "value", VALUES)
    steps = check_int(steps, "steps", minimum=1, maximum=10_000)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs must be a dict of name -> array, got {type(inputs).__name__}")
    if not isinstance(baseline, dict) or not baseline:
        raise TypeError(f"baseline must be a non-empty dict of name -> array, got {baseline!r}"[:200])
    unknown = [k for k in baseline if k not in inputs or k == "mask"]
    if unknown:
        raise ValueError(f"baseline has keys {unknown} that are not modalities of inputs ({sorted(inputs)})")
    x = {k: np.asarray(v) for k, v in inputs.items()}
    n = len(next(iter(x.values())))
    base = {}
    for k, b in baseline.items():
        xk = x[k].astype(np.float32)
        b = np.asarray(b, dtype=np.float32)
        if b.shape == xk.shape[1:]:
            b = np.broadcast_to(b, xk.shape)
        if b.shape != xk.shape:
            raise ValueError(f"baseline[{k!r}] must have the shape of one sample {xk.shape[1:]} or of "
                             f"inputs[{k!r}] {xk.shape}, got {b.shape}")
        x[k] = xk
        base[k] = b
    out_units = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else 1
    target = _check_target(target, n, 2 if out_units == 1 else out_units)
    keys = list(base)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)
    weights = np.full(steps + 1, 1.0 / steps, np.float32)
    weights[[0, -1]] *= 0.5  # trapezoid rule
    # All (sample, alpha) pairs, evaluated in batches of path points.
    pairs = np.stack(np.meshgrid(np.arange(n), np.arange(steps + 1), indexing="ij"), -1).reshape(-1, 2)
    grads = {k: np.zeros_like(x[k]) for k in keys}
    f_ends = np.zeros((n, 2))
    for start in range(0, len(pairs), batch_size):
        idx, step = pairs[start:start + batch_size, 0], pairs[start:start + batch_size, 1]
        a = alphas[step]
        feed = {k: tf.convert_to_tensor(v[idx]) for k, v in x.items() if k not in base}
        path = {}
        for k in keys:
            shape = (-1,) + (1,) * (x[k].ndim - 1)
            path[k] = tf.convert_to_tensor(base[k][idx] + a.reshape(shape) * (x[k][idx] - base[k][idx]))
        with tf.GradientTape() as tape:
            tape.watch(list(path.values()))
            out = model({**feed, **path}, training=False)
            out = tf.cast(out, tf.float64)
            if out.shape[-1] == 1:
                p = out[:, 0]
                p = tf.where(tf.constant(target[idx] == 1), p, 1.0 - p)
            else:
                p = tf.gather(out, target[idx], batch_dims=1)
            if value == "logodds":
                p = tf.clip_by_value(p, _EPS, 1 - _EPS)
                score = tf.math.log(p) - tf.math.log1p(-p)
            else:
                score = p
        g = tape.gradient(score, [path[k] for k in keys])
        score = score.numpy()
        for k, gk in zip(keys, g):
            gk = np.zeros(path[k].shape, np.float32) if gk is None else gk.numpy()
            w = weights[step].reshape((-1,) + (1,) * (gk.ndim - 1))
            np.add.at(grads[k], idx, w * gk)
        first, last = step == 0, step == steps
        f_ends[idx[first], 1] = score[first]
        f_ends[idx[last], 0] = score[last]
    result = {k: ((x[k] - base[k]) * grads[k]).astype(np.float32) for k in keys}
    result["f_input"], result["f_baseline"] = f_ends[:, 0], f_ends[:, 1]
    return result


# ---------------------------------------------------------------------------------------------
# Deletion: is what the attribution ranks high what the model uses?


def top_fraction_mask(scores, fraction, *, rng=None):
    """Boolean mask of the top ``fraction`` of each row's elements (random ones with ``rng``).

    Defined in the chapter on challenges.

    Parameters
    ----------
    scores : array-like, shape (n, d)
        One row of element scores per sample (e.g. attributions summed over colour channels,
        flattened).
    fraction : float in (0, 1]
        Share of the elements to select: ``max(1, round(fraction * d))`` of them.
    rng : numpy.random.Generator, optional
        When given, the elements are chosen at random (uniformly, without replacement) instead
        of by score: the control of the deletion test.

    Returns
    -------
    numpy.ndarray
        bool, shape (n, d).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"scores must have shape (n, d), got {s.shape}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    k = max(1, int(round(fraction * s.shape[1])))
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        order = np.argsort(rng.random(s.shape), axis=1)
    else:
        order = np.argsort(-s, axis=1, kind="stable")
    out = np.zeros(s.shape, bool)
    np.put_along_axis(out, order[:, :k], True, axis=1)
    return out


def deletion_effect(model, inputs, key, remove, baseline, *, target=None, value="logodds", batch_size=256):
    """Drop of the target-class score when some elements of one input are set to the baseline.

    Defined in the chapter on challenges.

    Parameters
    ----------
    model : FusionModel
    inputs : dict
        Model inputs, ``n`` samples.
    key : str
        The input to edit (e.g. ``"image"``).
    remove : array of bool
        Which elements to blank, of the shape of ``inputs[key]`` or broadcastable to it (e.g.
        ``(n, H, W, 1)`` for all channels of a pixel, ``(n, T, 1)`` for all bands of a frame).
    baseline : array
        What a removed element becomes: of the shape of one sample or of ``inputs[key]``.
    target : int or array of int, optional
        Default: the class predicted on the unedited inputs.
    value : {"logodds", "probability"}, default "logodds"
    batch_size : int, default 256

    Returns
    -------
    numpy.ndarray
        float64, shape (n,): score before minus score after the deletion.
    """
    value = check_choice(value, "value", VALUES)
    if not isinstance(inputs, dict) or key not in inputs or key == "mask":
        raise ValueError(f"key must name a modality of inputs ({sorted(inputs) if isinstance(inputs, dict) else inputs}), got {key!r}")
    x = np.asarray(inputs[key], dtype=np.float32)
    remove = np.asarray(remove)
    if remove.dtype != bool:
        raise TypeError(f"remove must be a boolean array, got dtype {remove.dtype}")
    try:
        remove = np.broadcast_to(remove, x.shape)
    except ValueError:
        raise ValueError(f"remove of shape {remove.shape} does not broadcast to inputs[{key!r}] {x.shape}") from None
    b = np.asarray(baseline, dtype=np.float32)
    if b.shape == x.shape[1:]:
        b = np.broadcast_to(b, x.shape)
    if b.shape != x.shape:
        raise ValueError(f"baseline must have the shape of one sample {x.shape[1:]} or {x.shape}, got {b.shape}")
    before = _predict(model, inputs, batch_size)
    if target is None:
        target = _predicted_class(before)
    after = _predict(model, {**inputs, key: np.where(remove, b, x)}, batch_size)
    return class_score(before, target, value) - class_score(after, target, value)
