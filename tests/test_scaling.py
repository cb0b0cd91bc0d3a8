"""The check's cost grows linearly with a plan of named unknowns, whose dims grow by a few terms a line (issue 13:
`Conv2d(?c{i}, kernel_size=?k{i}, padding=?p{i})`, 6 s for 160 lines once).  Measured by counts that do not
depend on the machine's load, over a fourfold range (linear: x4, quadratic: x16): the Python work (function
calls), the terms sympy's Add.flatten sorts, the terms of sums read from scratch, the collector's walks; and by
CPU time over the same range, interleaved and best of three, with a wide margin (the machine is shared).  The
absolute time (500 lines under a second) is benchmarks/bench.py's Unknowns500 row.

Shown to fail before the fix (4b920ee^, run with two shims for names that did not exist yet: check.analyse for
check._analyse, no sums counter): calls 10,046,725 -> 240,181,055 (x23.9), flattened 124,680 -> 1,939,437
(x15.6), collections 78 -> 4,138; on main 336,957 -> 897,943 (x2.7), 1,208 -> 4,508 (x3.7), 0 and 0."""

from __future__ import annotations

import gc
import itertools
import sys
import time

import pytest
import sympy

import convplan
from convplan import check
from convplan.shapes import sums

SMALL, LARGE = 100, 400  # lines; linear work grows x4 between them, quadratic x16
_tags = (f"t{i}" for i in itertools.count())  # a fresh name per plan: no cache of an earlier run helps


def _named_unknowns(depth: int) -> str:
    """`Conv2d(?c, kernel_size=?k, padding=?p)` layers: each adds three unknowns to every spatial dim, whose
    formulas therefore grow by a few terms a line."""
    tag = next(_tags)
    lines = [f"    Conv2d(?{tag}c{i}, kernel_size=?{tag}k{i}, padding=?{tag}p{i})" for i in range(depth)]
    return "plan U:\n    input [N, 3, H, W]\n" + "\n".join(lines) + "\n"


def _counts(depth: int) -> dict[str, int]:
    """What checking a plan of `depth` lines did, counted: Python function calls, terms handed to Add.flatten
    (it sorts them all each time), terms of long sums read from scratch (sums._linear_terms: a sum not grown
    here), and the cycle collector's runs."""
    text = _named_unknowns(depth)
    seen = {"calls": 0, "flattened": 0, "read": 0}
    flatten, read = sympy.Add.flatten.__func__, sums._linear_terms

    def counting_flatten(cls, seq):
        seen["flattened"] += sum(len(a.args) if a.is_Add else 1 for a in seq)
        return flatten(cls, seq)

    def counting_read(e):
        hit = sums._SUMS.get(id(e))
        if hit is None or hit[0] is not e:
            seen["read"] += len(e.args)
        return read(e)

    def profile(frame, event, arg):
        if event == "call":
            seen["calls"] += 1

    def collected() -> int:
        return sum(s["collections"] for s in gc.get_stats())

    def counting_check(*args):  # the check stage alone: parsing the text may collect
        before = collected()
        try:
            return analyse(*args)
        finally:
            seen["collections"] = collected() - before

    analyse = check._analyse
    sympy.Add.flatten, sums._linear_terms, check._analyse = classmethod(counting_flatten), counting_read, counting_check
    sys.setprofile(profile)
    try:
        result = convplan.analyse(text)
    finally:
        sys.setprofile(None)
        sympy.Add.flatten, sums._linear_terms, check._analyse = classmethod(flatten), read, analyse
    assert any(d.code == "E310" for d in result.diagnostics)  # nothing fixes them: reported, not a traceback
    return seen


@pytest.mark.slow
def test_named_unknowns_work_grows_linearly():
    small, large = _counts(SMALL), _counts(LARGE)
    assert large["calls"] <= 4.6 * small["calls"], (small, large)  # a walk over every term per line: ~x10
    assert large["flattened"] <= 5 * small["flattened"], (small, large)  # was x9 at 100 -> 300 lines
    assert large["read"] <= 5 * max(small["read"], 100), (small, large)  # terms copied per line: x16
    assert small["collections"] == large["collections"] == 0  # each full collection walked every node's sums


def _cpu(depth: int) -> float:
    text = _named_unknowns(depth)
    start = time.process_time()
    convplan.analyse(text)
    return time.process_time() - start


@pytest.mark.slow
def test_named_unknowns_time_grows_linearly():
    """Best of three, the sizes interleaved so that both see the same load: linear x4, quadratic x16 (the
    quadratic part was ~40% of the time at 500 lines)."""
    small, large = [], []
    for _ in range(3):
        small.append(_cpu(SMALL))
        large.append(_cpu(LARGE))
    assert min(large) <= 7 * min(small), (small, large)


def test_the_collector_is_paused_for_a_check_and_restored(monkeypatch):
    """Paused while the passes run (inside the check), enabled again after, and left off if it was off."""
    seen = []
    run_passes = check.run_passes
    monkeypatch.setattr(check, "run_passes", lambda graph: seen.append(gc.isenabled()) or run_passes(graph))
    text = "plan A:\n    input [N, 1, L]\n    Conv1d(4, kernel_size=3)\n"
    assert gc.isenabled()
    convplan.parse(text)
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        convplan.parse(text)
        assert not gc.isenabled()
    finally:
        gc.enable()
    monkeypatch.setattr(check, "run_passes", lambda graph: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        convplan.parse(text)
    assert gc.isenabled()
