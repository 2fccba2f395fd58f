"""Privacy in training: federated averaging, DP-SGD with its accountant, membership inference.

Defined in the chapter on challenges (privacy). Three tools for data that may not be pooled or
published:

- :func:`federated_average` -- the server step of federated averaging (FedAvg): the clients'
  weights, averaged with weights proportional to the clients' numbers of examples;
- :func:`clip_per_example`, :func:`privatize_gradients`, :func:`dp_sgd_logistic` -- DP-SGD:
  each example's gradient clipped to a norm ``C``, Gaussian noise of standard deviation
  ``sigma * C`` added to their sum; here for a logistic-regression head, whose per-example
  gradients have a closed form;
- :func:`rdp_sampled_gaussian`, :func:`epsilon_from_rdp`, :func:`dp_sgd_epsilon` -- the privacy
  accountant: the Renyi differential privacy of the Poisson-subsampled Gaussian mechanism at
  integer orders, composed over the steps and converted to an (epsilon, delta) guarantee;
- :func:`per_example_loss`, :func:`membership_attack_auc` -- the loss-threshold membership
  inference attack: training examples tend to have a lower loss than unseen ones.

Everything here is NumPy, so it runs with any Keras backend.
"""

from dataclasses import dataclass
from math import comb, log

import numpy as np

from mmtutor._validation import check_float, check_int
from mmtutor.metrics import roc_auc

__all__ = [
    "federated_average",
    "clip_per_example",
    "privatize_gradients",
    "logistic_gradients",
    "predict_logistic",
    "DPSGDResult",
    "dp_sgd_logistic",
    "rdp_sampled_gaussian",
    "epsilon_from_rdp",
    "dp_sgd_epsilon",
    "DEFAULT_ORDERS",
    "per_example_loss",
    "membership_attack_auc",
]

#: Integer Renyi orders used by :func:`dp_sgd_epsilon` unless others are given.
DEFAULT_ORDERS = tuple(range(2, 257))


# --------------------------------------------------------------------------------------------
# Federated averaging
# --------------------------------------------------------------------------------------------


def federated_average(weights, sizes):
    """Average the clients' model weights, each client weighted by its number of examples.

    Defined in the chapter on challenges (privacy). The server step of federated averaging
    (FedAvg, McMahan et al. 2017): with client ``k`` holding ``n_k`` examples and weights
    ``w_k`` after its local training, the new global weights are
    ``sum_k n_k w_k / sum_k n_k``, tensor by tensor. Only weights travel; the examples stay
    with their clients.

    Parameters
    ----------
    weights : sequence of sequences of array_like
        One list of weight arrays per client, as ``model.get_weights()`` returns; all clients'
        lists have the same length and the same shapes.
    sizes : sequence of int or float
        Each client's number of examples (non-negative, not all zero), in the order of
        ``weights``.

    Returns
    -------
    list of numpy.ndarray
        The averaged weights, ready for ``model.set_weights``; each has the dtype of the first
        client's array.

    Raises
    ------
    TypeError
        If ``weights`` is not a sequence of sequences, or ``sizes`` holds a non-number.
    ValueError
        If the clients' lists differ in length or shapes, ``sizes`` does not match ``weights``
        in length, or a size is negative, non-finite, or all are zero.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.privacy import federated_average
    >>> a = [np.array([0.0, 0.0]), np.array(1.0)]
    >>> b = [np.array([4.0, 8.0]), np.array(3.0)]
    >>> [w.tolist() for w in federated_average([a, b], sizes=[3, 1])]
    [[1.0, 2.0], 1.5]
    """
    if isinstance(weights, (str, bytes, np.ndarray)) or not hasattr(weights, "__len__"):
        raise TypeError(f"weights must be a list of weight lists (one per client), got {type(weights).__name__}")
    if len(weights) == 0:
        raise ValueError("weights is empty: give at least one client's weight list")
    clients = []
    for k, client in enumerate(weights):
        if isinstance(client, (str, bytes, np.ndarray)) or not hasattr(client, "__len__"):
            raise TypeError(f"weights[{k}] must be a list of arrays (model.get_weights()), "
                            f"got {type(client).__name__}")
        clients.append([np.asarray(w) for w in client])
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes must be a sequence of numbers, got {type(sizes).__name__}")
    if len(sizes) != len(clients):
        raise ValueError(f"sizes has {len(sizes)} entries but weights has {len(clients)} clients")
    counts = []
    for k, s in enumerate(sizes):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, float, np.integer, np.floating)):
            raise TypeError(f"sizes[{k}] must be a number, got {type(s).__name__} {s!r}")
        if not np.isfinite(s) or s < 0:
            raise ValueError(f"sizes[{k}] must be a finite non-negative number, got {s!r}")
        counts.append(float(s))
    total = sum(counts)
    if total <= 0:
        raise ValueError(f"sizes must not all be zero, got {list(sizes)!r}")
    reference = clients[0]
    for k, client in enumerate(clients[1:], start=1):
        if len(client) != len(reference):
            raise ValueError(f"client {k} has {len(client)} weight arrays, client 0 has {len(reference)}")
        for i, (w, w0) in enumerate(zip(client, reference)):
            if w.shape != w0.shape:
                raise ValueError(f"weight array {i} of client {k} has shape {w.shape}, "
                                 f"client 0's has shape {w0.shape}")
    shares = np.array(counts) / total
    averaged = []
    for i, w0 in enumerate(reference):
        mean = sum(share * client[i].astype("float64") for share, client in zip(shares, clients))
        averaged.append(np.asarray(mean).astype(w0.dtype if w0.dtype.kind == "f" else "float64"))
    return averaged


# --------------------------------------------------------------------------------------------
# DP-SGD
# --------------------------------------------------------------------------------------------


def _check_matrix(values, name):
    try:
        array = np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 2-D array of numbers, got {type(values).__name__}") from None
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (one row per example), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return array


def clip_per_example(per_example_grads, clip_norm):
    """Scale each example's gradient down to an L2 norm of at most ``clip_norm``.

    Defined in the chapter on challenges (privacy). Row ``i`` becomes
    ``g_i * min(1, C / ||g_i||)``: a gradient already shorter than ``C`` is unchanged, a longer
    one keeps its direction and gets length ``C``. This bounds what any one example can add
    to the sum, the sensitivity that the Gaussian noise of DP-SGD is scaled to.

    Parameters
    ----------
    per_example_grads : array_like of shape (n, d)
        One flattened gradient per example.
    clip_norm : float > 0
        The bound ``C``.

    Returns
    -------
    clipped : numpy.ndarray of shape (n, d)
    norms : numpy.ndarray of shape (n,)
        The norms before clipping.

    Examples
    --------
    >>> from mmtutor.privacy import clip_per_example
    >>> clipped, norms = clip_per_example([[3.0, 4.0], [0.3, 0.4]], clip_norm=1.0)
    >>> clipped.round(2).tolist(), norms.tolist()
    ([[0.6, 0.8], [0.3, 0.4]], [5.0, 0.5])
    """
    grads = _check_matrix(per_example_grads, "per_example_grads")
    clip_norm = check_float(clip_norm, "clip_norm", low=0.0, low_open=True)
    norms = np.linalg.norm(grads, axis=1)
    factor = np.minimum(1.0, clip_norm / np.maximum(norms, 1e-300))
    return grads * factor[:, None], norms


def privatize_gradients(per_example_grads, clip_norm, noise_multiplier, rng, *, denominator=None):
    """The DP-SGD gradient: clip each example, sum, add Gaussian noise, divide.

    Defined in the chapter on challenges (privacy). Returns
    ``(sum_i clip(g_i) + N(0, (sigma * C)^2 I)) / denominator`` (Abadi et al. 2016). The noise is
    added once to the *sum*, whose sensitivity to one example is ``C`` because each term was
    clipped on its own; clipping the summed gradient instead bounds nothing per example.

    Parameters
    ----------
    per_example_grads : array_like of shape (n, d)
        May have ``n == 0`` (an empty Poisson batch): the result is then noise only.
    clip_norm : float > 0
    noise_multiplier : float >= 0
        ``sigma``; 0 gives clipping without noise (no privacy guarantee).
    rng : numpy.random.Generator
    denominator : float > 0, optional
        What the noisy sum is divided by; with Poisson sampling, the *expected* batch size
        (dividing by the drawn size would leak it). Default: ``n`` (at least 1).

    Returns
    -------
    numpy.ndarray of shape (d,)
    """
    grads = _check_matrix(per_example_grads, "per_example_grads")
    noise_multiplier = check_float(noise_multiplier, "noise_multiplier", low=0.0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if denominator is None:
        denominator = max(len(grads), 1)
    denominator = check_float(denominator, "denominator", low=0.0, low_open=True)
    clipped, _ = clip_per_example(grads, clip_norm)
    noisy = clipped.sum(axis=0)
    if noise_multiplier > 0:  # no draw at all without noise, so the generator's stream is unchanged
        noisy = noisy + rng.normal(0.0, noise_multiplier * clip_norm, size=grads.shape[1])
    return noisy / denominator


def _check_xy(X, y):
    X = _check_matrix(X, "X")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must hold 0/1 labels")
    return X, y.astype("float64")


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def predict_logistic(weights, X):
    """Probabilities ``sigmoid(X @ w + b)`` of a logistic-regression head.

    Defined in the chapter on challenges (privacy).

    Parameters
    ----------
    weights : array_like of shape (d + 1,)
        Coefficients, then the bias (as :func:`dp_sgd_logistic` returns them).
    X : array_like of shape (n, d)

    Returns
    -------
    numpy.ndarray of shape (n,)
    """
    X = _check_matrix(X, "X")
    w = np.asarray(weights, dtype="float64")
    if w.shape != (X.shape[1] + 1,):
        raise ValueError(f"weights must have shape ({X.shape[1] + 1},) for X with {X.shape[1]} "
                         f"columns (coefficients, then the bias), got {w.shape}")
    return _sigmoid(X @ w[:-1] + w[-1])


def logistic_gradients(weights, X, y):
    """Per-example gradients of the binary cross-entropy of a logistic-regression head.

    Defined in the chapter on challenges (privacy). For ``p_i = sigmoid(x_i . w + b)`` the
    gradient of ``-[y_i log p_i + (1 - y_i) log(1 - p_i)]`` is ``(p_i - y_i) [x_i, 1]``: one row
    per example, which is what DP-SGD needs (a framework's ``gradient`` returns only the
    batch's sum).

    Parameters
    ----------
    weights : array_like of shape (d + 1,)
    X : array_like of shape (n, d)
    y : array_like of shape (n,), 0/1

    Returns
    -------
    numpy.ndarray of shape (n, d + 1)
    """
    X, y = _check_xy(X, y)
    residual = predict_logistic(weights, X) - y
    return np.hstack([X, np.ones((len(X), 1))]) * residual[:, None]


@dataclass(frozen=True)
class DPSGDResult:
    """What :func:`dp_sgd_logistic` returns.

    Defined in the chapter on challenges (privacy).

    Attributes
    ----------
    weights : numpy.ndarray of shape (d + 1,)
        Coefficients, then the bias.
    steps : int
        Number of noisy gradient steps taken (what the accountant composes).
    sample_rate : float
        Poisson sampling rate ``q = batch_size / n``.
    noise_multiplier : float
    clip_norm : float or None
        None for the non-private baseline (no clipping).
    """

    weights: np.ndarray
    steps: int
    sample_rate: float
    noise_multiplier: float
    clip_norm: object


def dp_sgd_logistic(X, y, *, noise_multiplier, clip_norm, batch_size=64, epochs=20, lr=0.5,
                    l2=0.0, seed=0):
    """Train a logistic-regression head with DP-SGD (or, with ``clip_norm=None``, plain SGD).

    Defined in the chapter on challenges (privacy). Each step draws a Poisson batch (every
    example independently with probability ``q = batch_size / n``), computes the per-example
    gradients (:func:`logistic_gradients`), and moves the weights by ``-lr`` times
    :func:`privatize_gradients` (clip to ``clip_norm``, noise ``noise_multiplier * clip_norm``,
    divide by the expected batch size ``q n``), plus an ``l2`` weight decay. It takes
    ``round(epochs / q)`` steps; :func:`dp_sgd_epsilon` turns ``q``, ``noise_multiplier`` and the
    steps into the guarantee.

    With ``clip_norm=None`` and ``noise_multiplier=0`` the same loop is ordinary minibatch SGD,
    the non-private baseline.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Features (standardise them: the clipping bound is shared by all coordinates).
    y : array_like of shape (n,), 0/1
    noise_multiplier : float >= 0
    clip_norm : float > 0 or None
    batch_size : int, default 64
        Expected batch size; at most ``n``.
    epochs : int or float, default 20
    lr : float, default 0.5
    l2 : float, default 0.0
    seed : int, default 0
        Seeds both the batch sampling and the noise.

    Returns
    -------
    DPSGDResult

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.privacy import dp_sgd_logistic, predict_logistic
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)); y = (X[:, 0] > 0).astype(int)
    >>> result = dp_sgd_logistic(X, y, noise_multiplier=1.0, clip_norm=1.0, epochs=5)
    >>> result.steps, round(result.sample_rate, 3)
    (39, 0.128)
    """
    X, y = _check_xy(X, y)
    n, d = X.shape
    noise_multiplier = check_float(noise_multiplier, "noise_multiplier", low=0.0)
    if clip_norm is None:
        if noise_multiplier != 0:
            raise ValueError("noise_multiplier must be 0 when clip_norm is None: noise without "
                             "clipping protects nothing, because one example's gradient is unbounded")
    else:
        clip_norm = check_float(clip_norm, "clip_norm", low=0.0, low_open=True)
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=n)
    epochs = check_float(epochs, "epochs", low=0.0, low_open=True)
    lr = check_float(lr, "lr", low=0.0, low_open=True)
    l2 = check_float(l2, "l2", low=0.0)
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    q = batch_size / n
    steps = max(1, int(round(epochs / q)))
    w = np.zeros(d + 1)
    for _ in range(steps):
        batch = rng.random(n) < q
        grads = logistic_gradients(w, X[batch], y[batch])
        if clip_norm is None:
            g = grads.sum(axis=0) / (q * n)
        else:
            g = privatize_gradients(grads, clip_norm, noise_multiplier, rng, denominator=q * n)
        w = w - lr * (g + l2 * np.r_[w[:-1], 0.0])
    return DPSGDResult(w, steps, q, noise_multiplier, clip_norm)


# --------------------------------------------------------------------------------------------
# The accountant: Renyi DP of the subsampled Gaussian mechanism
# --------------------------------------------------------------------------------------------


def _check_orders(orders):
    if isinstance(orders, (str, bytes)) or not hasattr(orders, "__iter__"):
        raise TypeError(f"orders must be a sequence of integers >= 2, got {type(orders).__name__}")
    out = [check_int(a, "orders", minimum=2) for a in orders]
    if not out:
        raise ValueError("orders is empty: give at least one integer order >= 2")
    return out


def _logsumexp(values):
    values = np.asarray(values, dtype="float64")
    top = values.max()
    return float(top + np.log(np.exp(values - top).sum()))


def rdp_sampled_gaussian(sample_rate, noise_multiplier, orders):
    """Renyi DP of one step of the Poisson-subsampled Gaussian mechanism, at integer orders.

    Defined in the chapter on challenges (privacy). A step that samples each example with
    probability ``q`` and adds ``N(0, sigma^2 C^2)`` to a sum of terms clipped to ``C`` is
    ``(alpha, rdp_alpha)``-RDP with, for an integer order ``alpha >= 2`` (Mironov, Talwar and
    Zhang 2019),

    ``rdp_alpha = log( sum_{k=0}^{alpha} C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2)) ) / (alpha - 1)``.

    Without sampling (``q = 1``) this is the Gaussian mechanism's ``alpha / (2 sigma^2)``
    (Mironov 2017). RDP composes by addition: ``T`` steps cost ``T * rdp_alpha``.

    Parameters
    ----------
    sample_rate : float in [0, 1]
    noise_multiplier : float >= 0
        0 gives infinite RDP (no noise, no privacy) unless ``sample_rate`` is 0.
    orders : sequence of int >= 2

    Returns
    -------
    numpy.ndarray of shape (len(orders),)

    Examples
    --------
    >>> from mmtutor.privacy import rdp_sampled_gaussian
    >>> rdp_sampled_gaussian(1.0, 2.0, [2, 4]).tolist()
    [0.25, 0.5]
    """
    q = check_float(sample_rate, "sample_rate", low=0.0, high=1.0)
    sigma = check_float(noise_multiplier, "noise_multiplier", low=0.0)
    orders = _check_orders(orders)
    out = np.empty(len(orders))
    for i, alpha in enumerate(orders):
        if q == 0:
            out[i] = 0.0
        elif sigma == 0:
            out[i] = np.inf
        elif q == 1:
            out[i] = alpha / (2 * sigma ** 2)
        else:
            terms = [log(comb(alpha, k)) + (alpha - k) * np.log1p(-q) + k * log(q)
                     + (k * k - k) / (2 * sigma ** 2) for k in range(alpha + 1)]
            out[i] = _logsumexp(terms) / (alpha - 1)
    return out


def epsilon_from_rdp(rdp, orders, delta):
    """Convert composed RDP values to an (epsilon, delta) guarantee; the best order too.

    Defined in the chapter on challenges (privacy). An ``(alpha, r)``-RDP mechanism is
    ``(r + log(1/delta) / (alpha - 1), delta)``-DP for every ``delta`` in (0, 1) (Mironov 2017,
    Proposition 3); the smallest epsilon over the orders is returned.

    Parameters
    ----------
    rdp : array_like of shape (len(orders),)
        Total RDP at each order (already composed over the steps).
    orders : sequence of int >= 2
    delta : float in (0, 1)

    Returns
    -------
    epsilon : float
    order : int
        The order that gives it (if it is the largest one given, more orders may help).
    """
    orders = _check_orders(orders)
    rdp = np.asarray(rdp, dtype="float64")
    if rdp.shape != (len(orders),):
        raise ValueError(f"rdp must have one value per order ({len(orders)}), got shape {rdp.shape}")
    if np.any(np.isnan(rdp)) or np.any(rdp < 0):
        raise ValueError("rdp values must be non-negative (inf allowed)")
    delta = check_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    eps = rdp + np.log(1 / delta) / (np.array(orders) - 1.0)
    best = int(np.argmin(eps))
    return float(eps[best]), orders[best]


def dp_sgd_epsilon(sample_rate, noise_multiplier, steps, delta, orders=DEFAULT_ORDERS):
    """The epsilon of DP-SGD after ``steps`` steps, at the given ``delta``.

    Defined in the chapter on challenges (privacy): :func:`rdp_sampled_gaussian` times
    ``steps``, through :func:`epsilon_from_rdp`.

    Parameters
    ----------
    sample_rate : float in [0, 1]
    noise_multiplier : float >= 0
    steps : int >= 0
    delta : float in (0, 1)
        Take it well below ``1 / n``.
    orders : sequence of int >= 2, default 2..256

    Returns
    -------
    float
        ``inf`` when ``noise_multiplier`` is 0 (and something was sampled).

    Examples
    --------
    >>> from mmtutor.privacy import dp_sgd_epsilon
    >>> dp_sgd_epsilon(0.01, 1.1, 1000, 1e-5) < dp_sgd_epsilon(0.01, 1.1, 2000, 1e-5)
    True
    """
    steps = check_int(steps, "steps", minimum=0)
    rdp = steps * rdp_sampled_gaussian(sample_rate, noise_multiplier, orders)
    rdp = np.nan_to_num(rdp, nan=0.0, posinf=np.inf)  # 0 steps of an infinite cost cost nothing
    return epsilon_from_rdp(rdp, orders, delta)[0]


# --------------------------------------------------------------------------------------------
# Membership inference
# --------------------------------------------------------------------------------------------


def per_example_loss(y_true, y_prob, eps=1e-7):
    """Binary cross-entropy of each example: ``-[y log p + (1 - y) log(1 - p)]``.

    Defined in the chapter on challenges (privacy).

    Parameters
    ----------
    y_true : array_like of shape (n,), 0/1
    y_prob : array_like of shape (n,), probabilities of class 1
    eps : float, default 1e-7
        Probabilities are clipped to ``[eps, 1 - eps]``.

    Returns
    -------
    numpy.ndarray of shape (n,)
    """
    y = np.asarray(y_true)
    p = np.asarray(y_prob, dtype="float64")
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"y_true and y_prob must be 1-D of the same length, got shapes {y.shape} and {p.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels")
    if not np.all(np.isfinite(p)) or p.min(initial=0.0) < 0 or p.max(initial=1.0) > 1:
        raise ValueError("y_prob must hold probabilities in [0, 1]")
    eps = check_float(eps, "eps", low=0.0, high=0.5, low_open=True, high_open=True)
    p = np.clip(p, eps, 1 - eps)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def membership_attack_auc(loss_members, loss_nonmembers):
    """AUROC of the loss-threshold membership attack (Yeom et al. 2018).

    Defined in the chapter on challenges (privacy). The attacker guesses "was in the training
    set" when an example's loss is below a threshold; over all thresholds, its AUROC is the
    probability that a random member has a lower loss than a random non-member (ties count
    half). 0.5 means the losses tell nothing; 1.0 means every member is recognised.

    Parameters
    ----------
    loss_members : array_like of shape (m,)
        Per-example losses of training examples.
    loss_nonmembers : array_like of shape (k,)
        Per-example losses of examples the model never saw, from the same distribution.

    Returns
    -------
    float

    Examples
    --------
    >>> from mmtutor.privacy import membership_attack_auc
    >>> membership_attack_auc([0.1, 0.2], [0.3, 0.4])
    1.0
    """
    members = np.asarray(loss_members, dtype="float64").ravel()
    others = np.asarray(loss_nonmembers, dtype="float64").ravel()
    for name, v in (("loss_members", members), ("loss_nonmembers", others)):
        if len(v) == 0:
            raise ValueError(f"{name} is empty")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite")
    labels = np.r_[np.ones(len(members), "int64"), np.zeros(len(others), "int64")]
    return roc_auc(labels, -np.r_[members, others])
