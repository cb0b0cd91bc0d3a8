"""LocalResponseNorm views its input (LayerSpec.views_from, viewcheck.py): convplan refuses exactly the layouts torch
refuses, against torch's own LocalResponseNorm in training and in eval mode, on random permutes, transposes,
slices and broadcasts of inputs of every rank it takes."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan.strides import elementwise, merges

SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)), deadline=None)
OPS = ("permute", "transpose", "narrow", "select", "expand")


def torch_refuses(x: torch.Tensor) -> bool:
    """Whether torch's LocalResponseNorm refuses `x`, in training and in eval mode alike (asserted)."""
    module, found = torch.nn.LocalResponseNorm(2), []
    for train in (True, False):
        module.train(train)
        with torch.set_grad_enabled(train):
            try:
                module(x.detach().requires_grad_(train))
                found.append(False)
            except RuntimeError as exc:
                assert "view" in str(exc), exc
                found.append(True)
    assert found[0] == found[1]
    return found[0]


@st.composite
def strided(draw, symbolic: bool = False):
    """(plan text, sizes, the torch tensor the plan's `h` stands for): an input of rank 3 to 6 through random views
    (each as the plan writes it and as torch runs it), then LocalResponseNorm.  Symbolic sizes are distinct primes,
    so that no two products of them are equal by chance."""
    rank = draw(st.integers(3, 6))
    names = ["N", "C", "D", "H", "W", "V"][:rank]
    if symbolic:
        values = draw(st.permutations([2, 3, 5, 7, 11, 13]))[:rank]
    else:
        values = [draw(st.integers(1, 4)) for _ in range(rank)]
    dims = names if symbolic else [str(v) for v in values]
    lines = ["plan P:", f"    input x [{', '.join(dims)}]", "    h = Identity(x)"]
    x = torch.randn(values)
    for _ in range(draw(st.integers(0, 3))):
        op, a, b = draw(st.sampled_from(OPS)), draw(st.integers(0, rank - 1)), draw(st.integers(0, rank - 1))
        if op == "permute":
            p = draw(st.permutations(range(rank)))
            lines.append(f"    h = permute(h, {tuple(p)})")
            x = x.permute(p)
        elif op == "transpose":
            lines.append(f"    h = transpose(h, {a}, {b})")
            x = x.transpose(a, b)
        elif op == "narrow":  # a gap: one element of dim a
            lines.append(f"    h = narrow(h, {a}, 0, 1)")
            x = x.narrow(a, 0, 1)
        elif op == "select":  # a gap, the rank kept
            lines.append(f"    h = select(h, {a}, 0)\n    h = unflatten(h, {min(a, rank - 2)}, (1, -1))")
            x = x.select(a, 0).unflatten(min(a, rank - 2), (1, -1))
        else:  # stride 0
            sizes = ", ".join("-1" if d != a else "2" for d in range(rank))
            lines.append(f"    h = narrow(h, {a}, 0, 1)\n    h = expand(h, {sizes})")
            x = x.narrow(a, 0, 1).expand(*(-1 if d != a else 2 for d in range(rank)))
    lines.append("    LocalResponseNorm(h, 2)")
    return "\n".join(lines) + "\n", dict(zip(names, values, strict=True)) if symbolic else {}, x


def convplan_refuses(text: str, sizes: dict) -> bool:
    try:
        convplan.parse(text).bind(**sizes)
    except convplan.PlanError as exc:
        (d,) = exc.diagnostics
        assert (d.code, d.span.line) == ("E300", text.count("\n")), exc
        assert "call contiguous() before LocalResponseNorm" in d.hints, exc
        return True
    return False


@given(strided())
@SETTINGS
def test_local_response_norm_refuses_the_layouts_torch_refuses(case):
    """Concrete sizes (dims of size 1 among them): refused exactly where torch refuses (every rank from 5 on whose
    last dims are permuted, transposed or gapped apart; never rank 3 or 4)."""
    text, sizes, x = case
    assert convplan_refuses(text, sizes) == torch_refuses(x), text


@given(strided(symbolic=True))
@SETTINGS
def test_local_response_norm_refuses_the_layouts_torch_refuses_at_every_size(case):
    """Symbolic sizes: the strides are formulas, refused where they refuse the view at every size."""
    text, sizes, x = case
    assert convplan_refuses(text, sizes) == torch_refuses(x), text


def test_the_refusal_is_located_and_says_what_to_do():
    text = "plan P:\n    input x [N, C, D, H, W]\n    h = permute(x, 0, 1, 2, 4, 3)\n    LocalResponseNorm(h, 2)\n"
    with pytest.raises(convplan.PlanError) as caught:
        convplan.parse(text)
    (d,) = caught.value.diagnostics
    assert (d.code, d.span.line, d.span.col, d.span.end_col) == ("E300", 4, 5, 22)
    assert d.message == ("LocalResponseNorm: torch's forward views dims 3 to 4 of its input as one, which its layout "
                         "does not allow: their strides are (1, W) for sizes [W, H] (the input comes from h, line 3, "
                         "through a permute, transpose, expand or slice)")
    assert d.hints == ("call contiguous() before LocalResponseNorm", "input is [N, C, D, W, H] (h, line 3)")
    convplan.parse(text.replace("    LocalResponseNorm(h", "    h = contiguous(h)\n    LocalResponseNorm(h"))


@pytest.mark.parametrize("kind", ["Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Dropout", "ReLU"])
@pytest.mark.parametrize("dims", [(0, 1, 2, 4, 3), (0, 2, 1, 3, 4)])
def test_an_elementwise_layer_keeps_the_layout_that_torch_refuses(kind, dims):
    """The dropouts keep a permuted input's layout in training (TensorIterator) and in eval mode (their input
    itself), as the elementwise activations do (LayerSpec.layout LIKE_INPUT): measured here with LocalResponseNorm
    after them, which torch refuses where the permute moved its last dims apart."""
    text = f"plan P:\n    input x [2, 4, 3, 5, 6]\n    h = permute(x, {dims})\n    h = {kind}(h)\n" \
        "    LocalResponseNorm(h, 2)\n"
    x = torch.randn(2, 4, 3, 5, 6).permute(dims)
    found = []
    for train in (True, False):
        module = getattr(torch.nn, kind)().train(train)
        with warnings.catch_warnings(), torch.set_grad_enabled(train):
            warnings.simplefilter("ignore")  # Dropout2d on a 5-D input
            found.append(torch_refuses(module(x)))
    assert found[0] == found[1] == (dims[3:] != (3, 4))
    assert convplan_refuses(text, {}) == found[0]


def test_a_layout_convplan_does_not_follow_is_taken_as_torch_takes_it():
    """A Conv3d's output from a permuted input (channels-last to torch: its dims 3 and 4 hold each other) is not
    followed, so not refused: torch takes it."""
    text = ("plan P:\n    input x [2, 4, 3, 5, 6]\n    h = permute(x, 0, 4, 1, 2, 3)\n    h = Conv3d(h, 4, 1)\n"
            "    LocalResponseNorm(h, 2)\n")
    plan = convplan.parse(text)
    torch.manual_seed(0)
    module = plan.build()
    for train in (True, False):
        with torch.set_grad_enabled(train):
            module.train(train)(torch.randn(2, 4, 3, 5, 6))


@pytest.mark.parametrize(("shape", "strides", "want"), [
    ((2, 3, 4), (12, 4, 1), (12, 4, 1)),  # dense: kept
    ((2, 3, 4), (1, 8, 2), (1, 8, 2)),  # a permuted dense layout: kept
    ((2, 3, 4), (24, 8, 1), (12, 4, 1)),  # a gap: contiguous in the strides' order
    ((2, 3, 4), (1, 2, 12), (1, 2, 6)),  # a gap in a permuted layout: its order kept
    ((2, 3, 1), (0, 1, 1), (3, 1, 1)),  # a broadcast dim is not compared
])
def test_elementwise_strides_are_tensor_iterators(shape, strides, want):
    x = torch.empty(100).as_strided(shape, strides)
    assert (x * x).stride() == want
    assert tuple(int(s) for s in elementwise(shape, strides)) == want


def test_merges_reads_computestride():
    assert merges((2, 3, 4, 5, 6), (360, 120, 30, 6, 1), 3)
    assert not merges((2, 3, 4, 5, 6), (360, 120, 30, 1, 5), 3)
    assert merges((2, 3, 4, 1, 6), (360, 120, 30, 99, 1), 3)  # a dim of size 1 sits anywhere
