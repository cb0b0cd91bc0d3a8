"""The merge registry: a merge is one declaration in merges.py, and nothing else in convplan
names it.  A merge declared here, in the test, is checked, built and generated like `add`."""

from __future__ import annotations

import functools
import operator
import os

import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_codegen import round_trip
from test_pair_layers import _broadcastable, agree, dims

import convplan
from convplan import merges
from convplan.merges import MERGES, MergeSpec
from convplan.pysource import Ops, flat
from convplan.shapes import evaluate

PLAN = """
plan Diff():
    input a [N, 8]
    input b [N, 8]
    sub(a, b)
    Linear(3)
"""


@pytest.fixture
def with_sub(monkeypatch):
    """`sub(a, b)` = a - b: the strict shape rule of add, torch's `-`."""
    spec = MergeSpec(name="sub", rule=merges.add_rule, emit=lambda ins, args, value: Ops(tuple(ins), ("-",)),
                     compute=lambda torch, ops, args: operator.sub(*ops))
    monkeypatch.setitem(MERGES, "sub", spec)
    return spec


def test_a_new_merge_is_one_declaration(with_sub):
    plan = convplan.parse(PLAN)
    assert [m.op for m in plan.graph.merges] == ["sub"]
    source = plan.to_source(N=2)
    assert " = a - b  # [N, 8]" in source and "import torch" not in source, source
    round_trip(plan, {"N": 2}, source)


def test_a_new_merge_is_refused_like_add(with_sub):
    bad = PLAN.replace("input b [N, 8]", "input b [N, 9]")
    with pytest.raises(convplan.PlanError, match=r"sub: tensors \[N, 8\] and \[N, 9\] cannot be added"):
        convplan.parse(bad)


@pytest.mark.parametrize("name", sorted(MERGES))
def test_every_merge_computes_the_shape_its_rule_gives(name):
    """torch is the oracle: `compute` (what build runs) gives the shape `rule` (what check reads) predicts,
    and `emit` (what codegen writes) names each operand."""
    spec = MERGES[name]
    args = dict(spec.args)
    shape = tuple(sympy.Integer(v) for v in (2, 3, 4))
    out, conds = spec.rule([shape, shape], args)
    assert not conds
    assert spec.compute(torch, [torch.ones(2, 3, 4), torch.ones(2, 3, 4)], args).shape == tuple(out)
    code = flat(spec.emit(["left", "right"], args, str))
    assert "left" in code and "right" in code and ("torch." in code) == spec.needs_torch


# -- broadcasting: add and mul as torch's + and * ----------------------------------------------


@st.composite
def broadcast_case(draw):
    """Two or three shapes: one drawn, the others from it with dims turned 1 or dropped from the front, now and
    then one dim changed (torch refuses most of those)."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    others = [_broadcastable(draw, shape) for _ in range(draw(st.integers(1, 2)))]
    shapes = [shape, *others]
    return draw(st.sampled_from(["add", "mul"])), draw(st.permutations(shapes))


@given(broadcast_case())
@settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 150)), deadline=None)
def test_add_and_mul_broadcast_as_torch_does(case):
    """Both accept or both refuse; the output's shape agrees, at concrete sizes and with every size a symbol
    (a dim of 1 stays a written 1: a symbol stretches nothing, docs/language.md); build() computes torch's."""
    op, shapes = case
    tensors = [torch.randn(*s) for s in shapes]
    names = "abc"[: len(shapes)]
    want = lambda: [functools.reduce(operator.add if op == "add" else operator.mul, tensors)]  # noqa: E731
    for symbolic in (False, True):
        sizes: dict = {}
        text = "plan T:\n" + "".join(f"    input {n} {dims(s, symbolic, sizes, n.upper())}\n"
                                     for n, s in zip(names, shapes, strict=True))
        text += f"    out = {op}({', '.join(names)})\n"
        plan = agree(text, sizes, want, ["out"])
        if plan is not None and not symbolic:
            with torch.no_grad():
                assert torch.equal(plan.build()(*tensors), want()[0]), text


@pytest.mark.parametrize("left, right, out", [
    ("[N, C, H, W]", "[C, 1, 1]", (2, 3, 4, 5)),  # a per-channel parameter: a missing leading dim and two 1s
    ("[N, C, H, W]", "[1, C, 1, 1]", (2, 3, 4, 5)),
    ("[N, 1, D]", "[1, T, D]", (2, 6, 7)),  # both stretch
])
def test_the_broadcasts_the_issue_names(left, right, out):
    sizes = {"N": 2, "C": 3, "H": 4, "W": 5, "D": 7, "T": 6}
    plan = convplan.parse(f"plan T:\n    input a {left}\n    input b {right}\n    add(a, b)\n")
    assert not plan.requires
    assert tuple(evaluate(d, sizes) for d in plan.output_shape) == out


def test_a_learnable_per_channel_scale_is_added():
    plan = convplan.parse("plan Scale:\n    input [N, 8, H, W]\n    x = Conv2d(8, 3, padding=1)\n"
                          "    bias = Parameter((8, 1, 1), init='randn')\n    add(x, bias)\n")
    assert plan.total_params == 8 * 8 * 9 + 8 + 8
    module = plan.build(N=2, H=5, W=6)
    round_trip(plan, {"N": 2, "H": 5, "W": 6})
    assert tuple(module(torch.randn(2, 8, 5, 6)).shape) == (2, 8, 5, 6)


def test_a_refused_broadcast_names_both_shapes_where_it_is_written():
    with pytest.raises(convplan.PlanError) as info:
        convplan.parse("plan T:\n    input a [N, 4, L]\n    input b [5, 1]\n    add(a, b)\n")
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.span.line, diag.span.col) == ("E330", 4, 5)
    assert "tensors [N, 4, L] and [5, 1] cannot be added: dim -2 (from the right) differs (4 vs 5)" in diag.message
    assert any("missing on the left" in h for h in diag.hints if h)


def test_a_symbolic_dim_against_another_is_a_requirement():
    """torch would stretch C where it is 1; a plan's symbol stretches nothing: C == D is required."""
    plan = convplan.parse("plan T:\n    input a [N, C]\n    input b [N, D]\n    out = mul(a, b)\n")
    assert [str(r.condition) for r in plan.requires] == ["Eq(C, D)"]


def test_an_unknown_meets_the_size_it_is_added_to():
    """`?` is solved from a broadcasting add as from the strict one: where it meets a size (not a 1)."""
    plan = convplan.parse("plan T:\n    input a [N, 8, H, W]\n    input s [8, 1, 1]\n    b = Conv2d(a, ?, 1)\n"
                          "    add(b, s)\n")
    assert tuple(plan.output_shape)[1] == 8


def test_a_residual_of_one_channel_broadcasts_as_torch_does():
    """Pinned from test_architectures' drawn structures: a body of 1 channel added to a 2-channel input."""
    plan = convplan.parse("plan R:\n    input [N, 2, L]\n    residual:\n        Conv1d(1, kernel_size=1)\n")
    assert tuple(plan.output_shape)[1] == 2 and not plan.requires
    x = torch.randn(1, 2, 1)
    module = plan.build()
    with torch.no_grad():
        assert torch.equal(module(x), module.conv1(x) + x)
