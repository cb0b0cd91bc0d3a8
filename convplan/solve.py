"""Solve `?` unknowns from the equations an `->` assertion gives (one per dim).

Unknowns are integers that do not depend on the input sizes (a padding, a channel count).
An equation with one unknown is solved exactly when it is linear; through floor divisions
(a strided layer) the unknown is searched for among small integers, since every real
padding or width is small and each candidate is checked symbolically, for all sizes.
"""

from __future__ import annotations

import sympy

from .shapes import FloorDiv, equal, pyrepr

SEARCH = (*range(0, 257), *range(-1, -65, -1))
# Per unknown, in steps (a step: one node of the two sides evaluated at one sample, or checked symbolically), so
# that the machine's speed or load never decides E323: ~0.2-0.5 s here.  On expiry the search is abandoned
# (E323), never silently cut short.
STEP_BUDGET = 200_000
SAMPLES = (1, 2, 3, 5, 8, 13, 31, 64, 97)  # sizes at which a candidate is refuted before the symbolic check


class SolveError(Exception):
    def __init__(self, message: str, hint: str | None = None, timed_out: bool = False):
        super().__init__(message)
        self.message, self.hint, self.timed_out = message, hint, timed_out


def solve(pairs: list[tuple], unknowns: set) -> dict:
    """Values for `unknowns` that make each (have, want) pair equal for every input size."""
    solution: dict = {}
    pending = [p for p in pairs if _free(p, unknowns)]
    while pending:
        progress = False
        for pair in list(pending):
            have, want = (side.xreplace(solution) for side in pair)
            left = _free((have, want), unknowns) - solution.keys()
            if len(left) > 1:
                continue
            pending.remove(pair)
            progress = True
            if left:
                u = left.pop()
                solution[u] = _solve_one(have, want, u)
        if not progress:
            names = sorted(label(u) for u in _free(pending[0], unknowns))
            raise SolveError(f"the unknowns {', '.join(names)} appear together in one dim and cannot be separated",
                             "give each unknown a dim of its own, or write one of them out")
    return solution


def label(u) -> str:
    """`_p` -> `?p`: how the user wrote the unknown."""
    return "?" + u.name[1:]


def _free(pair, unknowns) -> set:
    return (pair[0].free_symbols | pair[1].free_symbols) & unknowns


def _solve_one(have, want, u) -> sympy.Integer:
    if not (have - want).has(FloorDiv):
        return _linear(have, want, u)
    size = _nodes(have) + _nodes(want)
    spent = 0
    for c in SEARCH:
        spent += size * len(SAMPLES)  # the refutation at the sample sizes, at most
        if not _differs(have, want, u, c):
            spent += size
            if equal(have.xreplace({u: c}), want.xreplace({u: c})):
                return sympy.Integer(c)
        if spent > STEP_BUDGET:
            raise SolveError(f"gave up looking for {label(u)} after {STEP_BUDGET:,} steps (tried {SEARCH[0]} to {c})",
                             f"write {label(u)} out, or simplify the asserted shape", timed_out=True)
    raise SolveError(f"no integer {label(u)} makes {pyrepr(have)} equal {pyrepr(want)} for every input size")


def _nodes(e) -> int:
    return sum(1 for _ in sympy.preorder_traversal(e))


def _differs(have, want, u, c) -> bool:
    """A cheap refutation: the two sides differ at some sample sizes (then they differ as expressions)."""
    sizes = sorted((have.free_symbols | want.free_symbols) - {u}, key=str)
    for k in SAMPLES:
        values = {s: sympy.Integer(k + i) for i, s in enumerate(sizes)}
        values[u] = sympy.Integer(c)
        try:
            a, b = have.xreplace(values), want.xreplace(values)
        except ZeroDivisionError:  # c = 0 as a stride: no candidate
            return True
        if a.is_Integer and b.is_Integer and a != b:
            return True
    return False


def _linear(have, want, u) -> sympy.Integer:
    free = sympy.Dummy("u")  # no integer assumption, so a fractional answer is reported, not hidden
    roots = sympy.solve(sympy.Eq(have.xreplace({u: free}), want.xreplace({u: free})), free)
    if not roots:
        if equal(have, want):
            return sympy.Integer(0)
        raise SolveError(f"no value of {label(u)} makes {pyrepr(have)} equal {pyrepr(want)}")
    root = roots[0]
    if root.free_symbols:
        raise SolveError(f"{label(u)} would have to be {pyrepr(root)}, which depends on the input size",
                         "an unknown stands for one integer, the same for every input size")
    if not root.is_Integer:
        raise SolveError(f"{label(u)} would have to be {root}, which is not an integer")
    return sympy.Integer(root)
