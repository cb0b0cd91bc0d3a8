"""The check's fast paths for layers give what the paths they skip give."""

from fractions import Fraction
from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st

import convplan
from convplan import layercall, layers

# -- Upsample's scale ratio: a whole factor below 2**37 is itself, without the 65,536-size search -----------


@settings(max_examples=25, deadline=None)
@given(st.one_of(st.integers(1, 64), st.integers(1, 2**37 - 1)))
def test_whole_scale_factor_is_what_the_search_finds(k):
    f = float(k)
    assert layers.scale_ratio(f) == layers._scale_search(f, Fraction(f)) == k
    for x in (1, 2, 3, 1000, layers.SCALE_CHECKED):  # torch's int(float(x) * f) is x*k there
        assert int(float(x) * f) == x * k


def test_a_factor_past_the_exact_range_still_searches():
    f = float(2**40)  # float(x) * f no longer certainly exact: the search decides
    assert layers.scale_ratio(f) == layers._scale_search(f, Fraction(f))


# -- a layer call whose arguments are all literals is bound once per (kind, arguments) ----------------------

CALLS = ["Conv2d({}, 3)", "Conv2d({}, kernel_size=1, bias=False)", "Conv2d({}, 3, padding=1, stride=2)",
         "BatchNorm2d(eps={}.5)", "BatchNorm2d(momentum=0.{})", "ReLU()", "ReLU(inplace=True)",
         "Dropout(p=0.{})", "MaxPool2d(2, ceil_mode=True)", "Upsample(scale_factor={})",
         "Upsample(scale_factor={}.0)", "Conv2d(4, 1, bias=True)", "Conv2d(4, 1, bias=1)",
         "Conv2d(4, 1, bias=1.0)"]


def _plan(lines) -> str:
    return "plan P:\n    input [N, 3, H, W]\n" + "".join(f"    {line}\n" for line in lines)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(CALLS), st.integers(1, 3)), min_size=1, max_size=10))
@example([("Conv2d(4, 1, bias=True)", 1), ("Conv2d(4, 1, bias=1)", 1), ("Conv2d(4, 1, bias=1.0)", 1)])
def test_bound_literal_calls_equal_binding_each_call(calls):
    text = _plan(c.format(k) for c, k in calls)
    kept = convplan.analyse(text)
    with mock.patch.object(layercall, "_literal_key", lambda spec, call: None):  # bind every call anew
        each = convplan.analyse(text)
    assert [d.message for d in kept.diagnostics] == [d.message for d in each.diagnostics]
    nodes = kept.plan.graph.nodes, each.plan.graph.nodes
    assert [(x.kind, x.shape, x.given) for x in nodes[0]] == [(x.kind, x.shape, x.given) for x in nodes[1]]
    for a, b in zip(*nodes, strict=True):  # same values of the same types: 1, 1.0 and True stay apart
        assert a.args == b.args and [type(v) for v in a.args.values()] == [type(v) for v in b.args.values()]
