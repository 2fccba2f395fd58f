"""Keep TensorFlow's start-up noise out of notebook outputs and terminals.

TensorFlow's C++ core writes a banner to file descriptor 2 when it loads (oneDNN notices, CPU
feature notes, absl's "before InitializeLog" line). Setting ``TF_CPP_MIN_LOG_LEVEL`` from Python
after the interpreter started does not reliably silence it, so :func:`quiet_tensorflow` imports
TensorFlow once with descriptor 2 captured, drops the known banner lines and writes every other
line back to stderr: real errors still show. :func:`quiet_tf_data` does the same around ``fit``
and ``predict`` for the one notice TensorFlow logs there, and :func:`quiet_warnings` silences
tqdm's notebook hint, which librosa triggers when ipywidgets is not installed.
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

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
    with _filtered_fd2(_NOISE):
        try:
            import tensorflow as tf

            # oneDNN logs an error-level notice ("supports DT_BOOL only on platforms with
            # AVX-512") the first time a boolean tensor is transposed, which every masked RNN
            # does; trigger it here, while stderr is captured, instead of inside a notebook.
            tf.transpose(tf.constant([[True]]))
            # In an interactive session (a notebook kernel) TensorFlow's logger is set up lazily
            # at INFO level with a handler on stdout; set it up now and keep only errors, or
            # Keras' hints about re-tracing functions (speed, not correctness) fill the outputs.
            tf.get_logger().setLevel(logging.ERROR)
        except ImportError:
            pass


@contextlib.contextmanager
def _filtered_fd2(noise):
    """Capture file descriptor 2 (where C++ libraries log); afterwards write back every line
    that ``noise`` does not match. Yields a text stream on the real stderr."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (some embedded interpreters): nothing to filter
        yield sys.stderr
        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        with contextlib.suppress(AttributeError, ValueError):
            sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        real = os.fdopen(os.dup(saved), "w", buffering=1)
        try:
            yield real
        finally:
            real.close()
            with contextlib.suppress(AttributeError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not noise.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


# TensorFlow's C++ core logs this at error level (harmless) each time a tf.data pipeline runs
# under op determinism, which mmtutor.utils.set_seed turns on.
_TF_DATA_NOTICE = re.compile(r"NodeDef mentions attribute use_unbounded_threadpool")


@contextlib.contextmanager
def quiet_tf_data():
    """Drop TensorFlow's tf.data determinism notice from file descriptor 2 while Keras runs.

    Under op determinism TensorFlow's C++ core writes a harmless "NodeDef mentions attribute
    use_unbounded_threadpool" line each time ``fit`` or ``predict`` builds an input pipeline.
    Inside this context descriptor 2 is captured; afterwards every other line is written back to
    stderr, so real errors still show. Yields a text stream on the real stderr, for progress
    output that must show while Keras runs.

    Examples
    --------
    >>> from mmtutor.utils import quiet_tf_data
    >>> with quiet_tf_data():
    ...     pass
    """
    with _filtered_fd2(_TF_DATA_NOTICE) as real:
        yield real


def quiet_warnings():
    """Silence tqdm's "IProgress not found" hint (librosa imports ``tqdm.auto``).

    In a notebook without ipywidgets, tqdm warns once that it falls back to plain progress bars;
    the fallback is what the book wants, so the hint is noise in stored outputs.
    """
    warnings.filterwarnings("ignore", message="IProgress not found")
