"""Operations that cannot work are refused where they are written, saying why and what would: a reshape
whose sizes cannot divide, a permute that is no permutation, a dim out of range, a view of a tensor that
may not be contiguous, a Parameter without a name or in a numbered container."""

from __future__ import annotations

import pytest

import convplan
from convplan import PlanError
from convplan.shapes import pyrepr


@pytest.mark.parametrize(("line", "code", "col", "message", "hint"), [
    ("reshape(N, 4, -1)", "E300", 13, "30*N elements ((N, 6, 5)) must divide into rows of 4*N",
     "they could multiply to 2*N, 3*N, 5*N"),
    ("view(N, 7)", "E300", 10, "(7*N elements) must hold the input's 30*N elements", "write -1"),
    ("reshape(N, -1, -1)", "E300", 13, "only one size may be -1", None),
    ("permute(0, 2, 2)", "E300", 13, "is not a permutation of the 3 dims (dim 1 is missing)", "exactly once"),
    ("permute(0, 1)", "E300", 13, "has 2 entries for a 3-D tensor", "(2, 1, 0)"),
    ("transpose(1, 3)", "E300", 18, "dim1=3 is out of range for a 3-D tensor (expected -3 to 2)", "count from 0"),
    ("mean(dim=(0, 1, 2))", "E300", 10, "0-d tensor", "keepdim=True"),
    ("narrow(2, 1, 5)", "E300", 18, "start + length (6) must not pass the end of dim 2 (5)", None),
    ("transpose(1, 2)\n    view(N, -1)", "E300", 5, "may not be contiguous", "contiguous() before view"),
    # the Permute layer kind reorders the strides as permute does, and an elementwise layer after it keeps them
    ("Permute((0, 2, 1))\n    view(N, -1)", "E300", 5, "may not be contiguous", "contiguous() before view"),
    ("Permute((0, 2, 1))\n    ReLU()\n    view(N, -1)", "E300", 5, "may not be contiguous", "or use reshape"),
    ("Parameter((1, 6, 1))", "E247", 5, "a Parameter needs a name", "class_token = Parameter"),
    ("s = sequential:\n        p = Parameter((1, 6, 1))", "E248", 9, "numbered container", "before the"),
    ("y = Linear(4)\n    matmul(x, y)", "E300", 5, "inner dims must agree: 5 (last of (N, 6, 5)) vs 6", None),
    ("matmul()", "E242", 5, "matmul takes 2 tensors, got 1", None),
])
def test_refused_where_written(line, code, col, message, hint):
    with pytest.raises(PlanError) as info:
        convplan.parse(f"plan P:\n    input [N, 6, 5]\n    {line}\n")
    d = info.value.diagnostics[0]
    assert d.code == code and message in d.message, d.message
    assert d.span.col == col, d.span
    assert hint is None or any(hint in h for h in d.hints), d.hints


def test_a_view_after_contiguous_is_taken():
    plan = convplan.parse("plan P:\n    input [N, 6, 5]\n    transpose(1, 2)\n    contiguous()\n    view(N, -1)\n")
    assert [str(d) for d in plan.output_shape] == ["N", "30"]
    assert plan.verify(N=2).ok


def test_a_view_after_a_layer_that_makes_a_new_contiguous_tensor_is_taken():
    """Linear's output is contiguous whatever its input's layout (torch agrees: verify runs the view)."""
    plan = convplan.parse("plan P:\n    input [N, 6, 5]\n    Permute((0, 2, 1))\n    Linear(4)\n    view(N, -1)\n")
    assert [str(d) for d in plan.output_shape] == ["N", "20"]
    assert plan.verify(N=2).ok


@pytest.mark.parametrize("op", ["softmax(2)", "matmul(x, y)", "contiguous()"])
def test_a_view_after_an_operation_that_makes_a_new_contiguous_tensor_is_taken(op):
    """The operations whose OpSpec.layout is CONTIGUOUS (softmax, matmul, contiguous: torch's output is contiguous
    whatever its operands' strides, test_layouts measures it) end what a transpose did to the strides."""
    plan = convplan.parse(f"plan P:\n    input x [N, 6, 5]\n    y = transpose(x, 1, 2)\n    {op}\n    view(N, -1)\n")
    assert plan.verify(N=2).ok


def test_a_requirement_where_the_sizes_decide():
    plan = convplan.parse("plan P:\n    input [N, C, L]\n    reshape(N, 4, -1)\n")
    assert [str(r) for r in plan.requires] == ["C*L % 4 == 0"]
    assert [pyrepr(d) for d in plan.output_shape] == ["N", "4", "C*L//4"]
