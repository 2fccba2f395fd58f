"""Fusion layers: how to combine the features of several modalities (chapter on fusion).

Every layer here is pure Keras 3 (``keras.layers`` and ``keras.ops``), registered for
serialization, and runs unchanged on the TensorFlow and JAX backends. Each takes a list of M
modality tensors ``[z_1, ..., z_M]`` (pooled features of shape ``(batch, d_m)``; for
:class:`CrossModalAttentionFusion` sequences ``(batch, T_m, d_m)``) and an optional modality mask
``modality_mask`` of shape ``(batch, M)``: 1 where the modality is present, 0 where it is missing.
Values above 0.5 count as present.

A missing modality never reaches the output through its values: every layer first replaces a
masked modality by zeros, and then treats it as *absent* rather than as "a modality whose
features are zero" (indicator features for concatenation, ``[0, ..., 0, 1]`` for the tensor
products, zero weight for gates, votes and attention keys). With the mask at 0, the output is
the same whatever the masked slot holds.

Layers
------
:class:`ConcatFusion`
    Feature-level fusion: concatenation (plus the mask as indicator features).
:class:`LateFusion`
    Decision-level fusion: one classifier head per modality, decisions combined by averaging,
    fixed weights, learned weights or voting.
:class:`CrossModalAttentionFusion`
    MulT-style cross-modal attention: each modality's sequence attends to the others'.
:class:`TensorFusion`
    TFN: the outer product of ``[z_m; 1]`` over modalities.
:class:`LowRankFusion`
    LMF: a rank-r factorisation of the tensor-fusion weights.
:class:`GatedFusion`
    GMU: per-modality ``tanh`` features mixed by gates computed from all modalities.
:class:`ModalityDropout`
    Drops whole modalities at random in training, by editing the mask.
:class:`StackingFusion` / :func:`fit_stacking`
    A scikit-learn meta-classifier fitted on held-out unimodal predictions (defined in
    :mod:`mmtutor.stacking`, re-exported here).
"""

import math
import warnings

import keras
import numpy as np
from keras import ops

__all__ = [
    "ConcatFusion",
    "LateFusion",
    "CrossModalAttentionFusion",
    "TensorFusion",
    "LowRankFusion",
    "GatedFusion",
    "ModalityDropout",
    "StackingFusion",
    "fit_stacking",
    "tensor_fusion_size",
    "LATE_FUSION_MODES",
]

#: The ways :class:`LateFusion` can combine per-modality decisions.
LATE_FUSION_MODES = ("average", "weighted", "learned", "vote")

# TensorFusion warns when its flattened output has more features than this.
_TENSOR_FUSION_WARN_SIZE = 2**17

_EPS = 1e-7


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _check_positive_int(value, name, *, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def _shape_list(input_shape, layer, *, ranks=(2,), min_modalities=1):
    """Validate the list of per-modality shapes a fusion layer is built on."""
    if not isinstance(input_shape, (list, tuple)) or not input_shape or not all(
        isinstance(s, (list, tuple)) for s in input_shape
    ):
        raise ValueError(
            f"{type(layer).__name__} expects a list of modality tensors, one per modality, "
            f"got a single input of shape {input_shape!r}"
        )
    shapes = [tuple(s) for s in input_shape]
    if len(shapes) < min_modalities:
        raise ValueError(
            f"{type(layer).__name__} needs at least {min_modalities} modalities, got "
            f"{len(shapes)}"
        )
    for m, shape in enumerate(shapes):
        if len(shape) not in ranks:
            expected = " or ".join(f"rank {r}" for r in ranks)
            raise ValueError(
                f"{type(layer).__name__}: modality {m} has shape {shape}; expected {expected} "
                "(batch, features)" + (" or (batch, steps, features)" if 3 in ranks else "")
            )
        if shape[-1] is None:
            raise ValueError(
                f"{type(layer).__name__}: modality {m} has shape {shape}; its last (feature) "
                "dimension must be known"
            )
    return shapes


def _check_num_inputs(inputs, layer):
    if not isinstance(inputs, (list, tuple)):
        raise ValueError(
            f"{type(layer).__name__} expects a list of modality tensors, got "
            f"{type(inputs).__name__}"
        )
    if len(inputs) != layer._num_modalities:
        raise ValueError(
            f"{type(layer).__name__} was built for {layer._num_modalities} modalities, got a "
            f"list of {len(inputs)} tensors"
        )
    return list(inputs)


def _presence(modality_mask, inputs, layer):
    """Return the modality mask as a float32 (batch, M) tensor of 0/1 (all ones if None)."""
    num = len(inputs)
    if modality_mask is None:
        # (batch,) ones built from the first input, so it works with unknown batch sizes.
        x0 = ops.cast(inputs[0], "float32")
        ones = ops.ones_like(ops.sum(x0, axis=tuple(range(1, len(x0.shape)))))
        return ops.stack([ones] * num, axis=1)
    if isinstance(modality_mask, (list, tuple, np.ndarray)):
        modality_mask = ops.convert_to_tensor(np.asarray(modality_mask, dtype="float32"))
    if len(modality_mask.shape) != 2 or (
        modality_mask.shape[-1] is not None and modality_mask.shape[-1] != num
    ):
        raise ValueError(
            f"{type(layer).__name__}: modality_mask must have shape (batch, {num}), one column "
            f"per modality, got shape {tuple(modality_mask.shape)}"
        )
    return ops.cast(ops.greater(ops.cast(modality_mask, "float32"), 0.5), "float32")


def _zero_missing(inputs, present):
    """Replace each missing modality by zeros (so that no value of it can leak through)."""
    out = []
    for m, z in enumerate(inputs):
        z = ops.cast(z, "float32")
        p = present[:, m]
        p = ops.reshape(p, (-1,) + (1,) * (len(z.shape) - 1))
        out.append(ops.where(p > 0.5, z, ops.zeros_like(z)))
    return out


def _renormalise(weights, present):
    """Zero the weights of missing modalities and make each row sum to one (or stay 0)."""
    weights = weights * present
    return weights / ops.maximum(ops.sum(weights, axis=1, keepdims=True), _EPS)


def _append_one(z):
    """[z; 1] along the last axis."""
    return ops.concatenate([z, ops.ones_like(z[..., :1])], axis=-1)


class _FusionLayer(keras.layers.Layer):
    """Common behaviour: list input, modality mask, no Keras mask on the output."""

    _ranks = (2,)
    _min_modalities = 1

    def _build_shapes(self, input_shape):
        shapes = _shape_list(
            input_shape, self, ranks=self._ranks, min_modalities=self._min_modalities
        )
        self._num_modalities = len(shapes)
        return shapes

    def compute_mask(self, inputs, previous_mask=None):
        # The fused vector is not a sequence: it carries no Keras (padding) mask.
        return None


# --------------------------------------------------------------------------------------------
# Feature-level fusion
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="mmtutor")
class ConcatFusion(_FusionLayer):
    """Feature-level fusion: concatenate the modalities (and the mask), optionally project.

    The output is ``[m_1 z_1; ...; m_M z_M; m_1; ...; m_M]`` where ``m`` is the modality mask:
    missing modalities are zeroed and the mask is appended as indicator features, so a model can
    tell "missing" from "present with small values". With ``dim`` set, a ``Dense(dim)`` layer
    projects the result.

    Defined in the chapter on fusion.

    Parameters
    ----------
    dim : int or None, default None
        Size of the optional projection. None returns the concatenation itself, of size
        ``sum(d_m) + M``.
    activation : str or None, default "relu"
        Activation of the projection (ignored when ``dim`` is None).

    Returns
    -------
    tensor
        Calling the layer on ``[z_1, ..., z_M]`` (each ``(batch, d_m)``) returns
        ``(batch, sum(d_m) + M)`` or ``(batch, dim)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.fusion import ConcatFusion
    >>> out = ConcatFusion()([np.ones((2, 3)), np.ones((2, 4))],
    ...                      modality_mask=np.array([[1.0, 1.0], [1.0, 0.0]]))
    >>> tuple(out.shape)
    (2, 9)
    """

    def __init__(self, dim=None, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int(dim, "dim", allow_none=True)
        self.activation = activation
        self.projection = (
            keras.layers.Dense(self.dim, activation=activation, name="projection")
            if self.dim is not None
            else None
        )

    def build(self, input_shape):
        shapes = self._build_shapes(input_shape)
        if self.projection is not None:
            total = sum(s[-1] for s in shapes) + len(shapes)
            self.projection.build((None, total))

    def call(self, inputs, modality_mask=None, mask=None):
        inputs = _check_num_inputs(inputs, self)
        present = _presence(modality_mask, inputs, self)
        zs = _zero_missing(inputs, present)
        fused = ops.concatenate(zs + [present], axis=-1)
        if self.projection is not None:
            fused = self.projection(fused)
        return fused

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "activation": self.activation})
        return config


# --------------------------------------------------------------------------------------------
# Decision-level (late) fusion
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="mmtutor")
class LateFusion(_FusionLayer):
    """Decision-level fusion: one classifier per modality, decisions combined.

    Each modality ``m`` gets its own head (an optional ``Dense(hidden, relu)`` then a
    ``Dense`` to the class scores) and so its own class probabilities ``p_m``: a sigmoid
    probability of the positive class when ``num_classes == 2`` (output shape ``(batch, 1)``),
    a softmax over ``num_classes`` otherwise. The combined output is a probability vector:

    - ``"average"``: ``sum_m m_m p_m / sum_m m_m`` (mean over present modalities);
    - ``"weighted"``: the same with fixed user weights ``w_m``, renormalised over the present
      modalities;
    - ``"learned"``: weights ``softmax(a)_m`` with trainable logits ``a``, renormalised;
    - ``"vote"``: at inference, the (weighted) share of present modalities voting for each
      class (the argmax of ``p_m``; ``p_m > 0.5`` when binary); ties are broken by the average
      probability. Votes have no gradient, so in training the layer returns the average
      probability instead, which trains every head on its own modality.

    Because each head sees a single modality, late fusion cannot model interactions between
    modalities (it cannot learn XOR of two bits held by two modalities).

    Defined in the chapter on fusion.

    Parameters
    ----------
    mode : {"average", "weighted", "learned", "vote"}, default "average"
    num_classes : int, default 2
        Number of classes, at least 2.
    weights : sequence of float, optional
        One non-negative weight per modality; required for ``"weighted"``, optional for
        ``"vote"`` (weighted vote), not allowed otherwise.
    hidden : int or None, default None
        Width of a hidden ReLU layer in each head; None makes each head a linear classifier.
    use_heads : bool, default True
        If False the layer owns no heads and its inputs must already be per-modality
        probabilities of shape ``(batch, 1)`` (binary) or ``(batch, num_classes)``: use this to
        combine the outputs of separately trained unimodal models.

    Returns
    -------
    tensor
        ``(batch, 1)`` when ``num_classes == 2``, else ``(batch, num_classes)``: probabilities.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from mmtutor.fusion import LateFusion
    >>> p_image, p_audio = np.array([[0.6, 0.2, 0.2]]), np.array([[0.2, 0.2, 0.6]])
    >>> out = LateFusion("average", num_classes=3, use_heads=False)([p_image, p_audio])
    >>> keras.ops.convert_to_numpy(out).round(2)
    array([[0.4, 0.2, 0.4]], dtype=float32)
    """

    def __init__(self, mode="average", num_classes=2, weights=None, hidden=None,
                 use_heads=True, **kwargs):
        super().__init__(**kwargs)
        if mode not in LATE_FUSION_MODES:
            raise ValueError(
                f"mode must be one of {', '.join(map(repr, LATE_FUSION_MODES))}, got {mode!r}"
            )
        self.mode = mode
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or (
            num_classes < 2
        ):
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.num_classes = int(num_classes)
        if weights is not None:
            if mode not in ("weighted", "vote"):
                raise ValueError(
                    f"weights are only used by mode='weighted' or 'vote', got weights={weights!r} "
                    f"with mode={mode!r}"
                )
            arr = np.asarray(weights, dtype="float64")
            if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0) \
                    or arr.sum() <= 0:
                raise ValueError(
                    "weights must be a 1-D sequence of non-negative finite numbers, one per "
                    f"modality, not all zero; got {weights!r}"
                )
            weights = [float(w) for w in arr]
        elif mode == "weighted":
            raise ValueError("mode='weighted' needs weights=[w_1, ..., w_M], one per modality")
        self.fixed_weights = weights
        self.hidden = _check_positive_int(hidden, "hidden", allow_none=True)
        self.use_heads = bool(use_heads)
        self._units = 1 if self.num_classes == 2 else self.num_classes

    def build(self, input_shape):
        shapes = self._build_shapes(input_shape)
        num = len(shapes)
        if self.fixed_weights is not None and len(self.fixed_weights) != num:
            raise ValueError(
                f"LateFusion got {len(self.fixed_weights)} weights for {num} modalities"
            )
        self.heads = []
        if self.use_heads:
            for m, shape in enumerate(shapes):
                head = []
                width = shape[-1]
                if self.hidden is not None:
                    dense = keras.layers.Dense(self.hidden, activation="relu", name=f"hidden_{m}")
                    dense.build((None, width))
                    head.append(dense)
                    width = self.hidden
                out = keras.layers.Dense(self._units, name=f"head_{m}")
                out.build((None, width))
                head.append(out)
                self.heads.append(head)
        else:
            for m, shape in enumerate(shapes):
                if shape[-1] != self._units:
                    raise ValueError(
                        f"LateFusion(use_heads=False) expects per-modality probabilities of "
                        f"shape (batch, {self._units}) for num_classes={self.num_classes}; "
                        f"modality {m} has shape {shape}"
                    )
        if self.mode == "learned":
            self.modality_logits = self.add_weight(
                name="modality_logits", shape=(num,), initializer="zeros", trainable=True
            )

    def modality_probabilities(self, inputs):
        """Per-modality class probabilities ``[p_1, ..., p_M]`` (before combining).

        Parameters
        ----------
        inputs : list of tensors
            The same list the layer is called on.

        Returns
        -------
        list of tensors
            Each ``(batch, 1)`` (binary) or ``(batch, num_classes)``.
        """
        inputs = _check_num_inputs(inputs, self)
        if not self.use_heads:
            return [ops.cast(z, "float32") for z in inputs]
        probs = []
        for z, head in zip(inputs, self.heads):
            h = ops.cast(z, "float32")
            for dense in head:
                h = dense(h)
            probs.append(ops.sigmoid(h) if self._units == 1 else ops.softmax(h, axis=-1))
        return probs

    def combination_weights(self, modality_mask=None, batch_size=1):
        """The weight each modality gets, renormalised over present modalities.

        Parameters
        ----------
        modality_mask : array of shape (batch, M), optional
            Defaults to all present (for ``batch_size`` rows).
        batch_size : int, default 1

        Returns
        -------
        tensor of shape (batch, M)
        """
        num = self._num_modalities
        if modality_mask is None:
            present = ops.ones((batch_size, num), dtype="float32")
        else:
            present = ops.cast(ops.greater(ops.cast(modality_mask, "float32"), 0.5), "float32")
        return _renormalise(self._raw_weights(present), present)

    def _raw_weights(self, present):
        if self.mode == "learned":
            w = ops.softmax(ops.cast(self.modality_logits, "float32"))
        elif self.fixed_weights is not None:
            w = ops.convert_to_tensor(np.asarray(self.fixed_weights, dtype="float32"))
        else:
            return ops.ones_like(present)
        return ops.ones_like(present) * ops.expand_dims(w, 0)

    def call(self, inputs, modality_mask=None, training=None, mask=None):
        inputs = _check_num_inputs(inputs, self)
        present = _presence(modality_mask, inputs, self)
        probs = self.modality_probabilities(_zero_missing(inputs, present))
        weights = _renormalise(self._raw_weights(present), present)  # (batch, M)
        stacked = ops.stack(probs, axis=1)  # (batch, M, units)
        # where() rather than a product, so a missing modality's probabilities cannot leak.
        keep = ops.expand_dims(weights, -1)
        soft = ops.sum(ops.where(keep > 0, stacked * keep, ops.zeros_like(stacked)), axis=1)
        if self.mode != "vote" or training:
            return soft
        if self._units == 1:
            votes = ops.cast(ops.greater(stacked, 0.5), "float32")
        else:
            votes = ops.one_hot(ops.argmax(stacked, axis=-1), self._units, dtype="float32")
        share = ops.sum(ops.where(keep > 0, votes * keep, ops.zeros_like(votes)), axis=1)
        # The small share of the average probability only decides ties between votes.
        tie = 1e-3
        return (share + tie * soft) / (1.0 + tie)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mode": self.mode,
                "num_classes": self.num_classes,
                "weights": self.fixed_weights,
                "hidden": self.hidden,
                "use_heads": self.use_heads,
            }
        )
        return config


# --------------------------------------------------------------------------------------------
# Cross-modal attention (MulT-style)
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="mmtutor")
class CrossModalAttentionFusion(_FusionLayer):
    """Cross-modal attention fusion: a simplified variant in the spirit of MulT (Tsai et al. 2019).

    MulT itself runs one cross-modal transformer per (target, source) pair of modalities, each
    a stack of pre-norm blocks, followed by self-attention. This layer keeps the core idea --
    one modality's steps query another's -- in a single post-norm block per target modality
    that queries the *concatenation* of all other modalities at once.

    Each modality's sequence is projected to ``dim`` features (``x_m``, one ``Dense`` per
    modality; its bias tells the modalities apart). Then, for each target modality ``i``, a
    ``keras.layers.MultiHeadAttention`` lets the steps of ``x_i`` (queries) attend to the steps
    of all *other* modalities, concatenated along time (keys and values):

    ``c_i = LayerNorm(x_i + MHA(x_i, [x_j]_{j != i}))``, then ``c_i`` is mean-pooled over its
    steps. The output is ``[m_1 c_1; ...; m_M c_M; m_1; ...; m_M]`` of size ``M * dim + M``.

    The attention mask comes from the modality mask (the steps of a missing modality are never
    attended to, so the softmax renormalises over the present ones) and from the Keras padding
    masks of the inputs, if any (e.g. a text encoder with ``mask_zero=True``): padded keys get
    no attention and padded queries are left out of the pooling. A target with no other
    modality present keeps ``x_i`` alone.

    Inputs of rank 2 ``(batch, d_m)`` (pooled encoders) are treated as sequences of length 1.

    Defined in the chapter on fusion.

    Parameters
    ----------
    num_heads : int, default 4
    key_dim : int, default 32
        Size of each attention head.
    dim : int, default 64
        Width of the projected sequences and of each pooled modality output.

    Returns
    -------
    tensor
        ``(batch, M * dim + M)``. With ``return_attention_scores=True`` the call returns
        ``(fused, scores)`` where ``scores[(i, j)]`` is the attention of modality ``i``'s steps on
        modality ``j``'s steps, shape ``(batch, num_heads, T_i, T_j)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.fusion import CrossModalAttentionFusion
    >>> layer = CrossModalAttentionFusion(num_heads=2, key_dim=4, dim=8)
    >>> fused, scores = layer([np.ones((2, 5, 3)), np.ones((2, 7, 6))],
    ...                       return_attention_scores=True)
    >>> tuple(fused.shape), tuple(scores[(0, 1)].shape)
    ((2, 18), (2, 2, 5, 7))
    """

    _ranks = (2, 3)
    _min_modalities = 2

    def __init__(self, num_heads=4, key_dim=32, dim=64, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _check_positive_int(num_heads, "num_heads")
        self.key_dim = _check_positive_int(key_dim, "key_dim")
        self.dim = _check_positive_int(dim, "dim")

    def build(self, input_shape):
        shapes = self._build_shapes(input_shape)
        self._steps = [1 if len(s) == 2 else s[1] for s in shapes]
        for m, steps in enumerate(self._steps):
            if steps is None:
                raise ValueError(
                    f"CrossModalAttentionFusion: modality {m} has shape {shapes[m]}; the number "
                    "of steps must be known (pad or crop sequences to a fixed length)"
                )
        num = len(shapes)
        self.projections, self.attentions, self.norms = [], [], []
        for m, shape in enumerate(shapes):
            proj = keras.layers.Dense(self.dim, name=f"project_{m}")
            proj.build((None, self._steps[m], shape[-1]))
            self.projections.append(proj)
        for i in range(num):
            context = sum(t for j, t in enumerate(self._steps) if j != i)
            mha = keras.layers.MultiHeadAttention(
                num_heads=self.num_heads, key_dim=self.key_dim, name=f"attend_{i}"
            )
            mha.build((None, self._steps[i], self.dim), (None, context, self.dim))
            self.attentions.append(mha)
            norm = keras.layers.LayerNormalization(name=f"norm_{i}")
            norm.build((None, self._steps[i], self.dim))
            self.norms.append(norm)

    def call(self, inputs, modality_mask=None, training=None, return_attention_scores=False,
             mask=None, inputs_mask=None):
        # Keras passes the inputs' padding masks as `mask` when `inputs` is the only tensor
        # argument and as `inputs_mask` when a modality mask is given too.
        inputs = _check_num_inputs(inputs, self)
        num = len(inputs)
        present = _presence(modality_mask, inputs, self)
        seqs = [z if len(z.shape) == 3 else ops.expand_dims(z, 1) for z in inputs]
        seqs = _zero_missing(seqs, present)
        # Valid steps of each modality: its Keras padding mask (if any) times its presence.
        padding = [None] * num
        for given in (mask, inputs_mask):
            if isinstance(given, (list, tuple)) and len(given) == num:
                padding = [g if g is not None else p for g, p in zip(given, padding)]
        steps_valid = []
        for m, x in enumerate(seqs):
            valid = ops.ones_like(x[:, :, 0])
            if padding[m] is not None and len(inputs[m].shape) == 3:
                valid = valid * ops.cast(padding[m], "float32")
            steps_valid.append(valid)
        xs = [proj(x) for proj, x in zip(self.projections, seqs)]
        pooled, scores = [], {}
        for i in range(num):
            others = [j for j in range(num) if j != i]
            context = ops.concatenate([xs[j] for j in others], axis=1)
            key_valid = ops.concatenate(
                [steps_valid[j] * present[:, j : j + 1] for j in others], axis=1
            )
            attention_mask = ops.expand_dims(ops.ones_like(steps_valid[i]), -1) * ops.expand_dims(
                key_valid, 1
            )
            with warnings.catch_warnings():
                # A single context step (one pooled modality) makes Keras warn that a softmax
                # over one key is always 1: true, and harmless here.
                warnings.filterwarnings("ignore", message="You are using a softmax over axis")
                attended, weights = self.attentions[i](
                    xs[i], context, context,
                    attention_mask=attention_mask > 0.5,
                    return_attention_scores=True,
                    training=training,
                )
            # With no other modality present the (uniform) attention output means nothing.
            any_other = ops.max(ops.stack([present[:, j] for j in others], axis=1), axis=1)
            attended = attended * ops.reshape(any_other, (-1, 1, 1))
            c = self.norms[i](xs[i] + attended)
            q_valid = ops.expand_dims(steps_valid[i], -1)
            c = ops.sum(c * q_valid, axis=1) / ops.maximum(ops.sum(q_valid, axis=1), 1.0)
            pooled.append(c)
            offset = 0
            for j in others:
                scores[(i, j)] = weights[..., offset : offset + self._steps[j]]
                offset += self._steps[j]
        pooled = _zero_missing(pooled, present)
        fused = ops.concatenate(pooled + [present], axis=-1)
        if return_attention_scores:
            return fused, scores
        return fused

    def attention_maps(self, inputs, modality_mask=None):
        """Run the layer eagerly and return its attention weights as NumPy arrays.

        Parameters
        ----------
        inputs : list of arrays
            The modality sequences, as for calling the layer.
        modality_mask : array of shape (batch, M), optional

        Returns
        -------
        dict
            ``(i, j) -> array (batch, num_heads, T_i, T_j)``: how much each step of modality
            ``i`` attends to each step of modality ``j``; each row sums to 1 over all present
            ``j`` together.
        """
        _, scores = self(list(inputs), modality_mask=modality_mask, return_attention_scores=True)
        return {k: ops.convert_to_numpy(v) for k, v in scores.items()}

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "key_dim": self.key_dim, "dim": self.dim})
        return config


# --------------------------------------------------------------------------------------------
# Tensor fusion (TFN) and low-rank fusion (LMF)
# --------------------------------------------------------------------------------------------


def tensor_fusion_size(dims):
    """Number of features of the tensor-fusion outer product, ``prod(d_m + 1)``.

    Defined in the chapter on fusion.

    Parameters
    ----------
    dims : sequence of int
        The feature size ``d_m`` of each modality.

    Returns
    -------
    int

    Examples
    --------
    >>> from mmtutor.fusion import tensor_fusion_size
    >>> tensor_fusion_size([32, 32, 32])
    35937
    """
    dims = list(dims)
    if not dims:
        raise ValueError("dims must list at least one modality size, got an empty sequence")
    for d in dims:
        _check_positive_int(d, "each entry of dims")
    return math.prod(int(d) + 1 for d in dims)


@keras.saving.register_keras_serializable(package="mmtutor")
class TensorFusion(_FusionLayer):
    """Tensor fusion (TFN, Zadeh et al. 2017): the outer product of ``[z_m; 1]``.

    ``Z = [z_1; 1] (x) [z_2; 1] (x) ... (x) [z_M; 1]``, flattened (modality 1 varies slowest).
    The appended 1 keeps every unimodal term and every lower-order interaction next to the
    full M-way products. A missing modality contributes ``[0, ..., 0, 1]``, so only the terms
    that do not involve it survive.

    The size is ``prod(d_m + 1)`` (see :func:`tensor_fusion_size`): three 64-dimensional
    modalities already give 274 625 features, and a ``Dense`` layer on top multiplies that by its
    width. The layer warns when the size exceeds 131 072; use small ``d_m`` or
    :class:`LowRankFusion`.

    Defined in the chapter on fusion.

    Parameters
    ----------
    dim : int or None, default None
        Size of an optional linear ``Dense`` projection of the flattened tensor.

    Returns
    -------
    tensor
        ``(batch, prod(d_m + 1))`` or ``(batch, dim)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.fusion import TensorFusion
    >>> out = TensorFusion()([np.ones((2, 3)), np.ones((2, 4))])
    >>> tuple(out.shape)
    (2, 20)
    """

    def __init__(self, dim=None, **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int(dim, "dim", allow_none=True)
        self.projection = (
            keras.layers.Dense(self.dim, name="projection") if self.dim is not None else None
        )

    def build(self, input_shape):
        shapes = self._build_shapes(input_shape)
        size = tensor_fusion_size([s[-1] for s in shapes])
        if size > _TENSOR_FUSION_WARN_SIZE:
            warnings.warn(
                f"TensorFusion on modalities of sizes {[s[-1] for s in shapes]} makes "
                f"prod(d_m + 1) = {size} features per sample; consider smaller encoders or "
                "LowRankFusion",
                UserWarning,
                stacklevel=2,
            )
        self.output_size = size
        if self.projection is not None:
            self.projection.build((None, size))

    def call(self, inputs, modality_mask=None, mask=None):
        inputs = _check_num_inputs(inputs, self)
        present = _presence(modality_mask, inputs, self)
        zs = [_append_one(z) for z in _zero_missing(inputs, present)]
        fused = zs[0]
        for z in zs[1:]:
            outer = ops.expand_dims(fused, -1) * ops.expand_dims(z, 1)
            fused = ops.reshape(outer, (-1, fused.shape[-1] * z.shape[-1]))
        if self.projection is not None:
            fused = self.projection(fused)
        return fused

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim})
        return config


@keras.saving.register_keras_serializable(package="mmtutor")
class LowRankFusion(_FusionLayer):
    """Low-rank multimodal fusion (LMF, Liu et al. 2018).

    A ``Dense(dim)`` on top of :class:`TensorFusion` has a weight tensor ``W`` of shape
    ``(d_1+1, ..., d_M+1, dim)``. LMF restricts it to rank ``r``,
    ``W = sum_r W_1^(r) (x) ... (x) W_M^(r)``, and never forms the outer product:

    ``h = sum_r prod_m ([z_m; 1] W_m^(r)) + b``  (elementwise product over modalities),

    so the cost is linear in the number of modalities: ``r * sum_m (d_m + 1) * dim`` weights
    instead of ``prod_m (d_m + 1) * dim``. A missing modality contributes ``[0, ..., 0, 1]``,
    as in tensor fusion. The factors are the weights ``factor_m`` of shape ``(rank, d_m+1, dim)``.

    Defined in the chapter on fusion.

    Parameters
    ----------
    rank : int, default 4
    dim : int, default 64
        Output size (linear: put an activation after it).

    Returns
    -------
    tensor
        ``(batch, dim)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.fusion import LowRankFusion
    >>> tuple(LowRankFusion(rank=2, dim=5)([np.ones((3, 4)), np.ones((3, 6))]).shape)
    (3, 5)
    """

    def __init__(self, rank=4, dim=64, **kwargs):
        super().__init__(**kwargs)
        self.rank = _check_positive_int(rank, "rank")
        self.dim = _check_positive_int(dim, "dim")

    def build(self, input_shape):
        shapes = self._build_shapes(input_shape)
        num = len(shapes)
        # Scale each factor so that the product of M factors keeps unit-scale outputs.
        self.factors = []
        for m, shape in enumerate(shapes):
            fan_in = shape[-1] + 1
            std = (1.0 / fan_in) ** 0.5 * (1.0 / self.rank) ** (0.5 / num)
            self.factors.append(
                self.add_weight(
                    name=f"factor_{m}",
                    shape=(self.rank, fan_in, self.dim),
                    initializer=keras.initializers.RandomNormal(stddev=std),
                )
            )
        self.bias = self.add_weight(name="bias", shape=(self.dim,), initializer="zeros")

    def call(self, inputs, modality_mask=None, mask=None):
        inputs = _check_num_inputs(inputs, self)
        present = _presence(modality_mask, inputs, self)
        product = None
        for z, factor in zip(_zero_missing(inputs, present), self.factors):
            term = ops.einsum("bi,rid->brd", _append_one(z), factor)  # (batch, rank, dim)
            product = term if product is None else product * term
        return ops.sum(product, axis=1) + self.bias

    def cp_weight(self):
        """The full weight tensor ``sum_r W_1^(r) (x) ... (x) W_M^(r)`` this layer stands for.

        Returns
        -------
        numpy.ndarray
            Shape ``(prod(d_m + 1), dim)``: the weight of a ``Dense`` layer on
            ``TensorFusion()`` outputs that computes the same function (with ``self.bias``).
        """
        factors = [ops.convert_to_numpy(f) for f in self.factors]
        full = factors[0]  # (rank, n, dim)
        for f in factors[1:]:
            full = np.einsum("rad,rbd->rabd", full, f).reshape(self.rank, -1, self.dim)
        return full.sum(axis=0)

    def get_config(self):
        config = super().get_config()
        config.update({"rank": self.rank, "dim": self.dim})
        return config


# --------------------------------------------------------------------------------------------
# Gated fusion (GMU)
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="mmtutor")
class GatedFusion(_FusionLayer):
    """Gated fusion after the gated multimodal unit (GMU, Arevalo et al. 2017), any ``M``.

    Each modality gives a candidate ``h_m = tanh(W_m z_m + b_m)`` of size ``dim``. A gate
    network reads all modalities at once, ``a = W_g [m_1 z_1; ...; m_M z_M; m]`` (the mask
    ``m`` included), and the output is ``h = sum_m g_m * h_m`` with gates ``g_m`` in [0, 1],
    feature by feature. Two forms of the gates:

    - ``gate="softmax"`` (default): ``a`` is reshaped to ``(M, dim)`` and a softmax over the
      modality axis turns it into weights that sum to 1 -- a *softmax-gated variant* of the
      GMU. Missing modalities get gate 0 and the present ones are renormalised. For two
      modalities it equals a sigmoid gate ``z`` and ``1 - z`` on the logit difference.
    - ``gate="sigmoid"``: the paper's form. For two modalities one gate
      ``z = sigmoid(a)`` of size ``dim`` and ``h = z * h_1 + (1 - z) * h_2``; for more, one
      independent gate per modality, ``g_m = sigmoid(a_m)`` (they need not sum to 1). A
      missing modality's gate is set to 0; the other gates are left as computed (the gate
      network sees the mask, so it can learn to compensate).

    Defined in the chapter on fusion.

    Parameters
    ----------
    dim : int, default 64
    gate : {"softmax", "sigmoid"}, default "softmax"

    Returns
    -------
    tensor
        ``(batch, dim)``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.fusion import GatedFusion
    >>> tuple(GatedFusion(dim=8)([np.ones((2, 3)), np.ones((2, 5))]).shape)
    (2, 8)
    >>> tuple(GatedFusion(dim=8, gate="sigmoid")([np.ones((2, 3)), np.ones((2, 5))]).shape)
    (2, 8)
    """

    _GATES = ("softmax", "sigmoid")

    def __init__(self, dim=64, gate="softmax", **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int(dim, "dim")
        if not isinstance(gate, str) or gate not in self._GATES:
            raise ValueError(f"gate must be one of {self._GATES}, got {gate!r}")
        self.gate_kind = gate

    def build(self, input_shape):
        shapes = self._build_shapes(input_shape)
        self.candidates = []
        for m, shape in enumerate(shapes):
            dense = keras.layers.Dense(self.dim, activation="tanh", name=f"candidate_{m}")
            dense.build((None, shape[-1]))
            self.candidates.append(dense)
        # The paper's two-modality GMU has one gate z (and 1 - z); otherwise one gate each.
        two_sigmoid = self.gate_kind == "sigmoid" and len(shapes) == 2
        self.gate = keras.layers.Dense((1 if two_sigmoid else len(shapes)) * self.dim, name="gate")
        self.gate.build((None, sum(s[-1] for s in shapes) + len(shapes)))

    def gates(self, inputs, modality_mask=None):
        """The gate values ``g``, shape ``(batch, M, dim)`` (0 for a missing modality).

        With ``gate="softmax"`` they sum to 1 over the present modalities; with
        ``gate="sigmoid"`` each lies in [0, 1] (for two modalities ``z`` and ``1 - z``).

        Parameters
        ----------
        inputs : list of tensors
        modality_mask : tensor of shape (batch, M), optional

        Returns
        -------
        tensor
        """
        inputs = _check_num_inputs(inputs, self)
        present = _presence(modality_mask, inputs, self)
        return self._gates(_zero_missing(inputs, present), present)

    def _gates(self, zs, present):
        num = len(zs)
        here = ops.expand_dims(present, -1) > 0.5
        a = self.gate(ops.concatenate(zs + [present], axis=-1))
        if self.gate_kind == "sigmoid":
            if num == 2:
                z = ops.sigmoid(a)
                g = ops.stack([z, 1.0 - z], axis=1)
            else:
                g = ops.sigmoid(ops.reshape(a, (-1, num, self.dim)))
            return ops.where(here, g, ops.zeros_like(g))
        logits = ops.reshape(a, (-1, num, self.dim))
        logits = ops.where(here, logits, ops.full_like(logits, -1e9))
        g = ops.softmax(logits, axis=1)
        g = ops.where(here, g, ops.zeros_like(g))
        return g / ops.maximum(ops.sum(g, axis=1, keepdims=True), _EPS)

    def call(self, inputs, modality_mask=None, mask=None):
        inputs = _check_num_inputs(inputs, self)
        present = _presence(modality_mask, inputs, self)
        zs = _zero_missing(inputs, present)
        g = self._gates(zs, present)
        h = ops.stack([cand(z) for cand, z in zip(self.candidates, zs)], axis=1)
        return ops.sum(g * h, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "gate": self.gate_kind})
        return config


# --------------------------------------------------------------------------------------------
# Modality dropout
# --------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="mmtutor")
class ModalityDropout(keras.layers.Layer):
    """Drop whole modalities at random in training, by zeroing their entries in the mask.

    In training each present modality of each sample is dropped with probability ``rate``;
    when that would drop every present modality of a sample, one of them (chosen at random)
    is kept. At inference the mask passes through unchanged. A model trained this way learns
    to predict from any subset of its modalities (chapter on challenges: missing data).

    Defined in the chapter on fusion.

    Parameters
    ----------
    rate : float in [0, 1)
    seed : int, optional

    Returns
    -------
    tensor
        The edited mask, same shape ``(batch, M)`` as the input mask.

    Examples
    --------
    >>> import keras, numpy as np
    >>> from mmtutor.fusion import ModalityDropout
    >>> mask = np.ones((4, 3), dtype="float32")
    >>> out = keras.ops.convert_to_numpy(ModalityDropout(0.5, seed=0)(mask, training=True))
    >>> bool((out.sum(axis=1) >= 1).all())
    True
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) \
                or not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        mask = ops.cast(ops.greater(ops.cast(inputs, "float32"), 0.5), "float32")
        if not training or self.rate == 0.0:
            return mask
        u = keras.random.uniform(ops.shape(mask), seed=self.seed_generator)
        kept = mask * ops.cast(u >= self.rate, "float32")
        # Fallback: keep the present modality with the largest u (a random one).
        num = mask.shape[-1]
        choice = ops.one_hot(ops.argmax(mask * (u + 1.0), axis=-1), num, dtype="float32") * mask
        none_kept = ops.sum(kept, axis=-1, keepdims=True) < 0.5
        return ops.where(none_kept, choice, kept)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


# StackingFusion is a scikit-learn model, not a Keras layer: it lives in mmtutor.stacking and is
# importable from here too, where the chapter on fusion first names it.
from mmtutor.stacking import StackingFusion, fit_stacking  # noqa: E402
