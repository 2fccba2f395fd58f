"""Tests of mmtutor.privacy: FedAvg, DP-SGD, the RDP accountant, the membership attack."""

from math import comb, exp, log

import numpy as np
import pytest

from mmtutor import privacy as pv
from mmtutor.metrics import roc_auc


# ------------------------------------------------------------------ federated_average

def _client(rng, scale=1.0):
    return [scale * rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32"),
            np.array(rng.normal(), dtype="float32")]


def test_federated_average_matches_numpy_weighted_mean():
    rng = np.random.default_rng(0)
    clients = [_client(rng) for _ in range(3)]
    sizes = [100, 30, 7]
    out = pv.federated_average(clients, sizes)
    for i in range(3):
        stacked = np.stack([c[i] for c in clients]).astype("float64")
        expected = np.average(stacked, axis=0, weights=sizes)
        np.testing.assert_allclose(out[i], expected, rtol=1e-6)
        assert out[i].dtype == np.float32 and out[i].shape == clients[0][i].shape


def test_federated_average_of_identical_models_is_identity():
    rng = np.random.default_rng(1)
    model = _client(rng)
    out = pv.federated_average([model, [w.copy() for w in model], [w.copy() for w in model]], [5, 1, 9])
    for a, b in zip(out, model):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_federated_average_equal_sizes_is_plain_mean_and_zero_size_is_ignored():
    rng = np.random.default_rng(2)
    a, b, c = _client(rng), _client(rng), _client(rng, scale=100.0)
    equal = pv.federated_average([a, b], [4, 4])
    np.testing.assert_allclose(equal[0], (a[0] + b[0]) / 2, rtol=1e-6)
    ignored = pv.federated_average([a, b, c], [4, 4, 0])
    np.testing.assert_allclose(ignored[0], equal[0], rtol=1e-6)


def test_federated_average_with_keras_weights():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    w = model.get_weights()
    model.set_weights(pv.federated_average([w, w], [1, 2]))
    for a, b in zip(model.get_weights(), w):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("weights, sizes, error, match", [
    ("abc", [1], TypeError, "weights"),
    ([], [], ValueError, "empty"),
    ([np.zeros(3)], [1], TypeError, r"weights\[0\]"),
    ([[np.zeros(2)], [np.zeros(3)]], [1, 1], ValueError, "shape"),
    ([[np.zeros(2)], [np.zeros(2), np.zeros(1)]], [1, 1], ValueError, "weight arrays"),
    ([[np.zeros(2)]], [1, 2], ValueError, "sizes has 2"),
    ([[np.zeros(2)]], [-1], ValueError, "sizes"),
    ([[np.zeros(2)]], [0], ValueError, "all be zero"),
    ([[np.zeros(2)]], ["3"], TypeError, "sizes"),
    ([[np.zeros(2)]], [True], TypeError, "sizes"),
])
def test_federated_average_rejects_bad_input(weights, sizes, error, match):
    with pytest.raises(error, match=match):
        pv.federated_average(weights, sizes)


# ------------------------------------------------------------------ clipping and noise

def test_clip_per_example_matches_numpy():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(50, 7)) * rng.uniform(0.1, 5, size=(50, 1))
    clipped, norms = pv.clip_per_example(g, 1.5)
    for i in range(len(g)):
        n = np.sqrt((g[i] ** 2).sum())
        assert norms[i] == pytest.approx(n)
        expected = g[i] if n <= 1.5 else g[i] * 1.5 / n
        np.testing.assert_allclose(clipped[i], expected, rtol=1e-12)
    assert np.all(np.linalg.norm(clipped, axis=1) <= 1.5 + 1e-12)


def test_clip_per_example_bounds_each_example_but_batch_clipping_does_not():
    # One outlier dominates the batch sum; per-example clipping caps its share at C.
    g = np.vstack([np.full((9, 2), 0.01), [[100.0, 0.0]]])
    clipped, _ = pv.clip_per_example(g, 1.0)
    with_outlier = clipped.sum(axis=0)
    without = clipped[:-1].sum(axis=0)
    assert np.linalg.norm(with_outlier - without) <= 1.0 + 1e-12
    batch = g.sum(axis=0)
    batch_clipped = batch * min(1, 1.0 / np.linalg.norm(batch))
    rest = g[:-1].sum(axis=0)
    rest_clipped = rest * min(1, 1.0 / np.linalg.norm(rest))
    # Clipping the sum still leaves the outlier deciding the direction of the update.
    assert batch_clipped[0] / np.linalg.norm(batch_clipped) > 0.99
    assert rest_clipped[0] / np.linalg.norm(rest_clipped) < 0.75


def test_privatize_gradients_noise_scale_and_mean():
    g = np.ones((10, 4)) * 0.1
    rng = np.random.default_rng(4)
    draws = np.array([pv.privatize_gradients(g, 1.0, 2.0, rng, denominator=10.0) for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(axis=0), 0.1, atol=0.02)
    np.testing.assert_allclose(draws.std(axis=0), 2.0 * 1.0 / 10.0, rtol=0.05)
    exact = pv.privatize_gradients(g, 1.0, 0.0, rng)
    np.testing.assert_allclose(exact, 0.1)
    empty = pv.privatize_gradients(np.zeros((0, 4)), 1.0, 1.0, rng, denominator=5.0)
    assert empty.shape == (4,)


def test_privatize_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="clip_norm"):
        pv.privatize_gradients(np.ones((2, 2)), 0.0, 1.0, rng)
    with pytest.raises(ValueError, match="noise_multiplier"):
        pv.privatize_gradients(np.ones((2, 2)), 1.0, -1.0, rng)
    with pytest.raises(TypeError, match="rng"):
        pv.privatize_gradients(np.ones((2, 2)), 1.0, 1.0, 0)
    with pytest.raises(ValueError, match="2-D"):
        pv.clip_per_example(np.ones(3), 1.0)
    with pytest.raises(ValueError, match="finite"):
        pv.clip_per_example([[np.nan, 1.0]], 1.0)


# ------------------------------------------------------------------ logistic DP-SGD

def test_logistic_gradients_match_finite_differences():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    w = rng.normal(size=4)
    grads = pv.logistic_gradients(w, X, y)

    def loss(w_, i):
        p = pv.predict_logistic(w_, X[i:i + 1])[0]
        return -(y[i] * log(p) + (1 - y[i]) * log(1 - p))

    for i in range(len(X)):
        for j in range(4):
            e = np.zeros(4)
            e[j] = 1e-6
            numeric = (loss(w + e, i) - loss(w - e, i)) / 2e-6
            assert grads[i, j] == pytest.approx(numeric, abs=1e-6)


def _toy(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    logits = 2.0 * X[:, 0] - 1.0 * X[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(int)
    return X, y


def test_dp_sgd_logistic_learns_and_noise_costs_accuracy():
    X, y = _toy()
    plain = pv.dp_sgd_logistic(X, y, noise_multiplier=0.0, clip_norm=None, epochs=10, lr=0.5)
    assert roc_auc(y, pv.predict_logistic(plain.weights, X)) > 0.8
    assert plain.weights[0] > 1.0 and plain.weights[1] < -0.4
    aucs = [np.mean([roc_auc(y, pv.predict_logistic(
        pv.dp_sgd_logistic(X, y, noise_multiplier=s, clip_norm=1.0, epochs=10, lr=0.5, seed=k).weights, X))
        for k in range(5)]) for s in (0.5, 1000.0)]
    assert aucs[0] > aucs[1] + 0.1
    assert plain.steps == round(10 / (64 / 600)) and plain.sample_rate == pytest.approx(64 / 600)


def test_dp_sgd_logistic_is_deterministic_and_large_clip_without_noise_is_plain_sgd():
    X, y = _toy()
    a = pv.dp_sgd_logistic(X, y, noise_multiplier=1.0, clip_norm=1.0, epochs=2, seed=3)
    b = pv.dp_sgd_logistic(X, y, noise_multiplier=1.0, clip_norm=1.0, epochs=2, seed=3)
    np.testing.assert_array_equal(a.weights, b.weights)
    plain = pv.dp_sgd_logistic(X, y, noise_multiplier=0.0, clip_norm=None, epochs=2, seed=3)
    huge = pv.dp_sgd_logistic(X, y, noise_multiplier=0.0, clip_norm=1e9, epochs=2, seed=3)
    np.testing.assert_allclose(plain.weights, huge.weights, rtol=1e-10)


def test_dp_sgd_logistic_rejects_bad_input():
    X, y = _toy(50)
    with pytest.raises(ValueError, match="batch_size"):
        pv.dp_sgd_logistic(X, y, noise_multiplier=1.0, clip_norm=1.0)
    X, y = _toy(200)
    with pytest.raises(ValueError, match="noise_multiplier must be 0"):
        pv.dp_sgd_logistic(X, y, noise_multiplier=1.0, clip_norm=None)
    with pytest.raises(ValueError, match="batch_size"):
        pv.dp_sgd_logistic(X, y, noise_multiplier=1.0, clip_norm=1.0, batch_size=201)
    with pytest.raises(ValueError, match="0/1"):
        pv.dp_sgd_logistic(X, y + 1, noise_multiplier=1.0, clip_norm=1.0)
    with pytest.raises(ValueError, match="one label per row"):
        pv.dp_sgd_logistic(X, y[:-1], noise_multiplier=1.0, clip_norm=1.0)
    with pytest.raises(TypeError, match="seed"):
        pv.dp_sgd_logistic(X, y, noise_multiplier=1.0, clip_norm=1.0, seed=1.5)
    with pytest.raises(ValueError, match="weights must have shape"):
        pv.predict_logistic(np.zeros(3), X)


# ------------------------------------------------------------------ accountant

def test_rdp_without_sampling_is_the_gaussian_closed_form():
    orders = [2, 3, 8, 32]
    sigma, steps = 1.7, 25
    rdp = steps * pv.rdp_sampled_gaussian(1.0, sigma, orders)
    np.testing.assert_allclose(rdp, [a / (2 * sigma ** 2) * steps for a in orders], rtol=1e-12)


def test_rdp_integer_formula_matches_direct_sum():
    q, sigma, alpha = 0.1, 1.3, 5
    direct = sum(comb(alpha, k) * (1 - q) ** (alpha - k) * q ** k * exp((k * k - k) / (2 * sigma ** 2))
                 for k in range(alpha + 1))
    assert pv.rdp_sampled_gaussian(q, sigma, [alpha])[0] == pytest.approx(log(direct) / (alpha - 1), rel=1e-12)


@pytest.mark.parametrize("q, sigma, steps, expected", [
    # Reference values: dp_accounting 0.6.0, RdpAccountant with PoissonSampledDpEvent(q, GaussianDpEvent(sigma)),
    # orders (2, 4, 8, 16, 32), composed `steps` times.
    (0.01, 1.0, 1000, [0.17181342207455164, 0.3631540489107668, 0.893643907606041, 3087.8507836962453,
                       11246.275937048073]),
    (0.05, 2.0, 500, [0.35490578293746505, 0.73128160647481, 1.5607633211504746, 3.6736570515891467,
                      458.1848047807873]),
])
def test_rdp_matches_reference_accountant(q, sigma, steps, expected):
    rdp = steps * pv.rdp_sampled_gaussian(q, sigma, [2, 4, 8, 16, 32])
    np.testing.assert_allclose(rdp, expected, rtol=1e-8)


def test_epsilon_properties():
    q, delta = 0.02, 1e-5
    eps = [pv.dp_sgd_epsilon(q, 1.0, t, delta) for t in (10, 100, 1000, 5000)]
    assert all(a < b for a, b in zip(eps, eps[1:]))  # more steps, more privacy spent
    by_sigma = [pv.dp_sgd_epsilon(q, s, 1000, delta) for s in (0.7, 1.0, 2.0, 8.0, 64.0)]
    assert all(a > b for a, b in zip(by_sigma, by_sigma[1:]))  # more noise, less spent
    assert by_sigma[-1] < 0.1
    assert pv.dp_sgd_epsilon(q / 2, 1.0, 1000, delta) < pv.dp_sgd_epsilon(q, 1.0, 1000, delta)
    assert pv.dp_sgd_epsilon(q, 0.0, 10, delta) == np.inf
    assert pv.dp_sgd_epsilon(q, 1.0, 0, delta) == pytest.approx(np.log(1 / delta) / 255)


def test_epsilon_from_rdp_closed_form_gaussian():
    # One Gaussian mechanism: eps(alpha) = alpha/(2 s^2) + log(1/delta)/(alpha-1), minimised over alpha.
    sigma, delta = 3.0, 1e-5
    orders = list(range(2, 200))
    eps, order = pv.epsilon_from_rdp(pv.rdp_sampled_gaussian(1.0, sigma, orders), orders, delta)
    brute = min(a / (2 * sigma ** 2) + log(1 / delta) / (a - 1) for a in orders)
    assert eps == pytest.approx(brute)
    assert order == min(orders, key=lambda a: a / (2 * sigma ** 2) + log(1 / delta) / (a - 1))


def test_accountant_rejects_bad_input():
    with pytest.raises(ValueError, match="sample_rate"):
        pv.rdp_sampled_gaussian(1.5, 1.0, [2])
    with pytest.raises(ValueError, match="orders"):
        pv.rdp_sampled_gaussian(0.1, 1.0, [1])
    with pytest.raises(TypeError, match="orders"):
        pv.rdp_sampled_gaussian(0.1, 1.0, [2.5])
    with pytest.raises(ValueError, match="delta"):
        pv.dp_sgd_epsilon(0.1, 1.0, 10, 0.0)
    with pytest.raises(ValueError, match="one value per order"):
        pv.epsilon_from_rdp([0.1], [2, 3], 1e-5)
    with pytest.raises(TypeError, match="steps"):
        pv.dp_sgd_epsilon(0.1, 1.0, 10.0, 1e-5)


# ------------------------------------------------------------------ membership inference

def test_per_example_loss_matches_numpy():
    y = np.array([0, 1, 1, 0])
    p = np.array([0.2, 0.9, 0.5, 0.0])
    expected = -(y * np.log(np.clip(p, 1e-7, 1 - 1e-7)) + (1 - y) * np.log(1 - np.clip(p, 1e-7, 1 - 1e-7)))
    np.testing.assert_allclose(pv.per_example_loss(y, p), expected)
    with pytest.raises(ValueError, match="probabilities"):
        pv.per_example_loss(y, p + 1)
    with pytest.raises(ValueError, match="same length"):
        pv.per_example_loss(y, p[:2])


def test_membership_attack_auc_matches_pairwise_probability():
    rng = np.random.default_rng(6)
    members = rng.exponential(0.5, size=40)
    others = rng.exponential(1.0, size=30)
    pairs = (members[:, None] < others[None, :]).mean() + 0.5 * (members[:, None] == others[None, :]).mean()
    assert pv.membership_attack_auc(members, others) == pytest.approx(pairs)
    same = rng.exponential(1.0, size=(2, 4000))
    assert abs(pv.membership_attack_auc(same[0], same[1]) - 0.5) < 0.03
    assert pv.membership_attack_auc([1.0, 1.0], [1.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="loss_members is empty"):
        pv.membership_attack_auc([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        pv.membership_attack_auc([np.inf], [1.0])
