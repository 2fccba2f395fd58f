"""Stacking: a scikit-learn meta-classifier on held-out unimodal predictions (chapter on fusion).

Decision-level fusion whose combiner is *learned* from data rather than fixed: each unimodal
model predicts class probabilities for samples it was not trained on, and a logistic regression
learns how much to trust each modality. It is a scikit-learn estimator, not a Keras layer, so it
lives apart from the layers of :mod:`mmtutor.fusion` (which re-exports it).
"""

import hashlib
import warnings

import numpy as np

from mmtutor._validation import check_int

__all__ = ["StackingFusion", "fit_stacking"]


def _fingerprint(array):
    array = np.ascontiguousarray(array)
    return hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()


class StackingFusion:
    """Stacking: a logistic-regression meta-classifier on unimodal predicted probabilities.

    Fit it on predictions that the unimodal models made for *held-out* samples (a validation
    split they were not trained on), then score it on a third split. Fitting and scoring it
    on the same predictions would measure memory, not generalisation: :meth:`score` refuses,
    and :meth:`predict_proba` warns, when given exactly the array it was fitted on.

    The features are the log-probabilities of every modality, concatenated; a binary model
    may give ``(n,)`` or ``(n, 1)`` probabilities of the positive class, a multi-class one
    ``(n, K)``.

    Defined in the chapter on fusion.

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularisation strength of the logistic regression.
    max_iter : int, default 1000

    Attributes
    ----------
    classifier_ : sklearn.linear_model.LogisticRegression
    modalities_ : list of str or None
        The modality names, when fitted on a dict.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.fusion import StackingFusion
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 200)
    >>> p = {"image": np.clip(0.5 + 0.3 * (2 * y - 1) + 0.2 * rng.normal(size=200), 0.01, 0.99),
    ...      "audio": rng.uniform(0.01, 0.99, 200)}
    >>> stack = StackingFusion().fit(p, y)
    >>> stack.predict_proba({k: v[:3] for k, v in p.items()}).shape
    (3, 2)
    """

    def __init__(self, C=1.0, max_iter=1000):
        if not isinstance(C, (int, float, np.floating, np.integer)) or isinstance(C, bool) \
                or not C > 0:
            raise ValueError(f"C must be a positive number, got {C!r}")
        self.C = float(C)
        self.max_iter = check_int(max_iter, "max_iter", minimum=1)

    def _features(self, unimodal_probs, name):
        if isinstance(unimodal_probs, dict):
            names = list(unimodal_probs)
            arrays = [unimodal_probs[k] for k in names]
        elif isinstance(unimodal_probs, (list, tuple)):
            names = None
            arrays = list(unimodal_probs)
        else:
            raise ValueError(
                f"{name} must be a dict (modality name -> probabilities) or a list of arrays, "
                f"got {type(unimodal_probs).__name__}"
            )
        if not arrays:
            raise ValueError(f"{name} is empty: give the predictions of at least one modality")
        if hasattr(self, "classifier_"):
            self._check_same_modalities(names, len(arrays), name)
        cols = []
        n = None
        for k, arr in enumerate(arrays):
            label = names[k] if names else f"modality {k}"
            arr = np.asarray(arr, dtype="float64")
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2 or arr.shape[0] == 0:
                raise ValueError(
                    f"{name}[{label!r}] must have shape (n,) or (n, K), got {arr.shape}"
                )
            if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
                raise ValueError(
                    f"{name}[{label!r}] must hold probabilities in [0, 1]; got values in "
                    f"[{np.nanmin(arr):.3g}, {np.nanmax(arr):.3g}]"
                    + (" and non-finite values" if not np.all(np.isfinite(arr)) else "")
                )
            if n is not None and arr.shape[0] != n:
                raise ValueError(
                    f"{name}: every modality needs the same number of samples; {label!r} has "
                    f"{arr.shape[0]}, the first has {n}"
                )
            n = arr.shape[0]
            if arr.shape[1] == 1:  # binary: the probability of class 1
                arr = np.concatenate([1.0 - arr, arr], axis=1)
            cols.append(np.log(np.clip(arr, 1e-7, 1.0)))
        return names, np.concatenate(cols, axis=1)

    def _check_same_modalities(self, names, count, name):
        if names != self.modalities_ or count != self._num_modalities:
            raise ValueError(
                f"{name} has modalities {names if names else count}, but the stacker was "
                f"fitted on {self.modalities_ if self.modalities_ else self._num_modalities}"
            )

    def fit(self, unimodal_probs, y):
        """Fit the meta-classifier on held-out unimodal predictions.

        Parameters
        ----------
        unimodal_probs : dict of str -> array, or list of arrays
            Per-modality predicted probabilities on a held-out (validation) split.
        y : array of shape (n,)
            The true labels of that split.

        Returns
        -------
        StackingFusion
            ``self``, fitted.
        """
        from sklearn.linear_model import LogisticRegression

        for attr in ("classifier_", "modalities_", "_num_modalities", "_fit_fingerprint"):
            self.__dict__.pop(attr, None)
        names, X = self._features(unimodal_probs, "unimodal_probs")
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must have shape ({X.shape[0]},), one label per sample, got {y.shape}"
            )
        if np.unique(y).size < 2:
            raise ValueError("y must contain at least two classes to fit a classifier")
        self.classifier_ = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.classifier_.fit(X, y)
        self.modalities_ = names
        self._num_modalities = len(unimodal_probs)
        self._fit_fingerprint = _fingerprint(X)
        return self

    def _fitted_features(self, unimodal_probs):
        if not hasattr(self, "classifier_"):
            raise RuntimeError("This StackingFusion is not fitted yet: call fit() first")
        return self._features(unimodal_probs, "unimodal_probs")[1]

    def predict_proba(self, unimodal_probs):
        """Class probabilities, shape ``(n, n_classes)``.

        Warns (``UserWarning``) when given the very predictions it was fitted on.
        """
        X = self._fitted_features(unimodal_probs)
        if _fingerprint(X) == self._fit_fingerprint:
            warnings.warn(
                "StackingFusion is predicting on the same predictions it was fitted on; scores "
                "computed from these are optimistic. Use predictions on a separate split.",
                UserWarning,
                stacklevel=2,
            )
        return self.classifier_.predict_proba(X)

    def predict(self, unimodal_probs):
        """Predicted class labels, shape ``(n,)``."""
        X = self._fitted_features(unimodal_probs)
        return self.classifier_.predict(X)

    def score(self, unimodal_probs, y):
        """Accuracy on a split that the stacker was *not* fitted on.

        Raises
        ------
        ValueError
            If ``unimodal_probs`` are the predictions the stacker was fitted on.
        """
        X = self._fitted_features(unimodal_probs)
        if _fingerprint(X) == self._fit_fingerprint:
            raise ValueError(
                "StackingFusion.score was given the same predictions it was fitted on. Fit on "
                "predictions for a validation split and score on a separate test split."
            )
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must have shape ({X.shape[0]},), one label per sample, got {y.shape}"
            )
        return float(np.mean(self.classifier_.predict(X) == y))


def fit_stacking(unimodal_val_probs, y_val, *, C=1.0, max_iter=1000):
    """Fit a :class:`StackingFusion` meta-classifier on held-out unimodal predictions.

    Defined in the chapter on fusion.

    Parameters
    ----------
    unimodal_val_probs : dict of str -> array, or list of arrays
        Each unimodal model's predicted probabilities on the validation split (not the split
        the unimodal models were trained on, and not the one the stacker will be scored on).
    y_val : array of shape (n,)
    C : float, default 1.0
    max_iter : int, default 1000

    Returns
    -------
    StackingFusion
        Fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.fusion import fit_stacking
    >>> y = np.array([0, 1] * 50)
    >>> stack = fit_stacking({"a": 0.2 + 0.6 * y, "b": np.full(100, 0.5)}, y)
    >>> stack.predict({"a": np.array([0.8]), "b": np.array([0.5])})
    array([1])
    """
    return StackingFusion(C=C, max_iter=max_iter).fit(unimodal_val_probs, y_val)
