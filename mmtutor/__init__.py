"""mmtutor: multimodal deep learning by doing.

The package behind the mmtutor book. Every model, layer, metric and data tool that the
notebooks use lives here and is tested on its own; each function's docstring names the chapter
that explains it.
"""

import os as _os
import sys as _sys

from mmtutor._quiet import quiet_tensorflow as _quiet_tensorflow
from mmtutor._quiet import quiet_warnings as _quiet_warnings

__version__ = "0.1.0"


def _started_as_command():
    """Whether this process is the ``mmtutor`` command (console script or ``python -m mmtutor``)."""
    name = _os.path.basename(_sys.argv[0]) if _sys.argv and _sys.argv[0] else ""
    if name in ("mmtutor", "mmtutor.exe"):
        return True
    argv = list(getattr(_sys, "orig_argv", []))
    return any(a == "-m" and b == "mmtutor" for a, b in zip(argv, argv[1:]))


# Keep TensorFlow's C++ start-up banner (oneDNN notices, CUDA probing) out of notebooks and
# terminals: import it now, before anything else does, with the banner filtered (a user who set
# the variables keeps them). The mmtutor command does it only in the subcommands that need
# TensorFlow, so that `mmtutor data ...` starts at once and Ctrl-C never lands in its import.
if not _started_as_command():
    _quiet_tensorflow()
_quiet_warnings()

__all__ = ["__version__", "check_version"]


def check_version(expected):
    """Check that the installed mmtutor is the version a notebook was written for.

    Every notebook of the book calls this first, so that a book and a package that drift apart
    fail at the top of the page with a clear message instead of somewhere in the middle.

    Parameters
    ----------
    expected : str
        The version the notebook was written for, e.g. ``"0.1.0"``.

    Returns
    -------
    str
        The installed version.

    Raises
    ------
    RuntimeError
        If the installed version differs from ``expected``.
    """
    if not isinstance(expected, str):
        raise TypeError(f"expected must be a version string like '0.1.0', got {expected!r}")
    if expected != __version__:
        raise RuntimeError(
            f"This notebook was written for mmtutor {expected}, but mmtutor {__version__} is "
            "installed. Run `make book` from the repository root (it reinstalls the package), "
            "or `pip install -e .` in your environment."
        )
    return __version__
