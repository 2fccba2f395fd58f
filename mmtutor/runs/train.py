"""Training a fusion model into a run folder: :func:`train_run`.

Defined in the chapter on the sentiment project. ``train_run`` reads as its steps:
:func:`prepare_features` -> :func:`build_model` (encoders, optional pretraining, fusion) ->
:func:`fit_model` -> :func:`evaluate_splits` -> write the run folder (atomically, so a reader
never sees half a run). Each step is a function of its own that can be called and tested alone.
"""

import os
import re
import shutil
import time
from dataclasses import dataclass
from importlib import metadata

import numpy as np

import mmtutor
from mmtutor._fs import remove_stale
from mmtutor._quiet import quiet_tf_data
from mmtutor._validation import MODALITIES
from mmtutor.runs.config import TRAIN_AUDIO, RunConfig
from mmtutor.runs.folder import (
    RUN_FORMAT, RUN_FORMAT_VERSION, Run, _as_dataset, _ceiling, _ceiling_key, _check_out, _model_inputs,
    _move_into_place, _probabilities, _reusable_run, _split_metrics, _versions, write_run_files,
)
from mmtutor.runs.pretrain import pretrain_encoders

__all__ = ["train_run", "prepare_features", "build_model", "fit_model", "evaluate_splits", "Features", "noisy_copies"]


@dataclass
class Features:
    """The prepared data of a run: model inputs per split and the preprocessing state."""

    parts: dict          # split -> arrays of extract_features (raw, before standardisation)
    inputs: dict         # split -> model inputs (audio standardised, mask per used modality)
    labels: dict         # split -> int labels
    vectorizer: object   # TextVectorizer fitted on the training split
    audio: dict          # complete log-mel settings
    audio_norm: dict     # per-band mean and std of the training log-mels
    noisy: dict = None   # the noisy training copies (config.audio_noise): arrays like parts, plus "rows" and "snr_db"

    def fit_inputs(self):
        """Model inputs and labels to train on: the training split, plus its noisy copies if any."""
        inputs, labels = self.inputs["train"], self.labels["train"]
        if not self.noisy:
            return inputs, labels
        extra = _model_inputs(self.noisy, [k for k in inputs if k != "mask"], self.audio_norm)
        return ({k: np.concatenate([inputs[k], extra[k]]) for k in inputs},
                np.concatenate([labels, self.noisy["label"]]))

    def fit_frame(self, frame):
        """The training rows of the manifest, with a repeated row for each noisy copy."""
        if not self.noisy:
            return frame
        import pandas as pd

        return pd.concat([frame, frame.iloc[self.noisy["rows"]]], ignore_index=True)


def prepare_features(dataset, config, *, cache_dir=None, progress=False):
    """Features of every split: vocabulary fitted on the training split, audio statistics too.

    Returns
    -------
    Features
    """
    from mmtutor.preprocess import extract_features, fit_audio_stats
    from mmtutor.preprocess.features import _audio_settings

    settings = _audio_settings({**TRAIN_AUDIO, **(config.audio or {})}, dict(dataset.info or {}))
    parts, vectorizer = {}, None
    for split in ("train", "val", "test"):
        subset = dataset.subset(split)
        if len(subset) == 0:
            continue
        parts[split] = extract_features(subset, image_size=config.image_size,
                                        seq_len=None if vectorizer else config.seq_len, vectorizer=vectorizer,
                                        audio=settings, cache_dir=cache_dir, progress=progress)
        vectorizer = parts[split]["vectorizer"]
    train = parts["train"]
    audio_norm = fit_audio_stats(train["audio"], train["mask"][:, MODALITIES.index("audio")])
    inputs = {s: _model_inputs(p, config.modalities, audio_norm) for s, p in parts.items()}
    labels = {s: p["label"] for s, p in parts.items()}
    noisy = None
    if config.audio_noise is not None and "audio" in config.modalities:
        noisy = noisy_copies(dataset.subset("train"), train, settings, config.audio_noise, seed=config.seed)
    return Features(parts, inputs, labels, vectorizer, settings, audio_norm, noisy)


def noisy_copies(subset, arrays, audio, snr_db, *, seed=0):
    """One copy of every training sample that has a clip, its audio with white noise added.

    Defined in the chapter on noisy and missing modalities. Each clip is loaded as the run
    loads it, :func:`mmtutor.preprocess.add_noise` adds white noise at an SNR drawn uniformly
    from ``snr_db`` (a new draw per clip), and the log-mel is computed with the run's settings.
    Text, image, mask and label are those of the original sample. The original samples stay:
    the model trains on both, and the audio statistics stay those of the clean clips.

    Parameters
    ----------
    subset : MultimodalDataset
        The training split.
    arrays : dict
        Its features (``extract_features``): ``text``, ``image``, ``audio``, ``mask``, ``label``.
    audio : dict
        The run's complete log-mel settings.
    snr_db : (float, float)
        Lowest and highest SNR in dB.
    seed : int

    Returns
    -------
    dict
        The arrays of the copies, ``rows`` (the index of each copy's original in ``subset``) and
        ``snr_db`` (the SNR drawn for each copy).
    """
    from mmtutor.preprocess import add_noise, load_audio, log_mel

    low, high = snr_db
    rows = np.flatnonzero(arrays["mask"][:, MODALITIES.index("audio")])
    rng = np.random.default_rng([int(seed), 7919])  # its own stream: the noise does not move other draws
    snrs = rng.uniform(low, high, size=rows.size)
    mel = {k: audio[k] for k in ("sr", "n_fft", "hop_length", "n_mels")}
    paths = list(subset.audio_paths)
    copies = {k: np.asarray(arrays[k])[rows].copy() for k in ("text", "image", "audio", "mask", "label")}
    for start in range(0, rows.size, 64):
        batch = range(start, min(start + 64, rows.size))
        waves = np.stack([add_noise(load_audio(paths[rows[i]], sr=audio["sr"], seconds=audio["seconds"]),
                                    snrs[i], seed=rng) for i in batch])
        copies["audio"][start:start + len(batch)] = log_mel(waves, **mel)
    return {**copies, "rows": rows, "snr_db": snrs}


def build_model(features, config, num_classes, *, frames=None, progress=False, cache_dir=None):
    """Encoders (pretrained and frozen where the data annotates each modality) and the fusion model.

    With ``cache_dir``, pretrained encoders are cached in ``cache_dir/encoders`` and shared by
    every run that would train the same encoder on the same data (see
    :mod:`mmtutor.runs.pretrain`).

    Returns
    -------
    model : FusionModel
    pretrained : dict
        The report of :func:`~mmtutor.runs.pretrain_encoders` (empty without pretraining).
    """
    from mmtutor.models.fusion_model import build_fusion_model
    from mmtutor.utils import set_seed

    set_seed(config.seed)
    train = features.parts["train"]
    shapes = {"image": train["image"].shape[1:], "audio": train["audio"].shape[1:]}
    encoders = _build_encoders(config, shapes, features.vectorizer.vocab_size)
    pretrained = {}
    if config.pretrain == "auto" and frames is not None:
        val = None
        if "val" in features.parts:
            val = ({**features.inputs["val"], "mask": features.parts["val"]["mask"]}, frames["val"])
        clean = {**features.inputs["train"], "mask": train["mask"]}
        groups = [(encoders, clean, frames["train"])]
        if features.noisy:  # the noisy copies teach the audio encoder; the others train on the split as it is
            fit_inputs, _ = features.fit_inputs()
            groups = [({m: e for m, e in encoders.items() if m != "audio"}, clean, frames["train"]),
                      ({"audio": encoders["audio"]}, {**fit_inputs, "mask": _fit_mask(features)},
                       features.fit_frame(frames["train"]))]
        with quiet_tf_data() as stderr:
            for group, inputs, frame in groups:
                if group:
                    pretrained.update(pretrain_encoders(
                        group, inputs, frame, epochs=config.pretrain_epochs, batch_size=config.batch_size,
                        lr=config.pretrain_lr, seed=config.seed, val=val, log=stderr if progress else None,
                        cache_dir=cache_dir))
        pretrained = {m: pretrained[m] for m in encoders if m in pretrained}  # in the order text, image, audio
    set_seed(config.seed)
    model = build_fusion_model(encoders, config.fusion, num_classes, modality_dropout=config.modality_dropout,
                               hidden=config.hidden, dropout=config.dropout, lr=config.lr, seed=config.seed)
    return model, pretrained


def fit_model(model, features, config, num_classes, *, work, progress=False):
    """Fit with early stopping (best weights restored), a halving learning rate, class weights.

    Writes ``history.csv`` (and TensorBoard logs when the package is installed) into ``work``.

    Returns
    -------
    dict
        ``epochs_run``, ``best_epoch``, ``best_val_loss``, ``class_weights``, ``tensorboard``.
    """
    import keras

    weights = _class_weights(features.labels["train"], num_classes, config.class_weight)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, config.patience // 2),
                                          min_lr=config.lr / 64),
        keras.callbacks.CSVLogger(str(work / "history.csv")),
    ]
    tensorboard = _has_tensorboard()
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(work / "logs"), write_graph=False, profile_batch=0))
    with quiet_tf_data() as stderr:
        if progress:
            callbacks.append(_progress_callback(config.epochs, stderr))
        fit_inputs, fit_labels = features.fit_inputs()
        history = model.fit(fit_inputs, fit_labels,
                            validation_data=(features.inputs["val"], features.labels["val"]),
                            epochs=config.epochs, batch_size=config.batch_size, class_weight=weights, shuffle=True,
                            callbacks=callbacks, verbose=0)
    val_losses = history.history["val_loss"]
    best = int(np.argmin(val_losses)) + 1
    return {"epochs_run": len(val_losses), "best_epoch": best, "best_val_loss": float(val_losses[best - 1]),
            "class_weights": weights, "tensorboard": tensorboard}


def evaluate_splits(model, features, dataset, config, num_classes):
    """Metrics of the validation and test splits, and the prediction of every sample.

    Returns
    -------
    metrics : dict
        ``ceiling``, ``ceiling_key`` and per split (val, test) what :meth:`Run.evaluate` returns.
    rows : list of tuple
        ``(id, split, label, prob, pred)`` for every sample of every split.
    """
    ceiling = _ceiling(dataset.info, config.modalities)
    metrics = {"ceiling": ceiling, "ceiling_key": _ceiling_key(config.modalities)}
    rows = []
    for split, part in features.parts.items():
        prob = _probabilities(model, features.inputs[split], num_classes)
        pred = prob.argmax(axis=1)
        labels = features.labels[split]
        if split != "train":
            metrics[split] = _split_metrics(labels, pred, dataset.subset(split).frame, part["mask"], config.modalities,
                                            num_classes, ceiling)
        shown = prob[:, 1] if num_classes == 2 else prob[np.arange(len(pred)), pred]
        rows += [(i, split, int(y), float(p), int(c)) for i, y, p, c in zip(part["id"], labels, shown, pred)]
    return metrics, rows


def _run_config(config, features, dataset, fitted, classes):
    """The content of config.json."""
    import keras

    from mmtutor.preprocess.features import _data_identity

    identity = _data_identity(dataset)
    weights = fitted["class_weights"]
    return {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "mmtutor_version": mmtutor.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "modalities": config.modalities,
        "classes": classes,
        "knobs": config.knobs(),
        "class_weights": None if weights is None else {str(k): v for k, v in weights.items()},
        "preprocessing": {
            "image_size": list(config.image_size),
            "image_scale": "RGB / 255, in [0, 1]",
            "seq_len": features.vectorizer.seq_len,
            "vectorizer": features.vectorizer.get_config(),
            "audio": features.audio,
            "audio_norm": features.audio_norm,
        },
        "data": {
            "path": str(dataset.root),
            "content_hash": identity["content_hash"],
            "rows_hash": identity["rows"],
            "files_hash": identity["files"],
            "n": {s: int(len(dataset.subset(s))) for s in ("train", "val", "test")},
            "name": dataset.info.get("name"),
            "seed": dataset.info.get("seed"),
        },
        "environment": {"keras_backend": keras.backend.backend()},
        "tensorboard_logs": "logs" if fitted["tensorboard"] else None,
        "versions": _versions(),
    }


def train_run(data, out, config=None, *, cache_dir=None, overwrite=False, reuse=False, progress=False, **settings):
    """Train a fusion model on a dataset and write a complete run folder.

    Defined in the chapter on the sentiment project. Steps: read the dataset; extract features
    of every split (vocabulary fitted on the training split only; log-mel spectrograms
    standardised per mel band with training statistics); build one encoder per modality and
    :func:`~mmtutor.models.fusion_model.build_fusion_model`; train with the training split,
    early stopping on the validation loss (weights of the best epoch restored), the learning
    rate halved when the validation loss stalls for ``max(1, patience // 2)`` epochs, class
    weights, TensorBoard logs in ``out/logs`` (when the ``tensorboard`` package is installed;
    ``config.json`` records ``"tensorboard_logs": null`` otherwise) and the history in
    ``out/history.csv``; then
    evaluate on the validation and test splits and write the run folder (see the module
    docstring). The same seed and data give the same run on a CPU.

    Parameters
    ----------
    data : str, path or MultimodalDataset
        A dataset folder (``manifest.csv`` with train, val and test rows) or a loaded dataset.
    out : str or path
        The run folder; created if needed. It must be empty unless ``overwrite`` is True.
    config : RunConfig, optional
        All training settings at once; keyword settings (below, the fields of
        :class:`~mmtutor.runs.RunConfig`) build one, or change the given one. An unknown
        keyword is a TypeError.
    fusion : {"concat", "late", "attention", "tensor", "lowrank", "gated"}, default "concat"
    modalities : sequence of str or str, default ("text", "image", "audio")
        The modalities to use (a comma-separated string works too); kept in the order text,
        image, audio.
    epochs : int, default 20
        Maximum number of epochs (early stopping may end sooner).
    batch_size : int, default 32
    lr : float, default 1e-3
        Initial learning rate of Adam.
    seed : int, optional
        Seeds Python, NumPy, Keras and modality dropout (:func:`mmtutor.utils.set_seed`);
        None takes :func:`mmtutor.utils.global_seed` (``$MMTUTOR_SEED``, default 0).
    patience : int, default 4
        Epochs without improvement of the validation loss before stopping.
    class_weight : "balanced", None or dict, default "balanced"
        "balanced" weighs class ``k`` by ``n / (num_classes * n_k)`` on the training split.
    modality_dropout : float in [0, 1), default 0.0
        Hide each modality of each training sample with this probability (robustness to
        missing modalities).
    audio_noise : (float, float), optional
        Noise augmentation: train on the training split plus one copy of every sample that has
        a clip, with white noise added to the clip at an SNR drawn uniformly from this range
        in dB (:func:`noisy_copies`); pretraining sees the copies too. ``metrics.json`` records
        the number of copies as ``noisy_copies``.
    text_kind : {"bilstm", "gru", "transformer"}, default "gru"
    audio_kind : {"cnn", "crnn"}, default "cnn"
    image_size : (int, int), default (32, 32)
        The faces' expressions survive at 32x32 and training is four times cheaper than at 64.
    seq_len : int, default 24
        Token sequence length.
    audio : dict, optional
        Log-mel settings (see :data:`mmtutor.preprocess.AUDIO_DEFAULTS`), on top of
        :data:`TRAIN_AUDIO` (32 mel bands, hop of 320 samples = 20 ms at 16 kHz).
    image_filters, audio_filters : sequence of int, default (16, 32, 64)
        Channels of the convolution blocks of the image and audio encoders.
    embed_dim, units, dim, hidden : int, default 64
        Token embedding size, recurrent units, encoder output size, classifier width.
    dropout : float in [0, 1), default 0.1
    pretrain : {"auto", None}, default "auto"
        With ``"auto"``, each encoder whose modality has its own annotation in the manifest
        (:data:`ANNOTATIONS`: the text's literal polarity, what the face and the voice show) is
        first trained on it, for its ``pretrain_epochs`` with a cosine-decaying learning rate
        from ``pretrain_lr``, then frozen; the fusion model then learns only how to combine.
        This keeps what fusion needs, such as the sarcasm markers, which an encoder trained on
        the final label alone may drop (chapter on feature extraction). Modalities without an
        annotation, and every modality with ``None``, are trained end to end on the label.
    pretrain_epochs : int or dict of str -> int, optional
        Epochs of pretraining, one number for all or per modality; default
        :data:`PRETRAIN_EPOCHS` (text 20, image 20, audio 5: the voice is the easiest to read, as
        the fusion chapter found).
    pretrain_lr : float, default 3e-3
    cache_dir : str or path, optional
        Cache folder of features and of pretrained encoders (``cache_dir/encoders``, shared by
        every run that pretrains the same encoder on the same data); None caches nothing.
    overwrite : bool, default False
        Replace an existing run folder (only a folder that holds a run).
    reuse : bool, default False
        If ``out`` already holds a run trained with the same settings, on the same data (rows
        and content hash) and by the same mmtutor version, load and return it instead of
        training again; otherwise train and replace it (as with ``overwrite``). For chapters
        and scripts that need a run another one may already have trained.
    progress : bool, default False
        Progress bars for feature extraction and epochs.

    Returns
    -------
    Run
        The trained run (the same as ``load_run(out)`` would give).

    Raises
    ------
    ValueError
        For a bad argument, a dataset without train or val rows, or a bad file in it.
    FileExistsError
        If ``out`` is not empty and ``overwrite`` is False.

    Examples
    --------
    >>> from mmtutor.runs import train_run  # doctest: +SKIP
    >>> run = train_run("data/reviews", "runs/concat", fusion="concat", epochs=5)  # doctest: +SKIP
    >>> run.evaluate(split="test")["accuracy"]  # doctest: +SKIP
    0.93
    """
    if config is None:
        config = RunConfig(**settings)  # an unknown setting is a TypeError naming it
    elif not isinstance(config, RunConfig):
        raise TypeError(f"config must be a mmtutor.runs.RunConfig or None, got {type(config).__name__}")
    elif settings:
        config = config.replace(**settings)
    dataset = _as_dataset(data)
    for split in ("train", "val"):
        if len(dataset.subset(split)) == 0:
            raise ValueError(f"the dataset at {str(dataset.root)!r} has no {split!r} rows; train_run needs "
                             "train rows to fit on and val rows for early stopping")
    classes = dataset.classes
    if reuse:
        from mmtutor.preprocess.features import _audio_settings

        audio = _audio_settings({**TRAIN_AUDIO, **(config.audio or {})}, dict(dataset.info or {}))
        previous = _reusable_run(out, config.knobs(), config.modalities, classes, dataset,
                                 {"image_size": list(config.image_size), "seq_len": config.seq_len, "audio": audio})
        if previous is not None:
            return previous
    out = _check_out(out, overwrite or reuse, dataset)
    remove_stale(out.parent, re.escape(f".{out.name}.partial-") + r"(?P<pid>\d+)")  # left by killed runs
    work = out.parent / f".{out.name}.partial-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        from mmtutor.utils import set_seed

        start = time.perf_counter()
        set_seed(config.seed)
        features = prepare_features(dataset, config, cache_dir=cache_dir, progress=progress)
        frames = {s: dataset.subset(s).frame for s in ("train", "val")}
        model, pretrained = build_model(features, config, len(classes), frames=frames, progress=progress,
                                        cache_dir=cache_dir)
        fitted = fit_model(model, features, config, len(classes), work=work, progress=progress)
        seconds = time.perf_counter() - start
        metrics, rows = evaluate_splits(model, features, dataset, config, len(classes))
        metrics.update({k: fitted[k] for k in ("epochs_run", "best_epoch", "best_val_loss")})
        metrics.update({"seconds": round(seconds, 1), "pretrained": pretrained,
                        "noisy_copies": 0 if not features.noisy else int(features.noisy["rows"].size)})
        run_config = _run_config(config, features, dataset, fitted, classes)
        write_run_files(work, model=model, vectorizer=features.vectorizer, config=run_config, metrics=metrics,
                        predictions=rows)
        _move_into_place(work, out)
    finally:
        if work.exists():  # training failed or was interrupted: leave nothing half-written
            shutil.rmtree(work, ignore_errors=True)
    # The settings as config.json records them (audio settings complete), as load_run reads them.
    return Run(out, model, run_config, features.vectorizer, settings=RunConfig.from_run(run_config), metrics=metrics)


# ---------------------------------------------------------------------------------------------
# Pieces of the steps


def _build_encoders(config, shapes, vocab_size):
    from mmtutor.models.encoders import audio_encoder, image_encoder, text_encoder

    c = config
    sequence = c.fusion == "attention"  # attention fusion attends over the encoders' sequences
    encoders = {}
    if "text" in c.modalities:
        encoders["text"] = text_encoder(vocab_size, c.seq_len, kind=c.text_kind, embed_dim=c.embed_dim, units=c.units,
                                        dim=c.dim, dropout=c.dropout, return_sequence=sequence, name="text_encoder")
    if "image" in c.modalities:
        encoders["image"] = image_encoder(shapes["image"], filters=c.image_filters, dim=c.dim, dropout=c.dropout,
                                          return_sequence=sequence, name="image_encoder")
    if "audio" in c.modalities:
        encoders["audio"] = audio_encoder(shapes["audio"], kind=c.audio_kind, filters=c.audio_filters, units=c.units,
                                          dim=c.dim, dropout=c.dropout, return_sequence=sequence, name="audio_encoder")
    return encoders


def _fit_mask(features):
    mask = features.parts["train"]["mask"]
    return mask if not features.noisy else np.concatenate([mask, features.noisy["mask"]])


def _class_weights(labels, num_classes, class_weight):
    if class_weight is None:
        return None
    if class_weight == "balanced":
        counts = np.bincount(labels, minlength=num_classes).astype(float)
        if (counts == 0).any():
            missing = [int(k) for k in np.flatnonzero(counts == 0)]
            raise ValueError(f"the training split has no samples of class(es) {missing}; cannot balance classes")
        return {k: float(len(labels) / (num_classes * counts[k])) for k in range(num_classes)}
    if isinstance(class_weight, dict):
        keys = sorted(class_weight)
        if keys != list(range(num_classes)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in class_weight.values()):
            raise ValueError(
                f"class_weight as a dict must map each class 0..{num_classes - 1} to a positive number, "
                f"got {class_weight!r}"
            )
        return {int(k): float(v) for k, v in class_weight.items()}
    raise ValueError(f"class_weight must be 'balanced', None or a dict class -> weight, got {class_weight!r}")


def _has_tensorboard():
    """Whether the ``tensorboard`` package (which TensorBoard logging needs) is installed."""
    try:
        metadata.version("tensorboard")
    except metadata.PackageNotFoundError:
        return False
    return True


def _progress_callback(epochs, file):
    import keras
    from tqdm.auto import tqdm

    class EpochBar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, desc="train", unit="epoch", file=file)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            shown = {k: f"{logs[k]:.3f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs}
            self.bar.set_postfix(shown)
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return EpochBar()
