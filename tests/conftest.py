"""Fixtures shared by the test modules: one small spoken-reviews dataset per test session.

Generating the data costs a few seconds (speech synthesis), so the modules that need a small
dataset share this one instead of each making its own. Tests must not modify it: a test that
needs to change files copies it first (``shutil.copytree``).
"""

import pytest

from mmtutor.data import make_spoken_reviews


@pytest.fixture(scope="session")
def small_reviews(tmp_path_factory):
    """60 spoken reviews (seed 0) in a folder: manifest.csv, dataset.json, images/, audio/."""
    root = tmp_path_factory.mktemp("small") / "reviews"
    make_spoken_reviews(root, n=60, seed=0, progress=False)
    return root
