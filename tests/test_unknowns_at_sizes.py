"""A `?` keeps the value solved for every size when sizes are given (`bind`, `build(**sizes)`, `convplan.parse(text,
**sizes)`, `--set`): at one size several values may fit the assertion, and the plan means the one that fits all."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan import PlanError

SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 4, deadline=None)


@st.composite
def windows(draw):
    """A strided 1-D window with `kernel_size=?`, the assertion its true kernel gives, and a size where it runs."""
    kind = draw(st.sampled_from(("Conv1d", "MaxPool1d", "AvgPool1d")))
    k, s = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2))
    args = ("4, " if kind == "Conv1d" else "") + f"kernel_size=?, stride={s}, padding={p}"
    out = 4 if kind == "Conv1d" else 3
    text = f"plan P:\n    input [N, 3, L]\n    {kind}({args}) -> [N, {out}, (L + {2 * p - k})//{s} + 1]\n"
    return text, k, draw(st.integers(max(1, k - 2 * p), 12))


@given(windows())
@SETTINGS
def test_a_solved_unknown_keeps_its_value_at_given_sizes(case):
    """Found by a review: `Conv1d(4, kernel_size=?, stride=2) -> [N, 4, (L - 3)//2 + 1]` is solved as 3, but bound
    at L = 9 it was solved again there, where 2 fits too: build() made a kernel of 2 (28 parameters, not the 40
    the plan said), `--set L=9` printed `?kernel_size = 2`, and codegen wrote 3.  Now the value for every size
    stands, and the module built at the size has the plan's parameters and output."""
    text, k, length = case
    plan = convplan.parse(text)
    assert plan.unknowns == {"kernel_size": k}
    bound = plan.bind(L=length)
    assert bound.unknowns == {"kernel_size": k}
    assert convplan.parse(text, L=length).unknowns == {"kernel_size": k}
    module = plan.build(L=length)
    assert sum(w.numel() for w in module.parameters()) == plan.evaluate(plan.total_params, L=length)
    out = module(torch.randn(2, 3, length))
    assert tuple(out.shape) == tuple(bound.evaluate(d, N=2) for d in bound.output_shape)


def test_the_reported_window_at_l9_and_its_generated_code():
    text = "plan P:\n    input [N, 3, L]\n    Conv1d(4, kernel_size=?, stride=2) -> [N, 4, (L - 3)//2 + 1]\n"
    bound = convplan.parse(text).bind(L=9)
    assert bound.unknowns == {"kernel_size": 3} and bound.evaluate(bound.total_params) == 40
    assert "nn.Conv1d(3, 4, 3, stride=2)" in bound.to_source()
    built = bound.build()
    assert built.conv1.kernel_size == (3,)


def test_an_unknown_that_holds_at_the_given_sizes_only_is_solved_there():
    """`-> [N, 4, 5]` needs a kernel of L - 4: no value for every size (refused without sizes), one at L = 9."""
    text = "plan P:\n    input [N, 3, L]\n    Conv1d(4, kernel_size=?) -> [N, 4, 5]\n"
    with pytest.raises(PlanError):
        convplan.parse(text)
    assert convplan.parse(text, L=9).unknowns == {"kernel_size": 5}
