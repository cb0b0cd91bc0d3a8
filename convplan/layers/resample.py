"""Upsampling by a size or a scale factor (Upsample, UpsamplingNearest2d/Bilinear2d)."""

# ruff: noqa: B023

from __future__ import annotations

import functools
from fractions import Fraction

import sympy

from .. import saves as sv
from ..shapes import at_least, floordiv
from ..shapes.canonical import _chain_dim, times
from .spec import BOOL, OPT_SIZE, SCALE, STR, Arg, LayerSpec, RuleContext, ntuple, register, show

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
    factors = _exactly(ctx, scale, spatial, "scale_factor")
    out = [scaled_size(ctx, x, f) for x, f in zip(shape[2:], factors, strict=True)]
    return (*shape[:2], *out)


def _exactly(ctx, value, nd, arg):
    values = ntuple(value, nd)
    if len(values) != nd:
        ctx.fail(f"{arg} needs {nd} values for a {nd + 2}-D input, got {len(values)}", arg)
    return values


def scaled_size(ctx: RuleContext, x, f: float, arg: str = "scale_factor", instead: str = "size"):
    """torch's int(float(x) * f) in float64: exact for a concrete x; for a symbolic one, floor(x*q) with
    the simplest q that agrees with float64 for every x up to SCALE_CHECKED (a requirement then says so).
    `arg`: the argument f is (FractionalMaxPool's output_ratio too); `instead`: the one to give for sizes."""
    if x.is_Integer:
        size = sympy.Integer(int(float(int(x)) * f))
    else:
        q = scale_ratio(f)
        if q is None:
            ctx.fail(f"{arg}={f!r}: torch computes int({show(x)} * {f!r}) in float64, which follows no "
                     f"floor({show(x)} * p/q) rule", arg, hint=f"give {instead}=..., or fix {show(x)}")
        if q.denominator == 1 and q.numerator >= 2 and _chain_dim(x):  # a whole factor on a conv/pool chain dim
            size = times(q.numerator, x)
        else:
            size = floordiv(q.numerator * x, q.denominator)
        if Fraction(f) != q or q.denominator > 1 << 16:
            ctx.require(at_least(SCALE_CHECKED - x, 0),
                        lambda: f"{arg}={f!r} follows floor({show(x)}*{q}) (checked up to {SCALE_CHECKED})", arg)
    ctx.require(at_least(size, 1), lambda: f"the output size ({show(size)}) would be less than 1", arg)
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


def upsampling_rule(ctx: RuleContext, shape, a):
    """UpsamplingNearest2d/UpsamplingBilinear2d: F.interpolate with the mode the class fixes."""
    bilinear = ctx.spec.name == "UpsamplingBilinear2d"
    fixed = {"mode": "bilinear" if bilinear else "nearest", "align_corners": True if bilinear else None,
             "recompute_scale_factor": None}
    return upsample_rule(ctx, shape, {**a, **fixed})


def upsample_window(a, nd):
    """Nearest-neighbour upsampling by an integer factor s: output position o reads input o//s (nearest-exact
    too, for an integer factor): extent (2s - 1)/s, stride 1/s, left (s - 1)/s, rounded inwards by
    receptive.py.  Other modes and sizes given as `size=` read windows that vary by position: not modelled."""
    if a.get("mode", "nearest") not in ("nearest", "nearest-exact") or a["size"] is not None:
        return None
    factors = a["scale_factor"] if isinstance(a["scale_factor"], tuple) else (a["scale_factor"],) * nd
    if len(factors) != nd or not all(float(f).is_integer() and f >= 1 for f in factors):
        return None
    return [(sympy.Rational(2 * int(f) - 1, int(f)), sympy.Rational(1, int(f)), sympy.Rational(int(f) - 1, int(f)))
            for f in factors]


def register_upsample() -> None:
    """Upsample."""
    register(LayerSpec(
        name="Upsample",
        args=(
            Arg("size", None, OPT_SIZE),
            Arg("scale_factor", None, SCALE),
            Arg("mode", "nearest", STR,
                ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")),
            Arg("align_corners", None, BOOL),
            Arg("recompute_scale_factor", None, BOOL),
        ),
        rule=upsample_rule,
        ranks=(3, 4, 5),
        short="upsample",
        saves=sv.upsample,
        window=upsample_window,
    ))


def register_upsampling() -> None:
    """UpsamplingNearest2d and UpsamplingBilinear2d (deprecated in torch, still in torch.nn)."""
    scale = (Arg("size", None, OPT_SIZE), Arg("scale_factor", None, SCALE))
    for name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
        register(LayerSpec(name=name, args=scale, rule=upsampling_rule, ranks=(3, 4, 5), short="upsample",
                           saves=sv.NOTHING, window=upsample_window if name == "UpsamplingNearest2d" else None))
