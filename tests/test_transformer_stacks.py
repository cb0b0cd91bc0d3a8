"""TransformerEncoder, TransformerDecoder and nn.Transformer against real torch, with random arguments and
sizes (as test_sequence_layers.py checks the single layers): torch builds the stack from a layer module,
`nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model, nhead, ...), num_layers, norm)`, the plan writes
one call; both accept or both refuse, and where both accept the output shape and the parameter count agree, at
concrete sizes and with every size a symbol.  The built module and the generated code are torch's classes with
torch's state_dict keys (`layers.0.self_attn.in_proj_weight`, `norm.weight`)."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_codegen import module_class
from test_sequence_layers import EXAMPLES, check
from torch import nn

import convplan
from convplan import PlanError
from convplan.fixes import apply

LAYER = ("nhead", "dim_feedforward", "dropout", "activation", "layer_norm_eps", "batch_first", "norm_first", "bias")


def stack(kind: str):
    """torch's constructor of the plan's flat call: the layer of the layer's arguments, num_layers copies of
    it, a final LayerNorm(d_model, eps=layer_norm_eps, bias=bias) where norm=True."""
    layer = getattr(nn, f"{kind}Layer")

    def make(d_model, num_layers, norm=False, **args):
        inner = layer(d_model, **{k: v for k, v in args.items() if k in LAYER})
        final = nn.LayerNorm(d_model, eps=args.get("layer_norm_eps", 1e-5), bias=args.get("bias", True))
        own = {k: v for k, v in args.items() if k not in LAYER}
        return getattr(nn, kind)(inner, num_layers, norm=final if norm else None, **own)

    return make


@st.composite
def stack_case(draw):
    decoder = draw(st.booleans())
    heads = draw(st.integers(1, 3))
    e = heads * draw(st.integers(1, 3)) + draw(st.sampled_from([0, 0, 0, 1]))  # now and then indivisible
    batched, batch_first = draw(st.booleans()), draw(st.booleans())
    n, length, s = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    args = {"nhead": heads, "num_layers": draw(st.integers(0, 3)), "dim_feedforward": draw(st.integers(1, 8)),
            "batch_first": batch_first, "norm_first": draw(st.booleans()), "bias": draw(st.booleans()),
            "activation": draw(st.sampled_from(["relu", "gelu"])), "dropout": 0.0, "norm": draw(st.booleans()),
            "layer_norm_eps": draw(st.sampled_from([1e-5, 1e-6]))}
    if not decoder:
        args["enable_nested_tensor"] = draw(st.booleans())

    def seq(length, features):
        return ((n, length, features) if batch_first else (length, n, features)) if batched else (length, features)

    inputs = {"src": seq(length, e)}
    if decoder:
        inputs["memory"] = seq(s, e + draw(st.sampled_from([0, 0, 0, 1])))
    return "TransformerDecoder" if decoder else "TransformerEncoder", inputs, {"d_model": e}, args, "y"


@given(stack_case())
@EXAMPLES
def test_transformer_stacks(case):
    kind, inputs, inferred, args, outputs = case
    check(kind, inputs, inferred, args, outputs, fvcore=args["bias"] and len(inputs["src"]) == 3, make=stack(kind))


@st.composite
def transformer_case(draw):
    heads = draw(st.integers(1, 3))
    e = heads * draw(st.integers(1, 2)) + draw(st.sampled_from([0, 0, 0, 1]))
    batched, batch_first = draw(st.booleans()), draw(st.booleans())
    n, s, t = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    m = n if draw(st.integers(0, 4)) else n + 1  # now and then another batch size
    args = {"nhead": heads, "num_encoder_layers": draw(st.integers(0, 2)),
            "num_decoder_layers": draw(st.integers(0, 2)), "dim_feedforward": draw(st.integers(1, 6)),
            "batch_first": batch_first, "norm_first": draw(st.booleans()), "bias": draw(st.booleans()), "dropout": 0.0}

    def seq(batch, length, features):
        return ((batch, length, features) if batch_first else (length, batch, features)) if batched \
            else (length, features)

    tgt_features = e + draw(st.sampled_from([0, 0, 0, 1]))
    return "Transformer", {"src": seq(n, s, e), "tgt": seq(m, t, tgt_features)}, {"d_model": e}, args, "y"


@given(transformer_case())
@EXAMPLES
def test_transformer(case):
    kind, inputs, inferred, args, outputs = case
    check(kind, inputs, inferred, args, outputs, fvcore=args["bias"] and len(inputs["src"]) == 3)


def test_nhead_that_does_not_divide_d_model_is_a_located_error_with_its_fix():
    text = "plan T:\n    input x [N, L, 256]\n    TransformerEncoder(6, 4, batch_first=True)\n"
    with pytest.raises(PlanError) as info:
        convplan.parse(text)
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.col, d.span.end_col) == ("E300", 3, 24, 25)  # the nhead argument
    assert "d_model (256) must be divisible by nhead (6)" in d.message
    assert "nhead=8 divides 256" in d.hints  # the nearest count of heads that does (4 and 8 are as near: more)
    (fix,) = d.fixes
    fixed = apply(text, fix.edits)
    assert fixed == text.replace("(6, 4,", "(8, 4,")
    assert convplan.parse(fixed).graph.layers[0].args["nhead"] == 8


def test_stacks_build_and_generate_torchs_modules_with_torchs_keys():
    text = ("plan Seq2Seq(d=32):\n"
            "    input src [N, S, d]\n"
            "    input tgt [N, T, d]\n"
            "    memory = TransformerEncoder(src, 4, 2, dim_feedforward=64, batch_first=True, norm=True)\n"
            "    decoder = TransformerDecoder(tgt, memory, 4, 3, dim_feedforward=48, batch_first=True)\n"
            "    Linear(10)\n")
    plan = convplan.parse(text)
    built = plan.build().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2, nn.LayerNorm(32))
    assert isinstance(built.memory, nn.TransformerEncoder) and isinstance(built.decoder, nn.TransformerDecoder)
    assert list(built.memory.state_dict()) == list(want.state_dict())
    assert [k for k in built.state_dict() if not k.startswith("decoder.layers.")][-4:] == [
        "memory.norm.weight", "memory.norm.bias", "linear1.weight", "linear1.bias"]
    assert sum(p.numel() for p in built.parameters()) == plan.total_params
    generated = module_class(plan.to_source())()
    generated.load_state_dict(built.state_dict(), strict=True)
    src, tgt = torch.randn(2, 5, 32), torch.randn(2, 3, 32)
    with torch.no_grad():
        torch.testing.assert_close(generated.eval()(src, tgt), built(src, tgt))
    assert plan.verify().ok
