"""Measures of the relationships between modalities: cross-correlation, mutual information, CCA.

Defined in the chapter on core concepts ("Intermodal relationships").

Three questions, three tools:

- :func:`cross_correlation` — do two *time signals* (the rhythm of the words and the loudness of
  the voice) move together, and with what delay?
- :func:`mutual_information`, :func:`conditional_mutual_information`, :func:`entropy` — how
  many bits does one *discrete* variable (a modality's cue) tell about another (the label), alone
  or together with a third?
- :func:`cca` — which linear combinations of two sets of *features* (an image embedding and an
  audio embedding) are most correlated?

Everything is NumPy; the results agree with ``numpy.correlate``, scikit-learn's
``mutual_info_score`` (divided by ln 2) and a direct eigen-decomposition, as the tests check.
"""

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "cross_correlation",
    "entropy",
    "mutual_information",
    "conditional_mutual_information",
    "CCAResult",
    "cca",
]

_CORRECTIONS = (None, "miller-madow")


# --------------------------------------------------------------------------------------------
# Cross-correlation


def _check_signal(name, x):
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 1-D array of numbers, got {type(x).__name__}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D signal, got an array of shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"{name} must have at least 2 samples, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.ptp(arr) == 0:
        raise ValueError(f"{name} is constant (every value is {arr[0]!r}): its correlation is undefined")
    return arr


def cross_correlation(a, b, max_lag=None):
    """Normalised cross-correlation of two equally long signals, for lags ``-max_lag..max_lag``.

    Defined in the chapter on core concepts ("Intermodal relationships").

    With means :math:`\\bar a, \\bar b` and standard deviations :math:`\\sigma_a, \\sigma_b`
    over all ``n`` samples, the value at lag :math:`k` is

    .. math:: r_{ab}(k) = \\frac{1}{n\\,\\sigma_a \\sigma_b}
              \\sum_{t} (a_t - \\bar a)(b_{t+k} - \\bar b),

    summed over the ``n - |k|`` indices where both samples exist. A peak at a positive lag
    ``k`` means that ``b`` follows ``a`` ``k`` samples later (``b`` is ``a`` delayed). Dividing
    by ``n`` rather than ``n - |k|`` (the usual "biased" estimate) keeps every value in
    ``[-1, 1]`` and damps the noisy values at large lags; at lag 0 the value is Pearson's
    correlation coefficient.

    Parameters
    ----------
    a, b : array-like of shape (n,)
        Two signals sampled at the same times (e.g. two envelopes with the same hop), finite and
        not constant.
    max_lag : int, optional
        Largest lag, in samples, in ``[0, n - 1]``; default ``n - 1`` (every lag).

    Returns
    -------
    lags : numpy.ndarray of int, shape (2 * max_lag + 1,)
        ``-max_lag, ..., max_lag``.
    values : numpy.ndarray of float, shape (2 * max_lag + 1,)
        :math:`r_{ab}(k)` for each lag, in ``[-1, 1]``.

    Raises
    ------
    ValueError
        If a signal is not 1-D, has NaN or infinite values, is constant, if the lengths differ,
        or if ``max_lag`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.relations import cross_correlation
    >>> a = np.sin(np.linspace(0, 20, 200))
    >>> b = np.roll(a, 7)  # b is a delayed by 7 samples
    >>> lags, r = cross_correlation(a, b, max_lag=20)
    >>> int(lags[np.argmax(r)])
    7
    """
    a = _check_signal("a", a)
    b = _check_signal("b", b)
    n = a.size
    if b.size != n:
        raise ValueError(f"a and b must have the same length, got {n} and {b.size} samples")
    if max_lag is None:
        max_lag = n - 1
    if isinstance(max_lag, bool) or not isinstance(max_lag, numbers.Integral):
        raise TypeError(f"max_lag must be an integer in [0, {n - 1}], got {max_lag!r}")
    if not 0 <= max_lag <= n - 1:
        raise ValueError(f"max_lag must be in [0, {n - 1}] (signals of {n} samples), got {max_lag}")
    max_lag = int(max_lag)
    a0 = (a - a.mean()) / a.std()
    b0 = (b - b.mean()) / b.std()
    lags = np.arange(-max_lag, max_lag + 1)
    values = np.empty(lags.size)
    for i, k in enumerate(lags):
        if k >= 0:
            values[i] = np.dot(a0[: n - k], b0[k:])
        else:
            values[i] = np.dot(a0[-k:], b0[: n + k])
    return lags, np.clip(values / n, -1.0, 1.0)


# --------------------------------------------------------------------------------------------
# Entropy and mutual information of discrete variables


def _codes(name, x, n=None):
    """Integer codes of a discrete variable; a 2-D array is one joint variable (one per row)."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array of discrete values, got a single string {x!r}")
    arr = np.asarray(x)
    if arr.dtype == object:
        try:
            arr = arr.astype(str)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold discrete values (ints, bools or strings)") from None
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (one variable) or 2-D (n, k) (k variables taken jointly), "
                         f"got shape {arr.shape}")
    if arr.shape[0] == 0 or (arr.ndim == 2 and arr.shape[1] == 0):
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} samples but the first variable has {n}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if not np.all(arr == np.round(arr)):
            raise ValueError(
                f"{name} must be discrete (labels, cues, categories); got non-integer floats such as "
                f"{arr[arr != np.round(arr)].ravel()[0]!r}. Bin a continuous variable first"
            )
    elif arr.dtype.kind not in "iubUS":
        raise TypeError(f"{name} must hold discrete values (ints, bools or strings), got dtype {arr.dtype}")
    if arr.ndim == 1:
        return np.unique(arr, return_inverse=True)[1].ravel()
    columns = [np.unique(arr[:, j], return_inverse=True)[1].ravel() for j in range(arr.shape[1])]
    return np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)[1].ravel()


def _check_base(base):
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not np.isfinite(base) or base <= 1:
        raise ValueError(f"base must be a number > 1 (2 for bits, e for nats), got {base!r}")
    return float(base)


def _check_correction(correction):
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {_CORRECTIONS}, got {correction!r}")
    return correction


def _entropy_nats(codes, correction):
    counts = np.bincount(codes)
    counts = counts[counts > 0]
    p = counts / counts.sum()
    h = float(-(p * np.log(p)).sum())
    if correction == "miller-madow":
        h += (counts.size - 1) / (2.0 * codes.size)
    return h


def _joint(*codes):
    return np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)[1].ravel()


def entropy(x, *, base=2, correction=None):
    """Shannon entropy of a discrete variable, estimated from samples (plug-in).

    Defined in the chapter on core concepts ("Intermodal relationships").

    .. math:: \\hat H(X) = -\\sum_x \\hat p(x) \\log \\hat p(x), \\qquad
              \\hat p(x) = \\frac{\\#\\{i : x_i = x\\}}{n}.

    Parameters
    ----------
    x : array-like of shape (n,) or (n, k)
        Discrete values (ints, bools, strings). A 2-D array is read as ``k`` variables taken
        jointly (each row is one value of the joint variable).
    base : float, default 2
        Logarithm base: 2 gives bits, ``numpy.e`` nats.
    correction : {None, "miller-madow"}, default None
        ``"miller-madow"`` adds ``(m - 1) / (2 n)`` nats, ``m`` the number of values seen: the
        first-order correction of the plug-in estimate's downward bias.

    Returns
    -------
    float
        The entropy, ``>= 0``.

    Examples
    --------
    >>> from mmtutor.relations import entropy
    >>> entropy([0, 1, 0, 1])
    1.0
    """
    base = _check_base(base)
    correction = _check_correction(correction)
    return float(_entropy_nats(_codes("x", x), correction) / np.log(base))


def mutual_information(x, y, *, base=2, correction=None):
    """Mutual information of two discrete variables, in bits, estimated from paired samples.

    Defined in the chapter on core concepts ("Intermodal relationships").

    The plug-in estimate replaces the probabilities by the observed frequencies:

    .. math:: \\hat I(X; Y) = \\sum_{x, y} \\hat p(x, y)
              \\log_2 \\frac{\\hat p(x, y)}{\\hat p(x)\\, \\hat p(y)}
              = \\hat H(X) + \\hat H(Y) - \\hat H(X, Y).

    It is 0 exactly when the observed table is a product table, and it equals scikit-learn's
    ``mutual_info_score(x, y) / ln 2``.

    **Bias.** The plug-in estimate is biased *upwards*: even two independent variables show a
    little dependence in a finite sample. For independent variables with ``|X|`` and ``|Y|``
    values its expectation is about :math:`(|X| - 1)(|Y| - 1) / (2 n \\ln 2)` bits (0.0004 bits
    for two binary variables and ``n = 2000``, but 0.05 bits for 10 x 10 values and ``n = 1000``).
    ``correction="miller-madow"`` subtracts that first-order term (computed from the number of
    values and pairs actually seen); it may then return a small negative number. Compare a
    value with the same estimate on shuffled pairs before reading meaning into it.

    Parameters
    ----------
    x, y : array-like of shape (n,) or (n, k)
        Paired discrete values (ints, bools, strings). A 2-D array is ``k`` variables taken
        jointly: ``mutual_information(np.c_[text, marker], label)`` is
        :math:`I(\\text{text}, \\text{marker}; \\text{label})`.
    base : float, default 2
        Logarithm base: 2 gives bits, ``numpy.e`` nats.
    correction : {None, "miller-madow"}, default None
        Bias correction, see above.

    Returns
    -------
    float
        The estimate (``>= 0`` without correction; at most ``min(H(X), H(Y))``).

    Raises
    ------
    ValueError
        If the lengths differ, an input is empty or holds non-integer floats (bin a continuous
        variable first), or ``base`` or ``correction`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.relations import mutual_information
    >>> y = np.array([0, 1] * 50)
    >>> mutual_information(y, y)           # a fair coin tells 1 bit about itself
    1.0
    >>> mutual_information(y, np.zeros(100, dtype=int))
    0.0
    """
    base = _check_base(base)
    correction = _check_correction(correction)
    cx = _codes("x", x)
    cy = _codes("y", y, n=cx.size)
    mi = _entropy_nats(cx, correction) + _entropy_nats(cy, correction) - _entropy_nats(_joint(cx, cy), correction)
    if correction is None:
        mi = max(mi, 0.0)  # rounding can give -1e-17 for independent tables
    return float(mi / np.log(base))


def conditional_mutual_information(x, y, z, *, base=2, correction=None):
    """Conditional mutual information :math:`I(X; Y \\mid Z)` of discrete variables (plug-in).

    Defined in the chapter on core concepts ("Intermodal relationships").

    .. math:: I(X; Y \\mid Z) = H(X, Z) + H(Y, Z) - H(X, Y, Z) - H(Z)
              = \\sum_z p(z)\\, I(X; Y \\mid Z = z).

    Two modalities whose cues both follow the label share information
    (:math:`I(X; Y) > 0`) yet are independent *given* the label (:math:`I(X; Y \\mid Z) = 0`):
    the label explains their whole relationship.

    Parameters
    ----------
    x, y, z : array-like of shape (n,) or (n, k)
        Paired discrete values; 2-D arrays are variables taken jointly.
    base : float, default 2
        Logarithm base.
    correction : {None, "miller-madow"}, default None
        Apply the Miller–Madow correction to each of the four entropies.

    Returns
    -------
    float
        The estimate (``>= 0`` without correction).

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.relations import conditional_mutual_information
    >>> z = np.array([0, 0, 1, 1] * 25)
    >>> conditional_mutual_information(z, z, z)  # nothing left once z is known
    0.0
    """
    base = _check_base(base)
    correction = _check_correction(correction)
    cx = _codes("x", x)
    cy = _codes("y", y, n=cx.size)
    cz = _codes("z", z, n=cx.size)
    h = lambda *c: _entropy_nats(_joint(*c) if len(c) > 1 else c[0], correction)  # noqa: E731
    cmi = h(cx, cz) + h(cy, cz) - h(cx, cy, cz) - h(cz)
    if correction is None:
        cmi = max(cmi, 0.0)
    return float(cmi / np.log(base))


# --------------------------------------------------------------------------------------------
# Canonical correlation analysis


def _check_matrix(name, X, n=None):
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 2-D array of numbers, got {type(X).__name__}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {arr.shape})")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} samples, expected {n} (one row per sample, paired)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _inv_sqrt(cov, tol):
    """Symmetric inverse square root on the span of the eigenvalues above ``tol * largest``."""
    w, v = np.linalg.eigh(cov)
    keep = w > tol * max(w.max(), 0.0)
    if not np.any(keep):
        return None
    v = v[:, keep]
    return (v / np.sqrt(w[keep])) @ v.T


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlations and the weights that produce them (returned by :func:`cca`).

    Defined in the chapter on core concepts ("Intermodal relationships").

    Attributes
    ----------
    correlations : numpy.ndarray, shape (n_components,)
        Canonical correlations on the data the CCA was fitted on, largest first.
    x_weights : numpy.ndarray, shape (p, n_components)
    y_weights : numpy.ndarray, shape (q, n_components)
        Columns ``a_j``, ``b_j``: the canonical variates are ``(X - x_mean) @ a_j`` and
        ``(Y - y_mean) @ b_j``, each with unit variance on the fitted data.
    x_mean : numpy.ndarray, shape (p,)
    y_mean : numpy.ndarray, shape (q,)
    """

    correlations: np.ndarray
    x_weights: np.ndarray
    y_weights: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray

    def transform(self, X, Y):
        """Canonical variates of new paired data: ``(U, V)``, each ``(n, n_components)``.

        Parameters
        ----------
        X : array-like of shape (n, p)
        Y : array-like of shape (n, q)

        Returns
        -------
        tuple of numpy.ndarray
        """
        X = _check_matrix("X", X)
        Y = _check_matrix("Y", Y, n=X.shape[0])
        for name, arr, w in (("X", X, self.x_weights), ("Y", Y, self.y_weights)):
            if arr.shape[1] != w.shape[0]:
                raise ValueError(f"{name} has {arr.shape[1]} features; the CCA was fitted on {w.shape[0]}")
        return (X - self.x_mean) @ self.x_weights, (Y - self.y_mean) @ self.y_weights

    def score(self, X, Y):
        """Correlation of each pair of canonical variates on new paired data (held-out check).

        In-sample canonical correlations are biased upwards (with many features and few
        samples, even unrelated data reach high values); the correlations of the same
        directions on held-out samples are not.

        Parameters
        ----------
        X : array-like of shape (n, p)
        Y : array-like of shape (n, q)
            At least 3 paired samples.

        Returns
        -------
        numpy.ndarray, shape (n_components,)
            Pearson correlation of each pair (0 where a variate is constant).
        """
        U, V = self.transform(X, Y)
        if U.shape[0] < 3:
            raise ValueError(f"score needs at least 3 paired samples, got {U.shape[0]}")
        U = U - U.mean(0)
        V = V - V.mean(0)
        den = np.sqrt((U**2).sum(0) * (V**2).sum(0))
        return np.divide((U * V).sum(0), den, out=np.zeros(U.shape[1]), where=den > 0)


def cca(X, Y, n_components=2, *, reg=0.0, tol=1e-10):
    """Canonical correlation analysis: the most correlated linear views of two feature sets.

    Defined in the chapter on core concepts ("Intermodal relationships").

    With covariances :math:`C_{xx}, C_{yy}` (plus ``reg`` times the identity) and
    cross-covariance :math:`C_{xy}` of the centred data, whitening both sides and taking the
    singular value decomposition

    .. math:: C_{xx}^{-1/2}\\, C_{xy}\\, C_{yy}^{-1/2} = U\\, \\mathrm{diag}(\\rho_1, \\rho_2, \\dots)\\, V^\\top

    gives the canonical correlations :math:`\\rho_1 \\ge \\rho_2 \\ge \\dots` and the weights
    :math:`a_j = C_{xx}^{-1/2} u_j`, :math:`b_j = C_{yy}^{-1/2} v_j`: ``X @ a_1`` and ``Y @ b_1``
    are the most correlated pair of linear combinations, ``X @ a_2`` and ``Y @ b_2`` the most
    correlated pair uncorrelated with the first, and so on. Directions of (near) zero variance
    (dead units of an embedding) are dropped, as in a pseudo-inverse.

    Parameters
    ----------
    X : array-like of shape (n, p)
    Y : array-like of shape (n, q)
        Paired samples (row ``i`` of both is the same sample), finite; a 1-D array is one feature.
    n_components : int, default 2
        Number of canonical pairs, in ``[1, min(p, q)]``.
    reg : float, default 0.0
        Ridge added to the diagonal of both covariances (relative to their mean variance):
        shrinks the in-sample correlations towards the ones that hold on new data.
    tol : float, default 1e-10
        Eigenvalues of a covariance below ``tol`` times its largest are treated as zero.

    Returns
    -------
    CCAResult
        ``correlations`` (in-sample), weights and means; ``.score(X_new, Y_new)`` gives the
        correlations of the same directions on held-out data.

    Raises
    ------
    ValueError
        If the shapes do not pair up, there are fewer than 3 samples, values are not finite, a
        side has no variance, or ``n_components`` or ``reg`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.relations import cca
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal(5000)                  # shared by both views
    >>> X = np.c_[z + rng.standard_normal(5000), rng.standard_normal(5000)]
    >>> Y = np.c_[rng.standard_normal(5000), z + rng.standard_normal(5000)]
    >>> result = cca(X, Y, n_components=1)
    >>> bool(abs(result.correlations[0] - 0.5) < 0.03)  # corr(z + e1, z + e2) = 1/2
    True
    """
    X = _check_matrix("X", X)
    Y = _check_matrix("Y", Y, n=X.shape[0])
    n, p = X.shape
    q = Y.shape[1]
    if n < 3:
        raise ValueError(f"cca needs at least 3 paired samples, got {n}")
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
        raise TypeError(f"n_components must be an integer in [1, {min(p, q)}], got {n_components!r}")
    if not 1 <= n_components <= min(p, q):
        raise ValueError(f"n_components must be in [1, min(p, q)] = [1, {min(p, q)}], got {n_components}")
    if isinstance(reg, bool) or not isinstance(reg, numbers.Real) or not np.isfinite(reg) or reg < 0:
        raise ValueError(f"reg must be a number >= 0, got {reg!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    x_mean, y_mean = X.mean(0), Y.mean(0)
    Xc, Yc = X - x_mean, Y - y_mean
    cxx = Xc.T @ Xc / (n - 1)
    cyy = Yc.T @ Yc / (n - 1)
    cxy = Xc.T @ Yc / (n - 1)
    if reg:
        cxx = cxx + reg * np.trace(cxx) / p * np.eye(p)
        cyy = cyy + reg * np.trace(cyy) / q * np.eye(q)
    wx = _inv_sqrt(cxx, tol)
    wy = _inv_sqrt(cyy, tol)
    for name, w in (("X", wx), ("Y", wy)):
        if w is None:
            raise ValueError(f"{name} has no variance (every column is constant): no correlation to find")
    u, s, vt = np.linalg.svd(wx @ cxy @ wy)
    k = n_components
    a = wx @ u[:, :k]
    b = wy @ vt[:k].T
    # Sign convention: the largest weight of each x-direction is positive (deterministic output).
    signs = np.sign(a[np.abs(a).argmax(0), np.arange(k)])
    signs[signs == 0] = 1.0
    a, b = a * signs, b * signs
    return CCAResult(np.clip(s[:k], 0.0, 1.0), a, b, x_mean, y_mean)
