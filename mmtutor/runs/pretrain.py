"""Pretraining each encoder on its modality's own annotation: :func:`pretrain_encoders`.

Defined in the chapter on fusion. An encoder trained on the final label alone may drop a cue that
only matters in combination with another modality (the smirk that marks sarcasm says nothing
about the label by itself). Where the data annotates what each modality shows on its own, each
encoder is first trained on that annotation, then frozen, and the fusion model learns only how
to combine. ``train_run``, the fusion chapter and ``benchmarks/fusion_table.py`` all call this
function.
"""

import time

import numpy as np

from mmtutor._validation import MODALITIES, check_float, check_int

__all__ = ["ANNOTATIONS", "annotation_targets", "pretrain_encoders"]

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


def pretrain_encoders(encoders, features, frame, *, epochs=None, batch_size=32, lr=3e-3, seed=None,
                      val=None, freeze=True, log=None):
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

    Returns
    -------
    dict
        Modality -> ``{"column", "classes", "epochs", "val_accuracy", "seconds"}`` for every
        encoder that was pretrained.

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
        start = time.perf_counter()
        set_seed(seed)
        x = keras.Input(encoder.inputs[0].shape[1:], dtype=encoder.inputs[0].dtype)
        out = encoder(x)
        pooled = out[0] if isinstance(out, (list, tuple)) else out
        probe = keras.Model(x, keras.layers.Dense(len(names), activation="softmax")(pooled))
        steps = epochs[modality] * int(np.ceil(present.sum() / batch_size))
        probe.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps)),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        probe.fit(features[modality][present], y_train, epochs=epochs[modality], batch_size=batch_size,
                  shuffle=True, verbose=0)
        val_accuracy = None
        if val is not None:
            val_features, val_frame = val
            val_present = np.asarray(val_features["mask"], dtype=bool)[:, j]
            y_val, _ = annotation_targets(val_frame, modality, val_present, names)
            if y_val is not None and val_present.any():
                prob = probe.predict(val_features[modality][val_present], verbose=0)
                val_accuracy = float(np.mean(prob.argmax(axis=1) == y_val))
        if freeze:
            encoder.trainable = False
        report[modality] = {"column": ANNOTATIONS[modality], "classes": names, "epochs": epochs[modality],
                            "val_accuracy": val_accuracy, "seconds": round(time.perf_counter() - start, 1)}
        if log is not None:
            shown = "n/a" if val_accuracy is None else f"{val_accuracy:.3f}"
            print(f"pretrained the {modality} encoder on {ANNOTATIONS[modality]!r} ({len(names)} classes): "
                  f"validation accuracy {shown}", file=log)
    return report
