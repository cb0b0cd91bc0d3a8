"""Normalisations: BatchNorm, InstanceNorm, GroupNorm, LayerNorm, RMSNorm, local response norms."""

# ruff: noqa: B023

from __future__ import annotations

import sympy

from .. import saves as sv
from ..shapes import FloorDiv, at_least, divides, floordiv, to_expr
from ..shapes.affine import chain_of
from .spec import (
    BOOL,
    CONTIGUOUS,
    DIMS,
    FLOAT,
    GLOBAL,
    OPT_FLOAT,
    POINTWISE,
    Arg,
    LayerSpec,
    RuleContext,
    channels_at,
    member_of,
    ntuple,
    prod,
    register,
    show,
    whole,
)


def norm_count(a, nd=0):
    if not a["affine"]:
        return 0
    n = whole(a["num_features"])
    return 2 * a["num_features"] if n is None else sympy.Integer(2 * n)  # a number: no sympy product


def batch_norm_rule(ctx: RuleContext, shape, a, nd):
    if a["track_running_stats"] and _two_sizes(shape[:1] + shape[2:]):
        return tuple(shape)  # N*H*W is a product of sizes: no warning, and no sympy Mul built (~60 us each)
    values = shape[0] * prod(shape[2:])
    _more_than_one(ctx, values, "BatchNorm needs more than 1 value per channel (here {})", a["track_running_stats"])
    return tuple(shape)


def instance_norm_rule(ctx: RuleContext, shape, a, nd):
    values = prod(shape[-nd:])
    _more_than_one(ctx, values, "InstanceNorm needs more than 1 spatial element (here {})", a["track_running_stats"])
    return tuple(shape)


def _more_than_one(ctx: RuleContext, values, message: str, training_only: bool) -> None:
    """With running stats torch refuses one value only in training (a warning here); without, always
    (torch's check uses the input statistics, so it fires in eval mode too)."""
    if not training_only:
        ctx.require(at_least(values, 2), lambda: message.format(show(values)))  # printed only if needed (slow)
    elif not _two_or_more(values) and (values.is_Number or values.is_Symbol):
        # A batch of one ([N, C] with N == 1) is a real training pitfall; N*H*W == 1 only at 1x1 maps, and a
        # warning on every BatchNorm of a ResNet for that would be noise.
        one = sympy.Eq(values, 1) if values.is_Number else sympy.Eq(values, 1, evaluate=False)
        ctx.warn(one, lambda: message.format(show(values)) + " in training")


def _two_sizes(factors) -> bool:
    """Whether two of `factors` are sizes (symbols, floor divisions of them, or conv/pool chain dims: those plus
    a number, shapes.affine): then their product is neither a number nor a symbol, and _more_than_one with
    running stats warns of nothing.  (The product of two chain dims is the one sympy spent ~60 us on.)"""
    return sum(1 for f in factors if f.is_Symbol or type(f) is FloorDiv or chain_of(f) is not None) >= 2


def _two_or_more(values) -> bool:
    """A product of sizes (each >= 1) is >= 2 for sure if it is a number >= 2 or has a factor >= 2."""
    factors = values.args if values.is_Mul else (values,)
    return any(f.is_Number and f >= 2 for f in factors)


def group_norm_rule(ctx: RuleContext, shape, a):
    g = a["num_groups"]
    ctx.positive([g], "num_groups")
    n, c = shape[0], shape[1]
    ctx.require(divides(c, g), lambda: f"num_channels ({show(c)}) must be divisible by num_groups ({show(g)})",
                "num_groups")
    values = floordiv(n * c, g) * prod(shape[2:])  # torch's own count, checked in eval too
    ctx.require(at_least(values, 2), lambda: f"GroupNorm needs more than 1 value per group (here {show(values)})",
                "num_groups")
    return tuple(shape)


def layer_norm_rule(ctx: RuleContext, shape, a):
    norm = ntuple(a["normalized_shape"], 1)
    if len(norm) > len(shape):
        ctx.fail(f"normalized_shape {show(norm)} has more dims than the input ({len(shape)})", "normalized_shape")
    for want, have in zip(norm, shape[len(shape) - len(norm) :], strict=True):
        ctx.require(
            sympy.Eq(to_expr(want), have),
            lambda: f"normalized_shape {show(norm)} must match the input's last dims {show(shape[-len(norm) :])}",
            "normalized_shape",
        )
    return tuple(shape)


def layer_norm_infer(shape, a):
    return (shape[-1],) if a["normalized_shape"] is None else a["normalized_shape"]


def layer_norm_count(a):
    if not a["elementwise_affine"]:
        return 0
    n = prod(ntuple(a["normalized_shape"], 1))
    return 2 * n if a["bias"] else n


def norm_args(affine: bool) -> tuple[Arg, ...]:
    """BatchNorm's and InstanceNorm's, which differ in the defaults of affine and track_running_stats."""
    return (
        Arg("eps", 1e-5, FLOAT),
        Arg("momentum", 0.1, OPT_FLOAT),
        Arg("affine", affine, BOOL),
        Arg("track_running_stats", affine, BOOL),
    )


def batch_norm_family(nd: int) -> None:
    member_of("BatchNorm", nd, args=norm_args(True), rule=batch_norm_rule, count=norm_count, inferred="num_features",
            infer=lambda shape, a: shape[1], ranks=(2, 3) if nd == 1 else (nd + 2,), short="bn",
            saves=sv.norm(lambda a, shape: shape[1]),  # mean and inverse std per channel
            # eval mode: the running statistics, one scale and shift per channel; without them the batch's
            window=lambda a, nd: POINTWISE if a["track_running_stats"] else GLOBAL)


def instance_norm_family(nd: int) -> None:
    member_of("InstanceNorm", nd, args=norm_args(False), rule=instance_norm_rule, count=norm_count,
            inferred="num_features", infer=channels_at(nd), short="instnorm",
            saves=sv.instance_norm(lambda a, shape: prod(shape[:-nd])),  # per sample and channel
            window=lambda a, nd: POINTWISE if a["track_running_stats"] else GLOBAL)  # eval: whose statistics


def lrn_rule(ctx: RuleContext, shape, a):
    ctx.positive([a["size"]], "size")
    return tuple(shape)


def rms_norm_count(a):
    return prod(ntuple(a["normalized_shape"], 1)) if a["elementwise_affine"] else 0


def _normalized_window(a, nd):
    """LayerNorm and RMSNorm read every position of the dims they normalise (the trailing ones) and one of
    the others: channels-last (ConvNeXt's LayerNorm(C)) reads one spatial position."""
    return [GLOBAL] * len(ntuple(a["normalized_shape"], 1))


def more_norms() -> None:
    register(LayerSpec(
        name="RMSNorm",
        args=(Arg("normalized_shape", None, DIMS), Arg("eps", None, OPT_FLOAT), Arg("elementwise_affine", True, BOOL)),
        rule=layer_norm_rule,
        count=rms_norm_count,
        inferred="normalized_shape",  # written or, by default, the input's last dim (as LayerNorm)
        infer=layer_norm_infer,
        short="rmsnorm",
        window=_normalized_window,
        saves=sv.rms_norm,
    ))
    lrn = (Arg("size"), Arg("alpha", 1e-4, FLOAT), Arg("beta", 0.75, FLOAT))
    register(LayerSpec(name="LocalResponseNorm", args=lrn + (Arg("k", 1.0, FLOAT),), rule=lrn_rule, min_rank=3,
                       short="lrn", window=POINTWISE, saves=sv.local_response_norm,  # across channels only
                       views_from=3))  # div.view(N, 1, C, H, -1)
    register(LayerSpec(name="CrossMapLRN2d", args=lrn + (Arg("k", 1, FLOAT),), rule=lrn_rule, ranks=(4,),
                       short="lrn", window=POINTWISE, saves=sv.SAVES_INPUT_AND_OUTPUT))  # an autograd Function
    # On one process (eval mode, or no process group) SyncBatchNorm is BatchNorm over dim 1, any rank from 2
    register(LayerSpec(name="SyncBatchNorm", args=norm_args(True), count=norm_count,
                       rule=lambda ctx, shape, a: batch_norm_rule(ctx, shape, a, 0), inferred="num_features",
                       infer=lambda shape, a: shape[1], min_rank=2, short="bn",
                       saves=sv.norm(lambda a, shape: shape[1]),  # as BatchNorm: statistics per channel
                       window=lambda a, nd: POINTWISE if a["track_running_stats"] else GLOBAL))  # eval: whose stats


def register_group_and_layer_norm() -> None:
    """GroupNorm and LayerNorm."""
    register(LayerSpec(
        name="GroupNorm",
        args=(Arg("num_groups"), Arg("eps", 1e-5, FLOAT), Arg("affine", True, BOOL)),
        rule=group_norm_rule,
        count=lambda a: 2 * a["num_channels"] if a["affine"] else 0,
        inferred="num_channels",
        inferred_at=1,  # GroupNorm(num_groups, num_channels, ...)
        infer=lambda shape, a: shape[1],
        min_rank=2,
        short="gn",
        window=GLOBAL,
        saves=sv.norm(lambda a, shape: shape[0] * a["num_groups"]),  # per sample and group
    ))

    register(LayerSpec(
        name="LayerNorm",
        args=(
            Arg("normalized_shape", None, DIMS),
            Arg("eps", 1e-5, FLOAT),
            Arg("elementwise_affine", True, BOOL),
            Arg("bias", True, BOOL),
        ),
        rule=layer_norm_rule,
        count=layer_norm_count,
        inferred="normalized_shape",  # written or, by default, the input's last dim
        infer=layer_norm_infer,
        short="ln",
        layout=CONTIGUOUS,  # native_layer_norm makes its input contiguous first
        window=_normalized_window,
        # mean and inverse std per normalised row
        saves=sv.norm(lambda a, shape: prod(shape[: len(shape) - len(ntuple(a["normalized_shape"], 1))])),
    ))

