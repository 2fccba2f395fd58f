"""The book's notebooks as stored: complete outputs, no errors, no stderr noise, in the toc.

`make test` executes every notebook under nbval and then renders the site from the stored
outputs, so the stored outputs must be those of one full, clean, top-to-bottom run.
"""

import re
from pathlib import Path

import nbformat
import pytest
import yaml

import mmtutor

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts)


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under book/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_stored_executed_and_clean(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code, f"{path.name} has no code"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: stored outputs are not from one top-to-bottom run (execution counts {counts}); "
        "run scripts/run_notebook.py on it"
    )
    for i, cell in enumerate(code):
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name}, code cell {i + 1}: stored error output"
            if out.output_type == "stream":
                assert out.name != "stderr", f"{path.name}, code cell {i + 1}: stderr in stored outputs: {out.text[:300]!r}"
                # Library log lines (TensorFlow logs to stdout in a kernel) are noise too.
                for noise in ("WARNING:tensorflow", "WARNING:absl", "IProgress not found"):
                    assert noise not in out.text, f"{path.name}, code cell {i + 1}: {noise!r} in stored outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_glue_keys_are_unique(path):
    """A key glued twice makes the site build warn (and fail under -W): which value is shown?"""
    nb = nbformat.read(path, as_version=4)
    seen = {}
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            assert name not in seen, (
                f"{path.name}: glue key {name!r} is glued in code cell {seen[name] + 1} and again in code cell {i + 1}"
            )
            seen[name] = i


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_checks_package_version_first(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert f'mmtutor.check_version("{mmtutor.__version__}")' in first.source, (
        f"{path.name}: the first code cell must call mmtutor.check_version(\"{mmtutor.__version__}\")"
    )
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# "), f"{path.name}: first cell must be the title"
    assert re.search(r"\*\*Runtime:\*\*", title.source), f"{path.name}: the title cell must state the runtime"


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    toc = set(_toc_files())
    for path in NOTEBOOKS:
        rel = str(path.relative_to(ROOT).with_suffix(""))
        assert rel in toc, f"{rel} is not listed in _toc.yml"
    for entry in toc:
        matches = [ROOT / f"{entry}{ext}" for ext in (".ipynb", ".md")]
        assert any(m.exists() for m in matches), f"_toc.yml lists {entry}, which does not exist"
