"""The Swin Transformer's two layers, torchvision.models.swin_transformer's ShiftedWindowAttention and
PatchMerging, as kinds whose modules are convplan's copies (modules.py).

Why kinds and not plan operations: the attention pads each map to a multiple of its window, rolls it,
cuts it into windows, gathers a bias per head from a table by a buffer of indices (relative_position_index,
a state_dict entry a plan has no word for) and masks the pairs a roll brought together; written out it
would be some forty operations that say less than the one call torchvision's Swin block makes.  Its
shape is its input's; what the padding changes is the cost, which follows the padded sizes exactly:
`H + (window - H % window) % window`, that is `window * ceil(H / window)`.
"""

# Messages are lambdas (printing sympy is slow) that RuleContext.require calls at once, never later:
# ruff: noqa: B023

from __future__ import annotations

import sympy

from ..saves import NEW, STATS, Saved, Saves
from ..shapes import at_least, ceildiv, divides, floordiv, to_expr
from .spec import BOOL, FLOAT, REQUIRED, SIZE, Arg, LayerSpec, RuleContext, prod, register, show

SWIN = "torchvision.models.swin_transformer"


def _pair(ctx: RuleContext, value, arg: str) -> tuple:
    """torchvision's list of two sizes, (height, width): refused otherwise, as its constructor does."""
    if not isinstance(value, tuple) or len(value) != 2:
        ctx.fail(f"{arg} must be a tuple of 2 sizes (height, width), got {show(value)}", arg,
                 hint=f"torchvision's ShiftedWindowAttention raises for any other length: write {arg}=(7, 7)")
    return value


def padded(size, window):
    """A map's size padded at the end to a multiple of the window: size + (window - size % window) % window."""
    return window * ceildiv(size, window)


def attention_rule(ctx: RuleContext, shape, a):
    window, _ = _pair(ctx, a["window_size"], "window_size"), _pair(ctx, a["shift_size"], "shift_size")
    ctx.positive(window, "window_size")
    heads, c = a["num_heads"], shape[-1]
    ctx.positive([heads], "num_heads")
    ctx.require(divides(c, heads), lambda: f"the channels ({show(c)}) must be divisible by num_heads "
                f"({show(heads)}): each head takes channels // num_heads of them", "num_heads")
    return tuple(shape)


def shifts(shape, a) -> bool | None:
    """Whether the window shifts: a dim no larger than its window is not shifted, and nothing is where the
    shifts left sum to 0 or less (torchvision's `sum(shift_size) > 0`); None where the sizes decide."""
    total, unknown = 0, False
    for size, window, shift in zip(shape[1:3], a["window_size"], a["shift_size"], strict=True):
        larger = at_least(padded(size, window) - window, 1)
        if larger is sympy.true:
            total += shift
        elif larger is not sympy.false and shift != 0:
            unknown = True
    happens = sympy.Gt(to_expr(total), 0)
    return None if unknown or happens not in (sympy.true, sympy.false) else bool(happens)


def attention_count(a):
    (wh, ww), c, heads = a["window_size"], a["dim"], a["num_heads"]
    table = (2 * wh - 1) * (2 * ww - 1) * heads  # a bias per relative position and head
    return table + 3 * c * c + (3 * c if a["qkv_bias"] else 0) + c * c + (c if a["proj_bias"] else 0)


def window_tokens(shape, a):
    """(windows times batch, positions per window, channels) of the padded map."""
    (wh, ww), (n, h, w, c) = a["window_size"], shape
    tokens = n * padded(h, wh) * padded(w, ww)
    return tokens, wh * ww, c


def attention_macs(shape, out, a):
    """Over the padded map: the q, k, v projection, q k^T and the weights times v in each window (window
    positions x channels per position, over the heads), the output projection."""
    tokens, per_window, c = window_tokens(shape, a)
    return tokens * c * (3 * c + 2 * per_window + c)


def attention_saves(a, shape, out):
    """Training, as measured with saved_tensors_hooks on torch 2.13 (tests/test_swin.py): the windows (the
    qkv Linear's input), q scaled, k^T and v (the products' operands), the softmax's output and the heads
    joined (the proj Linear's input), whatever the padding and the shift.  k^T and v are copied out of qkv
    for the batched products, except where one window or one head lets them stay views: then qkv is kept.
    torchvision calls F.dropout in training mode: with p > 0 the attention dropout keeps its noise and the
    dropped weights (p = 1: a zero scalar and the dropped weights), the output dropout its noise (p = 1: a
    zero scalar)."""
    tokens, per_window, c = window_tokens(shape, a)
    (wh, ww), (n, h, w, _), heads = a["window_size"], shape, a["num_heads"]
    windows = n * ceildiv(h, wh) * ceildiv(w, ww)
    weights = tokens * per_window * heads
    views = sympy.true if heads == 1 else sympy.Eq(windows, 1)
    operands = sympy.Piecewise((3 * tokens * c, views), (2 * tokens * c, True))  # qkv, or the two copies
    items = [Saved(NEW, 3 * tokens * c), Saved(NEW, operands), Saved(NEW, weights)]
    p, q = a["attention_dropout"], a["dropout"]
    if p > 0:
        items += [Saved(NEW, 1 if p == 1 else weights), Saved(NEW, weights)]
    if q > 0:
        items.append(Saved(NEW, 1 if q == 1 else tokens * c))
    return Saves(tuple(items))


def attention_storage(a, shape, out, dtype: str):
    """torchvision crops the padded map with `x[:, :H, :W, :].contiguous()`, which returns the view itself
    where it is contiguous already (one row or no column cropped, and one sample or nothing cropped): then
    the output keeps the whole padded map's storage."""
    (wh, ww), (n, h, w, c) = a["window_size"], shape
    ph, pw = padded(h, wh), padded(w, ww)
    whole = sympy.And(sympy.Or(sympy.Eq(h, 1), sympy.Eq(w, pw)),
                      sympy.Or(sympy.Eq(n, 1), sympy.And(sympy.Eq(h, ph), sympy.Eq(w, pw))))
    return sympy.Piecewise((n * ph * pw * c, whole), (n * h * w * c, True))


def attention_buffers(a) -> tuple:
    """(floating-point, int64) elements of its buffers: relative_position_index, one entry per pair of
    window positions."""
    wh, ww = a["window_size"]
    return 0, (wh * ww) ** 2


def merging_rule(ctx: RuleContext, shape, a):
    h, w = shape[-3], shape[-2]
    return (*shape[:-3], floordiv(h + 1, 2), floordiv(w + 1, 2), 2 * to_expr(shape[-1]))


def merging_macs(shape, out, a):
    """Each output position: the reduction's dot products of the 4 x dim joined channels, for 2 x dim outputs."""
    return prod(out[:-1]) * 4 * a["dim"] * 2 * a["dim"]


def merging_saves(a, shape, out):
    """Training (measured as above): the four quarters joined (LayerNorm's input), its mean and inverse std
    per position, the normalised copy (the reduction's input)."""
    positions = prod(out[:-1])
    stats = Saved(NEW, positions, STATS)
    return Saves((Saved(NEW, positions * 4 * a["dim"]), stats, stats, Saved(NEW, positions * 4 * a["dim"])))


def register_swin() -> None:
    register(LayerSpec(
        name="ShiftedWindowAttention",
        args=(Arg("window_size", REQUIRED, SIZE), Arg("shift_size", REQUIRED, SIZE), Arg("num_heads"),
              Arg("qkv_bias", True, BOOL), Arg("proj_bias", True, BOOL), Arg("attention_dropout", 0.0, FLOAT),
              Arg("dropout", 0.0, FLOAT)),
        rule=attention_rule, count=attention_count, macs=attention_macs, saves=attention_saves,
        inferred="dim", infer=lambda shape, a: shape[-1], ranks=(4,), short="attn", module=SWIN,
        buffers=attention_buffers, storage=attention_storage,
    ))
    register(LayerSpec(
        name="PatchMerging", args=(), rule=merging_rule, count=lambda a: 8 * a["dim"] ** 2 + 8 * a["dim"],
        macs=merging_macs, saves=merging_saves, inferred="dim", infer=lambda shape, a: shape[-1], min_rank=3,
        short="merging", module=SWIN,
    ))
