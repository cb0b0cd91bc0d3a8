"""The layer registry: ONE place where each torch layer kind declares

- its arguments, in torch's positional order, with torch's defaults (`Arg`),
- which argument the input decides (`inferred`: in_channels, in_features, ...),
- the input ranks it accepts,
- its shape rule (symbolic, torch-exact, with the conditions under which torch raises),
- its parameter count.

The torch constructor and the generated code both use `torch_name` and the resolved
arguments, so nothing else in convplan special-cases a layer kind.  Rules receive a `Rule`
context and return the output shape; a condition that may fail goes through
`ctx.require(cond, message)`, which turns it into an error, a requirement or nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import sympy

from .shapes import at_least, divides, floordiv, pyrepr

REQUIRED = object()  # marks an argument without a default

# Argument kinds: how a value written in a plan is validated (see check.py `_coerce`).
INT = "int"  # an integer expression
SIZE = "size"  # an int or an nd-tuple of ints
PAD = "pad"  # SIZE, or 'same' / 'valid'
BOOL = "bool"
FLOAT = "float"
STR = "str"
OPT_INT = "int or None"
OPT_SIZE = "size or None"  # adaptive pools: None entries keep that dim
PADS = "pads"  # an int or a tuple of 2*nd ints (ZeroPad & co.)
DIMS = "dims"  # an int or a tuple of ints (LayerNorm, Unflatten)
SCALE = "scale"  # a float or a tuple of floats
ANY = "any"


@dataclass(frozen=True)
class Arg:
    name: str
    default: object = REQUIRED
    kind: str = INT
    choices: tuple = ()  # for STR


@dataclass(frozen=True)
class LayerSpec:
    name: str  # torch.nn class name, also the name used in plans
    args: tuple[Arg, ...]  # the arguments a plan may write, in torch's positional order
    rule: Callable  # (ctx, shape, args) -> output shape
    count: Callable = lambda a: 0  # (args) -> number of parameters
    inferred: str | None = None  # torch's name of the argument read from the input
    infer: Callable | None = None  # (shape, args) -> value of `inferred`
    ranks: tuple[int, ...] | None = None  # accepted input ranks; None = any >= min_rank
    min_rank: int = 1
    nd: int = 0  # spatial dims of a 1d/2d/3d family member
    family: str = ""  # e.g. "Conv" for Conv1d/2d/3d: used to suggest the right member
    short: str = ""  # base of submodule names (conv1, pool2, ...)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    def torch_order(self) -> tuple[str, ...]:
        """Constructor argument order including the inferred one (always first in torch)."""
        first = () if self.inferred is None else (self.inferred,)
        if self.name == "GroupNorm":  # GroupNorm(num_groups, num_channels, ...)
            return (self.args[0].name, self.inferred) + self.arg_names[1:]
        return first + self.arg_names


class LayerError(Exception):
    """Raised by a rule: the layer is refused.  `arg` names the argument to point at."""

    def __init__(self, message: str, arg: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.arg, self.hint = message, arg, hint


@dataclass
class Rule:
    """What a shape rule sees besides the shape and the arguments."""

    spec: LayerSpec
    conds: list = field(default_factory=list)  # (condition, message, arg)

    def require(self, cond, message: str, arg: str | None = None) -> None:
        if cond is not sympy.true:
            self.conds.append((cond, message, arg))

    def fail(self, message: str, arg: str | None = None, hint: str | None = None):
        raise LayerError(message, arg, hint)

    def positive(self, values, arg: str) -> None:
        for v in values:
            self.require(at_least(v, 1), f"{arg} must be positive, got {_s(v)}", arg)

    def nonneg(self, values, arg: str) -> None:
        for v in values:
            self.require(at_least(v, 0), f"{arg} must not be negative, got {_s(v)}", arg)


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


def prod(values):
    return math.prod(values, start=sympy.Integer(1))


def _split(shape, nd):
    """(leading dims, channels, spatial dims) of a [.., C, *spatial] input."""
    return shape[: -nd - 1], shape[-nd - 1], shape[-nd:]


def channels(shape, a, nd: int):
    return shape[-nd - 1]


# -- convolutions ----------------------------------------------------------------------


def _conv_common(ctx: Rule, shape, a, nd):
    k, s, d = ntuple(a["kernel_size"], nd), ntuple(a["stride"], nd), ntuple(a["dilation"], nd)
    ctx.positive(k, "kernel_size")
    ctx.positive(s, "stride")
    ctx.positive(d, "dilation")
    ctx.positive([a["groups"]], "groups")
    cin = shape[-nd - 1]
    ctx.require(
        divides(cin, a["groups"]), f"in_channels ({_s(cin)}) must be divisible by groups ({_s(a['groups'])})", "groups"
    )
    ctx.require(
        divides(a["out_channels"], a["groups"]),
        f"out_channels ({_s(a['out_channels'])}) must be divisible by groups ({_s(a['groups'])})",
        "groups",
    )
    return k, s, d


def conv_rule(ctx: Rule, shape, a, nd):
    k, s, d = _conv_common(ctx, shape, a, nd)
    lead, _, spatial = _split(shape, nd)
    pad = a["padding"]
    if pad == "same":
        if any(v != 1 for v in s):
            ctx.fail(
                "padding='same' is not supported for strided convolutions",
                "padding",
                hint="use an explicit padding, or stride=1",
            )
        totals = [di * (ki - 1) for di, ki in zip(d, k)]
        pads = [(t // 2, t - t // 2) for t in totals]
    else:
        p = (0,) * nd if pad == "valid" else ntuple(pad, nd)
        ctx.nonneg(p, "padding")
        pads = [(pi, pi) for pi in p]
    out = []
    for x, (lo, hi), ki, si, di in zip(spatial, pads, k, s, d):
        ext = di * (ki - 1) + 1
        ctx.require(
            at_least(x + lo + hi, ext),
            f"the padded input ({_s(x + lo + hi)}) must be at least the kernel's extent ({_s(ext)})",
        )
        _padding_mode_limits(ctx, a["padding_mode"], x, lo, hi)
        out.append(x if pad == "same" else floordiv(x + lo + hi - ext, si) + 1)
    return (*lead, a["out_channels"], *out)


def _padding_mode_limits(ctx, mode, x, lo, hi):
    if mode == "reflect":
        for p in {lo, hi}:
            ctx.require(
                at_least(x - p, 1),
                f"padding_mode='reflect' needs padding ({_s(p)}) < the input size ({_s(x)})",
                "padding_mode",
            )
    elif mode == "circular":
        for p in {lo, hi}:
            ctx.require(
                at_least(x - p, 0),
                f"padding_mode='circular' needs padding ({_s(p)}) <= the input size ({_s(x)})",
                "padding_mode",
            )


def conv_count(a, nd):
    k = ntuple(a["kernel_size"], nd)
    weight = a["out_channels"] * floordiv(a["in_channels"], a["groups"]) * prod(k)
    return weight + (a["out_channels"] if a["bias"] else 0)


def conv_t_rule(ctx: Rule, shape, a, nd):
    k, s, d = _conv_common(ctx, shape, a, nd)
    if isinstance(a["padding"], str):
        ctx.fail(f"padding={a['padding']!r} is not supported for {ctx.spec.name}", "padding")
    if a["padding_mode"] != "zeros":
        ctx.fail(f'only padding_mode="zeros" is supported for {ctx.spec.name}', "padding_mode")
    p, op = ntuple(a["padding"], nd), ntuple(a["output_padding"], nd)
    ctx.nonneg(p, "padding")
    ctx.nonneg(op, "output_padding")
    lead, _, spatial = _split(shape, nd)
    out = []
    for x, pi, opi, ki, si, di in zip(spatial, p, op, k, s, d):
        ctx.require(
            at_least(sympy.Max(si, di) - opi, 1),
            f"output_padding ({_s(opi)}) must be smaller than either stride ({_s(si)}) or dilation ({_s(di)})",
            "output_padding",
        )
        size = (x - 1) * si - 2 * pi + di * (ki - 1) + opi + 1
        ctx.require(at_least(size, 1), f"the output size ({_s(size)}) would be less than 1", "padding")
        out.append(size)
    return (*lead, a["out_channels"], *out)


def conv_t_count(a, nd):
    k = ntuple(a["kernel_size"], nd)
    weight = a["in_channels"] * floordiv(a["out_channels"], a["groups"]) * prod(k)
    return weight + (a["out_channels"] if a["bias"] else 0)


# -- pooling ---------------------------------------------------------------------------


def pool_size(ctx: Rule, x, k, s, p, d, ceil_mode):
    """torch's pooling_output_shape, including "the last window must start inside the input"."""
    ext = d * (k - 1) + 1
    ctx.require(
        at_least(k - 2 * p, 0), f"padding ({_s(p)}) must be at most half of the kernel size ({_s(k)})", "padding"
    )
    if not ceil_mode:
        size = floordiv(x + 2 * p - ext, s) + 1
    else:
        # ceil((x+2p-ext)/s) + 1, less one if that window would start past x + p.  The two
        # candidates differ by a constant, so which one wins never depends on x.
        by_ceil, by_start = 2 * p - ext + s - 1, p - 1
        shift = by_ceil if sympy.sympify(by_ceil - by_start).is_nonpositive else by_start
        size = floordiv(x + shift, s) + 1
    ctx.require(at_least(size, 1), f"the output size ({_s(size)}) would be less than 1 (input {_s(x)}, kernel {_s(k)})")
    return size


def pool_rule(ctx: Rule, shape, a, nd):
    if a.get("return_indices"):
        ctx.fail("return_indices=True makes the layer return a tuple, which a plan cannot pass on", "return_indices")
    k = ntuple(a["kernel_size"], nd)
    s = k if a["stride"] is None else ntuple(a["stride"], nd)
    p, d = ntuple(a["padding"], nd), ntuple(a.get("dilation", 1), nd)
    ctx.positive(k, "kernel_size")
    ctx.positive(s, "stride")
    ctx.positive(d, "dilation")
    ctx.nonneg(p, "padding")
    lead, c, spatial = _split(shape, nd)
    out = [pool_size(ctx, *v, a["ceil_mode"]) for v in zip(spatial, k, s, p, d)]
    return (*lead, c, *out)


def adaptive_rule(ctx: Rule, shape, a, nd):
    lead, c, spatial = _split(shape, nd)
    size = ntuple(a["output_size"], nd)
    ctx.positive([v for v in size if v is not None], "output_size")
    return (*lead, c, *(x if v is None else v for x, v in zip(spatial, size)))


# -- normalisation, dropout, activations -------------------------------------------------


def same_shape(ctx, shape, a, nd=0):
    return tuple(shape)


def norm_count(a, nd=0):
    return 2 * a["num_features"] if a["affine"] else 0


def group_norm_rule(ctx: Rule, shape, a, nd=0):
    ctx.positive([a["num_groups"]], "num_groups")
    c = shape[1]
    ctx.require(
        divides(c, a["num_groups"]),
        f"num_channels ({_s(c)}) must be divisible by num_groups ({_s(a['num_groups'])})",
        "num_groups",
    )
    return tuple(shape)


def layer_norm_rule(ctx: Rule, shape, a, nd=0):
    norm = ntuple(a["normalized_shape"], 1) if a["normalized_shape"] is not None else (shape[-1],)
    if len(norm) > len(shape):
        ctx.fail(f"normalized_shape {_s(list(norm))} has more dims than the input ({len(shape)})", "normalized_shape")
    for want, have in zip(norm, shape[len(shape) - len(norm) :]):
        ctx.require(
            sympy.Eq(sympy.sympify(want), have) if not isinstance(want, bool) else sympy.false,
            f"normalized_shape {_s(list(norm))} must match the input's last dims {list(shape[-len(norm) :])}",
            "normalized_shape",
        )
    return tuple(shape)


def layer_norm_infer(shape, a):
    return shape[-1] if a["normalized_shape"] is None else a["normalized_shape"]


def layer_norm_count(a, nd=0):
    if not a["elementwise_affine"]:
        return 0
    n = prod(ntuple(a["normalized_shape"], 1))
    return 2 * n if a["bias"] else n


def softmax_rule(ctx: Rule, shape, a, nd=0):
    if a["dim"] is not None:
        _dim_index(ctx, shape, a["dim"], "dim")
    return tuple(shape)


def _dim_index(ctx: Rule, shape, dim, arg):
    r = len(shape)
    if not isinstance(dim, (int, sympy.Integer)) or not -r <= int(dim) < r:
        ctx.fail(f"{arg}={_s(dim)} is out of range for a {r}-D input (expected {_s(-r)} to {_s(r - 1)})", arg)
    return int(dim) % r


# -- reshaping -------------------------------------------------------------------------


def flatten_rule(ctx: Rule, shape, a, nd=0):
    start = _dim_index(ctx, shape, a["start_dim"], "start_dim")
    end = _dim_index(ctx, shape, a["end_dim"], "end_dim")
    if start > end:
        ctx.fail(f"start_dim ({_s(a['start_dim'])}) cannot come after end_dim ({_s(a['end_dim'])})", "start_dim")
    return (*shape[:start], prod(shape[start : end + 1]), *shape[end + 1 :])


def unflatten_rule(ctx: Rule, shape, a, nd=0):
    i = _dim_index(ctx, shape, a["dim"], "dim")
    sizes = ntuple(a["unflattened_size"], 1)
    holes = [j for j, v in enumerate(sizes) if v == -1]
    if len(holes) > 1:
        ctx.fail("only one of unflattened_size may be -1", "unflattened_size")
    known = prod(v for v in sizes if v != -1)
    ctx.positive([v for v in sizes if v != -1], "unflattened_size")
    if holes:
        ctx.require(
            divides(shape[i], known), f"dim {i} ({_s(shape[i])}) must be divisible by {_s(known)}", "unflattened_size"
        )
        sizes = tuple(floordiv(shape[i], known) if v == -1 else v for v in sizes)
    else:
        ctx.require(
            sympy.Eq(known, shape[i]),
            f"unflattened_size {_s(list(sizes))} must multiply to the size of dim {i} ({_s(shape[i])})",
            "unflattened_size",
        )
    return (*shape[:i], *sizes, *shape[i + 1 :])


def linear_rule(ctx: Rule, shape, a, nd=0):
    ctx.positive([a["out_features"]], "out_features")
    return (*shape[:-1], a["out_features"])


def linear_count(a, nd=0):
    return a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0)


_UPSAMPLE_RANKS = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


def upsample_rule(ctx: Rule, shape, a, nd=0):
    size, scale, mode = a["size"], a["scale_factor"], a["mode"]
    spatial = len(shape) - 2
    if (size is None) == (scale is None):
        ctx.fail("give exactly one of size and scale_factor", "size" if size is not None else None)
    want = _UPSAMPLE_RANKS.get(mode)
    if want is not None and want != len(shape):
        ctx.fail(f"mode={mode!r} needs a {want}-D input, got {len(shape)}-D", "mode")
    if a["align_corners"] is not None and mode not in _UPSAMPLE_RANKS:
        ctx.fail(
            "align_corners can only be set with the interpolating modes: linear, bilinear, bicubic, trilinear",
            "align_corners",
        )
    if size is not None:
        sizes = _per_dim(ctx, size, spatial, "size")
        ctx.positive(sizes, "size")
        return (*shape[:2], *sizes)
    scales = _per_dim(ctx, scale, spatial, "scale_factor")
    out = []
    for x, f in zip(shape[2:], scales):
        ratio = sympy.Rational(float(f))  # exact binary value of the double torch multiplies by
        if ratio <= 0:
            ctx.fail(f"scale_factor must be positive, got {_s(f)}", "scale_factor")
        size = floordiv(ratio.p * x, ratio.q)
        ctx.require(at_least(size, 1), f"the output size ({_s(size)}) would be less than 1", "scale_factor")
        out.append(size)
    return (*shape[:2], *out)


def _per_dim(ctx, value, nd, arg):
    values = ntuple(value, nd)
    if len(values) != nd:
        ctx.fail(f"{arg} needs {nd} values for a {nd + 2}-D input, got {len(values)}", arg)
    return values


def pad_rule(ctx: Rule, shape, a, nd):
    pads = a["padding"]
    pads = (pads,) * (2 * nd) if not isinstance(pads, tuple) else pads
    if len(pads) != 2 * nd:
        ctx.fail(f"padding must be an int or a {2 * nd}-tuple, got a {len(pads)}-tuple", "padding")
    reflect = ctx.spec.name.startswith("Reflection")
    out = list(shape)
    for i in range(nd):  # torch lists pads from the last dim backwards: (left, right, top, bottom, ...)
        lo, hi = pads[2 * i], pads[2 * i + 1]
        x = shape[-1 - i]
        if reflect:
            for p in (lo, hi):
                ctx.require(
                    at_least(x - p, 1),
                    f"reflection padding ({_s(p)}) must be less than the input size ({_s(x)})",
                    "padding",
                )
        if ctx.spec.name.startswith(("Reflection", "Replication")):
            ctx.nonneg((lo, hi), "padding")
        out[-1 - i] = x + lo + hi
        ctx.require(at_least(out[-1 - i], 1), f"the padded size ({_s(out[-1 - i])}) would be less than 1", "padding")
    return tuple(out)


def pixel_shuffle_rule(ctx: Rule, shape, a, nd=0):
    r = a["upscale_factor"]
    ctx.positive([r], "upscale_factor")
    c, h, w = shape[-3:]
    ctx.require(
        divides(c, r * r),
        f"the channels ({_s(c)}) must be divisible by upscale_factor**2 ({_s(r * r)})",
        "upscale_factor",
    )
    return (*shape[:-3], floordiv(c, r * r), h * r, w * r)


def pixel_unshuffle_rule(ctx: Rule, shape, a, nd=0):
    r = a["downscale_factor"]
    ctx.positive([r], "downscale_factor")
    c, h, w = shape[-3:]
    for name, x in (("height", h), ("width", w)):
        ctx.require(
            divides(x, r), f"the {name} ({_s(x)}) must be divisible by downscale_factor ({r})", "downscale_factor"
        )
    return (*shape[:-3], c * r * r, floordiv(h, r), floordiv(w, r))


# -- the vocabulary --------------------------------------------------------------------


def _bind(fn, nd):
    return lambda ctx, shape, a: fn(ctx, shape, a, nd)


def _count(fn, nd):
    return lambda a: fn(a, nd)


def _family(nd: int):
    """Register the 1d/2d/3d members of every N-d family."""
    ranks = (nd + 1, nd + 2)
    infer_c = lambda shape, a: shape[-nd - 1]  # noqa: E731
    conv_args = (
        Arg("out_channels"),
        Arg("kernel_size", kind=SIZE),
        Arg("stride", 1, SIZE),
        Arg("padding", 0, PAD),
        Arg("dilation", 1, SIZE),
        Arg("groups", 1),
        Arg("bias", True, BOOL),
        Arg("padding_mode", "zeros", STR, ("zeros", "reflect", "replicate", "circular")),
    )
    register(
        LayerSpec(
            f"Conv{nd}d",
            conv_args,
            _bind(conv_rule, nd),
            _count(conv_count, nd),
            "in_channels",
            infer_c,
            ranks,
            nd=nd,
            family="Conv",
            short="conv",
        )
    )
    convt_args = (
        Arg("out_channels"),
        Arg("kernel_size", kind=SIZE),
        Arg("stride", 1, SIZE),
        Arg("padding", 0, PAD),
        Arg("output_padding", 0, SIZE),
        Arg("groups", 1),
        Arg("bias", True, BOOL),
        Arg("dilation", 1, SIZE),
        Arg("padding_mode", "zeros", STR, ("zeros", "reflect", "replicate", "circular")),
    )
    register(
        LayerSpec(
            f"ConvTranspose{nd}d",
            convt_args,
            _bind(conv_t_rule, nd),
            _count(conv_t_count, nd),
            "in_channels",
            infer_c,
            ranks,
            nd=nd,
            family="ConvTranspose",
            short="deconv",
        )
    )
    register(
        LayerSpec(
            f"MaxPool{nd}d",
            (
                Arg("kernel_size", kind=SIZE),
                Arg("stride", None, OPT_SIZE),
                Arg("padding", 0, SIZE),
                Arg("dilation", 1, SIZE),
                Arg("return_indices", False, BOOL),
                Arg("ceil_mode", False, BOOL),
            ),
            _bind(pool_rule, nd),
            ranks=ranks,
            nd=nd,
            family="MaxPool",
            short="maxpool",
        )
    )
    avg_args = (
        Arg("kernel_size", kind=SIZE),
        Arg("stride", None, OPT_SIZE),
        Arg("padding", 0, SIZE),
        Arg("ceil_mode", False, BOOL),
        Arg("count_include_pad", True, BOOL),
    )
    if nd > 1:
        avg_args += (Arg("divisor_override", None, OPT_INT),)
    register(
        LayerSpec(
            f"AvgPool{nd}d", avg_args, _bind(pool_rule, nd), ranks=ranks, nd=nd, family="AvgPool", short="avgpool"
        )
    )
    for kind in ("Avg", "Max"):
        args = (Arg("output_size", kind=OPT_SIZE),) + ((Arg("return_indices", False, BOOL),) if kind == "Max" else ())
        register(
            LayerSpec(
                f"Adaptive{kind}Pool{nd}d",
                args,
                _bind(adaptive_rule, nd),
                ranks=ranks,
                nd=nd,
                family=f"Adaptive{kind}Pool",
                short=f"adaptive{kind.lower()}pool",
            )
        )
    bn_ranks = (2, 3) if nd == 1 else (nd + 2,)
    register(
        LayerSpec(
            f"BatchNorm{nd}d",
            (
                Arg("eps", 1e-5, FLOAT),
                Arg("momentum", 0.1, FLOAT),
                Arg("affine", True, BOOL),
                Arg("track_running_stats", True, BOOL),
            ),
            same_shape,
            norm_count,
            "num_features",
            lambda shape, a: shape[1],
            bn_ranks,
            nd=nd,
            family="BatchNorm",
            short="bn",
        )
    )
    register(
        LayerSpec(
            f"InstanceNorm{nd}d",
            (
                Arg("eps", 1e-5, FLOAT),
                Arg("momentum", 0.1, FLOAT),
                Arg("affine", False, BOOL),
                Arg("track_running_stats", False, BOOL),
            ),
            same_shape,
            norm_count,
            "num_features",
            infer_c,
            ranks,
            nd=nd,
            family="InstanceNorm",
            short="instnorm",
        )
    )
    register(
        LayerSpec(
            f"Dropout{nd}d",
            (Arg("p", 0.5, FLOAT), Arg("inplace", False, BOOL)),
            same_shape,
            ranks=ranks,
            nd=nd,
            family="Dropout",
            short="dropout",
        )
    )
    pad_ranks = ranks
    register(
        LayerSpec(
            f"ZeroPad{nd}d",
            (Arg("padding", kind=PADS),),
            _bind(pad_rule, nd),
            ranks=pad_ranks,
            nd=nd,
            family="ZeroPad",
            short="pad",
        )
    )
    register(
        LayerSpec(
            f"ConstantPad{nd}d",
            (Arg("padding", kind=PADS), Arg("value", kind=FLOAT)),
            _bind(pad_rule, nd),
            ranks=pad_ranks,
            nd=nd,
            family="ConstantPad",
            short="pad",
        )
    )
    for kind in ("Reflection", "Replication"):
        register(
            LayerSpec(
                f"{kind}Pad{nd}d",
                (Arg("padding", kind=PADS),),
                _bind(pad_rule, nd),
                ranks=pad_ranks,
                nd=nd,
                family=f"{kind}Pad",
                short="pad",
            )
        )


for _nd in (1, 2, 3):
    _family(_nd)

_INPLACE = (Arg("inplace", False, BOOL),)
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
    "Dropout": (Arg("p", 0.5, FLOAT),) + _INPLACE,
}.items():
    register(LayerSpec(_name, _args, same_shape, short=_name.lower()))

for _name in ("Softmax", "LogSoftmax"):
    register(LayerSpec(_name, (Arg("dim", None, OPT_INT),), softmax_rule, short=_name.lower()))

register(
    LayerSpec(
        "GroupNorm",
        (Arg("num_groups"), Arg("eps", 1e-5, FLOAT), Arg("affine", True, BOOL)),
        group_norm_rule,
        lambda a: 2 * a["num_channels"] if a["affine"] else 0,
        "num_channels",
        lambda shape, a: shape[1],
        min_rank=2,
        short="gn",
    )
)
register(
    LayerSpec(
        "LayerNorm",
        (
            Arg("normalized_shape", None, DIMS),
            Arg("eps", 1e-5, FLOAT),
            Arg("elementwise_affine", True, BOOL),
            Arg("bias", True, BOOL),
        ),
        layer_norm_rule,
        layer_norm_count,
        short="ln",
    )
)
register(LayerSpec("Flatten", (Arg("start_dim", 1), Arg("end_dim", -1)), flatten_rule, short="flatten"))
register(LayerSpec("Unflatten", (Arg("dim"), Arg("unflattened_size", kind=DIMS)), unflatten_rule, short="unflatten"))
register(
    LayerSpec(
        "Linear",
        (Arg("out_features"), Arg("bias", True, BOOL)),
        linear_rule,
        linear_count,
        "in_features",
        lambda shape, a: shape[-1],
        short="linear",
    )
)
register(
    LayerSpec(
        "Upsample",
        (
            Arg("size", None, OPT_SIZE),
            Arg("scale_factor", None, SCALE),
            Arg(
                "mode",
                "nearest",
                STR,
                ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"),
            ),
            Arg("align_corners", None, BOOL),
            Arg("recompute_scale_factor", None, BOOL),
        ),
        upsample_rule,
        ranks=(3, 4, 5),
        short="upsample",
    )
)
register(LayerSpec("PixelShuffle", (Arg("upscale_factor"),), pixel_shuffle_rule, min_rank=3, short="shuffle"))
register(LayerSpec("PixelUnshuffle", (Arg("downscale_factor"),), pixel_unshuffle_rule, min_rank=3, short="unshuffle"))
