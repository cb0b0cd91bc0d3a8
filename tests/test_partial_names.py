"""What a partial plan and its messages show for what was refused or left unsolved, and `bias=None`."""

from __future__ import annotations

import pytest
import torch

import convplan
from convplan.shapes import pyrepr


def shapes(text: str) -> dict[str, str]:
    plan = convplan.analyse(text).plan
    return {node.name: "[" + ", ".join(pyrepr(d) for d in node.shape) + "]" for node in plan.graph.nodes}


def test_a_refused_input_dim_shows_what_was_written():
    found = shapes("plan P:\n    input [N, 3*foo, L]\n    Conv1d(8, kernel_size=3)\n")
    assert found["x"] == "[N, <refused: 3*foo>, L]"
    assert "refused1" not in repr(convplan.analyse("plan P:\n    input [N, 3*foo, L]\n    ReLU()\n").plan.layers)


def test_a_refused_name_shows_the_name():
    result = convplan.analyse("plan P(print=3):\n    input [N, C, print]\n    Conv1d(8, kernel_size=3)\n")
    assert [d.code for d in result.errors] == ["E202"]
    assert shapes("plan P:\n    input [N, C, print]\n    ReLU()\n")["x"] == "[N, C, <refused: print>]"


def test_an_unsolved_unknown_shows_as_the_plan_wrote_it():
    text = "plan P:\n    input [N, 3, H, W]\n    Conv2d(8, kernel_size=?)\n    Conv2d(8, kernel_size=?k)\n"
    found = shapes(text)
    assert found["conv1"] == "[N, 8, H - ?kernel_size + 1, W - ?kernel_size + 1]"
    assert "?k" in found["conv2"] and "_k" not in found["conv2"] and "_kernel_size" not in found["conv2"]
    messages = " ".join(d.message + " ".join(d.hints) for d in convplan.analyse(text).diagnostics)
    assert "_kernel_size" not in messages and "_k" not in messages


def test_an_unknown_in_a_failing_requirement_is_shown_as_written():
    text = "plan P:\n    input [N, 3, 8]\n    Conv1d(8, kernel_size=?k) -> [N, 8, 10]\n"
    result = convplan.analyse(text)
    assert result.errors and all("_k" not in d.message for d in result.diagnostics)


@pytest.mark.parametrize("layer, torch_layer", [("Conv1d(4, 3, bias=None)", torch.nn.Conv1d(3, 4, 3, bias=None)),
                                                ("Linear(4, bias=None)", torch.nn.Linear(5, 4, bias=None))])
def test_bias_none_is_refused_with_the_fix_torch_would_have_read(layer, torch_layer):
    text = f"plan P:\n    input [N, 3, 5]\n    {layer}\n"
    with pytest.raises(convplan.PlanError) as err:
        convplan.parse(text)
    (diag,) = err.value.diagnostics
    assert diag.code == "E106" and "bias must be True or False, got None" in diag.message
    assert diag.hints[0].startswith("write bias=False")
    fixed = convplan.parse(text.replace("bias=None", "bias=False"))
    assert torch_layer.bias is None  # torch reads None as False: the fix builds the same layer
    assert int(fixed.layers[0].params) == sum(p.numel() for p in torch_layer.parameters())


def test_none_stays_accepted_where_torchs_default_is_none():
    plan = convplan.parse("plan P:\n    input [N, 3, 5]\n    Upsample(scale_factor=2.0, mode='linear', "
                          "align_corners=None)\n")
    assert plan.layers[0].args["align_corners"] is None
