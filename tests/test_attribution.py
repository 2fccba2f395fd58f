"""Tests for mmtutor.attribution: Shapley values, occlusion, integrated gradients, deletion."""

from itertools import permutations

import keras
import numpy as np
import pytest

from mmtutor.attribution import (
    class_score,
    deletion_effect,
    integrated_gradients,
    modality_occlusion,
    modality_shapley,
    shapley_values,
    subset_masks,
    top_fraction_mask,
)
from mmtutor.models.fusion_model import build_fusion_model
from mmtutor.utils import set_seed


def _brute_force_shapley(v, m):
    """Average marginal contribution over all M! orders (the definition)."""
    phi = np.zeros(m)
    orders = list(permutations(range(m)))
    for order in orders:
        s = 0
        for i in order:
            phi[i] += v[s | 1 << i] - v[s]
            s |= 1 << i
    return phi / len(orders)


def test_subset_masks_bits():
    masks = subset_masks(3)
    assert masks.shape == (8, 3)
    assert masks[0].sum() == 0 and masks[-1].sum() == 3
    for s, row in enumerate(masks):
        assert int(sum(int(b) << i for i, b in enumerate(row))) == s


def test_shapley_hand_computed_game():
    # Three players: v = 10 * [0 in S] + 6 * [1 and 2 both in S]; player 0 alone is worth 10,
    # players 1 and 2 are symmetric and share the 6 their pair earns.
    v = np.array([10.0 * (s & 1 != 0) + 6.0 * ((s & 6) == 6) for s in range(8)])
    phi = shapley_values(v)
    np.testing.assert_allclose(phi, [10.0, 3.0, 3.0])
    assert abs(phi.sum() - (v[-1] - v[0])) < 1e-12  # efficiency


def test_shapley_null_player_and_symmetry():
    # Player 2 adds nothing to any coalition; players 0 and 1 are interchangeable.
    base = {0: 1.0, 1: 4.0, 2: 4.0, 3: 9.0}
    v = np.array([base[s & 3] for s in range(8)])
    phi = shapley_values(v)
    assert abs(phi[2]) < 1e-12
    assert abs(phi[0] - phi[1]) < 1e-12
    assert abs(phi.sum() - (v[-1] - v[0])) < 1e-12


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_shapley_matches_brute_force(m):
    rng = np.random.default_rng(m)
    v = rng.normal(size=2 ** m)
    np.testing.assert_allclose(shapley_values(v), _brute_force_shapley(v, m), atol=1e-12)
    many = rng.normal(size=(2 ** m, 5))
    phi = shapley_values(many)
    assert phi.shape == (5, m)
    for j in range(5):
        np.testing.assert_allclose(phi[j], _brute_force_shapley(many[:, j], m), atol=1e-12)


def test_shapley_callable():
    phi = shapley_values(lambda row: float(row @ np.array([1.0, 2.0, 3.0])), num_players=3)
    np.testing.assert_allclose(phi, [1.0, 2.0, 3.0])  # an additive game pays each its own worth


def test_shapley_bad_input():
    with pytest.raises(ValueError, match="2\\*\\*M"):
        shapley_values(np.zeros(6))
    with pytest.raises(ValueError, match="num_players"):
        shapley_values(lambda row: 0.0)
    with pytest.raises(ValueError, match="finite"):
        shapley_values([0.0, np.nan])
    with pytest.raises(ValueError, match="num_players"):
        shapley_values(np.zeros(8), num_players=2)


def test_class_score():
    p = np.array([0.9, 0.2])
    np.testing.assert_allclose(class_score(p, [1, 0], "probability"), [0.9, 0.8])
    np.testing.assert_allclose(class_score(p, 1), np.log(p / (1 - p)))
    soft = np.array([[0.2, 0.5, 0.3]])
    np.testing.assert_allclose(class_score(soft, 1, "probability"), [0.5])
    with pytest.raises(ValueError, match="target"):
        class_score(p, 2)
    with pytest.raises(ValueError, match="value"):
        class_score(p, 1, "logit")


def _small_fusion_model(seed=0):
    set_seed(seed)

    def encoder(n, name):
        x = keras.Input((n,))
        return keras.Model(x, keras.layers.Dense(4, activation="tanh")(x), name=name)

    encoders = {"a": encoder(3, "enc_a"), "b": encoder(2, "enc_b"), "c": encoder(5, "enc_c")}
    return build_fusion_model(encoders, "concat", 2, hidden=8, dropout=0.0)


def _small_inputs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(n, 3)).astype("float32"), "b": rng.normal(size=(n, 2)).astype("float32"),
            "c": rng.normal(size=(n, 5)).astype("float32")}


def test_modality_shapley_on_a_model():
    model = _small_fusion_model()
    x = _small_inputs()
    res = modality_shapley(model, x)
    assert res["phi"].shape == (6, 3)
    np.testing.assert_allclose(res["phi"].sum(axis=1), res["full"] - res["empty"], atol=1e-9)
    # Coalition values agree with the model's own predictions through the mask.
    row = np.array([[1.0, 0.0, 1.0]], "float32")
    p = model.predict({**x, "mask": np.repeat(row, 6, 0)}, verbose=0)
    np.testing.assert_allclose(res["values"][5], class_score(p, res["target"]), atol=1e-5)
    # Brute force from the same coalition values.
    for j in range(6):
        np.testing.assert_allclose(res["phi"][j], _brute_force_shapley(res["values"][:, j], 3), atol=1e-9)


def test_missing_modality_is_a_null_player():
    model = _small_fusion_model()
    x = _small_inputs()
    mask = np.ones((6, 3), "float32")
    mask[:, 1] = 0.0  # modality b is missing from every sample
    x_other_b = {**x, "b": x["b"] + 100.0}
    res = modality_shapley(model, {**x, "mask": mask})
    assert np.abs(res["phi"][:, 1]).max() < 1e-12
    occ = modality_occlusion(model, {**x_other_b, "mask": mask})
    assert np.abs(occ[:, 1]).max() < 1e-12
    # Whatever is passed for the missing modality changes nothing.
    res2 = modality_shapley(model, {**x_other_b, "mask": mask})
    np.testing.assert_allclose(res["phi"], res2["phi"], atol=1e-6)


def test_occlusion_is_full_minus_leave_one_out():
    model = _small_fusion_model()
    x = _small_inputs()
    res = modality_shapley(model, x, value="probability")
    occ = modality_occlusion(model, x, value="probability", target=res["target"])
    # Leave-one-out of player i: v(all) - v(all without i), i.e. rows 7 - (7 minus bit i).
    for i in range(3):
        np.testing.assert_allclose(occ[:, i], res["values"][7] - res["values"][7 & ~(1 << i)], atol=1e-6)


def _linear_model(w, b):
    x = keras.Input((len(w),), name="x")
    dense = keras.layers.Dense(1, activation="sigmoid")
    out = dense(x)
    model = keras.Model({"x": x}, out)
    dense.set_weights([np.asarray(w, "float32")[:, None], np.array([b], "float32")])
    return model


def test_ig_linear_model_is_analytic():
    w = np.array([0.5, -1.0, 2.0, 0.0])
    model = _linear_model(w, 0.3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4)).astype("float32")
    base = rng.normal(size=4).astype("float32")
    # The log-odds of class 1 is w.x + b: its gradient is w everywhere, so IG = (x - x') * w.
    ig = integrated_gradients(model, {"x": x}, {"x": base}, target=1, steps=4, value="logodds")
    np.testing.assert_allclose(ig["x"], (x - base) * w, rtol=1e-4, atol=1e-5)
    # For class 0 the log-odds is the negative.
    ig0 = integrated_gradients(model, {"x": x}, {"x": base}, target=0, steps=4, value="logodds")
    np.testing.assert_allclose(ig0["x"], -(x - base) * w, rtol=1e-4, atol=1e-5)


def test_ig_completeness_on_a_small_network():
    set_seed(0)
    img = keras.Input((6, 6, 1), name="img")
    aud = keras.Input((4,), name="aud")
    h = keras.layers.Flatten()(keras.layers.Conv2D(3, 3, activation="relu")(img))
    h = keras.layers.Concatenate()([h, keras.layers.Dense(3, activation="tanh")(aud)])
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(8, activation="relu")(h))
    model = keras.Model({"img": img, "aud": aud}, out)
    rng = np.random.default_rng(2)
    x = {"img": rng.normal(size=(4, 6, 6, 1)).astype("float32"), "aud": rng.normal(size=(4, 4)).astype("float32")}
    base = {"img": np.zeros((6, 6, 1), "float32"), "aud": np.zeros(4, "float32")}
    ig = integrated_gradients(model, x, base, target=1, steps=256, value="probability", batch_size=100)
    p = model.predict(x, verbose=0)[:, 0]
    p0 = model.predict({k: np.broadcast_to(v, x[k].shape) for k, v in base.items()}, verbose=0)[:, 0]
    np.testing.assert_allclose(ig["f_input"], p, atol=1e-5)
    np.testing.assert_allclose(ig["f_baseline"], p0, atol=1e-5)
    total = ig["img"].reshape(4, -1).sum(1) + ig["aud"].sum(1)
    np.testing.assert_allclose(total, p - p0, atol=2e-3)
    # Only one input on the path: completeness against the baseline of that input alone.
    ig_img = integrated_gradients(model, x, {"img": base["img"]}, target=1, steps=256, batch_size=100)
    p_img0 = model.predict({**x, "img": np.zeros_like(x["img"])}, verbose=0)[:, 0]
    np.testing.assert_allclose(ig_img["img"].reshape(4, -1).sum(1), p - p_img0, atol=2e-3)
    assert "aud" not in ig_img


def test_ig_at_the_baseline_is_zero_and_errors():
    model = _linear_model([1.0, 2.0], 0.0)
    x = np.ones((2, 2), "float32")
    ig = integrated_gradients(model, {"x": x}, {"x": x}, target=1, steps=2)
    assert np.abs(ig["x"]).max() == 0.0
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(model, {"x": x}, {"y": x}, target=1)
    with pytest.raises(ValueError, match="shape"):
        integrated_gradients(model, {"x": x}, {"x": np.zeros(3)}, target=1)
    with pytest.raises(ValueError, match="steps"):
        integrated_gradients(model, {"x": x}, {"x": x}, target=1, steps=0)
    with pytest.raises(TypeError, match="inputs"):
        integrated_gradients(model, x, {"x": x}, target=1)
    with pytest.raises(ValueError, match="target"):
        integrated_gradients(model, {"x": x}, {"x": x}, target=3)


def test_ig_other_backend_raises(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    model = _linear_model([1.0], 0.0)
    with pytest.raises(RuntimeError, match="TensorFlow"):
        integrated_gradients(model, {"x": np.ones((1, 1))}, {"x": np.zeros(1)}, target=1)


def test_top_fraction_mask():
    s = np.array([[0.1, 0.9, 0.5, 0.3], [4.0, 3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(top_fraction_mask(s, 0.5), [[False, True, True, False], [True, True, False, False]])
    r = top_fraction_mask(np.zeros((50, 20)), 0.25, rng=np.random.default_rng(0))
    assert (r.sum(1) == 5).all() and r.mean(0).min() > 0.05  # random positions, 5 per row
    with pytest.raises(ValueError, match="fraction"):
        top_fraction_mask(s, 0.0)
    with pytest.raises(TypeError, match="rng"):
        top_fraction_mask(s, 0.5, rng=0)


def test_deletion_effect_linear():
    w = np.array([3.0, 0.0, -1.0])
    model = _linear_model(w, 0.0)
    x = np.array([[1.0, 1.0, 1.0]], "float32")
    remove = np.array([[True, False, False]])
    # Log-odds of class 1 goes from 2 to -1 when x_0 is blanked to 0: a drop of 3.
    d = deletion_effect(model, {"x": x}, "x", remove, np.zeros(3), target=1)
    np.testing.assert_allclose(d, [3.0], atol=1e-4)
    d_null = deletion_effect(model, {"x": x}, "x", np.array([[False, True, False]]), np.zeros(3), target=1)
    np.testing.assert_allclose(d_null, [0.0], atol=1e-5)
    with pytest.raises(TypeError, match="boolean"):
        deletion_effect(model, {"x": x}, "x", np.ones((1, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="key"):
        deletion_effect(model, {"x": x}, "z", remove, np.zeros(3))
