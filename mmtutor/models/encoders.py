"""Modality encoders: image CNN, text BiLSTM / GRU / Transformer, audio CNN / CRNN.

Defined in the chapter on feature extraction ("Feature extraction: the encoders").

Every builder returns a plain Keras 3 functional model with one input and follows the contract
that the fusion chapter relies on:

* ``return_sequence=False`` (default): one output, the pooled feature vector ``(batch, dim)``;
* ``return_sequence=True``: two outputs ``[pooled (batch, dim), sequence (batch, T, seq_dim)]``,
  the positions attention fusion attends over (image: the cells of the last feature map;
  text: the tokens; audio: the frames after pooling).

Inputs are ``(batch, height, width, channels)`` float32 images scaled to ``[0, 1]``,
``(batch, seq_len)`` int32 token ids with ``0`` as padding, and ``(batch, frames, n_mels)``
float32 log-mel spectrograms. Everything inside is pure Keras (``keras.layers``,
``keras.ops``), so the models run on the TensorFlow, JAX and PyTorch backends and round-trip
through ``.keras`` files; the custom layers are registered under the ``mmtutor`` package.

Padding of text: the embedding marks token id 0 as padding and the mask travels through the
recurrent and attention layers, so padded positions never change the pooled vector. In the
``sequence`` output padded positions are exact zero vectors, because Keras drops the mask of a
nested model's outputs when the encoder is called inside a larger model: a fusion layer can
recover it as ``keras.ops.any(sequence != 0, axis=-1)``.
"""

import os
import warnings

import keras
import numpy as np
from keras import layers, ops

__all__ = [
    "image_encoder",
    "text_encoder",
    "audio_encoder",
    "tabular_encoder",
    "point_set_encoder",
    "MissingIndicator",
    "PositionalEmbedding",
    "TransformerBlock",
    "MaskedMeanPooling",
    "ZeroMasked",
    "BackbonePreprocessing",
    "BACKBONES",
    "TEXT_KINDS",
    "AUDIO_KINDS",
]

# Standard backbones: the keras.applications constructor and the name of the file that
# `weights="imagenet"` would download (include_top=False), which users pass as a local path.
BACKBONES = {
    "mobilenetv3small": (
        "MobileNetV3Small", "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    ),
    "resnet50": ("ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
}
TEXT_KINDS = ("bilstm", "gru", "transformer")
AUDIO_KINDS = ("cnn", "crnn")

# ImageNet channel means (BGR order) that ResNet50's "caffe" preprocessing subtracts.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


# ---------------------------------------------------------------------------------------------
# Validation helpers: errors name the argument, the value received and what was expected.
# ---------------------------------------------------------------------------------------------


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_positive_int(value, name, minimum=1):
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_dropout(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"dropout must be a float in [0, 1), got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"dropout must be a float in [0, 1), got {value!r}")
    return float(value)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_name(value):
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError(f"name must be a non-empty string without '/', got {value!r}")
    return value


def _check_choice(value, name, choices):
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value.lower()


def _check_filters(filters):
    if _is_int(filters):
        raise ValueError(
            f"filters must be a sequence of positive ints, one per convolution block, "
            f"like (16, 32, 64); got the single int {filters!r} (write ({filters},) for one block)"
        )
    try:
        values = tuple(filters)
    except TypeError:
        raise ValueError(
            f"filters must be a sequence of positive ints like (16, 32, 64), got {filters!r}"
        ) from None
    if not values or not all(_is_int(f) and f >= 1 for f in values):
        raise ValueError(
            f"filters must be a non-empty sequence of positive ints like (16, 32, 64), "
            f"got {filters!r}"
        )
    return tuple(int(f) for f in values)


def _check_shape(value, name, axes, example):
    """Validate a shape tuple such as (height, width, channels); say so if an int was passed."""
    expected = f"a tuple ({', '.join(axes)}) of {len(axes)} positive ints, like {example}"
    if _is_int(value):
        raise ValueError(
            f"{name} must be {expected}; got the int {value!r}. Passing a single int as a "
            f"shape is a common mistake (Keras shapes are tuples even for one axis), "
            f"and the batch axis is never part of {name}."
        )
    try:
        shape = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be {expected}; got {value!r}") from None
    if len(shape) != len(axes) or not all(_is_int(d) and d >= 1 for d in shape):
        hint = ""
        if len(shape) == len(axes) + 1:
            hint = " (leave out the batch axis)" if shape[0] in (None, -1) else (
                f" (got {len(shape)} axes; {name} has no batch axis and no extra channel axis)"
            )
        raise ValueError(f"{name} must be {expected}; got {value!r}{hint}")
    return tuple(int(d) for d in shape)


def _check_poolable(size, axis, blocks, name, shape):
    if size // 2**blocks < 1:
        raise ValueError(
            f"{name}={shape} is too small for {blocks} convolution blocks: each block halves "
            f"the {axis} axis, so it needs at least {2**blocks}, got {size}. Use fewer filters "
            f"or a larger input."
        )


def _conv_block(x, filters, index):
    """Conv2D -> BatchNormalization -> ReLU -> MaxPooling: one block of the CNN encoders."""
    # No bias: batch normalisation right after the convolution would cancel it.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
    # momentum 0.9 (Keras' default is 0.99): with the few hundred steps of a small dataset the
    # moving statistics used at inference then catch up with the training batches.
    x = layers.BatchNormalization(momentum=0.9, name=f"bn{index}")(x)
    x = layers.ReLU(name=f"relu{index}")(x)
    return layers.MaxPooling2D(2, name=f"pool{index}")(x)


def _projection_head(pooled, dim, dropout):
    pooled = layers.Dropout(dropout, name="dropout")(pooled)
    return layers.Dense(dim, activation="relu", name="projection")(pooled)


# ---------------------------------------------------------------------------------------------
# Custom layers
# ---------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="mmtutor")
class MaskedMeanPooling(layers.Layer):
    """Average a sequence over time, counting only the positions its mask keeps.

    Defined in the chapter on feature extraction. ``keras.layers.GlobalAveragePooling1D`` also
    honours a mask, but returns NaN for a row whose every position is padding (an empty text);
    this layer returns a zero vector for such a row instead, so an empty input gives a finite,
    documented result.

    Input shape ``(batch, time, features)`` with an optional boolean mask ``(batch, time)``;
    output shape ``(batch, features)``, without a mask.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.models.encoders import MaskedMeanPooling
    >>> x = np.array([[[1.0], [3.0], [100.0]]], dtype="float32")
    >>> mask = np.array([[True, True, False]])
    >>> float(MaskedMeanPooling()(x, mask=mask)[0, 0])
    2.0
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        total = ops.sum(inputs * weights, axis=1)
        # A row with no kept position (all padding) divides 0 by 1 and pools to zeros.
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        return total / count

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="mmtutor")
class ZeroMasked(layers.Layer):
    """Set the masked (padded) positions of a sequence to exact zeros; keep the mask.

    Defined in the chapter on feature extraction. Keras forgets masks at the boundary of a
    nested model, so the text encoder's ``sequence`` output carries its padding as zero vectors
    that a fusion layer can always recognise.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.models.encoders import ZeroMasked
    >>> x = np.ones((1, 3, 2), dtype="float32")
    >>> np.asarray(ZeroMasked()(x, mask=np.array([[True, True, False]])))[0, :, 0].tolist()
    [1.0, 1.0, 0.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return inputs
        return inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mmtutor")
class PositionalEmbedding(layers.Layer):
    """Token embedding plus a learned position embedding; token id 0 is padding.

    Defined in the chapter on feature extraction. A Transformer, unlike an RNN, sees its input
    as a set; adding a learned vector for each position tells it the word order.

    Parameters
    ----------
    vocab_size : int
        Number of token ids (ids run from 0, the padding id, to ``vocab_size - 1``).
    seq_len : int
        Longest sequence the layer accepts (rows of the position table).
    embed_dim : int
        Size of each embedding vector.
    mask_zero : bool, default True
        Produce a padding mask (``ids != 0``) for the layers that follow.
    **kwargs
        Standard layer arguments (``name``, ``dtype``...).

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.models.encoders import PositionalEmbedding
    >>> layer = PositionalEmbedding(vocab_size=10, seq_len=4, embed_dim=8)
    >>> tuple(layer(np.array([[3, 1, 0, 0]])).shape)
    (1, 4, 8)
    >>> np.asarray(layer.compute_mask(np.array([[3, 1, 0, 0]]))).tolist()
    [[True, True, False, False]]
    """

    def __init__(self, vocab_size, seq_len, embed_dim, mask_zero=True, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = _check_positive_int(vocab_size, "vocab_size", minimum=2)
        self.seq_len = _check_positive_int(seq_len, "seq_len")
        self.embed_dim = _check_positive_int(embed_dim, "embed_dim")
        self.mask_zero = _check_bool(mask_zero, "mask_zero")
        self.supports_masking = self.mask_zero

    def build(self, input_shape):
        length = input_shape[-1]
        if length is not None and length > self.seq_len:
            raise ValueError(
                f"PositionalEmbedding '{self.name}' has positions for seq_len={self.seq_len} "
                f"tokens but got inputs of length {length}; pad or truncate to {self.seq_len}"
            )
        self.token_table = self.add_weight(
            shape=(self.vocab_size, self.embed_dim), initializer="uniform", name="token_table"
        )
        self.position_table = self.add_weight(
            shape=(self.seq_len, self.embed_dim), initializer="uniform", name="position_table"
        )

    def call(self, inputs):
        length = inputs.shape[-1]
        if length is not None and length > self.seq_len:
            raise ValueError(
                f"PositionalEmbedding '{self.name}' has positions for seq_len={self.seq_len} "
                f"tokens but got inputs of length {length}; pad or truncate to {self.seq_len}"
            )
        ids = ops.cast(inputs, "int32")
        tokens = ops.take(self.token_table, ids, axis=0)
        positions = ops.take(self.position_table, ops.arange(ops.shape(ids)[-1]), axis=0)
        return tokens + ops.cast(positions, tokens.dtype)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.embed_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            seq_len=self.seq_len,
            embed_dim=self.embed_dim,
            mask_zero=self.mask_zero,
        )
        return config


@keras.saving.register_keras_serializable(package="mmtutor")
class TransformerBlock(layers.Layer):
    """One Transformer encoder block: self-attention and a feed-forward network.

    Defined in the chapter on feature extraction. Post-norm layout of the original Transformer:
    ``x = LayerNorm(x + Dropout(MultiHeadAttention(x, x)))`` then
    ``x = LayerNorm(x + Dropout(FFN(x)))`` with ``FFN = Dense(ff_dim, relu) -> Dense(embed_dim)``.
    The padding mask of the input keeps every token from attending to padding, and is passed on.

    Parameters
    ----------
    embed_dim : int
        Size of the token vectors (input and output).
    num_heads : int
        Attention heads; must divide ``embed_dim`` (each head has ``embed_dim // num_heads``
        dimensions).
    ff_dim : int
        Width of the hidden layer of the feed-forward network.
    dropout : float, default 0.1
        Dropout on the attention weights and on both residual branches.
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.models.encoders import TransformerBlock
    >>> block = TransformerBlock(embed_dim=8, num_heads=2, ff_dim=16)
    >>> tuple(block(np.zeros((2, 5, 8), dtype="float32")).shape)
    (2, 5, 8)
    """

    def __init__(self, embed_dim, num_heads, ff_dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = _check_positive_int(embed_dim, "embed_dim")
        self.num_heads = _check_positive_int(num_heads, "num_heads")
        self.ff_dim = _check_positive_int(ff_dim, "ff_dim")
        self.dropout = _check_dropout(dropout)
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"num_heads must divide embed_dim so that every head gets the same size; got "
                f"embed_dim={embed_dim}, num_heads={num_heads}"
            )
        self.supports_masking = True
        self.attention = layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.embed_dim // self.num_heads,
            dropout=self.dropout,
            name="attention",
        )
        self.ffn_hidden = layers.Dense(self.ff_dim, activation="relu", name="ffn_hidden")
        self.ffn_output = layers.Dense(self.embed_dim, name="ffn_output")
        self.norm_attention = layers.LayerNormalization(epsilon=1e-6, name="norm_attention")
        self.norm_ffn = layers.LayerNormalization(epsilon=1e-6, name="norm_ffn")
        self.drop_attention = layers.Dropout(self.dropout)
        self.drop_ffn = layers.Dropout(self.dropout)

    def build(self, input_shape):
        if input_shape[-1] != self.embed_dim:
            raise ValueError(
                f"TransformerBlock '{self.name}' expects vectors of size embed_dim="
                f"{self.embed_dim} on the last axis, got input shape {tuple(input_shape)}"
            )
        self.attention.build(input_shape, input_shape)
        self.norm_attention.build(input_shape)
        self.ffn_hidden.build(input_shape)
        self.ffn_output.build(tuple(input_shape[:-1]) + (self.ff_dim,))
        self.norm_ffn.build(input_shape)

    def call(self, inputs, mask=None, training=None):
        # Query and value masks: no token attends to padding (padded queries are dropped by
        # the pooling later; their rows fall back to uniform weights, never NaN).
        attended = self.attention(
            inputs, inputs, query_mask=mask, value_mask=mask, training=training
        )
        x = self.norm_attention(inputs + self.drop_attention(attended, training=training))
        update = self.ffn_output(self.ffn_hidden(x))
        return self.norm_ffn(x + self.drop_ffn(update, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            ff_dim=self.ff_dim,
            dropout=self.dropout,
        )
        return config


@keras.saving.register_keras_serializable(package="mmtutor")
class BackbonePreprocessing(layers.Layer):
    """Map RGB images in ``[0, 1]`` to the input range a standard backbone was trained on.

    Defined in the chapter on feature extraction. ImageNet weights only help when images are
    scaled the way they were in training: MobileNetV3 (with its built-in rescaling) expects
    ``[0, 255]``; ResNet50 expects "caffe" inputs: ``[0, 255]``, channels in BGR order, the
    ImageNet mean subtracted.

    Parameters
    ----------
    backbone : {"mobilenetv3small", "resnet50"}
        The backbone the images are prepared for.
    **kwargs
        Standard layer arguments.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.models.encoders import BackbonePreprocessing
    >>> x = np.ones((1, 2, 2, 3), dtype="float32")
    >>> float(BackbonePreprocessing("mobilenetv3small")(x)[0, 0, 0, 0])
    255.0
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = _check_choice(backbone, "backbone", tuple(BACKBONES))

    def call(self, inputs):
        x = inputs * 255.0
        if self.backbone == "resnet50":
            x = ops.flip(x, axis=-1)  # RGB -> BGR
            x = x - ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=x.dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(backbone=self.backbone)
        return config


# ---------------------------------------------------------------------------------------------
# Image encoder
# ---------------------------------------------------------------------------------------------


def _how_to_get_weights(backbone):
    constructor, file_name = BACKBONES[backbone]
    return (
        f"mmtutor never downloads at run time. On a machine with network access run once\n"
        f"    python -c \"import keras; keras.applications.{constructor}(include_top=False, "
        f"weights='imagenet')\"\n"
        f"which saves ~/.keras/models/{file_name}; copy that file here and pass its path, "
        f"e.g. weights='/path/to/{file_name}' (or pass weights=None for a randomly "
        f"initialised backbone)."
    )


def _check_weights_path(weights, backbone):
    if isinstance(weights, str) and weights.strip().lower() == "imagenet":
        raise ValueError(
            f"weights='imagenet' would download the {backbone} weights from the internet. "
            + _how_to_get_weights(backbone)
        )
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"weights must be None or the path of a local weights file, got {weights!r}"
        )
    path = os.fspath(weights)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"weights file for backbone={backbone!r} not found: {path!r}. "
            + _how_to_get_weights(backbone)
        )
    if not os.path.isfile(path):
        raise ValueError(f"weights must be a file, but {path!r} is a directory")
    if not path.endswith((".h5", ".hdf5", ".keras")):
        raise ValueError(
            f"weights file {path!r} must be a Keras weights file ending in '.h5' (the "
            f"downloaded '{BACKBONES[backbone][1]}' or a '.weights.h5' from save_weights), "
            f"'.hdf5' or '.keras'"
        )
    return path


def _make_backbone(backbone, input_shape, weights):
    constructor, _ = BACKBONES[backbone]
    build = getattr(keras.applications, constructor)
    # Build random, then load: a clear error names the file if it does not fit this backbone.
    net = build(input_shape=input_shape, include_top=False, weights=None)
    if weights is None:
        return net
    problem = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            net.load_weights(weights)
        except Exception as exc:  # Keras raises several types for a mismatched file
            problem = exc
    # Keras warns (once per layer) where a file only partly fits: that would leave random
    # weights behind silently, so it is an error here too.
    skipped = [w for w in caught if "skipping" in str(w.message).lower()]
    if problem is None and skipped:
        problem = RuntimeError(f"{len(skipped)} parts were skipped, e.g. {skipped[0].message}")
    if problem is not None:
        raise ValueError(
            f"could not load weights file {weights!r} into backbone={backbone!r} "
            f"(include_top=False): {type(problem).__name__}: {problem}. The file must hold "
            f"the weights of keras.applications.{constructor}(include_top=False)."
        ) from problem
    for w in caught:  # pass any other warning on to the user
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return net


def image_encoder(
    input_shape=(64, 64, 3),
    *,
    filters=(16, 32, 64),
    dim=64,
    dropout=0.1,
    backbone=None,
    weights=None,
    freeze_backbone=None,
    return_sequence=False,
    name="image_encoder",
):
    """Build an image encoder: a small CNN, or a standard backbone loaded from a local file.

    Defined in the chapter on feature extraction. The small CNN stacks one block per entry of
    ``filters`` (Conv2D 3x3 -> BatchNormalization -> ReLU -> MaxPooling 2x2, so each block
    halves height and width), then global average pooling, dropout and a ReLU ``Dense``
    projection to ``dim``.

    Parameters
    ----------
    input_shape : tuple of 3 ints, default (64, 64, 3)
        ``(height, width, channels)`` of one image, without the batch axis. Images are float32,
        scaled to ``[0, 1]``.
    filters : sequence of int, default (16, 32, 64)
        Channels of each convolution block (small CNN only).
    dim : int, default 64
        Size of the pooled feature vector.
    dropout : float, default 0.1
        Dropout rate before the projection.
    backbone : {None, "mobilenetv3small", "resnet50"}, default None
        ``None`` builds the small CNN; a name uses that ``keras.applications`` network
        (``include_top=False``) instead, after :class:`BackbonePreprocessing`. Needs 3 channels
        and images of at least 32x32.
    weights : None or path, default None
        For a backbone: ``None`` initialises it randomly; otherwise the path of a LOCAL weights
        file for ``include_top=False`` (e.g. the ``.h5`` file that Keras downloads). The string
        ``"imagenet"`` is refused, because it would download: the error says how to get the
        file once and pass its path.
    freeze_backbone : None or bool, default None
        Keep the backbone's weights fixed during training. ``None`` freezes it when ``weights``
        is given (transfer learning) and trains it when it is random.
    return_sequence : bool, default False
        Also return the last feature map as a sequence of ``H' * W'`` positions.
    name : str, default "image_encoder"
        Name of the model (its input is named ``name + "_input"``).

    Returns
    -------
    keras.Model
        Input ``(batch, height, width, channels)``. Output ``(batch, dim)``, or
        ``[(batch, dim), (batch, H' * W', C')]`` with ``return_sequence=True`` (small CNN:
        ``H' = height // 2**len(filters)``, ``C' = filters[-1]``; MobileNetV3Small: ``H' =
        height // 32``, ``C' = 576``; ResNet50: ``C' = 2048``).

    Raises
    ------
    ValueError
        For a malformed argument (e.g. ``input_shape=64`` instead of ``(64, 64, 3)``), images
        too small for the number of blocks, or ``weights="imagenet"``.
    FileNotFoundError
        If ``weights`` names a file that does not exist.

    Examples
    --------
    >>> from mmtutor.models.encoders import image_encoder
    >>> model = image_encoder((32, 32, 3), filters=(8, 16), dim=16, return_sequence=True)
    >>> [tuple(t.shape) for t in model.outputs]
    [(None, 16), (None, 64, 16)]
    """
    input_shape = _check_shape(input_shape, "input_shape", ("height", "width", "channels"),
                               (64, 64, 3))
    dim = _check_positive_int(dim, "dim")
    dropout = _check_dropout(dropout)
    return_sequence = _check_bool(return_sequence, "return_sequence")
    name = _check_name(name)
    height, width, channels = input_shape

    if backbone is None:
        if weights is not None:
            raise ValueError(
                f"weights={weights!r} only applies to a standard backbone; pass backbone="
                f"'mobilenetv3small' or 'resnet50' with it, or weights=None for the small CNN"
            )
        if freeze_backbone is not None:
            raise ValueError(
                f"freeze_backbone={freeze_backbone!r} only applies when backbone is given"
            )
        filters = _check_filters(filters)
        _check_poolable(height, "height", len(filters), "input_shape", input_shape)
        _check_poolable(width, "width", len(filters), "input_shape", input_shape)
        inputs = keras.Input(shape=input_shape, name=f"{name}_input")
        feature_map = inputs
        for index, count in enumerate(filters, start=1):
            feature_map = _conv_block(feature_map, count, index)
    else:
        backbone = _check_choice(backbone, "backbone", tuple(BACKBONES))
        if channels != 3 or height < 32 or width < 32:
            raise ValueError(
                f"backbone={backbone!r} needs RGB images of at least 32x32, i.e. input_shape "
                f"(height >= 32, width >= 32, 3); got input_shape={input_shape}"
            )
        if weights is not None:
            weights = _check_weights_path(weights, backbone)
        if freeze_backbone is None:
            freeze_backbone = weights is not None
        freeze_backbone = _check_bool(freeze_backbone, "freeze_backbone")
        net = _make_backbone(backbone, input_shape, weights)
        # A frozen backbone also runs its batch normalisation in inference mode (Keras 3).
        net.trainable = not freeze_backbone
        inputs = keras.Input(shape=input_shape, name=f"{name}_input")
        feature_map = net(BackbonePreprocessing(backbone, name="preprocess")(inputs))

    pooled = layers.GlobalAveragePooling2D(name="global_pool")(feature_map)
    pooled = _projection_head(pooled, dim, dropout)
    outputs = pooled
    if return_sequence:
        rows, cols, depth = feature_map.shape[1:]
        sequence = layers.Reshape((rows * cols, depth), name="sequence")(feature_map)
        outputs = [pooled, sequence]
    return keras.Model(inputs, outputs, name=name)


# ---------------------------------------------------------------------------------------------
# Text encoder
# ---------------------------------------------------------------------------------------------


def text_encoder(
    vocab_size,
    seq_len,
    *,
    kind="bilstm",
    embed_dim=64,
    units=64,
    num_heads=4,
    num_layers=1,
    pooling="mean",
    dim=64,
    dropout=0.1,
    return_sequence=False,
    name="text_encoder",
):
    """Build a text encoder over padded token ids: BiLSTM, GRU or Transformer.

    Defined in the chapter on feature extraction. Token id 0 is padding: the embedding masks it
    and the mask travels through the recurrent or attention layers and the pooling, so the
    pooled vector does not depend on how much padding follows the tokens.

    Parameters
    ----------
    vocab_size : int
        Number of token ids, including 0 (padding) and the out-of-vocabulary id if any.
        Ids must lie in ``[0, vocab_size)``; the vectorizer of the preprocessing chapter
        guarantees it (an id outside fails on CPU and is not checked on every accelerator).
    seq_len : int
        Length of the padded sequences.
    kind : {"bilstm", "gru", "transformer"}, default "bilstm"
        ``"bilstm"``: a bidirectional LSTM; ``"gru"``: a (forward) GRU; ``"transformer"``:
        :class:`PositionalEmbedding` and ``num_layers`` :class:`TransformerBlock` layers.
    embed_dim : int, default 64
        Size of the token embeddings (and of the Transformer's token vectors).
    units : int, default 64
        Units of the LSTM / GRU (per direction), or the Transformer's feed-forward width.
    num_heads : int, default 4
        Attention heads (Transformer only); must divide ``embed_dim``.
    num_layers : int, default 1
        Number of Transformer blocks (Transformer only).
    pooling : {"mean", "last"}, default "mean"
        ``"mean"``: average of the states of the real (non-padding) tokens; ``"last"``
        (recurrent kinds only): the final state after the last real token (for the BiLSTM, the
        forward and backward final states concatenated).
    dim : int, default 64
        Size of the pooled feature vector.
    dropout : float, default 0.1
        Dropout before the projection (and inside the Transformer blocks).
    return_sequence : bool, default False
        Also return the per-token states.
    name : str, default "text_encoder"
        Name of the model (its input is named ``name + "_input"``).

    Returns
    -------
    keras.Model
        Input ``(batch, seq_len)`` int32. Output ``(batch, dim)``, or ``[(batch, dim),
        (batch, seq_len, seq_dim)]`` with ``return_sequence=True``, where ``seq_dim`` is
        ``2 * units`` (bilstm), ``units`` (gru) or ``embed_dim`` (transformer). Padded positions
        of the sequence are zero vectors. An all-padding row (an empty text) pools to zeros
        before the projection, so it gets a finite vector, the same for every empty text.

    Raises
    ------
    ValueError
        For a malformed argument, an unknown ``kind``, ``pooling="last"`` with the Transformer,
        or ``num_heads`` that does not divide ``embed_dim``.

    Examples
    --------
    >>> from mmtutor.models.encoders import text_encoder
    >>> model = text_encoder(100, 12, kind="transformer", embed_dim=16, dim=8,
    ...                      return_sequence=True)
    >>> [tuple(t.shape) for t in model.outputs]
    [(None, 8), (None, 12, 16)]
    """
    vocab_size = _check_positive_int(vocab_size, "vocab_size", minimum=2)
    seq_len = _check_positive_int(seq_len, "seq_len")
    kind = _check_choice(kind, "kind", TEXT_KINDS)
    embed_dim = _check_positive_int(embed_dim, "embed_dim")
    units = _check_positive_int(units, "units")
    num_heads = _check_positive_int(num_heads, "num_heads")
    num_layers = _check_positive_int(num_layers, "num_layers")
    pooling = _check_choice(pooling, "pooling", ("mean", "last"))
    dim = _check_positive_int(dim, "dim")
    dropout = _check_dropout(dropout)
    return_sequence = _check_bool(return_sequence, "return_sequence")
    name = _check_name(name)
    if kind == "transformer" and pooling == "last":
        raise ValueError(
            "pooling='last' needs a recurrent kind ('bilstm' or 'gru'): a Transformer has no "
            "final state; use pooling='mean' with kind='transformer'"
        )
    if kind == "transformer" and embed_dim % num_heads:
        raise ValueError(
            f"num_heads must divide embed_dim so that every head gets the same size; got "
            f"embed_dim={embed_dim}, num_heads={num_heads}"
        )

    inputs = keras.Input(shape=(seq_len,), dtype="int32", name=f"{name}_input")
    final_state = None
    if kind == "transformer":
        x = PositionalEmbedding(vocab_size, seq_len, embed_dim, name="embedding")(inputs)
        for index in range(1, num_layers + 1):
            x = TransformerBlock(embed_dim, num_heads, units, dropout, name=f"block{index}")(x)
        states = x
    else:
        x = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")(inputs)
        want_state = pooling == "last"
        if kind == "bilstm":
            rnn = layers.Bidirectional(
                layers.LSTM(units, return_sequences=True, return_state=want_state),
                name="bilstm",
            )
        else:
            rnn = layers.GRU(units, return_sequences=True, return_state=want_state, name="gru")
        result = rnn(x)
        if want_state and kind == "bilstm":
            # [sequence, forward h, forward c, backward h, backward c]
            states, forward_h, _, backward_h, _ = result
            final_state = layers.Concatenate(name="final_state")([forward_h, backward_h])
        elif want_state:
            states, final_state = result
        else:
            states = result

    sequence = ZeroMasked(name="sequence")(states)
    if final_state is not None:
        pooled = final_state
    else:
        pooled = MaskedMeanPooling(name="mean_pool")(sequence)
    pooled = _projection_head(pooled, dim, dropout)
    outputs = [pooled, sequence] if return_sequence else pooled
    return keras.Model(inputs, outputs, name=name)


# ---------------------------------------------------------------------------------------------
# Audio encoder
# ---------------------------------------------------------------------------------------------


def audio_encoder(
    input_shape=(301, 64),
    *,
    kind="cnn",
    filters=(16, 32, 64),
    units=64,
    dim=64,
    dropout=0.1,
    return_sequence=False,
    name="audio_encoder",
):
    """Build an audio encoder over log-mel spectrograms: a CNN or a CRNN.

    Defined in the chapter on feature extraction. Both kinds treat the spectrogram as a
    one-channel image and stack one block per entry of ``filters`` (Conv2D 3x3 ->
    BatchNormalization -> ReLU -> MaxPooling 2x2, halving time and frequency). Each remaining
    time step then becomes one frame vector (frequency bins x channels, flattened: where in
    the spectrum the energy lies, i.e. pitch, stays visible). ``"cnn"`` averages the frame
    vectors over time; ``"crnn"`` first runs a bidirectional GRU over them, so each frame sees
    its context, then averages.

    Parameters
    ----------
    input_shape : tuple of 2 ints, default (301, 64)
        ``(frames, n_mels)`` of one log-mel spectrogram, without batch or channel axes.
    kind : {"cnn", "crnn"}, default "cnn"
        Architecture, see above.
    filters : sequence of int, default (16, 32, 64)
        Channels of each convolution block.
    units : int, default 64
        GRU units per direction (``"crnn"`` only).
    dim : int, default 64
        Size of the pooled feature vector.
    dropout : float, default 0.1
        Dropout rate before the projection.
    return_sequence : bool, default False
        Also return the per-frame features.
    name : str, default "audio_encoder"
        Name of the model (its input is named ``name + "_input"``).

    Returns
    -------
    keras.Model
        Input ``(batch, frames, n_mels)`` float32. Output ``(batch, dim)``, or
        ``[(batch, dim), (batch, T', seq_dim)]`` with ``return_sequence=True``, where
        ``T' = frames // 2**len(filters)`` and ``seq_dim`` is
        ``(n_mels // 2**len(filters)) * filters[-1]`` (cnn) or ``2 * units`` (crnn).

    Raises
    ------
    ValueError
        For a malformed argument (e.g. an int, or a 3-axis shape, as ``input_shape``) or a
        spectrogram too small for the number of blocks.

    Examples
    --------
    >>> from mmtutor.models.encoders import audio_encoder
    >>> model = audio_encoder((100, 32), kind="crnn", filters=(8, 16), units=8, dim=16,
    ...                       return_sequence=True)
    >>> [tuple(t.shape) for t in model.outputs]
    [(None, 16), (None, 25, 16)]
    """
    input_shape = _check_shape(input_shape, "input_shape", ("frames", "n_mels"), (301, 64))
    kind = _check_choice(kind, "kind", AUDIO_KINDS)
    filters = _check_filters(filters)
    units = _check_positive_int(units, "units")
    dim = _check_positive_int(dim, "dim")
    dropout = _check_dropout(dropout)
    return_sequence = _check_bool(return_sequence, "return_sequence")
    name = _check_name(name)
    frames, n_mels = input_shape
    _check_poolable(frames, "frames (time)", len(filters), "input_shape", input_shape)
    _check_poolable(n_mels, "n_mels (frequency)", len(filters), "input_shape", input_shape)

    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = layers.Reshape((frames, n_mels, 1), name="add_channel")(inputs)
    for index, count in enumerate(filters, start=1):
        x = _conv_block(x, count, index)
    steps, bins, depth = x.shape[1:]
    sequence = layers.Reshape((steps, bins * depth), name="frames")(x)
    if kind == "crnn":
        sequence = layers.Bidirectional(
            layers.GRU(units, return_sequences=True), name="bigru"
        )(sequence)
    pooled = layers.GlobalAveragePooling1D(name="time_pool")(sequence)
    pooled = _projection_head(pooled, dim, dropout)
    outputs = [pooled, sequence] if return_sequence else pooled
    return keras.Model(inputs, outputs, name=name)


# ---------------------------------------------------------------------------------------------
# Encoders of the chapter on applications: tabular values and point sets
# ---------------------------------------------------------------------------------------------


def _check_units(units):
    if _is_int(units):
        raise ValueError(
            f"units must be a sequence of positive ints, one per hidden layer, like (32,); "
            f"got the single int {units!r} (write ({units},) for one layer)"
        )
    try:
        values = tuple(units)
    except TypeError:
        raise ValueError(f"units must be a sequence of positive ints like (32,), got {units!r}") from None
    if not all(_is_int(u) and u >= 1 for u in values):
        raise ValueError(f"units must be a sequence of positive ints like (32,), got {units!r}")
    return tuple(int(u) for u in values)


def _check_stat(value, name, num_features):
    if value is None:
        return None
    array = np.asarray(value, dtype="float64")
    if array.shape != (num_features,) or not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} must be {num_features} finite numbers (one per feature), got shape "
            f"{array.shape}"
        )
    if name == "variance" and np.any(array <= 0):
        raise ValueError(f"variance must be positive for every feature, got {array.tolist()}")
    return array.tolist()


@keras.saving.register_keras_serializable(package="mmtutor")
class MissingIndicator(layers.Layer):
    """Replace missing values (NaN) by 0 and append one 0/1 "missing" column per feature.

    Defined in the chapter on applications (a laboratory value that was not ordered). Put it
    after the normalisation, so that 0 is the training mean: the network then sees the mean in
    place of the missing value, plus a flag that tells it the value is absent, and can learn
    how much to trust the rest.

    Input shape ``(batch, features)``; output shape ``(batch, 2 * features)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.models.encoders import MissingIndicator
    >>> x = np.array([[1.5, np.nan]], dtype="float32")
    >>> np.asarray(MissingIndicator()(x)).tolist()
    [[1.5, 0.0, 0.0, 1.0]]
    """

    def call(self, inputs):
        missing = ops.isnan(inputs)
        filled = ops.where(missing, ops.zeros_like(inputs), inputs)
        return ops.concatenate([filled, ops.cast(missing, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        features = input_shape[-1]
        return (*input_shape[:-1], None if features is None else 2 * features)


def tabular_encoder(
    num_features,
    *,
    units=(32,),
    dim=16,
    dropout=0.1,
    mean=None,
    variance=None,
    missing=False,
    name="tabular_encoder",
):
    """Build an encoder of a vector of numbers (laboratory values, sensor readings): an MLP.

    Defined in the chapter on applications. The values are normalised first, because their
    units differ (a count per microlitre next to a concentration in mg/L): with ``mean`` and
    ``variance`` given (the training set's, per feature) by a fixed ``Normalization`` layer,
    otherwise by a ``BatchNormalization`` layer that learns them. With ``missing=True`` a
    :class:`MissingIndicator` then replaces each NaN by 0 (the mean) and appends a flag per
    feature. One ``Dense(relu)`` layer per entry of ``units``, dropout, and a ReLU ``Dense``
    projection to ``dim`` follow.

    Parameters
    ----------
    num_features : int
        Length of one input vector.
    units : sequence of int, default (32,)
        Widths of the hidden layers (may be empty).
    dim : int, default 16
        Size of the output feature vector.
    dropout : float, default 0.1
        Dropout rate before the projection.
    mean, variance : None or sequence of num_features floats, default None
        Per-feature statistics of the training set (NaNs left out). Give both or neither.
    missing : bool, default False
        Accept NaN for a missing value (see above). Without it a NaN propagates to the output.
    name : str, default "tabular_encoder"

    Returns
    -------
    keras.Model
        Input ``(batch, num_features)`` float32, output ``(batch, dim)``.

    Raises
    ------
    ValueError
        For a malformed argument, e.g. ``num_features=(4,)`` or only one of ``mean`` and
        ``variance``.

    Examples
    --------
    >>> from mmtutor.models.encoders import tabular_encoder
    >>> model = tabular_encoder(5, units=(16,), dim=8, missing=True)
    >>> tuple(model.outputs[0].shape)
    (None, 8)
    """
    if not _is_int(num_features) or num_features < 1:
        raise ValueError(
            f"num_features must be a positive int (the length of one vector, without the batch "
            f"axis), got {num_features!r}"
        )
    num_features = int(num_features)
    units = _check_units(units)
    dim = _check_positive_int(dim, "dim")
    dropout = _check_dropout(dropout)
    missing = _check_bool(missing, "missing")
    name = _check_name(name)
    if (mean is None) != (variance is None):
        raise ValueError("give both mean and variance (the training set's statistics), or neither")
    mean = _check_stat(mean, "mean", num_features)
    variance = _check_stat(variance, "variance", num_features)

    inputs = keras.Input(shape=(num_features,), name=f"{name}_input")
    if mean is not None:
        x = layers.Normalization(mean=mean, variance=variance, name="normalize")(inputs)
    elif missing:
        # BatchNormalization would turn a NaN into NaN statistics: flag first, then normalise
        # the filled values (the flags pass through the normalisation too, harmlessly).
        x = layers.BatchNormalization(momentum=0.9, name="normalize")(
            MissingIndicator(name="missing")(inputs)
        )
    else:
        x = layers.BatchNormalization(momentum=0.9, name="normalize")(inputs)
    if missing and mean is not None:
        x = MissingIndicator(name="missing")(x)
    for index, width in enumerate(units, start=1):
        x = layers.Dense(width, activation="relu", name=f"dense{index}")(x)
    outputs = _projection_head(x, dim, dropout)
    return keras.Model(inputs, outputs, name=name)


def point_set_encoder(
    input_shape=(64, 3),
    *,
    units=(32, 64),
    dim=32,
    dropout=0.1,
    name="point_set_encoder",
):
    """Build a PointNet-style encoder of an unordered set of points (lidar returns, radar hits).

    Defined in the chapter on applications. After PointNet (Qi et al., 2017): the same MLP
    (one ``Dense(relu)`` per entry of ``units``) is applied to every point, then a global
    max pool over the points keeps, for each feature, the largest value any point gives.
    The max is symmetric, so the output does not depend on the order of the points; padding
    points are not special, so pad a set by repeating one of its points (the max is
    unchanged), not with zeros. A ReLU ``Dense`` projection to ``dim`` follows.

    Parameters
    ----------
    input_shape : tuple of 2 ints, default (64, 3)
        ``(num_points, point_dim)`` of one set, without the batch axis; ``point_dim`` counts the
        coordinates and any per-point values (e.g. intensity, radial velocity).
    units : sequence of int, default (32, 64)
        Widths of the shared per-point layers (at least one).
    dim : int, default 32
        Size of the output feature vector.
    dropout : float, default 0.1
        Dropout rate before the projection.
    name : str, default "point_set_encoder"

    Returns
    -------
    keras.Model
        Input ``(batch, num_points, point_dim)`` float32, output ``(batch, dim)``.

    Raises
    ------
    ValueError
        For a malformed argument, e.g. ``input_shape=3`` instead of ``(64, 3)``.

    Examples
    --------
    >>> from mmtutor.models.encoders import point_set_encoder
    >>> model = point_set_encoder((32, 3), units=(16,), dim=8)
    >>> tuple(model.outputs[0].shape)
    (None, 8)
    """
    input_shape = _check_shape(input_shape, "input_shape", ("num_points", "point_dim"), (64, 3))
    units = _check_units(units)
    if not units:
        raise ValueError("units must name at least one shared per-point layer, like (32, 64)")
    dim = _check_positive_int(dim, "dim")
    dropout = _check_dropout(dropout)
    name = _check_name(name)

    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = inputs
    for index, width in enumerate(units, start=1):
        # A Dense layer on a (batch, points, features) tensor acts on each point alone: shared.
        x = layers.Dense(width, activation="relu", name=f"point_dense{index}")(x)
    pooled = layers.GlobalMaxPooling1D(name="max_pool")(x)
    outputs = _projection_head(pooled, dim, dropout)
    return keras.Model(inputs, outputs, name=name)
