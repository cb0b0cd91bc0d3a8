"""An elementwise kernel's output strides (strides.iterated: TensorIterator's fast setup) and `contiguous()`'s
(strides.kept_if_contiguous) against torch's `.stride()`, at every size, dims of size 1 included: torch calls a
tensor contiguous (or channels-last) skipping its dims of size 1, and then lays the output out anew there, where
`contiguous()` returns the tensor itself, odd strides and all.  Attention's CPU flash check reads a last dim's
stride even where its size is 1."""

from __future__ import annotations

import os

import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan.layouts import layouts
from convplan.shapes import evaluate
from convplan.strides import contiguous, dense, generic, iterated, kept_if_contiguous, permuted, viewed

SIZES = [sympy.Symbol(name, integer=True, positive=True) for name in "NLM"]
SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)), deadline=None)
ACTIVATIONS = ["ReLU", "GELU", "SiLU", "Sigmoid", "Tanh", "ELU", "LeakyReLU", "Mish", "Hardswish", "Hardsigmoid",
               "ReLU6", "Dropout", "AlphaDropout", "Identity"]


@st.composite
def dense_layouts(draw):
    """(shape, strides, order): a permuted contiguous tensor of sizes drawn from 1, 2, 3 and the symbols."""
    shape = [sympy.sympify(d) for d in draw(st.lists(st.sampled_from([1, 2, 3, *SIZES]), min_size=1, max_size=4))]
    order = draw(st.permutations(range(len(shape))))
    strides = permuted(contiguous([shape[k] for k in order]), [order.index(k) for k in range(len(shape))])
    return tuple(shape), strides, order


def _at(e, sizes: dict) -> int:
    return int(sympy.sympify(e).subs(sizes))


def _tensor(shape, order, sizes) -> torch.Tensor:
    return torch.empty(*[_at(shape[k], sizes) for k in order]).permute(*[order.index(k) for k in range(len(shape))])


@given(dense_layouts(), st.lists(st.integers(1, 3), min_size=3, max_size=3))
@SETTINGS
def test_an_elementwise_output_and_contiguous_are_torchs_at_every_size(case, values):
    """Before: an elementwise layer kept its input's strides, and contiguous() made contiguous ones, which differ
    from torch's at dims of size 1 ([N, L, 1] of strides (1, N, 1) at L = 1: ReLU gives (1, 1, 1), and contiguous()
    keeps (1, N, 1))."""
    shape, strides, order = case
    sizes = dict(zip(SIZES, values, strict=True))
    x = _tensor(shape, order, sizes)
    for found, want in ((iterated(shape, strides), torch.relu(x).stride()),
                        (kept_if_contiguous(shape, strides), x.contiguous().stride())):
        assert tuple(_at(s, sizes) for s in found) == want, (shape, strides, sizes)
        kept = [k for k, d in enumerate(shape) if _at(d, sizes) != 1]  # what skips dims of size 1 reads `generic`
        assert [_at(generic(shape, found)[k], sizes) for k in kept] == [want[k] for k in kept]
        assert dense(shape, found)


@given(dense_layouts(), st.integers(0, 3), st.booleans(), st.lists(st.integers(1, 3), min_size=3, max_size=3))
@SETTINGS
def test_a_view_of_an_elementwise_output_is_torchs_at_every_size(case, at, first, values):
    """A view reads its input's strides where computeStride does (a dim of size 1's only where it is the last): the
    Piecewise strides of ReLU's output, viewed as unflatten views them, are torch's `relu(x).unflatten(...)`'s."""
    shape, strides, order = case
    dim = at % len(shape)
    parts = [shape[dim], sympy.Integer(1)] if first else [sympy.Integer(1), shape[dim]]
    out = tuple(shape[:dim] + tuple(parts) + shape[dim + 1:])
    found = viewed(shape, iterated(shape, strides), out)
    if found is None:  # (a Piecewise the view cannot read: not followed, never guessed)
        return
    sizes = dict(zip(SIZES, values, strict=True))
    want = torch.relu(_tensor(shape, order, sizes)).unflatten(dim, [_at(p, sizes) for p in parts]).stride()
    assert tuple(_at(s, sizes) for s in found) == want, (shape, strides, out, sizes)


def test_a_contiguous_input_gives_contiguous_strides_without_conditions():
    n, length = SIZES[:2]
    shape = (n, length, sympy.Integer(3))
    assert iterated(shape, contiguous(shape)) == contiguous(shape) == kept_if_contiguous(shape, contiguous(shape))


@st.composite
def activated(draw):
    """(plan text, sizes, the layer's kind): a 3-D or 4-D input permuted, then an activation, contiguous(), an add
    of the tensor and its activation, or a product of the tensor with itself."""
    rank = draw(st.sampled_from([3, 4]))
    names = ["N", "A", "B", "C"][:rank]
    dims = tuple(draw(st.permutations(range(rank))))
    kind = draw(st.sampled_from([*ACTIVATIONS, "contiguous", "add", "mul"]))
    last = {"contiguous": "    y = contiguous(h)", "add": "    g = ReLU(h)\n    y = add(h, g)",
            "mul": "    y = mul(h, h)"}.get(kind, f"    y = {kind}(h)")
    text = f"plan P:\n    input x [{', '.join(names)}]\n    h = permute(x, {dims})\n{last}\n"
    return text, {name: draw(st.integers(1, 3)) for name in names}, kind


@given(activated())
@SETTINGS
def test_each_elementwise_kind_lays_out_as_torch_at_dims_of_size_1(case):
    """Each activation kind in training and in eval mode (a dropout is its input in eval, TensorIterator's output in
    training; ReLU6's hardtanh makes its output with empty_like: the input's strides exactly), contiguous(), add
    and mul: every stride layouts.py follows for the eval mode without gradients (the flopcounter's convention) is
    torch's, dims of size 1 included."""
    text, sizes, kind = case
    plan = convplan.parse(text)
    module = plan.bind(**sizes).build().eval()
    x = torch.randn(*[sizes[n] for n in ("N", "A", "B", "C") if n in sizes])
    with torch.no_grad():
        y = module(x)
    known = layouts(plan.graph, inference=True)
    out = plan.graph.nodes[plan.graph.outputs[0]]
    assert known[out.id] is not None, text
    assert tuple(int(evaluate(s, sizes)) for s in known[out.id]) == (y[0] if isinstance(y, tuple) else y).stride(), \
        f"{kind} at {sizes}:\n{text}"

