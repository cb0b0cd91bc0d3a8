"""The cost conventions of the sequence kinds (RNN, LSTM, GRU, their cells, MultiheadAttention, the Transformer
layers) against the tools themselves, on random configurations with every size a symbol: the plan's formula,
evaluated, equals FlopCounterMode's count of the built module (CPU, eval, no_grad), fvcore's and ptflops'."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sympy
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_cost import flop_counter
from test_cost_fvcore import assert_equal_to_fvcore
from test_cost_ptflops import ptflops_count
from test_sequence_layers import cell_case, recurrent_case, transformer_case
from test_transformer_stacks import stack_case
from test_transformer_stacks import transformer_case as whole_transformer_case

import convplan
from convplan import PlanError
from convplan.build import example_inputs
from convplan.shapes import evaluate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 2, deadline=None)


@st.composite
def attention_case(draw):
    """MultiheadAttention over one tensor (self-attention: torch's fast path where its other conditions hold),
    over query and one key-value tensor, or over three (with kdim, vdim of their own)."""
    fast = draw(st.booleans())  # every condition of the fast path but the one drawn to fail, if any
    fails = draw(st.sampled_from(["", "batched", "batch_first", "bias", "heads", "add_bias_kv", "add_zero_attn"]))
    heads = draw(st.sampled_from([2, 4] if fast and fails != "heads" else [1, 3] if fast else [1, 2, 3, 4]))
    e = heads * draw(st.integers(1, 3))
    n, lq, s = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))

    def flag(name, on):
        return (fails != name) == on if fast else draw(st.booleans())

    batched, batch_first = flag("batched", True), flag("batch_first", True)
    args = {"num_heads": heads, "bias": flag("bias", True), "add_bias_kv": flag("add_bias_kv", False),
            "add_zero_attn": flag("add_zero_attn", False), "batch_first": batch_first}

    def seq(length, features):
        return ((n, length, features) if batch_first else (length, n, features)) if batched else (length, features)

    how = "self" if fast else draw(st.sampled_from(["self", "kv", "qkv"]))
    if how == "self":
        return "MultiheadAttention", {"x": seq(lq, e)}, ("x", "x", "x"), args, "out, weights"
    if how == "kv":
        return "MultiheadAttention", {"q": seq(lq, e), "m": seq(s, e)}, ("q", "m", "m"), args, "out, weights"
    kdim, vdim = draw(st.sampled_from([e, 3])), draw(st.sampled_from([e, 5]))
    inputs = {"q": seq(lq, e), "k": seq(s, kdim), "v": seq(s, vdim)}
    return "MultiheadAttention", inputs, ("q", "k", "v"), args, "out, weights"


def _plain(case):
    """A case of test_sequence_layers' strategies, its tensors passed in order."""
    kind, inputs, _, args, outputs = case
    return kind, inputs, tuple(inputs), args, outputs


@st.composite
def layer_case(draw, cases=None):
    """A Transformer layer (or stack, or nn.Transformer), half the time with every condition of the encoder's
    fast path (batched, batch_first, biases, an even number of heads) but at most one."""
    kind, inputs, inferred, args, outputs = draw(cases or transformer_case())
    if draw(st.booleans()):
        fails = draw(st.sampled_from(["", "batched", "batch_first", "bias", "heads"]))
        heads = draw(st.sampled_from([1, 3] if fails == "heads" else [2, 4]))
        e, n = heads * draw(st.integers(1, 3)), draw(st.integers(1, 3))
        bf = fails != "batch_first"
        args = {**args, "nhead": heads, "batch_first": bf, "bias": fails != "bias"}
        lengths = {name: draw(st.integers(1, 4)) for name in inputs}  # the target's, memory's
        inputs = {name: ((n, t, e) if bf else (t, n, e)) if fails != "batched" else (t, e)
                  for name, t in lengths.items()}
    return kind, inputs, tuple(inputs), args, outputs


def _transformer_tensors(case):
    """nn.Transformer over one input, as ptflops passes one tensor: `Transformer(src, src)` where tgt has src's
    shape, else over both tensors."""
    kind, inputs, inferred, args, outputs = case
    if kind == "Transformer" and inputs["src"] == inputs["tgt"]:
        return kind, {"src": inputs["src"]}, ("src", "src"), args, outputs
    return kind, inputs, tuple(inputs), args, outputs


stack_cases = st.one_of(layer_case(stack_case()), layer_case(whole_transformer_case()).map(_transformer_tensors))
sequence_cases = st.one_of(recurrent_case().map(_plain), cell_case().map(_plain), layer_case(), attention_case(),
                           stack_cases)


def symbolic_case(case):
    """(plan with every dim of every input a symbol, sizes) or None where convplan or torch refuse it.  The
    feature dims (last) share a symbol where they are equal, as a plan writes `[N, L, d]` for both tensors."""
    kind, inputs, tensors, args, outputs = case
    sizes, lines = {}, ["plan T:"]
    for k, (name, shape) in enumerate(inputs.items()):
        dims = [f"{'NLS'[j % 3]}{k}" for j in range(len(shape) - 1)] + [f"E{shape[-1]}"]
        sizes.update(zip(dims, shape, strict=True))
        lines.append(f"    input {name} [{', '.join(dims)}]")
    call = ", ".join([*tensors, *(f"{a}={v!r}" for a, v in args.items() if a != "dropout")])
    text = "\n".join([*lines, f"    {outputs} = {kind}({call})"]) + "\n"
    try:
        plan = convplan.parse(text)
    except PlanError:
        return None
    return (plan, sizes) if plan.satisfied(sizes) else None


def built(plan, sizes):
    bound = plan.bind(**sizes)
    return bound.build(), example_inputs(bound.graph, sizes)


@given(sequence_cases)
@EXAMPLES
def test_flopcounter_convention_on_sequence_kinds(case):
    found = symbolic_case(case)
    assume(found is not None)
    plan, sizes = found
    cost = plan.cost("flopcounter")
    want = flop_counter(*built(plan, sizes))
    assert evaluate(cost.total, sizes) == want, f"at {sizes}:\n{plan.source}{cost}"
    if cost.uncounted:  # what FlopCounterMode cannot see counts nothing there: listed with why, and 0 measured
        assert want == 0 and not cost.by_layer and set(cost.reasons) == set(cost.uncounted), plan.source


@given(sequence_cases)
@EXAMPLES
def test_macs_convention_is_half_flop_counter_mode_on_the_meta_device(case):
    """On the meta device torch takes no fused kernel (no oneDNN LSTM, no attention fast path, attention's
    math path): FlopCounterMode sees every product, 2 per multiply-accumulate of the "macs" rule."""
    found = symbolic_case(case)
    assume(found is not None)
    plan, sizes = found
    bound = plan.bind(**sizes)
    with torch.device("meta"):
        module = bound.build()
    want = flop_counter(module, example_inputs(bound.graph, sizes, device="meta"))
    assert 2 * evaluate(plan.cost("macs").total, sizes) == want, f"at {sizes}:\n{plan.source}"


def test_flopcounter_sees_nothing_of_the_fused_kernels():
    """LSTM without projections (oneDNN) and attention on torch's fast path are listed, not counted as 0."""
    lstm = convplan.parse("plan T:\n    input x [N, L, 8]\n    out, (h, c) = LSTM(x, 16, batch_first=True)\n")
    assert lstm.cost("flopcounter").uncounted == ("LSTM",)
    assert "oneDNN's fused kernel (aten::mkldnn_rnn_layer)" in lstm.cost("flopcounter").reasons["LSTM"]
    projected = convplan.parse("plan T:\n    input x [N, L, 8]\n    out, (h, c) = LSTM(x, 16, proj_size=4)\n")
    assert projected.cost("flopcounter").at(N=2, L=5) == 2 * 2 * 5 * (64 * 8 + 64 * 4 + 16 * 4)
    fast = "plan T:\n    input x [N, L, 8]\n    out, w = MultiheadAttention(x, x, x, {}, batch_first=True)\n"
    assert convplan.parse(fast.format(2)).cost("flopcounter").uncounted == ("MultiheadAttention",)
    odd = convplan.parse(fast.format(1)).cost("flopcounter")  # an odd number of heads: the slow path
    assert odd.uncounted == () and odd.at(N=2, L=5) == 2 * convplan.parse(fast.format(1)).cost("macs").at(N=2, L=5)
    assert torch.backends.mha.get_fastpath_enabled()  # the rules assume torch's default


@given(sequence_cases)
@EXAMPLES
def test_fvcore_convention_on_sequence_kinds(case):
    found = symbolic_case(case)
    assume(found is not None)
    assert_equal_to_fvcore(*found)  # the total, the layer's count, the operators skipped with a warning


@given(sequence_cases)
@EXAMPLES
def test_ptflops_convention_on_sequence_kinds(case):
    found = symbolic_case(case)
    assume(found is not None and len(found[0].graph.inputs) == 1)  # ptflops passes one tensor
    plan, sizes = found
    module, inputs = built(plan, sizes)
    want = ptflops_count(module, inputs)
    cost = plan.cost("ptflops")
    if want is None:  # ptflops fails on it (an unbatched attention or cell): listed, not counted as 0
        assert cost.uncounted and not cost.by_layer, plan.source
        assert "ptflops fails on an unbatched input" in cost.reasons[case[0]]
        return
    assert not cost.uncounted and evaluate(cost.total, sizes) == want, f"at {sizes}:\n{plan.source}{cost}"


def test_compare_attributes_the_fused_lstm_to_its_kind():
    """speech_lstm: FlopCounterMode cannot see oneDNN's LSTM, so `--compare` puts the whole of its
    multiply-accumulates (twice) on the LSTM row, and the Conv1d and Linear rows differ by their own count."""
    plan = convplan.load(ROOT / "examples" / "speech_lstm.plan")
    macs, flops = plan.cost("macs"), plan.cost("flopcounter")
    difference = plan.compare_costs().difference("flopcounter", "macs")
    (lstm,) = (n.name for n in plan.layers if n.kind == "LSTM")
    assert flops.uncounted[-1:] == ("LSTM",) and "LSTM" not in macs.uncounted
    assert difference["LSTM"] == -macs.by_layer[lstm]
    assert sum(difference.values()) - (flops.total - macs.total) == 0  # nothing left over


def test_cost_command_says_why_a_kind_is_not_counted(capsys):
    from convplan import cli

    assert cli.main(["cost", "examples/speech_lstm.plan", "--convention", "flopcounter"]) == 0
    out = capsys.readouterr().out
    assert "not counted: BatchNorm1d, ReLU, permute, LSTM\n  LSTM: on the CPU torch runs it in oneDNN's fused " \
        "kernel (aten::mkldnn_rnn_layer), which FlopCounterMode has no formula for (it reports 0)" in out


def test_a_stack_counts_its_layers_and_lists_an_encoder_on_the_fast_path():
    """A stack is its layers in turn (a plan gives no padding mask, so no nested tensor): num_layers times
    the layer's count in every convention, the final LayerNorm adding its elements in ptflops only; an
    encoder whose layers take the fast path is listed for FlopCounterMode, with why, and measures 0."""
    text = "plan T:\n    input x [N, L, 8]\n    y = {}(x, {}, dim_feedforward=16, batch_first=True{})\n"
    sizes = {"N": 2, "L": 5}
    for heads in (2, 1):  # even: the fast path; odd: the slow path
        layer = convplan.parse(text.format("TransformerEncoderLayer", heads, ""))
        stack = convplan.parse(text.format("TransformerEncoder", f"{heads}, 3", ", norm=True"))
        for convention in ("macs", "flopcounter"):
            if stack.cost(convention).uncounted:
                assert convention == "flopcounter" and heads == 2
                assert "layer by layer on the encoder fast path" in stack.cost(convention).reasons["TransformerEncoder"]
                assert flop_counter(*built(stack, sizes)) == 0
                continue
            assert stack.cost(convention).at(**sizes) == 3 * layer.cost(convention).at(**sizes)
        want = 3 * layer.cost("ptflops").at(**sizes) + 5 * 8  # the final norm: its input's elements per sample
        assert stack.cost("ptflops").at(**sizes) == want == ptflops_count(*built(stack, sizes))


STACKS_WITH_SYMBOLIC_HEADS = [
    "out = TransformerEncoder(x, F, 2, dim_feedforward=8, batch_first=True, norm=True)",
    "out = TransformerDecoder(x, x, F, 3, dim_feedforward=8, batch_first=True)",
    "out = Transformer(x, x, F, 2, 1, dim_feedforward=8, batch_first=True)"]


@pytest.mark.parametrize("call", STACKS_WITH_SYMBOLIC_HEADS, ids=lambda c: c.split("(")[0].split()[-1])
def test_a_stack_with_a_symbolic_number_of_heads_counts_both_paths(call):
    """nhead a size symbol: the fast path (even heads) is a Piecewise on its parity, equal to FlopCounterMode at
    even and odd heads; ptflops' hooks disable the fast path, and its count is one formula."""
    plan = convplan.parse(f"plan T:\n    input x [N, L, E]\n    input heads [F]\n    {call}\n")
    cost = plan.cost("flopcounter")
    assert cost.total.has(sympy.Piecewise) and not cost.uncounted
    for sizes in ({"N": 2, "L": 3, "E": 12, "F": 2}, {"N": 1, "L": 4, "E": 12, "F": 3}):
        assert evaluate(cost.total, sizes) == flop_counter(*built(plan, sizes)), sizes
        assert evaluate(plan.cost("macs").total, sizes) > 0
