"""Pools: max, average, adaptive and power-average (LPPool), 1d to 3d."""

# ruff: noqa: B023

from __future__ import annotations

import sympy

from .. import saves as sv
from ..shapes import at_least, decide_at_least, floordiv, offset, to_expr
from ..shapes.affine import chain_of, divided, expr_of, nonneg, shifted, text
from .resample import scaled_size
from .spec import (
    AVG_POOL_SIZE,
    BOOL,
    CONV_SIZE,
    FLOAT,
    GLOBAL,
    OPT_INT,
    OPT_SIZE,
    POINTWISE,
    SCALE,
    SIZE,
    Arg,
    RuleContext,
    SizeRule,
    dims_of,
    member_of,
    nonempty,
    per_dim,
    show,
    split_channels,
    whole,
    whole_dims,
)


def pool_size(ctx: RuleContext, x, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape, including "the last window must start inside the input"."""
    chain, ints = chain_of(x), (whole(k), whole(s), whole(p), whole(d))
    if chain is not None and None not in ints and ints[1] >= 1:
        return _chain_pool(ctx, x, chain, *ints, ceil_mode)
    ext = d * (k - 1) + 1
    _half_kernel(ctx, k, p)
    if not ceil_mode:
        m = offset(x, 2 * p - ext)
        ctx.tail(x, m, s, p, ext)
        size = offset(floordiv(m, s), 1)
    else:
        # min(ceil((x+2p-ext)/s), ceil((x+p)/s) - 1) + 1: the last window must start inside x + the left pad.
        # Both are floor((x + c)/s) for a constant c, so the smaller c wins.
        by_ceil, by_start = 2 * p - ext + s - 1, p - 1
        gap = to_expr(by_ceil - by_start)
        shift = by_ceil if gap.is_nonpositive else by_start if gap.is_positive else sympy.Min(by_ceil, by_start)
        size = offset(floordiv(offset(x, shift), s), 1)
    ctx.require(
        at_least(size, 1),
        lambda: f"the output size ({show(size)}) would be less than 1 (input {show(x)}, kernel {show(k)})",
    )
    return size


def _half_kernel(ctx: RuleContext, k, p) -> None:
    """torch checks p against half the dilated kernel, then half the kernel: the second one binds.  Both paths
    require it (whole k and p show as the general path's numbers do)."""
    ctx.require(
        at_least(k - 2 * p, 0),
        lambda: f"padding ({show(p)}) must be at most half of the kernel size ({show(k)})",
        "padding",
    )


def _chain_pool(ctx: RuleContext, e, x, k: int, s: int, p: int, d: int, ceil_mode):
    """pool_size for a conv/pool chain dim `e` (its Chain `x`, shapes.affine) and whole arguments: the same
    requirements, tail and output, worked out in ints and each built once."""
    _half_kernel(ctx, k, p)
    return _chain_window(ctx, e, x, k, s, p, d, ceil_mode)


def _chain_window(ctx: RuleContext, e, x, k: int, s: int, p: int, d: int, ceil_mode):
    """_chain_pool once the padding is known to be at most half the kernel."""
    ext = d * (k - 1) + 1
    if not ceil_mode:
        m = shifted(x, 2 * p - ext)
        ctx.chain_tail(x, m, s, p, ext)
        size = shifted(divided(m, s), 1)
    else:  # pool_size's smaller of the two shifts
        size = shifted(divided(shifted(x, min(2 * p - ext + s - 1, p - 1)), s), 1)
    ctx.require_later(nonneg(shifted(size, -1)),
                      lambda: f"the output size ({text(size)}) would be less than 1 (input {text(x)}, kernel {k})")
    return expr_of(size, x, e)


def pool_window(a, nd):
    k = dims_of(a["kernel_size"], nd)
    s = k if a["stride"] is None else dims_of(a["stride"], nd)
    p, d = dims_of(a["padding"], nd), dims_of(a.get("dilation", 1), nd)
    return [(di * (ki - 1) + 1, si, pi) for ki, si, pi, di in zip(k, s, p, d, strict=True)]


def adaptive_window(a, nd):
    """A dim pooled to one position reads all of it; a dim kept (None) reads its own position; others read
    windows that differ from position to position (not modelled)."""
    size = dims_of(a["output_size"], nd)
    return [POINTWISE if v is None else GLOBAL if v == 1 else None for v in size]


def pool_rule(ctx: RuleContext, shape, a, nd):
    if a.get("return_indices"):  # (output, indices) as torch returns them: `y, idx = MaxPool2d(2, ...)`
        out = pool_rule(ctx, shape, {**a, "return_indices": False}, nd)
        return _with_indices(out)
    plain = _plain_pool(ctx, shape, a, nd)
    if plain is not None:
        return plain
    k = per_dim(ctx, a["kernel_size"], nd, "kernel_size")
    s = k if a["stride"] is None else per_dim(ctx, a["stride"], nd, "stride")
    p, d = per_dim(ctx, a["padding"], nd, "padding"), per_dim(ctx, a.get("dilation", 1), nd, "dilation")
    if not _whole_and_valid(k, s, p, d):  # else each check below is true: nothing to require
        ctx.positive(k, "kernel_size")
        ctx.positive(s, "stride")
        ctx.nonneg(p, "padding")
        ctx.positive(d, "dilation")
    if a.get("divisor_override") is not None:
        v = a["divisor_override"]
        ctx.require(sympy.Ne(v, 0), "divisor_override must not be 0", "divisor_override")
    lead, c, spatial = split_channels(shape, nd)
    if ctx.spec.kernel_within_input:  # its torch kernel compares the raw input (padding ignored) with the kernel
        for x, ki in zip(spatial, k, strict=True):
            ctx.require(at_least(x - ki, 0), lambda: f"the input ({show(x)}) must be at least the kernel ({show(ki)})",
                        "kernel_size")
    out = [pool_size(ctx, *v, a["ceil_mode"]) for v in zip(spatial, k, s, p, d, strict=True)]
    return (*lead, c, *out)


def _plain_pool(ctx: RuleContext, shape, a, nd):
    """pool_rule for the usual call: every size argument a whole number torch accepts, the padding at most half
    the kernel, every spatial dim a chain dim (shapes.affine), no divisor_override and no raw-input check
    (AvgPool3d's).  Each of pool_rule's checks is then true: what is left is _chain_window per dim, with the
    arguments read once as Python ints.  None where any of it does not hold: pool_rule decides, and reports."""
    k = whole_dims(a["kernel_size"], nd)
    s = k if a["stride"] is None else whole_dims(a["stride"], nd)
    p, d = whole_dims(a["padding"], nd), whole_dims(a.get("dilation", 1), nd)
    if k is None or s is None or p is None or d is None or not _whole_and_valid(k, s, p, d) \
            or a.get("divisor_override") is not None or ctx.spec.kernel_within_input:
        return None
    spatial = shape[-nd:]
    chains = [chain_of(x) for x in spatial]
    if None in chains:
        return None
    for ki, pi in zip(k, p, strict=True):
        if ki < 2 * pi:  # refused: pool_rule's _half_kernel says so
            return None
    ceil_mode = a["ceil_mode"]
    return (*shape[:-nd], *[_chain_window(ctx, *v, ceil_mode) for v in zip(spatial, chains, k, s, p, d, strict=True)])


def _whole_and_valid(k, s, p, d) -> bool:
    """Every kernel size, stride and dilation a whole number >= 1 and every padding one >= 0 (nearly every
    pool): pool_rule's checks of them, each `at_least` of two numbers, are all true."""
    values = [whole(v) for v in (*k, *s, *d)]
    pads = [whole(v) for v in p]
    return None not in values and None not in pads and min(values) >= 1 and min(pads) >= 0


def _with_indices(out):
    from ..ops import Several  # ops imports the registry's types

    return Several((out, out))


def pool_reach(a, shape, out, nd) -> list:
    """MaxPool's `reach`: per spatial dim the last position a window reads.  The last window starts at
    (n - 1)*stride - padding (n: the output size) and reads to dilation*(kernel_size - 1) past that, which torch's
    kernel clips to the input (x - 1).  With a dilation the window's end is kept where it can pass x - 1: a window
    whose every position the clipping drops (a dilated one over the padding) gives the index of its first position
    at or past 0, which can be past the input (torch's kernel starts its maximum there), and the end is an upper
    bound of that; a clipped window's last read can also fall short of x - 1 (the unpool's check errs to the safe
    side there)."""
    k = dims_of(a["kernel_size"], nd)
    s = k if a["stride"] is None else dims_of(a["stride"], nd)
    p, d = dims_of(a["padding"], nd), dims_of(a["dilation"], nd)
    found = []
    for x, n, ki, si, pi, di in zip(shape[-nd:], out[-nd:], k, s, p, d, strict=True):
        end, last = to_expr((n - 1) * si - pi + di * (ki - 1)), to_expr(x - 1)
        if decide_at_least(last - end, 0) or di != 1:
            found.append(end)
        elif decide_at_least(end - last, 0):  # reaches past the input (ceil_mode, padding): clipped
            found.append(last)
        else:
            found.append(sympy.Min(last, end))
    return found


def whole_reach(a, shape, out, nd) -> list:
    """`reach` of the adaptive and fractional max pools: their last window ends at the input's end."""
    return [to_expr(x - 1) for x in shape[-nd:]]


def adaptive_rule(ctx: RuleContext, shape, a, nd):
    if a.get("return_indices"):
        return _with_indices(adaptive_rule(ctx, shape, {**a, "return_indices": False}, nd))
    spatial = shape[-nd:]
    if a["output_size"] is None:
        ctx.fail("output_size must be an int or a tuple (None keeps a dim only inside a tuple)", "output_size")
    size = per_dim(ctx, a["output_size"], nd, "output_size", broadcast=False)
    if nd == 1 and size[0] is None:
        ctx.fail(f"{ctx.spec.name} needs an int output_size", "output_size")
    ctx.nonneg([v for v in size if v is not None], "output_size")
    out = [x if v is None else v for x, v in zip(spatial, size, strict=True)]
    if isinstance(a["output_size"], tuple) and len(shape) == nd:  # torch's tuple handling needs a dim more
        ctx.fail(f"{ctx.spec.name} with a tuple output_size needs at least a {nd + 1}-D input", "output_size")
    if len(shape) not in (nd + 1, nd + 2):  # torch's mean() shortcut for a 1 x 1 (x 1) output takes any rank
        for v in out:
            ctx.require(sympy.Eq(v, 1), f"{ctx.spec.name} expects a {nd + 1}-D or {nd + 2}-D input, got "
                        f"{len(shape)}-D (torch takes other ranks only for output_size 1)")
    return nonempty(ctx, (*shape[:-nd], *out))


def max_pool_family(nd: int) -> None:
    args = (
        Arg("kernel_size", kind=SIZE),
        Arg("stride", None, OPT_SIZE),
        Arg("padding", 0, SIZE),
        Arg("dilation", 1, SIZE),
        Arg("return_indices", False, BOOL),
        Arg("ceil_mode", False, BOOL),
    )
    member_of("MaxPool", nd, args=args, rule=pool_rule, short="maxpool", window=pool_window, size_rule=CONV_SIZE,
            saves=sv.max_pool, reach=lambda a, shape, out: pool_reach(a, shape, out, nd))


def avg_pool_family(nd: int) -> None:
    args = (
        Arg("kernel_size", kind=SIZE),
        Arg("stride", None, OPT_SIZE),
        Arg("padding", 0, SIZE),
        Arg("ceil_mode", False, BOOL),
        Arg("count_include_pad", True, BOOL),
    )
    if nd > 1:  # AvgPool1d has none
        args += (Arg("divisor_override", None, OPT_INT),)
    member_of("AvgPool", nd, args=args, rule=pool_rule, short="avgpool", kernel_within_input=nd == 3,
            window=pool_window, size_rule=AVG_POOL_SIZE, saves=sv.SAVES_INPUT)


def adaptive_pool_family(nd: int) -> None:
    size = Arg("output_size", kind=OPT_SIZE)
    # AdaptiveAvgPool2d/3d take any rank for a 1 x 1 (x 1) output: adaptive_rule checks the rank
    member_of("AdaptiveAvgPool", nd, args=(size,), rule=adaptive_rule, ranks=None if nd > 1 else (nd + 1, nd + 2),
            min_rank=nd, short="adaptiveavgpool", window=adaptive_window, saves=sv.adaptive_avg_pool(nd))
    member_of("AdaptiveMaxPool", nd, args=(size, Arg("return_indices", False, BOOL)), rule=adaptive_rule, min_rank=nd,
            short="adaptivemaxpool", window=adaptive_window, saves=sv.max_pool,
            reach=lambda a, shape, out: whole_reach(a, shape, out, nd))


def lp_pool_rule(ctx: RuleContext, shape, a, nd):
    """avg_pool of x**p without padding, times the window size, to the 1/p: avg_pool's sizes."""
    if a["norm_type"] == 0:
        ctx.fail("norm_type must not be 0 (torch takes the 1/norm_type power)", "norm_type")
    k = a["kernel_size"]
    if nd == 1 and isinstance(k, tuple):  # torch multiplies by kernel_size itself
        ctx.fail(f"kernel_size must be an int for {ctx.spec.name}, got {show(k)}", "kernel_size")
    if isinstance(k, tuple) and len(k) != nd:  # torch unpacks it into nd values
        ctx.fail(f"kernel_size must be an int or {nd} values for {ctx.spec.name}, got {show(k)}", "kernel_size")
    return pool_rule(ctx, shape, {**a, "padding": 0}, nd)


def lp_pool_window(a, nd):
    return pool_window({**a, "padding": 0}, nd)


LP_POOL_SIZE = SizeRule("(x - kernel_size)//stride + 1", lambda x, v: [x, -v["kernel_size"]], lambda v: v["stride"])


def lp_pool_family(nd: int) -> None:
    args = (Arg("norm_type", kind=FLOAT), Arg("kernel_size", kind=SIZE), Arg("stride", None, OPT_SIZE),
            Arg("ceil_mode", False, BOOL))
    member_of("LPPool", nd, args=args, rule=lp_pool_rule, short="lppool", kernel_within_input=nd == 3,
            window=lp_pool_window, size_rule=LP_POOL_SIZE, saves=sv.lp_pool)



# -- fractional max pooling ----------------------------------------------------------------------------------


def fractional_rule(ctx: RuleContext, shape, a, nd):
    """F.fractional_max_poolNd: the output size is output_size, or int(x * output_ratio) per dim in float64; each
    of its windows starts at a random place, but its size and the checks are fixed: output + kernel - 1 <= input
    (2d), < input (3d, one more: torch's fractional_max_pool3d compares strictly)."""
    if a["return_indices"]:  # (output, indices): `y, idx = FractionalMaxPool2d(2, output_ratio=0.5, ...)`
        return _with_indices(fractional_rule(ctx, shape, {**a, "return_indices": False}, nd))
    size, ratio = a["output_size"], a["output_ratio"]
    if (size is None) == (ratio is None):
        ctx.fail("give exactly one of output_size and output_ratio, got "
                 f"{'both' if size is not None else 'neither'}", "output_ratio" if size is not None else None,
                 hint="output_size=(H, W) fixes the output; output_ratio=0.5 halves every spatial dim")
    k = per_dim(ctx, a["kernel_size"], nd, "kernel_size", broadcast=False)
    # torch's 2d kernel runs an empty window for a kernel of 0 or less (its output is -inf): refused here
    ctx.positive(k, "kernel_size")
    spatial = shape[-nd:]
    if size is not None:
        out = per_dim(ctx, size, nd, "output_size", broadcast=False)
        if any(v is None for v in out):
            ctx.fail(f"output_size must be ints for {ctx.spec.name}, got {show(size)} (None keeps a dim only in an "
                     "adaptive pool)", "output_size")
        ctx.positive(out, "output_size")
        arg = "output_size"
    else:
        if nd == 3 and isinstance(ratio, tuple) and len(ratio) > 3:  # torch's 3d reads 3 and checks no length
            ctx.warn(sympy.true, f"torch reads the first 3 values of output_ratio {show(ratio)} and "
                     "ignores the rest", "output_ratio")
            ratio = ratio[:3]
        ratios = per_dim(ctx, ratio, nd, "output_ratio", broadcast=False)
        for r in ratios:
            if not 0 < r < 1:
                ctx.fail(f"output_ratio must be between 0 and 1 (exclusive), got {show(ratio)}", "output_ratio",
                         hint="the output is int(input * output_ratio) per dim: 0.5 halves it")
        out = [scaled_size(ctx, x, r, "output_ratio", "output_size") for x, r in zip(spatial, ratios, strict=True)]
        arg = "output_ratio"
    strict = 1 if nd == 3 else 0
    for x, o, ki in zip(spatial, out, k, strict=True):
        need = o + ki - 1 + strict
        ctx.require(at_least(x - need, 0), lambda: f"the output size ({show(o)}) and the kernel ({show(ki)}) need an "
                    f"input of at least {show(need)}, got {show(x)} (torch checks output + kernel - 1 "
                    f"{'<' if strict else '<='} input)", arg)
    return (*shape[:-nd], *out)


def fractional_max_pool_family(nd: int) -> None:
    """FractionalMaxPool2d/3d; `_random_samples` (fixed window places, for tests) is not a plan's argument.  Its
    windows' places are random on every call, in eval mode too, so no receptive field is exact (window None)."""
    args = (Arg("kernel_size", kind=SIZE), Arg("output_size", None, OPT_SIZE), Arg("output_ratio", None, SCALE),
            Arg("return_indices", False, BOOL))
    member_of("FractionalMaxPool", nd, args=args, rule=fractional_rule, short="fractionalmaxpool",
              saves=sv.max_pool, reach=lambda a, shape, out: whole_reach(a, shape, out, nd))
