"""Layer kinds from torchvision.ops that torchvision's models are made of and torch.nn does not have
(`LayerSpec.module`): convplan builds them from its own copy (convplan/modules.py, a few lines each, the
same forward) and writes that copy into generated code, so neither needs torchvision."""

from __future__ import annotations

from .. import saves as sv
from ..saves import NEW, Saved, Saves
from .spec import DIMS, FLOAT, POINTWISE, REQUIRED, STR, Arg, LayerSpec, RuleContext, dim_index, register, show

TORCHVISION = "torchvision.ops"


def permutation(ctx: RuleContext, shape, dims, arg: str = "dims") -> tuple:
    """The shape `shape` permuted by `dims` (torch.permute): each dim named once."""
    dims = dims if isinstance(dims, tuple) else (dims,)
    if len(dims) != len(shape):
        ctx.fail(f"dims {show(dims)} has {len(dims)} entries for a {len(shape)}-D tensor", arg,
                 hint=f"name each of the {len(shape)} dims once, e.g. {show(tuple(range(len(shape)))[::-1])}")
    order = [dim_index(ctx, shape, d, arg) for d in dims]
    if sorted(order) != list(range(len(shape))):
        missing = sorted(set(range(len(shape))) - set(order))
        ctx.fail(f"dims {show(dims)} is not a permutation of the {len(shape)} dims (dim {missing[0]} is missing)",
                 arg, hint="each dim appears exactly once")
    return tuple(shape[i] for i in order)


def stochastic_depth_rule(ctx: RuleContext, shape, a):
    if not 0.0 <= a["p"] <= 1.0:
        ctx.fail(f"drop probability has to be between 0 and 1, but got {a['p']}", "p")
    return tuple(shape)


def stochastic_depth_saves(a, shape, out):
    """Training: input * noise, the noise saved (one value per sample for 'row', one for 'batch'); p=0 returns
    the input."""
    if a["p"] == 0:
        return Saves(aliases=True)
    return Saves((Saved(NEW, shape[0] if a["mode"] == "row" else 1),))


def register_torchvision() -> None:
    register(LayerSpec(name="StochasticDepth", args=(Arg("p", REQUIRED, FLOAT), Arg("mode", REQUIRED, STR,
                                                                                   ("row", "batch"))),
                       rule=stochastic_depth_rule, short="stochastic_depth", aliases_input=True, window=POINTWISE,
                       saves=stochastic_depth_saves, module=TORCHVISION))
    register(LayerSpec(name="Permute", args=(Arg("dims", REQUIRED, DIMS),),
                       rule=lambda ctx, shape, a: permutation(ctx, shape, a["dims"]), short="permute",
                       aliases_input=True, saves=sv.VIEW, module=TORCHVISION, moves_axes="permute"))
