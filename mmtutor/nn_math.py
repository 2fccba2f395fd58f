"""The math of CNNs, RNNs and attention, written from scratch in NumPy.

Defined in the chapter "The math of CNNs, RNNs and attention" (``book/foundations/03_math``).

Every function here is the formula of the chapter turned into a few lines of NumPy, and each
one agrees with the matching Keras layer run with that layer's own weights (the tests in
``tests/test_nn_math.py`` check it on random weights of several shapes). The arrays follow
Keras' conventions, so weights can be passed straight from ``layer.get_weights()``:

* images are NHWC ``(batch, height, width, channels)``; convolution kernels are
  ``(kernel_h, kernel_w, channels_in, channels_out)``;
* sequences are ``(batch, time, features)``; recurrent weights are ``kernel`` (input to units),
  ``recurrent_kernel`` (units to units) and ``bias``, with the LSTM gates stacked in the order
  input, forget, cell candidate, output;
* masks are boolean, ``True`` meaning "this position is real / may be attended to".

Computation happens in the floating dtype of the inputs: float32 arrays stay float32 (what
Keras uses), float64 arrays stay float64, and integer or boolean arrays become float32.

Nothing here is meant for training real models; it is meant for reading. The last section
(backpropagation through a small dense network, SGD with momentum, Adam, cosine decay) shows
how training works and agrees with automatic differentiation and Keras' optimizers.
"""

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "simple_rnn",
    "lstm",
    "scaled_dot_product_attention",
    "additive_attention",
    "multi_head_attention",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "layer_norm",
    "mlp_forward",
    "mlp_backward",
    "sgd_step",
    "adam_step",
    "cosine_decay",
]

_PADDINGS = ("valid", "same")
# Keras replaces masked attention scores by this value before the softmax (keras.layers.Softmax).
_MASK_VALUE = -1e9


# --------------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------------


def _float_dtype(*arrays):
    """The common floating dtype of ``arrays``; non-float arrays count as float32."""
    dtypes = [a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32) for a in arrays]
    return np.result_type(*dtypes)


def _to_array(value, name):
    """Convert ``value`` to a numeric NumPy array or raise a ValueError naming ``name``."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be array-like of numbers, got {type(value).__name__}: {exc}") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be an array of numbers, got an array of dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real-valued, got dtype {array.dtype}")
    return array


def _floats(named):
    """Convert a dict ``name -> array-like`` to arrays of one common floating dtype.

    ``None`` values are passed through. Returns a list in the dict's order.
    """
    arrays = {name: (None if v is None else _to_array(v, name)) for name, v in named.items()}
    present = [a for a in arrays.values() if a is not None]
    dtype = _float_dtype(*present) if present else np.dtype(np.float32)
    return [None if a is None else a.astype(dtype, copy=False) for a in arrays.values()]


def _check_ndim(array, name, ndim, layout):
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must be a {ndim}-D array {layout}, got an array of shape {array.shape}"
        )


def _check_shape(array, name, expected, meaning):
    if array.shape != tuple(expected):
        raise ValueError(
            f"{name} must have shape {tuple(expected)} ({meaning}), got shape {array.shape}"
        )


def _pair(value, name):
    """Turn an int or a pair of ints into a pair of positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return pair


def _check_padding(padding):
    if not isinstance(padding, str) or padding.lower() not in _PADDINGS:
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def _check_axis(axis, ndim, name="axis"):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise ValueError(f"{name} must be an int in [{-ndim}, {ndim - 1}] for a {ndim}-D input, got {axis!r}")
    return int(axis)


def _bool_mask(mask, name, shape, meaning):
    """Convert ``mask`` to a boolean array of exactly ``shape``."""
    mask = _to_array(mask, name)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} ({meaning}), got shape {mask.shape}")
    return mask.astype(bool)


def _broadcast_mask(mask, name, shape, meaning):
    """Convert ``mask`` to a boolean array broadcastable to ``shape``."""
    mask = _to_array(mask, name).astype(bool)
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {mask.shape} cannot be broadcast to {tuple(shape)} ({meaning})"
        ) from None


# --------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------


def relu(x):
    """Rectified linear unit, ``max(x, 0)`` element-wise.

    Defined in the chapter "The math of CNNs, RNNs and attention" (activation functions).

    Parameters
    ----------
    x : array_like
        Any shape.

    Returns
    -------
    ndarray
        Same shape as ``x``, negative values replaced by 0.

    Examples
    --------
    >>> from mmtutor.nn_math import relu
    >>> relu([-2.0, 0.0, 3.0]).tolist()
    [0.0, 0.0, 3.0]
    """
    (x,) = _floats({"x": x})
    return np.maximum(x, 0)


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, stable for large ``|x|``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (activation functions).

    The textbook formula overflows in ``exp(-x)`` for large negative ``x``. Writing it with
    ``e = exp(-|x|)``, which is always in (0, 1], as ``1 / (1 + e)`` for ``x >= 0`` and
    ``e / (1 + e)`` for ``x < 0`` gives the same values without overflow.

    Parameters
    ----------
    x : array_like
        Any shape.

    Returns
    -------
    ndarray
        Same shape as ``x``, values in [0, 1].

    Examples
    --------
    >>> from mmtutor.nn_math import sigmoid
    >>> sigmoid([-1000.0, 0.0, 1000.0]).tolist()
    [0.0, 0.5, 1.0]
    """
    (x,) = _floats({"x": x})
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def tanh(x):
    """Hyperbolic tangent, ``(e^x - e^-x) / (e^x + e^-x) = 2 sigmoid(2x) - 1``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (activation functions).

    Parameters
    ----------
    x : array_like
        Any shape.

    Returns
    -------
    ndarray
        Same shape as ``x``, values in [-1, 1].

    Examples
    --------
    >>> from mmtutor.nn_math import tanh
    >>> tanh([0.0]).tolist()
    [0.0]
    """
    (x,) = _floats({"x": x})
    # np.tanh is already stable; the exponential form above overflows for |x| > ~89 in float32.
    return np.tanh(x)


def softmax(x, axis=-1):
    """Softmax along ``axis``, computed stably by subtracting the maximum first.

    Defined in the chapter "The math of CNNs, RNNs and attention" (activation functions).

    ``softmax(x) = softmax(x - c)`` for any constant ``c``; with ``c = max(x)`` every exponent is
    at most 0, so nothing overflows, and the largest term is exactly 1, so the sum cannot be 0.

    Parameters
    ----------
    x : array_like
        At least 1-D.
    axis : int, default -1
        The axis that sums to one.

    Returns
    -------
    ndarray
        Same shape as ``x``, non-negative, summing to 1 along ``axis``.

    Examples
    --------
    >>> from mmtutor.nn_math import softmax
    >>> softmax([1000.0, 1000.0]).tolist()
    [0.5, 0.5]
    """
    (x,) = _floats({"x": x})
    if x.ndim == 0:
        raise ValueError("x must be at least 1-D for softmax, got a scalar")
    axis = _check_axis(axis, x.ndim)
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# --------------------------------------------------------------------------------------------
# Convolution and pooling
# --------------------------------------------------------------------------------------------


def _same_pads(size, window, stride):
    """(before, after) padding of one spatial axis for 'same': output size ceil(size / stride).

    The total is split like TensorFlow and Keras do: the extra cell, if any, goes at the end.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _windows(x, window, strides, padding, pad_value):
    """All ``window``-sized patches of the NHWC array ``x``, taken every ``strides`` pixels.

    Returns an array of shape ``(batch, out_h, out_w, channels, window_h, window_w)``; it is a
    strided *view* of the (padded) input, so no pixel is copied (this is im2col without the
    copy).
    """
    (kh, kw), (sh, sw) = window, strides
    if padding == "same":
        (top, bottom), (left, right) = _same_pads(x.shape[1], kh, sh), _same_pads(x.shape[2], kw, sw)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    if x.shape[1] < kh or x.shape[2] < kw:
        raise ValueError(
            f"the window {window} is larger than the input's spatial size {x.shape[1:3]} with "
            f"padding='valid'; use a smaller window or padding='same'"
        )
    return sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]


def conv2d(x, kernel, bias=None, strides=1, padding="valid"):
    """2-D convolution (cross-correlation, as in every deep-learning library), NHWC.

    Defined in the chapter "The math of CNNs, RNNs and attention" (convolution).

    ``y[n, i, j, f] = b[f] + sum_{u, v, c} x[n, i*s_h + u, j*s_w + v, c] * kernel[u, v, c, f]``,
    computed at once for every output pixel from a strided view of the input's patches.
    Agrees with ``keras.layers.Conv2D`` given the same kernel and bias.

    Parameters
    ----------
    x : array_like, shape (batch, height, width, channels_in)
        The input images.
    kernel : array_like, shape (kernel_h, kernel_w, channels_in, channels_out)
        Keras' kernel layout (``Conv2D.get_weights()[0]``).
    bias : array_like of shape (channels_out,), optional
        Added to every output pixel of each channel. None means no bias.
    strides : int or pair of int, default 1
        Step between two windows, (rows, columns).
    padding : {"valid", "same"}, default "valid"
        "valid" keeps only windows inside the image (output ``floor((H - k) / s) + 1``);
        "same" pads with zeros so that the output is ``ceil(H / s)``, the extra row or column
        going at the bottom or right, as in Keras.

    Returns
    -------
    ndarray, shape (batch, out_h, out_w, channels_out)

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import conv2d
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> box = np.ones((2, 2, 1, 1), dtype="float32")
    >>> conv2d(x, box)[0, :, :, 0].tolist()
    [[10.0, 14.0, 18.0], [26.0, 30.0, 34.0], [42.0, 46.0, 50.0]]
    >>> conv2d(x, box, strides=2, padding="same").shape
    (1, 2, 2, 1)
    """
    x, kernel, bias = _floats({"x": x, "kernel": kernel, "bias": bias})
    _check_ndim(x, "x", 4, "(batch, height, width, channels)")
    _check_ndim(kernel, "kernel", 4, "(kernel_h, kernel_w, channels_in, channels_out)")
    if kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"kernel expects {kernel.shape[2]} input channels (kernel.shape[2]) but x has "
            f"{x.shape[3]} channels (x.shape[3]); kernel shape {kernel.shape}, x shape {x.shape}"
        )
    if bias is not None:
        _check_shape(bias, "bias", (kernel.shape[3],), "one value per output channel")
    strides = _pair(strides, "strides")
    padding = _check_padding(padding)
    patches = _windows(x, kernel.shape[:2], strides, padding, 0.0)  # (n, oh, ow, c, kh, kw)
    # One matrix product over the window axes: the whole convolution.
    y = np.einsum("nhwcuv,uvcf->nhwf", patches, kernel, optimize=True)
    return y if bias is None else y + bias


def _pool_args(x, pool_size, strides, padding):
    (x,) = _floats({"x": x})
    _check_ndim(x, "x", 4, "(batch, height, width, channels)")
    pool_size = _pair(pool_size, "pool_size")
    strides = pool_size if strides is None else _pair(strides, "strides")
    return x, pool_size, strides, _check_padding(padding)


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """2-D max pooling, NHWC: the largest value of each window, channel by channel.

    Defined in the chapter "The math of CNNs, RNNs and attention" (pooling).

    Agrees with ``keras.layers.MaxPooling2D``. With ``padding="same"`` the padded cells hold
    ``-inf``, so they never win.

    Parameters
    ----------
    x : array_like, shape (batch, height, width, channels)
    pool_size : int or pair of int, default 2
    strides : int or pair of int, optional
        Defaults to ``pool_size`` (non-overlapping windows), as in Keras.
    padding : {"valid", "same"}, default "valid"

    Returns
    -------
    ndarray, shape (batch, out_h, out_w, channels)

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import max_pool2d
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> max_pool2d(x)[0, :, :, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    x, pool_size, strides, padding = _pool_args(x, pool_size, strides, padding)
    return _windows(x, pool_size, strides, padding, -np.inf).max(axis=(-2, -1))


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """2-D average pooling, NHWC: the mean of each window, channel by channel.

    Defined in the chapter "The math of CNNs, RNNs and attention" (pooling).

    Agrees with ``keras.layers.AveragePooling2D``. With ``padding="same"`` the padded cells
    are *not counted*: a window that hangs over the border averages only the real pixels in it
    (Keras semantics), so a constant image stays constant up to the border.

    Parameters
    ----------
    x : array_like, shape (batch, height, width, channels)
    pool_size : int or pair of int, default 2
    strides : int or pair of int, optional
        Defaults to ``pool_size``.
    padding : {"valid", "same"}, default "valid"

    Returns
    -------
    ndarray, shape (batch, out_h, out_w, channels)

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import avg_pool2d
    >>> x = np.ones((1, 3, 3, 1), dtype="float32")
    >>> avg_pool2d(x, padding="same")[0, :, :, 0].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    x, pool_size, strides, padding = _pool_args(x, pool_size, strides, padding)
    sums = _windows(x, pool_size, strides, padding, 0.0).sum(axis=(-2, -1))
    # How many real (unpadded) pixels each window covers: pool a padded image of ones.
    ones = np.ones((1, x.shape[1], x.shape[2], 1), dtype=x.dtype)
    counts = _windows(ones, pool_size, strides, padding, 0.0).sum(axis=(-2, -1))
    return sums / counts


# --------------------------------------------------------------------------------------------
# Recurrent networks
# --------------------------------------------------------------------------------------------


def _rnn_args(x, kernel, recurrent_kernel, bias, mask, gates, layer):
    x, kernel, recurrent_kernel, bias = _floats(
        {"x": x, "kernel": kernel, "recurrent_kernel": recurrent_kernel, "bias": bias}
    )
    _check_ndim(x, "x", 3, "(batch, time, features)")
    _check_ndim(kernel, "kernel", 2, f"(features, {gates} * units)")
    if kernel.shape[0] != x.shape[2]:
        raise ValueError(
            f"kernel expects {kernel.shape[0]} input features (kernel.shape[0]) but x has "
            f"{x.shape[2]} features (x.shape[2]); kernel shape {kernel.shape}, x shape {x.shape}"
        )
    if kernel.shape[1] % gates:
        raise ValueError(
            f"kernel of a {layer} must have {gates} * units columns, got shape {kernel.shape}"
        )
    units = kernel.shape[1] // gates
    _check_shape(recurrent_kernel, "recurrent_kernel", (units, gates * units), f"units, {gates} * units")
    if bias is not None:
        _check_shape(bias, "bias", (gates * units,), f"{gates} * units")
    if mask is not None:
        mask = _bool_mask(mask, "mask", x.shape[:2], "batch, time")
    return x, kernel, recurrent_kernel, bias, mask, units


def _initial(state, name, batch, units, dtype):
    if state is None:
        return np.zeros((batch, units), dtype=dtype)
    (state,) = _floats({name: state})
    _check_shape(state, name, (batch, units), "batch, units")
    return state.astype(dtype, copy=False)


def simple_rnn(x, kernel, recurrent_kernel, bias=None, h0=None, mask=None):
    """Elman recurrence ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``, every hidden state returned.

    Defined in the chapter "The math of CNNs, RNNs and attention" (the RNN recurrence).

    Agrees with ``keras.layers.SimpleRNN(units, return_sequences=True)`` given the layer's
    ``kernel``, ``recurrent_kernel`` and ``bias``. Where ``mask`` is False the step is skipped,
    with Keras' masking semantics: the state is carried over unchanged, and the step's output
    repeats the previous step's output (zeros before the first real step, even when ``h0`` is
    given, because Keras starts its outputs, not its states, at zero).

    Parameters
    ----------
    x : array_like, shape (batch, time, features)
    kernel : array_like, shape (features, units)
        ``W_x``, input to hidden.
    recurrent_kernel : array_like, shape (units, units)
        ``W_h``, hidden to hidden.
    bias : array_like of shape (units,), optional
    h0 : array_like of shape (batch, units), optional
        Initial state; zeros by default (Keras' ``initial_state``).
    mask : array_like of bool, shape (batch, time), optional
        True for real steps, False for padding.

    Returns
    -------
    ndarray, shape (batch, time, units)
        ``h_1, ..., h_T`` for every sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import simple_rnn
    >>> x = np.ones((1, 3, 1), dtype="float32")
    >>> h = simple_rnn(x, kernel=[[1.0]], recurrent_kernel=[[0.0]], bias=[0.0])
    >>> h.shape, bool(np.allclose(h, np.tanh(1.0)))
    ((1, 3, 1), True)
    """
    x, kernel, recurrent_kernel, bias, mask, units = _rnn_args(
        x, kernel, recurrent_kernel, bias, mask, 1, "SimpleRNN"
    )
    batch, steps, _ = x.shape
    h = _initial(h0, "h0", batch, units, x.dtype)
    # The input projection does not depend on h, so it is done for all steps at once.
    xw = x @ kernel + (0 if bias is None else bias)
    outputs = np.zeros((batch, steps, units), dtype=x.dtype)
    for t in range(steps):
        h_new = np.tanh(xw[:, t] + h @ recurrent_kernel)
        if mask is None:
            h = outputs[:, t] = h_new
        else:
            keep = mask[:, t, None]
            h = np.where(keep, h_new, h)
            outputs[:, t] = np.where(keep, h_new, outputs[:, t - 1] if t else 0)
    return outputs


def lstm(x, kernel, recurrent_kernel, bias=None, mask=None, initial_state=None):
    """Long short-term memory, Keras gate order (input, forget, cell, output), every ``h_t``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (LSTM gates).

    With ``z_t = x_t W + h_{t-1} U + b`` split into four blocks of ``units`` columns::

        i_t = sigmoid(z_i)   f_t = sigmoid(z_f)   g_t = tanh(z_c)   o_t = sigmoid(z_o)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    Agrees with ``keras.layers.LSTM(units, return_sequences=True)`` (default activations). A
    masked step carries both ``h`` and ``c`` over unchanged and repeats the previous output
    (zeros before the first real step), as Keras does.

    Parameters
    ----------
    x : array_like, shape (batch, time, features)
    kernel : array_like, shape (features, 4 * units)
    recurrent_kernel : array_like, shape (units, 4 * units)
    bias : array_like of shape (4 * units,), optional
    mask : array_like of bool, shape (batch, time), optional
        True for real steps, False for padding.
    initial_state : pair of array_like of shape (batch, units), optional
        ``(h0, c0)``; zeros by default.

    Returns
    -------
    ndarray, shape (batch, time, units)
        The hidden states ``h_1, ..., h_T``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import lstm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2, 5, 3)).astype("float32")
    >>> W = rng.normal(size=(3, 16)).astype("float32")
    >>> U = rng.normal(size=(4, 16)).astype("float32")
    >>> lstm(x, W, U, np.zeros(16, "float32")).shape
    (2, 5, 4)
    """
    x, kernel, recurrent_kernel, bias, mask, units = _rnn_args(
        x, kernel, recurrent_kernel, bias, mask, 4, "LSTM"
    )
    batch, steps, _ = x.shape
    if initial_state is None:
        h0 = c0 = None
    elif isinstance(initial_state, (tuple, list)) and len(initial_state) == 2:
        h0, c0 = initial_state
    else:
        raise ValueError(
            f"initial_state must be a pair (h0, c0) of arrays of shape ({batch}, {units}), "
            f"got {type(initial_state).__name__}"
        )
    h = _initial(h0, "initial_state[0] (h0)", batch, units, x.dtype)
    c = _initial(c0, "initial_state[1] (c0)", batch, units, x.dtype)
    xw = x @ kernel + (0 if bias is None else bias)
    outputs = np.zeros((batch, steps, units), dtype=x.dtype)
    for t in range(steps):
        z = xw[:, t] + h @ recurrent_kernel
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        c_new = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zc)
        h_new = sigmoid(zo) * np.tanh(c_new)
        if mask is None:
            h, c = h_new, c_new
            outputs[:, t] = h
        else:
            keep = mask[:, t, None]
            h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
            outputs[:, t] = np.where(keep, h_new, outputs[:, t - 1] if t else 0)
    return outputs


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------


def _masked_softmax(scores, mask, name):
    """Softmax over the last axis, positions where ``mask`` is False excluded.

    Masked scores are replaced by -1e9 before the softmax (as ``keras.layers.Softmax`` does).
    A row with no allowed position at all would then get uniform weights, attending to keys it
    was told to ignore; instead such a row gets all-zero weights, so that its query receives a
    zero context vector. This is what Keras 3 does too: ``keras.layers.Softmax`` and
    ``MultiHeadAttention`` (including ``return_attention_scores=True``) return zeros for a
    fully masked row (tests/test_nn_math.py checks both).
    """
    if mask is None:
        return softmax(scores, axis=-1)
    mask = _broadcast_mask(mask, name, scores.shape, "... query, key; True = may attend")
    weights = softmax(np.where(mask, scores, scores.dtype.type(_MASK_VALUE)), axis=-1)
    return np.where(mask.any(axis=-1, keepdims=True), weights, scores.dtype.type(0))


def _check_qkv(q, k, v, q_name="q", k_name="k", v_name="v", same_qk_dim=True):
    for array, name in ((q, q_name), (k, k_name), (v, v_name)):
        if array.ndim < 2:
            raise ValueError(f"{name} must be at least 2-D (..., time, features), got shape {array.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{k_name} and {v_name} must have the same number of positions (axis -2): "
            f"{k_name} shape {k.shape}, {v_name} shape {v.shape}"
        )
    if same_qk_dim and q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"{q_name} and {k_name} must have the same feature size (last axis): "
            f"{q_name} shape {q.shape}, {k_name} shape {k.shape}"
        )
    try:
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(
            f"the leading (batch) axes of {q_name} {q.shape}, {k_name} {k.shape} and "
            f"{v_name} {v.shape} do not broadcast"
        ) from None


def scaled_dot_product_attention(q, k, v, mask=None):
    """Scaled dot-product attention ``softmax(q k^T / sqrt(d_k)) v``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (attention).

    Parameters
    ----------
    q : array_like, shape (..., T_q, d_k)
        Queries.
    k : array_like, shape (..., T_k, d_k)
        Keys.
    v : array_like, shape (..., T_k, d_v)
        Values, one per key.
    mask : array_like of bool, broadcastable to (..., T_q, T_k), optional
        True where query ``i`` may attend to key ``j``. A padding mask over the keys of shape
        ``(batch, T_k)`` is passed as ``mask[:, None, :]``.

    Returns
    -------
    output : ndarray, shape (..., T_q, d_v)
        For each query, the weighted average of the values.
    weights : ndarray, shape (..., T_q, T_k)
        The attention weights; each row sums to 1 and is 0 where ``mask`` is False. A query
        whose mask row is all False gets all-zero weights (and so a zero output), as in Keras.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import scaled_dot_product_attention
    >>> q = np.array([[1.0, 0.0]]); k = np.array([[10.0, 0.0], [0.0, 10.0]])
    >>> v = np.array([[1.0], [2.0]])
    >>> out, w = scaled_dot_product_attention(q, k, v)
    >>> w.round(3).tolist(), out.round(3).tolist()
    ([[0.999, 0.001]], [[1.001]])
    """
    q, k, v = _floats({"q": q, "k": k, "v": v})
    _check_qkv(q, k, v)
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]).astype(q.dtype)
    weights = _masked_softmax(scores, mask, "mask")
    return weights @ v, weights


def additive_attention(q, k, v, w_q=None, w_k=None, v_a=None, mask=None):
    """Additive (Bahdanau) attention, ``score_ij = v_a^T tanh(W_q q_i + W_k k_j)``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (attention).

    With ``w_q`` and ``w_k`` left out (identity) and ``v_a`` a vector ``scale``, the score is
    ``sum(scale * tanh(q_i + k_j))``: exactly ``keras.layers.AdditiveAttention(use_scale=True)``;
    with ``v_a`` also left out (ones) it is ``AdditiveAttention(use_scale=False)``. The full
    form equals ``AdditiveAttention`` applied to ``q @ w_q`` and ``k @ w_k`` with
    ``scale = v_a``.

    Parameters
    ----------
    q : array_like, shape (batch, T_q, d_q)
    k : array_like, shape (batch, T_k, d_k)
    v : array_like, shape (batch, T_k, d_v)
    w_q : array_like of shape (d_q, d_a), optional
        Query projection. None means identity (then ``d_a = d_q``).
    w_k : array_like of shape (d_k, d_a), optional
        Key projection. None means identity (then ``d_a = d_k``).
    v_a : array_like of shape (d_a,), optional
        Weights of the score's last sum. None means ones.
    mask : array_like of bool, broadcastable to (batch, T_q, T_k), optional
        True where query ``i`` may attend to key ``j``.

    Returns
    -------
    output : ndarray, shape (batch, T_q, d_v)
    weights : ndarray, shape (batch, T_q, T_k)

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import additive_attention
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = (rng.normal(size=(1, n, 4)) for n in (2, 3, 3))
    >>> out, w = additive_attention(q, k, v, w_q=rng.normal(size=(4, 8)),
    ...                             w_k=rng.normal(size=(4, 8)), v_a=rng.normal(size=8))
    >>> out.shape, w.shape, bool(np.allclose(w.sum(-1), 1))
    ((1, 2, 4), (1, 2, 3), True)
    """
    q, k, v, w_q, w_k, v_a = _floats({"q": q, "k": k, "v": v, "w_q": w_q, "w_k": w_k, "v_a": v_a})
    _check_qkv(q, k, v, same_qk_dim=False)
    if w_q is not None:
        _check_ndim(w_q, "w_q", 2, "(d_q, d_a)")
        if w_q.shape[0] != q.shape[-1]:
            raise ValueError(f"w_q has {w_q.shape[0]} rows but q has {q.shape[-1]} features: w_q shape {w_q.shape}, q shape {q.shape}")
        q = q @ w_q
    if w_k is not None:
        _check_ndim(w_k, "w_k", 2, "(d_k, d_a)")
        if w_k.shape[0] != k.shape[-1]:
            raise ValueError(f"w_k has {w_k.shape[0]} rows but k has {k.shape[-1]} features: w_k shape {w_k.shape}, k shape {k.shape}")
        k = k @ w_k
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"projected queries and keys must have the same size d_a to be added, got {q.shape[-1]} "
            f"and {k.shape[-1]}; pass w_q and w_k with the same number of columns"
        )
    d_a = q.shape[-1]
    if v_a is None:
        v_a = np.ones(d_a, dtype=q.dtype)
    _check_shape(v_a, "v_a", (d_a,), "one weight per attention unit d_a")
    # (..., T_q, 1, d_a) + (..., 1, T_k, d_a): every query-key pair at once.
    scores = np.tanh(q[..., :, None, :] + k[..., None, :, :]) @ v_a
    weights = _masked_softmax(scores, mask, "mask")
    return weights @ v, weights


def multi_head_attention(query, value, key=None, *, weights, num_heads=None, mask=None):
    """Multi-head attention computed from the weights of a ``keras.layers.MultiHeadAttention``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (multi-head attention).

    Each head ``h`` projects ``Q_h = query W_q^h + b``, ``K_h = key W_k^h + b``,
    ``V_h = value W_v^h + b``, runs :func:`scaled_dot_product_attention`, and the heads'
    outputs are mapped back together by the output projection.

    Parameters
    ----------
    query : array_like, shape (batch, T_q, d_query)
    value : array_like, shape (batch, T_v, d_value)
    key : array_like, shape (batch, T_v, d_key), optional
        Defaults to ``value`` (as in Keras).
    weights : list of array_like
        ``layer.get_weights()`` of a built ``MultiHeadAttention``: query kernel
        (d_query, heads, key_dim) and bias (heads, key_dim), key kernel and bias, value kernel
        (d_value, heads, value_dim) and bias, output kernel (heads, value_dim, d_out) and bias
        (d_out,) -- 8 arrays, or 4 kernels for a layer made with ``use_bias=False``.
    num_heads : int, optional
        Checked against the kernels if given; they determine it anyway.
    mask : array_like of bool, broadcastable to (batch, T_q, T_v), optional
        True where a query may attend to a key (Keras' ``attention_mask``).

    Returns
    -------
    output : ndarray, shape (batch, T_q, d_out)
    scores : ndarray, shape (batch, heads, T_q, T_v)
        The attention weights of every head (Keras' ``return_attention_scores``).

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import multi_head_attention
    >>> rng = np.random.default_rng(0)
    >>> shapes = [(6, 2, 3), (2, 3), (6, 2, 3), (2, 3), (6, 2, 3), (2, 3), (2, 3, 6), (6,)]
    >>> w = [rng.normal(size=s) for s in shapes]
    >>> x = rng.normal(size=(1, 4, 6))
    >>> out, scores = multi_head_attention(x, x, weights=w)
    >>> out.shape, scores.shape
    ((1, 4, 6), (1, 2, 4, 4))
    """
    if key is None:
        key = value
    if not isinstance(weights, (list, tuple)) or len(weights) not in (4, 8):
        got = f"{len(weights)} arrays" if isinstance(weights, (list, tuple)) else type(weights).__name__
        raise ValueError(
            "weights must be the list from MultiHeadAttention.get_weights(): 8 arrays (query, key, "
            f"value and output kernel and bias) or 4 kernels for use_bias=False, got {got}"
        )
    named = {"query": query, "value": value, "key": key}
    if len(weights) == 8:
        names = ["query kernel", "query bias", "key kernel", "key bias", "value kernel", "value bias",
                 "output kernel", "output bias"]
    else:
        names = ["query kernel", "key kernel", "value kernel", "output kernel"]
    named.update({f"weights ({n})": w for n, w in zip(names, weights)})
    arrays = dict(zip(named, _floats(named)))
    query, value, key = arrays.pop("query"), arrays.pop("value"), arrays.pop("key")
    w = {name[len("weights ("):-1]: a for name, a in arrays.items()}
    for name, array in (("query", query), ("value", value), ("key", key)):
        _check_ndim(array, name, 3, "(batch, time, features)")
    for part, x in (("query", query), ("key", key), ("value", value)):
        kernel = w[f"{part} kernel"]
        _check_ndim(kernel, f"weights ({part} kernel)", 3, "(features, heads, head_dim)")
        if kernel.shape[0] != x.shape[-1]:
            raise ValueError(
                f"the {part} kernel expects {kernel.shape[0]} features but {part} has {x.shape[-1]}: "
                f"kernel shape {kernel.shape}, {part} shape {x.shape}"
            )
    heads, key_dim = w["query kernel"].shape[1:]
    value_dim = w["value kernel"].shape[2]
    _check_shape(w["key kernel"], "weights (key kernel)", (key.shape[-1], heads, key_dim),
                 "key features, heads, key_dim")
    _check_ndim(w["output kernel"], "weights (output kernel)", 3, "(heads, value_dim, d_out)")
    _check_shape(w["output kernel"][:, :, :1], "weights (output kernel)[:, :, :1]", (heads, value_dim, 1),
                 "heads, value_dim, -")
    if w["value kernel"].shape[1] != heads:
        raise ValueError(f"weights (value kernel) has {w['value kernel'].shape[1]} heads but the query kernel has {heads}")
    if num_heads is not None and num_heads != heads:
        raise ValueError(f"num_heads={num_heads!r} but the kernels hold {heads} heads (query kernel shape {w['query kernel'].shape})")
    if key.shape[:2] != value.shape[:2]:
        raise ValueError(f"key and value must have the same batch and length, got key {key.shape} and value {value.shape}")
    if len(weights) == 8:
        _check_shape(w["query bias"], "weights (query bias)", (heads, key_dim), "heads, key_dim")
        _check_shape(w["key bias"], "weights (key bias)", (heads, key_dim), "heads, key_dim")
        _check_shape(w["value bias"], "weights (value bias)", (heads, value_dim), "heads, value_dim")
        _check_shape(w["output bias"], "weights (output bias)", (w["output kernel"].shape[2],), "d_out")

    def project(x, part):
        y = np.einsum("btd,dhk->bhtk", x, w[f"{part} kernel"])  # (batch, heads, time, head_dim)
        bias = w.get(f"{part} bias")
        return y if bias is None else y + bias[None, :, None, :]

    q, k, v = project(query, "query"), project(key, "key"), project(value, "value")
    if mask is not None:
        mask = _broadcast_mask(mask, "mask", (query.shape[0], query.shape[1], key.shape[1]),
                               "batch, T_q, T_v; True = may attend")[:, None]  # same for every head
    context, scores = scaled_dot_product_attention(q, k, v, mask)  # (b, h, T_q, value_dim)
    output = np.einsum("bhtv,hvo->bto", context, w["output kernel"])
    bias = w.get("output bias")
    return (output if bias is None else output + bias), scores


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def _reduce(losses, reduction):
    if reduction == "mean":
        return losses.mean()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 <= eps < 0.5:
        raise ValueError(f"eps must be a number in [0, 0.5), got {eps!r}")


def binary_cross_entropy(y_true, p, eps=1e-7, from_logits=False, reduction="mean"):
    """Binary cross-entropy ``-[y log p + (1 - y) log(1 - p)]``, averaged.

    Defined in the chapter "The math of CNNs, RNNs and attention" (cross-entropy).

    Probabilities are clipped to ``[eps, 1 - eps]`` first (Keras does the same with
    ``eps = 1e-7``), so ``p`` of exactly 0 or 1 gives a large but finite loss. With
    ``from_logits=True``, ``p`` holds logits ``z`` and the loss is computed as
    ``max(z, 0) - z y + log(1 + exp(-|z|))``, which never overflows and needs no clipping.
    Agrees with ``keras.losses.BinaryCrossentropy`` and, for probabilities away from 0 and 1,
    with ``sklearn.metrics.log_loss``.

    Parameters
    ----------
    y_true : array_like
        Targets in [0, 1] (usually 0 or 1).
    p : array_like
        Predicted probabilities of the positive class (or logits), same shape as ``y_true``.
    eps : float, default 1e-7
        Clipping margin for probabilities.
    from_logits : bool, default False
    reduction : {"mean", "none"}, default "mean"
        "mean" averages over every element; "none" returns the element-wise losses.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from mmtutor.nn_math import binary_cross_entropy
    >>> round(float(binary_cross_entropy([1, 0], [0.9, 0.2])), 4)
    0.1643
    """
    y_true, p = _floats({"y_true": y_true, "p": p})
    if y_true.shape != p.shape:
        raise ValueError(f"y_true and p must have the same shape, got y_true {y_true.shape} and p {p.shape}")
    if y_true.size == 0:
        raise ValueError("y_true and p are empty; there is no loss to compute")
    if np.any((y_true < 0) | (y_true > 1)):
        raise ValueError(f"y_true must lie in [0, 1], got values from {y_true.min()} to {y_true.max()}")
    if from_logits:
        losses = np.maximum(p, 0) - p * y_true + np.log1p(np.exp(-np.abs(p)))
    else:
        _check_eps(eps)
        if np.any((p < 0) | (p > 1)):
            raise ValueError(
                f"p must hold probabilities in [0, 1], got values from {p.min()} to {p.max()}; "
                "pass from_logits=True for raw scores"
            )
        p = np.clip(p, eps, 1 - p.dtype.type(eps))
        losses = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
    return _reduce(losses, reduction)


def categorical_cross_entropy(y_true, p, eps=1e-7, from_logits=False, axis=-1, reduction="mean"):
    """Categorical cross-entropy ``-sum_c y_c log p_c`` per sample, averaged over samples.

    Defined in the chapter "The math of CNNs, RNNs and attention" (cross-entropy).

    ``y_true`` is one-hot (or any distribution over the classes). Probabilities are
    renormalised to sum to 1 and clipped to ``[eps, 1 - eps]``, as Keras does. With
    ``from_logits=True`` the log-probabilities come from a stable log-softmax
    (``z - max z - log sum exp(z - max z)``), never from ``log(softmax(z))``. Agrees with
    ``keras.losses.CategoricalCrossentropy`` and ``sklearn.metrics.log_loss``.

    Parameters
    ----------
    y_true : array_like, shape (n_samples, n_classes)
        Target distributions, usually one-hot.
    p : array_like, shape (n_samples, n_classes)
        Predicted probabilities (or logits).
    eps : float, default 1e-7
    from_logits : bool, default False
    axis : int, default -1
        The class axis.
    reduction : {"mean", "none"}, default "mean"
        "mean" averages over samples; "none" returns one loss per sample.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from mmtutor.nn_math import categorical_cross_entropy
    >>> round(float(categorical_cross_entropy([[0, 1, 0]], [[0.2, 0.7, 0.1]])), 4)
    0.3567
    """
    y_true, p = _floats({"y_true": y_true, "p": p})
    if y_true.shape != p.shape:
        raise ValueError(f"y_true and p must have the same shape, got y_true {y_true.shape} and p {p.shape}")
    if p.ndim == 0 or p.size == 0:
        raise ValueError(f"y_true and p must be non-empty arrays with a class axis, got shape {p.shape}")
    axis = _check_axis(axis, p.ndim)
    if np.any(y_true < 0):
        raise ValueError("y_true must be non-negative (one-hot or class probabilities)")
    if from_logits:
        log_p = _log_softmax(p, axis)
    else:
        _check_eps(eps)
        if np.any(p < 0):
            raise ValueError("p must hold probabilities (non-negative); pass from_logits=True for raw scores")
        total = p.sum(axis=axis, keepdims=True)
        if np.any(total <= 0):
            raise ValueError("each row of p must have a positive sum to be a probability distribution")
        log_p = np.log(np.clip(p / total, eps, 1 - p.dtype.type(eps)))
    return _reduce(-np.sum(y_true * log_p, axis=axis), reduction)


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


def layer_norm(x, gamma=None, beta=None, epsilon=1e-3, axis=-1):
    """Layer normalisation ``gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (layer normalisation).

    The mean and the (biased) variance are taken over ``axis`` of *each sample on its own*, not
    over the batch, so the result does not depend on the other samples in the batch. Agrees
    with ``keras.layers.LayerNormalization(axis=axis, epsilon=epsilon)`` given that layer's
    ``gamma`` and ``beta`` (Keras' default ``epsilon`` is 1e-3).

    Parameters
    ----------
    x : array_like
        Input of any shape with at least one axis.
    gamma, beta : array_like, optional
        Scale and offset, of shape ``(x.shape[axis],)``; default 1 and 0.
    epsilon : float, default 1e-3
        Added to the variance so that a constant row does not divide by zero.
    axis : int, default -1
        The feature axis normalised over.

    Returns
    -------
    ndarray
        Same shape as ``x``.

    Examples
    --------
    >>> from mmtutor.nn_math import layer_norm
    >>> layer_norm([[1.0, 2.0, 3.0]], epsilon=0.0).round(3)
    array([[-1.225,  0.   ,  1.225]])
    """
    x, gamma, beta = _floats({"x": x, "gamma": gamma, "beta": beta})
    if x.ndim == 0:
        raise ValueError("x must be at least 1-D, got a scalar")
    axis = _check_axis(axis, x.ndim)
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or epsilon < 0:
        raise ValueError(f"epsilon must be a non-negative number, got {epsilon!r}")
    n = x.shape[axis]
    for value, name in ((gamma, "gamma"), (beta, "beta")):
        if value is not None:
            _check_shape(value, name, (n,), f"one value per feature along axis {axis}")
    shape = [1] * x.ndim
    shape[axis] = n
    mean = x.mean(axis=axis, keepdims=True)
    var = np.square(x - mean).mean(axis=axis, keepdims=True)
    y = (x - mean) / np.sqrt(var + x.dtype.type(epsilon))
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


# --------------------------------------------------------------------------------------------
# Backpropagation and gradient descent
# --------------------------------------------------------------------------------------------


def _mlp_args(params, x):
    if not isinstance(params, (list, tuple)) or len(params) != 4:
        raise ValueError(
            "params must be a list [W1, b1, W2, b2] (the get_weights() of two Dense layers), "
            f"got {type(params).__name__}" + (f" of {len(params)} arrays" if isinstance(params, (list, tuple)) else "")
        )
    x, w1, b1, w2, b2 = _floats({"x": x, "W1": params[0], "b1": params[1], "W2": params[2], "b2": params[3]})
    _check_ndim(x, "x", 2, "(batch, features)")
    _check_ndim(w1, "W1", 2, "(features, hidden)")
    _check_ndim(w2, "W2", 2, "(hidden, classes)")
    if w1.shape[0] != x.shape[1]:
        raise ValueError(f"W1 expects {w1.shape[0]} features but x has {x.shape[1]} (x shape {x.shape})")
    _check_shape(b1, "b1", (w1.shape[1],), "one bias per hidden unit")
    if w2.shape[0] != w1.shape[1]:
        raise ValueError(f"W2 must have {w1.shape[1]} rows (the hidden units of W1), got shape {w2.shape}")
    _check_shape(b2, "b2", (w2.shape[1],), "one bias per class")
    return x, w1, b1, w2, b2


def mlp_forward(params, x):
    """Logits of a two-layer perceptron ``relu(x W1 + b1) W2 + b2``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (backpropagation).

    Parameters
    ----------
    params : list of 4 arrays
        ``[W1, b1, W2, b2]`` with shapes ``(features, hidden)``, ``(hidden,)``,
        ``(hidden, classes)``, ``(classes,)``: the ``get_weights()`` of a
        ``Dense(hidden, activation="relu")`` followed by a ``Dense(classes)``.
    x : array_like, shape (batch, features)

    Returns
    -------
    ndarray, shape (batch, classes)
        The logits (no softmax).

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import mlp_forward
    >>> params = [np.eye(2), np.zeros(2), np.ones((2, 3)), np.zeros(3)]
    >>> mlp_forward(params, [[1.0, -1.0]])
    array([[1., 1., 1.]])
    """
    x, w1, b1, w2, b2 = _mlp_args(params, x)
    return relu(x @ w1 + b1) @ w2 + b2


def mlp_backward(params, x, y_true):
    """Loss and gradients of a two-layer perceptron with softmax cross-entropy, by backpropagation.

    Defined in the chapter "The math of CNNs, RNNs and attention" (backpropagation).

    The forward pass is ``a = x W1 + b1``, ``h = relu(a)``, ``z = h W2 + b2`` and the loss is
    the mean categorical cross-entropy of ``softmax(z)`` against ``y_true``. The backward pass
    applies the chain rule layer by layer, from the loss back to the input weights::

        dz  = (softmax(z) - y) / N          # the softmax and cross-entropy together
        dW2 = h^T dz,   db2 = sum_n dz
        dh  = dz W2^T
        da  = dh * [a > 0]                  # ReLU passes the gradient where it was active
        dW1 = x^T da,   db1 = sum_n da

    The gradients agree with automatic differentiation (``tf.GradientTape``) of
    ``keras.losses.CategoricalCrossentropy(from_logits=True)`` on the same weights.

    Parameters
    ----------
    params : list of 4 arrays
        ``[W1, b1, W2, b2]``, as in :func:`mlp_forward`.
    x : array_like, shape (batch, features)
    y_true : array_like
        Integer class labels of shape ``(batch,)``, or one-hot targets of shape
        ``(batch, classes)``.

    Returns
    -------
    loss : float
        Mean cross-entropy over the batch.
    grads : list of 4 ndarrays
        Gradients of the loss with respect to ``W1, b1, W2, b2``, same shapes as ``params``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.nn_math import mlp_backward
    >>> params = [np.eye(2), np.zeros(2), np.zeros((2, 2)), np.zeros(2)]
    >>> loss, grads = mlp_backward(params, [[1.0, 0.0]], [1])
    >>> round(loss, 4), grads[3]
    (0.6931, array([ 0.5, -0.5]))
    """
    x, w1, b1, w2, b2 = _mlp_args(params, x)
    n, classes = x.shape[0], w2.shape[1]
    if n == 0:
        raise ValueError("x is empty; there is no loss to compute")
    y = _to_array(y_true, "y_true")
    if y.ndim == 1:
        if y.shape[0] != n or not np.all((y == np.round(y)) & (y >= 0) & (y < classes)):
            raise ValueError(
                f"y_true of shape {y.shape} must hold {n} integer labels in [0, {classes - 1}], "
                f"got values from {y.min()} to {y.max()}" if y.size else f"y_true must hold {n} labels, got none"
            )
        y = np.eye(classes, dtype=x.dtype)[y.astype(int)]
    else:
        _check_shape(y, "y_true", (n, classes), "one-hot targets, (batch, classes)")
        y = y.astype(x.dtype)
    a = x @ w1 + b1
    h = relu(a)
    z = h @ w2 + b2
    log_p = _log_softmax(z, -1)
    loss = float(-(y * log_p).sum(axis=-1).mean())
    dz = (np.exp(log_p) - y) / x.dtype.type(n)
    dw2, db2 = h.T @ dz, dz.sum(axis=0)
    da = (dz @ w2.T) * (a > 0)
    dw1, db1 = x.T @ da, da.sum(axis=0)
    return loss, [dw1, db1, dw2, db2]


def _check_params_grads(params, grads):
    if not isinstance(params, (list, tuple)) or not isinstance(grads, (list, tuple)):
        raise ValueError(
            f"params and grads must be lists of arrays, got {type(params).__name__} and {type(grads).__name__}"
        )
    if len(params) != len(grads):
        raise ValueError(f"params and grads must have the same length, got {len(params)} and {len(grads)}")
    out_p, out_g = [], []
    for i, (p, g) in enumerate(zip(params, grads)):
        p, g = _floats({f"params[{i}]": p, f"grads[{i}]": g})
        if p.shape != g.shape:
            raise ValueError(f"grads[{i}] must have the shape of params[{i}] {p.shape}, got {g.shape}")
        out_p.append(p)
        out_g.append(g)
    return out_p, out_g


def _check_rate(value, name, low=0.0, high=None, low_open=False):
    bad = isinstance(value, bool) or not isinstance(value, numbers.Real)
    if not bad:
        bad = value < low or (low_open and value == low) or (high is not None and value >= high)
    if bad:
        interval = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def sgd_step(params, grads, lr=0.01, state=None, momentum=0.0, nesterov=False):
    """One step of stochastic gradient descent, optionally with (Nesterov) momentum.

    Defined in the chapter "The math of CNNs, RNNs and attention" (gradient descent).

    Plain SGD is ``theta <- theta - lr * g``. With momentum ``mu`` a velocity ``m`` (starting
    at 0) accumulates the past steps, in the form Keras uses::

        m     <- mu * m - lr * g
        theta <- theta + m                       # momentum
        theta <- theta + mu * m - lr * g         # nesterov=True: look one step ahead

    Agrees with ``keras.optimizers.SGD(learning_rate=lr, momentum=mu, nesterov=nesterov)``
    applied to the same variables and gradients.

    Parameters
    ----------
    params, grads : list of arrays
        The parameters and the gradients of the loss with respect to them, same shapes.
    lr : float, default 0.01
        The learning rate.
    state : dict, optional
        The returned state of the previous step (``{"velocity": [...]}``); None at the first step.
    momentum : float in [0, 1), default 0
    nesterov : bool, default False

    Returns
    -------
    params : list of ndarrays
        The updated parameters (the inputs are not modified).
    state : dict
        Pass it to the next call.

    Examples
    --------
    >>> from mmtutor.nn_math import sgd_step
    >>> params, state = sgd_step([[1.0, 2.0]], [[0.5, -1.0]], lr=0.1)
    >>> params[0]
    array([0.95, 2.1 ])
    """
    params, grads = _check_params_grads(params, grads)
    lr = _check_rate(lr, "lr", 0.0, low_open=True)
    momentum = _check_rate(momentum, "momentum", 0.0, 1.0)
    if not isinstance(nesterov, bool):
        raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
    if momentum == 0.0:
        return [p - p.dtype.type(lr) * g for p, g in zip(params, grads)], {"velocity": None}
    velocity = None if state is None else state.get("velocity") if isinstance(state, dict) else False
    if velocity is False:
        raise ValueError(f"state must be the dict returned by the previous sgd_step, got {type(state).__name__}")
    if velocity is None:
        velocity = [np.zeros_like(p) for p in params]
    if len(velocity) != len(params) or any(m.shape != p.shape for m, p in zip(velocity, params)):
        raise ValueError("state['velocity'] does not match params: pass the state of the same parameters")
    new_params, new_velocity = [], []
    for p, g, m in zip(params, grads, velocity):
        mu, rate = p.dtype.type(momentum), p.dtype.type(lr)
        m = mu * m - rate * g
        new_params.append(p + (mu * m - rate * g if nesterov else m))
        new_velocity.append(m)
    return new_params, {"velocity": new_velocity}


def adam_step(params, grads, state=None, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """One step of Adam, in exactly the form of ``keras.optimizers.Adam``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (gradient descent).

    Adam keeps running averages of the gradient ``m`` and of its square ``v`` and divides one by
    the square root of the other, so each parameter gets its own step size. At step ``t``
    (1, 2, ...)::

        m     <- beta_1 m + (1 - beta_1) g
        v     <- beta_2 v + (1 - beta_2) g**2
        alpha  = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)      # both bias corrections
        theta <- theta - alpha * m / (sqrt(v) + epsilon)

    This is the form of Kingma and Ba's paper (section 2, "efficiency") that Keras 3 implements:
    epsilon is added to ``sqrt(v)`` of the *uncorrected* ``v``. The paper's main algorithm,
    ``m_hat / (sqrt(v_hat) + epsilon)`` with ``v_hat = v / (1 - beta_2**t)``, is the same
    update with a slightly larger epsilon; the two differ only where ``sqrt(v)`` is comparable
    to epsilon.

    Parameters
    ----------
    params, grads : list of arrays
        The parameters and the gradients of the loss with respect to them, same shapes.
    state : dict, optional
        The returned state of the previous step (``{"step": t, "m": [...], "v": [...]}``);
        None at the first step.
    lr : float, default 1e-3
    beta_1 : float in [0, 1), default 0.9
    beta_2 : float in [0, 1), default 0.999
    epsilon : float, default 1e-7
        Keras' default (the paper uses 1e-8).

    Returns
    -------
    params : list of ndarrays
        The updated parameters (the inputs are not modified).
    state : dict
        Pass it to the next call.

    Examples
    --------
    >>> from mmtutor.nn_math import adam_step
    >>> params, state = adam_step([[1.0, 2.0]], [[0.5, -1.0]], lr=0.1)
    >>> params[0].round(4), state["step"]
    (array([0.9, 2.1]), 1)
    """
    params, grads = _check_params_grads(params, grads)
    lr = _check_rate(lr, "lr", 0.0, low_open=True)
    beta_1 = _check_rate(beta_1, "beta_1", 0.0, 1.0)
    beta_2 = _check_rate(beta_2, "beta_2", 0.0, 1.0)
    epsilon = _check_rate(epsilon, "epsilon", 0.0)
    if state is None:
        state = {"step": 0, "m": [np.zeros_like(p) for p in params], "v": [np.zeros_like(p) for p in params]}
    if not isinstance(state, dict) or not {"step", "m", "v"} <= set(state):
        raise ValueError("state must be the dict returned by the previous adam_step (keys 'step', 'm', 'v')")
    if len(state["m"]) != len(params) or any(m.shape != p.shape for m, p in zip(state["m"], params)):
        raise ValueError("state['m'] does not match params: pass the state of the same parameters")
    t = state["step"] + 1
    new_params, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, state["m"], state["v"]):
        f = p.dtype.type
        m = m + (g - m) * f(1 - beta_1)
        v = v + (np.square(g) - v) * f(1 - beta_2)
        alpha = f(lr) * np.sqrt(f(1) - f(beta_2) ** f(t)) / (f(1) - f(beta_1) ** f(t))
        new_params.append(p - m * alpha / (np.sqrt(v) + f(epsilon)))
        new_m.append(m)
        new_v.append(v)
    return new_params, {"step": t, "m": new_m, "v": new_v}


def cosine_decay(step, initial_learning_rate, decay_steps, alpha=0.0):
    """The learning rate at ``step`` under cosine decay, as ``keras.optimizers.schedules.CosineDecay``.

    Defined in the chapter "The math of CNNs, RNNs and attention" (gradient descent).

    ``lr(t) = lr_0 * [(1 - alpha) * (1 + cos(pi * min(t, T) / T)) / 2 + alpha]``: it starts at
    ``lr_0``, falls slowly, fastest half-way, slowly again, and stays at ``alpha * lr_0`` from
    step ``T = decay_steps`` on (Loshchilov and Hutter's schedule without restarts).

    Parameters
    ----------
    step : int or array_like of ints
        Optimizer step(s), counted from 0.
    initial_learning_rate : float
    decay_steps : int
        ``T``, the number of steps over which the rate decays.
    alpha : float in [0, 1], default 0
        The final rate as a fraction of the initial one.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> from mmtutor.nn_math import cosine_decay
    >>> [round(float(cosine_decay(t, 0.1, 100)), 4) for t in (0, 50, 100, 200)]
    [0.1, 0.05, 0.0, 0.0]
    """
    step = _to_array(step, "step")
    if np.any(step < 0):
        raise ValueError("step must be non-negative")
    initial_learning_rate = _check_rate(initial_learning_rate, "initial_learning_rate", 0.0, low_open=True)
    if isinstance(decay_steps, bool) or not isinstance(decay_steps, numbers.Integral) or decay_steps < 1:
        raise ValueError(f"decay_steps must be a positive int, got {decay_steps!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    fraction = np.minimum(step, decay_steps) / decay_steps
    rate = initial_learning_rate * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * fraction)) + alpha)
    return float(rate) if np.ndim(rate) == 0 else rate
