"""Write the book configuration used by `make test`'s site build.

    python scripts/test_config.py _config.yml _build/_config.test.yml

Same as ``_config.yml`` except that notebooks are not executed again: `make test` has just
executed every notebook under nbval, and tests/test_notebooks.py checks that their stored
outputs are complete, so the site is rendered from those outputs. `make book` executes everything.
"""

import sys
from pathlib import Path

import yaml


def main(src, dst):
    config = yaml.safe_load(Path(src).read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    Path(dst).write_text(yaml.safe_dump(config, sort_keys=False))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
