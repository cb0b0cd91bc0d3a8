"""What autograd saves for amax, matmul and scaled_dot_product_attention (saves_ops.py) against
`saved_tensors_hooks` on the built module in training mode, on random shapes: 1-D operands, broadcast batch
dims (a literal 1 or a symbol that is 1), operands that require grad (through a Linear) or not, transposed
operands (the last two dims swapped: a layout that decides between a view and a copy), dropout, is_causal,
head dims that differ (attention's math path instead of the CPU flash kernel)."""

from __future__ import annotations

import os

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_memory import saved_for_backward

import convplan
from convplan import PlanError

SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)), deadline=None)


@st.composite
def operand(draw, name: str, shape: tuple, sizes: dict):
    """Plan lines making tensor `name` of `shape` (dims as (symbol or literal, value)): an input, a Linear of
    it where it requires grad, a transpose of the last two dims where drawn."""
    grad, swap = draw(st.booleans()), len(shape) >= 2 and draw(st.booleans())
    dims = list(shape)
    if swap:
        dims[-2], dims[-1] = dims[-1], dims[-2]
    for text, value in dims:
        if not text.isdigit():
            sizes[text] = value
    lines = [f"    input {name} [{', '.join(t for t, _ in dims)}]"]
    if grad:
        lines.append(f"    {name} = Linear({name}, {dims[-1][0]})")
    if swap:
        lines.append(f"    {name} = transpose({name}, {len(dims) - 2}, {len(dims) - 1})")
    return lines


def _dim(draw, role: str, low: int = 1):
    value = draw(st.integers(low, 4))
    return (role, value) if draw(st.integers(0, 3)) else (str(value), value)


def _batch(draw, out: list, own: int, tag: str) -> list:
    """The last `own` of the batch dims `out`, each now and then 1 (a literal, or a symbol that is 1)."""
    dims = []
    for i, (text, value) in enumerate(out[len(out) - own:]):
        if draw(st.integers(0, 3)) == 0:
            dims.append(("1", 1) if draw(st.booleans()) else (f"O{tag}{i}", 1))
        else:
            dims.append((text, value))
    return dims


@st.composite
def matmul_case(draw):
    r1, r2 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if r1 == r2 == 1:
        r2 = 2
    rank = max(r1, r2) - 2
    out = [_dim(draw, f"B{i}") for i in range(max(rank, 0))]
    n, m, p = _dim(draw, "n"), _dim(draw, "m"), _dim(draw, "p")
    a = (m,) if r1 == 1 else (*_batch(draw, out, r1 - 2, "a"), n, m)
    b = (m,) if r2 == 1 else (*_batch(draw, out, r2 - 2, "b"), m, p)
    sizes: dict = {}
    lines = ["plan M:", *draw(operand("a", a, sizes)), *draw(operand("b", b, sizes)), "    y = matmul(a, b)"]
    return "\n".join(lines) + "\n", sizes


@st.composite
def attention_case(draw):
    rank = draw(st.sampled_from([2, 3, 4, 4, 4, 5]))
    batch = [_dim(draw, f"B{i}") for i in range(rank - 2)]
    length, keys, e = _dim(draw, "L"), _dim(draw, "S"), _dim(draw, "E")
    ev = e if draw(st.booleans()) else _dim(draw, "V")
    sizes: dict = {}
    lines = ["plan A:", *draw(operand("q", (*batch, length, e), sizes)),
             *draw(operand("k", (*batch, keys, e), sizes)), *draw(operand("v", (*batch, keys, ev), sizes))]
    args = {"dropout_p": draw(st.sampled_from([0.0, 0.0, 0.5])), "is_causal": draw(st.booleans())}
    if draw(st.booleans()):
        args["scale"] = 0.5
    call = ", ".join(f"{k}={v!r}" for k, v in args.items())
    lines.append(f"    y = scaled_dot_product_attention(q, k, v, {call})")
    return "\n".join(lines) + "\n", sizes


@st.composite
def amax_case(draw):
    rank = draw(st.integers(1, 4))
    shape = [_dim(draw, f"D{i}") for i in range(rank)]
    dims = draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique_by=lambda d: d % rank))
    sizes: dict = {}
    lines = ["plan X:", *draw(operand("x", tuple(shape), sizes)),
             f"    y = amax(x, dim={tuple(dims)!r}, keepdim={draw(st.booleans())!r})"]
    return "\n".join(lines) + "\n", sizes


@st.composite
def product_case(draw):
    """mul of 2 or 3 operands of shape [N, C], each an input or a Linear's output (requires grad), whole or a
    view of part of a larger storage (narrow, select, chunk), which a saved operand keeps whole."""
    c = draw(st.integers(1, 3))
    lines, names = ["plan P:", "    input x [N, 4]"], []
    for k in range(draw(st.integers(2, 3))):
        view, name = draw(st.sampled_from(["whole", "narrow", "select", "chunk"])), f"t{k}"
        width = c if view == "whole" else 2 * c
        if draw(st.booleans()):
            lines.append(f"    {name} = Linear(x, {width})")
        else:
            lines.append(f"    input {name} [N, {width}]")
        lines.append({"whole": "", "narrow": f"    {name} = narrow({name}, 1, {c}, {c})",
                      "select": f"    {name} = unflatten({name}, 1, (2, {c}))\n    {name} = select({name}, 1, 1)",
                      "chunk": f"    {name}, _{name} = chunk({name}, 2, dim=1)"}[view])
        names.append(name)
    lines.append(f"    y = mul({', '.join(names)})")
    return "\n".join(line for line in lines if line) + "\n", {"N": draw(st.integers(1, 3))}


def assert_saved_as_torch(text: str, sizes: dict) -> None:
    try:
        plan = convplan.parse(text)
    except PlanError:
        return
    if not plan.satisfied(sizes):
        return
    memory = plan.memory("float64")
    assert memory.unmodelled == (), text
    torch.manual_seed(0)
    want = saved_for_backward(plan.bind(**sizes), torch.float64)
    assert memory.at(memory.saved, **sizes) == want, f"at {sizes}:\n{text}"


@given(matmul_case())
@SETTINGS
def test_matmul_saves_what_autograd_saves(case):
    assert_saved_as_torch(*case)


@given(attention_case())
@SETTINGS
def test_attention_saves_what_autograd_saves(case):
    assert_saved_as_torch(*case)


@given(amax_case())
@SETTINGS
def test_amax_saves_what_autograd_saves(case):
    assert_saved_as_torch(*case)


def test_the_attention_plan_saves_what_autograd_saves():
    """test_ops_cost's plan: heads split with reshape and transpose (the flash kernel keeps q, k, v, its output
    and the log-sum-exp), then q @ k^T over the transposed heads, whose batch dims merge only where L is 1 (a
    copy of q otherwise: a Piecewise of L), amax's input and result."""
    from test_ops_cost import ATTENTION

    plan = convplan.parse(ATTENTION + "    amax(-1)\n")
    memory = plan.memory("float32")
    assert memory.unmodelled == ()
    for sizes in ({"N": 2, "L": 5}, {"N": 1, "L": 1}, {"N": 3, "L": 2}):
        assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes)), sizes


def test_an_operand_whose_strides_are_not_followed_is_listed_not_counted():
    """A CELU of a transposed tensor (torch keeps the input's layout; layouts.py follows such a kind only from
    contiguous inputs): matmul is listed.  A LayerNorm's output is contiguous whatever its input (its spec's
    layout, measured): that matmul is counted, as autograd saves."""
    text = "plan E:\n    input x [N, L, C]\n    t = transpose(x, 1, 2)\n    a = {}(t)\n    y = matmul(a, t)\n"
    assert convplan.parse(text.format("CELU")).memory().unmodelled == ("matmul",)
    plan = convplan.parse(text.format("LayerNorm"))
    memory = plan.memory("float64")
    assert memory.unmodelled == ()
    for sizes in ({"N": 2, "L": 3, "C": 3}, {"N": 1, "L": 4, "C": 4}):
        assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes), torch.float64), sizes


@given(product_case())
@SETTINGS
def test_a_product_keeps_its_operands_whole_storages_as_autograd_does(case):
    """A product saves its operands (memory._product): an operand that is a view of part of a storage keeps all
    of it (found: a Linear's output narrowed to half, times another Linear's: 224 bytes counted, 288 kept)."""
    assert_saved_as_torch(*case)


def test_an_expanded_operand_keeps_stride_0_where_it_stretches():
    """expand is followed (stride 0 on the stretched dims): matmul over it saves what autograd saves."""
    text = "plan E:\n    input x [N, 1, 4]\n    a = Linear(x, 4)\n    a = expand(a, N, 4, 4)\n    y = matmul(a, a)\n"
    plan = convplan.parse(text)
    memory = plan.memory("float64")
    assert memory.unmodelled == ()
    for sizes in ({"N": 1}, {"N": 3}):
        assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes), torch.float64), sizes


def test_every_operation_has_a_saves_rule():
    from convplan.ops import OPS

    assert [name for name, spec in OPS.items() if spec.saves is None] == []


def test_a_softmax_of_a_transposed_tensor_is_contiguous_so_attention_takes_the_flash_kernel():
    """softmax's output is contiguous whatever its input's layout, ReLU's keeps it (measured): attention over
    the softmax keeps the flash kernel's tensors (last dims of stride 1), over the ReLU the math path's."""
    for layer, flash in (("softmax(q, -1)", True), ("ReLU(q)", False)):
        text = ("plan T:\n    input x [N, H, E, L]\n    q = Linear(x, L)\n    q = transpose(q, 2, 3)\n"
                f"    q = {layer}\n    y = scaled_dot_product_attention(q, q, q)\n")
        plan = convplan.parse(text)
        memory = plan.memory("float32")
        sizes = {"N": 2, "H": 2, "E": 3, "L": 5}
        assert memory.unmodelled == ()
        assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes)), layer
        lse = 4 * 2 * 2 * 5  # the flash kernel's log-sum-exp, [N, H, L]
        assert (lse in [memory.at(b, **sizes) for b in _new_items(plan)]) == flash, layer


def _new_items(plan):
    """Bytes of each tensor the attention node's rule saves (for the test above)."""
    from convplan.layouts import layouts
    from convplan.memory import DTYPE_BYTES
    from convplan.saves_ops import sdpa_saves

    nodes, layout = plan.graph.nodes, layouts(plan.graph)
    node = nodes[-1]
    q, k, v = (nodes[i] for i in node.inputs)
    rule = sdpa_saves(node.args, q.shape, node.shape, k.shape, v.shape, grads=(True,) * 3,
                      strides=tuple(layout[i.id] for i in (q, k, v)))
    return [DTYPE_BYTES["float32"] * item.numel * item.scale for item in rule.items if item.numel is not None]
