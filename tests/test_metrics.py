"""Tests of mmtutor.metrics: each metric against scikit-learn, plus edge cases and validation."""

import warnings
from functools import partial

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from mmtutor import metrics as mm
from mmtutor.metrics import UndefinedMetricWarning

SEEDS = (0, 1, 2)


def _labels(seed, n, n_classes, imbalanced):
    """Random true labels and noisy predictions (imbalanced: one class dominates)."""
    rng = np.random.default_rng(seed)
    if imbalanced:
        p = np.r_[0.8, np.full(n_classes - 1, 0.2 / (n_classes - 1))]
    else:
        p = np.full(n_classes, 1.0 / n_classes)
    y_true = rng.choice(n_classes, size=n, p=p)
    noise = rng.integers(0, n_classes, size=n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, noise)
    return y_true, y_pred


def _scores(seed, n, imbalanced, ties):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < (0.15 if imbalanced else 0.5)).astype(int)
    s = rng.normal(size=n) + 1.2 * y
    if ties:
        s = np.round(s, 1)  # many tied scores, which the curves must group
    return y, s


# ------------------------------------------------------------------ counting metrics vs sklearn

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("imbalanced", [False, True])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_counting_metrics_match_sklearn(seed, imbalanced, n_classes):
    y_true, y_pred = _labels(seed, 300, n_classes, imbalanced)
    assert mm.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(mm.confusion_matrix(y_true, y_pred),
                                  skm.confusion_matrix(y_true, y_pred))
    averages = ["macro", "micro", "weighted"] + (["binary"] if n_classes == 2 else [])
    for average in averages:
        for ours, theirs in [(mm.precision, skm.precision_score), (mm.recall, skm.recall_score),
                             (mm.f1_score, skm.f1_score)]:
            assert ours(y_true, y_pred, average=average) == pytest.approx(
                theirs(y_true, y_pred, average=average), abs=1e-12), (ours.__name__, average)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_pos_label_and_string_labels_match_sklearn(seed):
    y_true, y_pred = _labels(seed, 200, 2, imbalanced=True)
    for pos_label in (0, 1):
        assert mm.f1_score(y_true, y_pred, pos_label=pos_label) == pytest.approx(
            skm.f1_score(y_true, y_pred, pos_label=pos_label))
    names = np.array(["neg", "pos"])
    t, p = names[y_true], names[y_pred]
    assert mm.precision(t, p, pos_label="pos") == pytest.approx(
        skm.precision_score(t, p, pos_label="pos"))
    np.testing.assert_array_equal(mm.confusion_matrix(t, p, labels=["pos", "neg"]),
                                  skm.confusion_matrix(t, p, labels=["pos", "neg"]))


@pytest.mark.parametrize("normalize", ["true", "pred", "all"])
def test_confusion_matrix_normalize_and_labels_match_sklearn(normalize):
    y_true, y_pred = _labels(3, 150, 3, imbalanced=False)
    np.testing.assert_allclose(mm.confusion_matrix(y_true, y_pred, normalize=normalize),
                               skm.confusion_matrix(y_true, y_pred, normalize=normalize))
    # A label subset (samples outside it are dropped) and an absent label (an empty row).
    np.testing.assert_array_equal(mm.confusion_matrix(y_true, y_pred, labels=[2, 0, 7]),
                                  skm.confusion_matrix(y_true, y_pred, labels=[2, 0, 7]))


def test_averages_with_labels_match_sklearn():
    y_true, y_pred = _labels(4, 120, 4, imbalanced=False)
    for average in ("macro", "weighted", "micro"):
        assert mm.f1_score(y_true, y_pred, average=average, labels=[0, 2, 9],
                           zero_division=0.0) == pytest.approx(
            skm.f1_score(y_true, y_pred, average=average, labels=[0, 2, 9], zero_division=0.0))


def test_micro_average_equals_accuracy_multiclass():
    y_true, y_pred = _labels(5, 200, 5, imbalanced=True)
    assert mm.f1_score(y_true, y_pred, average="micro") == pytest.approx(
        mm.accuracy(y_true, y_pred))


# ------------------------------------------------------------------ edge cases

def test_precision_without_positive_predictions_warns_and_is_defined():
    y_true, y_pred = [0, 1, 1, 0], [0, 0, 0, 0]
    with pytest.warns(UndefinedMetricWarning, match="Precision is ill-defined"):
        assert mm.precision(y_true, y_pred) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit zero_division is silent
        assert mm.precision(y_true, y_pred, zero_division=1.0) == 1.0
        assert np.isnan(mm.precision(y_true, y_pred, zero_division=np.nan))
        # F1 is defined (2TP / (2TP + FP + FN) = 0) although precision is not.
        assert mm.f1_score(y_true, y_pred) == 0.0
    for zd in (0.0, 1.0):
        assert mm.precision(y_true, y_pred, zero_division=zd) == skm.precision_score(
            y_true, y_pred, zero_division=zd)


def test_one_class_only_warns_and_matches_sklearn():
    y_true, y_pred = [0, 0, 0, 0], [0, 1, 0, 0]
    with pytest.warns(UndefinedMetricWarning, match="Recall"):
        assert mm.recall(y_true, y_pred) == 0.0
    with pytest.warns(UndefinedMetricWarning, match="F-score"):
        assert mm.f1_score([0, 0, 0], [0, 0, 0]) == 0.0
    for zd in (0.0, 1.0):
        assert mm.f1_score([0, 0, 0], [0, 0, 0], zero_division=zd) == skm.f1_score(
            [0, 0, 0], [0, 0, 0], zero_division=zd)
    # Macro averaging with nan for undefined classes skips them, like sklearn.
    assert mm.precision([0, 1, 2, 2], [0, 0, 0, 0], average="macro",
                        zero_division=np.nan) == pytest.approx(
        skm.precision_score([0, 1, 2, 2], [0, 0, 0, 0], average="macro", zero_division=np.nan))


def test_ranking_metrics_with_one_class():
    y, s = [0, 0, 0], [0.1, 0.4, 0.3]
    with pytest.warns(UndefinedMetricWarning, match="one class"):
        assert np.isnan(mm.roc_auc(y, s))
    with pytest.warns(UndefinedMetricWarning, match="true positive rate"):
        fpr, tpr, _ = mm.roc_curve(y, s)
    assert np.isnan(tpr).all() and not np.isnan(fpr).any()
    with pytest.warns(UndefinedMetricWarning, match="average precision"):
        assert mm.average_precision(y, s) == 0.0
    with pytest.warns(UndefinedMetricWarning, match="[Oo]nly one class"):
        assert np.isnan(mm.roc_auc([1, 1], [0.2, 0.9]))
    assert mm.average_precision([1, 1, 1], [0.1, 0.2, 0.3]) == 1.0


# ------------------------------------------------------------------ ranking metrics vs sklearn

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("imbalanced", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_curves_and_areas_match_sklearn(seed, imbalanced, ties):
    y, s = _scores(seed, 400, imbalanced, ties)
    for drop in (True, False):
        ours = mm.roc_curve(y, s, drop_intermediate=drop)
        theirs = skm.roc_curve(y, s, drop_intermediate=drop)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b)
    assert mm.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    for a, b in zip(mm.precision_recall_curve(y, s), skm.precision_recall_curve(y, s)):
        np.testing.assert_allclose(a, b)
    assert mm.average_precision(y, s) == pytest.approx(
        skm.average_precision_score(y, s), abs=1e-12)


def test_roc_auc_is_the_probability_a_positive_outranks_a_negative():
    y, s = _scores(7, 150, imbalanced=False, ties=True)
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    pairwise = np.mean((pos > neg) + 0.5 * (pos == neg))
    assert mm.roc_auc(y, s) == pytest.approx(pairwise, abs=1e-12)


def test_scores_with_string_labels_and_column_vector():
    y, s = _scores(8, 100, imbalanced=False, ties=False)
    names = np.array(["neg", "pos"])[y]
    assert mm.roc_auc(names, s, pos_label="pos") == pytest.approx(skm.roc_auc_score(y, s))
    assert mm.average_precision(y, s[:, None]) == pytest.approx(
        skm.average_precision_score(y, s))


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize("call, match", [
    (lambda: mm.accuracy([0, 1, 1], [0, 1]), "same length"),
    (lambda: mm.accuracy([0, 1], [0.2, 0.9]), "probabilities"),
    (lambda: mm.accuracy([0, 1], [[0.8, 0.2], [0.1, 0.9]]), "argmax"),
    (lambda: mm.accuracy([], []), "empty"),
    (lambda: mm.accuracy([0, np.nan], [0, 1]), "NaN"),
    (lambda: mm.accuracy(["a", "b"], [0, 1]), "same kind"),
    (lambda: mm.precision([0, 1, 2], [0, 1, 2]), "average='binary'"),
    (lambda: mm.precision([0, 2], [0, 2]), "pos_label=1"),
    (lambda: mm.precision(["a", "b"], ["a", "b"]), "pos_label"),
    (lambda: mm.recall([0, 1], [0, 1], average="samples"), "average must be"),
    (lambda: mm.f1_score([0, 1], [0, 1], zero_division=0.5), "zero_division"),
    (lambda: mm.roc_auc([0, 1, 2], [0.1, 0.2, 0.3]), "two classes"),
    (lambda: mm.roc_auc([0, 1], [0.1, np.inf]), "NaN or infinite"),
    (lambda: mm.roc_auc([0, 1], [0.1, 0.2, 0.3]), "same length"),
    (lambda: mm.positive_rate([0.2, 1.3]), r"\[0, 1\]"),
    (lambda: mm.positive_rate([0.2, 0.3], threshold=2), "threshold"),
    (lambda: mm.confusion_matrix([0, 1], [0, 1], normalize="rows"), "normalize"),
    (lambda: mm.confusion_matrix([0, 1], [0, 1], labels=[5, 6]), "occurs in y_true"),
    (lambda: mm.confusion_matrix([0, 1], [0, 1], labels=[0, 0]), "repeat"),
])
def test_bad_input_gives_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_positive_rate_is_not_accuracy():
    # A model that answers "positive" for everything, on balanced data.
    y_true = np.array([0, 1] * 50)
    y_prob = np.full(100, 0.9)
    assert mm.positive_rate(y_prob) == 1.0
    assert mm.accuracy(y_true, (y_prob > 0.5).astype(int)) == 0.5
    assert mm.positive_rate([0.2, 0.5, 0.7], threshold=0.5) == pytest.approx(1 / 3)


# ------------------------------------------------------------------ IoU

@pytest.mark.parametrize("seed", SEEDS)
def test_iou_matches_jaccard_score(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((16, 20)) < 0.3
    b = rng.random((16, 20)) < 0.4
    assert mm.iou(a, b) == pytest.approx(skm.jaccard_score(a.ravel(), b.ravel()))
    assert mm.iou(a.astype(np.uint8), b.astype(float)) == pytest.approx(mm.iou(a, b))


def test_iou_empty_union():
    empty = np.zeros((4, 4), dtype=bool)
    with pytest.warns(UndefinedMetricWarning, match="both masks are empty"):
        assert mm.iou(empty, empty) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mm.iou(empty, empty, zero_division=1.0) == 1.0
        assert mm.iou(empty, empty.copy() | np.eye(4, dtype=bool)) == 0.0  # union not empty


@pytest.mark.parametrize("seed", SEEDS)
def test_mean_iou_matches_jaccard_macro(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 4, size=(2, 12, 12))
    p = np.where(rng.random(t.shape) < 0.7, t, rng.integers(0, 4, size=t.shape))
    ours, per_class, classes = mm.mean_iou(t, p, return_per_class=True)
    assert ours == pytest.approx(skm.jaccard_score(t.ravel(), p.ravel(), average="macro"))
    np.testing.assert_allclose(per_class, skm.jaccard_score(t.ravel(), p.ravel(), average=None))
    np.testing.assert_array_equal(classes, [0, 1, 2, 3])


def test_mean_iou_absent_class_and_ignore_index():
    t = np.array([[0, 0, 1], [1, 255, 255]])
    p = np.array([[0, 1, 1], [1, 0, 1]])
    mean, per_class, _ = mm.mean_iou(t, p, labels=range(3), ignore_index=255,
                                     return_per_class=True)
    # class 0: {(0,0),(0,1)} vs {(0,0)} -> 1/2; class 1: {(0,2),(1,0)} vs {(0,1),(0,2),(1,0)} -> 2/3
    np.testing.assert_allclose(per_class[:2], [0.5, 2 / 3])
    assert np.isnan(per_class[2])  # class 2 appears in neither map: left out of the mean
    assert mean == pytest.approx((0.5 + 2 / 3) / 2)


@pytest.mark.parametrize("call, match", [
    (lambda: mm.iou(np.ones((2, 2)), np.ones((2, 3))), "same shape"),
    (lambda: mm.iou([[0, 2]], [[0, 1]]), "binary mask"),
    (lambda: mm.iou([[0.2, 0.9]], [[0, 1]]), "binary mask"),
    (lambda: mm.mean_iou([[255, 255]], [[0, 1]], ignore_index=255), "nothing to score"),
    (lambda: mm.mean_iou([[0, 0]], [[0, 0]], labels=[3, 4]), "undefined"),
])
def test_iou_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ calibration

def test_ece_is_small_for_calibrated_probabilities():
    rng = np.random.default_rng(0)
    prob = rng.random(20000)
    y = (rng.random(20000) < prob).astype(int)  # P(y = 1 | p) = p: calibrated by construction
    ece, bins = mm.expected_calibration_error(y, prob)
    assert ece < 0.02
    assert bins.count.sum() == 20000 and bins.count.shape == (10,)
    assert np.nanmax(np.abs(bins.gap)) < 0.05


def test_ece_is_large_for_overconfident_probabilities():
    rng = np.random.default_rng(1)
    true_p = rng.random(5000)
    y = (rng.random(5000) < true_p).astype(int)
    overconfident = np.clip(0.5 + 3.0 * (true_p - 0.5), 0.0, 1.0)  # pushed towards 0 and 1
    ece, bins = mm.expected_calibration_error(y, overconfident)
    assert ece > 0.1
    filled = bins.count > 50
    assert np.all(bins.accuracy[filled][-3:] < bins.confidence[filled][-3:])


def test_ece_multiclass_and_hand_example():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(8000, 3)) * 2
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in prob])  # sampled from prob: calibrated
    assert mm.expected_calibration_error(y, prob, n_bins=8)[0] < 0.03
    # Hand example: confidences 0.9 (right) and 0.6 (wrong), 0.7 (right), two bins.
    prob = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    ece, bins = mm.expected_calibration_error([0, 0, 0], prob, n_bins=2)
    # one bin [0.5, 1] holds all three: mean conf 2.2/3, accuracy 2/3
    assert ece == pytest.approx(abs(2 / 3 - 2.2 / 3))
    np.testing.assert_array_equal(bins.count, [0, 3])
    assert np.isnan(bins.accuracy[0])


def test_ece_quantile_bins_hold_similar_counts():
    rng = np.random.default_rng(3)
    prob = rng.beta(5, 1, size=1000)  # most confidences near 1
    y = (rng.random(1000) < prob).astype(int)
    _, uniform = mm.expected_calibration_error(y, prob, n_bins=5)
    _, quantile = mm.expected_calibration_error(y, prob, n_bins=5, strategy="quantile")
    assert quantile.count.sum() == uniform.count.sum() == 1000
    assert quantile.count.max() - quantile.count.min() <= 2
    assert uniform.count.max() - uniform.count.min() > 100


@pytest.mark.parametrize("call, match", [
    (lambda: mm.expected_calibration_error([0, 1], [0.2, 1.2]), r"\[0, 1\]"),
    (lambda: mm.expected_calibration_error([0, 1], [[0.5, 0.2], [0.1, 0.9]]), "sum to 1"),
    (lambda: mm.expected_calibration_error([0, 2], [[0.5, 0.5], [0.1, 0.9]]), "0..1"),
    (lambda: mm.expected_calibration_error([0, 2], [0.5, 0.5]), "0/1"),
    (lambda: mm.expected_calibration_error([0, 1], [0.5, 0.5], n_bins=0), "n_bins"),
    (lambda: mm.expected_calibration_error([0, 1], [0.5, 0.5], strategy="log"), "strategy"),
])
def test_ece_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ bootstrap and paired tests

def _noisy(rng, y, acc):
    return np.where(rng.random(y.size) < acc, y, 1 - y)


@pytest.mark.parametrize("seed", SEEDS)
def test_bootstrap_ci_contains_point_and_narrows_with_n(seed):
    rng = np.random.default_rng(seed)
    widths = []
    for n in (100, 2000):
        y = rng.integers(0, 2, n)
        y_hat = _noisy(rng, y, 0.8)
        point, low, high = mm.bootstrap_ci(mm.accuracy, y, y_hat, n_boot=300, seed=seed)
        assert point == mm.accuracy(y, y_hat)
        assert low < point < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # about 1/sqrt(20) as wide


def test_bootstrap_ci_is_reproducible_and_works_for_any_metric():
    rng = np.random.default_rng(4)
    y, s = _scores(4, 60, imbalanced=True, ties=False)
    first = mm.bootstrap_ci(mm.roc_auc, y, s, n_boot=100, seed=3, stratify=True)
    assert first == mm.bootstrap_ci(mm.roc_auc, y, s, n_boot=100, seed=3, stratify=True)
    assert first[1] <= first[0] <= first[2]
    macro_f1 = partial(mm.f1_score, average="macro")
    y3 = rng.integers(0, 3, 200)
    point, low, high = mm.bootstrap_ci(macro_f1, y3, np.where(rng.random(200) < 0.7, y3, 0),
                                       n_boot=100)
    assert low < point < high


def test_bootstrap_ci_drops_undefined_resamples_with_a_warning():
    y = np.r_[np.zeros(18, int), np.ones(2, int)]  # two positives: many resamples have none
    s = np.linspace(0, 1, 20)
    with pytest.warns(UndefinedMetricWarning, match="resamples"):
        point, low, high = mm.bootstrap_ci(mm.roc_auc, y, s, n_boot=200, seed=0)
    assert np.isfinite([point, low, high]).all()


@pytest.mark.parametrize("call, match", [
    (lambda: mm.bootstrap_ci(mm.accuracy, [0, 1], [0, 1, 1]), "same number"),
    (lambda: mm.bootstrap_ci(mm.accuracy, [0, 1], [0, 1], n_boot=5), "n_boot"),
    (lambda: mm.bootstrap_ci(mm.accuracy, [0, 1], [0, 1], alpha=1.5), "alpha"),
    (lambda: mm.bootstrap_ci(mm.accuracy, [0, 1], [0.3, 0.6]), "probabilities"),
])
def test_bootstrap_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
    with pytest.raises(TypeError, match="metric"):
        mm.bootstrap_ci("accuracy", [0, 1], [0, 1])


def _pairs(b, c, both_right=20, both_wrong=5):
    """Labels and two prediction vectors with b (A right, B wrong) and c (A wrong, B right)."""
    y = np.ones(b + c + both_right + both_wrong, dtype=int)
    a = np.r_[np.ones(b), np.zeros(c), np.ones(both_right), np.zeros(both_wrong)].astype(int)
    bb = np.r_[np.zeros(b), np.ones(c), np.ones(both_right), np.zeros(both_wrong)].astype(int)
    return y, a, bb


def test_mcnemar_chi_square_hand_computed():
    y, a, b = _pairs(30, 10)
    result = mm.mcnemar_test(y, a, b)
    assert (result.b, result.c, result.exact) == (30, 10, False)
    assert result.statistic == pytest.approx((abs(30 - 10) - 1) ** 2 / 40)  # 9.025
    assert result.statistic == pytest.approx(9.025)
    assert result.pvalue == pytest.approx(stats.chi2.sf(9.025, df=1))
    stat, p = result  # unpacks like a (statistic, pvalue) pair
    assert 0.002 < p < 0.003


@pytest.mark.parametrize("b, c", [(0, 6), (3, 9), (7, 7), (12, 2), (1, 0), (20, 30),
                                  (600, 520)])
def test_mcnemar_exact_matches_binomtest(b, c):
    y, pa, pb = _pairs(b, c)
    result = mm.mcnemar_test(y, pa, pb, exact=True)
    assert result.exact and result.statistic == min(b, c)
    assert result.pvalue == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-10)
    assert mm.mcnemar_test(y, pa, pb).exact == (b + c < 25)


def test_mcnemar_no_discordant_pairs_and_bad_input():
    y, a, _ = _pairs(5, 0)
    assert tuple(mm.mcnemar_test(y, a, a)) == (0.0, 1.0)
    with pytest.raises(ValueError, match="pred_b"):
        mm.mcnemar_test([0, 1, 1], [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="exact"):
        mm.mcnemar_test([0, 1], [0, 1], [0, 1], exact="yes")


def test_paired_bootstrap_test():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    good, poor = _noisy(rng, y, 0.9), _noisy(rng, y, 0.7)
    result = mm.paired_bootstrap_test(mm.accuracy, y, good, poor, n_boot=300, seed=1)
    assert result.statistic == pytest.approx(mm.accuracy(y, good) - mm.accuracy(y, poor))
    assert result.score_a == mm.accuracy(y, good)
    assert result.pvalue < 0.01
    assert result.low < result.statistic < result.high and result.low > 0
    # The same model against itself: no difference, p = 1.
    stat, p = mm.paired_bootstrap_test(mm.accuracy, y, good, good, n_boot=50)
    assert stat == 0.0 and p == 1.0
    # Two models of the same quality: no evidence of a difference.
    other = _noisy(rng, y, 0.9)
    assert mm.paired_bootstrap_test(mm.accuracy, y, good, other, n_boot=300).pvalue > 0.05


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(mm)
    assert result.failed == 0 and result.attempted >= 20
