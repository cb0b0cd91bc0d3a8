"""build() of plans whose operations read sizes (narrow, expand): without sizes the module reads them from
its inputs when forward runs and serves every size the plan allows; where no tensor an operation sees carries
the size (a block's `narrow` given the caller's L), building says which size to pass and where (E403), never a
bare ValueError."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan.errors import PlanError

PLANS = {
    "narrow-half": ("plan A:\n    input [N, 4, L]\n    narrow(2, 0, L // 2)\n    Conv1d(8, kernel_size=1)\n",
                    lambda n, a, b: (n, 4, a + 2)),
    "expand": ("plan B:\n    input [N, 4, 1, W]\n    expand(N, 4, W, W)\n    Conv2d(8, kernel_size=1)\n",
               lambda n, a, b: (n, 4, 1, a + 1)),
    "block-narrow": ("block Crop(k):\n    input [B, C, T]\n    narrow(2, 1, T - k)\n\n"
                     "plan C:\n    input [N, 4, L]\n    Crop(2)\n    Conv1d(8, kernel_size=1)\n",
                     lambda n, a, b: (n, 4, a + 3)),
    "parameter-narrow-expand": ("plan D(max_len=64):\n    input [N, 4, L]\n    pos = Parameter((1, 4, max_len))\n"
                                "    narrow(pos, 2, 0, L)\n    expand(N, 4, L)\n    add(x)\n",
                                lambda n, a, b: (n, 4, a + 1)),
}


def _predicted(plan, x: torch.Tensor) -> tuple:
    sizes = {str(d): s for d, s in zip(plan.input_shape, x.shape, strict=True) if not getattr(d, "is_Integer", True)}
    return tuple(int(plan.evaluate(d, **sizes)) for d in plan.output_shape)


@pytest.mark.parametrize("name", sorted(PLANS))
@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 3), a=st.integers(0, 20), b=st.integers(0, 20))
def test_a_plan_with_narrow_or_expand_builds_without_sizes_and_serves_every_size(name, n, a, b):
    text, shape = PLANS[name]
    plan = convplan.parse(text)
    module = plan.build().eval()
    for x in (torch.randn(*shape(n, a, b)), torch.randn(*shape(n + 1, b, a))):
        with torch.no_grad():
            assert tuple(module(x).shape) == _predicted(plan, x)


UNREADABLE = ("block Take(n):\n    input [B, C, T]\n    narrow(2, 0, n)\n\n"
              "plan A:\n    input x [N, 4, L]\n    input y [N, 4, M]\n    y\n    Take(L)\n    add(x)\n")


def test_a_size_no_tensor_carries_is_asked_for_with_its_place():
    plan = convplan.parse(UNREADABLE)
    with pytest.raises(PlanError) as info:
        plan.build()
    (d,) = info.value.diagnostics
    assert d.code == "E403" and (d.span.line, d.span.col) == (3, 5)
    assert d.message.startswith("building A needs a value for L: narrow (take1_narrow1) takes L, which no tensor in "
                                "the block call take1 has as a size") and d.message.endswith("pass L=...")


@settings(max_examples=6, deadline=None)
@given(length=st.integers(1, 9), extra=st.integers(0, 5), n=st.integers(1, 3))
def test_with_the_size_given_it_builds_and_computes_the_plans_shape(length, extra, n):
    plan = convplan.parse(UNREADABLE)
    module = plan.build(L=length).eval()
    x, y = torch.randn(n, 4, length), torch.randn(n, 4, length + extra)
    with torch.no_grad():
        out = module(x, y)
    assert torch.equal(out, y[:, :, :length] + x)
