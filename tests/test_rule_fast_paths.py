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


# -- a call met again on the same inputs is not resolved again (LayerCalls._call_key) ------------------------
# Random plans of a block called with random arguments and tensors, and plan lines, over the kinds that take
# several tensors (MultiheadAttention, TransformerDecoderLayer, Bilinear), give several outputs (LSTM's
# `o, (h, c)`, MultiheadAttention's `out, wts`; chunk, an operation) and read indices (Embedding: E305 for a
# tensor that is no plan input).  Checked with the cache and with every call resolved anew, the two agree.

BLOCK_LINES = ["Conv1d(w, kernel_size=k, padding=k // 2, bias=b)", "Linear(w)", "Linear(w * 2)", "Linear(8)",
               "BatchNorm1d(eps=w)", "Dropout(p=0.5 if b else 0.1)", "ReLU(inplace=b)", "Linear(w) -> [N, L, ?]",
               "Linear(?)", "out, wts = MultiheadAttention(x, m, m, k)", "out, wts = MultiheadAttention(x, m, m, 2)",
               "TransformerDecoderLayer(x, m, k, dim_feedforward=w, batch_first=b)",
               "TransformerDecoderLayer(x, m, 2, dim_feedforward=16, batch_first=True)",
               "TransformerEncoderLayer(k, dim_feedforward=w, batch_first=True)", "o, (h, c) = LSTM(w, batch_first=b)",
               "o, (h, c) = LSTM(8, batch_first=True)", "o, (h, c) = LSTM(w, bidirectional=b, batch_first=True)",
               "a, c2 = chunk(2, dim=2)", "y = Bilinear(x, m, w)", "y = Bilinear(x, x, 4)", "Embedding(t, 10, w)",
               "Embedding(t, 10, 4)", "x", "m"]
BLOCK_ARGS = ["x, m, t, 8, 2, True", "x, m, t, 8, 2, True", "x, m, t, 8.0, 2, True", "m, x, t, 8, 2, True",
              "x, x, t, 8, 4, False", "x, m, z, 8, 2, True", "x, m, t, 16, 1, 1", "x, m, t, 4, 2, False",
              "m, m, t, 8, 2, True"]
PLAN_LINES = ["z = Linear(4)", "Linear(8)", "out, wts = MultiheadAttention(x, m, m, 2)", "x", "m",
              "TransformerDecoderLayer(x, m, 2, dim_feedforward=16, batch_first=True)",
              "o, (h, c) = LSTM(8, batch_first=True)", "Embedding(t, 10, 4)", "y = Bilinear(x, m, 4)"]


def _block_plan(lines, calls) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    plan = "".join(f"    {call}\n" if call in PLAN_LINES else f"    B({call})\n" for call in calls)
    return (f"block B(w, k, b):\n    input x [N, L, D]\n    input m [N, S, E]\n    input t [...]\n{body}\n"
            f"plan P:\n    input x [N, L, 8]\n    input m [N, S, 8]\n    input t [N, L]\n    x\n{plan}")


def _checked(text: str, cached: bool):
    if cached:
        return convplan.analyse(text)
    with mock.patch.object(layercall.LayerCalls, "_call_key", lambda self, spec, call, prev, others: None):
        return convplan.analyse(text)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(BLOCK_LINES), min_size=1, max_size=6),
       st.lists(st.sampled_from([*BLOCK_ARGS, *PLAN_LINES]), min_size=1, max_size=7))
@example(["Embedding(t, 10, w)"], ["x, m, t, 8, 2, True", "z = Linear(4)", "x, m, z, 8, 2, True"])  # E305
@example(["out, wts = MultiheadAttention(x, m, m, 2)"], ["x, m, t, 8, 2, True", "m, x, t, 8, 2, True"])
@example(["o, (h, c) = LSTM(w, batch_first=b)", "h"], ["x, m, t, 8, 2, True", "x, m, t, 8, 2, False",
                                                     "x, m, t, 8.0, 2, True"])
@example(["Linear(8)"], ["x, m, t, 8, 2, True", "Linear(8)", "x, m, t, 8, 2, True"])
def test_calls_met_again_equal_resolving_each(lines, calls):
    text = _block_plan(lines, calls)
    kept, each = _checked(text, True), _checked(text, False)
    assert [(d.code, d.message, d.span, d.hints, d.notes, d.fixes) for d in kept.diagnostics] == \
        [(d.code, d.message, d.span, d.hints, d.notes, d.fixes) for d in each.diagnostics]
    assert (kept.plan is None) == (each.plan is None)
    if each.plan is None:
        return
    nodes = kept.plan.graph.nodes, each.plan.graph.nodes
    assert [(x.op, x.name, x.kind, x.inputs, x.shape, x.given, x.written, x.unpack, x.path, x.meta)
            for x in nodes[0]] == \
        [(x.op, x.name, x.kind, x.inputs, x.shape, x.given, x.written, x.unpack, x.path, x.meta) for x in nodes[1]]
    for a, b in zip(*nodes, strict=True):  # same values of the same types: 8 and 8.0, 1 and True stay apart
        assert a.args == b.args and [type(v) for v in a.args.values()] == [type(v) for v in b.args.values()]
    assert [str(r) for r in kept.plan.requires] == [str(r) for r in each.plan.requires]
