"""Strides as formulas of a plan's symbols: the arithmetic torch's views and kernels do on them (torch 2.13, CPU).
A leaf (sympy only), so that the registries can declare their ops' strides with it (ops.py) and layouts.py can
follow them along a graph."""

from __future__ import annotations

import sympy


def contiguous(shape) -> tuple:
    strides, step = [], sympy.Integer(1)
    for d in reversed(tuple(shape)):
        strides.append(step)
        step = step * d
    return tuple(reversed(strides))


def permuted(before: tuple, dims) -> tuple:
    return tuple(before[int(d) % len(before)] for d in dims)


def transposed(before: tuple, dim0, dim1) -> tuple:
    d0, d1 = int(dim0) % len(before), int(dim1) % len(before)
    out = list(before)
    out[d0], out[d1] = out[d1], out[d0]
    return tuple(out)


def selected(before: tuple, dim) -> tuple:
    d = int(dim) % len(before)
    return before[:d] + before[d + 1:]


def unflattened(before: tuple, dim, out: tuple) -> tuple:
    """unflatten is always a view: the dim's stride s becomes (..., b*s, s)."""
    d = int(dim) % len(before)
    grown = len(out) - len(before) + 1
    return before[:d] + outer(out[d: d + grown], before[d]) + before[d + 1:]


def outer(sizes: tuple, inner) -> tuple:
    """Strides of `sizes` laid out contiguously over a dim of stride `inner`."""
    return tuple(inner * c for c in contiguous(sizes))


def expanded(shape: tuple, before: tuple, out: tuple) -> tuple:
    """expand: new leading dims and stretched dims of size 1 get stride 0, the rest keep theirs."""
    lead = len(out) - len(shape)
    kept = tuple(sympy.Integer(0) if d != o else s for d, s, o in zip(shape, before, out[lead:], strict=True))
    return (sympy.Integer(0),) * lead + kept


def dense(shape: tuple, strides: tuple) -> bool:
    """Whether the strides lay the tensor out without gaps or overlaps in some order of its dims (a permutation of
    a contiguous tensor), as formulas: from stride 1 up, each next dim's stride is the product of the sizes
    inside it (a dim of size 1 fits anywhere)."""
    left, step = list(zip(shape, strides, strict=True)), sympy.Integer(1)
    while left:
        at = next((k for k, (d, s) in enumerate(left) if d == 1), None)
        if at is None:
            at = next((k for k, (d, s) in enumerate(left) if sympy.expand(s - step) == 0), None)
        if at is None:
            return False
        d, _ = left.pop(at)
        step = step * d
    return True


def elementwise(shape: tuple, strides: tuple):
    """The strides of an elementwise op's output on one tensor (`x.mul(x)`), as TensorIterator lays it out: a dense
    input's own; else contiguous in the order of the input's strides, inner first (ties: the smaller dim inner;
    a broadcast dim, stride 0, is not compared), as its insertion sort finds it.  None where formulas leave an
    order undecided."""
    if dense(shape, strides):
        return strides
    perm = list(range(len(shape)))[::-1]  # inner first
    try:
        for i in range(1, len(perm)):
            right = i
            for left in range(i - 1, -1, -1):
                order = _should_swap(shape, strides, perm[left], perm[right])
                if order < 0:
                    break
                if order > 0:
                    perm[left], perm[right] = perm[right], perm[left]
                    right = left
    except _Undecided:
        return None
    out, step = [None] * len(shape), sympy.Integer(1)
    for d in perm:
        out[d], step = step, step * shape[d]
    return tuple(out)


class _Undecided(Exception):
    pass


def _should_swap(shape: tuple, strides: tuple, d0: int, d1: int) -> int:
    """TensorIterator's comparison of two dims of one operand: 1 to swap (d0 is outer), -1 to keep, 0 undecided
    (a broadcast dim, or equal strides with d0 no larger)."""
    s0, s1 = strides[d0], strides[d1]
    if s0 == 0 or s1 == 0:
        return 0
    order = _sign(s0 - s1)
    return order if order else int(_sign(shape[d0] - shape[d1]) > 0)


def _sign(e) -> int:
    """The sign of a difference at every size but a few (W - 1 is positive: at W = 1 the dims it orders are of size
    1, whose place no view minds)."""
    e = sympy.expand(e)
    if e == 0:
        return 0
    if e.is_nonnegative or e.is_nonpositive:
        return 1 if e.is_nonnegative else -1
    raise _Undecided


def merges(shape: tuple, strides: tuple, start: int) -> bool:
    """Whether `view` can merge the dims from `start` on into one (torch's computeStride): each dim holds the next
    contiguously, dims of size 1 aside.  A formula must hold at every size."""
    dims = [k for k in range(start, len(shape)) if shape[k] != 1]
    return all(sympy.expand(strides[a] - strides[b] * shape[b]) == 0 for a, b in zip(dims, dims[1:], strict=False))
