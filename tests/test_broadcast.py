"""shapes/broadcast.py, the one broadcasting rule add/mul, matmul, the distances and the saved sizes call:
against torch.broadcast_shapes on random shapes, concrete and with symbols standing for some dims."""

from __future__ import annotations

import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convplan.shapes import dim, evaluate, floordiv, offset
from convplan.shapes.broadcast import broadcast, broadcast_shape


@st.composite
def shapes(draw):
    """2-4 shapes of rank 0-4 whose dims are mostly 1 or one size per position, sometimes another."""
    rank = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank))
    found = []
    for _ in range(draw(st.integers(2, 4))):
        own = draw(st.integers(0, rank))
        found.append(tuple(draw(st.sampled_from([1, sizes[i], sizes[i], draw(st.integers(1, 5))]))
                           for i in range(rank - own, rank)))
    return found


def _torch(shapes):
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError:
        return None


@given(shapes())
@settings(max_examples=300, deadline=None)
def test_concrete_shapes_broadcast_as_torch(found):
    """Where torch broadcasts, the shape is torch's and nothing clashes; where it refuses, a clash never holds."""
    out, clashes = broadcast(found)
    want = _torch(found)
    if want is None:
        assert any(c.condition is sympy.false for c in clashes), found
    else:
        assert (out, clashes) == (want, ()) and broadcast_shape(found) == want


@given(shapes(), st.data())
@settings(max_examples=200, deadline=None)
def test_symbolic_dims_clash_unless_proven_equal(found, data):
    """A dim written as a symbol (of the size torch sees) never stretches: where it meets another dim that is
    not 1, a clash says they must agree, and its condition holds at the sizes exactly where torch broadcasts."""
    names = {}
    symbolic = []
    for s in found:
        dims = []
        for k, d in enumerate(s):
            if d != 1 and data.draw(st.booleans()):
                name = f"S{len(s) - k}_{d}"  # one symbol per position and size
                names[name] = d
                dims.append(dim(name))
            else:
                dims.append(sympy.Integer(d))
        symbolic.append(tuple(dims))
    out, clashes = broadcast(symbolic)
    want = _torch(found)
    holds = all(bool(c.condition.subs({dim(n): v for n, v in names.items()})) for c in clashes)
    assert holds == (want is not None), (symbolic, clashes)
    if want is not None:
        assert tuple(evaluate(d, names) for d in out) == want


@pytest.mark.parametrize(("shapes", "where"), [
    (((2, 3), (4, 3)), [(0, -2)]),
    (((3,), (2, 4)), [(1, -1)]),
    (((2, 1, 5), (7, 5), (2, 7, 6)), [(2, -1)]),
])
def test_a_clash_says_where_from_both_ends(shapes, where):
    _, clashes = broadcast(shapes)
    assert [(c.index, c.from_right) for c in clashes] == where
    assert all(c.condition is sympy.false for c in clashes)


# -- operands of equal shapes (a residual's) are given the first shape without the columns' work -----------------

DIMS = st.one_of(st.integers(0, 4), st.integers(0, 4).map(sympy.Integer), st.sampled_from(["N", "C", "H"]).map(dim),
                 st.builds(lambda name, low, big, c: offset(floordiv(offset(dim(name), low), big), c),
                           st.sampled_from(["H", "W"]), st.integers(-3, 3), st.integers(1, 4), st.integers(-2, 2)),
                 st.sampled_from(["H", "W"]).map(lambda name: 2 * dim(name)), st.just(sympy.Float(1.0)))


@given(st.lists(DIMS, max_size=4), st.integers(2, 4), st.data())
@settings(max_examples=300, deadline=None)
def test_equal_shapes_broadcast_as_the_columns_give(first, count, data):
    """Each other operand's dims equal the first's (the same objects, rebuilt ones, ints for sympy integers, or
    a dim of 1 replaced by another 1), or one dim differs: the shortcut gives what the general path gives, the
    same objects in the shape and the same clashes."""
    from unittest import mock

    from convplan.shapes import broadcast as module

    def like(d):
        if data.draw(st.booleans()):
            return d
        if isinstance(d, sympy.Integer) or type(d) is int:
            return data.draw(st.sampled_from([int(d), sympy.Integer(int(d))]))
        return d.func(*d.args) if d.args else d  # rebuilt: equal, perhaps another object

    shapes = [tuple(first)] + [tuple(like(d) for d in first) for _ in range(count - 1)]
    if first and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(first) - 1))
        shapes[-1] = (*shapes[-1][:i], data.draw(DIMS), *shapes[-1][i + 1:])
    fast = broadcast(shapes)
    with mock.patch.object(module, "_all_equal", lambda shapes: False):
        general = broadcast(shapes)
    assert fast == general
    assert [type(d) for d in fast[0]] == [type(d) for d in general[0]]
    assert all(a is b for a, b in zip(fast[0], general[0], strict=True))  # the first shape's own dims
