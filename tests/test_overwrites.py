"""W350: an in-place layer that overwrites a tensor another node reads, checked against what torch does
(a different output in eval mode, or a failing backward pass)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan

BODY = {"relu": "ReLU(inplace=True)", "conv": "Conv1d(4, kernel_size=3, padding=1)", "flatten": "Flatten(1, 1)",
        "identity": "Identity()", "bn": "BatchNorm1d()"}


def residual(body: list[str], shortcut: str | None) -> str:
    lines = ["plan R:", "    input [N, 4, L]", "    Conv1d(4, kernel_size=1)", "    residual:"]
    lines += [f"        {BODY[b]}" for b in body]
    if shortcut:
        lines += ["    shortcut:", f"        {shortcut}"]
    return "\n".join(lines) + "\n"


def w350(text: str) -> list:
    return [w for w in convplan.parse(text).warnings if w.code == "W350"]


def torch_differs(text: str) -> bool:
    """Whether the module with inplace=True computes something else than the one without, in eval mode."""
    torch.manual_seed(0)
    a = convplan.parse(text).build(N=2, L=6).eval()
    b = convplan.parse(text.replace("inplace=True", "inplace=False")).build(N=2, L=6).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, 6)
    with torch.no_grad():
        return not torch.equal(a(x), b(x))


@settings(max_examples=30, deadline=None)
@given(body=st.lists(st.sampled_from(sorted(BODY)), min_size=1, max_size=4),
       shortcut=st.sampled_from([None, "Conv1d(4, kernel_size=1)", "Identity()"]))
def test_w350_exactly_where_torch_computes_something_else(body, shortcut):
    if "relu" not in body or body.count("relu") > 1:
        body = [*body, "relu"] if "relu" not in body else body
        if body.count("relu") > 1:
            return  # a second ReLU on a non-negative tensor changes nothing: not this test's question
    text = residual(body, shortcut)
    assert bool(w350(text)) == torch_differs(text), (body, shortcut, [w.message for w in w350(text)])


def test_the_warning_names_the_reader_and_the_fix():
    (w,) = w350(residual(["relu", "conv"], None))
    assert "overwrites conv1's output" in w.message and "add1 then reads relu1's result instead" in w.message
    assert w.hints[0].startswith("write ReLU() without inplace=True") and w.span.line == 5


def test_a_reader_that_ran_before_makes_training_fail():
    text = ("plan R:\n    input [N, 4, L]\n    Conv1d(4, kernel_size=1)\n    cat(dim=1):\n        branch:\n"
            "            Conv1d(4, kernel_size=1)\n        branch:\n            ReLU(inplace=True)\n")
    (w,) = w350(text)
    assert "conv2 reads it before, and training fails" in w.message
    model = convplan.parse(text).build(N=2, L=6)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        model(torch.randn(2, 4, 6, requires_grad=True)).sum().backward()
    assert not torch_differs(text)  # eval mode is right: only training fails


@pytest.mark.parametrize("path", ["examples/resnet18.plan", "examples/alexnet.plan", "examples/mobilenet_se.plan"])
def test_no_w350_in_networks_that_use_inplace_safely(path):
    assert not [w for w in convplan.load(path).warnings if w.code == "W350"]


def test_a_block_from_another_file_is_warned_once_in_that_file(tmp_path):
    (tmp_path / "blocks.plan").write_text("block Res():\n    input [N, C, L]\n    residual:\n"
                                          "        ReLU(inplace=True)\n        Conv1d(C, kernel_size=3, padding=1)\n")
    main = tmp_path / "main.plan"
    main.write_text('from "blocks.plan" import Res\nplan M:\n    input [N, 4, L]\n    Conv1d(4, kernel_size=1)\n'
                    "    Res()\n    Res()\n")
    (w,) = [w for w in convplan.load(main).warnings if w.code == "W350"]
    assert w.file.endswith("blocks.plan") and w.span.line == 4
    assert "ReLU(inplace=True)" in convplan.PlanError([w], "").render()  # the excerpt is from blocks.plan


def test_an_output_overwritten_by_its_only_reader_is_warned():
    # the inplace layer is the only node reading the conv's output, but the plan also returns it
    text = ("plan P:\n    input x [N, 4, H, W]\n    a = Conv2d(4, 1)\n    b = ReLU(inplace=True)\n"
            "    output a, b\n")
    warnings = [d for d in convplan.analyse(text).diagnostics if d.code == "W350"]
    assert len(warnings) == 1 and "the output a" in warnings[0].message
