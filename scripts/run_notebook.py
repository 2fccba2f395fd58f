"""Execute notebooks in place so that their stored outputs are current.

    python scripts/run_notebook.py book/part2/04_preprocessing.ipynb [more.ipynb ...]

Runs each notebook top to bottom in a fresh kernel of this environment (per-notebook timeout
600 s), stores the outputs, and prints the wall time. A failing cell stops with its traceback and
the notebook file is left unchanged. The book build re-executes every notebook on its own; the
stored outputs are what nbval and the reader on GitHub see.
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(path, timeout=600):
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    print(f"{path}: executed in {seconds:.1f} s")
    return seconds


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        run(p)
