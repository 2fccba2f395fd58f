"""Read and check a multimodal dataset described by a ``manifest.csv``.

Defined in the chapter on preprocessing ("Meet the data"). The format is the one the
spoken-reviews generator writes, and a reader can put their own data in it:

- a folder holding ``manifest.csv`` and the files it names (and optionally ``dataset.json``);
- ``manifest.csv`` has one row per sample and at least the columns ``id``, ``split``
  ("train", "val" or "test"), ``text``, ``image``, ``audio`` (paths relative to the folder) and
  ``label`` (an integer class index, 0 = negative and 1 = positive by default). Other columns are
  kept as they are;
- an empty ``text``, ``image`` or ``audio`` cell means the modality is missing for that sample
  (the dataset's :attr:`~MultimodalDataset.masks` say so); a text of only spaces is an error.

:func:`load_manifest` opens every file once, so that a broken file is reported by name before
any model sees it, rather than as a crash deep inside a training loop.
"""

import json
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mmtutor._validation import MODALITIES

__all__ = ["MODALITIES", "REQUIRED_COLUMNS", "SPLITS", "DataError", "MultimodalDataset", "load_manifest"]

# MODALITIES (text, image, audio: the order of the columns of MultimodalDataset.masks) is defined
# once, in mmtutor._validation, and imported at the top of this module.
#: Columns every manifest must have.
REQUIRED_COLUMNS = ("id", "split", "text", "image", "audio", "label")
#: The allowed values of the ``split`` column.
SPLITS = ("train", "val", "test")
_DEFAULT_CLASSES = ("negative", "positive")


class DataError(ValueError):
    """A dataset that cannot be used as it is: a bad manifest, row or file.

    The message names the row id, the column and, for files, the path.
    """


@dataclass
class MultimodalDataset:
    """A multimodal dataset: a manifest table plus the folder its paths are relative to.

    Defined in the chapter on preprocessing ("Meet the data"). Made by :func:`load_manifest`
    and :func:`~mmtutor.data.load_spoken_reviews`.

    Attributes
    ----------
    root : pathlib.Path
        The folder holding ``manifest.csv``; ``image`` and ``audio`` paths are relative to it.
    frame : pandas.DataFrame
        One row per sample: ``id``, ``split``, ``text``, ``image``, ``audio``, ``label`` and any
        other columns of the manifest (the generator's hidden factors). Blank cells are "".
    info : dict
        The content of ``dataset.json`` ({} if the folder has none).
    skipped : list of (str, str)
        ``(row id, reason)`` for each row that ``load_manifest(..., on_error="skip")`` left out.

    Examples
    --------
    >>> from mmtutor.data import load_spoken_reviews
    >>> ds = load_spoken_reviews()  # doctest: +SKIP
    >>> train = ds.subset("train")  # doctest: +SKIP
    >>> train.masks.shape  # doctest: +SKIP
    (1400, 3)
    """

    root: Path
    frame: pd.DataFrame
    info: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)

    def __len__(self):
        return len(self.frame)

    def __repr__(self):
        splits = ", ".join(f"{s}={int((self.frame['split'] == s).sum())}" for s in SPLITS)
        return f"MultimodalDataset({len(self)} samples: {splits}; root={str(self.root)!r})"

    @property
    def masks(self):
        """numpy bool array (n, 3): True where text, image, audio (in that order) are present."""
        return np.stack([self.frame[m].to_numpy(dtype=object) != "" for m in MODALITIES], axis=1).astype(bool)

    @property
    def texts(self):
        """list of str: the review texts ("" where the text is missing)."""
        return self.frame["text"].tolist()

    def _abs(self, column):
        return [os.path.join(self.root, p) if p else "" for p in self.frame[column].tolist()]

    @property
    def image_paths(self):
        """list of str: absolute image paths ("" where the image is missing)."""
        return self._abs("image")

    @property
    def audio_paths(self):
        """list of str: absolute audio paths ("" where the audio is missing)."""
        return self._abs("audio")

    @property
    def labels(self):
        """numpy int array of the labels."""
        return self.frame["label"].to_numpy(dtype=np.int64)

    @property
    def classes(self):
        """list of str: class names, index = label (from dataset.json; default negative, positive)."""
        return list(self.info.get("classes", _DEFAULT_CLASSES))

    def subset(self, split):
        """The samples of one split, as a new dataset with the same root and info.

        Parameters
        ----------
        split : {"train", "val", "test"}

        Returns
        -------
        MultimodalDataset
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        frame = self.frame[self.frame["split"] == split].reset_index(drop=True)
        return MultimodalDataset(self.root, frame, self.info, list(self.skipped))

    def describe(self):
        """Counts that summarise the dataset.

        Returns
        -------
        dict
            ``n``; ``splits`` (split -> {"n", and one count per class name}); ``missing``
            (modality -> number of samples without it); ``sarcastic`` (count, or None if the
            manifest has no such column); ``ceilings`` (from dataset.json, or None); ``skipped``.
        """
        classes = self.classes
        splits = {}
        for s in SPLITS:
            rows = self.frame[self.frame["split"] == s]
            counts = {"n": int(len(rows))}
            for k, name in enumerate(classes):
                counts[name] = int((rows["label"] == k).sum())
            splits[s] = counts
        masks = self.masks
        return {
            "n": len(self),
            "splits": splits,
            "missing": {m: int((~masks[:, j]).sum()) for j, m in enumerate(MODALITIES)},
            "sarcastic": int(self.frame["sarcastic"].astype(int).sum()) if "sarcastic" in self.frame else None,
            "ceilings": self.info.get("ceilings"),
            "skipped": len(self.skipped),
        }


# --------------------------------------------------------------------------------------------
# File checks


def _check_image(path):
    """Return None if OpenCV can decode the image at ``path``, else the reason."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)  # also works for non-ASCII paths on Windows
    except OSError as exc:
        return f"cannot read the image file ({exc.strerror or exc})"
    if data.size == 0:
        return "the image file is empty"
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # we report it ourselves
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if img is None:
        return "not a readable image (OpenCV cannot decode it: corrupt, truncated or not an image)"
    return None


def _riff_data_check(path):
    """For a RIFF/WAVE file, compare the data size its header declares with the bytes present.

    libsndfile quietly reads what is there when a WAV file is cut short, so a truncated download
    would pass unnoticed; this catches it. Returns None, or the reason the file is truncated.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not RIFF/WAVE: soundfile's own checks apply
        block_align = None
        pos = 12
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return "truncated WAV file (it ends before its 'data' chunk)"
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(min(csize, 16))
                if len(fmt) >= 14:
                    block_align = struct.unpack("<H", fmt[12:14])[0]
                f.seek(pos + 8 + csize + (csize & 1))
            elif cid == b"data":
                if csize == 0xFFFFFFFF:  # size unknown (written by a stream)
                    return None
                have = size - (pos + 8)
                if have < csize:
                    msg = f"truncated WAV file (header declares {csize} bytes of audio, file holds {have}"
                    if block_align:
                        msg += f"; {have // block_align} of {csize // block_align} frames"
                    return msg + ")"
                return None
            else:
                f.seek(pos + 8 + csize + (csize & 1))
            pos = pos + 8 + csize + (csize & 1)
            if pos > size:
                return "truncated WAV file (a chunk runs past the end of the file)"


def _check_audio(path):
    """Return None if ``path`` holds a complete, non-empty audio file soundfile can read."""
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        return f"not a readable audio file ({str(exc).strip() or type(exc).__name__})"
    try:
        reason = _riff_data_check(path)
    except OSError as exc:
        return f"cannot read the audio file ({exc.strerror or exc})"
    if reason:
        return reason
    if info.frames <= 0:
        return "the audio file holds no samples"
    return None


# --------------------------------------------------------------------------------------------
# Loading


def _read_csv(csv_path):
    try:
        header = pd.read_csv(csv_path, nrows=0, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DataError(
            f"manifest {csv_path} is empty (expected a header with columns {list(REQUIRED_COLUMNS)})"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"manifest {csv_path} is not a readable UTF-8 CSV file: {exc}") from None
    columns = list(header.columns)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DataError(
            f"manifest {csv_path} lacks the column(s) {missing}; it has {columns}, and needs at least "
            f"{list(REQUIRED_COLUMNS)}"
        )
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise DataError(f"manifest {csv_path} has duplicate column names {dupes}")
    try:
        return pd.read_csv(csv_path, dtype={c: str for c in REQUIRED_COLUMNS}, keep_default_na=False,
                           encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"manifest {csv_path} is not a readable CSV file: {exc}") from None


def _read_info(root):
    path = root / "dataset.json"
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(info, dict):
        raise DataError(f"{path} must hold a JSON object, got {type(info).__name__}")
    return info


def load_manifest(path, on_error="raise"):
    """Read a dataset folder (or its ``manifest.csv``) and check every row and file.

    Defined in the chapter on preprocessing ("Meet the data").

    Each row is checked: a non-empty, unique ``id``; a ``split`` of "train", "val" or "test";
    an integer ``label`` that names a class; a ``text`` that is empty (missing) or has words
    (only whitespace is an error); ``image`` and ``audio`` cells that are empty (missing) or
    name a file that exists and decodes (an image OpenCV can read; a complete audio file:
    a WAV file shorter than its header declares is truncated). A row with all three modalities
    blank is an error.

    Parameters
    ----------
    path : str or path-like
        The dataset folder, or the path of its ``manifest.csv``.
    on_error : {"raise", "skip"}, default "raise"
        "raise": raise :class:`DataError` at the first bad row (its message names the row id,
        the column and the file, and how many other rows are bad). "skip": leave bad rows out,
        list them in the result's ``skipped`` and emit one :class:`UserWarning`.
        Problems with the manifest itself (missing columns, unreadable CSV) always raise.

    Returns
    -------
    MultimodalDataset

    Raises
    ------
    FileNotFoundError
        If there is no manifest at ``path``.
    DataError
        For a bad manifest, or a bad row with ``on_error="raise"``.

    Examples
    --------
    >>> from mmtutor.data import make_spoken_reviews, load_manifest
    >>> _ = make_spoken_reviews("/tmp/sr_demo", n=20, progress=False, overwrite=True)
    >>> ds = load_manifest("/tmp/sr_demo")
    >>> ds.masks.shape
    (20, 3)
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    try:
        p = Path(path).expanduser()
    except TypeError:
        raise TypeError(f"path must be a folder or a manifest.csv path, got {path!r}") from None
    csv_path = p / "manifest.csv" if p.is_dir() else p
    if not csv_path.is_file():
        where = f"no manifest.csv in folder {p}" if p.is_dir() else f"no such file: {p}"
        raise FileNotFoundError(f"cannot load a dataset: {where}")
    root = csv_path.parent.resolve()
    info = _read_info(root)
    frame = _read_csv(csv_path)
    classes = info.get("classes", _DEFAULT_CLASSES)
    n_classes = len(classes) if isinstance(classes, (list, tuple)) and classes else 2

    problems = []  # (row position, id, message)
    seen = set()
    labels = np.zeros(len(frame), dtype=np.int64)
    for pos, row in enumerate(frame[list(REQUIRED_COLUMNS)].itertuples(index=False)):
        line = pos + 2  # the header is line 1
        rid = row.id.strip()
        where = f"row {rid!r} (line {line})" if rid else f"line {line}"

        def bad(column, reason, file=None):
            msg = f"{where}, column {column!r}: {reason}"
            problems.append((pos, rid or f"line {line}", msg + (f": {file}" if file else "")))

        if not rid:
            bad("id", "empty id")
        elif rid in seen:
            bad("id", f"duplicate id {rid!r}")
        seen.add(rid)
        if row.split.strip() not in SPLITS:
            bad("split", f"unknown split {row.split!r}; expected one of {list(SPLITS)}")
        try:
            label = int(row.label.strip())
            if not 0 <= label < n_classes:
                raise ValueError
            labels[pos] = label
        except ValueError:
            bad("label", f"unknown label {row.label!r}; expected an integer from 0 to {n_classes - 1} "
                         f"({', '.join(f'{k} = {c}' for k, c in enumerate(classes))})")
        if row.text and not row.text.strip():
            bad("text", "text is only whitespace; leave the cell empty to mark the text as missing")
        for column, check in (("image", _check_image), ("audio", _check_audio)):
            rel = getattr(row, column)
            if not rel:
                continue
            file = root / rel.strip()
            if not file.is_file():
                bad(column, "missing file" if not file.exists() else "not a file", file)
                continue
            reason = check(str(file))
            if reason:
                bad(column, reason, file)
        if not (row.text or row.image or row.audio):
            bad("text/image/audio", "all three modalities are blank")

    frame["split"] = frame["split"].str.strip()
    frame["id"] = frame["id"].str.strip()
    frame["image"] = frame["image"].str.strip()
    frame["audio"] = frame["audio"].str.strip()
    skipped = []
    if problems:
        if on_error == "raise":
            first = problems[0][2]
            others = len({pos for pos, _, _ in problems}) - 1
            more = f" ({others} more bad row(s); on_error='skip' leaves them out)" if others else ""
            raise DataError(first + more)
        bad_rows = sorted({pos for pos, _, _ in problems})
        reasons = {}
        for pos, rid, msg in problems:
            reasons.setdefault(pos, (rid, msg))
        skipped = [reasons[pos] for pos in bad_rows]
        keep = np.ones(len(frame), dtype=bool)
        keep[bad_rows] = False
        frame, labels = frame[keep], labels[keep]
        warnings.warn(
            f"load_manifest skipped {len(skipped)} of {len(keep)} rows of {csv_path}; first: {skipped[0][1]} "
            "(see the dataset's .skipped for all)",
            UserWarning,
            stacklevel=2,
        )
    frame = frame.reset_index(drop=True)
    frame["label"] = labels.astype(np.int64)
    return MultimodalDataset(root=root, frame=frame, info=info, skipped=skipped)
