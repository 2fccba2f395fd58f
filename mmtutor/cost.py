"""What a model costs to run, and two ways to make it cheaper (chapter on challenges).

:func:`layer_flops`, :func:`model_flops`
    Floating-point operations of one forward pass, counted analytically layer by layer.
:func:`weight_bytes`, :func:`activation_sizes`
    Memory: the bytes of the weights, and the sizes of the activations one sample produces.
:func:`quantize_int8`, :func:`dequantize`, :func:`quantized_weights`
    Post-training weight quantization to int8 with one scale per tensor.
:func:`magnitude_prune`, :func:`pruned_weights`, :func:`sparse_bytes`
    Magnitude pruning: zero the smallest weights of each kernel, and what that saves.

The FLOP count follows the usual convention: a multiply-accumulate counts as two operations,
and only the matrix products (dense, convolution, recurrent and attention layers, the fusion
layers' products) are counted. Activations, normalisation, pooling and bias additions are left
out: they grow with the activations, not with the weights, and are small next to the products.
"""

import math

import keras
import numpy as np

from mmtutor._validation import check_float, check_int

__all__ = [
    "layer_flops",
    "model_flops",
    "weight_bytes",
    "activation_sizes",
    "quantize_int8",
    "dequantize",
    "quantized_weights",
    "magnitude_prune",
    "pruned_weights",
    "sparse_bytes",
    "is_kernel",
]

# Layers without weights, or whose work is not a matrix product: zero counted FLOPs.
_FREE = (
    "InputLayer", "Reshape", "Flatten", "Dropout", "ReLU", "Activation", "Identity",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "BatchNormalization", "LayerNormalization", "Normalization",
    "Embedding", "Concatenate", "Add", "Multiply", "MaskedMeanPooling", "ZeroMasked",
    "MissingIndicator", "ModalityDropout", "UnitNormalization", "Lambda",
)


def _shape(tensor):
    return tuple(tensor.shape)


def _dense(in_features, units, positions=1):
    return 2 * positions * in_features * units


def _positions(shape):
    """Number of vectors a Dense layer is applied to, per sample (all axes but batch and last)."""
    return int(np.prod([s for s in shape[1:-1]], dtype="int64")) if len(shape) > 2 else 1


def _rnn_flops(cell_kind, steps, in_features, units):
    gates = {"GRU": 3, "LSTM": 4, "SimpleRNN": 1}[cell_kind]
    return 2 * steps * gates * units * (in_features + units)


def _mha_flops(heads, key_dim, value_dim, t_query, t_key, d_query, d_key, d_value, d_out):
    projections = (_dense(d_query, heads * key_dim, t_query) + _dense(d_key, heads * key_dim, t_key)
                   + _dense(d_value, heads * value_dim, t_key))
    scores = 2 * heads * t_query * t_key * key_dim
    weighted = 2 * heads * t_query * t_key * value_dim
    output = _dense(heads * value_dim, d_out, t_query)
    return projections + scores + weighted + output


def _fusion_flops(layer, in_shapes):
    name = type(layer).__name__
    dims = [s[-1] for s in in_shapes]
    if name == "ConcatFusion":
        if layer.dim is not None:
            return _dense(sum(dims) + len(dims), layer.dim)
        return 0
    if name == "LateFusion":
        total = 0
        for head, d in zip(getattr(layer, "heads", []), dims):
            width = d
            for dense in head:
                total += _dense(width, dense.units)
                width = dense.units
        return total
    if name == "TensorFusion":
        size, total = dims[0] + 1, 0
        for d in dims[1:]:
            size *= d + 1
            total += size  # one multiplication per entry of each outer product
        if layer.dim is not None:
            total += _dense(size, layer.dim)
        return total
    if name == "LowRankFusion":
        einsums = sum(2 * layer.rank * (d + 1) * layer.dim for d in dims)
        products = (len(dims) - 1) * layer.rank * layer.dim
        return einsums + products + layer.rank * layer.dim
    if name == "GatedFusion":
        num = len(dims)
        candidates = sum(_dense(d, layer.dim) for d in dims)
        gate = _dense(sum(dims) + num, layer.gate.units)
        return candidates + gate + 2 * num * layer.dim
    if name == "CrossModalAttentionFusion":
        steps = [1 if len(s) == 2 else s[1] for s in in_shapes]
        total = sum(_dense(d, layer.dim, t) for d, t in zip(dims, steps))
        for i, mha in enumerate(layer.attentions):
            context = sum(t for j, t in enumerate(steps) if j != i)
            total += _mha_flops(layer.num_heads, layer.key_dim, layer.key_dim, steps[i], context,
                                layer.dim, layer.dim, layer.dim, layer.dim)
        return total
    return None


def layer_flops(layer):
    """Floating-point operations of one layer for one sample, from its input and output shapes.

    Defined in the chapter on challenges. A multiply-accumulate counts as 2. Counted:
    ``Dense`` (``2 * positions * in * units``), ``Conv1D``/``Conv2D``
    (``2 * output positions * kernel size * in channels / groups * filters``), ``GRU``,
    ``LSTM`` and ``SimpleRNN`` (``2 * steps * gates * units * (in + units)``; gates 3, 4, 1),
    ``Bidirectional`` (both directions), ``MultiHeadAttention`` (projections, scores, weighted
    sum, output), and the fusion layers of :mod:`mmtutor.fusion`. Layers in a list of known
    weight-free or elementwise layers (pooling, normalisation, activations, embeddings, ...)
    count 0.

    Parameters
    ----------
    layer : keras.layers.Layer
        A layer that has been called once in a functional model (so that its input and output
        shapes are known).

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``layer`` is not a Keras layer.
    ValueError
        For a layer type with weights that this function does not know (rather than a silent
        zero), or a layer never called on a symbolic input.

    Examples
    --------
    >>> import keras
    >>> from mmtutor.cost import layer_flops
    >>> x = keras.Input((4,))
    >>> model = keras.Model(x, keras.layers.Dense(3)(x))
    >>> layer_flops(model.layers[-1])
    24
    """
    if not isinstance(layer, keras.layers.Layer):
        raise TypeError(f"layer must be a keras.layers.Layer, got {type(layer).__name__}")
    name = type(layer).__name__
    if isinstance(layer, keras.Model):
        return model_flops(layer)
    if name in _FREE:
        return 0
    try:
        inputs, outputs = layer.input, layer.output
    except (AttributeError, ValueError) as err:
        raise ValueError(
            f"layer {layer.name!r} ({name}) has no single symbolic input: call it once in a "
            f"functional model first ({err})"
        ) from None
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    in_shapes = [_shape(t) for t in inputs]
    out = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    out_shape = _shape(out)
    if name == "Dense":
        return int(_dense(in_shapes[0][-1], layer.units, _positions(in_shapes[0])))
    if name in ("Conv1D", "Conv2D"):
        kernel = int(np.prod(layer.kernel_size))
        in_channels = in_shapes[0][-1] // layer.groups
        return int(2 * _positions(out_shape) * kernel * in_channels * layer.filters)
    if name in ("GRU", "LSTM", "SimpleRNN"):
        return int(_rnn_flops(name, in_shapes[0][1], in_shapes[0][-1], layer.units))
    if name == "Bidirectional":
        inner = type(layer.forward_layer).__name__
        cells = (layer.forward_layer, layer.backward_layer)
        return int(sum(_rnn_flops(inner, in_shapes[0][1], in_shapes[0][-1], c.units) for c in cells))
    if name == "MultiHeadAttention":
        q, v = in_shapes[0], in_shapes[1]
        k = in_shapes[2] if len(in_shapes) > 2 and len(in_shapes[2]) == 3 else v
        value_dim = layer._value_dim or layer._key_dim
        return int(_mha_flops(layer.num_heads, layer._key_dim, value_dim, q[1], k[1], q[-1],
                              k[-1], v[-1], out_shape[-1]))
    if name in ("ConcatFusion", "LateFusion", "TensorFusion", "LowRankFusion", "GatedFusion",
                "CrossModalAttentionFusion"):
        # The fusion layers' last input is the modality mask.
        return int(_fusion_flops(layer, in_shapes[:-1] if len(in_shapes) > 1 else in_shapes))
    if not layer.weights:
        return 0
    raise ValueError(
        f"layer_flops does not know layer {layer.name!r} of type {name} (it has weights); "
        "count it by hand"
    )


def model_flops(model, *, per_layer=False):
    """Floating-point operations of one forward pass for one sample, summed over the layers.

    Defined in the chapter on challenges. Nested models (the encoders inside a fusion model)
    are walked into; see :func:`layer_flops` for what is counted.

    Parameters
    ----------
    model : keras.Model
        A functional (or Sequential) model with defined inputs.
    per_layer : bool, default False
        Return a dict ``"encoder/layer" -> FLOPs`` instead of the total.

    Returns
    -------
    int or dict

    Examples
    --------
    >>> import keras
    >>> from mmtutor.cost import model_flops
    >>> x = keras.Input((4,))
    >>> h = keras.layers.Dense(8, activation="relu")(x)
    >>> model_flops(keras.Model(x, keras.layers.Dense(2)(h)))
    96
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not isinstance(per_layer, bool):
        raise TypeError(f"per_layer must be True or False, got {per_layer!r}")
    counts = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            for key, value in model_flops(layer, per_layer=True).items():
                counts[f"{layer.name}/{key}"] = value
        else:
            counts[layer.name] = layer_flops(layer)
    return counts if per_layer else int(sum(counts.values()))


def weight_bytes(model, *, bytes_per_weight=None):
    """Bytes of all a model's weights (trainable and not), as stored.

    Defined in the chapter on challenges.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
    bytes_per_weight : int, optional
        Count every weight with this size instead of its dtype's (e.g. 1 for int8).

    Returns
    -------
    int

    Examples
    --------
    >>> import keras
    >>> from mmtutor.cost import weight_bytes
    >>> x = keras.Input((4,))
    >>> weight_bytes(keras.Model(x, keras.layers.Dense(3)(x)))  # (4 * 3 + 3) float32
    60
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model must be a Keras model or layer, got {type(model).__name__}")
    if bytes_per_weight is not None:
        bytes_per_weight = check_int(bytes_per_weight, "bytes_per_weight", minimum=1)
    total = 0
    for w in model.weights:
        size = int(np.prod(w.shape))
        itemsize = bytes_per_weight or np.dtype(keras.backend.standardize_dtype(w.dtype)).itemsize
        total += size * itemsize
    return total


def activation_sizes(model):
    """Per-sample sizes (numbers of values) of every layer output in a forward pass.

    Defined in the chapter on challenges. Computed from the symbolic output shapes, walking
    into nested models; inputs included. The sum bounds the activation memory of one sample
    from above (a runtime frees what it no longer needs); the largest entry bounds it from
    below.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    dict of str -> int

    Examples
    --------
    >>> import keras
    >>> from mmtutor.cost import activation_sizes
    >>> x = keras.Input((4,), name="x")
    >>> activation_sizes(keras.Model(x, keras.layers.Dense(3, name="d")(x)))
    {'x': 4, 'd': 3}
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    sizes = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            for key, value in activation_sizes(layer).items():
                sizes[f"{layer.name}/{key}"] = value
            continue
        outputs = layer.output
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        sizes[layer.name] = int(sum(np.prod([d for d in _shape(t)[1:]], dtype="int64") for t in outputs))
    return sizes


def is_kernel(weight):
    """Whether a weight is a kernel (a matrix or larger), the kind compression acts on.

    Defined in the chapter on challenges. Biases, normalisation scales and statistics are
    vectors: few values that matter much, kept in float32.
    """
    return len(getattr(weight, "shape", np.shape(weight))) >= 2


def quantize_int8(weights):
    """Symmetric per-tensor int8 quantization: ``q = round(w / s)``, ``s = max|w| / 127``.

    Defined in the chapter on challenges.

    Parameters
    ----------
    weights : array-like of float
        Finite values.

    Returns
    -------
    q : numpy.ndarray of int8
        In [-127, 127].
    scale : float
        The step ``s``; ``q * s`` approximates ``weights`` within ``s / 2``.

    Examples
    --------
    >>> from mmtutor.cost import quantize_int8
    >>> q, s = quantize_int8([0.5, -1.27, 0.0])
    >>> q.tolist(), round(s, 4)
    ([50, -127, 0], 0.01)
    """
    w = np.asarray(weights, dtype="float64")
    if not np.issubdtype(np.asarray(weights).dtype, np.number) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite numbers")
    top = float(np.abs(w).max()) if w.size else 0.0
    scale = top / 127.0 if top > 0 else 1.0
    q = np.clip(np.round(w / scale), -127, 127).astype("int8")
    return q, scale


def dequantize(q, scale):
    """float32 values ``q * scale`` of an int8 tensor from :func:`quantize_int8`.

    Defined in the chapter on challenges.
    """
    scale = check_float(scale, "scale", low=0.0, low_open=True)
    return np.asarray(q).astype("float32") * np.float32(scale)


def quantized_weights(model):
    """The model's weights with every kernel replaced by its int8 round trip.

    Defined in the chapter on challenges. Put them back with ``model.set_weights(...)`` to
    measure what quantization costs in accuracy; vectors (biases, normalisation) are kept.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    weights : list of numpy.ndarray
        In the order of ``model.get_weights()``.
    stored_bytes : int
        Bytes when kernels are stored as int8 plus one float32 scale each, the rest float32.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model must be a Keras model or layer, got {type(model).__name__}")
    out, stored = [], 0
    for w in model.get_weights():
        if is_kernel(w) and np.issubdtype(w.dtype, np.floating):
            q, s = quantize_int8(w)
            out.append(dequantize(q, s).astype(w.dtype))
            stored += q.size + 4
        else:
            out.append(w)
            stored += w.nbytes
    return out, stored


def magnitude_prune(weights, sparsity):
    """Zero the ``sparsity`` share of entries with the smallest ``|w|`` (ties: by position).

    Defined in the chapter on challenges.

    Parameters
    ----------
    weights : array-like of float
    sparsity : float in [0, 1)
        Share of entries set to zero: ``floor(sparsity * size)`` of them.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype.

    Examples
    --------
    >>> from mmtutor.cost import magnitude_prune
    >>> magnitude_prune([0.1, -2.0, 0.3, -0.05], 0.5).tolist()
    [0.0, -2.0, 0.3, 0.0]
    """
    sparsity = check_float(sparsity, "sparsity", low=0.0, high=1.0, high_open=True)
    w = np.array(weights)
    if not np.issubdtype(w.dtype, np.floating):
        w = w.astype("float32")
    k = int(math.floor(sparsity * w.size))
    if k:
        order = np.argsort(np.abs(w).ravel(), kind="stable")
        flat = w.reshape(-1)
        flat[order[:k]] = 0
    return w


def pruned_weights(model, sparsity):
    """The model's weights with each kernel magnitude-pruned to ``sparsity``.

    Defined in the chapter on challenges. Each kernel is pruned on its own (the same share in
    every layer); vectors are kept.

    Parameters
    ----------
    model : keras.Model
    sparsity : float in [0, 1)

    Returns
    -------
    list of numpy.ndarray
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model must be a Keras model or layer, got {type(model).__name__}")
    sparsity = check_float(sparsity, "sparsity", low=0.0, high=1.0, high_open=True)
    return [magnitude_prune(w, sparsity) if is_kernel(w) and np.issubdtype(w.dtype, np.floating)
            else w for w in model.get_weights()]


def sparse_bytes(weights):
    """Bytes of weights stored as a bitmask of the non-zeros plus their float32 values.

    Defined in the chapter on challenges. Kernels (see :func:`is_kernel`) are stored so: one
    bit per entry and four bytes per non-zero; vectors as dense float32. A dense file of a
    pruned model is as large as the unpruned one: only a sparse format saves space.

    Parameters
    ----------
    weights : list of array-like

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.cost import sparse_bytes
    >>> sparse_bytes([np.array([[0.0, 1.0], [0.0, 0.0]], "float32")])  # 1 byte mask + 4
    5
    """
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights must be a list of arrays, got {type(weights).__name__}")
    total = 0
    for w in weights:
        w = np.asarray(w)
        if is_kernel(w):
            total += math.ceil(w.size / 8) + 4 * int(np.count_nonzero(w))
        else:
            total += 4 * w.size
    return total
