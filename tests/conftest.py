"""Shared pytest options.

`--update-goldens` rewrites the golden files under tests/golden/ from the current output
instead of comparing against them.  Review the diff (git diff tests/golden) before committing.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/golden/ files from the current output (review the diff!)")


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")
