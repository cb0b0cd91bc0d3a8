"""Cost and memory of the tensor operations against the tools and torch: FlopCounterMode counts matmul and
attention, fvcore counts matmul by its own rule and skips or ignores the rest, ptflops patches torch.matmul;
autograd saves what `saves` declares (saved_tensors_hooks)."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cost import flop_counter
from test_cost_fvcore import assert_equal_to_fvcore
from test_cost_ptflops import assert_equal_to_ptflops
from test_memory import saved_for_backward
from torch.utils.flop_counter import FlopCounterMode

import convplan
from convplan.layers import attention
from convplan.shapes import evaluate

ATTENTION = """
plan Attention(D=16, heads=2):
    input [N, L, D]
    q = Linear(D)
    x
    k = Linear(D)
    x
    v = Linear(D)
    q
    q = reshape(N, L, heads, D // heads)
    q = transpose(1, 2)
    k
    k = reshape(N, L, heads, D // heads)
    k = transpose(1, 2)
    v
    v = reshape(N, L, heads, D // heads)
    v = transpose(1, 2)
    a = scaled_dot_product_attention(q, k, v)
    a = transpose(1, 2)
    reshape(N, L, D)
    kt = transpose(k, 2, 3)
    s = matmul(q, kt)
    a
    mean(dim=1, keepdim=True)
    softmax(-1)
    o = Linear(4)
    output o, s
"""

PRODUCTS = """
plan Products:
    input x [N, L, D]
    input y [D, E]
    m = matmul(x, y)
    amax(dim=2, keepdim=True)
    sum(1)
"""

ATTENTION_3D = """
plan Attention3(E=8, V=6):
    input q [N, L, E]
    input k [N, S, E]
    input v [N, S, V]
    scaled_dot_product_attention(q, k, v, dropout_p=0.5)
"""

ATTENTION_HEADS = """
plan Attention4(E=8):
    input q [N, H, L, E]
    input k [N, H, S, E]
    input v [N, H, S, E]
    scaled_dot_product_attention(q, k, v, is_causal=True)
"""


@pytest.mark.parametrize("text", [ATTENTION, PRODUCTS, ATTENTION_3D, ATTENTION_HEADS],
                         ids=["attention", "products", "attention3", "attention4"])
@pytest.mark.parametrize("sizes", [{"N": 1, "L": 3, "E": 5}, {"N": 4, "L": 7, "E": 2}])
def test_products_cost_as_each_tool_counts(text, sizes):
    plan = convplan.parse(text)
    sizes = {k: v for k, v in sizes.items() if k in plan.symbols}
    sizes.update({k: 6 for k in plan.symbols if k not in sizes})
    bound = plan.bind(**sizes)
    inputs = [torch.randn(*(int(d) for d in s)) for s in bound.input_shapes.values()]
    assert plan.cost("flopcounter").at(**sizes) == flop_counter(bound.build(), inputs)
    assert assert_equal_to_fvcore(plan, sizes)
    if len(inputs) == 1:  # ptflops feeds one input
        assert_equal_to_ptflops(plan, sizes)


TRANSPOSED_QUERY = """
plan TransposedQuery:
    input x [N, H, E, L]
    q = Linear(x, L)
    q = transpose(q, 2, 3)
    q = ReLU(q)
    scaled_dot_product_attention(q, q, q)
"""


@pytest.mark.parametrize("sizes", [{"N": 1, "H": 2, "E": 3, "L": 4}, {"N": 2, "H": 1, "E": 5, "L": 2}])
def test_a_transposed_query_takes_the_math_path_as_flopcounter_counts(sizes):
    """The CPU flash kernel needs each last dim of stride 1: a ReLU of a transposed q keeps the transposed strides,
    so torch runs the math path's two products, which FlopCounterMode counts."""
    plan = convplan.parse(TRANSPOSED_QUERY)
    bound = plan.bind(**sizes)
    inputs = [torch.randn(*(int(d) for d in s)) for s in bound.input_shapes.values()]
    counted = flop_counter(bound.build(), inputs)
    assert plan.cost("flopcounter").at(**sizes) == counted
    assert counted > 2 * sizes["N"] * sizes["H"] * sizes["E"] * sizes["L"] ** 2  # the products are in it


GAPPED_QUERY = """
plan GappedQuery:
    input x [N, H, E, L]
    q = Linear(x, L)
    q = transpose(q, 2, 3)
    q = narrow(q, 1, 0, 1)
    q = ReLU(q)
    scaled_dot_product_attention(q, q, q)
"""


def test_attention_over_strides_convplan_does_not_follow_is_listed_not_guessed():
    """A ReLU of a narrowed transpose (gaps between samples) is laid out densely by TensorIterator in its input's
    order, its last dim of stride L: torch takes the math path, whose products FlopCounterMode counts.  convplan
    does not follow that layout (layouts.py): the flopcounter took its last dim as of stride 1 and counted the
    attention as the flash kernel's 0 (384 of torch's 768 at N=H=2, E=3, L=4); now it lists it, with why."""
    plan = convplan.parse(GAPPED_QUERY)
    cost = plan.cost("flopcounter")
    assert "scaled_dot_product_attention" in cost.uncounted
    assert "does not follow the strides" in cost.reasons["scaled_dot_product_attention"]
    for sizes in ({"N": 2, "H": 2, "E": 3, "L": 4}, {"N": 1, "H": 1, "E": 3, "L": 4}):
        bound = plan.bind(**sizes)
        inputs = [torch.randn(*(int(d) for d in s)) for s in bound.input_shapes.values()]
        linear = 2 * sizes["N"] * sizes["H"] * sizes["E"] * sizes["L"] ** 2
        assert cost.at(**sizes) == linear < flop_counter(bound.build(), inputs)  # torch counts the products too


@pytest.mark.parametrize("kind", ["GRU", "LSTM", "RNN"])
@pytest.mark.parametrize("last", ["    h = transpose(h, 1, 3)\n", ""])
def test_attention_over_a_batch_first_recurrent_output_counts_as_flopcounter(kind, last):
    """A recurrent layer's batch-first output is a transpose of a contiguous [L, N, H] in every mode (layouts.py):
    attention over its heads (last dims of stride 1: the flash kernel, 0) or over its steps (a last dim of stride
    N * H: the math path's products) counts what FlopCounterMode counts."""
    state = "(hn, cn)" if kind == "LSTM" else "hn"
    plan = convplan.parse(f"plan R:\n    input x [N, L, F]\n    h, {state} = {kind}(x, 8, batch_first=True)\n"
                          f"    h = unflatten(h, 2, (2, 4))\n{last}    scaled_dot_product_attention(h, h, h)\n")
    cost = plan.cost("flopcounter")
    assert "scaled_dot_product_attention" not in cost.uncounted
    for sizes in ({"N": 2, "L": 3, "F": 5}, {"N": 3, "L": 4, "F": 2}):
        bound = plan.bind(**sizes)
        inputs = [torch.randn(*(int(d) for d in s)) for s in bound.input_shapes.values()]
        assert cost.at(**sizes) == flop_counter(bound.build(), inputs), sizes


@st.composite
def after_attention_module(draw):
    """(plan text, sizes): a batch-first MultiheadAttention, its fast path's conditions drawn to hold or one to fail
    (an odd count of heads, no biases, add_bias_kv, add_zero_attn, a key-value tensor of its own), its output split
    into heads, then attention over the heads (last dims of stride 1: the flash kernel) or over other dims (the
    math path's products)."""
    fails = draw(st.sampled_from(["", "", "heads", "bias", "add_bias_kv", "add_zero_attn", "cross"]))
    heads = draw(st.sampled_from([1, 3] if fails == "heads" else [2, 4]))
    d = draw(st.integers(1, 3))
    flags = f"bias={fails != 'bias'}, add_bias_kv={fails == 'add_bias_kv'}, add_zero_attn={fails == 'add_zero_attn'}"
    kv = "m, m" if fails == "cross" else "x, x"
    lines = ["plan M:", f"    input x [N, L, {heads * d}]",
             *([f"    input m [N, S, {heads * d}]"] * (fails == "cross")),
             f"    h, w = MultiheadAttention(x, {kv}, num_heads={heads}, {flags}, batch_first=True)",
             f"    h = unflatten(h, 2, ({heads}, {d}))",
             draw(st.sampled_from(["    h = transpose(h, 1, 2)", "    h = Identity(h)", "    h = transpose(h, 2, 3)",
                                   "    h = permute(h, 0, 2, 3, 1)"])),
             "    scaled_dot_product_attention(h, h, h)"]
    sizes = {"N": draw(st.integers(1, 3)), "L": draw(st.integers(1, 4))}
    if fails == "cross":
        sizes["S"] = draw(st.integers(1, 4))
    return "\n".join(lines) + "\n", sizes


def _measured(bound, train: bool) -> int:
    """FlopCounterMode's count of the built module's forward, in eval mode without gradients (the convention) or in
    training with them."""
    if not train:
        return flop_counter(bound.build(), _inputs(bound))
    torch.manual_seed(0)
    module, inputs = bound.build().train(), _inputs(bound)
    with FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops()


def _inputs(bound) -> list:
    return [torch.randn(*(int(d) for d in s)) for s in bound.input_shapes.values()]


@given(after_attention_module())
@settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 2, deadline=None)
def test_attention_after_a_batch_first_attention_module_counts_as_flopcounter(case):
    """MultiheadAttention's batch-first output is contiguous on its no-grad fast path and a transpose of a contiguous
    [L, N, E] off it (layouts.py, told which path runs by the flopcounter convention): the attention after it was
    listed as uncounted; now it is counted, equal to FlopCounterMode's count in eval mode without gradients (the
    convention).  In training (never the fast path) it equals the count of the same plan with the fast path ruled
    out, which the convention gives where one of its conditions fails."""
    text, sizes = case
    plan = convplan.parse(text)
    cost = plan.cost("flopcounter")
    assert "scaled_dot_product_attention" not in cost.uncounted, text
    bound = plan.bind(**sizes)
    assert cost.at(**sizes) == _measured(bound, False), text
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(attention, "fast_path", lambda *args: False)  # the registry's rule: layouts and count
        training = convplan.parse(text)  # a graph of its own: its layouts are not the eval ones kept above
        assert training.cost("flopcounter").at(**sizes) == _measured(bound, True), text


def test_attention_flops_are_the_two_products():
    plan = convplan.parse(ATTENTION)
    by = plan.cost("flopcounter").by_layer
    assert evaluate(by["s"], {"N": 2, "L": 5}) == 2 * 2 * 2 * 5 * 5 * 8  # q @ k^T per head
    assert evaluate(by["a"], {"N": 2, "L": 5}) == 0  # CPU's fused kernel: FlopCounterMode counts nothing
    assert evaluate(plan.graph.nodes[plan.node("a").id].meta["products"], {"N": 2, "L": 5}) == 2 * 2 * 5 * 5 * 16
    assert "scaled_dot_product_attention" in plan.cost("macs").uncounted  # no weights
    assert plan.cost("fvcore").skipped["scaled_dot_product_attention"] == ("aten::scaled_dot_product_attention",)


def test_the_flopcounter_follows_strides_once_per_graph_not_once_per_attention(monkeypatch):
    """The attention rule reads each operand's strides (layouts.py): it walked the graph up to each attention node
    again, quadratic in a plan of many (200 attention layers: 11.3 s, now 0.11 s).  Counted here: each node's
    strides are worked out once per graph, and a second graph gets its own."""
    import convplan.layouts as layouts

    worked = []
    monkeypatch.setattr(layouts, "strides", lambda node, *rest, _strides=layouts.strides: (
        worked.append(node.id), _strides(node, *rest))[1])
    body = "".join("    x = scaled_dot_product_attention(x, x, x)\n    x = ReLU(x)\n" for _ in range(20))
    for k, shape in enumerate(("[N, H, L, E]", "[N, H, L, E, F]")):  # the second: 5-D, no flash kernel
        plan = convplan.parse(f"plan A:\n    input x {shape}\n" + body)
        worked.clear()
        counted = plan.cost("flopcounter").by_layer
        assert sorted(worked) == ([n.id for n in plan.graph.nodes] if k == 0 else [])
        assert evaluate(counted[plan.graph.nodes[1].name], dict.fromkeys("NHLEF", 2)) == (0 if k == 0 else 256)


@pytest.mark.parametrize("line", ["permute(0, 2, 1)", "reshape(N, -1)", "transpose(1, 2)", "mean(dim=1)",
                                  "sum(2, keepdim=True)", "softmax(-1)", "narrow(2, 1, 3)", "expand(2, N, C, L)",
                                  "flatten(1)", "unflatten(2, (2, 3))", "select(1, 0)", "contiguous()"])
def test_saved_for_backward_as_autograd(line):
    plan = convplan.parse(f"plan S:\n    input [N, C, L]\n    Linear(6)\n    {line}\n")
    sizes = {"N": 3, "C": 4, "L": 6}
    bound = plan.bind(**sizes)
    memory = bound.memory()
    assert not memory.unmodelled
    assert evaluate(memory.saved, {}) == saved_for_backward(bound), line  # test_memory's hooks, as every test's
