"""No hand-typed computed figure in the book's prose.

A number that a run computes reaches the text through myst-nb's glue (``{glue:text}`key```),
so that the sentence and the output printed above it never disagree on another machine. The
only decimal numbers that may be typed are a page's *design constants* -- the generator's knobs,
exact Bayes ceilings, results of formulas -- listed in the notebook's metadata
(``"mmtutor": {"design_constants": ["0.95", ...]}``) and asserted equal to the computed value
in one of its cells. Markdown pages (not executed) list theirs in ``PAGE_CONSTANTS`` below.

This test scans every markdown cell (and every ``.md`` page of the book) and fails on any other
decimal number. Code (fenced blocks and inline ``code``) is not prose and is skipped; a number
inside a directive such as an exercise or a solution is prose and is scanned.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb")
                   if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts)
PAGES = sorted(p for p in (ROOT / "book").rglob("*.md") if "_build" not in p.parts)

# Decimal numbers typed in the markdown pages, each a fact that no run of the book computes.
PAGE_CONSTANTS = {
    "book/intro.md": {"4.0"},  # the CC BY 4.0 licence
    "book/appendix/setup.md": {"3.11", "3.12", "2.21", "3.15", "0.11", "1.0", "0.10"},
    "book/appendix/references.md": set(),
    "book/appendix/faq.md": {"0.9"},  # chapter 9a's operating point, a design constant there
    # chance for two classes; the spoken reviews' default cue reliabilities (checked below)
    "book/appendix/glossary.md": {"0.5", "0.95", "0.85", "0.80"},
    "book/appendix/resources.md": {"2.3"},  # Keras 2.3, the last release with Theano
}

# {glue}`key`, {glue:text}`key:.3f`, {glue:md}`path::key` ...: the glued value, not typed.
_GLUE = re.compile(r"\{glue(?::\w+)?\}`[^`]*`")
_FENCE_LINE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*(.*?)[ \t]*$")
_INLINE_CODE = re.compile(r"(`+)(?!\{)[^`]+?\1")
_ROLE_TARGET = re.compile(r"\{(?:eq|ref|numref|doc|cite(?::\w+)?|download|label|term)\}`[^`]*`")
_LINK_TARGET = re.compile(r"\]\([^)]*\)|https?://\S+|:label:.*|:name:.*|:class:.*")
# A decimal number: digits, a point, digits -- but not part of a version like 3.15.1 or a name.
_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w]|\.\d)")


def _strip_code_blocks(markdown):
    """Drop the lines of fenced code blocks; keep directives' bodies (exercises, boxes: prose).

    A fence line opens a block unless it closes the innermost open one (same character, at
    least as long, nothing after it). A block opened with ``{name}`` is a directive, whose body
    is prose; any other block is code.
    """
    kept, stack = [], []  # stack of (fence, is_code)
    for line in markdown.split("\n"):
        m = _FENCE_LINE.match(line)
        in_code = any(code for _, code in stack)
        if m:
            fence, info = m.groups()
            top = stack[-1][0] if stack else None
            if top and not info and fence[0] == top[0] and len(fence) >= len(top):
                stack.pop()
                continue
            if not in_code:  # inside code, a fence line with an info string is just code
                stack.append((fence, not info.startswith("{")))
                continue
        if not in_code:
            kept.append(line)
    return "\n".join(kept)


def typed_numbers(markdown, allowed=()):
    """The decimal numbers typed in ``markdown`` that are neither glued nor in ``allowed``."""
    text = _strip_code_blocks(_GLUE.sub(" ", markdown))
    text = _ROLE_TARGET.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = _LINK_TARGET.sub(" ", text)
    allowed = set(allowed)
    return [m.group() for m in _DECIMAL.finditer(text) if m.group() not in allowed]


def _constants(nb, path):
    constants = nb.metadata.get("mmtutor", {}).get("design_constants", [])
    assert isinstance(constants, list) and all(isinstance(c, str) for c in constants), (
        f"{path.name}: metadata mmtutor.design_constants must be a list of strings, got {constants!r}"
    )
    return constants


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_prose_types_no_computed_number(path):
    nb = nbformat.read(path, as_version=4)
    allowed = _constants(nb, path)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for number in typed_numbers(cell.source, allowed):
                problems.append(f"cell {i}: {number}")
    assert not problems, (
        f"{path.relative_to(ROOT)}: decimal numbers typed in the prose that are neither glued nor "
        f"design constants of the page: {problems}. Glue each from the run "
        "(mmtutor.utils.glue and {glue:text}`key`), or, if it is fixed by design, add it to the "
        "notebook's metadata mmtutor.design_constants and assert it in a cell."
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_design_constants_are_used(path):
    """A listed constant that the prose no longer types is stale: the list stays short."""
    nb = nbformat.read(path, as_version=4)
    typed = {n for c in nb.cells if c.cell_type == "markdown" for n in typed_numbers(c.source)}
    stale = sorted(set(_constants(nb, path)) - typed)
    assert not stale, f"{path.relative_to(ROOT)}: design constants no longer typed in the prose: {stale}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_page_types_no_computed_number(path):
    rel = str(path.relative_to(ROOT))
    found = typed_numbers(path.read_text(), PAGE_CONSTANTS.get(rel, set()))
    assert not found, (
        f"{rel}: decimal numbers typed in a markdown page: {found}. A page that is not executed "
        "cannot compute them: glue them from the notebook that does ({glue:text}`path::key`), or "
        "add a fixed fact to PAGE_CONSTANTS in tests/test_prose_numbers.py."
    )


# ---------------------------------------------------------------- the checker itself


def test_a_hand_typed_figure_is_caught():
    assert typed_numbers("Concatenation is right on 0.828 of the sarcastic reviews.") == ["0.828"]
    assert typed_numbers("found the model 1.7 points below the ceiling") == ["1.7"]
    # in an exercise's solution too: a directive's body is prose
    assert typed_numbers("```{solution} ch1-ex1\n:class: dropdown\n\nIt reaches 0.917.\n```") == ["0.917"]
    assert typed_numbers("$\\Phi(1.385) \\approx 0.917$") == ["1.385", "0.917"]
    # between two boxes, and inside a box that holds a code block, prose is still scanned
    two_boxes = ("````{admonition} A\n```python\nx = 0.5\n```\nwhich gives 0.61\n````\n\nthen 0.72\n\n"
                 "````{admonition} B\nand 0.83\n````")
    assert typed_numbers(two_boxes) == ["0.61", "0.72", "0.83"]
    assert typed_numbers(":::{solution} ex\nIt reaches 0.917.\n:::") == ["0.917"]


def test_glued_code_and_allowed_numbers_pass():
    assert typed_numbers("Concatenation scores {glue:text}`ch7_acc:.3f` on the test set.") == []
    assert typed_numbers("{glue:}`ch6_table` and {glue:md}`other.ipynb::key`") == []
    assert typed_numbers("Call `bayes_ceilings(sarcasm_rate=0.0)` first.") == []
    assert typed_numbers("```python\nmodel.fit(x, lr=0.001)\n```\nthen prose") == []
    assert typed_numbers("With reliability $r = 0.95$.", allowed=["0.95"]) == []
    assert typed_numbers("Keras 3.15.1 and Python 3.11", allowed=["3.11"]) == []
    assert typed_numbers("see equation {eq}`ch3-eq1.2` and [the docs](https://x.org/v1.2)") == []


def test_page_constants_are_the_package_constants():
    """The typed design constants of the appendix pages are the package's."""
    from mmtutor.data.spoken_reviews import DEFAULT_KNOBS

    assert dict(DEFAULT_KNOBS["reliability"]) == {"text": 0.95, "image": 0.85, "audio": 0.80}
    nb = nbformat.read(ROOT / "book/beyond/09a_medical.ipynb", as_version=4)
    assert any("SPECIFICITY = 0.9 " in c.source for c in nb.cells if c.cell_type == "code")
