"""Convolutions and transposed convolutions (Conv1d-3d, ConvTranspose1d-3d)."""

# ruff: noqa: B023

from __future__ import annotations

import math

import sympy

from .. import saves as sv
from ..shapes import at_least, divides, floordiv, offset, to_expr
from ..shapes.affine import chain_of, divided, expr_of, nonneg, shifted, text
from .spec import (
    BOOL,
    CONV_SIZE,
    CONV_T_SIZE,
    PAD,
    SIZE,
    STR,
    Arg,
    RuleContext,
    channels_at,
    dims_of,
    member_of,
    ntuple,
    per_dim,
    prod,
    show,
    split_channels,
    whole,
    whole_dims,
)


def _conv_common(ctx: RuleContext, shape, a, nd):
    k = per_dim(ctx, a["kernel_size"], nd, "kernel_size", broadcast=False)
    s, d = per_dim(ctx, a["stride"], nd, "stride"), per_dim(ctx, a["dilation"], nd, "dilation")
    ctx.positive([a["groups"]], "groups")
    ctx.positive([a["out_channels"]], "out_channels")
    ctx.positive(k, "kernel_size")
    ctx.positive(s, "stride")
    ctx.positive(d, "dilation")
    cin, g = shape[-nd - 1], a["groups"]
    ctx.require(divides(cin, g), lambda: f"in_channels ({show(cin)}) must be divisible by groups ({show(g)})", "groups")
    ctx.require(
        divides(a["out_channels"], g),
        lambda: f"out_channels ({show(a['out_channels'])}) must be divisible by groups ({show(g)})",
        "groups",
    )
    return k, s, d


def conv_rule(ctx: RuleContext, shape, a, nd):
    plain = _plain_conv(ctx, shape, a, nd)
    if plain is not None:
        return plain
    k, s, d = _conv_common(ctx, shape, a, nd)
    lead, _, spatial = split_channels(shape, nd)
    pads = _conv_pads(ctx, shape, a, nd, k, d)
    out = []
    for x, (lo, hi), ki, si, di in zip(spatial, pads, k, s, d, strict=True):
        ext = di * (ki - 1) + 1
        _padding_mode_limits(ctx, a["padding_mode"], x, lo, hi)
        m = offset(x, lo + hi - ext)  # what the windows slide over; the constants are summed first: one sympy Add
        ctx.require(
            at_least(m, 0),
            lambda: f"the padded input ({show(offset(x, lo + hi))}) must be at least the kernel's extent ({show(ext)})",
        )
        if a["padding"] != "same":
            ctx.tail(x, m, si, hi, ext)
        out.append(offset(m, 1) if a["padding"] == "same" else offset(floordiv(m, si), 1))  # 'same': x where padded
    return (*lead, a["out_channels"], *out)


def _plain_conv(ctx: RuleContext, shape, a, nd):
    """conv_rule for the usual call: zero padding written as numbers, every size argument a whole number that
    torch accepts.  The same output and requirements, its checks done with Python ints (each of the ~12 is
    true: sympy arithmetic and at_least on them were half of a new conv's first check).  None where any of it
    does not hold: conv_rule's general path decides, and reports."""
    if a["padding_mode"] != "zeros" or isinstance(a["padding"], str):
        return None
    k, s = whole_dims(a["kernel_size"], nd, broadcast=False), whole_dims(a["stride"], nd)
    d, pads = whole_dims(a["dilation"], nd), whole_dims(a["padding"], nd)
    g, c_out = whole(a["groups"]), whole(a["out_channels"])
    if k is None or s is None or d is None or pads is None or g is None or c_out is None:
        return None
    if min(*k, *s, *d, g, c_out) < 1 or min(pads) < 0 or c_out % g:
        return None
    cin = shape[-nd - 1]
    if g != 1 and not (cin.is_Integer and int(cin) % g == 0):  # a symbolic in_channels: a requirement
        return None
    out = [*shape[: -nd - 1], a["out_channels"]]
    for x, p, ki, si, di in zip(shape[-nd:], pads, k, s, d, strict=True):  # a loop: no generator's frame
        ext = di * (ki - 1) + 1
        dim = _kept_conv(ctx, x, p, si, ext)
        out.append(_sympy_conv(ctx, x, p, si, ext) if dim is None else dim)
    return tuple(out)


def _sympy_conv(ctx: RuleContext, x, p: int, s: int, ext: int):
    """_plain_conv's output dim for a dim that is no chain dim (a number, `2*H`, a long sum), with sympy."""
    m = offset(x, 2 * p - ext)
    ctx.require(
        at_least(m, 0),
        lambda: f"the padded input ({show(offset(x, 2 * p))}) must be at least the kernel's extent ({show(ext)})",
    )
    ctx.tail(x, m, s, p, ext)
    return offset(floordiv(m, s), 1)


def _chain_conv(ctx: RuleContext, e, x, p: int, s: int, ext: int):
    """_plain_conv's output dim for a conv/pool chain dim `e` (its Chain `x`, shapes.affine): the same
    requirement, tail and output, worked out in ints and each built once."""
    m = shifted(x, 2 * p - ext)
    ctx.require_later(nonneg(m), lambda: f"the padded input ({text(shifted(x, 2 * p))}) must be at least the "
                      f"kernel's extent ({ext})")
    ctx.chain_tail(x, m, s, p, ext)
    return expr_of(shifted(divided(m, s), 1), x, e)


def _kept_conv(ctx: RuleContext, e, p: int, s: int, ext: int):
    """`_chain_conv` on `e`, its requirement, tail and output replayed where the same dim met the same window
    before (a Fire's squeeze and expand, a bottleneck's 1x1 convs, the convs of a stage); None where `e` is no
    chain dim.  Keyed by the dim's identity (a stage passes its dims on): hashing a key of sympy objects costs
    more than a Python-level hit saves."""
    key = id(e), p, s, ext
    kept = _STEPS.get(key)
    if kept is None:  # (the entry keeps `e`: its id stays its own)
        x = chain_of(e)
        if x is None:
            return None
        conds, tails = len(ctx.conds), len(ctx.tails)
        out = _chain_conv(ctx, e, x, p, s, ext)
        if len(_STEPS) >= MAX_STEPS:
            _STEPS.clear()
        _STEPS[key] = e, out, ctx.conds[conds:], ctx.tails[tails:]  # e kept: its id stays its own
        return out
    if kept[2]:
        ctx.conds.extend(kept[2])
    if kept[3]:
        ctx.tails.extend(kept[3])
    return kept[1]


MAX_STEPS = 4096  # chain steps kept (then forgotten all at once)
_STEPS: dict = {}  # (id(dim), padding, stride, extent) -> (dim, output dim, conditions, tails)


def _conv_pads(ctx: RuleContext, shape, a, nd, k, d):
    """(left, right) padding of each spatial dim."""
    pad, mode = a["padding"], a["padding_mode"]
    if pad == "same":
        strides = [to_expr(v) for v in per_dim(ctx, a["stride"], nd, "stride")]
        if any(v.is_Integer and v != 1 for v in strides):
            ctx.fail("padding='same' is not supported for strided convolutions", "padding",
                     hint="use an explicit padding, or stride=1")
        for v in strides:  # a symbolic stride (stride=D - 1): torch runs it where it is 1
            ctx.require(sympy.Eq(v, 1), lambda: f"padding='same' needs stride 1, got {show(v)}", "stride")
        totals = [di * (ki - 1) for di, ki in zip(d, k, strict=True)]
        if mode != "zeros" and isinstance(a["dilation"], tuple):
            # torch sizes F.pad's 'same' padding by zipping the dilation AS WRITTEN with the kernel:
            # dilation=(2,) pads the first spatial dim only (the conv still dilates every dim)
            totals = totals[: len(a["dilation"])] + [0] * (nd - len(a["dilation"]))
        return [(floordiv(t, 2), t - floordiv(t, 2)) for t in totals]
    if pad == "valid":
        return [(0, 0)] * nd
    if mode == "zeros":
        p = per_dim(ctx, pad, nd, "padding")
        ctx.nonneg(p, "padding")
        return [(v, v) for v in p]
    return _mode_pads(ctx, shape, pad, nd)


def _mode_pads(ctx: RuleContext, shape, pad, nd):
    """padding_mode != 'zeros': torch first runs F.pad(x, padding reversed, each twice, mode), which pads
    the last len(padding) dims of the input as it is (unbatched too), then convolves without padding.
    Negative values crop."""
    p = ntuple(pad, nd)
    m, r = len(p), len(shape)
    if m > 3:  # F.pad's reflect/replicate/circular kernels stop at 3 dims
        ctx.fail(f"padding_mode other than 'zeros' pads at most 3 dims, got {m} padding values", "padding",
                 hint=f"give padding as an int or {nd} values")
    if r not in (m + 1, m + 2):
        ctx.fail(f"padding_mode needs a {m + 1}-D or {m + 2}-D input for a {m}-value padding, got {r}-D", "padding",
                 hint=f"give padding as an int or {nd} values")
    if m > nd:  # the extra leading value pads the channels, which only works when it is 0
        ctx.require(sympy.Eq(p[0], 0), lambda: f"padding {show(p)} would pad the channel dim", "padding")
        p = p[1:]
    return [(0, 0)] * (nd - len(p)) + [(v, v) for v in p]


def _padding_mode_limits(ctx, mode, x, lo, hi):
    if mode == "reflect":
        for p in {lo, hi}:
            ctx.require(
                at_least(x - p, 1),
                lambda: f"padding_mode='reflect' needs padding ({show(p)}) < the input size ({show(x)})",
                "padding_mode",
            )
    elif mode == "circular":
        for p in {lo, hi}:
            ctx.require(
                at_least(x - p, 0),
                lambda: f"padding_mode='circular' needs padding ({show(p)}) <= the input size ({show(x)})",
                "padding_mode",
            )


def conv_window(a, nd):
    """(extent, stride, left padding) per spatial dim: the window each output position reads."""
    k, s, d = dims_of(a["kernel_size"], nd), dims_of(a["stride"], nd), dims_of(a["dilation"], nd)
    if a["padding"] == "same":  # torch pads the smaller half on the left
        left = [floordiv(di * (ki - 1), 2) for ki, di in zip(k, d, strict=True)]
    elif a["padding"] == "valid":
        left = [0] * nd
    else:
        left = dims_of(a["padding"], nd)
    if a["padding"] == "same" and a["padding_mode"] != "zeros" and isinstance(a["dilation"], tuple):
        return [None] * nd  # torch's F.pad sizing with a 1-tuple dilation (see _conv_pads): not modelled
    return [(di * (ki - 1) + 1, si, li) for ki, si, di, li in zip(k, s, d, left, strict=True)]


def conv_t_window(a, nd):
    """The window as the input sees it: output position o is the sum over i*stride - padding + j*dilation = o,
    so it reads the inputs i from (o + padding - dilation*(kernel_size - 1))/stride to (o + padding)/stride
    (those that are integers): extent 1 + dilation*(kernel_size - 1)/stride, stride 1/stride, left
    (dilation*(kernel_size - 1) - padding)/stride, fractions (receptive.py rounds the span inwards).  Not
    modelled: a stride and a dilation both above 1 (the ends of that range need not be read: only the i
    where o + padding - i*stride is a multiple of the dilation are), and a stride above the kernel size
    (some output positions read no input at all, only the bias)."""
    k, s, d, p = (dims_of(a[n], nd) for n in ("kernel_size", "stride", "dilation", "padding"))
    return [None if to_expr(si) != 1 and to_expr(di) != 1 or (to_expr(si) > ki) is not sympy.false else
            (1 + to_expr(di * (ki - 1)) / si, 1 / to_expr(si), to_expr(di * (ki - 1) - pi) / si)
            for ki, si, di, pi in zip(k, s, d, p, strict=True)]


def conv_count(a, nd):
    c_out, c_in, g = whole(a["out_channels"]), whole(a["in_channels"]), whole(a["groups"])
    kernel = whole_dims(a["kernel_size"], nd, False)  # None for a tuple of another length: ntuple's product below
    if c_out is not None and c_in is not None and g is not None and g > 0 and kernel is not None:
        return sympy.Integer(c_out * (c_in // g) * math.prod(kernel) + (c_out if a["bias"] else 0))  # nearly all
    k = ntuple(a["kernel_size"], nd)
    weight = a["out_channels"] * floordiv(a["in_channels"], a["groups"]) * prod(k)
    return weight + (a["out_channels"] if a["bias"] else 0)


def conv_macs(shape, out, a, nd):
    """Each output element is a dot product of in_channels/groups x kernel inputs with the weights; an
    unbatched input counts as a batch of one (torch adds the dim)."""
    k = ntuple(a["kernel_size"], nd)
    return prod(out[: -nd - 1]) * a["out_channels"] * prod(out[-nd:]) * floordiv(a["in_channels"], a["groups"]) \
        * prod(k)


def conv_t_rule(ctx: RuleContext, shape, a, nd):
    if isinstance(a["padding"], str):
        ctx.fail(f"padding={a['padding']!r} is not supported for {ctx.spec.name}", "padding")
    if a["padding_mode"] != "zeros":
        ctx.fail(f'only padding_mode="zeros" is supported for {ctx.spec.name}', "padding_mode")
    k, s, d = _conv_common(ctx, shape, a, nd)
    p, op = per_dim(ctx, a["padding"], nd, "padding"), per_dim(ctx, a["output_padding"], nd, "output_padding")
    ctx.nonneg(p, "padding")
    ctx.nonneg(op, "output_padding")
    lead, _, spatial = split_channels(shape, nd)
    out = []
    for x, pi, opi, ki, si, di in zip(spatial, p, op, k, s, d, strict=True):
        ctx.require(
            at_least(sympy.Max(si, di) - opi, 1),
            lambda: f"output_padding ({show(opi)}) must be smaller than either stride ({show(si)})"
                    f" or dilation ({show(di)})",
            "output_padding",
        )
        size = (x - 1) * si - 2 * pi + di * (ki - 1) + opi + 1
        ctx.require(at_least(size, 1), lambda: f"the output size ({show(size)}) would be less than 1", "padding")
        out.append(size)
    return (*lead, a["out_channels"], *out)


def conv_t_count(a, nd):
    k = ntuple(a["kernel_size"], nd)
    weight = a["in_channels"] * floordiv(a["out_channels"], a["groups"]) * prod(k)
    return weight + (a["out_channels"] if a["bias"] else 0)


def conv_t_macs(shape, out, a, nd):
    """Each INPUT element is scattered through out_channels/groups x kernel weights."""
    k = ntuple(a["kernel_size"], nd)
    return prod(shape[: -nd - 1]) * a["in_channels"] * prod(shape[-nd:]) * floordiv(a["out_channels"], a["groups"]) \
        * prod(k)


def conv_t3d_storage(a, shape, out, dtype: str):
    """Elements of ConvTranspose3d's output storage.  torch 2.13's CPU backends (Convolution.cpp
    `_select_conv_backend`, `use_mkldnn`): oneDNN where the input is float32, no output_padding reaches its
    stride, and both of (strided or dilated or a batch of 16 or more or a kernel's last two sizes not 1 x 1, or
    more than one thread) and (groups > 1, or those kernel sizes both above 3, or a batch above 1, or batch x
    channels x depth x height above 20480); else slow_conv_transpose3d (float64 always; bfloat16 and float16
    without the CPU's oneDNN support for them), which makes the output with `at::empty_like(input)` and
    resizes it: the storage holds max(input, output) elements.  With groups > 1 the groups' outputs are
    concatenated: a new tensor of the output's size.  The thread count and the CPU's 16-bit support are the
    machine's, not the plan's: taken as one thread and no support, an upper bound (measured equal with
    torch.set_num_threads(1), tests/test_layouts.py)."""
    resized = sympy.Piecewise((sympy.Max(prod(shape), prod(out)), sympy.Eq(a["groups"], 1)), (prod(out), True))
    if dtype != "float32":
        return resized
    return sympy.Piecewise((prod(out), _conv_t3d_onednn(a, shape)), (resized, True))


def _conv_t3d_onednn(a, shape):
    """use_mkldnn's test for a float32 ConvTranspose3d, its `at::get_num_threads() > 1` taken as false."""
    k, s, d, op = (dims_of(a[n], 3) for n in ("kernel_size", "stride", "dilation", "output_padding"))
    n = shape[0] if len(shape) == 5 else 1  # torch unsqueezes an unbatched input
    c, depth, height = shape[-4:-1]
    kh, kw = k[1], k[2]
    small = sympy.And(*(sympy.Lt(o, t) for o, t in zip(op, s, strict=True)))  # not is_output_padding_big()
    worth = sympy.Or(*(sympy.Ne(v, 1) for v in (*s, *d, kh, kw)), sympy.Ge(n, 16))
    native_slower = sympy.Or(sympy.Gt(a["groups"], 1), sympy.And(sympy.Gt(kw, 3), sympy.Gt(kh, 3)), sympy.Gt(n, 1),
                             sympy.Gt(n * c * depth * height, 20480))
    return sympy.And(small, worth, native_slower)


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def conv_family(nd: int) -> None:
    args = (
        Arg("out_channels"),
        Arg("kernel_size", kind=SIZE),
        Arg("stride", 1, SIZE),
        Arg("padding", 0, PAD, ("same", "valid")),
        Arg("dilation", 1, SIZE),
        Arg("groups", 1),
        Arg("bias", True, BOOL),
        Arg("padding_mode", "zeros", STR, _PADDING_MODES),
    )
    member_of("Conv", nd, args=args, rule=conv_rule, count=conv_count, macs=conv_macs, window=conv_window,
            saves=sv.conv(nd), size_rule=CONV_SIZE, inferred="in_channels", infer=channels_at(nd), short="conv")


def conv_transpose_family(nd: int) -> None:
    args = (
        Arg("out_channels"),
        Arg("kernel_size", kind=SIZE),
        Arg("stride", 1, SIZE),
        Arg("padding", 0, PAD, ("same", "valid")),
        Arg("output_padding", 0, SIZE),
        Arg("groups", 1),
        Arg("bias", True, BOOL),
        Arg("dilation", 1, SIZE),
        Arg("padding_mode", "zeros", STR, _PADDING_MODES),
    )
    member_of("ConvTranspose", nd, args=args, rule=conv_t_rule, count=conv_t_count, macs=conv_t_macs,
            saves=sv.SAVES_INPUT, window=conv_t_window, size_rule=CONV_T_SIZE, inferred="in_channels",
            infer=channels_at(nd), short="deconv", storage=conv_t3d_storage if nd == 3 else None)

