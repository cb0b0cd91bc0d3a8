"""Hints are searched within a budget of checks, not of seconds: a busy machine gives the same hints as a quiet
one (the search had a 0.2 s deadline, so which hints a user got depended on the load)."""

from __future__ import annotations

import itertools
import time

import pytest

import convplan
from convplan import hints

PLANS = [  # each needs a search: the stride's candidates run through a floor division (~75 checks)
    "plan A:\n    input [N, 2, L]\n    Conv1d(4, kernel_size=1) -> [N, 4, L + 2]\n",
    "plan B:\n    input [N, 2, L]\n    Conv1d(4, kernel_size=5, padding=1) -> [N, 4, L]\n",
    "plan C:\n    input [N, 2, L]\n    Conv1d(4, kernel_size=2, stride=2, padding=2) -> [N, 4, L // 2]\n",  # dilation=5
    # a size where Flatten() gives the written in_features, found among 4096
    "plan D:\n    input [N, 1, L]\n    Conv1d(32, kernel_size=3, padding=1)\n    MaxPool1d(2)\n"
    "    Linear(in_features=320, out_features=10)\n",
]


def _hints(text: str) -> list[str]:
    with pytest.raises(convplan.PlanError) as caught:
        convplan.parse(text)
    return [h for d in caught.value.diagnostics for h in d.hints]


@pytest.mark.parametrize("text", PLANS)
def test_a_busy_machine_gets_the_same_hints(text, monkeypatch):
    """On a machine so busy that every check seems to take a second, the hints are those of a quiet one."""
    quiet = _hints(text)
    assert any(" gives " in h for h in quiet)
    clock = itertools.count(0.0, 1.0)
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    assert _hints(text) == quiet


def test_the_search_stops_after_its_budget(monkeypatch):
    """A count, spent the same way each time: the default is enough for `dilation=5` (its candidates run
    through a floor division); one check is not enough for any hint."""
    text = PLANS[2]
    assert any(h.startswith("dilation=5 gives") for h in _hints(text))
    checks = []

    class Counting(hints.Budget):
        def spend(self) -> bool:
            checks.append(1)
            return super().spend()

    monkeypatch.setattr(hints, "Budget", Counting)
    full = _hints(text)
    used = len(checks)
    assert 5 < used <= hints.CHECKS
    checks.clear()
    assert _hints(text) == full and len(checks) == used  # deterministic
    monkeypatch.setattr(hints, "CHECKS", 1)
    checks.clear()
    assert not any(" gives " in h for h in _hints(text)) and len(checks) == 2  # the second says no
