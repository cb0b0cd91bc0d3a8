"""torch's broadcasting rule, once: `add`/`mul`, matmul's batch dims, CosineSimilarity/PairwiseDistance and
the saved-tensor sizes all call `broadcast`, and each turns the clashes into its own located message.

Shapes are right-aligned, a missing leading dim counts as 1, and a dim of 1 stretches to the others.  Only
such a dim stretches: two symbolic dims must be equal (a `Clash` with the condition), since a symbol may be
any size, 1 included, and the output's size cannot follow both (docs/language.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .periodic import equal_condition

ONE = sympy.Integer(1)


@dataclass(frozen=True)
class Clash:
    """Two dims at one position, neither 1, that must be equal: the output takes `first`."""
    index: int  # the position in the right-aligned shapes (0 is the broadcast shape's first dim)
    rank: int  # the broadcast shape's rank
    first: object
    other: object
    condition: object  # sympy.false where they never are equal

    @property
    def from_right(self) -> int:
        return self.index - self.rank


def broadcast(shapes) -> tuple[tuple, tuple[Clash, ...]]:
    """The broadcast shape of `shapes` and, in dim order, the pairs of dims that are not proven equal."""
    if _all_equal(shapes):  # a residual's operands: nothing stretches, nothing to decide
        return tuple(shapes[0]), ()
    columns = _columns(shapes)
    clashes = []
    for i, wide in enumerate(columns):
        for other in wide[1:]:
            condition = equal_condition(wide[0], other)
            if condition is not sympy.true:
                clashes.append(Clash(i, len(columns), wide[0], other, condition))
    return _first(columns), tuple(clashes)


def broadcast_shape(shapes) -> tuple:
    """Only the broadcast shape, for operands known to broadcast (where their sizes are counted)."""
    return _first(_columns(shapes))


def _all_equal(shapes) -> bool:
    """Shapes of one rank whose dims equal the first's, each of which is not 1 or is the number 1 itself: what
    the columns give then is the first shape, each pair equal (tested).  Asked before them, as `==` (most often
    `is`: a branch keeps its input's dims) is cheaper than a column's `_is_one` and `equal_condition` on each."""
    first = shapes[0]
    for other in shapes[1:]:
        if len(other) != len(first):
            return False
        for a, b in zip(first, other, strict=True):
            if a is not b and a != b:
                return False
    return all(d is ONE or type(d) is sympy.Integer or isinstance(d, sympy.Expr) and not d.is_Number for d in first)


def _columns(shapes) -> list[list]:
    """Per position of the right-aligned shapes, its dims that are not 1 (empty: the output's dim is 1)."""
    rank = max(len(s) for s in shapes)
    padded = [(ONE,) * (rank - len(s)) + tuple(s) for s in shapes]
    return [[s[i] for s in padded if not _is_one(s[i])] for i in range(rank)]


def _first(columns) -> tuple:
    return tuple(wide[0] if wide else ONE for wide in columns)


def _is_one(d) -> bool:
    """A dim of 1.  Dims are canonical (shapes/canonical.py): one that is 1 for every size is the number 1, so
    no `equal` is asked (it cost ConvNeXt's parse a third, its layer scales' [C, 1, 1] against [N, C, H, W])."""
    return d == 1
