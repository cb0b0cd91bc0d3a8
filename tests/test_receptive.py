"""Receptive fields against the built module: the input positions one central output element depends on
(the support of its gradient, with every weight positive and max pools measured as average pools of the
same geometry) are exactly the predicted span, clipped to the input.  The field is the classic one, which
reads padding as positions: the sizes are large enough that the central element's windows stay inside
every intermediate tensor (nearer a border, intermediate padding makes the support smaller)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import convplan
from convplan.layers import GLOBAL
from convplan.receptive import Field
from convplan.shapes import evaluate

ROOT = Path(__file__).resolve().parent.parent

DILATED = """plan Dilated:
    input [N, 2, H, W]
    Conv2d(4, kernel_size=3, padding=1)
    ReLU()
    Conv2d(4, kernel_size=3, dilation=2, padding=2)
    ReLU()
    Conv2d(4, kernel_size=3, dilation=(4, 1), padding=(4, 1), stride=(1, 2))
    MaxPool2d(kernel_size=3, stride=2, padding=1)
    ZeroPad2d((1, 0, 2, 3))
    Conv2d(4, kernel_size=(1, 3))
"""

SAME_1D = """plan Same:
    input [N, 3, L]
    Conv1d(8, kernel_size=4, padding='same')
    BatchNorm1d()
    Conv1d(8, kernel_size=5, stride=3)
    AvgPool1d(2, ceil_mode=True)
    Conv1d(8, kernel_size=3, padding='same', dilation=3)
"""

VGG_STYLE = """plan VggStyle:
    input [N, 3, H, W]
    repeat i in 3:
        Conv2d(8, kernel_size=3, padding=1)
        ReLU()
        Conv2d(8, kernel_size=3, padding=1)
        MaxPool2d(2)
"""

ISSUE_11 = """plan NewKinds:
    input [N, 4, H, W]
    Conv2d(8, kernel_size=3, padding=1)
    PReLU(8)
    LPPool2d(2.0, 3, stride=2)
    ChannelShuffle(2)
    LocalResponseNorm(3)
    CircularPad2d((1, 2, 0, 1))
    Conv2d(8, kernel_size=3, dilation=2)
    CELU()
    Softplus()
    SyncBatchNorm()
    LPPool2d(1.0, (2, 3), stride=(1, 2))
"""

CASES = {
    "issue_11_kinds": (ISSUE_11, [{"H": 41, "W": 37}, {"H": 64, "W": 64}]),
    "dilated": (DILATED, [{"H": 41, "W": 37}, {"H": 64, "W": 64}]),
    "same_1d": (SAME_1D, [{"L": 400}, {"L": 731}]),
    "vgg_style": (VGG_STYLE, [{"H": 32, "W": 40}, {"H": 57, "W": 64}]),
    "resnet18": ((ROOT / "examples" / "resnet18.plan").read_text(), [{"H": 224, "W": 224}, {"H": 257, "W": 250}]),
    "inception": ((ROOT / "examples" / "inception.plan").read_text(), [{"H": 96, "W": 96}, {"H": 131, "W": 120}]),
}


def _positive(module: nn.Module) -> nn.Module:
    """Every weight positive, biases 0, max pools as average pools: no path cancels or is cut off."""
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
            avg = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[int(type(child).__name__[-2])]
            setattr(module, name, avg(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode))
    for p_name, p in module.named_parameters():
        with torch.no_grad():
            positive = torch.full_like(p, 0.1) + 0.01 * torch.rand_like(p)
            p.copy_(torch.zeros_like(p) if p_name.endswith("bias") else positive)
    return module.double().eval()


def _support(plan, sizes: dict, node) -> list[tuple[int, int]]:
    """(first, last) input position, per spatial dim, that the central output element of `node` reads."""
    bound = plan.bind(N=1, **sizes)
    module = _positive(bound.build())
    shape = [int(d) for d in bound.input_shape]
    x = torch.ones(*shape, dtype=torch.double, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = module.run(x)[node.id]
    centre = [d // 2 for d in value.shape[2:]]
    value[(0, slice(None), *centre)].sum().backward()
    nonzero = x.grad[0].abs().sum(0).nonzero()
    return [(int(nonzero[:, d].min()), int(nonzero[:, d].max())) for d in range(len(shape) - 2)], centre


@pytest.mark.parametrize("case", CASES)
def test_the_field_is_the_gradient_support(case):
    text, size_sets = CASES[case]
    plan = convplan.parse(text)
    fields = plan.receptive_field()
    checked = 0
    for sizes in size_sets:
        bound = plan.bind(N=1, **sizes)
        nodes = [n for n in bound.graph.nodes if n.op != "input"]
        for node in nodes[-1:] + nodes[len(nodes) // 3: len(nodes) // 3 + 1]:  # the last and an early one
            field = fields[node.name]
            if not all(isinstance(f, Field) for f in field):
                continue
            got, centre = _support(plan, sizes, node)
            for d, (f, i) in enumerate(zip(field, centre, strict=True)):
                first, last = (evaluate(v, {"N": 1, **sizes}) for v in f.span(i))
                extent = int(bound.input_shape[2 + d])
                assert got[d] == (max(first, 0), min(last, extent - 1)), (node.name, d, sizes)
            checked += 1
    assert checked >= 2


def test_known_fields():
    resnet = convplan.load(ROOT / "examples" / "resnet18.plan").receptive_field()
    last_conv = resnet["layer4_basicblock2_relu1"]  # the block's last ReLU
    assert last_conv[0] == Field(435, 32, -217)  # ResNet-18's published receptive field: 435
    assert resnet["fc"] == (GLOBAL, GLOBAL)
    se = convplan.load(ROOT / "examples" / "mobilenet_se.plan").receptive_field()
    assert any(all(f == GLOBAL for f in v) for v in se.values())  # a squeeze-excite scale reads everything
    unet = convplan.load(ROOT / "examples" / "unet.plan").receptive_field()
    assert unet[list(unet)[-1]] == (None, None)  # after ConvTranspose2d: not modelled, never a guess
