"""Image preprocessing: load with OpenCV, standardise with training statistics, augment.

Defined in the chapter on preprocessing. OpenCV decodes images in BGR channel order; every
function here returns RGB, float32 in [0, 1], shape ``(H, W, 3)`` or ``(n, H, W, 3)``.
"""

import contextlib
import numbers

import cv2
import numpy as np

from mmtutor.preprocess._checks import check_existing_file, check_fraction, check_path_list, check_size

__all__ = ["load_image", "load_images", "fit_image_stats", "standardize", "augmentation"]


@contextlib.contextmanager
def _opencv_quiet():
    """Silence OpenCV's own warnings (e.g. "PNG input buffer is incomplete"): we raise instead."""
    old = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(old)


def load_image(path, size=(64, 64)):
    """Read an image file as an RGB float32 array in [0, 1], resized to ``size``.

    Defined in the chapter on preprocessing. OpenCV stores pixels in BGR order; this function
    converts to RGB, which is what plotting libraries and pretrained models expect. Shrinking
    uses ``cv2.INTER_AREA`` (it averages the pixels that fall into each output pixel, so it does
    not alias); an image already at ``size`` is not resampled. Grayscale images are repeated to
    three channels and an alpha channel is dropped.

    Parameters
    ----------
    path : str or path-like
        The image file (any format OpenCV decodes: PNG, JPEG, BMP, ...).
    size : tuple of int, default (64, 64)
        Output ``(height, width)``.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(height, width, 3)``, RGB, values in [0, 1].

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is empty or is not a decodable image (wrong bytes, truncated file).

    Examples
    --------
    >>> import cv2, numpy as np, tempfile, os
    >>> from mmtutor.preprocess import load_image
    >>> bgr = np.zeros((8, 8, 3), np.uint8); bgr[..., 2] = 255  # pure red in OpenCV's BGR
    >>> path = os.path.join(tempfile.mkdtemp(), "red.png"); _ = cv2.imwrite(path, bgr)
    >>> load_image(path, size=(4, 4))[0, 0].tolist()  # channel 0 is red
    [1.0, 0.0, 0.0]
    """
    height, width = check_size("size", size)
    path = check_existing_file(path, "image")
    data = np.fromfile(path, dtype=np.uint8)  # via bytes: works for non-ASCII paths too
    if data.size == 0:
        raise ValueError(f"image file is empty: {str(path)!r}")
    with _opencv_quiet():
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not decode image file {str(path)!r}: not an image, or a truncated/corrupt one")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)  # cv2 wants (w, h)
    return rgb.astype(np.float32) / np.float32(255.0)


def load_images(paths, size=(64, 64), *, mask_missing=True):
    """Load many images into one array, with a mask of which ones are present.

    Defined in the chapter on preprocessing. An empty path ``""`` marks a missing image (the
    manifest's convention for a missing modality): its slot is all zeros and its mask entry is
    False, so that a model can tell "no image" from "a black image".

    Parameters
    ----------
    paths : sequence of str or path-like
        Image files; ``""`` where the image is missing.
    size : tuple of int, default (64, 64)
        Output ``(height, width)`` of every image.
    mask_missing : bool, default True
        If False, a missing path is an error instead of a zero image.

    Returns
    -------
    images : numpy.ndarray
        float32, shape ``(n, height, width, 3)``, RGB in [0, 1].
    mask : numpy.ndarray
        bool, shape ``(n,)``, True where an image was loaded.

    Raises
    ------
    ValueError
        If ``mask_missing`` is False and a path is ``""``, or an image cannot be decoded (the
        message names the file).
    FileNotFoundError
        If a non-empty path does not exist.

    Examples
    --------
    >>> from mmtutor.preprocess import load_images
    >>> images, mask = load_images(["", ""], size=(16, 16))
    >>> images.shape, mask.tolist()
    ((2, 16, 16, 3), [False, False])
    """
    height, width = check_size("size", size)
    paths = check_path_list("paths", paths)
    images = np.zeros((len(paths), height, width, 3), dtype=np.float32)
    mask = np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        if path == "":
            if not mask_missing:
                raise ValueError(f"paths[{i}] is '' (missing image) and mask_missing=False")
            continue
        images[i] = load_image(path, (height, width))
        mask[i] = True
    return images, mask


def _check_images(name, images):
    images = np.asarray(images)
    if images.ndim not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (n, H, W, 3) or (H, W, 3), got {images.shape}")
    if not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {images.dtype}")
    return images


def _check_mask(mask, n):
    if mask is None:
        return np.ones(n, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != (n,) or mask.dtype != bool:
        raise ValueError(f"mask must be a boolean array of shape ({n},), got {mask.dtype} {mask.shape}")
    return mask


def _channel_vector(name, value):
    value = np.asarray(value, dtype=np.float32)
    if value.shape not in ((), (1,), (3,)):
        raise ValueError(f"{name} must be a scalar or an array of shape (3,), got shape {value.shape}")
    return np.broadcast_to(value, (3,))


def fit_image_stats(train_images, mask=None):
    """Per-channel mean and standard deviation of the TRAINING images.

    Defined in the chapter on preprocessing. Compute these on the training split only, then
    apply them unchanged to validation and test images with :func:`standardize`; computing them
    on all the data lets test-set information leak into training.

    Parameters
    ----------
    train_images : array-like
        Shape ``(n, H, W, 3)``.
    mask : array-like of bool, optional
        Shape ``(n,)``; images where it is False (missing ones, all zeros) are left out.

    Returns
    -------
    mean, std : numpy.ndarray
        float32 arrays of shape ``(3,)``.

    Raises
    ------
    ValueError
        On a wrong shape, or when no image is present.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import fit_image_stats
    >>> x = np.stack([np.zeros((2, 2, 3)), np.ones((2, 2, 3))]).astype("float32")
    >>> mean, std = fit_image_stats(x)
    >>> mean.tolist(), std.tolist()
    ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    """
    train_images = _check_images("train_images", train_images)
    if train_images.ndim != 4:
        raise ValueError(f"train_images must have shape (n, H, W, 3), got {train_images.shape}")
    mask = _check_mask(mask, len(train_images))
    present = train_images[mask].astype(np.float64)
    if present.shape[0] == 0:
        raise ValueError("fit_image_stats needs at least one present image; got none")
    mean = present.mean(axis=(0, 1, 2))
    std = present.std(axis=(0, 1, 2))
    return mean.astype(np.float32), std.astype(np.float32)


def standardize(images, mean, std, mask=None, *, eps=1e-6):
    """Standardise images per channel: ``(x - mean) / std``.

    Defined in the chapter on preprocessing. ``mean`` and ``std`` come from
    :func:`fit_image_stats` on the training images.

    Parameters
    ----------
    images : array-like
        Shape ``(n, H, W, 3)`` or ``(H, W, 3)``.
    mean, std : array-like
        Shape ``(3,)`` (or scalars).
    mask : array-like of bool, optional
        Shape ``(n,)``; images where it is False stay all zeros (a missing image must not turn
        into the constant ``-mean / std``).
    eps : float, default 1e-6
        Added to ``std`` so a constant channel does not divide by zero.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape as ``images``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import standardize
    >>> standardize(np.full((1, 2, 2, 3), 0.75, "float32"), mean=0.5, std=0.25)[0, 0, 0].round(3).tolist()
    [1.0, 1.0, 1.0]
    """
    images = _check_images("images", images)
    mean = _channel_vector("mean", mean)
    std = _channel_vector("std", std)
    if not (np.all(np.isfinite(std)) and np.all(std >= 0) and np.all(np.isfinite(mean))):
        raise ValueError(f"mean must be finite and std finite and >= 0, got mean={mean}, std={std}")
    out = (images.astype(np.float32) - mean) / (std + np.float32(eps))
    if mask is not None:
        if images.ndim != 4:
            raise ValueError("mask needs a batch of images of shape (n, H, W, 3)")
        out[~_check_mask(mask, len(images))] = 0.0
    return out.astype(np.float32)


def augmentation(seed=None, flip=True, rotation=0.05, zoom=0.1, contrast=0.1, *, value_range=(0.0, 1.0)):
    """Random image augmentation as Keras preprocessing layers.

    Defined in the chapter on preprocessing. This replaces ``ImageDataGenerator``, which Keras 3
    removed. The layers change images only while training (``model.fit``, or a call with
    ``training=True``); at inference they pass images through unchanged, so the same model can
    contain them. A factor of 0 (or ``flip=False``) leaves that layer out.

    Parameters
    ----------
    seed : int, optional
        Seed of the first layer; later layers use ``seed + 1``, ``seed + 2``, ... so that the
        same seed gives the same augmentations.
    flip : bool, default True
        Random horizontal flips.
    rotation : float, default 0.05
        Largest rotation as a fraction of a full turn (0.05 = 18 degrees).
    zoom : float, default 0.1
        Largest zoom in or out as a fraction of the image size.
    contrast : float, default 0.1
        Contrast is scaled by a random factor in ``[1 - contrast, 1 + contrast]``.
    value_range : tuple of float, default (0.0, 1.0)
        Range of pixel values, used by the contrast layer to clip its output.

    Returns
    -------
    keras.Sequential
        A model mapping ``(n, H, W, 3)`` float images to the same shape.

    Raises
    ------
    ValueError
        If a factor is out of range, or every augmentation is switched off.

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.preprocess import augmentation
    >>> aug = augmentation(seed=0)
    >>> x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    >>> np.asarray(aug(x, training=True)).shape
    (2, 16, 16, 3)
    """
    import keras

    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
    if not isinstance(flip, bool):
        raise ValueError(f"flip must be True or False, got {flip!r}")
    rotation = check_fraction("rotation", rotation, upper=0.5, allow_upper=True)
    zoom = check_fraction("zoom", zoom, upper=1.0)
    contrast = check_fraction("contrast", contrast, upper=1.0, allow_upper=True)
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be a pair (low, high), got {value_range!r}") from None
    if not low < high:
        raise ValueError(f"value_range must have low < high, got {value_range!r}")

    def next_seed(k):
        return None if seed is None else int(seed) + k

    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=next_seed(len(layers))))
    if rotation > 0:
        layers.append(keras.layers.RandomRotation(rotation, seed=next_seed(len(layers))))
    if zoom > 0:
        layers.append(keras.layers.RandomZoom(zoom, seed=next_seed(len(layers))))
    if contrast > 0:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(low, high), seed=next_seed(len(layers))))
    if not layers:
        raise ValueError("augmentation has nothing to do: flip=False and rotation, zoom, contrast are all 0")
    return keras.Sequential(layers, name="augmentation")
