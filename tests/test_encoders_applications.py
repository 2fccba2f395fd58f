"""Tests for the encoders of the chapter on applications: tabular_encoder, point_set_encoder."""

import numpy as np
import pytest

import mmtutor  # noqa: F401  (quiet TensorFlow start-up)
import keras
from mmtutor.models import build_fusion_model, point_set_encoder, tabular_encoder
from mmtutor.models.encoders import MissingIndicator


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _roundtrip(model, x, tmp_path):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(_np(loaded(x, training=False)), _np(model(x, training=False)),
                               rtol=0, atol=1e-6)


def test_tabular_shapes_and_roundtrip(tmp_path):
    model = tabular_encoder(5, units=(8,), dim=4)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    assert _np(model(x)).shape == (3, 4)
    _roundtrip(model, x, tmp_path)


def test_tabular_with_statistics_and_missing_values(tmp_path):
    model = tabular_encoder(3, units=(8,), dim=4, mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0],
                            missing=True, name="labs_encoder")
    x = np.array([[1.0, np.nan, 3.0], [2.0, 2.0, np.nan]], dtype="float32")
    out = _np(model(x, training=False))
    assert out.shape == (2, 4) and np.all(np.isfinite(out))
    _roundtrip(model, x, tmp_path)


def test_tabular_missing_with_batch_normalisation_is_finite():
    model = tabular_encoder(3, units=(), dim=4, missing=True)
    x = np.array([[1.0, np.nan, 3.0], [2.0, 2.0, np.nan]], dtype="float32")
    assert np.all(np.isfinite(_np(model(x, training=True))))


def test_missing_indicator():
    x = np.array([[1.5, np.nan]], dtype="float32")
    assert _np(MissingIndicator()(x)).tolist() == [[1.5, 0.0, 0.0, 1.0]]


def test_point_set_is_order_invariant_and_roundtrips(tmp_path):
    model = point_set_encoder((16, 3), units=(8, 8), dim=4)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16, 3)).astype("float32")
    perm = x[:, rng.permutation(16)]
    np.testing.assert_allclose(_np(model(x, training=False)), _np(model(perm, training=False)),
                               atol=1e-6)
    _roundtrip(model, x, tmp_path)


def _relu(x):
    return np.maximum(x, 0.0)


def test_point_set_encoder_agrees_with_numpy_pointnet():
    """Shared per-point MLP, max over the points, ReLU projection: written out in NumPy."""
    model = point_set_encoder((12, 3), units=(8, 5), dim=4)
    x = np.random.default_rng(1).normal(size=(3, 12, 3)).astype("float32")
    h = x.astype("float64")
    for layer in ("point_dense1", "point_dense2"):
        w, b = model.get_layer(layer).get_weights()
        h = _relu(h @ w + b)  # the same weights for every point
    w, b = model.get_layer("projection").get_weights()
    expected = _relu(h.max(axis=1) @ w + b)
    np.testing.assert_allclose(_np(model(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_tabular_encoder_agrees_with_numpy():
    """Normalise with the given statistics, mean + flag for a NaN, MLP, ReLU projection."""
    mean, variance = np.array([1.0, -2.0, 10.0]), np.array([4.0, 1.0, 25.0])
    model = tabular_encoder(3, units=(6,), dim=4, mean=mean, variance=variance, missing=True)
    x = np.array([[3.0, np.nan, 0.0], [1.0, -1.0, np.nan]], dtype="float32")
    z = (x - mean) / np.sqrt(variance)
    flags = np.isnan(z)
    h = np.concatenate([np.where(flags, 0.0, z), flags.astype(float)], axis=1)
    for layer in ("dense1", "projection"):
        w, b = model.get_layer(layer).get_weights()
        h = _relu(h @ w + b)
    np.testing.assert_allclose(_np(model(x, training=False)), h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_features=(4,)), "num_features must be a positive int"),
    (dict(num_features=4, units=32), "units must be a sequence"),
    (dict(num_features=4, mean=[0.0] * 4), "give both mean and variance"),
    (dict(num_features=2, mean=[0.0, 0.0], variance=[1.0]), "variance must be 2 finite numbers"),
    (dict(num_features=2, mean=[0.0, 0.0], variance=[1.0, 0.0]), "variance must be positive"),
    (dict(num_features=2, dim=0), "dim"),
])
def test_tabular_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tabular_encoder(**kwargs)


@pytest.mark.parametrize("shape, match", [
    (3, "input_shape must be a tuple"),
    ((None, 16, 3), "leave out the batch axis"),
    ((16,), "input_shape must be a tuple"),
])
def test_point_set_bad_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        point_set_encoder(shape)


def test_point_set_bad_units():
    with pytest.raises(ValueError, match="at least one"):
        point_set_encoder((8, 3), units=())


def test_wrong_input_shape_at_call_is_an_error():
    model = point_set_encoder((16, 3), units=(8,), dim=4)
    with pytest.raises(ValueError):
        model(np.zeros((2, 16, 4), dtype="float32"))
    with pytest.raises(ValueError):
        tabular_encoder(4, dim=4)(np.zeros((2, 5), dtype="float32"))


def test_inside_build_fusion_model_with_a_missing_modality(tmp_path):
    encoders = {"labs": tabular_encoder(4, units=(8,), dim=4, missing=True, name="labs_enc"),
                "lidar": point_set_encoder((8, 3), units=(8,), dim=4, name="lidar_enc")}
    model = build_fusion_model(encoders, "gated", num_classes=3, hidden=8)
    rng = np.random.default_rng(0)
    x = {"labs": rng.normal(size=(4, 4)).astype("float32"),
         "lidar": rng.normal(size=(4, 8, 3)).astype("float32")}
    x["labs"][0, 1] = np.nan
    y = np.array([0, 1, 2, 1])
    model.fit(x, y, epochs=1, verbose=0)
    prob = _np(model(x, training=False))
    assert prob.shape == (4, 3) and np.allclose(prob.sum(1), 1, atol=1e-5)
    # A failed sensor (mask 0) does not affect the prediction, whatever its array holds.
    mask = np.array([[1.0, 0.0]] * 4, dtype="float32")
    a = _np(model({**x, "mask": mask}, training=False))
    b = _np(model({**x, "lidar": 100 * x["lidar"], "mask": mask}, training=False))
    np.testing.assert_allclose(a, b, atol=1e-6)
    _roundtrip(model, x, tmp_path)
