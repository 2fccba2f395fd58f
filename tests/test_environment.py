"""The pinned environment: pyproject.toml and environment.yml must list the same versions."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"])
    for extra in ("book", "dev", "jax"):
        pins += project["optional-dependencies"][extra]
    return pins


def _conda_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    return [p for p in pip_sections[0] if not p.startswith("-e")]


def test_every_dependency_is_pinned_exactly():
    for pin in _pyproject_pins():
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[a-z0-9,\-]+\])?==[0-9][0-9A-Za-z.\-]*", pin), (
            f"pyproject.toml: {pin!r} is not an exact pin (name==version)"
        )


def test_environment_yml_matches_pyproject():
    py, conda = sorted(_pyproject_pins()), sorted(_conda_pins())
    only_py = sorted(set(py) - set(conda))
    only_conda = sorted(set(conda) - set(py))
    assert not only_py and not only_conda, (
        f"pins drifted apart: only in pyproject.toml {only_py}, only in environment.yml {only_conda}"
    )
    assert len(conda) == len(set(conda)), "environment.yml lists a package twice"


def test_environment_yml_installs_the_package_and_python_version():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e ." in pip


def test_installed_versions_are_the_pinned_ones():
    from importlib import metadata

    for pin in _pyproject_pins():
        name, version = re.sub(r"\[.*\]", "", pin).split("==")
        assert metadata.version(name) == version, f"{name}: pinned {version}, installed {metadata.version(name)}"
