"""Tests for mmtutor.models.encoders: shapes, padding masks, saving, validation, learning."""

import warnings

import numpy as np
import pytest

import mmtutor  # noqa: F401  (quiet TensorFlow start-up)
import keras
from mmtutor.models import encoders
from mmtutor.models.encoders import audio_encoder, image_encoder, text_encoder
from mmtutor.utils import set_seed

# Small shapes keep every test fast on a 2-core CPU.
IMAGE = dict(input_shape=(16, 16, 3), filters=(4, 8), dim=8)
TEXT = dict(vocab_size=20, seq_len=10, embed_dim=8, units=8, num_heads=2, dim=8)
AUDIO = dict(input_shape=(24, 16), filters=(4, 8), units=8, dim=8)

TEXT_VARIANTS = [
    ("bilstm", "mean"),
    ("bilstm", "last"),
    ("gru", "mean"),
    ("gru", "last"),
    ("transformer", "mean"),
]


def _call(model, x):
    """Run a model in inference mode and return NumPy outputs (a list if several)."""
    out = model(x, training=False)
    if isinstance(out, (list, tuple)):
        return [keras.ops.convert_to_numpy(o) for o in out]
    return keras.ops.convert_to_numpy(out)


def _random_tokens(rng, batch, seq_len, lengths, vocab_size=20):
    """Right-padded token ids: row i has lengths[i] tokens in [1, vocab_size), then zeros."""
    x = np.zeros((batch, seq_len), dtype="int32")
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(1, vocab_size, size=n)
    return x


# ---------------------------------------------------------------------------------------------
# Output shapes, with and without the sequence output
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("return_sequence", [False, True])
def test_image_encoder_shapes(return_sequence):
    model = image_encoder(**IMAGE, return_sequence=return_sequence, name="img")
    x = np.random.default_rng(0).random((3, 16, 16, 3), dtype="float32")
    out = _call(model, x)
    assert model.name == "img" and len(model.inputs) == 1
    if return_sequence:
        pooled, sequence = out
        assert sequence.shape == (3, 4 * 4, 8)  # 16 / 2**2 = 4 rows and columns, 8 channels
    else:
        pooled = out
    assert pooled.shape == (3, 8)
    assert np.all(np.isfinite(pooled))


@pytest.mark.parametrize("kind,pooling", TEXT_VARIANTS)
@pytest.mark.parametrize("return_sequence", [False, True])
def test_text_encoder_shapes(kind, pooling, return_sequence):
    model = text_encoder(**TEXT, kind=kind, pooling=pooling, return_sequence=return_sequence)
    assert model.name == "text_encoder" and model.inputs[0].dtype == "int32"
    x = _random_tokens(np.random.default_rng(0), 3, 10, [10, 4, 1])
    out = _call(model, x)
    seq_dim = {"bilstm": 2 * 8, "gru": 8, "transformer": 8}[kind]
    if return_sequence:
        pooled, sequence = out
        assert sequence.shape == (3, 10, seq_dim)
        # Padded positions are exact zeros (the mask a nested model cannot carry), real
        # positions are not.
        assert np.all(sequence[1, 4:] == 0) and np.all(sequence[2, 1:] == 0)
        assert np.all(np.any(sequence[1, :4] != 0, axis=-1))
    else:
        pooled = out
    assert pooled.shape == (3, 8)


@pytest.mark.parametrize("kind", ["cnn", "crnn"])
@pytest.mark.parametrize("return_sequence", [False, True])
def test_audio_encoder_shapes(kind, return_sequence):
    model = audio_encoder(**AUDIO, kind=kind, return_sequence=return_sequence)
    assert model.name == "audio_encoder"
    x = np.random.default_rng(0).normal(size=(2, 24, 16)).astype("float32")
    out = _call(model, x)
    # Two blocks: 24 frames -> 6 steps; 16 mel bins -> 4 bins x 8 channels = 32 per frame.
    seq_dim = 32 if kind == "cnn" else 2 * 8
    if return_sequence:
        pooled, sequence = out
        assert sequence.shape == (2, 6, seq_dim)
    else:
        pooled = out
    assert pooled.shape == (2, 8)


def test_audio_cnn_pooled_is_projection_of_time_mean():
    """The pooled vector of the CNN kind is the projected mean of its frame vectors."""
    model = audio_encoder(**AUDIO, kind="cnn", return_sequence=True)
    x = np.random.default_rng(1).normal(size=(2, 24, 16)).astype("float32")
    pooled, sequence = _call(model, x)
    kernel, bias = model.get_layer("projection").get_weights()
    expected = np.maximum(sequence.mean(axis=1) @ kernel + bias, 0.0)
    np.testing.assert_allclose(pooled, expected, atol=1e-5)


def test_encoder_as_nested_model():
    """An encoder is a layer of a bigger model, called on that model's own input."""
    encoder = text_encoder(**TEXT, kind="gru", return_sequence=True)
    tokens = keras.Input((10,), dtype="int32")
    pooled, sequence = encoder(tokens)
    model = keras.Model(tokens, keras.layers.Dense(1)(pooled))
    assert tuple(sequence.shape) == (None, 10, 8)
    x = _random_tokens(np.random.default_rng(0), 2, 10, [3, 7])
    assert _call(model, x).shape == (2, 1)


# ---------------------------------------------------------------------------------------------
# Masking: padding does not change the result
# ---------------------------------------------------------------------------------------------


def _copy_weights(short, long):
    """Give `long` (built for longer sequences) the weights of `short`.

    Only the Transformer's position table depends on seq_len; its extra rows (positions that
    only padding occupies) keep their random values, so they too must not leak.
    """
    grown = 0
    new = []
    for w_short, w_long in zip(short.get_weights(), long.get_weights()):
        if w_short.shape == w_long.shape:
            new.append(w_short)
        else:
            assert w_short.shape[1:] == w_long.shape[1:]
            w = w_long.copy()
            w[: w_short.shape[0]] = w_short
            new.append(w)
            grown += 1
    long.set_weights(new)
    return grown


@pytest.mark.parametrize("kind,pooling", TEXT_VARIANTS)
def test_padding_length_does_not_change_outputs(kind, pooling):
    set_seed(0)
    config = {**TEXT, "seq_len": 8}
    short = text_encoder(**config, kind=kind, pooling=pooling, return_sequence=True)
    long = text_encoder(**{**config, "seq_len": 20}, kind=kind, pooling=pooling,
                        return_sequence=True)
    assert _copy_weights(short, long) == (1 if kind == "transformer" else 0)

    x_short = _random_tokens(np.random.default_rng(1), 4, 8, [8, 5, 2, 1])
    x_long = np.zeros((4, 20), dtype="int32")
    x_long[:, :8] = x_short  # the same tokens followed by 12 more padding zeros
    pooled_short, seq_short = _call(short, x_short)
    pooled_long, seq_long = _call(long, x_long)

    np.testing.assert_allclose(pooled_long, pooled_short, atol=1e-5)
    np.testing.assert_allclose(seq_long[:, :8], seq_short, atol=1e-5)
    assert np.all(seq_long[:, 8:] == 0)


@pytest.mark.parametrize("kind,pooling", TEXT_VARIANTS)
def test_empty_text_gives_documented_constant_vector(kind, pooling):
    """An all-padding row pools to zeros, so its feature is relu(projection bias), no NaN."""
    model = text_encoder(**TEXT, kind=kind, pooling=pooling)
    projection = model.get_layer("projection")
    kernel, _ = projection.get_weights()
    projection.set_weights([kernel, np.linspace(-1, 1, 8).astype("float32")])
    x = _random_tokens(np.random.default_rng(0), 3, 10, [0, 4, 0])
    pooled = _call(model, x)
    expected = np.maximum(np.linspace(-1, 1, 8), 0.0)
    np.testing.assert_allclose(pooled[0], expected, atol=1e-6)
    np.testing.assert_allclose(pooled[2], expected, atol=1e-6)
    assert not np.allclose(pooled[1], expected)


def test_masked_mean_pooling_counts_only_kept_positions():
    layer = encoders.MaskedMeanPooling()
    x = np.arange(12, dtype="float32").reshape(2, 3, 2)
    mask = np.array([[True, False, True], [False, False, False]])
    out = keras.ops.convert_to_numpy(layer(x, mask=mask))
    np.testing.assert_allclose(out[0], (x[0, 0] + x[0, 2]) / 2)
    np.testing.assert_allclose(out[1], [0.0, 0.0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x.mean(axis=1))


# ---------------------------------------------------------------------------------------------
# Saving: every encoder round-trips through a .keras file
# ---------------------------------------------------------------------------------------------

ROUND_TRIP = {
    "image_cnn": lambda: image_encoder(**IMAGE, return_sequence=True),
    "text_bilstm": lambda: text_encoder(**TEXT, kind="bilstm", return_sequence=True),
    "text_gru_last": lambda: text_encoder(**TEXT, kind="gru", pooling="last",
                                          return_sequence=True),
    "text_transformer": lambda: text_encoder(**TEXT, kind="transformer", num_layers=2,
                                             return_sequence=True),
    "audio_cnn": lambda: audio_encoder(**AUDIO, kind="cnn", return_sequence=True),
    "audio_crnn": lambda: audio_encoder(**AUDIO, kind="crnn", return_sequence=True),
}


def _inputs_for(model, rng):
    shape = (3,) + tuple(model.inputs[0].shape[1:])
    if model.inputs[0].dtype == "int32":
        return _random_tokens(rng, 3, shape[1], [shape[1], 3, 1])
    return rng.random(shape, dtype="float32")


@pytest.mark.parametrize("which", sorted(ROUND_TRIP))
def test_keras_file_round_trip(which, tmp_path):
    set_seed(0)
    model = ROUND_TRIP[which]()
    # Move every weight off its initial value (batch-norm variances stay positive), so the
    # check covers trained-looking state, not only the initialisers.
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.uniform(0.0, 0.1, size=w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    path = tmp_path / f"{which}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.name == model.name
    x = _inputs_for(model, rng)
    for before, after in zip(_call(model, x), _call(loaded, x)):
        np.testing.assert_allclose(after, before, atol=1e-6)


@pytest.mark.parametrize(
    "layer",
    [
        encoders.PositionalEmbedding(vocab_size=30, seq_len=7, embed_dim=6, mask_zero=False),
        encoders.TransformerBlock(embed_dim=6, num_heads=3, ff_dim=5, dropout=0.2),
        encoders.BackbonePreprocessing("resnet50"),
        encoders.MaskedMeanPooling(),
        encoders.ZeroMasked(),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_custom_layer_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    registered = keras.saving.get_registered_object(f"mmtutor>{type(layer).__name__}")
    assert registered is type(layer)


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    (image_encoder, dict(input_shape=64), "got the int 64.*common mistake"),
    (image_encoder, dict(input_shape=(64, 64)), r"input_shape must be a tuple \(height, width"),
    (image_encoder, dict(input_shape=(None, 64, 64, 3)), "leave out the batch axis"),
    (image_encoder, dict(input_shape=(64, 0, 3)), "got \\(64, 0, 3\\)"),
    (image_encoder, dict(input_shape=(8, 8, 3), filters=(4, 4, 4, 4)), "too small for 4"),
    (image_encoder, dict(filters=16), r"single int 16.*\(16,\)"),
    (image_encoder, dict(filters=()), "non-empty"),
    (image_encoder, dict(filters=(16, -2)), "got \\(16, -2\\)"),
    (image_encoder, dict(dim=0), "dim must be an integer >= 1, got 0"),
    (image_encoder, dict(dim=8.0), "dim must be an integer >= 1, got 8.0"),
    (image_encoder, dict(dropout=1.0), r"dropout must be a float in \[0, 1\), got 1.0"),
    (image_encoder, dict(return_sequence="yes"), "return_sequence must be True or False"),
    (image_encoder, dict(name=""), "name must be a non-empty string"),
    (image_encoder, dict(backbone="vgg16"), "backbone must be one of 'mobilenetv3small'"),
    (image_encoder, dict(weights="w.h5"), "only applies to a standard backbone"),
    (image_encoder, dict(backbone="resnet50", input_shape=(64, 64, 1)), "RGB images"),
    (image_encoder, dict(backbone="resnet50", input_shape=(16, 16, 3)), "at least 32x32"),
    (image_encoder, dict(backbone="mobilenetv3small", weights="imagenet"),
     r"(?s)download.*weights_mobilenet_v3_small_224_1\.0_float_no_top_v2\.h5"),
    (text_encoder, dict(vocab_size=1, seq_len=10), "vocab_size must be an integer >= 2, got 1"),
    (text_encoder, dict(vocab_size=20, seq_len=0), "seq_len must be an integer >= 1, got 0"),
    (text_encoder, dict(vocab_size=20, seq_len=(10,)), r"seq_len must be an integer >= 1"),
    (text_encoder, dict(vocab_size=20, seq_len=10, kind="lstm"), "kind must be one of 'bilstm'"),
    (text_encoder, dict(vocab_size=20, seq_len=10, kind="transformer", embed_dim=10,
                        num_heads=4), "num_heads must divide embed_dim.*10.*4"),
    (text_encoder, dict(vocab_size=20, seq_len=10, kind="transformer", pooling="last"),
     "pooling='last' needs a recurrent kind"),
    (text_encoder, dict(vocab_size=20, seq_len=10, pooling="max"), "pooling must be one of"),
    (audio_encoder, dict(input_shape=301), "got the int 301.*common mistake"),
    (audio_encoder, dict(input_shape=(301, 64, 1)), "no extra channel axis"),
    (audio_encoder, dict(input_shape=(301, 4)), r"too small for 3 .*n_mels.*at least 8, got 4"),
    (audio_encoder, dict(kind="rnn"), "kind must be one of 'cnn', 'crnn'; got 'rnn'"),
    (audio_encoder, dict(units=-1), "units must be an integer >= 1, got -1"),
]


@pytest.mark.parametrize(
    "builder,kwargs,message", BAD_ARGUMENTS,
    ids=[f"{b.__name__}-{i}" for i, (b, _, _) in enumerate(BAD_ARGUMENTS)],
)
def test_bad_arguments_raise_clear_errors(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)


def test_positional_embedding_refuses_longer_inputs():
    layer = encoders.PositionalEmbedding(vocab_size=10, seq_len=4, embed_dim=3)
    with pytest.raises(ValueError, match="seq_len=4 tokens but got inputs of length 6"):
        layer(np.ones((1, 6), dtype="int32"))


def test_wrong_input_shape_at_call_time_is_named():
    model = text_encoder(**TEXT)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 10\).*found shape=\(2, 12\)"):
        model(np.ones((2, 12), dtype="int32"))


# ---------------------------------------------------------------------------------------------
# Standard backbones (random weights, or a LOCAL file; never a download)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone,depth", [("mobilenetv3small", 576), ("resnet50", 2048)])
def test_backbone_random_weights(backbone, depth):
    model = image_encoder((32, 32, 3), backbone=backbone, dim=8, return_sequence=True)
    net = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert net.trainable  # random weights: the backbone is trained, not frozen
    pooled, sequence = _call(model, np.random.default_rng(0).random((2, 32, 32, 3),
                                                                    dtype="float32"))
    assert pooled.shape == (2, 8) and sequence.shape == (2, 1, depth)


def test_backbone_loads_local_weights_file(tmp_path):
    set_seed(1)
    reference = keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), include_top=False, weights=None
    )
    path = tmp_path / "mobilenet_v3_small_notop.weights.h5"
    reference.save_weights(path)
    set_seed(2)  # a different random start, so equal weights can only come from the file
    model = image_encoder((32, 32, 3), backbone="mobilenetv3small", weights=path, dim=8)
    net = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    for loaded, saved in zip(net.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(loaded, saved)
    # Weights given: the backbone is frozen by default and only the projection trains.
    assert not net.trainable
    assert {w.path for w in model.trainable_weights} == {"projection/kernel", "projection/bias"}


def test_backbone_loads_legacy_h5_file_like_the_keras_download(tmp_path):
    """The files Keras downloads for `weights="imagenet"` are legacy HDF5; they load too."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    set_seed(3)
    reference = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False,
                                                    weights=None)
    path = tmp_path / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    set_seed(4)
    model = image_encoder((32, 32, 3), backbone="mobilenetv3small", weights=str(path), dim=8)
    net = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    for loaded, saved in zip(net.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(loaded, saved)


def test_backbone_missing_weights_file_names_path_and_remedy(tmp_path):
    missing = tmp_path / "nowhere" / "resnet50.h5"
    with pytest.raises(FileNotFoundError) as info:
        image_encoder((32, 32, 3), backbone="resnet50", weights=missing)
    text = str(info.value)
    assert str(missing) in text
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in text
    assert "never downloads" in text and "include_top=False" in text


def test_backbone_mismatched_weights_file(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras' per-layer "Skipping" warnings are absorbed
        with pytest.raises(ValueError, match="could not load weights file .*other.weights.h5"):
            image_encoder((32, 32, 3), backbone="mobilenetv3small", weights=path)
    text_file = tmp_path / "weights.txt"
    text_file.write_text("not weights")
    with pytest.raises(ValueError, match="must be a Keras weights file"):
        image_encoder((32, 32, 3), backbone="mobilenetv3small", weights=text_file)


def test_backbone_preprocessing_matches_imagenet_conventions():
    pixel = np.array([[[[1.0, 0.5, 0.0]]]], dtype="float32")  # RGB in [0, 1]
    layer = encoders.BackbonePreprocessing("mobilenetv3small")
    mobilenet = keras.ops.convert_to_numpy(layer(pixel))
    np.testing.assert_allclose(mobilenet[0, 0, 0], [255.0, 127.5, 0.0])
    resnet = keras.ops.convert_to_numpy(encoders.BackbonePreprocessing("resnet50")(pixel))
    # caffe: BGR order, ImageNet mean subtracted; same as keras.applications' own function.
    expected = keras.applications.resnet50.preprocess_input(pixel * 255.0)
    np.testing.assert_allclose(resnet, expected, atol=1e-4)
    np.testing.assert_allclose(resnet[0, 0, 0], [0.0 - 103.939, 127.5 - 116.779, 255.0 - 123.68],
                               atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Each encoder learns a trivially separable one-modality task
# ---------------------------------------------------------------------------------------------


def _fit_and_score(encoder, x, y, epochs):
    """Train encoder -> Dense(1, sigmoid) on the first half, return accuracy on the second."""
    inputs = keras.Input(encoder.inputs[0].shape[1:], dtype=encoder.inputs[0].dtype)
    outputs = keras.layers.Dense(1, activation="sigmoid")(encoder(inputs))
    classifier = keras.Model(inputs, outputs)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    half = len(y) // 2
    classifier.fit(x[:half], y[:half], epochs=epochs, batch_size=16, verbose=0)
    y_hat = (classifier.predict(x[half:], verbose=0)[:, 0] > 0.5).astype(int)
    # Accuracy compares predictions with labels (not the rate of positive predictions).
    return float(np.mean(y_hat == y[half:]))


def _labels(rng, n):
    y = np.zeros(n, dtype="int64")
    y[rng.permutation(n)[: n // 2]] = 1
    return y


def test_image_encoder_learns_bright_vs_dark():
    set_seed(0)
    rng = np.random.default_rng(0)
    y = _labels(rng, 128)
    base = np.where(y == 1, 0.65, 0.35)[:, None, None, None]
    x = np.clip(base + rng.normal(0.0, 0.15, size=(128, 16, 16, 3)), 0, 1).astype("float32")
    encoder = image_encoder((16, 16, 3), filters=(8,), dim=8)
    assert _fit_and_score(encoder, x, y, epochs=8) >= 0.9


@pytest.mark.parametrize("kind", ["bilstm", "gru", "transformer"])
def test_text_encoder_learns_token_5_vs_token_7(kind):
    set_seed(0)
    rng = np.random.default_rng(0)
    n, seq_len = 192, 12
    y = _labels(rng, n)
    lengths = rng.integers(3, seq_len + 1, size=n)
    x = np.zeros((n, seq_len), dtype="int32")
    for i, length in enumerate(lengths):
        x[i, :length] = rng.integers(8, 20, size=length)  # filler tokens never 5 or 7
        x[i, rng.integers(length)] = 5 if y[i] else 7
    encoder = text_encoder(20, seq_len, kind=kind, embed_dim=8, units=8, num_heads=2, dim=8)
    assert _fit_and_score(encoder, x, y, epochs=8) >= 0.9


@pytest.mark.parametrize("kind", ["cnn", "crnn"])
def test_audio_encoder_learns_low_vs_high_band(kind):
    set_seed(0)
    rng = np.random.default_rng(0)
    y = _labels(rng, 128)
    x = rng.normal(0.0, 0.5, size=(128, 24, 16)).astype("float32")
    x[y == 0, :, 1:5] += 2.0  # energy in low mel bands
    x[y == 1, :, 11:15] += 2.0  # energy in high mel bands
    encoder = audio_encoder((24, 16), kind=kind, filters=(4, 8), units=8, dim=8)
    assert _fit_and_score(encoder, x, y, epochs=8) >= 0.9
