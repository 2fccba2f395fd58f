"""Text to speech with espeak-ng, through the ``espeakng-loader`` wheel (no system package).

Defined in the chapter on preprocessing ("Meet the data"): the spoken reviews of the embedded
dataset are voiced here, and a reader can voice a review of their own the same way.

espeak-ng is a C library. The ``espeakng-loader`` wheel ships the compiled library and its voice
data; this module loads the library with :mod:`ctypes`, initialises it in *synchronous* mode
(``espeak_Synth`` returns when the whole text is spoken) and registers a callback that collects
the 16-bit samples it produces at 22050 Hz. The library keeps global state, so each call loads a
fresh private copy of it (the same arguments then give the same samples, bit for bit) and calls
are serialised by a lock.
"""

import ctypes
import ctypes.util
import os
import shutil
import tempfile
import threading

import numpy as np

from mmtutor._fs import sigint_deferred

__all__ = ["synthesize", "synthesize_with_words", "ESPEAK_SAMPLE_RATE", "SpeechError"]

#: The rate at which espeak-ng produces samples (its voices are built for it).
ESPEAK_SAMPLE_RATE = 22050

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_EE_OK = 0

# typedef int (t_espeak_callback)(short *wav, int numsamples, espeak_EVENT *events);
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
# espeak_EVENT_TYPE values of the events the word timings use.
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END = 0, 1, 5


class _Event(ctypes.Structure):
    """espeak-ng's ``espeak_EVENT`` (speak_lib.h); ``sample`` counts from the start of the text."""

    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8),
    ]


class SpeechError(RuntimeError):
    """espeak-ng could not be loaded or failed to speak."""


def _declare(lib):
    """Give ctypes the C signatures of the functions used (speak_lib.h)."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = None


def _paths():
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise SpeechError("speech needs the 'espeakng-loader' package (pip install espeakng-loader)") from exc
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def _open_private_library(lib_path):
    """Load a private copy of the library, so that it starts from a clean state.

    espeak-ng keeps its waveform generator's state (pitch phase, flutter index, ...) in global
    variables that no API call resets: the same text spoken twice in one process comes out a few
    samples different. ``dlopen`` of the same file returns the already-loaded library, so each call
    copies the file (about 0.7 MB, a millisecond) and loads the copy: a fresh library whose output
    depends only on the arguments. The copy is deleted at once (the loaded mapping stays valid).
    """
    suffix = os.path.splitext(lib_path)[1] or ".so"
    fd, tmp = tempfile.mkstemp(prefix="mmtutor-espeak-", suffix=suffix)
    os.close(fd)
    try:
        shutil.copyfile(lib_path, tmp)
        mode = getattr(os, "RTLD_LOCAL", 0) | getattr(os, "RTLD_NOW", 0)
        lib = ctypes.CDLL(tmp, mode=mode)
    except OSError as exc:  # pragma: no cover - broken install
        raise SpeechError(f"could not load the espeak-ng library copied from {lib_path}: {exc}") from exc
    finally:
        try:
            os.remove(tmp)
        except OSError:  # pragma: no cover - Windows keeps loaded files locked; removed later
            pass
    return lib


def _close_library(lib):
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


def _seed_libc(seed):
    """espeak-ng also draws from the C library's ``rand()``; seed it for repeatable output."""
    global _LIBC
    if _LIBC is None:
        _LIBC = False
        try:
            if os.name == "posix":
                _LIBC = ctypes.CDLL(None)  # the process's own symbols, libc's srand among them
            else:  # pragma: no cover - Windows
                name = ctypes.util.find_library("ucrtbase") or ctypes.util.find_library("msvcrt")
                _LIBC = ctypes.CDLL(name) if name else False
        except OSError:  # pragma: no cover
            _LIBC = False
    if _LIBC and hasattr(_LIBC, "srand"):
        _LIBC.srand(ctypes.c_uint(seed))


_LIBC = None
_LOCK = threading.Lock()


def _speak(text, voice, rate, pitch, pitch_range, volume, word_gap, seed, events=None):
    """Speak with a fresh private copy of the library; returns int16 samples at 22050 Hz.

    With a list as ``events``, the (type, text_position, sample) of every word and end-of-clause
    event are appended to it; reading them does not change the samples.
    """
    lib_path, data_path = _paths()
    lib = _open_private_library(lib_path)
    chunks = []

    def collect(wav, numsamples, event_list):
        if events is not None and event_list:
            array = ctypes.cast(event_list, ctypes.POINTER(_Event))
            k = 0
            while array[k].type != _EVENT_LIST_TERMINATED:
                if array[k].type in (_EVENT_WORD, _EVENT_END):
                    events.append((array[k].type, array[k].text_position, array[k].sample))
                k += 1
        if numsamples > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0  # 0 = go on synthesising

    callback = _CALLBACK(collect)  # referenced until the library is closed
    try:
        _declare(lib)
        got = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if got != ESPEAK_SAMPLE_RATE:
            raise SpeechError(
                f"espeak-ng failed to initialise with the voice data at {data_path} "
                f"(returned {got}, expected sample rate {ESPEAK_SAMPLE_RATE})"
            )
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"voice must be an espeak-ng voice name such as 'en-us', got {voice!r}")
        params = ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, volume), (_WORDGAP, word_gap))
        for param, value in params:
            if lib.espeak_SetParameter(param, value, 0) != _EE_OK:  # pragma: no cover - values checked
                raise SpeechError(f"espeak-ng rejected parameter {param} = {value}")
        lib.espeak_ng_SetRandSeed(seed)
        _seed_libc(seed)
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data, len(data))
        # Ctrl-C waits until this text is spoken: a KeyboardInterrupt raised inside the Python
        # callback that espeak-ng calls would be printed as "Exception ignored" and lost.
        with sigint_deferred():
            status = lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
            if status == _EE_OK:
                lib.espeak_Synchronize()
        if status != _EE_OK:
            raise SpeechError(f"espeak-ng failed to speak {text[:40]!r} (error code {status})")
        lib.espeak_Terminate()
    finally:
        _close_library(lib)
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(chunks)


def _check_int(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise TypeError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    if not (low <= value <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return int(round(value))


def synthesize(text, *, rate=175, pitch=50, pitch_range=50, volume=100, word_gap=0, voice="en-us", sr=16000,
               seed=0):
    """Speak ``text`` with espeak-ng and return the waveform.

    Defined in the chapter on preprocessing ("Meet the data").

    Parameters
    ----------
    text : str
        What to say: a non-empty string (English for the default voice). Punctuation shapes the
        intonation: a final "!" or "?" gives a rising contour, "." a falling one.
    rate : int, default 175
        Speaking rate in words per minute, 80 to 450.
    pitch : int, default 50
        Base pitch, 0 (low) to 100 (high).
    pitch_range : int, default 50
        How far the pitch moves around its base, 0 (monotone) to 100 (very lively).
    volume : int, default 100
        Amplitude, 0 to 200 (100 is espeak-ng's normal level).
    word_gap : int, default 0
        Extra pause between words, in units of 10 ms (0 to 100).
    voice : str, default "en-us"
        An espeak-ng voice name, e.g. ``"en-us"``, ``"en"`` (British), ``"en-us+f3"`` (a variant).
    sr : int or None, default 16000
        Sample rate of the result. espeak-ng speaks at 22050 Hz; another rate is reached by
        resampling (``librosa.resample``, soxr). ``None`` keeps 22050 Hz.
    seed : int, default 0
        Seed of espeak-ng's own small random variations; the same arguments and seed give the
        same samples, bit for bit.

    Returns
    -------
    numpy.ndarray
        float32 mono waveform in [-1, 1], at ``sr`` Hz (leading and trailing silence included,
        as espeak-ng produces it).

    Examples
    --------
    >>> from mmtutor.data.speech import synthesize
    >>> wave = synthesize("What a lovely little film.", pitch=70)
    >>> wave.dtype, wave.ndim
    (dtype('float32'), 1)
    >>> 0.5 < len(wave) / 16000 < 5
    True
    """
    return _synthesize(text, rate, pitch, pitch_range, volume, word_gap, voice, sr, seed, None)


def _synthesize(text, rate, pitch, pitch_range, volume, word_gap, voice, sr, seed, events):
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"text must contain something to say, got {text!r}")
    if not isinstance(voice, str) or not voice:
        raise ValueError(f"voice must be an espeak-ng voice name such as 'en-us', got {voice!r}")
    rate = _check_int("rate", rate, 80, 450)
    pitch = _check_int("pitch", pitch, 0, 100)
    pitch_range = _check_int("pitch_range", pitch_range, 0, 100)
    volume = _check_int("volume", volume, 0, 200)
    word_gap = _check_int("word_gap", word_gap, 0, 100)
    if sr is not None:
        sr = _check_int("sr", sr, 1000, 192000)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    with _LOCK:
        samples = _speak(text, voice, rate, pitch, pitch_range, volume, word_gap, int(seed) % (2**31), events)
    wave = samples.astype(np.float32) / 32768.0
    if sr is not None and sr != ESPEAK_SAMPLE_RATE and wave.size:
        import librosa

        wave = librosa.resample(wave, orig_sr=ESPEAK_SAMPLE_RATE, target_sr=sr, res_type="soxr_hq")
        wave = np.clip(wave, -1.0, 1.0).astype(np.float32)
    return wave


def _word_spans(text):
    """Whitespace-separated words of ``text``: (word, first character, one past the last)."""
    import re

    return [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def synthesize_with_words(text, *, rate=175, pitch=50, pitch_range=50, volume=100, word_gap=0, voice="en-us",
                          sr=16000, seed=0):
    """Speak ``text`` like :func:`synthesize` and also return when each word starts and ends.

    Defined in the chapter on challenges (aligning modalities in time). espeak-ng reports a
    *word event* as it starts each word, with the sample where the word begins; these are the
    generator's ground truth for the word timings. The waveform is the very one that
    :func:`synthesize` returns for the same arguments, bit for bit (reading the events changes
    nothing).

    A word is a whitespace-separated piece of ``text`` (punctuation stays attached); espeak-ng
    may split one (``"didn't"``) into several events, of which the first counts. A word *ends*
    where the next one starts, or at the end of its clause: the pause after a word is counted
    in it.

    Parameters
    ----------
    text : str
        What to say (non-empty).
    rate, pitch, pitch_range, volume, word_gap, voice, sr, seed
        As for :func:`synthesize`.

    Returns
    -------
    wave : numpy.ndarray
        float32 mono waveform at ``sr`` Hz (22050 Hz if ``sr`` is None), as from :func:`synthesize`.
    words : dict
        ``"word"`` (list of str), ``"start"`` and ``"end"`` (float64 arrays, seconds from the
        first sample of ``wave``), and ``"start_sample"``, ``"end_sample"`` (int64 arrays,
        samples at the rate of ``wave``). A word espeak-ng did not report (rare) has NaN times
        and sample -1.

    Examples
    --------
    >>> from mmtutor.data.speech import synthesize_with_words
    >>> wave, words = synthesize_with_words("The soup was cold.")
    >>> words["word"]
    ['The', 'soup', 'was', 'cold.']
    >>> bool((words["start"][1:] > words["start"][:-1]).all())
    True
    """
    events = []
    wave = _synthesize(text, rate, pitch, pitch_range, volume, word_gap, voice, sr, seed, events)
    out_sr = ESPEAK_SAMPLE_RATE if sr is None else int(round(sr))
    spans = _word_spans(text)
    starts = np.full(len(spans), np.nan)
    ends = np.full(len(spans), np.nan)
    # Character positions of the events are 1-based (espeak-ng's text_position).
    marks = sorted((sample, pos - 1, kind) for kind, pos, sample in events)
    total = len(wave) / out_sr
    for j, (_, lo, hi) in enumerate(spans):
        inside = [sample for sample, pos, kind in marks if kind == _EVENT_WORD and lo <= pos < hi]
        if inside:
            starts[j] = min(inside) / ESPEAK_SAMPLE_RATE
    for j in range(len(spans)):
        if np.isnan(starts[j]):
            continue
        later = [sample / ESPEAK_SAMPLE_RATE for sample, pos, kind in marks
                 if sample / ESPEAK_SAMPLE_RATE > starts[j] and (kind == _EVENT_END or pos >= spans[j][2])]
        ends[j] = min(later) if later else total
    ends = np.minimum(ends, total)
    to_sample = lambda t: np.where(np.isnan(t), -1, np.round(np.nan_to_num(t) * out_sr)).astype(np.int64)
    words = {"word": [w for w, _, _ in spans], "start": starts, "end": ends,
             "start_sample": to_sample(starts), "end_sample": to_sample(ends)}
    return wave, words
