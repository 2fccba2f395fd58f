"""Tests of the fusion layers in mmtutor.fusion (chapter on fusion)."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import mmtutor  # noqa: F401  (quiet TensorFlow import)
from mmtutor import fusion as F

DIMS = (3, 5, 4)
BATCH = 6


def pooled(dims=DIMS, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, d)).astype("float32") for d in dims]


def sequences(steps=(4, 6, 3), dims=DIMS, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, t, d)).astype("float32") for t, d in zip(steps, dims)]


# One row per modality pattern, so every row tests a different subset (all present, each
# missing, two missing).
MASK3 = np.array(
    [[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype="float32"
)


def make_layers():
    """One instance of every layer (and mode), with tiny sizes."""
    return {
        "concat": F.ConcatFusion(),
        "concat_dim": F.ConcatFusion(dim=7),
        "late_average": F.LateFusion("average", num_classes=3, hidden=4),
        "late_weighted": F.LateFusion("weighted", num_classes=3, weights=[1.0, 2.0, 0.5]),
        "late_learned": F.LateFusion("learned", num_classes=4),
        "late_vote": F.LateFusion("vote", num_classes=3),
        "late_binary": F.LateFusion("average", num_classes=2),
        "attention": F.CrossModalAttentionFusion(num_heads=2, key_dim=4, dim=8),
        "tensor": F.TensorFusion(),
        "tensor_dim": F.TensorFusion(dim=5),
        "lowrank": F.LowRankFusion(rank=3, dim=5),
        "gated": F.GatedFusion(dim=6),
        "gated_sigmoid": F.GatedFusion(dim=6, gate="sigmoid"),
    }


def expected_width(key, dims=DIMS):
    m = len(dims)
    return {
        "concat": sum(dims) + m,
        "concat_dim": 7,
        "late_average": 3,
        "late_weighted": 3,
        "late_learned": 4,
        "late_vote": 3,
        "late_binary": 1,
        "attention": 8 * m + m,
        "tensor": int(np.prod([d + 1 for d in dims])),
        "tensor_dim": 5,
        "lowrank": 5,
        "gated": 6,
        "gated_sigmoid": 6,
    }[key]


def inputs_for(key, seed=0):
    return sequences(seed=seed) if key == "attention" else pooled(seed=seed)


LAYER_KEYS = list(make_layers())


# ---------------------------------------------------------------------------------------------
# Shapes, masks, serialization
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", LAYER_KEYS)
def test_output_shape_with_and_without_mask(key):
    layer = make_layers()[key]
    xs = inputs_for(key)
    out = keras.ops.convert_to_numpy(layer(xs))
    assert out.shape == (BATCH, expected_width(key))
    assert np.all(np.isfinite(out))
    out_masked = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
    assert out_masked.shape == out.shape
    # Row 0 has every modality present: the same as passing no mask.
    np.testing.assert_allclose(out_masked[0], out[0], atol=1e-6)


@pytest.mark.parametrize("key", LAYER_KEYS)
def test_masked_modality_values_never_reach_the_output(key):
    layer = make_layers()[key]
    xs = inputs_for(key)
    base = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
    rng = np.random.default_rng(1)
    garbage = []
    for m, x in enumerate(xs):
        noisy = x.copy()
        missing = MASK3[:, m] == 0
        noisy[missing] = rng.normal(scale=50.0, size=noisy[missing].shape)
        garbage.append(noisy)
    changed = keras.ops.convert_to_numpy(layer(garbage, modality_mask=MASK3))
    np.testing.assert_array_equal(changed, base)
    # ... while the values of present modalities do matter (the test could fail).
    other = [x + 1.0 for x in xs]
    assert not np.allclose(keras.ops.convert_to_numpy(layer(other, modality_mask=MASK3)), base)


def test_vote_is_masked_at_inference_too():
    layer = F.LateFusion("vote", num_classes=3)
    xs = pooled()
    base = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3, training=False))
    garbage = [x.copy() for x in xs]
    garbage[0][MASK3[:, 0] == 0] = 1e3
    out = keras.ops.convert_to_numpy(layer(garbage, modality_mask=MASK3, training=False))
    np.testing.assert_array_equal(out, base)


@pytest.mark.parametrize("key", LAYER_KEYS)
def test_config_round_trip_gives_the_same_outputs(key):
    layer = make_layers()[key]
    xs = inputs_for(key)
    out = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
    assert type(clone) is type(layer)
    clone(xs, modality_mask=MASK3)  # build
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(clone(xs, modality_mask=MASK3)), out, atol=1e-6
    )


def test_two_modalities_work_for_every_layer():
    for key, layer in make_layers().items():
        xs = inputs_for(key)[:2]
        mask = MASK3[:, :2]
        if key == "late_weighted":
            layer = F.LateFusion("weighted", num_classes=3, weights=[1.0, 3.0])
        out = keras.ops.convert_to_numpy(layer(xs, modality_mask=mask))
        assert out.shape == (BATCH, expected_width(key, DIMS[:2])), key


# ---------------------------------------------------------------------------------------------
# NumPy references computed with the layer's own weights
# ---------------------------------------------------------------------------------------------


def relu(x):
    return np.maximum(x, 0.0)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_concat(xs, mask, kernel=None, bias=None):
    cols = [x * mask[:, m : m + 1] for m, x in enumerate(xs)] + [mask]
    out = np.concatenate(cols, axis=1)
    return out if kernel is None else relu(out @ kernel + bias)


def np_tensor(xs, mask):
    out = np.ones((xs[0].shape[0], 1))
    for m, x in enumerate(xs):
        z = np.concatenate([x * mask[:, m : m + 1], np.ones((x.shape[0], 1))], axis=1)
        out = np.einsum("bi,bj->bij", out, z).reshape(x.shape[0], -1)
    return out


def test_concat_matches_numpy():
    xs = pooled()
    layer = F.ConcatFusion(dim=7)
    out = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
    kernel, bias = layer.projection.get_weights()
    np.testing.assert_allclose(out, np_concat(xs, MASK3, kernel, bias), atol=1e-5)
    plain = keras.ops.convert_to_numpy(F.ConcatFusion()(xs, modality_mask=MASK3))
    np.testing.assert_allclose(plain, np_concat(xs, MASK3), atol=1e-6)


def test_tensor_fusion_matches_numpy_outer_product():
    xs = pooled()
    layer = F.TensorFusion(dim=5)
    out = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
    kernel, bias = layer.projection.get_weights()
    ref = np_tensor(xs, MASK3)
    assert ref.shape[1] == F.tensor_fusion_size(DIMS) == layer.output_size
    np.testing.assert_allclose(out, ref @ kernel + bias, atol=1e-5)
    # A missing modality contributes [0, ..., 0, 1]: row 4 has only modality 0, so its
    # tensor is [z_0; 1] placed in the slots where modalities 1 and 2 take their "1".
    flat = keras.ops.convert_to_numpy(F.TensorFusion()(xs, modality_mask=MASK3))
    cube = flat[4].reshape(DIMS[0] + 1, DIMS[1] + 1, DIMS[2] + 1)
    np.testing.assert_allclose(cube[:, -1, -1], np.append(xs[0][4], 1.0), atol=1e-6)
    assert np.count_nonzero(cube) == np.count_nonzero(cube[:, -1, -1])


def test_lowrank_matches_numpy():
    xs = pooled()
    layer = F.LowRankFusion(rank=3, dim=5)
    out = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
    factors = [keras.ops.convert_to_numpy(f) for f in layer.factors]
    bias = keras.ops.convert_to_numpy(layer.bias)
    prod = np.ones((BATCH, 3, 5))
    for m, (x, w) in enumerate(zip(xs, factors)):
        z = np.concatenate([x * MASK3[:, m : m + 1], np.ones((BATCH, 1))], axis=1)
        prod = prod * np.einsum("bi,rid->brd", z, w)
    np.testing.assert_allclose(out, prod.sum(axis=1) + bias, atol=1e-5)


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_lowrank_equals_tensor_fusion_with_cp_weights(num_modalities):
    xs = pooled()[:num_modalities]
    mask = MASK3[:, :num_modalities]
    lmf = F.LowRankFusion(rank=4, dim=6)
    out = keras.ops.convert_to_numpy(lmf(xs, modality_mask=mask))
    # The same function as TensorFusion followed by a Dense whose weight is the rank-4 CP
    # reconstruction of LMF's factors (built here independently of LowRankFusion.cp_weight).
    factors = [keras.ops.convert_to_numpy(f) for f in lmf.factors]
    sizes = [d + 1 for d in DIMS[:num_modalities]]
    weight = np.zeros(sizes + [6])
    for r in range(4):
        term = factors[0][r]
        for f in factors[1:]:
            term = np.einsum("...d,jd->...jd", term, f[r])
        weight += term
    tfn = F.TensorFusion()
    dense = keras.layers.Dense(6)
    dense.build((None, int(np.prod(sizes))))
    dense.set_weights([weight.reshape(-1, 6), keras.ops.convert_to_numpy(lmf.bias)])
    via_tensor = keras.ops.convert_to_numpy(dense(tfn(xs, modality_mask=mask)))
    np.testing.assert_allclose(out, via_tensor, atol=1e-5)
    np.testing.assert_allclose(lmf.cp_weight(), weight.reshape(-1, 6), atol=1e-5)


def test_gated_matches_numpy_and_zeroes_missing_gates():
    xs = pooled()
    layer = F.GatedFusion(dim=6)
    out = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
    zs = [x * MASK3[:, m : m + 1] for m, x in enumerate(xs)]
    candidates = [c.get_weights() for c in layer.candidates]
    hs = np.stack([np.tanh(z @ k + b) for z, (k, b) in zip(zs, candidates)], axis=1)
    gk, gb = layer.gate.get_weights()
    logits = (np.concatenate(zs + [MASK3], axis=1) @ gk + gb).reshape(BATCH, 3, 6)
    logits = np.where(MASK3[:, :, None] > 0, logits, -np.inf)
    gates = softmax(logits, axis=1)
    np.testing.assert_allclose(out, (gates * hs).sum(axis=1), atol=1e-5)
    g = keras.ops.convert_to_numpy(layer.gates(xs, modality_mask=MASK3))
    np.testing.assert_allclose(g.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(g[MASK3 == 0] == 0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("num_modalities", [2, 3])
def test_sigmoid_gated_matches_the_papers_gmu_in_numpy(num_modalities):
    """gate="sigmoid": z h_1 + (1 - z) h_2 for two modalities, one sigmoid gate each for more."""
    xs = pooled()[:num_modalities]
    mask = MASK3[:, :num_modalities].copy()
    mask[mask.sum(axis=1) == 0, 0] = 1  # keep one modality in every row
    layer = F.GatedFusion(dim=6, gate="sigmoid")
    out = keras.ops.convert_to_numpy(layer(xs, modality_mask=mask))
    zs = [x * mask[:, m : m + 1] for m, x in enumerate(xs)]
    hs = [np.tanh(z @ k + b) for z, (k, b) in zip(zs, (c.get_weights() for c in layer.candidates))]
    gk, gb = layer.gate.get_weights()
    a = np.concatenate(zs + [mask], axis=1) @ gk + gb
    if num_modalities == 2:
        assert gk.shape[1] == 6  # one gate z, not one per modality
        z = sigmoid(a)
        gates = [z * mask[:, :1], (1 - z) * mask[:, 1:2]]
    else:
        g = sigmoid(a.reshape(BATCH, num_modalities, 6))
        gates = [g[:, m] * mask[:, m : m + 1] for m in range(num_modalities)]
    np.testing.assert_allclose(out, sum(g * h for g, h in zip(gates, hs)), atol=1e-5)
    g = keras.ops.convert_to_numpy(layer.gates(xs, modality_mask=mask))
    assert np.all(g[mask == 0] == 0) and np.all((g >= 0) & (g <= 1))


def test_sigmoid_gated_round_trips_through_a_keras_file(tmp_path):
    xs = pooled()
    inputs = [keras.Input((x.shape[1],)) for x in xs]
    mask_in = keras.Input((len(xs),))
    fused = F.GatedFusion(dim=6, gate="sigmoid", name="fusion")(inputs, modality_mask=mask_in)
    model = keras.Model(inputs + [mask_in], keras.layers.Dense(1)(fused))
    path = tmp_path / "gated_sigmoid.keras"
    model.save(path)
    clone = keras.saving.load_model(path)
    assert clone.get_layer("fusion").gate_kind == "sigmoid"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(clone(xs + [MASK3])),
        keras.ops.convert_to_numpy(model(xs + [MASK3])), atol=1e-6,
    )


def test_late_fusion_matches_numpy_for_each_mode():
    xs = pooled()
    probs = [softmax(np.random.default_rng(m).normal(size=(BATCH, 3))) for m in range(3)]
    probs = [p.astype("float32") for p in probs]
    stacked = np.stack(probs, axis=1)
    avg = keras.ops.convert_to_numpy(
        F.LateFusion("average", num_classes=3, use_heads=False)(probs, modality_mask=MASK3)
    )
    ref = (stacked * MASK3[:, :, None]).sum(1) / MASK3.sum(1, keepdims=True)
    np.testing.assert_allclose(avg, ref, atol=1e-6)
    w = np.array([1.0, 2.0, 0.5])
    weighted = keras.ops.convert_to_numpy(
        F.LateFusion("weighted", num_classes=3, weights=w, use_heads=False)(
            probs, modality_mask=MASK3
        )
    )
    ww = MASK3 * w
    ref = (stacked * ww[:, :, None]).sum(1) / ww.sum(1, keepdims=True)
    np.testing.assert_allclose(weighted, ref, atol=1e-6)
    vote_layer = F.LateFusion("vote", num_classes=3, use_heads=False)
    vote = keras.ops.convert_to_numpy(vote_layer(probs, modality_mask=MASK3, training=False))
    votes = np.eye(3)[stacked.argmax(-1)] * MASK3[:, :, None]
    share = votes.sum(1) / MASK3.sum(1, keepdims=True)
    # The winner is the class with most votes (ties broken by the average probability).
    avg_all = (stacked * MASK3[:, :, None]).sum(1) / MASK3.sum(1, keepdims=True)
    np.testing.assert_array_equal(vote.argmax(-1), (share + 1e-3 * avg_all).argmax(-1))
    np.testing.assert_allclose(vote.sum(-1), 1.0, atol=1e-5)
    # In training the vote falls back to the (differentiable) average.
    soft = keras.ops.convert_to_numpy(vote_layer(probs, modality_mask=MASK3, training=True))
    np.testing.assert_allclose(soft, avg_all, atol=1e-6)
    # With heads: the layer's own heads give the per-modality probabilities.
    layer = F.LateFusion("learned", num_classes=3)
    out = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
    heads = [h[0].get_weights() for h in layer.heads]
    head_probs = np.stack([softmax(x @ k + b) for x, (k, b) in zip(xs, heads)], axis=1)
    lw = softmax(keras.ops.convert_to_numpy(layer.modality_logits)) * MASK3
    lw = lw / lw.sum(1, keepdims=True)
    np.testing.assert_allclose(out, (head_probs * lw[:, :, None]).sum(1), atol=1e-5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer.combination_weights(MASK3)), lw, atol=1e-6
    )


def test_binary_late_vote_counts_positive_votes():
    probs = [np.array([[0.9], [0.9], [0.2]], "float32"),
             np.array([[0.8], [0.3], [0.1]], "float32"),
             np.array([[0.1], [0.6], [0.4]], "float32")]
    out = keras.ops.convert_to_numpy(
        F.LateFusion("vote", num_classes=2, use_heads=False)(probs, training=False)
    )
    assert out.shape == (3, 1)
    np.testing.assert_allclose(out[:, 0], [2 / 3, 2 / 3, 0.0], atol=2e-3)


# ---------------------------------------------------------------------------------------------
# Cross-modal attention
# ---------------------------------------------------------------------------------------------


def test_attention_scores_shapes_and_masking():
    xs = sequences()
    layer = F.CrossModalAttentionFusion(num_heads=2, key_dim=4, dim=8)
    _, scores = layer(xs, modality_mask=MASK3, return_attention_scores=True)
    steps = [x.shape[1] for x in xs]
    assert set(scores) == {(i, j) for i in range(3) for j in range(3) if i != j}
    total = {}
    for (i, j), s in scores.items():
        s = keras.ops.convert_to_numpy(s)
        assert s.shape == (BATCH, 2, steps[i], steps[j])
        # No attention at all on a missing modality's steps.
        assert np.all(s[MASK3[:, j] == 0] == 0)
        total[i] = total.get(i, 0) + s.sum(-1)
    for i in range(3):
        # Each query distributes all its attention over the present other modalities.
        others = np.delete(MASK3, i, axis=1).max(axis=1) > 0
        np.testing.assert_allclose(total[i][others], 1.0, atol=1e-5)
    maps = layer.attention_maps(xs, modality_mask=MASK3)
    np.testing.assert_allclose(
        maps[(0, 1)], keras.ops.convert_to_numpy(scores[(0, 1)]), atol=1e-6
    )


def test_attention_ignores_padded_steps_of_keras_masks():
    xs = sequences()
    layer = F.CrossModalAttentionFusion(num_heads=2, key_dim=4, dim=8)
    padding = np.ones((BATCH, xs[1].shape[1]), dtype=bool)
    padding[:, 4:] = False  # the last two steps of modality 1 are padding
    out, scores = layer(xs, mask=[None, padding, None], return_attention_scores=True)
    s01 = keras.ops.convert_to_numpy(scores[(0, 1)])
    assert np.all(s01[..., 4:] == 0) and np.all(s01[..., :4] > 0)
    garbage = [x.copy() for x in xs]
    garbage[1][:, 4:] = 99.0
    out2 = layer(garbage, mask=[None, padding, None])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out2), keras.ops.convert_to_numpy(out),
                               atol=1e-5)


def test_attention_accepts_pooled_inputs_as_length_one_sequences():
    xs = pooled()
    layer = F.CrossModalAttentionFusion(num_heads=2, key_dim=4, dim=8)
    out, scores = layer(xs, return_attention_scores=True)
    assert tuple(out.shape) == (BATCH, 27)
    assert tuple(scores[(0, 1)].shape) == (BATCH, 2, 1, 1)


# ---------------------------------------------------------------------------------------------
# Modality dropout
# ---------------------------------------------------------------------------------------------


def test_modality_dropout_training_only_and_keeps_one():
    layer = F.ModalityDropout(0.6, seed=3)
    mask = np.ones((2000, 3), dtype="float32")
    mask[:500, 0] = 0  # some modalities already missing
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(mask, training=False)), mask)
    out = keras.ops.convert_to_numpy(layer(mask, training=True))
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert np.all(out <= mask)  # never brings a missing modality back
    assert np.all(out.sum(axis=1) >= 1)
    dropped = 1 - out[mask == 1].mean()
    assert 0.45 < dropped < 0.65  # about the rate (a bit less: one is always kept)
    assert not np.array_equal(out, keras.ops.convert_to_numpy(layer(mask, training=True)))


def test_modality_dropout_rejects_bad_rate():
    for rate in (-0.1, 1.0, "0.5", True):
        with pytest.raises(ValueError, match="rate"):
            F.ModalityDropout(rate)


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------


def test_constructor_arguments_are_validated():
    with pytest.raises(ValueError, match="dim must be a positive integer or None, got 0"):
        F.ConcatFusion(dim=0)
    with pytest.raises(ValueError, match="mode must be one of .*'vote'.*got 'max'"):
        F.LateFusion("max")
    with pytest.raises(ValueError, match="needs weights"):
        F.LateFusion("weighted")
    with pytest.raises(ValueError, match="weights must be"):
        F.LateFusion("weighted", weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="only used by"):
        F.LateFusion("average", weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        F.LateFusion(num_classes=1)
    with pytest.raises(ValueError, match="rank must be a positive integer, got 0"):
        F.LowRankFusion(rank=0)
    with pytest.raises(ValueError, match="num_heads"):
        F.CrossModalAttentionFusion(num_heads=2.5)
    with pytest.raises(ValueError, match="gate must be one of .*got 'relu'"):
        F.GatedFusion(gate="relu")


def test_call_inputs_are_validated():
    xs = pooled()
    with pytest.raises(ValueError, match="expects a list of modality tensors"):
        F.ConcatFusion()(xs[0])
    with pytest.raises(ValueError, match=r"modality 1 has shape \(6, 2, 5\); expected rank 2"):
        F.GatedFusion(dim=4)([xs[0], xs[1][:, None, :].repeat(2, axis=1)])
    with pytest.raises(ValueError, match=r"modality_mask must have shape \(batch, 3\)"):
        F.ConcatFusion()(xs, modality_mask=np.ones((BATCH, 2), "float32"))
    with pytest.raises(ValueError, match="needs at least 2 modalities"):
        F.CrossModalAttentionFusion(dim=4)([sequences()[0]])
    with pytest.raises(ValueError, match="got 2 weights for 3 modalities"):
        F.LateFusion("weighted", num_classes=3, weights=[1, 2])(xs)
    with pytest.raises(ValueError, match=r"probabilities of shape \(batch, 3\)"):
        F.LateFusion("average", num_classes=3, use_heads=False)(xs)
    layer = F.ConcatFusion()
    layer(xs)
    with pytest.raises(ValueError, match="built for 3 modalities, got a list of 2"):
        layer(xs[:2])


def test_tensor_fusion_warns_about_its_size():
    with pytest.warns(UserWarning, match="262144 features"):
        F.TensorFusion().build([(None, 63)] * 3)
    assert F.tensor_fusion_size([63, 63, 63]) == 64**3
    with pytest.raises(ValueError, match="each entry of dims"):
        F.tensor_fusion_size([3, 0])


# ---------------------------------------------------------------------------------------------
# Stacking
# ---------------------------------------------------------------------------------------------


def toy_unimodal_predictions(n, seed):
    """Binary labels; modality "good" is right ~85% of the time, "weak" ~62%, "noise" 50%."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)

    def probs(reliability):
        correct = rng.random(n) < reliability
        guess = np.where(correct, y, 1 - y)
        confidence = rng.uniform(0.55, 0.95, n)
        return np.where(guess == 1, confidence, 1 - confidence)

    return {"good": probs(0.85), "weak": probs(0.62), "noise": rng.uniform(0.05, 0.95, n)}, y


def test_stacking_beats_the_worst_modality_and_scores_on_held_out_data():
    val, y_val = toy_unimodal_predictions(400, seed=0)
    test, y_test = toy_unimodal_predictions(400, seed=1)
    stack = F.fit_stacking(val, y_val)
    single = {k: float(np.mean((p > 0.5) == y_test)) for k, p in test.items()}
    acc = stack.score(test, y_test)
    assert acc > min(single.values()) + 0.1
    assert acc >= max(single.values()) - 0.03  # it learns to trust the good modality
    assert stack.predict_proba(test).shape == (400, 2)
    assert stack.modalities_ == ["good", "weak", "noise"]


def test_stacking_is_a_scikit_learn_model_in_its_own_module():
    import mmtutor.stacking as S

    assert F.StackingFusion is S.StackingFusion and F.fit_stacking is S.fit_stacking
    assert not isinstance(S.StackingFusion(), keras.layers.Layer)
    with pytest.raises(TypeError, match="max_iter must be an integer"):
        S.StackingFusion(max_iter=1.5)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        S.StackingFusion(max_iter=0)


def test_stacking_refuses_to_score_on_its_training_predictions():
    val, y_val = toy_unimodal_predictions(200, seed=0)
    stack = F.StackingFusion().fit(val, y_val)
    with pytest.raises(ValueError, match="same predictions it was fitted on"):
        stack.score(val, y_val)
    with pytest.warns(UserWarning, match="same predictions it was fitted on"):
        stack.predict_proba(val)


def test_stacking_multiclass_and_validation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = softmax(np.eye(3)[y] * 2 + rng.normal(size=(300, 3)))
    bad = softmax(rng.normal(size=(300, 3)))
    stack = F.StackingFusion().fit([good[:200], bad[:200]], y[:200])
    assert stack.predict([good[200:], bad[200:]]).shape == (100,)
    assert stack.score([good[200:], bad[200:]], y[200:]) > 0.6
    with pytest.raises(ValueError, match="fitted on 2"):
        stack.predict([good[200:]])
    with pytest.raises(ValueError, match="same number of samples"):
        F.StackingFusion().fit([good[:200], bad[:100]], y[:200])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        F.StackingFusion().fit([good[:200] * 3, bad[:200]], y[:200])
    with pytest.raises(ValueError, match="empty"):
        F.StackingFusion().fit({}, y)
    with pytest.raises(RuntimeError, match="not fitted"):
        F.StackingFusion().predict([good])


# ---------------------------------------------------------------------------------------------
# JAX backend: the same layers, the same numbers
# ---------------------------------------------------------------------------------------------

JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    import mmtutor.fusion  # registers the layers
    assert keras.backend.backend() == "jax", keras.backend.backend()
    data = np.load(sys.argv[1], allow_pickle=False)
    configs = json.loads(open(sys.argv[2]).read())
    for key, config in configs.items():
        layer = keras.saving.deserialize_keras_object(config)
        xs = [data[f"{key}/x{m}"] for m in range(3)]
        mask = data["mask"]
        layer(xs, modality_mask=mask)
        n = sum(1 for name in data.files if name.startswith(f"{key}/w"))
        layer.set_weights([data[f"{key}/w{i}"] for i in range(n)])
        out = keras.ops.convert_to_numpy(layer(xs, modality_mask=mask))
        np.testing.assert_allclose(out, data[f"{key}/out"], atol=1e-4, err_msg=key)
        print("ok", key)
    print("backend", keras.backend.backend())
    """
)


def test_every_layer_runs_on_jax_with_the_same_numbers(tmp_path):
    pytest.importorskip("jax")
    arrays, configs = {"mask": MASK3}, {}
    for key, layer in make_layers().items():
        xs = inputs_for(key)
        out = keras.ops.convert_to_numpy(layer(xs, modality_mask=MASK3))
        configs[key] = keras.saving.serialize_keras_object(layer)
        for m, x in enumerate(xs):
            arrays[f"{key}/x{m}"] = x
        for i, w in enumerate(layer.get_weights()):
            arrays[f"{key}/w{i}"] = w
        arrays[f"{key}/out"] = out
    np.savez(tmp_path / "data.npz", **arrays)
    (tmp_path / "configs.json").write_text(json.dumps(configs))
    (tmp_path / "check.py").write_text(JAX_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "check.py"), str(tmp_path / "data.npz"),
         str(tmp_path / "configs.json")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend jax" in result.stdout
    assert result.stdout.count("ok ") == len(configs)
