"""Layers that move elements between dims: Flatten, Unflatten, pixel and channel shuffles, Fold/Unfold."""

# ruff: noqa: B023

from __future__ import annotations

import sympy

from .. import saves as sv
from ..shapes import at_least, divides, floordiv
from .spec import (
    DIMS,
    POINTWISE,
    SIZE,
    Arg,
    LayerSpec,
    RuleContext,
    dim_index,
    per_dim,
    prod,
    register,
    show,
)


def flatten_rule(ctx: RuleContext, shape, a):
    start = dim_index(ctx, shape, a["start_dim"], "start_dim")
    end = dim_index(ctx, shape, a["end_dim"], "end_dim")
    if start > end:
        ctx.fail(f"start_dim ({show(a['start_dim'])}) cannot come after end_dim ({show(a['end_dim'])})", "start_dim")
    return (*shape[:start], prod(shape[start : end + 1]), *shape[end + 1 :])


def unflatten_rule(ctx: RuleContext, shape, a):
    i = dim_index(ctx, shape, a["dim"], "dim")
    sizes = a["unflattened_size"]
    if not isinstance(sizes, tuple):
        ctx.fail(f"unflattened_size must be a tuple, got {show(sizes)}", "unflattened_size",
                 hint=f"write unflattened_size=({show(sizes)},)")
    holes = [j for j, v in enumerate(sizes) if v == -1]
    if len(holes) > 1:
        ctx.fail("only one of unflattened_size may be -1", "unflattened_size")
    ctx.positive([v for v in sizes if v != -1], "unflattened_size")
    known = prod(v for v in sizes if v != -1)
    if holes:
        ctx.require(
            divides(shape[i], known),
            lambda: f"dim {i} ({show(shape[i])}) must be divisible by {show(known)}",
            "unflattened_size",
        )
        sizes = tuple(floordiv(shape[i], known) if v == -1 else v for v in sizes)
    else:
        ctx.require(
            sympy.Eq(known, shape[i]),
            lambda: f"unflattened_size {show(sizes)} must multiply to the size of dim {i} ({show(shape[i])})",
            "unflattened_size",
        )
    return (*shape[:i], *sizes, *shape[i + 1 :])


def pixel_shuffle_rule(ctx: RuleContext, shape, a):
    r = a["upscale_factor"]
    ctx.positive([r], "upscale_factor")
    c, h, w = shape[-3:]
    ctx.require(
        divides(c, r * r),
        lambda: f"the channels ({show(c)}) must be divisible by upscale_factor**2 ({show(r * r)})",
        "upscale_factor",
    )
    return (*shape[:-3], floordiv(c, r * r), h * r, w * r)


def pixel_unshuffle_rule(ctx: RuleContext, shape, a):
    r = a["downscale_factor"]
    ctx.positive([r], "downscale_factor")
    c, h, w = shape[-3:]
    for name, x in (("height", h), ("width", w)):
        ctx.require(
            divides(x, r),
            lambda: f"the {name} ({show(x)}) must be divisible by downscale_factor ({show(r)})",
            "downscale_factor",
        )
    return (*shape[:-3], c * r * r, floordiv(h, r), floordiv(w, r))


def channel_shuffle_rule(ctx: RuleContext, shape, a):
    g, c = a["groups"], shape[1]
    ctx.positive([g], "groups")
    ctx.require(divides(c, g), lambda: f"the channels ({show(c)}) must be divisible by groups ({show(g)})", "groups")
    return tuple(shape)


def _blocks(ctx: RuleContext, sizes, a, what: str):
    """im2col/col2im: the sliding blocks along each of the 2 dims, each at least one."""
    k, d = per_dim(ctx, a["kernel_size"], 2, "kernel_size", False), per_dim(ctx, a["dilation"], 2, "dilation", False)
    p, s = per_dim(ctx, a["padding"], 2, "padding", False), per_dim(ctx, a["stride"], 2, "stride", False)
    ctx.positive(k, "kernel_size")
    ctx.positive(d, "dilation")
    ctx.nonneg(p, "padding")
    ctx.positive(s, "stride")
    out = []
    for x, ki, di, pi, si in zip(sizes, k, d, p, s, strict=True):
        m = x + 2 * pi - di * (ki - 1) - 1
        ctx.require(at_least(m, 0), lambda: f"the padded {what} ({show(x + 2 * pi)}) must be at least the kernel's "
                    f"extent ({show(di * (ki - 1) + 1)})", "kernel_size")
        out.append(floordiv(m, si) + 1)
    return prod(k), prod(out)


def unfold_rule(ctx: RuleContext, shape, a):
    window, blocks = _blocks(ctx, shape[-2:], a, "input")
    return (*shape[:-3], shape[-3] * window, blocks)


def fold_rule(ctx: RuleContext, shape, a):
    size = per_dim(ctx, a["output_size"], 2, "output_size", False)
    ctx.positive(size, "output_size")
    window, blocks = _blocks(ctx, size, a, "output_size")
    c, n = shape[-2], shape[-1]
    ctx.require(divides(c, window), lambda: f"dim {len(shape) - 2} ({show(c)}) must be divisible by the kernel's "
                f"size ({show(window)})", "kernel_size")
    ctx.require(sympy.Eq(n, blocks), lambda: f"the last dim ({show(n)}) must be the number of sliding blocks "
                f"({show(blocks)})", "output_size")
    return (*shape[:-2], floordiv(c, window), *size)


def more_reshaping() -> None:
    register(LayerSpec(name="ChannelShuffle", args=(Arg("groups"),), rule=channel_shuffle_rule, min_rank=3,
                       short="channelshuffle", window=POINTWISE, saves=sv.NOTHING))
    window = (Arg("dilation", 1, SIZE), Arg("padding", 0, SIZE), Arg("stride", 1, SIZE))
    register(LayerSpec(name="Unfold", args=(Arg("kernel_size", kind=SIZE),) + window, rule=unfold_rule,
                       ranks=(3, 4), short="unfold", saves=sv.resized))
    register(LayerSpec(name="Fold", args=(Arg("output_size", kind=SIZE), Arg("kernel_size", kind=SIZE)) + window,
                       rule=fold_rule, ranks=(2, 3), short="fold", saves=sv.resized))


def register_flatten() -> None:
    """Flatten and Unflatten."""
    # Hints suggest it before a layer that wants the dims after the batch merged into one
    register(LayerSpec(name="Flatten", args=(Arg("start_dim", 1), Arg("end_dim", -1)), rule=flatten_rule,
                                 aliases_input=True, saves=sv.VIEW, moves_axes="reshape",
                                 short="flatten"))

    register(LayerSpec(name="Unflatten", args=(Arg("dim"), Arg("unflattened_size", kind=DIMS)), rule=unflatten_rule,
                       aliases_input=True, saves=sv.VIEW, moves_axes="reshape",
                       short="unflatten"))


def register_pixel_shuffle() -> None:
    """PixelShuffle and PixelUnshuffle."""
    register(LayerSpec(name="PixelShuffle", args=(Arg("upscale_factor"),), rule=pixel_shuffle_rule, min_rank=3,
                       short="shuffle", saves=sv.NOTHING))

    register(LayerSpec(name="PixelUnshuffle", args=(Arg("downscale_factor"),), rule=pixel_unshuffle_rule, min_rank=3,
                       short="unshuffle", saves=sv.NOTHING))

