"""Training runs: train a fusion model into a run folder, load it back, predict and evaluate.

Defined in the chapter on the sentiment project ("Multimodal sentiment analysis, end to end").

:func:`train_run` does the whole project in one call: it reads a dataset, extracts features
(the text vocabulary fitted on the training split only), builds one encoder per modality,
pretrains each encoder on its modality's own annotation where the data has one (then freezes
it, so that it keeps the cues fusion needs), builds a fusion model, trains it with early stopping on the validation loss (best weights restored), a
learning rate that halves when the validation loss stalls, class weights, seeds, TensorBoard
logs and a CSV history, and writes everything a later user needs into one folder::

    RUN/
      config.json       every knob, preprocessing settings, data identity, package versions
      model.keras       the trained model (best epoch)
      vectorizer.json   the text vocabulary (fitted on the training split)
      history.csv       loss and accuracy per epoch (keras.callbacks.CSVLogger)
      metrics.json      validation and test accuracy, F1, subsets, the Bayes ceiling
      predictions.csv   id, split, label, prob, pred for every sample
      logs/             TensorBoard event files (if the tensorboard package is installed)

:func:`load_run` reads such a folder back into a :class:`Run`, which predicts from raw inputs
(texts, image files, audio files; any subset of the modalities, absent ones masked) and
evaluates on a dataset, with no other input.
"""

import csv
import json
import os
import shutil
import time
from importlib import metadata
from pathlib import Path

import numpy as np

import mmtutor
from mmtutor._quiet import quiet_tf_data
from mmtutor.data.manifest import MODALITIES, MultimodalDataset, load_manifest

__all__ = ["RUN_FORMAT", "RUN_FORMAT_VERSION", "RUN_FILES", "RunError", "Run", "train_run", "load_run"]

#: The ``format`` entry of a run's ``config.json``.
RUN_FORMAT = "mmtutor-run"
#: The version of the run-folder layout this mmtutor writes and reads.
RUN_FORMAT_VERSION = 1
#: Files every run folder holds (``logs/`` is optional for loading).
RUN_FILES = ("config.json", "model.keras", "vectorizer.json", "history.csv", "metrics.json", "predictions.csv")
# Files load_run needs to predict and evaluate.
_NEEDED = ("config.json", "model.keras", "vectorizer.json")
_INPUT_NAMES = {"text": "texts", "image": "image_paths", "audio": "audio_paths"}
_VERSION_PACKAGES = ("mmtutor", "keras", "tensorflow", "tensorflow-cpu", "jax", "numpy", "librosa",
                     "opencv-python-headless", "scikit-learn", "soundfile")


class RunError(ValueError):
    """A run folder that cannot be used: missing files, another mmtutor version, a bad config.

    The message names the folder and what is wrong.
    """


# ---------------------------------------------------------------------------------------------
# Checks (errors name the argument, the value received and what was expected)


def _check_int(name, value, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(name, value, low, high, *, low_open=False, high_open=True):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    ok = ok and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lb, rb = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be a number in {lb}{low}, {high}{rb}, got {value!r}")
    return float(value)


def _check_modalities(modalities):
    if isinstance(modalities, str):
        modalities = [m.strip() for m in modalities.split(",") if m.strip()]
    try:
        modalities = list(modalities)
    except TypeError:
        raise ValueError(f"modalities must be a list of names from {list(MODALITIES)}, got {modalities!r}") from None
    bad = [m for m in modalities if m not in MODALITIES]
    if not modalities or bad or len(set(modalities)) != len(modalities):
        raise ValueError(
            f"modalities must be distinct names from {list(MODALITIES)} (at least one), got {modalities!r}"
        )
    return [m for m in MODALITIES if m in modalities]  # the dataset's order: text, image, audio


def _as_dataset(data, name="data"):
    if isinstance(data, MultimodalDataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_manifest(data)
    raise TypeError(
        f"{name} must be a dataset folder (str or path) or a mmtutor.data.MultimodalDataset, "
        f"got {type(data).__name__}"
    )


def _versions():
    out = {}
    for name in _VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _ceiling_key(modalities):
    return "all" if list(modalities) == list(MODALITIES) else "+".join(modalities)


def _ceiling(info, modalities):
    ceilings = (info or {}).get("ceilings") or {}
    value = ceilings.get(_ceiling_key(modalities))
    return None if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# Model inputs and metrics shared by training, prediction and evaluation


def _standardize_audio(audio, present, norm):
    """Standardise log-mel spectrograms per mel band with the training statistics."""
    mean = np.asarray(norm["mean"], dtype=np.float32)
    std = np.asarray(norm["std"], dtype=np.float32)
    out = (audio - mean) / std
    out[~present] = 0.0  # a missing clip: a neutral value (the mask hides it anyway)
    return out.astype(np.float32)


def _model_inputs(arrays, modalities, audio_norm):
    """Dict of model inputs (one array per modality, plus the mask) from feature arrays."""
    mask = np.asarray(arrays["mask"], dtype=bool)
    inputs = {}
    for m in modalities:
        x = arrays[m]
        if m == "audio":
            x = _standardize_audio(x, mask[:, MODALITIES.index("audio")], audio_norm)
        inputs[m] = x
    inputs["mask"] = mask[:, [MODALITIES.index(m) for m in modalities]].astype(np.float32)
    return inputs


def _probabilities(model, inputs, num_classes, batch_size=64):
    """Class probabilities (n, num_classes) of a fusion model."""
    with quiet_tf_data():
        out = np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float64)
    if num_classes == 2:
        p1 = out.reshape(-1)
        return np.stack([1.0 - p1, p1], axis=1)
    return out


def _scores(labels, pred, num_classes):
    from mmtutor.metrics import accuracy, f1_score

    average = "binary" if num_classes == 2 else "macro"
    return {
        "accuracy": float(accuracy(labels, pred)),
        "f1": float(f1_score(labels, pred, average=average, labels=list(range(num_classes)),
                             zero_division=0.0)),
        "n": int(len(labels)),
    }


def _subset_flags(frame, mask, modalities):
    """Boolean rows of the subsets the data marks: sarcastic, missing_modality."""
    flags = {}
    if "sarcastic" in frame.columns:
        import pandas as pd

        values = pd.to_numeric(frame["sarcastic"].replace({"True": 1, "False": 0}), errors="coerce")
        flags["sarcastic"] = values.fillna(0).to_numpy() != 0
    cols = [MODALITIES.index(m) for m in modalities]
    flags["missing_modality"] = ~np.asarray(mask, dtype=bool)[:, cols].all(axis=1)
    return flags


def _split_metrics(labels, pred, frame, mask, modalities, num_classes, ceiling):
    result = _scores(labels, pred, num_classes)
    result["subsets"] = {
        name: _scores(labels[rows], pred[rows], num_classes)
        for name, rows in _subset_flags(frame, mask, modalities).items() if rows.any()
    }
    if ceiling is not None:
        result["ceiling"] = ceiling
    return result


# ---------------------------------------------------------------------------------------------
# The run object


class Run:
    """A trained run: the model, its preprocessing state and its configuration.

    Defined in the chapter on the sentiment project. Made by :func:`train_run` and
    :func:`load_run`; it needs nothing but the run folder to predict.

    Attributes
    ----------
    path : pathlib.Path
        The run folder.
    model : mmtutor.models.fusion_model.FusionModel
        The trained Keras model.
    config : dict
        The content of ``config.json``.
    vectorizer : mmtutor.preprocess.TextVectorizer
        The vocabulary fitted on the training split.
    """

    def __init__(self, path, model, config, vectorizer):
        self.path = Path(path)
        self.model = model
        self.config = config
        self.vectorizer = vectorizer

    def __repr__(self):
        return (f"Run({str(self.path)!r}: fusion={self.config['knobs']['fusion']!r}, "
                f"modalities={self.modalities})")

    @property
    def modalities(self):
        """list of str: the modalities the model was trained on."""
        return list(self.config["modalities"])

    @property
    def classes(self):
        """list of str: class names, index = label."""
        return list(self.config["classes"])

    # -- prediction from raw inputs -----------------------------------------------------------

    def _collect(self, texts, image_paths, audio_paths):
        given = {"text": texts, "image": image_paths, "audio": audio_paths}
        given = {m: v for m, v in given.items() if v is not None}
        if not given:
            raise ValueError(
                f"give at least one of texts, image_paths, audio_paths (this run uses {self.modalities})"
            )
        refused = [m for m in given if m not in self.modalities]
        if refused:
            names = ", ".join(_INPUT_NAMES[m] for m in refused)
            raise ValueError(
                f"run {str(self.path)!r} was trained on the modalities {self.modalities} only; it cannot "
                f"use {names}. Leave {'it' if len(refused) == 1 else 'them'} out."
            )
        lists, n = {}, None
        for m, value in given.items():
            arg = _INPUT_NAMES[m]
            if isinstance(value, (str, os.PathLike)):
                value = [value]
            try:
                value = list(value)
            except TypeError:
                raise TypeError(f"{arg} must be a string or a list of strings, got {type(value).__name__}") from None
            for i, v in enumerate(value):
                if v is not None and not isinstance(v, (str, os.PathLike)):
                    raise TypeError(f"{arg}[{i}] must be a string (or None / '' for a missing one), got {v!r}")
            value = ["" if v is None else os.fspath(v) for v in value]
            if n is not None and len(value) != n:
                raise ValueError(f"{arg} has {len(value)} entries but the other inputs have {n}")
            n = len(value)
            lists[m] = value
        if n == 0:
            raise ValueError("the inputs are empty lists: nothing to predict")
        return lists, n

    def inputs(self, texts=None, image_paths=None, audio_paths=None):
        """Preprocess raw inputs exactly as in training, into the model's input dict.

        Parameters
        ----------
        texts, image_paths, audio_paths : str or list of str, optional
            As for :meth:`predict`.

        Returns
        -------
        dict
            One array per modality of the run, plus ``"mask"`` (n, M) float32.
        """
        from mmtutor.preprocess import load_audio, load_images, log_mel

        lists, n = self._collect(texts, image_paths, audio_paths)
        prep = self.config["preprocessing"]
        height, width = prep["image_size"]
        settings = prep["audio"]
        frames = 1 + int(round(settings["sr"] * settings["seconds"])) // settings["hop_length"]
        mask = np.zeros((n, len(MODALITIES)), dtype=bool)
        arrays = {
            "text": np.zeros((n, self.vectorizer.seq_len), dtype=np.int32),
            "image": np.zeros((n, height, width, 3), dtype=np.float32),
            "audio": np.zeros((n, frames, settings["n_mels"]), dtype=np.float32),
        }
        if "text" in lists:
            present = [i for i, t in enumerate(lists["text"]) if t.strip()]
            if present:
                arrays["text"][present] = self.vectorizer.transform([lists["text"][i] for i in present])
                mask[present, 0] = True
        if "image" in lists:
            arrays["image"], mask[:, 1] = load_images(lists["image"], (height, width))
        if "audio" in lists:
            present = [i for i, p in enumerate(lists["audio"]) if p]
            if present:
                waves = np.stack([load_audio(lists["audio"][i], sr=settings["sr"], seconds=settings["seconds"])
                                  for i in present])
                mel = {k: settings[k] for k in ("sr", "n_fft", "hop_length", "n_mels")}
                arrays["audio"][present] = log_mel(waves, **mel)
                mask[present, 2] = True
        used = mask[:, [MODALITIES.index(m) for m in self.modalities]]
        empty = np.flatnonzero(~used.any(axis=1))
        if empty.size:
            raise ValueError(
                f"sample {int(empty[0])} has none of the modalities {self.modalities}: give a non-empty "
                "text, an image path or an audio path"
            )
        arrays["mask"] = mask
        return _model_inputs(arrays, self.modalities, prep["audio_norm"])

    def predict(self, texts=None, image_paths=None, audio_paths=None, *, batch_size=64):
        """Class probabilities for raw inputs; any subset of the run's modalities.

        Defined in the chapter on the sentiment project. Inputs are preprocessed with the run's
        own settings and vocabulary. A modality that is not given (or an empty text, a ``""``
        or None path for one sample) is masked: the model predicts from the others.

        Parameters
        ----------
        texts : str or list of str, optional
            Review texts.
        image_paths : str or list of str, optional
            Image files (any format OpenCV reads).
        audio_paths : str or list of str, optional
            Audio files (WAV, FLAC, ...).
        batch_size : int, default 64

        Returns
        -------
        numpy.ndarray
            float64, shape ``(n, num_classes)``: column ``k`` is the probability of class
            ``k`` (:attr:`classes`); rows sum to 1.

        Raises
        ------
        ValueError
            For an input of a modality the run was not trained on, inputs of different lengths,
            a sample with no modality, or an unreadable file (the message names it).
        FileNotFoundError
            For a path that does not exist.

        Examples
        --------
        >>> from mmtutor.train import load_run  # doctest: +SKIP
        >>> run = load_run("runs/concat")  # doctest: +SKIP
        >>> run.predict(texts=["The soup was money well spent."]).shape  # doctest: +SKIP
        (1, 2)
        """
        inputs = self.inputs(texts, image_paths, audio_paths)
        return _probabilities(self.model, inputs, len(self.classes), _check_int("batch_size", batch_size))

    # -- evaluation on a dataset --------------------------------------------------------------

    def features(self, dataset, *, cache_dir=None, progress=False):
        """Extract a dataset's features with the run's settings and vocabulary.

        Defined in the chapter on the sentiment project.

        Parameters
        ----------
        dataset : MultimodalDataset
        cache_dir : str or path, optional
            Feature cache folder.
        progress : bool, default False

        Returns
        -------
        dict
            As from :func:`mmtutor.preprocess.extract_features` (image size, log-mel settings
            and vocabulary of the run).
        """
        from mmtutor.preprocess import extract_features

        prep = self.config["preprocessing"]
        return extract_features(dataset, image_size=tuple(prep["image_size"]), vectorizer=self.vectorizer,
                                audio=prep["audio"], cache_dir=cache_dir, progress=progress)

    def evaluate(self, dataset=None, split="test", *, cache_dir=None, progress=False):
        """Accuracy and F1 of the run on one split of a dataset, overall and on subsets.

        Defined in the chapter on the sentiment project.

        Parameters
        ----------
        dataset : str, path or MultimodalDataset, optional
            Default: the dataset the run was trained on (its path is in ``config.json``).
        split : {"train", "val", "test", "all"}, default "test"
        cache_dir : str or path, optional
            Feature cache folder (see :func:`mmtutor.preprocess.extract_features`).
        progress : bool, default False

        Returns
        -------
        dict
            ``accuracy``, ``f1`` (binary F1 of class 1, macro F1 for more classes), ``n``,
            ``split``; ``subsets`` with the same three numbers for ``sarcastic`` samples (when
            the manifest has a ``sarcastic`` column) and ``missing_modality`` samples (missing at
            least one of the run's modalities), each present only when it has samples;
            ``ceiling`` (the Bayes-optimal accuracy for the run's modalities, from
            ``dataset.json``) when known.

        Examples
        --------
        >>> run.evaluate(split="test")["accuracy"]  # doctest: +SKIP
        0.93
        """
        if dataset is None:
            dataset = self.config["data"]["path"]
            if not Path(dataset).exists():
                raise ValueError(
                    f"the dataset this run was trained on is no longer at {dataset!r}; pass dataset=..."
                )
        dataset = _as_dataset(dataset, "dataset")
        if split != "all":
            dataset = dataset.subset(split)  # checks the name
        if len(dataset) == 0:
            raise ValueError(f"the dataset has no {split!r} rows to evaluate on")
        labels = np.asarray(dataset.labels)
        k = len(self.classes)
        if labels.max() >= k:
            raise ValueError(f"the dataset has label {int(labels.max())}, but this run knows {k} classes {self.classes}")
        feats = self.features(dataset, cache_dir=cache_dir, progress=progress)
        inputs = _model_inputs(feats, self.modalities, self.config["preprocessing"]["audio_norm"])
        pred = _probabilities(self.model, inputs, k).argmax(axis=1)
        result = _split_metrics(labels, pred, dataset.frame, feats["mask"], self.modalities, k,
                                _ceiling(dataset.info, self.modalities))
        return {"split": split, **result}


# ---------------------------------------------------------------------------------------------
# Training


#: Per-modality annotations a dataset may carry (columns of its manifest): what each modality
#: says on its own. The spoken reviews have them; with ``pretrain="auto"`` an encoder whose
#: column is present is pretrained on it before fusion (see :func:`train_run`).
ANNOTATIONS = {"text": "literal", "image": "image_shows", "audio": "audio_shows"}
#: Default pretraining epochs per modality (see :func:`train_run`).
PRETRAIN_EPOCHS = {"text": 20, "image": 20, "audio": 5}
#: Log-mel settings of a run unless told otherwise: 32 bands, 20 ms hop (151 frames for 3 s).
TRAIN_AUDIO = {"n_mels": 32, "hop_length": 320}


def _build_encoders(modalities, shapes, vocab_size, seq_len, *, fusion, text_kind, audio_kind, image_filters,
                    audio_filters, embed_dim, units, dim, dropout, **_):
    from mmtutor.models.encoders import audio_encoder, image_encoder, text_encoder

    sequence = fusion == "attention"  # attention fusion attends over the encoders' sequences
    encoders = {}
    if "text" in modalities:
        encoders["text"] = text_encoder(vocab_size, seq_len, kind=text_kind, embed_dim=embed_dim, units=units,
                                        dim=dim, dropout=dropout, return_sequence=sequence, name="text_encoder")
    if "image" in modalities:
        encoders["image"] = image_encoder(shapes["image"], filters=image_filters, dim=dim, dropout=dropout,
                                          return_sequence=sequence, name="image_encoder")
    if "audio" in modalities:
        encoders["audio"] = audio_encoder(shapes["audio"], kind=audio_kind, filters=audio_filters, units=units,
                                          dim=dim, dropout=dropout, return_sequence=sequence, name="audio_encoder")
    return encoders


def _annotation_targets(frame, modality, present):
    """Integer targets of a modality's own annotation on the rows where it is present, or None."""
    column = ANNOTATIONS[modality]
    if column not in frame.columns:
        return None, None
    values = frame[column].to_numpy()[present]
    text = np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values])
    if (text == "").any():
        return None, None
    names = sorted(set(text))
    if len(names) < 2:
        return None, None
    return np.array([names.index(v) for v in text]), names


def _pretrain_encoders(encoders, parts, inputs, frames, modalities, *, epochs, batch_size, lr, seed, stderr):
    """Train each encoder (plus a softmax layer) on its modality's annotation; freeze it.

    Returns a dict modality -> {"column", "classes", "val_accuracy", "seconds"} for the encoders
    that were pretrained (a modality without an annotation column is left as it is).
    """
    import keras

    from mmtutor.utils import set_seed

    report = {}
    for modality in modalities:
        j = MODALITIES.index(modality)
        present = {s: parts[s]["mask"][:, j] for s in ("train", "val")}
        y_train, names = _annotation_targets(frames["train"], modality, present["train"])
        if y_train is None:
            continue
        y_val, val_names = _annotation_targets(frames["val"], modality, present["val"])
        start = time.perf_counter()
        set_seed(int(seed))
        encoder = encoders[modality]
        x = keras.Input(encoder.inputs[0].shape[1:], dtype=encoder.inputs[0].dtype)
        out = encoder(x)
        pooled = out[0] if isinstance(out, (list, tuple)) else out
        probe = keras.Model(x, keras.layers.Dense(len(names), activation="softmax")(pooled))
        steps = epochs[modality] * int(np.ceil(present["train"].sum() / batch_size))
        probe.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps)),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        x_train = inputs["train"][modality][present["train"]]
        probe.fit(x_train, y_train, epochs=epochs[modality], batch_size=batch_size, shuffle=True, verbose=0)
        val_accuracy = None
        if y_val is not None and present["val"].any() and set(val_names) <= set(names):
            y_val = np.array([names.index(val_names[k]) for k in y_val])
            prob = probe.predict(inputs["val"][modality][present["val"]], verbose=0)
            val_accuracy = float(np.mean(prob.argmax(axis=1) == y_val))
        encoder.trainable = False
        report[modality] = {"column": ANNOTATIONS[modality], "classes": names, "epochs": epochs[modality],
                            "val_accuracy": val_accuracy, "seconds": round(time.perf_counter() - start, 1)}
        if stderr is not None:
            shown = "n/a" if val_accuracy is None else f"{val_accuracy:.3f}"
            print(f"pretrained the {modality} encoder on {ANNOTATIONS[modality]!r} ({len(names)} classes): "
                  f"validation accuracy {shown}", file=stderr)
    return report


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


def _reusable_run(out, knobs, modalities, classes, dataset, preprocessing):
    """The run in ``out`` if it was trained with exactly these settings and data, else None."""
    from mmtutor.preprocess.features import _data_identity

    try:
        run = load_run(out)
    except (RunError, TypeError, OSError, ValueError):
        return None
    config = run.config
    identity = _data_identity(dataset)
    saved_pre = config.get("preprocessing", {})
    same = (
        config.get("mmtutor_version") == mmtutor.__version__
        and json.loads(json.dumps(knobs)) == config.get("knobs")
        and config.get("modalities") == list(modalities)
        and config.get("classes") == list(classes)
        and config.get("data", {}).get("content_hash") == identity["content_hash"]
        and config.get("data", {}).get("rows_hash") == identity["rows"]
        and saved_pre.get("image_size") == preprocessing["image_size"]
        and saved_pre.get("audio") == json.loads(json.dumps(preprocessing["audio"]))
        and saved_pre.get("vectorizer", {}).get("seq_len", preprocessing["seq_len"]) == preprocessing["seq_len"]
    )
    return run if same else None


def _check_out(out, overwrite):
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise ValueError(f"out must be a folder path, got {out!r}")
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"run folder {str(out)!r} is not empty; pass overwrite=True (--overwrite) to replace it")
        if not (out / "config.json").is_file():
            raise FileExistsError(
                f"refusing to overwrite {str(out)!r}: it is not empty and holds no run (no config.json)"
            )
    return out


def _move_into_place(work, out):
    """Replace ``out`` by the finished run in ``work`` (a reader never sees half a run)."""
    if out.is_dir():
        shutil.rmtree(out)  # _check_out allowed it: empty, or a run with overwrite=True
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work, out)


def train_run(data, out, *, fusion="concat", modalities=("text", "image", "audio"), epochs=20, batch_size=32,
              lr=1e-3, seed=None, patience=4, class_weight="balanced", modality_dropout=0.0, text_kind="gru",
              audio_kind="cnn", image_size=(32, 32), seq_len=24, audio=None, image_filters=(16, 32, 64),
              audio_filters=(16, 32, 64), embed_dim=64, units=64, dim=64, hidden=64, dropout=0.1,
              pretrain="auto", pretrain_epochs=None, pretrain_lr=3e-3, cache_dir=None, overwrite=False,
              reuse=False, progress=False):
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
        Feature cache folder; None computes features without caching.
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
    >>> from mmtutor.train import train_run  # doctest: +SKIP
    >>> run = train_run("data/reviews", "runs/concat", fusion="concat", epochs=5)  # doctest: +SKIP
    >>> run.evaluate(split="test")["accuracy"]  # doctest: +SKIP
    0.93
    """
    import keras

    from mmtutor.models.encoders import AUDIO_KINDS, TEXT_KINDS
    from mmtutor.models.fusion_model import FUSION_NAMES, build_fusion_model
    from mmtutor.preprocess import extract_features
    from mmtutor.preprocess._checks import check_size
    from mmtutor.preprocess.features import _audio_settings, _data_identity
    from mmtutor.utils import set_seed

    # -- check every argument before any work --------------------------------------------------
    if fusion not in FUSION_NAMES:
        raise ValueError(f"fusion must be one of {list(FUSION_NAMES)}, got {fusion!r}")
    modalities = _check_modalities(modalities)
    if fusion == "attention" and len(modalities) < 2:
        raise ValueError(f"fusion='attention' needs at least two modalities, got {modalities}")
    if text_kind not in TEXT_KINDS:
        raise ValueError(f"text_kind must be one of {list(TEXT_KINDS)}, got {text_kind!r}")
    if audio_kind not in AUDIO_KINDS:
        raise ValueError(f"audio_kind must be one of {list(AUDIO_KINDS)}, got {audio_kind!r}")
    epochs = _check_int("epochs", epochs)
    batch_size = _check_int("batch_size", batch_size)
    patience = _check_int("patience", patience)
    seq_len = _check_int("seq_len", seq_len)
    image_size = check_size("image_size", image_size)
    lr = _check_float("lr", lr, 0.0, 1.0, low_open=True, high_open=False)
    modality_dropout = _check_float("modality_dropout", modality_dropout, 0.0, 1.0)
    dropout = _check_float("dropout", dropout, 0.0, 1.0)
    if pretrain not in ("auto", None):
        raise ValueError(f"pretrain must be 'auto' or None, got {pretrain!r}")
    if pretrain_epochs is None:
        pretrain_epochs = dict(PRETRAIN_EPOCHS)
    elif isinstance(pretrain_epochs, dict):
        unknown = sorted(set(pretrain_epochs) - set(MODALITIES))
        if unknown:
            raise ValueError(f"pretrain_epochs has unknown modalities {unknown}; allowed: {list(MODALITIES)}")
        pretrain_epochs = {**PRETRAIN_EPOCHS, **pretrain_epochs}
    else:
        pretrain_epochs = dict.fromkeys(MODALITIES, pretrain_epochs)
    pretrain_epochs = {m: _check_int(f"pretrain_epochs[{m!r}]", v) for m, v in pretrain_epochs.items()}
    pretrain_lr = _check_float("pretrain_lr", pretrain_lr, 0.0, 1.0, low_open=True, high_open=False)
    if seed is None:
        from mmtutor.utils import global_seed

        seed = global_seed()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    sizes = {name: _check_int(name, v) for name, v in
             (("embed_dim", embed_dim), ("units", units), ("dim", dim), ("hidden", hidden))}
    dataset = _as_dataset(data)
    if not (class_weight is None or class_weight == "balanced" or isinstance(class_weight, dict)):
        raise ValueError(f"class_weight must be 'balanced', None or a dict class -> weight, got {class_weight!r}")
    for split in ("train", "val"):
        if len(dataset.subset(split)) == 0:
            raise ValueError(f"the dataset at {str(dataset.root)!r} has no {split!r} rows; train_run needs "
                             "train rows to fit on and val rows for early stopping")
    settings = _audio_settings({**TRAIN_AUDIO, **(audio or {})}, dict(dataset.info or {}))
    classes = dataset.classes
    num_classes = len(classes)
    knobs_record = {
        "fusion": fusion, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": int(seed),
        "patience": patience, "class_weight": class_weight, "modality_dropout": modality_dropout,
        "text_kind": text_kind, "audio_kind": audio_kind, "image_filters": list(image_filters),
        "audio_filters": list(audio_filters), "dropout": dropout, **sizes,
        "pretrain": pretrain, "pretrain_epochs": pretrain_epochs, "pretrain_lr": pretrain_lr,
        "early_stopping": {"monitor": "val_loss", "restore_best_weights": True},
        "lr_schedule": {"kind": "ReduceLROnPlateau", "monitor": "val_loss", "factor": 0.5,
                        "patience": max(1, patience // 2), "min_lr": lr / 64},
    }
    if reuse:
        previous = _reusable_run(out, knobs_record, modalities, classes, dataset,
                                 {"image_size": list(image_size), "seq_len": seq_len, "audio": settings})
        if previous is not None:
            return previous
    out = _check_out(out, overwrite or reuse)
    work = out.parent / f".{out.name}.partial-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        start = time.perf_counter()

        # -- features: vocabulary from the training split, reused for val and test ----------------
        set_seed(int(seed))
        parts = {}
        vectorizer = None
        for split in ("train", "val", "test"):
            subset = dataset.subset(split)
            if len(subset) == 0:
                continue
            parts[split] = extract_features(subset, image_size=image_size, seq_len=None if vectorizer else seq_len,
                                            vectorizer=vectorizer, audio=settings, cache_dir=cache_dir,
                                            progress=progress)
            vectorizer = parts[split]["vectorizer"]
        train_mask = parts["train"]["mask"][:, MODALITIES.index("audio")]
        train_audio = parts["train"]["audio"][train_mask] if train_mask.any() else parts["train"]["audio"]
        audio_norm = {
            "mean": train_audio.mean(axis=(0, 1)).astype(float).tolist(),
            "std": np.maximum(train_audio.std(axis=(0, 1)), 1e-3).astype(float).tolist(),
        }
        inputs = {s: _model_inputs(p, modalities, audio_norm) for s, p in parts.items()}
        labels = {s: p["label"] for s, p in parts.items()}
        weights = _class_weights(labels["train"], num_classes, class_weight)

        # -- model and training ---------------------------------------------------------------------
        set_seed(int(seed))
        shapes = {"image": parts["train"]["image"].shape[1:], "audio": parts["train"]["audio"].shape[1:]}
        knobs = dict(fusion=fusion, text_kind=text_kind, audio_kind=audio_kind, image_filters=tuple(image_filters),
                     audio_filters=tuple(audio_filters), dropout=dropout, **sizes)
        encoders = _build_encoders(modalities, shapes, vectorizer.vocab_size, vectorizer.seq_len, **knobs)
        pretrained = {}
        if pretrain == "auto":
            frames = {s: dataset.subset(s).frame for s in ("train", "val")}
            with quiet_tf_data() as stderr:
                pretrained = _pretrain_encoders(encoders, parts, inputs, frames, modalities, epochs=pretrain_epochs,
                                                batch_size=batch_size, lr=pretrain_lr, seed=int(seed),
                                                stderr=stderr if progress else None)
        set_seed(int(seed))
        model = build_fusion_model(encoders, fusion, num_classes, modality_dropout=modality_dropout, hidden=hidden,
                                   dropout=dropout, lr=lr, seed=int(seed))
        early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        callbacks = [
            early,
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, patience // 2),
                                              min_lr=lr / 64),
            keras.callbacks.CSVLogger(str(work / "history.csv")),
        ]
        tensorboard = _has_tensorboard()
        if tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(work / "logs"), write_graph=False, profile_batch=0))
        with quiet_tf_data() as stderr:
            if progress:
                callbacks.append(_progress_callback(epochs, stderr))
            history = model.fit(inputs["train"], labels["train"], validation_data=(inputs["val"], labels["val"]),
                                epochs=epochs, batch_size=batch_size, class_weight=weights, shuffle=True,
                                callbacks=callbacks, verbose=0)
        val_losses = history.history["val_loss"]
        best_epoch = int(np.argmin(val_losses)) + 1
        train_seconds = time.perf_counter() - start

        # -- evaluation and the run folder ------------------------------------------------------------
        ceiling = _ceiling(dataset.info, modalities)
        metrics = {"ceiling": ceiling, "ceiling_key": _ceiling_key(modalities)}
        rows = []
        for split, part in parts.items():
            prob = _probabilities(model, inputs[split], num_classes)
            pred = prob.argmax(axis=1)
            frame = dataset.subset(split).frame
            if split != "train":
                metrics[split] = _split_metrics(labels[split], pred, frame, part["mask"], modalities, num_classes,
                                                ceiling)
            shown = prob[:, 1] if num_classes == 2 else prob[np.arange(len(pred)), pred]
            rows += [(i, split, int(y), float(p), int(c)) for i, y, p, c in zip(part["id"], labels[split], shown, pred)]
        metrics.update({"epochs_run": len(val_losses), "best_epoch": best_epoch,
                        "best_val_loss": float(val_losses[best_epoch - 1]), "seconds": round(train_seconds, 1),
                        "pretrained": pretrained})

        model.save(work / "model.keras")
        vectorizer.save(work / "vectorizer.json")
        with open(work / "predictions.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "split", "label", "prob", "pred"])
            writer.writerows((i, s, y, repr(p), c) for i, s, y, p, c in rows)
        (work / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        identity = _data_identity(dataset)
        config = {
            "format": RUN_FORMAT,
            "format_version": RUN_FORMAT_VERSION,
            "mmtutor_version": mmtutor.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "modalities": modalities,
            "classes": classes,
            "knobs": knobs_record,
            "class_weights": None if weights is None else {str(k): v for k, v in weights.items()},
            "preprocessing": {
                "image_size": list(image_size),
                "image_scale": "RGB / 255, in [0, 1]",
                "seq_len": vectorizer.seq_len,
                "vectorizer": vectorizer.get_config(),
                "audio": settings,
                "audio_norm": audio_norm,
            },
            "data": {
                "path": str(dataset.root),
                "content_hash": identity["content_hash"],
                "rows_hash": identity["rows"],
                "n": {s: int(len(dataset.subset(s))) for s in ("train", "val", "test")},
                "name": dataset.info.get("name"),
                "seed": dataset.info.get("seed"),
            },
            "environment": {"keras_backend": keras.backend.backend()},
            "tensorboard_logs": "logs" if tensorboard else None,
            "versions": _versions(),
        }
        (work / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        _move_into_place(work, out)
    finally:
        if work.exists():  # training failed or was interrupted: leave nothing half-written
            shutil.rmtree(work, ignore_errors=True)
    return Run(out, model, config, vectorizer)


# ---------------------------------------------------------------------------------------------
# Loading


def load_run(path):
    """Load a run folder written by :func:`train_run`.

    Defined in the chapter on the sentiment project.

    Parameters
    ----------
    path : str or path
        The run folder.

    Returns
    -------
    Run

    Raises
    ------
    RunError
        If the folder does not exist, lacks a file, has an unreadable ``config.json`` or model,
        or was written by another mmtutor version (the message names the folder and the problem).

    Examples
    --------
    >>> from mmtutor.train import load_run  # doctest: +SKIP
    >>> run = load_run("runs/concat")  # doctest: +SKIP
    >>> run.predict(texts="What a lovely place.", image_paths="face.png")  # doctest: +SKIP
    array([[0.04, 0.96]])
    """
    from mmtutor.models.fusion_model import load_fusion_model
    from mmtutor.preprocess import TextVectorizer

    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TypeError(f"path must be a run folder (str or path), got {path!r}")
    folder = Path(path).expanduser()
    where = f"run folder {str(folder)!r}"
    if not folder.is_dir():
        raise RunError(f"{where} does not exist" if not folder.exists() else f"{where} is not a folder")
    missing = [name for name in _NEEDED if not (folder / name).is_file()]
    if missing:
        raise RunError(f"{where} lacks {', '.join(missing)}: it is not a complete run (train it with "
                       "mmtutor train / mmtutor.train.train_run)")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"{where}: config.json is not readable JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        raise RunError(f"{where}: config.json is not an mmtutor run configuration (no format={RUN_FORMAT!r})")
    version = config.get("mmtutor_version")
    if version != mmtutor.__version__:
        raise RunError(
            f"{where} was written by mmtutor {version}, but this is mmtutor {mmtutor.__version__}; "
            f"retrain it with this version, or install mmtutor {version} to use it"
        )
    if config.get("format_version") != RUN_FORMAT_VERSION:
        raise RunError(f"{where} has run format_version {config.get('format_version')!r}; this mmtutor reads "
                       f"version {RUN_FORMAT_VERSION}")
    keys = ("modalities", "classes", "knobs", "preprocessing", "data")
    lacking = [k for k in keys if k not in config]
    if lacking:
        raise RunError(f"{where}: config.json lacks the entries {lacking}")
    try:
        vectorizer = TextVectorizer.load(folder / "vectorizer.json")
    except (ValueError, OSError) as exc:
        raise RunError(f"{where}: vectorizer.json cannot be used ({exc})") from None
    try:
        model = load_fusion_model(folder / "model.keras")
    except Exception as exc:  # a zip error, a missing layer class, a shape mismatch...
        raise RunError(f"{where}: model.keras cannot be loaded ({type(exc).__name__}: {exc})") from None
    if list(getattr(model, "modalities", [])) != list(config["modalities"]):
        raise RunError(f"{where}: model.keras takes the modalities {getattr(model, 'modalities', None)}, but "
                       f"config.json says {config['modalities']}")
    return Run(folder, model, config, vectorizer)

