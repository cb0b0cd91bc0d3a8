"""CONVPLAN_PROPERTY_SCALE (tests/conftest.py) multiplies every hypothesis test's examples.

Counted by running hypothesis for real: a test run directly through the hook, and a pytest run in a
subprocess that reads the variable from its environment, as a long local run does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCALE_VARIABLE, scale_examples
from hypothesis import given, settings
from hypothesis import strategies as st

TESTS = Path(__file__).resolve().parent
DISTINCT = st.binary(min_size=16, max_size=16)  # 2**128 values: no draw repeats, so each example is one call


def counting_test(max_examples: int, settings_outside: bool):
    calls = []

    def body(blob):
        calls.append(blob)

    chosen = settings(max_examples=max_examples, deadline=None, database=None)
    test = chosen(given(DISTINCT)(body)) if settings_outside else given(DISTINCT)(chosen(body))
    return test, calls


@pytest.mark.parametrize("settings_outside", [True, False], ids=["settings-over-given", "given-over-settings"])
@pytest.mark.parametrize("examples, scale, expected", [(7, 3, 21), (10, 0.5, 5), (3, 0.01, 1)])
def test_scale_multiplies_max_examples(settings_outside, examples, scale, expected):
    test, calls = counting_test(examples, settings_outside)
    assert scale_examples(test, scale)
    test()
    assert len(calls) == expected


def test_scaled_once_and_other_settings_kept():
    calls = []

    @settings(max_examples=4, deadline=None, database=None, derandomize=True)
    @given(DISTINCT)
    def test(blob):
        calls.append(blob)

    scale_examples(test, 5)
    scale_examples(test, 5)  # a second item of a parametrized test: the same function, not scaled again
    assert test._hypothesis_internal_use_settings.max_examples == 20
    assert test._hypothesis_internal_use_settings.derandomize
    test()
    assert len(calls) == 20


def test_plain_functions_untouched():
    def plain():
        pass

    assert not scale_examples(plain, 10)
    assert not hasattr(plain, "_hypothesis_internal_use_settings")


INNER = '''
from hypothesis import given, settings, strategies as st

CALLS = []

class TestInClass:
    @settings(max_examples=6, deadline=None, database=None)
    @given(st.binary(min_size=16, max_size=16))
    def test_method(self, blob):
        CALLS.append(blob)

def test_after():
    print("CALLS", len(CALLS))
'''


def run_inner(tmp_path: Path, scale: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {k: v for k, v in os.environ.items() if k != SCALE_VARIABLE}
    if scale is not None:
        env[SCALE_VARIABLE] = scale
    return subprocess.run([sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("scale, calls", [(None, 6), ("1", 6), ("3", 18)])
def test_environment_variable_scales_a_pytest_run(tmp_path, scale, calls):
    run = run_inner(tmp_path, scale)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"CALLS {calls}\n" in run.stdout


@pytest.mark.parametrize("scale", ["ten", "0", "-2"])
def test_bad_scale_is_a_usage_error(tmp_path, scale):
    run = run_inner(tmp_path, scale)
    assert run.returncode == 4  # pytest's usage error: no test ran
    assert f"{SCALE_VARIABLE}='{scale}': expected a positive number" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr
