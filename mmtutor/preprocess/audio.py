"""Audio preprocessing: load to a fixed length, log-mel spectrogram, MFCC, SpecAugment masking.

Defined in the chapter on preprocessing. Waveforms are float32 in [-1, 1]; spectrograms are laid
out ``(frames, n_mels)`` (time first, like a sequence of feature vectors), or
``(n, frames, n_mels)`` for a batch.

Frame count: with ``center=True`` (librosa's default, used here) a clip of ``num_samples``
samples gives ``1 + num_samples // hop_length`` frames; the defaults (3 s at 16 kHz, hop 160 =
10 ms) give ``1 + 48000 // 160 = 301`` frames. :func:`num_frames` computes it.
"""

import numbers
import struct

import numpy as np
import scipy.fft

from mmtutor.preprocess._checks import check_existing_file, check_positive_int

__all__ = ["load_audio", "log_mel", "mfcc", "mfcc_from_log_mel", "spec_augment", "add_noise", "speech_power",
           "num_frames", "fit_audio_stats", "standardize_audio", "AMIN", "DB_FLOOR", "ACTIVE_LEVEL"]

AMIN = 1e-10  # smallest power before taking the log
DB_FLOOR = float(10.0 * np.log10(AMIN))  # -100 dB: the log-mel value of silence


def _check_sr(sr):
    return check_positive_int("sr", sr)


def _wav_truncation(path):
    """Return a message if ``path`` is a RIFF/WAVE file whose data chunk is cut short, else None.

    libsndfile reads a truncated WAV without complaint (it returns the samples that are there),
    which would silently give a shorter, different clip; the header says how long it should be.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not a plain WAV (or too short to be one): soundfile decides
        offset = 12
        while True:
            f.seek(offset)
            chunk = f.read(8)
            if len(chunk) < 8:
                return f"no 'data' chunk before the end of the file ({size} bytes)"
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                available = size - offset - 8
                if csize not in (0, 0xFFFFFFFF) and available < csize:  # 0 / -1: streamed, unknown size
                    return f"the header declares {csize} bytes of audio but the file holds {available}"
                return None
            offset += 8 + csize + (csize & 1)


def load_audio(path, sr=16000, seconds=3.0):
    """Read an audio file as a mono float32 waveform at ``sr``, padded or cut to ``seconds``.

    Defined in the chapter on preprocessing. The file is decoded with soundfile (the decoder
    that ``librosa.load`` tries first), mixed down to mono by averaging the channels, and
    resampled with ``librosa.resample`` (soxr, high quality) when its rate differs from ``sr``:
    the same result as ``librosa.load(path, sr=sr, mono=True)``, but a broken file raises a
    clear error instead of falling back to another decoder with warnings. Shorter clips are
    padded with zeros (silence) at the end, longer ones are cut.

    Parameters
    ----------
    path : str or path-like
        The audio file (WAV, FLAC, OGG, ...).
    sr : int, default 16000
        Target sampling rate in Hz.
    seconds : float or None, default 3.0
        Output duration: exactly ``round(sr * seconds)`` samples. None keeps the clip's length.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(round(sr * seconds),)``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated (a WAV whose header promises more audio than it holds), cannot
        be decoded, holds no samples or holds non-finite samples; the message names the path.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from mmtutor.preprocess import load_audio
    >>> path = os.path.join(tempfile.mkdtemp(), "beep.wav")
    >>> sf.write(path, 0.1 * np.ones(8000), 16000)  # half a second
    >>> load_audio(path, sr=16000, seconds=1.0).shape
    (16000,)
    """
    import librosa
    import soundfile as sf

    sr = _check_sr(sr)
    if seconds is not None:
        ok = isinstance(seconds, numbers.Real) and not isinstance(seconds, bool) and np.isfinite(seconds)
        if not ok or seconds <= 0 or round(sr * seconds) < 1:
            raise ValueError(f"seconds must be None or a positive number (at least one sample), got {seconds!r}")
    path = check_existing_file(path, "audio")
    problem = _wav_truncation(path)
    if problem:
        raise ValueError(f"audio file {str(path)!r} is truncated: {problem}")
    try:
        data, native_sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, EOFError) as exc:
        raise ValueError(f"could not decode audio file {str(path)!r}: {exc}") from None
    if data.size == 0:
        raise ValueError(f"audio file {str(path)!r} holds no samples")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"audio file {str(path)!r} holds non-finite samples (NaN or inf)")
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if native_sr != sr:
        y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if seconds is None:
        return y
    n = int(round(sr * seconds))
    if len(y) >= n:
        return y[:n].copy()
    return np.pad(y, (0, n - len(y)))


def num_frames(num_samples, hop_length=160):
    """Number of spectrogram frames for a clip of ``num_samples`` (centred frames).

    Defined in the chapter on preprocessing.

    Parameters
    ----------
    num_samples : int
        Length of the waveform.
    hop_length : int, default 160
        Samples between frames.

    Returns
    -------
    int
        ``1 + num_samples // hop_length``.

    Examples
    --------
    >>> from mmtutor.preprocess import num_frames
    >>> num_frames(3 * 16000)  # the default 3 s clip at 16 kHz, hop 10 ms
    301
    """
    num_samples = check_positive_int("num_samples", num_samples)
    hop_length = check_positive_int("hop_length", hop_length)
    return 1 + num_samples // hop_length


def _check_waveform(y):
    y = np.asarray(y)
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise ValueError(f"y must be a waveform of shape (samples,) or a batch (n, samples), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"y must be a float waveform in [-1, 1], got dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y holds non-finite values (NaN or inf)")
    return y.astype(np.float32, copy=False)


def _check_mel_settings(sr, n_fft, hop_length, n_mels, fmin, fmax):
    sr = _check_sr(sr)
    n_fft = check_positive_int("n_fft", n_fft, minimum=2)
    hop_length = check_positive_int("hop_length", hop_length)
    n_mels = check_positive_int("n_mels", n_mels)
    fmax = sr / 2 if fmax is None else fmax
    if not (isinstance(fmin, numbers.Real) and isinstance(fmax, numbers.Real) and 0 <= fmin < fmax <= sr / 2):
        raise ValueError(f"need 0 <= fmin < fmax <= sr/2 = {sr / 2}, got fmin={fmin!r}, fmax={fmax!r}")
    return sr, n_fft, hop_length, n_mels, float(fmin), float(fmax)


def log_mel(y, sr=16000, n_fft=512, hop_length=160, n_mels=64, *, fmin=0.0, fmax=None):
    """Log-mel spectrogram in decibels, time first.

    Defined in the chapter on preprocessing. The short-time Fourier transform (Hann window of
    ``n_fft`` samples, every ``hop_length`` samples, centred frames) gives a power spectrum per
    frame; ``n_mels`` triangular filters spaced on the mel scale (librosa's Slaney filters) pool
    it into bands; the power is then converted to decibels with a FIXED reference,
    ``10 * log10(max(power, 1e-10) / 1.0)``, and no ``top_db`` clipping. So the values are
    absolute levels: silence is exactly ``DB_FLOOR`` = -100 dB and full-scale audio reaches
    about +20 dB; loudness differences between clips are kept (``ref=np.max`` would erase them),
    and a clip gives the same numbers alone or inside a batch.

    Parameters
    ----------
    y : array-like of float
        A waveform ``(samples,)`` or a batch ``(n, samples)``; a batch is computed in one call.
    sr : int, default 16000
        Sampling rate of ``y`` in Hz.
    n_fft : int, default 512
        FFT window length (32 ms at 16 kHz).
    hop_length : int, default 160
        Samples between frames (10 ms at 16 kHz).
    n_mels : int, default 64
        Number of mel bands.
    fmin, fmax : float
        Frequency range of the filters; ``fmax=None`` means ``sr / 2``.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``(frames, n_mels)`` or ``(n, frames, n_mels)``, with
        ``frames = 1 + samples // hop_length`` (301 for 3 s at the defaults).

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import log_mel
    >>> log_mel(np.zeros((2, 48000), "float32")).shape
    (2, 301, 64)
    """
    import librosa

    y = _check_waveform(y)
    sr, n_fft, hop_length, n_mels, fmin, fmax = _check_mel_settings(sr, n_fft, hop_length, n_mels, fmin, fmax)
    power = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax,
        power=2.0, center=True, pad_mode="constant",
    )
    # librosa.power_to_db(power, ref=1.0, amin=AMIN, top_db=None), in float64 so that silence
    # is exactly DB_FLOOR.
    db = 10.0 * np.log10(np.maximum(power.astype(np.float64), AMIN))
    return np.ascontiguousarray(np.swapaxes(db, -1, -2), dtype=np.float32)


def mfcc_from_log_mel(log_mel_spec, n_mfcc=20):
    """MFCCs of a log-mel spectrogram: the DCT-II (orthonormal) over the mel bands.

    Defined in the chapter on preprocessing. See :func:`mfcc`.

    Parameters
    ----------
    log_mel_spec : array-like
        ``(frames, n_mels)`` or ``(n, frames, n_mels)``, in dB, as from :func:`log_mel`.
    n_mfcc : int, default 20
        Number of coefficients kept (the lowest ones); at most ``n_mels``.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``(..., frames, n_mfcc)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import mfcc_from_log_mel
    >>> mfcc_from_log_mel(np.zeros((301, 64)), n_mfcc=13).shape
    (301, 13)
    """
    spec = np.asarray(log_mel_spec)
    if spec.ndim not in (2, 3) or not np.issubdtype(spec.dtype, np.floating):
        raise ValueError(f"log_mel_spec must be a float array (frames, n_mels) or (n, frames, n_mels), got {spec.dtype} {spec.shape}")
    n_mfcc = check_positive_int("n_mfcc", n_mfcc)
    if n_mfcc > spec.shape[-1]:
        raise ValueError(f"n_mfcc must be at most n_mels = {spec.shape[-1]}, got {n_mfcc}")
    coeffs = scipy.fft.dct(spec.astype(np.float64), type=2, norm="ortho", axis=-1)[..., :n_mfcc]
    return np.ascontiguousarray(coeffs, dtype=np.float32)


def mfcc(y, sr=16000, n_mfcc=20, n_fft=512, hop_length=160, n_mels=64, *, fmin=0.0, fmax=None):
    """Mel-frequency cepstral coefficients, computed from the log-mel spectrogram.

    Defined in the chapter on preprocessing. MFCCs and a mel spectrogram are different things,
    often confused: the (log-)mel spectrogram is an image of energy per mel band and frame;
    the MFCCs are the discrete cosine transform (DCT-II, orthonormal) of each frame's log-mel
    vector, keeping the first ``n_mfcc`` coefficients. The DCT decorrelates the bands and the
    low coefficients describe the spectral envelope (the timbre of the voice), not the pitch.
    Equal to ``librosa.feature.mfcc(S=log_mel(...).T, n_mfcc=n_mfcc)``.

    Parameters
    ----------
    y : array-like of float
        A waveform ``(samples,)`` or a batch ``(n, samples)``.
    sr, n_fft, hop_length, n_mels, fmin, fmax
        As in :func:`log_mel`.
    n_mfcc : int, default 20
        Number of coefficients; at most ``n_mels``.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``(frames, n_mfcc)`` or ``(n, frames, n_mfcc)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import mfcc
    >>> mfcc(np.zeros(16000, "float32")).shape
    (101, 20)
    """
    n_mfcc = check_positive_int("n_mfcc", n_mfcc)
    if n_mfcc > check_positive_int("n_mels", n_mels):
        raise ValueError(f"n_mfcc must be at most n_mels = {n_mels}, got {n_mfcc}")
    spec = log_mel(y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax)
    return mfcc_from_log_mel(spec, n_mfcc=n_mfcc)


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ValueError(f"seed must be None, a non-negative integer or a numpy Generator, got {seed!r}")


def _draw_bands(rng, length, count, width):
    """Boolean vector of ``length`` with ``count`` bands of width uniform in [0, width] set."""
    masked = np.zeros(length, dtype=bool)
    for _ in range(count):
        w = min(int(rng.integers(0, width + 1)), length)
        start = int(rng.integers(0, length - w + 1))
        masked[start:start + w] = True
    return masked


#: A sample counts as speech (not pause) for :func:`speech_power` when ``|y|`` exceeds this.
ACTIVE_LEVEL = 0.01


def speech_power(y):
    """Mean power of the active samples of a waveform (``|y| > ACTIVE_LEVEL``): the speech, not the pauses.

    Defined in the chapter on error analysis (the stress test); the chapter on noisy and missing
    modalities trains with it. Falls back to the mean power of the
    whole clip when no sample is that loud (a very quiet clip); 0.0 for digital silence.

    Parameters
    ----------
    y : numpy.ndarray, shape (samples,)

    Returns
    -------
    float
    """
    y = _check_waveform(y)
    if y.ndim != 1:
        raise ValueError(f"speech_power takes one waveform of shape (samples,), got shape {y.shape}")
    active = y[np.abs(y) > ACTIVE_LEVEL]
    return float(np.mean((active if active.size else y).astype(np.float64) ** 2))


def add_noise(y, snr_db, seed=None):
    """Add white Gaussian noise at a signal-to-noise ratio measured on the speech.

    Defined in the chapter on error analysis (the stress test); the chapter on noisy and missing
    modalities trains with it. The noise power is
    ``speech_power(y) / 10 ** (snr_db / 10)``; the result is clipped to [-1, 1] like a recording.
    Digital silence stays silent (its speech power is 0).

    Parameters
    ----------
    y : numpy.ndarray, shape (samples,)
        Waveform in [-1, 1].
    snr_db : float
        Signal-to-noise ratio in dB; lower is noisier (0 dB: noise as loud as the speech).
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    numpy.ndarray, float32, the shape of ``y``

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import add_noise, speech_power
    >>> tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    >>> noisy = add_noise(tone, 10.0, seed=0)
    >>> float(round(10 * np.log10(speech_power(tone) / np.mean((noisy - tone) ** 2)), 1))
    10.0
    """
    power = speech_power(y)
    if isinstance(snr_db, bool) or not isinstance(snr_db, numbers.Real) or not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite number of dB, got {snr_db!r}")
    y = np.asarray(y, dtype=np.float32)
    noise = _rng(seed).standard_normal(y.shape) * np.sqrt(power / 10.0 ** (float(snr_db) / 10.0))
    return np.clip(y + noise, -1.0, 1.0).astype(np.float32)


def spec_augment(spec, time_masks=2, time_width=10, freq_masks=2, freq_width=8, seed=None,
                 *, mask_value=None, return_mask=False):
    """SpecAugment-style masking: blank random time and frequency bands (a masked copy).

    Defined in the chapter on preprocessing. Following Park et al. (2019), each time mask covers
    ``w`` consecutive frames with ``w`` drawn uniformly from ``0 .. time_width`` at a uniform
    position, and each frequency mask likewise ``0 .. freq_width`` consecutive mel bands; masks
    may overlap. Masked cells are set to ``mask_value``, by default the mean of that
    spectrogram (for a dB spectrogram 0 would be a loud value, not "nothing"). The input is
    never modified. Use it on training data only.

    Parameters
    ----------
    spec : array-like
        ``(frames, n_mels)`` or a batch ``(n, frames, n_mels)``; each item gets its own masks.
    time_masks, freq_masks : int, default 2
        Number of time and frequency masks (0 for none).
    time_width : int, default 10
        Largest width of a time mask, in frames.
    freq_width : int, default 8
        Largest width of a frequency mask, in mel bands.
    seed : int, numpy.random.Generator or None
        Randomness; the same seed gives the same masks.
    mask_value : float, optional
        Value written into masked cells; None means each spectrogram's own mean.
    return_mask : bool, default False
        Also return the boolean array (same shape as ``spec``) that is True where masked.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        The masked float32 copy (and the mask when ``return_mask``).

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import spec_augment
    >>> spec = np.zeros((301, 64), "float32")
    >>> out, mask = spec_augment(spec, seed=0, return_mask=True)
    >>> out.shape, bool(mask.any()), bool(spec.any())
    ((301, 64), True, False)
    """
    spec = np.asarray(spec)
    if spec.ndim not in (2, 3) or not np.issubdtype(spec.dtype, np.number):
        raise ValueError(f"spec must be a numeric array (frames, n_mels) or (n, frames, n_mels), got {spec.dtype} {spec.shape}")
    time_masks = check_positive_int("time_masks", time_masks, minimum=0)
    freq_masks = check_positive_int("freq_masks", freq_masks, minimum=0)
    time_width = check_positive_int("time_width", time_width, minimum=0)
    freq_width = check_positive_int("freq_width", freq_width, minimum=0)
    if mask_value is not None and not (isinstance(mask_value, numbers.Real) and np.isfinite(mask_value)):
        raise ValueError(f"mask_value must be None or a finite number, got {mask_value!r}")
    rng = _rng(seed)
    batch = spec.reshape((-1,) + spec.shape[-2:]).astype(np.float32)  # a copy: input untouched
    mask = np.zeros(batch.shape, dtype=bool)
    frames, bands = batch.shape[1:]
    for i in range(len(batch)):
        in_time = _draw_bands(rng, frames, time_masks, time_width)
        in_freq = _draw_bands(rng, bands, freq_masks, freq_width)
        mask[i] = in_time[:, None] | in_freq[None, :]
        fill = float(batch[i].mean()) if mask_value is None else float(mask_value)
        batch[i][mask[i]] = fill
    out = batch.reshape(spec.shape)
    return (out, mask.reshape(spec.shape)) if return_mask else out


def fit_audio_stats(train_log_mel, mask=None, *, min_std=1e-3):
    """Per-mel-band mean and standard deviation of the TRAINING log-mel spectrograms.

    Defined in the chapter on fusion (the audio counterpart of
    :func:`~mmtutor.preprocess.fit_image_stats`). Fit on the training split only and apply the
    same statistics to every split and to new recordings with :func:`standardize_audio`.

    Parameters
    ----------
    train_log_mel : array-like
        Shape ``(n, frames, n_mels)``.
    mask : array-like of bool, optional
        Shape ``(n,)``; clips where it is False (missing ones, the log-mel of silence) are left
        out. With no clip present at all, every clip is used.
    min_std : float, default 1e-3
        Floor of the standard deviation, so that a constant band does not divide by zero.

    Returns
    -------
    dict
        ``{"mean": [...], "std": [...]}``: lists of ``n_mels`` floats (JSON-ready, as stored in
        a run's ``config.json``).

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import fit_audio_stats
    >>> x = np.stack([np.zeros((4, 2)), np.full((4, 2), 2.0)]).astype("float32")
    >>> fit_audio_stats(x)
    {'mean': [1.0, 1.0], 'std': [1.0, 1.0]}
    """
    x = np.asarray(train_log_mel)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"train_log_mel must have shape (n >= 1, frames, n_mels), got {x.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(x),):
            raise ValueError(f"mask must have shape ({len(x)},), got {mask.shape}")
        if mask.any():
            x = x[mask]
    x = x.astype(np.float32, copy=False)
    mean = x.mean(axis=(0, 1))
    std = np.maximum(x.std(axis=(0, 1)), min_std)
    return {"mean": mean.astype(float).tolist(), "std": std.astype(float).tolist()}


def standardize_audio(log_mel_batch, present, stats):
    """Standardise log-mel spectrograms per mel band; a missing clip becomes all zeros.

    Defined in the chapter on fusion. The same function prepares training
    features and new recordings, so a model never sees inputs prepared another way.

    Parameters
    ----------
    log_mel_batch : array-like, shape (n, frames, n_mels)
    present : array-like of bool, shape (n,)
        False for a missing clip: its values are set to 0, the standardised mean (the fusion
        model's mask hides it anyway).
    stats : dict
        ``{"mean", "std"}`` from :func:`fit_audio_stats`, ``n_mels`` values each.

    Returns
    -------
    numpy.ndarray
        float32, same shape.
    """
    x = np.asarray(log_mel_batch, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"log_mel_batch must have shape (n, frames, n_mels), got {x.shape}")
    try:
        mean = np.asarray(stats["mean"], dtype=np.float32)
        std = np.asarray(stats["std"], dtype=np.float32)
    except (TypeError, KeyError, ValueError):
        raise ValueError(f"stats must be a dict with 'mean' and 'std' lists, got {stats!r}"[:300]) from None
    if mean.shape != (x.shape[-1],) or std.shape != (x.shape[-1],) or not np.all(std > 0):
        raise ValueError(
            f"stats must hold {x.shape[-1]} means and {x.shape[-1]} positive standard deviations (one per mel "
            f"band), got {mean.shape[0] if mean.ndim else 'a scalar'} and {std.shape[0] if std.ndim else 'a scalar'}"
        )
    present = np.asarray(present, dtype=bool)
    if present.shape != (len(x),):
        raise ValueError(f"present must have shape ({len(x)},), got {present.shape}")
    out = (x - mean) / std
    out[~present] = 0.0
    return out.astype(np.float32)
