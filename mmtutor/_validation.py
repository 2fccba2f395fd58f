"""Argument checks shared by the whole package, in the manner of scikit-learn's ``check_scalar``.

Every checker takes ``(value, name, ...)``, returns the normalised value, raises ``TypeError``
for a value of the wrong type and ``ValueError`` for a value of the right type but out of range,
and names the argument, the value received and what was expected.
"""

import numbers

import numpy as np

#: The modalities mmtutor knows, in the order of every mask's columns. The one definition.
MODALITIES = ("text", "image", "audio")

__all__ = ["MODALITIES", "check_int", "check_float", "check_choice", "check_modalities", "check_bool"]


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def check_int(value, name, *, minimum=None, maximum=None):
    """An integer (not a bool, not a float) in ``[minimum, maximum]``; returns ``int(value)``.

    Examples
    --------
    >>> check_int(3, "epochs", minimum=1)
    3
    >>> check_int(0, "epochs", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be an integer >= 1, got 0
    """
    if _is_bool(value) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {value!r}")
    if minimum == 0 and value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return value


def check_float(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """A finite real number (ints accepted, bools not) within the given bounds; returns a float.

    Examples
    --------
    >>> check_float(0.5, "dropout", low=0.0, high=1.0, high_open=True)
    0.5
    >>> check_float(1.0, "dropout", low=0.0, high=1.0, high_open=True)
    Traceback (most recent call last):
    ...
    ValueError: dropout must be a number in [0.0, 1.0), got 1.0
    """
    if _is_bool(value) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    ok = np.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lb = "(" if low_open or low is None else "["
        rb = ")" if high_open or high is None else "]"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be a number in {lb}{lo}, {hi}{rb}, got {value!r}")
    return value


def check_choice(value, name, choices):
    """One of ``choices`` (compared with ``==``); returns it.

    Examples
    --------
    >>> check_choice("late", "fusion", ("concat", "late"))
    'late'
    """
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # an unhashable value in a set-like
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_bool(value, name):
    """A bool (NumPy bools accepted); returns ``bool(value)``."""
    if not _is_bool(value):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_modalities(modalities, name="modalities", *, allowed=MODALITIES):
    """Distinct modality names (a list, or a comma-separated string), in the order of ``allowed``.

    Examples
    --------
    >>> check_modalities("audio,text")
    ['text', 'audio']
    """
    if isinstance(modalities, str):
        modalities = [m.strip() for m in modalities.split(",") if m.strip()]
    try:
        names = list(modalities)
    except TypeError:
        raise TypeError(f"{name} must be a list of names from {list(allowed)}, got {modalities!r}") from None
    if not all(isinstance(m, str) for m in names):
        raise TypeError(f"{name} must be a list of names from {list(allowed)}, got {modalities!r}")
    bad = [m for m in names if m not in allowed]
    if not names or bad or len(set(names)) != len(names):
        raise ValueError(f"{name} must be distinct names from {list(allowed)} (at least one), got {modalities!r}")
    return [m for m in allowed if m in names]
