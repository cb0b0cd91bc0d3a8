"""Random stacks over the whole layer vocabulary (depth 1..8) against real torch (CPU, eval mode).

For each stack: convplan accepts it exactly when torch runs it (a refusal is always a PlanError),
the symbolic output evaluated at the sizes equals torch's, the requirements hold exactly when torch
runs it, and Plan.build() gives a module with torch's output shape.  The stack generator follows
the shape through torch, layer by layer, so most stacks are deep and valid; a stack ends early at
the first layer torch refuses, which is then the layer convplan must refuse.
"""

from __future__ import annotations

import os
import warnings

import torch
from _torch_oracle import check_concrete, check_symbolic, torch_layer, torch_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_layers_torch import ELEMENTWISE, MORE_ELEMENTWISE, mostly
from torch import nn

from convplan.layers import REGISTRY

EXAMPLES = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)), deadline=None)
MAX_NUMEL = 4096  # keep tensors (and Linear weights) small
FAMILIES = ("Conv", "ConvTranspose", "MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "InstanceNorm",
            "Dropout", "ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "LPPool", "CircularPad")


def kinds_for(rank: int) -> list[str]:
    """The layer kinds torch documents for an input of this rank."""
    kinds = [*ELEMENTWISE, "Dropout", "Softmax", "LogSoftmax", "Flatten", "Linear", "LayerNorm", "Unflatten"]
    kinds += [*MORE_ELEMENTWISE, "PReLU", "GLU", "Softmin", "RMSNorm"]
    if rank >= 2:
        kinds += ["SyncBatchNorm"]
    if rank >= 3:
        kinds += ["ChannelShuffle", "LocalResponseNorm"]
    if rank in (2, 3):
        kinds.append("Fold")
    if rank in (3, 4):
        kinds += ["Softmax2d", "Unfold"]
    if rank == 4:
        kinds += ["CrossMapLRN2d", "UpsamplingBilinear2d"]
    if 3 <= rank <= 5:
        kinds.append("UpsamplingNearest2d")
    if rank >= 2:
        kinds.append("GroupNorm")
    if rank in (2, 3):
        kinds.append("BatchNorm1d")
    if rank >= 3:
        kinds += ["PixelShuffle", "PixelUnshuffle"]
    if 3 <= rank <= 5:
        kinds.append("Upsample")
    for nd in (1, 2, 3):
        if rank in (nd + 1, nd + 2):
            kinds += [f"{family}{nd}d" for family in FAMILIES]
            if rank == nd + 2 and nd > 1:
                kinds.append(f"BatchNorm{nd}d")
            if nd > 1:
                kinds.append(f"FractionalMaxPool{nd}d")
    return kinds


def _nd(kind: str) -> int:
    return int(kind[-2]) if kind[-1] == "d" and kind[-2].isdigit() else 0


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def args_for(draw, kind: str, shape: tuple) -> dict:
    """Arguments that usually fit `shape`, now and then ones that do not."""
    r, nd = len(shape), _nd(kind)
    opt = lambda name, strategy: {name: draw(strategy)} if draw(st.booleans()) else {}  # noqa: E731
    ch = shape[-nd - 1] if nd and r > nd else 1
    groups = draw(mostly(st.sampled_from(_divisors(ch)), 2, 3))
    if kind.startswith("ConvTranspose"):
        stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        return {"out_channels": groups * draw(mostly(st.integers(1, 4), 0)), "kernel_size": draw(st.integers(1, 3)),
                "stride": stride, "dilation": dilation, **opt("padding", mostly(st.integers(0, 1), -1)),
                **opt("output_padding", mostly(st.integers(0, max(stride, dilation) - 1), 2)), "groups": groups}
    if kind.startswith("Conv"):
        return {"out_channels": groups * draw(st.integers(1, 3)), "kernel_size": draw(st.integers(1, 3)),
                **opt("stride", st.integers(1, 2)), **opt("padding", st.sampled_from([0, 1, 2, "same", "valid"])),
                **opt("dilation", st.integers(1, 2)), "groups": groups,
                **opt("padding_mode", st.sampled_from(["zeros", "reflect", "replicate", "circular"]))}
    if kind.startswith(("MaxPool", "AvgPool")):
        out = {"kernel_size": draw(st.integers(1, 3)), **opt("stride", st.one_of(st.none(), st.integers(1, 3))),
               **opt("padding", st.integers(0, 1)), **opt("ceil_mode", st.booleans())}
        return {**out, **opt("dilation", st.integers(1, 2))} if kind.startswith("Max") else out
    if kind.startswith("FractionalMaxPool"):  # output + kernel - 1 <= input (2d), < input (3d): usually fits
        k = draw(st.integers(1, 2))
        fits = [max(x - k + (nd == 2), 1) for x in shape[-nd:]]
        how = draw(st.sampled_from(["output_size", "output_ratio"]))
        value = tuple(draw(st.integers(1, f)) for f in fits) if how == "output_size" else \
            draw(st.sampled_from([0.5, 0.75, (0.5, 0.25, 0.6)[:nd]]))
        return {"kernel_size": k, how: value}
    if kind.startswith("Adaptive"):
        entry = st.one_of(st.integers(1, 4), st.none()) if nd > 1 else st.integers(1, 4)
        return {"output_size": draw(st.one_of(st.integers(1, 4), st.tuples(*[entry] * nd)))}
    channels = shape[1] if r > 1 else 1  # a 1-D input has none: a kind that needs them is drawn for torch to refuse
    if kind == "GroupNorm":
        return {"num_groups": draw(mostly(st.sampled_from(_divisors(channels)), 2, 3))}
    if kind == "LayerNorm":
        k = draw(st.integers(1, min(r, 2)))
        return opt("normalized_shape", mostly(st.just(tuple(shape[-k:])), (2,), 3))
    if kind.startswith("Dropout"):
        return opt("p", st.sampled_from([0.0, 0.5]))
    if kind.endswith("Softmax"):
        return opt("dim", mostly(st.integers(-r, r - 1), r, None))
    if kind == "Flatten":
        return {**opt("start_dim", st.integers(-r, r - 1)), **opt("end_dim", st.integers(-r, r - 1))}
    if kind == "Unflatten":
        i = draw(st.integers(-r, r - 1))
        d = draw(st.sampled_from(_divisors(shape[i])))
        sizes = draw(mostly(st.sampled_from([(d, shape[i] // d), (-1, d), (d, -1)]), (shape[i] + 1,), (-1, -1)))
        return {"dim": i, "unflattened_size": sizes}
    if kind == "Linear":
        return {"out_features": draw(st.integers(1, 8))}
    if kind.startswith("CircularPad"):
        return {"padding": draw(st.integers(0, min(2, *shape[-nd:])))}
    if "Pad" in kind:
        pads = st.one_of(st.integers(0, 2), st.tuples(*[mostly(st.integers(0, 2), -1, 3)] * (2 * nd)))
        return {"padding": draw(pads), **({"value": 0.0} if kind.startswith("Constant") else {})}
    if kind == "Upsample":
        mode = {3: "linear", 4: "bilinear", 5: "trilinear"}.get(r, "nearest")
        how = draw(st.one_of(st.builds(lambda s: {"scale_factor": s}, st.sampled_from([0.5, 1.0, 1.5, 2.0, 0.75])),
                             st.builds(lambda s: {"size": s}, st.integers(1, 6))))
        return {**how, **opt("mode", mostly(st.sampled_from(["nearest", mode]), "bicubic", "area"))}
    if kind == "PixelShuffle":
        return {"upscale_factor": draw(st.integers(1, 2))}
    if kind == "PReLU":
        return opt("num_parameters", mostly(st.sampled_from([1, shape[1] if r > 1 else 1]), 2))
    if kind in ("GLU", "Softmin"):
        even = [i - r for i in range(r) if shape[i] % 2 == 0] or [-1]
        return opt("dim", mostly(st.sampled_from(even), -1) if kind == "GLU" else st.integers(-r, r - 1))
    if kind == "RMSNorm":
        return opt("normalized_shape", mostly(st.just(tuple(shape[-draw(st.integers(1, min(r, 2))):])), (2,)))
    if kind == "ChannelShuffle":
        return {"groups": draw(mostly(st.sampled_from(_divisors(channels)), 2, 3))}
    if kind in ("LocalResponseNorm", "CrossMapLRN2d"):
        return {"size": draw(st.integers(1, 5))}
    if kind == "Unfold":
        return {"kernel_size": draw(st.integers(1, 2)), **opt("stride", st.integers(1, 2)),
                **opt("padding", st.integers(0, 1)), **opt("dilation", st.integers(1, 2))}
    if kind == "Fold":  # kernel 1 over a 1 x L output: L blocks, as many as the input has
        return {"output_size": draw(mostly(st.just((1, shape[-1])), (shape[-1], 2))), "kernel_size": 1}
    if kind.startswith("Upsampling"):
        return {"scale_factor": draw(st.sampled_from([0.5, 1.0, 2.0]))}
    if kind.startswith("LPPool"):
        return {"norm_type": 2.0, "kernel_size": draw(st.integers(1, 3)), **opt("stride", st.integers(1, 2)),
                **opt("ceil_mode", st.booleans())}
    if kind == "Threshold":
        return {"threshold": 0.1, "value": 0.0}
    if kind == "PixelUnshuffle":
        return {"downscale_factor": draw(st.integers(1, 2))}
    return {}


@st.composite
def stacks(draw):
    """(input shape, layers): each layer chosen for the shape torch gives after the ones before."""
    shape = tuple(draw(st.lists(st.integers(1, 8), min_size=2, max_size=5)))
    layers, current = [], shape
    for _ in range(draw(st.sampled_from([8, 7, 6, 5, 4, 3, 2, 1]))):
        kind = draw(mostly(st.sampled_from(kinds_for(len(current))), *sorted(REGISTRY)))
        layers.append((kind, draw(args_for(kind, current))))
        current, _ = torch_run(current, layers[-1:])
        if current is None or torch.Size(current).numel() > MAX_NUMEL:
            break
    return shape, layers


@given(st.data())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.large_base_example])  # every kind
def test_arguments_are_drawn_for_every_kind_at_every_rank(data):
    """stacks() now and then draws any kind at all (one torch refuses there): its arguments are drawn for
    every rank, 1-D included (GroupNorm and ChannelShuffle read the channels of a 1-D shape: an IndexError
    in this generator instead of a stack for convplan to refuse), and convplan refuses what torch refuses."""
    for kind in sorted(REGISTRY):
        for rank in range(1, 6):
            shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
            layer = (kind, data.draw(args_for(kind, shape)))
            if rank == 1 and kind in ("GroupNorm", "ChannelShuffle"):
                assert torch_run(shape, [layer])[0] is None
                assert check_concrete(shape, [layer]) is None


def sequential(shape, layers) -> nn.Sequential:
    """The same layers as one nn.Sequential, built from the arguments alone (and the shapes torch gives)."""
    modules, current = [], shape
    for kind, args in layers:
        modules.append(torch_layer(kind, args, current))
        current, _ = torch_run(current, [(kind, args)])
    return nn.Sequential(*modules).eval()


def run(module: nn.Module, shape) -> tuple:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return tuple(module.eval()(torch.randn(*shape)).shape)


@given(stacks())
@EXAMPLES
def test_stack_matches_torch(case):
    shape, layers = case
    plan = check_concrete(shape, layers)  # accepted <=> torch runs it; same output shape
    check_symbolic(shape, layers)  # the same with every input dim a symbol
    if plan is None:
        return
    want, _ = torch_run(shape, layers)
    assert run(sequential(shape, layers), shape) == want
    assert run(plan.build(), shape) == want
