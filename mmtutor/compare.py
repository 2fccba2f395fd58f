"""Fair comparisons of fusion methods on frozen encoder features (chapter on fusion).

Training every fusion method end to end, over several seeds and with and without modality
dropout, costs too much on a laptop CPU. The chapter on fusion therefore encodes each modality
once with frozen encoders, and trains only the fusion *heads* on those features. The helpers
here do that, and measure what the comparison reports:

:func:`encode`
    Run a (frozen) encoder over an array in batches; pooled features and, optionally, the
    sequence features that attention fusion attends over.
:func:`feature_encoders`
    Pass-through "encoders" for precomputed features, so that
    :func:`mmtutor.models.fusion_model.build_fusion_model` builds a fusion head on them.
:func:`drop_modality`
    A copy of a modality mask with some modalities marked missing (removed at test time).
:func:`train_fusion_heads`
    Train one fusion head per seed; return the models, seconds per epoch and parameter count.
:func:`evaluate_subsets`
    Accuracy of a model on all samples, on named subsets (e.g. the sarcastic samples) and with
    each modality removed.
:func:`linear_probe`
    Does a frozen feature still carry a factor? A logistic-regression probe and its baseline.
:func:`quiet_tf_data`
    Keep TensorFlow's harmless tf.data notice out of notebooks while Keras trains or predicts.
"""

import time

import keras
import numpy as np

from mmtutor._validation import check_int

from mmtutor._quiet import quiet_tf_data
from mmtutor.models.fusion_model import MASK_KEY, build_fusion_model

__all__ = [
    "quiet_tf_data",
    "encode",
    "feature_encoders",
    "drop_modality",
    "train_fusion_heads",
    "evaluate_subsets",
    "linear_probe",
]


def _check_int(value, name, minimum=1):
    return check_int(value, name, minimum=minimum)


def _check_features(features, name="features"):
    """A non-empty dict of modality -> array with one common number of rows."""
    if not isinstance(features, dict) or not features:
        raise ValueError(
            f"{name} must be a non-empty dict of modality name -> array, got "
            f"{type(features).__name__}" + (" (empty)" if isinstance(features, dict) else "")
        )
    arrays, rows = {}, set()
    for key, value in features.items():
        if not isinstance(key, str) or not key or key == MASK_KEY:
            raise ValueError(f"{name} keys must be modality names (not {MASK_KEY!r}), got {key!r}")
        array = np.asarray(value)
        if array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.number):
            raise ValueError(
                f"{name}[{key!r}] must be a numeric array of shape (n, dim) or (n, steps, dim), "
                f"got {array.dtype} array of shape {array.shape}"
            )
        arrays[key] = array.astype("float32", copy=False)
        rows.add(array.shape[0])
    if len(rows) != 1:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise ValueError(f"{name} arrays must have the same number of rows, got shapes {shapes}")
    return arrays, rows.pop()


def _check_rows(value, name, n, *, ndim, dtype=None):
    array = np.asarray(value, dtype=dtype)
    if array.ndim != ndim or array.shape[0] != n:
        want = f"({n},)" if ndim == 1 else f"({n}, ...)"
        raise ValueError(f"{name} must have shape {want}, got shape {array.shape}")
    return array


def _check_mask(masks, n, m):
    mask = np.asarray(masks)
    if mask.shape != (n, m):
        raise ValueError(
            f"masks must have shape ({n}, {m}): one row per sample, one column per modality; "
            f"got shape {mask.shape}"
        )
    return mask.astype("float32")


def encode(encoder, x, *, batch_size=256):
    """Encode an array with a (frozen) encoder, in batches, without training behaviour.

    Defined in the chapter on fusion.

    Parameters
    ----------
    encoder : keras.Model
        An encoder of the chapter on feature extraction: one input, and one output (pooled
        features) or two (``[pooled, sequence]``, built with ``return_sequence=True``).
    x : array-like
        The encoder's input, ``(n, ...)``.
    batch_size : int, default 256

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        ``pooled`` of shape ``(n, dim)``, or ``(pooled, sequence)`` for a two-output encoder.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from mmtutor.compare import encode
    >>> inp = keras.Input((3,))
    >>> enc = keras.Model(inp, keras.layers.Dense(2)(inp))
    >>> encode(enc, np.zeros((5, 3))).shape
    (5, 2)
    """
    if not isinstance(encoder, keras.Model):
        raise ValueError(f"encoder must be a keras.Model, got {type(encoder).__name__}")
    batch_size = _check_int(batch_size, "batch_size")
    x = np.asarray(x)
    expected = tuple(encoder.inputs[0].shape[1:])
    if x.ndim != len(expected) + 1 or any(
        e is not None and e != s for e, s in zip(expected, x.shape[1:])
    ):
        raise ValueError(
            f"x must have shape (n, {', '.join(map(str, expected))}) for encoder "
            f"{encoder.name!r}, got shape {x.shape}"
        )
    with quiet_tf_data():
        outputs = encoder.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(outputs, (list, tuple)):
        return tuple(np.asarray(o) for o in outputs)
    return np.asarray(outputs)


def feature_encoders(features):
    """Pass-through encoders for precomputed features, one per modality.

    :func:`~mmtutor.models.fusion_model.build_fusion_model` on these builds a *fusion head*:
    the fusion layer and classifier alone, trained on features that frozen encoders computed
    once. A 2-D feature ``(n, dim)`` is used as the pooled vector; a 3-D one ``(n, steps, dim)``
    as a sequence (its mean over steps becomes the pooled vector, and attention fusion attends
    over its steps).

    Defined in the chapter on fusion.

    Parameters
    ----------
    features : dict of str -> array
        Modality name -> features ``(n, dim)`` or ``(n, steps, dim)``.

    Returns
    -------
    dict of str -> keras.Model
        Modality name -> a model named ``"<modality>_features"`` that returns its input.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.compare import feature_encoders
    >>> encs = feature_encoders({"text": np.zeros((4, 8)), "audio": np.zeros((4, 5, 3))})
    >>> {k: tuple(m.outputs[0].shape) for k, m in encs.items()}
    {'text': (None, 8), 'audio': (None, 5, 3)}
    """
    arrays, _ = _check_features(features)
    encoders = {}
    for key, array in arrays.items():
        inp = keras.Input(shape=array.shape[1:], name=f"{key}_in")
        out = keras.layers.Identity(name=f"{key}_identity")(inp)
        encoders[key] = keras.Model(inp, out, name=f"{key}_features")
    return encoders


def drop_modality(masks, modalities, drop):
    """A copy of a modality mask with the modalities in ``drop`` marked missing.

    Use it to remove a modality at test time: the fusion layers then treat it as absent, as
    they do for the samples whose modality really is missing.

    Defined in the chapter on fusion.

    Parameters
    ----------
    masks : array-like of shape (n, M)
        1 (or True) where a modality is present.
    modalities : sequence of str
        The names of the M columns, in order.
    drop : str or sequence of str
        The modality (or modalities) to remove.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(n, M)``; the dropped columns are 0, the others unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.compare import drop_modality
    >>> drop_modality(np.ones((2, 3)), ["text", "image", "audio"], "image")
    array([[1., 0., 1.],
           [1., 0., 1.]], dtype=float32)
    """
    if isinstance(modalities, str) or not all(isinstance(m, str) for m in modalities):
        raise ValueError(f"modalities must be a sequence of names, got {modalities!r}")
    modalities = list(modalities)
    mask = np.asarray(masks)
    if mask.ndim != 2 or mask.shape[1] != len(modalities):
        raise ValueError(
            f"masks must have shape (n, {len(modalities)}), one column per modality "
            f"{modalities}; got shape {mask.shape}"
        )
    names = [drop] if isinstance(drop, str) else list(drop)
    unknown = [d for d in names if d not in modalities]
    if unknown or not names:
        raise ValueError(f"drop must name some of the modalities {modalities}, got {drop!r}")
    out = mask.astype("float32").copy()
    for name in names:
        out[:, modalities.index(name)] = 0.0
    return out


def _inputs(arrays, mask):
    data = dict(arrays)
    data[MASK_KEY] = mask
    return data


def train_fusion_heads(features, labels, masks, fusion, seeds, *, epochs=30, batch_size=64,
                       modality_dropout=0.0, hidden=64, dropout=0.1, lr=1e-3):
    """Train one fusion head per seed on precomputed features.

    Each head is :func:`~mmtutor.models.fusion_model.build_fusion_model` on
    :func:`feature_encoders`, so every fusion method sees exactly the same features, data and
    training schedule; only the fusion layer differs. The seed fixes the initial weights, the
    order of the batches and the modality-dropout draws.

    Defined in the chapter on fusion.

    Parameters
    ----------
    features : dict of str -> array
        Training features by modality, ``(n, dim)`` or ``(n, steps, dim)``.
    labels : array-like of int, shape (n,)
        Class labels 0..num_classes-1 (two classes give a sigmoid head).
    masks : array-like, shape (n, M)
        Modality mask, columns in the order of ``features``.
    fusion : str or callable
        A fusion name (see ``mmtutor.models.fusion_model.FUSION_NAMES``), or a function of no
        argument returning a new fusion layer (called once per seed).
    seeds : sequence of int
        One head is trained per seed.
    epochs : int, default 30
    batch_size : int, default 64
    modality_dropout : float in [0, 1), default 0.0
    hidden : int, default 64
    dropout : float in [0, 1), default 0.1
    lr : float, default 1e-3

    Returns
    -------
    dict
        ``"models"``: the trained heads (one per seed); ``"seconds_per_epoch"``: array of the
        mean training seconds per epoch of each head; ``"params"``: trainable parameters of
        one head; ``"fusion_params"``: those of its fusion layer alone.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.compare import train_fusion_heads
    >>> rng = np.random.default_rng(0)
    >>> feats = {"a": rng.normal(size=(64, 4)), "b": rng.normal(size=(64, 3))}
    >>> out = train_fusion_heads(feats, rng.integers(0, 2, 64), np.ones((64, 2)), "concat",
    ...                          seeds=[0], epochs=1)
    >>> len(out["models"])
    1
    """
    from mmtutor.utils import set_seed

    arrays, n = _check_features(features)
    y = _check_rows(labels, "labels", n, ndim=1)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"labels must be integers >= 0, got dtype {y.dtype} (min {y.min()})")
    num_classes = max(2, int(y.max()) + 1)
    mask = _check_mask(masks, n, len(arrays))
    if isinstance(seeds, (int, np.integer)) or not len(seeds):
        raise ValueError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    seeds = [_check_int(s, "each seed", minimum=0) for s in seeds]
    epochs = _check_int(epochs, "epochs")
    batch_size = _check_int(batch_size, "batch_size")
    if not (isinstance(fusion, str) or callable(fusion)):
        raise ValueError(
            f"fusion must be a fusion name or a function returning a fusion layer, got {fusion!r}"
        )
    models, seconds = [], []
    for seed in seeds:
        set_seed(seed)
        layer = fusion if isinstance(fusion, str) else fusion()
        model = build_fusion_model(
            feature_encoders(arrays), layer, num_classes, modality_dropout=modality_dropout,
            hidden=hidden, dropout=dropout, lr=lr, seed=seed, name="fusion_head",
        )
        start = time.perf_counter()
        with quiet_tf_data():
            model.fit(_inputs(arrays, mask), y, epochs=epochs, batch_size=batch_size, verbose=0)
        seconds.append((time.perf_counter() - start) / epochs)
        models.append(model)
    fusion_layer = models[0].fusion_layer
    return {
        "models": models,
        "seconds_per_epoch": np.asarray(seconds),
        "params": int(sum(np.prod(w.shape) for w in models[0].trainable_weights)),
        "fusion_params": int(sum(np.prod(w.shape) for w in fusion_layer.trainable_weights)),
    }


def _predict_labels(model, arrays, mask):
    with quiet_tf_data():
        p = np.asarray(model.predict(_inputs(arrays, mask), batch_size=512, verbose=0))
    if p.ndim == 2 and p.shape[1] > 1:
        return p.argmax(axis=1)
    return (p.reshape(-1) > 0.5).astype(int)


def evaluate_subsets(model, features, labels, masks, *, subsets=None, drop=True):
    """Accuracy of a fusion model overall, on subsets, and with each modality removed.

    Defined in the chapter on fusion.

    Parameters
    ----------
    model : FusionModel
        A model from ``build_fusion_model`` (e.g. a head from :func:`train_fusion_heads`);
        its ``modalities`` give the order of the mask's columns.
    features : dict of str -> array
        Test inputs by modality.
    labels : array-like of int, shape (n,)
    masks : array-like, shape (n, M)
        The test samples' own modality mask (missing modalities stay missing).
    subsets : dict of str -> array of bool, optional
        Named subsets of the samples (e.g. ``{"sarcastic": is_sarcastic}``); each gets an
        accuracy ``"<name>"``.
    drop : bool, default True
        Also report ``"without <modality>"``: the accuracy on all samples with that modality
        removed from every sample (its mask column set to 0).

    Returns
    -------
    dict of str -> float
        ``"all"``, one entry per subset, and (with ``drop``) one per removed modality.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.compare import train_fusion_heads, evaluate_subsets
    >>> feats = {"a": np.eye(8)[np.arange(32) % 8], "b": np.zeros((32, 2))}
    >>> y = np.arange(32) % 2
    >>> head = train_fusion_heads(feats, y, np.ones((32, 2)), "concat", [0], epochs=2)
    >>> sorted(evaluate_subsets(head["models"][0], feats, y, np.ones((32, 2))))
    ['all', 'without a', 'without b']
    """
    modalities = getattr(model, "modalities", None)
    if modalities is None:
        raise ValueError(
            f"model must be a fusion model from build_fusion_model, got {type(model).__name__}"
        )
    arrays, n = _check_features(features)
    if sorted(arrays) != sorted(modalities):
        raise ValueError(
            f"features must have the model's modalities {modalities}, got {sorted(arrays)}"
        )
    y = _check_rows(labels, "labels", n, ndim=1)
    mask = _check_mask(masks, n, len(modalities))
    subsets = {} if subsets is None else subsets
    if not isinstance(subsets, dict):
        raise ValueError(f"subsets must be a dict of name -> boolean array, got {subsets!r}")
    checked = {}
    for name, rows in subsets.items():
        rows = _check_rows(rows, f"subsets[{name!r}]", n, ndim=1)
        if rows.dtype != bool or not rows.any():
            raise ValueError(
                f"subsets[{name!r}] must be a boolean array selecting at least one sample, got "
                f"dtype {rows.dtype} with {int(np.count_nonzero(rows))} selected"
            )
        checked[name] = rows
    correct = _predict_labels(model, arrays, mask) == y
    result = {"all": float(correct.mean())}
    for name, rows in checked.items():
        result[name] = float(correct[rows].mean())
    if drop:
        for modality in modalities:
            reduced = drop_modality(mask, modalities, modality)
            result[f"without {modality}"] = float(
                (_predict_labels(model, arrays, reduced) == y).mean()
            )
    return result


def linear_probe(z_train, y_train, z_test, y_test, *, C=1.0, max_iter=2000):
    """Does a frozen feature still carry a factor? Fit a linear probe and compare.

    A logistic regression is fitted on standardised training features and scored on the test
    features. If its accuracy clearly beats the majority baseline (always predicting the most
    frequent test class), the factor can be read linearly from the features, so a fusion head on
    them can use it.

    Defined in the chapter on fusion.

    Parameters
    ----------
    z_train, z_test : array-like, shape (n, dim)
        Frozen features.
    y_train, y_test : array-like of int
        The factor to read (e.g. whether the face shows the sarcasm marker).
    C : float, default 1.0
        Inverse regularisation strength of the logistic regression.
    max_iter : int, default 2000

    Returns
    -------
    dict
        ``"accuracy"`` of the probe on the test set, ``"majority"`` baseline accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.compare import linear_probe
    >>> z = np.r_[np.zeros((20, 2)), np.ones((20, 2))]
    >>> y = np.r_[np.zeros(20, int), np.ones(20, int)]
    >>> linear_probe(z, y, z, y)["accuracy"]
    1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = []
    for zname, yname, z, yy in (("z_train", "y_train", z_train, y_train),
                                ("z_test", "y_test", z_test, y_test)):
        z = np.asarray(z, dtype="float64")
        if z.ndim != 2 or z.shape[0] == 0:
            raise ValueError(f"{zname} must have shape (n, dim) with n > 0, got {z.shape}")
        yy = _check_rows(yy, yname, z.shape[0], ndim=1)
        if not np.all(np.isfinite(z)):
            raise ValueError(f"{zname} contains NaN or infinite values")
        out += [z, yy]
    z_train, y_train, z_test, y_test = out
    if np.unique(y_train).size < 2:
        raise ValueError("y_train must contain at least two classes to fit a probe")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    probe.fit(z_train, y_train)
    _, counts = np.unique(y_test, return_counts=True)
    return {
        "accuracy": float(probe.score(z_test, y_test)),
        "majority": float(counts.max() / counts.sum()),
    }
