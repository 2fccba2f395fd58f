"""Pretraining each encoder on its modality's own annotation: :func:`pretrain_encoders`.

Defined in the chapter on fusion. An encoder trained on the final label alone may drop a cue that
only matters in combination with another modality (the smirk that marks sarcasm says nothing
about the label by itself). Where the data annotates what each modality shows on its own, each
encoder is first trained on that annotation, then frozen, and the fusion model learns only how
to combine. ``train_run``, the fusion chapter and ``benchmarks/fusion_table.py`` all call this
function.

Pretrained encoders are cached on disk when a ``cache_dir`` is given, like features are. The key
of an entry is a hash of everything the result depends on: the encoder's architecture and its
initial weights (which the seed and the order of building fixed), the training inputs and
targets, the validation rows, the epochs, batch size, learning rate and seed, the versions of mmtutor,
Keras and its backend, and TensorFlow's ``TF_ENABLE_ONEDNN_OPTS`` (another numeric path). A changed key trains again; an entry that cannot be read, whose
key differs or whose weights do not match their checksum or the encoder's shapes is removed and
trained again, never loaded. Loading an entry restores every variable of the encoder (dropout
seed states too), so a run that finds its encoders cached is the run that trained them.
"""

import hashlib
import json
import logging
import os
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from mmtutor._validation import MODALITIES, check_float, check_int

__all__ = ["ANNOTATIONS", "annotation_targets", "pretrain_encoders", "encoder_cache_key"]

logger = logging.getLogger(__name__)
_CACHE_FORMAT = 1  # bump when the meaning of a stored entry changes

#: Per-modality annotations a dataset may carry (columns of its manifest): what each modality
#: says on its own. The spoken reviews have them.
ANNOTATIONS = {"text": "literal", "image": "image_shows", "audio": "audio_shows"}


def annotation_targets(frame, modality, present, names=None):
    """Integer targets of a modality's annotation on the rows where it is present.

    Parameters
    ----------
    frame : pandas.DataFrame
        Manifest rows (one per sample).
    modality : str
    present : array of bool
        Which rows have the modality.
    names : list of str, optional
        Class names to map to (e.g. the training split's); default: the sorted values found.

    Returns
    -------
    targets : numpy.ndarray of int, or None
        None when the column is absent, has a blank on a present row, holds fewer than two
        values, or holds a value outside ``names``.
    names : list of str or None
    """
    column = ANNOTATIONS[modality]
    if column not in frame.columns:
        return None, None
    values = frame[column].to_numpy()[np.asarray(present, dtype=bool)]
    text = np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values])
    if (text == "").any():
        return None, None
    names = sorted(set(text)) if names is None else list(names)
    if len(names) < 2 or not set(text) <= set(names):
        return None, None
    return np.array([names.index(v) for v in text]), names


def _digest_arrays(arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def encoder_cache_key(encoder, x, y, *, epochs, batch_size, lr, seed, val=None):
    """The cache key of one pretrained encoder: a hex digest of all its training depends on.

    Parameters
    ----------
    encoder : keras.Model
        The encoder before training (its architecture and initial variables enter the key).
    x, y : numpy.ndarray
        Training inputs and integer targets.
    epochs, batch_size : int
    lr : float
    seed : int
    val : tuple of numpy.ndarray, optional
        Validation inputs and targets (the stored report holds the validation accuracy).

    Returns
    -------
    str
    """
    import keras

    payload = {
        "format": _CACHE_FORMAT,
        "architecture": _architecture_digest(encoder),
        "initial": _digest_arrays([np.asarray(v) for v in encoder.variables]),
        "train": _digest_arrays([x, y]),
        "val": None if val is None else _digest_arrays(list(val)),
        "epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed),
        # TensorFlow's oneDNN kernels round differently: an encoder trained on one path is not
        # the result of the other.
        "numerics": os.environ.get("TF_ENABLE_ONEDNN_OPTS") if keras.backend.backend() == "tensorflow" else None,
        "versions": {"mmtutor": _version("mmtutor"), "keras": keras.__version__, "backend": keras.backend.backend(),
                     "backend_version": _version({"tensorflow": "tensorflow-cpu"}.get(keras.backend.backend(),
                                                                                      keras.backend.backend()))},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _architecture_digest(encoder):
    """Hash of the encoder's config with its layer names numbered in order of appearance.

    Keras numbers automatic names per process (``not_equal``, ``not_equal_1``, ...), so the same
    architecture built twice has different names; the wiring between layers is kept.
    """
    names = []

    def collect(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "name" and isinstance(v, str) and v not in names:
                    names.append(v)
                collect(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                collect(v)

    config = encoder.get_config()
    collect(config)
    numbering = {name: f"#{i}" for i, name in enumerate(names)}

    def rename(node):
        if isinstance(node, dict):
            return {k: rename(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [rename(v) for v in node]
        return numbering.get(node, node) if isinstance(node, str) else node

    text = json.dumps(rename(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _version(package):
    for name in (package, package.replace("-cpu", "")):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _load_entry(path, key, encoder):
    """The report stored at ``path`` after restoring its variables into ``encoder``; ValueError if unusable."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            stored = {name: npz[name] for name in npz.files}
    except Exception as exc:  # BadZipFile, EOFError, OSError, ValueError: all mean "unusable"
        raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if str(stored.get("key", "")) != key:
        raise ValueError("its key does not match")
    variables = encoder.variables
    values = [stored.get(f"v{i}") for i in range(len(variables))]
    if any(v is None for v in values) or f"v{len(variables)}" in stored:
        raise ValueError(f"it holds another number of variables than the encoder's {len(variables)}")
    for var, value in zip(variables, values):
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f"variable {var.path!r} has shape {value.shape}, the encoder's is {tuple(var.shape)}")
    if str(stored.get("digest", "")) != _digest_arrays(values):
        raise ValueError("its weights do not match their checksum")
    try:
        report = json.loads(str(stored["report"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"its report is unreadable ({exc})") from None
    for var, value in zip(variables, values):
        var.assign(value)
    return report


def _write_entry(path, key, encoder, report):
    values = [np.asarray(v) for v in encoder.variables]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), digest=np.array(_digest_arrays(values)),
                     report=np.array(json.dumps(report)), **{f"v{i}": v for i, v in enumerate(values)})
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    finally:
        if tmp.exists():
            tmp.unlink()


def pretrain_encoders(encoders, features, frame, *, epochs=None, batch_size=32, lr=3e-3, seed=None,
                      val=None, freeze=True, log=None, cache_dir=None):
    """Train each encoder (plus a softmax layer) on its modality's own annotation; freeze it.

    Defined in the chapter on fusion. Each encoder is trained on the rows where its modality is
    present, with Adam and a learning rate that decays along a cosine from ``lr`` to 0 over all
    its steps (``keras.optimizers.schedules.CosineDecay``), so the last epoch -- the one kept --
    ends calmly. An encoder whose modality has no usable annotation in ``frame`` is left as it
    is (and not frozen).

    Parameters
    ----------
    encoders : dict of str -> keras.Model
        Modality name -> encoder (single input; its first output, or its only one, is the
        pooled feature vector).
    features : dict
        Model inputs of the training rows: one array per modality and ``"mask"`` (n, 3) in the
        order text, image, audio (as from :func:`mmtutor.preprocess.extract_features`, after
        any standardisation).
    frame : pandas.DataFrame
        The training rows of the manifest, in the same order (for the annotation columns).
    epochs : int or dict of str -> int, optional
        Epochs per modality; default :data:`mmtutor.runs.PRETRAIN_EPOCHS`.
    batch_size : int, default 32
    lr : float, default 3e-3
        Initial learning rate.
    seed : int, optional
        Seeds each encoder's training (:func:`mmtutor.utils.set_seed`); default
        :func:`mmtutor.utils.global_seed`.
    val : (dict, pandas.DataFrame), optional
        Validation features and rows, to report each encoder's accuracy on its annotation.
    freeze : bool, default True
        Set ``encoder.trainable = False`` after pretraining.
    log : file-like, optional
        Where to print one line per encoder.
    cache_dir : str or path, optional
        Cache the pretrained encoders in ``cache_dir/encoders`` (see the module docstring): an
        encoder whose key is found there is loaded instead of trained.

    Returns
    -------
    dict
        Modality -> ``{"column", "classes", "epochs", "val_accuracy", "seconds", "cached"}`` for
        every encoder that was pretrained; ``seconds`` is the time its training took, ``cached``
        whether it was loaded from the cache this time.

    Examples
    --------
    >>> from mmtutor.runs import pretrain_encoders  # doctest: +SKIP
    >>> report = pretrain_encoders(encoders, train_inputs, dataset.subset("train").frame)  # doctest: +SKIP
    >>> sorted(report)  # doctest: +SKIP
    ['audio', 'image', 'text']
    """
    import keras

    from mmtutor.runs.config import RunConfig
    from mmtutor.utils import global_seed, set_seed

    if not isinstance(encoders, dict) or not encoders:
        raise TypeError(f"encoders must be a non-empty dict modality -> keras.Model, got {type(encoders).__name__}")
    unknown = sorted(set(encoders) - set(MODALITIES))
    if unknown:
        raise ValueError(f"encoders has unknown modalities {unknown}; allowed: {list(MODALITIES)}")
    epochs = RunConfig._pretrain_epochs(epochs)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_float(lr, "lr", low=0.0, high=1.0, low_open=True)
    seed = global_seed() if seed is None else check_int(seed, "seed", minimum=0)
    mask = np.asarray(features["mask"], dtype=bool)
    if len(frame) != len(mask):
        raise ValueError(f"frame has {len(frame)} rows but the features have {len(mask)} samples")
    report = {}
    for modality, encoder in encoders.items():
        j = MODALITIES.index(modality)
        present = mask[:, j]
        y_train, names = annotation_targets(frame, modality, present)
        if y_train is None:
            continue
        x_train = np.asarray(features[modality])[present]
        val_xy = None
        if val is not None:
            val_features, val_frame = val
            val_present = np.asarray(val_features["mask"], dtype=bool)[:, j]
            y_val, _ = annotation_targets(val_frame, modality, val_present, names)
            if y_val is not None and val_present.any():
                val_xy = (np.asarray(val_features[modality])[val_present], y_val)
        entry = None
        if cache_dir is not None:
            key = encoder_cache_key(encoder, x_train, y_train, epochs=epochs[modality], batch_size=batch_size,
                                    lr=lr, seed=seed, val=val_xy)
            entry = Path(cache_dir) / "encoders" / f"{modality}-{key[:32]}.npz"
            if entry.exists():
                try:
                    stored = _load_entry(entry, key, encoder)
                except ValueError as exc:
                    logger.warning("rebuilding the cached %s encoder %s: %s", modality, entry, exc)
                    entry.unlink(missing_ok=True)
                else:
                    if freeze:
                        encoder.trainable = False
                    report[modality] = {**stored, "cached": True}
                    _log(log, modality, report[modality])
                    continue
        start = time.perf_counter()
        set_seed(seed)
        x = keras.Input(encoder.inputs[0].shape[1:], dtype=encoder.inputs[0].dtype)
        out = encoder(x)
        pooled = out[0] if isinstance(out, (list, tuple)) else out
        probe = keras.Model(x, keras.layers.Dense(len(names), activation="softmax")(pooled))
        steps = epochs[modality] * int(np.ceil(present.sum() / batch_size))
        probe.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps)),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        probe.fit(x_train, y_train, epochs=epochs[modality], batch_size=batch_size, shuffle=True, verbose=0)
        val_accuracy = None
        if val_xy is not None:
            prob = probe.predict(val_xy[0], verbose=0)
            val_accuracy = float(np.mean(prob.argmax(axis=1) == val_xy[1]))
        if freeze:
            encoder.trainable = False
        report[modality] = {"column": ANNOTATIONS[modality], "classes": names, "epochs": epochs[modality],
                            "val_accuracy": val_accuracy, "seconds": round(time.perf_counter() - start, 1)}
        if entry is not None:
            _write_entry(entry, key, encoder, report[modality])
        report[modality]["cached"] = False
        _log(log, modality, report[modality])
    return report


def _log(log, modality, item):
    if log is not None:
        shown = "n/a" if item["val_accuracy"] is None else f"{item['val_accuracy']:.3f}"
        how = "loaded the cached" if item["cached"] else "pretrained the"
        print(f"{how} {modality} encoder on {item['column']!r} ({len(item['classes'])} classes): "
              f"validation accuracy {shown}", file=log)
