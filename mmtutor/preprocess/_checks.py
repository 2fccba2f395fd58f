"""Input checks shared by the preprocessing modules (errors name the argument and the value)."""

import numbers
import os
from pathlib import Path

import numpy as np

from mmtutor._validation import check_int


def check_positive_int(name, value, *, minimum=1):
    """Return ``value`` as int (:func:`mmtutor._validation.check_int`, argument order of this module)."""
    return check_int(value, name, minimum=minimum)


def check_size(name, size):
    """Return ``size`` as a ``(height, width)`` tuple of positive ints."""
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (height, width) of positive integers, got {size!r}") from None
    for v in (height, width):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a pair (height, width) of positive integers, got {size!r}")
    return int(height), int(width)


def check_fraction(name, value, *, upper=1.0, allow_upper=False):
    """Return ``value`` as float in [0, upper) (or [0, upper] with ``allow_upper``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and 0 <= value and (value <= upper if allow_upper else value < upper)
    if not ok:
        bracket = "]" if allow_upper else ")"
        raise ValueError(f"{name} must be a number in [0, {upper}{bracket}, got {value!r}")
    return float(value)


def check_existing_file(path, what):
    """Return ``path`` as a Path, raising FileNotFoundError / IsADirectoryError naming it."""
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise ValueError(f"path of the {what} must be a non-empty string or path, got {path!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {str(path)!r}")
    if not path.is_file():
        raise IsADirectoryError(f"{what} path is not a regular file: {str(path)!r}")
    return path


def check_path_list(name, paths):
    """Return ``paths`` as a list of str; a single string is refused (a common slip)."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a list of paths, got a single path {paths!r}; wrap it in a list")
    try:
        paths = list(paths)
    except TypeError:
        raise TypeError(f"{name} must be a list of paths, got {type(paths).__name__}") from None
    out = []
    for i, p in enumerate(paths):
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"{name}[{i}] must be a path string ('' for a missing file), got {p!r}")
        out.append(os.fspath(p))
    return out
