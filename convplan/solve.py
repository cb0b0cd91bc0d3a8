"""Solve `?` unknowns from the equations an `->` assertion gives (one per dim).

Unknowns are integers that do not depend on the input sizes (a padding, a channel count).
An equation with one unknown is solved exactly when it is linear; through floor divisions
(a strided layer) the unknown is searched for among small integers, since every real
padding or width is small and each candidate is checked symbolically, for all sizes.
"""

from __future__ import annotations

import time

import sympy

from .shapes import FloorDiv, equal, pyrepr

SEARCH = (*range(0, 257), *range(-1, -65, -1))
TIME_BUDGET_S = 2.0


class SolveError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


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
    deadline = time.monotonic() + TIME_BUDGET_S
    for c in SEARCH:
        if equal(have.xreplace({u: c}), want.xreplace({u: c})):
            return sympy.Integer(c)
        if time.monotonic() > deadline:
            break
    raise SolveError(f"no integer {label(u)} makes {pyrepr(have)} equal {pyrepr(want)} for every input size")


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
