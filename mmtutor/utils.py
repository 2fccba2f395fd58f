"""Reproducibility and environment helpers (chapter "Setup and troubleshooting")."""

import os
import platform
import random
import sys
from importlib import metadata

import numpy as np

from mmtutor._quiet import quiet_tf_data

__all__ = ["SEED_VARIABLE", "global_seed", "glue", "set_seed", "environment_report", "format_report", "quiet_tf_data"]

#: The environment variable that sets the book's global training seed (default 0).
SEED_VARIABLE = "MMTUTOR_SEED"


def global_seed(offset=0):
    """The global training seed: ``$MMTUTOR_SEED`` (default 0) plus ``offset``.

    Defined in the chapter "Setup and troubleshooting" (reproducibility). Every notebook and
    every training function of mmtutor whose ``seed`` is left at None takes its seed from here,
    so that one variable reruns the whole book with other initial weights, shuffles and
    bootstrap draws -- the way to see how much a trained result varies from run to run
    (``MMTUTOR_SEED=1 make book``). The data set is not affected: its generator has its own
    ``seed`` argument, and the book's data (and so its exact Bayes ceilings) stay the same.

    Parameters
    ----------
    offset : int, default 0
        Added to the global seed, for code that needs several different seeds.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``$MMTUTOR_SEED`` is set to something other than a non-negative integer.

    Examples
    --------
    >>> from mmtutor.utils import global_seed
    >>> global_seed(2) - global_seed()
    2
    """
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
    raw = os.environ.get(SEED_VARIABLE, "").strip()
    if not raw:
        return int(offset)
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"the environment variable {SEED_VARIABLE} must be a non-negative integer, got {raw!r}")
    return int(raw) + int(offset)


def glue(name, value, fmt=None):
    """Store a computed number for the page's prose and return it.

    Defined in the chapter "Setup and troubleshooting" (how the book keeps its numbers true).
    A figure that a run computes reaches the text through myst-nb's glue, never by typing it:
    ``glue("acc", acc, ".3f")`` in a code cell, ``{glue:text}`acc``` in the markdown, so the
    sentence always shows the number this run printed.

    Parameters
    ----------
    name : str
        The key, unique on the page (the book prefixes it with the chapter, e.g. ``"ch7_acc"``).
    value : number, str or sequence of numbers
        NumPy scalars are converted to Python numbers first.
    fmt : str, optional
        A format specification such as ``".3f"``, ``".1%"`` or ``",d"``; the text is stored
        already formatted. None stores ``str(value)``.

    Returns
    -------
    object
        ``value`` unchanged, so ``acc = glue("acc", compute(), ".3f")`` reads naturally.

    Raises
    ------
    ValueError
        If ``name`` is not a non-empty identifier-like string, or ``fmt`` does not apply to
        ``value``.

    Examples
    --------
    >>> from mmtutor.utils import glue
    >>> glue("example", 0.91234, ".3f")  # doctest: +SKIP
    0.91234
    """
    if not isinstance(name, str) or not name or not all(ch.isalnum() or ch in "_-" for ch in name):
        raise ValueError(f"name must be a non-empty string of letters, digits, '_' or '-', got {name!r}")
    plain = value.item() if isinstance(value, np.generic) else value
    try:
        text = str(plain) if fmt is None else format(plain, fmt)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"fmt={fmt!r} does not apply to {name!r} = {value!r}: {exc}") from None
    try:
        from IPython import get_ipython
        from myst_nb import glue as _myst_glue
    except ImportError:  # outside the book's environment: nothing to store, the value still returns
        return value
    if get_ipython() is not None:  # in a notebook's kernel; a plain script has no page to glue into
        _myst_glue(name, text, display=False)
    return value


# Packages whose versions the report lists, in this order.
_REPORT_PACKAGES = (
    "mmtutor", "keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "torch", "numpy",
    "librosa", "opencv-python-headless", "scikit-learn", "pandas", "matplotlib",
    "espeakng-loader", "jupyter-book",
)


def set_seed(seed=None, *, deterministic=True):
    """Seed Python, NumPy and Keras (and so the backend) from one integer.

    Parameters
    ----------
    seed : int, optional
        A non-negative integer; None takes :func:`global_seed` (``$MMTUTOR_SEED``, default 0).
    deterministic : bool, default True
        Also ask the backend for deterministic kernels where it supports them (TensorFlow:
        ``tf.config.experimental.enable_op_determinism``). On CPU the same seed then gives the
        same numbers run after run; GPUs may still differ in the last bits.

    Returns
    -------
    int
        The seed, so that ``seed = set_seed(0)`` reads naturally.

    Examples
    --------
    >>> from mmtutor.utils import set_seed
    >>> set_seed(0)
    0
    """
    if seed is None:
        seed = global_seed()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this one's hash is fixed
    random.seed(seed)
    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)  # Python, NumPy and the backend's global generator
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    return seed


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _devices():
    """List the accelerator-or-CPU devices the Keras backend sees, as strings."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [f"{d.device_type}:{d.name.split(':')[-1]}" for d in tf.config.list_physical_devices()]
        if backend == "jax":
            import jax

            return [f"{d.platform.upper()}:{d.id}" for d in jax.devices()]
        if backend == "torch":
            import torch

            gpus = [f"GPU:{i}" for i in range(torch.cuda.device_count())]
            return ["CPU:0"] + gpus
    except Exception as exc:  # a broken CUDA install should not break the report
        return [f"unknown ({type(exc).__name__}: {exc})"]
    return ["CPU:0"]


def environment_report():
    """Describe the software and hardware a run uses.

    Returns
    -------
    dict
        ``python``, ``platform``, ``keras_backend``, ``devices`` (e.g. ``["CPU:0", "GPU:0"]``),
        ``gpu`` (bool), ``cpu_count`` and ``packages`` (name -> version, installed ones only).

    Examples
    --------
    >>> from mmtutor.utils import environment_report
    >>> environment_report()["keras_backend"] in {"tensorflow", "jax", "torch", "numpy"}
    True
    """
    import keras

    devices = _devices()
    packages = {name: v for name in _REPORT_PACKAGES if (v := _version(name)) is not None}
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "keras_backend": keras.backend.backend(),
        "devices": devices,
        "gpu": any(d.startswith("GPU") for d in devices),
        "cpu_count": os.cpu_count(),
        "packages": packages,
    }


def format_report(report=None):
    """Format :func:`environment_report` as aligned text lines."""
    report = environment_report() if report is None else report
    rows = [
        ("python", report["python"]),
        ("platform", report["platform"]),
        ("keras backend", report["keras_backend"]),
        ("devices", ", ".join(report["devices"])),
        ("cpu cores", str(report["cpu_count"])),
    ] + [(name, version) for name, version in report["packages"].items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
