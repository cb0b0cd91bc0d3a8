"""Per-kind knowledge is registry data: family members are found by (family, nd), and the
layers hints name by role (`asymmetric_pad`, `FLATTEN`) do what the hints say, in torch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convplan.layers import FLATTEN, FLOAT, OPT_FLOAT, REGISTRY, REQUIRED, asymmetric_pad, member


@pytest.mark.parametrize("kind", sorted(k for k, s in REGISTRY.items() if s.family))
def test_every_family_member_is_found_by_family_and_nd(kind):
    spec = REGISTRY[kind]
    assert member(spec.family, spec.nd) is spec


def test_member_is_none_outside_a_family():
    assert member("Conv", 4) is None and member("Line", 1) is None  # "Line1d" is not Linear


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_asymmetric_pad_pads_each_side_by_its_own_amount_with_zeros(nd):
    layer = getattr(nn, asymmetric_pad(nd).name)((1, 2) * nd)
    out = layer(torch.ones(1, 1, *(4,) * nd))
    assert out.shape[2:] == (7,) * nd
    assert out.sum() == 4**nd  # the input's ones, and zeros around them


def test_flatten_merges_the_dims_after_the_batch():
    assert getattr(nn, FLATTEN.name)()(torch.ones(2, 3, 4, 5)).shape == (2, 60)


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_the_torch_order_facts_of_every_kind_are_its_arguments(kind):
    """layerchecks.torch_order returns at once by these two per-kind facts: each equals what the arguments say."""
    spec = REGISTRY[kind]
    assert spec.required_count == len([a for a in spec.args if a.default is REQUIRED])
    at = spec.inferred_at
    assert spec.float_where_inferred == (at < len(spec.args) and spec.args[at].kind in (FLOAT, OPT_FLOAT))
