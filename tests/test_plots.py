"""Tests of mmtutor.plots: each plot draws what it should (checked on the artists), Agg backend."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mmtutor import metrics as mm  # noqa: E402
from mmtutor import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _binary_scores(seed=0, n=200, strength=1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, rng.normal(size=n) + strength * y


def test_confusion_matrix_plot_counts_and_normalized():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    y_hat = np.where(rng.random(120) < 0.7, y, rng.integers(0, 3, 120))
    cm = mm.confusion_matrix(y, y_hat)
    names = ["negative", "neutral", "positive"]
    ax = plots.plot_confusion_matrix(cm, names)
    assert isinstance(ax, plt.Axes)
    assert [int(t.get_text()) for t in ax.texts] == cm.ravel().tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted label", "True label")
    ax = plots.plot_confusion_matrix(cm, names, normalize="true")
    shares = np.array([float(t.get_text()) for t in ax.texts]).reshape(3, 3)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=0.02)  # rounded to 2 decimals
    np.testing.assert_allclose(ax.images[0].get_array(), cm / cm.sum(axis=1, keepdims=True))


def test_confusion_matrix_plot_bad_input():
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="labels must name the 2 classes"):
        plots.plot_confusion_matrix(np.ones((2, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="non-negative"):
        plots.plot_confusion_matrix(-np.ones((2, 2)), ["a", "b"])
    with pytest.raises(TypeError, match="ax"):
        plots.plot_confusion_matrix(np.ones((2, 2)), ["a", "b"], ax="left")


def test_roc_plot_overlays_models_with_one_chance_line():
    y, s = _binary_scores(0)
    ax = plots.plot_roc(y, s, label="fused")
    plots.plot_roc(y, s + np.random.default_rng(1).normal(size=s.size) * 2, ax=ax,
                   label="text only")
    lines = ax.get_lines()
    assert len(lines) == 3  # chance diagonal drawn once, plus one curve per model
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "chance"
    assert legend[1] == f"fused (AUC = {mm.roc_auc(y, s):.3f})"
    fpr, tpr, _ = mm.roc_curve(y, s)
    np.testing.assert_allclose(lines[1].get_xdata(), fpr)
    np.testing.assert_allclose(lines[1].get_ydata(), tpr)


def test_pr_plot_draws_step_curve_and_prevalence():
    y, s = _binary_scores(2)
    ax = plots.plot_pr(y, s)
    chance, curve = ax.get_lines()
    np.testing.assert_allclose(chance.get_ydata(), [y.mean(), y.mean()])
    assert curve.get_drawstyle() == "steps-post"
    assert curve.get_label() == f"AP = {mm.average_precision(y, s):.3f}"
    prec, rec, _ = mm.precision_recall_curve(y, s)
    np.testing.assert_allclose(curve.get_xdata(), rec)
    np.testing.assert_allclose(curve.get_ydata(), prec)


def test_reliability_plot_bars_follow_the_bins():
    rng = np.random.default_rng(3)
    prob = rng.random(500)
    y = (rng.random(500) < prob).astype(int)
    ece, bins = mm.expected_calibration_error(y, prob, n_bins=8)
    ax = plots.plot_reliability(y, prob, n_bins=8)
    filled = bins.count > 0
    assert len(ax.patches) == 2 * filled.sum()  # accuracy bars and gap bars
    heights = [p.get_height() for p in ax.patches[:filled.sum()]]
    np.testing.assert_allclose(heights, bins.accuracy[filled])
    assert ax.get_title() == f"Reliability diagram (ECE = {ece:.3f})"
    assert len(ax.get_lines()) == 1  # the diagonal


def test_history_plot_from_dict_dataframe_and_keras():
    hist = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.7, 0.6, 0.65],
            "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.5, 0.6, 0.62]}
    fig = plots.plot_history(hist)
    assert len(fig.axes) == 2
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train", "validation"]
    np.testing.assert_allclose(fig.axes[1].get_lines()[1].get_ydata(), hist["val_accuracy"])
    # A CSV log read back: epochs start at 0 there and are drawn from 1.
    table = pd.DataFrame({"epoch": [0, 1, 2], **hist})
    fig = plots.plot_history(table, metrics="loss")
    assert len(fig.axes) == 1
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), [1, 2, 3])
    # A real History from model.fit.
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    history = model.fit(x, (x[:, 0] > 0).astype("float32"), epochs=2, verbose=0)
    fig = plots.plot_history(history)
    assert [len(ax.get_lines()) for ax in fig.axes] == [1, 1]  # no validation data given
    with pytest.raises(ValueError, match="no metric 'f1'"):
        plots.plot_history(hist, metrics=("f1",))
    with pytest.raises(TypeError, match="History"):
        plots.plot_history([0.7, 0.5])


def test_waveform_and_spectrogram_share_the_time_axis():
    sr = 16000
    t = np.arange(sr // 2) / sr
    wave = 0.5 * np.sin(2 * np.pi * 440 * t)
    spec = np.random.default_rng(0).normal(-40, 10, size=(51, 32))
    fig = plots.plot_waveform_and_spectrogram(wave, sr, log_mel=spec)
    ax_wave, ax_spec = fig.axes[:2]
    assert len(fig.axes) == 3  # waveform, spectrogram, colour bar
    assert ax_wave.get_xlim() == pytest.approx((0, 0.5))
    assert ax_spec.images[0].get_extent() == pytest.approx([0, 0.5, 0, 32])
    np.testing.assert_allclose(ax_spec.images[0].get_array(), spec.T)  # mel bands upwards
    assert (ax_spec.get_xlabel(), ax_spec.get_ylabel()) == ("Time (s)", "Mel band centre (Hz)")
    tick_hz = [float(label.get_text()) for label in ax_spec.get_yticklabels()]
    assert tick_hz == sorted(tick_hz) and tick_hz[-1] < sr / 2
    with pytest.raises(ValueError, match="log_mel.T"):
        plots.plot_waveform_and_spectrogram(wave, sr, log_mel=np.zeros((64, 600)))
    with pytest.raises(ValueError, match="sr"):
        plots.plot_waveform_and_spectrogram(wave, 0, log_mel=spec)


def test_waveform_plot_computes_the_log_mel_itself():
    sr = 16000
    wave = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(sr // 4) / sr)).astype(np.float32)
    fig, axes = plt.subplots(2, 1)
    out = plots.plot_waveform_and_spectrogram(wave, sr, ax=axes)
    assert out is fig
    image = axes[1].images[0].get_array()
    assert image.shape == (64, 1 + wave.size // 160)  # (n_mels, frames) of preprocess.log_mel
    # A 1 kHz tone: the loudest band is the one whose centre is nearest 1 kHz.
    import librosa

    centres = librosa.mel_frequencies(66, fmin=0.0, fmax=sr / 2)[1:-1]
    assert abs(centres[np.argmax(image.mean(axis=1))] - 1000) < 150


def test_image_grid_layout_titles_and_bgr():
    images = np.zeros((5, 6, 6, 3), dtype=np.uint8)
    images[:, :, :, 0] = 255  # blue in OpenCV's BGR order
    fig = plots.image_grid(images, titles=list("abcde"), ncols=3, bgr=True)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert (len(fig.axes), len(visible)) == (6, 5)
    assert [ax.get_title() for ax in visible] == list("abcde")
    np.testing.assert_allclose(visible[0].images[0].get_array()[0, 0], [0, 0, 1])  # RGB blue
    grey = [np.linspace(0, 1, 16).reshape(4, 4), np.ones((4, 4, 1))]
    assert len(plots.image_grid(grey).axes) == 2
    fig = plots.image_grid([np.arange(16.0).reshape(4, 4) - 8], rescale=True)
    assert fig.axes[0].images[0].get_array().max() == 1.0


@pytest.mark.parametrize("images, kwargs, match", [
    ([], {}, "empty"),
    (np.zeros((2, 4, 4)), {"titles": ["a"]}, "one entry per image"),
    (np.full((1, 4, 4), 3.0), {}, "rescale=True"),
    (np.zeros((1, 4, 4, 2)), {}, "image 0 has shape"),
    (np.zeros((2, 4, 4)), {"ncols": 0}, "ncols"),
    (np.zeros((4, 4)), {}, "shape"),
])
def test_image_grid_bad_input(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plots.image_grid(images, **kwargs)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(plots)
    assert result.failed == 0 and result.attempted >= 10
