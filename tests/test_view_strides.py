"""A view's strides (strides.viewed, torch's computeStride run on formulas) against `.stride()` of torch's own
`unflatten`, at every size, dims of size 1 included: a view lays out again each dim of size 1 in a run of dims it
merges, and attention's CPU flash check reads a last dim's stride even where its size is 1."""

from __future__ import annotations

import os

import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import convplan
from convplan.strides import contiguous, generic, permuted, viewed

SIZES = [sympy.Symbol(name, integer=True, positive=True) for name in "NLM"]
SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)), deadline=None)


@st.composite
def views(draw):
    """(shape, strides, dim, sizes it is split into): a dense tensor in any order of its dims (a permuted
    contiguous one), of sizes drawn from 1, 2, 3 and the symbols, one dim unflattened, with or without a 1."""
    shape = draw(st.lists(st.sampled_from([1, 2, 3, *SIZES]), min_size=1, max_size=4))
    order = draw(st.permutations(range(len(shape))))
    strides = permuted(contiguous([shape[k] for k in order]), [order.index(k) for k in range(len(shape))])
    dim = draw(st.integers(0, len(shape) - 1))
    size = shape[dim]
    if isinstance(size, sympy.Symbol):
        parts = draw(st.sampled_from([[size, 1], [1, size]]))
    else:
        first = draw(st.sampled_from([f for f in range(1, size + 1) if size % f == 0]))
        parts = [first, size // first]
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, 2)), 1)
    return [sympy.sympify(d) for d in shape], strides, order, dim, [sympy.sympify(p) for p in parts]


def _at(e, sizes: dict) -> int:
    return int(sympy.sympify(e).subs(sizes))


@given(views(), st.lists(st.integers(1, 3), min_size=3, max_size=3))
@SETTINGS
def test_a_views_strides_are_torchs_at_every_size(case, values):
    """Before: unflatten kept its input's strides but for the split dim's, which at a size of 1 are not torch's
    ([N, L, 1] of strides (1, N, 1) unflattened to [N, L, 1, 1] is (1, 1, 1, 1) at L = 1, not (1, N, 1, 1))."""
    shape, strides, order, dim, parts = case
    out = tuple(shape[:dim] + parts + shape[dim + 1:])
    found = viewed(tuple(shape), strides, out)
    sizes = dict(zip(SIZES, values, strict=True))
    x = torch.empty(*[_at(shape[k], sizes) for k in order]).permute(*[order.index(k) for k in range(len(shape))])
    want = x.unflatten(dim, [_at(p, sizes) for p in parts]).stride()
    assert tuple(_at(s, sizes) for s in found) == want, (shape, strides, out, sizes)
    kept = [k for k, d in enumerate(out) if _at(d, sizes) != 1]  # what skips dims of size 1 reads `generic`
    assert [_at(generic(out, found)[k], sizes) for k in kept] == [want[k] for k in kept]


def test_a_contiguous_view_is_contiguous_whatever_the_sizes():
    """No condition on the sizes where the input is contiguous: a view of it is contiguous, formulas unchanged."""
    n, length = SIZES[:2]
    six, two, three = (sympy.Integer(k) for k in (6, 2, 3))
    assert viewed((n, length, six), contiguous((n, length, six)), (n, length, two, three)) \
        == contiguous((n, length, two, three))


ATTENTION = """plan M:
    input x [N, L, 1]
    h, w = MultiheadAttention(x, x, x, num_heads=1, batch_first=True)
    h = unflatten(h, 2, (1, 1))
    h = permute(h, 0, 2, 3, 1)
    scaled_dot_product_attention(h, h, h)
"""


def test_attention_after_a_view_with_a_last_dim_of_size_1_counts_as_flopcounter():
    """Drawn by CI (test_ops_cost's batch-first attention property, N=2, L=1): the attention's operand is a view
    whose last dim (L) has stride N, or 1 where L is 1 (the view lays it out again), so torch runs the fused
    kernel there and FlopCounterMode counts 24, not 32."""
    plan = convplan.parse(ATTENTION)
    cost = plan.cost("flopcounter")
    for n, length in ((2, 1), (1, 1), (2, 2), (1, 3), (3, 1), (3, 2)):
        module = plan.bind(N=n, L=length).build().eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(torch.randn(n, length, 1))
        assert cost.at(N=n, L=length) == counter.get_total_flops(), (n, length)
