"""Tests of mmtutor.preprocess: image, text and audio transforms and batched feature extraction.

Every fixture is made here (PNG written with OpenCV, WAV written with soundfile), so the tests do
not depend on the generated dataset.
"""

import json
import os
import warnings
from pathlib import Path

import mmtutor  # noqa: F401  (first: it imports TensorFlow without the start-up banner)

import cv2
import keras
import librosa
import numpy as np
import pandas as pd
import pytest
import scipy.fft
import soundfile as sf

import mmtutor.preprocess.features as features_module
from mmtutor.preprocess import (
    AUDIO_DEFAULTS, DB_FLOOR, TextVectorizer, augmentation, extract_features, feature_cache_key,
    fit_image_stats, load_audio, load_image, load_images, log_mel, mfcc, mfcc_from_log_mel, num_frames,
    spec_augment, standardize,
)

SR = 16000


def write_png(path, rgb):
    """Write an RGB uint8 array as PNG (OpenCV wants BGR)."""
    assert cv2.imwrite(str(path), cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))
    return str(path)


def sine(freq, seconds, sr=SR, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path, y, sr=SR):
    sf.write(str(path), y, sr, subtype="PCM_16")
    return str(path)


# --------------------------------------------------------------------------------------- images


def test_load_image_converts_bgr_to_rgb(tmp_path):
    red = np.zeros((10, 12, 3), np.uint8)
    red[..., 0] = 255  # RGB red; written to disk as BGR by write_png
    x = load_image(write_png(tmp_path / "red.png", red), size=(64, 64))
    assert x.shape == (64, 64, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], 1.0)
    np.testing.assert_allclose(x[..., 1:], 0.0)


def test_load_image_scales_to_unit_range_without_resampling_at_target_size(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    x = load_image(write_png(tmp_path / "noise.png", rgb), size=(16, 16))
    np.testing.assert_array_equal(x, rgb.astype(np.float32) / 255.0)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_load_image_shrinks_with_area_averaging(tmp_path):
    # Each 4x4 block: a white ring around a black 2x2 centre. Shrinking by 4 with INTER_AREA
    # averages the whole block (12 of 16 pixels white = 0.75); bilinear or bicubic would look
    # only at the black centre (0) and nearest-neighbour at one pixel: both alias.
    block = np.full((4, 4), 255, np.uint8)
    block[1:3, 1:3] = 0
    img = np.repeat(np.tile(block, (2, 2))[..., None], 3, axis=2)
    x = load_image(write_png(tmp_path / "rings.png", img), size=(2, 2))
    np.testing.assert_allclose(x, 0.75, atol=1 / 255)


def test_load_image_size_is_height_width_and_gray_gets_three_channels(tmp_path):
    path = tmp_path / "gray.png"
    assert cv2.imwrite(str(path), np.full((20, 30), 200, np.uint8))
    x = load_image(path, size=(10, 5))
    assert x.shape == (10, 5, 3)
    np.testing.assert_allclose(x, 200 / 255.0, atol=1e-6)


def test_load_image_error_paths_name_the_file(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(missing)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image" * 20)
    with pytest.raises(ValueError, match="junk.png"):
        load_image(junk)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png"):
        load_image(empty)
    good = write_png(tmp_path / "good.png", np.full((32, 32, 3), 90, np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(Path(good).read_bytes()[:40])
    with pytest.raises(ValueError, match="cut.png"):
        load_image(cut)
    with pytest.raises(ValueError, match="size"):
        load_image(good, size=64)
    with pytest.raises(ValueError, match="size"):
        load_image(good, size=(0, 64))


def test_load_images_masks_missing_paths(tmp_path):
    a = write_png(tmp_path / "a.png", np.full((8, 8, 3), 255, np.uint8))
    images, mask = load_images([a, "", a], size=(8, 8))
    assert images.shape == (3, 8, 8, 3) and images.dtype == np.float32
    assert mask.tolist() == [True, False, True]
    assert not images[1].any() and np.all(images[0] == 1.0)
    with pytest.raises(ValueError, match=r"paths\[1\]"):
        load_images([a, ""], size=(8, 8), mask_missing=False)
    with pytest.raises(TypeError, match="single path"):
        load_images(a)


def test_image_stats_come_from_train_only_and_standardize_uses_them():
    rng = np.random.default_rng(1)
    train = rng.uniform(0.2, 0.6, (6, 4, 4, 3)).astype(np.float32)
    test = rng.uniform(0.5, 0.9, (3, 4, 4, 3)).astype(np.float32)
    mean, std = fit_image_stats(train)
    assert mean.shape == std.shape == (3,) and mean.dtype == np.float32
    z = standardize(train, mean, std)
    np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    # Test images use the training statistics, so they are NOT centred (that is the point).
    assert standardize(test, mean, std).mean() > 0.5


def test_image_stats_and_standardize_respect_the_mask():
    x = np.concatenate([np.full((2, 2, 2, 3), 0.5, np.float32), np.zeros((1, 2, 2, 3), np.float32)])
    x[1] = 0.7
    mask = np.array([True, True, False])
    mean, std = fit_image_stats(x, mask=mask)
    np.testing.assert_allclose(mean, 0.6, atol=1e-6)
    z = standardize(x, mean, std, mask=mask)
    assert not z[2].any()  # a missing image stays zero, not -mean/std
    # A constant channel (std 0) gives finite numbers, not inf.
    assert np.all(np.isfinite(standardize(x, mean, np.zeros(3))))
    with pytest.raises(ValueError, match="present image"):
        fit_image_stats(x, mask=np.zeros(3, bool))
    with pytest.raises(ValueError, match="mean"):
        standardize(x, np.zeros(2), std)
    with pytest.raises(ValueError, match=r"\(n, H, W, 3\)"):
        fit_image_stats(np.zeros((2, 4, 4)))


def test_augmentation_layers_train_only_seeded_and_in_range():
    x = np.random.default_rng(0).random((4, 24, 24, 3)).astype(np.float32)
    aug = augmentation(seed=3)
    assert isinstance(aug, keras.Sequential)
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast"]
    y = np.asarray(aug(x, training=True))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y - x).mean() > 0.01  # it did change the images
    assert y.min() >= 0.0 and y.max() <= 1.0 + 1e-6
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)  # identity at inference
    np.testing.assert_allclose(np.asarray(augmentation(seed=3)(x, training=True)), y, atol=1e-6)
    flip_only = augmentation(seed=0, rotation=0, zoom=0, contrast=0)
    assert [type(layer).__name__ for layer in flip_only.layers] == ["RandomFlip"]


def test_augmentation_rejects_bad_settings():
    with pytest.raises(ValueError, match="nothing"):
        augmentation(flip=False, rotation=0, zoom=0, contrast=0)
    with pytest.raises(ValueError, match="zoom"):
        augmentation(zoom=1.5)
    with pytest.raises(ValueError, match="rotation"):
        augmentation(rotation=-0.1)
    with pytest.raises(ValueError, match="seed"):
        augmentation(seed=-1)


# ----------------------------------------------------------------------------------------- text

TRAIN_TEXTS = ["A great film, truly great!", "a dull film", "not bad at all", "great acting, dull plot", ""]


def test_vectorizer_shapes_padding_truncation_and_missing_text():
    vec = TextVectorizer(seq_len=4).fit(TRAIN_TEXTS)
    ids = vec.transform(["great film", "a great great great great film", "", "!!!"])
    assert ids.shape == (4, 4) and ids.dtype == np.int32
    voc = vec.vocabulary
    assert voc[:2] == ["", "[UNK]"] and vec.vocab_size == len(voc)
    assert ids[0].tolist() == [voc.index("great"), voc.index("film"), 0, 0]  # padded at the end
    assert ids[1].tolist() == [voc.index("a")] + [voc.index("great")] * 3  # cut at seq_len
    assert not ids[2].any() and not ids[3].any()  # missing text -> all padding
    assert ids.min() >= 0 and ids.max() < vec.vocab_size
    assert vec.transform([]).shape == (0, 4)
    assert "great" in voc and "great," not in voc  # punctuation stripped, lower-cased


def test_vectorizer_fits_on_train_only_so_test_words_are_oov():
    splits = {"train": ["good movie", "bad movie"], "test": ["marvellous movie"]}
    vec = TextVectorizer(seq_len=3).fit(splits["train"])
    assert "marvellous" not in vec.vocabulary
    ids = vec.transform(splits["test"])[0]
    assert ids[0] == 1 and ids[1] == vec.vocabulary.index("movie")


def test_vectorizer_max_tokens_and_order_independence():
    texts = ["one two three four five six", "one two", "one"]
    vec = TextVectorizer(max_tokens=4).fit(texts)
    assert vec.vocabulary == ["", "[UNK]", "one", "two"]  # most frequent first, capped
    shuffled = TextVectorizer().fit(list(reversed(TRAIN_TEXTS)))
    assert shuffled.vocabulary == TextVectorizer().fit(TRAIN_TEXTS).vocabulary


def test_vectorizer_save_load_gives_identical_outputs(tmp_path):
    vec = TextVectorizer(max_tokens=50, seq_len=6, standardize="lower").fit(TRAIN_TEXTS)
    path = vec.save(tmp_path / "vocab.json")
    saved = json.loads(Path(path).read_text(encoding="utf-8"))
    assert saved["vocabulary"] == vec.vocabulary and saved["seq_len"] == 6
    loaded = TextVectorizer.load(path)
    assert loaded.get_config() == vec.get_config() and loaded.vocabulary == vec.vocabulary
    probe = TRAIN_TEXTS + ["an unseen review of a great film", "Great"]
    np.testing.assert_array_equal(loaded.transform(probe), vec.transform(probe))


def test_vectorizer_error_paths(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        TextVectorizer().transform(["hello"])
    with pytest.raises(RuntimeError, match="not fitted"):
        TextVectorizer().save(tmp_path / "v.json")
    with pytest.raises(ValueError, match="empty"):
        TextVectorizer().fit([])
    with pytest.raises(ValueError, match="all 2 train_texts are empty"):
        TextVectorizer().fit(["", "  "])
    with pytest.raises(ValueError, match="no word"):
        TextVectorizer().fit(["?!", "..."])
    with pytest.raises(TypeError, match="single string"):
        TextVectorizer().fit("a lone string")
    with pytest.raises(TypeError, match=r"train_texts\[1\]"):
        TextVectorizer().fit(["fine", float("nan")])
    with pytest.raises(ValueError, match="seq_len"):
        TextVectorizer(seq_len=0)
    with pytest.raises(ValueError, match="standardize"):
        TextVectorizer(standardize="upper")
    with pytest.raises(FileNotFoundError, match="absent.json"):
        TextVectorizer.load(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        TextVectorizer.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="other.json"):
        TextVectorizer.load(other)


# ---------------------------------------------------------------------------------------- audio


def test_load_audio_pads_and_trims_to_exact_length(tmp_path):
    y = sine(440, 0.5)
    path = write_wav(tmp_path / "half.wav", y)
    padded = load_audio(path, sr=SR, seconds=1.0)
    assert padded.shape == (SR,) and padded.dtype == np.float32
    np.testing.assert_allclose(padded[: len(y)], y, atol=1 / 32768)  # 16-bit quantisation
    assert not padded[len(y):].any()
    trimmed = load_audio(path, sr=SR, seconds=0.25)
    np.testing.assert_array_equal(trimmed, padded[: SR // 4])
    assert load_audio(path, sr=SR, seconds=None).shape == (len(y),)
    assert -1.0 <= padded.min() and padded.max() <= 1.0


def test_load_audio_resamples_and_mixes_to_mono(tmp_path):
    path = write_wav(tmp_path / "low.wav", sine(440, 1.0, sr=8000), sr=8000)
    y = load_audio(path, sr=SR, seconds=1.0)
    assert y.shape == (SR,)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / len(y) - 440) <= 1  # still a 440 Hz tone
    stereo = np.stack([sine(440, 0.1, amp=0.4), np.zeros(1600, np.float32)], axis=1)
    mono = load_audio(write_wav(tmp_path / "stereo.wav", stereo), sr=SR, seconds=0.1)
    np.testing.assert_allclose(mono, stereo[:, 0] / 2, atol=1 / 32768)


def test_load_audio_error_paths_name_the_file(tmp_path):
    good = write_wav(tmp_path / "good.wav", sine(300, 0.5))
    data = Path(good).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])  # a download or copy that stopped halfway
    with pytest.raises(ValueError, match=r"cut\.wav.*truncated"):
        load_audio(cut)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(data[:30])
    with pytest.raises(ValueError, match="header.wav"):
        load_audio(header_only)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"\x00\x01 not audio at all" * 50)
    with pytest.raises(ValueError, match="junk.wav"):
        load_audio(junk)
    with pytest.raises(FileNotFoundError, match="absent.wav"):
        load_audio(tmp_path / "absent.wav")
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="no samples"):
        load_audio(empty)
    with pytest.raises(ValueError, match="seconds"):
        load_audio(good, seconds=0)


def test_log_mel_shape_dtype_floor_and_frame_count():
    assert num_frames(3 * SR) == 301
    spec = log_mel(np.zeros(3 * SR, np.float32))
    assert spec.shape == (301, 64) and spec.dtype == np.float32
    np.testing.assert_array_equal(spec, DB_FLOOR)  # silence is exactly the floor, -100 dB
    loud = log_mel(sine(1000, 1.0, amp=1.0))
    assert loud.shape == (num_frames(SR), 64)
    assert DB_FLOOR <= loud.min() and loud.max() < 30.0


def test_log_mel_of_1khz_sine_peaks_in_the_band_holding_1khz():
    spec = log_mel(sine(1000, 1.0))
    peak_band = int(np.argmax(spec.mean(axis=0)))
    # The band whose triangular filter weighs the 1 kHz FFT bin most (bin 32 = 1000 / (16000/512)) ...
    filters = librosa.filters.mel(sr=SR, n_fft=512, n_mels=64)
    assert peak_band == int(np.argmax(filters[:, 32]))
    # ... is the band whose centre frequency is nearest to 1 kHz.
    centres = librosa.mel_frequencies(n_mels=64 + 2, fmin=0.0, fmax=SR / 2)[1:-1]
    assert peak_band == int(np.argmin(np.abs(centres - 1000)))


def test_log_mel_batch_equals_single_clips_and_keeps_loudness():
    quiet, loud = sine(500, 0.5, amp=0.05), sine(500, 0.5, amp=0.5)
    batch = log_mel(np.stack([quiet, loud]))
    assert batch.shape == (2, num_frames(len(quiet)), 64)
    np.testing.assert_allclose(batch[0], log_mel(quiet), atol=1e-4)
    np.testing.assert_allclose(batch[1], log_mel(loud), atol=1e-4)
    # Fixed reference: ten times the amplitude is +20 dB, not the same picture.
    assert abs((batch[1].max() - batch[0].max()) - 20.0) < 0.1


def test_mfcc_is_the_dct_of_the_log_mel():
    y = sine(700, 0.5) + 0.1 * np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32)
    spec = log_mel(y)
    coeffs = mfcc(y, n_mfcc=20)
    assert coeffs.shape == (spec.shape[0], 20) and coeffs.dtype == np.float32
    np.testing.assert_allclose(coeffs, scipy.fft.dct(spec, type=2, norm="ortho")[..., :20], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(coeffs, librosa.feature.mfcc(S=spec.T, n_mfcc=20).T, rtol=1e-4, atol=1e-3)
    assert mfcc(np.stack([y, y]), n_mfcc=13).shape == (2, spec.shape[0], 13)
    np.testing.assert_allclose(mfcc_from_log_mel(spec, 20), coeffs, atol=1e-5)
    with pytest.raises(ValueError, match="n_mfcc"):
        mfcc(y, n_mfcc=65)


def test_log_mel_rejects_bad_waveforms():
    with pytest.raises(ValueError, match="float"):
        log_mel(np.zeros(1000, np.int16))
    with pytest.raises(ValueError, match="non-finite"):
        log_mel(np.full(1000, np.nan, np.float32))
    with pytest.raises(ValueError, match="shape"):
        log_mel(np.zeros((2, 2, 1000), np.float32))
    with pytest.raises(ValueError, match="fmax"):
        log_mel(np.zeros(1000, np.float32), fmax=9000)


def _runs(flags):
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def test_spec_augment_masks_exactly_the_drawn_bands_and_leaves_input_alone():
    spec = np.random.default_rng(0).normal(-40, 10, (101, 64)).astype(np.float32)
    before = spec.copy()
    out, mask = spec_augment(spec, time_masks=2, time_width=10, freq_masks=2, freq_width=8, seed=1, return_mask=True)
    np.testing.assert_array_equal(spec, before)  # input untouched
    assert out.shape == spec.shape and out.dtype == np.float32 and mask.dtype == bool
    np.testing.assert_array_equal(out[~mask], spec[~mask])
    np.testing.assert_allclose(out[mask], spec.mean(), rtol=1e-6)
    # The mask is a union of whole frames and whole bands ...
    in_time, in_freq = mask.all(axis=1), mask.all(axis=0)
    np.testing.assert_array_equal(mask, in_time[:, None] | in_freq[None, :])
    # ... with at most 2 bands of width <= 10 frames and 2 of width <= 8 mel bands.
    assert in_time.sum() <= 2 * 10 and in_freq.sum() <= 2 * 8 and mask.any()
    assert len(_runs(in_time)) <= 2 and len(_runs(in_freq)) <= 2


def test_spec_augment_single_mask_widths_cover_zero_to_max():
    spec = np.zeros((50, 16), np.float32)
    widths = []
    for seed in range(60):
        _, mask = spec_augment(spec, time_masks=1, time_width=5, freq_masks=0, seed=seed, return_mask=True)
        runs = _runs(mask.all(axis=1))
        assert len(runs) <= 1 and not (mask.any(axis=1) & ~mask.all(axis=1)).any()
        widths.append(int(runs.sum()))
    assert min(widths) >= 0 and max(widths) == 5 and len(set(widths)) >= 4


def test_spec_augment_batch_seed_and_options():
    batch = np.random.default_rng(2).normal(size=(3, 40, 20)).astype(np.float32)
    a, mask = spec_augment(batch, seed=5, return_mask=True, mask_value=-100.0)
    assert a.shape == batch.shape and mask.shape == batch.shape
    np.testing.assert_array_equal(a[mask], -100.0)
    np.testing.assert_array_equal(spec_augment(batch, seed=5, mask_value=-100.0), a)  # seeded
    assert not np.array_equal(mask[0], mask[1])  # each item has its own masks
    np.testing.assert_array_equal(spec_augment(batch, time_masks=0, freq_masks=0, seed=0), batch)
    with pytest.raises(ValueError, match="time_width"):
        spec_augment(batch, time_width=-1)
    with pytest.raises(ValueError, match="spec"):
        spec_augment(np.zeros(10))


# ------------------------------------------------------------------------- feature extraction


class TinyDataset:
    """A minimal object that follows the dataset contract of mmtutor.data.load_manifest."""

    MODALITIES = ("text", "image", "audio")

    def __init__(self, root, frame, info):
        self.root, self.frame, self.info = Path(root), frame.reset_index(drop=True), info

    def __len__(self):
        return len(self.frame)

    @property
    def masks(self):
        return np.stack([(self.frame[m] != "").to_numpy() for m in self.MODALITIES], axis=1)

    def subset(self, split):
        return TinyDataset(self.root, self.frame[self.frame["split"] == split], self.info)

    def _abs(self, col):
        return [str(self.root / p) if p else "" for p in self.frame[col]]

    image_paths = property(lambda self: self._abs("image"))
    audio_paths = property(lambda self: self._abs("audio"))
    texts = property(lambda self: list(self.frame["text"]))
    labels = property(lambda self: self.frame["label"].to_numpy(dtype=int))


@pytest.fixture
def tiny(tmp_path):
    """Six samples: 4 train, 1 val, 1 test; one missing image, one missing audio, one missing text."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "audio").mkdir()
    rows = []
    texts = ["a great phone", "a terrible phone", "great battery", "", "terrible screen", "a splendid phone"]
    splits = ["train", "train", "train", "train", "val", "test"]
    for i, (text, split) in enumerate(zip(texts, splits)):
        image = audio = ""
        if i != 2:
            colour = np.array([40 * i, 255 - 40 * i, 100], np.uint8)
            write_png(root / f"images/{i}.png", np.broadcast_to(colour, (20, 20, 3)))
            image = f"images/{i}.png"
        if i != 4:
            write_wav(root / f"audio/{i}.wav", sine(300 + 100 * i, 0.3 + 0.1 * i))  # 0.3 s .. 0.8 s
            audio = f"audio/{i}.wav"
        rows.append({"id": f"s{i}", "split": split, "text": text, "image": image, "audio": audio, "label": i % 2})
    info = {"content_hash": "abc123", "audio_seconds": 0.5}
    return TinyDataset(root, pd.DataFrame(rows), info)


def test_extract_features_shapes_dtypes_and_missing_modalities(tiny):
    out = extract_features(tiny, image_size=(16, 16), seq_len=5, batch_size=4)
    frames = num_frames(int(0.5 * SR))
    assert out["text"].shape == (6, 5) and out["text"].dtype == np.int32
    assert out["image"].shape == (6, 16, 16, 3) and out["image"].dtype == np.float32
    assert out["audio"].shape == (6, frames, 64) and out["audio"].dtype == np.float32
    assert out["label"].tolist() == [0, 1, 0, 1, 0, 1] and out["label"].dtype == np.int32
    assert out["id"].tolist() == [f"s{i}" for i in range(6)]
    np.testing.assert_array_equal(out["mask"], tiny.masks)
    assert out["cache_hit"] is False
    assert not out["text"][3].any()  # missing text -> padding
    assert not out["image"][2].any()  # missing image -> zeros
    np.testing.assert_array_equal(out["audio"][4], DB_FLOOR)  # missing audio -> silence
    assert 0.0 <= out["image"].min() and out["image"].max() <= 1.0
    # Each row is what the single-sample transforms give.
    np.testing.assert_allclose(out["image"][1], load_image(tiny.image_paths[1], (16, 16)))
    np.testing.assert_allclose(out["audio"][5], log_mel(load_audio(tiny.audio_paths[5], seconds=0.5)), atol=1e-4)


def test_extract_features_fits_vocabulary_on_train_split_only(tiny):
    out = extract_features(tiny, image_size=(8, 8))
    vec = out["vectorizer"]
    assert "splendid" not in vec.vocabulary and "screen" not in vec.vocabulary  # test / val words
    assert out["text"][5, 1] == 1  # "splendid" in the test row -> OOV
    reused = extract_features(tiny.subset("test"), image_size=(8, 8), vectorizer=vec)
    np.testing.assert_array_equal(reused["text"], out["text"][5:])
    with pytest.raises(ValueError, match="train"):
        extract_features(tiny.subset("test"), image_size=(8, 8))  # nothing to fit on
    with pytest.raises(ValueError, match="seq_len"):
        extract_features(tiny, image_size=(8, 8), vectorizer=vec, seq_len=7)


def test_extract_features_is_batched_and_batch_size_does_not_change_results(tiny, monkeypatch):
    calls = []
    real_log_mel = features_module.log_mel

    def counting_log_mel(y, **kwargs):
        calls.append(np.asarray(y).shape)
        return real_log_mel(y, **kwargs)

    monkeypatch.setattr(features_module, "log_mel", counting_log_mel)
    small = extract_features(tiny, image_size=(8, 8), batch_size=4)
    # 6 samples in batches of 4: two log-mel calls (with the 4 and 1 present clips), not 5.
    assert [shape[0] for shape in calls] == [4, 1]
    big = extract_features(tiny, image_size=(8, 8), batch_size=64)
    assert len(calls) == 3
    for name in ("text", "image", "mask", "label"):
        np.testing.assert_array_equal(small[name], big[name])
    np.testing.assert_allclose(small["audio"], big["audio"], atol=1e-4)


def test_extract_features_cache_hit_miss_and_invalidation(tiny, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    kwargs = dict(image_size=(8, 8), cache_dir=cache)
    first = extract_features(tiny, **kwargs)
    assert first["cache_hit"] is False and len(list(cache.glob("features-*.npz"))) == 1

    def no_loading(*args, **kw):
        raise AssertionError("a cache hit must not read any audio file")

    monkeypatch.setattr(features_module, "load_audio", no_loading)
    second = extract_features(tiny, **kwargs)
    assert second["cache_hit"] is True
    for name in ("text", "image", "audio", "mask", "label", "id"):
        np.testing.assert_array_equal(second[name], first[name])
    monkeypatch.undo()

    # Any change of the data or of a parameter gives a new key: a miss and a second file.
    changed = [
        dict(kwargs, image_size=(9, 9)),
        dict(kwargs, audio={"n_mels": 32}),
        dict(kwargs, vectorizer=TextVectorizer().fit(["another vocabulary entirely"])),
    ]
    for i, kw in enumerate(changed):
        out = extract_features(tiny, **kw)
        assert out["cache_hit"] is False
        assert len(list(cache.glob("features-*.npz"))) == 2 + i
    other_data = TinyDataset(tiny.root, tiny.frame, dict(tiny.info, content_hash="def456"))
    assert extract_features(other_data, **kwargs)["cache_hit"] is False
    assert extract_features(tiny.subset("train"), **kwargs)["cache_hit"] is False  # rows differ
    assert extract_features(tiny, **kwargs)["cache_hit"] is True  # the original is still cached


def test_extract_features_recomputes_a_corrupt_cache(tiny, tmp_path):
    cache = tmp_path / "cache"
    first = extract_features(tiny, image_size=(8, 8), cache_dir=cache)
    (path,) = cache.glob("features-*.npz")
    path.write_bytes(path.read_bytes()[:100])  # a half-written file
    with pytest.warns(RuntimeWarning, match="unusable"):
        again = extract_features(tiny, image_size=(8, 8), cache_dir=cache)
    assert again["cache_hit"] is False
    np.testing.assert_array_equal(again["audio"], first["audio"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert extract_features(tiny, image_size=(8, 8), cache_dir=cache)["cache_hit"] is True


def test_cache_key_without_content_hash_follows_the_files(tiny):
    plain = TinyDataset(tiny.root, tiny.frame, {})
    vec = TextVectorizer().fit(plain.subset("train").texts)
    settings = dict(AUDIO_DEFAULTS)
    key = feature_cache_key(plain, image_size=(8, 8), audio=settings, vectorizer=vec)
    assert len(key) == 64 and key == feature_cache_key(plain, image_size=(8, 8), audio=settings, vectorizer=vec)
    image = Path(plain.image_paths[0])
    write_png(image, np.zeros((20, 20, 3), np.uint8))
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert feature_cache_key(plain, image_size=(8, 8), audio=settings, vectorizer=vec) != key


def test_cache_follows_the_files_even_with_a_content_hash(tiny, tmp_path):
    # Blacken every image and silence every clip, keep manifest.csv and dataset.json: the
    # cached features of the untouched files must not be served (they would be silent garbage).
    cache = tmp_path / "cache"
    before = extract_features(tiny, image_size=(8, 8), cache_dir=cache)
    assert tiny.info.get("content_hash")
    for p in tiny.image_paths:
        if p:
            write_png(Path(p), np.zeros((20, 20, 3), np.uint8))
    for p in tiny.audio_paths:
        if p:
            sf.write(p, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    after = extract_features(tiny, image_size=(8, 8), cache_dir=cache)
    assert after["cache_hit"] is False
    present = after["mask"][:, 1]
    assert np.abs(after["image"][present]).max() == 0 and np.abs(before["image"][present]).max() > 0
    assert not np.allclose(after["audio"], before["audio"])


def test_extract_features_rejects_bad_input(tiny):
    with pytest.raises(TypeError, match="MultimodalDataset"):
        extract_features({"text": ["hi"]})
    with pytest.raises(ValueError, match="audio has unknown settings"):
        extract_features(tiny, audio={"n_mel": 40})
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(tiny, batch_size=0)
    with pytest.raises(ValueError, match="image_size"):
        extract_features(tiny, image_size=(8,))
    with pytest.raises(TypeError, match="vectorizer"):
        extract_features(tiny, vectorizer="my vocab")


class MaskSaysAudio(TinyDataset):
    """A dataset whose mask claims every audio is present, though sample s4 has no audio path."""

    @property
    def masks(self):
        masks = super().masks
        masks[:, 2] = True
        return masks


def test_extract_features_names_the_bad_sample_or_file(tiny):
    with pytest.raises(ValueError, match=r"audio of sample 's4' is present.*''"):
        extract_features(MaskSaysAudio(tiny.root, tiny.frame, tiny.info), image_size=(8, 8))
    cut = Path(tiny.audio_paths[0])
    cut.write_bytes(cut.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"0\.wav"):
        extract_features(tiny, image_size=(8, 8))  # a truncated file is named
