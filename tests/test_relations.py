"""mmtutor.relations: cross-correlation, mutual information, CCA — checked against NumPy,
scikit-learn and known answers."""

import numpy as np
import pytest
from sklearn.cross_decomposition import CCA as SklearnCCA
from sklearn.metrics import mutual_info_score

from mmtutor.relations import (
    cca,
    conditional_mutual_information,
    cross_correlation,
    entropy,
    mutual_information,
)

# --------------------------------------------------------------------------------------------
# cross_correlation


def test_cross_correlation_matches_numpy_correlate():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(50), rng.standard_normal(50)
    lags, r = cross_correlation(a, b)
    a0 = (a - a.mean()) / a.std()
    b0 = (b - b.mean()) / b.std()
    # np.correlate(b0, a0, "full")[n - 1 + k] = sum_t a0[t] * b0[t + k]
    expected = np.correlate(b0, a0, mode="full") / 50
    np.testing.assert_array_equal(lags, np.arange(-49, 50))
    np.testing.assert_allclose(r, expected, atol=1e-12)


def test_cross_correlation_lag_zero_is_pearson_and_bounded():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(80)
    b = 0.6 * a + rng.standard_normal(80)
    lags, r = cross_correlation(a, b, max_lag=5)
    assert lags.tolist() == list(range(-5, 6))
    assert r[5] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert np.all(np.abs(r) <= 1)
    lags, r = cross_correlation(a, a, max_lag=3)
    assert r[3] == pytest.approx(1.0)


@pytest.mark.parametrize("delay", [-9, 0, 4, 13])
def test_cross_correlation_recovers_a_delay(delay):
    rng = np.random.default_rng(2)
    source = rng.standard_normal(400)
    a = source[50:350]
    b = source[50 - delay:350 - delay] + 0.3 * rng.standard_normal(300)  # b[t] = a[t - delay] + noise
    lags, r = cross_correlation(a, b, max_lag=20)
    assert lags[np.argmax(r)] == delay
    assert r.max() > 0.8


def test_cross_correlation_is_antisymmetric_in_its_arguments():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(30), rng.standard_normal(30)
    _, r_ab = cross_correlation(a, b, max_lag=6)
    _, r_ba = cross_correlation(b, a, max_lag=6)
    np.testing.assert_allclose(r_ab, r_ba[::-1])


@pytest.mark.parametrize(
    "a, b, max_lag, error, match",
    [
        (np.ones(10), np.arange(10.0), None, ValueError, "a is constant"),
        (np.arange(10.0), np.arange(9.0), None, ValueError, "same length, got 10 and 9"),
        (np.zeros((3, 4)), np.arange(3.0), None, ValueError, "1-D signal"),
        (np.r_[np.arange(5.0), np.nan], np.arange(6.0), None, ValueError, "NaN"),
        (np.arange(10.0), np.arange(10.0), 10, ValueError, r"max_lag must be in \[0, 9\]"),
        (np.arange(10.0), np.arange(10.0), 2.0, TypeError, "max_lag must be an integer"),
        (["a", "b"], np.arange(2.0), None, TypeError, "1-D array of numbers"),
    ],
)
def test_cross_correlation_rejects_bad_input(a, b, max_lag, error, match):
    with pytest.raises(error, match=match):
        cross_correlation(a, b, max_lag)


# --------------------------------------------------------------------------------------------
# entropy and mutual information


def test_mutual_information_matches_sklearn_in_bits():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 4, 500)
    y = (x + rng.integers(0, 3, 500)) % 5
    expected = mutual_info_score(x, y) / np.log(2)
    assert mutual_information(x, y) == pytest.approx(expected, rel=1e-12)
    assert mutual_information(x, y, base=np.e) == pytest.approx(mutual_info_score(x, y), rel=1e-12)
    # Strings and symmetric.
    xs = np.array(["frown", "smile", "smirk", "x"])[x]
    assert mutual_information(y, xs) == pytest.approx(expected, rel=1e-12)


def test_mutual_information_of_a_binary_symmetric_channel():
    # y a fair coin, x = y flipped with probability 0.15: I = 1 - H_b(0.15) bits.
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200_000)
    x = np.where(rng.random(y.size) < 0.85, y, 1 - y)
    h_b = -(0.15 * np.log2(0.15) + 0.85 * np.log2(0.85))
    assert mutual_information(x, y) == pytest.approx(1 - h_b, abs=0.005)
    assert entropy(y) == pytest.approx(1.0, abs=1e-4)


def test_joint_variables_and_synergy_of_xor():
    # label = a XOR b: each input alone tells nothing, together they tell 1 bit.
    rng = np.random.default_rng(6)
    a, b = rng.integers(0, 2, (2, 4000))
    label = a ^ b
    assert mutual_information(a, label) < 0.002
    assert mutual_information(b, label) < 0.002
    assert mutual_information(np.c_[a, b], label) == pytest.approx(1.0, abs=0.002)
    # the 2-D joint variable equals a single variable that codes the pair
    assert mutual_information(np.c_[a, b], label) == pytest.approx(mutual_information(2 * a + b, label))


def test_plug_in_bias_and_miller_madow_correction():
    # Independent variables with 4 and 5 values, n = 300: the plug-in estimate is biased upwards by
    # about (4 - 1)(5 - 1) / (2 n ln 2) bits; Miller-Madow removes most of it.
    rng = np.random.default_rng(7)
    n, trials = 300, 300
    plug, corrected = [], []
    for _ in range(trials):
        x, y = rng.integers(0, 4, n), rng.integers(0, 5, n)
        plug.append(mutual_information(x, y))
        corrected.append(mutual_information(x, y, correction="miller-madow"))
    predicted = 3 * 4 / (2 * n * np.log(2))
    assert np.mean(plug) == pytest.approx(predicted, rel=0.15)
    assert abs(np.mean(corrected)) < 0.15 * predicted
    assert min(plug) >= 0


def test_conditional_mutual_information_removes_a_common_cause():
    # Two cues that each follow the label, independently given it.
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 100_000)
    c1 = np.where(rng.random(y.size) < 0.85, y, 1 - y)
    c2 = np.where(rng.random(y.size) < 0.80, y, 1 - y)
    assert mutual_information(c1, c2) > 0.05
    assert conditional_mutual_information(c1, c2, y) < 0.001
    # chain rule: I(X; Y, Z) = I(X; Z) + I(X; Y | Z)
    chain = mutual_information(c1, y) + conditional_mutual_information(c1, c2, y)
    assert mutual_information(c1, np.c_[c2, y]) == pytest.approx(chain, abs=1e-12)


@pytest.mark.parametrize(
    "x, y, kwargs, error, match",
    [
        (np.array([0.5, 1.0]), [0, 1], {}, ValueError, "x must be discrete"),
        ([0, 1, 1], [0, 1], {}, ValueError, "y has 2 samples but the first variable has 3"),
        ([], [], {}, ValueError, "x is empty"),
        ("abc", [0, 1, 2], {}, TypeError, "single string"),
        ([0, 1], [0, 1], {"base": 1}, ValueError, "base must be a number > 1"),
        ([0, 1], [0, 1], {"correction": "jackknife"}, ValueError, "correction must be one of"),
        (np.zeros((2, 2, 2)), [0, 1], {}, ValueError, "must be 1-D"),
    ],
)
def test_mutual_information_rejects_bad_input(x, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        mutual_information(x, y, **kwargs)


# --------------------------------------------------------------------------------------------
# CCA


def _direct_canonical_correlations(X, Y):
    """sqrt of the eigenvalues of Cxx^-1 Cxy Cyy^-1 Cyx (a different route to the same numbers)."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    cxx, cyy, cxy = Xc.T @ Xc, Yc.T @ Yc, Xc.T @ Yc
    m = np.linalg.solve(cxx, cxy) @ np.linalg.solve(cyy, cxy.T)
    return np.sqrt(np.clip(np.sort(np.linalg.eigvals(m).real)[::-1], 0, None))


def _two_views(n, rng):
    z = rng.standard_normal((n, 2))  # two shared latent factors
    X = np.c_[z[:, 0] + 0.5 * rng.standard_normal(n), z[:, 1] + rng.standard_normal(n),
              rng.standard_normal((n, 2))] @ rng.standard_normal((4, 4))
    Y = np.c_[z[:, 0] + 0.7 * rng.standard_normal(n), z[:, 1] + 1.5 * rng.standard_normal(n),
              rng.standard_normal(n)] @ rng.standard_normal((3, 3))
    return X, Y


def test_cca_matches_eigen_decomposition_and_sklearn():
    rng = np.random.default_rng(9)
    X, Y = _two_views(400, rng)
    result = cca(X, Y, n_components=3)
    np.testing.assert_allclose(result.correlations, _direct_canonical_correlations(X, Y)[:3], atol=1e-8)
    ref = SklearnCCA(n_components=2, max_iter=5000, tol=1e-12, scale=False).fit(X, Y)
    U, V = ref.transform(X, Y)
    sk = [abs(np.corrcoef(U[:, j], V[:, j])[0, 1]) for j in range(2)]
    np.testing.assert_allclose(result.correlations[:2], sk, atol=1e-6)


def test_cca_known_population_answer_and_variates():
    # corr(z + 0.5 e1, z + 0.7 e2) = 1 / sqrt(1.25 * 1.49); the mixing matrices do not change it.
    rng = np.random.default_rng(10)
    X_all, Y_all = _two_views(100_000, rng)
    X, Y = X_all[:50_000], Y_all[:50_000]
    result = cca(X, Y, n_components=2)
    first = 1 / np.sqrt(1.25 * 1.49)
    second = 1 / np.sqrt(2.0 * 3.25)
    np.testing.assert_allclose(result.correlations, [first, second], atol=0.01)
    U, V = result.transform(X, Y)
    np.testing.assert_allclose(np.cov(U.T), np.eye(2), atol=1e-8)  # unit variance, uncorrelated
    np.testing.assert_allclose(np.corrcoef(U[:, 0], V[:, 0])[0, 1], result.correlations[0], atol=1e-8)
    # score() on the fitted data gives back the correlations; on new samples from the same
    # population the directions keep their correlation (no overfitting with 7 features).
    np.testing.assert_allclose(result.score(X, Y), result.correlations, atol=1e-8)
    np.testing.assert_allclose(result.score(X_all[50_000:], Y_all[50_000:]), [first, second], atol=0.015)


def test_cca_in_sample_is_biased_upwards_held_out_is_not():
    # Independent views with many features: in-sample canonical correlations are large,
    # held-out ones near zero.
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((2, 200, 30))
    result = cca(X, Y, n_components=1)
    assert result.correlations[0] > 0.5
    Xn, Yn = rng.standard_normal((2, 2000, 30))
    assert abs(result.score(Xn, Yn)[0]) < 0.1
    # ridge shrinks the in-sample value
    assert cca(X, Y, n_components=1, reg=1.0).correlations[0] < result.correlations[0]


def test_cca_ignores_dead_features():
    rng = np.random.default_rng(13)
    X, Y = _two_views(500, rng)
    dead = np.c_[X, np.zeros(500), np.full(500, 3.0)]  # ReLU units that never fire
    np.testing.assert_allclose(cca(dead, Y, 2).correlations, cca(X, Y, 2).correlations, atol=1e-8)


@pytest.mark.parametrize(
    "X, Y, kwargs, error, match",
    [
        (np.zeros((10, 3)), np.ones((9, 2)), {}, ValueError, "Y has 9 samples, expected 10"),
        (np.ones((10, 3)), np.random.default_rng(0).standard_normal((10, 2)), {}, ValueError, "X has no variance"),
        (np.eye(10)[:, :3], np.eye(10)[:, :2], {"n_components": 3}, ValueError, r"n_components must be in \[1, min"),
        (np.eye(10)[:, :3], np.eye(10)[:, :2], {"reg": -1}, ValueError, "reg must be a number >= 0"),
        (np.eye(2), np.eye(2), {"n_components": 1}, ValueError, "at least 3 paired samples"),
        (np.full((5, 2), np.nan), np.eye(5)[:, :2], {}, ValueError, "NaN"),
        (np.zeros((2, 3, 4)), np.zeros((2, 3)), {}, ValueError, "must be 2-D"),
    ],
)
def test_cca_rejects_bad_input(X, Y, kwargs, error, match):
    with pytest.raises(error, match=match):
        cca(X, Y, **kwargs)


def test_cca_transform_checks_feature_counts():
    rng = np.random.default_rng(14)
    X, Y = _two_views(100, rng)
    result = cca(X, Y, 1)
    with pytest.raises(ValueError, match="X has 3 features; the CCA was fitted on 4"):
        result.transform(X[:, :3], Y)
