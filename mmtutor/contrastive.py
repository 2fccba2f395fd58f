"""Contrastive alignment of two modalities, CLIP-style (chapter on challenges).

:func:`info_nce_loss`
    The symmetric InfoNCE loss of a batch of paired embeddings, in Keras ops.
:class:`InfoNCELoss`
    The same as a Keras loss, for ``model.fit`` on a model that outputs both embeddings.
:func:`build_contrastive_model`
    Two encoders, each with a linear projection to a shared space and L2 normalisation.
:func:`recall_at_k`
    Cross-modal retrieval: how often the true partner is among the ``k`` most similar.
:func:`zero_shot_predict`
    Classify one modality with class prototypes embedded from the other.
"""

import keras
import numpy as np
from keras import ops

from mmtutor._validation import check_float, check_int

__all__ = ["info_nce_loss", "InfoNCELoss", "build_contrastive_model", "recall_at_k",
           "zero_shot_predict"]


def _check_temperature(temperature):
    return check_float(temperature, "temperature", low=0.0, low_open=True)


def _l2_normalize(z):
    return z / ops.sqrt(ops.maximum(ops.sum(z * z, axis=-1, keepdims=True), 1e-12))


def info_nce_loss(z_a, z_b, temperature=0.1, *, normalize=True):
    """Symmetric InfoNCE loss (CLIP's) of a batch of paired embeddings.

    Defined in the chapter on challenges. Row ``i`` of ``z_a`` and row ``i`` of ``z_b`` are a
    pair (the same sample seen in two modalities); every other row of the batch is a negative.
    With unit vectors ``a_i``, ``b_j`` and logits ``s_ij = a_i . b_j / temperature``:

    ``L = 1/2 [ mean_i -log softmax_j(s_ij)[i] + mean_j -log softmax_i(s_ij)[j] ]``,

    the cross-entropy of picking the partner among the batch, from each side.

    Parameters
    ----------
    z_a, z_b : tensor or array, shape (batch, dim)
    temperature : float > 0, default 0.1
    normalize : bool, default True
        L2-normalise the rows first (cosine similarity). Without it the loss can be lowered by
        growing the norms instead of aligning the directions.

    Returns
    -------
    scalar tensor

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.contrastive import info_nce_loss
    >>> z = np.eye(4, dtype="float32")
    >>> float(info_nce_loss(z, z, temperature=0.01)) < 1e-6
    True
    """
    temperature = _check_temperature(temperature)
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    z_a = ops.convert_to_tensor(z_a, dtype="float32")
    z_b = ops.convert_to_tensor(z_b, dtype="float32")
    if len(z_a.shape) != 2 or len(z_b.shape) != 2:
        raise ValueError(f"z_a and z_b must have shape (batch, dim), got {z_a.shape} and {z_b.shape}")
    if z_a.shape[-1] is not None and z_b.shape[-1] is not None and z_a.shape[-1] != z_b.shape[-1]:
        raise ValueError(f"z_a and z_b must have the same dim, got {z_a.shape} and {z_b.shape}")
    if normalize:
        z_a, z_b = _l2_normalize(z_a), _l2_normalize(z_b)
    logits = ops.matmul(z_a, ops.transpose(z_b)) / temperature
    log_a = logits - ops.logsumexp(logits, axis=1, keepdims=True)  # a_i picks among all b
    log_b = logits - ops.logsumexp(logits, axis=0, keepdims=True)  # b_j picks among all a
    n = ops.shape(logits)[0]
    eye = ops.eye(n, dtype=logits.dtype)
    loss_a = -ops.sum(log_a * eye) / ops.cast(n, logits.dtype)
    loss_b = -ops.sum(log_b * eye) / ops.cast(n, logits.dtype)
    return 0.5 * (loss_a + loss_b)


@keras.saving.register_keras_serializable(package="mmtutor")
class InfoNCELoss(keras.losses.Loss):
    """:func:`info_nce_loss` as a Keras loss on ``y_pred = [z_a, z_b]`` (concatenated).

    Defined in the chapter on challenges. ``y_true`` is ignored: the pairs are the rows.

    Parameters
    ----------
    dim : int
        Size of each embedding; ``y_pred`` has ``2 * dim`` columns.
    temperature : float > 0, default 0.1
    """

    def __init__(self, dim, temperature=0.1, name="info_nce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dim = check_int(dim, "dim", minimum=1)
        self.temperature = _check_temperature(temperature)

    def call(self, y_true, y_pred):
        loss = info_nce_loss(y_pred[:, : self.dim], y_pred[:, self.dim:], self.temperature)
        # Keras averages a per-sample loss over the batch: give every row the batch's loss.
        return ops.ones_like(y_pred[:, 0]) * loss

    def get_config(self):
        return {"dim": self.dim, "temperature": self.temperature, "name": self.name}


def _tower(encoder, dim, name):
    if not isinstance(encoder, keras.Model) or not encoder.inputs or len(encoder.inputs) != 1:
        raise TypeError(f"encoders must be keras.Models with one input, got {encoder!r}")
    spec = encoder.inputs[0]
    inp = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name=f"{name}_input")
    out = encoder(inp)
    if isinstance(out, (list, tuple)):
        out = out[0]  # the pooled features of a [pooled, sequence] encoder
    z = keras.layers.Dense(dim, name=f"{name}_projection")(out)
    z = keras.layers.UnitNormalization(name=f"{name}_normalize")(z)
    return keras.Model(inp, z, name=f"{name}_tower")


def build_contrastive_model(encoder_a, encoder_b, *, names=("a", "b"), dim=16, temperature=0.1,
                            lr=1e-3, compile=True):
    """Two encoders projected to one shared embedding space, trained with InfoNCE.

    Defined in the chapter on challenges. Each encoder gets a linear projection to ``dim``
    features and L2 normalisation (a *tower*); the model takes ``{names[0]: x_a, names[1]:
    x_b}`` and outputs the two embeddings side by side, ``(batch, 2 * dim)``, so that
    ``model.fit(x, np.zeros(n), ...)`` minimises :class:`InfoNCELoss` (no labels are used).
    Embed one modality alone with ``model.get_layer(names[0] + "_tower")``.

    Parameters
    ----------
    encoder_a, encoder_b : keras.Model
        One input each; a pooled output ``(batch, d)`` or ``[pooled, sequence]``.
    names : pair of str, default ("a", "b")
        The modality names: the input keys and the towers' prefixes.
    dim : int, default 16
    temperature : float > 0, default 0.1
    lr : float > 0, default 1e-3
    compile : bool, default True

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> import keras
    >>> from mmtutor.contrastive import build_contrastive_model
    >>> def enc(n, name):
    ...     x = keras.Input((n,))
    ...     return keras.Model(x, keras.layers.Dense(8)(x), name=name)
    >>> model = build_contrastive_model(enc(5, "ea"), enc(3, "eb"), names=("face", "voice"))
    >>> tuple(model.outputs[0].shape)
    (None, 32)
    """
    if (not isinstance(names, (list, tuple)) or len(names) != 2
            or not all(isinstance(n, str) and n for n in names) or names[0] == names[1]):
        raise ValueError(f"names must be two different non-empty strings, got {names!r}")
    dim = check_int(dim, "dim", minimum=1)
    temperature = _check_temperature(temperature)
    lr = check_float(lr, "lr", low=0.0, low_open=True)
    towers = [_tower(encoder_a, dim, names[0]), _tower(encoder_b, dim, names[1])]
    inputs = {n: keras.Input(shape=tuple(t.inputs[0].shape[1:]), dtype=t.inputs[0].dtype, name=n)
              for n, t in zip(names, towers)}
    out = keras.layers.Concatenate(name="embeddings")([t(inputs[n]) for n, t in zip(names, towers)])
    model = keras.Model(inputs, out, name="contrastive")
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=InfoNCELoss(dim, temperature))
    return model


def recall_at_k(similarity, k, *, targets=None):
    """Share of queries whose true partner ranks among the ``k`` most similar gallery items.

    Defined in the chapter on challenges. Ties are broken at random, in expectation: a
    partner with ``g`` strictly better items and ``t`` others tied with it counts
    ``clip((k - g) / (t + 1), 0, 1)``. Chance (a random ranking) gives ``k / n_gallery``.

    Parameters
    ----------
    similarity : array-like, shape (n_query, n_gallery)
        Higher is more similar.
    k : int >= 1
    targets : array-like of int, shape (n_query,), optional
        Gallery index of each query's partner; by default query ``i``'s is item ``i``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.contrastive import recall_at_k
    >>> recall_at_k(np.eye(3), 1)
    1.0
    >>> recall_at_k(np.zeros((4, 4)), 1)  # all tied: chance, 1/4
    0.25
    """
    s = np.asarray(similarity, dtype="float64")
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"similarity must be a non-empty 2-D array, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("similarity contains NaN or infinite values")
    n_query, n_gallery = s.shape
    k = check_int(k, "k", minimum=1)
    if targets is None:
        if n_query > n_gallery:
            raise ValueError(f"similarity of shape {s.shape}: give targets when n_query > n_gallery")
        targets = np.arange(n_query)
    targets = np.asarray(targets)
    if targets.shape != (n_query,) or not np.issubdtype(targets.dtype, np.integer) \
            or targets.min() < 0 or targets.max() >= n_gallery:
        raise ValueError(f"targets must be {n_query} gallery indices in [0, {n_gallery}), got {targets!r}")
    true = s[np.arange(n_query), targets][:, None]
    better = (s > true).sum(axis=1)
    tied = (s == true).sum(axis=1) - 1
    return float(np.clip((k - better) / (tied + 1), 0.0, 1.0).mean())


def zero_shot_predict(z_query, z_reference, y_reference, num_classes=None):
    """Classify embeddings of one modality by the nearest class prototype of the other.

    Defined in the chapter on challenges. Each class's prototype is the normalised mean of the
    reference embeddings of that class (e.g. voices whose affect is known); a query (a face)
    gets the class of the prototype with the largest cosine similarity. No query-modality
    label is used: the shared embedding space carries the classes across.

    Parameters
    ----------
    z_query : array-like, shape (n, dim)
    z_reference : array-like, shape (m, dim)
    y_reference : array-like of int, shape (m,)
    num_classes : int, optional
        Default ``max(y_reference) + 1``; every class needs at least one reference.

    Returns
    -------
    numpy.ndarray of int, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.contrastive import zero_shot_predict
    >>> ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> zero_shot_predict(np.array([[0.9, 0.1], [0.2, 0.8]]), ref, [0, 1]).tolist()
    [0, 1]
    """
    q = np.asarray(z_query, dtype="float64")
    r = np.asarray(z_reference, dtype="float64")
    y = np.asarray(y_reference)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"z_query and z_reference must be (n, dim) and (m, dim), got {q.shape} and {r.shape}")
    if y.shape != (r.shape[0],) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"y_reference must be {r.shape[0]} integer labels >= 0, got {y!r}")
    num_classes = int(y.max()) + 1 if num_classes is None else check_int(num_classes, "num_classes", minimum=1)
    counts = np.bincount(y, minlength=num_classes)
    if len(counts) > num_classes or np.any(counts[:num_classes] == 0):
        raise ValueError(f"y_reference must have at least one example of each of {num_classes} classes, "
                         f"got counts {counts.tolist()}")
    protos = np.stack([r[y == c].mean(axis=0) for c in range(num_classes)])
    protos /= np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    return (q @ protos.T).argmax(axis=1)
