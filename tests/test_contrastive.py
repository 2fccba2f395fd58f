"""Tests of mmtutor.contrastive: InfoNCE against NumPy, its limits, retrieval and zero-shot."""

import keras
import numpy as np
import pytest

from mmtutor.contrastive import (InfoNCELoss, build_contrastive_model, info_nce_loss, recall_at_k,
                                 zero_shot_predict)


def numpy_info_nce(a, b, t, normalize=True):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if normalize:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
    s = a @ b.T / t
    n = len(s)
    loss_ab = np.mean([-s[i, i] + np.log(np.exp(s[i]).sum()) for i in range(n)])
    loss_ba = np.mean([-s[j, j] + np.log(np.exp(s[:, j]).sum()) for j in range(n)])
    return (loss_ab + loss_ba) / 2


@pytest.mark.parametrize("t", [0.05, 0.5, 2.0])
@pytest.mark.parametrize("normalize", [True, False])
def test_info_nce_matches_numpy(t, normalize):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(7, 5)).astype("float32"), rng.normal(size=(7, 5)).astype("float32")
    got = float(info_nce_loss(a, b, t, normalize=normalize))
    assert got == pytest.approx(numpy_info_nce(a, b, t, normalize), rel=1e-4)


def test_aligned_pairs_low_temperature_go_to_zero():
    z = np.eye(8, dtype="float32") * 3.0
    assert float(info_nce_loss(z, z, 0.01)) < 1e-6
    assert float(info_nce_loss(z, z, 1.0)) > 0.5  # a temperature of 1 cannot get there


def test_random_pairs_give_log_batch():
    rng = np.random.default_rng(0)
    n = 256
    a, b = rng.normal(size=(n, 512)), rng.normal(size=(n, 512))
    assert float(info_nce_loss(a, b, 1.0)) == pytest.approx(np.log(n), abs=0.02)


def test_loss_is_symmetric():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    assert float(info_nce_loss(a, b)) == pytest.approx(float(info_nce_loss(b, a)), rel=1e-5)


def test_info_nce_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(np.ones((2, 3)), np.ones((2, 3)), 0.0)
    with pytest.raises(TypeError, match="temperature"):
        info_nce_loss(np.ones((2, 3)), np.ones((2, 3)), "0.1")
    with pytest.raises(ValueError, match="same dim"):
        info_nce_loss(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="shape"):
        info_nce_loss(np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="normalize"):
        info_nce_loss(np.ones((2, 3)), np.ones((2, 3)), normalize=1)


def test_keras_loss_splits_halves():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    loss = InfoNCELoss(4, 0.2)
    got = float(loss(np.zeros(5), np.concatenate([a, b], axis=1).astype("float32")))
    assert got == pytest.approx(numpy_info_nce(a, b, 0.2), rel=1e-4)
    assert InfoNCELoss.from_config(loss.get_config()).temperature == 0.2
    with pytest.raises(ValueError, match="dim"):
        InfoNCELoss(0)


def _encoder(n, name):
    x = keras.Input((n,))
    return keras.Model(x, keras.layers.Dense(8, activation="relu")(x), name=name)


def test_contrastive_model_learns_a_shared_factor():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = 512
    shared = rng.normal(size=(n, 2))
    xa = np.c_[shared, rng.normal(size=(n, 3))].astype("float32")
    xb = np.c_[shared @ np.array([[1.0, 0.5], [-0.5, 1.0]]), rng.normal(size=(n, 2))].astype("float32")
    model = build_contrastive_model(_encoder(5, "ea"), _encoder(4, "eb"), names=("a", "b"), dim=8,
                                    temperature=0.1, lr=1e-2)
    before = float(model.evaluate({"a": xa, "b": xb}, np.zeros(n), batch_size=128, verbose=0))
    model.fit({"a": xa, "b": xb}, np.zeros(n), batch_size=128, epochs=15, verbose=0)
    after = float(model.evaluate({"a": xa, "b": xb}, np.zeros(n), batch_size=128, verbose=0))
    assert after < before - 1.0
    za = model.get_layer("a_tower").predict(xa, verbose=0)
    zb = model.get_layer("b_tower").predict(xb, verbose=0)
    assert np.allclose(np.linalg.norm(za, axis=1), 1.0, atol=1e-4)
    assert recall_at_k(za @ zb.T, 5) > 10 * 5 / n


def test_build_contrastive_model_bad_input():
    with pytest.raises(ValueError, match="names"):
        build_contrastive_model(_encoder(3, "x"), _encoder(3, "y"), names=("a", "a"))
    with pytest.raises(TypeError, match="encoders"):
        build_contrastive_model("not a model", _encoder(3, "y"))
    with pytest.raises(ValueError, match="dim"):
        build_contrastive_model(_encoder(3, "x"), _encoder(3, "y"), dim=0)


def numpy_recall(s, k):
    # Expected recall over random tie-breaking, by brute force over many random orders.
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(2000):
        noise = rng.uniform(size=s.shape) * 1e-9
        order = np.argsort(-(s + noise), axis=1)
        hits.append([i in order[i, :k] for i in range(len(s))])
    return np.mean(hits)


def test_recall_at_k_by_hand_and_ties():
    s = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.1], [0.1, 0.1, 0.1]])
    # Query 0: rank 1. Query 1: one better (0.8). Query 2: three tied.
    assert recall_at_k(s, 1) == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert recall_at_k(s, 2) == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert recall_at_k(s, 3) == pytest.approx(1.0)
    assert recall_at_k(s, 1) == pytest.approx(numpy_recall(s, 1), abs=0.02)


def test_recall_chance_and_targets():
    rng = np.random.default_rng(5)
    s = rng.normal(size=(2000, 100))
    assert recall_at_k(s, 5, targets=rng.integers(0, 100, 2000)) == pytest.approx(0.05, abs=0.015)
    s = np.eye(4)[:, [1, 0, 3, 2]]
    assert recall_at_k(s, 1, targets=[1, 0, 3, 2]) == 1.0
    assert recall_at_k(s, 1) == 0.0


def test_recall_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        recall_at_k(np.ones(3), 1)
    with pytest.raises(ValueError, match="k must"):
        recall_at_k(np.eye(3), 0)
    with pytest.raises(TypeError, match="k must"):
        recall_at_k(np.eye(3), 1.5)
    with pytest.raises(ValueError, match="targets"):
        recall_at_k(np.eye(3), 1, targets=[0, 1, 3])
    with pytest.raises(ValueError, match="NaN"):
        recall_at_k(np.full((2, 2), np.nan), 1)


def test_zero_shot_matches_nearest_centroid():
    rng = np.random.default_rng(4)
    ref, y = rng.normal(size=(60, 3)), rng.integers(0, 3, 60)
    q = rng.normal(size=(20, 3))
    protos = np.stack([ref[y == c].mean(0) for c in range(3)])
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    expected = (q / np.linalg.norm(q, axis=1, keepdims=True) @ protos.T).argmax(1)
    assert zero_shot_predict(q, ref, y).tolist() == expected.tolist()


def test_zero_shot_bad_input():
    with pytest.raises(ValueError, match="each of 3 classes"):
        zero_shot_predict(np.ones((2, 2)), np.ones((2, 2)), [0, 2])
    with pytest.raises(ValueError, match="dim"):
        zero_shot_predict(np.ones((2, 2)), np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="y_reference"):
        zero_shot_predict(np.ones((2, 2)), np.ones((2, 2)), [0.0, 1.0])
