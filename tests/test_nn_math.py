"""mmtutor.nn_math: every from-scratch function against the Keras layer it explains.

Each comparison builds the Keras layer, reads its own (random) weights with get_weights(),
and checks that the NumPy version computes the same numbers in float32 (atol 1e-5 unless the
magnitudes call for rtol, said where used).
"""

import doctest
import warnings

import numpy as np
import pytest

import mmtutor  # noqa: F401  (quiet TensorFlow start-up)
import keras
from sklearn.metrics import log_loss

from mmtutor import nn_math
from mmtutor.nn_math import (
    additive_attention,
    avg_pool2d,
    binary_cross_entropy,
    categorical_cross_entropy,
    conv2d,
    lstm,
    max_pool2d,
    multi_head_attention,
    relu,
    scaled_dot_product_attention,
    sigmoid,
    simple_rnn,
    softmax,
    tanh,
)

ATOL = 1e-5


def rand(rng, *shape, scale=1.0):
    return (scale * rng.normal(size=shape)).astype("float32")


def keras_weights_randomised(layer, rng, scale=0.5):
    """Give a built layer random weights (biases included, which Keras initialises to 0)."""
    layer.set_weights([rand(rng, *w.shape, scale=scale) for w in layer.get_weights()])
    return layer.get_weights()


def assert_close(ours, theirs, atol=ATOL, rtol=0.0):
    theirs = keras.ops.convert_to_numpy(theirs)
    assert ours.shape == theirs.shape
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=rtol)


# ------------------------------------------------------------------------------- docstrings


def test_docstring_examples_run():
    result = doctest.testmod(nn_math, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 14
    assert result.failed == 0


# ------------------------------------------------------------------------------ convolution

CONV_CASES = [
    # (height, width, c_in, c_out, kernel, strides, padding)
    (7, 7, 1, 2, (3, 3), 1, "valid"),
    (7, 9, 3, 4, (3, 3), 1, "same"),
    (8, 8, 2, 3, (3, 3), 2, "valid"),
    (9, 7, 2, 3, (3, 3), 2, "same"),
    (6, 8, 3, 2, (2, 2), 2, "same"),  # even kernel: the extra padding goes bottom/right
    (10, 11, 2, 5, (4, 3), (2, 3), "same"),
    (5, 6, 1, 1, (5, 2), (1, 2), "valid"),
    (11, 5, 4, 2, (1, 1), 3, "same"),
]


@pytest.mark.parametrize("h, w, c_in, c_out, kernel_size, strides, padding", CONV_CASES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_conv2d_matches_keras(h, w, c_in, c_out, kernel_size, strides, padding, use_bias):
    rng = np.random.default_rng(h * 100 + w + c_out)
    x = rand(rng, 2, h, w, c_in)
    layer = keras.layers.Conv2D(c_out, kernel_size, strides=strides, padding=padding, use_bias=use_bias)
    layer.build(x.shape)
    weights = keras_weights_randomised(layer, rng)
    bias = weights[1] if use_bias else None
    assert_close(conv2d(x, weights[0], bias, strides=strides, padding=padding), layer(x))


def test_conv2d_by_hand_and_float64_kept():
    # A 3x3 image and a kernel that picks the top-left pixel of each 2x2 window: a crop.
    x = np.arange(9, dtype="float64").reshape(1, 3, 3, 1)
    kernel = np.zeros((2, 2, 1, 1))
    kernel[0, 0] = 1.0
    y = conv2d(x, kernel, bias=np.array([10.0]))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y[0, :, :, 0], [[10, 11], [13, 14]])
    # 'same' with a 2x2 kernel pads one row/column at the end only: the last row/col sees zeros.
    np.testing.assert_array_equal(conv2d(x, kernel, padding="same")[0, :, :, 0], x[0, :, :, 0])


POOL_CASES = [
    # (height, width, pool_size, strides, padding)
    (6, 6, 2, None, "valid"),
    (7, 7, 2, None, "valid"),
    (7, 7, 2, None, "same"),
    (7, 9, 3, 2, "same"),
    (8, 5, 3, 1, "valid"),
    (5, 8, (2, 3), (1, 2), "same"),
    (9, 9, 3, None, "same"),
]


@pytest.mark.parametrize("h, w, pool_size, strides, padding", POOL_CASES)
def test_pooling_matches_keras(h, w, pool_size, strides, padding):
    rng = np.random.default_rng(h * 10 + w)
    x = rand(rng, 2, h, w, 3)
    kmax = keras.layers.MaxPooling2D(pool_size, strides=strides, padding=padding)
    kavg = keras.layers.AveragePooling2D(pool_size, strides=strides, padding=padding)
    assert_close(max_pool2d(x, pool_size, strides, padding), kmax(x))
    assert_close(avg_pool2d(x, pool_size, strides, padding), kavg(x))


def test_avg_pool_same_does_not_count_padding():
    x = np.full((1, 5, 5, 2), 3.0, dtype="float32")
    y = avg_pool2d(x, pool_size=3, strides=2, padding="same")
    assert y.shape == (1, 3, 3, 2)
    np.testing.assert_allclose(y, 3.0)  # zeros would pull the border windows below 3
    # and max pooling never picks a padded cell, even when every real value is negative
    np.testing.assert_allclose(max_pool2d(-x, 3, 2, "same"), -3.0)


# ------------------------------------------------------------------------------ activations


def test_activations_match_keras():
    rng = np.random.default_rng(0)
    x = rand(rng, 4, 7, scale=5.0)
    assert_close(relu(x), keras.activations.relu(x))
    assert_close(sigmoid(x), keras.activations.sigmoid(x))
    assert_close(tanh(x), keras.activations.tanh(x))
    for axis in (-1, 0):
        assert_close(softmax(x, axis=axis), keras.activations.softmax(x, axis=axis))


def test_softmax_and_sigmoid_stable_at_plus_minus_1000():
    x = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -1001.0]], dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would warn
        s = softmax(x)
        g = sigmoid(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype="float32"))
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, atol=1e-6)
    # shifting every logit by the same amount must not change the result
    np.testing.assert_allclose(s[0], softmax(np.array([2.0, 1.0, -1998.0], dtype="float32")), atol=1e-7)
    np.testing.assert_allclose(s[1], softmax(np.array([0.0, 0.0, -1.0], dtype="float32")), atol=1e-7)
    assert np.all(np.isfinite(g)) and g[0] == 0.0 and g[2] == 0.5 and g[4] == 1.0
    assert g[1] > 0.0  # exp(-50) ~ 2e-22 is representable in float32 and must not be lost


# ---------------------------------------------------------------------------------- RNNs

RNN_CASES = [(1, 1, 1, 3), (2, 5, 3, 4), (3, 7, 4, 6)]  # (batch, time, features, units)


def random_mask(rng, batch, steps):
    mask = rng.random((batch, steps)) > 0.35
    mask[:, -1] = False  # trailing padding, the usual case
    mask[0, 0] = False  # a masked first step carries the initial state
    return mask


@pytest.mark.parametrize("batch, steps, features, units", RNN_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_simple_rnn_matches_keras(batch, steps, features, units, masked):
    rng = np.random.default_rng(steps * 10 + units)
    x = rand(rng, batch, steps, features)
    mask = random_mask(rng, batch, steps) if masked else None
    layer = keras.layers.SimpleRNN(units, return_sequences=True)
    layer.build(x.shape)
    kernel, recurrent, bias = keras_weights_randomised(layer, rng)
    assert_close(simple_rnn(x, kernel, recurrent, bias, mask=mask), layer(x, mask=mask))


def test_simple_rnn_initial_state_and_no_bias():
    rng = np.random.default_rng(1)
    x, h0 = rand(rng, 2, 4, 3), rand(rng, 2, 5)
    layer = keras.layers.SimpleRNN(5, return_sequences=True, use_bias=False)
    layer.build(x.shape)
    kernel, recurrent = keras_weights_randomised(layer, rng)
    mask = np.array([[False, True, True, False], [True, True, False, False]])
    ours = simple_rnn(x, kernel, recurrent, None, h0=h0, mask=mask)
    assert_close(ours, layer(x, initial_state=h0, mask=mask))
    # masked first step: the output is zero but the state h0 is carried into step 1
    np.testing.assert_array_equal(ours[0, 0], 0.0)
    expected = np.tanh(x[0, 1] @ kernel + h0[0] @ recurrent)
    np.testing.assert_allclose(ours[0, 1], expected, atol=1e-6)


@pytest.mark.parametrize("batch, steps, features, units", RNN_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_lstm_matches_keras(batch, steps, features, units, masked):
    rng = np.random.default_rng(steps * 7 + units)
    x = rand(rng, batch, steps, features)
    mask = random_mask(rng, batch, steps) if masked else None
    layer = keras.layers.LSTM(units, return_sequences=True)
    layer.build(x.shape)
    kernel, recurrent, bias = keras_weights_randomised(layer, rng)
    ours = lstm(x, kernel, recurrent, bias, mask=mask)
    assert_close(ours, layer(x, mask=mask))
    if masked:  # where a step is masked, the output repeats the previous one (or h0 = 0)
        b, t = np.nonzero(~mask)
        previous = np.where(t[:, None] > 0, ours[b, np.maximum(t - 1, 0)], 0.0)
        np.testing.assert_array_equal(ours[b, t], previous)


def test_lstm_initial_state_matches_keras():
    rng = np.random.default_rng(2)
    x, h0, c0 = rand(rng, 2, 5, 3), rand(rng, 2, 4), rand(rng, 2, 4)
    layer = keras.layers.LSTM(4, return_sequences=True)
    layer.build(x.shape)
    kernel, recurrent, bias = keras_weights_randomised(layer, rng)
    assert_close(lstm(x, kernel, recurrent, bias, initial_state=(h0, c0)), layer(x, initial_state=[h0, c0]))


def test_lstm_gate_order_is_i_f_c_o():
    # Only the forget gate's bias is large and only the candidate sees the input: with the
    # gates in the order (i, f, c, o) the cell keeps a running sum of i * g.
    units = 1
    kernel = np.zeros((1, 4 * units), dtype="float32")
    kernel[0, 2] = 1.0  # the candidate c~ = tanh(x)
    bias = np.array([100.0, 100.0, 0.0, 100.0], dtype="float32")  # i = f = o = 1
    x = np.full((1, 3, 1), 0.5, dtype="float32")
    h = lstm(x, kernel, np.zeros((units, 4 * units), dtype="float32"), bias)
    c = np.tanh(0.5) * np.arange(1, 4)
    np.testing.assert_allclose(h[0, :, 0], np.tanh(c), atol=1e-6)


# ------------------------------------------------------------------------------- attention

ATTN_CASES = [(1, 1, 2, 2, 3), (2, 3, 5, 4, 6), (3, 6, 4, 8, 2)]  # (batch, T_q, T_k, d, d_v)


def key_mask(rng, batch, t_k):
    mask = rng.random((batch, t_k)) > 0.4
    mask[:, 0] = True  # every query keeps at least one key
    return mask


@pytest.mark.parametrize("batch, tq, tk, d, dv", ATTN_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_scaled_dot_product_matches_keras_attention(batch, tq, tk, d, dv, masked):
    rng = np.random.default_rng(tq * 10 + tk)
    q, k, v = rand(rng, batch, tq, d, scale=2.0), rand(rng, batch, tk, d, scale=2.0), rand(rng, batch, tk, dv)
    v_mask = key_mask(rng, batch, tk) if masked else None
    layer = keras.layers.Attention(use_scale=True)  # score = scale * q.k ; here scale = 1/sqrt(d)
    layer.build([q.shape, v.shape, k.shape])
    layer.set_weights([np.array(1 / np.sqrt(d), dtype="float32")])
    k_out, k_w = layer([q, v, k], mask=None if v_mask is None else [None, v_mask], return_attention_scores=True)
    out, w = scaled_dot_product_attention(q, k, v, mask=None if v_mask is None else v_mask[:, None, :])
    assert_close(out, k_out)
    assert_close(w, k_w)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    if masked:
        assert np.all(w[np.broadcast_to(~v_mask[:, None, :], w.shape)] == 0)


def test_scaled_dot_product_causal_mask_matches_keras():
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 5, 4)
    layer = keras.layers.Attention(use_scale=True)
    layer.build([x.shape, x.shape])
    layer.set_weights([np.array(0.5, dtype="float32")])  # 1 / sqrt(4)
    k_out, k_w = layer([x, x], use_causal_mask=True, return_attention_scores=True)
    out, w = scaled_dot_product_attention(x, x, x, mask=np.tril(np.ones((5, 5), dtype=bool)))
    assert_close(out, k_out)
    assert_close(w, k_w)


@pytest.mark.parametrize("batch, tq, tk, d, dv", ATTN_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_additive_identity_mode_matches_keras_additive_attention(batch, tq, tk, d, dv, masked):
    rng = np.random.default_rng(tq * 10 + tk + 1)
    q, k, v = rand(rng, batch, tq, d), rand(rng, batch, tk, d), rand(rng, batch, tk, dv)
    v_mask = key_mask(rng, batch, tk) if masked else None
    keras_mask = None if v_mask is None else [None, v_mask]
    our_mask = None if v_mask is None else v_mask[:, None, :]
    plain = keras.layers.AdditiveAttention(use_scale=False)
    k_out, k_w = plain([q, v, k], mask=keras_mask, return_attention_scores=True)
    out, w = additive_attention(q, k, v, mask=our_mask)  # W_q = W_k = I, v_a = 1
    assert_close(out, k_out)
    assert_close(w, k_w)
    scaled = keras.layers.AdditiveAttention(use_scale=True)
    scaled.build([q.shape, v.shape, k.shape])
    (scale,) = keras_weights_randomised(scaled, rng, scale=2.0)
    k_out, k_w = scaled([q, v, k], mask=keras_mask, return_attention_scores=True)
    out, w = additive_attention(q, k, v, v_a=scale, mask=our_mask)
    assert_close(out, k_out)
    assert_close(w, k_w)


@pytest.mark.parametrize("dq, dk, da", [(3, 3, 3), (4, 6, 5), (2, 7, 8)])
def test_bahdanau_equals_keras_additive_attention_on_projected_inputs(dq, dk, da):
    rng = np.random.default_rng(dq + dk + da)
    q, k, v = rand(rng, 2, 3, dq), rand(rng, 2, 5, dk), rand(rng, 2, 5, 4)
    w_q, w_k, v_a = rand(rng, dq, da), rand(rng, dk, da), rand(rng, da)
    v_mask = key_mask(rng, 2, 5)
    layer = keras.layers.AdditiveAttention(use_scale=True)
    layer.build([(2, 3, da), v.shape, (2, 5, da)])
    layer.set_weights([v_a])
    k_out, k_w = layer([keras.ops.matmul(q, w_q), v, keras.ops.matmul(k, w_k)], mask=[None, v_mask],
                       return_attention_scores=True)
    out, w = additive_attention(q, k, v, w_q, w_k, v_a, mask=v_mask[:, None, :])
    assert_close(out, k_out)
    assert_close(w, k_w)


MHA_CASES = [
    # (batch, T_q, T_v, d_query, d_value, d_key or None, heads, key_dim, value_dim, use_bias)
    (1, 4, 4, 6, 6, None, 1, 3, None, True),
    (2, 3, 5, 8, 6, None, 2, 4, None, True),
    (2, 5, 4, 4, 7, 3, 3, 2, 5, True),
    (3, 2, 6, 5, 5, 5, 4, 3, 2, False),
]


@pytest.mark.parametrize("batch, tq, tv, dq, dv, dk, heads, key_dim, value_dim, use_bias", MHA_CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_multi_head_attention_matches_keras(batch, tq, tv, dq, dv, dk, heads, key_dim, value_dim, use_bias, masked):
    rng = np.random.default_rng(tq * 100 + tv * 10 + heads)
    query, value = rand(rng, batch, tq, dq), rand(rng, batch, tv, dv)
    key = None if dk is None else rand(rng, batch, tv, dk)
    mask = None
    if masked:
        mask = np.broadcast_to(key_mask(rng, batch, tv)[:, None, :], (batch, tq, tv)).copy()
        mask[0, -1] = True  # and one query allowed everything
    layer = keras.layers.MultiHeadAttention(heads, key_dim, value_dim=value_dim, use_bias=use_bias)
    k_out, k_scores = layer(query, value, key, attention_mask=mask, return_attention_scores=True)
    weights = keras_weights_randomised(layer, rng)
    k_out, k_scores = layer(query, value, key, attention_mask=mask, return_attention_scores=True)
    out, scores = multi_head_attention(query, value, key, weights=weights, num_heads=heads, mask=mask)
    assert_close(out, k_out)
    assert_close(scores, k_scores)
    assert scores.shape == (batch, heads, tq, tv)


def test_a_query_that_may_attend_to_nothing_gets_zero_weights_as_in_keras():
    """A fully masked query row: Keras 3 gives it zero weights (not uniform ones), and so do we."""
    rng = np.random.default_rng(11)
    batch, tq, tv, d = 2, 3, 4, 6
    query, value = rand(rng, batch, tq, d), rand(rng, batch, tv, d)
    mask = np.ones((batch, tq, tv), dtype=bool)
    mask[0, 1] = False          # query 1 of sample 0 may attend to nothing
    mask[1, :, 2] = False       # an ordinary padding mask elsewhere
    layer = keras.layers.MultiHeadAttention(2, 3)
    layer(query, value, attention_mask=mask)
    weights = keras_weights_randomised(layer, rng)
    k_out, k_scores = layer(query, value, attention_mask=mask, return_attention_scores=True)
    out, scores = multi_head_attention(query, value, weights=weights, mask=mask)
    assert_close(scores, k_scores)
    assert_close(out, k_out)
    assert np.all(scores[0, :, 1] == 0), "a fully masked row must get zero weights"
    np.testing.assert_allclose(scores[0, :, 0].sum(-1), 1.0, atol=1e-6)
    # Its output is then the output projection's bias alone: the context vector is zero.
    np.testing.assert_allclose(out[0, 1], weights[-1], atol=ATOL)
    # keras.layers.Softmax does the same with a mask.
    logits = rand(rng, 2, 4)
    soft_mask = np.array([[True, False, True, True], [False, False, False, False]])
    np.testing.assert_allclose(keras.layers.Softmax()(logits, mask=soft_mask)[1], 0.0)
    _, w = scaled_dot_product_attention(query[:, :2], value, value, mask=soft_mask[:, None, :])
    assert np.all(w[1] == 0) and np.allclose(w[0].sum(-1), 1.0)


# ---------------------------------------------------------------------------------- losses


def test_binary_cross_entropy_matches_keras_and_sklearn():
    rng = np.random.default_rng(4)
    y = (rng.random(50) > 0.5).astype("float32")
    p = rng.uniform(0.01, 0.99, size=50).astype("float32")
    ours = binary_cross_entropy(y, p)
    np.testing.assert_allclose(ours, keras.losses.BinaryCrossentropy()(y, p), atol=ATOL)
    np.testing.assert_allclose(ours, log_loss(y, p.astype("float64")), atol=ATOL)
    per_sample = binary_cross_entropy(y, p, reduction="none")
    assert per_sample.shape == (50,)
    np.testing.assert_allclose(per_sample.mean(), ours, atol=1e-6)
    # from logits: extreme logits included, where log(sigmoid(z)) would give -inf
    z = np.concatenate([rand(rng, 48, scale=4.0), np.array([-200.0, 200.0], dtype="float32")])
    ours = binary_cross_entropy(y, z, from_logits=True)
    assert np.isfinite(ours)
    np.testing.assert_allclose(ours, keras.losses.BinaryCrossentropy(from_logits=True)(y, z), rtol=1e-6)


def test_binary_cross_entropy_finite_at_p_0_and_1():
    y = np.array([1.0, 0.0, 1.0, 0.0], dtype="float32")
    p = np.array([0.0, 1.0, 1.0, 0.0], dtype="float32")  # two confidently wrong, two right
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log(0) would warn
        losses = binary_cross_entropy(y, p, reduction="none")
    assert np.all(np.isfinite(losses))
    assert losses[0] > 10 and losses[1] > 10 and losses[2] < 1e-5 and losses[3] < 1e-5
    # the clipped values are Keras' values; relative tolerance since they are ~16
    np.testing.assert_allclose(losses.mean(), keras.losses.BinaryCrossentropy()(y, p), rtol=1e-6)


def test_categorical_cross_entropy_matches_keras_and_sklearn():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, size=30)
    y = np.eye(4, dtype="float32")[labels]
    logits = rand(rng, 30, 4, scale=3.0)
    p = softmax(logits)
    ours = categorical_cross_entropy(y, p)
    np.testing.assert_allclose(ours, keras.losses.CategoricalCrossentropy()(y, p), atol=ATOL)
    p64 = p.astype("float64") / p.astype("float64").sum(axis=1, keepdims=True)  # exact sums for sklearn
    np.testing.assert_allclose(ours, log_loss(labels, p64, labels=range(4)), atol=ATOL)
    from_logits = categorical_cross_entropy(y, logits, from_logits=True)
    np.testing.assert_allclose(
        from_logits, keras.losses.CategoricalCrossentropy(from_logits=True)(y, logits), atol=ATOL
    )
    np.testing.assert_allclose(from_logits, ours, atol=ATOL)
    per_sample = categorical_cross_entropy(y, p, reduction="none")
    assert per_sample.shape == (30,)
    np.testing.assert_allclose(per_sample, -np.log(p[np.arange(30), labels]), atol=ATOL)
    # class axis first
    np.testing.assert_allclose(categorical_cross_entropy(y.T, p.T, axis=0), ours, atol=1e-6)


def test_categorical_cross_entropy_extreme_logits_finite():
    y = np.array([[0.0, 1.0, 0.0]], dtype="float32")
    logits = np.array([[1000.0, -1000.0, 0.0]], dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = categorical_cross_entropy(y, logits, from_logits=True)
        clipped = categorical_cross_entropy(y, np.array([[1.0, 0.0, 0.0]], dtype="float32"))
    np.testing.assert_allclose(loss, 2000.0, rtol=1e-6)
    assert np.isfinite(clipped) and clipped > 10


# ------------------------------------------------------------------------------ bad input


def test_conv2d_channel_mismatch_names_both():
    x = np.zeros((1, 5, 5, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"kernel expects 2 input channels.*x has 3 channels"):
        conv2d(x, np.zeros((3, 3, 2, 4), dtype="float32"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x": np.zeros((5, 5, 3))}, r"x must be a 4-D array .* got an array of shape \(5, 5, 3\)"),
        ({"kernel": np.zeros((3, 3, 3))}, r"kernel must be a 4-D array"),
        ({"bias": np.zeros(5)}, r"bias must have shape \(4,\).*got shape \(5,\)"),
        ({"strides": 0}, r"strides must be a positive int or a pair of positive ints, got 0"),
        ({"strides": (1, 2, 3)}, r"strides must be .* got \(1, 2, 3\)"),
        ({"padding": "full"}, r"padding must be 'valid' or 'same', got 'full'"),
        ({"x": np.zeros((1, 2, 2, 3))}, r"window \(3, 3\) is larger than the input's spatial size \(2, 2\)"),
        ({"x": [["a"]]}, r"x must be an array of numbers"),
    ],
)
def test_conv2d_bad_input(kwargs, message):
    args = {"x": np.zeros((1, 5, 5, 3)), "kernel": np.zeros((3, 3, 3, 4)), "bias": None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        conv2d(**args)


def test_pool_bad_input():
    with pytest.raises(ValueError, match=r"pool_size must be a positive int"):
        max_pool2d(np.zeros((1, 4, 4, 1)), pool_size=-2)
    with pytest.raises(ValueError, match=r"x must be a 4-D array"):
        avg_pool2d(np.zeros((4, 4)))


def test_rnn_bad_input():
    x = np.zeros((2, 4, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"kernel expects 5 input features.*x has 3 features"):
        simple_rnn(x, np.zeros((5, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(2, 2\).*got shape \(3, 3\)"):
        simple_rnn(x, np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 4\).*got shape \(4,\)"):
        simple_rnn(x, np.zeros((3, 2)), np.zeros((2, 2)), mask=np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2\)"):
        simple_rnn(x, np.zeros((3, 2)), np.zeros((2, 2)), h0=np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"kernel of a LSTM must have 4 \* units columns"):
        lstm(x, np.zeros((3, 6)), np.zeros((1, 6)))
    with pytest.raises(ValueError, match=r"bias must have shape \(8,\)"):
        lstm(x, np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(4))
    with pytest.raises(ValueError, match=r"initial_state must be a pair \(h0, c0\)"):
        lstm(x, np.zeros((3, 8)), np.zeros((2, 8)), initial_state=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"x must be a 3-D array \(batch, time, features\)"):
        lstm(np.zeros((4, 3)), np.zeros((3, 8)), np.zeros((2, 8)))


def test_attention_bad_input():
    q, k, v = np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), np.zeros((2, 6, 4))
    with pytest.raises(ValueError, match=r"k and v must have the same number of positions"):
        scaled_dot_product_attention(q, k, v)
    with pytest.raises(ValueError, match=r"q and k must have the same feature size"):
        scaled_dot_product_attention(q, np.zeros((2, 5, 3)), k)
    with pytest.raises(ValueError, match=r"mask of shape \(2, 5\) cannot be broadcast to \(2, 3, 5\)"):
        scaled_dot_product_attention(q, k, k, mask=np.ones((2, 5), dtype=bool))
    with pytest.raises(ValueError, match=r"w_q has 3 rows but q has 4 features"):
        additive_attention(q, k, k, w_q=np.zeros((3, 2)), w_k=np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"projected queries and keys must have the same size d_a"):
        additive_attention(q, k, k, w_q=np.zeros((4, 2)), w_k=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"v_a must have shape \(2,\)"):
        additive_attention(q, k, k, w_q=np.zeros((4, 2)), w_k=np.zeros((4, 2)), v_a=np.zeros(3))


def test_multi_head_attention_bad_input():
    rng = np.random.default_rng(6)
    shapes = [(4, 2, 3), (2, 3), (4, 2, 3), (2, 3), (4, 2, 3), (2, 3), (2, 3, 4), (4,)]
    weights = [rand(rng, *s) for s in shapes]
    x = rand(rng, 1, 5, 4)
    with pytest.raises(ValueError, match=r"weights must be the list from MultiHeadAttention.get_weights\(\).*got 3 arrays"):
        multi_head_attention(x, x, weights=weights[:3])
    with pytest.raises(ValueError, match=r"num_heads=3 but the kernels hold 2 heads"):
        multi_head_attention(x, x, weights=weights, num_heads=3)
    with pytest.raises(ValueError, match=r"the query kernel expects 4 features but query has 6"):
        multi_head_attention(rand(rng, 1, 5, 6), x, weights=weights)
    with pytest.raises(ValueError, match=r"weights \(key bias\) must have shape \(2, 3\)"):
        multi_head_attention(x, x, weights=weights[:3] + [np.zeros(3)] + weights[4:])


def test_loss_bad_input():
    with pytest.raises(ValueError, match=r"y_true and p must have the same shape, got y_true \(3,\) and p \(2,\)"):
        binary_cross_entropy([1, 0, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\].*from_logits=True"):
        binary_cross_entropy([1, 0], [2.5, 0.5])
    with pytest.raises(ValueError, match=r"y_true must lie in \[0, 1\]"):
        binary_cross_entropy([2, 0], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"are empty"):
        binary_cross_entropy([], [])
    with pytest.raises(ValueError, match=r"eps must be a number in \[0, 0.5\)"):
        binary_cross_entropy([1], [0.5], eps=0.7)
    with pytest.raises(ValueError, match=r"reduction must be 'mean' or 'none', got 'sum'"):
        categorical_cross_entropy([[0, 1]], [[0.4, 0.6]], reduction="sum")
    with pytest.raises(ValueError, match=r"p must hold probabilities \(non-negative\)"):
        categorical_cross_entropy([[0, 1]], [[-0.4, 0.6]])
    with pytest.raises(ValueError, match=r"axis must be an int in \[-2, 1\]"):
        categorical_cross_entropy([[0, 1]], [[0.4, 0.6]], axis=2)
    with pytest.raises(ValueError, match=r"x must be at least 1-D"):
        softmax(3.0)


# ------------------------------------------------- layer norm, backpropagation, optimizers

from mmtutor.nn_math import adam_step, cosine_decay, layer_norm, mlp_backward, mlp_forward, sgd_step  # noqa: E402


@pytest.mark.parametrize("shape, axis, epsilon", [((4, 6), -1, 1e-3), ((2, 5, 8), -1, 1e-6), ((3, 7, 2), 1, 1e-3)])
def test_layer_norm_matches_keras(shape, axis, epsilon):
    rng = np.random.default_rng(0)
    x = rand(rng, *shape, scale=3.0) + 2.0
    layer = keras.layers.LayerNormalization(axis=axis, epsilon=epsilon)
    layer.build(shape)
    gamma, beta = keras_weights_randomised(layer, rng)
    assert_close(layer_norm(x, gamma, beta, epsilon=epsilon, axis=axis), layer(x))


def _mlp(rng, features=5, hidden=7, classes=3):
    return [rand(rng, features, hidden), rand(rng, hidden, scale=0.5), rand(rng, hidden, classes), rand(rng, classes, scale=0.5)]


@pytest.mark.parametrize("labels_as", ["integers", "one-hot"])
def test_mlp_backward_matches_gradient_tape(labels_as):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    params = _mlp(rng)
    x = rand(rng, 16, 5)
    labels = rng.integers(0, 3, size=16)
    y = labels if labels_as == "integers" else np.eye(3, dtype="float32")[labels]
    loss, grads = mlp_backward(params, x, y)

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="relu"), keras.layers.Dense(3)])
    model.set_weights(params)
    with tf.GradientTape() as tape:
        logits = model(x)
        keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True)(np.eye(3, dtype="float32")[labels], logits)
    keras_grads = tape.gradient(keras_loss, model.trainable_variables)
    assert abs(loss - float(keras_loss)) < ATOL
    assert_close(mlp_forward(params, x), logits)
    for ours, theirs in zip(grads, keras_grads):
        assert_close(ours, theirs)


def test_mlp_backward_matches_finite_differences():
    rng = np.random.default_rng(2)
    params = [p.astype("float64") for p in _mlp(rng, 3, 4, 2)]
    x, y = rng.normal(size=(6, 3)), rng.integers(0, 2, size=6)
    _, grads = mlp_backward(params, x, y)
    h = 1e-6
    for i, p in enumerate(params):
        for idx in np.ndindex(p.shape):
            up = [q.copy() for q in params]
            down = [q.copy() for q in params]
            up[i][idx] += h
            down[i][idx] -= h
            numeric = (mlp_backward(up, x, y)[0] - mlp_backward(down, x, y)[0]) / (2 * h)
            assert abs(numeric - grads[i][idx]) < 1e-6


def _keras_steps(optimizer, params, grad_fn, steps):
    variables = [keras.Variable(p) for p in params]
    for _ in range(steps):
        grads = grad_fn([keras.ops.convert_to_numpy(v) for v in variables])
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads], variables))
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _grad_fn(x, y):
    return lambda params: mlp_backward(params, x, y)[1]


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
def test_sgd_steps_match_keras_sgd(momentum, nesterov):
    rng = np.random.default_rng(3)
    params, x, y = _mlp(rng), rand(rng, 16, 5), rng.integers(0, 3, size=16)
    grad_fn = _grad_fn(x, y)
    ours, state = params, None
    for _ in range(5):
        ours, state = sgd_step(ours, grad_fn(ours), lr=0.1, state=state, momentum=momentum, nesterov=nesterov)
    theirs = _keras_steps(keras.optimizers.SGD(0.1, momentum=momentum, nesterov=nesterov), params, grad_fn, 5)
    for a, b in zip(ours, theirs):
        assert_close(a, b)


@pytest.mark.parametrize("lr, beta_1, beta_2, epsilon", [(1e-3, 0.9, 0.999, 1e-7), (0.05, 0.8, 0.99, 1e-3)])
def test_adam_steps_match_keras_adam(lr, beta_1, beta_2, epsilon):
    rng = np.random.default_rng(4)
    params, x, y = _mlp(rng), rand(rng, 16, 5), rng.integers(0, 3, size=16)
    grad_fn = _grad_fn(x, y)
    ours, state = params, None
    for _ in range(6):
        ours, state = adam_step(ours, grad_fn(ours), state, lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    assert state["step"] == 6
    optimizer = keras.optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    theirs = _keras_steps(optimizer, params, grad_fn, 6)
    for a, b in zip(ours, theirs):
        assert_close(a, b)


def test_adam_epsilon_is_added_to_the_uncorrected_sqrt_v():
    # With a large epsilon the two textbook forms differ; Keras' form is the one we implement.
    g, eps, lr = np.array([1e-3], "float32"), 1e-2, 1.0
    (ours,), _ = adam_step([np.zeros(1, "float32")], [g], lr=lr, epsilon=eps)
    m, v = 0.1 * g, 0.001 * g**2
    keras_form = -lr * np.sqrt(1 - 0.999) / (1 - 0.9) * m / (np.sqrt(v) + eps)
    paper_form = -lr * (m / 0.1) / (np.sqrt(v / 0.001) + eps)
    np.testing.assert_allclose(ours, keras_form, rtol=1e-5)
    assert abs(ours[0] - paper_form[0]) > 1e-3 * abs(paper_form[0])


def test_cosine_decay_matches_keras_schedule():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=40, alpha=0.05)
    steps = np.arange(0, 60, 3)
    theirs = np.array([float(schedule(int(s))) for s in steps])
    np.testing.assert_allclose(cosine_decay(steps, 0.1, 40, alpha=0.05), theirs, rtol=1e-6)


def test_backprop_and_optimizers_bad_input():
    rng = np.random.default_rng(5)
    params, x = _mlp(rng), rand(rng, 4, 5)
    with pytest.raises(ValueError, match=r"params must be a list \[W1, b1, W2, b2\].*of 3 arrays"):
        mlp_forward(params[:3], x)
    with pytest.raises(ValueError, match=r"W1 expects 5 features but x has 6"):
        mlp_forward(params, rand(rng, 4, 6))
    with pytest.raises(ValueError, match=r"b2 must have shape \(3,\)"):
        mlp_forward(params[:3] + [np.zeros(2)], x)
    with pytest.raises(ValueError, match=r"y_true of shape \(4,\) must hold 4 integer labels in \[0, 2\]"):
        mlp_backward(params, x, [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"y_true must have shape \(4, 3\)"):
        mlp_backward(params, x, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"grads\[1\] must have the shape of params\[1\]"):
        sgd_step(params, [params[0], params[0], params[2], params[3]])
    with pytest.raises(ValueError, match=r"params and grads must have the same length, got 4 and 3"):
        adam_step(params, params[:3])
    with pytest.raises(ValueError, match=r"lr must be a number in \(0.0, inf\), got -0.1"):
        sgd_step(params, params, lr=-0.1)
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0.0, 1.0\), got 1.5"):
        sgd_step(params, params, momentum=1.5)
    with pytest.raises(ValueError, match=r"beta_2 must be a number in \[0.0, 1.0\), got 1"):
        adam_step(params, params, beta_2=1)
    with pytest.raises(ValueError, match=r"state must be the dict returned by the previous adam_step"):
        adam_step(params, params, state={"m": []})
    with pytest.raises(ValueError, match=r"gamma must have shape \(5,\)"):
        layer_norm(x, gamma=np.ones(4))
    with pytest.raises(ValueError, match=r"decay_steps must be a positive int, got 0"):
        cosine_decay(3, 0.1, 0)
