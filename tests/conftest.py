"""Shared pytest options.

`--update-goldens` rewrites the golden files under tests/golden/ from the current output
instead of comparing against them.  Review the diff (git diff tests/golden) before committing.

`CONVPLAN_PROPERTY_SCALE=10` multiplies every hypothesis test's max_examples by ten (any
positive number; a fraction runs fewer), without editing the tests: a long run to find the
examples CI would draw one day.  Unset, the tests run exactly as written.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

SCALE_VARIABLE = "CONVPLAN_PROPERTY_SCALE"


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/golden/ files from the current output (review the diff!)")


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")


def property_scale() -> float:
    text = os.environ.get(SCALE_VARIABLE, "").strip()
    if not text:
        return 1.0
    try:
        scale = float(text)
    except ValueError:
        raise pytest.UsageError(f"{SCALE_VARIABLE}={text!r}: expected a positive number, e.g. 10") from None
    if not scale > 0:
        raise pytest.UsageError(f"{SCALE_VARIABLE}={text!r}: expected a positive number, e.g. 10")
    return scale


def scale_examples(test, scale: float) -> bool:
    """Multiply a @given test's max_examples by `scale`; False when `test` is no hypothesis test.

    @given reads `_hypothesis_internal_use_settings` from its wrapper at every call, so replacing
    it there scales the test whichever order @settings and @given were written in.  A test
    parametrized n ways is one function: it is scaled once.
    """
    test = getattr(test, "__func__", test)  # a method's function
    if not getattr(test, "is_hypothesis_test", False):
        return False
    if getattr(test, "_convplan_scaled", False):
        return True
    current = test._hypothesis_internal_use_settings
    examples = max(1, round(current.max_examples * scale))
    test._hypothesis_internal_use_settings = settings(current, max_examples=examples)
    test._convplan_scaled = True
    return True


def pytest_collection_modifyitems(config, items):
    scale = property_scale()
    if scale == 1.0:
        return
    for item in items:
        scale_examples(getattr(item, "obj", None), scale)
