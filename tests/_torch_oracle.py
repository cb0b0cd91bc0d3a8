"""Shared by the torch property tests: write a plan for (layers, input shape), run the same
layers as real torch modules, and compare.  torch is the oracle; convplan must agree with it.

A layer is `(kind, args)`: `kind` is the torch.nn class name, `args` the keyword arguments a
plan writes (the inferred one, in_channels & co., is left out and read from the input here,
independently of convplan's registry).

One deliberate difference: convplan refuses a layer whose output would have a zero-size dim
(plan dims are positive, like its input dims), where torch returns an empty tensor.  So
"torch accepts" below means: torch runs, returns a tensor, and no output along the way is empty.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

import convplan
from convplan import PlanError, modules
from convplan.shapes import evaluate

SYMBOLS = ("N", "C", "D", "H", "W", "V")
SYMBOLIC_LIMIT = "follows no floor("  # Upsample scale_factor refused for symbolic sizes


class Sym(int):
    """An int argument that the plan writes as an expression of the input's size symbols, equal to it at
    the sizes tested (`C - 1` for 2 when C is 3): rules must hold for symbolic arguments too (groups=C,
    Upsample(size=(H, W)), ZeroPad2d((0, W % 2, 0, H % 2))).  Concrete plans and torch see the int."""

    def __new__(cls, value: int, text: str):
        self = super().__new__(cls, value)
        self.text = text
        return self

    def __repr__(self) -> str:
        return f"Sym({int(self)}, {self.text!r})"


def plain(value):
    """`value` with every Sym replaced by its int (for torch and for concrete plans)."""
    if isinstance(value, Sym):
        return int(value)
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [(kind, {k: plain(v) for k, v in args.items()}) for kind, args in value]
    return value


def render(value) -> str:
    """A Python value in plan syntax."""
    if isinstance(value, Sym):
        return f"({value.text})"
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(render(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(value)


def layer_line(kind: str, args: dict) -> str:
    return f"{kind}({', '.join(f'{k}={render(v)}' for k, v in args.items())})"


def plan_text(shape, layers) -> str:
    dims = ", ".join(str(d) for d in shape)
    body = "".join(f"    {layer_line(kind, args)}\n" for kind, args in layers)
    return f"plan T:\n    input [{dims}]\n{body}"


# -- torch -----------------------------------------------------------------------------


def _nd(kind: str) -> int:
    return int(kind[-2]) if kind[-1] == "d" and kind[-2].isdigit() else 0


def torch_layer(kind: str, args: dict, shape: tuple) -> nn.Module:
    """nn.<kind>(**args) plus the argument torch reads off the input, found from the shape here."""
    kwargs = {k: plain(v) for k, v in args.items()}
    nd = _nd(kind)
    if kind == "SyncBatchNorm":
        kwargs["num_features"] = shape[1]
    elif kind.startswith(("Conv", "BatchNorm", "InstanceNorm")):
        # The channel dim: BatchNorm always dim 1, the others the dim before the nd spatial ones.
        ch = shape[1] if kind.startswith("BatchNorm") else shape[-nd - 1]
        kwargs["num_features" if "Norm" in kind else "in_channels"] = ch
    elif kind == "GroupNorm":
        kwargs["num_channels"] = shape[1]
    elif kind == "Linear":
        kwargs["in_features"] = shape[-1]
    elif kind in ("LayerNorm", "RMSNorm") and "normalized_shape" not in kwargs:
        kwargs["normalized_shape"] = shape[-1]
    elif kind in ("PatchMerging", "ShiftedWindowAttention"):
        kwargs["dim"] = shape[-1]
    cls = getattr(nn, kind, None) or getattr(modules, kind)  # torchvision's kinds: convplan's copies
    return cls(**kwargs).eval()


def _channel_dim_exists(kind: str, shape) -> bool:
    nd = _nd(kind)
    if kind.startswith("BatchNorm") or kind in ("GroupNorm", "SyncBatchNorm"):
        return len(shape) >= 2
    if kind.startswith(("Conv", "InstanceNorm")):
        return len(shape) >= nd + 1
    return len(shape) >= 1


def example_input(shape, layers) -> torch.Tensor:
    """Random floats, or integer indices below num_embeddings where the first layer reads indices."""
    first = plain(layers[:1])
    if first and first[0][0] in ("Embedding", "EmbeddingBag") and isinstance(first[0][1].get("num_embeddings"), int) \
            and first[0][1]["num_embeddings"] > 0:
        return torch.randint(0, first[0][1]["num_embeddings"], shape)
    return torch.randn(*shape)


def torch_run(shape, layers):
    """(output shape, None) if torch accepts every layer, else (None, why)."""
    x, layers = example_input(shape, layers), plain(layers)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        for kind, args in layers:
            if not _channel_dim_exists(kind, x.shape):
                return None, "rank: no channel dim"
            if kind.startswith("ConvTranspose") and min(_values(args.get("dilation", 1))) <= 0:
                # Deliberate: torch's oneDNN path accepts dilation 0 for kernel 1 (d*(k-1) is 0 anyway) and
                # refuses it otherwise; convplan refuses it always (docs/torch_rules.md, section 2).
                return None, f"{kind}: dilation must be positive (convplan's choice)"
            if kind == "CrossMapLRN2d" and args["size"] < 1:
                # Deliberate: torch's legacy Function divides by a negative size and runs; convplan refuses
                # any size below 1 (docs/torch_rules.md, next to LocalResponseNorm).
                return None, f"{kind}: size must be positive (convplan's choice)"
            if kind == "FractionalMaxPool2d" and min(_values(args["kernel_size"])) <= 0:
                # Deliberate: torch's 2d kernel runs an empty window (its output is -inf, its indices point
                # anywhere) where FractionalMaxPool3d refuses; convplan refuses it (docs/torch_rules.md).
                return None, f"{kind}: kernel_size must be positive (convplan's choice)"
            if kind.startswith("CircularPad") and not _circular_fits(args["padding"], _nd(kind), x.shape):
                # Deliberate: where a pad does not fit in the part kept, torch copies from memory it never wrote
                # (a size-1 slice broadcasts); convplan refuses it (docs/torch_rules.md).
                return None, f"{kind}: padding wraps past the kept part (convplan's choice)"
            try:
                x = torch_layer(kind, args, tuple(x.shape))(x)
            except Exception as exc:  # noqa: BLE001 - any raise is torch refusing
                return None, f"{kind}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if not isinstance(x, torch.Tensor):
                return None, f"{kind}: returns a {type(x).__name__}"
            if 0 in x.shape:
                return None, f"{kind}: empty output {list(x.shape)}"
    return tuple(x.shape), None


def _circular_fits(padding, nd, shape) -> bool:
    pads = padding if isinstance(padding, tuple) else (padding,) * (2 * nd)
    if len(pads) % 2 or len(pads) // 2 > len(shape):
        return True  # torch refuses it anyway
    for i in range(len(pads) // 2):
        lo, hi, x = pads[2 * i], pads[2 * i + 1], shape[-1 - i]
        kept = x + min(lo, 0) + min(hi, 0)
        if kept < 0 or lo > kept or hi > kept:
            return False
    return True


def torch_params(shape, layers) -> int:
    """The number of parameters of the layers torch builds for this input (every layer must run)."""
    x, total = example_input(shape, layers), 0
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        for kind, args in plain(layers):
            layer = torch_layer(kind, args, tuple(x.shape))
            total += sum(p.numel() for p in layer.parameters())
            x = layer(x)
    return total


# -- convplan --------------------------------------------------------------------------


def _values(v) -> tuple:
    return tuple(v) if isinstance(v, tuple) else (v,)


def convplan_parse(shape, layers):
    """The plan, or None if convplan refuses it (a PlanError; any other exception propagates)."""
    try:
        return convplan.parse(plan_text(shape, layers))
    except PlanError:
        return None


def check_concrete(shape, layers):
    """convplan accepts <=> torch accepts; both accept => same output shape and parameter count, nothing left
    to require."""
    layers = plain(layers)
    want, why = torch_run(shape, layers)
    plan = convplan_parse(shape, layers)
    text = plan_text(shape, layers)
    if plan is None:
        assert want is None, f"convplan refused what torch accepts ({want}):\n{text}{_errors(shape, layers)}"
        return None
    assert want is not None, f"convplan accepted what torch refuses ({why}):\n{text}"
    got = tuple(evaluate(d, {}) for d in plan.output_shape)
    assert got == want, f"convplan says {got}, torch gives {want}:\n{text}"
    assert not plan.requires, f"concrete plan left requirements {[str(r) for r in plan.requires]}:\n{text}"
    params = torch_params(shape, layers)
    assert evaluate(plan.total_params, {}) == params, f"convplan counts {plan.total_params}, torch {params}:\n{text}"
    return plan


def check_symbolic(shape, layers, keep=()):
    """The same with every input dim a symbol (but those at the indices in `keep`, written as numbers): the
    symbolic output evaluated at the sizes equals torch's, and the requirements hold at those sizes exactly
    when torch accepts."""
    names = tuple(shape[i] if i in keep else name for i, name in enumerate(SYMBOLS[: len(shape)]))
    sizes = {n: v for n, v in zip(names, shape, strict=True) if isinstance(n, str)}
    want, why = torch_run(shape, layers)
    text = plan_text(names, layers)
    plan = convplan_parse(names, layers)
    where = f"at {sizes}:\n{text}"
    if plan is None:
        errors = _errors(names, layers)
        if want is not None and SYMBOLIC_LIMIT in errors:
            return  # documented: a scale whose float64 rounding follows no floor(x*p/q) needs concrete sizes
        assert want is None, f"convplan refused for all sizes, torch accepts ({want}) {where}{errors}"
        return
    broken = []
    for r in plan.requires:  # in order, as Plan.satisfied: past a broken one a divisor may be 0
        verdict = evaluate(r.condition, sizes)
        assert isinstance(verdict, bool), f"requirement {r} is not decided {where}"
        if not verdict:
            broken.append(str(r))
            break
    if want is None:
        assert broken, f"every requirement holds but torch refuses ({why}) {where}"
        return
    assert not broken, f"torch accepts ({want}) but requirements {broken} fail {where}"
    got = tuple(evaluate(d, sizes) for d in plan.output_shape)
    assert got == want, f"convplan says {got}, torch gives {want} {where}"
    params = torch_params(shape, layers)
    assert evaluate(plan.total_params, sizes) == params, f"convplan counts {plan.total_params}, torch {params} {where}"


def check_both(shape, layers):
    check_concrete(shape, layers)
    check_symbolic(shape, layers)


def _errors(shape, layers) -> str:
    try:
        convplan.parse(plan_text(shape, layers))
    except PlanError as exc:
        return "\nconvplan said: " + "; ".join(d.message for d in exc.diagnostics)
    return ""


def symbolic_plan(shape, layers):
    """(plan, sizes) for a stack that torch runs, with every input dim a symbol and `sizes` its values at
    `shape`; None if torch refuses the stack or convplan refuses it symbolically (documented limits)."""
    layers = plain(layers)
    if torch_run(shape, layers)[0] is None:
        return None
    names = SYMBOLS[: len(shape)]
    plan = convplan_parse(names, layers)
    return None if plan is None else (plan, dict(zip(names, shape, strict=True)))
