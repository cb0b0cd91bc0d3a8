"""An equality of several sizes that no integers meet is refused (E304), proven from its factors and the gcd of its
terms; the proof never refuses an equality that some sizes meet."""

from __future__ import annotations

import os

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan.requirements import _never_zero
from convplan.shapes import dim

SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)), deadline=None)


@pytest.mark.parametrize(("text", "shown"), [
    ("plan P:\n    input [N, 2, A]\n    flatten(0, 2)\n    s1, s2 = split((2, 1), dim=0)\n", "2*A*N == 3"),
    ("plan P:\n    input [N, A]\n    Linear(4)\n    Linear(2*A)\n    view(N, 3)\n", "3*N == 2*A*N"),
])
def test_a_plan_no_sizes_can_run_is_refused(text, shown):
    """Found by a review: both were accepted (exit 0) with a requirement no sizes meet; only verify and codegen
    failed later (E402, no sizes found)."""
    result = convplan.analyse(text, "p.plan")
    assert [d.code for d in result.errors] == ["E304"]
    assert shown in result.errors[0].message


def test_an_equality_some_sizes_meet_stays_a_requirement():
    plan = convplan.parse("plan P:\n    input [N, A]\n    Linear(4)\n    Linear(A)\n    view(N, 8)\n")
    assert [str(r) for r in plan.requires] == ["8*N == A*N"]
    assert plan.satisfied(N=1, A=8)


A, N, H = dim("A"), dim("N"), dim("H")
_TERMS = (A, N, H, A * N, A * H, N * H, A * N * H)


@given(st.lists(st.integers(-4, 4), min_size=len(_TERMS), max_size=len(_TERMS)), st.integers(1, 3),
       st.integers(-9, 9), st.sampled_from((1, N, A * H, A + 1)), st.integers(1, 2))
@SETTINGS
def test_never_zero_is_only_said_of_what_no_sizes_make_zero(coefficients, scale, constant, factor, power):
    """Soundness by brute force: a formula said never to be 0 is 0 at no sizes from 1 to 12.  The terms' coefficients
    share a factor (`scale`) and a positive factor may multiply the sum, so that many formulas are said so."""
    e = (factor * (scale * sum(c * t for c, t in zip(coefficients, _TERMS, strict=True)) + constant)) ** power
    if e.is_number or not _never_zero(e):
        return
    at = sympy.lambdify((A, N, H), e)
    zeros = [(a, n, h) for a in range(1, 13) for n in range(1, 13) for h in range(1, 13) if at(a, n, h) == 0]
    assert zeros == [], e
