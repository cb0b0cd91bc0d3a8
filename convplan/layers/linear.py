"""Linear: the last dim mapped to out_features."""

# ruff: noqa: B023

from __future__ import annotations

from .. import saves as sv
from ..shapes import offset
from .spec import BOOL, CONTIGUOUS, GLOBAL, Arg, LayerSpec, RuleContext, prod, register


def linear_rule(ctx: RuleContext, shape, a):
    ctx.positive([a["out_features"]], "out_features")
    return (*shape[:-1], a["out_features"])


def linear_macs(shape, out, a):
    """Each output element is a dot product of in_features inputs with the weights, for every row."""
    return prod(shape[:-1]) * a["in_features"] * a["out_features"]


def linear_count(a):
    weights = a["in_features"] * a["out_features"]
    return offset(weights, a["out_features"]) if a["bias"] else weights  # 64*(L//2) + 2 without Add.flatten


def register_linear() -> None:
    """Linear: the last dim mapped to out_features."""
    register(LayerSpec(
        name="Linear",
        args=(Arg("out_features"), Arg("bias", True, BOOL)),
        rule=linear_rule,
        count=linear_count,
        macs=linear_macs,
        window=lambda a, nd: [GLOBAL],  # every output feature reads every input feature of the last dim
        inferred="in_features",
        infer=lambda shape, a: shape[-1],
        short="linear",
        layout=CONTIGUOUS,
        last_dim_features=True,
        saves=sv.SAVES_INPUT,  # for the weight's gradient
    ))

