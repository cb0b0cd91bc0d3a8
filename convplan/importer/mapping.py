"""Torch -> plan vocabulary: a module of a registered layer kind to its kind and arguments (read from the
module's attributes, by the registry's argument list), a functional call (`F.relu`, `torch.flatten(x, 1)`,
`x + y`, `torch.cat`) to a layer kind or a merge.  Nothing here knows one kind from another beyond the
registry's `Arg`s and the table of functions below."""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import BOOL, DIMS, OPT_SIZE, PAD, PADS, REGISTRY, REQUIRED, SCALE, SIZE, LayerSpec


class Unmapped(Exception):
    """This node cannot be written in a plan; the message says why."""


# -- modules ------------------------------------------------------------------------------


def layer_spec(module: nn.Module) -> LayerSpec | None:
    """The registry's spec when `module` is exactly that torch.nn class (a subclass may change forward)."""
    spec = REGISTRY.get(type(module).__name__)
    return spec if spec is not None and getattr(nn, spec.name, None) is type(module) else None


def module_args(module: nn.Module, spec: LayerSpec) -> dict:
    """Every argument of the spec, read from the module's attributes and normalised as a plan writes it
    (a tuple of equal sizes as one int, a bias tensor as True).  An attribute torch does not keep (PReLU's
    `init` only fills the weight, which the state dict carries) takes the registry's default; a kind that
    keeps its arguments in its submodules (the Transformer layers) is read by its entry in READERS."""
    reader = READERS.get(spec.name)
    attrs = reader.args(module) if reader is not None else {}
    args = {}
    for a in spec.args:
        value = attrs[a.name] if a.name in attrs else getattr(module, a.name, a.default)
        if a.kind == BOOL and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None  # `bias`: the parameter or None
        args[a.name] = normalise(value, a.kind)
    if "kernel_size" in args and "stride" in args and _default(spec, "stride") is None \
            and args["stride"] == args["kernel_size"]:
        args["stride"] = None  # pools keep stride=kernel_size for torch's default None
    return args


def inferred_value(module: nn.Module, spec: LayerSpec, name: str | None = None):
    """The module's value of an argument a plan reads from the input (in_channels, ...; `name`: one of
    `infer_more`, Bilinear's in2_features), or None."""
    name = name or spec.inferred
    if name is None:
        return None
    reader = READERS.get(spec.name)
    value = reader.inferred(module)[name] if reader is not None else getattr(module, name, None)
    return normalise(value, DIMS if name == "normalized_shape" else SIZE)


def check_inferred(module: nn.Module, spec: LayerSpec, args: dict, shapes: list, target: str) -> None:
    """The arguments a plan reads from the inputs (`shapes`, torch's order) must be the module's: else the
    weights do not fit.  LayerNorm's normalized_shape is written unless it is the input's last dim."""
    if spec.inferred is None:
        return
    if spec.inferred in args:
        if args[spec.inferred] is not None and _tuple(args[spec.inferred]) == (shapes[0][-1],):
            args[spec.inferred] = None
        return
    found = {spec.inferred: spec.infer(shapes[0], args)}
    if spec.infer_others is not None:  # Bilinear's in2_features: read off its second input
        found.update(spec.infer_others(tuple(shapes[1:]), args))
    for name, value in found.items():
        expected = inferred_value(module, spec, name)
        if _tuple(value) != _tuple(expected):
            shown = ", ".join(str(list(s)) for s in shapes)
            raise Unmapped(f"self.{target} has {name}={expected}, but its input ({shown}) gives {value}")


def _tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


# -- kinds whose arguments live in their submodules ----------------------------------------


@dataclass(frozen=True)
class Reader:
    """How to read a kind whose module keeps no attribute per argument: `args` (module -> the arguments it
    can read), `inferred` (module -> the values a plan reads from the input).  check_rebuilt makes the
    module again from what was read and compares every submodule, so a module changed after construction
    (a norm's eps set by hand) is refused instead of imported with other numbers."""

    args: Callable
    inferred: Callable


def _activation(module: nn.Module) -> str:
    act = module.activation
    for name, fn in (("relu", F.relu), ("gelu", F.gelu)):
        if act is fn:
            return name
    raise Unmapped(f"its activation is {getattr(act, '__name__', type(act).__name__)}: a plan's "
                   f"{type(module).__name__} takes activation='relu' or 'gelu' (torch's strings)")


def _transformer_args(module: nn.Module) -> dict:
    attn = module.self_attn
    return {"nhead": attn.num_heads, "dim_feedforward": module.linear1.out_features,
            "dropout": float(module.dropout.p), "activation": _activation(module),
            "layer_norm_eps": float(module.norm1.eps), "batch_first": bool(attn.batch_first),
            "norm_first": bool(module.norm_first), "bias": module.linear1.bias is not None}


def _first_layer(stack: nn.Module, layer: str, where: str = "") -> nn.Module:
    """A stack's first layer, the one its arguments are read from (check_rebuilt compares the others with it):
    it must be exactly torch's layer class, which a plan's stack makes."""
    layers = getattr(stack, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise Unmapped(f"{where}has no layers: a plan's {type(stack).__name__} needs num_layers >= 1")
    first = layers[0]
    if type(first) is not getattr(nn, layer):
        raise Unmapped(f"{where}layers[0] is a {type(first).__name__}: a plan's {type(stack).__name__} repeats "
                       f"torch's {layer}")
    return first


def _final_norm(stack: nn.Module, where: str = "") -> bool:
    """`norm=True`: the stack's final norm, which a plan makes as nn.Transformer does (a LayerNorm of d_model with
    the layers' eps and bias; check_rebuilt compares its arguments)."""
    norm = stack.norm
    if norm is not None and type(norm) is not nn.LayerNorm:
        raise Unmapped(f"{where}norm is a {type(norm).__name__}: a plan's {type(stack).__name__} takes norm=True, "
                       "a LayerNorm(d_model, eps=layer_norm_eps, bias=bias) as nn.Transformer makes it")
    return norm is not None


def _stack_args(layer: str, own: tuple[str, ...]):
    def read(stack: nn.Module) -> dict:
        return {**_transformer_args(_first_layer(stack, layer)), "num_layers": len(stack.layers),
                "norm": _final_norm(stack), **{k: bool(getattr(stack, k)) for k in own}}

    return read


def _transformer_model_args(model: nn.Module) -> dict:
    """nn.Transformer: its encoder's and decoder's layers and counts.  Both stacks must be the ones it makes
    (custom_encoder / custom_decoder is something else); check_rebuilt compares the rest."""
    for part, kind in (("encoder", "TransformerEncoder"), ("decoder", "TransformerDecoder")):
        if type(getattr(model, part, None)) is not getattr(nn, kind):
            raise Unmapped(f"its {part} is a {type(getattr(model, part, None)).__name__} (custom_{part}): a plan's "
                           f"Transformer makes torch's {kind}")
    enc, dec = model.encoder, model.decoder
    args = _transformer_args(_first_layer(enc, "TransformerEncoderLayer", "its encoder "))
    _first_layer(dec, "TransformerDecoderLayer", "its decoder ")
    for part in (enc, dec):
        _final_norm(part, f"its {'encoder' if part is enc else 'decoder'} ")
    return {**args, "num_encoder_layers": len(enc.layers), "num_decoder_layers": len(dec.layers)}


def _stack_d_model(layer: str):
    return lambda stack: {"d_model": _first_layer(stack, layer).self_attn.embed_dim}


READERS = {name: Reader(_transformer_args, lambda m: {"d_model": m.self_attn.embed_dim})
           for name in ("TransformerEncoderLayer", "TransformerDecoderLayer")}
READERS |= {
    "TransformerEncoder": Reader(_stack_args("TransformerEncoderLayer", ("enable_nested_tensor", "mask_check")),
                                 _stack_d_model("TransformerEncoderLayer")),
    "TransformerDecoder": Reader(_stack_args("TransformerDecoderLayer", ()), _stack_d_model("TransformerDecoderLayer")),
    "Transformer": Reader(_transformer_model_args, lambda m: _stack_d_model("TransformerEncoderLayer")(m.encoder)),
}


def made(spec: LayerSpec, args: dict, inferred: dict) -> nn.Module:
    """The module torch makes of a plan's arguments (`args`, every one) and the values read from the input:
    as build() makes it, through the spec's `compose` where torch builds it from other modules (the stacks)."""
    values = {k: v for k, v in {**inferred, **args}.items() if k not in spec.forward_args}
    with warnings.catch_warnings():  # torch's warnings on the stacks' nested-tensor path were the user's already
        warnings.simplefilter("ignore")
        if spec.compose is not None:
            return spec.compose(lambda kind, pos, kw: getattr(nn, kind)(*pos, **kw), values.__getitem__, values,
                                set(values))
        return getattr(nn, spec.name)(**values)


def check_rebuilt(module: nn.Module, spec: LayerSpec, args: dict) -> None:
    """The module torch makes from `args` (and the inferred values) must be `module`, submodule by submodule
    (class, public attributes, parameter shapes): else the plan would build another module.  A stack's layers
    must be alike, for a plan repeats one."""
    if spec.name not in READERS:
        return
    inferred = {n: inferred_value(module, spec, n) for n in (spec.inferred, *spec.infer_more)}
    again = made(spec, args, inferred)
    mine, theirs = _tree(module), _tree(again)
    for q in sorted(set(mine) | set(theirs), key=_natural):
        a, b = mine.get(q), theirs.get(q)
        if a is None or b is None:
            raise Unmapped(f"is not the {spec.name} its arguments make: {q} is "
                           f"{'missing' if a is None else 'a submodule torch does not make'}")
        for key in sorted(set(a) | set(b), key=lambda k: (k.endswith(".shape"), k)):  # the argument, then a shape
            if a.get(key, "nothing") != b.get(key, "nothing"):
                raise Unmapped(f"is not the {spec.name} its arguments make: its {q}.{key} is {a.get(key, 'nothing')} "
                               f"where torch makes {b.get(key, 'nothing')}{_why_alike(q)}")


def _natural(q: str) -> tuple:
    """layers.2 before layers.10: the first layer that differs is named first."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in q.split("."))


def _why_alike(q: str) -> str:
    parts = q.split(".")
    if "layers" in parts and parts[parts.index("layers") + 1:][:1] != ["0"]:
        return " (its layers differ: a plan's stack repeats one layer, read from layers[0])"
    if "norm" in parts:
        return " (a plan's norm=True is LayerNorm(d_model, eps=layer_norm_eps, bias=bias), as nn.Transformer makes it)"
    if parts[0] in ("encoder", "decoder"):
        return f" (a plan's Transformer makes its {parts[0]} as nn.Transformer does, not a custom_{parts[0]})"
    return ""


def _tree(module: nn.Module) -> dict:
    """qualified name -> {the class, each public attribute, each parameter's and buffer's shape} per submodule."""
    out = {}
    for q, m in module.named_modules():
        fields = {"class": type(m).__name__}
        fields |= {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"
                   and not isinstance(v, torch.Tensor)}
        fields |= {f"{k}.shape": tuple(v.shape) for k, v in [*m.named_parameters(recurse=False),
                                                              *m.named_buffers(recurse=False)]}
        out[q or "self"] = fields
    return out


def _default(spec: LayerSpec, name: str):
    return next(a.default for a in spec.args if a.name == name)


def normalise(value, kind: str):
    """A value as a plan writes it: lists as tuples, a tuple of one repeated size as that size, floats for
    a SCALE."""
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple) and kind in (SIZE, PAD, PADS, OPT_SIZE) and value and \
            all(v == value[0] and type(v) is type(value[0]) for v in value) and value[0] is not None:
        value = value[0]
    if kind == SCALE and isinstance(value, (int, tuple)) and not isinstance(value, bool):
        value = tuple(float(v) for v in value) if isinstance(value, tuple) else float(value)
    if isinstance(value, torch.Size):
        value = tuple(value)
    return value


def written(spec: LayerSpec, args: dict) -> dict:
    """The arguments that differ from torch's defaults: what a plan writes."""
    defaults = {a.name: a.default for a in spec.args}
    return {k: v for k, v in args.items() if defaults.get(k, REQUIRED) is REQUIRED or not same(v, defaults[k])}


def same(a, b) -> bool:
    """Equal values of the same type (True is not 1, 1 is not 1.0 for a plan's text; 1.0 == 1.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# -- functional calls ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fn:
    """A function (or tensor method) that is a layer kind or a merge: its parameters after the tensor, with
    their defaults, and those that must keep a value (`training=False`: eval-mode dropout)."""

    kind: str
    params: tuple[tuple[str, object], ...] = ()
    fixed: dict = field(default_factory=dict)
    merge: bool = False


_INPLACE = (("inplace", False),)
FUNCTIONS: dict = {}


def _fn(targets, kind, params=(), fixed=None, merge=False) -> None:
    for t in targets:
        FUNCTIONS[t] = Fn(kind, tuple(params), fixed or {}, merge)


_fn([F.relu, "relu"], "ReLU", _INPLACE)
_fn([torch.relu, "relu_"], "ReLU")
_fn([F.relu6], "ReLU6", _INPLACE)
_fn([F.silu], "SiLU", _INPLACE)
_fn([F.mish], "Mish", _INPLACE)
_fn([F.hardswish], "Hardswish", _INPLACE)
_fn([F.hardsigmoid], "Hardsigmoid", _INPLACE)
_fn([F.leaky_relu], "LeakyReLU", (("negative_slope", 0.01), *_INPLACE))
_fn([F.elu], "ELU", (("alpha", 1.0), *_INPLACE))
_fn([F.gelu], "GELU", (("approximate", "none"),))
_fn([torch.sigmoid, F.sigmoid, "sigmoid"], "Sigmoid")
_fn([torch.tanh, F.tanh, "tanh"], "Tanh")
for _name, _f in (("Softmax", F.softmax), ("LogSoftmax", F.log_softmax)):
    _fn([_f], _name, (("dim", None), ("_stacklevel", 3), ("dtype", None)), fixed={"dtype": None})
_fn([torch.softmax, "softmax"], "Softmax", (("dim", None), ("dtype", None)), fixed={"dtype": None})
_fn([torch.flatten, "flatten"], "Flatten", (("start_dim", 0), ("end_dim", -1)))
_fn([F.dropout], "Dropout", (("p", 0.5), ("training", True), ("inplace", False)), fixed={"training": False})
_fn([F.interpolate], "Upsample", (("size", None), ("scale_factor", None), ("mode", "nearest"),
                                  ("align_corners", None), ("recompute_scale_factor", None), ("antialias", False)),
    fixed={"antialias": False})
for _nd in (1, 2, 3):
    _fn([getattr(F, f"adaptive_avg_pool{_nd}d")], f"AdaptiveAvgPool{_nd}d", (("output_size", REQUIRED),))
    _fn([getattr(F, f"adaptive_max_pool{_nd}d")], f"AdaptiveMaxPool{_nd}d",
        (("output_size", REQUIRED), ("return_indices", False)), fixed={"return_indices": False})
    _fn([getattr(F, f"max_pool{_nd}d")], f"MaxPool{_nd}d",
        (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False),
         ("return_indices", False)), fixed={"return_indices": False})
    avg = (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("ceil_mode", False),
           ("count_include_pad", True))
    _fn([getattr(F, f"avg_pool{_nd}d")], f"AvgPool{_nd}d", avg + ((("divisor_override", None),) if _nd > 1 else ()))
_fn([operator.add, operator.iadd, torch.add, "add", "add_"], "add", (("alpha", 1),), fixed={"alpha": 1},
    merge=True)
_fn([operator.mul, operator.imul, torch.mul, "mul", "mul_"], "mul", merge=True)
_fn([torch.cat, torch.concat, torch.concatenate], "cat", (("dim", 0),), merge=True)

# Calls that change nothing a plan describes: their output is their input
ALIASES = frozenset({"contiguous"})
RESHAPES = frozenset({"view", "reshape"})
BROADCASTS = frozenset({"expand_as", "expand"})  # before a mul, which broadcasts anyway


def bind(fn: Fn, args: tuple, kwargs: dict) -> dict:
    """The call's parameters after the tensor(s), by name, defaults filled in."""
    names = [p for p, _ in fn.params]
    if len(args) > len(names):
        raise Unmapped(f"takes at most {len(names)} argument(s) after the tensor, got {len(args)}")
    bound = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise Unmapped(f"its argument {key}= has no counterpart in the plan's {fn.kind}")
        if key in bound:
            raise Unmapped(f"{key} is given twice")
        bound[key] = value
    for name, default in fn.params:
        if name not in bound:
            if default is REQUIRED:
                raise Unmapped(f"{name} is missing")
            bound[name] = default
    for name, value in fn.fixed.items():
        if not same(bound[name], value) and bound[name] != value:
            raise Unmapped(f"{name}={bound[name]!r} has no counterpart in a plan (it needs {name}={value!r})")
    return bound


def function_args(fn: Fn, bound: dict) -> dict:
    """A layer kind's full arguments from a bound functional call (the function's extra parameters, such as
    `training` or `dtype`, were checked by `bind`)."""
    spec = REGISTRY[fn.kind]
    out = {a.name: normalise(bound.get(a.name, a.default), a.kind) for a in spec.args}
    if "inplace" in out and not isinstance(out["inplace"], bool):
        out["inplace"] = bool(out["inplace"])
    if "stride" in out and out.get("stride") is not None and "kernel_size" in out and \
            out["stride"] == out["kernel_size"]:
        out["stride"] = None
    for a in spec.args:
        if out[a.name] is REQUIRED:
            raise Unmapped(f"{a.name} is missing")
    return out


def reshape_kind(in_shape: tuple, out_shape: tuple, args: tuple) -> tuple[str, dict]:
    """`x.view(x.size(0), -1)`, `x.reshape(b, c, 1, 1)`: a reshape that keeps the batch (written as a size read
    from a tensor, or -1) as Flatten() or Unflatten(1, ...)."""
    batch = args[0] if args else None
    if isinstance(batch, int) and batch != -1:
        raise Unmapped(f"the batch dim is written as the constant {batch}: a plan keeps the batch symbolic")
    if len(in_shape) < 2 or len(out_shape) < 2 or in_shape[0] != out_shape[0]:
        raise Unmapped(f"a reshape from {list(in_shape)} to {list(out_shape)} that does not keep the batch dim")
    if tuple(out_shape) == (in_shape[0], math.prod(in_shape[1:])):
        return "Flatten", {"start_dim": 1, "end_dim": -1}
    if len(in_shape) == 2:
        return "Unflatten", {"dim": 1, "unflattened_size": tuple(out_shape[1:])}
    raise Unmapped(f"a reshape from {list(in_shape)} to {list(out_shape)} is neither Flatten nor Unflatten")
