"""``build_fusion_model``: encoders + a fusion layer + a classifier, as one Keras model.

Defined in the chapter on fusion. Any named set of modalities works (image + audio digits,
text + image + audio sentiment, ...): each encoder is a ``keras.Model`` with one input that
returns a pooled feature vector ``(batch, d)``, or ``[pooled, sequence]`` when built with
``return_sequence=True`` (the encoder contract of the chapter on feature extraction).
"""

import inspect
import os

import keras
import numpy as np

from mmtutor._validation import check_float, check_int
from keras import ops

from mmtutor.fusion import (
    ConcatFusion,
    CrossModalAttentionFusion,
    GatedFusion,
    LateFusion,
    LowRankFusion,
    ModalityDropout,
    TensorFusion,
)

__all__ = [
    "FUSION_NAMES",
    "MASK_KEY",
    "FusionModel",
    "build_fusion_model",
    "compile_fusion_model",
    "make_fusion_layer",
    "load_fusion_model",
]

#: The fusion methods :func:`build_fusion_model` knows by name.
FUSION_NAMES = ("concat", "late", "attention", "tensor", "lowrank", "gated")

#: The key of the optional modality-mask input.
MASK_KEY = "mask"


def _check_num_classes(num_classes):
    return check_int(num_classes, "num_classes", minimum=2)


def _check_positive_int(value, name):
    return check_int(value, name, minimum=1)


def _check_rate(value, name):
    return check_float(value, name, low=0.0, high=1.0, high_open=True)


def make_fusion_layer(name, num_classes, hidden=64):
    """The fusion layer :func:`build_fusion_model` uses for a fusion name.

    Defined in the chapter on fusion.

    Parameters
    ----------
    name : {"concat", "late", "attention", "tensor", "lowrank", "gated"}
    num_classes : int
        Number of classes (used by ``"late"``, whose heads classify).
    hidden : int, default 64
        Width used by the layers that have one: ``"lowrank"`` and ``"gated"`` output ``hidden``
        features, ``"attention"`` uses ``dim=hidden`` with 4 heads of size ``hidden // 4``
        (at least 1), ``"late"`` gives each modality head a hidden layer of this width.
        ``"concat"`` and ``"tensor"`` are not projected.

    Returns
    -------
    keras.layers.Layer

    Examples
    --------
    >>> from mmtutor.models.fusion_model import make_fusion_layer
    >>> type(make_fusion_layer("lowrank", num_classes=2)).__name__
    'LowRankFusion'
    """
    if not isinstance(name, str) or name not in FUSION_NAMES:
        raise ValueError(
            f"fusion must be a layer or one of {', '.join(map(repr, FUSION_NAMES))}; "
            f"got {name!r}"
        )
    num_classes = _check_num_classes(num_classes)
    hidden = _check_positive_int(hidden, "hidden")
    if name == "concat":
        return ConcatFusion(name="fusion")
    if name == "late":
        return LateFusion("average", num_classes=num_classes, hidden=hidden, name="fusion")
    if name == "attention":
        return CrossModalAttentionFusion(
            num_heads=4, key_dim=max(1, hidden // 4), dim=hidden, name="fusion"
        )
    if name == "tensor":
        return TensorFusion(name="fusion")
    if name == "lowrank":
        return LowRankFusion(rank=4, dim=hidden, name="fusion")
    return GatedFusion(dim=hidden, name="fusion")


def _encoder_features(modality, encoder):
    """Input tensor, pooled features and sequence features (or None) of one encoder."""
    if not isinstance(encoder, keras.Model):
        raise ValueError(
            f"encoders[{modality!r}] must be a keras.Model, got {type(encoder).__name__}"
        )
    try:
        enc_inputs = encoder.inputs
    except (AttributeError, ValueError):
        enc_inputs = None
    if not enc_inputs:
        raise ValueError(
            f"encoders[{modality!r}] ({encoder.name!r}) has no defined input: build it with "
            "keras.Input(...) (functional API) or give its Sequential model an Input layer"
        )
    if len(enc_inputs) != 1:
        raise ValueError(
            f"encoders[{modality!r}] ({encoder.name!r}) must have one input, it has "
            f"{len(enc_inputs)}"
        )
    spec = enc_inputs[0]
    inp = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name=modality)
    out = encoder(inp)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    ranks = [len(o.shape) for o in outs]
    if len(outs) == 1 and ranks[0] == 2:
        return inp, outs[0], None
    if len(outs) == 1 and ranks[0] == 3:
        # A sequence alone: its mean over steps (padding-aware) is the pooled vector.
        pooled = keras.layers.GlobalAveragePooling1D(name=f"{modality}_pool")(outs[0])
        return inp, pooled, outs[0]
    if len(outs) == 2 and ranks == [2, 3]:
        return inp, outs[0], outs[1]
    raise ValueError(
        f"encoders[{modality!r}] ({encoder.name!r}) returns outputs of shapes "
        f"{[tuple(o.shape) for o in outs]}; expected one pooled output (batch, dim), one "
        "sequence (batch, steps, dim), or [pooled (batch, dim), sequence (batch, steps, dim)]"
    )


@keras.saving.register_keras_serializable(package="mmtutor")
class FusionModel(keras.Model):
    """The functional model that :func:`build_fusion_model` returns.

    It behaves like any Keras functional model, and also:

    - takes a dict of inputs keyed by modality name plus an optional ``"mask"`` of shape
      ``(batch, M)`` (columns in the order of :attr:`modalities`; absent means all present),
    - raises a clear error naming any missing or unknown modality key,
    - exposes :attr:`modalities`, :attr:`fusion_layer` and :meth:`attention_maps`.

    Defined in the chapter on fusion.
    """

    def __init__(self, *args, modalities=None, fusion_layer_name=None, **kwargs):
        super().__init__(*args, **kwargs)
        if modalities is None:
            modalities = [k for k in self.input if k != MASK_KEY]
        self._modalities = list(modalities)
        self._fusion_layer_name = fusion_layer_name
        # Inputs are checked (and the mask filled in) by call(), with clearer messages.
        self.input_spec = None

    @property
    def modalities(self):
        """Modality names, in the order of the mask's columns."""
        return list(self._modalities)

    @property
    def fusion_layer(self):
        """The fusion layer inside the model (None if the name is unknown)."""
        if self._fusion_layer_name is None:
            return None
        return self.get_layer(self._fusion_layer_name)

    def _complete_keys(self, inputs):
        """Raise a clear error unless ``inputs`` is a dict with exactly the expected keys."""
        if not isinstance(inputs, dict):
            raise ValueError(
                f"{self.name} takes a dict of inputs keyed by modality name "
                f"{self._modalities} (plus an optional {MASK_KEY!r} of shape (batch, "
                f"{len(self._modalities)})); got {type(inputs).__name__}"
            )
        unknown = [k for k in inputs if k not in self._modalities and k != MASK_KEY]
        missing = [k for k in self._modalities if k not in inputs]
        if unknown or missing:
            parts = []
            if missing:
                parts.append(f"missing modality {', '.join(map(repr, missing))}")
            if unknown:
                parts.append(f"unknown key {', '.join(map(repr, unknown))}")
            raise ValueError(
                f"{self.name}: inputs have {' and '.join(parts)}; expected the keys "
                f"{self._modalities} plus an optional {MASK_KEY!r}. To leave a modality out, "
                f"pass any array of the right shape for it and 0 in its column of "
                f"{MASK_KEY!r}."
            )

    def _complete_inputs(self, inputs):
        """Check the keys; add an all-ones mask when it is absent."""
        self._complete_keys(inputs)
        # Same kind of value everywhere (Keras refuses a mix of arrays and tensors).
        completed = {
            k: v if v is None or isinstance(v, keras.KerasTensor) or ops.is_tensor(v)
            else ops.convert_to_tensor(v)
            for k, v in inputs.items()
        }
        if completed.get(MASK_KEY) is not None:
            return completed
        x0 = ops.cast(completed[self._modalities[0]], "float32")
        ones = ops.ones_like(ops.sum(x0, axis=tuple(range(1, len(x0.shape)))))
        completed[MASK_KEY] = ops.stack([ones] * len(self._modalities), axis=1)
        return completed

    def _check_data(self, x):
        # Check dict keys before Keras starts iterating, for a plain error message.
        if isinstance(x, dict):
            self._complete_keys(x)

    def fit(self, x=None, y=None, *args, **kwargs):
        self._check_data(x)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self._check_data(x)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_data(x)
        return super().predict(x, *args, **kwargs)

    def call(self, inputs, training=None, mask=None, **kwargs):
        return super().call(self._complete_inputs(inputs), training=training, mask=mask,
                            **kwargs)

    def attention_maps(self, inputs):
        """Attention weights of a cross-modal attention fusion, for a batch of inputs.

        Parameters
        ----------
        inputs : dict
            As for ``predict`` (modality name -> array, optional ``"mask"``).

        Returns
        -------
        dict
            ``(query modality, key modality) -> array (batch, heads, T_query, T_key)``.
        """
        layer = self.fusion_layer
        if not isinstance(layer, CrossModalAttentionFusion):
            raise ValueError(
                f"attention_maps needs a CrossModalAttentionFusion; this model fuses with "
                f"{type(layer).__name__}"
            )
        # The fusion layer's symbolic inputs (Layer.input, public): its feature tensors, then the
        # modality mask it was called with. A sub-model from the model's inputs to those gives the
        # values to ask the layer for its weights.
        tensors = list(layer.input)
        if len(tensors) != len(self._modalities) + 1:
            raise RuntimeError(f"unexpected inputs of the attention layer: {len(tensors)} tensors for "
                               f"{len(self._modalities)} modalities")
        features, mask = tensors[:-1], tensors[-1]
        probe = keras.Model(self.input, [features, mask])
        feats, mask_value = probe(self._complete_inputs(inputs), training=False)
        maps = layer.attention_maps(feats, modality_mask=mask_value)
        names = self._modalities
        return {(names[i], names[j]): v for (i, j), v in maps.items()}

    def get_config(self):
        config = super().get_config()
        config.update(
            {"modalities": self.modalities, "fusion_layer_name": self._fusion_layer_name}
        )
        return config


def compile_fusion_model(model, num_classes, lr=1e-3):
    """Compile a fusion model with Adam and the loss that matches its output.

    ``num_classes == 2``: one sigmoid unit, ``binary_crossentropy``, labels 0/1.
    ``num_classes > 2``: a softmax, ``sparse_categorical_crossentropy``, integer labels.

    Defined in the chapter on fusion.

    Parameters
    ----------
    model : keras.Model
    num_classes : int
    lr : float, default 1e-3

    Returns
    -------
    keras.Model
        The same model, compiled (metric: ``"accuracy"``).
    """
    num_classes = _check_num_classes(num_classes)
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    units = model.outputs[0].shape[-1]
    expected = 1 if num_classes == 2 else num_classes
    if units != expected:
        raise ValueError(
            f"model {model.name!r} outputs {units} units, but num_classes={num_classes} needs "
            f"{expected}"
        )
    loss = "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=float(lr)), loss=loss,
                  metrics=["accuracy"])
    return model


def build_fusion_model(encoders, fusion, num_classes, *, modality_dropout=0.0, hidden=64,
                       dropout=0.1, name="fusion_model", compile=True, lr=1e-3, seed=None):
    """Build a multimodal classifier: one encoder per modality, a fusion layer, a classifier.

    The model takes a dict ``{modality name: array, ..., "mask": (batch, M) optional}``.
    Each encoder encodes its modality; the fusion layer combines the pooled features (the
    sequences, for ``"attention"``); a ``Dense(hidden, relu)``, ``Dropout(dropout)`` and an
    output layer classify. The output is one sigmoid unit when ``num_classes == 2`` (use
    ``binary_crossentropy`` and 0/1 labels) and a softmax over ``num_classes`` otherwise
    (``sparse_categorical_crossentropy``, integer labels). Late fusion has its own
    per-modality heads, whose combined probabilities are the output.

    With ``"attention"``, encoders that give sequences (``[pooled, sequence]`` outputs) attend
    over their steps; an encoder with only a pooled output counts as a sequence of length 1.

    The mask's columns follow the order of ``encoders``; a modality whose column is 0 does not
    affect the prediction (whatever array is passed for it).

    Defined in the chapter on fusion.

    Parameters
    ----------
    encoders : dict of str -> keras.Model
        Modality name -> encoder with one input. Any names (except ``"mask"``) and shapes.
    fusion : str or keras.layers.Layer
        One of ``"concat"``, ``"late"``, ``"attention"``, ``"tensor"``, ``"lowrank"``,
        ``"gated"`` (see :func:`make_fusion_layer`), or a layer instance whose ``call`` takes
        the list of modality features and a ``modality_mask`` keyword (all layers of
        :mod:`mmtutor.fusion` do).
    num_classes : int
        At least 2.
    modality_dropout : float in [0, 1), default 0.0
        Rate of :class:`~mmtutor.fusion.ModalityDropout`: in training, each modality of each
        sample is hidden (mask set to 0) with this probability, at least one kept.
    hidden : int, default 64
        Width of the hidden classifier layer (and of the named fusion layers).
    dropout : float in [0, 1), default 0.1
        Dropout before the output layer.
    name : str, default "fusion_model"
    compile : bool, default True
        Compile with :func:`compile_fusion_model` (Adam, learning rate ``lr``).
    lr : float, default 1e-3
    seed : int, optional
        Seed of the modality-dropout generator.

    Returns
    -------
    FusionModel
        A Keras functional model, saved with ``model.save("name.keras")`` and loaded with
        :func:`load_fusion_model` (or ``keras.models.load_model`` once this module is imported,
        which registers the mmtutor classes).

    Examples
    --------
    >>> import keras, numpy as np
    >>> from mmtutor.models.fusion_model import build_fusion_model
    >>> def encoder(n, name):
    ...     x = keras.Input((n,))
    ...     return keras.Model(x, keras.layers.Dense(4, activation="relu")(x), name=name)
    >>> model = build_fusion_model({"image": encoder(6, "img"), "audio": encoder(3, "aud")},
    ...                            "concat", num_classes=3)
    >>> model.predict({"image": np.zeros((2, 6)), "audio": np.zeros((2, 3))}, verbose=0).shape
    (2, 3)
    """
    if not isinstance(encoders, dict):
        raise ValueError(
            f"encoders must be a dict of modality name -> keras.Model, got "
            f"{type(encoders).__name__}"
        )
    if not encoders:
        raise ValueError("encoders is empty: give at least one modality name -> keras.Model")
    for key in encoders:
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(
                f"modality names must be non-empty strings without '/', got {key!r}"
            )
        if key == MASK_KEY:
            raise ValueError(
                f"{MASK_KEY!r} is reserved for the modality-mask input; rename that modality"
            )
    num_classes = _check_num_classes(num_classes)
    hidden = _check_positive_int(hidden, "hidden")
    modality_dropout = _check_rate(modality_dropout, "modality_dropout")
    dropout = _check_rate(dropout, "dropout")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if isinstance(fusion, str):
        layer = make_fusion_layer(fusion, num_classes, hidden=hidden)
    elif isinstance(fusion, keras.layers.Layer):
        layer = fusion
        if "modality_mask" not in inspect.signature(layer.call).parameters:
            raise ValueError(
                f"fusion layer {layer.name!r} ({type(layer).__name__}) must accept a "
                "`modality_mask` keyword in call(), so that missing modalities are handled; "
                "see mmtutor.fusion for layers that do"
            )
    else:
        raise ValueError(
            f"fusion must be a keras Layer or one of {', '.join(map(repr, FUSION_NAMES))}; "
            f"got {fusion!r}"
        )
    if isinstance(layer, LateFusion) and layer.num_classes != num_classes:
        raise ValueError(
            f"the LateFusion layer has num_classes={layer.num_classes}, but "
            f"num_classes={num_classes} was asked for"
        )
    if isinstance(layer, CrossModalAttentionFusion) and len(encoders) < 2:
        raise ValueError("attention fusion needs at least two modalities (encoders)")
    names = [enc.name for enc in encoders.values() if isinstance(enc, keras.Model)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    distinct = len({id(enc) for enc in encoders.values()})
    if repeated and distinct == len(encoders):
        raise ValueError(
            f"the encoders must have distinct names inside one model; {repeated} is used by "
            "more than one (pass name=... when building them)"
        )
    reserved = set(encoders) | {MASK_KEY, "fusion", "hidden", "dropout", "classifier", "modality_dropout"}
    clash = sorted(n for n in names if n in reserved)
    if clash:
        raise ValueError(
            f"encoder name(s) {clash} collide with the fusion model's own input or layer names "
            f"(the modality keys {sorted(encoders)} name its inputs): build the encoders with "
            "another name=..., e.g. name='text_encoder'"
        )

    inputs, pooled, sequences = {}, [], []
    for modality, encoder in encoders.items():
        inp, pool, seq = _encoder_features(modality, encoder)
        inputs[modality] = inp
        pooled.append(pool)
        sequences.append(seq if seq is not None else pool)
    inputs[MASK_KEY] = keras.Input(shape=(len(encoders),), name=MASK_KEY)
    mask = inputs[MASK_KEY]
    if modality_dropout > 0:
        mask = ModalityDropout(modality_dropout, seed=seed, name="modality_dropout")(mask)
    features = sequences if isinstance(layer, CrossModalAttentionFusion) else pooled
    fused = layer(features, modality_mask=mask)
    if isinstance(layer, LateFusion):
        outputs = fused
    else:
        h = keras.layers.Dense(hidden, activation="relu", name="hidden")(fused)
        if dropout > 0:
            h = keras.layers.Dropout(dropout, name="dropout")(h)
        if num_classes == 2:
            outputs = keras.layers.Dense(1, activation="sigmoid", name="classifier")(h)
        else:
            outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(h)
    model = FusionModel(
        inputs=inputs, outputs=outputs, name=name, modalities=list(encoders),
        fusion_layer_name=layer.name,
    )
    if compile:
        compile_fusion_model(model, num_classes, lr=lr)
    return model


def load_fusion_model(path):
    """Load a fusion model saved with ``model.save("name.keras")``.

    The same as ``keras.models.load_model``, with the mmtutor layers registered (importing
    this module registers them) and a clear error for a missing file.

    Defined in the chapter on fusion.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file.

    Returns
    -------
    keras.Model
        The model, with its weights (a :class:`FusionModel` for models from
        :func:`build_fusion_model`).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no saved model at {path!r}")
    if not path.endswith(".keras"):
        raise ValueError(f"path must name a .keras file, got {path!r}")
    return keras.models.load_model(path)
