import json
import subprocess
import sys

from mmtutor import __version__
from mmtutor.cli import main


def test_info_prints_report(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "keras backend" in out and "tensorflow" in out and "CPU:0" in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["packages"]["mmtutor"] == __version__


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "info" in capsys.readouterr().out


def test_console_script_installed():
    exe = __import__("pathlib").Path(sys.executable).with_name("mmtutor")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"mmtutor {__version__}"
