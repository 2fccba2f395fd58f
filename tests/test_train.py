"""Tests of mmtutor.train: run folders, reloading, prediction from raw inputs, evaluation."""

import csv
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

import mmtutor
from mmtutor.data import load_manifest, make_spoken_reviews
from mmtutor.metrics import accuracy
from mmtutor.train import RUN_FILES, Run, RunError, _has_tensorboard, load_run, train_run

# Tiny model and features: the tests check plumbing and correctness, not what the model learns.
TINY = dict(image_size=(16, 16), seq_len=12, audio={"n_mels": 16, "hop_length": 640}, image_filters=(4,),
            audio_filters=(4,), embed_dim=8, units=8, dim=8, hidden=8, batch_size=16, pretrain_epochs=1)


@pytest.fixture(scope="module")
def data(small_reviews):
    return small_reviews  # shared, read-only (tests/conftest.py)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "concat"
    return train_run(data, out, fusion="concat", epochs=2, seed=0, **TINY)


@pytest.fixture(scope="module")
def run_two(data, tmp_path_factory):
    """A run on text and image only, with another fusion method."""
    out = tmp_path_factory.mktemp("runs") / "gated"
    return train_run(data, out, fusion="gated", modalities="text,image", epochs=1, seed=1,
                     class_weight=None, **TINY)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _split(data, split):
    return load_manifest(data).subset(split)


def test_run_folder_holds_every_file_and_knob(run, data):
    assert isinstance(run, Run)
    for name in RUN_FILES:
        assert (run.path / name).is_file(), name
    config = json.loads((run.path / "config.json").read_text())
    if _has_tensorboard():
        assert config["tensorboard_logs"] == "logs"
        assert any((run.path / "logs").rglob("events.out.tfevents*"))
    else:  # the documented fallback: no logs, and the config says so
        assert config["tensorboard_logs"] is None and not (run.path / "logs").exists()
    info = json.loads((data / "dataset.json").read_text())
    assert config["mmtutor_version"] == mmtutor.__version__
    assert config["modalities"] == ["text", "image", "audio"]
    assert config["classes"] == info["classes"]
    knobs = config["knobs"]
    assert knobs["fusion"] == "concat" and knobs["epochs"] == 2 and knobs["seed"] == 0
    assert knobs["class_weight"] == "balanced" and knobs["text_kind"] == "gru"
    assert knobs["dim"] == 8 and knobs["image_filters"] == [4]
    assert config["data"]["content_hash"] == info["content_hash"]
    assert config["data"]["path"] == str(data.resolve())
    assert {"mmtutor", "keras", "numpy", "librosa"} <= set(config["versions"])
    prep = config["preprocessing"]
    assert prep["image_size"] == [16, 16] and prep["seq_len"] == 12
    assert prep["audio"]["n_mels"] == 16 and prep["audio"]["hop_length"] == 640
    assert len(prep["audio_norm"]["mean"]) == 16 and min(prep["audio_norm"]["std"]) > 0
    # Balanced class weights: each class's total weight is the same on the training split.
    train_labels = _split(data, "train").labels
    weights = config["class_weights"]
    totals = [weights[str(k)] * np.sum(train_labels == k) for k in (0, 1)]
    assert totals[0] == pytest.approx(totals[1])


def test_history_and_metrics_agree_with_predictions(run, data):
    history = _rows(run.path / "history.csv")
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert len(history) == metrics["epochs_run"] <= 2
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(history[0])
    val_losses = [float(r["val_loss"]) for r in history]
    assert metrics["best_epoch"] == int(np.argmin(val_losses)) + 1
    assert metrics["ceiling"] == pytest.approx(json.loads((data / "dataset.json").read_text())["ceilings"]["all"])

    rows = _rows(run.path / "predictions.csv")
    manifest = load_manifest(data)
    assert sorted(r["id"] for r in rows) == sorted(manifest.frame["id"])
    for split in ("val", "test"):
        part = [r for r in rows if r["split"] == split]
        subset = _split(data, split)
        assert [r["id"] for r in part] == list(subset.frame["id"])
        labels = np.array([int(r["label"]) for r in part])
        prob = np.array([float(r["prob"]) for r in part])
        pred = np.array([int(r["pred"]) for r in part])
        assert np.array_equal(labels, subset.labels)
        assert np.all((prob >= 0) & (prob <= 1)) and np.array_equal(pred, (prob > 0.5).astype(int))
        assert metrics[split]["n"] == len(part)
        assert metrics[split]["accuracy"] == pytest.approx(accuracy(labels, pred))
        sarcastic = subset.frame["sarcastic"].astype(int).to_numpy() == 1
        if sarcastic.any():
            assert metrics[split]["subsets"]["sarcastic"]["n"] == sarcastic.sum()
            assert metrics[split]["subsets"]["sarcastic"]["accuracy"] == pytest.approx(
                accuracy(labels[sarcastic], pred[sarcastic]))


def test_reloaded_run_predicts_the_same(run, data):
    loaded = load_run(run.path)
    assert loaded.config == run.config and loaded.modalities == run.modalities
    test = _split(data, "test")
    raw = dict(texts=[t for t in test.texts], image_paths=test.image_paths, audio_paths=test.audio_paths)
    inputs = run.inputs(**raw)
    before = run.model.predict(inputs, verbose=0)
    after = loaded.model.predict(inputs, verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-6)
    # Predicting from the raw files repeats the training preprocessing exactly.
    stored = {r["id"]: float(r["prob"]) for r in _rows(run.path / "predictions.csv")}
    prob = loaded.predict(**raw)
    assert prob.shape == (len(test), 2)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(prob[:, 1], [stored[i] for i in test.frame["id"]], atol=1e-5)


@pytest.mark.parametrize("given", [("text",), ("image",), ("audio",), ("text", "audio")])
def test_predict_with_a_subset_masks_the_others(run, data, given):
    test = _split(data, "test")
    keep = test.masks.all(axis=1)  # samples that have all three
    raw = {"text": [t for t, k in zip(test.texts, keep) if k],
           "image": [p for p, k in zip(test.image_paths, keep) if k],
           "audio": [p for p, k in zip(test.audio_paths, keep) if k]}
    names = {"text": "texts", "image": "image_paths", "audio": "audio_paths"}
    prob = run.predict(**{names[m]: raw[m] for m in given})
    inputs = run.inputs(texts=raw["text"], image_paths=raw["image"], audio_paths=raw["audio"])
    inputs["mask"] = np.array([[float(m in given) for m in ("text", "image", "audio")]] * len(raw["text"]),
                              dtype=np.float32)
    expected = run.model.predict(inputs, verbose=0)[:, 0]
    np.testing.assert_allclose(prob[:, 1], expected, atol=1e-6)


def test_predict_masks_single_missing_entries(run, data):
    test = _split(data, "test")
    texts, images = list(test.texts[:2]), list(test.image_paths[:2])
    texts[1] = ""  # sample 1: image only
    images[0] = None  # sample 0: text only
    prob = run.predict(texts=texts, image_paths=images)
    np.testing.assert_allclose(prob[0], run.predict(texts=texts[:1])[0], atol=1e-6)
    np.testing.assert_allclose(prob[1], run.predict(image_paths=images[1:])[0], atol=1e-6)


def test_predict_refuses_bad_inputs(run, run_two, data, tmp_path):
    test = _split(data, "test")
    with pytest.raises(ValueError, match=r"trained on the modalities \['text', 'image'\] only; it cannot use audio_paths"):
        run_two.predict(texts="Great food.", audio_paths=test.audio_paths[:1])
    with pytest.raises(ValueError, match="at least one of texts, image_paths, audio_paths"):
        run.predict()
    with pytest.raises(ValueError, match="image_paths has 1 entries but the other inputs have 2"):
        run.predict(texts=["a", "b"], image_paths=test.image_paths[:1])
    with pytest.raises(ValueError, match="sample 0 has none of the modalities"):
        run.predict(texts=[""])
    bad_image = tmp_path / "face.png"
    bad_image.write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match=str(bad_image)):
        run.predict(image_paths=[str(bad_image)])
    wav = next(p for p in test.audio_paths if p)
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(open(wav, "rb").read()[:2000])
    with pytest.raises(ValueError, match=rf"{truncated}.*truncated"):
        run.predict(audio_paths=str(truncated))
    with pytest.raises(FileNotFoundError, match="nowhere.wav"):
        run.predict(audio_paths=str(tmp_path / "nowhere.wav"))


def test_predict_inputs_shares_one_preprocessing(run, run_two, data):
    test = _split(data, "test")
    inputs = run.inputs(test.texts, test.image_paths, test.audio_paths)
    np.testing.assert_array_equal(run.predict_inputs(inputs),
                                  run.predict(test.texts, test.image_paths, test.audio_paths))
    with pytest.raises(ValueError, match=r"exactly \['text', 'image', 'mask'\]"):
        run_two.predict_inputs(inputs)
    with pytest.raises(ValueError, match="different numbers of samples"):
        run.predict_inputs({**inputs, "mask": inputs["mask"][:2]})
    with pytest.raises(ValueError, match="must have shape"):
        run.predict_inputs({**inputs, "mask": inputs["mask"][:, :2]})
    with pytest.raises(TypeError, match="inputs must be a dict"):
        run.predict_inputs([1, 2])


def test_two_modality_run_uses_its_ceiling(run_two, data):
    info = json.loads((data / "dataset.json").read_text())
    result = run_two.evaluate(split="val")
    assert result["ceiling"] == pytest.approx(info["ceilings"]["text+image"])
    assert run_two.config["knobs"]["fusion"] == "gated" and run_two.config["class_weights"] is None
    # Missing-modality subset: only the run's own modalities count.
    val = _split(data, "val")
    missing = (~val.masks[:, :2].all(axis=1)).sum()
    assert result["subsets"].get("missing_modality", {"n": 0})["n"] == missing


def test_evaluate_fields_match_the_run(run, data):
    metrics = json.loads((run.path / "metrics.json").read_text())
    result = load_run(run.path).evaluate()  # the dataset recorded in config.json
    assert result["split"] == "test" and result["n"] == len(_split(data, "test"))
    assert result["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert result["f1"] == pytest.approx(metrics["test"]["f1"])
    assert result["subsets"] == metrics["test"]["subsets"]
    assert result["ceiling"] == pytest.approx(metrics["ceiling"])
    whole = run.evaluate(load_manifest(data), split="all")
    assert whole["n"] == 60
    with pytest.raises(ValueError, match="split must be one of"):
        run.evaluate(split="dev")


def test_load_run_errors_name_the_folder_and_the_problem(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy)
    config = json.loads((copy / "config.json").read_text())
    config["mmtutor_version"] = "0.0.1"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match=rf"run folder '{copy}' was written by mmtutor 0.0.1, but this is mmtutor"):
        load_run(copy)

    config["mmtutor_version"] = mmtutor.__version__
    (copy / "config.json").write_text(json.dumps(config))
    (copy / "model.keras").unlink()
    with pytest.raises(RunError, match=rf"'{copy}' lacks model.keras"):
        load_run(copy)

    (copy / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(RunError, match="model.keras is not a complete Keras file"):
        load_run(copy)

    (copy / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="config.json is not readable JSON"):
        load_run(copy)
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "absent")
    assert issubclass(RunError, ValueError)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fusion": "sum"}, "fusion must be one of"),
        ({"modalities": ["text", "smell"]}, "modalities must be distinct names from"),
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"lr": -1.0}, r"lr must be a number in \(0.0, 1.0\], got -1.0"),
        ({"class_weight": "even"}, "class_weight must be 'balanced', None or a dict"),
        ({"fusion": "attention", "modalities": ["text"]}, "needs at least two modalities"),
    ],
)
def test_train_run_checks_arguments(data, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_run(data, tmp_path / "run", **{"epochs": 1, **kwargs})
    assert not (tmp_path / "run").exists()


def test_train_run_refuses_to_overwrite_by_default(run, data, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        train_run(data, run.path, epochs=1)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no mmtutor run"):
        train_run(data, other, epochs=1, overwrite=True)
    assert (other / "mine.txt").read_text() == "keep me"


def test_overwrite_replaces_only_a_run_never_a_project_or_the_data(run, data, tmp_path):
    from mmtutor.runs.folder import _check_out

    # A project folder that happens to hold a config.json of its own.
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "config.json").write_text('{"lr": 0.1}')
    (project / "src" / "main.py").write_text("print('hi')")
    (project / "thesis.tex").write_text("\\documentclass{article}")
    with pytest.raises(FileExistsError, match="holds no mmtutor run"):
        train_run(data, project, epochs=1, overwrite=True)
    assert (project / "thesis.tex").exists() and (project / "src" / "main.py").exists()

    # A run folder to which the user added files: refused, and the refusal names them.
    crowded = tmp_path / "crowded"
    shutil.copytree(run.path, crowded)
    (crowded / "notes.md").write_text("my notes")
    with pytest.raises(FileExistsError, match="notes.md, which mmtutor did not write"):
        _check_out(crowded, overwrite=True)
    assert (crowded / "notes.md").exists()
    assert _check_out(run.path, overwrite=True) == run.path.absolute()  # a plain run may be replaced

    # The dataset being trained from lies inside --out: refused before anything is touched.
    ds = load_manifest(data)
    with pytest.raises(ValueError, match="holds the dataset being trained from"):
        train_run(ds, ds.root.parent, epochs=1, overwrite=True)
    with pytest.raises(ValueError, match="holds the dataset being trained from"):
        train_run(ds, ds.root, epochs=1, overwrite=True)
    assert (ds.root / "manifest.csv").is_file()
    with pytest.raises(ValueError, match="out must be a folder path"):
        train_run(ds, "", epochs=1)


def test_a_killed_runs_partial_folder_is_removed_by_the_next_run(tmp_path):
    from mmtutor._fs import pid_alive, remove_stale

    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    assert not pid_alive(dead) and pid_alive(os.getpid())
    (tmp_path / f".run.partial-{dead}").mkdir()
    (tmp_path / f".run.partial-{os.getpid()}").mkdir()  # a live writer's: kept
    (tmp_path / "run").mkdir()
    assert remove_stale(tmp_path, r"\.run\.partial-(?P<pid>\d+)") == [f".run.partial-{dead}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".run.partial-{os.getpid()}", "run"]


def test_same_seed_gives_the_same_run(run, data, tmp_path):
    again = train_run(data, tmp_path / "again", fusion="concat", epochs=2, seed=0, **TINY)
    assert (again.path / "predictions.csv").read_text() == (run.path / "predictions.csv").read_text()
    assert (again.path / "history.csv").read_text() == (run.path / "history.csv").read_text()


def test_encoders_are_pretrained_on_each_modality_annotation_then_frozen(run):
    metrics = json.loads((run.path / "metrics.json").read_text())
    pretrained = metrics["pretrained"]
    assert set(pretrained) == {"text", "image", "audio"}
    assert pretrained["text"]["column"] == "literal" and pretrained["text"]["classes"] == ["0", "1"]
    assert pretrained["image"]["classes"] == ["frown", "smile", "smirk"]
    assert pretrained["audio"]["classes"] == ["negative", "positive", "sarcastic"]
    for report in pretrained.values():
        assert report["epochs"] == 1 and 0.0 <= report["val_accuracy"] <= 1.0
    config = json.loads((run.path / "config.json").read_text())
    assert config["knobs"]["pretrain"] == "auto"
    # Frozen: the encoders' weights are not trainable in the saved model; the fusion head is.
    for name in ("text_encoder", "image_encoder", "audio_encoder"):
        assert not run.model.get_layer(name).trainable_weights, name
    assert run.model.trainable_weights


def test_without_annotations_every_encoder_trains_on_the_label(data, tmp_path):
    """A user's manifest without per-modality annotation columns trains end to end."""
    import pandas as pd

    copy = tmp_path / "plain"
    shutil.copytree(data, copy)
    frame = pd.read_csv(copy / "manifest.csv", keep_default_na=False)
    frame.drop(columns=["literal", "image_shows", "audio_shows"]).to_csv(copy / "manifest.csv", index=False)
    run = train_run(copy, tmp_path / "run", fusion="concat", epochs=1, seed=0, **TINY)
    assert json.loads((run.path / "metrics.json").read_text())["pretrained"] == {}
    assert run.model.get_layer("text_encoder").trainable_weights


def test_pretrain_none_skips_pretraining(data, tmp_path):
    run = train_run(data, tmp_path / "run", fusion="concat", epochs=1, seed=0, pretrain=None, **TINY)
    assert json.loads((run.path / "metrics.json").read_text())["pretrained"] == {}


@pytest.mark.parametrize("kwargs, message", [
    ({"pretrain": "yes"}, "pretrain must be"),
    ({"pretrain_epochs": 0}, "pretrain_epochs"),
    ({"pretrain_epochs": {"smell": 3}}, "unknown modalities"),
])
def test_bad_pretrain_arguments(data, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_run(data, tmp_path / "run", epochs=1, **kwargs)


def test_reuse_loads_a_matching_run_and_retrains_a_different_one(data, tmp_path):
    out = tmp_path / "run"
    first = train_run(data, out, fusion="concat", epochs=1, seed=0, reuse=True, **TINY)
    stamp = (out / "model.keras").stat().st_mtime_ns
    again = train_run(data, out, fusion="concat", epochs=1, seed=0, reuse=True, **TINY)
    assert (out / "model.keras").stat().st_mtime_ns == stamp  # loaded, not trained again
    assert again.config == first.config
    # Another knob: trained again, and the folder now holds the new run.
    other = train_run(data, out, fusion="concat", epochs=1, seed=1, reuse=True, **TINY)
    assert other.config["knobs"]["seed"] == 1
    assert json.loads((out / "config.json").read_text())["knobs"]["seed"] == 1


def test_reuse_ignores_a_run_from_another_version(data, tmp_path):
    out = tmp_path / "run"
    train_run(data, out, fusion="concat", epochs=1, seed=0, **TINY)
    config = json.loads((out / "config.json").read_text())
    config["mmtutor_version"] = "0.0.1"
    (out / "config.json").write_text(json.dumps(config))
    run = train_run(data, out, fusion="concat", epochs=1, seed=0, reuse=True, **TINY)
    assert run.config["mmtutor_version"] == mmtutor.__version__


def test_reuse_never_replaces_a_folder_that_is_not_a_run(data, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(FileExistsError):
        train_run(data, out, fusion="concat", epochs=1, seed=0, reuse=True, **TINY)
    assert (out / "notes.txt").read_text() == "my notes"


# ------------------------------------------------------------- one featurizer for train and serve


@pytest.fixture(scope="module")
def gappy(tmp_path_factory):
    """A dataset where half the samples miss one modality, and a run trained on it."""
    root = tmp_path_factory.mktemp("gappy") / "reviews"
    make_spoken_reviews(root, n=48, seed=3, progress=False, missing_rate=0.5)
    out = tmp_path_factory.mktemp("runs") / "gappy"
    return root, train_run(root, out, fusion="concat", epochs=1, seed=0, **TINY)


def test_predicting_from_raw_files_reproduces_training_inputs_with_missing_modalities(gappy):
    root, run = gappy
    ds = load_manifest(root)
    assert (~ds.masks).any(axis=0).all(), "the fixture should miss every modality somewhere"
    stored = run.predictions.set_index("id")["prob"]
    texts = [t if m else "" for t, m in zip(ds.texts, ds.masks[:, 0])]
    prob = load_run(run.path).predict(texts=texts, image_paths=ds.image_paths, audio_paths=ds.audio_paths)
    missing = ~ds.masks.all(axis=1)
    np.testing.assert_allclose(prob[missing, 1], stored.loc[ds.frame["id"][missing]].to_numpy(), atol=1e-5)
    np.testing.assert_allclose(prob[:, 1], stored.loc[ds.frame["id"]].to_numpy(), atol=1e-5)


def test_a_run_carries_its_settings_metrics_history_and_predictions(run):
    from mmtutor.runs import RunConfig

    loaded = load_run(run.path)
    for r in (run, loaded):
        assert isinstance(r.settings, RunConfig) and r.settings.fusion == "concat" and r.settings.seed == 0
        assert r.metrics == json.loads((run.path / "metrics.json").read_text())
        assert list(r.history["epoch"]) == list(range(1, r.metrics["epochs_run"] + 1))
        assert set(r.predictions.columns) == {"id", "split", "label", "prob", "pred"}
        # ids stay strings ("sr00001"), never parsed as numbers (pandas 2: object, pandas 3: str)
        assert pd.api.types.is_string_dtype(r.predictions["id"])
        assert all(isinstance(i, str) for i in r.predictions["id"])
    assert loaded.settings == run.settings


def test_train_run_takes_a_config_and_refuses_unknown_settings(data, tmp_path):
    from mmtutor.runs import RunConfig

    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        train_run(data, tmp_path / "run", epoch=1)
    with pytest.raises(TypeError, match="config must be a mmtutor.runs.RunConfig"):
        train_run(data, tmp_path / "run", {"epochs": 1})
    run = train_run(data, tmp_path / "run", RunConfig(fusion="late", epochs=1, seed=2, **TINY), pretrain=None)
    assert run.settings.fusion == "late" and run.settings.pretrain is None
    assert json.loads((run.path / "config.json").read_text())["knobs"]["seed"] == 2


# ------------------------------------------------------------- a hand-edited config.json is checked


def _edit_config(run, tmp_path, edit):
    copy = tmp_path / "edited"
    shutil.copytree(run.path, copy)
    config = json.loads((copy / "config.json").read_text())
    edit(config)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["preprocessing"].pop("audio_norm"), r"'preprocessing' must hold"),
    (lambda c: c.update(classes=[]), "'classes' must be a list of at least two distinct names"),
    (lambda c: c.update(classes="ab"), "'classes' must be a list of at least two distinct names"),
    (lambda c: c["preprocessing"].update(image_size=[100000, 100000]), "implausibly large"),
    (lambda c: c.update(data=None), "'data' must be a dict"),
    (lambda c: c["preprocessing"]["audio_norm"].update(mean=[0.0]), "one per mel band"),
    (lambda c: c["knobs"].update(epochs=0), "epochs must be an integer >= 1"),
    (lambda c: c["knobs"].update(colour="red"), r"unknown run settings \['colour'\]"),
])
def test_load_run_checks_a_hand_edited_config(run, tmp_path, edit, message):
    with pytest.raises(RunError, match=message):
        load_run(_edit_config(run, tmp_path, edit))


def test_load_run_names_a_truncated_model(run, tmp_path):
    copy = tmp_path / "truncated"
    shutil.copytree(run.path, copy)
    blob = (copy / "model.keras").read_bytes()
    (copy / "model.keras").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(RunError, match=r"model.keras is not a complete Keras file \(truncated or corrupt"):
        load_run(copy)
