"""The solver's search and the syntax-error recovery are bounded by counted work, never by a clock: the same
plan gives the same diagnostics on a fast machine and on a loaded one (issue 13: E323 came and went with the
load).  A clock that races (every reading an hour later) and a clock that fails when read change nothing."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan import solve, syntax_errors
from convplan.errors import PlanError

CLOCKS = ("monotonic", "perf_counter", "time", "process_time", "monotonic_ns", "perf_counter_ns", "time_ns")


def _racing(monkeypatch) -> None:
    """Every clock reading is an hour after the last: a machine as slow as can be."""
    ticks = itertools.count()
    for name in CLOCKS:
        monkeypatch.setattr(time, name, lambda: 3600.0 * next(ticks))


def _unreadable(monkeypatch) -> None:
    def read():
        raise AssertionError("a budget read the clock")

    for name in CLOCKS:
        monkeypatch.setattr(time, name, read)


def _outcome(text: str):
    try:
        return "ok", convplan.parse(text).unknowns
    except PlanError as exc:
        return "refused", [(d.code, d.message, d.span) for d in exc.diagnostics]


def _strided(pad: int, stride: int, depth: int) -> str:
    """A `?p` behind `depth` strided layers, asserted to the size the padding `pad` gives: found by search."""
    pre = "".join("    Conv1d(4, kernel_size=3, stride=2)\n" for _ in range(depth))
    known = f"plan A:\n    input [N, 4, L]\n{pre}    Conv1d(4, kernel_size=5, stride={stride}, padding={pad})\n"
    out = convplan.shapes.pyrepr(convplan.parse(known).output_shape[2])
    return known.replace(f"padding={pad})", f"padding=?p) -> [N, 4, {out}]")


@settings(max_examples=10, deadline=None)
@given(pad=st.integers(0, 256), stride=st.integers(2, 4), depth=st.integers(0, 3),
       budget=st.sampled_from([0, 2_000, 20_000, solve.STEP_BUDGET]))
def test_the_search_for_an_unknown_is_the_same_on_any_clock(pad, stride, depth, budget):
    text = _strided(pad, stride, depth)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(solve, "STEP_BUDGET", budget)
        quiet = _outcome(text)
        _racing(mp)
        slow = _outcome(text)
        _unreadable(mp)
        unread = _outcome(text)
    assert quiet == slow == unread
    if quiet[0] == "ok":  # a found padding gives the asserted size (a smaller one may too, with stride > 1)
        assert quiet[1]["p"] <= pad
    else:
        assert quiet[1][0][0] == "E323" and "steps" in quiet[1][0][1]


def test_the_default_budget_finds_a_padding_deep_in_the_search():
    """p = 200 is the 201st candidate: found with the default budget however slow the machine."""
    text = _strided(200, 3, 2)
    with pytest.MonkeyPatch.context() as mp:
        _unreadable(mp)
        assert convplan.parse(text).unknowns == {"p": 200}


def test_the_budget_is_counted_and_says_so():
    """Just under what a search needs finds nothing and says how far it got; the need is the same each run."""
    text = _strided(200, 3, 0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(solve, "STEP_BUDGET", 10_000)
        (d,) = _outcome(text)[1]
    assert d[0] == "E323" and d[1].startswith("Conv1d: gave up looking for ?p after 10,000 steps (tried 0 to ")
    again = _outcome_with_budget(text, 10_000)
    assert again[1][0][1] == d[1]


def _outcome_with_budget(text: str, budget: int):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(solve, "STEP_BUDGET", budget)
        return _outcome(text)


def _broken(lines: int, errors: int) -> str:
    """A plan of `lines` layers, the last `errors` of them each with a syntax error."""
    body = [f"    Conv2d({i % 7 + 1}, kernel_size=3, padding=1)" for i in range(lines)]
    for k in range(1, errors + 1):
        body[-k] = body[-k].replace("Conv2d(", "Conv2d(,")
    return "plan A:\n    input [N, 3, H, W]\n" + "\n".join(body) + "\n"


def _syntax(text: str) -> list:
    with pytest.raises(PlanError) as info:
        convplan.parse(text)
    return [(d.code, d.span.line) for d in info.value.diagnostics]


@pytest.mark.parametrize(("lines", "budget"), [(40, syntax_errors.RECOVERY_BUDGET_CHARS), (40, 5_000),
                                               (3_000, syntax_errors.RECOVERY_BUDGET_CHARS)])
def test_syntax_error_recovery_is_the_same_on_any_clock(lines, budget):
    """How many syntax errors are reported depends on the text reparsed (counted in characters), never on a
    clock: each reparse costs the text's length, and recovery stops before the budget would be passed."""
    text = _broken(lines, 12)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(syntax_errors, "RECOVERY_BUDGET_CHARS", budget)
        quiet = _syntax(text)
        _racing(mp)
        slow = _syntax(text)
        _unreadable(mp)
        unread = _syntax(text)
    assert quiet == slow == unread
    expected = min(syntax_errors.MAX_SYNTAX_ERRORS, 1 + budget // len(text))
    assert len(quiet) == expected and all(code == "E001" or code.startswith("E0") for code, _ in quiet)
