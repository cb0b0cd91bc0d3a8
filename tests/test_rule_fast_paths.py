"""The check's fast paths for layers give what the paths they skip give."""

import contextlib
from fractions import Fraction
from unittest import mock

import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_nodes_fast import slotted

import convplan
from convplan import arguments, layercall, layers
from convplan.shapes import affine, dim, floordiv, offset

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
    with mock.patch.object(layercall, "literal_key", lambda spec, call: None):  # bind every call anew
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
# tensor that is no plan input).  Checked with the caches (a call's resolution, and its binding kept per values of
# the names it reads) and with every call resolved and bound anew, the two agree.

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
    init = arguments.Binder.__init__

    def forgetful(self, *args):  # nor a layer call's syntax matched once a call site (Binder.layers)
        init(self, *args)
        self.layers = _Forgetful()

    with mock.patch.object(layercall.LayerCalls, "_call_key", lambda self, spec, call, prev, others, lit, *_: None), \
            mock.patch.object(layercall.LayerCalls, "_named_key", lambda self, spec, call: None), \
            mock.patch.object(arguments.Binder, "__init__", forgetful):  # nor bound again
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


# -- a plain conv (whole-number sizes, zero padding) checked with Python ints; BatchNorm's product not built ---
# Each fast path against the general one it skips, on random arguments as the binder gives them (torch's valid
# ones and refused ones: ints, sympy Integers, sizes, tuples of any length; 'same'/'valid') and random input dims
# (numbers, sizes, conv-chain dims).

def _dim(draw_value):
    from convplan.shapes import dim, floordiv, offset

    kind, k, s = draw_value
    h = dim("H") if kind != "W" else dim("W")
    return {"int": sympy.Integer(k), "H": h, "W": h, "floor": floordiv(offset(h, k), s),
            "plus": offset(h, k), "twice": 2 * h, "N": dim("N")}[kind]


DIMS = st.tuples(st.sampled_from(["int", "H", "W", "floor", "plus", "twice", "N"]),
                 st.one_of(st.just(1), st.integers(-2, 9)), st.integers(1, 4)).map(_dim)
WHOLE = st.one_of(st.integers(1, 5), st.integers(1, 5).map(sympy.Integer))  # most: the fast path's
SIZE_VALUE = st.one_of(WHOLE, st.integers(-1, 0), st.integers(-1, 0).map(sympy.Integer),
                       st.sampled_from(["K", "H"]).map(lambda name: sympy.Symbol(name, integer=True, positive=True)))
SIZE_ARG = st.one_of(*[WHOLE] * 6, SIZE_VALUE, st.lists(SIZE_VALUE, min_size=1, max_size=3).map(tuple))
INT_ARG = st.one_of(*[WHOLE] * 6, SIZE_VALUE)  # out_channels: one value
GROUPS = st.one_of(*[st.just(1)] * 6, INT_ARG)
PADDING = st.one_of(*[st.integers(0, 2)] * 6, SIZE_ARG, st.sampled_from(["same", "valid"]))


def _rule_result(spec, shape, args):
    ctx = layers.RuleContext(spec, inputs=(shape,))
    try:
        out = spec.rule(ctx, shape, args)
    except layers.LayerError as exc:
        return "refused", exc.message, exc.arg, exc.hint, _worded(ctx.conds), ctx.warns, ctx.tails
    return tuple(sympy.sympify(d) for d in out), _worded(ctx.conds), ctx.warns, ctx.tails


def _worded(conds) -> list:
    """A rule's conditions with their messages as text (a chain rule words its own when they are read)."""
    return [(cond, layers.worded(message), arg) for cond, message, arg in conds]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3), st.data(), SIZE_ARG, SIZE_ARG, SIZE_ARG, PADDING, GROUPS, INT_ARG,
       st.sampled_from(["zeros", "zeros", "zeros", "zeros", "reflect", "circular"]))
@example(2, None, 3, 2, 1, 1, 2, 4, "zeros")
def test_plain_conv_equals_the_general_rule(nd, data, kernel, stride, dilation, padding, groups, out, mode):
    from convplan.layers import conv

    shape = tuple(data.draw(DIMS) for _ in range(nd + 2)) if data is not None else \
        (sympy.Symbol("N"), sympy.Integer(4), *[sympy.Symbol("H", integer=True, positive=True)] * nd)
    spec = layers.REGISTRY[f"Conv{nd}d"]
    args = {"out_channels": out, "kernel_size": kernel, "stride": stride, "padding": padding,
            "dilation": dilation, "groups": groups, "bias": True, "padding_mode": mode, "in_channels": shape[1]}
    fast = _rule_result(spec, shape, args)
    with mock.patch.object(conv, "_plain_conv", lambda ctx, shape, a, nd: None):
        general = _rule_result(spec, shape, args)
    assert fast == general
    assert [str(x) for x in fast] == [str(x) for x in general]  # printed the same (types of the numbers)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.data(), st.integers(1, 4), st.integers(0, 3))
def test_plain_conv_equals_the_general_rule_on_valid_arguments(nd, data, groups, pad):
    """Arguments that the fast path takes (the test above mostly draws ones it leaves to the general path)."""
    from convplan.layers import conv

    def per_dim(values):
        return data.draw(st.one_of(values, st.lists(values, min_size=nd, max_size=nd).map(tuple)))

    shape = tuple(data.draw(DIMS) for _ in range(nd + 2))
    if not (shape[1].is_Integer and shape[1] > 0 and shape[1] % groups == 0):
        groups = 1
    spec = layers.REGISTRY[f"Conv{nd}d"]
    args = {"out_channels": groups * data.draw(WHOLE), "kernel_size": per_dim(WHOLE), "stride": per_dim(WHOLE),
            "padding": per_dim(st.integers(0, pad)), "dilation": per_dim(WHOLE), "groups": groups, "bias": True,
            "padding_mode": "zeros", "in_channels": shape[1]}
    try:
        assert conv._plain_conv(layers.RuleContext(spec), shape, args, nd) is not None
    except layers.LayerError:  # taken, and refused as the general path refuses (compared below)
        pass
    fast = _rule_result(spec, shape, args)
    with mock.patch.object(conv, "_plain_conv", lambda ctx, shape, a, nd: None):
        general = _rule_result(spec, shape, args)
    assert fast == general
    assert [str(x) for x in fast] == [str(x) for x in general]


# -- rule results kept under their key's hash (layercall._apply), the key beside them ------------------------------


def test_a_result_kept_under_the_same_hash_is_not_another_keys():
    """Every key hashed alike (the worst case of a collision): each layer still gets its own rule's result."""
    text = _plan(["Conv2d(8, 3)", "Conv2d(8, 3, stride=2)", "MaxPool2d(2)", "Conv2d(4, 1)", "ReLU()", "Conv2d(4, 1)"])
    each = convplan.analyse(text)
    with mock.patch.object(layercall, "_APPLIED", {}) as kept, mock.patch.object(layercall, "hash", lambda key: 7,
                                                                                 create=True):
        colliding = convplan.analyse(text)
        assert list(kept) == [7]
    assert [(x.name, x.shape, x.args) for x in colliding.plan.graph.nodes] == \
        [(x.name, x.shape, x.args) for x in each.plan.graph.nodes]
    assert [str(r) for r in colliding.plan.requires] == [str(r) for r in each.plan.requires]


def test_a_call_kept_under_the_same_hash_is_not_another_calls():
    """`LayerCalls.called` keeps a call's resolution under one hash of its key and its shapes' hash: with every
    key hashed alike, a block's lines called with other values and on other shapes (and literal lines on shapes
    that differ in one dim) still get their own arguments, shapes and requirements."""
    text = ("block B(c, k):\n    input [N, C, H, W]\n    Conv2d(c, kernel_size=k)\n    ReLU()\n"
            "    Conv2d(c, kernel_size=1)\n\n"
            "plan P:\n    input [N, 3, H, W]\n    B(8, 3)\n    B(8, 1)\n    B(4, 3)\n    B(4, 3)\n"
            "    MaxPool2d(2)\n    B(8, 3)\n    Conv2d(4, 1)\n    ReLU()\n    Conv2d(4, 3, stride=2)\n")
    each = convplan.analyse(text)
    with mock.patch.object(layercall, "_APPLIED", {}), mock.patch.object(layercall, "hash", lambda key: 7,
                                                                           create=True):
        colliding = convplan.analyse(text)
    assert [(x.name, x.shape, x.args) for x in colliding.plan.graph.nodes] == \
        [(x.name, x.shape, x.args) for x in each.plan.graph.nodes]
    assert [str(r) for r in colliding.plan.requires] == [str(r) for r in each.plan.requires]
    assert [d.message for d in colliding.diagnostics] == [d.message for d in each.diagnostics]


def test_an_identity_rule_is_run_not_kept():
    """A kind whose rule gives its input (`same_shape`: ReLU) is run, not looked up in `_APPLIED`: hashing its
    key cost more than the rule.  Its output is its input's shape object.  Dropout checks its p: kept."""
    text = _plan(["Conv2d(4, 3)", "ReLU()", "Dropout(p=0.2)", "ReLU(inplace=True)", "Conv2d(4, 1)"])
    with mock.patch.object(layercall, "_APPLIED", {}) as kept:
        nodes = convplan.analyse(text).plan.graph.nodes
    assert sorted(key[0] for key, _ in kept.values()) == ["Conv2d", "Conv2d", "Dropout"]
    conv, relu, _, relu2 = nodes[1:5]
    assert relu.shape is conv.shape and relu2.shape is conv.shape


# -- a conv or pool on a chain dim `(x + low)//big + c` worked out in Python ints (shapes.affine) -----------------
# Against the same rule with the chain path off (chain_of giving None): the output, the requirements with their
# messages, the warnings and the W310 tails, printed too; on random chain dims beside numbers and sizes.

CHAINS = st.builds(lambda x, low, big, c: offset(floordiv(offset(x, low), big), c),
                   st.sampled_from(["H", "W", "L"]).map(dim), st.integers(-20, 20), st.integers(1, 8),
                   st.integers(-5, 5))
SPATIAL = st.one_of(CHAINS, CHAINS, CHAINS, st.sampled_from(["H", "W"]).map(dim), st.integers(1, 9).map(sympy.Integer))


def _chain_path_agrees(module, spec, shape, args):
    fast = _rule_result(spec, shape, args)
    with mock.patch.object(module, "chain_of", lambda x: None), _no_kept_steps(module):
        general = _rule_result(spec, shape, args)
    assert fast == general
    assert [str(x) for x in fast] == [str(x) for x in general]
    return fast


class _Forgetful(dict):
    """A cache that never finds what it kept."""

    def get(self, key, default=None):
        return default


def _no_kept_steps(module):
    """conv's chain steps kept per dim (conv._STEPS) off: what the chain path or the general one works out."""
    from convplan.layers import conv

    return mock.patch.object(conv, "_STEPS", _Forgetful()) if module is conv else contextlib.nullcontext()


def _rebuilt(d):
    """An equal dim, another object where its chain has a number (shapes.affine builds the sum anew)."""
    chain = affine.chain_of(d)
    return d if chain is None else affine.expr(chain)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_conv_steps_met_again_equal_working_each_out(data):
    """A conv on a chain dim met before with the same window (conv._STEPS): the output, the requirements with
    their messages and the tails of working it out, for runs of convs on shared dims and on rebuilt equal ones."""
    from convplan.layers import conv

    first = data.draw(CHAINS)
    spatial = (first, data.draw(st.one_of(st.just(first), CHAINS)))
    windows = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2))
    for kernel, stride, padding in data.draw(st.lists(windows, min_size=1, max_size=6)):
        shape = (dim("N"), sympy.Integer(4), *(data.draw(st.sampled_from([d, _rebuilt(d)])) for d in spatial))
        args = {"out_channels": 8, "kernel_size": kernel, "stride": stride, "padding": padding, "dilation": 1,
                "groups": 1, "bias": True, "padding_mode": "zeros", "in_channels": shape[1]}
        spec = layers.REGISTRY["Conv2d"]
        kept, again = _rule_result(spec, shape, args), _rule_result(spec, shape, args)
        with _no_kept_steps(conv):
            fresh = _rule_result(spec, shape, args)
        assert kept == again == fresh
        assert str(kept) == str(again) == str(fresh)
        if fresh[0] != "refused":
            spatial = fresh[0][2:]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3), st.data())
@example(2, None)
def test_conv_on_chain_dims_equals_the_sympy_path(nd, data):
    from convplan.layers import conv

    def per_dim(values):
        return data.draw(st.one_of(values, st.lists(values, min_size=nd, max_size=nd).map(tuple))) if data else 3

    spatial = tuple(data.draw(SPATIAL) for _ in range(nd)) if data else (offset(floordiv(dim("H") - 3, 2), 1),) * nd
    shape = (dim("N"), sympy.Integer(4), *spatial)
    args = {"out_channels": 8, "kernel_size": per_dim(st.integers(1, 7)), "stride": per_dim(st.integers(1, 4)),
            "padding": per_dim(st.integers(0, 3)), "dilation": per_dim(st.integers(1, 3)), "groups": 1,
            "bias": True, "padding_mode": "zeros", "in_channels": shape[1]}
    _chain_path_agrees(conv, layers.REGISTRY[f"Conv{nd}d"], shape, args)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3), st.sampled_from(["Max", "Avg"]), st.data())
def test_pool_on_chain_dims_equals_the_sympy_path(nd, kind, data):
    from convplan.layers import pool

    k = data.draw(st.integers(1, 5))
    value = st.one_of(st.integers(0, 5), st.integers(0, 5).map(sympy.Integer))  # as the binder may give them
    args = {"kernel_size": data.draw(st.one_of(st.just(k), st.just(sympy.Integer(k)))),
            "stride": data.draw(st.one_of(st.none(), st.integers(1, 4), st.integers(1, 4).map(sympy.Integer))),
            "padding": data.draw(st.one_of(st.integers(0, k // 2), value)), "ceil_mode": data.draw(st.booleans())}
    if kind == "Max":
        args.update(dilation=data.draw(st.integers(1, 3)), return_indices=False)
    else:
        args.update(count_include_pad=True, divisor_override=None)
    shape = (dim("N"), sympy.Integer(4), *(data.draw(SPATIAL) for _ in range(nd)))
    _chain_path_agrees(pool, layers.REGISTRY[f"{kind}Pool{nd}d"], shape, args)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3), st.sampled_from(["Max", "Avg"]), st.data(), SIZE_ARG, st.one_of(st.none(), SIZE_ARG),
       st.one_of(*[st.integers(0, 2)] * 4, SIZE_ARG), SIZE_ARG)
def test_pool_with_whole_arguments_skips_only_true_checks(nd, kind, data, kernel, stride, padding, dilation):
    """pool_rule's argument checks left out where every size is whole and valid: the same output, conditions
    and refusals as with them, on random arguments (valid and not, ints, sympy Integers, sizes, tuples)."""
    from convplan.layers import pool

    shape = (dim("N"), sympy.Integer(4), *(data.draw(st.one_of(SPATIAL, DIMS)) for _ in range(nd)))
    args = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": data.draw(st.booleans())}
    if kind == "Max":
        args.update(dilation=dilation, return_indices=False)
    else:
        args.update(count_include_pad=True, divisor_override=None)
    spec = layers.REGISTRY[f"{kind}Pool{nd}d"]
    fast = _rule_result(spec, shape, args)
    with mock.patch.object(pool, "_whole_and_valid", lambda *values: False):
        general = _rule_result(spec, shape, args)
    assert fast == general
    assert [str(x) for x in fast] == [str(x) for x in general]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3), st.data())
@example(2, None)
def test_upsample_on_chain_dims_equals_the_sympy_path(nd, data):
    """An Upsample by a whole factor on a chain dim builds k*dim without Mul.flatten (canonical.times); any
    other factor, and other dims, take floordiv as before.  Then a conv or pool on the multiple (its bound
    and its division by the stride in ints: conditions._chain_bound, canonical._chain_step) against the path
    with both off."""
    from convplan.layers import resample
    from convplan.shapes import canonical, conditions

    spatial = tuple(data.draw(SPATIAL) for _ in range(nd)) if data else (offset(floordiv(dim("H") + 1, 2), 0),) * nd
    shape = (dim("N"), sympy.Integer(4), *spatial)
    factor = data.draw(st.sampled_from([2, 3, 4, 2.0, 1.5, 0.5, 1])) if data else 2
    up = layers.REGISTRY["Upsample"]
    args = {"size": None, "scale_factor": factor, "mode": "nearest", "align_corners": None,
            "recompute_scale_factor": None}
    fast = _rule_result(up, shape, args)
    with mock.patch.object(resample, "_chain_dim", lambda x: False):
        general = _rule_result(up, shape, args)
    assert fast == general
    assert [str(x) for x in fast] == [str(x) for x in general]
    if fast[0] == "refused":
        return
    after = fast[0]
    k, s = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))) if data else (3, 2)
    nxt = (layers.REGISTRY[f"Conv{nd}d"], {"out_channels": 8, "kernel_size": k, "stride": s, "padding": k // 2,
           "dilation": 1, "groups": 1, "bias": True, "padding_mode": "zeros", "in_channels": after[1]}) \
        if not data or data.draw(st.booleans()) else \
        (layers.REGISTRY[f"MaxPool{nd}d"], {"kernel_size": k, "stride": s, "padding": k // 2, "dilation": 1,
                                           "return_indices": False, "ceil_mode": data.draw(st.booleans())})
    conditions._nonneg.cache_clear()
    fast = _rule_result(nxt[0], after, nxt[1])
    conditions._nonneg.cache_clear()
    bound = conditions._chain_bound

    def no_multiple(d):
        return None if d.as_coeff_Add()[1].is_Mul else bound(d)

    with mock.patch.object(canonical, "_chain_step", lambda a, b: None), \
            mock.patch.object(conditions, "_chain_bound", no_multiple):
        general = _rule_result(nxt[0], after, nxt[1])
    conditions._nonneg.cache_clear()
    assert fast == general
    assert [str(x) for x in fast] == [str(x) for x in general]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.data(), st.booleans())
def test_conv_count_in_ints_equals_sympys(nd, data, bias):
    from convplan.layers import conv

    value = st.one_of(WHOLE, st.integers(-2, 0), st.sampled_from(["K"]).map(dim))
    kernel = data.draw(st.one_of(value, st.lists(value, min_size=nd, max_size=nd).map(tuple)))
    args = {"out_channels": data.draw(value), "in_channels": data.draw(st.one_of(value, st.integers(1, 64))),
            "groups": data.draw(st.one_of(WHOLE, value)), "kernel_size": kernel, "bias": bias}
    try:
        fast = conv.conv_count(args, nd)
    except ZeroDivisionError:
        fast = "refused"
    with mock.patch.object(conv, "whole", lambda v: None):
        try:
            general = conv.conv_count(args, nd)
        except ZeroDivisionError:
            general = "refused"
    assert fast == general and str(fast) == str(general) and type(fast) is type(general)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.data(), st.booleans())
def test_batch_norm_without_the_product_equals_with_it(nd, data, running):
    shape = tuple(data.draw(DIMS) for _ in range(nd + 2))
    _batch_norm_agrees(nd, shape, running)


def test_batch_norm_of_one_size_and_ones():
    """N*1*1 is the symbol N: the warning for a batch of one in training."""
    n, c, one = sympy.Symbol("N", integer=True, positive=True), sympy.Integer(8), sympy.Integer(1)
    for nd, shape in ((2, (n, c, one, one)), (1, (one, c, n)), (3, (n, c, one, one, one))):
        _batch_norm_agrees(nd, shape, True)


def _batch_norm_agrees(nd, shape, running):
    from convplan.layers import norm

    spec = layers.REGISTRY[f"BatchNorm{nd}d"]
    args = {"num_features": shape[1], "eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": running}
    fast = _rule_result(spec, shape, args)
    with mock.patch.object(norm, "_two_sizes", lambda factors: False):
        general = _rule_result(spec, shape, args)
    assert fast == general
    assert [str(x) for x in fast] == [str(x) for x in general]


# -- a condition comparing two numbers (`stride != 1`) is decided with Python ints -------------------------------

@settings(max_examples=100, deadline=None)
@given(st.integers(-5, 5), st.integers(-5, 5), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
def test_whole_number_comparisons_equal_sympys(a, b, op):
    text = f"plan P(a={a}, b={b}):\n    input [N, 4]\n    if a {op} b:\n        Linear(8)\n"
    plan = convplan.parse(text)
    assert (len(plan.layers) == 1) == bool(sympy.Rel(sympy.Integer(a), sympy.Integer(b), op))


# -- a node's scope kept while the walker stays in one frame and container (State._scope_here) ----------------
# Random plans of blocks calling blocks, inside and around numbered containers (`name = repeat`), named and
# not, some calls refused: every node's scope (and name, path, owner) and the module tree agree with the scope
# worked out anew for every node.

# (containers side by side whose layers are the frame's own, `u` then `v`: the one after may not keep the scope
# of the one before, though the frame and the depth are the same)
NEST_LINES = ["ReLU()", "Conv2d(4, 1)", "s = repeat 2:\n        ReLU()\n        Inner()", "Inner()", "i = Inner()",
              "repeat 2:\n        Inner()", "Conv2d(4, 1, bad=1)", "t = sequential:\n        ReLU()\n        Inner()",
              "u = repeat 2:\n        ReLU()", "v = sequential:\n        Conv2d(4, 1)"]
PLAN_NEST = ["Outer()", "o = Outer()", "Inner()", "r = repeat 2:\n        Outer()\n        ReLU()", "ReLU()",
             "q = sequential:\n        Inner()\n        Outer()", "Nope()", "p = repeat 2:\n        ReLU()",
             "w = sequential:\n        Conv2d(4, 1)"]


def _nested_plan(outer, plan) -> str:
    body = "".join(f"    {line}\n" for line in outer)
    calls = "".join(f"    {line}\n" for line in plan)
    return ("block Inner():\n    input x [N, C, H, W]\n    ReLU()\n    Conv2d(4, 1)\n\n"
            f"block Outer():\n    input x [N, C, H, W]\n{body}\n"
            f"plan P:\n    input [N, 4, H, W]\n{calls}")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(NEST_LINES), min_size=1, max_size=5),
       st.lists(st.sampled_from(PLAN_NEST), min_size=1, max_size=5))
@example(["s = repeat 2:\n        ReLU()\n        Inner()", "ReLU()"], ["Outer()", "r = repeat 2:\n        Outer()\n"
                                                                        "        ReLU()", "Outer()"])
@example(["u = repeat 2:\n        ReLU()", "v = sequential:\n        Conv2d(4, 1)"],
         ["p = repeat 2:\n        ReLU()", "w = sequential:\n        Conv2d(4, 1)", "Outer()"])
def test_scopes_kept_equal_scopes_worked_out(outer, plan):
    from convplan import scope as scope_module

    text = _nested_plan(outer, plan)
    kept = convplan.analyse(text)
    with mock.patch.object(scope_module.State, "_scope_here",
                           lambda self, frames, frame, containers: tuple(self._scope())):
        each = convplan.analyse(text)
    assert [(d.code, d.message, d.span) for d in kept.diagnostics] == \
        [(d.code, d.message, d.span) for d in each.diagnostics]
    assert (kept.plan is None) == (each.plan is None)
    if each.plan is None:
        return
    assert [(x.name, x.scope, x.path, x.owner) for x in kept.plan.graph.nodes] == \
        [(x.name, x.scope, x.path, x.owner) for x in each.plan.graph.nodes]
    assert kept.plan.graph.tree == each.plan.graph.tree
    assert all(x.scope for x in kept.plan.graph.nodes if len(x.path) > 1)  # a submodule's layer is in a scope


# -- a layer's node made in one frame (State.make_layer) is the node the general path makes ----------------
# The general path: `_place` (scope, file, path, owner, the tree entry) then `new_node`.  Random nested plans and
# block plans (numbered containers, blocks from frames, refused names): every node, field by field and in the
# dataclass's field order, and the module tree agree.

def _general_make_layer(self, name, inputs, shape, span, kind, args, given, written):
    from convplan import scope as scope_module

    fields = {"kind": kind, "args": args, "given": given, "written": written}
    self._place(fields, "layer", name, span)
    node = scope_module.new_node(len(self.nodes), "layer", name, inputs, shape, span, fields)
    self.nodes.append(node)
    return node


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.builds(_nested_plan, st.lists(st.sampled_from([*NEST_LINES, "forward = ReLU()"]), min_size=1,
                                                  max_size=5),
                           st.lists(st.sampled_from(PLAN_NEST), min_size=1, max_size=5)),
                 st.builds(_block_plan, st.lists(st.sampled_from(BLOCK_LINES), min_size=1, max_size=6),
                           st.lists(st.sampled_from([*BLOCK_ARGS, *PLAN_LINES]), min_size=1, max_size=7))))
def test_layer_nodes_made_in_one_frame_equal_the_general_path(text):
    from convplan import scope as scope_module

    fast = convplan.analyse(text)
    with mock.patch.object(scope_module.State, "make_layer", _general_make_layer):
        general = convplan.analyse(text)
    assert [(d.code, d.message, d.span) for d in fast.diagnostics] == \
        [(d.code, d.message, d.span) for d in general.diagnostics]
    assert (fast.plan is None) == (general.plan is None)
    if general.plan is None:
        return
    for a, b in zip(fast.plan.graph.nodes, general.plan.graph.nodes, strict=True):
        assert slotted(a) == slotted(b)
    assert fast.plan.graph.tree == general.plan.graph.tree


# -- a condition found again (every layer of a stack finds `H >= 3`) is not worked out and printed again --------
# Random stacks of convs and pools, with `?` unknowns an assertion solves, merges of branches and blocks called
# twice: the requirements, their reasons and places, and the diagnostics equal those of working out every one.

REQ_LINES = ["Conv2d(8, 3)", "Conv2d(8, 3, stride=2)", "MaxPool2d(2)", "MaxPool2d(3, stride=2, ceil_mode=True)",
             "Conv2d(8, kernel_size=?k, padding=1) -> [N, 8, H - 2, W - 2]", "Conv2d(8, 5, padding=?p)",
             "AvgPool2d(2)", "cat(dim=1):\n        branch:\n            Conv2d(4, 3)\n        branch:\n"
             "            Conv2d(4, 3, stride=2)", "add:\n        branch:\n            MaxPool2d(2)\n        branch:\n"
             "            AvgPool2d(2)", "Twice()", "Conv2d(8, 3, padding=1)"]


def _req_plan(lines) -> str:
    return ("block Twice():\n    input [N, C, H, W]\n    Conv2d(8, 3)\n    MaxPool2d(2)\n\n"
            "plan P:\n    input [N, 3, H, W]\n" + "".join(f"    {line}\n" for line in lines))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(REQ_LINES), min_size=1, max_size=8))
@example(["Conv2d(8, 3)", "Conv2d(8, 3)", "Conv2d(8, kernel_size=?k, padding=1) -> [N, 8, H - 2, W - 2]"])
def test_conditions_found_again_equal_working_each_out(lines):
    from convplan import requirements

    text = _req_plan(lines)
    kept = convplan.analyse(text)
    with mock.patch.object(requirements, "_known", lambda kept, cond: False):
        each = convplan.analyse(text)
    assert [(d.code, d.message, d.span, d.hints) for d in kept.diagnostics] == \
        [(d.code, d.message, d.span, d.hints) for d in each.diagnostics]
    assert (kept.plan is None) == (each.plan is None)
    if each.plan is not None:
        assert [(str(r), r.reason, r.layer, r.span, r.file) for r in kept.plan.requires] == \
            [(str(r), r.reason, r.layer, r.span, r.file) for r in each.plan.requires]


def _every_printed(st_, kept):
    """requirements._distinct as it was: every condition printed, one per printed form, then the strongest bounds."""
    from convplan import requirements
    from convplan.shapes import pyrepr

    found = {}
    for i, cond in kept:
        found.setdefault(pyrepr(cond), requirements._requirement(st_, i, cond))
    return requirements._strongest(found.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(REQ_LINES), min_size=1, max_size=8))
@example(["Conv2d(8, 3)", "MaxPool2d(3, stride=2, ceil_mode=True)", "Conv2d(8, 3)", "Twice()"])
def test_weaker_bounds_dropped_unprinted_equal_every_one_printed(lines):
    fast, each = _against_the_old_way(lines, "_distinct", _every_printed)
    if each.plan is not None:
        assert [(str(r), r.reason, r.layer, r.span, r.file) for r in fast.plan.requires] == \
            [(str(r), r.reason, r.layer, r.span, r.file) for r in each.plan.requires]


def test_bounds_on_sizes_shown_alike_are_one_printed_form():
    # two sizes that print alike (a stand-in's text cut at 40 characters can be): their bounds of one value are
    # one printed form, the first found kept (b's H >= 5, so a keeps H >= 3: not a's own H >= 5, "c")
    from types import SimpleNamespace

    from convplan import requirements
    from convplan.errors import Span

    a, b = sympy.Symbol("H", integer=True, positive=True), sympy.Symbol("H", integer=True)
    found = [(a >= 3, "a"), (b >= 5, "b"), (a >= 5, "c"), (b >= 5, "d"), (dim("W") >= 2, "e"), (a >= 5, "f")]
    conds = [(c, m, "l", Span(k + 1, 1, k + 1, 2), ()) for k, (c, m) in enumerate(found)]
    st_ = SimpleNamespace(conds=type("Conds", (list,), {})(conds), diag=SimpleNamespace(file="<plan>"))
    st_.conds.frames = [None] * len(conds)
    kept = [(k, c) for k, (c, _) in enumerate(found)]
    want = [(str(r), r.reason) for r in _every_printed(st_, kept)]
    assert [(str(r), r.reason) for r in requirements._distinct(st_, kept)] == want
    assert want == [("H >= 3", "a"), ("H >= 5", "b"), ("W >= 2", "e")]


def _allowed_every_requirement(requires):
    """requirements._allowed_sizes as it was: each size tried against every requirement on its symbol alone."""
    from convplan.shapes import holds

    def allowed(sym):
        own = [r.condition for r in requires if r.condition.free_symbols == {sym}]
        low = max([int(c.rhs) for c in own if isinstance(c, sympy.GreaterThan) and c.lhs == sym
                   and c.rhs.is_Integer] + [1])
        return low, lambda v: all(holds(c, {sym: sympy.Integer(v)}) for c in own)

    return allowed


TAIL_LINES = [*REQ_LINES, "Conv2d(8, 3, stride=2)", "Conv2d(8, 4, stride=3)", "MaxPool2d(2)",
              "add:\n        branch:\n            MaxPool2d(2)\n        branch:\n            Conv2d(8, 2, stride=2)",
              "add:\n        branch:\n            MaxPool2d(2)\n        branch:\n"
              "            Conv2d(8, 3, stride=2, padding=1)",
              "Conv2d(8, 3, padding=1)"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(TAIL_LINES), min_size=1, max_size=8))
@example(["Conv2d(8, 3, stride=2)", "add:\n        branch:\n            MaxPool2d(2)\n        branch:\n"
          "            Conv2d(8, 3, stride=2, padding=1)", "Conv2d(8, 4, stride=3)"])
def test_w310_examples_tried_past_the_bound_equal_every_requirement_tried(lines):
    _against_the_old_way(lines, "_allowed_sizes", _allowed_every_requirement)


def _against_the_old_way(lines: list, name: str, old) -> tuple:
    """The plan of `lines` analysed as it is and with requirements.`name` the old way: the same diagnostics."""
    from convplan import requirements

    text = _req_plan(lines)
    fast = convplan.analyse(text)
    with mock.patch.object(requirements, name, old):
        each = convplan.analyse(text)
    assert [(d.code, d.message, d.span, d.hints) for d in fast.diagnostics] == \
        [(d.code, d.message, d.span, d.hints) for d in each.diagnostics]
    return fast, each


REFUTED = ("block B():\n    input [N, C, H, W]\n    MaxPool2d(3, stride=1, padding=?q)\n\n"
           "plan P:\n    input [N, 8, H, W]\n    MaxPool2d(3, stride=1, padding=?p) -> [N, 8, H + 2, W + 2]\n    B()\n"
           "    MaxPool2d(3, stride=1, padding=?p)\n    Conv2d(8, 3)\n    MaxPool2d(3, stride=1, padding=?p)\n"
           "    MaxPool2d(2, padding=?p)\n    MaxPool2d(3, stride=1, padding=?p)\n")


def test_a_condition_refuted_is_reported_at_every_place_that_found_it():
    # `?p = 2` refutes `padding <= 1` (found three times, the same object) and `padding <= 2 // 2`, in between:
    # each finding is an E302 of its own, in the order found, as when every finding is worked out
    from convplan import requirements

    found = convplan.analyse(REFUTED).diagnostics
    with mock.patch.object(requirements, "_known", lambda kept, cond: False):
        each = convplan.analyse(REFUTED).diagnostics
    assert [(d.code, d.span.line) for d in found if d.code == "E302"] == [("E302", line) for line in (7, 9, 11, 12, 13)]
    assert [(d.code, d.message, d.span, d.hints) for d in found] == [(d.code, d.message, d.span, d.hints) for d in each]


# -- a broadcasting merge of operands of one shape (a residual add) skips the column-by-column rule ----------
# shapes/broadcast._all_equal: residual plans (equal shapes, broadcast ones, clashing ones) checked with and
# without it (tests/test_broadcast.py checks it against the columns on random shapes).

RESIDUALS = ["add:\n        branch:\n            Conv2d(8, 3, padding=1)\n        branch:\n            pass",
             "add:\n        branch:\n            Conv2d(8, 1)\n        branch:\n            Conv2d(8, 3, padding=1)",
             "mul:\n        branch:\n            AdaptiveAvgPool2d(1)\n        branch:\n            pass",
             "add:\n        branch:\n            Conv2d(8, 3)\n        branch:\n            pass",
             "add:\n        branch:\n            MaxPool2d(2)\n        branch:\n            AvgPool2d(2)",
             "add:\n        branch:\n            Conv2d(8, 1, stride=2)\n        branch:\n            MaxPool2d(2)",
             "Conv2d(8, 3, padding=1)", "Conv2d(8, kernel_size=?k, padding=1)"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(RESIDUALS), min_size=1, max_size=5))
def test_residual_merges_equal_the_rule(lines):
    from convplan.shapes import broadcast

    text = "plan P:\n    input [N, 8, H, W]\n" + "".join(f"    {line}\n" for line in lines)
    fast = convplan.analyse(text)
    with mock.patch.object(broadcast, "_all_equal", lambda shapes: False):
        rule = convplan.analyse(text)
    assert [(d.code, d.message, d.span, d.hints) for d in fast.diagnostics] == \
        [(d.code, d.message, d.span, d.hints) for d in rule.diagnostics]
    assert (fast.plan is None) == (rule.plan is None)
    if rule.plan is not None:
        assert [(x.name, x.op, x.shape) for x in fast.plan.graph.nodes] == \
            [(x.name, x.op, x.shape) for x in rule.plan.graph.nodes]
        assert [str(r) for r in fast.plan.requires] == [str(r) for r in rule.plan.requires]


# -- a stack's line met again on the same shape object is found by identity (LayerCalls.same) -----------------
# Random stacks of literal lines, many of them keeping their input's shape (a fixed point: the same shape object
# again), some refused: checked with the caches and with every call resolved anew, the two agree.

STACK_LINES = ["Conv2d(8, 3, padding=1)", "Conv2d(8, 3, padding=1)", "ReLU()", "BatchNorm2d()", "Dropout(p=0.5)",
               "Conv2d(8, 3, stride=2, padding=1)", "Upsample(scale_factor=2)", "MaxPool2d(2)", "Conv2d(8, 1)",
               "Conv2d(8, 1, bad=1)", "Flatten()", "Linear(4)", "Conv2d(8, 3, padding=1) -> [N, 8, H, W]",
               "y = Conv2d(8, 3, padding=1)"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(STACK_LINES), min_size=1, max_size=12))
@example(["Conv2d(8, 3, padding=1)", "Flatten()", "Conv2d(8, 3, padding=1)", "Linear(4)", "Conv2d(8, 3, padding=1)"])
def test_stack_lines_met_again_equal_resolving_each(lines):
    text = _plan(lines).replace("[N, 3, H, W]", "[N, 8, H, W]")
    kept, each = _checked(text, True), _checked(text, False)
    assert [(d.code, d.message, d.span, d.hints) for d in kept.diagnostics] == \
        [(d.code, d.message, d.span, d.hints) for d in each.diagnostics]
    assert (kept.plan is None) == (each.plan is None)
    if each.plan is not None:
        for a, b in zip(kept.plan.graph.nodes, each.plan.graph.nodes, strict=True):
            assert (a.name, a.kind, a.shape, a.args, a.given, a.path, a.meta) == \
                (b.name, b.kind, b.shape, b.args, b.given, b.path, b.meta)
        assert [str(r) for r in kept.plan.requires] == [str(r) for r in each.plan.requires]


# -- integer expressions whose every name holds a whole number are computed with Python ints (values._whole) ---
# Random expressions (+ - * // % / **, negation, literals past 18 digits, divisors of 0 and below, sizes without a
# value, floats) as a condition, a layer argument and a block argument: results and diagnostics equal sympy's path.

_LEAVES = st.sampled_from(["a", "b", "c", "L", "f", "0", "1", "2", "7", "999999999999"])


def _expr(leaves):
    return st.recursive(leaves, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%", "/", "**"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"(-{e})")), max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(_expr(_LEAVES), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _expr(_LEAVES),
       st.integers(-3, 9), st.integers(-3, 9))
@example("(a * 4)", "!=", "c", 64, 1)
@example("(999999999999 * 999999999999)", "==", "1", 1, 1)
@example("(a // b)", "<", "(a % b)", 7, 0)
def test_whole_number_expressions_equal_sympys(left, op, right, a, b):
    from convplan import values

    text = (f"block B(k):\n    input [N, C]\n    Linear(k)\n\n"
            f"plan P(a={a}, b={b}, c=8, f=0.5):\n    input [N, L]\n    if {left} {op} {right}:\n        Linear(8)\n"
            f"    Linear({left})\n    B({right})\n    B(k={left} if {left} {op} {right} else 3)\n")
    fast = convplan.analyse(text)
    with mock.patch.object(values, "_whole", lambda expr, names: None):
        slow = convplan.analyse(text)
    assert [(d.code, d.message, d.span, d.hints) for d in fast.diagnostics] == \
        [(d.code, d.message, d.span, d.hints) for d in slow.diagnostics]
    assert (fast.plan is None) == (slow.plan is None)
    if slow.plan is not None:
        assert [(x.name, x.shape, x.args) for x in fast.plan.graph.nodes] == \
            [(x.name, x.shape, x.args) for x in slow.plan.graph.nodes]
        for x, y in zip(fast.plan.graph.nodes, slow.plan.graph.nodes, strict=True):
            assert [type(v) for v in x.args.values()] == [type(v) for v in y.args.values()]


# -- a name check_name accepted is not checked again (scope._GOOD_NAMES); one it refused is refused every time --

NAMES = st.one_of(st.sampled_from(["x", "planes", "class", "match", "len", "__init__", "a" * 65, "é", "C", "N_2"]),
                  st.text(alphabet="abN_1é", min_size=1, max_size=6))


@settings(max_examples=60, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=6))
def test_names_checked_again_get_the_first_verdict(names):
    from convplan import scope as scope_module
    from convplan.errors import Span

    span = Span(1, 1, 1, 2)
    fresh = scope_module.ScopedCollector("", "<t>")
    with mock.patch.object(scope_module, "_GOOD_NAMES", set()):  # every name worked out anew
        verdicts = []
        for name in names:
            scope_module._GOOD_NAMES.clear()
            verdicts.append(scope_module.check_name(fresh, name, span, "name"))
    kept = scope_module.ScopedCollector("", "<t>")
    for _ in range(2):  # the second time, the accepted names are known
        assert [scope_module.check_name(kept, name, span, "name") for name in names] == verdicts
    assert kept.reports == 2 * fresh.reports == 2 * verdicts.count(False)


# -- a call none of whose arguments is a tuple or names a tensor skips the tensor scan (Walker._call): the scan
# would find no tensor and give every argument back, reporting nothing ------------------------------------------

ARG_VALUES = ["x", "y", "p", "nope", "3", "2.5", "(x, y)", "(p, 2)", "True", "p * 2"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([None, None, "k", "bias"]), st.sampled_from(ARG_VALUES)), max_size=4),
       st.sampled_from(["Conv2d", "LSTM", "add", "Blk"]))
def test_calls_naming_no_tensor_are_what_the_scan_gives(args, kind):
    from convplan import nodes as n
    from convplan.parser import parse_module
    from convplan.scope import Frame, State, Tensor
    from convplan.walker import Walker

    written = ", ".join(value if key is None else f"{key}={value}" for key, value in args)
    text = f"plan P(p=2):\n    input x [N, 4, H, W]\n    {kind}({written})\n"
    try:
        call = parse_module(text, "<t>").plans[0].body[1].call
    except (convplan.PlanError, AttributeError):
        return  # not a call (a merge with branches, say) or not valid syntax: nothing to scan
    names = {"x": Tensor(0), "y": Tensor(1), "p": sympy.Integer(2)}
    if any(type(a.value) is n.Tuple or type(a.value) is n.Name and type(names.get(a.value.id)) is Tensor
           for a in call.args):
        return  # the walker scans this one
    state = State(text, "<t>", {}, {})
    state.diag.frames.append(Frame(dict(names), state.library, "<t>", text))
    assert Walker(state)._tensor_args(call, names) == ([], call.args)
    assert state.diag.reports == 0
