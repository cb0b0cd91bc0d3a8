"""The layer registry: ONE place where each torch layer kind declares

- its arguments, in torch's positional order, with torch's defaults (`Arg`),
- which argument the input decides (`inferred`: in_channels, in_features, ...),
- the input ranks it accepts,
- its shape rule (symbolic, torch-exact, with the conditions under which torch raises),
- its parameter count.

The torch constructor and the generated code both use `name` (torch.nn's class name) and
the resolved arguments, so nothing else in convplan special-cases a layer kind: what a rule
or a hint needs to know about a kind is a field of its spec.  Rules receive a `RuleContext`
context and return the output shape; a condition that may fail goes through
`ctx.require(cond, message)`, which turns it into an error, a requirement or nothing.
"""

# Messages are lambdas (printing sympy is slow) that RuleContext.require calls at once, never later:
# ruff: noqa: B023

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import sympy

from . import saves as sv
from .shapes import at_least, divides, floordiv, mod, offset, pyrepr, to_expr

REQUIRED = object()  # marks an argument without a default

# Argument kinds: how a value written in a plan is validated (see check.py `_coerce`).
INT = "int"  # an integer expression
SIZE = "size"  # an int or an nd-tuple of ints
PAD = "pad"  # SIZE, or one of the strings in `choices` ('same', 'valid')
BOOL = "bool"
FLOAT = "float"
STR = "str"
OPT_INT = "int or None"
OPT_SIZE = "size or None"  # adaptive pools: None entries keep that dim
PADS = "pads"  # an int or a tuple of 2*nd ints (ZeroPad & co.)
DIMS = "dims"  # an int or a tuple of ints (LayerNorm, Unflatten)
SCALE = "scale"  # a float or a tuple of floats
OPT_FLOAT = "float or None"  # BatchNorm's momentum: None is a cumulative average


@dataclass(frozen=True)
class Arg:
    name: str
    default: object = REQUIRED
    kind: str = INT
    choices: tuple = ()  # for STR


@dataclass(frozen=True)
class SizeRule:
    """torch's output size of one spatial dim, `numerator//divisor + 1` (no division where divisor is None),
    for explaining it: `text` as torch's documentation writes it (`x`: the input size), `terms(x, v)` the
    numerator's terms with one dim's argument values `v` put in, `divisor(v)`."""

    text: str
    terms: Callable
    divisor: Callable | None = None


CONV_SIZE = SizeRule("(x + 2*padding - dilation*(kernel_size - 1) - 1)//stride + 1",
                     lambda x, v: [x, 2 * v["padding"], -v["dilation"] * (v["kernel_size"] - 1), -1],
                     lambda v: v["stride"])
AVG_POOL_SIZE = SizeRule("(x + 2*padding - kernel_size)//stride + 1",
                         lambda x, v: [x, 2 * v["padding"], -v["kernel_size"]], lambda v: v["stride"])
CONV_T_SIZE = SizeRule("(x - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1",
                       lambda x, v: [(x - 1) * v["stride"], -2 * v["padding"], v["dilation"] * (v["kernel_size"] - 1),
                                     v["output_padding"]])


@dataclass(frozen=True)
class LayerSpec:
    name: str  # torch.nn class name, also the name used in plans
    args: tuple[Arg, ...]  # the arguments a plan may write, in torch's positional order
    rule: Callable  # (ctx, shape, args) -> output shape
    count: Callable = lambda a: 0  # (args) -> number of parameters
    macs: Callable | None = None  # (input shape, output shape, args) -> multiply-accumulates with the weights
    # In eval mode the output is the input's storage (a view, or the input itself): it takes no memory.
    # A kind with an `inplace` argument writes into its input when that is True.
    aliases_input: bool = False
    # What autograd saves for backward in training (saves.py): (args, input shape, output shape) -> Saves;
    # None: not modelled (memory lists the kind instead of counting it as nothing).
    saves: Callable | None = None
    # How output positions read input positions (receptive.py): POINTWISE, GLOBAL, or (args, nd) -> one
    # (extent, stride, left padding) per spatial dim of the window it slides; None: not modelled.
    window: Callable | str | None = None
    # torch's documented output size of one spatial dim, in its argument names (`x`: the input size), for
    # `convplan explain`: SizeRule(text, numerator, divisor, addend) of one dim's values, or None.
    size_rule: SizeRule | None = None
    inferred: str | None = None  # torch's name of the argument read from the input
    infer: Callable | None = None  # (shape, args) -> value of `inferred`
    ranks: tuple[int, ...] | None = None  # accepted input ranks; None = any >= min_rank
    min_rank: int = 1
    inferred_at: int = 0  # its place in torch's constructor: GroupNorm(num_groups, num_channels) has it second
    nd: int = 0  # spatial dims of a 1d/2d/3d family member
    family: str = ""  # e.g. "Conv" for Conv1d/2d/3d: used to suggest the right member
    short: str = ""  # base of submodule names (conv1, pool2, ...)
    kernel_within_input: bool = False  # torch refuses a kernel larger than the unpadded input (AvgPool3d)
    pad_mode: str = ""  # padding layers: F.pad's mode ("constant", "reflect", "replicate"), which sets the limits
    # It mixes the last dim only (Linear): after a conv/pool that is a spatial dim, and a Flatten() was probably
    # left out (W340)
    last_dim_features: bool = False

    @functools.cached_property  # read on every layer call
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    def call_args(self, given) -> list[tuple[str, bool]]:
        """The arguments a call writes (those in `given`), in torch's order, each with whether it goes
        by position: torch's leading required ones, up to the first left out; the rest by keyword."""
        required = {a.name for a in self.args if a.default is REQUIRED} | {self.inferred}
        out, positional = [], True
        for name in self.torch_order():
            positional = positional and name in required and name in given
            if name in given:
                out.append((name, positional))
        return out

    def torch_order(self) -> tuple[str, ...]:
        """torch's constructor argument order, the inferred argument included."""
        names = self.arg_names
        if self.inferred is None or self.inferred in names:  # LayerNorm's is written or defaulted
            return names
        return names[: self.inferred_at] + (self.inferred,) + names[self.inferred_at :]


class LayerError(Exception):
    """Raised by a rule: the layer is refused.  `arg` names the argument to point at."""

    def __init__(self, message: str, arg: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.arg, self.hint = message, arg, hint


@dataclass
class RuleContext:
    """What a shape rule sees besides the shape and the arguments."""

    spec: LayerSpec
    conds: list = field(default_factory=list)  # (condition, message, arg)
    warns: list = field(default_factory=list)  # (condition, message, arg, code): torch warns, or fails in training
    tails: list = field(default_factory=list)  # (condition, message): positions a strided window never reads

    def require(self, cond, message: str | Callable[[], str], arg: str | None = None) -> None:
        """A condition torch checks.  False refuses the layer at once (later arithmetic may rely on it);
        a symbolic one becomes a requirement.  `message` may be a lambda: printing sympy is slow."""
        if cond is sympy.true:
            return
        text = message() if callable(message) else message
        if cond is sympy.false:
            raise LayerError(text, arg)
        self.conds.append((cond, text, arg))

    def warn(self, cond, message: str | Callable[[], str], arg: str | None = None, code: str = "W300") -> None:
        """Something torch accepts in eval mode but warns about, or refuses in training, when `cond` holds."""
        if cond is not sympy.false:
            self.warns.append((cond, message() if callable(message) else message, arg, code))

    def tail(self, x, m, s, hi, ext) -> None:
        """Warn (W310) when, for some sizes, the last window stops before the end of the input.

        With m = x + lo + hi - ext, the last window ends (m % s) - hi positions short of it: torch
        silently never reads them.  A stride wider than the window skips samples everywhere by design,
        and a constant size either drops or not, so both are left alone."""
        s, hi, ext = to_expr(s), to_expr(hi), to_expr(ext)
        if not (s.is_Integer and hi.is_Integer and ext.is_Integer) or s > ext or s - 1 <= hi or not x.free_symbols:
            return  # (free_symbols last: it walks the whole of x)
        short = mod(m, s) - hi
        # A number where x's form fixes the residue (x = 2*H); else it runs through every residue as x grows
        # and so is never decided (sympy's own try is slow): compared unevaluated.
        dropped = sympy.Gt(short, 0) if short.is_Number else sympy.Gt(short, 0, evaluate=False)
        if dropped is not sympy.false:
            self.tails.append((dropped, f"the last {_s(short)} position(s) of {_s(x)}"))

    def fail(self, message: str, arg: str | None = None, hint: str | None = None):
        raise LayerError(message, arg, hint)

    def positive(self, values, arg: str) -> None:
        for v in values:
            self.require(at_least(v, 1), lambda: f"{arg} must be positive, got {_s(v)}", arg)

    def nonneg(self, values, arg: str) -> None:
        for v in values:
            self.require(at_least(v, 0), lambda: f"{arg} must not be negative, got {_s(v)}", arg)


POINTWISE = "pointwise"  # output position i reads input position i only (activations, eval-mode BatchNorm)
GLOBAL = "global"  # every output position reads every input position (statistics over the input, Flatten)

REGISTRY: dict[str, LayerSpec] = {}


def register(spec: LayerSpec) -> LayerSpec:
    REGISTRY[spec.name] = spec
    return spec


def _s(v) -> str:
    """A value for a message, in Python syntax (`L//2`, not `FloorDiv(L, 2)`)."""
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_s(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return pyrepr(v) if isinstance(v, sympy.Basic) else str(v)


def ntuple(value, nd: int) -> tuple:
    return tuple(value) if isinstance(value, tuple) else (value,) * nd


def per_dim(ctx: RuleContext, value, nd: int, arg: str, broadcast: bool = True) -> tuple:
    """An int, or a tuple of nd values (of 1 value when torch broadcasts it): nd values, else refused."""
    if not isinstance(value, tuple):
        return (value,) * nd
    if len(value) == nd:
        return value
    if broadcast and len(value) == 1:
        return value * nd
    counts = f"{nd} value{'s' if nd > 1 else ''}" + (" (or 1)" if broadcast and nd > 1 else "")
    ctx.fail(f"{arg} must be an int or a tuple of {counts} for {ctx.spec.name}, got {_s(value)}", arg,
             hint=f"torch builds {ctx.spec.name} with it but fails when it runs")


def prod(values):
    return math.prod(values, start=sympy.Integer(1))


def _split(shape, nd):
    """(leading dims, channels, spatial dims) of a [.., C, *spatial] input."""
    return shape[: -nd - 1], shape[-nd - 1], shape[-nd:]


def nonempty(ctx: RuleContext, out) -> tuple:
    """torch returns empty tensors where a size reaches 0; a plan's dims are positive, so refuse those."""
    for i, d in enumerate(out):
        ctx.require(at_least(d, 1), lambda: f"output dim {i} would be {_s(d)}: empty tensors are not planned", None)
    return tuple(out)


# -- convolutions ----------------------------------------------------------------------


def _conv_common(ctx: RuleContext, shape, a, nd):
    k = per_dim(ctx, a["kernel_size"], nd, "kernel_size", broadcast=False)
    s, d = per_dim(ctx, a["stride"], nd, "stride"), per_dim(ctx, a["dilation"], nd, "dilation")
    ctx.positive([a["groups"]], "groups")
    ctx.positive([a["out_channels"]], "out_channels")
    ctx.positive(k, "kernel_size")
    ctx.positive(s, "stride")
    ctx.positive(d, "dilation")
    cin, g = shape[-nd - 1], a["groups"]
    ctx.require(divides(cin, g), lambda: f"in_channels ({_s(cin)}) must be divisible by groups ({_s(g)})", "groups")
    ctx.require(
        divides(a["out_channels"], g),
        lambda: f"out_channels ({_s(a['out_channels'])}) must be divisible by groups ({_s(g)})",
        "groups",
    )
    return k, s, d


def conv_rule(ctx: RuleContext, shape, a, nd):
    k, s, d = _conv_common(ctx, shape, a, nd)
    lead, _, spatial = _split(shape, nd)
    pads = _conv_pads(ctx, shape, a, nd, k, d)
    out = []
    for x, (lo, hi), ki, si, di in zip(spatial, pads, k, s, d, strict=True):
        ext = di * (ki - 1) + 1
        _padding_mode_limits(ctx, a["padding_mode"], x, lo, hi)
        m = offset(x, lo + hi - ext)  # what the windows slide over; the constants are summed first: one sympy Add
        ctx.require(
            at_least(m, 0),
            lambda: f"the padded input ({_s(offset(x, lo + hi))}) must be at least the kernel's extent ({_s(ext)})",
        )
        if a["padding"] != "same":
            ctx.tail(x, m, si, hi, ext)
        out.append(offset(m, 1) if a["padding"] == "same" else offset(floordiv(m, si), 1))  # 'same': x where padded
    return (*lead, a["out_channels"], *out)


def _conv_pads(ctx: RuleContext, shape, a, nd, k, d):
    """(left, right) padding of each spatial dim."""
    pad, mode = a["padding"], a["padding_mode"]
    if pad == "same":
        strides = [to_expr(v) for v in per_dim(ctx, a["stride"], nd, "stride")]
        if any(v.is_Integer and v != 1 for v in strides):
            ctx.fail("padding='same' is not supported for strided convolutions", "padding",
                     hint="use an explicit padding, or stride=1")
        for v in strides:  # a symbolic stride (stride=D - 1): torch runs it where it is 1
            ctx.require(sympy.Eq(v, 1), lambda: f"padding='same' needs stride 1, got {_s(v)}", "stride")
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
        ctx.require(sympy.Eq(p[0], 0), lambda: f"padding {_s(p)} would pad the channel dim", "padding")
        p = p[1:]
    return [(0, 0)] * (nd - len(p)) + [(v, v) for v in p]


def _padding_mode_limits(ctx, mode, x, lo, hi):
    if mode == "reflect":
        for p in {lo, hi}:
            ctx.require(
                at_least(x - p, 1),
                lambda: f"padding_mode='reflect' needs padding ({_s(p)}) < the input size ({_s(x)})",
                "padding_mode",
            )
    elif mode == "circular":
        for p in {lo, hi}:
            ctx.require(
                at_least(x - p, 0),
                lambda: f"padding_mode='circular' needs padding ({_s(p)}) <= the input size ({_s(x)})",
                "padding_mode",
            )


def _dims(value, nd: int) -> tuple:
    """An int or a tuple of nd values (or of one, which torch broadcasts): nd values."""
    value = ntuple(value, nd)
    return value * nd if len(value) == 1 else value


def conv_window(a, nd):
    """(extent, stride, left padding) per spatial dim: the window each output position reads."""
    k, s, d = _dims(a["kernel_size"], nd), _dims(a["stride"], nd), _dims(a["dilation"], nd)
    if a["padding"] == "same":  # torch pads the smaller half on the left
        left = [floordiv(di * (ki - 1), 2) for ki, di in zip(k, d, strict=True)]
    elif a["padding"] == "valid":
        left = [0] * nd
    else:
        left = _dims(a["padding"], nd)
    if a["padding"] == "same" and a["padding_mode"] != "zeros" and isinstance(a["dilation"], tuple):
        return [None] * nd  # torch's F.pad sizing with a 1-tuple dilation (see _conv_pads): not modelled
    return [(di * (ki - 1) + 1, si, li) for ki, si, di, li in zip(k, s, d, left, strict=True)]


def conv_count(a, nd):
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
    lead, _, spatial = _split(shape, nd)
    out = []
    for x, pi, opi, ki, si, di in zip(spatial, p, op, k, s, d, strict=True):
        ctx.require(
            at_least(sympy.Max(si, di) - opi, 1),
            lambda: f"output_padding ({_s(opi)}) must be smaller than either stride ({_s(si)}) or dilation ({_s(di)})",
            "output_padding",
        )
        size = (x - 1) * si - 2 * pi + di * (ki - 1) + opi + 1
        ctx.require(at_least(size, 1), lambda: f"the output size ({_s(size)}) would be less than 1", "padding")
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


# -- pooling ---------------------------------------------------------------------------


def pool_size(ctx: RuleContext, x, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape, including "the last window must start inside the input"."""
    ext = d * (k - 1) + 1
    # torch checks p against half the dilated kernel, then half the kernel: the second one binds.
    ctx.require(
        at_least(k - 2 * p, 0),
        lambda: f"padding ({_s(p)}) must be at most half of the kernel size ({_s(k)})",
        "padding",
    )
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
        lambda: f"the output size ({_s(size)}) would be less than 1 (input {_s(x)}, kernel {_s(k)})",
    )
    return size


def pool_window(a, nd):
    k = _dims(a["kernel_size"], nd)
    s = k if a["stride"] is None else _dims(a["stride"], nd)
    p, d = _dims(a["padding"], nd), _dims(a.get("dilation", 1), nd)
    return [(di * (ki - 1) + 1, si, pi) for ki, si, pi, di in zip(k, s, p, d, strict=True)]


def adaptive_window(a, nd):
    """A dim pooled to one position reads all of it; a dim kept (None) reads its own position; others read
    windows that differ from position to position (not modelled)."""
    size = _dims(a["output_size"], nd)
    return [POINTWISE if v is None else GLOBAL if v == 1 else None for v in size]


def pad_window(a, nd):
    """Padding layers shift positions by the left padding of each padded dim (torch lists the last dim first)."""
    pads = a["padding"] if isinstance(a["padding"], tuple) else (a["padding"],) * (2 * nd)
    m = len(pads) // 2
    return [(1, 1, pads[2 * (m - 1 - i)]) for i in range(m)]


def pool_rule(ctx: RuleContext, shape, a, nd):
    if a.get("return_indices"):
        ctx.fail("return_indices=True makes the layer return a tuple, which a plan cannot pass on", "return_indices")
    k = per_dim(ctx, a["kernel_size"], nd, "kernel_size")
    s = k if a["stride"] is None else per_dim(ctx, a["stride"], nd, "stride")
    p, d = per_dim(ctx, a["padding"], nd, "padding"), per_dim(ctx, a.get("dilation", 1), nd, "dilation")
    ctx.positive(k, "kernel_size")
    ctx.positive(s, "stride")
    ctx.nonneg(p, "padding")
    ctx.positive(d, "dilation")
    if a.get("divisor_override") is not None:
        v = a["divisor_override"]
        ctx.require(sympy.Ne(v, 0), "divisor_override must not be 0", "divisor_override")
    lead, c, spatial = _split(shape, nd)
    if ctx.spec.kernel_within_input:  # its torch kernel compares the raw input (padding ignored) with the kernel
        for x, ki in zip(spatial, k, strict=True):
            ctx.require(at_least(x - ki, 0), lambda: f"the input ({_s(x)}) must be at least the kernel ({_s(ki)})",
                        "kernel_size")
    out = [pool_size(ctx, *v, a["ceil_mode"]) for v in zip(spatial, k, s, p, d, strict=True)]
    return (*lead, c, *out)


def adaptive_rule(ctx: RuleContext, shape, a, nd):
    if a.get("return_indices"):
        ctx.fail("return_indices=True makes the layer return a tuple, which a plan cannot pass on", "return_indices")
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


# -- normalisation, dropout, activations -------------------------------------------------


def same_shape(ctx, shape, a):
    return tuple(shape)


def norm_count(a, nd=0):
    return 2 * a["num_features"] if a["affine"] else 0


def batch_norm_rule(ctx: RuleContext, shape, a, nd):
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
        ctx.require(at_least(values, 2), lambda: message.format(_s(values)))  # printed only if needed (slow)
    elif not _two_or_more(values) and (values.is_Number or values.is_Symbol):
        # A batch of one ([N, C] with N == 1) is a real training pitfall; N*H*W == 1 only at 1x1 maps, and a
        # warning on every BatchNorm of a ResNet for that would be noise.
        one = sympy.Eq(values, 1) if values.is_Number else sympy.Eq(values, 1, evaluate=False)
        ctx.warn(one, lambda: message.format(_s(values)) + " in training")


def _two_or_more(values) -> bool:
    """A product of sizes (each >= 1) is >= 2 for sure if it is a number >= 2 or has a factor >= 2."""
    factors = values.args if values.is_Mul else (values,)
    return any(f.is_Number and f >= 2 for f in factors)


def group_norm_rule(ctx: RuleContext, shape, a):
    g = a["num_groups"]
    ctx.positive([g], "num_groups")
    n, c = shape[0], shape[1]
    ctx.require(divides(c, g), lambda: f"num_channels ({_s(c)}) must be divisible by num_groups ({_s(g)})",
                "num_groups")
    values = floordiv(n * c, g) * prod(shape[2:])  # torch's own count, checked in eval too
    ctx.require(at_least(values, 2), lambda: f"GroupNorm needs more than 1 value per group (here {_s(values)})",
                "num_groups")
    return tuple(shape)


def layer_norm_rule(ctx: RuleContext, shape, a):
    norm = ntuple(a["normalized_shape"], 1)
    if len(norm) > len(shape):
        ctx.fail(f"normalized_shape {_s(norm)} has more dims than the input ({len(shape)})", "normalized_shape")
    for want, have in zip(norm, shape[len(shape) - len(norm) :], strict=True):
        ctx.require(
            sympy.Eq(to_expr(want), have),
            lambda: f"normalized_shape {_s(norm)} must match the input's last dims {_s(shape[-len(norm) :])}",
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


def dropout_rule(ctx: RuleContext, shape, a, nd=0):
    p = a["p"]
    if not 0 <= p <= 1:
        ctx.fail(f"dropout probability has to be between 0 and 1, got {p}", "p")
    r, name = len(shape), ctx.spec.name
    if nd == 2 and r == 1:
        ctx.warn(sympy.true, "Dropout2d refuses a 1-D input in training", None)
    elif nd in (2, 3) and r not in (nd + 1, nd + 2):
        ctx.warn(sympy.true, f"{name} on a {r}-D input is deprecated in torch (it expects {nd + 1}-D or {nd + 2}-D)")
    elif nd == 2 and r == 3:
        ctx.warn(sympy.true, "Dropout2d on a 3-D input drops whole channels as Dropout1d would (torch warns)")
    return tuple(shape)


def softmax_rule(ctx: RuleContext, shape, a):
    if a["dim"] is not None:
        _dim_index(ctx, shape, a["dim"], "dim")
    return tuple(shape)


def _dim_index(ctx: RuleContext, shape, dim, arg):
    r = len(shape)
    if not isinstance(dim, (int, sympy.Integer)) or not -r <= int(dim) < r:
        ctx.fail(f"{arg}={_s(dim)} is out of range for a {r}-D input (expected {_s(-r)} to {_s(r - 1)})", arg)
    return int(dim) % r


# -- reshaping -------------------------------------------------------------------------


def flatten_rule(ctx: RuleContext, shape, a):
    start = _dim_index(ctx, shape, a["start_dim"], "start_dim")
    end = _dim_index(ctx, shape, a["end_dim"], "end_dim")
    if start > end:
        ctx.fail(f"start_dim ({_s(a['start_dim'])}) cannot come after end_dim ({_s(a['end_dim'])})", "start_dim")
    return (*shape[:start], prod(shape[start : end + 1]), *shape[end + 1 :])


def unflatten_rule(ctx: RuleContext, shape, a):
    i = _dim_index(ctx, shape, a["dim"], "dim")
    sizes = a["unflattened_size"]
    if not isinstance(sizes, tuple):
        ctx.fail(f"unflattened_size must be a tuple, got {_s(sizes)}", "unflattened_size",
                 hint=f"write unflattened_size=({_s(sizes)},)")
    holes = [j for j, v in enumerate(sizes) if v == -1]
    if len(holes) > 1:
        ctx.fail("only one of unflattened_size may be -1", "unflattened_size")
    ctx.positive([v for v in sizes if v != -1], "unflattened_size")
    known = prod(v for v in sizes if v != -1)
    if holes:
        ctx.require(
            divides(shape[i], known),
            lambda: f"dim {i} ({_s(shape[i])}) must be divisible by {_s(known)}",
            "unflattened_size",
        )
        sizes = tuple(floordiv(shape[i], known) if v == -1 else v for v in sizes)
    else:
        ctx.require(
            sympy.Eq(known, shape[i]),
            lambda: f"unflattened_size {_s(sizes)} must multiply to the size of dim {i} ({_s(shape[i])})",
            "unflattened_size",
        )
    return (*shape[:i], *sizes, *shape[i + 1 :])


def linear_rule(ctx: RuleContext, shape, a):
    ctx.positive([a["out_features"]], "out_features")
    return (*shape[:-1], a["out_features"])


def linear_macs(shape, out, a):
    return prod(shape[:-1]) * a["in_features"] * a["out_features"]


def linear_count(a):
    return a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0)


_UPSAMPLE_RANKS = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
SCALE_CHECKED = 1 << 16  # sizes up to which a symbolic scale rule is checked against float64


def upsample_rule(ctx: RuleContext, shape, a):
    size, mode = a["size"], a["mode"]
    scale = a["scale_factor"] or None  # torch's constructor turns scale_factor=0 into None
    spatial = len(shape) - 2
    if a["align_corners"] is not None and mode not in _UPSAMPLE_RANKS:
        ctx.fail("align_corners can only be set with the interpolating modes: linear, bilinear, bicubic, trilinear",
                 "align_corners")
    if size is None and a["scale_factor"] is not None and not scale:
        ctx.fail("scale_factor must be positive, got 0 (torch then reads it as not given)", "scale_factor")
    if (size is None) == (scale is None):
        ctx.fail("give exactly one of size and scale_factor", "size" if size is not None else None)
    want = _UPSAMPLE_RANKS.get(mode)
    if want is not None and want != len(shape):
        ctx.fail(f"mode={mode!r} needs a {want}-D input, got {len(shape)}-D", "mode")
    if size is not None:
        if a["recompute_scale_factor"]:
            ctx.fail("recompute_scale_factor is not meaningful with an explicit size", "recompute_scale_factor")
        sizes = _exactly(ctx, size, spatial, "size")
        ctx.positive(sizes, "size")
        return (*shape[:2], *sizes)
    out = [_scaled(ctx, x, f) for x, f in zip(shape[2:], _exactly(ctx, scale, spatial, "scale_factor"), strict=True)]
    return (*shape[:2], *out)


def _exactly(ctx, value, nd, arg):
    values = ntuple(value, nd)
    if len(values) != nd:
        ctx.fail(f"{arg} needs {nd} values for a {nd + 2}-D input, got {len(values)}", arg)
    return values


def _scaled(ctx: RuleContext, x, f: float):
    """torch's int(float(x) * f) in float64: exact for a concrete x; for a symbolic one, floor(x*q) with
    the simplest q that agrees with float64 for every x up to SCALE_CHECKED (a requirement then says so)."""
    if x.is_Integer:
        size = sympy.Integer(int(float(int(x)) * f))
    else:
        q = scale_ratio(f)
        if q is None:
            ctx.fail(f"scale_factor={f!r}: torch computes int({_s(x)} * {f!r}) in float64, which follows no "
                     f"floor({_s(x)} * p/q) rule", "scale_factor", hint=f"give size=..., or fix {_s(x)}")
        size = floordiv(q.numerator * x, q.denominator)
        if Fraction(f) != q or q.denominator > 1 << 16:
            ctx.require(at_least(SCALE_CHECKED - x, 0),
                        lambda: f"scale_factor={f!r} follows floor({_s(x)}*{q}) (checked up to {SCALE_CHECKED})",
                        "scale_factor")
    ctx.require(at_least(size, 1), lambda: f"the output size ({_s(size)}) would be less than 1", "scale_factor")
    return size


@functools.lru_cache(maxsize=256)
def scale_ratio(f: float) -> Fraction | None:
    """The simplest p/q with int(float(x) * f) == x*p//q for x in 1..SCALE_CHECKED, if any."""
    exact = Fraction(f)
    if exact <= 0:
        return exact
    if exact.denominator == 1 and exact.numerator * SCALE_CHECKED < 2**53:
        return exact  # float(x) * f is exact below 2**53, and f the search's first candidate: no 65,536 checks
    return _scale_search(f, exact)


def _scale_search(f: float, exact: Fraction) -> Fraction | None:
    """scale_ratio's search: each simpler candidate checked at every size up to SCALE_CHECKED."""
    tried = []
    for bound in (1, 10, 100, 1000, 10**4, 10**6, None):
        q = exact if bound is None else exact.limit_denominator(bound)
        if q in tried or q <= 0:
            continue
        tried.append(q)
        a, b = q.numerator, q.denominator
        if all(int(float(x) * f) == x * a // b for x in range(1, SCALE_CHECKED + 1)):
            return q
    return None


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
                            lambda: f"reflection padding ({_s(p)}) must be less than the input size ({_s(x)})",
                            "padding")
        elif not by_mode:  # constant padding crops first: the negative sides together must fit
            crop = sympy.Min(lo, 0) + sympy.Min(hi, 0)
            ctx.require(at_least(x + crop, 0), lambda: f"padding {_s((lo, hi))} crops more than the size {_s(x)}",
                        "padding")
        out[-1 - i] = x + lo + hi
        ctx.require(at_least(out[-1 - i], 1), lambda: f"the padded size ({_s(out[-1 - i])}) would be less than 1",
                    "padding")
    return tuple(out)


def pixel_shuffle_rule(ctx: RuleContext, shape, a):
    r = a["upscale_factor"]
    ctx.positive([r], "upscale_factor")
    c, h, w = shape[-3:]
    ctx.require(
        divides(c, r * r),
        lambda: f"the channels ({_s(c)}) must be divisible by upscale_factor**2 ({_s(r * r)})",
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
            lambda: f"the {name} ({_s(x)}) must be divisible by downscale_factor ({_s(r)})",
            "downscale_factor",
        )
    return (*shape[:-3], c * r * r, floordiv(h, r), floordiv(w, r))


# -- the vocabulary --------------------------------------------------------------------


def _member(family: str, nd: int, *, rule: Callable, count: Callable | None = None, macs: Callable | None = None,
            **fields) -> LayerSpec:
    """Register `<family><nd>d`, whose rule, count and macs see `nd`; it takes an unbatched or a
    batched input unless `ranks` says otherwise."""
    fields.setdefault("ranks", (nd + 1, nd + 2))
    if count is not None:
        fields["count"] = lambda a: count(a, nd)
    if macs is not None:
        fields["macs"] = lambda shape, out, a: macs(shape, out, a, nd)
    return register(LayerSpec(name=f"{family}{nd}d", family=family, nd=nd,
                              rule=lambda ctx, shape, a: rule(ctx, shape, a, nd), **fields))


def member(family: str, nd: int) -> LayerSpec | None:
    """The `nd` member of a 1d/2d/3d family: ("Conv", 2) -> Conv2d's spec."""
    spec = REGISTRY.get(f"{family}{nd}d")
    return spec if spec is not None and spec.family == family else None


def asymmetric_pad(nd: int) -> LayerSpec | None:
    """The layer that pads each side of each dim by its own amount, with zeros (a hint puts it
    before a layer whose symmetric padding would have to be half an integer)."""
    return member("ZeroPad", nd)


def _channels(nd: int) -> Callable:
    return lambda shape, a: shape[-nd - 1]  # the dim before the spatial ones: unbatched inputs too


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _conv(nd: int) -> None:
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
    _member("Conv", nd, args=args, rule=conv_rule, count=conv_count, macs=conv_macs, window=conv_window,
            saves=sv.conv(nd), size_rule=CONV_SIZE, inferred="in_channels", infer=_channels(nd), short="conv")


def _conv_transpose(nd: int) -> None:
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
    _member("ConvTranspose", nd, args=args, rule=conv_t_rule, count=conv_t_count, macs=conv_t_macs,
            saves=sv.SAVES_INPUT, size_rule=CONV_T_SIZE, inferred="in_channels", infer=_channels(nd), short="deconv")


def _max_pool(nd: int) -> None:
    args = (
        Arg("kernel_size", kind=SIZE),
        Arg("stride", None, OPT_SIZE),
        Arg("padding", 0, SIZE),
        Arg("dilation", 1, SIZE),
        Arg("return_indices", False, BOOL),
        Arg("ceil_mode", False, BOOL),
    )
    _member("MaxPool", nd, args=args, rule=pool_rule, short="maxpool", window=pool_window, size_rule=CONV_SIZE,
            saves=sv.max_pool)


def _avg_pool(nd: int) -> None:
    args = (
        Arg("kernel_size", kind=SIZE),
        Arg("stride", None, OPT_SIZE),
        Arg("padding", 0, SIZE),
        Arg("ceil_mode", False, BOOL),
        Arg("count_include_pad", True, BOOL),
    )
    if nd > 1:  # AvgPool1d has none
        args += (Arg("divisor_override", None, OPT_INT),)
    _member("AvgPool", nd, args=args, rule=pool_rule, short="avgpool", kernel_within_input=nd == 3,
            window=pool_window, size_rule=AVG_POOL_SIZE, saves=sv.SAVES_INPUT)


def _adaptive_pools(nd: int) -> None:
    size = Arg("output_size", kind=OPT_SIZE)
    # AdaptiveAvgPool2d/3d take any rank for a 1 x 1 (x 1) output: adaptive_rule checks the rank
    _member("AdaptiveAvgPool", nd, args=(size,), rule=adaptive_rule, ranks=None if nd > 1 else (nd + 1, nd + 2),
            min_rank=nd, short="adaptiveavgpool", window=adaptive_window, saves=sv.adaptive_avg_pool(nd))
    _member("AdaptiveMaxPool", nd, args=(size, Arg("return_indices", False, BOOL)), rule=adaptive_rule, min_rank=nd,
            short="adaptivemaxpool", window=adaptive_window, saves=sv.max_pool)


def _norm_args(affine: bool) -> tuple[Arg, ...]:
    """BatchNorm's and InstanceNorm's, which differ in the defaults of affine and track_running_stats."""
    return (
        Arg("eps", 1e-5, FLOAT),
        Arg("momentum", 0.1, OPT_FLOAT),
        Arg("affine", affine, BOOL),
        Arg("track_running_stats", affine, BOOL),
    )


def _batch_norm(nd: int) -> None:
    _member("BatchNorm", nd, args=_norm_args(True), rule=batch_norm_rule, count=norm_count, inferred="num_features",
            infer=lambda shape, a: shape[1], ranks=(2, 3) if nd == 1 else (nd + 2,), short="bn",
            saves=sv.norm(lambda a, shape: shape[1]),  # mean and inverse std per channel
            window=POINTWISE)  # eval mode: the running statistics, one scale and shift per channel


def _instance_norm(nd: int) -> None:
    _member("InstanceNorm", nd, args=_norm_args(False), rule=instance_norm_rule, count=norm_count,
            inferred="num_features", infer=_channels(nd), short="instnorm",
            saves=sv.norm(lambda a, shape: prod(shape[:-nd])),  # per sample and channel
            window=lambda a, nd: POINTWISE if a["track_running_stats"] else GLOBAL)  # eval: whose statistics


def _dropout(nd: int) -> None:
    args = (Arg("p", 0.5, FLOAT), Arg("inplace", False, BOOL))
    # Dropout2d/3d only warn about other ranks
    _member("Dropout", nd, args=args, rule=dropout_rule, ranks=(nd + 1, nd + 2) if nd == 1 else None, short="dropout",
            aliases_input=True, window=POINTWISE, saves=sv.dropout(nd))


def _pads(nd: int) -> None:
    padding = Arg("padding", kind=PADS)
    for family, args, mode in (
        ("ZeroPad", (padding,), "constant"),
        ("ConstantPad", (padding, Arg("value", kind=FLOAT)), "constant"),
        ("ReflectionPad", (padding,), "reflect"),
        ("ReplicationPad", (padding,), "replicate"),
    ):
        # ranks=None: pad_rule checks them, as they follow len(padding), not the class name
        _member(family, nd, args=args, rule=pad_rule, ranks=None, pad_mode=mode, short="pad", window=pad_window,
                saves=sv.NOTHING if mode == "constant" else sv.SAVES_INPUT)


for _nd in (1, 2, 3):  # the 1d members first, as torch lists them
    for _family in (_conv, _conv_transpose, _max_pool, _avg_pool, _adaptive_pools, _batch_norm, _instance_norm,
                    _dropout, _pads):
        _family(_nd)

_INPLACE = (Arg("inplace", False, BOOL),)
# What each saves for backward (saves.py): its output or its input; in place, its output or a copy of its input
_ACTIVATION_SAVES = {name: sv.activation(sv.OUTPUT if name in ("ReLU", "Sigmoid", "Tanh") else sv.INPUT,
                                         name in ("ReLU", "LeakyReLU", "ELU")) for name in (
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh")}
_ACTIVATION_SAVES["Identity"] = sv.VIEW
for _name, _args in {
    "ReLU": _INPLACE,
    "ReLU6": _INPLACE,
    "LeakyReLU": (Arg("negative_slope", 0.01, FLOAT),) + _INPLACE,
    "ELU": (Arg("alpha", 1.0, FLOAT),) + _INPLACE,
    "GELU": (Arg("approximate", "none", STR, ("none", "tanh")),),
    "SiLU": _INPLACE,
    "Mish": _INPLACE,
    "Hardswish": _INPLACE,
    "Hardsigmoid": _INPLACE,
    "Sigmoid": (),
    "Tanh": (),
    "Identity": (),
}.items():
    register(LayerSpec(name=_name, args=_args, rule=same_shape, short=_name.lower(), aliases_input=_name == "Identity",
                       window=POINTWISE, saves=_ACTIVATION_SAVES[_name]))
register(LayerSpec(name="Dropout", args=(Arg("p", 0.5, FLOAT),) + _INPLACE, rule=dropout_rule, short="dropout",
                   aliases_input=True, window=POINTWISE, saves=sv.dropout(0)))

for _name in ("Softmax", "LogSoftmax"):
    register(LayerSpec(name=_name, args=(Arg("dim", None, OPT_INT),), rule=softmax_rule, short=_name.lower(),
                       saves=sv.SAVES_OUTPUT))

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
    window=GLOBAL,
    # mean and inverse std per normalised row
    saves=sv.norm(lambda a, shape: prod(shape[: len(shape) - len(ntuple(a["normalized_shape"], 1))])),
))
# Hints suggest it before a layer that wants the dims after the batch merged into one
FLATTEN = register(LayerSpec(name="Flatten", args=(Arg("start_dim", 1), Arg("end_dim", -1)), rule=flatten_rule,
                             aliases_input=True, saves=sv.VIEW,
                             short="flatten"))
register(LayerSpec(name="Unflatten", args=(Arg("dim"), Arg("unflattened_size", kind=DIMS)), rule=unflatten_rule,
                   aliases_input=True, saves=sv.VIEW,
                   short="unflatten"))
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
    last_dim_features=True,
    saves=sv.SAVES_INPUT,  # for the weight's gradient
))
register(LayerSpec(
    name="Upsample",
    args=(
        Arg("size", None, OPT_SIZE),
        Arg("scale_factor", None, SCALE),
        Arg("mode", "nearest", STR, ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")),
        Arg("align_corners", None, BOOL),
        Arg("recompute_scale_factor", None, BOOL),
    ),
    rule=upsample_rule,
    ranks=(3, 4, 5),
    short="upsample",
    saves=sv.upsample,
))
register(LayerSpec(name="PixelShuffle", args=(Arg("upscale_factor"),), rule=pixel_shuffle_rule, min_rank=3,
                   short="shuffle", saves=sv.NOTHING))
register(LayerSpec(name="PixelUnshuffle", args=(Arg("downscale_factor"),), rule=pixel_unshuffle_rule, min_rank=3,
                   short="unshuffle", saves=sv.NOTHING))


# -- the rest of torch.nn's one-tensor-in, one-tensor-out modules ------------------------


def _float_check(ctx: RuleContext, ok: bool, message: str, arg: str) -> None:
    """A float argument torch refuses (its constructor asserts, or the kernel raises at once)."""
    if not ok:
        ctx.fail(message, arg)


def activation_rule(ctx: RuleContext, shape, a):
    """Element-wise activations whose float arguments torch limits."""
    name = ctx.spec.name
    if name == "Hardtanh":
        _float_check(ctx, a["max_val"] > a["min_val"],
                     f"max_val ({a['max_val']}) must be greater than min_val ({a['min_val']})", "max_val")
    elif name == "Softshrink":
        _float_check(ctx, a["lambd"] >= 0, f"lambd must not be negative, got {a['lambd']}", "lambd")
    elif name == "RReLU":
        _float_check(ctx, a["lower"] <= a["upper"],
                     f"lower ({a['lower']}) must be at most upper ({a['upper']})", "lower")
    elif name == "CELU":
        _float_check(ctx, a["alpha"] != 0, "alpha must not be 0 (CELU divides by it)", "alpha")
    return tuple(shape)


def prelu_rule(ctx: RuleContext, shape, a):
    """One slope, or one per channel: torch's channel dim is 1 (0-D and 1-D inputs have one channel)."""
    n = to_expr(a["num_parameters"])
    c = shape[1] if len(shape) >= 2 else sympy.Integer(1)
    ctx.require(sympy.Or(sympy.Eq(n, 1), sympy.Eq(n, c)),
                lambda: f"num_parameters ({_s(n)}) must be 1 or the channels ({_s(c)})", "num_parameters")
    return tuple(shape)


def glu_rule(ctx: RuleContext, shape, a):
    i = _dim_index(ctx, shape, a["dim"], "dim")
    x = shape[i]
    ctx.require(divides(x, 2), lambda: f"GLU halves dim {i}, whose size ({_s(x)}) must be even", "dim")
    return (*shape[:i], floordiv(x, 2), *shape[i + 1 :])


def channel_shuffle_rule(ctx: RuleContext, shape, a):
    g, c = a["groups"], shape[1]
    ctx.positive([g], "groups")
    ctx.require(divides(c, g), lambda: f"the channels ({_s(c)}) must be divisible by groups ({_s(g)})", "groups")
    return tuple(shape)


def lrn_rule(ctx: RuleContext, shape, a):
    ctx.positive([a["size"]], "size")
    return tuple(shape)


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
                            lambda: f"circular padding ({_s(p)}) must be at most the size it wraps ({_s(kept)})",
                            "padding")
            ctx.require(at_least(kept, 0), lambda: f"padding {_s((lo, hi))} crops more than the size {_s(x)}",
                        "padding")
    return pad_rule(ctx, shape, a, nd)


def lp_pool_rule(ctx: RuleContext, shape, a, nd):
    """avg_pool of x**p without padding, times the window size, to the 1/p: avg_pool's sizes."""
    if a["norm_type"] == 0:
        ctx.fail("norm_type must not be 0 (torch takes the 1/norm_type power)", "norm_type")
    k = a["kernel_size"]
    if nd == 1 and isinstance(k, tuple):  # torch multiplies by kernel_size itself
        ctx.fail(f"kernel_size must be an int for {ctx.spec.name}, got {_s(k)}", "kernel_size")
    if isinstance(k, tuple) and len(k) != nd:  # torch unpacks it into nd values
        ctx.fail(f"kernel_size must be an int or {nd} values for {ctx.spec.name}, got {_s(k)}", "kernel_size")
    return pool_rule(ctx, shape, {**a, "padding": 0}, nd)


def lp_pool_window(a, nd):
    return pool_window({**a, "padding": 0}, nd)


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
        ctx.require(at_least(m, 0), lambda: f"the padded {what} ({_s(x + 2 * pi)}) must be at least the kernel's "
                    f"extent ({_s(di * (ki - 1) + 1)})", "kernel_size")
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
    ctx.require(divides(c, window), lambda: f"dim {len(shape) - 2} ({_s(c)}) must be divisible by the kernel's "
                f"size ({_s(window)})", "kernel_size")
    ctx.require(sympy.Eq(n, blocks), lambda: f"the last dim ({_s(n)}) must be the number of sliding blocks "
                f"({_s(blocks)})", "output_size")
    return (*shape[:-2], floordiv(c, window), *size)


def feature_alpha_dropout_rule(ctx: RuleContext, shape, a):
    dropout_rule(ctx, shape, a)
    if len(shape) < 2:
        ctx.warn(sympy.true, "FeatureAlphaDropout refuses a 1-D input in training")
    return tuple(shape)


def upsampling_rule(ctx: RuleContext, shape, a):
    """UpsamplingNearest2d/UpsamplingBilinear2d: F.interpolate with the mode the class fixes."""
    bilinear = ctx.spec.name == "UpsamplingBilinear2d"
    fixed = {"mode": "bilinear" if bilinear else "nearest", "align_corners": True if bilinear else None,
             "recompute_scale_factor": None}
    return upsample_rule(ctx, shape, {**a, **fixed})


def rms_norm_count(a):
    return prod(ntuple(a["normalized_shape"], 1)) if a["elementwise_affine"] else 0


_MORE_ACTIVATION_SAVES = {  # measured with saved_tensors_hooks (tests/test_memory.py); RReLU, Threshold: not yet
    "CELU": sv.activation(sv.INPUT, True),  # ELU's kernel: in place it keeps its output
    "SELU": sv.activation(sv.INPUT, True),
    "Hardtanh": sv.activation(sv.INPUT, False),  # as ReLU6: in place it keeps a copy of its input
    "Softplus": sv.SAVES_INPUT,
    "Hardshrink": sv.SAVES_INPUT,
    "Softshrink": sv.SAVES_INPUT,
    "LogSigmoid": sv.input_and_new,  # and its buffer
    "Softsign": sv.input_and_new,  # x / (1 + |x|): the division keeps the new denominator
    "Tanhshrink": sv.new_like_input,  # x - tanh(x): tanh keeps its own output
}


def _more_activations() -> None:
    for name, args in {
        "CELU": (Arg("alpha", 1.0, FLOAT),) + _INPLACE,
        "SELU": _INPLACE,
        "Hardtanh": (Arg("min_val", -1.0, FLOAT), Arg("max_val", 1.0, FLOAT)) + _INPLACE,
        "RReLU": (Arg("lower", 1 / 8, FLOAT), Arg("upper", 1 / 3, FLOAT)) + _INPLACE,  # eval: (lower + upper)/2
        "Softplus": (Arg("beta", 1.0, FLOAT), Arg("threshold", 20.0, FLOAT)),
        "Threshold": (Arg("threshold", kind=FLOAT), Arg("value", kind=FLOAT)) + _INPLACE,
        "Hardshrink": (Arg("lambd", 0.5, FLOAT),),
        "Softshrink": (Arg("lambd", 0.5, FLOAT),),
        "LogSigmoid": (),
        "Softsign": (),
        "Tanhshrink": (),
    }.items():
        register(LayerSpec(name=name, args=args, rule=activation_rule, short=name.lower(), window=POINTWISE,
                           saves=_MORE_ACTIVATION_SAVES.get(name)))
    register(LayerSpec(name="PReLU", args=(Arg("num_parameters", 1), Arg("init", 0.25, FLOAT)), rule=prelu_rule,
                       count=lambda a: a["num_parameters"], short="prelu", window=POINTWISE, saves=sv.SAVES_INPUT))
    register(LayerSpec(name="GLU", args=(Arg("dim", -1),), rule=glu_rule, short="glu", saves=sv.SAVES_INPUT))
    register(LayerSpec(name="Softmin", args=(Arg("dim", None, OPT_INT),), rule=softmax_rule, short="softmin",
                       saves=sv.SAVES_OUTPUT))  # softmax of -x saves its output
    register(LayerSpec(name="Softmax2d", args=(), rule=same_shape, ranks=(3, 4), short="softmax2d",
                       window=POINTWISE, saves=sv.SAVES_OUTPUT))  # over the channels at each position
    for name in ("AlphaDropout", "FeatureAlphaDropout"):
        register(LayerSpec(name=name, args=(Arg("p", 0.5, FLOAT),) + _INPLACE, short=name.lower(),
                           rule=dropout_rule if name == "AlphaDropout" else feature_alpha_dropout_rule,
                           aliases_input=True, window=POINTWISE,
                           saves=sv.dropout(0) if name == "AlphaDropout" else None))  # its noise, as Dropout's


def _more_norms() -> None:
    register(LayerSpec(
        name="RMSNorm",
        args=(Arg("normalized_shape", None, DIMS), Arg("eps", None, OPT_FLOAT), Arg("elementwise_affine", True, BOOL)),
        rule=layer_norm_rule,
        count=rms_norm_count,
        inferred="normalized_shape",  # written or, by default, the input's last dim (as LayerNorm)
        infer=layer_norm_infer,
        short="rmsnorm",
        window=GLOBAL,
        saves=sv.rms_norm,
    ))
    lrn = (Arg("size"), Arg("alpha", 1e-4, FLOAT), Arg("beta", 0.75, FLOAT))
    register(LayerSpec(name="LocalResponseNorm", args=lrn + (Arg("k", 1.0, FLOAT),), rule=lrn_rule, min_rank=3,
                       short="lrn", window=POINTWISE))  # across channels: each position reads itself
    register(LayerSpec(name="CrossMapLRN2d", args=lrn + (Arg("k", 1, FLOAT),), rule=lrn_rule, ranks=(4,),
                       short="lrn", window=POINTWISE))
    # On one process (eval mode, or no process group) SyncBatchNorm is BatchNorm over dim 1, any rank from 2
    register(LayerSpec(name="SyncBatchNorm", args=_norm_args(True), count=norm_count,
                       rule=lambda ctx, shape, a: batch_norm_rule(ctx, shape, a, 0), inferred="num_features",
                       infer=lambda shape, a: shape[1], min_rank=2, short="bn",
                       saves=sv.norm(lambda a, shape: shape[1]),  # as BatchNorm: statistics per channel
                       window=lambda a, nd: POINTWISE if a["track_running_stats"] else GLOBAL))  # eval: whose stats


def _more_reshaping() -> None:
    register(LayerSpec(name="ChannelShuffle", args=(Arg("groups"),), rule=channel_shuffle_rule, min_rank=3,
                       short="channelshuffle", window=POINTWISE, saves=sv.NOTHING))
    window = (Arg("dilation", 1, SIZE), Arg("padding", 0, SIZE), Arg("stride", 1, SIZE))
    register(LayerSpec(name="Unfold", args=(Arg("kernel_size", kind=SIZE),) + window, rule=unfold_rule,
                       ranks=(3, 4), short="unfold", saves=sv.NOTHING))
    register(LayerSpec(name="Fold", args=(Arg("output_size", kind=SIZE), Arg("kernel_size", kind=SIZE)) + window,
                       rule=fold_rule, ranks=(2, 3), short="fold", saves=sv.NOTHING))
    scale = (Arg("size", None, OPT_SIZE), Arg("scale_factor", None, SCALE))
    for name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
        register(LayerSpec(name=name, args=scale, rule=upsampling_rule, ranks=(3, 4, 5), short="upsample",
                           saves=sv.NOTHING))


LP_POOL_SIZE = SizeRule("(x - kernel_size)//stride + 1", lambda x, v: [x, -v["kernel_size"]], lambda v: v["stride"])


def _lp_pool(nd: int) -> None:
    args = (Arg("norm_type", kind=FLOAT), Arg("kernel_size", kind=SIZE), Arg("stride", None, OPT_SIZE),
            Arg("ceil_mode", False, BOOL))
    _member("LPPool", nd, args=args, rule=lp_pool_rule, short="lppool", kernel_within_input=nd == 3,
            window=lp_pool_window, size_rule=LP_POOL_SIZE)


def _circular_pad(nd: int) -> None:
    # unlike the other pads, the class checks the rank first; F.pad then pads as len(padding) says
    _member("CircularPad", nd, args=(Arg("padding", kind=PADS),), rule=circular_pad_rule, pad_mode="circular",
            short="pad", window=pad_window, saves=sv.NOTHING)


_more_activations()
_more_norms()
_more_reshaping()
for _nd in (1, 2, 3):
    _lp_pool(_nd)
    _circular_pad(_nd)
