"""Element-wise layers: activations, dropouts, softmaxes."""

# ruff: noqa: B023

from __future__ import annotations

from collections.abc import Callable

import sympy

from .. import saves as sv
from ..shapes import divides, floordiv, to_expr
from ..strides import iterated, noise_iterated
from .spec import (
    BOOL,
    CONTIGUOUS,
    FLOAT,
    INPLACE,
    LIKE_INPUT,
    OPT_INT,
    POINTWISE,
    STR,
    Arg,
    LayerSpec,
    RuleContext,
    dim_index,
    float_check,
    member_of,
    register,
    same_shape,
    show,
)


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
        dim_index(ctx, shape, a["dim"], "dim")
    return tuple(shape)


def dropout_strides(a, shape: tuple, before: tuple) -> tuple:
    """An elementwise dropout's output strides in training (measured on torch 2.13's CPU, tests/test_layouts.py):
    the input itself at p = 0, its strides at p = 1 (a product with a 0-dim zero), and between them TensorIterator's
    over the input and a noise tensor laid out like it (strides.iterated), which differ at dims of size 1."""
    return tuple(before) if a["p"] in (0, 1) else iterated(shape, before)


def feature_dropout_strides(unbatched: Callable[[int], bool]) -> Callable:
    """A feature dropout's output strides in training: as `dropout_strides`, but its noise holds one value a channel,
    broadcast over the rest (strides.noise_iterated).  `unbatched(rank)`: whether torch's functional adds a batch of
    1 first (unsqueeze(0), then squeeze(0) of the output: F.dropout1d on 2-D, F.dropout3d but on 5-D)."""

    def strides(a, shape: tuple, before: tuple) -> tuple | None:
        if a["p"] in (0, 1):
            return tuple(before)
        if unbatched(len(shape)):
            out = noise_iterated((sympy.Integer(1), *shape), (shape[0] * before[0], *before))
            return None if out is None else out[1:]
        return noise_iterated(shape, before) if len(shape) >= 2 else tuple(before)  # (1-D: torch refuses to train)

    return strides


_UNBATCHED = {1: lambda rank: rank == 2, 2: lambda rank: False, 3: lambda rank: rank != 5}


def dropout_family(nd: int) -> None:
    args = (Arg("p", 0.5, FLOAT), Arg("inplace", False, BOOL))
    # Dropout2d/3d only warn about other ranks
    member_of("Dropout", nd, args=args, rule=dropout_rule, ranks=(nd + 1, nd + 2) if nd == 1 else None, short="dropout",
            aliases_input=True, layout=LIKE_INPUT, window=POINTWISE, saves=sv.dropout(nd),
            trained_strides=feature_dropout_strides(_UNBATCHED[nd]))


# What each saves for backward (saves.py): its output or its input; in place, its output or a copy of its input
_ACTIVATION_SAVES = {name: sv.activation(sv.OUTPUT if name in ("ReLU", "Sigmoid", "Tanh") else sv.INPUT,
                                         name in ("ReLU", "LeakyReLU", "ELU")) for name in (
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh")}


def activation_rule(ctx: RuleContext, shape, a):
    """Element-wise activations whose float arguments torch limits."""
    name = ctx.spec.name
    if name == "Hardtanh":
        float_check(ctx, a["max_val"] > a["min_val"],
                     f"max_val ({a['max_val']}) must be greater than min_val ({a['min_val']})", "max_val")
    elif name == "Softshrink":
        float_check(ctx, a["lambd"] >= 0, f"lambd must not be negative, got {a['lambd']}", "lambd")
    elif name == "RReLU":
        float_check(ctx, a["lower"] <= a["upper"],
                     f"lower ({a['lower']}) must be at most upper ({a['upper']})", "lower")
    elif name == "CELU":
        float_check(ctx, a["alpha"] != 0, "alpha must not be 0 (CELU divides by it)", "alpha")
    return tuple(shape)


def prelu_rule(ctx: RuleContext, shape, a):
    """One slope, or one per channel: torch's channel dim is 1 (0-D and 1-D inputs have one channel)."""
    n = to_expr(a["num_parameters"])
    c = shape[1] if len(shape) >= 2 else sympy.Integer(1)
    ctx.require(sympy.Or(sympy.Eq(n, 1), sympy.Eq(n, c)),
                lambda: f"num_parameters ({show(n)}) must be 1 or the channels ({show(c)})", "num_parameters")
    return tuple(shape)


def glu_rule(ctx: RuleContext, shape, a):
    i = dim_index(ctx, shape, a["dim"], "dim")
    x = shape[i]
    ctx.require(divides(x, 2), lambda: f"GLU halves dim {i}, whose size ({show(x)}) must be even", "dim")
    return (*shape[:i], floordiv(x, 2), *shape[i + 1 :])


def feature_alpha_dropout_rule(ctx: RuleContext, shape, a):
    dropout_rule(ctx, shape, a)
    if len(shape) < 2:
        ctx.warn(sympy.true, "FeatureAlphaDropout refuses a 1-D input in training")
    return tuple(shape)


_MORE_ACTIVATION_SAVES = {  # measured with saved_tensors_hooks (tests/test_memory.py)
    "CELU": sv.activation(sv.INPUT, True),  # ELU's kernel: in place it keeps its output
    "SELU": sv.activation(sv.INPUT, True),
    "Hardtanh": sv.activation(sv.INPUT, False),  # as ReLU6: in place it keeps a copy of its input
    "Softplus": sv.SAVES_INPUT,
    "Hardshrink": sv.SAVES_INPUT,
    "Softshrink": sv.SAVES_INPUT,
    "LogSigmoid": sv.input_and_new,  # and its buffer
    "Softsign": sv.input_and_new,  # x / (1 + |x|): the division keeps the new denominator
    "Tanhshrink": sv.new_like_input,  # x - tanh(x): tanh keeps its own output
    "RReLU": sv.rrelu,  # training: the random slopes too
    "Threshold": sv.activation(sv.INPUT, False),
}


def more_activations() -> None:
    for name, args in {
        "CELU": (Arg("alpha", 1.0, FLOAT),) + INPLACE,
        "SELU": INPLACE,
        "Hardtanh": (Arg("min_val", -1.0, FLOAT), Arg("max_val", 1.0, FLOAT)) + INPLACE,
        "RReLU": (Arg("lower", 1 / 8, FLOAT), Arg("upper", 1 / 3, FLOAT)) + INPLACE,  # eval: (lower + upper)/2
        "Softplus": (Arg("beta", 1.0, FLOAT), Arg("threshold", 20.0, FLOAT)),
        "Threshold": (Arg("threshold", kind=FLOAT), Arg("value", kind=FLOAT)) + INPLACE,
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
                       layout=CONTIGUOUS, saves=sv.SAVES_OUTPUT))  # softmax of -x saves its output
    register(LayerSpec(name="Softmax2d", args=(), rule=same_shape, ranks=(3, 4), short="softmax2d", layout=CONTIGUOUS,
                       window=POINTWISE, saves=sv.SAVES_OUTPUT))  # over the channels at each position
    for name in ("AlphaDropout", "FeatureAlphaDropout"):
        register(LayerSpec(name=name, args=(Arg("p", 0.5, FLOAT),) + INPLACE, short=name.lower(),
                           rule=dropout_rule if name == "AlphaDropout" else feature_alpha_dropout_rule,
                           aliases_input=True, layout=LIKE_INPUT, window=POINTWISE,
                           saves=sv.dropout(0) if name == "AlphaDropout" else sv.feature_alpha_dropout,  # noise
                           trained_strides=dropout_strides if name == "AlphaDropout" else
                           feature_dropout_strides(_UNBATCHED[2])))


def register_activations() -> None:
    """The activations torch.nn has had longest, Dropout, Softmax and LogSoftmax."""
    _ACTIVATION_SAVES["Identity"] = sv.VIEW

    for name, args in {
        "ReLU": INPLACE,
        "ReLU6": INPLACE,
        "LeakyReLU": (Arg("negative_slope", 0.01, FLOAT),) + INPLACE,
        "ELU": (Arg("alpha", 1.0, FLOAT),) + INPLACE,
        "GELU": (Arg("approximate", "none", STR, ("none", "tanh")),),
        "SiLU": INPLACE,
        "Mish": INPLACE,
        "Hardswish": INPLACE,
        "Hardsigmoid": INPLACE,
        "Sigmoid": (),
        "Tanh": (),
        "Identity": (),
    }.items():
        register(LayerSpec(name=name, args=args, rule=same_shape, short=name.lower(), aliases_input=name == "Identity",
                           layout=LIKE_INPUT, like_input_exactly=name == "ReLU6", window=POINTWISE,
                           saves=_ACTIVATION_SAVES[name]))

    register(LayerSpec(name="Dropout", args=(Arg("p", 0.5, FLOAT),) + INPLACE, rule=dropout_rule, short="dropout",
                       aliases_input=True, layout=LIKE_INPUT, window=POINTWISE, saves=sv.dropout(0),
                       trained_strides=dropout_strides))

    for name in ("Softmax", "LogSoftmax"):
        register(LayerSpec(name=name, args=(Arg("dim", None, OPT_INT),), rule=softmax_rule, short=name.lower(),
                           layout=CONTIGUOUS, saves=sv.SAVES_OUTPUT))

