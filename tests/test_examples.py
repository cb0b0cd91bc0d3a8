"""The notebook's cases, kept as plans in examples/, each checked against what torch does.

Every number is computed with torch here AND written down literally, so a change in
either convplan or torch shows up.  examples/errors/ holds plans that must be refused.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import convplan
from convplan import PlanError, cli
from convplan.shapes import evaluate, pyrepr

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GOOD = sorted(EXAMPLES.glob("*.plan"))
BAD = sorted((EXAMPLES / "errors").glob("*.plan"))
PROPERTY = settings(max_examples=40, deadline=None)


@functools.cache  # plans are immutable; hypothesis calls these many times
def load(name: str) -> convplan.Plan:
    return convplan.load(EXAMPLES / name)


def ints(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


def torch_shape(module: nn.Module, *shape: int, device: str = "cpu") -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(module.to(device)(torch.zeros(*shape, device=device)).shape)


def refusal(path: Path) -> convplan.Diagnostic:
    with pytest.raises(PlanError) as info:
        convplan.load(path)
    return info.value.diagnostics[0]


# -- Conv1d(5, 3, kernel_size=3) on (1, 5, 10) -------------------------------------------


def test_notebook_conv1d():
    plan = load("notebook_conv1d.plan")
    conv = nn.Conv1d(5, 3, kernel_size=3)
    assert torch_shape(conv, 1, 5, 10) == (1, 3, 8)
    assert ints(plan.output_shape) == (1, 3, 8)
    layer = plan.layers[0]
    assert layer.args["in_channels"] == 5
    assert int(layer.params) == sum(p.numel() for p in conv.parameters()) == 48


# -- the CNN1D classifier: in_features = 32*(L//2) ----------------------------------------


def notebook_cnn1d(length: int, classes: int = 2) -> nn.Sequential:
    """The notebook's model, written by hand with in_features from convplan's formula."""
    return nn.Sequential(nn.Conv1d(1, 32, kernel_size=3, stride=1, padding=1), nn.ReLU(),
                         nn.MaxPool1d(kernel_size=2, stride=2), nn.Flatten(), nn.Linear(32 * (length // 2), classes))


def test_cnn1d_in_features_formula():
    plan = load("cnn1d.plan")
    in_features = plan.layers[-1].args["in_features"]
    assert pyrepr(in_features) == "32*(L//2)"
    assert plan.to_dict()["layers"][-1]["args"]["in_features"] == "32*(L//2)"
    assert evaluate(in_features, {"L": 20}) == 320
    bound = plan.bind(L=20)
    assert bound.layers[-1].args["in_features"] == 320
    assert torch_shape(notebook_cnn1d(20)[:4], 4, 1, 20) == (4, 320)
    assert torch_shape(notebook_cnn1d(20), 4, 1, 20) == (4, 2)
    assert [str(r) for r in plan.requires] == ["L >= 2"]


@PROPERTY
@given(length=st.integers(2, 300), batch=st.integers(1, 3))
def test_cnn1d_matches_torch_for_any_length(length, batch):
    plan = load("cnn1d.plan")
    model = notebook_cnn1d(length)
    flat = evaluate(plan.layers[-1].args["in_features"], {"L": length})
    assert flat == torch_shape(model[:4], batch, 1, length)[1]
    out = [evaluate(d, {"N": batch, "L": length}) for d in plan.output_shape]
    assert tuple(out) == torch_shape(model, batch, 1, length)


def test_cnn1d_refuses_length_one_like_torch():
    with pytest.raises(RuntimeError):
        torch_shape(notebook_cnn1d(1), 1, 1, 1)
    with pytest.raises(PlanError) as info:
        load("cnn1d.plan").bind(L=1)
    assert info.value.diagnostics[0].line == 7  # the MaxPool1d


# -- output length: 6, not 6.5 ------------------------------------------------------------


def test_conv_length_is_an_integer():
    conv = nn.Conv1d(1, 32, kernel_size=3, stride=2, padding=2)
    assert torch_shape(conv, 10, 1, 10) == (10, 32, 6)
    assert (10 + 2 * 2 - 3) / 2 + 1 == 6.5  # the formula without the floor
    plan = load("conv_length.plan").bind(N=10, L=10)
    assert ints(plan.output_shape) == (10, 32, 6)


@PROPERTY
@given(length=st.integers(1, 500))
def test_conv_length_matches_torch_for_any_length(length):
    conv = nn.Conv1d(1, 32, kernel_size=3, stride=2, padding=2)
    plan = load("conv_length.plan")
    out = tuple(evaluate(d, {"N": 1, "L": length}) for d in plan.output_shape)
    assert out == torch_shape(conv, 1, 1, length)


# -- Conv3d(16, 8, 3) on a volume, and the same volume refused by Conv2d -------------------


def test_conv3d_volume():
    # meta: torch's own shape logic without 0.7 s of arithmetic
    assert torch_shape(nn.Conv3d(16, 8, 3), 20, 16, 10, 50, 100, device="meta") == (20, 8, 8, 48, 98)
    assert ints(load("conv3d.plan").output_shape) == (20, 8, 8, 48, 98)


def test_conv2d_on_volume_is_refused_with_a_hint():
    with pytest.raises(RuntimeError, match="Expected 3D .*or 4D"):
        torch_shape(nn.Conv2d(16, 8, 3), 20, 16, 10, 50, 100, device="meta")
    diag = refusal(EXAMPLES / "errors" / "conv2d_on_volume.plan")
    assert (diag.code, diag.line, diag.column) == ("E301", 5, 5)
    assert "5-D" in diag.message and "[20, 16, 10, 50, 100]" in diag.message
    assert any("Conv3d" in h for h in diag.hints)


def test_conv2d_on_volume_cli_points_at_the_call(capsys):
    assert cli.main(["check", str(EXAMPLES / "errors" / "conv2d_on_volume.plan")]) == 1
    err = capsys.readouterr().err
    assert "conv2d_on_volume.plan:5:5: error" in err
    assert "    Conv2d(8, 3)" in err and "^^^^^^" in err
    assert "use Conv3d" in err


# -- Conv1d with a 2-tuple kernel ------------------------------------------------------------


def test_torch_builds_a_1d_conv_with_a_2d_kernel_then_fails():
    conv = nn.Conv1d(2, 1, kernel_size=(2, 1))  # no check at construction
    assert tuple(conv.weight.shape) == (1, 2, 2, 1)
    with pytest.raises(RuntimeError, match="4-dimensional weight"):
        torch_shape(conv, 1, 2, 10)


def test_conv1d_kernel_tuple_is_refused_at_its_line():
    diag = refusal(EXAMPLES / "errors" / "conv1d_kernel_tuple.plan")
    assert (diag.code, diag.line, diag.column) == ("E300", 6, 15)  # the kernel_size argument
    assert "kernel_size" in diag.message and "(2, 1)" in diag.message


# -- ?padding = 1 keeps the length ---------------------------------------------------------


def test_same_length_solves_padding():
    plan = load("same_length.plan")
    assert plan.unknowns == {"padding": 1}
    assert plan.layers[0].args["padding"] == 1
    assert [pyrepr(d) for d in plan.output_shape] == ["N", "3", "L"]


@PROPERTY
@given(length=st.integers(1, 200))
def test_same_length_padding_matches_torch(length):
    padding = load("same_length.plan").unknowns["padding"]
    for p in (padding - 1, padding, padding + 1):
        if length + 2 * p < 3:
            continue
        got = torch_shape(nn.Conv1d(5, 3, kernel_size=3, padding=p), 1, 5, length)[2]
        assert (got == length) == (p == padding)


# -- every example ------------------------------------------------------------------------


def test_the_examples_are_there():
    names = {p.name for p in GOOD}
    assert {"notebook_conv1d.plan", "cnn1d.plan", "conv_length.plan", "conv3d.plan", "same_length.plan"} <= names
    assert {"conv2d_on_volume.plan", "conv1d_kernel_tuple.plan"} <= {p.name for p in BAD}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_example_verifies_against_torch(path):
    report = convplan.load(path).verify()
    assert report.ok, str(report)
    graph = convplan.load(path).graph
    assert all(run.checked == sum(node.op != "input" for node in graph.nodes) for run in report.runs)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_error_example_is_refused(path):
    diag = refusal(path)
    assert diag.line > 1 and diag.file == str(path)


def test_requirement_after_a_solved_unknown_is_in_simplest_form():
    solved = convplan.parse("plan P:\n    input [N, 2, L]\n    MaxPool1d(kernel_size=?, stride=2) -> [N, 2, L//2]\n")
    assert solved.unknowns == {"kernel_size": 2}
    assert [str(r) for r in solved.requires] == ["L >= 2"]  # not `L - 2 >= 0`


def test_power_in_doubling_dilations_matches_torch():
    """`**` with a repeat index: the WaveNet-style stack keeps the length, as torch does."""
    text = ("plan Dilated(width=8):\n    input [N, 1, L]\n    repeat i in 4:\n"
            "        Conv1d(width, kernel_size=3, dilation=2**i, padding=2**i)\n"
            "    Conv1d(width**2 - 2**3 * 7, kernel_size=1)\n    Flatten()\n    Linear(-2**2 + 2**3)\n")
    plan = convplan.parse(text, "dilated.plan")
    assert [layer.args["dilation"] for layer in plan.layers[:4]] == [1, 2, 4, 8]
    assert plan.layers[4].args["out_channels"] == 8  # 64 - 56
    assert [str(d) for d in plan.output_shape] == ["N", "4"]
    import torch

    model = plan.build(L=13)
    assert tuple(model(torch.randn(2, 1, 13)).shape) == (2, 4)
