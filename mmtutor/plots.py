"""Plots the book draws again and again: evaluation curves, training curves, audio, images.

Matplotlib only, safe with the non-interactive Agg backend (nothing here calls ``plt.show``).
Functions that draw into one Axes take ``ax=None`` (a new figure is made when it is None) and
return the Axes, so several curves can share a plot; functions that draw several panels return
the Figure.
"""

import numbers

import matplotlib.pyplot as plt
import numpy as np

from mmtutor import metrics as _metrics

__all__ = [
    "plot_confusion_matrix",
    "plot_roc",
    "plot_pr",
    "plot_reliability",
    "plot_history",
    "plot_waveform_and_spectrogram",
    "image_grid",
]


def _new_axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    elif not isinstance(ax, plt.Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}.")
    return ax


def plot_confusion_matrix(cm, labels, ax=None, normalize=None, cmap="Blues"):
    """Draw a confusion matrix as a heat map with the value written in each cell.

    Rows are true classes and columns predicted classes, as returned by
    :func:`mmtutor.metrics.confusion_matrix`. Defined in the chapter on evaluation.

    Parameters
    ----------
    cm : array-like of shape (n_classes, n_classes)
        Counts (non-negative).
    labels : sequence of str
        Class names, one per row.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if None.
    normalize : {None, "true", "pred", "all"}, default None
        Show counts, or fractions of each row ("true": the diagonal is the recall of each
        class), of each column ("pred": the diagonal is the precision) or of the total.
    cmap : str, default "Blues"
        Matplotlib colour map.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from mmtutor.metrics import confusion_matrix
    >>> cm = confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0])
    >>> ax = plot_confusion_matrix(cm, ["negative", "positive"], normalize="true")
    >>> len(ax.texts)
    4
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm must be a square matrix (n_classes, n_classes), got shape "
                         f"{cm.shape}.")
    if cm.dtype.kind not in "biuf" or not np.all(np.isfinite(cm)) or cm.min() < 0:
        raise ValueError("cm must hold non-negative finite counts, as from "
                         "mmtutor.metrics.confusion_matrix.")
    labels = [str(label) for label in labels]
    if len(labels) != cm.shape[0]:
        raise ValueError(f"labels must name the {cm.shape[0]} classes of cm, got {len(labels)} "
                         f"labels: {labels}.")
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}.")
    counts = cm.astype(np.float64)
    if normalize == "true":
        denom = counts.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        denom = counts.sum(axis=0, keepdims=True)
    elif normalize == "all":
        denom = np.array(counts.sum())
    if normalize is None:
        values = counts
    else:
        values = np.divide(counts, denom, out=np.zeros_like(counts), where=denom != 0)
    k = cm.shape[0]
    ax = _new_axes(ax, (1.2 + 0.9 * k, 1.0 + 0.8 * k))
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=1 if normalize else max(values.max(), 1))
    # Dark text on light cells, white on dark ones.
    threshold = (1 if normalize else max(values.max(), 1)) / 2
    for i in range(k):
        for j in range(k):
            text = f"{values[i, j]:.2f}" if normalize else f"{int(round(values[i, j]))}"
            ax.text(j, i, text, ha="center", va="center",
                    color="white" if values[i, j] > threshold else "black")
    ax.set_xticks(range(k), labels, rotation=45 if max(map(len, labels)) > 6 else 0,
                  ha="right" if max(map(len, labels)) > 6 else "center")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    title = {None: "Confusion matrix (counts)", "true": "Confusion matrix (each row sums to 1)",
             "pred": "Confusion matrix (each column sums to 1)",
             "all": "Confusion matrix (share of all samples)"}[normalize]
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def _chance_line(ax, x, y):
    """Draw the reference line once per Axes, even when several models share it."""
    if not any(line.get_gid() == "mmtutor-chance" for line in ax.get_lines()):
        ax.plot(x, y, linestyle="--", color="grey", linewidth=1, gid="mmtutor-chance",
                label="chance")


def plot_roc(y_true, scores, ax=None, label=None, **line_kwargs):
    """Draw the ROC curve of one model, with its AUC in the legend.

    Call it again with the same ``ax`` to compare models on one plot; the chance diagonal is
    drawn once. Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels (0/1).
    scores : array-like of shape (n_samples,)
        Scores or probabilities of the positive class.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if None.
    label : str, optional
        Name of the model in the legend.
    **line_kwargs
        Passed to ``Axes.plot`` (colour, line width...).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = plot_roc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], label="fused")
    >>> ax.get_legend().get_texts()[-1].get_text()
    'fused (AUC = 0.750)'
    """
    fpr, tpr, _ = _metrics.roc_curve(y_true, scores)
    auc = _metrics.roc_auc(y_true, scores)
    ax = _new_axes(ax, (4.5, 4.5))
    _chance_line(ax, [0, 1], [0, 1])
    name = f"{label} (AUC = {auc:.3f})" if label else f"AUC = {auc:.3f}"
    ax.plot(fpr, tpr, label=name, **line_kwargs)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate (recall)")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return ax


def plot_pr(y_true, scores, ax=None, label=None, **line_kwargs):
    """Draw the precision-recall curve of one model, with its average precision.

    The dashed line is the precision of a random ranking: the share of positives. Defined in
    the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels (0/1).
    scores : array-like of shape (n_samples,)
        Scores or probabilities of the positive class.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if None.
    label : str, optional
        Name of the model in the legend.
    **line_kwargs
        Passed to ``Axes.plot``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = plot_pr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], label="fused")
    >>> ax.get_legend().get_texts()[-1].get_text()
    'fused (AP = 0.833)'
    """
    prec, rec, _ = _metrics.precision_recall_curve(y_true, scores)
    ap = _metrics.average_precision(y_true, scores)
    prevalence = float(np.mean(np.asarray(y_true) == 1))
    ax = _new_axes(ax, (4.5, 4.5))
    _chance_line(ax, [0, 1], [prevalence, prevalence])
    name = f"{label} (AP = {ap:.3f})" if label else f"AP = {ap:.3f}"
    # AP is the area under this step function (precision held until recall next changes).
    ax.plot(rec, prec, drawstyle="steps-post", label=name, **line_kwargs)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left")
    return ax


def plot_reliability(y_true, prob, n_bins=10, ax=None, strategy="uniform"):
    """Reliability diagram: accuracy per confidence bin against the diagonal.

    A bar below the diagonal means the model was right less often than its confidence said
    (overconfident); the shaded part of each bar is the gap. The title gives the expected
    calibration error. Defined in the chapter on evaluation.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels (see :func:`mmtutor.metrics.expected_calibration_error`).
    prob : array-like of shape (n_samples,) or (n_samples, n_classes)
        Probability of class 1, or rows of class probabilities.
    n_bins : int, default 10
        Number of confidence bins.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if None.
    strategy : {"uniform", "quantile"}, default "uniform"
        Bin edges (see :func:`mmtutor.metrics.expected_calibration_error`).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = plot_reliability([1, 0, 0, 1], [0.95, 0.85, 0.3, 0.65], n_bins=5)
    >>> ax.get_title()
    'Reliability diagram (ECE = 0.362)'
    """
    ece, bins = _metrics.expected_calibration_error(y_true, prob, n_bins=n_bins,
                                                    strategy=strategy)
    ax = _new_axes(ax, (4.5, 4.5))
    filled = bins.count > 0
    left = bins.lower[filled]
    width = (bins.upper - bins.lower)[filled]
    acc, conf = bins.accuracy[filled], bins.confidence[filled]
    ax.bar(left, acc, width=width, align="edge", color="tab:blue", edgecolor="black",
           label="accuracy")
    # The gap between each bin's mean confidence and its accuracy.
    ax.bar(left, conf - acc, bottom=acc, width=width, align="edge", color="tab:red",
           alpha=0.3, edgecolor="tab:red", hatch="//", label="gap to confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Accuracy")
    ax.set_title(f"Reliability diagram (ECE = {ece:.3f})")
    ax.legend(loc="upper left")
    return ax


def _history_table(history):
    """A Keras History, a dict of lists or a DataFrame, as a dict of 1-D float arrays."""
    if hasattr(history, "history") and isinstance(history.history, dict):
        history = history.history
    if hasattr(history, "to_dict") and hasattr(history, "columns"):  # a pandas DataFrame
        history = {str(col): history[col].to_numpy() for col in history.columns}
    if not isinstance(history, dict) or not history:
        raise TypeError("history must be a Keras History (from model.fit), a non-empty dict of "
                        f"lists or a pandas DataFrame, got {type(history).__name__}.")
    return {key: np.asarray(values, dtype=np.float64).ravel() for key, values in history.items()}


def plot_history(history, metrics=("loss", "accuracy")):
    """Training curves: one panel per metric, training and validation values per epoch.

    Defined in the chapter on the sentiment project (training with callbacks).

    Parameters
    ----------
    history : keras.callbacks.History, dict or pandas.DataFrame
        What ``model.fit`` returned, its ``.history`` dict, or a table read back from a CSV log
        (an ``epoch`` column is used as the x axis if present). For each metric ``m``, a
        ``val_m`` entry, if present, is drawn beside it.
    metrics : sequence of str, default ("loss", "accuracy")
        The metrics to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_history({"loss": [0.7, 0.5, 0.4], "val_loss": [0.7, 0.6, 0.6]},
    ...                    metrics=["loss"])
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['train', 'validation']
    """
    table = _history_table(history)
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics must name at least one metric, e.g. ('loss', 'accuracy').")
    missing = [m for m in metrics if m not in table]
    if missing:
        available = sorted(k for k in table if k != "epoch" and not k.startswith("val_"))
        raise ValueError(f"history has no metric {missing[0]!r}; it holds {available}. Pass "
                         "metrics=... with names from this list.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        train = table[name]
        epochs = table["epoch"] + 1 if "epoch" in table else np.arange(1, train.size + 1)
        ax.plot(epochs[:train.size], train, marker="o", markersize=3, label="train")
        if f"val_{name}" in table:
            val = table[f"val_{name}"]
            ax.plot(epochs[:val.size], val, marker="o", markersize=3, label="validation")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(name)
        ax.set_title(name.replace("_", " ").capitalize())
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_waveform_and_spectrogram(y, sr, log_mel=None, ax=None, *, fmin=0.0, fmax=None,
                                  title=None):
    """A waveform above its log-mel spectrogram, on a shared time axis.

    Defined in the chapter on preprocessing (audio).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The waveform.
    sr : int
        Its sampling rate in Hz.
    log_mel : array-like of shape (frames, n_mels), optional
        The log-mel spectrogram in dB, time first as from :func:`mmtutor.preprocess.log_mel`
        (transpose librosa's ``(n_mels, frames)``). Computed with that function's defaults if
        None.
    ax : sequence of two matplotlib Axes, optional
        Where to draw the waveform and the spectrogram; a new figure is made if None.
    fmin, fmax : float
        Frequency range of the mel bands (``fmax=None``: ``sr / 2``), used to label the mel
        axis in Hz; give the values the spectrogram was computed with.
    title : str, optional
        Title above the waveform.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(8000) / 16000
    >>> fig = plot_waveform_and_spectrogram(np.sin(2 * np.pi * 440 * t), 16000,
    ...                                     log_mel=np.zeros((51, 64)))
    >>> [a.get_ylabel() for a in fig.axes[:2]]
    ['Amplitude', 'Mel band centre (Hz)']
    """
    wave = np.asarray(y)
    if wave.ndim != 1 or wave.size == 0 or wave.dtype.kind not in "biuf":
        raise ValueError(f"y must be a non-empty 1-D waveform, got shape {wave.shape} and dtype "
                         f"{wave.dtype}.")
    if not np.all(np.isfinite(wave)):
        raise ValueError("y contains NaN or infinite samples.")
    if isinstance(sr, bool) or not isinstance(sr, numbers.Integral) or sr <= 0:
        raise ValueError(f"sr must be a positive integer sampling rate in Hz, got {sr!r}.")
    if log_mel is None:
        from mmtutor.preprocess import log_mel as _log_mel

        spec = _log_mel(wave.astype(np.float32), sr=sr, fmin=fmin, fmax=fmax)
    else:
        spec = np.asarray(log_mel, dtype=np.float64)
        if spec.ndim != 2 or 0 in spec.shape:
            raise ValueError(f"log_mel must be a 2-D array (frames, n_mels), got shape "
                             f"{spec.shape}.")
        if spec.shape[1] > 512 and spec.shape[0] <= 512:
            raise ValueError(f"log_mel has shape {spec.shape}, which looks like librosa's "
                             "(n_mels, frames) layout; pass log_mel.T (time first).")
    if ax is None:
        fig, (ax_wave, ax_spec) = plt.subplots(
            2, 1, figsize=(8, 5), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    else:
        try:
            ax_wave, ax_spec = ax
        except (TypeError, ValueError):
            raise TypeError("ax must be a pair of Axes (waveform, spectrogram) or None.") from None
        fig = ax_wave.figure
    duration = wave.size / sr
    ax_wave.plot(np.arange(wave.size) / sr, wave, linewidth=0.6)
    ax_wave.set_xlim(0, duration)
    ax_wave.set_ylabel("Amplitude")
    if title:
        ax_wave.set_title(title)
    n_mels = spec.shape[1]
    image = ax_spec.imshow(spec.T, origin="lower", aspect="auto", cmap="magma",
                           extent=[0, duration, 0, n_mels], interpolation="nearest")
    # Label a few mel bands with the frequency at their centre: the axis is linear in mel,
    # so equal steps up the image are ever larger steps in Hz.
    import librosa

    centres = librosa.mel_frequencies(n_mels + 2, fmin=fmin,
                                      fmax=sr / 2 if fmax is None else fmax)[1:-1]
    ticks = np.linspace(0, n_mels - 1, 5).round().astype(int)
    ax_spec.set_yticks(ticks + 0.5, [f"{centres[t]:.0f}" for t in ticks])
    ax_spec.set_ylabel("Mel band centre (Hz)")
    ax_spec.set_xlabel("Time (s)")
    if ax is None:
        # Take the colour bar's width from both panels, so their time axes stay aligned, then
        # let the bar run along the spectrogram only.
        bar = fig.colorbar(image, ax=[ax_wave, ax_spec], label="dB", fraction=0.05, pad=0.02)
        spec_box, bar_box = ax_spec.get_position(), bar.ax.get_position()
        bar.ax.set_position([bar_box.x0, spec_box.y0, bar_box.width, spec_box.height])
    else:
        fig.colorbar(image, ax=ax_spec, label="dB", fraction=0.05, pad=0.02)
    return fig


def image_grid(images, titles=None, ncols=8, *, bgr=False, rescale=False, cell_size=1.6):
    """Show images in a grid, with optional titles.

    Defined in the chapter on preprocessing (meet the data).

    Parameters
    ----------
    images : array-like of shape (n, height, width[, channels]) or a list of such images
        Grey (2-D or 1 channel), RGB or RGBA; uint8 in [0, 255] or floats in [0, 1].
    titles : sequence of str, optional
        One title per image (e.g. the label, or "true / predicted").
    ncols : int, default 8
        Images per row.
    bgr : bool, default False
        The images are in OpenCV's BGR channel order; convert them to RGB for display.
    rescale : bool, default False
        Stretch each image to [0, 1] (for normalised tensors whose values are outside it).
    cell_size : float, default 1.6
        Size in inches of each cell.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = image_grid(np.zeros((3, 8, 8, 3), "uint8"), titles=["a", "b", "c"], ncols=2)
    >>> sum(a.get_visible() for a in fig.axes), len(fig.axes)
    (3, 4)
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is empty; expected at least one image.")
        images = [np.asarray(im) for im in images]
    else:
        images = np.asarray(images)
        if images.ndim not in (3, 4) or images.shape[0] == 0:
            raise ValueError(f"images must have shape (n, height, width) or (n, height, width, "
                             f"channels), got {images.shape}.")
        images = list(images)
    if isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}.")
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != len(images):
            raise ValueError(f"titles must have one entry per image: {len(images)} images, "
                             f"{len(titles)} titles.")
    shown = []
    for i, im in enumerate(images):
        if im.ndim == 3 and im.shape[-1] == 1:
            im = im[..., 0]
        if im.ndim not in (2, 3) or (im.ndim == 3 and im.shape[-1] not in (3, 4)):
            raise ValueError(f"image {i} has shape {im.shape}; expected (height, width) or "
                             "(height, width, 1|3|4).")
        if im.dtype.kind not in "buif":
            raise ValueError(f"image {i} has dtype {im.dtype}; expected numbers.")
        im = im.astype(np.float64) / 255.0 if im.dtype == np.uint8 else im.astype(np.float64)
        if not np.all(np.isfinite(im)):
            raise ValueError(f"image {i} contains NaN or infinite values.")
        if rescale:
            low, high = im.min(), im.max()
            im = (im - low) / (high - low) if high > low else np.zeros_like(im)
        elif im.min() < 0 or im.max() > 1:
            raise ValueError(f"image {i} has values from {im.min():g} to {im.max():g}; expected "
                             "uint8 or floats in [0, 1]. Pass rescale=True to stretch each image "
                             "to [0, 1].")
        if bgr and im.ndim == 3:
            im = np.concatenate([im[..., 2::-1], im[..., 3:]], axis=-1)
        shown.append(im)
    ncols = min(ncols, len(shown))
    nrows = -(-len(shown) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_size * ncols, cell_size * nrows + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= len(shown):
            ax.set_visible(False)
            continue
        ax.imshow(shown[i], cmap="gray" if shown[i].ndim == 2 else None, vmin=0, vmax=1)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig
