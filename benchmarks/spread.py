"""How much do the book's computed figures vary from machine to machine and seed to seed?

    .venv/bin/python benchmarks/spread.py                      # chapters 5-8, every perturbation
    .venv/bin/python benchmarks/spread.py book/project/07_sentiment_project.ipynb --perturb onednn0
    .venv/bin/python benchmarks/spread.py --table-only         # tabulate what earlier runs stored

Training on a CPU is not bit-identical across machines: oneDNN picks kernels by instruction set
and thread count, and another seed gives another model. This script executes notebooks
top to bottom (in a fresh kernel, like `make test`) under perturbations of the numeric path and
of the global seed, and tabulates every number the notebook *glues* into its prose
(`mmtutor.utils.glue`): for each, its value on the default path and its range (min, max) over
all runs. It also reports whether every notebook ran to the end, i.e. whether every assertion
in it held under each perturbation.

Perturbations (`--perturb`, default all; without a `default` run the table takes the default
values from the notebook's stored outputs, which `scripts/run_notebook.py` made on the default path):

- `default`   nothing changed (the configuration of `make book`)
- `onednn0`   `TF_ENABLE_ONEDNN_OPTS=0`: TensorFlow's own kernels instead of oneDNN's
- `threads1`  one intra-op and one inter-op thread (`TF_NUM_INTRAOP_THREADS=1`, ...)
- `seed1`     `MMTUTOR_SEED=1`: other initial weights, shuffles and bootstrap draws
- `seed2`     `MMTUTOR_SEED=2`

Each perturbation gets its own `MMTUTOR_HOME` under `--work` whose data set and feature cache are
links to the real ones (they do not depend on the numeric path) but whose run folders are its
own, so that a run cached by one configuration is never reused by another. Executed notebooks are
kept in `--work/<perturbation>/` and every later call tabulates all that are there, so the table
can be built up one notebook at a time. Progress goes to stderr, the Markdown table to stdout.
"""

import argparse
import ast
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = [
    "book/building_blocks/05_feature_extraction.ipynb",
    "book/building_blocks/06_fusion.ipynb",
    "book/project/07_sentiment_project.ipynb",
    "book/project/08a_metrics.ipynb",
    "book/project/08b_uncertainty.ipynb",
    "book/project/08c_error_analysis.ipynb",
]
PERTURBATIONS = {
    "default": {},
    "onednn0": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "threads1": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "seed1": {"MMTUTOR_SEED": "1"},
    "seed2": {"MMTUTOR_SEED": "2"},
}
# What stays the same under every perturbation, shared by link: the data set and the features
# (each feature file; the pretrained encoders of features/encoders are trained again in each home,
# since they are what a numeric path or a seed changes).
SHARED = ("spoken_reviews-", "features")
PRIVATE = ("encoders",)


def _home_for(name, work):
    """A private MMTUTOR_HOME for one perturbation: shared data and features, own run folders."""
    from mmtutor.data import default_home

    real = default_home()
    home = work / name / "home"
    home.mkdir(parents=True, exist_ok=True)
    for entry in real.iterdir() if real.is_dir() else []:
        if not entry.name.startswith(SHARED) or (home / entry.name).exists():
            continue
        if entry.name == "features" and entry.is_dir():
            (home / "features").mkdir()
            for item in entry.iterdir():
                if item.name not in PRIVATE:
                    (home / "features" / item.name).symlink_to(item.resolve(), target_is_directory=item.is_dir())
        else:
            (home / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
    return home


def execute(path, name, work, timeout):
    """Execute one notebook under one perturbation; store the executed copy; return (ok, seconds)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    env_changes = {**PERTURBATIONS[name], "MMTUTOR_HOME": str(_home_for(name, work))}
    saved = {k: os.environ.get(k) for k in (*env_changes, "MMTUTOR_SEED")}
    os.environ.update(env_changes)  # the kernel inherits this process's environment
    if name not in ("seed1", "seed2"):
        os.environ.pop("MMTUTOR_SEED", None)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    ok, error = True, None
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError as exc:
        ok, error = False, str(exc).splitlines()[-1][:300] if str(exc) else "cell error"
    except CellTimeoutError:  # a table row saying so, not a traceback that loses the other runs
        ok, error = False, f"a cell ran longer than {timeout} s"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - start
    nb.metadata["spread"] = {"perturbation": name, "ok": ok, "error": error, "seconds": round(seconds, 1),
                             "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out = work / name / path.name
    nbformat.write(nb, out)
    return ok, seconds, error


def glued(nb):
    """Every value a notebook glued: key -> text (as the prose shows it)."""
    values = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook", {})
            key = meta.get("name")
            if key is None:
                continue
            data = out.get("data", {})
            text = next((v for k, v in data.items() if k.endswith("text/plain")), "")
            try:
                text = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                pass
            values[key] = str(text)
    return values


def _number(text):
    text = text.strip().rstrip("%").replace(",", "").replace("−", "-")
    try:
        return float(text)
    except ValueError:
        return None


def table(work, notebooks):
    import nbformat

    runs = {}  # notebook name -> perturbation -> (meta, glued values)
    for name in PERTURBATIONS:
        for path in notebooks:
            executed = work / name / path.name
            if name == "default" and not executed.exists() and path.exists():
                executed = path  # the book's stored outputs are a default-path run (make book's)
            if executed.exists():
                nb = nbformat.read(executed, as_version=4)
                meta = nb.metadata.get("spread") or {"ok": True, "seconds": 0, "stored": True}
                runs.setdefault(path.name, {})[name] = (meta, glued(nb))
    lines = ["| notebook | " + " | ".join(PERTURBATIONS) + " |", "|---|" + "---|" * len(PERTURBATIONS)]
    for nb_name, by in runs.items():
        cells = []
        for name in PERTURBATIONS:
            meta = by.get(name, ({}, {}))[0]
            if not meta:
                cells.append("—")
            elif meta.get("stored"):
                cells.append("stored outputs")
            else:
                cells.append(("passed" if meta.get("ok") else "**FAILED**") + f" {meta.get('seconds', 0):.0f} s")
        lines.append(f"| {nb_name} | " + " | ".join(cells) + " |")
    lines += ["", "| notebook | glued figure | default | min | max | range | runs |", "|---|---|---|---|---|---|---|"]
    for nb_name, by in runs.items():
        keys = sorted({k for _, values in by.values() for k in values})
        for key in keys:
            texts = {name: values[key] for name, (_, values) in by.items() if key in values}
            numbers = [n for n in map(_number, texts.values()) if n is not None]
            if len(numbers) != len(texts) or not numbers:
                continue  # text, not a number
            default = texts.get("default", "—")
            lo, hi = min(numbers), max(numbers)
            lines.append(f"| {nb_name} | `{key}` | {default} | {lo:g} | {hi:g} | {hi - lo:.3g} | {len(numbers)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to execute (default: chapters 5-8)")
    parser.add_argument("--perturb", nargs="+", choices=list(PERTURBATIONS), default=list(PERTURBATIONS))
    parser.add_argument("--work", type=Path, default=ROOT / "_build" / "spread",
                        help="where executed notebooks and private homes go (default _build/spread)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    parser.add_argument("--table-only", action="store_true", help="execute nothing; tabulate stored runs")
    args = parser.parse_args(argv)
    notebooks = [Path(p).resolve() for p in (args.notebooks or [ROOT / p for p in HEADLINE])]
    for path in notebooks:
        if not path.is_file():
            parser.error(f"no notebook at {path}")
    args.work.mkdir(parents=True, exist_ok=True)
    failed = []
    if not args.table_only:
        for path in notebooks:
            for name in args.perturb:
                print(f"[spread] {path.name} under {name} ...", file=sys.stderr, flush=True)
                ok, seconds, error = execute(path, name, args.work, args.timeout)
                print(f"[spread] {path.name} under {name}: {'passed' if ok else 'FAILED: ' + error} "
                      f"in {seconds:.0f} s", file=sys.stderr, flush=True)
                if not ok:
                    failed.append(f"{path.name} under {name}: {error}")
    import platform

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores; executed notebooks in {args.work}\n")
    print(table(args.work, [Path(p) for p in (args.notebooks or [ROOT / p for p in HEADLINE])]))
    if failed:
        print("\nFailed:\n" + "\n".join(f"- {f}" for f in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
