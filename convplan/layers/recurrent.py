"""Recurrent layers: RNN, LSTM and GRU over a sequence, and their cells over one step.

torch's shapes: a batched input is [L, N, H_in] ([N, L, H_in] with batch_first), an unbatched one
[L, H_in]; the output holds every step's hidden state, D * H_out features (D = 2 if bidirectional,
H_out = proj_size if an LSTM projects, else hidden_size), and the final states h_n [D * num_layers, N,
H_out] (an LSTM's c_n: hidden_size features) come as torch returns them: `out, h = GRU(...)`,
`out, (h, c) = LSTM(...)`.  RNN and GRU take an initial state as a second tensor (`GRU(x, h0, 32)`), an
LSTM a pair (`LSTM(x, (h0, c0), 32)`), as torch's forward does; torch checks their shapes exactly.
"""

# ruff: noqa: B023

from __future__ import annotations

from functools import partial

import sympy

from .. import saves_sequence as ss
from ..shapes import at_least
from .spec import BATCH_FIRST, BOOL, FLOAT, STR, Arg, LayerSpec, RuleContext, prod, register, show

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def _several(*shapes):
    from ..ops import Several  # ops imports the registry's types

    return Several(shapes)


def _check(ctx: RuleContext, a, kind: str) -> None:
    ctx.positive([a["hidden_size"]], "hidden_size")
    if "num_layers" in a:
        ctx.positive([a["num_layers"]], "num_layers")
        p = a["dropout"]
        if not 0 <= p <= 1:
            ctx.fail(f"dropout should be a number in range [0, 1], got {p}", "dropout")
        if p > 0:
            ctx.warn(sympy.Eq(a["num_layers"], 1), "dropout acts between layers: with num_layers=1 it does nothing "
                     "(torch warns)", "dropout")
    if kind == "LSTM":
        proj = a["proj_size"]
        ctx.nonneg([proj], "proj_size")
        ctx.require(at_least(a["hidden_size"] - proj - 1, 0), lambda: f"proj_size ({show(proj)}) must be smaller "
                    f"than hidden_size ({show(a['hidden_size'])})", "proj_size")


def recurrent_rule(ctx: RuleContext, shape, a):
    kind = ctx.spec.name
    _check(ctx, a, kind)
    d = 2 if a["bidirectional"] else 1
    h = a["hidden_size"]
    h_out = a["proj_size"] if kind == "LSTM" and a["proj_size"] != 0 else h
    batched = len(shape) == 3
    n = (shape[0] if a["batch_first"] else shape[1]) if batched else None
    out = (*shape[:-1], d * h_out)
    state = (d * a["num_layers"], n, h_out) if batched else (d * a["num_layers"], h_out)
    cell = (*state[:-1], h)
    for name, want, have in zip(("h0", "c0"), (state, cell), ctx.inputs[1:], strict=False):  # as torch checks
        _state(ctx, name, want, have, f"for a {len(shape)}-D input")
    if kind == "LSTM":
        return _several(out, _several(state, cell))
    return _several(out, state)


def _state(ctx: RuleContext, name: str, want: tuple, have: tuple, why: str) -> None:
    if len(have) != len(want):
        ctx.fail(f"{name} must be {len(want)}-D {why}, got {len(have)}-D")
    for w, h in zip(want, have, strict=True):
        ctx.require(sympy.Eq(w, h), lambda: f"{name} must be {show(want)}, got {show(have)}")


def recurrent_count(a, kind: str):
    gate, h, d = GATES[kind] * a["hidden_size"], a["hidden_size"], 2 if a["bidirectional"] else 1
    proj = a.get("proj_size", 0)
    h_out = proj if proj else h
    total = 0
    for layer in range(int(a["num_layers"])):
        inputs = a["input_size"] if layer == 0 else d * h_out
        per = gate * inputs + gate * h_out + (2 * gate if a["bias"] else 0) + (proj * h if proj else 0)
        total += d * per
    return total


def _per_token(a, kind: str):
    """Multiply-accumulates with the weights per token: each layer and direction multiplies its input by
    W_ih (gates x input), its previous state by W_hh (gates x H_out) and, for a projecting LSTM, the new
    state by W_hr (proj_size x hidden_size); a layer past the first reads D * H_out features."""
    gate, h, d = GATES[kind] * a["hidden_size"], a["hidden_size"], 2 if a["bidirectional"] else 1
    proj = a.get("proj_size", 0)
    h_out = proj if proj else h
    return sum(d * (gate * (a["input_size"] if layer == 0 else d * h_out) + gate * h_out + h * proj)
               for layer in range(int(a["num_layers"])))


def recurrent_macs(shape, out, a, *h0, kind: str):
    """Every token (L x N, or L unbatched), in each layer and direction: W_ih times its input (gates x
    input_size; D x H_out features past the first layer), W_hh times the previous state (gates x H_out), and
    for a projecting LSTM W_hr times the new state (proj_size x hidden_size); gates: 1 (RNN), 3 (GRU) or 4
    (LSTM) x hidden_size.  Bias adds are not counted, as for Linear."""
    return prod(shape[:-1]) * _per_token(a, kind)


def cell_rule(ctx: RuleContext, shape, a):
    _check(ctx, a, "")
    h = a["hidden_size"]
    out = (*shape[:-1], h)
    for name, have in zip(("hx", "cx"), ctx.inputs[1:], strict=False):
        _state(ctx, name, out, have, f"for a {len(shape)}-D input")
    return _several(out, out) if ctx.spec.name == "LSTMCell" else out


def cell_count(a, kind: str):
    gate, h = GATES[kind] * a["hidden_size"], a["hidden_size"]
    return gate * a["input_size"] + gate * h + (2 * gate if a["bias"] else 0)


def cell_macs(shape, out, a, *hx, kind: str):
    """Each row (N, or 1 unbatched): W_ih times the input and W_hh times the state, gates x (input + hidden)."""
    return prod(shape[:-1]) * GATES[kind] * a["hidden_size"] * (a["input_size"] + a["hidden_size"])


def register_recurrent() -> None:
    nonlinearity = (Arg("nonlinearity", "tanh", STR, ("tanh", "relu")),)
    for kind in ("RNN", "LSTM", "GRU"):
        args = (Arg("hidden_size"), Arg("num_layers", 1), *(nonlinearity if kind == "RNN" else ()),
                Arg("bias", True, BOOL), Arg("batch_first", False, BOOL), Arg("dropout", 0.0, FLOAT),
                Arg("bidirectional", False, BOOL), *((Arg("proj_size", 0),) if kind == "LSTM" else ()))
        register(LayerSpec(
            name=kind, args=args, rule=recurrent_rule, count=lambda a, k=kind: recurrent_count(a, k),
            macs=partial(recurrent_macs, kind=kind),
            inferred="input_size", infer=lambda shape, a: shape[-1], ranks=(2, 3), short=kind.lower(),
            tensors=("input", "hx") if kind != "LSTM" else ("input", "h0", "c0"),
            optional_tensors=1 if kind != "LSTM" else 2, state_pair=kind == "LSTM",
            saves=ss.recurrent(kind), layout=BATCH_FIRST,
        ))
    for kind in ("RNN", "LSTM", "GRU"):
        name = f"{kind}Cell"
        args = (Arg("hidden_size"), Arg("bias", True, BOOL), *(nonlinearity if kind == "RNN" else ()))
        register(LayerSpec(
            name=name, args=args, rule=cell_rule, count=lambda a, k=kind: cell_count(a, k),
            macs=partial(cell_macs, kind=kind),
            inferred="input_size", infer=lambda shape, a: shape[-1], ranks=(1, 2), short=name.lower(),
            tensors=("input", "hx") if kind != "LSTM" else ("input", "hx", "cx"),
            optional_tensors=1 if kind != "LSTM" else 2, state_pair=kind == "LSTM",
            saves=ss.cell(kind),
        ))
