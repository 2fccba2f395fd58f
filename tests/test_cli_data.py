"""Tests of the `mmtutor data make` and `mmtutor data describe` commands."""

import hashlib
import json

import pytest

from mmtutor.cli import main


def _hashes(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "A"
    rc = main(["data", "make", "--out", str(out), "--n", "12", "--seed", "1", "--sarcasm-rate", "0.3",
               "--missing-rate", "0.2", "--no-progress"])
    assert rc == 0
    return out


def test_make_writes_a_dataset_with_the_given_knobs(made):
    info = json.loads((made / "dataset.json").read_text())
    assert info["n"] == 12 and info["seed"] == 1
    assert info["knobs"]["sarcasm_rate"] == 0.3 and info["knobs"]["missing_rate"] == 0.2
    assert (made / "manifest.csv").is_file()


def test_make_twice_gives_identical_files(made, tmp_path, capsys):
    rc = main(["data", "make", "--out", str(tmp_path / "B"), "--n", "12", "--seed", "1", "--sarcasm-rate", "0.3",
               "--missing-rate", "0.2", "--no-progress"])
    assert rc == 0
    assert _hashes(made) == _hashes(tmp_path / "B")
    out = capsys.readouterr().out
    assert f"wrote 12 samples to {tmp_path / 'B'}" in out and "Bayes ceilings" in out


def test_make_refuses_an_existing_dataset_unless_told(made, tmp_path, capsys):
    target = tmp_path / "C"
    assert main(["data", "make", "--out", str(target), "--n", "10", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["data", "make", "--out", str(target), "--n", "10", "--seed", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmtutor: error:") and "--overwrite" in err and "Traceback" not in err
    assert main(["data", "make", "--out", str(target), "--n", "10", "--seed", "2", "--no-progress",
                 "--overwrite"]) == 0
    assert json.loads((target / "dataset.json").read_text())["seed"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "3"], "n must be an integer >= 10, got 3"),
        (["--sarcasm-rate", "0.9"], "sarcasm_rate must be a number in [0.0, 0.5], got 0.9"),
        (["--missing-rate", "-0.1"], "missing_rate must be a number in [0.0, 1.0], got -0.1"),
        (["--seed", "-4"], "seed must be a non-negative integer, got -4"),
    ],
)
def test_make_reports_bad_values(tmp_path, capsys, args, message):
    assert main(["data", "make", "--out", str(tmp_path / "D"), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_describe_prints_counts_and_ceilings(made, capsys):
    assert main(["data", "describe", str(made)]) == 0
    out = capsys.readouterr().out
    assert "samples        12" in out
    for word in ("train", "val", "test", "missing", "sarcastic", "text+image", "content hash"):
        assert word in out
    assert main(["data", "describe", str(made), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 12 and sum(s["n"] for s in summary["splits"].values()) == 12
    info = json.loads((made / "dataset.json").read_text())
    assert summary["ceilings"] == info["ceilings"]
    assert summary["sarcastic"] == sum(int(x) for x in _column(made, "sarcastic"))
    blanks = {m: sum(1 for x in _column(made, m) if x == "") for m in ("text", "image", "audio")}
    assert summary["missing"] == blanks


def _column(folder, name):
    import pandas as pd

    return pd.read_csv(folder / "manifest.csv", keep_default_na=False)[name].tolist()


def test_describe_names_a_broken_file_and_can_skip_it(made, tmp_path, capsys):
    import shutil

    broken = tmp_path / "E"
    shutil.copytree(made, broken)
    wav = sorted((broken / "audio").iterdir())[0]
    wav.write_bytes(wav.read_bytes()[:5000])
    assert main(["data", "describe", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "truncated WAV" in err and str(wav) in err and wav.stem in err and "Traceback" not in err
    assert main(["data", "describe", str(broken), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "samples        11" in out and f"skipped {wav.stem}: " in out


def test_describe_and_bare_data_errors(tmp_path, capsys):
    assert main(["data", "describe", str(tmp_path)]) == 2
    assert "no manifest.csv in folder" in capsys.readouterr().err
    assert main(["data"]) == 2
    assert "needs an action" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse's own usage error, also exit code 2
        main(["data", "make", "--out", str(tmp_path), "--n", "many"])
    assert exc.value.code == 2
