"""Text preprocessing: a vocabulary fitted on the training split, texts to padded integer ids.

Defined in the chapter on preprocessing.
"""

import json
import os
from pathlib import Path

import numpy as np

from mmtutor.preprocess._checks import check_positive_int

__all__ = ["TextVectorizer"]

_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
_FORMAT = "mmtutor.TextVectorizer"
_FORMAT_VERSION = 1
PAD, OOV = "", "[UNK]"  # ids 0 and 1 in every vocabulary


def _check_texts(name, texts):
    """Return ``texts`` as a list of str; refuse a lone string and non-string items."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a list of strings, got a single string {texts[:40]!r}; wrap it in a list")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] must be a string ('' for a missing text), got {t!r} of type {type(t).__name__}")
    return texts


class TextVectorizer:
    """Turn texts into fixed-length sequences of integer token ids.

    Defined in the chapter on preprocessing. A thin, saveable wrapper around
    ``keras.layers.TextVectorization``: :meth:`fit` learns the vocabulary from the TRAINING texts
    only (a word seen only in validation or test data must map to the out-of-vocabulary id, as it
    would for a new user's review), :meth:`transform` standardises, splits on whitespace, looks
    the words up and pads or truncates to ``seq_len``.

    Id 0 is padding and id 1 is the out-of-vocabulary token ``"[UNK]"``; the learnt words follow,
    most frequent first (ties in reverse alphabetical order, Keras' rule). A missing text ``""``
    gives a row of zeros.

    Parameters
    ----------
    max_tokens : int, default 5000
        Largest vocabulary size, counting the padding and OOV ids.
    seq_len : int, default 24
        Length of every output row: longer texts are cut at the end, shorter ones padded with 0
        at the end.
    standardize : {"lower_and_strip_punctuation", "lower", "strip_punctuation", None}
        Text clean-up before splitting into words.

    Examples
    --------
    >>> from mmtutor.preprocess import TextVectorizer
    >>> vec = TextVectorizer(seq_len=5).fit(["a great film", "a dull film"])
    >>> vec.transform(["great film!", "boring film", ""]).tolist()
    [[4, 2, 0, 0, 0], [1, 2, 0, 0, 0], [0, 0, 0, 0, 0]]
    """

    def __init__(self, max_tokens=5000, seq_len=24, standardize="lower_and_strip_punctuation"):
        self.max_tokens = check_positive_int("max_tokens", max_tokens, minimum=3)
        self.seq_len = check_positive_int("seq_len", seq_len)
        if standardize not in _STANDARDIZE:
            raise ValueError(f"standardize must be one of {_STANDARDIZE}, got {standardize!r}")
        self.standardize = standardize
        self._layer = None

    # -- fitting and transforming -------------------------------------------------------------

    def _make_layer(self, vocabulary=None):
        import keras

        return keras.layers.TextVectorization(
            max_tokens=self.max_tokens,
            standardize=self.standardize,
            split="whitespace",
            output_mode="int",
            output_sequence_length=self.seq_len,
            vocabulary=vocabulary,
        )

    def fit(self, train_texts):
        """Learn the vocabulary from the training texts.

        Parameters
        ----------
        train_texts : sequence of str
            Texts of the training split only; ``""`` (missing) texts are ignored.

        Returns
        -------
        TextVectorizer
            ``self``, fitted.

        Raises
        ------
        ValueError
            If the list is empty, every text is empty, or no text contains a word.
        TypeError
            If ``train_texts`` is a single string or holds non-strings.
        """
        texts = _check_texts("train_texts", train_texts)
        if not texts:
            raise ValueError("train_texts is empty: fit needs at least one training text")
        nonempty = [t for t in texts if t.strip()]
        if not nonempty:
            raise ValueError(f"all {len(texts)} train_texts are empty: there is no word to learn a vocabulary from")
        layer = self._make_layer()
        layer.adapt(np.array(nonempty, dtype=object), batch_size=1024)
        if len(layer.get_vocabulary()) <= 2:
            raise ValueError(
                f"no word left in train_texts after standardize={self.standardize!r} "
                "(only punctuation?): the vocabulary would be empty"
            )
        self._layer = layer
        return self

    def transform(self, texts):
        """Map texts to token ids.

        Parameters
        ----------
        texts : sequence of str
            Any texts (any split); ``""`` for a missing text.

        Returns
        -------
        numpy.ndarray
            int32 array of shape ``(len(texts), seq_len)``; 0 = padding, 1 = out of vocabulary.

        Raises
        ------
        RuntimeError
            If the vectorizer is not fitted yet.
        """
        self._check_fitted("transform")
        texts = _check_texts("texts", texts)
        if not texts:
            return np.zeros((0, self.seq_len), dtype=np.int32)
        ids = self._layer(np.array(texts, dtype=object))
        return np.asarray(ids).astype(np.int32)

    def fit_transform(self, train_texts):
        """:meth:`fit` on ``train_texts``, then :meth:`transform` them."""
        return self.fit(train_texts).transform(train_texts)

    def _check_fitted(self, action):
        if self._layer is None:
            raise RuntimeError(
                f"this TextVectorizer is not fitted: call .fit(train_texts) (training split only) "
                f"or TextVectorizer.load(path) before .{action}"
            )

    # -- inspection ---------------------------------------------------------------------------

    @property
    def is_fitted(self):
        """bool: whether a vocabulary was learnt or loaded."""
        return self._layer is not None

    @property
    def vocabulary(self):
        """list of str: the tokens by id; ``vocabulary[0] == ""`` (padding), ``[1] == "[UNK]"``."""
        self._check_fitted("vocabulary")
        return [str(t) for t in self._layer.get_vocabulary()]

    @property
    def vocab_size(self):
        """int: number of ids, padding and OOV included (the input size of an Embedding)."""
        return len(self.vocabulary)

    def get_config(self):
        """dict: the settings (not the vocabulary) that define this vectorizer."""
        return {"max_tokens": self.max_tokens, "seq_len": self.seq_len, "standardize": self.standardize}

    def __repr__(self):
        state = f"vocab_size={self.vocab_size}" if self.is_fitted else "not fitted"
        return (
            f"TextVectorizer(max_tokens={self.max_tokens}, seq_len={self.seq_len}, "
            f"standardize={self.standardize!r}; {state})"
        )

    # -- saving and loading -------------------------------------------------------------------

    def save(self, path):
        """Write the settings and vocabulary to a JSON file.

        Parameters
        ----------
        path : str or path-like
            Output file (conventionally ``*.json``); its folder must exist.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        self._check_fitted("save")
        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"folder of path does not exist: {str(path.parent)!r}")
        payload = {"format": _FORMAT, "format_version": _FORMAT_VERSION, **self.get_config(),
                   "vocabulary": self.vocabulary}
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path):
        """Read a vectorizer written by :meth:`save`; it gives the same ids, with no refitting.

        Parameters
        ----------
        path : str or path-like
            A JSON file written by :meth:`save`.

        Returns
        -------
        TextVectorizer
            A fitted vectorizer.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        ValueError
            If the file is not a saved TextVectorizer (the message names the path).
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a string or path, got {path!r}")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TextVectorizer file not found: {str(path)!r}")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{str(path)!r} is not a saved TextVectorizer (not valid JSON: {exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{str(path)!r} is not a saved TextVectorizer (no format={_FORMAT!r} entry)")
        if payload.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{str(path)!r} has TextVectorizer format_version {payload.get('format_version')!r}; "
                f"this mmtutor reads version {_FORMAT_VERSION}"
            )
        vocab = payload.get("vocabulary")
        ok = (isinstance(vocab, list) and len(vocab) > 2 and vocab[:2] == [PAD, OOV]
              and all(isinstance(t, str) and t for t in vocab[2:]) and len(set(vocab)) == len(vocab))
        if not ok:
            raise ValueError(
                f"{str(path)!r}: 'vocabulary' must be a list of distinct strings starting with "
                f"{PAD!r}, {OOV!r} and at least one word"
            )
        try:
            vec = cls(**{k: payload[k] for k in ("max_tokens", "seq_len", "standardize")})
        except KeyError as exc:
            raise ValueError(f"{str(path)!r} lacks the setting {exc.args[0]!r}") from None
        if len(vocab) > vec.max_tokens:
            raise ValueError(f"{str(path)!r}: vocabulary has {len(vocab)} tokens, more than max_tokens={vec.max_tokens}")
        vec._layer = vec._make_layer(vocabulary=vocab[2:])
        return vec
