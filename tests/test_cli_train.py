"""Tests of the `mmtutor train`, `mmtutor evaluate` and `mmtutor predict` commands."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mmtutor
from mmtutor.cli import main
from mmtutor.data import load_manifest, make_spoken_reviews


@pytest.fixture(scope="module")
def data(small_reviews):
    return small_reviews  # shared, read-only (tests/conftest.py)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_runs") / "run"
    cache = tmp_path_factory.mktemp("cli_cache")
    rc = main(["train", "--data", str(data), "--fusion", "lowrank", "--out", str(out), "--epochs", "1",
               "--seed", "3", "--modalities", "text,audio", "--cache-dir", str(cache), "--no-progress"])
    assert rc == 0
    return out


def test_train_writes_a_run_with_the_options(trained, capsys):
    config = json.loads((trained / "config.json").read_text())
    assert config["modalities"] == ["text", "audio"]
    assert config["knobs"]["fusion"] == "lowrank" and config["knobs"]["seed"] == 3
    assert config["knobs"]["epochs"] == 1
    assert (trained / "model.keras").is_file() and (trained / "predictions.csv").is_file()


def test_evaluate_json(trained, data, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--run", str(trained), "--json", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out)
    test = load_manifest(data).subset("test")
    assert result["n"] == len(test) and result["split"] == "test"
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["f1"] <= 1
    info = json.loads((data / "dataset.json").read_text())
    assert result["ceiling"] == pytest.approx(info["ceilings"]["text+audio"])
    sarcastic = int(test.frame["sarcastic"].astype(int).sum())
    if sarcastic:
        assert result["subsets"]["sarcastic"]["n"] == sarcastic
        assert set(result["subsets"]["sarcastic"]) == {"accuracy", "f1", "n"}
    metrics = json.loads((trained / "metrics.json").read_text())
    assert result["accuracy"] == pytest.approx(metrics["test"]["accuracy"])

    assert main(["evaluate", "--run", str(trained), "--data", str(data), "--split", "val", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "val" in out and "accuracy" in out and "Bayes ceiling" in out


def test_predict_prints_label_and_probability(trained, data, capsys):
    wav = next(p for p in load_manifest(data).audio_paths if p)
    capsys.readouterr()
    assert main(["predict", "--run", str(trained), "--text", "The soup was money well spent.",
                 "--audio", wav, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["label"] in ("negative", "positive")
    assert result["probability"] == pytest.approx(max(result["probabilities"].values()))
    assert result["used"] == ["text", "audio"] and result["masked"] == []
    assert main(["predict", "--run", str(trained), "--text", "Awful service."]) == 0
    out = capsys.readouterr().out
    assert "probability" in out and "masked: audio" in out


def _error(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmtutor: error:") and "Traceback" not in err
    return err


def test_clear_errors(trained, data, tmp_path, capsys):
    bad = tmp_path / "cut.wav"
    wav = next(p for p in load_manifest(data).audio_paths if p)
    bad.write_bytes(Path(wav).read_bytes()[:1000])
    assert str(bad) in _error(capsys, ["predict", "--run", str(trained), "--audio", str(bad)])
    image = next(p for p in load_manifest(data).image_paths if p)
    assert "cannot use image_paths" in _error(capsys, ["predict", "--run", str(trained), "--image", image])
    assert "at least one of --text" in _error(capsys, ["predict", "--run", str(trained)])
    assert "does not exist" in _error(capsys, ["evaluate", "--run", str(tmp_path / "none")])

    old = tmp_path / "old"
    shutil.copytree(trained, old)
    config = json.loads((old / "config.json").read_text())
    config["mmtutor_version"] = "9.9.9"
    (old / "config.json").write_text(json.dumps(config))
    err = _error(capsys, ["evaluate", "--run", str(old), "--json"])
    assert str(old) in err and "9.9.9" in err and mmtutor.__version__ in err

    assert "is not empty" in _error(capsys, ["train", "--data", str(data), "--out", str(trained), "--epochs", "1",
                                             "--no-progress"])
    assert "epochs must be an integer >= 1" in _error(
        capsys, ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "0", "--no-progress"])
    assert "no manifest.csv" in _error(
        capsys, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--no-progress"])
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--modalities", "text,smell"])
    assert exc.value.code == 2


def test_console_script_predicts_in_a_subprocess(trained, data):
    script = shutil.which("mmtutor", path=os.path.dirname(sys.executable)) or shutil.which("mmtutor")
    assert script, "the mmtutor console script is not installed (pip install -e .)"
    image = next(p for p in load_manifest(data).image_paths if p)
    ok = subprocess.run([script, "predict", "--run", str(trained), "--text", "What a lovely hotel."],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "probability" in ok.stdout and ok.stderr == ""
    bad = subprocess.run([script, "predict", "--run", str(trained), "--image", image],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "mmtutor: error:" in bad.stderr and "Traceback" not in bad.stderr


def test_train_pretrain_flags(data, tmp_path):
    out = tmp_path / "plain"
    rc = main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--modalities", "text",
               "--no-pretrain", "--no-cache", "--no-progress"])
    assert rc == 0
    assert json.loads((out / "metrics.json").read_text())["pretrained"] == {}
    out = tmp_path / "short"
    rc = main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--modalities", "text",
               "--pretrain-epochs", "1", "--no-cache", "--no-progress"])
    assert rc == 0
    assert json.loads((out / "metrics.json").read_text())["pretrained"]["text"]["epochs"] == 1


def test_train_rejects_zero_pretrain_epochs(data, tmp_path, capsys):
    message = _error(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1",
                              "--pretrain-epochs", "0", "--no-progress"])
    assert "pretrain_epochs" in message
