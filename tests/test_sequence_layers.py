"""Sequence and attention layers against real torch: RNN, LSTM, GRU and their cells, MultiheadAttention,
Bilinear and the Transformer encoder/decoder layers, with random arguments and sizes.  Each case is a plan
with named inputs and every output named; torch builds the same module from the same arguments and runs
it.  Both accept or both refuse; where both accept, every output's shape, the parameter count and
fvcore's count agree, at concrete sizes and with every size a symbol."""

from __future__ import annotations

import logging
import os
import re
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_codegen import module_class
from torch import nn

import convplan
from convplan import PlanError
from convplan.shapes import evaluate

EXAMPLES = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 120)), deadline=None)
NAMES = "NLSEFH"  # size symbols
PAIRED = ("LSTM", "LSTMCell")  # their state is one tuple: (h0, c0)


def render(v) -> str:
    return repr(v)


def plan_for(inputs: dict, kind: str, args: dict, outputs: str, symbolic: bool):
    """(plan text, sizes) where `inputs` maps names to concrete shapes; symbolic: each dim a symbol."""
    sizes, lines, k = {}, ["plan T:"], 0
    for name, shape in inputs.items():
        dims = []
        for d in shape:
            if symbolic:
                sym = f"{NAMES[k % len(NAMES)]}{k}"
                sizes[sym] = d
                dims.append(sym)
                k += 1
            else:
                dims.append(str(d))
        lines.append(f"    input {name} [{', '.join(dims)}]")
    names = list(inputs)
    if kind in PAIRED and len(names) == 3:  # LSTM(x, (h0, c0), ...), as torch takes it
        names = [names[0], f"({names[1]}, {names[2]})"]
    call = ", ".join([*names, *(f"{a}={render(v)}" for a, v in args.items())])
    # every output an output of the plan, as torch's module returns them all (a traced module drops the rest)
    lines += [f"    {outputs} = {kind}({call})", f"    output {', '.join(re.findall(r'[a-z0-9]+', outputs))}"]
    return "\n".join(lines) + "\n", sizes


def flat(value):
    if isinstance(value, tuple):
        return [x for v in value for x in flat(v)]
    return [value]


def torch_case(kind, inferred: dict, args: dict, tensors, make=None):
    """(module, output shapes) or (None, why); `make(**arguments)` builds the module where torch's constructor
    is not the plan's call (TransformerEncoder takes a layer module)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = (make or getattr(nn, kind))(**inferred, **args).eval()
            with torch.no_grad():
                out = module(tensors[0], tuple(tensors[1:])) if kind in PAIRED and len(tensors) == 3 \
                    else module(*tensors)
        except Exception as exc:  # noqa: BLE001 - torch refusing
            return None, f"{type(exc).__name__}: {exc}"
    shapes = [tuple(t.shape) for t in flat(out) if t is not None]
    if any(0 in s for s in shapes):
        return None, "empty"
    return module, shapes


def fvcore_count(module, tensors):
    from fvcore.nn import FlopCountAnalysis

    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), torch.no_grad():  # as the convention counts (test_cost_fvcore)
            warnings.simplefilter("ignore")
            f = FlopCountAnalysis(module, tuple(tensors) if len(tensors) > 1 else tensors[0])
            f.unsupported_ops_warnings(False)
            f.uncalled_modules_warnings(False)
            return f.total(), set(f.unsupported_ops())
    finally:
        logging.disable(logging.NOTSET)


def check(kind, inputs: dict, inferred: dict, args: dict, outputs: str, fvcore: bool = True, make=None):
    tensors = [torch.randn(*s) for s in inputs.values()]
    module, want = torch_case(kind, inferred, args, tensors, make)
    for symbolic in (False, True):
        text, sizes = plan_for(inputs, kind, args, outputs, symbolic)
        try:
            plan = convplan.parse(text)
        except PlanError as exc:
            assert module is None or symbolic, f"convplan refused what torch accepts ({want}):\n{text}{exc}"
            if module is not None:  # symbolic refusal only where no size could satisfy: never here
                raise AssertionError(f"refused symbolically, torch accepts {want}:\n{text}{exc}") from None
            continue
        if module is None:
            broken = [r for r in plan.requires if not evaluate(r.condition, sizes)]
            assert symbolic and broken, f"convplan accepted what torch refuses ({want}):\n{text}"
            continue
        got = [tuple(int(evaluate(d, sizes)) for d in plan.graph.nodes[i].shape) for i in _output_ids(plan)]
        assert got == want, f"convplan says {got}, torch gives {want}:\n{text}"
        params = sum(p.numel() for p in module.parameters())
        assert int(evaluate(plan.total_params, sizes)) == params, f"{plan.total_params} vs torch {params}:\n{text}"
        if fvcore and not symbolic:
            cost = plan.cost("fvcore")
            paired = kind in PAIRED and len(tensors) == 3
            total, skipped = fvcore_count(module, [tensors[0], tuple(tensors[1:])] if paired else tensors)
            assert (cost.at(**sizes), cost.skipped_ops) == (total, skipped), text
    return module


def _output_ids(plan):
    """The node of every output the statement names, in torch's order (the inputs come first)."""
    return [n.id for n in plan.graph.nodes if n.op != "input"]


# -- RNN, LSTM, GRU ----------------------------------------------------------------------------------


@st.composite
def recurrent_case(draw):
    kind = draw(st.sampled_from(["RNN", "LSTM", "GRU"]))
    batched, batch_first = draw(st.booleans()), draw(st.booleans())
    n, length, features = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    hidden = draw(st.integers(1, 6))
    args = {"hidden_size": hidden, "num_layers": draw(st.integers(1, 3)), "bias": draw(st.booleans()),
            "batch_first": batch_first, "bidirectional": draw(st.booleans())}
    if kind == "LSTM":
        args["proj_size"] = draw(st.sampled_from([0, 0, 1, hidden - 1, hidden]))
    if kind == "RNN":
        args["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    shape = ((n, length, features) if batch_first else (length, n, features)) if batched else (length, features)
    inputs = {"x": shape}
    d = 2 if args["bidirectional"] else 1
    if draw(st.booleans()):
        h = (d * args["num_layers"], n, hidden) if batched else (d * args["num_layers"], hidden)
        inputs["h0"] = h if draw(st.integers(0, 5)) else (h[0] + 1, *h[1:])  # now and then a wrong one
        if kind == "LSTM":  # c0 has hidden_size features where h0 has proj_size
            inputs["h0"] = (*inputs["h0"][:-1], args["proj_size"] or hidden)
            inputs["c0"] = (*h[:-1], hidden + (0 if draw(st.integers(0, 5)) else 1))
    outputs = "out, (h, c)" if kind == "LSTM" else "out, h"
    return kind, inputs, {"input_size": features}, args, outputs


@given(recurrent_case())
@EXAMPLES
def test_recurrent_layers(case):
    check(*case)


@st.composite
def cell_case(draw):
    kind = draw(st.sampled_from(["RNNCell", "LSTMCell", "GRUCell"]))
    batched = draw(st.booleans())
    n, features, hidden = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 6))
    args = {"hidden_size": hidden, "bias": draw(st.booleans())}
    if kind == "RNNCell":
        args["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    inputs = {"x": (n, features) if batched else (features,)}
    if draw(st.booleans()):
        inputs["hx"] = (n, hidden) if batched else (hidden,)
        if kind == "LSTMCell":
            inputs["cx"] = (n, hidden + (0 if draw(st.integers(0, 5)) else 1)) if batched else (hidden,)
    outputs = "h, c" if kind == "LSTMCell" else "h"
    return kind, inputs, {"input_size": features}, args, outputs


@given(cell_case())
@EXAMPLES
def test_cells(case):
    kind, inputs, inferred, args, outputs = case
    check(kind, inputs, inferred, args, outputs, fvcore=args["bias"] and len(inputs) == 1
          and len(inputs["x"]) == 2)


# -- attention --------------------------------------------------------------------------------------


@st.composite
def attention_case(draw):
    heads = draw(st.integers(1, 4))
    e = heads * draw(st.integers(1, 3)) + draw(st.sampled_from([0, 0, 0, 1]))  # now and then indivisible
    batched, batch_first = draw(st.booleans()), draw(st.booleans())
    n, lq, s = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kdim, vdim = draw(st.sampled_from([e, e, 3])), draw(st.sampled_from([e, e, 5]))
    args = {"num_heads": heads, "bias": draw(st.booleans()), "add_bias_kv": draw(st.booleans()),
            "add_zero_attn": draw(st.booleans()), "batch_first": batch_first}

    def seq(length, features):
        return ((n, length, features) if batch_first else (length, n, features)) if batched else (length, features)

    inputs = {"q": seq(lq, e), "k": seq(s, kdim), "v": seq(s + draw(st.sampled_from([0, 0, 0, 1])), vdim)}
    return "MultiheadAttention", inputs, {"embed_dim": e, "kdim": kdim, "vdim": vdim}, args, "out, weights"


@given(attention_case())
@EXAMPLES
def test_multihead_attention(case):
    kind, inputs, inferred, args, outputs = case
    check(kind, inputs, inferred, args, outputs, fvcore=not (args["add_bias_kv"] or args["add_zero_attn"]))


def test_attention_heads_must_divide_with_a_located_error():
    with pytest.raises(PlanError) as info:
        convplan.parse("plan T:\n    input q [N, L, 10]\n    out, w = MultiheadAttention(q, q, q, 3)\n")
    d = info.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E300", 3, 42)
    assert "embed_dim (10) must be divisible by num_heads (3)" in d.message


@pytest.mark.parametrize("p", [-0.5, 0.0, 0.5, 1.0, 1.5])
def test_attention_dropout_past_one_is_refused_in_training_as_torch_refuses_it(p):
    """MultiheadAttention builds with any dropout and runs in eval; its training forward drops with F.dropout
    only where p > 0, which refuses p > 1: a warning (W300) exactly there, located at the argument."""
    text = f"plan T:\n    input q [L, N, 8]\n    out, w = MultiheadAttention(q, q, q, 2, dropout={p})\n"
    warned = [d for d in convplan.parse(text).warnings if d.code == "W300"]
    module = nn.MultiheadAttention(8, 2, dropout=p).train()
    x = torch.randn(3, 2, 8)
    try:
        module(x, x, x)
        refused = False
    except ValueError:
        refused = True
    assert bool(warned) == refused
    if warned:
        assert "in training" in warned[0].message and (warned[0].span.line, warned[0].span.col) == (3, 45)


@st.composite
def bilinear_case(draw):
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    a, b = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    other = lead if draw(st.integers(0, 5)) else (*lead[:-1], 4) if lead else (2,)
    args = {"out_features": draw(st.integers(1, 4)), "bias": draw(st.booleans())}
    return "Bilinear", {"x1": (*lead, a), "x2": (*other, b)}, {"in1_features": a, "in2_features": b}, args, "y"


@given(bilinear_case())
@EXAMPLES
def test_bilinear(case):
    check(*case)


@st.composite
def transformer_case(draw):
    decoder = draw(st.booleans())
    heads = draw(st.integers(1, 3))
    e = heads * draw(st.integers(1, 3)) + draw(st.sampled_from([0, 0, 0, 1]))
    batched, batch_first = draw(st.booleans()), draw(st.booleans())
    n, length, s = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    args = {"nhead": heads, "dim_feedforward": draw(st.integers(1, 8)), "batch_first": batch_first,
            "norm_first": draw(st.booleans()), "bias": draw(st.booleans()),
            "activation": draw(st.sampled_from(["relu", "gelu"])),
            "dropout": draw(st.sampled_from([0.0, 0.0, 0.0, 1.0, 1.5, -0.25]))}  # torch builds no layer outside [0, 1]

    def seq(length, features):
        return ((n, length, features) if batch_first else (length, n, features)) if batched else (length, features)

    inputs = {"src": seq(length, e)}
    if decoder:
        inputs["memory"] = seq(s, e + draw(st.sampled_from([0, 0, 0, 1])))
    kind = "TransformerDecoderLayer" if decoder else "TransformerEncoderLayer"
    return kind, inputs, {"d_model": e}, args, "y"


@given(transformer_case())
@EXAMPLES
def test_transformer_layers(case):
    kind, inputs, inferred, args, outputs = case
    check(kind, inputs, inferred, args, outputs, fvcore=args["bias"] and len(inputs["src"]) == 3)


def test_an_lstm_state_is_one_pair_built_and_generated_as_torch_takes_it():
    text = ("plan Seq:\n    input x [N, L, 4]\n    input h0 [2, N, 6]\n    input c0 [2, N, 6]\n"
            "    out, (h, c) = LSTM(x, (h0, c0), 6, num_layers=2, batch_first=True)\n")
    plan = convplan.parse(text)
    built = plan.build().eval()
    source = plan.to_source()
    assert "self.out(x, (h0, c0))" in source
    generated = module_class(source)().eval()
    generated.load_state_dict(built.state_dict(), strict=True)
    x, h0, c0 = torch.randn(3, 5, 4), torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    with torch.no_grad():
        want = built.out(x, (h0, c0))[0]
        assert torch.equal(built(x, h0, c0), want) and torch.equal(generated(x, h0, c0), want)
    for call, message, col in [("LSTM(x, h0, c0, 6)", "takes its initial state as one pair", 13),
                               ("LSTM((h0, c0), 6)", "state comes after its input", 10),
                               ("GRU(x, (h0, c0), 6)", "takes its tensors one by one", 12)]:
        with pytest.raises(PlanError) as info:
            convplan.parse(text.replace("LSTM(x, (h0, c0), 6, num_layers=2, batch_first=True)", call))
        (d,) = info.value.diagnostics
        assert (d.code, d.span.line, d.span.col) == ("E242", 5, 14 + col), d
        assert message in d.message
    with pytest.raises(PlanError) as info:  # c0 of another size: located at the call, torch's message
        convplan.parse(text.replace("input c0 [2, N, 6]", "input c0 [2, N, 7]"))
    assert "c0 must be (2, N, 6), got (2, N, 7)" in info.value.diagnostics[0].message


@pytest.mark.parametrize("text", [
    "plan P:\n    input x [N, T, F]\n    input h0 [1, N, 4]\n    input c0 [1, N, 4]\n"
    "    out, (hn, cn) = LSTM(x, (h0, c0), 4, batch_first=True)\n",
    "plan P:\n    input x [N, F]\n    input hx [N, 5]\n    input cx [N, 5]\n    h, c = LSTMCell(x, (hx, cx), 5)\n",
    "block B:\n    input x [N, F]\n    input hx [N, 5]\n    input cx [N, 5]\n    h, c = LSTMCell(x, (hx, cx), 5)\n"
    "    output h\n\nplan P:\n    input x [N, F]\n    input hx [N, 5]\n    input cx [N, 5]\n    B(x, hx, cx)\n",
], ids=["LSTM", "LSTMCell", "in_a_block"])
def test_verify_gives_an_lstm_its_state_as_one_pair(text):
    """verify runs the layers one by one (build.values): the state goes in as torch's forward takes it, as the
    built module's forward passes it."""
    plan = convplan.parse(text)
    report = plan.verify(**{k: v for k, v in {"N": 2, "T": 3, "F": 5}.items() if k in plan.symbols})
    assert report.ok, report
