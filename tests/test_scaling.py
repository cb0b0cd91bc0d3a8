"""The check's cost grows linearly with the plan where the plan's formulas do: checked by counting the work
sympy does on sums (deterministic) and by CPU time across depths (best of two, a wide margin: the machine is
shared).  The absolute time (500 layers under a second) is benchmarks/bench.py's Unknowns500 row."""

import time

import pytest
import sympy

import convplan


def _named_unknowns(depth: int, tag: str) -> str:
    """`Conv2d(?c, kernel_size=?k, padding=?p)` layers: each adds three unknowns to every spatial dim, whose
    formulas therefore grow by a few terms a layer (a fresh `tag` per run: no cache of an earlier run helps)."""
    lines = [f"    Conv2d(?{tag}c{i}, kernel_size=?{tag}k{i}, padding=?{tag}p{i})" for i in range(depth)]
    return "plan U:\n    input [N, 3, H, W]\n" + "\n".join(lines) + "\n"


def _flattened_terms(text: str) -> int:
    """How many terms sympy's Add.flatten was handed while checking `text` (it sorts them all each time)."""
    seen = [0]
    flatten = sympy.Add.flatten.__func__

    def counting(cls, seq):
        seen[0] += sum(len(a.args) if a.is_Add else 1 for a in seq)
        return flatten(cls, seq)

    sympy.Add.flatten = classmethod(counting)
    try:
        convplan.analyse(text)
    finally:
        sympy.Add.flatten = classmethod(flatten)
    return seen[0]


def _cpu(depth: int, tag: str) -> float:
    start = time.process_time()
    result = convplan.analyse(_named_unknowns(depth, tag))
    assert any(d.code == "E310" for d in result.diagnostics)  # nothing fixes them: reported, not a traceback
    return time.process_time() - start


@pytest.mark.slow
def test_named_unknowns_cost_grows_linearly():
    small, large = _flattened_terms(_named_unknowns(100, "a")), _flattened_terms(_named_unknowns(300, "b"))
    assert large <= 3.5 * small  # was ~9x (every layer re-sorted every term of each dim)
    small = min(_cpu(100, f"s{i}") for i in range(2))
    large = min(_cpu(300, f"l{i}") for i in range(2))
    assert large <= 5.5 * small, (small, large)  # linear: 3x; quadratic: 9x

