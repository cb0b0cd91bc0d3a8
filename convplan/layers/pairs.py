"""Layers over a pair of tensors: MaxUnpool1d/2d/3d (a pooled tensor and the indices MaxPool gave with
return_indices=True), CosineSimilarity and PairwiseDistance (two tensors compared along a dim).

Each takes torch's tensors in torch's order (LayerSpec.tensors; the chain's value is the first):
`y, idx = MaxPool2d(2, return_indices=True)` ... `MaxUnpool2d(y, idx, 2)`, `CosineSimilarity(a, b)`.
"""

# ruff: noqa: B023

from __future__ import annotations

import sympy

from .. import saves as sv
from ..shapes import at_least, decide_at_least, equal, equal_condition, to_expr
from ..shapes.broadcast import broadcast
from .spec import (
    BOOL,
    FLOAT,
    OPT_SIZE,
    REGISTRY,
    SIZE,
    Arg,
    LayerSpec,
    RuleContext,
    member_of,
    per_dim,
    prod,
    register,
    show,
)

# -- MaxUnpool ---------------------------------------------------------------------------------


def unpool_rule(ctx: RuleContext, shape, a, nd):
    """torch's _unpool_output_size: (x - 1) * stride + kernel_size - 2 * padding per spatial dim (stride None:
    the kernel), or the output_size forward is given, each within a stride of that; the indices have the
    input's shape."""
    indices = ctx.inputs[1]
    if tuple(indices) != tuple(shape):
        if len(indices) != len(shape):
            ctx.fail(f"the indices must have the input's shape {show(tuple(shape))}, got {len(indices)}-D "
                     f"{show(tuple(indices))}", hint="pass the indices MaxPool gave with return_indices=True")
        for x, i in zip(shape, indices, strict=True):
            ctx.require(sympy.Eq(x, i), lambda: f"the indices must have the input's shape {show(tuple(shape))}, got "
                        f"{show(tuple(indices))}")
    k = per_dim(ctx, a["kernel_size"], nd, "kernel_size")
    s = k if a["stride"] is None else per_dim(ctx, a["stride"], nd, "stride")
    p = per_dim(ctx, a["padding"], nd, "padding")
    ctx.positive(k, "kernel_size")
    ctx.positive(s, "stride")
    ctx.nonneg(p, "padding")
    default = [to_expr((x - 1) * si + ki - 2 * pi) for x, ki, si, pi in zip(shape[-nd:], k, s, p, strict=True)]
    if a["output_size"] is not None:
        out = _given_size(ctx, a["output_size"], default, s, nd)
    else:
        for x, ki, si, pi, size in zip(shape[-nd:], k, s, p, default, strict=True):
            ctx.require(at_least(size, 1), lambda: f"the output size ({show(size)}) would be less than 1 (input "
                        f"{show(x)}, kernel {show(ki)}, stride {show(si)}, padding {show(pi)})", "padding")
        out = tuple(default)
    _indices_fit(ctx, list(out), default, s, decide_at_least(out[0], 2) is True)
    return (*shape[:-nd], *out)


def _indices_fit(ctx: RuleContext, out: list, default: list, stride, rows: bool) -> None:
    """torch's unpool reads each index as a flat position in its output's spatial dims (per channel) and fails
    ("Found an invalid max index") on one at or past their product.  The indices are flat positions in the pooled
    input's spatial dims (h*W + w); the largest the pool can give is that of the last position its windows read
    (the spec's `reach`): the data puts a window's maximum there now and then.  So the unpool requires that one
    to fit, which holds for every size where its output has the pooled input's size (output_size=(H, W)).  Known
    only where the indices are a max pool's own output (`ctx.sources`); else nothing is required.  `rows`: the
    output's first spatial dim is at least 2 at every size."""
    source = ctx.sources[0] if ctx.sources else None
    spec = REGISTRY.get(source.kind) if source is not None and source.index == 1 else None
    if spec is None or spec.reach is None:
        return
    reach = spec.reach(dict(source.args), source.shape, ctx.inputs[1])
    m = len(reach)
    xs = [to_expr(x) for x in source.shape[-m:]]
    top = to_expr(sum(r * prod(xs[i + 1 :]) for i, r in enumerate(reach)))
    size = prod(out)
    nd = len(out)

    def words():
        if m != nd:  # (the pool has other spatial dims than the unpool: no output_size to suggest)
            fix = ""
        elif _within(xs, default, stride) is not False:
            fix = f"; write output_size={show(tuple(xs))}, that input's size"
        else:
            fix = f" (and output_size must be within a stride of {show(tuple(default))}: none holds them)"
        return (f"its indices are positions in the input of {source.name} (line {source.line}), "
                f"{show(tuple(xs))} per channel, up to {show(top)}, and the output {show(tuple(out))} holds "
                f"{show(size)} per channel: torch fails (\"Found an invalid max index\") where the data puts a "
                f"window's maximum past that{fix}")

    if m == nd and all(decide_at_least(o - 1 - r, 0) for r, o in zip(reach, out, strict=True)) \
            and all(decide_at_least(o - x, 0) for x, o in zip(xs[1:], out[1:], strict=True)):
        return  # each reach within the output, each dim but the first at most the output's: the largest index fits
    if m == nd and all(equal(x, o) is True for x, o in zip(xs[1:], out[1:], strict=True)):
        conds = [_at_least(out[0] - 1 - reach[0], 0)]  # every dim but the first as the input's: the rows must fit
    elif all(equal(r, x - 1) is True for r, x in zip(reach, xs, strict=True)):
        conds = [_at_least(size - prod(xs), 0)]  # the windows read to the input's end: its positions must fit
    elif m == nd and rows and all(equal(r, o - 1) is True for r, o in zip(reach, out, strict=True)):
        # the windows read to the output's last position (the default size, without padding), so the input is at
        # least the output in each dim, and with two rows or more h*W + w fits exactly where every dim but the first
        # is the input's
        conds = [equal_condition(x, o) for x, o in zip(xs[1:], out[1:], strict=True)]
    else:
        conds = [_at_least(size - 1 - top, 0)]
    for cond in conds:
        if cond is sympy.false:
            value = show(tuple(xs)) if m == nd and _within(xs, default, stride) is True else None
            ctx.fail(words(), "output_size", value=value,
                     hint=f"output_size={value} unpools to the pooled input's size" if value else None)
        ctx.require(cond, words, "output_size")


def _within(sizes: list, default: list, stride) -> bool | None:
    """Whether `sizes` is an output_size torch takes (each strictly within a stride of the default): at every size
    (True), at none (False), or at some."""
    found = [_at_least(o - d + s, 1) for o, d, s in zip(sizes, default, stride, strict=True)]
    found += [_at_least(d + s - o, 1) for o, d, s in zip(sizes, default, stride, strict=True)]
    return True if all(f is sympy.true for f in found) else False if sympy.false in found else None


def _given_size(ctx: RuleContext, value, default: list, stride, nd: int) -> tuple:
    """output_size as torch's forward takes it: nd sizes (or nd + 2, the first two ignored), each strictly
    within a stride of the default size."""
    if not isinstance(value, tuple) or len(value) not in (nd, nd + 2) or any(v is None for v in value):
        ctx.fail(f"output_size must be a tuple of {nd} sizes (or {nd + 2}, the input's shape, whose first two torch "
                 f"ignores), got {show(value)}", "output_size")
    out = tuple(to_expr(v) for v in value[-nd:])
    for d, (o, size, si) in enumerate(zip(out, default, stride, strict=True)):
        ctx.require(sympy.And(_at_least(o - size + si, 1), _at_least(size + si - o, 1)),
                    lambda: f"output_size[{d}] ({show(o)}) must be strictly between {show(to_expr(size - si))} and "
                    f"{show(to_expr(size + si))}: within a stride ({show(si)}) of the default size {show(size)}",
                    "output_size")
        ctx.require(at_least(o, 1), lambda: f"output_size[{d}] ({show(o)}) must be positive", "output_size")
    return out


def _at_least(e, k):
    """`at_least`, decided where floors bound it (`H - 2*(H//2) + 2 >= 1`: the default size is within a stride)."""
    found = decide_at_least(e, k)
    return at_least(e, k) if found is None else sympy.true if found else sympy.false


def unpool_family(nd: int) -> None:
    args = (Arg("kernel_size", kind=SIZE), Arg("stride", None, OPT_SIZE), Arg("padding", 0, SIZE),
            Arg("output_size", None, OPT_SIZE))
    member_of("MaxUnpool", nd, args=args, rule=unpool_rule, short="maxunpool", tensors=("input", "indices"),
              forward_args=("output_size",), saves=sv.max_unpool, reads_sources=True)


# -- distances ---------------------------------------------------------------------------------


def _broadcast(ctx: RuleContext, x: tuple, y: tuple) -> tuple:
    """torch's broadcast shape of x and y (shapes/broadcast.py)."""
    out, clashes = broadcast((x, y))
    for c in clashes:
        ctx.require(c.condition, lambda: f"the inputs must broadcast: dim {c.index} is {show(c.first)} in one and "
                    f"{show(c.other)} in the other (or one be 1)")
    return out


def cosine_rule(ctx: RuleContext, shape, a):
    """x1 and x2 broadcast to one shape; `dim` of that shape is reduced."""
    common = _broadcast(ctx, shape, ctx.inputs[1])
    r, d = len(common), a["dim"]
    if not isinstance(d, (int, sympy.Integer)) or not -r <= int(d) < r:
        ctx.fail(f"dim={show(d)} is out of range for the inputs' {r}-D broadcast shape (expected {-r} to {r - 1})",
                 "dim")
    if r == 1:
        ctx.fail("the similarity of two 1-D tensors is a 0-d tensor, which a plan does not hold", "dim",
                 hint="give the tensors a batch dim")
    ctx.require(sympy.true if a["eps"] >= 0 else sympy.false, "eps must not be negative", "eps")
    d = int(d) % r
    return common[:d] + common[d + 1 :]


def pairwise_rule(ctx: RuleContext, shape, a):
    """The p-norm of x1 - x2 + eps over the last dim of their broadcast shape (kept as 1 with keepdim)."""
    common = _broadcast(ctx, shape, ctx.inputs[1])
    if len(common) == 1 and not a["keepdim"]:
        ctx.fail("the distance of two 1-D tensors is a 0-d tensor, which a plan does not hold", None,
                 hint="keepdim=True keeps the last dim as 1, or give the tensors a batch dim")
    return (*common[:-1], sympy.Integer(1)) if a["keepdim"] else common[:-1]


def register_pairs() -> None:
    for nd in (1, 2, 3):
        unpool_family(nd)
    register(LayerSpec(name="CosineSimilarity", args=(Arg("dim", 1), Arg("eps", 1e-8, FLOAT)), rule=cosine_rule,
                       tensors=("x1", "x2"), short="cosine", saves=sv.cosine_similarity))
    register(LayerSpec(name="PairwiseDistance", args=(Arg("p", 2.0, FLOAT), Arg("eps", 1e-6, FLOAT),
                                                      Arg("keepdim", False, BOOL)),
                       rule=pairwise_rule, tensors=("x1", "x2"), short="distance", saves=sv.pairwise_distance))
