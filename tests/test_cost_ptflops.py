"""The "ptflops" convention against ptflops itself: `cost("ptflops").total` equals what
`get_model_complexity_info(module, ..., backend="pytorch")` returns for the built module, at several sizes
and batches, for the example plans and for random stacks."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import pytest
import torch
from _torch_oracle import symbolic_plan
from hypothesis import given, settings
from hypothesis import strategies as st
from ptflops import get_model_complexity_info  # the `test` extra installs it
from test_cost import EXAMPLES, _size_sets
from test_cost_fvcore import ONE_TENSOR_KINDS, one_tensor_sizes
from test_properties import stacks

import convplan
from convplan.build import example_inputs
from convplan.shapes import evaluate

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 2, deadline=None)


def ptflops_count(module, inputs) -> int | None:
    """ptflops' MACs of the module on these inputs (None where ptflops itself fails: it prints why)."""
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        macs, _ = get_model_complexity_info(module.eval(), tuple(inputs[0].shape), as_strings=False,
                                            print_per_layer_stat=False, backend="pytorch",
                                            input_constructor=lambda _: inputs[0])
    return macs


def assert_equal_to_ptflops(plan, sizes: dict) -> None:
    bound = plan.bind(**sizes)
    inputs = example_inputs(bound.graph, sizes)  # indices where an Embedding reads them
    want = ptflops_count(bound.build(), inputs)
    assert want is not None
    assert evaluate(plan.cost("ptflops").total, sizes) == want, f"at {sizes}:\n{plan.source}"


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.stem != "two_tower"], ids=lambda p: p.stem)
def test_ptflops_convention_equals_ptflops_on_examples(path):
    """two_tower takes two inputs; ptflops passes one."""
    plan = convplan.load(path)
    sets = _size_sets(plan)
    if path.stem in ("vgg11", "alexnet"):
        sets = sets[:1] + sets[-1:]
    for sizes in sets:
        assert_equal_to_ptflops(plan, sizes)


def test_resnet18_at_224_is_ptflops_published_count():
    plan = convplan.load(ROOT / "examples" / "resnet18.plan")
    assert plan.cost("ptflops").at(N=1, H=224, W=224) == 1_825_313_768  # "1.82 GMac"


@given(stacks())
@SETTINGS
def test_ptflops_convention_on_random_stacks(case):
    shape, layers = case
    found = symbolic_plan(shape, layers)
    if found is None:
        return
    plan, sizes = found
    assert_equal_to_ptflops(plan, sizes)


@given(st.sampled_from(["nearest", "bilinear", "area"]), st.sampled_from(["scale_factor=2.0", "scale_factor=1.5",
       "scale_factor=(2.0, 1.5)", "size=7", "size=(5, 6)"]), st.integers(1, 4), st.integers(2, 9))
@settings(max_examples=30, deadline=None)
def test_ptflops_convention_on_upsampling(mode, how, batch, size):
    plan = convplan.parse(f"plan T:\n    input [N, 3, H, W]\n    Upsample({how}, mode='{mode}')\n    SiLU()\n")
    assert_equal_to_ptflops(plan, {"N": batch, "H": size, "W": size + 2})


@pytest.mark.parametrize(("shape", "call"), ONE_TENSOR_KINDS, ids=[c for _, c in ONE_TENSOR_KINDS])
def test_ptflops_convention_on_each_one_tensor_kind(shape, call):
    plan, found = one_tensor_sizes(shape, call)
    for sizes in found:
        assert_equal_to_ptflops(plan, sizes)


@st.composite
def _attention_from_one_input(draw):
    """A plan of one input (ptflops passes one tensor) whose attention reads three different tensors: the
    query is the input, key and value two Linears of its first S positions (narrow), or a decoder layer whose
    memory is such a Linear."""
    heads = draw(st.integers(1, 4))
    e = heads * draw(st.integers(1, 3))
    batch_first = draw(st.booleans())
    seq = 1 if batch_first else 0
    dims = "[N, L, E]" if batch_first else "[L, N, E]"
    s = draw(st.integers(1, 3))
    head = ["plan T:", f"    input x {dims}", f"    s = narrow(x, {seq}, 0, {s})"]
    if draw(st.booleans()):
        kdim, vdim = draw(st.sampled_from([e, 3])), draw(st.sampled_from([e, 5]))
        flags = ", ".join(f"{k}={draw(st.booleans())}" for k in ("bias", "add_bias_kv", "add_zero_attn"))
        body = [f"    k = Linear(s, {kdim})", f"    v = Linear(s, {vdim})",
                f"    out, w = MultiheadAttention(x, k, v, {heads}, {flags}, batch_first={batch_first})"]
    else:
        flags = ", ".join(f"{k}={draw(st.booleans())}" for k in ("norm_first", "bias"))
        activation = draw(st.sampled_from(["relu", "gelu"]))
        body = [f"    m = Linear(s, {e})",
                f"    y = TransformerDecoderLayer(x, m, {heads}, dim_feedforward={draw(st.integers(1, 8))}, "
                f"dropout=0.0, activation='{activation}', {flags}, batch_first={batch_first})"]
    sizes = {"N": draw(st.integers(1, 3)), "L": draw(st.integers(s, 4)), "E": e}
    return "\n".join(head + body) + "\n", sizes


@given(_attention_from_one_input())
@SETTINGS
def test_ptflops_convention_on_attention_over_different_tensors(case):
    """MultiheadAttention over a query, key and value that are different tensors (kdim, vdim, biases,
    add_bias_kv, add_zero_attn, batch_first) and TransformerDecoderLayer (its memory another tensor than its
    target): the attention hook's formula per tensor and the slow path's patched bmm and softmax."""
    text, sizes = case
    assert_equal_to_ptflops(convplan.parse(text), sizes)
