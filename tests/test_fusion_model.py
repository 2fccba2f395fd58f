"""Tests of build_fusion_model (chapter on fusion).

The encoders here are tiny stand-ins that follow the encoder contract (one input; a pooled
(batch, dim) output, or [pooled, sequence]); the real encoders are tested on their own.
"""

import keras
import numpy as np
import pytest

import mmtutor  # noqa: F401  (quiet TensorFlow import)
from mmtutor.fusion import (
    CrossModalAttentionFusion,
    GatedFusion,
    LateFusion,
    ModalityDropout,
)
from mmtutor.models.fusion_model import (
    FUSION_NAMES,
    FusionModel,
    build_fusion_model,
    compile_fusion_model,
    load_fusion_model,
)


def dense_encoder(n_features, name, dim=8):
    """Pooled-only encoder: (batch, n_features) -> (batch, dim)."""
    x = keras.Input((n_features,))
    return keras.Model(x, keras.layers.Dense(dim, activation="tanh")(x), name=name)


def image_encoder(name="image_encoder"):
    """(batch, 8, 8, 1) -> [pooled (batch, 4), sequence (batch, 36, 4)]."""
    x = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, [pooled, keras.layers.Reshape((36, 4))(h)], name=name)


def audio_encoder(name="audio_encoder"):
    """(batch, 20, 8) log-mel-like -> [pooled (batch, 6), sequence (batch, 18, 6)]."""
    x = keras.Input((20, 8))
    h = keras.layers.Conv1D(6, 3, activation="relu")(x)
    return keras.Model(x, [keras.layers.GlobalAveragePooling1D()(h), h], name=name)


def text_encoder(name="text_encoder", seq_len=6, vocab=20):
    """int ids with 0 = padding -> [pooled (batch, 8), per-token states (batch, seq_len, 8)]."""
    x = keras.Input((seq_len,), dtype="int32")
    h = keras.layers.Embedding(vocab, 8, mask_zero=True)(x)
    h = keras.layers.Dense(8, activation="relu")(h)
    return keras.Model(x, [keras.layers.GlobalAveragePooling1D()(h), h], name=name)


# ---------------------------------------------------------------------------------------------
# XOR: a task only fusion that models interactions can solve
# ---------------------------------------------------------------------------------------------


def xor_data(n, seed):
    """Modality "a" carries bit a, modality "b" bit b (plus noise); the label is a XOR b."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)

    def view(bit):
        signal = 2.0 * bit - 1.0 + 0.2 * rng.normal(size=n)
        return np.stack([signal, rng.normal(size=n)], axis=1).astype("float32")

    return {"a": view(a), "b": view(b)}, (a ^ b).astype("float32")


@pytest.mark.parametrize("fusion", FUSION_NAMES)
def test_xor_is_learned_by_every_fusion_except_late(fusion):
    keras.utils.set_random_seed(0)
    x_train, y_train = xor_data(512, seed=0)
    x_test, y_test = xor_data(256, seed=1)
    model = build_fusion_model(
        {"a": dense_encoder(2, "enc_a"), "b": dense_encoder(2, "enc_b")},
        fusion, num_classes=2, hidden=16, dropout=0.0, lr=1e-2,
    )
    model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0)  # 160 steps
    y_hat = model.predict(x_test, verbose=0)
    assert y_hat.shape == (256, 1)
    acc = float(np.mean((y_hat[:, 0] > 0.5) == y_test))
    if fusion == "late":
        # Each head sees one bit, and XOR of two bits says nothing about either alone.
        assert acc <= 0.65
    else:
        assert acc >= 0.9


# ---------------------------------------------------------------------------------------------
# An image + audio 10-class toy: build, train, round-trip, masks
# ---------------------------------------------------------------------------------------------


def digits_data(n, seed):
    """Class c: the image shows pattern c // 2 (of 5), the audio pattern c % 2 (of 2)."""
    patterns = np.random.default_rng(123)
    images = patterns.normal(size=(5, 8, 8, 1))
    sounds = patterns.normal(size=(2, 20, 8))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = {
        "image": (images[y // 2] + 0.5 * rng.normal(size=(n, 8, 8, 1))).astype("float32"),
        "audio": (sounds[y % 2] + 0.5 * rng.normal(size=(n, 20, 8))).astype("float32"),
    }
    return x, y


@pytest.mark.parametrize("fusion", FUSION_NAMES)
def test_image_audio_toy_trains_and_round_trips(fusion, tmp_path):
    keras.utils.set_random_seed(1)
    x, y = digits_data(160, seed=0)
    model = build_fusion_model(
        {"image": image_encoder(), "audio": audio_encoder()}, fusion, num_classes=10,
        hidden=16, modality_dropout=0.2, lr=3e-3, seed=0,
    )
    assert isinstance(model, FusionModel) and model.modalities == ["image", "audio"]
    losses = model.fit(x, y, epochs=3, batch_size=32, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]

    full = np.ones((160, 2), "float32")
    mask = full.copy()
    mask[::3, 0] = 0  # image missing on every third sample
    mask[1::3, 1] = 0  # audio missing on others
    pred = model.predict({**x, "mask": full}, verbose=0)
    pred_masked = model.predict({**x, "mask": mask}, verbose=0)
    assert pred.shape == (160, 10)
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-5)

    path = tmp_path / f"{fusion}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, FusionModel) and loaded.modalities == ["image", "audio"]
    assert type(loaded.fusion_layer) is type(model.fusion_layer)
    np.testing.assert_allclose(loaded.predict({**x, "mask": full}, verbose=0), pred, atol=1e-6)
    np.testing.assert_allclose(loaded.predict({**x, "mask": mask}, verbose=0), pred_masked,
                               atol=1e-6)

    np.testing.assert_allclose(load_fusion_model(str(path)).predict(x, verbose=0),
                               loaded.predict(x, verbose=0), atol=1e-6)

    # A masked modality's values do not matter at all (garbage in, same prediction out).
    garbage = {
        "image": np.where(mask[:, 0, None, None, None] == 0, 40.0, x["image"]).astype("float32"),
        "audio": np.where(mask[:, 1, None, None] == 0, -40.0, x["audio"]).astype("float32"),
        "mask": mask,
    }
    np.testing.assert_allclose(loaded.predict(garbage, verbose=0), pred_masked, atol=1e-6)


def test_absent_mask_means_every_modality_present():
    keras.utils.set_random_seed(0)
    x, _ = digits_data(8, seed=0)
    model = build_fusion_model({"image": image_encoder(), "audio": audio_encoder()}, "gated", 10,
                               hidden=8)
    np.testing.assert_allclose(
        model.predict(x, verbose=0),
        model.predict({**x, "mask": np.ones((8, 2), "float32")}, verbose=0),
        atol=1e-6,
    )
    # Calling the model directly (not through predict) works the same way.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), model.predict(x, verbose=0),
                               atol=1e-5)


def test_binary_and_multiclass_outputs_and_losses():
    encoders = {"a": dense_encoder(2, "enc_a"), "b": dense_encoder(3, "enc_b")}
    binary = build_fusion_model(encoders, "concat", 2, hidden=8)
    assert binary.output_shape == (None, 1)
    assert binary.loss == "binary_crossentropy"
    multi = build_fusion_model(
        {"a": dense_encoder(2, "enc_c"), "b": dense_encoder(3, "enc_d")}, "concat", 4, hidden=8
    )
    assert multi.output_shape == (None, 4)
    assert multi.loss == "sparse_categorical_crossentropy"
    raw = build_fusion_model(
        {"a": dense_encoder(2, "enc_e"), "b": dense_encoder(3, "enc_f")}, "late", 4, hidden=8,
        compile=False,
    )
    assert not raw.compiled
    compile_fusion_model(raw, 4, lr=1e-2)
    assert raw.loss == "sparse_categorical_crossentropy"
    with pytest.raises(ValueError, match="outputs 4 units, but num_classes=2 needs 1"):
        compile_fusion_model(raw, 2)


def test_modality_dropout_acts_in_training_only():
    keras.utils.set_random_seed(0)
    x, _ = digits_data(64, seed=0)
    model = build_fusion_model({"image": image_encoder(), "audio": audio_encoder()}, "concat",
                               10, hidden=8, dropout=0.0, modality_dropout=0.5, seed=0)
    assert isinstance(model.get_layer("modality_dropout"), ModalityDropout)
    infer = [keras.ops.convert_to_numpy(model(x, training=False)) for _ in range(2)]
    np.testing.assert_array_equal(infer[0], infer[1])
    train = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(train, infer[0])


def test_any_names_three_modalities_text_padding_and_attention_maps():
    keras.utils.set_random_seed(0)
    encoders = {"review": text_encoder(), "face": image_encoder(), "voice": audio_encoder()}
    model = build_fusion_model(encoders, "attention", 3, hidden=8)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 20, (4, 6)).astype("int32")
    ids[:, 3:] = 0  # the last three tokens are padding
    x = {"review": ids, "face": rng.normal(size=(4, 8, 8, 1)).astype("float32"),
         "voice": rng.normal(size=(4, 20, 8)).astype("float32")}
    assert model.predict(x, verbose=0).shape == (4, 3)
    maps = model.attention_maps(x)
    assert maps[("face", "review")].shape == (4, 4, 36, 6)
    assert maps[("review", "voice")].shape == (4, 4, 6, 18)
    # Padding tokens get no attention; real tokens do.
    assert np.all(maps[("voice", "review")][..., 3:] == 0)
    assert np.all(maps[("voice", "review")][..., :3] > 0)
    # A missing modality gets no attention either.
    mask = np.array([[1, 1, 0]] * 4, "float32")
    maps = model.attention_maps({**x, "mask": mask})
    assert np.all(maps[("review", "voice")] == 0)


def test_user_fusion_layer_single_modality_and_late_layer():
    keras.utils.set_random_seed(0)
    x, y = xor_data(64, seed=0)
    gated = GatedFusion(dim=4, name="my_gate")
    model = build_fusion_model({"a": dense_encoder(2, "enc_a"), "b": dense_encoder(2, "enc_b")},
                               gated, 2, hidden=8)
    assert model.fusion_layer is gated
    model.fit(x, y, epochs=1, verbose=0)
    # One modality is allowed (a unimodal baseline built the same way).
    single = build_fusion_model({"a": dense_encoder(2, "enc_c")}, "concat", 2, hidden=8)
    assert single.predict({"a": x["a"]}, verbose=0).shape == (64, 1)
    # A LateFusion layer instance with its own mode.
    vote = build_fusion_model({"a": dense_encoder(2, "enc_d"), "b": dense_encoder(2, "enc_e")},
                              LateFusion("vote", num_classes=2), 2)
    assert vote.predict(x, verbose=0).shape == (64, 1)


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------


def test_builder_arguments_are_validated():
    enc = {"a": dense_encoder(2, "enc_a"), "b": dense_encoder(2, "enc_b")}
    with pytest.raises(ValueError, match="encoders is empty"):
        build_fusion_model({}, "concat", 2)
    with pytest.raises(ValueError, match="encoders must be a dict"):
        build_fusion_model([enc["a"]], "concat", 2)
    with pytest.raises(ValueError, match=r"encoders\['b'\] must be a keras.Model, got Dense"):
        build_fusion_model({"a": enc["a"], "b": keras.layers.Dense(3)}, "concat", 2)
    with pytest.raises(ValueError, match="'mask' is reserved"):
        build_fusion_model({"mask": enc["a"]}, "concat", 2)
    with pytest.raises(ValueError, match="one of 'concat', 'late', 'attention', 'tensor', "
                                         "'lowrank', 'gated'; got 'sum'"):
        build_fusion_model(enc, "sum", 2)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        build_fusion_model(enc, "concat", 1)
    with pytest.raises(ValueError, match=r"modality_dropout must be a number in \[0.0, 1.0\)"):
        build_fusion_model(enc, "concat", 2, modality_dropout=1.0)
    with pytest.raises(ValueError, match="must accept a `modality_mask`"):
        build_fusion_model(enc, keras.layers.Concatenate(), 2)
    with pytest.raises(ValueError, match="LateFusion layer has num_classes=3"):
        build_fusion_model(enc, LateFusion(num_classes=3), 2)
    with pytest.raises(ValueError, match="at least two modalities"):
        build_fusion_model({"a": enc["a"]}, CrossModalAttentionFusion(dim=4), 2)
    with pytest.raises(ValueError, match="distinct names"):
        build_fusion_model({"a": dense_encoder(2, "same"), "b": dense_encoder(2, "same")},
                           "concat", 2)
    x1, x2 = keras.Input((2,)), keras.Input((3,))
    two_inputs = keras.Model([x1, x2], keras.layers.Concatenate()([x1, x2]), name="two")
    with pytest.raises(ValueError, match=r"encoders\['b'\] \('two'\) must have one input"):
        build_fusion_model({"a": enc["a"], "b": two_inputs}, "concat", 2)
    x = keras.Input((2,))
    four_d = keras.Model(x, keras.layers.Reshape((1, 1, 2))(x), name="four_d")
    with pytest.raises(ValueError, match=r"returns outputs of shapes \[\(None, 1, 1, 2\)\]"):
        build_fusion_model({"a": enc["a"], "b": four_d}, "concat", 2)


def test_predict_names_missing_and_unknown_modalities():
    model = build_fusion_model({"image": image_encoder(), "audio": audio_encoder()}, "concat", 10,
                               hidden=8)
    x, _ = digits_data(4, seed=0)
    with pytest.raises(ValueError, match="missing modality 'audio'"):
        model.predict({"image": x["image"]}, verbose=0)
    with pytest.raises(ValueError, match="unknown key 'text'"):
        model.predict({**x, "text": x["audio"]}, verbose=0)
    with pytest.raises(ValueError, match="takes a dict of inputs keyed by modality name"):
        model.predict(x["image"], verbose=0)
    with pytest.raises(ValueError, match="missing modality 'image'"):
        model({"audio": x["audio"]})


def test_encoder_with_a_single_sequence_output():
    # An encoder that returns only a sequence: its padding-aware mean is the pooled vector.
    x = keras.Input((5, 3))
    seq_only = keras.Model(x, keras.layers.Dense(4)(x), name="seq_only")
    encoders = {"a": dense_encoder(2, "enc_a"), "b": seq_only}
    rng = np.random.default_rng(0)
    data = {"a": rng.normal(size=(3, 2)).astype("float32"),
            "b": rng.normal(size=(3, 5, 3)).astype("float32")}
    for fusion in ("concat", "attention"):
        model = build_fusion_model(encoders, fusion, 3, hidden=8)
        assert model.predict(data, verbose=0).shape == (3, 3)
    maps = model.attention_maps(data)
    assert maps[("a", "b")].shape == (3, 4, 1, 5)


def test_load_fusion_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model at .*nothing.keras"):
        load_fusion_model(tmp_path / "nothing.keras")
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="must name a .keras file"):
        load_fusion_model(tmp_path / "weights.h5")


def test_encoder_named_like_a_modality_gets_a_clear_error():
    import keras

    from mmtutor.models.fusion_model import build_fusion_model

    def enc(name):
        x = keras.Input((4,))
        return keras.Model(x, keras.layers.Dense(3)(x), name=name)

    with pytest.raises(ValueError, match="collide with the fusion model's own input"):
        build_fusion_model({"text": enc("text"), "audio": enc("audio_encoder")}, "concat", 2)
