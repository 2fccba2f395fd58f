"""Simulated data sets of the application case studies: medical, driving, assistant.

Defined in the chapter on applications. Each generator draws a small data set whose modalities
keep the structure of the real ones (a grey scan with a lesion and laboratory values; camera
features, a lidar point set and radar detections under four weather and light conditions; an
assistant's spectrogram, transcript and face landmarks) from a generative model that it knows,
so that the best any model can do (the Bayes ceiling) is known too. Every generator is
deterministic: the same arguments and ``seed`` give identical arrays.

The data are simulated. They teach how to measure what a modality adds and costs; they say
nothing about a real hospital, car or call centre.

- :func:`make_medical` -- a rare disease from a scan and laboratory values, one lab often not
  ordered; exact ceilings of the AUROC, of the sensitivity at a fixed specificity and of the
  accuracy.
- :func:`make_driving` -- object class from camera, lidar and radar; each sensor's noise known
  per condition; ceilings by a documented large-sample computation.
- :func:`make_hci` -- a service assistant's view of a request; the user's affect from voice,
  words and face, with a share of conflicting requests (a polite phrase said angrily); exact
  ceilings by enumeration.
"""

from dataclasses import dataclass, field
from itertools import product
from math import erf, log, sqrt
from statistics import NormalDist

import numpy as np

__all__ = [
    "Split",
    "Scenario",
    "make_medical",
    "make_driving",
    "make_hci",
    "medical_ceilings",
    "driving_ceilings",
    "driving_sensor_estimates",
    "gaussian_fusion_log_posterior",
    "fit_sensor_model",
    "hci_ceilings",
    "latency_ms",
    "SPLIT_FRACTIONS",
    "LAB_NAMES",
    "DRIVING_CLASSES",
    "CONDITIONS",
    "SENSORS",
    "AFFECTS",
    "HCI_VOCAB",
]

#: Shares of the train, validation and test splits.
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
_SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------------------------
# Validation: TypeError for a wrong type, ValueError for a bad value, the argument named.
# --------------------------------------------------------------------------------------------


def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_float(value, name, low, high, *, low_open=False, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not np.isfinite(value) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return value


def _check_seed(seed):
    return _check_int(seed, "seed", 0)


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """One split of a scenario: inputs by modality, labels, and the generator's hidden factors.

    Defined in the chapter on applications.

    Attributes
    ----------
    x : dict of str -> numpy.ndarray
        Modality name -> array with one row per sample (the model inputs).
    y : numpy.ndarray of int64
        Class ids.
    factors : dict of str -> numpy.ndarray
        What the generator drew and a model does not see (condition, lesion contrast, whether a
        request is a conflict, ...), one value per sample.
    """

    x: dict
    y: np.ndarray
    factors: dict

    def __len__(self):
        return len(self.y)


@dataclass(frozen=True)
class Scenario:
    """A simulated case study: three splits, class names and the generative model's facts.

    Defined in the chapter on applications.

    Attributes
    ----------
    name : str
    modalities : tuple of str
        The keys of every split's ``x``.
    classes : tuple of str
        Class names, indexed by the labels.
    train, val, test : Split
    ceilings : dict
        Bayes ceilings (see the generator's docstring for what each key means).
    info : dict
        The generator's settings and the parameters of its generative model.
    """

    name: str
    modalities: tuple
    classes: tuple
    train: Split
    val: Split
    test: Split
    ceilings: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def split(self, name):
        """The split called ``name`` (``"train"``, ``"val"`` or ``"test"``)."""
        if name not in _SPLITS:
            raise ValueError(f"name must be one of {_SPLITS}, got {name!r}")
        return getattr(self, name)


def _split_sizes(n):
    n_train = int(round(SPLIT_FRACTIONS[0] * n))
    n_val = int(round(SPLIT_FRACTIONS[1] * n))
    return n_train, n_val, n - n_train - n_val


def _make_splits(x, y, factors, order):
    """Cut arrays (already in split order given by ``order``) into train / val / test."""
    bounds = np.cumsum([0, *_split_sizes(len(y))])
    splits = []
    for i in range(3):
        rows = order[bounds[i]:bounds[i + 1]]
        splits.append(Split({k: v[rows] for k, v in x.items()}, y[rows],
                            {k: v[rows] for k, v in factors.items()}))
    return splits


def latency_ms(predict, inputs, *, repeats=100, warmup=5):
    """Wall time of single-sample predictions, in milliseconds: one value per call.

    Defined in the chapter on applications. A deployed model answers one request (one frame,
    one patient) at a time, so its latency is measured at batch size 1, call by call; the
    median (p50) and the 95th percentile (p95) of the returned values describe a typical and a
    slow request. The first ``warmup`` calls (graph tracing, caches) are not counted.

    Parameters
    ----------
    predict : callable
        Called as ``predict(sample)``, e.g. ``model.predict_on_batch``: for one sample at a time
        it runs the compiled graph, without the data pipeline that ``model.predict`` builds on
        every call or the per-operation overhead of an eager ``model(x)``.
    inputs : sequence
        Samples (each already with a batch axis of 1), used in turn.
    repeats : int, default 100
    warmup : int, default 5

    Returns
    -------
    numpy.ndarray of shape (repeats,)
    """
    import time

    if not callable(predict):
        raise TypeError(f"predict must be callable, got {type(predict).__name__}")
    repeats = _check_int(repeats, "repeats", 1)
    warmup = _check_int(warmup, "warmup", 0)
    if len(inputs) == 0:
        raise ValueError("inputs is empty: give at least one sample")
    for i in range(warmup):
        predict(inputs[i % len(inputs)])
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        predict(inputs[i % len(inputs)])
        out[i] = 1000 * (time.perf_counter() - start)
    return out


def _phi(x):
    return 0.5 * (1.0 + erf(x / sqrt(2.0)))


# --------------------------------------------------------------------------------------------
# Medical: a scan and laboratory values, a rare positive class, one lab often not ordered
# --------------------------------------------------------------------------------------------

#: The simulated laboratory values, in the order of the ``labs`` columns.
LAB_NAMES = ("crp", "wbc", "lactate", "creatinine")
_LAB_LOC = np.array([5.0, 7.0, 1.2, 80.0])  # negatives' mean, in each lab's units
_LAB_SCALE = np.array([3.0, 2.0, 0.4, 15.0])  # one standard deviation, in each lab's units
_LAB_CORR = 0.4  # correlation between any two labs (standardised), in both classes
_LAB_SHIFT = np.array([1.0, 0.8, 0.0, 0.3])  # positives' mean shift, in standard deviations
_IMAGE_SHIFT = 1.6  # positives' shift of the lesion's contrast, in standard deviations
_LESION_BASE, _LESION_STEP = 0.3, 0.07  # lesion amplitude = base + step * contrast


def _lab_cov():
    k = len(LAB_NAMES)
    return (1 - _LAB_CORR) * np.eye(k) + _LAB_CORR * np.ones((k, k))


def _mahalanobis2(shift, cov):
    return float(shift @ np.linalg.solve(cov, shift))


def medical_ceilings(prevalence=0.08, missing_rate=0.3, specificity=0.9):
    """Exact Bayes ceilings of :func:`make_medical`.

    Defined in the chapter on applications. Given the class, the image's evidence (the lesion
    contrast) and the standardised labs are Gaussian with a class-independent covariance, so
    the Bayes log-likelihood ratio is Gaussian in each class: with :math:`\\Delta` the
    Mahalanobis distance between the class means, it is :math:`N(\\pm\\Delta^2/2, \\Delta^2)`.
    Hence, exactly, :math:`\\mathrm{AUROC} = \\Phi(\\Delta/\\sqrt2)`, the sensitivity at
    specificity :math:`s` is :math:`\\Phi(\\Delta - \\Phi^{-1}(s))`, and the accuracy of the
    rule that thresholds the posterior at one half follows from the two Gaussians. The image
    ceilings are those of a reader who measures the lesion's contrast perfectly, an upper bound
    for any model of the image (which also sees the lesion's size and place, the tissue and the
    noise, none of which depend on the class).

    Parameters
    ----------
    prevalence : float in (0, 0.5], default 0.08
    missing_rate : float in [0, 1], default 0.3
        Share of samples whose first lab (``crp``) was not ordered.
    specificity : float in (0, 1), default 0.9

    Returns
    -------
    dict
        For each evidence set -- ``"image"``, ``"labs"`` (all four labs), ``"labs_missing"``
        (without ``crp``), ``"all"`` (image and all labs), ``"all_missing"`` -- a dict with
        ``"delta"``, ``"auroc"``, ``"sensitivity"`` (at ``specificity``) and ``"accuracy"``.
        Also ``"labs_deployed"`` and ``"all_deployed"``: the AUROC when ``missing_rate`` of the
        samples lack ``crp`` (exact for a mixture of the two groups:
        :math:`\\sum_{a,b} w_a w_b \\Phi(\\sqrt{\\Delta_a^2 + \\Delta_b^2}/2)`), and
        ``"specificity"``, ``"prevalence"``, ``"missing_rate"``.

    Examples
    --------
    >>> from mmtutor.data.scenarios import medical_ceilings
    >>> c = medical_ceilings()
    >>> c["all"]["auroc"] > max(c["image"]["auroc"], c["labs"]["auroc"])
    True
    """
    prevalence = _check_float(prevalence, "prevalence", 0.0, 0.5, low_open=True)
    missing_rate = _check_float(missing_rate, "missing_rate", 0.0, 1.0)
    specificity = _check_float(specificity, "specificity", 0.0, 1.0, low_open=True, high_open=True)
    cov = _lab_cov()
    d2 = {
        "image": _IMAGE_SHIFT ** 2,
        "labs": _mahalanobis2(_LAB_SHIFT, cov),
        "labs_missing": _mahalanobis2(_LAB_SHIFT[1:], cov[1:, 1:]),
    }
    d2["all"] = d2["image"] + d2["labs"]
    d2["all_missing"] = d2["image"] + d2["labs_missing"]
    z_spec = NormalDist().inv_cdf(specificity)
    threshold = log((1 - prevalence) / prevalence)  # posterior > 1/2 <=> LLR > log prior odds
    out = {}
    for key, value in d2.items():
        delta = sqrt(value)
        accuracy = (1 - prevalence) * _phi((threshold + value / 2) / delta) + prevalence * (
            1 - _phi((threshold - value / 2) / delta))
        out[key] = {"delta": delta, "auroc": _phi(delta / sqrt(2)),
                    "sensitivity": _phi(delta - z_spec), "accuracy": accuracy}
    weights = (1 - missing_rate, missing_rate)
    for key, (full, part) in {"labs_deployed": ("labs", "labs_missing"),
                              "all_deployed": ("all", "all_missing")}.items():
        groups = (d2[full], d2[part])
        out[key] = sum(wa * wb * _phi(sqrt(da + db) / 2)
                       for wa, da in zip(weights, groups) for wb, db in zip(weights, groups))
    out.update(specificity=specificity, prevalence=prevalence, missing_rate=missing_rate)
    return out


def _render_scans(contrast, rng, size):
    """Grey scans: an elliptic organ, smooth tissue texture, a Gaussian lesion, sensor noise."""
    n = len(contrast)
    yy, xx = np.mgrid[0:size, 0:size].astype("float32")
    centre = (size - 1) / 2
    organ = (((xx - centre) / (0.42 * size)) ** 2 + ((yy - centre) / (0.36 * size)) ** 2 <= 1)
    # Smooth texture: coarse noise upsampled by bilinear interpolation (separable, in NumPy).
    coarse = rng.normal(0.0, 1.0, size=(n, 5, 5)).astype("float32")
    grid = np.linspace(0, 4, size)
    lo = np.minimum(np.floor(grid).astype(int), 3)
    frac = (grid - lo).astype("float32")
    rows = coarse[:, lo, :] * (1 - frac)[None, :, None] + coarse[:, lo + 1, :] * frac[None, :, None]
    texture = rows[:, :, lo] * (1 - frac) + rows[:, :, lo + 1] * frac
    radius = rng.uniform(1.5, 3.0, size=n).astype("float32")
    angle = rng.uniform(0, 2 * np.pi, size=n)
    dist = rng.uniform(0, 0.22 * size, size=n)
    cx = (centre + dist * np.cos(angle)).astype("float32")
    cy = (centre + dist * np.sin(angle)).astype("float32")
    blob = np.exp(-((xx[None] - cx[:, None, None]) ** 2 + (yy[None] - cy[:, None, None]) ** 2)
                  / (2 * radius[:, None, None] ** 2))
    amplitude = (_LESION_BASE + _LESION_STEP * contrast).astype("float32")
    image = (0.15 + 0.25 * organ[None] + 0.04 * texture + amplitude[:, None, None] * blob
             + rng.normal(0.0, 0.03, size=(n, size, size)))
    return np.clip(image, 0.0, 1.0).astype("float32")[..., None], radius


def make_medical(n=3000, seed=0, *, prevalence=0.08, missing_rate=0.3, image_size=32):
    """A rare disease seen in a scan and in laboratory values; one lab often not ordered.

    Defined in the chapter on applications. Each patient is positive with probability
    ``prevalence`` (each split holds the same share, rounded). Modalities:

    - ``"image"``: a ``(image_size, image_size, 1)`` float32 grey scan in ``[0, 1]``: an organ,
      smooth tissue texture, sensor noise and a Gaussian lesion of random size and place whose
      *contrast* is :math:`N(0, 1)` for negatives and :math:`N(1.6, 1)` for positives;
    - ``"labs"``: float32 ``(4,)`` values in their units (``LAB_NAMES``: crp, wbc, lactate,
      creatinine), correlated Gaussians (correlation 0.4), shifted for positives by
      (1.0, 0.8, 0.0, 0.3) standard deviations. ``crp`` is NaN ("not ordered") for a share
      ``missing_rate`` of the patients of every split, independently of the class.

    Parameters
    ----------
    n : int, default 3000
        Number of patients, at least 100; split 60 / 20 / 20 into train, val, test.
    seed : int, default 0
    prevalence : float in (0, 0.5], default 0.08
    missing_rate : float in [0, 1], default 0.3
    image_size : int, default 32
        Height and width of the scans, at least 16.

    Returns
    -------
    Scenario
        ``classes == ("negative", "positive")``; factors ``"contrast"`` (the lesion's
        standardised contrast), ``"radius"`` (its size in pixels) and ``"crp_missing"``
        (bool); ``ceilings`` from :func:`medical_ceilings` (specificity 0.9).

    Raises
    ------
    TypeError
        For an argument of the wrong type (e.g. ``n=3000.0``).
    ValueError
        For a value out of range (e.g. ``prevalence=0``).

    Examples
    --------
    >>> from mmtutor.data.scenarios import make_medical
    >>> data = make_medical(200, seed=1)
    >>> data.train.x["image"].shape, data.train.x["labs"].shape
    ((120, 32, 32, 1), (120, 4))
    """
    n = _check_int(n, "n", 100)
    seed = _check_seed(seed)
    prevalence = _check_float(prevalence, "prevalence", 0.0, 0.5, low_open=True)
    missing_rate = _check_float(missing_rate, "missing_rate", 0.0, 1.0)
    image_size = _check_int(image_size, "image_size", 16)
    rng = np.random.default_rng(seed)

    # Labels: the same share of positives in each split, in random order within the split.
    y = np.zeros(n, dtype="int64")
    missing = np.zeros(n, dtype=bool)
    start = 0
    for size in _split_sizes(n):
        y[start:start + int(round(prevalence * size))] = 1
        missing[start:start + int(round(missing_rate * size))] = True
        rng.shuffle(y[start:start + size])
        rng.shuffle(missing[start:start + size])
        start += size
    contrast = rng.normal(0.0, 1.0, size=n) + _IMAGE_SHIFT * y
    z = rng.multivariate_normal(np.zeros(len(LAB_NAMES)), _lab_cov(), size=n) + np.outer(y, _LAB_SHIFT)
    labs = (_LAB_LOC + _LAB_SCALE * z).astype("float32")
    labs[missing, 0] = np.nan
    image, radius = _render_scans(contrast, rng, image_size)
    splits = _make_splits({"image": image, "labs": labs}, y,
                          {"contrast": contrast, "radius": radius, "crp_missing": missing},
                          np.arange(n))
    info = {"n": n, "seed": seed, "prevalence": prevalence, "missing_rate": missing_rate,
            "image_size": image_size, "lab_names": LAB_NAMES, "lab_shift": _LAB_SHIFT.tolist(),
            "lab_corr": _LAB_CORR, "image_shift": _IMAGE_SHIFT}
    return Scenario("medical", ("image", "labs"), ("negative", "positive"), *splits,
                    ceilings=medical_ceilings(prevalence, missing_rate, 0.9), info=info)


# --------------------------------------------------------------------------------------------
# Driving: camera, lidar and radar under day, night, fog and rain
# --------------------------------------------------------------------------------------------

DRIVING_CLASSES = ("car", "cyclist", "pedestrian")
CONDITIONS = ("day", "night", "fog", "rain")
SENSORS = ("camera", "lidar", "radar")

# What each sensor measures of the object (its latent reading), per class:
# camera: a 2-D appearance code; lidar: the fitted box's length and width (m);
# radar: the radial speed (m/s) and the radar cross-section (dBsm).
_PROTOTYPES = {
    "camera": np.array([[0.0, 1.2], [-1.04, -0.6], [1.04, -0.6]]),
    "lidar": np.array([[4.2, 1.8], [1.8, 0.7], [0.8, 0.7]]),
    "radar": np.array([[8.0, 10.0], [5.0, 4.0], [1.5, 0.0]]),
}
# The standard deviation of each reading (class spread and sensor noise together), per
# condition and per axis: the camera fails at night and in fog, the lidar in fog and rain,
# the radar is coarse everywhere but hardly affected by weather.
_NOISE_SD = {
    "camera": {"day": (0.55, 0.55), "night": (1.6, 1.6), "fog": (1.4, 1.4), "rain": (0.8, 0.8)},
    "lidar": {"day": (0.45, 0.3), "night": (0.45, 0.3), "fog": (1.6, 1.0), "rain": (1.1, 0.7)},
    "radar": {"day": (3.0, 4.5), "night": (3.0, 4.5), "fog": (3.0, 4.5), "rain": (3.3, 5.0)},
}
_CAMERA_DIM = 8
_LIDAR_HEIGHT = 1.6
_RADAR_DETECTIONS = 4


def _camera_basis():
    """A fixed orthonormal 8 x 8 basis: the first two columns carry the appearance code."""
    q, _ = np.linalg.qr(np.random.default_rng(12345).normal(size=(_CAMERA_DIM, _CAMERA_DIM)))
    return q


def gaussian_fusion_log_posterior(readings, conditions, *, sensors=SENSORS, weights="condition",
                                  model=None):
    """Class log-posteriors from the sensors' latent readings, each weighted by its reliability.

    Defined in the chapter on applications. Each reading is Gaussian around its class's
    prototype with a per-axis standard deviation :math:`\\sigma_{s,j}(c)` that depends on the
    condition :math:`c`, so (equal class priors)

    .. math:: \\log p(k \\mid r) = \\text{const} - \\sum_s \\sum_j
              \\frac{(r_{s,j} - \\mu_{s,k,j})^2}{2\\,\\sigma_{s,j}^2(c)},

    a sum of the sensors' squared errors weighted by their inverse variances: the reliability
    weighting of a Kalman filter's update. With ``weights="condition"`` this is the Bayes rule
    of :func:`make_driving`; ``weights="day"`` uses every sensor's daytime variances in every
    condition (fixed weights). By default the prototypes and standard deviations are the
    generator's own; ``model`` takes them from :func:`fit_sensor_model` instead (fitted on
    training data, as a real system must).

    Parameters
    ----------
    readings : dict of str -> array of shape (n, 2)
        A latent reading per sensor, e.g. from :func:`driving_sensor_estimates`.
    conditions : array of shape (n,)
        Condition ids (indices into ``CONDITIONS``).
    sensors : sequence of str, default all three
        The sensors to fuse (a failed sensor is simply left out).
    weights : {"condition", "day"}, default "condition"
    model : dict, optional
        A fitted sensor model from :func:`fit_sensor_model`; None uses the generator's
        parameters (``info["prototypes"]`` and ``info["noise_sd"]`` of :func:`make_driving`).

    Returns
    -------
    numpy.ndarray of shape (n, 3)
        Normalised log-posteriors (``exp`` sums to 1 per row).
    """
    if weights not in ("condition", "day"):
        raise ValueError(f"weights must be 'condition' or 'day', got {weights!r}")
    means, sds = _sensor_parameters(model)
    if isinstance(sensors, str):
        raise TypeError(f"sensors must be a sequence of sensor names, got the str {sensors!r}")
    sensors = tuple(sensors)
    unknown = [s for s in sensors if s not in SENSORS]
    if unknown or not sensors:
        raise ValueError(f"sensors must be a non-empty subset of {SENSORS}, got {sensors!r}")
    conditions = np.asarray(conditions)
    if conditions.ndim != 1 or not np.issubdtype(conditions.dtype, np.integer) or (
            conditions.size and (conditions.min() < 0 or conditions.max() >= len(CONDITIONS))):
        raise ValueError(f"conditions must be a 1-D array of ids in [0, {len(CONDITIONS)})")
    logp = np.zeros((len(conditions), len(DRIVING_CLASSES)))
    for s in sensors:
        r = np.asarray(readings[s], dtype="float64")
        if r.shape != (len(conditions), 2):
            raise ValueError(f"readings[{s!r}] must have shape ({len(conditions)}, 2), got {r.shape}")
        table = sds[s]  # (conditions, 2)
        if weights == "day":
            table = np.repeat(table[CONDITIONS.index("day")][None], len(CONDITIONS), axis=0)
        sd = table[conditions]  # (n, 2)
        diff = r[:, None, :] - means[s][None]  # (n, classes, 2)
        logp -= np.sum(diff ** 2 / (2 * sd[:, None, :] ** 2), axis=-1)
    logp -= logp.max(axis=1, keepdims=True)
    return logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))


def _sensor_parameters(model):
    """Prototypes (classes, 2) and standard deviations (conditions, 2) per sensor."""
    if model is None:
        return ({s: _PROTOTYPES[s] for s in SENSORS},
                {s: np.array([_NOISE_SD[s][c] for c in CONDITIONS]) for s in SENSORS})
    if not isinstance(model, dict) or not {"means", "sd"} <= set(model):
        raise TypeError("model must be a dict from fit_sensor_model (keys 'means' and 'sd'), got "
                        f"{type(model).__name__}")
    means, sds = {}, {}
    for s in SENSORS:
        means[s] = np.asarray(model["means"][s], dtype="float64")
        sds[s] = np.asarray(model["sd"][s], dtype="float64")
        if means[s].shape != (len(DRIVING_CLASSES), 2) or sds[s].shape != (len(CONDITIONS), 2):
            raise ValueError(f"model[{s!r}] has means of shape {means[s].shape} and sd of shape "
                             f"{sds[s].shape}; expected ({len(DRIVING_CLASSES)}, 2) and "
                             f"({len(CONDITIONS)}, 2)")
        if not np.all(sds[s] > 0):
            raise ValueError(f"model['sd'][{s!r}] must be positive, got {sds[s].tolist()}")
    return means, sds


def fit_sensor_model(readings, y, conditions, *, per_condition=True):
    """Fit the Gaussian sensor model of :func:`gaussian_fusion_log_posterior` on training data.

    Defined in the chapter on applications. For each sensor, the prototype of each class is the
    mean of its readings over the training objects of that class, and the standard deviation of
    each axis is that of the residuals (reading minus its class's prototype), computed in each
    condition separately (``per_condition=True``: the reliability-aware model, which needs to
    know the condition at run time) or over all conditions at once (``False``: one fixed
    variance per sensor, the same in every condition).

    Parameters
    ----------
    readings : dict of str -> array of shape (n, 2)
        Estimated readings of the training objects (:func:`driving_sensor_estimates`).
    y : array of shape (n,)
        Class ids.
    conditions : array of shape (n,)
        Condition ids.
    per_condition : bool, default True

    Returns
    -------
    dict
        ``"means"``: sensor -> array (classes, 2); ``"sd"``: sensor -> array (conditions, 2)
        (all rows equal when ``per_condition`` is False); ``"per_condition"``.

    Raises
    ------
    ValueError
        If the arrays disagree in length, or a class or (with ``per_condition``) a condition
        has fewer than two training objects.

    Examples
    --------
    >>> from mmtutor.data.scenarios import make_driving, driving_sensor_estimates, fit_sensor_model
    >>> data = make_driving(400)
    >>> fitted = fit_sensor_model(driving_sensor_estimates(data.train.x), data.train.y,
    ...                           data.train.factors["condition"])
    >>> fitted["sd"]["camera"].shape
    (4, 2)
    """
    y = np.asarray(y)
    conditions = np.asarray(conditions)
    if y.ndim != 1 or conditions.shape != y.shape:
        raise ValueError(f"y and conditions must be 1-D of the same length, got shapes {y.shape} "
                         f"and {conditions.shape}")
    if not isinstance(per_condition, (bool, np.bool_)):
        raise TypeError(f"per_condition must be a bool, got {type(per_condition).__name__}")
    groups = {"class": (y, len(DRIVING_CLASSES))}
    if per_condition:
        groups["condition"] = (conditions, len(CONDITIONS))
    for name, (ids, k) in groups.items():
        counts = np.bincount(ids.astype(int), minlength=k) if ids.size else np.zeros(k, int)
        if ids.size and (ids.min() < 0 or ids.max() >= k):
            raise ValueError(f"{name} ids must lie in [0, {k}), got {ids.min()}..{ids.max()}")
        if counts.min() < 2:
            raise ValueError(f"every {name} needs at least two training objects, got counts "
                             f"{counts.tolist()}")
    means, sds = {}, {}
    for s in SENSORS:
        if s not in readings:
            raise ValueError(f"readings must hold the sensors {SENSORS}, missing {s!r}")
        r = np.asarray(readings[s], dtype="float64")
        if r.shape != (len(y), 2):
            raise ValueError(f"readings[{s!r}] must have shape ({len(y)}, 2), got {r.shape}")
        means[s] = np.stack([r[y == k].mean(axis=0) for k in range(len(DRIVING_CLASSES))])
        residual = r - means[s][y]
        if per_condition:
            sds[s] = np.stack([residual[conditions == c].std(axis=0) for c in range(len(CONDITIONS))])
        else:
            sds[s] = np.repeat(residual.std(axis=0)[None], len(CONDITIONS), axis=0)
    return {"means": means, "sd": sds, "per_condition": bool(per_condition)}


def _draw_readings(y, conditions, rng):
    readings = {}
    for s in SENSORS:
        sd = np.array([_NOISE_SD[s][c] for c in CONDITIONS])[conditions]
        readings[s] = _PROTOTYPES[s][y] + sd * rng.normal(size=(len(y), 2))
    return readings


def driving_ceilings(n_mc=200_000, seed=2024):
    """Bayes ceilings (accuracy) of :func:`make_driving`, by a large-sample computation.

    Defined in the chapter on applications. Draws ``n_mc`` objects from the true generative
    model (classes and conditions equally likely), applies the exact Bayes rule
    :func:`gaussian_fusion_log_posterior` to the sensors' latent readings and counts how often
    it is right; the standard error is at most :math:`\\sqrt{1/(4 n)}` per condition (about
    0.002 with the default). The readings are what the raw inputs are rendered from, so these
    are upper bounds for models of the raw inputs (nearly reached: the rendering adds little).

    Parameters
    ----------
    n_mc : int, default 200000
    seed : int, default 2024

    Returns
    -------
    dict
        ``ceilings[sensor_set][condition]`` with sensor sets ``"camera"``, ``"lidar"``,
        ``"radar"``, ``"all"``, ``"fixed"`` (all three with daytime weights: not a ceiling,
        the accuracy of the fixed-weight rule) and ``"no_camera"``, ``"no_lidar"``,
        ``"no_radar"``; conditions as in ``CONDITIONS`` plus ``"mean"`` (all equally likely).
    """
    n_mc = _check_int(n_mc, "n_mc", 1000)
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(DRIVING_CLASSES), size=n_mc)
    cond = rng.integers(0, len(CONDITIONS), size=n_mc)
    readings = _draw_readings(y, cond, rng)
    sets = {"camera": ("camera",), "lidar": ("lidar",), "radar": ("radar",), "all": SENSORS,
            "no_camera": ("lidar", "radar"), "no_lidar": ("camera", "radar"),
            "no_radar": ("camera", "lidar")}
    out = {}
    for key, sensors in list(sets.items()) + [("fixed", SENSORS)]:
        w = "day" if key == "fixed" else "condition"
        right = gaussian_fusion_log_posterior(readings, cond, sensors=sensors, weights=w).argmax(1) == y
        out[key] = {c: float(right[cond == i].mean()) for i, c in enumerate(CONDITIONS)}
        out[key]["mean"] = float(np.mean(list(out[key].values())))
    return out


def driving_sensor_estimates(x):
    """Estimate each sensor's latent reading from the raw inputs of :func:`make_driving`.

    Defined in the chapter on applications. The camera's code is the projection of its
    feature vector on the two code directions; the lidar's box is the extent of the points
    along and across the driving direction; the radar's speed and cross-section are the means
    over its detections.

    Parameters
    ----------
    x : dict
        A split's inputs (``"camera"``, ``"lidar"``, ``"radar"``).

    Returns
    -------
    dict of str -> numpy.ndarray of shape (n, 2)
    """
    for key in SENSORS:
        if key not in x:
            raise ValueError(f"x must hold the inputs {SENSORS}, missing {key!r}")
    camera = np.asarray(x["camera"], dtype="float64") @ _camera_basis()[:, :2]
    points = np.asarray(x["lidar"], dtype="float64")
    lidar = np.stack([np.ptp(points[..., 0], axis=1), np.ptp(points[..., 1], axis=1)], axis=1)
    radar = np.asarray(x["radar"], dtype="float64")[..., 1:3].mean(axis=1)
    return {"camera": camera, "lidar": lidar, "radar": radar}


def make_driving(n=4000, seed=0, *, num_points=32):
    """Object class from camera, lidar and radar, under day, night, fog and rain.

    Defined in the chapter on applications. Classes (``DRIVING_CLASSES``) and conditions
    (``CONDITIONS``) are drawn independently and uniformly. Each sensor reads a 2-D latent
    quantity of the object, Gaussian around the class's prototype with a standard deviation
    per condition and axis (``info["noise_sd"]``): the camera is good by day and poor at night
    and in fog, the lidar good by day and at night and poor in fog and rain, the radar coarse
    in every condition. The raw inputs are rendered from the readings:

    - ``"camera"``: float32 ``(8,)``, an appearance feature vector as a detector's backbone
      would give: the 2-D code in two fixed directions plus unit-variance clutter in the six
      others;
    - ``"lidar"``: float32 ``(num_points, 3)``, returns ``(x, y, z)`` in metres, sampled on the
      faces of a box of the read length and width (height 1.6 m) at a random range and lateral
      offset, with 2 cm jitter;
    - ``"radar"``: float32 ``(4, 3)``, four detections ``(range m, radial speed m/s, RCS dBsm)``
      scattered around the read speed and cross-section.

    Parameters
    ----------
    n : int, default 4000
        Number of objects, at least 100; split 60 / 20 / 20.
    seed : int, default 0
    num_points : int, default 32
        Lidar returns per object, at least 8.

    Returns
    -------
    Scenario
        Modalities ``("camera", "lidar", "radar")``; factors ``"condition"`` (id into
        ``CONDITIONS``), ``"range"`` (m) and the latent readings ``"reading_camera"``, ...;
        ``ceilings`` from :func:`driving_ceilings`; ``info["noise_sd"]`` the standard
        deviations, ``info["prototypes"]`` the class prototypes.

    Raises
    ------
    TypeError, ValueError
        For a malformed argument.

    Examples
    --------
    >>> from mmtutor.data.scenarios import make_driving
    >>> data = make_driving(200)
    >>> data.test.x["lidar"].shape, data.test.x["radar"].shape
    ((40, 32, 3), (40, 4, 3))
    """
    n = _check_int(n, "n", 100)
    seed = _check_seed(seed)
    num_points = _check_int(num_points, "num_points", 8)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(DRIVING_CLASSES), size=n)
    cond = rng.integers(0, len(CONDITIONS), size=n)
    readings = _draw_readings(y, cond, rng)

    code = readings["camera"]
    clutter = rng.normal(size=(n, _CAMERA_DIM - 2))
    camera = (np.concatenate([code, clutter], axis=1) @ _camera_basis().T).astype("float32")

    rng_dist = rng.uniform(5.0, 40.0, size=n)
    offset = rng.uniform(-3.0, 3.0, size=n)
    length = np.maximum(readings["lidar"][:, 0], 0.2)
    width = np.maximum(readings["lidar"][:, 1], 0.2)
    # Points on the box's faces: pick a face by its area, then a uniform point on it.
    u = rng.uniform(size=(n, num_points, 3))
    dims = np.stack([length, width, np.full(n, _LIDAR_HEIGHT)], axis=1)[:, None, :]
    pts = u * dims
    axis = rng.integers(0, 3, size=(n, num_points))  # the axis the chosen face is normal to
    side = rng.integers(0, 2, size=(n, num_points))
    for a in range(3):
        hit = axis == a
        pts[..., a] = np.where(hit, side * dims[..., a], pts[..., a])
    pts[..., 0] += (rng_dist - length / 2)[:, None]
    pts[..., 1] += (offset - width / 2)[:, None]
    pts += rng.normal(0.0, 0.02, size=pts.shape)
    lidar = pts.astype("float32")

    k = _RADAR_DETECTIONS
    radar = np.stack([
        rng_dist[:, None] + rng.normal(0.0, 0.5, size=(n, k)),
        readings["radar"][:, 0:1] + rng.normal(0.0, 0.3, size=(n, k)),
        readings["radar"][:, 1:2] + rng.normal(0.0, 0.5, size=(n, k)),
    ], axis=-1).astype("float32")

    factors = {"condition": cond, "range": rng_dist}
    factors.update({f"reading_{s}": readings[s] for s in SENSORS})
    splits = _make_splits({"camera": camera, "lidar": lidar, "radar": radar}, y, factors,
                          np.arange(n))
    info = {"n": n, "seed": seed, "num_points": num_points, "conditions": CONDITIONS,
            "noise_sd": {s: dict(v) for s, v in _NOISE_SD.items()},
            "prototypes": {s: v.tolist() for s, v in _PROTOTYPES.items()}}
    return Scenario("driving", SENSORS, DRIVING_CLASSES, *splits, ceilings=driving_ceilings(),
                    info=info)


# --------------------------------------------------------------------------------------------
# HCI: a service assistant hears, reads and sees a request
# --------------------------------------------------------------------------------------------

AFFECTS = ("satisfied", "neutral", "frustrated")
_INTENT_WORDS = (
    ("where", "is", "parcel"), ("cancel", "my", "order"),
    ("book", "an", "appointment"), ("reset", "my", "password"),
)
_AFFECT_WORDS = (
    ("thanks", "please", "great", "kindly", "lovely"),
    ("hello", "ok", "so", "well", "today"),
    ("useless", "again", "ridiculous", "now", "seriously"),
)
_FILLER = ("i", "the", "a", "to", "it", "would", "like")
#: The transcript vocabulary; token id i + 1 is word i (0 is padding).
HCI_VOCAB = tuple(dict.fromkeys(
    [w for ws in _INTENT_WORDS for w in ws] + [w for ws in _AFFECT_WORDS for w in ws] + list(_FILLER)
))
_HCI_RELIABILITY = {"voice": 0.75, "text": 0.8, "face": 0.7}
_HCI_MODALITIES = ("voice", "text", "face")
_FRUSTRATED, _POLITE = 2, 0


def _cue_probs(cue, y, r, k=3):
    return np.where(cue == y, r, (1 - r) / (k - 1))


def hci_ceilings(conflict_rate=0.15, reliability=None):
    """Exact Bayes ceilings (accuracy) of :func:`make_hci`, by enumerating the cues.

    Defined in the chapter on applications. Each modality shows an affect cue that equals the
    true affect with its reliability :math:`r_m` and is one of the two others otherwise; on a
    conflict (a share ``conflict_rate`` of all requests, all frustrated) the words are polite
    whatever the affect. The Bayes rule picks the affect with the largest joint probability of
    the cues; summing the winners' probabilities over the 27 combinations of cues gives the
    exact ceiling. The cues are what the inputs are rendered from, so these are upper bounds
    for models of the inputs.

    Parameters
    ----------
    conflict_rate : float in [0, 1/3], default 0.15
    reliability : dict, optional
        Reliabilities of ``"voice"``, ``"text"``, ``"face"`` (default 0.75, 0.8, 0.7).

    Returns
    -------
    dict
        Accuracy ceilings for every non-empty subset of modalities, keyed by the names joined
        with ``"+"`` in the order voice, text, face (``"voice"``, ..., ``"voice+text+face"``),
        and ``"conflict"``: the ceiling with all three on the conflicting requests alone.
    """
    conflict_rate = _check_float(conflict_rate, "conflict_rate", 0.0, 1 / 3)
    rel = _check_reliability(reliability)
    q = conflict_rate * 3  # probability that a frustrated request is a conflict
    out = {}
    subsets = [s for m in range(1, 4) for s in _subsets(m)]
    for subset in subsets:
        total, conflict_total = 0.0, 0.0
        for cues in product(range(3), repeat=len(subset)):
            joint = np.zeros(3)
            joint_conflict = np.zeros(3)
            for y in range(3):
                normal = 1 / 3 * (1 - (q if y == _FRUSTRATED else 0.0))
                conf = 1 / 3 * q if y == _FRUSTRATED else 0.0
                p_normal, p_conf = normal, conf
                for m, c in zip(subset, cues):
                    p = float(_cue_probs(np.array(c), y, rel[m]))
                    p_normal *= p
                    if m == "text":
                        p_conf *= 1.0 if c == _POLITE else 0.0
                    else:
                        p_conf *= p
                joint[y] = p_normal + p_conf
                joint_conflict[y] = p_conf
            best = int(np.argmax(joint))
            total += float(joint[best])
            conflict_total += float(joint_conflict[best])
        key = "+".join(subset)
        out[key] = total
        if len(subset) == 3:
            out["conflict"] = conflict_total / (q / 3) if q > 0 else float("nan")
    return out


def _subsets(m):
    from itertools import combinations
    return list(combinations(_HCI_MODALITIES, m))


def _check_reliability(reliability):
    if reliability is None:
        return dict(_HCI_RELIABILITY)
    if not isinstance(reliability, dict):
        raise TypeError(f"reliability must be a dict of modality -> float, got {type(reliability).__name__}")
    unknown = set(reliability) - set(_HCI_MODALITIES)
    if unknown:
        raise ValueError(f"reliability has unknown modalities {sorted(unknown)}; use {_HCI_MODALITIES}")
    rel = dict(_HCI_RELIABILITY)
    for key, value in reliability.items():
        rel[key] = _check_float(value, f"reliability[{key!r}]", 1 / 3, 1.0)
    return rel


def _render_voice(cue, rng, frames, bins):
    """Spectrogram-like arrays: a pitch track whose level, slope and energy carry the cue."""
    n = len(cue)
    speaker = rng.normal(0.0, 1.0, size=n)  # the speaker's own pitch level, in bins
    level = np.array([6.0, 4.5, 9.0])[cue] + speaker
    slope = np.array([2.5, 0.0, -1.5])[cue] + rng.normal(0.0, 1.0, size=n)  # rising when pleased
    wobble = np.array([0.3, 0.2, 1.0])[cue]  # frustrated pitch jumps around
    energy = np.array([0.8, 0.6, 1.0])[cue] * rng.uniform(0.7, 1.3, size=n)
    t = np.linspace(0, 1, frames)
    pitch = (level[:, None] + slope[:, None] * t[None]
             + wobble[:, None] * rng.normal(0.0, 1.0, size=(n, frames)))
    f = np.arange(bins)
    spec = np.zeros((n, frames, bins))
    for harmonic, gain in ((1, 1.0), (2, 0.5)):
        spec += gain * np.exp(-(f[None, None] - harmonic * pitch[..., None] / 1.5) ** 2 / 1.5)
    spec = energy[:, None, None] * spec + rng.normal(0.0, 0.1, size=spec.shape)
    return spec.astype("float32")


def _render_text(cue, intent, conflict, rng, seq_len):
    index = {w: i + 1 for i, w in enumerate(HCI_VOCAB)}
    tokens = np.zeros((len(cue), seq_len), dtype="int32")
    for i, (c, k) in enumerate(zip(cue, intent)):
        words = list(_INTENT_WORDS[k])
        shown = _POLITE if conflict[i] else c
        words += list(rng.choice(_AFFECT_WORDS[shown], size=2, replace=False))
        words += list(rng.choice(_FILLER, size=rng.integers(0, seq_len - len(words) + 1)))
        rng.shuffle(words)
        tokens[i, :len(words)] = [index[w] for w in words[:seq_len]]
    return tokens


def _render_face(cue, rng):
    """Ten 2-D landmarks (brows, eyes, mouth) under a random head pose, flattened to 20 values."""
    n = len(cue)
    smile = np.array([0.25, 0.0, -0.2])[cue] + rng.normal(0.0, 0.08, size=n)
    brow = np.array([0.05, 0.0, -0.15])[cue] + rng.normal(0.0, 0.05, size=n)
    eyes = np.array([0.1, 0.1, 0.16])[cue] + rng.normal(0.0, 0.03, size=n)
    base = np.array([[-0.5, 0.6], [-0.2, 0.6], [0.2, 0.6], [0.5, 0.6],  # brows, outer to inner
                     [-0.35, 0.35], [0.35, 0.35],  # eyes
                     [-0.35, -0.4], [0.35, -0.4], [0.0, -0.3], [0.0, -0.5]])  # mouth
    pts = np.repeat(base[None], n, axis=0)
    pts[:, [1, 2], 1] += brow[:, None]  # inner brows lowered in a frown
    pts[:, [4, 5], 1] += eyes[:, None] - 0.1
    pts[:, [6, 7], 1] += smile[:, None]  # mouth corners up in a smile
    pts[:, 9, 1] -= np.abs(smile) * 0.3
    angle = rng.normal(0.0, 0.25, size=n)
    scale = rng.uniform(0.8, 1.2, size=n)
    shift = rng.normal(0.0, 0.1, size=(n, 2))
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    pts = scale[:, None, None] * np.einsum("nij,nkj->nki", rot, pts) + shift[:, None, :]
    pts += rng.normal(0.0, 0.02, size=pts.shape)
    return pts.reshape(n, -1).astype("float32")


def make_hci(n=3000, seed=0, *, conflict_rate=0.15, reliability=None, frames=32, bins=16,
             seq_len=10):
    """A service assistant hears, reads and sees a request: the user's affect, with conflicts.

    Defined in the chapter on applications. The affect (``AFFECTS``: satisfied, neutral,
    frustrated) and the intent (one of four requests, e.g. "where is parcel") are drawn
    uniformly. Each modality shows an affect cue that equals the affect with its reliability
    (voice 0.75, text 0.8, face 0.7 by default) and one of the two other affects otherwise. A
    share ``conflict_rate`` of all requests are *conflicts*: frustrated, but said in polite
    words (the text's cue is "satisfied"), like "thanks, kindly reset my password ... again".
    Modalities:

    - ``"voice"``: float32 ``(frames, bins)``, a spectrogram-like array with a pitch track
      and its second harmonic; the cue sets pitch level, contour and jitter, and loudness; the
      speaker's own pitch varies;
    - ``"text"``: int32 ``(seq_len,)`` token ids of the transcript (``HCI_VOCAB``, id 0 is
      padding): the intent's three words, two affect words, fillers, in random order;
    - ``"face"``: float32 ``(20,)``, ten 2-D face landmarks (brows, eyes, mouth) under a
      random head rotation, scale and shift.

    Parameters
    ----------
    n : int, default 3000
        Number of requests, at least 100; split 60 / 20 / 20.
    seed : int, default 0
    conflict_rate : float in [0, 1/3], default 0.15
    reliability : dict, optional
        Cue reliabilities by modality, each in [1/3, 1].
    frames, bins : int, default 32, 16
        Size of the voice arrays (at least 8 each).
    seq_len : int, default 10
        Length of the padded transcripts (at least 5).

    Returns
    -------
    Scenario
        Factors ``"intent"``, ``"conflict"`` (bool) and the cues ``"cue_voice"``,
        ``"cue_text"`` (as shown, polite on conflicts), ``"cue_face"``; ceilings from
        :func:`hci_ceilings`.

    Raises
    ------
    TypeError, ValueError
        For a malformed argument.

    Examples
    --------
    >>> from mmtutor.data.scenarios import make_hci
    >>> data = make_hci(200)
    >>> data.val.x["voice"].shape, data.val.x["text"].shape, data.val.x["face"].shape
    ((40, 32, 16), (40, 10), (40, 20))
    """
    n = _check_int(n, "n", 100)
    seed = _check_seed(seed)
    conflict_rate = _check_float(conflict_rate, "conflict_rate", 0.0, 1 / 3)
    rel = _check_reliability(reliability)
    frames = _check_int(frames, "frames", 8)
    bins = _check_int(bins, "bins", 8)
    seq_len = _check_int(seq_len, "seq_len", 5)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    intent = rng.integers(0, len(_INTENT_WORDS), size=n)
    conflict = (y == _FRUSTRATED) & (rng.uniform(size=n) < conflict_rate * 3)
    cues = {}
    for m in _HCI_MODALITIES:
        other = (y + rng.integers(1, 3, size=n)) % 3
        cues[m] = np.where(rng.uniform(size=n) < rel[m], y, other)
    cues["text"] = np.where(conflict, _POLITE, cues["text"])
    x = {"voice": _render_voice(cues["voice"], rng, frames, bins),
         "text": _render_text(cues["text"], intent, conflict, rng, seq_len),
         "face": _render_face(cues["face"], rng)}
    factors = {"intent": intent, "conflict": conflict}
    factors.update({f"cue_{m}": cues[m] for m in _HCI_MODALITIES})
    splits = _make_splits(x, y, factors, np.arange(n))
    info = {"n": n, "seed": seed, "conflict_rate": conflict_rate, "reliability": rel,
            "vocab": HCI_VOCAB, "intents": tuple(" ".join(w) for w in _INTENT_WORDS),
            "vocab_size": len(HCI_VOCAB) + 1}
    return Scenario("hci", _HCI_MODALITIES, AFFECTS, *splits,
                    ceilings=hci_ceilings(conflict_rate, rel), info=info)
