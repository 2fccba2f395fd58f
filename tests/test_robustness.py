"""Tests of noise augmentation (add_noise, noisy_copies, RunConfig.audio_noise) and of the cache
of pretrained encoders (mmtutor.runs.pretrain)."""

import json
import logging
import os

import numpy as np
import pytest

from mmtutor.cli import main
from mmtutor.data import load_manifest
from mmtutor.preprocess import add_noise, extract_features, log_mel, speech_power
from mmtutor.runs import RunConfig, encoder_cache_key, pretrain_encoders
from mmtutor.runs.train import noisy_copies
from mmtutor.train import train_run

from test_train import TINY

AUDIO = {"sr": 16000, "seconds": 3.0, "n_fft": 512, "hop_length": 640, "n_mels": 16}


@pytest.fixture(scope="module")
def data(small_reviews):
    return small_reviews  # shared, read-only (tests/conftest.py)


# -- add_noise ----------------------------------------------------------------------------------

@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 25.0])
def test_add_noise_reaches_the_requested_snr_on_the_speech(snr):
    t = np.arange(48000) / 16000
    speech = np.where((t > 0.5) & (t < 2.5), 0.2 * np.sin(2 * np.pi * 220 * t), 0.0)  # pauses around it
    noisy = add_noise(speech, snr, seed=1)
    noise = noisy - speech
    measured = 10 * np.log10(speech_power(speech) / np.mean(noise.astype(np.float64) ** 2))
    assert abs(measured - snr) < 0.1
    # The power of the active samples (0.2**2 / 2 for the sine, a little more without its zero
    # crossings), not diluted by the pauses (a third of the clip).
    assert speech_power(speech) == pytest.approx(0.02, rel=0.05)
    assert np.mean(speech**2) < 0.7 * speech_power(speech)


def test_add_noise_keeps_shape_range_silence_and_is_seeded():
    y = np.full(1000, 0.9, dtype=np.float32)
    noisy = add_noise(y, -10.0, seed=0)
    assert noisy.shape == y.shape and noisy.dtype == np.float32
    assert noisy.max() <= 1.0 and noisy.min() >= -1.0
    assert np.array_equal(noisy, add_noise(y, -10.0, seed=0))
    assert not np.array_equal(noisy, add_noise(y, -10.0, seed=1))
    assert not np.any(add_noise(np.zeros(100, dtype=np.float32), 0.0, seed=0))  # silence stays silent


@pytest.mark.parametrize("args, error, message", [
    ((np.zeros(10), float("nan")), ValueError, "snr_db"),
    ((np.zeros(10), "10"), ValueError, "snr_db"),
    ((np.zeros((2, 10)), 10.0), ValueError, "one waveform"),
    ((np.array([0, 1, 2]), 10.0), ValueError, "float"),
])
def test_add_noise_rejects_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        add_noise(*args)


# -- RunConfig.audio_noise ----------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(None, None), ((5, 30), (5.0, 30.0)), ("0,20", (0.0, 20.0)),
                                             ([10, 10], (10.0, 10.0))])
def test_audio_noise_setting(value, expected):
    config = RunConfig(audio_noise=value)
    assert config.audio_noise == expected
    assert RunConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("value, message", [((30, 5), "low <= high"), ((5,), "two SNRs"), ("a,b", "two SNRs"),
                                            (5, "audio_noise must be None"), ((0, 100), "<= 60")])
def test_bad_audio_noise_names_itself(value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        RunConfig(audio_noise=value)


# -- noisy_copies -------------------------------------------------------------------------------

def test_noisy_copies_add_noise_to_every_clip_and_keep_the_rest(data, tmp_path):
    train = load_manifest(data).subset("train")
    arrays = extract_features(train, image_size=(16, 16), seq_len=12, audio=AUDIO)
    copies = noisy_copies(train, arrays, AUDIO, (0.0, 10.0), seed=3)
    has_audio = arrays["mask"][:, 2]
    assert np.array_equal(copies["rows"], np.flatnonzero(has_audio)) and has_audio.sum() < len(train)
    for k in ("text", "image", "mask", "label"):
        assert np.array_equal(copies[k], arrays[k][copies["rows"]]), k
    assert copies["audio"].shape == (len(copies["rows"]), *arrays["audio"].shape[1:])
    assert np.all((copies["snr_db"] >= 0.0) & (copies["snr_db"] <= 10.0))
    # White noise at 0..10 dB fills the pauses: the quietest frames are far louder than in the clean clips.
    clean_floor = np.percentile(arrays["audio"][copies["rows"]], 5, axis=(1, 2))
    noisy_floor = np.percentile(copies["audio"], 5, axis=(1, 2))
    assert np.all(noisy_floor > clean_floor + 10.0)
    again = noisy_copies(train, arrays, AUDIO, (0.0, 10.0), seed=3)
    assert np.array_equal(again["audio"], copies["audio"])
    other = noisy_copies(train, arrays, AUDIO, (0.0, 10.0), seed=4)
    assert not np.array_equal(other["snr_db"], copies["snr_db"])


def test_noisy_copy_is_the_log_mel_of_the_noisy_clip(data):
    from mmtutor.preprocess import load_audio

    train = load_manifest(data).subset("train")
    arrays = extract_features(train, image_size=(16, 16), seq_len=12, audio=AUDIO)
    copies = noisy_copies(train, arrays, AUDIO, (20.0, 20.0), seed=0)
    i = int(copies["rows"][0])
    clean = load_audio(train.audio_paths[i], sr=16000, seconds=3.0)
    rng = np.random.default_rng([0, 7919])
    rng.uniform(20.0, 20.0, size=copies["rows"].size)
    expected = log_mel(add_noise(clean, 20.0, seed=rng), sr=16000, n_fft=512, hop_length=640, n_mels=16)
    np.testing.assert_allclose(copies["audio"][0], expected, atol=1e-4)


def test_train_run_with_audio_noise_trains_on_the_copies(data, tmp_path):
    run = train_run(data, tmp_path / "noisy", fusion="late", epochs=1, seed=0, audio_noise=(5, 30), **TINY)
    metrics = json.loads((run.path / "metrics.json").read_text())
    n_clips = int(load_manifest(data).subset("train").masks[:, 2].sum())
    assert metrics["noisy_copies"] == n_clips > 0
    assert json.loads((run.path / "config.json").read_text())["knobs"]["audio_noise"] == [5.0, 30.0]
    assert run.settings.audio_noise == (5.0, 30.0)
    # Predictions cover the real samples only, once each.
    ids = [line.split(",")[0] for line in (run.path / "predictions.csv").read_text().splitlines()[1:]]
    assert len(ids) == len(set(ids)) == len(load_manifest(data))
    # Without audio the setting changes nothing.
    plain = train_run(data, tmp_path / "plain", fusion="late", modalities="text,image", epochs=1, seed=0,
                      audio_noise=(5, 30), **TINY)
    assert json.loads((plain.path / "metrics.json").read_text())["noisy_copies"] == 0


def test_the_cli_takes_audio_noise(data, tmp_path, capsys):
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--fusion", "late", "--epochs", "1",
                 "--pretrain-epochs", "1", "--audio-noise", "5,30", "--no-cache", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["knobs"]["audio_noise"] == [5.0, 30.0]
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "bad"), "--audio-noise", "30,5",
                 "--no-progress"])
    assert code != 0 and "audio_noise" in capsys.readouterr().err


# -- the cache of pretrained encoders -----------------------------------------------------------

def _history(run):
    return (run.path / "history.csv").read_text(), (run.path / "predictions.csv").read_text()


def test_a_cached_encoder_gives_the_run_that_trained_it(data, tmp_path):
    cache = tmp_path / "cache"
    cold = train_run(data, tmp_path / "cold", fusion="concat", epochs=2, seed=0, cache_dir=cache, **TINY)
    entries = sorted(p.name.split("-")[0] for p in (cache / "encoders").iterdir())
    assert entries == ["audio", "image", "text"]
    warm = train_run(data, tmp_path / "warm", fusion="concat", epochs=2, seed=0, cache_dir=cache, **TINY)
    assert {m: r["cached"] for m, r in cold.metrics["pretrained"].items()} == dict.fromkeys(entries, False)
    assert {m: r["cached"] for m, r in warm.metrics["pretrained"].items()} == dict.fromkeys(entries, True)
    assert _history(warm) == _history(cold)
    for m in entries:  # the same report, except that it was loaded
        assert {**warm.metrics["pretrained"][m], "cached": False} == {**cold.metrics["pretrained"][m]}
    # Without the cache: the same run again.
    uncached = train_run(data, tmp_path / "uncached", fusion="concat", epochs=2, seed=0, **TINY)
    assert _history(uncached) == _history(cold)
    # Another fusion method on the same encoders finds them; another seed trains new ones.
    late = train_run(data, tmp_path / "late", fusion="late", epochs=1, seed=0, cache_dir=cache, **TINY)
    assert all(r["cached"] for r in late.metrics["pretrained"].values())
    other = train_run(data, tmp_path / "seed1", fusion="concat", epochs=1, seed=1, cache_dir=cache, **TINY)
    assert not any(r["cached"] for r in other.metrics["pretrained"].values())
    # Noise augmentation changes the audio encoder's data only.
    noisy = train_run(data, tmp_path / "noisy", fusion="concat", epochs=1, seed=0, cache_dir=cache,
                      audio_noise=(5, 30), **TINY)
    assert {m: r["cached"] for m, r in noisy.metrics["pretrained"].items()} == {
        "text": True, "image": True, "audio": False}


def _tiny_encoders(data):
    from mmtutor.runs.train import _build_encoders, prepare_features
    from mmtutor.utils import set_seed

    config = RunConfig(seed=0, **TINY)
    features = prepare_features(load_manifest(data), config)
    set_seed(0)
    train = features.parts["train"]
    encoders = _build_encoders(config, {"image": train["image"].shape[1:], "audio": train["audio"].shape[1:]},
                               features.vectorizer.vocab_size)
    inputs = {**features.inputs["train"], "mask": train["mask"]}
    return encoders, inputs, load_manifest(data).subset("train").frame


@pytest.mark.parametrize("damage", ["truncate", "garbage", "tamper"])
def test_a_corrupt_cache_entry_is_rebuilt_never_loaded(data, tmp_path, damage, caplog):
    cache = tmp_path / "cache"
    encoders, inputs, frame = _tiny_encoders(data)
    first = pretrain_encoders({"audio": encoders["audio"]}, inputs, frame, epochs=1, seed=0, cache_dir=cache)
    trained = [np.asarray(v).copy() for v in encoders["audio"].variables]
    (entry,) = (cache / "encoders").iterdir()
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:200])
    elif damage == "garbage":
        entry.write_bytes(b"not a cache entry")
    else:  # weights changed but the file is a valid archive: the checksum catches it
        with np.load(entry) as npz:
            stored = {k: npz[k] for k in npz.files}
        stored["v0"] = stored["v0"] + 1.0
        with open(entry, "wb") as f:
            np.savez(f, **stored)
    again, _, _ = _tiny_encoders(data)
    with caplog.at_level(logging.WARNING, logger="mmtutor.runs.pretrain"):
        second = pretrain_encoders({"audio": again["audio"]}, inputs, frame, epochs=1, seed=0, cache_dir=cache)
    assert second["audio"]["cached"] is False and first["audio"]["cached"] is False
    assert "rebuilding the cached audio encoder" in caplog.text
    for a, b in zip(trained, again["audio"].variables):
        np.testing.assert_array_equal(a, np.asarray(b))
    # The rebuilt entry is whole again and is loaded next time.
    third, _, _ = _tiny_encoders(data)
    report = pretrain_encoders({"audio": third["audio"]}, inputs, frame, epochs=1, seed=0, cache_dir=cache)
    assert report["audio"]["cached"] is True and not third["audio"].trainable


def test_the_cache_key_follows_what_training_depends_on(data, monkeypatch):
    encoders, inputs, frame = _tiny_encoders(data)
    encoder = encoders["audio"]
    x = inputs["audio"][:10]
    y = np.zeros(10, dtype=int)
    base = dict(epochs=1, batch_size=16, lr=0.003, seed=0)
    key = encoder_cache_key(encoder, x, y, **base)
    again, _, _ = _tiny_encoders(data)  # the same architecture built again (new automatic layer names)
    assert encoder_cache_key(again["audio"], x, y, **base) == key
    changed = [encoder_cache_key(encoder, x + 1e-3, y, **base), encoder_cache_key(encoder, x, y + 1, **base),
               encoder_cache_key(encoder, x, y, **{**base, "epochs": 2}),
               encoder_cache_key(encoder, x, y, **{**base, "lr": 0.001}),
               encoder_cache_key(encoder, x, y, **{**base, "seed": 1}),
               encoder_cache_key(encoder, x, y, **base, val=(x, y))]
    with monkeypatch.context() as env:  # another numeric path of TensorFlow
        env.setenv("TF_ENABLE_ONEDNN_OPTS", "1" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "0")
        changed.append(encoder_cache_key(encoder, x, y, **base))
    encoder.variables[0].assign(np.asarray(encoder.variables[0]) + 1.0)  # other initial weights
    changed.append(encoder_cache_key(encoder, x, y, **base))
    assert len(set(changed + [key])) == len(changed) + 1
