"""The registry's counts of conv and norm layers, whose numbers are counted in Python ints, against torch's
parameters: plain ints and sympy Integers (a block parameter's value), kernels as an int or a tuple, groups."""

from __future__ import annotations

import os

import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convplan.layers import REGISTRY

EXAMPLES = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 150)), deadline=None)


def _number(draw, value: int):
    """`value` as the walker may hand it over: an int, or a sympy Integer (S.One included)."""
    return draw(st.sampled_from([value, sympy.Integer(value)]))


@st.composite
def convs(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4))
    kernel = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * nd)))
    bias = draw(st.booleans())
    args = {"out_channels": _number(draw, c_out), "kernel_size": kernel if isinstance(kernel, tuple) else
            _number(draw, kernel), "stride": 1, "padding": 0, "dilation": 1, "groups": _number(draw, groups),
            "bias": bias, "padding_mode": "zeros", "in_channels": _number(draw, c_in)}
    module = getattr(torch.nn, f"Conv{nd}d")(c_in, c_out, kernel, groups=groups, bias=bias, device="meta")
    return f"Conv{nd}d", args, module


@EXAMPLES
@given(convs())
def test_a_conv_counts_the_parameters_torch_makes(case):
    kind, args, module = case
    count = REGISTRY[kind].count(args)
    assert type(count) is type(sympy.Integer(2)) or count in (0, 1)
    assert count == sum(p.numel() for p in module.parameters())


@EXAMPLES
@given(st.integers(1, 3), st.integers(1, 64), st.booleans(), st.booleans())
def test_a_batch_norm_counts_the_parameters_torch_makes(nd, features, affine, integer):
    args = {"num_features": sympy.Integer(features) if integer else features, "eps": 1e-5, "momentum": 0.1,
            "affine": affine, "track_running_stats": True}
    module = getattr(torch.nn, f"BatchNorm{nd}d")(features, affine=affine, device="meta")
    assert REGISTRY[f"BatchNorm{nd}d"].count(args) == sum(p.numel() for p in module.parameters())
