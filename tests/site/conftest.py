from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--site", default="_build/html", help="folder of the built HTML site")


@pytest.fixture(scope="session")
def site(request):
    path = Path(request.config.getoption("--site")).resolve()
    if not (path / "index.html").exists():
        pytest.fail(f"no built site at {path}: run `make site-test` (or `make book`) first")
    return path
