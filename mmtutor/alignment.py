"""Aligning modalities in time: frames and seconds, resampling, DTW paths, word timings.

Defined in the chapter on challenges (aligning modalities in time). Features here are arrays of
shape ``(frames, dims)``: time runs along the first axis, as in :func:`mmtutor.preprocess.mfcc`.
Frame ``k`` of a sequence with frame rate ``r`` (frames per second, ``sr / hop_length`` for
centred spectrogram frames) stands for the instant ``k / r`` seconds.
"""

import numpy as np

from mmtutor._validation import check_choice, check_float, check_int

__all__ = [
    "frames_to_seconds", "seconds_to_frames", "resample_features", "dtw_path", "boundaries_from_path",
    "uniform_starts", "timing_error_summary", "utterance_features", "align_words", "review_word_times",
]

# The step sizes of librosa.sequence.dtw's default step pattern, in the order of its step matrix.
_STEPS = np.array([[1, 1], [0, 1], [1, 0]])


def _check_rate(value, name):
    return check_float(value, name, low=0.0, low_open=True)


def frames_to_seconds(frames, *, hop_length, sr):
    """The instant (in seconds) that each frame index stands for: ``frames * hop_length / sr``.

    Defined in the chapter on challenges.

    Parameters
    ----------
    frames : array-like of int
        Frame indices (non-negative).
    hop_length : int
        Samples between frames.
    sr : int or float
        Sample rate of the waveform the frames were computed from.

    Returns
    -------
    numpy.ndarray
        float64 seconds, same shape as ``frames``.

    Examples
    --------
    >>> frames_to_seconds([0, 100], hop_length=160, sr=16000)
    array([0., 1.])
    """
    hop_length = check_int(hop_length, "hop_length", minimum=1)
    sr = _check_rate(sr, "sr")
    frames = np.asarray(frames)
    if frames.dtype.kind not in "iu":
        raise TypeError(f"frames must be integer frame indices, got dtype {frames.dtype}")
    if frames.size and frames.min() < 0:
        raise ValueError(f"frames must be non-negative, got {frames.min()}")
    return frames.astype(np.float64) * hop_length / sr


def seconds_to_frames(seconds, *, hop_length, sr):
    """The nearest frame index of each instant: ``round(seconds * sr / hop_length)``.

    Defined in the chapter on challenges.

    Parameters
    ----------
    seconds : array-like of float
        Instants, finite and non-negative.
    hop_length : int
    sr : int or float

    Returns
    -------
    numpy.ndarray
        int64 frame indices.

    Examples
    --------
    >>> seconds_to_frames([0.0, 0.5, 1.004], hop_length=160, sr=16000)
    array([  0,  50, 100])
    """
    hop_length = check_int(hop_length, "hop_length", minimum=1)
    sr = _check_rate(sr, "sr")
    seconds = np.asarray(seconds, dtype=np.float64)
    if not np.all(np.isfinite(seconds)) or (seconds.size and seconds.min() < 0):
        raise ValueError("seconds must be finite and non-negative")
    return np.round(seconds * sr / hop_length).astype(np.int64)


def resample_features(features, src_rate, dst_rate, *, kind="linear", num_frames=None):
    """Bring a sequence of frames to another frame rate.

    Defined in the chapter on challenges. Source frame ``k`` stands for time ``k / src_rate``;
    output frame ``j`` for ``j / dst_rate``. ``"linear"`` interpolates each feature between the
    two nearest source frames (right for continuous features such as MFCCs); ``"nearest"`` and
    ``"previous"`` copy a source frame (right for labels: a frame between word 2 and word 3
    belongs to one of them, never to "word 2.5"). Times past the last source frame repeat it.

    Parameters
    ----------
    features : array-like, shape (frames,) or (frames, dims)
        The sequence, time along the first axis.
    src_rate, dst_rate : float
        Frame rates in frames per second (``sr / hop_length``).
    kind : {"linear", "nearest", "previous"}, default "linear"
    num_frames : int, optional
        Number of output frames; default covers the source's span,
        ``floor((frames - 1) * dst_rate / src_rate) + 1``.

    Returns
    -------
    numpy.ndarray
        Shape ``(num_frames,)`` or ``(num_frames, dims)``; float64 for ``"linear"``, the input's
        dtype otherwise.

    Examples
    --------
    >>> resample_features([0.0, 1.0, 2.0], 1.0, 2.0)
    array([0. , 0.5, 1. , 1.5, 2. ])
    >>> resample_features([0, 1, 2], 1.0, 2.0, kind="nearest")
    array([0, 1, 1, 2, 2])
    """
    x = np.asarray(features)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ValueError(f"features must have shape (frames,) or (frames, dims) with frames > 0, got {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"features must be numeric, got dtype {x.dtype}")
    src_rate = _check_rate(src_rate, "src_rate")
    dst_rate = _check_rate(dst_rate, "dst_rate")
    kind = check_choice(kind, "kind", ("linear", "nearest", "previous"))
    n_src = x.shape[0]
    if num_frames is None:
        num_frames = int(np.floor((n_src - 1) * dst_rate / src_rate + 1e-9)) + 1
    num_frames = check_int(num_frames, "num_frames", minimum=1)
    pos = np.arange(num_frames) * (src_rate / dst_rate)  # output times, in source frames
    if kind == "linear":
        if x.dtype.kind == "b":
            raise TypeError("kind='linear' needs continuous features; use 'nearest' for labels or flags")
        xs = np.arange(n_src)
        flat = x.reshape(n_src, -1).astype(np.float64)
        out = np.stack([np.interp(pos, xs, flat[:, d]) for d in range(flat.shape[1])], axis=1)
        return out.reshape((num_frames,) + x.shape[1:])
    idx = np.floor(pos + 1e-9) if kind == "previous" else np.floor(pos + 0.5)
    return x[np.minimum(idx.astype(np.int64), n_src - 1)]


def _check_sequence(x, name):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (frames, dims) with frames > 0, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def dtw_path(query, reference, *, metric="cosine", open_end=False):
    """Dynamic time warping between two feature sequences (``librosa.sequence.dtw``).

    Defined in the chapter on challenges. The path starts at the first frame of both and
    moves by steps (1, 1), (0, 1) or (1, 0), minimising the summed frame distances. By default
    it ends at the last frame of both. With ``open_end=True`` it ends at the last query frame
    but anywhere in the reference, at the end with the smallest cost per step
    (``D[-1, j] / (n_query + j + 1)``): for a query that holds only the beginning of the
    reference, such as a clip that was cut.

    Parameters
    ----------
    query, reference : array-like, shape (frames, dims)
        The two sequences, same ``dims``, time along the first axis.
    metric : str, default "cosine"
        Frame distance, any of scipy's ``cdist`` metrics.
    open_end : bool, default False

    Returns
    -------
    path : numpy.ndarray
        int64 ``(steps, 2)``: pairs ``(query_frame, reference_frame)`` in time order.
    cost : float
        Summed distance along the path divided by its number of steps.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[0.0], [1.0], [2.0]])
    >>> path, cost = dtw_path(a, np.array([[0.0], [0.0], [1.0], [2.0]]), metric="euclidean")
    >>> path.tolist(), cost
    ([[0, 0], [0, 1], [1, 2], [2, 3]], 0.0)
    """
    import librosa

    q = _check_sequence(query, "query")
    r = _check_sequence(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query and reference must have the same dims, got {q.shape[1]} and {r.shape[1]}")
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a str such as 'cosine', got {metric!r}")
    if not isinstance(open_end, (bool, np.bool_)):
        raise TypeError(f"open_end must be True or False, got {open_end!r}")
    D, steps = librosa.sequence.dtw(X=q.T, Y=r.T, metric=metric, backtrack=False, return_steps=True)
    n, m = D.shape
    j = int(np.argmin(D[-1] / (n + np.arange(m)))) if open_end else m - 1
    end_cost = float(D[-1, j])
    a, b = n - 1, j
    path = [(a, b)]
    while a > 0 or b > 0:
        s = _STEPS[int(steps[a, b])]
        a, b = a - s[0], b - s[1]
        path.append((a, b))
    path = np.array(path[::-1], dtype=np.int64)
    return path, end_cost / len(path)


def boundaries_from_path(path, reference_frames):
    """Map frames of the reference to the query along a DTW path.

    Defined in the chapter on challenges. For each reference frame ``f`` (e.g. where a word
    starts in the reference), the first query frame that the path pairs with a reference frame
    ``>= f``; ``-1`` where the path ends before ``f`` (the query does not reach it).

    Parameters
    ----------
    path : array-like of int, shape (steps, 2)
        ``(query_frame, reference_frame)`` pairs in time order, as from :func:`dtw_path`.
    reference_frames : array-like of int
        Non-negative frame indices of the reference.

    Returns
    -------
    numpy.ndarray
        int64 query frames, one per reference frame.

    Examples
    --------
    >>> boundaries_from_path([[0, 0], [1, 0], [2, 1], [3, 2]], [0, 1, 2, 5])
    array([ 0,  2,  3, -1])
    """
    p = np.asarray(path)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] == 0:
        raise ValueError(f"path must have shape (steps, 2), got {p.shape}")
    if p.dtype.kind not in "iu":
        raise TypeError(f"path must hold integer frame indices, got dtype {p.dtype}")
    if np.any(np.diff(p, axis=0) < 0):
        raise ValueError("path must be monotone: both columns non-decreasing, in time order")
    f = np.asarray(reference_frames)
    if f.dtype.kind not in "iu":
        raise TypeError(f"reference_frames must be integer frame indices, got dtype {f.dtype}")
    if f.size and f.min() < 0:
        raise ValueError(f"reference_frames must be non-negative, got {f.min()}")
    idx = np.searchsorted(p[:, 1], f, side="left")
    out = np.full(f.shape, -1, dtype=np.int64)
    ok = idx < len(p)
    out[ok] = p[idx[ok], 0]
    return out


def uniform_starts(n_words, start, end):
    """The naive alignment: ``n_words`` start times spread evenly over ``[start, end)``.

    Defined in the chapter on challenges.

    Examples
    --------
    >>> uniform_starts(4, 0.0, 2.0)
    array([0. , 0.5, 1. , 1.5])
    """
    n_words = check_int(n_words, "n_words", minimum=1)
    start = check_float(start, "start")
    end = check_float(end, "end")
    if end <= start:
        raise ValueError(f"end must be after start, got start={start} and end={end}")
    return start + (end - start) * np.arange(n_words) / n_words


def timing_error_summary(true_starts, estimated_starts, *, tolerance=0.05):
    """Summarise word-timing errors: median, 90th percentile, share within a tolerance.

    Defined in the chapter on challenges. An estimate of NaN means the method placed no
    start for that word (it said the word is not in the clip); such words count as *missed*
    and are left out of the error statistics, so read ``missed`` beside them.

    Parameters
    ----------
    true_starts, estimated_starts : array-like of float, same shape
        Seconds; the true ones must be finite.
    tolerance : float, default 0.05
        Seconds, for ``within``.

    Returns
    -------
    dict
        ``"words"``, ``"missed"``, ``"median_ms"``, ``"p90_ms"``, ``"mean_ms"`` (absolute errors
        of the placed words in milliseconds) and ``"within"`` (share of all words placed within
        ``tolerance`` of the truth).

    Examples
    --------
    >>> s = timing_error_summary([0.0, 1.0, 2.0], [0.01, 1.2, float("nan")])
    >>> s["missed"], round(s["median_ms"], 6), round(s["within"], 3)
    (1, 105.0, 0.333)
    """
    t = np.asarray(true_starts, dtype=np.float64).ravel()
    e = np.asarray(estimated_starts, dtype=np.float64).ravel()
    if t.shape != e.shape:
        raise ValueError(f"true_starts and estimated_starts must have the same length, got {t.size} and {e.size}")
    if t.size == 0:
        raise ValueError("true_starts is empty")
    if not np.all(np.isfinite(t)):
        raise ValueError("true_starts must be finite")
    tolerance = check_float(tolerance, "tolerance", low=0.0)
    placed = np.isfinite(e)
    err = np.abs(e[placed] - t[placed]) * 1000.0
    stat = (lambda f: float(f(err))) if err.size else (lambda f: float("nan"))
    return {
        "words": int(t.size), "missed": int((~placed).sum()),
        "median_ms": stat(np.median), "p90_ms": stat(lambda v: np.percentile(v, 90)),
        "mean_ms": stat(np.mean), "within": float((err <= tolerance * 1000.0 + 1e-9).sum() / t.size),
    }


def utterance_features(wave, sr=16000, hop_length=160, *, n_mfcc=20):
    """MFCCs for alignment: coefficients 1.. (c0, the loudness, dropped), each standardised.

    Defined in the chapter on challenges. Standardising each coefficient over the utterance
    (cepstral mean and variance normalisation) removes much of what differs between two
    speakers or microphones and keeps what the words share.

    Returns
    -------
    numpy.ndarray
        float64 ``(frames, n_mfcc - 1)`` with ``frames = 1 + len(wave) // hop_length``.
    """
    from mmtutor.preprocess import mfcc

    n_fft = 1 << int(np.ceil(np.log2(max(2 * check_int(hop_length, "hop_length", minimum=1), 512 * sr / 16000))))
    m = mfcc(np.asarray(wave, dtype=np.float32), sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length,
             n_mels=40)[:, 1:].astype(np.float64)
    return (m - m.mean(axis=0)) / (m.std(axis=0) + 1e-6)


def align_words(wave, text, *, sr=16000, hop_length=160, references=((175, 0),), metric="cosine"):
    """Estimate when each word of ``text`` starts in ``wave``, by DTW against synthetic speech.

    Defined in the chapter on challenges. For each ``(rate, word_gap)`` in ``references``,
    espeak-ng speaks ``text`` in a neutral voice (``synthesize_with_words``, which also says
    where each word starts in it); an open-end DTW (:func:`dtw_path`) between the MFCCs
    (:func:`utterance_features`) of ``wave`` and of the reference maps the reference's word
    starts into ``wave``. The reference with the smallest cost per step is kept.

    Parameters
    ----------
    wave : array-like of float
        The utterance, mono, at ``sr``.
    text : str
        What it says.
    sr, hop_length : int
    references : sequence of (int, int), default ((175, 0),)
        Speaking rates (words per minute) and word gaps (10 ms units) of the references to try.
    metric : str, default "cosine"

    Returns
    -------
    dict
        ``"start"`` float64 seconds per whitespace word (NaN where the clip ends before the
        word), ``"word"`` the words, ``"reference"`` the ``(rate, word_gap)`` kept, ``"cost"``.
    """
    from mmtutor.data.speech import synthesize_with_words

    sr = check_int(sr, "sr", minimum=1000)
    hop_length = check_int(hop_length, "hop_length", minimum=1)
    refs = [tuple(r) for r in references]
    if not refs or any(len(r) != 2 for r in refs):
        raise ValueError(f"references must be a non-empty list of (rate, word_gap) pairs, got {references!r}")
    query = utterance_features(wave, sr, hop_length)
    best = None
    for rate, gap in refs:
        ref_wave, words = synthesize_with_words(text, rate=rate, word_gap=gap, sr=sr)
        path, cost = dtw_path(query, utterance_features(ref_wave, sr, hop_length), metric=metric, open_end=True)
        if best is None or cost < best["cost"]:
            frames = seconds_to_frames(np.nan_to_num(words["start"]), hop_length=hop_length, sr=sr)
            hit = boundaries_from_path(path, frames)
            start = np.where(hit >= 0, hit * hop_length / sr, np.nan)
            start[np.isnan(words["start"])] = np.nan
            best = {"start": start, "word": words["word"], "reference": (rate, gap), "cost": cost}
    return best


def _render_plan(text, tone, rng, sr):
    """The random choices ``spoken_reviews._render_audio`` makes, drawn in the same order."""
    from mmtutor.data.spoken_reviews import _VOICES, _prosody

    p = _prosody(tone, rng)
    voice = _VOICES[int(rng.integers(len(_VOICES)))]
    spoken = text.strip().rstrip(".!?") + p["end"]
    seed = int(rng.integers(2**31))
    wobble = (rng.uniform(1.5, 2.5), rng.uniform(0, 2 * np.pi)) if p["wobble"] else None
    start = int(rng.integers(0, int(0.15 * sr)))
    return {"prosody": p, "voice": voice, "spoken": spoken, "seed": seed, "wobble": wobble, "offset": start}


def review_word_times(dataset, index):
    """The generator's truth: when each word of a spoken review starts and ends in its clip.

    Defined in the chapter on challenges. Re-draws the random choices the dataset generator
    made for the review (voice, prosody, start offset), speaks it again with
    ``synthesize_with_words`` and shifts espeak-ng's word events by the offset.

    Parameters
    ----------
    dataset : mmtutor.data.MultimodalDataset
        A generated spoken-reviews dataset (``load_spoken_reviews()``).
    index : int
        Position of the review in ``dataset.frame``; its text and audio must be present.

    Returns
    -------
    dict
        ``"word"`` (list of str, the words as spoken, final punctuation as the voice ends it),
        ``"start"``, ``"end"`` (float64 seconds in the clip), ``"in_clip"`` (bool: the word
        starts before the clip ends), ``"offset"`` (seconds of lead-in before the speech).
    """
    from mmtutor.data.speech import synthesize_with_words

    frame = getattr(dataset, "frame", None)
    info = getattr(dataset, "info", None) or {}
    if frame is None or "audio_shows" not in frame.columns or "seed" not in info:
        raise TypeError("dataset must be a generated spoken-reviews dataset (mmtutor.data.load_spoken_reviews())")
    index = check_int(index, "index", minimum=0, maximum=len(frame) - 1)
    row = frame.iloc[index]
    if row["missing_text"] or row["missing_audio"]:
        raise ValueError(f"review {row['id']} has no text or no audio; pick one with both")
    sr = int(info.get("sample_rate", 16000))
    seconds = float(info.get("audio_seconds", 3.0))
    rng = np.random.default_rng([int(info["seed"]), int(str(row["id"])[2:]), 3])
    plan = _render_plan(row["text"], row["audio_shows"], rng, sr)
    p = plan["prosody"]
    _, words = synthesize_with_words(plan["spoken"], rate=p["rate"], pitch=p["pitch"],
                                     pitch_range=p["pitch_range"], volume=p["volume"], voice=plan["voice"],
                                     sr=sr, seed=plan["seed"], word_gap=p["word_gap"])
    offset = plan["offset"] / sr
    start, end = words["start"] + offset, np.minimum(words["end"] + offset, seconds)
    return {"word": words["word"], "start": start, "end": end, "in_clip": start < seconds, "offset": offset}
