"""The garbage collector is held off while a plan is parsed and checked (nogc.py), and left as it was found."""

import gc

import pytest

import convplan
from convplan import passes

PLAN = "plan P:\n    input [N, 3, H, W]\n    Conv2d(8, 3)\n"


@pytest.fixture
def seen_during_check(monkeypatch):
    seen = []
    monkeypatch.setattr(passes, "PASSES", [*passes.PASSES, lambda graph: seen.append(gc.isenabled())])
    return seen


def test_off_during_the_check_and_on_after(seen_during_check):
    assert gc.isenabled()
    convplan.parse(PLAN)
    assert seen_during_check == [False]
    assert gc.isenabled()


def test_on_again_after_a_refused_plan(seen_during_check):
    with pytest.raises(convplan.PlanError):
        convplan.parse(PLAN.replace("Conv2d(8, 3)", "Conv2d(8, 3, nope=1)"))
    assert seen_during_check == [False]
    assert gc.isenabled()
    with pytest.raises(convplan.PlanError):  # a syntax error: the parser's own path out
        convplan.parse("plan P:\n    input [N\n")
    assert gc.isenabled()


def test_left_off_when_the_caller_turned_it_off():
    gc.disable()
    try:
        convplan.parse(PLAN)
        assert not gc.isenabled()
    finally:
        gc.enable()
