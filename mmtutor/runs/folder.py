"""Run folders: their layout, writing them atomically, and reading them back as a :class:`Run`.

Defined in the chapter on the sentiment project. A run folder holds everything a later user
needs::

    RUN/
      config.json       every setting (RunConfig), preprocessing state, data identity, versions
      model.keras       the trained model (best epoch)
      vectorizer.json   the text vocabulary (fitted on the training split)
      history.csv       loss and accuracy per epoch (keras.callbacks.CSVLogger)
      metrics.json      validation and test accuracy, F1, subsets, the Bayes ceiling
      predictions.csv   id, split, label, prob, pred for every sample
      logs/             TensorBoard event files (if the tensorboard package is installed)

:func:`load_run` reads such a folder back into a :class:`Run`, which carries its settings,
metrics, history and predictions as objects and predicts from raw inputs (texts, image files,
audio files; any subset of the modalities, absent ones masked) with the same featurizer that
prepared the training data.
"""

import csv
import json
import os
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np

import mmtutor
from mmtutor._quiet import quiet_tf_data
from mmtutor._validation import MODALITIES, check_int
from mmtutor.data.manifest import MultimodalDataset, load_manifest

__all__ = ["RUN_FORMAT", "RUN_FORMAT_VERSION", "RUN_FILES", "RunError", "Run", "load_run"]

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
# Shared helpers


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


def _model_inputs(arrays, modalities, audio_norm):
    """Dict of model inputs (one array per modality, plus the mask) from feature arrays."""
    from mmtutor.preprocess import standardize_audio

    mask = np.asarray(arrays["mask"], dtype=bool)
    inputs = {}
    for m in modalities:
        x = arrays[m]
        if m == "audio":
            x = standardize_audio(x, mask[:, MODALITIES.index("audio")], audio_norm)
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
    """A trained run: the model, its preprocessing state, its settings and its results.

    Defined in the chapter on the sentiment project. Made by :func:`~mmtutor.runs.train_run`
    and :func:`load_run`; it needs nothing but the run folder to predict.

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
    settings : RunConfig
        The validated training settings.
    metrics : dict
        Validation and test metrics, the ceiling, epochs and pretraining report
        (``metrics.json``).
    history : pandas.DataFrame
        One row per epoch, ``epoch`` counted from 1 (``history.csv``).
    predictions : pandas.DataFrame
        ``id, split, label, prob, pred`` of every sample (``predictions.csv``); ``prob`` is
        P(class 1) for two classes, else the probability of the predicted class.
    """

    def __init__(self, path, model, config, vectorizer, *, settings=None, metrics=None):
        self.path = Path(path)
        self.model = model
        self.config = config
        self.vectorizer = vectorizer
        self._settings = settings
        self._metrics = metrics
        self._history = None
        self._predictions = None

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

    @property
    def settings(self):
        from mmtutor.runs.config import RunConfig

        if self._settings is None:
            self._settings = RunConfig.from_run(self.config)
        return self._settings

    @property
    def metrics(self):
        if self._metrics is None:
            self._metrics = _read_json(self.path / "metrics.json", "metrics.json", self.path)
        return self._metrics

    @property
    def history(self):
        if self._history is None:
            import pandas as pd

            history = pd.read_csv(self.path / "history.csv")
            history["epoch"] = history["epoch"] + 1  # CSVLogger counts from 0; metrics.json from 1
            self._history = history
        return self._history

    @property
    def predictions(self):
        if self._predictions is None:
            import pandas as pd

            self._predictions = pd.read_csv(self.path / "predictions.csv", dtype={"id": str})
        return self._predictions

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

        The same featurizer as training (:func:`mmtutor.preprocess.featurize`) with the run's
        image size, log-mel settings, vocabulary and audio statistics.

        Parameters
        ----------
        texts, image_paths, audio_paths : str or list of str, optional
            As for :meth:`predict`.

        Returns
        -------
        dict
            One array per modality of the run, plus ``"mask"`` (n, M) float32.
        """
        from mmtutor.preprocess import featurize

        lists, n = self._collect(texts, image_paths, audio_paths)
        prep = self.config["preprocessing"]
        blank = [""] * n
        arrays = featurize(lists.get("text", blank), lists.get("image", blank), lists.get("audio", blank),
                           image_size=tuple(prep["image_size"]), audio=prep["audio"], vectorizer=self.vectorizer)
        used = arrays["mask"][:, [MODALITIES.index(m) for m in self.modalities]]
        empty = np.flatnonzero(~used.any(axis=1))
        if empty.size:
            raise ValueError(
                f"sample {int(empty[0])} has none of the modalities {self.modalities}: give a non-empty "
                "text, an image path or an audio path"
            )
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
        >>> from mmtutor.runs import load_run  # doctest: +SKIP
        >>> run = load_run("runs/concat")  # doctest: +SKIP
        >>> run.predict(texts=["The soup was money well spent."]).shape  # doctest: +SKIP
        (1, 2)
        """
        return self.predict_inputs(self.inputs(texts, image_paths, audio_paths), batch_size=batch_size)

    def predict_inputs(self, inputs, *, batch_size=64):
        """Class probabilities for inputs already prepared by :meth:`inputs`.

        Defined in the chapter on noisy and missing modalities: runs that share their
        preprocessing (the same ``config.json["preprocessing"]``) can share one call of
        :meth:`inputs` and each predict from it.

        Parameters
        ----------
        inputs : dict
            One array per modality of the run and ``"mask"`` (n, M), as :meth:`inputs` returns.
        batch_size : int, default 64

        Returns
        -------
        numpy.ndarray
            float64, shape ``(n, num_classes)``, as :meth:`predict`.
        """
        if not isinstance(inputs, dict):
            raise TypeError(f"inputs must be a dict as Run.inputs returns, got {type(inputs).__name__}")
        expected = [*self.modalities, "mask"]
        if sorted(inputs) != sorted(expected):
            raise ValueError(f"inputs must hold exactly {expected} (as Run.inputs returns), got {sorted(inputs)}")
        sizes = {k: len(v) for k, v in inputs.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"inputs hold different numbers of samples: {sizes}")
        mask = np.asarray(inputs["mask"])
        if mask.shape != (sizes["mask"], len(self.modalities)):
            raise ValueError(f"inputs['mask'] must have shape (n, {len(self.modalities)}), got {mask.shape}")
        return _probabilities(self.model, inputs, len(self.classes), check_int(batch_size, "batch_size", minimum=1))

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
            ``split``, ``data`` (the dataset folder); ``subsets`` with the same three numbers for ``sarcastic`` samples (when
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
        return {"split": split, "data": str(dataset.root), **result}


# ---------------------------------------------------------------------------------------------
# Writing and reusing run folders


def _read_json(path, name, folder):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"run folder {str(folder)!r} lacks {name}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"run folder {str(folder)!r}: {name} is not readable JSON ({exc})") from None


def write_run_files(work, *, model, vectorizer, config, metrics, predictions):
    """Write a run's files into the (temporary) folder ``work``."""
    model.save(work / "model.keras")
    vectorizer.save(work / "vectorizer.json")
    with open(work / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "split", "label", "prob", "pred"])
        writer.writerows((i, s, y, repr(p), c) for i, s, y, p, c in predictions)
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    (work / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def _check_config(config, where):
    """Check a loaded config.json in full (settings, preprocessing, classes); RunError if bad."""
    from mmtutor.runs.config import RunConfig

    keys = ("modalities", "classes", "knobs", "preprocessing", "data")
    lacking = [k for k in keys if k not in config]
    if lacking:
        raise RunError(f"{where}: config.json lacks the entries {lacking}")
    classes = config["classes"]
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes) \
            or len(set(classes)) != len(classes):
        raise RunError(f"{where}: config.json 'classes' must be a list of at least two distinct names, got {classes!r}")
    prep = config["preprocessing"]
    needed = ("image_size", "seq_len", "audio", "audio_norm")
    if not isinstance(prep, dict) or any(k not in prep for k in needed):
        raise RunError(f"{where}: config.json 'preprocessing' must hold {list(needed)}, got {prep!r}"[:400])
    if not isinstance(config["data"], dict):
        raise RunError(f"{where}: config.json 'data' must be a dict, got {config['data']!r}")
    try:
        settings = RunConfig.from_run(config)
        if settings.image_size[0] * settings.image_size[1] > 4096 * 4096:
            raise ValueError(f"image_size {list(settings.image_size)} is implausibly large")
        audio = prep["audio"]
        if not isinstance(audio, dict) or any(k not in audio for k in ("sr", "seconds", "n_fft", "hop_length", "n_mels")):
            raise ValueError(f"preprocessing.audio must hold sr, seconds, n_fft, hop_length and n_mels, got {audio!r}")
        norm = prep["audio_norm"]
        n_mels = audio["n_mels"]
        if not isinstance(norm, dict) or any(not isinstance(norm.get(k), list) or len(norm[k]) != n_mels
                                             for k in ("mean", "std")):
            raise ValueError(f"preprocessing.audio_norm must hold 'mean' and 'std' lists of {n_mels} numbers "
                             "(one per mel band)")
    except (TypeError, ValueError, KeyError) as exc:
        raise RunError(f"{where}: config.json has a bad setting: {exc}") from None
    return settings


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
        and config.get("data", {}).get("files_hash") == identity["files"]
        and saved_pre.get("image_size") == preprocessing["image_size"]
        and saved_pre.get("audio") == json.loads(json.dumps(preprocessing["audio"]))
        and saved_pre.get("vectorizer", {}).get("seq_len", preprocessing["seq_len"]) == preprocessing["seq_len"]
    )
    return run if same else None


# What a run folder may hold: the files train_run writes and TensorBoard's logs/.
_RUN_ENTRIES = frozenset(RUN_FILES) | {"logs"}


def _check_out(out, overwrite, dataset=None):
    """The run folder ``out`` as an absolute path, if a run may be written there.

    A folder that is not empty is replaced only with ``overwrite`` and only if it holds an
    mmtutor run and nothing else (``config.json`` of format ``mmtutor-run``, the run's files,
    ``logs/``); never a folder that holds the dataset being trained from.
    """
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise ValueError(f"out must be a folder path, got {out!r}")
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {str(out)!r} exists and is not a folder")
    if dataset is not None and getattr(dataset, "root", None) is not None:
        root, target = Path(dataset.root).resolve(), out.resolve()
        if root == target or target in root.parents:
            raise ValueError(f"out {str(out)!r} holds the dataset being trained from ({str(root)!r}); "
                             "write the run into another folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"run folder {str(out)!r} is not empty; pass overwrite=True (--overwrite) to replace it")
        try:
            config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            config = None
        if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
            raise FileExistsError(
                f"refusing to replace {str(out)!r}: it is not empty and holds no mmtutor run (no config.json "
                "written by train_run); choose a new or empty folder"
            )
        foreign = sorted(entry.name for entry in out.iterdir() if entry.name not in _RUN_ENTRIES)
        if foreign:
            raise FileExistsError(
                f"refusing to replace {str(out)!r}: besides a run it holds {', '.join(foreign[:5])}"
                f"{' ...' if len(foreign) > 5 else ''}, which mmtutor did not write; move them or choose another folder"
            )
    return out


def _move_into_place(work, out):
    """Replace ``out`` by the finished run in ``work`` (a reader never sees half a run; Ctrl-C
    waits until the swap is complete)."""
    from mmtutor._fs import sigint_deferred

    with sigint_deferred():
        if out.is_dir():
            shutil.rmtree(out)  # _check_out allowed it: empty, or only a run's files with overwrite=True
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, out)


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
    >>> from mmtutor.runs import load_run  # doctest: +SKIP
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
                       "mmtutor train / mmtutor.runs.train_run)")
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
    settings = _check_config(config, where)
    try:
        vectorizer = TextVectorizer.load(folder / "vectorizer.json")
    except (ValueError, OSError) as exc:
        raise RunError(f"{where}: vectorizer.json cannot be used ({exc})") from None
    import zipfile

    try:
        with zipfile.ZipFile(folder / "model.keras") as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise RunError(f"{where}: model.keras is not a complete Keras file (truncated or corrupt: {exc})") from None
    if damaged is not None:
        raise RunError(f"{where}: model.keras is corrupt (its member {damaged!r} fails its checksum)")
    try:
        model = load_fusion_model(folder / "model.keras")
    except Exception as exc:  # a zip error, a missing layer class, a shape mismatch...
        raise RunError(f"{where}: model.keras cannot be loaded ({type(exc).__name__}: {exc})") from None
    if list(getattr(model, "modalities", [])) != list(config["modalities"]):
        raise RunError(f"{where}: model.keras takes the modalities {getattr(model, 'modalities', None)}, but "
                       f"config.json says {config['modalities']}")
    return Run(folder, model, config, vectorizer, settings=settings)

