"""The merge registry: a merge is one declaration in merges.py, and nothing else in convplan
names it.  A merge declared here, in the test, is checked, built and generated like `add`."""

from __future__ import annotations

import operator

import pytest
import sympy
import torch
from test_codegen import round_trip

import convplan
from convplan import merges
from convplan.merges import MERGES, MergeSpec
from convplan.pysource import Ops, flat

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
