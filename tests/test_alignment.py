"""Tests of mmtutor.alignment and of the word timings of mmtutor.data.speech."""

import numpy as np
import pytest

from mmtutor import alignment as al
from mmtutor.data.speech import synthesize, synthesize_with_words


def test_frames_and_seconds_round_trip():
    f = np.array([0, 7, 100, 301])
    s = al.frames_to_seconds(f, hop_length=160, sr=16000)
    np.testing.assert_allclose(s, f * 0.01)
    np.testing.assert_array_equal(al.seconds_to_frames(s, hop_length=160, sr=16000), f)
    with pytest.raises(TypeError, match="frames"):
        al.frames_to_seconds([0.5], hop_length=160, sr=16000)
    with pytest.raises(ValueError, match="seconds"):
        al.seconds_to_frames([-1.0], hop_length=160, sr=16000)
    with pytest.raises(ValueError, match="hop_length"):
        al.frames_to_seconds([1], hop_length=0, sr=16000)


def test_resample_linear_matches_numpy_interp():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    out = al.resample_features(x, 43.07, 100.0)
    t_out = np.arange(len(out)) / 100.0
    t_src = np.arange(50) / 43.07
    for d in range(3):
        np.testing.assert_allclose(out[:, d], np.interp(t_out, t_src, x[:, d]))
    assert t_out[-1] <= t_src[-1] + 1e-12 and len(out) == int(np.floor(49 * 100 / 43.07)) + 1


def test_resample_labels_stay_labels():
    labels = np.repeat([0, 1, 2], [3, 4, 3])
    up = al.resample_features(labels, 10.0, 25.0, kind="nearest")
    assert up.dtype == labels.dtype and set(np.unique(up)) == {0, 1, 2}
    assert np.all(np.diff(up) >= 0)
    lin = al.resample_features(labels.astype(float), 10.0, 25.0)
    assert not np.all(np.isin(lin, [0, 1, 2]))  # linear interpolation invents "word 1.4"
    prev = al.resample_features(labels, 10.0, 20.0, kind="previous")
    np.testing.assert_array_equal(prev, np.repeat(labels, 2)[:len(prev)])
    with pytest.raises(ValueError, match="kind"):
        al.resample_features(labels, 1.0, 2.0, kind="cubic")
    with pytest.raises(ValueError, match="features"):
        al.resample_features(np.zeros((0, 2)), 1.0, 2.0)
    with pytest.raises(TypeError, match="linear"):
        al.resample_features(np.array([True, False]), 1.0, 2.0)


def _brute_force_dtw(a, b):
    n, m = len(a), len(b)
    cost = np.abs(a[:, None, 0] - b[None, :, 0])
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            D[i, j] = cost[i - 1, j - 1] + min(D[i - 1, j - 1], D[i - 1, j], D[i, j - 1])
    return D[1:, 1:]


def test_dtw_recovers_a_known_warp():
    rng = np.random.default_rng(1)
    ref = np.cumsum(rng.normal(size=80))[:, None]  # a wandering signal: every frame distinct
    warp = np.sort(np.r_[np.arange(80), rng.integers(0, 80, 60)])  # each frame once or more
    query = ref[warp]
    path, cost = al.dtw_path(query, ref, metric="euclidean")
    assert cost == pytest.approx(0.0, abs=1e-12)
    # every query frame is paired with the reference frame it was copied from
    for q, r in path:
        assert ref[r, 0] == pytest.approx(query[q, 0])
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (139, 79)
    D = _brute_force_dtw(query, ref)
    assert D[-1, -1] == pytest.approx(0.0, abs=1e-12)


def test_dtw_open_end_stops_where_the_query_stops():
    ref = np.sin(np.linspace(0, 12, 120))[:, None] + np.linspace(0, 3, 120)[:, None]
    query = ref[:60]
    full, _ = al.dtw_path(query, ref, metric="euclidean")
    opened, cost = al.dtw_path(query, ref, metric="euclidean", open_end=True)
    assert full[-1, 1] == 119 and opened[-1, 1] == 59 and cost == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(al.boundaries_from_path(opened, [10, 59, 60, 100]), [10, 59, -1, -1])


def test_dtw_cost_matches_brute_force():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(12, 1)), rng.normal(size=(9, 1))
    path, cost = al.dtw_path(a, b, metric="euclidean")
    D = _brute_force_dtw(a, b)
    assert cost * len(path) == pytest.approx(D[-1, -1])
    assert np.all(np.diff(path, axis=0) >= 0) and np.all(np.diff(path, axis=0).sum(axis=1) >= 1)


def test_dtw_bad_input():
    with pytest.raises(ValueError, match="same dims"):
        al.dtw_path(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="query"):
        al.dtw_path(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        al.dtw_path(np.full((3, 1), np.nan), np.zeros((3, 1)))
    with pytest.raises(TypeError, match="open_end"):
        al.dtw_path(np.zeros((3, 1)), np.zeros((3, 1)), open_end="yes")


def test_boundaries_from_path():
    path = np.array([[0, 0], [1, 0], [2, 1], [2, 2], [3, 3], [4, 3]])
    np.testing.assert_array_equal(al.boundaries_from_path(path, [0, 1, 2, 3, 4]), [0, 2, 2, 3, -1])
    with pytest.raises(ValueError, match="monotone"):
        al.boundaries_from_path([[0, 0], [2, 1], [1, 2]], [0])
    with pytest.raises(ValueError, match="path"):
        al.boundaries_from_path([0, 1, 2], [0])
    with pytest.raises(TypeError, match="reference_frames"):
        al.boundaries_from_path(path, [0.5])


def test_uniform_starts_and_error_summary():
    np.testing.assert_allclose(al.uniform_starts(3, 0.0, 3.0), [0, 1, 2])
    with pytest.raises(ValueError, match="end"):
        al.uniform_starts(3, 1.0, 1.0)
    t = np.array([0.0, 0.5, 1.0, 1.5])
    e = np.array([0.01, 0.45, 1.3, np.nan])
    s = al.timing_error_summary(t, e)
    err = np.array([10.0, 50.0, 300.0])
    assert s["missed"] == 1 and s["words"] == 4
    assert s["median_ms"] == pytest.approx(np.median(err))
    assert s["p90_ms"] == pytest.approx(np.percentile(err, 90))
    assert s["within"] == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="same length"):
        al.timing_error_summary([0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        al.timing_error_summary([np.nan], [0.0])


def test_word_timings_leave_the_wave_unchanged():
    text = "The soup was cold, and the waiter didn't care."
    for kwargs in ({}, {"rate": 100, "word_gap": 9, "voice": "en-us+m3", "seed": 5}, {"sr": None}):
        wave = synthesize(text, **kwargs)
        wave2, words = synthesize_with_words(text, **kwargs)
        assert wave2.dtype == wave.dtype and wave2.tobytes() == wave.tobytes()
    assert words["word"] == text.split()
    assert np.all(np.isfinite(words["start"])) and np.all(np.diff(words["start"]) > 0)
    assert np.all(words["end"] > words["start"]) and words["end"][-1] <= len(wave2) / 22050 + 1e-9
    np.testing.assert_array_equal(words["start_sample"], np.round(words["start"] * 22050).astype(int))
    with pytest.raises(TypeError, match="text"):
        synthesize_with_words(3)
    with pytest.raises(ValueError, match="rate"):
        synthesize_with_words("hello", rate=10)


def test_slower_speech_moves_the_words_later():
    _, fast = synthesize_with_words("This film was a real delight.", rate=200)
    _, slow = synthesize_with_words("This film was a real delight.", rate=100)
    found = np.isfinite(fast["start"])  # espeak-ng may merge a short word into the next ("a real")
    np.testing.assert_array_equal(found, np.isfinite(slow["start"]))
    assert found.sum() >= 4 and np.all(slow["start"][found][1:] > 1.5 * fast["start"][found][1:])
    assert np.all(slow["start_sample"][~found] == -1)


def test_render_plan_rebuilds_the_generator_clip():
    from mmtutor.data.spoken_reviews import _render_audio

    text = "The plot was dull and the ending was worse."
    for tone in ("negative", "positive", "sarcastic"):
        clip = _render_audio(text, tone, np.random.default_rng(7), 3.0, None, 16000)
        plan = al._render_plan(text, tone, np.random.default_rng(7), 16000)
        p = plan["prosody"]
        wave = synthesize(plan["spoken"], rate=p["rate"], pitch=p["pitch"], pitch_range=p["pitch_range"],
                          volume=p["volume"], voice=plan["voice"], sr=16000, seed=plan["seed"],
                          word_gap=p["word_gap"]).astype(np.float64) * 0.8
        t = np.linspace(0.0, 1.0, len(wave))
        env = p["env"][0] + (p["env"][1] - p["env"][0]) * t
        if plan["wobble"]:
            freq = plan["wobble"][0] * len(wave) / 16000
            env = env * (1 + p["wobble"] * np.sin(2 * np.pi * freq * t + plan["wobble"][1]))
        rebuilt = np.zeros(48000)
        piece = (wave * env)[: 48000 - plan["offset"]]
        rebuilt[plan["offset"]:plan["offset"] + len(piece)] = piece
        np.testing.assert_allclose(clip, np.clip(rebuilt, -1, 1).astype(np.float32), atol=1e-7)


def test_align_words_finds_words_of_a_clean_utterance():
    text = "What a lovely little film this was."
    wave, truth = synthesize_with_words(text, rate=140, voice="en-us+m3", seed=1)
    lead = np.zeros(1600, np.float32)
    got = al.align_words(np.r_[lead, wave], text)
    err = np.abs(got["start"] - (truth["start"] + 0.1))
    assert got["word"] == truth["word"] and np.median(err) < 0.05
    with pytest.raises(ValueError, match="references"):
        al.align_words(wave, text, references=[])


def test_review_word_times_bad_input():
    with pytest.raises(TypeError, match="dataset"):
        al.review_word_times(object(), 0)


def test_ctrl_c_during_synthesis_is_raised_after_the_call_never_lost(monkeypatch, capfd):
    """A SIGINT that lands in espeak-ng's Python callback is held back, then raised once."""
    import signal

    from mmtutor.data import speech

    real_as_array = np.ctypeslib.as_array
    sent = []

    def as_array_then_interrupt(*args, **kwargs):  # runs inside the ctypes callback
        if not sent:
            sent.append(True)
            signal.raise_signal(signal.SIGINT)
        return real_as_array(*args, **kwargs)

    monkeypatch.setattr(speech.np.ctypeslib, "as_array", as_array_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        speech.synthesize("The soup was cold.")
    assert sent and "Exception ignored" not in capfd.readouterr().err
