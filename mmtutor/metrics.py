"""Evaluation metrics, written from their formulas (chapter on evaluation).

Every function takes ``(y_true, y_pred)`` (or ``(y_true, scores)``) like scikit-learn and
agrees with it to floating-point precision; the tests check that on random data. The point
of writing them out is to see the formulas: each docstring gives the one it computes.

Inputs are validated at the door: lengths must match, labels must be labels (not
probabilities), probabilities must lie in [0, 1]. A metric that is mathematically undefined on
the given data (precision with no positive predictions, recall or ROC AUC with one class only)
returns a documented value and emits :class:`UndefinedMetricWarning`; it never raises a
division error or returns ``nan`` silently.

All functions are NumPy only, so they work on predictions from any Keras backend.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = [
    "UndefinedMetricWarning",
    "accuracy",
    "positive_rate",
    "confusion_matrix",
    "precision",
    "recall",
    "f1_score",
    "roc_curve",
    "roc_auc",
    "precision_recall_curve",
    "average_precision",
    "iou",
    "mean_iou",
    "CalibrationBins",
    "expected_calibration_error",
    "bootstrap_ci",
    "McNemarResult",
    "mcnemar_test",
    "PairedBootstrapResult",
    "paired_bootstrap_test",
]

_AVERAGES = ("binary", "macro", "micro", "weighted")


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on the given data and was set to a documented value.

    Raised (as a warning) for example by :func:`precision` when nothing is predicted positive
    (the formula divides by zero) or by :func:`roc_auc` when ``y_true`` holds one class only.
    Silence it with ``warnings.simplefilter("ignore", UndefinedMetricWarning)`` once you have
    understood why it happens, or pass ``zero_division`` explicitly.

    Defined in the chapter on evaluation.
    """


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------

def _describe(values, limit=5):
    values = list(values)
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _check_labels(y, name):
    """Return ``y`` as a 1-D array of class labels (ints or strings), or raise."""
    if y is None:
        raise ValueError(f"{name} is None; expected a 1-D array of class labels.")
    arr = np.asarray(y)
    if arr.ndim != 1:
        hint = ""
        if arr.ndim == 2:
            hint = (" If these are one-hot rows or class probabilities, turn them into labels "
                    "first, e.g. np.argmax(..., axis=1).")
        raise ValueError(
            f"{name} must be a 1-D array of class labels, got an array of shape {arr.shape}.{hint}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty; a metric needs at least one sample.")
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.int64)
    if kind in "iu":
        return arr.astype(np.int64)
    if kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values; expected class labels.")
        fractional = arr[arr != np.round(arr)]
        if fractional.size:
            raise ValueError(
                f"{name} must hold class labels, but it contains non-integer values such as "
                f"{_describe(np.unique(fractional))}. If these are predicted probabilities, turn "
                "them into labels first, e.g. (prob > 0.5).astype(int), or use a metric that "
                "takes scores (roc_auc, average_precision)."
            )
        return arr.astype(np.int64)
    if kind == "U":
        return arr
    if kind == "O":
        if all(isinstance(v, str) for v in arr):
            return arr.astype(str)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
            return arr.astype(np.int64)
        bad = [v for v in arr if not isinstance(v, (str, int, np.integer))][:3]
        raise ValueError(
            f"{name} must hold class labels (all integers or all strings), got values such as "
            f"{bad!r}."
        )
    raise ValueError(f"{name} must hold class labels (integers or strings), got dtype {arr.dtype}.")


def _check_pair(y_true, y_pred, true_name="y_true", pred_name="y_pred"):
    """Validate two label arrays of the same length and kind."""
    y_true = _check_labels(y_true, true_name)
    y_pred = _check_labels(y_pred, pred_name)
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"{true_name} and {pred_name} must have the same length, got {y_true.shape[0]} and "
            f"{y_pred.shape[0]} samples."
        )
    if (y_true.dtype.kind == "U") != (y_pred.dtype.kind == "U"):
        raise ValueError(
            f"{true_name} and {pred_name} must hold the same kind of labels, got "
            f"{'strings' if y_true.dtype.kind == 'U' else 'numbers'} in {true_name} and "
            f"{'strings' if y_pred.dtype.kind == 'U' else 'numbers'} in {pred_name}."
        )
    return y_true, y_pred


def _check_scores(scores, name, n=None, probabilities=False):
    """Return ``scores`` as a finite 1-D float array (in [0, 1] if ``probabilities``)."""
    if scores is None:
        raise ValueError(f"{name} is None; expected a 1-D array of scores.")
    arr = np.asarray(scores)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}.")
    arr = arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]  # the (n, 1) output of a sigmoid unit
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of scores for the positive class (or of shape (n, 1)), "
            f"got shape {arr.shape}."
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty; a metric needs at least one sample.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    if probabilities and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(
            f"{name} must hold probabilities in [0, 1], got values from {arr.min():g} to "
            f"{arr.max():g}. Apply a sigmoid or softmax to logits first."
        )
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"y_true and {name} must have the same length, got {n} and "
                         f"{arr.shape[0]}.")
    return arr


def _check_zero_division(zero_division):
    if isinstance(zero_division, str) and zero_division == "warn":
        return 0.0, True
    if isinstance(zero_division, (int, float, np.floating)) and not isinstance(zero_division, bool):
        value = float(zero_division)
        if value in (0.0, 1.0) or math.isnan(value):
            return value, False
    raise ValueError(
        f"zero_division must be 'warn', 0.0, 1.0 or np.nan, got {zero_division!r}."
    )


def _index_of(values, labels):
    """Position of each value in ``labels`` (-1 where a value is not a label)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.searchsorted(sorted_labels, values)
    pos_clipped = np.minimum(pos, len(labels) - 1)
    found = sorted_labels[pos_clipped] == values
    return np.where(found, order[pos_clipped], -1)


def _check_pos_label(pos_label, classes):
    """``pos_label`` must be the same kind of label (string or number) as the classes."""
    if isinstance(pos_label, bool) or not isinstance(pos_label, (str, int, np.integer)):
        raise ValueError(f"pos_label must be an integer or a string label, got {pos_label!r}.")
    if isinstance(pos_label, str) != (classes.dtype.kind == "U"):
        raise ValueError(
            f"pos_label={pos_label!r} is not the same kind of label as the classes "
            f"{_describe(classes)}; pass pos_label set to the positive class."
        )


def _binary_target(y_true, pos_label, name="y_true"):
    """Turn binary labels into a 0/1 array with 1 for ``pos_label``."""
    classes = np.unique(y_true)
    _check_pos_label(pos_label, classes)
    if classes.size > 2:
        raise ValueError(
            f"{name} must hold two classes for this metric, got {classes.size}: "
            f"{_describe(classes)}. For a multiclass problem, compute it one class against the "
            "rest, e.g. (y_true == k) with the scores of class k."
        )
    if classes.size == 2 and pos_label not in classes:
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the classes in {name}, {_describe(classes)}; "
            "pass pos_label set to the positive class."
        )
    return (y_true == pos_label).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Counting metrics
# --------------------------------------------------------------------------------------------

def accuracy(y_true, y_pred):
    r"""Fraction of samples whose predicted label equals the true label.

    .. math:: \mathrm{accuracy} = \frac{1}{n}\sum_{i=1}^{n} [\hat y_i = y_i]
              = \frac{TP + TN}{TP + TN + FP + FN}\ \text{(binary case)}

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels (not probabilities: threshold or argmax them first).

    Returns
    -------
    float
        The accuracy, in [0, 1].

    Examples
    --------
    >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
    0.75
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def positive_rate(y_prob, threshold=0.5):
    r"""Share of predictions above a threshold. This is NOT accuracy.

    .. math:: \mathrm{positive\ rate} = \frac{1}{n}\sum_{i=1}^{n} [p_i > t]

    It never looks at the true labels, so it says how often the model answers "positive",
    not how often it is right. A model that answers "positive" for every sample has a
    positive rate of 1.0 and, on balanced data, an accuracy of 0.5. Computing
    ``sum(predictions > 0.5) / len(labels)`` and calling it accuracy is a common mistake;
    accuracy compares with the labels: ``accuracy(y_true, (y_prob > 0.5).astype(int))``.
    The positive rate is still useful: compared with the share of positives in the data it
    shows whether a model over- or under-predicts the positive class.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_prob : array-like of shape (n_samples,) or (n_samples, 1)
        Predicted probabilities of the positive class, in [0, 1].
    threshold : float, default 0.5
        A prediction counts as positive when its probability is strictly above it.

    Returns
    -------
    float
        The share of predictions above ``threshold``, in [0, 1].

    Examples
    --------
    >>> positive_rate([0.9, 0.8, 0.2, 0.6])
    0.75
    """
    y_prob = _check_scores(y_prob, "y_prob", probabilities=True)
    if not isinstance(threshold, (int, float, np.number)) or not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}.")
    return float(np.mean(y_prob > threshold))


def confusion_matrix(y_true, y_pred, labels=None, normalize=None):
    r"""Count how often each true class is predicted as each class.

    Entry :math:`C_{ij}` is the number of samples of true class ``labels[i]`` predicted as
    ``labels[j]``: rows are true classes, columns predicted classes (scikit-learn's
    convention). In the binary case with ``labels=[0, 1]``,

    .. math:: C = \begin{pmatrix} TN & FP \\ FN & TP \end{pmatrix}.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels.
    labels : array-like, optional
        The classes, in the order of the rows and columns. By default the sorted union of the
        labels in ``y_true`` and ``y_pred``. Samples whose true or predicted label is not in
        ``labels`` are left out (as in scikit-learn).
    normalize : {None, "true", "pred", "all"}, default None
        Return counts (None), or divide by row sums ("true": each row is the distribution of
        predictions for that true class; the diagonal is the per-class recall), by column sums
        ("pred": the diagonal is the per-class precision) or by the total ("all"). Rows or
        columns with no samples become 0.

    Returns
    -------
    ndarray of shape (n_classes, n_classes)
        Integer counts, or floats when ``normalize`` is given.

    Examples
    --------
    >>> confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0])
    array([[2, 0],
           [1, 1]])
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}.")
    if labels is None:
        labels = np.union1d(y_true, y_pred)
    else:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D list of classes, got {labels!r}.")
        if np.unique(labels).size != labels.size:
            raise ValueError(f"labels must not repeat a class, got {_describe(labels, 10)}.")
        if (labels.dtype.kind == "U") != (y_true.dtype.kind == "U"):
            raise ValueError(
                f"labels {_describe(labels)} are not the same kind as the labels in y_true "
                f"{_describe(np.unique(y_true))}."
            )
        if not np.isin(y_true, labels).any():
            raise ValueError(
                f"None of the labels {_describe(labels)} occurs in y_true, whose classes are "
                f"{_describe(np.unique(y_true))}."
            )
    k = labels.size
    t = _index_of(y_true, labels)
    p = _index_of(y_pred, labels)
    keep = (t >= 0) & (p >= 0)
    cm = np.bincount(t[keep] * k + p[keep], minlength=k * k).reshape(k, k)
    if normalize is None:
        return cm
    if normalize == "true":
        denom = cm.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        denom = cm.sum(axis=0, keepdims=True)
    else:
        denom = np.array(cm.sum())
    return np.divide(cm, denom, out=np.zeros(cm.shape, dtype=np.float64), where=denom != 0)


def _divide(num, den, metric, reason, zero_division, warn, stacklevel):
    """num / den elementwise; where den == 0 use the zero_division value (and maybe warn)."""
    value, should_warn = _check_zero_division(zero_division)
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, value, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    if warn and should_warn and np.any(den == 0):
        warnings.warn(
            f"{metric} is ill-defined and being set to 0.0 due to {reason}. Use the "
            "zero_division parameter to choose the value (0.0, 1.0 or np.nan) and silence "
            "this warning.",
            UndefinedMetricWarning,
            stacklevel=stacklevel,
        )
    return out


def _nanaverage(values, weights=None):
    mask = np.isnan(values)
    if mask.all():
        return float("nan")
    values = values[~mask]
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)[~mask]
        if weights.sum() > 0:
            return float(np.average(values, weights=weights))
    return float(np.mean(values))


def _prf(y_true, y_pred, average, pos_label, labels, zero_division, which):
    """Shared work of precision, recall and f1_score."""
    _check_zero_division(zero_division)
    y_true, y_pred = _check_pair(y_true, y_pred)
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}.")
    present = np.union1d(y_true, y_pred)
    if average == "binary":
        _check_pos_label(pos_label, present)
        if present.size > 2:
            raise ValueError(
                f"average='binary' needs two classes, but y_true and y_pred hold {present.size}: "
                f"{_describe(present)}. Choose average='macro', 'micro' or 'weighted'."
            )
        if present.size == 2 and pos_label not in present:
            raise ValueError(
                f"pos_label={pos_label!r} is not one of the classes {_describe(present)}; pass "
                "pos_label set to the positive class."
            )
        labels = np.asarray([pos_label])
    elif labels is None:
        labels = present
    else:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D list of classes, got {labels!r}.")
    k = labels.size
    t = _index_of(y_true, labels)
    p = _index_of(y_pred, labels)
    tp = np.bincount(t[(t >= 0) & (t == p)], minlength=k)
    pred_sum = np.bincount(p[p >= 0], minlength=k)
    true_sum = np.bincount(t[t >= 0], minlength=k)
    if average == "micro":
        tp, pred_sum, true_sum = tp.sum(keepdims=True), pred_sum.sum(keepdims=True), \
            true_sum.sum(keepdims=True)
    # stacklevel 4 points the warning at the caller: _divide <- _prf <- public metric <- caller
    if which == "precision":
        scores = _divide(tp, pred_sum, "Precision", "no predicted samples of the positive class"
                         if average == "binary" else "no predicted samples for some labels",
                         zero_division, True, 4)
    elif which == "recall":
        scores = _divide(tp, true_sum, "Recall", "no true samples of the positive class"
                         if average == "binary" else "no true samples for some labels",
                         zero_division, True, 4)
    else:
        scores = _divide(2 * tp, pred_sum + true_sum, "F-score",
                         "no true nor predicted samples", zero_division, True, 4)
    if average == "binary" or average == "micro":
        return float(scores[0])
    weights = true_sum if average == "weighted" else None
    return _nanaverage(scores, weights)


def precision(y_true, y_pred, *, average="binary", pos_label=1, labels=None,
              zero_division="warn"):
    r"""Of the samples predicted positive, the fraction that are positive.

    .. math:: \mathrm{precision} = \frac{TP}{TP + FP}

    For several classes it is computed per class (that class against the rest) and averaged:
    ``"macro"`` takes the plain mean over classes, ``"weighted"`` weights each class by its
    number of true samples, ``"micro"`` pools the counts first,
    :math:`\sum_k TP_k / \sum_k (TP_k + FP_k)` (which equals accuracy when every sample has
    exactly one label).

    When nothing is predicted positive, :math:`TP + FP = 0` and precision is undefined: the
    result is ``zero_division`` (0.0 by default) and :class:`UndefinedMetricWarning` is
    emitted, as in scikit-learn.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels.
    average : {"binary", "macro", "micro", "weighted"}, default "binary"
        How to combine classes; "binary" reports ``pos_label`` only and needs two classes.
    pos_label : int or str, default 1
        The positive class when ``average="binary"``.
    labels : array-like, optional
        Classes to include when averaging (default: all classes present in either array).
    zero_division : {"warn", 0.0, 1.0, np.nan}, default "warn"
        Value for an undefined ratio; "warn" means 0.0 with a warning.

    Returns
    -------
    float
        The precision, in [0, 1] (or nan if asked for with ``zero_division=np.nan``).

    Examples
    --------
    >>> precision([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    """
    return _prf(y_true, y_pred, average, pos_label, labels, zero_division, "precision")


def recall(y_true, y_pred, *, average="binary", pos_label=1, labels=None, zero_division="warn"):
    r"""Of the positive samples, the fraction predicted positive (sensitivity, TPR).

    .. math:: \mathrm{recall} = \frac{TP}{TP + FN}

    Averages over classes as in :func:`precision`. When ``y_true`` holds no positive sample,
    :math:`TP + FN = 0`: the result is ``zero_division`` (0.0 by default) with an
    :class:`UndefinedMetricWarning`.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels.
    average : {"binary", "macro", "micro", "weighted"}, default "binary"
        How to combine classes (see :func:`precision`).
    pos_label : int or str, default 1
        The positive class when ``average="binary"``.
    labels : array-like, optional
        Classes to include when averaging.
    zero_division : {"warn", 0.0, 1.0, np.nan}, default "warn"
        Value for an undefined ratio; "warn" means 0.0 with a warning.

    Returns
    -------
    float
        The recall, in [0, 1].

    Examples
    --------
    >>> recall([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    """
    return _prf(y_true, y_pred, average, pos_label, labels, zero_division, "recall")


def f1_score(y_true, y_pred, *, average="binary", pos_label=1, labels=None,
             zero_division="warn"):
    r"""Harmonic mean of precision and recall.

    .. math:: F_1 = 2\,\frac{\mathrm{precision}\cdot\mathrm{recall}}
                         {\mathrm{precision} + \mathrm{recall}}
                  = \frac{2\,TP}{2\,TP + FP + FN}

    The right-hand form is what is computed: it is defined whenever there is a true or a
    predicted positive, even when precision alone is not (no predicted positives gives
    :math:`F_1 = 0`). Only when :math:`TP + FP + FN = 0` (no true and no predicted
    positives) is it undefined: ``zero_division`` with an :class:`UndefinedMetricWarning`.
    Averages over classes as in :func:`precision`.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels.
    average : {"binary", "macro", "micro", "weighted"}, default "binary"
        How to combine classes (see :func:`precision`).
    pos_label : int or str, default 1
        The positive class when ``average="binary"``.
    labels : array-like, optional
        Classes to include when averaging.
    zero_division : {"warn", 0.0, 1.0, np.nan}, default "warn"
        Value for an undefined ratio; "warn" means 0.0 with a warning.

    Returns
    -------
    float
        The F1 score, in [0, 1].

    Examples
    --------
    >>> f1_score([0, 1, 1, 0], [1, 1, 0, 0])
    0.5
    >>> round(f1_score([0, 1, 2, 2], [0, 2, 2, 2], average="macro"), 4)
    0.6
    """
    return _prf(y_true, y_pred, average, pos_label, labels, zero_division, "f1")


# --------------------------------------------------------------------------------------------
# Ranking metrics: ROC and precision-recall curves
# --------------------------------------------------------------------------------------------

def _curve_counts(y_true, scores, pos_label):
    """True and false positives when thresholding at each distinct score, highest first."""
    y_true = _check_labels(y_true, "y_true")
    scores = _check_scores(scores, "scores", n=y_true.shape[0])
    y = _binary_target(y_true, pos_label)
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores, y = scores[order], y[order]
    # The last index of each run of equal scores: tied samples cross the threshold together.
    last = np.r_[np.flatnonzero(np.diff(scores)), y.size - 1]
    tps = np.cumsum(y)[last].astype(np.float64)
    fps = (last + 1 - tps).astype(np.float64)
    return fps, tps, scores[last]


def roc_curve(y_true, scores, *, pos_label=1, drop_intermediate=True):
    r"""Receiver operating characteristic: TPR against FPR as the threshold goes down.

    Predicting positive when the score is at least a threshold :math:`t` gives

    .. math:: \mathrm{TPR}(t) = \frac{TP(t)}{P}, \qquad \mathrm{FPR}(t) = \frac{FP(t)}{N},

    with :math:`P` and :math:`N` the numbers of positive and negative samples. The curve
    starts at (0, 0) (threshold :math:`+\infty`) and ends at (1, 1).

    With one class only, one of the rates divides by zero: that rate is returned as all nan
    with an :class:`UndefinedMetricWarning` (scikit-learn's behaviour).

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels.
    scores : array-like of shape (n_samples,)
        Scores for the positive class: probabilities, logits, any monotone confidence.
    pos_label : int or str, default 1
        The positive class.
    drop_intermediate : bool, default True
        Drop thresholds that lie on a straight segment of the curve (they change neither the
        plot nor the area).

    Returns
    -------
    fpr : ndarray
        False positive rates, increasing.
    tpr : ndarray
        True positive rates, increasing.
    thresholds : ndarray
        Decreasing thresholds; ``thresholds[0]`` is ``np.inf``.

    Examples
    --------
    >>> fpr, tpr, thr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    fps, tps, thresholds = _curve_counts(y_true, scores, pos_label)
    if drop_intermediate and fps.size > 2:
        # A point is kept if the curve bends there (non-zero second difference).
        corner = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.flatnonzero(np.r_[True, corner, True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds]
    if fps[-1] == 0:
        warnings.warn("No negative samples in y_true: the false positive rate is undefined "
                      "and returned as nan.", UndefinedMetricWarning, stacklevel=2)
        fpr = np.full(fps.shape, np.nan)
    else:
        fpr = fps / fps[-1]
    if tps[-1] == 0:
        warnings.warn("No positive samples in y_true: the true positive rate is undefined "
                      "and returned as nan.", UndefinedMetricWarning, stacklevel=2)
        tpr = np.full(tps.shape, np.nan)
    else:
        tpr = tps / tps[-1]
    return fpr, tpr, thresholds


def roc_auc(y_true, scores, *, pos_label=1):
    r"""Area under the ROC curve.

    .. math:: \mathrm{AUC} = \int_0^1 \mathrm{TPR}\; d\,\mathrm{FPR}
              = P(s_+ > s_-) + \tfrac12 P(s_+ = s_-)

    the probability that a random positive sample scores higher than a random negative one
    (ties count half). 0.5 is chance, 1.0 a perfect ranking. Computed with the trapezoidal
    rule on :func:`roc_curve`.

    With one class only in ``y_true`` the AUC is undefined: returns ``nan`` and emits an
    :class:`UndefinedMetricWarning`, as scikit-learn 1.9 does (older scikit-learn raised a
    ``ValueError``).

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels.
    scores : array-like of shape (n_samples,)
        Scores for the positive class.
    pos_label : int or str, default 1
        The positive class.

    Returns
    -------
    float
        The area, in [0, 1], or nan with one class only.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y_true_arr = _check_labels(y_true, "y_true")
    scores = _check_scores(scores, "scores", n=y_true_arr.shape[0])
    y = _binary_target(y_true_arr, pos_label)
    if y.min() == y.max():
        warnings.warn(
            f"Only one class ({'positive' if y[0] else 'negative'}) is present in y_true: "
            "ROC AUC is undefined and returned as nan.", UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    fpr, tpr, _ = roc_curve(y, scores, pos_label=1)
    return float(np.trapezoid(tpr, fpr))


def precision_recall_curve(y_true, scores, *, pos_label=1):
    r"""Precision and recall for every threshold on the scores.

    Predicting positive when the score is at least :math:`t`,

    .. math:: P(t) = \frac{TP(t)}{TP(t) + FP(t)}, \qquad R(t) = \frac{TP(t)}{TP(t) + FN(t)}.

    As in scikit-learn, the arrays run from the lowest threshold (recall 1) to the highest, and
    end with the point (recall 0, precision 1), which has no threshold. With no positive
    sample in ``y_true`` recall is undefined: it is set to 1 with an
    :class:`UndefinedMetricWarning` (scikit-learn's choice).

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels.
    scores : array-like of shape (n_samples,)
        Scores for the positive class.
    pos_label : int or str, default 1
        The positive class.

    Returns
    -------
    precision : ndarray of shape (n_thresholds + 1,)
    recall : ndarray of shape (n_thresholds + 1,)
        Decreasing.
    thresholds : ndarray of shape (n_thresholds,)
        Increasing.

    Examples
    --------
    >>> p, r, t = precision_recall_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> p.round(3).tolist(), r.tolist()
    ([0.5, 0.667, 0.5, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5, 0.0])
    """
    fps, tps, thresholds = _curve_counts(y_true, scores, pos_label)
    predicted = tps + fps
    prec = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    if tps[-1] == 0:
        warnings.warn("No positive samples in y_true: recall is undefined and set to 1 for "
                      "all thresholds.", UndefinedMetricWarning, stacklevel=2)
        rec = np.ones_like(tps)
    else:
        rec = tps / tps[-1]
    return np.r_[prec[::-1], 1.0], np.r_[rec[::-1], 0.0], thresholds[::-1]


def average_precision(y_true, scores, *, pos_label=1):
    r"""Area under the precision-recall curve, as a step function.

    .. math:: \mathrm{AP} = \sum_k (R_k - R_{k-1})\, P_k

    the precision at each threshold weighted by the gain in recall (no interpolation, as in
    scikit-learn). A random ranking scores about the share of positives; a perfect one 1.0.
    With no positive sample it is 0.0 with an :class:`UndefinedMetricWarning`.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels.
    scores : array-like of shape (n_samples,)
        Scores for the positive class.
    pos_label : int or str, default 1
        The positive class.

    Returns
    -------
    float
        The average precision, in [0, 1].

    Examples
    --------
    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedMetricWarning)
        prec, rec, _ = precision_recall_curve(y_true, scores, pos_label=pos_label)
    if caught:
        warnings.warn("No positive samples in y_true: average precision is undefined and "
                      "returned as 0.0.", UndefinedMetricWarning, stacklevel=2)
    return float(max(0.0, -np.sum(np.diff(rec) * prec[:-1])))


# --------------------------------------------------------------------------------------------
# Segmentation: intersection over union
# --------------------------------------------------------------------------------------------

def _check_mask_pair(a, b, name_a, name_b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {a.shape} and "
                         f"{b.shape}.")
    if a.size == 0:
        raise ValueError(f"{name_a} and {name_b} are empty; expected masks with at least one "
                         "pixel.")
    for arr, name in ((a, name_a), (b, name_b)):
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be a numeric or boolean array, got dtype {arr.dtype}.")
    return a, b


def iou(mask_true, mask_pred, *, zero_division="warn"):
    r"""Intersection over union (Jaccard index) of two binary masks.

    .. math:: \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|}
              = \frac{TP}{TP + FP + FN}

    where :math:`A` and :math:`B` are the sets of foreground pixels (or any positions).

    Empty union: when neither mask has a foreground pixel the ratio is 0/0. The result is
    ``zero_division``: 0.0 with an :class:`UndefinedMetricWarning` by default (scikit-learn's
    ``jaccard_score``). In segmentation, predicting "no object" where there is none is a
    perfect answer; pass ``zero_division=1.0`` to count it so, or ``np.nan`` to leave such
    images out of a later ``np.nanmean``.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    mask_true, mask_pred : array-like of the same shape
        Binary masks: booleans, or numbers that are 0 (background) or 1 (foreground).
    zero_division : {"warn", 0.0, 1.0, np.nan}, default "warn"
        Value when the union is empty; "warn" means 0.0 with a warning.

    Returns
    -------
    float
        The IoU, in [0, 1].

    Examples
    --------
    >>> iou([[1, 1], [0, 0]], [[1, 0], [1, 0]])
    0.3333333333333333
    """
    value, should_warn = _check_zero_division(zero_division)
    a, b = _check_mask_pair(mask_true, mask_pred, "mask_true", "mask_pred")
    for arr, name in ((a, "mask_true"), (b, "mask_pred")):
        if arr.dtype.kind != "b" and not np.isin(arr, (0, 1)).all():
            bad = np.unique(arr[~np.isin(arr, (0, 1))])
            raise ValueError(
                f"{name} must be a binary mask (0/1 or bool), got values such as "
                f"{_describe(bad)}. For a label map with several classes use mean_iou; for "
                "probabilities threshold first, e.g. prob > 0.5."
            )
    a, b = a.astype(bool), b.astype(bool)
    union = int(np.count_nonzero(a | b))
    if union == 0:
        if should_warn:
            warnings.warn("IoU is ill-defined because both masks are empty (the union is "
                          "empty); returning 0.0. Use zero_division to choose the value.",
                          UndefinedMetricWarning, stacklevel=2)
        return value
    return float(np.count_nonzero(a & b) / union)


def mean_iou(label_true, label_pred, *, labels=None, ignore_index=None, return_per_class=False):
    r"""Mean over classes of the per-class IoU of two label maps.

    .. math:: \mathrm{mIoU} = \frac{1}{|K|} \sum_{k \in K}
              \frac{|\{y = k\} \cap \{\hat y = k\}|}{|\{y = k\} \cup \{\hat y = k\}|}

    Empty union: a class that appears in neither map has IoU 0/0; it is reported as nan in
    the per-class array and left out of the mean (:math:`K` holds the classes with a
    non-empty union), the usual convention of segmentation benchmarks. If no class is left,
    a ``ValueError`` is raised.

    With ``labels=None`` the classes are those present in either map, and the result equals
    scikit-learn's ``jaccard_score(..., average="macro")`` on the flattened maps.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    label_true, label_pred : array-like of integers, same shape
        Label maps (one class id per pixel), any shape, e.g. (height, width) or a batch.
    labels : array-like of int, optional
        The classes to score, e.g. ``range(num_classes)``. Default: classes present in either.
    ignore_index : int, optional
        Pixels whose true label is this value (often 255, "void") are left out.
    return_per_class : bool, default False
        Also return the per-class IoU array (aligned with the classes).

    Returns
    -------
    float
        The mean IoU.
    per_class : ndarray, optional
        IoU per class (nan where the union is empty), when ``return_per_class`` is True.
    classes : ndarray, optional
        The classes, when ``return_per_class`` is True.

    Examples
    --------
    >>> mean_iou([[0, 0], [1, 2]], [[0, 1], [1, 2]])
    0.6666666666666666
    """
    a, b = _check_mask_pair(label_true, label_pred, "label_true", "label_pred")
    a = _check_labels(a.ravel(), "label_true")
    b = _check_labels(b.ravel(), "label_pred")
    if a.dtype.kind == "U" or b.dtype.kind == "U":
        raise ValueError("label maps must hold integer class ids.")
    if ignore_index is not None:
        keep = a != ignore_index
        a, b = a[keep], b[keep]
        if a.size == 0:
            raise ValueError(f"Every pixel of label_true equals ignore_index={ignore_index!r}; "
                             "there is nothing to score.")
    if labels is None:
        classes = np.union1d(a, b)
    else:
        classes = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
        if classes.ndim != 1 or classes.size == 0 or classes.dtype.kind not in "iu":
            raise ValueError(f"labels must be a non-empty 1-D list of integer classes, got "
                             f"{labels!r}.")
    k = classes.size
    t, p = _index_of(a, classes), _index_of(b, classes)
    inter = np.bincount(t[(t >= 0) & (t == p)], minlength=k).astype(np.float64)
    union = (np.bincount(t[t >= 0], minlength=k) + np.bincount(p[p >= 0], minlength=k)
             - inter).astype(np.float64)
    per_class = np.full(k, np.nan)
    np.divide(inter, union, out=per_class, where=union > 0)
    if np.isnan(per_class).all():
        raise ValueError(f"None of the classes {_describe(classes)} occurs in either label map; "
                         "the mean IoU is undefined.")
    mean = float(np.nanmean(per_class))
    if return_per_class:
        return mean, per_class, classes
    return mean


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationBins:
    """Per-bin statistics of a reliability diagram (see :func:`expected_calibration_error`).

    Each attribute is an array with one entry per bin. Empty bins have ``count`` 0 and nan
    ``confidence`` and ``accuracy``.

    Defined in the chapter on evaluation.

    Attributes
    ----------
    lower, upper : ndarray
        Bin edges on the confidence axis.
    count : ndarray of int
        Number of samples in each bin.
    confidence : ndarray
        Mean predicted confidence in each bin.
    accuracy : ndarray
        Fraction of correct predictions in each bin.
    """

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def gap(self):
        """``accuracy - confidence`` per bin (negative: overconfident)."""
        return self.accuracy - self.confidence

    def to_dict(self):
        """The bins as a dict of lists, e.g. for ``pandas.DataFrame`` or JSON."""
        return {name: getattr(self, name).tolist()
                for name in ("lower", "upper", "count", "confidence", "accuracy")}


def _confidence_and_correct(y_true, prob):
    """Top-label confidence and correctness for binary (1-D) or multiclass (2-D) probs."""
    y_true = _check_labels(y_true, "y_true")
    if y_true.dtype.kind == "U":
        raise ValueError("y_true must hold integer class ids 0..K-1 to match the columns of prob.")
    p = np.asarray(prob)
    if p.dtype.kind not in "biuf":
        raise ValueError(f"prob must be numeric, got dtype {p.dtype}.")
    p = p.astype(np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim not in (1, 2):
        raise ValueError(f"prob must have shape (n_samples,) for a binary problem or "
                         f"(n_samples, n_classes), got {p.shape}.")
    if p.shape[0] != y_true.shape[0]:
        raise ValueError(f"y_true and prob must have the same number of samples, got "
                         f"{y_true.shape[0]} and {p.shape[0]}.")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("prob must hold finite probabilities in [0, 1]; apply a sigmoid or "
                         "softmax to logits first.")
    if p.ndim == 1:
        if not np.isin(y_true, (0, 1)).all():
            raise ValueError(f"With 1-D prob (probability of class 1), y_true must be 0/1, got "
                             f"classes {_describe(np.unique(y_true))}.")
        pred = (p > 0.5).astype(np.int64)
        conf = np.where(pred == 1, p, 1.0 - p)
    else:
        k = p.shape[1]
        sums = p.sum(axis=1)
        if not np.allclose(sums, 1.0, atol=1e-3):
            worst = sums[np.argmax(np.abs(sums - 1.0))]
            raise ValueError(f"Each row of prob must sum to 1 (class probabilities), found a row "
                             f"summing to {worst:g}. Apply a softmax first.")
        if y_true.min() < 0 or y_true.max() >= k:
            raise ValueError(f"y_true must hold class ids in 0..{k - 1} (prob has {k} columns), "
                             f"got classes {_describe(np.unique(y_true))}.")
        pred = np.argmax(p, axis=1)
        conf = p[np.arange(p.shape[0]), pred]
    return conf, (pred == y_true).astype(np.float64)


def expected_calibration_error(y_true, prob, n_bins=10, strategy="uniform"):
    r"""Expected calibration error (ECE) and the bins of a reliability diagram.

    Each sample's confidence is the probability of the class the model predicts
    (:math:`\max(p, 1-p)` for binary probabilities). Samples are grouped into bins
    :math:`B_1..B_M` by confidence, and

    .. math:: \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,
              \bigl|\mathrm{acc}(B_m) - \mathrm{conf}(B_m)\bigr|

    where :math:`\mathrm{acc}` is the fraction of correct predictions and
    :math:`\mathrm{conf}` the mean confidence in the bin (Guo et al., 2017). A calibrated
    model (among predictions made with 80 % confidence, 80 % are right) has ECE near 0;
    an overconfident one has accuracy below confidence. With few samples per bin the ECE is
    biased upwards, so compare models on the same data and binning.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels: 0/1 for 1-D ``prob``, class ids 0..K-1 for 2-D ``prob``.
    prob : array-like of shape (n_samples,) or (n_samples, n_classes)
        Probability of class 1, or the rows of class probabilities (summing to 1).
    n_bins : int, default 10
        Number of bins.
    strategy : {"uniform", "quantile"}, default "uniform"
        "uniform": equal-width bins on [0, 1] (bin m is [lower, upper), the last one includes
        1). "quantile": edges at quantiles of the confidences, so bins hold about equally many
        samples.

    Returns
    -------
    ece : float
        The expected calibration error, in [0, 1].
    bins : CalibrationBins
        Edges, counts, mean confidence and accuracy per bin, as drawn by
        :func:`mmtutor.plots.plot_reliability`.

    Examples
    --------
    >>> ece, bins = expected_calibration_error([1, 0, 0, 1], [0.95, 0.85, 0.3, 0.65], n_bins=5)
    >>> round(ece, 4)
    0.3625
    >>> bins.count.tolist()
    [0, 0, 0, 2, 2]
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}.")
    conf, correct = _confidence_and_correct(y_true, prob)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        edges = np.quantile(conf, np.linspace(0.0, 1.0, n_bins + 1))
    # side="right": a confidence equal to an inner edge goes to the bin that starts there.
    idx = np.searchsorted(edges[1:-1], conf, side="right")
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    correct_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    nonempty = count > 0
    mean_conf = np.full(n_bins, np.nan)
    mean_acc = np.full(n_bins, np.nan)
    mean_conf[nonempty] = conf_sum[nonempty] / count[nonempty]
    mean_acc[nonempty] = correct_sum[nonempty] / count[nonempty]
    ece = float(np.sum(count[nonempty] / conf.size
                       * np.abs(mean_acc[nonempty] - mean_conf[nonempty])))
    bins = CalibrationBins(lower=edges[:-1].copy(), upper=edges[1:].copy(), count=count,
                           confidence=mean_conf, accuracy=mean_acc)
    return ece, bins


# --------------------------------------------------------------------------------------------
# Uncertainty and comparison of two models
# --------------------------------------------------------------------------------------------

def _check_metric(metric):
    if not callable(metric):
        raise TypeError(f"metric must be a function metric(y_true, y_pred) -> float, e.g. "
                        f"mmtutor.metrics.accuracy, got {metric!r}.")


def _check_same_length(arrays, names):
    arrays = [np.asarray(a) for a in arrays]
    for arr, name in zip(arrays, names):
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty array, got {arr!r}.")
    n = arrays[0].shape[0]
    for arr, name in zip(arrays[1:], names[1:]):
        if arr.shape[0] != n:
            raise ValueError(f"{names[0]} and {name} must have the same number of samples, got "
                             f"{n} and {arr.shape[0]}.")
    return arrays, n


def _check_boot_args(n_boot, alpha):
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
        raise ValueError(f"n_boot must be an integer of at least 10, got {n_boot!r}.")
    if not isinstance(alpha, (float, int, np.floating)) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1), e.g. 0.05 for a 95 % interval, "
                         f"got {alpha!r}.")


def _resample_indices(rng, n, n_boot, strata):
    """Bootstrap index sets, resampling within each stratum if ``strata`` is given."""
    if strata is None:
        return rng.integers(0, n, size=(n_boot, n))
    out = np.empty((n_boot, n), dtype=np.int64)
    start = 0
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        out[:, start:start + members.size] = members[
            rng.integers(0, members.size, size=(n_boot, members.size))]
        start += members.size
    return out


def _boot_values(metric, arrays, idx):
    """Evaluate ``metric`` on each resample; warnings of degenerate resamples are counted."""
    values = np.empty(idx.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for i, rows in enumerate(idx):
            values[i] = float(metric(*(a[rows] for a in arrays)))
    return values


def bootstrap_ci(metric, y_true, y_pred, n_boot=1000, alpha=0.05, seed=0, *, stratify=False):
    r"""Percentile bootstrap confidence interval for any metric.

    The test set is one sample of the data a model will meet; drawing :math:`B` new test sets
    of the same size from it with replacement and computing the metric on each shows how much
    the number would move. The interval is the :math:`\alpha/2` and :math:`1-\alpha/2`
    quantiles of the :math:`B` values:

    .. math:: \bigl[\, q_{\alpha/2}(m^*_1..m^*_B),\; q_{1-\alpha/2}(m^*_1..m^*_B) \,\bigr]

    Resamples on which the metric is undefined (it returns nan, e.g. ROC AUC on a resample
    with one class) are left out with one :class:`UndefinedMetricWarning` saying how many;
    ``stratify=True`` avoids them by resampling within each class of ``y_true``.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred) -> float``, e.g. :func:`accuracy` or :func:`roc_auc`
        (``y_pred`` may then hold scores). Use ``functools.partial`` for keyword arguments.
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples, ...)
        Predictions, scores or probabilities, whatever ``metric`` takes; rows are resampled.
    n_boot : int, default 1000
        Number of bootstrap resamples (at least 10).
    alpha : float, default 0.05
        1 - confidence level (0.05 gives a 95 % interval).
    seed : int, default 0
        Seed of the resampling: the same seed gives the same interval.
    stratify : bool, default False
        Resample within each class of ``y_true`` (keeps class counts fixed).

    Returns
    -------
    point : float
        The metric on the full data.
    low, high : float
        Bounds of the percentile interval.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 500)
    >>> y_hat = np.where(rng.random(500) < 0.8, y, 1 - y)
    >>> point, low, high = bootstrap_ci(accuracy, y, y_hat, n_boot=200)
    >>> low < point < high
    True
    """
    _check_metric(metric)
    _check_boot_args(n_boot, alpha)
    (y_true_arr, y_pred_arr), n = _check_same_length([y_true, y_pred], ["y_true", "y_pred"])
    point = float(metric(y_true_arr, y_pred_arr))  # validates the inputs through the metric
    rng = np.random.default_rng(seed)
    idx = _resample_indices(rng, n, n_boot, y_true_arr if stratify else None)
    values = _boot_values(metric, (y_true_arr, y_pred_arr), idx)
    values = _drop_undefined(values, n_boot)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def _drop_undefined(values, n_boot):
    bad = np.isnan(values)
    if bad.any():
        if bad.sum() > n_boot // 2:
            raise ValueError(f"The metric is undefined (nan) on {int(bad.sum())} of {n_boot} "
                             "bootstrap resamples; use stratify=True or more data.")
        warnings.warn(f"The metric is undefined on {int(bad.sum())} of {n_boot} bootstrap "
                      "resamples; they are left out of the interval. stratify=True avoids "
                      "this.", UndefinedMetricWarning, stacklevel=3)
    return values[~bad]


@dataclass(frozen=True)
class McNemarResult:
    """Result of :func:`mcnemar_test`; unpacks as ``statistic, pvalue``.

    Defined in the chapter on evaluation.

    Attributes
    ----------
    statistic : float
        :math:`\\min(b, c)` for the exact test, the chi-square statistic otherwise.
    pvalue : float
        Two-sided p-value.
    b : int
        Samples that model A gets right and model B wrong.
    c : int
        Samples that model B gets right and model A wrong.
    exact : bool
        Whether the exact binomial test was used.
    """

    statistic: float
    pvalue: float
    b: int
    c: int
    exact: bool

    def __iter__(self):
        return iter((self.statistic, self.pvalue))


def _binom_two_sided_half(k, n):
    """Two-sided p-value of k successes in n fair coin flips: 2 P(X <= min(k, n-k)), capped.

    Summed in log space (log C(n, i) by the recurrence C(n, i) = C(n, i-1) (n-i+1) / i), so
    that large n does not overflow 2**n.
    """
    k = min(k, n - k)
    i = np.arange(1, k + 1, dtype=np.float64)
    log_comb = np.r_[0.0, np.cumsum(np.log(n - i + 1) - np.log(i))]
    log_terms = log_comb - n * math.log(2.0)
    top = log_terms.max()
    tail = math.exp(top) * float(np.sum(np.exp(log_terms - top)))
    return min(1.0, 2.0 * tail)


def mcnemar_test(y_true, pred_a, pred_b, exact=None):
    r"""McNemar's test: do two classifiers have the same error rate on the same samples?

    Only the discordant samples carry information: :math:`b` = A right and B wrong,
    :math:`c` = A wrong and B right. Under the null hypothesis (equal accuracy) each
    discordant sample is a fair coin flip, :math:`b \sim \mathrm{Binomial}(b + c, 1/2)`.

    - exact test: :math:`p = \min\bigl(1,\ 2\,P(X \le \min(b, c))\bigr)`,
      :math:`X \sim \mathrm{Bin}(b + c, 1/2)`; the statistic is :math:`\min(b, c)`.
    - chi-square test with continuity correction (Edwards):

      .. math:: \chi^2 = \frac{(\max(|b - c| - 1, 0))^2}{b + c}, \qquad
                p = P(\chi^2_1 \ge \chi^2).

    With no discordant sample the two models agree everywhere: statistic 0, p-value 1.

    It is the right test for two models scored on one test set (the samples are paired);
    comparing two accuracies as if they came from independent samples overstates the
    uncertainty.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    pred_a, pred_b : array-like of shape (n_samples,)
        Predicted labels of model A and model B on the same samples.
    exact : bool or None, default None
        Use the exact binomial test (True), the chi-square approximation (False), or choose:
        exact when :math:`b + c < 25`, where the approximation is poor.

    Returns
    -------
    McNemarResult
        ``statistic, pvalue = mcnemar_test(...)``; also ``.b``, ``.c`` and ``.exact``.

    Examples
    --------
    >>> y = [1, 1, 1, 1, 0, 0, 0, 0]
    >>> a = [1, 1, 1, 1, 0, 0, 0, 1]
    >>> b = [0, 0, 0, 1, 0, 0, 0, 0]
    >>> stat, p = mcnemar_test(y, a, b)
    >>> stat, round(p, 4)
    (1.0, 0.625)
    """
    y_true, pred_a = _check_pair(y_true, pred_a, "y_true", "pred_a")
    _, pred_b = _check_pair(y_true, pred_b, "y_true", "pred_b")
    if exact not in (None, True, False):
        raise ValueError(f"exact must be True, False or None, got {exact!r}.")
    right_a, right_b = pred_a == y_true, pred_b == y_true
    b = int(np.count_nonzero(right_a & ~right_b))
    c = int(np.count_nonzero(~right_a & right_b))
    n = b + c
    use_exact = (n < 25) if exact is None else bool(exact)
    if n == 0:
        return McNemarResult(0.0, 1.0, b, c, use_exact)
    if use_exact:
        return McNemarResult(float(min(b, c)), _binom_two_sided_half(b, n), b, c, True)
    stat = max(abs(b - c) - 1, 0) ** 2 / n
    # Survival function of chi-square with 1 degree of freedom: P(Z^2 >= x) = erfc(sqrt(x/2)).
    return McNemarResult(float(stat), float(math.erfc(math.sqrt(stat / 2.0))), b, c, False)


@dataclass(frozen=True)
class PairedBootstrapResult:
    """Result of :func:`paired_bootstrap_test`; unpacks as ``statistic, pvalue``.

    Defined in the chapter on evaluation.

    Attributes
    ----------
    statistic : float
        ``metric(A) - metric(B)`` on the full data.
    pvalue : float
        Two-sided bootstrap p-value for "no difference".
    low, high : float
        Percentile confidence interval of the difference.
    score_a, score_b : float
        The metric of each model on the full data.
    """

    statistic: float
    pvalue: float
    low: float
    high: float
    score_a: float
    score_b: float

    def __iter__(self):
        return iter((self.statistic, self.pvalue))


def paired_bootstrap_test(metric, y_true, pred_a, pred_b, n_boot=1000, alpha=0.05, seed=0):
    r"""Paired bootstrap test of the difference of a metric between two models.

    Both models are scored on the same resampled rows, so the difference
    :math:`\delta^* = m(A^*) - m(B^*)` keeps the pairing (a hard sample is hard for both).
    With observed difference :math:`\hat\delta`, the bootstrap distribution centred on it
    approximates the null distribution, and the two-sided p-value is

    .. math:: p = \frac{1 + \#\{\, i : |\delta^*_i - \hat\delta| \ge |\hat\delta| \,\}}{B + 1}

    (the +1 keeps a finite bootstrap from reporting p = 0). Works for any metric, unlike
    McNemar's test, which is for accuracy.

    Defined in the chapter on evaluation.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred) -> float``.
    y_true : array-like of shape (n_samples,)
        True labels.
    pred_a, pred_b : array-like of shape (n_samples, ...)
        Predictions (or scores) of model A and model B on the same samples.
    n_boot : int, default 1000
        Number of bootstrap resamples.
    alpha : float, default 0.05
        1 - confidence level of the interval for the difference.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    PairedBootstrapResult
        ``statistic, pvalue = paired_bootstrap_test(...)``; also ``.low``, ``.high``,
        ``.score_a`` and ``.score_b``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 400)
    >>> good = np.where(rng.random(400) < 0.9, y, 1 - y)
    >>> poor = np.where(rng.random(400) < 0.6, y, 1 - y)
    >>> result = paired_bootstrap_test(accuracy, y, good, poor, n_boot=200)
    >>> result.statistic > 0, result.pvalue < 0.01
    (True, True)
    """
    _check_metric(metric)
    _check_boot_args(n_boot, alpha)
    (y, a, b), n = _check_same_length([y_true, pred_a, pred_b], ["y_true", "pred_a", "pred_b"])
    score_a, score_b = float(metric(y, a)), float(metric(y, b))
    delta = score_a - score_b
    rng = np.random.default_rng(seed)
    idx = _resample_indices(rng, n, n_boot, None)
    deltas = _boot_values(metric, (y, a), idx) - _boot_values(metric, (y, b), idx)
    deltas = _drop_undefined(deltas, n_boot)
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    extreme = np.count_nonzero(np.abs(deltas - delta) >= abs(delta) - 1e-12)
    pvalue = (1 + extreme) / (deltas.size + 1)
    return PairedBootstrapResult(float(delta), float(pvalue), float(low), float(high),
                                 score_a, score_b)
