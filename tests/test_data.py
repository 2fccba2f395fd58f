"""Tests of mmtutor.data: the spoken-reviews generator, its ceilings, and the manifest loader."""

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mmtutor import data
from mmtutor.data import DataError, load_manifest, make_spoken_reviews
from mmtutor.data import spoken_reviews as sr
from mmtutor.data.faces import draw_face
from mmtutor.data.grammar import DOMAINS, make_review
from mmtutor.data.speech import synthesize

N = 40


def _file_hashes(folder):
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One small dataset, generated once for the module (copy it before corrupting it)."""
    out = tmp_path_factory.mktemp("sr") / "a"
    info = make_spoken_reviews(out, n=N, seed=0, progress=False)
    return out, info


@pytest.fixture
def copy(generated, tmp_path):
    """A private copy of the generated dataset, safe to damage."""
    dst = tmp_path / "copy"
    shutil.copytree(generated[0], dst)
    return dst


def _edit_manifest(folder, fn):
    path = Path(folder) / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = fn(frame)
    frame.to_csv(path, index=False)
    return frame


# --------------------------------------------------------------------------------------------
# Generation


def test_same_arguments_give_identical_files(generated, tmp_path):
    out, info = generated
    again = make_spoken_reviews(tmp_path / "b", n=N, seed=0, progress=False)
    assert _file_hashes(out) == _file_hashes(tmp_path / "b")
    assert again["content_hash"] == info["content_hash"]


def test_different_seed_gives_different_data(generated, tmp_path):
    out, info = generated
    other = make_spoken_reviews(tmp_path / "c", n=N, seed=1, progress=False)
    assert other["content_hash"] != info["content_hash"]
    a, b = _file_hashes(out), _file_hashes(tmp_path / "c")
    common = sorted(set(a) & set(b) - {"dataset.json"})
    assert common and all(a[k] != b[k] for k in common)


def test_layout_and_dataset_json(generated):
    out, info = generated
    assert sorted(p.name for p in out.iterdir()) == ["audio", "dataset.json", "images", "manifest.csv"]
    stored = json.loads((out / "dataset.json").read_text())
    assert stored == info
    assert stored["n"] == N and stored["seed"] == 0
    assert stored["knobs"] == data.check_knobs()
    assert stored["ceilings"] == pytest.approx(data.bayes_ceilings())
    assert stored["image_size"] == 64 and stored["audio_seconds"] == 3.0 and stored["sample_rate"] == 16000
    assert len(stored["content_hash"]) == 64 and int(stored["content_hash"], 16) >= 0
    assert set(stored["versions"]) >= {"numpy", "opencv-python-headless", "librosa", "espeakng-loader"}
    assert sum(stored["splits"].values()) == N


def test_manifest_matches_hidden_factors(generated):
    out, _ = generated
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    factors = data.sample_factors(N, seed=0)
    for column in factors.columns:
        assert manifest[column].tolist() == factors[column].tolist(), column
    for m in ("text", "image", "audio"):
        blank = manifest[m] == ""
        assert (blank == (manifest[f"missing_{m}"] == 1)).all()


def test_files_have_the_documented_format(generated):
    import cv2

    out, _ = generated
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    for rel in manifest["image"][manifest["image"] != ""][:5]:
        img = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    for rel in manifest["audio"][manifest["audio"] != ""][:5]:
        info = sf.info(out / rel)
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 48000)
        wave, _ = sf.read(out / rel)
        assert np.abs(wave).max() > 0.1  # speech, not silence
    words = manifest["text"][manifest["text"] != ""].str.split().str.len()
    assert words.between(5, 20).all()


def test_splits_are_stratified_and_deterministic():
    f = data.sample_factors(3000, seed=3)
    shares = f["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.70, abs=0.01)
    assert shares["val"] == pytest.approx(0.15, abs=0.01)
    for split in ("train", "val", "test"):
        part = f[f["split"] == split]
        assert part["sarcastic"].mean() == pytest.approx(f["sarcastic"].mean(), abs=0.02)
        assert part["label"].mean() == pytest.approx(f["label"].mean(), abs=0.03)
    pd.testing.assert_frame_equal(f, data.sample_factors(3000, seed=3))


def test_missing_rate_blanks_one_modality(tmp_path):
    info = make_spoken_reviews(tmp_path / "m", n=12, seed=2, progress=False, missing_rate=1.0, image_size=32)
    ds = load_manifest(tmp_path / "m")
    assert (ds.masks.sum(axis=1) == 2).all()  # exactly one modality blank per row
    assert len(list((tmp_path / "m" / "images").iterdir())) == ds.masks[:, 1].sum()
    assert len(list((tmp_path / "m" / "audio").iterdir())) == ds.masks[:, 2].sum()
    assert info["image_size"] == 32


def test_refuses_to_overwrite_without_permission(generated, tmp_path):
    out = tmp_path / "o"
    make_spoken_reviews(out, n=10, seed=0, progress=False, image_size=16, audio_seconds=1.0)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_spoken_reviews(out, n=10, seed=1, progress=False)
    make_spoken_reviews(out, n=10, seed=1, progress=False, overwrite=True, image_size=16, audio_seconds=1.0)
    assert (out / "notes.txt").read_text() == "mine"  # other files are left alone
    assert json.loads((out / "dataset.json").read_text())["seed"] == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_overwrite_replaces_only_the_files_mmtutor_wrote(tmp_path):
    small = dict(progress=False, image_size=16, audio_seconds=1.0)
    # A folder of holiday photos is not a dataset: never written into, even with overwrite.
    photos = tmp_path / "holiday"
    (photos / "images").mkdir(parents=True)
    (photos / "images" / "beach.jpg").write_bytes(b"jpeg")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="no dataset written by mmtutor") as exc:
            make_spoken_reviews(photos, n=10, overwrite=overwrite, **small)
        assert "already holds a" not in str(exc.value)
    assert (photos / "images" / "beach.jpg").read_bytes() == b"jpeg"
    assert sorted(p.name for p in photos.iterdir()) == ["images"]

    # A dataset whose images/ also holds a file of the user's: replaced, the user's file kept.
    out = tmp_path / "d"
    make_spoken_reviews(out, n=10, seed=0, **small)
    (out / "images" / "my_face.png").write_bytes(b"png")
    make_spoken_reviews(out, n=12, seed=1, overwrite=True, **small)
    assert (out / "images" / "my_face.png").read_bytes() == b"png"
    ds = load_manifest(out)
    assert len(ds) == 12 and json.loads((out / "dataset.json").read_text())["seed"] == 1
    listed = {Path(p).name for p in ds.image_paths if p}
    assert {p.name for p in (out / "images").iterdir()} == listed | {"my_face.png"}  # no stale files


def test_out_dir_must_be_a_folder_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="out_dir is empty"):
        make_spoken_reviews("", n=10, progress=False)
    with pytest.raises(TypeError, match="out_dir must be a path"):
        make_spoken_reviews(None, n=10, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_generators_temporary_folder_is_removed(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    stale = out / f".tmp-spoken-reviews-{2**22 + 4321}-abcd"
    stale.mkdir()
    make_spoken_reviews(out, n=10, progress=False, image_size=16, audio_seconds=1.0)
    assert not stale.exists() and not [p for p in out.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n": 5}, ValueError, "n must be an integer >= 10"),
        ({"n": 12.5}, TypeError, "n must be an integer"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
        ({"sarcasm_rate": 0.7}, ValueError, r"sarcasm_rate must be a number in \[0.0, 0.5\], got 0.7"),
        ({"missing_rate": "a lot"}, TypeError, "missing_rate must be a number"),
        ({"image_size": 8}, ValueError, "image_size must be an integer in"),
        ({"reliability": {"text": 0.3}}, ValueError, r"reliability\['text'\] must be a number in \[0.5, 1.0\]"),
        ({"reliability": {"smell": 0.9}}, ValueError, "unknown modalities"),
        ({"colour": "red"}, TypeError, r"unknown knob\(s\) \['colour'\]"),
    ],
)
def test_bad_knobs_are_rejected_before_any_work(tmp_path, kwargs, error, match):
    args = {"n": 10, "seed": 0, **kwargs}
    with pytest.raises(error, match=match):
        make_spoken_reviews(tmp_path / "x", progress=False, **args)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------------------------
# Ceilings


def test_default_ceilings_meet_the_design():
    c = data.bayes_ceilings()
    for m in ("text", "image", "audio"):
        assert 0.65 <= c[m] <= 0.85, (m, c[m])
    assert c["all"] >= 0.93
    # synergy: text and image together beat either alone by far more than image and audio do
    assert c["text+image"] - max(c["text"], c["image"]) > 0.1
    assert c["image+audio"] - max(c["image"], c["audio"]) < 0.05


def test_text_ceiling_in_closed_form():
    # text alone sees only the literal polarity, right when (cue right, not sarcastic) or (cue
    # wrong, sarcastic); a blank text leaves a coin flip.
    r, rho, miss = 0.9, 0.3, 0.15
    c = data.bayes_ceilings(reliability={"text": r}, sarcasm_rate=rho, missing_rate=miss)
    p = r * (1 - rho) + (1 - r) * rho
    assert c["text"] == pytest.approx((1 - miss / 3) * p + miss / 3 * 0.5)


@pytest.mark.parametrize(
    "knobs",
    [{}, {"sarcasm_rate": 0.4, "marker_reliability": 0.6, "missing_rate": 0.3,
          "reliability": {"text": 0.8, "image": 0.7, "audio": 0.95}}],
)
def test_ceilings_match_empirical_estimates(knobs):
    n = 40000
    f = data.sample_factors(n, seed=11, **knobs)
    ceilings = data.bayes_ceilings(**knobs)
    obs = sr._observations(f)
    half = n // 2
    for name, c in ceilings.items():
        mods = ("text", "image", "audio") if name == "all" else tuple(name.split("+"))
        tol = 4 * np.sqrt(c * (1 - c) / half) + 1e-3
        # 1) the Bayes rule computed from the generator's probabilities
        acc = (data.bayes_predict(f, mods, **knobs) == f["label"]).mean()
        assert acc == pytest.approx(c, abs=tol), (name, "rule")
        # 2) independent of those probabilities: a lookup table (majority label per observation)
        #    learnt on one half of the hidden factors, scored on the other
        keep = [m in mods for m in ("text", "image", "audio")]
        keys = [tuple(o) for o in np.where(keep, obs, -1)]
        y = f["label"].to_numpy()
        votes = {}
        for k, label in zip(keys[:half], y[:half]):
            votes.setdefault(k, [0, 0])[label] += 1
        pred = np.array([int(np.argmax(votes.get(k, [0, 1]))) for k in keys[half:]])
        assert (pred == y[half:]).mean() == pytest.approx(c, abs=tol), (name, "lookup")


def test_sarcastic_samples_need_fusion():
    f = data.sample_factors(20000, seed=5, missing_rate=0.0)
    sarcastic = f["sarcastic"].to_numpy() == 1
    y = f["label"].to_numpy()
    text_only = data.bayes_predict(f, ["text"])
    fused = data.bayes_predict(f)
    assert (text_only[sarcastic] == y[sarcastic]).mean() < 0.1  # text alone is fooled
    assert (fused[sarcastic] == y[sarcastic]).mean() > 0.85  # text + marker recovers the label


def test_bayes_predict_rejects_bad_input():
    f = data.sample_factors(20, seed=0)
    with pytest.raises(ValueError, match="modalities must be a non-empty subset"):
        data.bayes_predict(f, ["smell"])
    with pytest.raises(ValueError, match="lacks the hidden-factor columns"):
        data.bayes_predict(f.drop(columns=["literal"]))


# --------------------------------------------------------------------------------------------
# The three renderers


def test_review_grammar_is_learnable_by_bag_of_words():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    domains = list(DOMAINS)
    polarity = rng.integers(0, 2, 1200)
    texts = [make_review(rng, domains[i % len(domains)], int(p)) for i, p in enumerate(polarity)]
    assert all(5 <= len(t.split()) <= 20 for t in texts)
    assert len(set(texts)) > 1000  # varied
    vec = CountVectorizer(ngram_range=(1, 2)).fit(texts[:900])
    clf = LogisticRegression(max_iter=1000).fit(vec.transform(texts[:900]), polarity[:900])
    assert clf.score(vec.transform(texts[900:]), polarity[900:]) > 0.85


def test_faces_are_deterministic_and_show_the_expression():
    a = draw_face("smile", np.random.default_rng(3))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, draw_face("smile", np.random.default_rng(3)))
    b = draw_face("frown", np.random.default_rng(3))  # same pose and colours, other mouth
    assert 0 < np.mean(a != b) < 0.3
    with pytest.raises(ValueError, match="expression must be one of"):
        draw_face("grin", np.random.default_rng(0))
    with pytest.raises(ValueError, match="size must be an integer"):
        draw_face("smile", np.random.default_rng(0), size=3)


def test_synthesize_is_real_deterministic_speech():
    text = "The hotel was really wonderful."
    a = synthesize(text, pitch=40)
    assert a.dtype == np.float32 and a.ndim == 1 and 0.8 < len(a) / 16000 < 4
    assert np.array_equal(a, synthesize(text, pitch=40))  # bit for bit, call after call
    assert not np.array_equal(a, synthesize(text, pitch=80))
    assert np.array_equal(synthesize(text, sr=None)[:100], synthesize(text, sr=None)[:100])
    with pytest.raises(ValueError, match="text must contain something to say"):
        synthesize("   ")
    with pytest.raises(ValueError, match=r"rate must be in \[80, 450\], got 20"):
        synthesize(text, rate=20)
    with pytest.raises(ValueError, match="voice must be an espeak-ng voice name"):
        synthesize(text, voice="no-such-voice")


def _median_f0(wave):
    import librosa

    f0 = librosa.yin(wave, fmin=50, fmax=400, sr=16000, frame_length=1024)
    loud = librosa.feature.rms(y=wave, frame_length=1024, hop_length=256)[0][: len(f0)] > 0.03
    return float(np.median(f0[: len(loud)][loud]))


def test_tone_of_voice_is_carried_by_pitch_and_rate():
    text = "My friend and I enjoyed the food and the service was lovely."
    pos = data.voice_review(text, "positive", seed=1, snr_db=None)
    neg = data.voice_review(text, "negative", seed=1, snr_db=None)
    assert pos.shape == neg.shape == (48000,)
    assert _median_f0(pos) > 1.3 * _median_f0(neg)
    noisy = data.voice_review(text, "positive", seed=1, snr_db=0.0)
    assert np.std(noisy - pos) > 0.5 * np.std(pos)  # 0 dB: noise as loud as speech
    with pytest.raises(ValueError, match="tone must be one of"):
        data.voice_review(text, "angry")


# --------------------------------------------------------------------------------------------
# Loader


def test_load_manifest_reads_generated_data(generated):
    out, info = generated
    ds = load_manifest(out)
    assert len(ds) == N and ds.info == info and ds.skipped == []
    assert ds.root == out.resolve()
    assert list(ds.frame.columns[:6]) == ["id", "split", "text", "image", "audio", "label"]
    assert ds.labels.dtype == np.int64 and set(ds.labels) <= {0, 1}
    masks = ds.masks
    assert masks.dtype == bool and masks.shape == (N, 3)
    for j, m in enumerate(data.MODALITIES):
        assert (masks[:, j] == (ds.frame[f"missing_{m}"] == 0)).all()
    for p, present in zip(ds.image_paths, masks[:, 1]):
        assert (p == "") != present and (not present or Path(p).is_absolute() and Path(p).is_file())
    assert ds.texts == ds.frame["text"].tolist()
    same = load_manifest(out / "manifest.csv")
    pd.testing.assert_frame_equal(same.frame, ds.frame)


def test_subset_and_describe(generated):
    ds = load_manifest(generated[0])
    parts = [ds.subset(s) for s in data.SPLITS]
    assert sum(len(p) for p in parts) == len(ds)
    assert all((p.frame["split"] == s).all() for p, s in zip(parts, data.SPLITS))
    assert parts[0].root == ds.root and parts[0].info is ds.info
    with pytest.raises(ValueError, match="split must be one of"):
        ds.subset("dev")
    d = ds.describe()
    assert d["n"] == N
    assert sum(v["n"] for v in d["splits"].values()) == N
    assert d["splits"]["train"]["negative"] + d["splits"]["train"]["positive"] == d["splits"]["train"]["n"]
    assert d["missing"] == {m: int((ds.frame[m] == "").sum()) for m in data.MODALITIES}
    assert d["sarcastic"] == int(ds.frame["sarcastic"].sum())


def _first_with(folder, column, k=3):
    """(id, absolute path) of the k-th row (k >= 1) that has a file in ``column``."""
    frame = pd.read_csv(Path(folder) / "manifest.csv", dtype=str, keep_default_na=False)
    row = frame[frame[column] != ""].iloc[k]
    return row["id"], Path(folder) / row[column]


def test_truncated_wav_is_named(copy):
    rid, path = _first_with(copy, "audio")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert sf.info(path).frames > 0  # soundfile alone would read the half that is left
    with pytest.raises(DataError, match="truncated WAV") as err:
        load_manifest(copy)
    assert rid in str(err.value) and "'audio'" in str(err.value) and str(path) in str(err.value)


def test_wav_that_is_not_audio_is_named(copy):
    rid, path = _first_with(copy, "audio")
    path.write_bytes(b"this is not a sound file")
    with pytest.raises(DataError, match="not a readable audio file") as err:
        load_manifest(copy)
    assert rid in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"not an image at all", b"", "half"])
def test_broken_image_is_named(copy, content):
    rid, path = _first_with(copy, "image")
    path.write_bytes(path.read_bytes()[:200] if content == "half" else content)
    with pytest.raises(DataError) as err:
        load_manifest(copy)
    msg = str(err.value)
    assert rid in msg and "'image'" in msg and str(path) in msg
    assert "empty" in msg if content == b"" else "not a readable image" in msg


def test_missing_file_is_named(copy):
    rid, path = _first_with(copy, "image")
    path.unlink()
    with pytest.raises(DataError, match="missing file") as err:
        load_manifest(copy)
    assert rid in str(err.value) and str(path) in str(err.value)


def test_empty_text_is_a_missing_modality_but_whitespace_is_an_error(copy):
    frame = _edit_manifest(copy, lambda f: f.assign(text=["" if i == 2 else t for i, t in enumerate(f["text"])]))
    ds = load_manifest(copy)
    assert not ds.masks[2, 0] and ds.texts[2] == ""
    _edit_manifest(copy, lambda f: f.assign(text=["   " if i == 2 else t for i, t in enumerate(f["text"])]))
    with pytest.raises(DataError, match="only whitespace") as err:
        load_manifest(copy)
    assert frame["id"][2] in str(err.value) and "'text'" in str(err.value)


def test_row_with_nothing_is_an_error(copy):
    def blank(f):
        f.loc[1, ["text", "image", "audio"]] = ""
        return f

    frame = _edit_manifest(copy, blank)
    with pytest.raises(DataError, match="all three modalities are blank") as err:
        load_manifest(copy)
    assert frame["id"][1] in str(err.value)


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("label", "2", r"unknown label '2'; expected an integer from 0 to 1 \(0 = negative, 1 = positive\)"),
        ("label", "maybe", "unknown label 'maybe'"),
        ("label", "", "unknown label ''"),
        ("split", "dev", "unknown split 'dev'"),
        ("id", "", "empty id"),
    ],
)
def test_bad_cells_are_named(copy, column, value, match):
    def edit(f):
        f.loc[4, column] = value
        return f

    _edit_manifest(copy, edit)
    with pytest.raises(DataError, match=match) as err:
        load_manifest(copy)
    assert f"column {column!r}" in str(err.value) and "line 6" in str(err.value)


def test_duplicate_ids_are_an_error(copy):
    def dup(f):
        f.loc[5, "id"] = f.loc[4, "id"]
        return f

    frame = _edit_manifest(copy, dup)
    with pytest.raises(DataError, match=f"duplicate id '{frame['id'][4]}'"):
        load_manifest(copy)


def test_missing_columns_are_listed(copy):
    _edit_manifest(copy, lambda f: f.drop(columns=["split", "label"]))
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['split', 'label'\]"):
        load_manifest(copy, on_error="skip")  # not a row problem: raises even in skip mode


def test_empty_or_absent_manifest(copy, tmp_path):
    (copy / "manifest.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_manifest(copy)
    with pytest.raises(FileNotFoundError, match="no manifest.csv in folder"):
        load_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_manifest(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        load_manifest(copy, on_error="ignore")


def test_corrupt_dataset_json(copy):
    (copy / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match="dataset.json is not readable JSON"):
        load_manifest(copy)


def test_user_dataset_without_dataset_json(copy):
    (copy / "dataset.json").unlink()
    _edit_manifest(copy, lambda f: f[["id", "split", "text", "image", "audio", "label"]])
    ds = load_manifest(copy)
    assert ds.info == {} and len(ds) == N and ds.classes == ["negative", "positive"]
    assert ds.describe()["sarcastic"] is None and ds.describe()["ceilings"] is None


def test_skip_mode_leaves_bad_rows_out_and_reports_them(copy):
    rid_audio, wav = _first_with(copy, "audio")
    wav.write_bytes(wav.read_bytes()[:1000])
    rid_image, png = _first_with(copy, "image", k=8)
    assert rid_image != rid_audio
    png.write_bytes(b"garbage")

    def edit(f):
        f.loc[0, "label"] = "7"
        return f

    frame = _edit_manifest(copy, edit)
    with pytest.raises(DataError, match=r"\(2 more bad row\(s\); on_error='skip' leaves them out\)"):
        load_manifest(copy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_manifest(copy, on_error="skip")
    assert any(issubclass(w.category, UserWarning) and "skipped 3 of 40 rows" in str(w.message) for w in caught)
    bad = {frame["id"][0], rid_audio, rid_image}
    assert len(ds) == N - 3 and not bad & set(ds.frame["id"])
    assert {rid for rid, _ in ds.skipped} == bad
    reasons = dict(ds.skipped)
    assert "truncated WAV" in reasons[rid_audio] and "unknown label" in reasons[frame["id"][0]]
    assert ds.masks.shape == (N - 3, 3) and len(ds.labels) == N - 3 and ds.frame.index[-1] == N - 4


# --------------------------------------------------------------------------------------------
# Cached default dataset


def test_load_spoken_reviews_generates_once_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("MMTUTOR_HOME", str(tmp_path / "home"))
    ds = data.load_spoken_reviews(n=10, seed=4, image_size=16, audio_seconds=1.0)
    folders = list((tmp_path / "home").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("spoken_reviews-")
    assert len(ds) == 10 and ds.info["seed"] == 4 and ds.root == folders[0].resolve()

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a cached dataset")

    monkeypatch.setattr(sr, "_render_into", fail)
    again = data.load_spoken_reviews(n=10, seed=4, image_size=16, audio_seconds=1.0)
    assert again.info["content_hash"] == ds.info["content_hash"]
    with pytest.raises(AssertionError, match="regenerated"):  # other knobs: another folder
        data.load_spoken_reviews(n=10, seed=4, image_size=16, audio_seconds=1.5)


def test_load_spoken_reviews_survives_a_lost_race(tmp_path, monkeypatch):
    """Another process finishes the same dataset first: we use its copy and clean up ours."""
    home = tmp_path / "home"
    real = sr._render_into

    def render_and_lose(folder, n, seed, knobs, progress):
        info = real(folder, n, seed, knobs, progress)
        winner = home / f"spoken_reviews-{sr._cache_key(n, seed, knobs)}"
        shutil.copytree(folder, winner)  # the other process's rename lands first
        (winner / "winner.txt").write_text("other process")
        return info

    monkeypatch.setattr(sr, "_render_into", render_and_lose)
    ds = data.load_spoken_reviews(n=10, seed=5, home=home, image_size=16, audio_seconds=1.0)
    assert (ds.root / "winner.txt").is_file()
    assert [p.name for p in home.iterdir() if p.name.startswith(".tmp")] == []


def test_default_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MMTUTOR_HOME", str(tmp_path))
    assert data.default_home() == tmp_path
    monkeypatch.delenv("MMTUTOR_HOME")
    assert "mmtutor" in str(data.default_home())
