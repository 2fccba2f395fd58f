"""Whole-dataset feature extraction into arrays, batched, with an on-disk cache.

Defined in the chapter on preprocessing.
"""

import hashlib
import json
import logging
import numbers
import os
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from mmtutor.preprocess._checks import check_positive_int, check_size
from mmtutor.preprocess.audio import DB_FLOOR, load_audio, log_mel, num_frames
from mmtutor.preprocess.image import load_images
from mmtutor.preprocess.text import TextVectorizer

__all__ = ["extract_features", "featurize", "feature_cache_key", "AUDIO_DEFAULTS"]

logger = logging.getLogger(__name__)

# Log-mel settings of extract_features; "seconds" defaults to dataset.info["audio_seconds"].
AUDIO_DEFAULTS = {"sr": 16000, "seconds": 3.0, "n_fft": 512, "hop_length": 160, "n_mels": 64}
_ARRAYS = ("text", "image", "audio", "mask", "label", "id")
_CACHE_FORMAT = 1  # bump when the meaning of the stored arrays changes
_CONTRACT = ("root", "frame", "info", "masks", "subset", "image_paths", "audio_paths", "texts", "labels")


def _check_dataset(dataset):
    missing = [name for name in _CONTRACT if not hasattr(dataset, name)]
    if missing:
        raise TypeError(
            f"dataset must be a mmtutor.data.MultimodalDataset (as from load_manifest); "
            f"{type(dataset).__name__} lacks {', '.join(missing)}"
        )
    n = len(dataset)
    if n == 0:
        raise ValueError("dataset has no samples")
    masks = np.asarray(dataset.masks)
    if masks.shape != (n, 3) or masks.dtype != bool:
        raise ValueError(f"dataset.masks must be a bool array of shape ({n}, 3), got {masks.dtype} {masks.shape}")
    for name in ("texts", "image_paths", "audio_paths", "labels"):
        if len(getattr(dataset, name)) != n:
            raise ValueError(f"dataset.{name} has {len(getattr(dataset, name))} entries for {n} samples")
    return n, masks.copy()


def _audio_settings(audio, info):
    settings = dict(AUDIO_DEFAULTS)
    if "audio_seconds" in info:
        settings["seconds"] = float(info["audio_seconds"])
    if audio is not None:
        if not isinstance(audio, dict):
            raise TypeError(f"audio must be a dict of log-mel settings or None, got {audio!r}")
        unknown = sorted(set(audio) - set(AUDIO_DEFAULTS))
        if unknown:
            raise ValueError(f"audio has unknown settings {unknown}; allowed: {sorted(AUDIO_DEFAULTS)}")
        settings.update(audio)
    for name in ("sr", "n_fft", "hop_length", "n_mels"):
        settings[name] = check_positive_int(f"audio[{name!r}]", settings[name])
    seconds = settings["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not 0 < seconds < 3600:
        raise ValueError(f"audio['seconds'] must be a positive number of seconds, got {seconds!r}")
    settings["seconds"] = float(seconds)
    return settings


def _sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _files_identity(dataset):
    """Hash of every file the dataset points to: its path, size and modification time.

    ``dataset.json``'s content hash says what the generator wrote; this says what is on disk
    now, so that a file replaced or edited by hand (a blackened image, a re-recorded clip)
    invalidates cached features and reused runs even when the manifest and ``dataset.json``
    are left as they were.
    """
    stats = []
    for p in list(dataset.image_paths) + list(dataset.audio_paths):
        if p:
            try:
                st = os.stat(p)
            except OSError:
                stats.append(f"{p}|missing")
            else:
                stats.append(f"{p}|{st.st_size}|{st.st_mtime_ns}")
    return _sha256("\n".join(stats))


def _data_identity(dataset):
    """Hash of what the features are computed from: the dataset's rows and its files."""
    cols = [c for c in ("id", "split", "text", "image", "audio", "label") if c in dataset.frame.columns]
    rows = _sha256(dataset.frame[cols].to_csv(index=False))  # a subset differs from the whole
    files = _files_identity(dataset)
    content = dataset.info.get("content_hash") or f"files:{files}"
    return {"content_hash": str(content), "rows": rows, "files": files}


def feature_cache_key(dataset, *, image_size, audio, vectorizer):
    """The cache key of :func:`extract_features`: a hex digest of data, settings and vocabulary.

    Defined in the chapter on preprocessing. It changes when the dataset's content hash or
    rows change, when a file changes on disk (its size or modification time, even if
    ``dataset.json`` is left as it was), when any setting changes, when the vocabulary changes,
    or when the version of librosa or OpenCV changes (their output may differ).

    Parameters
    ----------
    dataset : mmtutor.data.MultimodalDataset
    image_size : tuple of int
    audio : dict
        Complete log-mel settings (as in ``AUDIO_DEFAULTS``).
    vectorizer : TextVectorizer
        A fitted vectorizer.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    versions = {}
    for name in ("librosa", "opencv-python-headless", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    payload = {
        "format": _CACHE_FORMAT,
        "data": _data_identity(dataset),
        "image_size": list(image_size),
        "audio": audio,
        "text": {**vectorizer.get_config(), "vocabulary": _sha256("\n".join(vectorizer.vocabulary))},
        "versions": versions,
    }
    return _sha256(json.dumps(payload, sort_keys=True))


def _read_cache(path, key, expected_shapes):
    """Return the arrays stored at ``path`` or raise ValueError saying what is wrong."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:  # we close the file
            stored = {name: npz[name] for name in npz.files}
    except Exception as exc:  # BadZipFile, EOFError, OSError, ValueError...: all mean "unusable"
        raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if str(stored.get("key", "")) != key:
        raise ValueError("its key does not match")
    for name, shape in expected_shapes.items():
        if name not in stored or stored[name].shape != shape:
            raise ValueError(f"array {name!r} is missing or has the wrong shape")
    return {name: stored[name] for name in _ARRAYS}


def _write_cache(path, key, arrays):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:  # a file object: numpy adds no second ".npz"
            np.savez(f, key=np.array(key), **arrays)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
    finally:
        if tmp.exists():
            tmp.unlink()


def extract_features(dataset, *, image_size=(64, 64), seq_len=None, vectorizer=None, audio=None,
                     cache_dir=None, batch_size=64, progress=False):
    """Turn a whole dataset into model-ready arrays: token ids, images, log-mel spectrograms.

    Defined in the chapter on preprocessing. Work is batched: images and audio files are read
    ``batch_size`` at a time and the log-mel spectrograms of a batch are computed in one librosa
    call. The text vocabulary is fitted on the TRAINING split only. Missing modalities follow
    the mask: a missing text gives a row of 0 (padding), a missing image an all-zero image, a
    missing audio the log-mel of silence (``DB_FLOOR`` = -100 dB everywhere). Images are RGB in
    [0, 1], not standardised (fit :func:`~mmtutor.preprocess.fit_image_stats` on the training
    rows for that).

    With ``cache_dir`` the arrays are stored in ``cache_dir/features-<key>.npz``; the key
    (:func:`feature_cache_key`) hashes ``dataset.info["content_hash"]``, the dataset's rows,
    the path, size and modification time of every file, every setting and the vocabulary, so changing any of them computes and stores new features,
    and a later call with the same inputs loads them instead. An unreadable cache file is
    recomputed and overwritten (with a warning).

    Parameters
    ----------
    dataset : mmtutor.data.MultimodalDataset
        As returned by ``mmtutor.data.load_manifest`` (or a ``subset`` of one).
    image_size : tuple of int, default (64, 64)
        ``(height, width)`` of the images.
    seq_len : int, optional
        Token sequence length; default 24, or the given vectorizer's (they must agree).
    vectorizer : TextVectorizer, optional
        A fitted vectorizer (e.g. fitted on the training split and reused for the test split).
        None fits a new one on ``dataset.subset("train").texts``.
    audio : dict, optional
        Log-mel settings overriding ``AUDIO_DEFAULTS``: ``sr``, ``seconds`` (default
        ``dataset.info["audio_seconds"]`` if present, else 3.0), ``n_fft``, ``hop_length``,
        ``n_mels``.
    cache_dir : str or path-like, optional
        Folder of the on-disk cache (created if needed); None means no cache.
    batch_size : int, default 64
        Files read per batch.
    progress : bool, default False
        Show a progress bar over the batches.

    Returns
    -------
    dict
        ``"text"`` int32 ``(n, seq_len)``; ``"image"`` float32 ``(n, H, W, 3)``; ``"audio"``
        float32 ``(n, frames, n_mels)`` with ``frames = 1 + round(sr * seconds) // hop_length``;
        ``"mask"`` bool ``(n, 3)`` (text, image, audio); ``"label"`` int32 ``(n,)``; ``"id"``
        str ``(n,)``; ``"vectorizer"`` the TextVectorizer used; ``"cache_hit"`` bool.

    Raises
    ------
    TypeError
        If ``dataset`` does not follow the dataset contract.
    ValueError
        On a bad setting, an empty dataset, no training text to fit on, a mask that contradicts
        the paths, or an unreadable file (the message names it).

    Examples
    --------
    >>> from mmtutor.data import load_spoken_reviews  # doctest: +SKIP
    >>> from mmtutor.preprocess import extract_features  # doctest: +SKIP
    >>> ds = load_spoken_reviews()  # doctest: +SKIP
    >>> train = extract_features(ds.subset("train"), vectorizer=None)  # doctest: +SKIP
    >>> test = extract_features(ds.subset("test"), vectorizer=train["vectorizer"])  # doctest: +SKIP
    >>> train["audio"].shape[1:]  # doctest: +SKIP
    (301, 64)
    """
    n, mask = _check_dataset(dataset)
    image_size = check_size("image_size", image_size)
    batch_size = check_positive_int("batch_size", batch_size)
    settings = _audio_settings(audio, dict(dataset.info or {}))
    if vectorizer is None:
        vectorizer = TextVectorizer(seq_len=24 if seq_len is None else seq_len)
        train = dataset.subset("train")
        if len(train) == 0:
            raise ValueError(
                "dataset has no 'train' rows to fit the text vocabulary on; pass the vectorizer "
                "fitted on the training split (vectorizer=features_of_train['vectorizer'])"
            )
        try:
            vectorizer.fit(list(train.texts))
        except ValueError as exc:
            raise ValueError(f"cannot fit the vocabulary on the training split: {exc}") from None
    elif not isinstance(vectorizer, TextVectorizer):
        raise TypeError(f"vectorizer must be a mmtutor.preprocess.TextVectorizer or None, got {type(vectorizer).__name__}")
    elif not vectorizer.is_fitted:
        raise ValueError("vectorizer is not fitted: fit it on the training texts first")
    elif seq_len is not None and seq_len != vectorizer.seq_len:
        raise ValueError(f"seq_len={seq_len!r} differs from the vectorizer's seq_len={vectorizer.seq_len}")

    samples = int(round(settings["sr"] * settings["seconds"]))
    frames = num_frames(samples, settings["hop_length"])
    shapes = {
        "text": (n, vectorizer.seq_len), "image": (n, *image_size, 3),
        "audio": (n, frames, settings["n_mels"]), "mask": (n, 3), "label": (n,), "id": (n,),
    }

    cache_path = None
    if cache_dir is not None:
        key = feature_cache_key(dataset, image_size=image_size, audio=settings, vectorizer=vectorizer)
        cache_dir = Path(cache_dir).expanduser()
        if cache_dir.exists() and not cache_dir.is_dir():
            raise ValueError(f"cache_dir {str(cache_dir)!r} is not a folder (it is a file); give a folder "
                             "for the feature cache, or no cache_dir")
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_path = cache_dir / f"features-{key[:40]}.npz"
        if cache_path.exists():
            try:
                arrays = _read_cache(cache_path, key, shapes)
            except ValueError as exc:
                warnings.warn(f"feature cache {str(cache_path)!r} is unusable ({exc}); recomputing it",
                              RuntimeWarning, stacklevel=2)
            else:
                logger.info("features loaded from cache %s", cache_path)
                return {**arrays, "vectorizer": vectorizer, "cache_hit": True}

    arrays = _compute(dataset, n, mask, image_size, settings, samples, frames, vectorizer, batch_size, progress)
    if cache_path is not None:
        _write_cache(cache_path, key, arrays)
        logger.info("features stored in cache %s", cache_path)
    return {**arrays, "vectorizer": vectorizer, "cache_hit": False}


def featurize(texts, image_paths, audio_paths, *, image_size, audio, vectorizer, mask=None, batch_size=64,
              progress=False, names=None):
    """Raw inputs to model-ready arrays: the one path from files to features.

    Defined in the chapter on preprocessing. :func:`extract_features` (training data) and a
    trained run's ``predict`` (new recordings) both call this function, so a model never sees
    inputs prepared another way than the ones it was trained on. Missing modalities: a missing
    text is a row of 0 (padding), a missing image an all-zero image, a missing audio clip the
    log-mel of silence (``DB_FLOOR`` everywhere).

    Parameters
    ----------
    texts, image_paths, audio_paths : list of str
        One entry per sample; ``""`` for a missing text, image or clip.
    image_size : (int, int)
    audio : dict
        Complete log-mel settings (``sr``, ``seconds``, ``n_fft``, ``hop_length``, ``n_mels``).
    vectorizer : TextVectorizer
        Fitted on the training texts.
    mask : array-like of bool, shape (n, 3), optional
        Which modalities each sample has (text, image, audio). Default: a text is present when
        it is not blank, an image or a clip when its path is not empty. When given, it must agree
        with the paths (an error names the first sample where it does not).
    batch_size : int, default 64
        Files read per batch; the log-mel spectrograms of a batch are one librosa call.
    progress : bool, default False
    names : list of str, optional
        Sample names used in error messages (default: the index).

    Returns
    -------
    dict
        ``"text"`` int32 ``(n, seq_len)``, ``"image"`` float32 ``(n, H, W, 3)``, ``"audio"``
        float32 ``(n, frames, n_mels)``, ``"mask"`` bool ``(n, 3)``.
    """
    from tqdm.auto import tqdm

    texts = ["" if t is None else t for t in texts]
    image_paths = ["" if p is None else str(p) for p in image_paths]
    audio_paths = ["" if p is None else str(p) for p in audio_paths]
    n = len(texts)
    if not len(image_paths) == len(audio_paths) == n:
        raise ValueError(f"texts, image_paths and audio_paths must have one entry per sample, got "
                         f"{n}, {len(image_paths)} and {len(audio_paths)}")
    names = [str(i) for i in range(n)] if names is None else [str(x) for x in names]
    image_size = check_size("image_size", image_size)
    samples = int(round(audio["sr"] * audio["seconds"]))
    frames = num_frames(samples, audio["hop_length"])
    if mask is None:
        mask = np.zeros((n, 3), dtype=bool)
        mask[:, 0] = [isinstance(t, str) and bool(t.strip()) for t in texts]
        mask[:, 1] = [p != "" for p in image_paths]
        mask[:, 2] = [p != "" for p in audio_paths]
    else:
        mask = np.asarray(mask, dtype=bool).copy()
        for col, paths, name in ((1, image_paths, "image"), (2, audio_paths, "audio")):
            has_path = np.array([p != "" for p in paths], dtype=bool)
            bad = np.flatnonzero(has_path != mask[:, col])
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"dataset.masks says the {name} of sample {names[i]!r} is "
                    f"{'present' if mask[i, col] else 'missing'}, but its path is {paths[i]!r}"
                )

    text = np.zeros((n, vectorizer.seq_len), dtype=np.int32)
    present = np.flatnonzero(mask[:, 0])
    if present.size:
        text[present] = vectorizer.transform([texts[i] for i in present])
    image = np.zeros((n, *image_size, 3), dtype=np.float32)
    log_mels = np.full((n, frames, audio["n_mels"]), DB_FLOOR, dtype=np.float32)
    mel = {k: audio[k] for k in ("sr", "n_fft", "hop_length", "n_mels")}
    with tqdm(total=n, desc="features", unit="sample", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            image[start:stop], loaded = load_images(image_paths[start:stop], image_size)
            mask[start:stop, 1] &= np.asarray(loaded, dtype=bool)
            clips = [i for i in range(start, stop) if mask[i, 2]]
            if clips:
                waves = np.stack([load_audio(audio_paths[i], sr=audio["sr"], seconds=audio["seconds"])
                                  for i in clips])
                log_mels[clips] = log_mel(waves, **mel)  # one call for the whole batch
            bar.update(stop - start)
    return {"text": text, "image": image, "audio": log_mels, "mask": mask}


def _compute(dataset, n, mask, image_size, settings, samples, frames, vectorizer, batch_size, progress):
    ids = np.array([str(i) for i in dataset.frame["id"]]) if "id" in dataset.frame.columns else np.arange(n).astype(str)
    texts = list(dataset.texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:  # a non-string (NaN) text cell is an error, marked missing or not
        i = bad[0]
        raise TypeError(f"texts[{i}] (sample {ids[i]!r}) must be a string ('' for a missing text), "
                        f"got {texts[i]!r} of type {type(texts[i]).__name__}")
    arrays = featurize(texts, [str(p) for p in dataset.image_paths], [str(p) for p in dataset.audio_paths],
                       image_size=image_size, audio=settings, vectorizer=vectorizer, mask=mask,
                       batch_size=batch_size, progress=progress, names=ids)
    return {**arrays, "label": np.asarray(dataset.labels).astype(np.int32), "id": ids}
