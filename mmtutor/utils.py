"""Reproducibility and environment helpers (chapter "Setup and troubleshooting")."""

import os
import platform
import random
import sys
from importlib import metadata

import numpy as np

from mmtutor._quiet import quiet_tf_data

__all__ = ["set_seed", "environment_report", "format_report", "quiet_tf_data"]

# Packages whose versions the report lists, in this order.
_REPORT_PACKAGES = (
    "mmtutor", "keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "torch", "numpy",
    "librosa", "opencv-python-headless", "scikit-learn", "pandas", "matplotlib",
    "espeakng-loader", "jupyter-book",
)


def set_seed(seed, *, deterministic=True):
    """Seed Python, NumPy and Keras (and so the backend) from one integer.

    Parameters
    ----------
    seed : int
        A non-negative integer.
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
