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
from hypothesis import given, settings
from hypothesis import strategies as st
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
    head = unet[list(unet)[-1]]  # after four ConvTranspose2d: exact per position, as floors and ceilings
    assert head[0] == head[1] and (head[0].size, head[0].jump, head[0].start) == (215, 1, -107)
    # at 100 the deepest path decides, through 100 -> 50 -> 25 -> 12 -> 6 (floors and ceilings): 2 .. 205,
    # 204 positions where the real window holds 215
    assert [evaluate(v, {}) for v in head[0].span(100)] == [2, 205]
    bilinear = convplan.parse("plan B:\n    input [N, 2, H, W]\n    Upsample(scale_factor=2, mode='bilinear')\n")
    assert bilinear.receptive_field()["upsample1"] == (None, None)  # weights that vary by position: not modelled


UNET_SMALL = (ROOT / "examples" / "unet.plan").read_text().replace("width=64", "width=2")

DECODER = """plan Decoder:
    input [N, 2, H, W]
    Conv2d(3, kernel_size=3, stride=2, padding=1)
    ConvTranspose2d(3, kernel_size=4, stride=3, padding=1, output_padding=2)
    ConvTranspose2d(3, kernel_size=3, padding=1, dilation=2)
    Upsample(scale_factor=2)
    Conv2d(3, kernel_size=3, padding=1)
    UpsamplingNearest2d(scale_factor=(3, 2))
    ConvTranspose2d(2, kernel_size=(2, 3), stride=(2, 1))
    MaxPool2d(2)
"""

FRACTIONAL = {  # transposed convolutions and upsampling: the span depends on the position, checked at three
    "unet": (UNET_SMALL, [{"H": 464, "W": 480}, {"H": 496, "W": 448}]),
    "decoder": (DECODER, [{"H": 40, "W": 37}, {"H": 57, "W": 64}]),
}


def _supports(module, x, value_of, positions):
    """For each output position (a tuple of spatial indices): (first, last) input position per spatial dim
    whose gradient is nonzero, or None where no input reaches it."""
    found = []
    for position in positions:
        x.grad = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = value_of(module.run(x))
        value[(0, slice(None), *position)].sum().backward()
        nonzero = x.grad[0].abs().sum(0).nonzero()
        found.append(None if len(nonzero) == 0 else
                     [(int(nonzero[:, d].min()), int(nonzero[:, d].max())) for d in range(x.dim() - 2)])
    return found


@pytest.mark.parametrize("case", FRACTIONAL)
def test_the_field_through_transposed_convolutions_and_upsampling(case):
    """The central output position and its two neighbours (both parities of every stride) of the last node
    and of the nodes right after each transposed convolution or upsampling."""
    text, size_sets = FRACTIONAL[case]
    plan = convplan.parse(text)
    fields = plan.receptive_field()
    checked = 0
    for sizes in size_sets:
        bound = plan.bind(N=1, **sizes)
        module = _positive(bound.build())
        x = torch.ones(*[int(d) for d in bound.input_shape], dtype=torch.double, requires_grad=True)
        nodes = [n for n in bound.graph.nodes if n.op != "input"]
        after = [n for k, n in enumerate(nodes) if k and nodes[k - 1].kind.startswith(("ConvTranspose", "Upsampl"))]
        for node in [nodes[-1], *after]:
            field = fields[node.name]
            assert all(isinstance(f, Field) for f in field), node.name
            centre = [int(d) // 2 for d in node.shape[2:]]
            positions = [tuple(c + k for c in centre) for k in (-1, 0, 1)]
            for position, got in zip(positions, _supports(module, x, lambda v, n=node: v[n.id], positions),
                                     strict=True):
                want = []
                for d, (f, i) in enumerate(zip(field, position, strict=True)):
                    first, last = (evaluate(v, {"N": 1, **sizes}) for v in f.span(i))
                    want.append((max(first, 0), min(last, int(bound.input_shape[2 + d]) - 1)))
                if any(first > last for first, last in want):
                    want = None  # a position no input reaches (a stride wider than the kernel): bias only
                assert got == want, (node.name, position, sizes)
                checked += 1
    assert checked >= 12


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3),
                          st.integers(0, 3)), min_size=1, max_size=3),
       st.sampled_from(["", "    Upsample(scale_factor=2)\n", "    Conv1d(2, kernel_size=3, stride=2)\n"]))
@settings(max_examples=40, deadline=None)
def test_every_position_of_random_transposed_stacks(layers, extra):
    """ConvTranspose1d stacks (kernel, stride, padding, dilation, output_padding at random) with an
    upsampling or a strided convolution: every output position whose span lies inside the input reads
    exactly it."""
    calls = []
    for k, s, p, d, op in layers:
        op = min(op, max(s, d) - 1)
        p = min(p, d * (k - 1))
        calls.append(f"    ConvTranspose1d(2, kernel_size={k}, stride={s}, padding={p}, dilation={d}, "
                     f"output_padding={op})\n")
    text = "plan T:\n    input [N, 2, L]\n    Conv1d(2, kernel_size=3, stride=2)\n" + extra + "".join(calls)
    try:
        plan = convplan.parse(text)
        bound = plan.bind(N=1, L=17)
    except convplan.PlanError:
        return  # an output size below 1
    field = plan.receptive_field()[bound.graph.nodes[-1].name][0]
    if any(s > 1 and d > 1 or s > k for k, s, _, d, _ in layers):
        assert field is None  # the ends of the window need not be read, or some positions read nothing
        return
    module = _positive(bound.build())
    x = torch.ones(1, 2, 17, dtype=torch.double)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jacobian = torch.autograd.functional.jacobian(lambda t: module(t), x)  # [1, C, L_out, 1, C, L_in]
    reads = jacobian[0].abs().sum(dim=(0, 2, 3)) != 0  # [L_out, L_in]
    for i in range(reads.shape[0]):
        first, last = (evaluate(v, {"N": 1, "L": 17}) for v in field.span(i))
        if first < 0 or last > 16:
            continue  # clipped by the input's edges, where intermediate padding can cut it shorter
        got = reads[i].nonzero()
        assert (None if len(got) == 0 else (int(got.min()), int(got.max()))) == \
            (None if first > last else (first, last)), (i, text)


def test_batch_norm_mixes_every_position_in_training_and_none_in_eval():
    """Eval mode: a BatchNorm tracking running statistics is POINTWISE, one without them uses the batch's
    statistics in eval mode too (GLOBAL); training mode: every BatchNorm reads every position."""
    text = "plan B:\n    input [N, 2, L]\n    Conv1d(2, kernel_size=3, padding=1)\n    BatchNorm1d({})\n"
    for args, want in (("", Field(3, 1, -1)), ("track_running_stats=False", GLOBAL)):
        plan = convplan.parse(text.format(args))
        assert plan.receptive_field()["bn1"] == (want,)
        module = plan.build(N=2, L=20)
        for train in (False, True):
            module.train(train)
            x = torch.randn(2, 2, 20, requires_grad=True)
            module(x)[0, :, 10].sum().backward()
            reads = (x.grad.abs().sum(dim=(0, 1)) != 0).nonzero()
            span = (int(reads.min()), int(reads.max()))
            assert span == ((0, 19) if train or want == GLOBAL else (9, 11)), (args, train)
