"""Layers over several tensors or with several outputs: Bilinear, MultiheadAttention, the Transformer
encoder and decoder layers, their stacks (TransformerEncoder, TransformerDecoder) and nn.Transformer.

Each takes torch's tensors in torch's order (LayerSpec.tensors; the chain's value is the first) and
reads their feature sizes off them (`inferred`, `infer_more`), so a plan writes only what it chooses:
`MultiheadAttention(key, value, 8)`, `TransformerDecoderLayer(memory, 8)`.  MultiheadAttention returns
torch's (attn_output, attn_weights), named `out, weights = MultiheadAttention(...)`.

torch builds a stack from a layer module, `nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model, nhead,
...), num_layers, norm)`; a plan writes the layer's arguments, num_layers and `norm=True` (a final
LayerNorm(d_model, eps=layer_norm_eps, bias=bias), as nn.Transformer makes it) in one call,
`TransformerEncoder(8, 6, dim_feedforward=1024, norm=True)`, and `compose` makes torch's modules of them.
"""

# ruff: noqa: B023

from __future__ import annotations

import sympy

from .. import saves_sequence as ss
from ..shapes import divides, even
from .spec import (
    BATCH_FIRST_IN_TRAINING,
    BOOL,
    CONTIGUOUS,
    FLOAT,
    STR,
    Arg,
    LayerSpec,
    RuleContext,
    prod,
    register,
    show,
)


def _same(ctx: RuleContext, a, b, message, arg=None) -> None:
    ctx.require(sympy.Eq(a, b), lambda: message(show(a), show(b)), arg)


def _heads(ctx: RuleContext, e, h, what: str) -> None:
    arg = "num_heads" if what == "embed_dim" else "nhead"
    ctx.positive([h], arg)
    cond = divides(e, h)
    message = lambda: f"{what} ({show(e)}) must be divisible by {arg} ({show(h)}): each head takes {what} // heads " \
        "features"  # noqa: E731
    if cond is sympy.false and isinstance(e, (int, sympy.Integer)):  # the nearest count of heads that divides
        best = min((k for k in range(1, int(e) + 1) if int(e) % k == 0), key=lambda k: (abs(k - int(h)), -k))
        ctx.fail(message(), arg, hint=f"{arg}={best} divides {show(e)}", value=str(best))
    ctx.require(cond, message, arg)


# -- Bilinear ----------------------------------------------------------------------------------


def bilinear_rule(ctx: RuleContext, shape, a):
    other = ctx.inputs[1]
    ctx.positive([a["out_features"]], "out_features")
    if len(other) != len(shape):
        ctx.fail(f"both inputs need the same rank, got {len(shape)}-D and {len(other)}-D")
    for i, (x, y) in enumerate(zip(shape[:-1], other[:-1], strict=True)):
        _same(ctx, x, y, lambda p, q: f"the inputs' leading dims must agree: dim {i} is {p} and {q}")
    return (*shape[:-1], a["out_features"])


def bilinear_count(a):
    return a["in1_features"] * a["in2_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0)


def bilinear_macs(shape, out, a, other):
    """Each output element is x1^T W x2: in1_features x in2_features products, for every row."""
    return prod(shape[:-1]) * a["in1_features"] * a["in2_features"] * a["out_features"]


# -- MultiheadAttention ---------------------------------------------------------------------------


def _sequence(ctx: RuleContext, shape, batch_first: bool, name: str):
    """(batch or None for an unbatched input, length) of a [L, N, E] / [N, L, E] / [L, E] tensor."""
    if len(shape) == 2:
        return None, shape[0]
    if len(shape) != 3:
        ctx.fail(f"{name} must be 2-D (unbatched) or 3-D (batched), got {len(shape)}-D")
    return (shape[0], shape[1]) if batch_first else (shape[1], shape[0])


def fast_path(a, batched: bool, heads):
    """The test torch's inference fast path makes of a Transformer layer's or MultiheadAttention's arguments
    (self-attention aside): True, False or a condition (`heads` may be a formula)."""
    return batched and a["batch_first"] and a["bias"] and even(heads)


def mha_fast_path(a, shape, inputs: tuple):
    """MultiheadAttention's fast path (LayerSpec.fast_path): self-attention (query, key and value one tensor),
    batched (a 3-D output), neither add_bias_kv nor add_zero_attn, and fast_path's test."""
    return len(set(inputs)) == 1 and not a["add_bias_kv"] and not a["add_zero_attn"] \
        and fast_path(a, len(shape) == 3, a["num_heads"])


def mha_rule(ctx: RuleContext, shape, a):
    query, key, value = ctx.inputs
    e, h = a["embed_dim"], a["num_heads"]
    _heads(ctx, e, h, "embed_dim")
    if a["dropout"] > 1:  # built, and run in eval; F.dropout refuses it in training (a negative one is never run)
        ctx.warn(sympy.true, f"dropout probability has to be between 0 and 1, got {a['dropout']}: torch refuses it "
                 "in training", "dropout")
    if not len(query) == len(key) == len(value):
        ctx.fail(f"query, key and value must have one rank, got {len(query)}-D, {len(key)}-D and {len(value)}-D")
    bf = a["batch_first"]
    (n, lq), (nk, s), (nv, sv) = (_sequence(ctx, t, bf, w) for t, w in ((query, "query"), (key, "key"),
                                                                         (value, "value")))
    if n is not None:
        _same(ctx, n, nk, lambda p, q: f"query and key must have one batch size, got {p} and {q}")
        _same(ctx, n, nv, lambda p, q: f"query and value must have one batch size, got {p} and {q}")
    _same(ctx, s, sv, lambda p, q: f"key and value must have one length, got {p} and {q}")
    s = s + (1 if a["add_bias_kv"] else 0) + (1 if a["add_zero_attn"] else 0)
    out = tuple(query)
    weights = (lq, s) if n is None else (n, lq, s)
    from ..ops import Several  # ops imports the registry's types

    return Several((out, weights))


def mha_others(shapes, a):
    return {"kdim": shapes[0][-1], "vdim": shapes[1][-1]}


def mha_count(a):
    e, bias = a["embed_dim"], a["bias"]
    return e * (e + a["kdim"] + a["vdim"]) + (3 * e if bias else 0) + e * e + (e if bias else 0) \
        + (2 * e if a["add_bias_kv"] else 0)


def _attention_macs(n, lq, s, e, kdim, vdim):
    """Projections of query, key and value, the two products of attention (q k^T and weights v, summed over
    the heads: e in all), the output projection."""
    return n * (lq * e * e + s * kdim * e + s * vdim * e + 2 * lq * s * e + lq * e * e)


def mha_macs(query, out, a, key, value):
    """Projections of query, key and value, the two products of attention (q k^T, then the weights times v,
    over all heads: embed_dim in all), the output projection.  add_bias_kv and add_zero_attn attend to a
    position more each."""
    e, bf = a["embed_dim"], a["batch_first"]
    n = 1 if len(query) == 2 else query[0] if bf else query[1]
    lq = query[0] if len(query) == 2 or not bf else query[1]
    s = key[0] if len(key) == 2 or not bf else key[1]
    attended = s + (1 if a["add_bias_kv"] else 0) + (1 if a["add_zero_attn"] else 0)
    return n * (2 * lq * e * e + s * (a["kdim"] + a["vdim"]) * e + 2 * lq * attended * e)


# -- Transformer layers ----------------------------------------------------------------------------


def _transformer_args():
    return (Arg("nhead"), Arg("dim_feedforward", 2048), Arg("dropout", 0.1, FLOAT),
            Arg("activation", "relu", STR, ("relu", "gelu")), Arg("layer_norm_eps", 1e-5, FLOAT),
            Arg("batch_first", False, BOOL), Arg("norm_first", False, BOOL), Arg("bias", True, BOOL))


def _dropout(ctx: RuleContext, a) -> None:
    """torch's Transformer layers build an nn.Dropout of `dropout`, which refuses a probability outside [0, 1]."""
    p = a["dropout"]
    if not 0 <= p <= 1:
        ctx.fail(f"dropout probability has to be between 0 and 1, got {p}", "dropout")


def encoder_layer_rule(ctx: RuleContext, shape, a):
    _dropout(ctx, a)
    _heads(ctx, a["d_model"], a["nhead"], "d_model")
    ctx.positive([a["dim_feedforward"]], "dim_feedforward")
    _sequence(ctx, shape, a["batch_first"], "src")
    return tuple(shape)


def decoder_layer_rule(ctx: RuleContext, shape, a):
    memory = ctx.inputs[1]
    _dropout(ctx, a)
    _heads(ctx, a["d_model"], a["nhead"], "d_model")
    ctx.positive([a["dim_feedforward"]], "dim_feedforward")
    n, _ = _sequence(ctx, shape, a["batch_first"], "tgt")
    if len(memory) != len(shape):
        ctx.fail(f"tgt and memory must have one rank, got {len(shape)}-D and {len(memory)}-D")
    m, _ = _sequence(ctx, memory, a["batch_first"], "memory")
    _same(ctx, memory[-1], a["d_model"], lambda p, q: f"memory's features ({p}) must be d_model ({q})")
    if n is not None:
        _same(ctx, n, m, lambda p, q: f"tgt and memory must have one batch size, got {p} and {q}")
    return tuple(shape)


def _attention_count(e, bias):
    return 4 * e * e + (4 * e if bias else 0)


def _layer_count(a, attentions: int, norms: int):
    e, f, bias = a["d_model"], a["dim_feedforward"], a["bias"]
    feedforward = 2 * e * f + ((f + e) if bias else 0)
    return attentions * _attention_count(e, bias) + feedforward + norms * (2 * e if bias else e)


def _tokens(shape, batch_first: bool):
    """(batch, length) of a [L, N, E] / [N, L, E] / unbatched [L, E] sequence (batch 1)."""
    if len(shape) == 2:
        return 1, shape[0]
    return (shape[0], shape[1]) if batch_first else (shape[1], shape[0])


def encoder_layer_macs(src, out, a):
    """Self-attention (the projections of query, key and value, both products of attention, the output
    projection) and the feed-forward's two Linears: N x (L x (4 E^2 + 2 E F) + 2 L^2 E)."""
    e, f = a["d_model"], a["dim_feedforward"]
    n, length = _tokens(src, a["batch_first"])
    return n * (length * (4 * e * e + 2 * e * f) + 2 * length * length * e)


def decoder_layer_macs(tgt, out, a, memory):
    """Self-attention over the target (as the encoder layer's), cross-attention (query and output
    projections over the target's L tokens, key and value projections over memory's S, both products:
    2 L S E) and the feed-forward: N x (L (6 E^2 + 2 E F) + 2 S E^2 + 2 L^2 E + 2 L S E)."""
    e, f = a["d_model"], a["dim_feedforward"]
    n, length = _tokens(tgt, a["batch_first"])
    _, s = _tokens(memory, a["batch_first"])
    return n * (length * (6 * e * e + 2 * e * f) + 2 * s * e * e + 2 * length * length * e + 2 * length * s * e)


def register_attention() -> None:
    register(LayerSpec(
        name="Bilinear", args=(Arg("out_features"), Arg("bias", True, BOOL)), rule=bilinear_rule,
        count=bilinear_count, macs=bilinear_macs, inferred="in1_features", infer=lambda shape, a: shape[-1],
        infer_more=("in2_features",), infer_others=lambda shapes, a: {"in2_features": shapes[0][-1]},
        tensors=("input1", "input2"), short="bilinear", layout=CONTIGUOUS,
        saves=ss.bilinear,
    ))
    register(LayerSpec(
        name="MultiheadAttention",
        args=(Arg("num_heads"), Arg("dropout", 0.0, FLOAT), Arg("bias", True, BOOL), Arg("add_bias_kv", False, BOOL),
              Arg("add_zero_attn", False, BOOL), Arg("batch_first", False, BOOL)),
        rule=mha_rule, count=mha_count, macs=mha_macs, inferred="embed_dim", infer=lambda shape, a: shape[-1],
        infer_more=("kdim", "vdim"), infer_others=mha_others, tensors=("query", "key", "value"),
        order=("embed_dim", "num_heads", "dropout", "bias", "add_bias_kv", "add_zero_attn", "kdim", "vdim",
               "batch_first"),
        ranks=(2, 3), short="attention",
        saves=ss.attention, layout=BATCH_FIRST_IN_TRAINING, fast_path=mha_fast_path,
    ))
    register(LayerSpec(
        name="TransformerEncoderLayer", args=_transformer_args(), rule=encoder_layer_rule,
        count=lambda a: _layer_count(a, 1, 2), macs=encoder_layer_macs, inferred="d_model",
        infer=lambda shape, a: shape[-1], ranks=(2, 3),
        short="encoderlayer",
        saves=ss.transformer_layer,
    ))
    register(LayerSpec(
        name="TransformerDecoderLayer", args=_transformer_args(), rule=decoder_layer_rule,
        count=lambda a: _layer_count(a, 2, 3), macs=decoder_layer_macs, inferred="d_model",
        infer=lambda shape, a: shape[-1], ranks=(2, 3),
        tensors=("tgt", "memory"), short="decoderlayer",
        saves=ss.transformer_layer,
    ))


# -- Transformer stacks ----------------------------------------------------------------------------

_LAYER_KEYWORDS = ("dim_feedforward", "dropout", "activation", "layer_norm_eps", "batch_first", "norm_first", "bias")


def _stack_args(encoder: bool):
    nhead, *rest = _transformer_args()
    own = (Arg("enable_nested_tensor", True, BOOL), Arg("mask_check", True, BOOL)) if encoder else ()
    return (nhead, Arg("num_layers"), *rest, Arg("norm", False, BOOL), *own)


def encoder_rule(ctx: RuleContext, shape, a):
    ctx.positive([a["num_layers"]], "num_layers")  # torch's forward reads layers[0]
    return encoder_layer_rule(ctx, shape, a)


def decoder_rule(ctx: RuleContext, shape, a):
    ctx.positive([a["num_layers"]], "num_layers")
    return decoder_layer_rule(ctx, shape, a)


def _final_norm(a) -> int:
    e = a["d_model"]
    return 2 * e if a["bias"] else e


def _compose_stack(kind: str, layer: str):
    """torch's `kind(layer(d_model, nhead, ...), num_layers, norm=LayerNorm(...))`, made by `call(class name,
    positional values, keyword values)` (build: the modules; codegen: their source) of `value(argument)`.
    Keywords are those the plan wrote, as for any layer."""

    def compose(call, value, a, given):
        kw = lambda names: {k: value(k) for k in names if k in given}  # noqa: E731
        inner = call(layer, [value("d_model"), value("nhead")], kw(_LAYER_KEYWORDS))
        norm = {"eps": value("layer_norm_eps")} if "layer_norm_eps" in given else {}
        norm |= {"bias": value("bias")} if "bias" in given else {}
        own = {"norm": call("LayerNorm", [value("d_model")], norm)} if a["norm"] else {}
        return call(kind, [inner, value("num_layers")], own | kw(("enable_nested_tensor", "mask_check")))

    return compose


def transformer_rule(ctx: RuleContext, shape, a):
    """nn.Transformer(src, tgt): the encoder over src, the decoder over tgt and the encoder's output; torch
    checks the batch sizes (of a batched src) and that both tensors have d_model features."""
    src, tgt = ctx.inputs
    _dropout(ctx, a)
    _heads(ctx, a["d_model"], a["nhead"], "d_model")
    ctx.positive([a["num_encoder_layers"]], "num_encoder_layers")  # torch's stacks read layers[0]
    ctx.positive([a["num_decoder_layers"]], "num_decoder_layers")
    ctx.positive([a["dim_feedforward"]], "dim_feedforward")
    if len(src) != len(tgt):
        ctx.fail(f"src and tgt must have one rank, got {len(src)}-D and {len(tgt)}-D")
    n, _ = _sequence(ctx, src, a["batch_first"], "src")
    m, _ = _sequence(ctx, tgt, a["batch_first"], "tgt")
    if n is not None:
        _same(ctx, n, m, lambda p, q: f"the batch number of src and tgt must be equal, got {p} and {q}")
    _same(ctx, tgt[-1], a["d_model"], lambda p, q: f"tgt's features ({p}) must be d_model ({q}), as src's are")
    return tuple(tgt)


def encoder_macs(src, out, a):
    """num_layers encoder layers, each as TransformerEncoderLayer's rule (the final norm multiplies with no
    weights' dot product): num_layers x N x (L x (4 E^2 + 2 E F) + 2 L^2 E)."""
    return a["num_layers"] * encoder_layer_macs(src, out, a)


def decoder_macs(tgt, out, a, memory):
    """num_layers decoder layers, each as TransformerDecoderLayer's rule over the target and memory:
    num_layers x N x (L (6 E^2 + 2 E F) + 2 S E^2 + 2 L^2 E + 2 L S E)."""
    return a["num_layers"] * decoder_layer_macs(tgt, out, a, memory)


def transformer_macs(src, out, a, tgt):
    """num_encoder_layers encoder layers over src (S tokens) and num_decoder_layers decoder layers over tgt
    (T tokens) with the encoder's output (src's shape) as memory, each as its layer's rule; the two final
    norms count nothing."""
    return (a["num_encoder_layers"] * encoder_layer_macs(src, src, a)
            + a["num_decoder_layers"] * decoder_layer_macs(tgt, out, a, src))


def transformer_count(a):
    return (a["num_encoder_layers"] * _layer_count(a, 1, 2) + a["num_decoder_layers"] * _layer_count(a, 2, 3)
            + 2 * _final_norm(a))


def register_stacks() -> None:
    register(LayerSpec(
        name="TransformerEncoder", args=_stack_args(True), rule=encoder_rule,
        count=lambda a: a["num_layers"] * _layer_count(a, 1, 2) + (_final_norm(a) if a["norm"] else 0),
        macs=encoder_macs, inferred="d_model", infer=lambda shape, a: shape[-1], ranks=(2, 3), short="encoder",
        compose=_compose_stack("TransformerEncoder", "TransformerEncoderLayer"), saves=ss.transformer_stack,
    ))
    register(LayerSpec(
        name="TransformerDecoder", args=_stack_args(False), rule=decoder_rule,
        count=lambda a: a["num_layers"] * _layer_count(a, 2, 3) + (_final_norm(a) if a["norm"] else 0),
        macs=decoder_macs, inferred="d_model", infer=lambda shape, a: shape[-1], ranks=(2, 3),
        tensors=("tgt", "memory"), short="decoder",
        compose=_compose_stack("TransformerDecoder", "TransformerDecoderLayer"),
        saves=ss.transformer_stack,
    ))
    nhead, feedforward, dropout, activation, eps, batch_first, norm_first, bias = _transformer_args()
    register(LayerSpec(
        name="Transformer",
        args=(Arg("nhead", 8), Arg("num_encoder_layers", 6), Arg("num_decoder_layers", 6), feedforward, dropout,
              activation, eps, batch_first, norm_first, bias),
        rule=transformer_rule, count=transformer_count, macs=transformer_macs, inferred="d_model",
        infer=lambda shape, a: shape[-1],
        ranks=(2, 3), tensors=("src", "tgt"), short="transformer", saves=ss.transformer,
    ))
