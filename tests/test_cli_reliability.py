"""The mmtutor command on bad places and interrupts: a clear error or a clean stop, never a
traceback and never lost data."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmtutor.cli import main
from mmtutor.data import make_spoken_reviews

UNWRITABLE = Path("/proc/mmtutor-cannot-write-here")  # not even root can create folders in /proc
pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmtutor: error:") and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    root = tmp_path_factory.mktemp("rel") / "reviews"
    make_spoken_reviews(root, n=20, seed=0, progress=False, image_size=16, audio_seconds=1.0)
    return root


def test_unwritable_places_give_an_error_that_names_them(reviews, tmp_path, capsys, monkeypatch):
    err = _error(capsys, ["data", "make", "--out", str(UNWRITABLE), "--n", "10", "--no-progress"])
    assert str(UNWRITABLE) in err
    err = _error(capsys, ["train", "--data", str(reviews), "--out", str(UNWRITABLE / "run"), "--epochs", "1",
                          "--no-progress"])
    assert str(UNWRITABLE) in err
    a_file = tmp_path / "cache.txt"
    a_file.write_text("not a folder")
    err = _error(capsys, ["train", "--data", str(reviews), "--out", str(tmp_path / "run"), "--epochs", "1",
                          "--cache-dir", str(a_file), "--no-progress"])
    assert str(a_file) in err and "not a folder" in err
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("MMTUTOR_HOME", str(UNWRITABLE))
    err = _error(capsys, ["train", "--out", str(tmp_path / "run2"), "--epochs", "1", "--no-progress"])
    assert str(UNWRITABLE) in err


def test_an_empty_out_is_refused(reviews, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "out_dir is empty" in _error(capsys, ["data", "make", "--out", "", "--n", "10", "--no-progress"])
    assert "out must be a folder path" in _error(
        capsys, ["train", "--data", str(reviews), "--out", "", "--epochs", "1", "--no-progress"])
    assert list(tmp_path.iterdir()) == []


def test_data_commands_do_not_import_tensorflow(reviews):
    # The command imports TensorFlow only where it needs it: `data` starts at once.
    code = ("import sys; sys.argv = ['mmtutor', 'data', 'describe', sys.argv[1]]; import mmtutor.cli; "
            "rc = mmtutor.cli.main(sys.argv[1:]); print('tensorflow' in sys.modules, rc)")
    out = subprocess.run([sys.executable, "-c", code, str(reviews)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False 0"


def _interrupt(argv, after, env=None):
    proc = subprocess.Popen([sys.executable, "-m", "mmtutor", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    # 130 is what main() returns; -2 (ended by SIGINT, which a shell also shows as 130) when
    # Python re-raises an interrupt it had to drop inside a C callback while exiting.
    return (130 if proc.returncode == -signal.SIGINT else proc.returncode), err


def test_ctrl_c_stops_data_make_cleanly_and_keeps_the_old_dataset(reviews, tmp_path):
    target = tmp_path / "d"
    make_spoken_reviews(target, n=10, seed=0, progress=False, image_size=16, audio_seconds=1.0)
    before = (target / "dataset.json").read_text()
    rc, err = _interrupt(["data", "make", "--out", str(target), "--n", "400", "--overwrite", "--no-progress"], 3.0)
    assert rc == 130 and "mmtutor: interrupted" in err and "Traceback" not in err, err
    assert (target / "dataset.json").read_text() == before
    assert json.loads(before)["n"] == 10 and len((target / "manifest.csv").read_text().splitlines()) == 11
    assert not [p for p in target.iterdir() if p.name.startswith(".tmp")]


def test_ctrl_c_while_tensorflow_loads_stops_train(reviews, tmp_path):
    rc, err = _interrupt(["train", "--data", str(reviews), "--out", str(tmp_path / "run"), "--epochs", "1",
                          "--no-progress"], 1.0)
    assert rc == 130 and "mmtutor: interrupted" in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
