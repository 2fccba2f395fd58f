"""The encoders run unchanged on the JAX backend, on a machine without TensorFlow.

Keras picks its backend once per process, at import, from ``KERAS_BACKEND``; the test therefore
runs a small script in a fresh Python with ``KERAS_BACKEND=jax`` and checks what it reports.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    r"""
    import os
    import sys
    import tempfile

    import traceback

    # Behave like a machine with JAX but no TensorFlow: any import of it fails here. Keras
    # itself probes for TensorFlow through an optional lazy module (and copes with its
    # absence); every other attempt is counted as an import that needs TensorFlow.
    hard_imports = []

    class NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                stack = traceback.extract_stack()
                if not any(f.filename.endswith("module_utils.py") for f in stack):
                    hard_imports.append("".join(traceback.format_list(stack[-8:])))
                raise ImportError(f"{name} is blocked: this run checks the JAX backend alone")
            return None

    sys.meta_path.insert(0, NoTensorFlow())

    import numpy as np

    import mmtutor
    import keras
    from mmtutor.models.encoders import audio_encoder, image_encoder, text_encoder
    from mmtutor.utils import set_seed

    print("BACKEND", keras.backend.backend())
    set_seed(0)
    rng = np.random.default_rng(0)

    def tokens(seq_len, lengths):
        x = np.zeros((len(lengths), seq_len), dtype="int32")
        for i, n in enumerate(lengths):
            x[i, :n] = rng.integers(1, 20, size=n)
        return x

    text = dict(embed_dim=8, units=8, num_heads=2, dim=8, return_sequence=True)
    cases = {
        "image_cnn": (image_encoder((16, 16, 3), filters=(4, 8), dim=8, return_sequence=True),
                      rng.random((4, 16, 16, 3), dtype="float32")),
        "text_bilstm": (text_encoder(20, 6, kind="bilstm", **text), tokens(6, [6, 3, 2, 1])),
        "text_gru": (text_encoder(20, 6, kind="gru", **text), tokens(6, [6, 3, 2, 1])),
        "text_transformer": (text_encoder(20, 6, kind="transformer", **text),
                             tokens(6, [6, 3, 2, 1])),
        "audio_cnn": (audio_encoder((24, 16), kind="cnn", filters=(4, 8), dim=8,
                                    return_sequence=True),
                      rng.normal(size=(4, 24, 16)).astype("float32")),
        "audio_crnn": (audio_encoder((24, 16), kind="crnn", filters=(4, 8), units=8, dim=8,
                                     return_sequence=True),
                       rng.normal(size=(4, 24, 16)).astype("float32")),
    }
    y = np.array([[0.0], [1.0], [0.0], [1.0]], dtype="float32")
    for name, (encoder, x) in cases.items():
        # Forward pass (compiled, as predict runs it): both outputs, finite.
        pooled, sequence = encoder.predict_on_batch(x)
        assert pooled.shape == (4, 8) and np.all(np.isfinite(pooled)), name
        assert sequence.shape[0] == 4 and np.all(np.isfinite(sequence)), name

        # One training step of a tiny classifier built on the encoder.
        inputs = keras.Input(encoder.inputs[0].shape[1:], dtype=encoder.inputs[0].dtype)
        outputs = keras.layers.Dense(1, activation="sigmoid")(encoder(inputs)[0])
        classifier = keras.Model(inputs, outputs)
        classifier.compile(optimizer="adam", loss="binary_crossentropy")
        loss = float(np.asarray(classifier.train_on_batch(x, y)).ravel()[0])
        assert np.isfinite(loss), (name, loss)
        print("OK", name, f"loss={loss:.4f}")

    # Masking on JAX (its recurrent loop is not TensorFlow's): the trained text encoders,
    # copied into models for longer sequences, give the same pooled vector when the same
    # tokens are followed by more padding.
    for kind in ("bilstm", "gru", "transformer"):
        short, x = cases["text_" + kind]
        long = text_encoder(20, 10, kind=kind, **text)
        weights = []
        for w_short, w_long in zip(short.get_weights(), long.get_weights()):
            if w_short.shape != w_long.shape:  # the position table grows with seq_len
                w_long = w_long.copy()
                w_long[: w_short.shape[0]] = w_short
                w_short = w_long
            weights.append(w_short)
        long.set_weights(weights)
        x_long = np.concatenate([x, np.zeros((4, 4), dtype="int32")], axis=1)
        a = short.predict_on_batch(x)[0]
        b = long.predict_on_batch(x_long)[0]
        np.testing.assert_allclose(b, a, atol=1e-5)
        print("OK padding", kind)

    # Saved and loaded under JAX, the encoder with every custom layer gives the same outputs.
    encoder, x = cases["text_transformer"]
    path = os.path.join(tempfile.mkdtemp(), "text_transformer.keras")
    encoder.save(path)
    again = keras.models.load_model(path)
    for a, b in zip(encoder.predict_on_batch(x), again.predict_on_batch(x)):
        np.testing.assert_allclose(b, a, atol=1e-6)
    print("OK saved text_transformer")

    print("TENSORFLOW_IMPORTS", len(hard_imports))
    for stack in hard_imports:
        print(stack, file=sys.stderr)
    """
)

N_CASES = 6


def test_encoders_forward_train_and_save_on_jax(tmp_path):
    pytest.importorskip("jax", reason="jax is not installed (pip install 'mmtutor[jax]')")
    env = dict(os.environ, KERAS_BACKEND="jax")
    # Let JAX stay on the CPU quietly when a GPU is present but jax has no CUDA support.
    env.setdefault("JAX_PLATFORMS", "cpu")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    lines = result.stdout.splitlines()
    assert "BACKEND jax" in lines, report
    assert sum(line.startswith("OK ") and "loss=" in line for line in lines) == N_CASES, report
    assert "OK saved text_transformer" in lines, report
    assert sum(line.startswith("OK padding") for line in lines) == 3, report
    # mmtutor and the encoders are backend-neutral: nothing needed TensorFlow (which the
    # script blocks, as on a JAX-only machine).
    assert "TENSORFLOW_IMPORTS 0" in lines, report
