"""The Swin Transformer's kinds, ShiftedWindowAttention and PatchMerging (convplan/layers/swin.py), and
examples/swin_t.plan.

torchvision is not installed: its semantics are read from its source (torchvision/models/
swin_transformer.py, 0.28.0) and written out here a second way, window by window with explicit loops,
as the oracle of convplan's copies (convplan/modules.py).  The copies are the oracle of the kinds' shape,
count, cost and memory rules, over random arguments and sizes, symbolic ones too.
"""

from __future__ import annotations

import math
import os
import warnings

import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cost import flop_counter
from test_cost_fvcore import assert_equal_to_fvcore
from test_cost_ptflops import assert_equal_to_ptflops
from test_memory import saved_for_backward
from torch.utils.flop_counter import FlopCounterMode

import convplan
from convplan import PlanError
from convplan.modules import PatchMerging, ShiftedWindowAttention
from convplan.shapes import dim, evaluate, floordiv
from convplan.verify import verify

SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 4, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# -- the copies against torchvision's semantics, written out window by window ------------------


def _labels(size: int, window: int, shift: int) -> list[int]:
    """torchvision's mask regions along one dim: the slices (0, -window), (-window, -shift), (-shift, None)
    of the padded, rolled map, labelled in order, later ones written over earlier ones (shift 0: -0 is 0)."""
    out = [0] * size
    for k, (lo, hi) in enumerate(((0, -window), (-window, -shift), (-shift, None))):
        for r in range(size)[lo:hi]:
            out[r] = k
    return out


def reference_attention(m: ShiftedWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Each window's attention computed on its own: the tokens gathered from the padded map, rolled by
    -shift, the bias looked up by relative position (not through the module's index buffer), the mask from
    the regions, the result scattered back."""
    b, h, w, c = x.shape
    (wh, ww), heads = m.window_size, m.num_heads
    ph, pw = math.ceil(h / wh) * wh, math.ceil(w / ww) * ww
    padded = torch.zeros(b, ph, pw, c, dtype=x.dtype)
    padded[:, :h, :w] = x
    sh, sw = (m.shift_size[0] if wh < ph else 0), (m.shift_size[1] if ww < pw else 0)
    shifted = sh + sw > 0
    if not shifted:
        sh = sw = 0
    rows, cols = _labels(ph, wh, sh), _labels(pw, ww, sw)
    d = c // heads
    out = torch.zeros_like(padded)
    table = m.relative_position_bias_table
    for n in range(b):
        for i0 in range(0, ph, wh):
            for j0 in range(0, pw, ww):
                cells = [(i0 + u, j0 + v) for u in range(wh) for v in range(ww)]  # rolled coordinates
                source = [((r + sh) % ph, (q + sw) % pw) for r, q in cells]  # torch.roll(x, -shift)
                tokens = torch.stack([padded[n, r, q] for r, q in source])
                qkv = tokens @ m.qkv.weight.T + (m.qkv.bias if m.qkv.bias is not None else 0)
                q_, k_, v_ = qkv[:, :c], qkv[:, c : 2 * c], qkv[:, 2 * c :]
                joined = []
                for head in range(heads):
                    part = slice(head * d, (head + 1) * d)
                    logits = (q_[:, part] * d**-0.5) @ k_[:, part].T
                    for a, (r1, q1) in enumerate(cells):
                        for e, (r2, q2) in enumerate(cells):
                            rel = ((r1 - i0) - (r2 - i0) + wh - 1) * (2 * ww - 1) + (q1 - j0) - (q2 - j0) + ww - 1
                            logits[a, e] = logits[a, e] + table[rel, head]
                            if shifted and (rows[r1], cols[q1]) != (rows[r2], cols[q2]):
                                logits[a, e] = logits[a, e] - 100.0
                    joined.append(torch.softmax(logits, -1) @ v_[:, part])
                result = torch.cat(joined, -1) @ m.proj.weight.T + (m.proj.bias if m.proj.bias is not None else 0)
                for (r, q), value in zip(source, result, strict=True):
                    out[n, r, q] = value
    return out[:, :h, :w]


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(0, 5), st.integers(0, 5),
       st.integers(1, 2), st.integers(1, 9), st.integers(1, 9), st.booleans(), st.booleans(), st.integers(0, 2**16))
@SETTINGS
def test_the_copy_computes_torchvisions_window_attention(heads, per_head, wh, ww, sh, sw, b, h, w, qkv_bias,
                                                         proj_bias, seed):
    torch.manual_seed(seed)
    m = ShiftedWindowAttention(heads * per_head, [wh, ww], [sh, sw], heads, qkv_bias, proj_bias).double().eval()
    with torch.no_grad():
        m.relative_position_bias_table.normal_()
        x = torch.randn(b, h, w, heads * per_head, dtype=torch.float64)
        assert torch.allclose(m(x), reference_attention(m, x), atol=1e-9)
        assert torch.allclose(m(x), reference_attention(m, x), atol=1e-9)  # a second call decides the shift again


@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(1, 4))
@SETTINGS
def test_the_copy_merges_patches_as_torchvision(lead, c, h, w, seed):
    torch.manual_seed(seed)
    m = PatchMerging(c).double().eval()
    x = torch.randn(lead, h, w, c, dtype=torch.float64)
    padded = torch.zeros(lead, h + h % 2, w + w % 2, c, dtype=torch.float64)
    padded[:, :h, :w] = x
    quarters = [padded[:, i::2, j::2] for i, j in ((0, 0), (1, 0), (0, 1), (1, 1))]  # torchvision's order
    with torch.no_grad():
        want = m.reduction(m.norm(torch.cat(quarters, -1)))
        assert torch.equal(m(x), want)
    assert [k for k in m.state_dict()] == ["reduction.weight", "norm.weight", "norm.bias"]  # torchvision's order


# -- the rules against the copies --------------------------------------------------------------


def _value(v) -> str:
    return repr(v) if not isinstance(v, tuple) else "(" + ", ".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"


def _attention_call(window, shift, heads, extra: dict) -> str:
    args = [f"window_size={_value(window)}", f"shift_size={_value(shift)}", f"num_heads={heads}"]
    return f"ShiftedWindowAttention({', '.join(args + [f'{k}={v!r}' for k, v in extra.items()])})"


def _runs(make, x):
    """The copy's output shape, or None where its constructor or forward raises (torchvision's refusals)."""
    try:
        module = make()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tuple(module.eval()(x).shape), sum(p.numel() for p in module.parameters())
    except Exception:  # noqa: BLE001 - any raise is the module refusing
        return None


def _parse(shape, call: str):
    try:
        return convplan.parse(f"plan T:\n    input [{', '.join(map(str, shape))}]\n    {call}\n")
    except PlanError:
        return None


sizes_or_pairs = st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(0, 4)),
                           st.tuples(st.integers(1, 3)), st.tuples(st.integers(1, 3), st.integers(1, 3),
                                                                   st.integers(1, 3)))


@given(st.lists(st.integers(1, 6), min_size=3, max_size=5), sizes_or_pairs, sizes_or_pairs, st.integers(1, 4),
       st.fixed_dictionaries({}, optional={"qkv_bias": st.booleans(), "proj_bias": st.booleans()}))
@SETTINGS
def test_attention_is_accepted_exactly_when_the_copy_runs(shape, window, shift, heads, extra):
    """Accepted <=> the copy runs (rank 4, window and shift pairs, channels divisible by the heads); then the
    same shape and parameter count, concretely and with every dim a symbol."""
    x = torch.randn(*shape)
    want = _runs(lambda: ShiftedWindowAttention(shape[-1], _list(window), _list(shift), heads, **extra), x)
    call = _attention_call(window, shift, heads, extra)
    plan = _parse(shape, call)
    assert (plan is None) == (want is None), (shape, call, want)
    names = "NHWCD"[: len(shape)] if len(shape) == 4 else "NDHW"[: len(shape) - 1] + "C"
    symbolic = _parse(names, call)
    if want is None:
        sizes = dict(zip(names, shape, strict=True))
        assert symbolic is None or not symbolic.satisfied(sizes)
        return
    assert tuple(evaluate(d, {}) for d in plan.output_shape) == want[0]
    assert evaluate(plan.total_params, {}) == want[1]
    sizes = dict(zip(names, shape, strict=True))
    assert symbolic.satisfied(sizes)
    assert tuple(evaluate(d, sizes) for d in symbolic.output_shape) == want[0]
    assert evaluate(symbolic.total_params, sizes) == want[1]


def _list(v):
    return list(v) if isinstance(v, tuple) else v


@given(st.lists(st.integers(1, 7), min_size=3, max_size=5))
@SETTINGS
def test_patch_merging_halves_h_and_w_rounding_up(shape):
    x = torch.randn(*shape)
    want = _runs(lambda: PatchMerging(shape[-1]), x)
    names = ["N", "D", "V", "H", "W"][5 - len(shape) + 1:][: len(shape) - 1] + ["C"]
    plan = convplan.parse(f"plan T:\n    input [{', '.join(names)}]\n    PatchMerging()\n")
    sizes = dict(zip(names, shape, strict=True))
    assert tuple(evaluate(d, sizes) for d in plan.output_shape) == want[0]
    assert evaluate(plan.total_params, sizes) == want[1]
    assert plan.output_shape[-3] == floordiv(dim(names[-3]) + 1, 2)


def test_a_plan_that_does_not_fit_is_refused_where_it_is_written():
    cases = [
        ("input [N, H, W, 10]\n    ShiftedWindowAttention((7, 7), (0, 0), 3)\n", 3, "divisible by num_heads"),
        ("input [N, H, W, 12]\n    ShiftedWindowAttention(7, (0, 0), 3)\n", 3, "window_size must be a tuple of 2"),
        ("input [N, H, 12]\n    ShiftedWindowAttention((7, 7), (0, 0), 3)\n", 3, "4-D"),
    ]
    for body, line, words in cases:
        with pytest.raises(PlanError) as info:
            convplan.parse("plan T:\n    " + body, "t.plan")
        d = info.value.diagnostics[0]
        assert d.span.line == line and words in d.message, d.message
    plan = convplan.parse("plan T(h=3):\n    input [N, H, W, C]\n    ShiftedWindowAttention((7, 7), (3, 3), h)\n")
    assert [str(r) for r in plan.requires] == ["C % 3 == 0"]


# -- cost and memory against the tools, over random arguments and sizes -------------------------


attention_plans = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5),
                            st.integers(0, 4), st.integers(0, 4), st.sampled_from([0.0, 0.5, 1.0]),
                            st.sampled_from([0.0, 0.5, 1.0]), st.booleans())


def _attention_plan(case, sizes=None):
    heads, per_head, wh, ww, sh, sw, p, q, bias = case
    call = (f"ShiftedWindowAttention(({wh}, {ww}), ({sh}, {sw}), {heads}, qkv_bias={bias}, "
            f"attention_dropout={p}, dropout={q})")
    n, h, w = (sizes["N"], sizes["H"], sizes["W"]) if sizes else "NHW"
    return convplan.parse(f"plan T:\n    input [{n}, {h}, {w}, {heads * per_head}]\n    LayerNorm()\n    {call}\n"
                          "    PatchMerging()\n")


@given(attention_plans, st.integers(1, 3), st.integers(1, 12), st.integers(1, 12))
@SETTINGS
def test_cost_and_memory_equal_the_tools_on_the_built_module(case, n, h, w):
    """macs over the padded windows: FlopCounterMode's count halved, fvcore's (its skipped operators too,
    which say whether a window shifted), ptflops'; what autograd saves; the index buffer."""
    plan = _attention_plan(case)
    sizes = {"N": n, "H": h, "W": w}
    bound = plan.bind(**sizes)
    module = bound.build()
    x = torch.randn(n, h, w, case[0] * case[1])
    if case[6] == case[7] == 0.0:  # the dropouts run in training mode even in eval, as in torchvision
        assert plan.cost("flopcounter").at(**sizes) == flop_counter(module, [x])
        assert_equal_to_ptflops(plan, sizes)
        # fvcore's skipped operators say whether a window shifted, which the sizes decide: the plan at them
        concrete = _attention_plan(case, sizes)
        assert_equal_to_fvcore(concrete, {})
    memory = plan.memory("float32")
    assert memory.at(memory.saved, **sizes) == saved_for_backward(bound)
    assert memory.at(memory.buffers, **sizes) == sum(b.numel() * b.element_size() for b in module.buffers())


def test_flop_counter_sees_the_window_products():
    m = ShiftedWindowAttention(12, [3, 2], [1, 1], 3).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        m(torch.randn(2, 5, 7, 12))
    tokens = 2 * 6 * 8  # padded: 5 -> 6, 7 -> 8
    assert counter.get_total_flops() == 2 * tokens * 12 * (4 * 12 + 2 * 6)


# -- the example ----------------------------------------------------------------------------------


def test_swin_t_pads_each_window_partition_exactly_at_every_size():
    """The first block's attention works on the stem's H//4 padded to a multiple of 7 (torchvision's
    `(7 - W % 7) % 7`), for every size; the patch merges on (H + 1)//2."""
    plan = convplan.load("examples/swin_t.plan")
    attn = next(node for node in plan.layers if node.kind == "ShiftedWindowAttention")
    merge = next(node for node in plan.layers if node.kind == "PatchMerging")
    H, W = dim("H"), dim("W")
    macs = plan.cost("macs").by_layer[attn.name]
    for size in range(4, 400, 3):
        x, y = size // 4, (size + 5) // 4
        tokens = (x + (7 - x % 7) % 7) * (y + (7 - y % 7) % 7)
        assert evaluate(macs, {"N": 1, "H": size, "W": size + 5}) == tokens * 96 * (4 * 96 + 2 * 49)
    assert merge.shape[1:3] == (floordiv(floordiv(H, 4) + 1, 2), floordiv(floordiv(W, 4) + 1, 2))
    assert plan.total_params == 28_288_354 and plan.output_shape == (dim("N"), 1000)


@pytest.mark.parametrize("sizes", [{"N": 1, "H": 224, "W": 224}, {"N": 2, "H": 193, "W": 250},
                                   {"N": 1, "H": 33, "W": 60}], ids=["224", "193x250", "33x60"])
def test_swin_t_verifies_at_sizes_that_are_no_multiple_of_32_or_7(sizes):
    plan = convplan.load("examples/swin_t.plan")
    report = verify(plan, sizes, large=False)
    assert report.ok, str(report)
    assert report.runs[0].checked >= len(plan.graph.layers) + len(plan.graph.merges)  # every node torch made
    assert plan.satisfied(sizes)


def test_swin_t_at_224_costs_what_torch_counts():
    plan = convplan.load("examples/swin_t.plan")
    with torch.device("meta"):
        module = plan.build()
    flops = flop_counter(module, [torch.empty(1, 3, 224, 224, device="meta")])
    assert plan.cost("flopcounter").at(N=1, H=224, W=224) == flops
    assert sympy.Integer(plan.memory().at(plan.memory().buffers, N=1, H=224, W=224)) == 12 * 49 * 49 * 8
