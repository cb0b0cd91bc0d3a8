"""Results that survive errors (`convplan.analyse`) and the pass mechanism (`node.meta`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

import convplan
from convplan import nodes as n
from convplan.errors import PlanError
from convplan.layers import REGISTRY
from convplan.merges import MERGES
from convplan.passes import PASSES, run_passes

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_ERRORS = sorted((ROOT / "tests" / "golden" / "errors").glob("*.plan"))
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))


def _first_error_line(result, file: str) -> int:
    """The first line of `file` an error points at, directly or as the call site of a block."""
    lines = []
    for d in result.errors:
        if d.file == file:
            lines.append(d.span.line)
        lines += [note[1].line for note in d.notes if len(note) == 2 or note[2] == file]
    return min(lines)


@pytest.mark.parametrize("path", GOLDEN_ERRORS, ids=lambda p: p.stem)
def test_every_line_before_the_first_error_has_its_shape(path):
    result = convplan.analyse_file(path)
    try:
        convplan.load(path)
    except PlanError as exc:
        raised = exc.diagnostics
    else:
        assert result.ok, "analyse found errors that load did not"
        return
    assert {(d.code, d.span, d.message) for d in raised} <= {(d.code, d.span, d.message) for d in result.errors}
    if result.plan is None:  # the text does not parse, or an import fails: nothing to check
        assert all(d.code < "E100" for d in result.errors), [d.code for d in result.errors]
        return
    plan = result.plan
    assert not plan.complete and plan.errors
    first = _first_error_line(result, str(path))
    lines = {node.line for node in plan.graph.nodes if not node.file}
    for stmt in plan.definition.body:
        if stmt.span.end_line >= first:
            break
        if isinstance(stmt, n.Input) or (isinstance(stmt, n.Layer) and (stmt.call.name in REGISTRY
                                                                        or stmt.call.name in MERGES)):
            assert stmt.span.line in lines, f"line {stmt.span.line} has no node before the error on line {first}"


def test_lines_beside_an_error_keep_their_shapes():
    result = convplan.analyse("plan A:\n"
                              "    input [N, 3, H, W]\n"
                              "    Conv2d(8, 3)\n"
                              "    Conv2x(4)\n"
                              "    ReLU()\n"
                              "    Conv2d(16, 3, stride=2)\n")
    assert [d.code for d in result.errors] == ["E100"]
    plan = result.plan
    shapes = {node.name: node.shape for node in plan.graph.nodes}
    N, H, W = (sympy.Symbol(s, integer=True, positive=True) for s in "NHW")
    assert shapes["relu1"] == (N, 8, H - 2, W - 2)  # the failed line passed its input on
    assert plan.node("conv2").params == 16 * 8 * 9 + 16
    assert plan.output_shape == plan.node("conv2").shape
    assert "partial: 1 error)" in repr(plan)  # one error, not "1 errors"


def test_analyse_gives_every_error_and_the_warnings():
    lines = ["plan A:", "    input [N, 1, L]"] + [f"    Conv1d(4, kernel_size=3, strid={i})" for i in range(30)]
    lines.append("    MaxPool1d(4)")
    result = convplan.analyse("\n".join(lines) + "\n")
    assert len(result.errors) == 30  # PlanError keeps 20 of them and counts the rest
    assert [w.code for w in result.warnings] == ["W310"]
    assert result.diagnostics == tuple(sorted(result.diagnostics, key=lambda d: (d.span.line, d.span.col)))
    with pytest.raises(PlanError) as info:
        convplan.parse("\n".join(lines) + "\n")
    assert len(info.value.diagnostics) == 20 and info.value.extra == 10


def test_analyse_of_text_that_does_not_parse():
    result = convplan.analyse("plan A:\n  input [N, 3, H\n")
    assert result.plan is None and not result.ok
    assert [d.code for d in result.errors] == ["E014"]


def test_analyse_file_of_a_missing_file(tmp_path):
    result = convplan.analyse_file(tmp_path / "missing.plan")
    assert result.plan is None and [d.code for d in result.errors] == ["E011"]


def test_a_clean_plan_analyses_as_it_parses():
    path = ROOT / "examples" / "cnn1d.plan"
    result, plan = convplan.analyse_file(path), convplan.load(path)
    assert result.ok and result.plan.complete
    assert [(x.name, x.shape, x.params) for x in result.plan.graph.nodes] == \
        [(x.name, x.shape, x.params) for x in plan.graph.nodes]
    assert result.plan.requires == plan.requires


def test_nesting_too_deep_is_an_error_not_a_recursion_error():
    depth = 400
    body = "".join("    " * (i + 1) + "if True:\n" for i in range(depth)) + "    " * (depth + 1) + "ReLU()\n"
    text = "plan A:\n    input [N, 4]\n" + body
    result = convplan.analyse(text)
    assert [d.code for d in result.errors] == ["E262"]
    with pytest.raises(PlanError):
        convplan.parse(text)


# -- passes -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_params_pass_counts_each_layer_by_its_registry_entry(path):
    plan = convplan.load(path)
    for node in plan.graph.nodes:
        want = node.spec.count(node.args) if node.op == "layer" else sympy.Mul(*node.shape) if node.op == "param" else 0
        assert sympy.expand(node.meta["params"] - want) == 0
        assert node.params is node.meta["params"]
    assert plan.total_params == sympy.Add(*(node.meta["params"] for node in plan.graph.nodes))  # learnable tensors too


def test_a_pass_is_one_function_that_annotates_nodes():
    def ranks(graph):
        for node in graph.nodes:
            node.meta["rank"] = len(node.shape)

    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    graph = run_passes(plan.graph, [ranks])
    assert [node.meta["rank"] for node in graph.nodes] == [3, 3, 3, 3, 2, 2]
    assert ranks not in PASSES  # not registered: it ran only here
    assert all("params" in node.meta for node in graph.nodes)  # the registered pass ran at check


def test_meta_follows_a_substitution():
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    bound = plan.graph.substitute({sympy.Symbol("L", integer=True, positive=True): sympy.Integer(20)})
    assert bound.nodes[-1].params == 64 * 10 + 2


def test_output_inside_a_branch_is_refused():
    text = ("plan A:\n    input [N, 4]\n    add:\n        branch:\n            output x\n"
            "        branch:\n            ReLU()\n    Linear(3)\n")
    result = convplan.analyse(text)
    assert [(d.code, d.span.line) for d in result.errors] == [("E206", 5)]
