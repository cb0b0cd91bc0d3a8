"""Calls with several outputs: `a, b = chunk(2, dim=1)`, nested names for torch's nested tuples
(`out, (h, c) = ...`), the graph's item nodes, build() and the generated code unpacking them."""

from __future__ import annotations

import pytest
import torch

import convplan
from convplan import PlanError
from convplan import nodes as n
from convplan.parser import parse_module, parse_tree

SHUFFLE_HALVES = """
plan Halves:
    input [N, C, H, W]
    a, b = chunk(2, dim=1)
    b
    Conv2d(8, kernel_size=1)
    cat(a, dim=1)
"""


def test_names_nest_as_torch_tuples_in_both_parsers():
    text = "plan P:\n    input [N, L, D]\n    out, (h, c) = chunk(2, dim=1)\n"
    for parse in (parse_module, parse_tree):
        stmt = parse(text).plans[0].body[1]
        assert isinstance(stmt, n.Layer) and stmt.call.name == "chunk"
        first, group = stmt.targets.items
        assert first.id == "out" and isinstance(group, n.Targets)
        assert [x.id for x in stmt.targets.names()] == ["out", "h", "c"]


def test_each_output_is_a_node_and_the_call_runs_once():
    plan = convplan.parse(SHUFFLE_HALVES)
    a, b = plan.node("a"), plan.node("b")
    assert a.op == "chunk" and b.op == "item" and b.inputs == (a.id,)
    assert a.unpack == (a.id, b.id)
    assert str(a.shape[1]) != str(b.shape[1])  # ceil and the rest
    assert [str(r) for r in plan.requires] == ["C - (C + 1)//2 >= 1"]
    bound = plan.bind(N=2, C=7, H=3, W=5)
    x = torch.randn(2, 7, 3, 5)
    module = bound.build().eval()
    first, second = x.chunk(2, dim=1)
    want = torch.cat([module.conv1(second), first], dim=1)
    assert torch.equal(module(x), want)
    assert plan.verify(N=2, C=7, H=3, W=5).ok


def test_generated_code_unpacks_and_matches_build():
    plan = convplan.parse(SHUFFLE_HALVES).bind(C=6)
    source = plan.to_source()
    assert "a, b = x.chunk(2, dim=1)" in source
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - our own output
    generated = namespace["Halves"]()
    built = plan.build()
    generated.load_state_dict(built.state_dict())
    x = torch.randn(3, 6, 4, 5)
    assert torch.equal(generated(x), built(x))


@pytest.mark.parametrize(("line", "code", "words"), [
    ("a, b, c = chunk(2, dim=1)", "E246", "gives 2 tensors here, but the statement names 3"),
    ("a = chunk(2, dim=1)", "E246", "gives 2 tensors here: name each"),
    ("a, b = Conv2d(4, 1)", "E246", "Conv2d gives one tensor"),
    ("a, b, (c, d) = split((1, 2, C - 3), dim=1)", "E246", "split gives one tensor here; the statement writes a "
                                                           "group of names"),
    ("a, b = permute(0, 2, 3, 1)", "E246", "permute gives one tensor"),
])
def test_the_names_must_fit_the_outputs(line, code, words):
    with pytest.raises(PlanError) as info:
        convplan.parse(f"plan P:\n    input [N, C, H, W]\n    {line}\n")
    d = info.value.diagnostics[0]
    assert d.code == code and words in d.message, d.message
    assert d.span.line == 3


def test_a_layer_with_nested_outputs_binds_each_name(monkeypatch):
    """The layer path (LSTM's `out, (h, c)`, seq's kinds): a rule returning nested Several shapes; the layer is named
    by the first name, as an operation with several outputs is."""
    from convplan.layers import REGISTRY, Arg, LayerSpec
    from convplan.ops import Several

    def rule(ctx, shape, a):
        n_, l_, d_ = shape
        return Several((tuple(shape), Several(((1, n_, a["hidden"]), (1, n_, a["hidden"] + d_)))))

    monkeypatch.setitem(REGISTRY, "Pair", LayerSpec(name="Pair", args=(Arg("hidden"),), rule=rule))
    plan = convplan.parse("plan P:\n    input [N, L, D]\n    out, (h, c) = Pair(4)\n    cat(h, c, dim=2)\n")
    out, h, c = plan.node("out"), plan.node("h"), plan.node("c")
    assert out.unpack == (out.id, (h.id, c.id)) and h.op == c.op == "item" and h.kind == "Pair"
    assert [str(d) for d in plan.output_shape] == ["1", "N", "D + 8"]
    with pytest.raises(PlanError) as info:
        convplan.parse("plan P:\n    input [N, L, D]\n    out, h = Pair(4)\n")
    assert "gives a tuple of tensors here; the statement writes one name" in info.value.diagnostics[0].message


def test_an_unread_output_is_underscore_in_the_generated_code():
    plan = convplan.parse("plan P:\n    input [N, C, L]\n    a, b, c = split(2, dim=2)\n    output c\n").bind(L=6)
    assert "_, _, c = x.split(2, dim=2)" in plan.to_source()
    assert plan.verify().ok


@pytest.mark.parametrize("op", ["a, b = chunk(2, dim=2)", "a, (b, c) = split((1, 1, 1), dim=2)"])
def test_an_operation_on_a_failed_lines_output_reports_that_error_only(op):
    """chunk of what a refused Conv1d passed on (a 2-D input: no dim 2) is not reported again, and each of
    its names stands for that input, so the lines that use them are still checked (was: a traceback)."""
    text = f"plan P:\n    input x [N, L]\n    Conv1d(8.0, 3)\n    {op}\n    b\n    Linear(4)\n"
    result = convplan.analyse(text)
    assert [d.code for d in result.diagnostics] == ["E106"]
    assert result.plan.graph.nodes[-1].shape[-1] == 4
