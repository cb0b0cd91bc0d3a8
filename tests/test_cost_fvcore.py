"""The "fvcore" convention against fvcore itself: `cost("fvcore")` equals `FlopCountAnalysis(module,
inputs).total()` of the built module, layer by layer (fvcore's `by_module`), at several sizes and batches,
for the example plans and for random stacks; `skipped` names exactly the operators fvcore warns about."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import sympy
import torch
from _torch_oracle import symbolic_plan
from fvcore.nn import FlopCountAnalysis  # the `test` extra installs it
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cost import EXAMPLES, SPATIAL, _size_sets
from test_properties import stacks

import convplan
from convplan import cost_fvcore
from convplan.build import example_inputs
from convplan.layers import REGISTRY
from convplan.merges import MERGES
from convplan.shapes import evaluate

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 2, deadline=None)


def fvcore_analysis(module, inputs):
    """fvcore's analysis of the module (eval mode), its warnings silenced; None where fvcore itself fails."""
    analysis = FlopCountAnalysis(module.eval(), tuple(inputs))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            analysis.total()
        except AssertionError:  # its norm handlers assert 2 to 5 input dims
            return None
    return analysis


def assert_equal_to_fvcore(plan, sizes: dict) -> bool:
    """The total, each layer's count and the skipped operators equal fvcore's on the module built at `sizes`;
    False where fvcore itself fails."""
    bound = plan.bind(**sizes)
    module = bound.build()
    inputs = example_inputs(bound.graph, sizes)  # indices where an Embedding reads them
    analysis = fvcore_analysis(module, inputs)
    if analysis is None:
        return False
    cost = plan.cost("fvcore")
    where = f"at {sizes}:\n{plan.source}"
    assert evaluate(cost.total, sizes) == analysis.total(), where
    by_module = analysis.by_module()
    for node in plan.layers:
        want = by_module[".".join(node.module_path)]  # fvcore names modules by their path
        got = evaluate(cost.by_layer[node.name], sizes) if node.name in cost.by_layer else 0
        assert got == want, f"{node.name} ({node.kind}) {where}"
    assert cost.skipped_ops == set(analysis.unsupported_ops()), where
    return True


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_fvcore_convention_equals_fvcore_on_examples(path):
    plan = convplan.load(path)
    sets = _size_sets(plan)
    if path.stem in ("vgg11", "alexnet"):  # ~130 M weights each: the smallest and one image size
        sets = sets[:1] + sets[-1:]
    assert all(assert_equal_to_fvcore(plan, sizes) for sizes in sets)
    spatial = set(SPATIAL) & set(plan.symbols)
    assert len(sets) >= (2 if path.stem in ("vgg11", "alexnet") else 4 if spatial else 1)


def test_resnet18_counts_batchnorm_and_pooling_with_its_convolutions():
    plan = convplan.load(ROOT / "examples" / "resnet18.plan")
    cost = plan.cost("fvcore")
    macs = plan.cost("macs").at(N=1, H=224, W=224)
    bn = sum(cost.by_layer[n.name] for n in plan.layers if n.kind == "BatchNorm2d")
    assert cost.at(N=1, H=224, W=224) == macs + plan.evaluate(bn, N=1, H=224, W=224) + 512 * 7 * 7
    assert cost.skipped == {"MaxPool2d": ("aten::max_pool2d",), "add": ("aten::add",)}
    assert cost.uncounted == ("ReLU", "MaxPool2d", "add", "Flatten")


@given(stacks())
@SETTINGS
def test_fvcore_convention_on_random_stacks(case):
    shape, layers = case
    found = symbolic_plan(shape, layers)
    if found is None:
        return
    plan, sizes = found
    assert_equal_to_fvcore(plan, sizes)


def test_every_layer_kind_and_merge_has_an_fvcore_rule():
    missing = [k for k, spec in REGISTRY.items() if not cost_fvcore.known(k, spec.family)]
    missing += [m for m in MERGES if not cost_fvcore.known(m)]
    assert not missing, f"add these to convplan/cost_fvcore.py (and test them against fvcore): {missing}"


TRICKY = [  # the arguments that change the operator a layer traces to
    ("[N, C, H, W]", "Upsample(scale_factor=2.0, mode='{mode}')"),
    ("[N, C, H, W]", "Upsample(size=(7, 5), mode='{mode}')"),
    ("[N, C, L]", "Upsample(scale_factor=2.0, mode='{mode1}')"),
    ("[N, C, D, H, W]", "Upsample(scale_factor=2.0, mode='{mode3}')"),
    ("[N, C, H, W]", "Conv2d(4, 3, padding='{padding}', padding_mode='{padding_mode}')"),
    ("[C, H, W]", "Conv2d(4, 3, padding={pad}, padding_mode='{padding_mode}')"),
    ("[N, C, H, W]", "BatchNorm2d(affine={flag}, track_running_stats={flag2})"),
    ("[N, C, L]", "InstanceNorm1d(affine={flag}, track_running_stats={flag2})"),
    ("[N, C, H, W]", "LayerNorm(W, elementwise_affine={flag})"),
    ("[N, C, H, W]", "GroupNorm(1, affine={flag})"),
    ("[N, C, H, W]", "{activation}(inplace={flag})"),
    ("[N, C, H, W]", "Dropout{nd}(inplace={flag})"),
    ("[C, L]", "Dropout1d(inplace={flag})"),
]


@given(st.sampled_from(TRICKY), st.sampled_from(["nearest", "bilinear", "bicubic", "area", "nearest-exact"]),
       st.sampled_from(["nearest", "linear", "area", "nearest-exact"]),
       st.sampled_from(["nearest", "trilinear", "area", "nearest-exact"]), st.sampled_from(["same", "valid"]),
       st.sampled_from(["zeros", "reflect", "circular"]), st.integers(0, 1), st.booleans(), st.booleans(),
       st.sampled_from(["ReLU", "ReLU6", "ELU", "LeakyReLU", "SiLU", "Mish", "Hardswish", "Hardsigmoid"]),
       st.sampled_from(["", "2d", "3d"]), st.integers(1, 3), st.integers(3, 9))
@settings(max_examples=int(os.environ.get("FV_TRICKY", 60)), deadline=None)
def test_fvcore_convention_follows_the_operator_each_argument_traces_to(case, mode, mode1, mode3, padding,
                                                                         padding_mode, pad, flag, flag2, activation,
                                                                         nd, batch, size):
    shape, layer = case
    layer = layer.format(mode=mode, mode1=mode1, mode3=mode3, padding=padding, padding_mode=padding_mode, pad=pad,
                         flag=flag, flag2=flag2, activation=activation, nd=nd)
    plan = convplan.parse(f"plan T:\n    input {shape}\n    {layer}\n    ReLU()\n")
    sizes = {"N": batch, "C": 2, "L": size, "D": size, "H": size, "W": size + 1}
    assert_equal_to_fvcore(plan, {k: v for k, v in sizes.items() if k in plan.symbols})


ONE_TENSOR_KINDS = [  # (input, call): the kinds added with the rest of torch.nn's one-tensor modules
    ("[N, C, L]", "CELU(inplace=True)"), ("[N, C, L]", "SELU()"), ("[N, C, L]", "Hardtanh(inplace=True)"),
    ("[N, C, L]", "RReLU()"), ("[N, C, L]", "Softplus()"), ("[N, C, L]", "Threshold(0.1, 0.0, inplace=True)"),
    ("[N, C, L]", "Hardshrink()"), ("[N, C, L]", "Softshrink()"), ("[N, C, L]", "LogSigmoid()"),
    ("[N, C, L]", "Softsign()"), ("[N, C, L]", "Tanhshrink()"), ("[N, C, L]", "PReLU()"), ("[N, C, L]", "GLU(1)"),
    ("[N, C, L]", "Softmin(1)"), ("[N, C, H, W]", "Softmax2d()"), ("[N, C, L]", "AlphaDropout(inplace=True)"),
    ("[N, C, L]", "FeatureAlphaDropout()"), ("[N, C, L]", "RMSNorm(L)"), ("[N, C, L]", "LocalResponseNorm(3)"),
    ("[N, C, H, W]", "LocalResponseNorm(2)"), ("[N, C, H, W]", "CrossMapLRN2d(3)"), ("[N, C, L]", "SyncBatchNorm()"),
    ("[N, C, H, W]", "ChannelShuffle(2)"), ("[N, C, H, W]", "Unfold(3)"),
    ("[N, C, H, W]", "UpsamplingNearest2d(scale_factor=2)"), ("[N, C, H, W]", "UpsamplingBilinear2d(size=(5, 7))"),
    ("[N, C, L]", "UpsamplingNearest2d(scale_factor=2)"), ("[N, C, D, H, W]", "UpsamplingNearest2d(scale_factor=0.5)"),
    ("[N, C, L]", "LPPool1d(2, 2)"), ("[N, C, H, W]", "LPPool2d(3, 2)"), ("[N, C, D, H, W]", "LPPool3d(2, 2)"),
    ("[N, C, L]", "CircularPad1d(1)"), ("[N, C, H, W]", "CircularPad2d(1)"), ("[N, C, D, H, W]", "CircularPad3d(1)"),
    ("[N, C, H, W]", "FractionalMaxPool2d(2, output_ratio=0.5)"),
    ("[N, C, D, H, W]", "FractionalMaxPool3d((1, 2, 2), output_size=(3, 4, 4))"),
]


def one_tensor_sizes(shape: str, call: str):
    """The plan of one such layer, and the size sets (of three tried) it accepts: at least two."""
    plan = convplan.parse(f"plan T:\n    input {shape}\n    {call}\n")
    found = []
    for n, c, x in ((1, 2, 6), (2, 4, 8), (3, 6, 7)):
        sizes = {k: v for k, v in {"N": n, "C": c, "L": x, "H": x, "W": x + 1, "D": x - 2}.items() if k in plan.symbols}
        if plan.satisfied(sizes):
            found.append(sizes)
    assert len(found) >= 2  # at least two size sets reach the tool
    return plan, found


@pytest.mark.parametrize(("shape", "call"), ONE_TENSOR_KINDS, ids=[c for _, c in ONE_TENSOR_KINDS])
def test_fvcore_convention_on_each_one_tensor_kind(shape, call):
    plan, found = one_tensor_sizes(shape, call)
    assert all(assert_equal_to_fvcore(plan, sizes) for sizes in found)


SYMBOLIC_HEADS = ["out, w = MultiheadAttention(x, x, x, F, batch_first=True)",
                  "out = TransformerEncoderLayer(x, F, dim_feedforward=8, batch_first=True)",
                  "out = TransformerDecoderLayer(x, x, F, dim_feedforward=8, batch_first=True)",
                  "out = TransformerEncoder(x, F, 2, dim_feedforward=8, batch_first=True, norm=True)"]


@pytest.mark.parametrize("call", SYMBOLIC_HEADS, ids=lambda c: c.split("(")[0].split()[-1])
def test_a_symbolic_number_of_heads_is_a_formula_of_both_paths(call):
    """torch's fast path needs an even number of heads: with nhead a symbol the count is a formula of both
    paths (a Piecewise on its parity), equal to fvcore's at even and odd heads; the skipped operators are
    those either path skips."""
    plan = convplan.parse(f"plan T:\n    input x [N, L, E]\n    input heads [F]\n    {call}\n")
    cost = plan.cost("fvcore")
    assert cost.total.has(sympy.Piecewise)
    for sizes in ({"N": 2, "L": 3, "E": 12, "F": 2}, {"N": 1, "L": 4, "E": 12, "F": 3}):
        bound = plan.bind(**sizes)
        analysis = fvcore_analysis(bound.build(), example_inputs(bound.graph, sizes))
        assert evaluate(cost.total, sizes) == analysis.total(), sizes
        assert set(analysis.unsupported_ops()) <= cost.skipped_ops, sizes
