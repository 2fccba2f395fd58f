"""Tests of mmtutor.cost: FLOPs counted by hand on small layers, memory, quantization, pruning."""

import keras
import numpy as np
import pytest

from mmtutor.cost import (activation_sizes, dequantize, layer_flops, magnitude_prune, model_flops,
                          pruned_weights, quantize_int8, quantized_weights, sparse_bytes,
                          weight_bytes)
from mmtutor.fusion import ConcatFusion, GatedFusion, LowRankFusion, TensorFusion


def one_layer(layer, shape, dtype="float32"):
    x = keras.Input(shape, dtype=dtype)
    model = keras.Model(x, layer(x))
    return model, model.layers[-1]


def test_dense_by_hand():
    _, layer = one_layer(keras.layers.Dense(3), (4,))
    assert layer_flops(layer) == 2 * 4 * 3
    _, layer = one_layer(keras.layers.Dense(3), (5, 4))  # applied at 5 positions
    assert layer_flops(layer) == 5 * 2 * 4 * 3


def test_conv2d_by_hand():
    # 6x6 input, 3x3 'same' kernel: 36 output positions, each 9 * 2 inputs * 4 filters MACs.
    _, layer = one_layer(keras.layers.Conv2D(4, 3, padding="same"), (6, 6, 2))
    assert layer_flops(layer) == 2 * 36 * 9 * 2 * 4
    _, layer = one_layer(keras.layers.Conv2D(4, 3, padding="valid"), (6, 6, 2))
    assert layer_flops(layer) == 2 * 16 * 9 * 2 * 4
    _, layer = one_layer(keras.layers.Conv2D(4, 3, strides=2, padding="same"), (6, 6, 2))
    assert layer_flops(layer) == 2 * 9 * 9 * 2 * 4


def test_conv2d_matches_a_numpy_count_of_products():
    # Count the multiplications of a direct NumPy convolution loop.
    h, w, cin, cout, k = 5, 4, 3, 2, 3
    _, layer = one_layer(keras.layers.Conv2D(cout, k, padding="valid"), (h, w, cin))
    products = 0
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            products += np.ones((k, k, cin, cout)).size
    assert layer_flops(layer) == 2 * products


def test_recurrent_by_hand():
    steps, d, u = 7, 5, 4
    _, gru = one_layer(keras.layers.GRU(u), (steps, d))
    assert layer_flops(gru) == 2 * steps * 3 * u * (d + u)
    _, lstm = one_layer(keras.layers.LSTM(u), (steps, d))
    assert layer_flops(lstm) == 2 * steps * 4 * u * (d + u)
    _, bi = one_layer(keras.layers.Bidirectional(keras.layers.LSTM(u)), (steps, d))
    assert layer_flops(bi) == 2 * 2 * steps * 4 * u * (d + u)


def test_attention_by_hand():
    q = keras.Input((3, 8))
    v = keras.Input((5, 6))
    out = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(q, v)
    layer = keras.Model([q, v], out).layers[-1]
    proj = 2 * (3 * 8 * 8 + 5 * 6 * 8 + 5 * 6 * 8)
    scores = 2 * 2 * 3 * 5 * 4
    weighted = 2 * 2 * 3 * 5 * 4
    output = 2 * 3 * 8 * 8
    assert layer_flops(layer) == proj + scores + weighted + output


def fusion_head(layer, dims):
    inputs = [keras.Input((d,)) for d in dims]
    mask = keras.Input((len(dims),))
    out = layer(inputs, modality_mask=mask)
    model = keras.Model(inputs + [mask], out)
    return model, [lyr for lyr in model.layers if lyr is layer][0]


def test_fusion_layers_by_hand():
    _, layer = fusion_head(ConcatFusion(), [3, 4])
    assert layer_flops(layer) == 0
    _, layer = fusion_head(ConcatFusion(dim=5), [3, 4])
    assert layer_flops(layer) == 2 * (3 + 4 + 2) * 5
    _, layer = fusion_head(TensorFusion(), [2, 3])
    assert layer_flops(layer) == 3 * 4  # one product per entry of the outer product
    _, layer = fusion_head(TensorFusion(), [2, 3, 1])
    assert layer_flops(layer) == 3 * 4 + 3 * 4 * 2
    _, layer = fusion_head(LowRankFusion(rank=2, dim=5), [3, 4])
    assert layer_flops(layer) == 2 * 2 * 4 * 5 + 2 * 2 * 5 * 5 + 2 * 5 + 2 * 5
    _, layer = fusion_head(GatedFusion(dim=5), [3, 4])
    assert layer_flops(layer) == 2 * 3 * 5 + 2 * 4 * 5 + 2 * (3 + 4 + 2) * 10 + 2 * 2 * 5


def test_model_flops_walks_nested_models_and_free_layers():
    x = keras.Input((6, 6, 1))
    h = keras.layers.Conv2D(2, 3, padding="same", use_bias=False)(x)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    inner = keras.Model(x, keras.layers.Dense(4)(h), name="inner")
    y = keras.Input((6, 6, 1))
    outer = keras.Model(y, keras.layers.Dense(2)(inner(y)))
    expected = 2 * 36 * 9 * 1 * 2 + 2 * 18 * 4 + 2 * 4 * 2
    assert model_flops(outer) == expected
    per = model_flops(outer, per_layer=True)
    assert sum(per.values()) == expected and any(k.startswith("inner/") for k in per)


def test_unknown_layer_with_weights_is_an_error():
    class Odd(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],))

        def call(self, x):
            return x * self.w

    _, layer = one_layer(Odd(), (3,))
    with pytest.raises(ValueError, match="does not know"):
        layer_flops(layer)
    with pytest.raises(TypeError, match="keras.layers.Layer"):
        layer_flops("dense")
    with pytest.raises(TypeError, match="keras.Model"):
        model_flops(keras.layers.Dense(2))


def test_weight_bytes_and_activation_sizes():
    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(3, name="d")(x)
    model = keras.Model(x, keras.layers.Dense(2, name="e")(h))
    assert weight_bytes(model) == 4 * (4 * 3 + 3 + 3 * 2 + 2)
    assert weight_bytes(model, bytes_per_weight=1) == 4 * 3 + 3 + 3 * 2 + 2
    assert activation_sizes(model) == {"x": 4, "d": 3, "e": 2}
    with pytest.raises(ValueError, match="bytes_per_weight"):
        weight_bytes(model, bytes_per_weight=0)


def test_quantize_round_trip_error_is_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(50, 20)).astype("float32")
    q, s = quantize_int8(w)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    assert s == pytest.approx(np.abs(w).max() / 127)
    assert np.abs(dequantize(q, s) - w).max() <= s / 2 + 1e-7
    q0, s0 = quantize_int8(np.zeros(3))
    assert q0.tolist() == [0, 0, 0] and s0 == 1.0
    with pytest.raises(ValueError, match="finite"):
        quantize_int8([np.nan, 1.0])
    with pytest.raises(ValueError, match="scale"):
        dequantize(q, 0.0)


def test_quantized_weights_keep_vectors():
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(3)(x))
    model.layers[-1].bias.assign(np.array([0.1234567, -2.0, 3.0], "float32"))
    weights, stored = quantized_weights(model)
    kernel, bias = model.get_weights()
    assert np.array_equal(weights[1], bias)
    assert np.abs(weights[0] - kernel).max() <= np.abs(kernel).max() / 254 + 1e-7
    assert stored == 12 + 4 + 3 * 4


def test_magnitude_prune():
    w = np.array([[0.1, -2.0], [0.3, -0.05]], "float32")
    assert np.array_equal(magnitude_prune(w, 0.5), np.array([[0.0, -2.0], [0.3, 0.0]], "float32"))
    assert magnitude_prune(w, 0.0).tolist() == w.tolist()
    rng = np.random.default_rng(1)
    big = rng.normal(size=1000)
    for s in (0.5, 0.8, 0.9):
        pruned = magnitude_prune(big, s)
        assert np.count_nonzero(pruned) == 1000 - int(s * 1000)
        kept = np.abs(pruned[pruned != 0])
        assert kept.min() >= np.abs(big[pruned == 0]).max()
    assert np.count_nonzero(big) == 1000  # the input is not changed
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_prune(w, 1.0)


def test_pruned_weights_and_sparse_bytes():
    x = keras.Input((10,))
    model = keras.Model(x, keras.layers.Dense(10)(x))
    weights = pruned_weights(model, 0.9)
    assert np.count_nonzero(weights[0]) == 10 and weights[1].shape == (10,)
    assert sparse_bytes(weights) == 13 + 4 * 10 + 4 * 10  # mask of 100 bits, 10 values, bias
    with pytest.raises(TypeError, match="list"):
        sparse_bytes(np.ones((2, 2)))
