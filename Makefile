# mmtutor: two commands for readers (`make book`, `make test`), a few for authors.
# Everything runs in .venv, made here with `python3 -m venv`. The install step is skipped while
# pyproject.toml is unchanged, so a second `make book` works with the network off.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mmtutor-installed
SITE   := _build/html

# TensorFlow's C++ start-up banner stays out of terminals and notebook outputs.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0
# Matplotlib and numba write caches; keep them out of the home directory's way on CI.
export MPLBACKEND ?= Agg

.PHONY: help install data book test unit notebooks site-test lab clean distclean

help:
	@echo "make book   build the book (executes every notebook) into $(SITE)/index.html"
	@echo "make test   unit tests + every notebook under nbval (oneDNN off: a second numeric path) + the book built with warnings as errors"
	@echo "make lab    JupyterLab in the same environment"
	@echo "make clean  remove build outputs (keeps .venv and the dataset cache)"

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v < (3, 13) else "mmtutor needs Python 3.11 or 3.12 (this venv has %d.%d): remove .venv and run make with PYTHON=python3.11" % v)'
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[book,dev,jax]"
	@touch $(STAMP)

# The embedded dataset, generated once into the cache that every notebook shares ($$MMTUTOR_HOME).
data: $(STAMP)
	$(BIN)/python -c "from mmtutor.data import load_spoken_reviews as load; print('dataset:', load(progress=True).root)"

book: data
	$(BIN)/jupyter-book build . --keep-going
	@echo "Open $(SITE)/index.html"

test: unit notebooks site-test

unit: data
	$(BIN)/python -m pytest tests mmtutor --doctest-modules --ignore=tests/site -q

# Every notebook executed top to bottom in a fresh kernel; what matters is asserted inside them.
# On a second numeric path: `make book` (and the stored outputs) use TensorFlow's default oneDNN
# kernels, `make test` executes every notebook with them switched off, so that each landing shows
# that the book's assertions hold on a path other than the author's (benchmarks/spread.py
# measures how far the numbers move). TEST_NUMERICS= (empty) runs the default path instead.
TEST_NUMERICS ?= TF_ENABLE_ONEDNN_OPTS=0
notebooks: data
	@echo "executing every notebook with: $(if $(TEST_NUMERICS),$(TEST_NUMERICS),the default numerics)"
	env $(TEST_NUMERICS) $(BIN)/python -m pytest --nbval-lax -p no:cacheprovider book -q

# The site is built from the notebooks' stored outputs (nbval has just executed every one; a
# unit test checks that the stored outputs are complete), with warnings as errors.
site-test: $(STAMP)
	$(BIN)/python scripts/test_config.py _config.yml _build/_config.test.yml
	$(BIN)/jupyter-book build . --config _build/_config.test.yml -W -n --keep-going
	$(BIN)/python -m pytest tests/site -q --site $(SITE)

lab: data
	$(BIN)/jupyter lab book

clean:
	rm -rf _build book/*/_build .pytest_cache

distclean: clean
	rm -rf $(VENV)
