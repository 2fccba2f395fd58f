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


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "mmtutor", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "info" in out.stdout and "train" in out.stdout


def test_a_closed_pipe_is_not_an_error_trace():
    import subprocess
    import sys

    cli = subprocess.Popen([sys.executable, "-m", "mmtutor", "info"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cli.stdout.close()  # the reader goes away before the report is written
    _, err = cli.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
