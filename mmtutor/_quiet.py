"""Keep TensorFlow's start-up noise out of notebook outputs and terminals.

TensorFlow's C++ core writes a banner to file descriptor 2 when it loads (oneDNN notices, CPU
feature notes, absl's "before InitializeLog" line). Setting ``TF_CPP_MIN_LOG_LEVEL`` from Python
after the interpreter started does not reliably silence it, so :func:`quiet_tensorflow` imports
TensorFlow once with descriptor 2 captured, drops the known banner lines and writes every other
line back to stderr: real errors still show.
"""

import logging
import os
import re
import sys
import tempfile

# Lines of TensorFlow's start-up banner; anything else captured is passed through.
_NOISE = re.compile(
    r"(All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cpu_feature_guard|This TensorFlow binary is optimized|To enable the following instructions"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered"
    r"|Could not find cuda drivers|TF-TRT Warning|failed call to cuInit"
    r"|cuda_executor|gpu_device\.cc|Skipping registering GPU devices"
    r"|rebuild TensorFlow with the appropriate compiler flags|oneDNN supports DT_BOOL)"
)


def _keras_backend():
    return os.environ.get("KERAS_BACKEND", "tensorflow").strip().lower()


def quiet_tensorflow():
    """Import TensorFlow (if it is Keras' backend) without its start-up banner.

    Does nothing when TensorFlow is already imported, when another Keras backend is chosen
    with ``KERAS_BACKEND``, or when TensorFlow is not installed. Values of
    ``TF_CPP_MIN_LOG_LEVEL`` that a user set are kept.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "tensorflow" in sys.modules or _keras_backend() != "tensorflow":
        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (some embedded interpreters): nothing to quiet
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            # oneDNN logs an error-level notice ("supports DT_BOOL only on platforms with
            # AVX-512") the first time a boolean tensor is transposed, which every masked RNN
            # does; trigger it here, while stderr is captured, instead of inside a notebook.
            tf.transpose(tf.constant([[True]]))
        except ImportError:
            pass
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read().decode("utf-8", errors="replace")
    kept = [line for line in text.splitlines() if line.strip() and not _NOISE.search(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)
