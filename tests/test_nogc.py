"""The garbage collector is held off while a plan is parsed and checked (nogc.py), and left as it was found."""

import gc
from pathlib import Path

import pytest

import convplan
from convplan import nogc, passes

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


@pytest.fixture
def collections():
    """The generation of each collection that starts while the test runs."""
    started = []

    def seen(phase, info):
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    gc.callbacks.append(seen)
    yield started
    gc.callbacks.remove(seen)


RESNET18 = Path(__file__).resolve().parent.parent / "examples" / "resnet18.plan"


def test_what_a_check_made_is_aged_not_walked(collections):
    """Ageing what parse and check made (nogc.py): no young collection walks it after, as one did each time
    (a young collection starts at the first allocation past 700 new objects, and a check makes thousands)."""
    text = RESNET18.read_text()
    convplan.parse(text)  # lazy imports, caches
    gc.collect()
    collections.clear()
    plans = [convplan.parse(text) for _ in range(3)]
    assert len(plans) == 3
    assert collections == []


def test_a_full_collection_once_enough_was_aged(collections, monkeypatch):
    """Objects aged are counted: past AGED_LIMIT a full collection runs (sympy's own cyclic garbage, aged with
    the rest, would otherwise wait for one that Python does not count them towards)."""
    monkeypatch.setattr(nogc, "AGED_LIMIT", 100)
    monkeypatch.setattr(nogc, "_aged", 0)
    convplan.parse(RESNET18.read_text())
    assert 2 in collections
    assert nogc._aged < 100
