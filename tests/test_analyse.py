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


def test_the_params_pass_counts_layers_that_share_a_resolution_by_their_own_arguments():
    """The pass reuses the count of the last layer sharing a node's `given` tuple only where the arguments are
    equal: layers that share it with other values (or another kind) are counted for themselves."""
    from convplan.errors import Span
    from convplan.graph import Graph, Node

    given = ("out_channels", "kernel_size")  # one object, as layercall.py shares a binding's
    span = Span(1, 1, 1, 2)

    def conv(i, kind, c_in, c_out, k):
        args = {"out_channels": c_out, "kernel_size": k, "stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                "bias": True, "padding_mode": "zeros", "in_channels": c_in}
        return Node(i, "layer", f"conv{i}", (i - 1,), (), span, kind, args, given)

    nodes = (Node(0, "input", "x", (), (), span), conv(1, "Conv2d", 3, 8, 3), conv(2, "Conv2d", 8, 8, 3),
             conv(3, "Conv2d", 8, 8, 3), conv(4, "Conv1d", 8, 8, 3), conv(5, "Conv2d", sympy.Integer(8), 8, 3))
    graph = run_passes(Graph(nodes, (5,)))
    assert [node.meta["params"] for node in graph.nodes] == [0, 8 * 3 * 9 + 8, 8 * 8 * 9 + 8, 8 * 8 * 9 + 8,
                                                              8 * 8 * 3 + 8, 8 * 8 * 9 + 8]
    assert all(type(node.meta["params"]) is type(sympy.Integer(2)) for node in graph.nodes[1:])
    assert [node.meta["params"] for node in graph.nodes] == \
        [0, *(sympy.Integer(node.spec.count(node.args)) for node in graph.nodes[1:])]


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


# -- a failed import: the rest of the file is still checked ----------------------------------------

LIB_OK = "block Head(k):\n    input [N, C, L]\n    Conv1d(k, kernel_size=3)\n"
FAILED_IMPORTS = {  # how the import fails: (the files besides main.plan, its import line, the import's error)
    "no such file": ({}, 'from "lib.plan" import Head', ("E023", "main.plan", 1)),
    "no such block": ({"lib.plan": LIB_OK.replace("Head", "Hed")}, 'from "lib.plan" import Head',
                      ("E021", "main.plan", 1)),
    "a syntax error in it": ({"lib.plan": LIB_OK.replace("kernel_size=3)", "kernel_size=3")},
                             'from "lib.plan" import Head', ("E014", "lib.plan", 3)),
    "a cycle": ({"lib.plan": 'from "main.plan" import Head\n'}, 'from "lib.plan" import Head',
                ("E020", "lib.plan", 1)),
    "a whole file that does not parse": ({"lib.plan": "block Head(k:\n"}, 'import "lib.plan"',
                                         ("E001", "lib.plan", 1)),
}
BODY = "plan P:\n    input [N, 2, L]\n    Conv1d(8, 3)\n    Head(4)\n    ReLU()\n    Flatten()\n    Linear(3)\n"


@pytest.mark.parametrize("case", FAILED_IMPORTS, ids=str)
def test_a_failed_import_leaves_the_rest_of_the_file_checked(tmp_path, case):
    files, import_line, (code, file, line) = FAILED_IMPORTS[case]
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    main = tmp_path / "main.plan"
    main.write_text(f"{import_line}\n{BODY}", encoding="utf-8")
    result = convplan.analyse_file(main)
    assert result.plan is not None and not result.ok
    found = [(d.code, Path(d.file).name, d.span.line) for d in result.errors]
    assert (code, file, line) in found  # the import's own problem, where it is written
    assert ("E100", "main.plan", 5) in found  # the call of the name it should have brought, and only that
    # nothing else: no error on a line that does not depend on the import, and each error once
    assert all(f == "lib.plan" or ln == 1 for c, f, ln in found if (c, f, ln) != ("E100", "main.plan", 5))
    assert len(set(found)) == len(found)
    [call] = [d for d in result.errors if d.code == "E100"]
    assert ("import" in call.message and call.notes[0][1].line == 1) or "could not be imported" in call.hints[-1]
    # every line that does not depend on the missing block has the shape it has without that line
    without = convplan.parse(BODY.replace("    Head(4)\n", ""), str(tmp_path / "other.plan"))
    shapes = {node.name: node.shape for node in result.plan.graph.nodes}
    assert shapes == {node.name: node.shape for node in without.graph.nodes}
    with pytest.raises(PlanError) as info:  # the strict API refuses it, with every error at once
        convplan.load(main)
    assert [(d.code, d.span.line) for d in info.value.diagnostics] == [(d.code, d.span.line) for d in
                                                                         sorted(result.errors, key=lambda d: (
                                                                             d.span.line, d.span.col))]


def test_a_block_of_a_failed_import_used_inside_another_block(tmp_path):
    # the library's own block calls the missing one: its error is located there, the plan still checked
    (tmp_path / "lib.plan").write_text('from "gone.plan" import Unit\nblock Pair:\n    input [N, C, L]\n'
                                       '    Unit()\n    ReLU()\n', encoding="utf-8")
    main = tmp_path / "main.plan"
    main.write_text('from "lib.plan" import Pair\nplan P:\n    input [N, 2, L]\n    Pair()\n    Conv1d(4, 3)\n',
                    encoding="utf-8")
    result = convplan.analyse_file(main)
    assert [(d.code, Path(d.file).name, d.span.line) for d in result.errors] == [
        ("E023", "lib.plan", 1), ("E100", "lib.plan", 4)]
    assert result.plan.layers[-1].shape == (sympy.Symbol("N", integer=True, positive=True), 4,
                                             sympy.Symbol("L", integer=True, positive=True) - 2)


def test_a_library_whose_own_import_fails_keeps_its_blocks(tmp_path):
    (tmp_path / "lib.plan").write_text('import "gone.plan"\n' + LIB_OK, encoding="utf-8")
    main = tmp_path / "main.plan"
    main.write_text(f'import "lib.plan"\n{BODY}', encoding="utf-8")
    result = convplan.analyse_file(main)
    assert [(d.code, Path(d.file).name, d.span.line) for d in result.errors] == [("E023", "lib.plan", 1)]
    assert "gone.plan" in result.errors[0].message and result.errors[0].source.startswith('import "gone.plan"')
    assert str(result.plan.node("head1_conv1").shape) == "(N, 4, L - 4)"  # Head is there and checked
