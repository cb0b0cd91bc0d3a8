"""Padding layers: zero, constant, reflection, replication and circular pads, 1d to 3d."""

# ruff: noqa: B023

from __future__ import annotations

import sympy

from .. import saves as sv
from ..shapes import at_least, to_expr
from .spec import FLOAT, PADS, Arg, RuleContext, member_of, show


def pad_window(a, nd):
    """Padding layers shift positions by the left padding of each padded dim (torch lists the last dim first)."""
    pads = a["padding"] if isinstance(a["padding"], tuple) else (a["padding"],) * (2 * nd)
    m = len(pads) // 2
    return [(1, 1, pads[2 * (m - 1 - i)]) for i in range(m)]


def pad_rule(ctx: RuleContext, shape, a, nd):
    pads = a["padding"]
    pads = (pads,) * (2 * nd) if not isinstance(pads, tuple) else pads
    if len(pads) % 2:
        ctx.fail(f"padding needs an even number of values (left, right, ...), got {len(pads)}", "padding")
    m, r, name, mode = len(pads) // 2, len(shape), ctx.spec.name, ctx.spec.pad_mode
    by_mode = mode != "constant"  # F.pad's reflect and replicate kernels
    if by_mode and (m > 3 or r not in (m + 1, m + 2)):
        # torch picks the kernel from len(padding), not from the class name
        ctx.fail(f"{name} with {len(pads)} padding values needs a {m + 1}-D or {m + 2}-D input, got {r}-D", "padding")
    if m > r:
        ctx.fail(f"{len(pads)} padding values pad {m} dims, but the input has {r}", "padding")
    out = list(shape)
    for i in range(m):  # torch lists pads from the last dim backwards: (left, right, top, bottom, ...)
        lo, hi = pads[2 * i], pads[2 * i + 1]
        x = shape[-1 - i]
        if mode == "reflect":
            for p in (lo, hi):
                ctx.require(at_least(x - p, 1),
                            lambda: f"reflection padding ({show(p)}) must be less than the input size ({show(x)})",
                            "padding")
        elif not by_mode:  # constant padding crops first: the negative sides together must fit
            crop = sympy.Min(lo, 0) + sympy.Min(hi, 0)
            ctx.require(at_least(x + crop, 0), lambda: f"padding {show((lo, hi))} crops more than the size {show(x)}",
                        "padding")
        out[-1 - i] = x + lo + hi
        ctx.require(at_least(out[-1 - i], 1), lambda: f"the padded size ({show(out[-1 - i])}) would be less than 1",
                    "padding")
    return tuple(out)


def pad_family(nd: int) -> None:
    padding = Arg("padding", kind=PADS)
    for family, args, mode in (
        ("ZeroPad", (padding,), "constant"),
        ("ConstantPad", (padding, Arg("value", kind=FLOAT)), "constant"),
        ("ReflectionPad", (padding,), "reflect"),
        ("ReplicationPad", (padding,), "replicate"),
    ):
        # ranks=None: pad_rule checks them, as they follow len(padding), not the class name
        member_of(family, nd, args=args, rule=pad_rule, ranks=None, pad_mode=mode, short="pad", window=pad_window,
                saves=sv.NOTHING if mode == "constant" else sv.SAVES_INPUT)


def circular_pad_rule(ctx: RuleContext, shape, a, nd):
    """F.pad's circular mode copies the kept part (negative pads crop it first) to each padded side, so each
    positive pad must fit in what is kept.  Where it does not, torch may still run, filling the output
    with its own uninitialised memory (a size-1 slice broadcasts): convplan refuses those."""
    pads = a["padding"]
    pads = (pads,) * (2 * nd) if not isinstance(pads, tuple) else pads
    if len(pads) % 2 == 0 and len(pads) // 2 <= len(shape):
        for i in range(len(pads) // 2):
            lo, hi, x = to_expr(pads[2 * i]), to_expr(pads[2 * i + 1]), shape[-1 - i]
            kept = x + sympy.Min(lo, 0) + sympy.Min(hi, 0)
            for p in (lo, hi):
                ctx.require(at_least(kept - p, 0) if p.is_nonnegative is not False else sympy.true,
                            lambda: f"circular padding ({show(p)}) must be at most the size it wraps ({show(kept)})",
                            "padding")
            ctx.require(at_least(kept, 0), lambda: f"padding {show((lo, hi))} crops more than the size {show(x)}",
                        "padding")
    return pad_rule(ctx, shape, a, nd)


def circular_pad_family(nd: int) -> None:
    # unlike the other pads, the class checks the rank first; F.pad then pads as len(padding) says
    member_of("CircularPad", nd, args=(Arg("padding", kind=PADS),), rule=circular_pad_rule, pad_mode="circular",
            short="pad", window=pad_window, saves=sv.NOTHING)

