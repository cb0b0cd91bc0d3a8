import random

import pytest
import sympy
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from convplan.shapes import (
    FloorDiv,
    IntMod,
    at_least,
    ceildiv,
    dim,
    divides,
    equal,
    evaluate,
    floordiv,
    is_int_const,
    mod,
    ops,
    pyrepr,
    unknown,
)

L, H, W = dim("L"), dim("H"), dim("W")
p = unknown("p")


def conv_len(x, k, s=1, pad=0, d=1):
    """Conv/pool output length, symbolic or int (same formula as torch)."""
    return floordiv(x + 2 * pad - d * (k - 1) - 1, s) + 1


def int_conv_len(x, k, s=1, pad=0, d=1):
    return (x + 2 * pad - d * (k - 1) - 1) // s + 1


def tconv_len(x, k, s=1, pad=0, d=1, out_pad=0):
    return (x - 1) * s - 2 * pad + d * (k - 1) + out_pad + 1


def py_eval(e, values):
    """Evaluate pyrepr output as Python (tests only, on printer output)."""
    return eval(pyrepr(e), {"__builtins__": {}}, dict(values))  # noqa: S307 (our printer output)


def assert_stable(e):
    """Rebuilding any node with evaluation leaves it unchanged (canonical)."""
    for node in sympy.preorder_traversal(e):
        if not node.is_Atom:
            assert node.func(*node.args) == node, node


# ---------------------------------------------------------------- symbols

def test_dim_and_unknown_symbols():
    assert dim("L") is dim("L")
    assert L.is_integer and L.is_positive
    assert p.is_integer and p.is_positive is None
    assert unknown("p") is p
    with pytest.raises(ValueError):
        dim("not a name")
    with pytest.raises(ValueError):
        dim("lambda")


def test_is_int_const():
    assert is_int_const(3) and is_int_const(sympy.Integer(-2))
    assert not is_int_const(L) and not is_int_const(True)
    assert not is_int_const(sympy.Rational(1, 2)) and not is_int_const(2.0)


# ---------------------------------------------------------------- floordiv

def test_floordiv_constants():
    assert floordiv(7, 2) == 3 and floordiv(-7, 2) == -4
    assert isinstance(floordiv(7, 2), sympy.Integer)
    assert floordiv(L, 1) == L
    assert floordiv(L + 2 * p - 2, 1) == L + 2 * p - 2
    assert floordiv(7, -2) == -4
    with pytest.raises(ZeroDivisionError):
        floordiv(L, 0)


def test_floordiv_pulls_constants_and_multiples():
    assert floordiv(L - 1, 2) + 1 == FloorDiv(L + 1, 2, evaluate=False)
    assert floordiv(L + 2 * p - 3, 2) == floordiv(L + 1, 2) + p - 2
    assert floordiv(4 * L + 6 * H + 5, 2) == 2 * L + 3 * H + 2
    assert floordiv(2 * L + 1, 2) == L                       # gcd rule
    assert floordiv(2 * L + 2 * H + 3, 4) == floordiv(L + H + 1, 2)
    assert floordiv(L * (H + 1), H + 0 + 1) == FloorDiv(L * (H + 1), H + 1)
    assert floordiv(L * (H + 1) + 3, 2) == FloorDiv(H * L + L + 1, 2) + 1
    assert floordiv((L + 1) ** 2, 2) == FloorDiv(L**2 + 1, 2) + L
    assert floordiv(-((L + 1) ** 2), 2) == FloorDiv(-(L**2) + 1, 2) - L - 1


def test_five_stride2_stages():
    x = H
    for _ in range(5):
        x = conv_len(x, k=3, s=2, pad=1)
    assert x == FloorDiv(H + 31, 32, evaluate=False)
    assert pyrepr(x) == "(H + 31)//32"
    assert ops(x) == 2


def test_nested_merge_with_other_terms():
    assert floordiv(floordiv(L, 2) + W, 3) == FloorDiv(L + 2 * W, 6)
    assert floordiv(2 * floordiv(L + 1, 2) + 1, 4) == floordiv(L + 1, 4)
    # k*(y//m) with gcd(k, b) == 1 is left alone (correct, just not merged)
    e = floordiv(3 * floordiv(L, 2), 2)
    assert isinstance(e, FloorDiv) and e.args == (3 * FloorDiv(L, 2), 2)


def test_subs_recanonicalises():
    e = floordiv(L + 1, 2) + 3
    assert e.subs(L, 7) == 7 and isinstance(e.subs(L, 7), sympy.Integer)
    assert e.xreplace({L: floordiv(H + 1, 2)}) == floordiv(H + 3, 4) + 3
    assert e.subs(L, 2 * W) == W + 3
    assert FloorDiv(sympy.Integer(9), 4) == 2


def test_ceildiv():
    assert ceildiv(L, 2) == FloorDiv(L + 1, 2)
    assert ceildiv(7, 2) == 4 and ceildiv(-7, 2) == -3
    for v in range(1, 20):
        assert evaluate(ceildiv(L + 3, 4), {"L": v}) == -(-(v + 3) // 4)
    s = unknown("s")
    e = ceildiv(L, s)
    assert evaluate(e, {"L": 7, "s": 2}) == 4


# ---------------------------------------------------------------- mod

def test_mod():
    assert mod(7, 3) == 1 and mod(-7, 3) == 2 and mod(7, -3) == -2
    assert mod(L * 2, 2) == 0
    assert mod(L + 4, 2) == mod(L, 2)
    assert mod(mod(L, 8), 4) == mod(L, 4)
    assert mod(2 * L + 2, 4) == 2 * mod(L + 1, 2)
    assert pyrepr(mod(L, 2)) == "L % 2"
    assert pyrepr(mod(2 * L + 3, 4)) == "(2*L + 3) % 4"
    assert equal(mod(L, 2), L - 2 * floordiv(L, 2)) is True
    for v in range(-9, 9):
        assert evaluate(mod(2 * L + 3, 4), {"L": v}) == (2 * v + 3) % 4
    assert isinstance(mod(L, H), IntMod)


def test_divides():
    c = divides(H, 16)
    assert pyrepr(c) == "H % 16 == 0"
    assert divides(4 * H, 2) == sympy.true
    assert divides(4 * H + 1, 2) == sympy.false
    assert evaluate(c, {"H": 32}) is True and evaluate(c, {"H": 33}) is False


# ---------------------------------------------------------------- printing

def test_pyrepr_forms():
    assert pyrepr(32 * floordiv(L, 2)) == "32*(L//2)"
    assert pyrepr(H * W * 64) == "64*H*W"
    assert pyrepr(sympy.Ge(L, 3)) == "L >= 3"
    assert pyrepr(-floordiv(L, 2)) == "-(L//2)"
    assert pyrepr(L - floordiv(L, 2)) == "L - L//2"
    assert pyrepr(L - floordiv(L + 1, 2) - 3) == "L - (L + 1)//2 - 3"
    assert pyrepr(-floordiv(L, 2) - mod(L, 3)) in ("-(L//2) - L % 3", "-(L % 3) - L//2")
    assert pyrepr(H - 2 * floordiv(L, 2) - 1) == "H - 2*(L//2) - 1"
    assert pyrepr(-2 * floordiv(L, 2)) == "-2*(L//2)"
    assert pyrepr(-mod(L, 2)) == "-(L % 2)"
    assert pyrepr(-L**2) == "-L**2"
    assert pyrepr(floordiv(L, 2) ** 2) == "(L//2)**2"
    assert pyrepr(5) == "5" and pyrepr(sympy.true) == "True"
    assert pyrepr(sympy.And(sympy.Ge(L, 2), sympy.Ge(H, 3))) in (
        "L >= 2 and H >= 3", "H >= 3 and L >= 2")
    # str() stays sympy's (its negative-product printing would misplace //)
    assert str(floordiv(L + 1, 2)) == "FloorDiv(L + 1, 2)"


@pytest.mark.parametrize("e", [
    32 * floordiv(L, 2), floordiv(-floordiv(L, 2), 2), floordiv(L * H + 1, 3),
    mod(2 * floordiv(L, 3) + 1, 4) * W, -floordiv(-L, 3), floordiv(L, 2) ** 2,
    floordiv(floordiv(L, 2) * floordiv(H, 3), 5), L - 3 * mod(H, 4),
])
def test_pyrepr_evals_like_evaluate(e):
    for vals in [{"L": 1, "H": 1, "W": 1}, {"L": 17, "H": 6, "W": 5}, {"L": 100, "H": 31, "W": 2}]:
        assert py_eval(e, vals) == evaluate(e, vals)


def exprs():
    """Random (expression, python function) pairs over L, H, p, using every
    operation we canonicalise and print."""
    sym = st.sampled_from([L, H, p]).map(lambda x: (x, lambda v, n=x.name: v[n]))
    num = st.integers(-7, 7).map(lambda k: (sympy.Integer(k), lambda v, k=k: k))
    divisor = st.sampled_from([1, 2, 3, 4, 6, -2])

    def binop(f, g):
        return lambda t: (f(t[0][0], t[1][0]),
                          lambda v, a=t[0][1], b=t[1][1]: g(a(v), b(v)))

    def divop(f, g):
        return lambda t: (f(t[0][0], t[1]), lambda v, a=t[0][1], d=t[1]: g(a(v), d))

    def extend(inner):
        return st.one_of(
            st.tuples(inner, inner).map(binop(lambda a, b: a + b, lambda a, b: a + b)),
            st.tuples(inner, inner).map(binop(lambda a, b: a - b, lambda a, b: a - b)),
            st.tuples(inner, inner).map(binop(lambda a, b: a * b, lambda a, b: a * b)),
            inner.map(lambda t: (-t[0], lambda v, a=t[1]: -a(v))),
            st.tuples(inner, divisor).map(divop(floordiv, lambda a, d: a // d)),
            st.tuples(inner, divisor).map(divop(ceildiv, lambda a, d: -(-a // d))),
            st.tuples(inner, divisor).map(divop(mod, lambda a, d: a % d)),
        )
    return st.recursive(sym | num, extend, max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(exprs(), st.integers(1, 50), st.integers(1, 50), st.integers(-20, 20))
def test_random_exprs_evaluate_and_print(pair, lv, hv, pv):
    e, f = pair
    vals = {"L": lv, "H": hv, "p": pv}
    assert evaluate(e, vals) == f(vals)
    assert py_eval(e, vals) == f(vals)
    assert_stable(e)


# ---------------------------------------------------------------- conditions

def test_at_least():
    assert at_least(floordiv(L - 2, 2) + 1, 1) == sympy.Ge(L, 2)
    assert pyrepr(at_least(floordiv(L - 2, 2) + 1, 1)) == "L >= 2"
    assert at_least(L, 1) == sympy.true
    assert at_least(L + H, 2) == sympy.true
    assert at_least(L, 0) == sympy.true
    assert at_least(-L, 0) == sympy.false
    assert at_least(sympy.Integer(3), 4) == sympy.false
    assert at_least(floordiv(H + 31, 32), 1) == sympy.true
    assert at_least(floordiv(H + 31, 32), 2) == sympy.Ge(H, 33)
    assert at_least(floordiv(L + 1, 2) + 3, 1) == sympy.true
    assert at_least(2 * L, 5) == sympy.Ge(L, 3)
    assert at_least(-L, -5) == sympy.Le(L, 5)
    c = at_least(L + 2 * p - 2, 1)
    assert isinstance(c, sympy.Rel) and pyrepr(c) == "L + 2*p >= 3"
    assert at_least(p, 0) == sympy.Ge(p, 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(-5, 5), st.integers(-3, 3)),
                min_size=1, max_size=5),
       st.integers(-3, 6), st.integers(1, 300))
def test_at_least_matches_ints(chain, k, v):
    e = L
    for s, a, c in chain:
        e = floordiv(e + a, s) + c
    cond = at_least(e, k)
    assert evaluate(cond, {"L": v}) == (evaluate(e, {"L": v}) >= k)


@settings(max_examples=300, deadline=None)
@given(exprs(), exprs(), st.integers(-4, 6), st.integers(1, 6),
       st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(-9, 9)),
                min_size=1, max_size=4))
def test_conditions_sound_on_random_exprs(p1, p2, k, m, points):
    (e, f), (e2, f2) = p1, p2
    ge, dv, eq = at_least(e, k), divides(e, m), equal(e, e2)
    for lv, hv, pv in points:
        vals = {"L": lv, "H": hv, "p": pv}
        assert evaluate(ge, vals) == (f(vals) >= k)
        assert evaluate(dv, vals) == (f(vals) % m == 0)
        if eq is not None:
            assert eq == (f(vals) == f2(vals))


def test_equal():
    assert equal(floordiv(L + 1, 2), floordiv(L - 1, 2) + 1) is True
    assert equal(L * (H + 1), L * H + L) is True
    assert equal(L, L + 1) is False
    assert equal(floordiv(L, 2) + 1, floordiv(L, 2)) is False
    assert equal(L + H, L) is False            # H >= 1
    assert equal(L, floordiv(L, 2)) is None
    assert equal(L, H) is None


def test_evaluate():
    e = floordiv(L + 2 * p - 3, 2) * H
    assert evaluate(e, {"L": 9, "p": 1, "H": 3}) == ((9 + 2 - 3) // 2) * 3
    assert type(evaluate(e, {"L": 9, "p": 1, "H": 3})) is int
    part = evaluate(e, {"L": 9, "p": 1})
    assert part == 4 * H
    assert evaluate(e, {}) == e


# ---------------------------------------------------------------- chains

step = st.one_of(
    st.tuples(st.just("div"), st.integers(-6, 6), st.integers(1, 5), st.integers(-3, 3)),
    st.tuples(st.just("mul"), st.integers(1, 4), st.integers(-4, 4)),
)


def apply_chain(x, chain, div):
    for kind, *args in chain:
        if kind == "div":
            a, s, c = args
            x = div(x + a, s) + c
        else:
            s, c = args
            x = x * s + c
    return x


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=12), st.integers(1, 10_000))
def test_chain_matches_python_ints(chain, v):
    e = apply_chain(L, chain, floordiv)
    expect = apply_chain(v, chain, lambda a, b: a // b)
    assert evaluate(e, {"L": v}) == expect
    assert py_eval(e, {"L": v}) == expect
    assert_stable(e)
    if all(kind == "div" for kind, *_ in chain):
        assert ops(e) <= 6


@settings(max_examples=100, deadline=None)
@given(st.lists(step, max_size=6), st.lists(step, max_size=6), st.integers(1, 500))
def test_substituting_chains_composes(c1, c2, v):
    inner = apply_chain(H, c1, floordiv)
    outer = apply_chain(L, c2, floordiv)
    composed = outer.xreplace({L: inner})
    assert evaluate(composed, {"H": v}) == apply_chain(
        apply_chain(v, c1, lambda a, b: a // b), c2, lambda a, b: a // b)
    assert_stable(composed)
    if all(k == "div" for k, *_ in c1 + c2):
        assert ops(composed) <= 6


def test_long_chain_stays_small():
    # 500 layers, 250 of them stride 2: one term, tiny.
    x = L
    for i in range(500):
        x = conv_len(x, k=3, s=2 if i % 2 else 1, pad=1)
    assert ops(x) <= 6
    assert x == FloorDiv(L + 2**250 - 1, 2**250)
    assert evaluate(x, {"L": 3 * 2**250 + 5}) == 4


# ---------------------------------------------------------------- torch

torch = pytest.importorskip("torch")

layer = st.one_of(
    st.tuples(st.just("conv"), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2),
              st.integers(1, 2)),
    st.tuples(st.just("pool"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2)),
    st.tuples(st.just("tconv"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 1),
              st.integers(0, 2)),
)


def torch_module(spec):
    kind, k, s, pad, *rest = spec
    if kind == "conv":
        return torch.nn.Conv1d(1, 1, k, stride=s, padding=pad, dilation=rest[0])
    if kind == "pool":
        return torch.nn.MaxPool1d(k, stride=s, padding=min(pad, k // 2))
    return torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=pad,
                                    output_padding=min(rest[0], s - 1))


def symbolic_len(x, spec):
    kind, k, s, pad, *rest = spec
    if kind == "conv":
        return conv_len(x, k, s, pad, rest[0])
    if kind == "pool":
        return conv_len(x, k, s, min(pad, k // 2))
    return tconv_len(x, k, s, pad, out_pad=min(rest[0], s - 1))


@settings(max_examples=40, deadline=None)
@given(st.lists(layer, min_size=1, max_size=6), st.integers(1, 200))
def test_matches_torch(specs, v):
    e = L
    n = v
    for spec in specs:
        e = symbolic_len(e, spec)
        n = evaluate(symbolic_len(L, spec), {"L": n})
        if n < 1:
            return  # torch would reject this input length; nothing to compare
    t = torch.zeros(1, 1, v)
    with torch.no_grad():
        for spec in specs:
            t = torch_module(spec)(t)
    assert evaluate(e, {"L": v}) == t.shape[-1]


def test_matches_torch_fixed_chain():
    rng = random.Random(0)
    specs = [("conv", 7, 2, 3, 1), ("pool", 3, 2, 1), ("conv", 3, 1, 1, 2),
             ("conv", 3, 2, 1, 1), ("tconv", 4, 2, 1, 0), ("pool", 2, 2, 0)]
    e = L
    for spec in specs:
        e = symbolic_len(e, spec)
    for _ in range(5):
        v = rng.randint(32, 400)
        t = torch.zeros(1, 1, v)
        with torch.no_grad():
            for spec in specs:
                t = torch_module(spec)(t)
        assert evaluate(e, {"L": v}) == t.shape[-1]


def test_division_by_a_symbolic_factor_is_exact():
    """Depthwise convs (groups=C) divide by the symbol itself: C//C is 1, not a requirement C % C == 0."""
    from convplan.shapes import dim, divides, floordiv, mod, pyrepr

    c, t = dim("C"), dim("T")
    assert floordiv(c, c) == 1 and floordiv(16 * t, t) == 16 and mod(16 * t, t) == 0
    assert divides(c * t, t) is sympy.true
    assert pyrepr(floordiv(c + 1, c)) == "(C + 1)//C"  # not a multiple: stays as it is


def test_depthwise_conv_counts_like_torch():
    import torch

    import convplan

    plan = convplan.parse("plan D:\n    input [N, C, L]\n    Conv1d(C, kernel_size=3, padding=1, groups=C)\n")
    assert not plan.requires
    layer = torch.nn.Conv1d(5, 5, 3, padding=1, groups=5)
    assert plan.total_params.xreplace({dim("C"): 5}) == sum(p.numel() for p in layer.parameters())


# -- the chain fast paths give what the general rewrites give --------------------------

from convplan import layercall, shapes  # noqa: E402 - the private paths under test
from convplan.shapes import canonical, conditions, printing  # noqa: E402

SYMBOLS = [L, dim("H"), p, sympy.Symbol("m", integer=True, nonnegative=True)]
chain_terms = st.builds(
    lambda x, low, big, c, raw: (canonical._raw(FloorDiv, x + low, big) if raw else floordiv(x + low, big)) + c,
    st.sampled_from(SYMBOLS), st.integers(-300, 300), st.integers(2, 64), st.integers(-40, 40), st.booleans())
affine = st.builds(lambda x, c: x + c, st.sampled_from(SYMBOLS), st.integers(-300, 300))


@settings(max_examples=400, deadline=None)
@given(st.one_of(chain_terms, affine), st.integers(2, 16), st.integers(1, 2000))
def test_chain_step_equals_the_general_floordiv(a, b, v):
    fast = canonical._chain_step(a, b)
    assert fast is not None
    assert fast == canonical._floordiv_split(a, b)
    (x,) = a.free_symbols
    assert evaluate(fast, {x.name: v}) == evaluate(a, {x.name: v}) // b


@settings(max_examples=400, deadline=None)
@given(st.one_of(chain_terms, affine), st.integers(-300, 300))
def test_chain_bound_equals_the_general_condition(d, v):
    fast = conditions._chain_bound(d)
    assert fast is not None
    assert fast == conditions._nonneg_general(d)
    (x,) = d.free_symbols
    if v >= 1 or not x.is_positive:
        holds = evaluate(d, {x.name: v}) >= 0
        assert (fast is sympy.true) or bool(fast.subs(x, v)) == holds


# k times a chain term or a symbol, plus a number: an Upsample's 2*((H + 1)//2) and the conv after it
scaled = st.builds(lambda k, t, c: k * t + c, st.integers(2, 16),
                   st.one_of(chain_terms, affine, st.sampled_from(SYMBOLS)), st.integers(-300, 300))


@settings(max_examples=400, deadline=None)
@given(st.integers(2, 8), st.integers(1, 4), st.one_of(chain_terms, affine, st.sampled_from(SYMBOLS)),
       st.integers(-300, 300), st.integers(1, 2000))
@example(2, 1, floordiv(dim("H") + 1, 2), -1, 7)
def test_chain_step_of_a_multiple_equals_the_general_floordiv(b, j, t, c, v):
    """(k*t + c)//b where b divides k (k = j*b): the multiple pulled out, as the general path does."""
    a = j * b * t + c
    fast = canonical._chain_step(a, b)
    _same(fast, canonical._floordiv_split(a, b))
    (x,) = a.free_symbols
    assert evaluate(fast, {x.name: v}) == evaluate(a, {x.name: v}) // b


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 64), st.one_of(chain_terms, affine, st.sampled_from(SYMBOLS)))
def test_times_is_sympys_product(k, e):
    _same(canonical.times(k, e), k * e)
    assert str(canonical.times(k, e)) == str(k * e)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([*SYMBOLS, sympy.Symbol("r", positive=True), sympy.Symbol("z", integer=True)]),
       st.one_of(st.integers(-3, 3), st.integers(-3, 3).map(sympy.Integer)))
def test_at_least_of_a_size_is_the_general_condition(x, k):
    conditions._nonneg.cache_clear()
    fast = conditions.at_least(x, k)
    general = conditions._nonneg_general(x if k == 0 else shapes.offset(x, -k))
    assert fast == general and type(fast) is type(general)


def test_chain_step_leaves_a_multiple_b_does_not_divide():
    assert canonical._chain_step(3 * floordiv(dim("H") + 1, 2) - 1, 2) is None
    assert canonical._chain_step(4 * (L * H) + 1, 2) is None


@settings(max_examples=400, deadline=None)
@given(scaled, st.integers(-300, 300))
@example(2 * floordiv(dim("H") + 1, 2) - 1, 1)
def test_chain_bound_of_a_multiple_equals_the_general_condition(d, v):
    fast = conditions._chain_bound(d)
    assert fast is not None
    general = conditions._nonneg_general(d)
    assert fast == general and type(fast) is type(general) and str(fast) == str(general)
    (x,) = d.free_symbols
    if v >= 1 or not x.is_positive:
        holds = evaluate(d, {x.name: v}) >= 0
        assert (fast is sympy.true) or bool(fast.subs(x, v)) == holds


@settings(max_examples=400, deadline=None)
@given(st.one_of(chain_terms, affine, st.sampled_from(SYMBOLS)), st.integers(2, 16), st.integers(1, 2000))
def test_chain_mod_equals_the_general_mod(a, b, v):
    fast = canonical._chain_mod(a, b)
    assert fast is not None
    general = canonical._mod_split(a, b)
    assert fast == general and fast.args == general.args and hash(fast) == hash(general)
    (x,) = a.free_symbols
    assert evaluate(fast, {x.name: v}) == evaluate(a, {x.name: v}) % b


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(SYMBOLS), chain_terms.map(lambda e: e.as_coeff_Add()[1]),
                 st.builds(lambda x, b: canonical._raw(IntMod, x + 1, b), st.sampled_from(SYMBOLS), st.integers(2, 9))),
       st.integers(-10**30, 10**30))
def test_plus_is_sympys_add(t, c):
    fast, general = canonical._plus(t, c), sympy.Add(t, c)
    assert fast == general and fast.args == general.args and hash(fast) == hash(general)
    assert fast.is_commutative and type(fast) is type(general)


@settings(max_examples=400, deadline=None)
@given(st.one_of(chain_terms, affine, st.sampled_from(SYMBOLS), st.integers(-50, 50).map(sympy.Integer),
                 st.builds(lambda x, b, c: mod(x + c, b), st.sampled_from(SYMBOLS), st.integers(2, 9),
                           st.integers(-20, 20)),
                 st.builds(lambda a, b: a * b, st.sampled_from(SYMBOLS), st.sampled_from(SYMBOLS))),
       st.one_of(st.integers(-10**20, 10**20), st.integers(-5, 5).map(sympy.Integer)))
def test_offset_is_sympys_sum(e, c):
    fast, general = shapes.offset(e, c), e + c
    assert fast == general and fast.args == general.args and hash(fast) == hash(general)
    assert type(fast) is type(general)


# an integer times a symbol or FloorDiv: a Linear's count, 64*(L//2) (offset's Add.flatten shortcut)
_products = st.builds(lambda k, m: k * m, st.integers(-64, 64).filter(lambda k: k not in (0, 1)),
                      st.one_of(st.sampled_from(SYMBOLS), chain_terms.map(lambda e: e.as_coeff_Add()[1])))


@settings(max_examples=300, deadline=None)
@given(st.one_of(_products, st.builds(lambda t, c: t + c, _products, st.integers(-50, 50))),
       st.one_of(st.integers(-10**20, 10**20), st.integers(-5, 5).map(sympy.Integer)))
def test_offset_of_a_product_is_sympys_sum(e, c):
    _same(shapes.offset(e, c), e + c)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(-10**6, 10**6).map(sympy.Integer), _products, affine, chain_terms,
                          st.sampled_from(SYMBOLS)), max_size=8))
def test_total_is_sympys_add(terms):
    """A plan's parameter count and cat's channels: sympy.Add of the terms, its numbers summed first."""
    _same(shapes.total(terms), sympy.Add(*terms))


def test_total_and_offset_keep_off_add_flatten(monkeypatch):
    """Counts of numbers and `k*(L//2) + k` never reach Add.flatten (whose first call imports sympy.tensor.tensor,
    ~20 ms of a check process): a count that did would fail here."""
    def refuse(seq):
        raise AssertionError(f"Add.flatten({seq})")

    monkeypatch.setattr(sympy.Add, "flatten", refuse)
    count = shapes.offset(32 * floordiv(L, 2) * 2, 2)
    assert shapes.total([sympy.Integer(128), sympy.Integer(0), count]) is not None
    assert shapes.total([sympy.Integer(3), sympy.Integer(4)]) == 7
    assert shapes.offset(mod(L, 2), -1) is not None


@settings(max_examples=400, deadline=None)
@given(st.one_of(chain_terms, affine, st.sampled_from(SYMBOLS),
                 st.builds(lambda x: x / 2 + 1, st.sampled_from(SYMBOLS)),
                 st.builds(lambda x: x * x, st.sampled_from(SYMBOLS))),
       st.integers(1, 9), st.integers(-12, 12), st.sampled_from([0, sympy.S.Zero, 1, -2]))
def test_greater_is_sympys_relation(y, b, c, k):
    e = shapes.offset(shapes.mod(y, b), c)
    fast, general = shapes.greater(e, k), sympy.Gt(e, k)
    assert fast == general and type(fast) is type(general)


def test_chain_fast_paths_decline_other_forms():
    assert canonical._chain_step(3 * L + 1, 2) is None  # a coefficient b does not divide: the gcd rule applies
    assert canonical._chain_step(2 * L + 1, 2) == L  # one it divides is pulled out
    assert canonical._chain_step(L + H, 2) is None
    assert canonical._chain_step(L + sympy.Rational(1, 2), 2) is None
    assert conditions._chain_bound(L - H) is None
    assert conditions._chain_bound(canonical._raw(FloorDiv, 2 * L + 1, 4) - 3) is None
    assert canonical._chain_mod(2 * L + 1, 4) is None
    assert canonical._chain_mod(canonical._raw(IntMod, L + 1, 8) + 1, 4) is None  # (y % 8) % 4 is y % 4
    assert canonical._chain_mod(L + 1, 1) is None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SYMBOLS), st.integers(-300, 300))
def test_chain_bound_equals_sympys_own_relation(x, n):
    # _chain_bound builds `x >= n` unevaluated where x's sign decides nothing: what sympy.Ge itself gives
    got = conditions._chain_bound(x - n)
    assert got == sympy.Ge(x, n) and type(got) is type(sympy.Ge(x, n))


# -- holds: Python integers where every symbol has a value, tested against sympy's xreplace ----------

_x, _y = dim("H"), unknown("k")
_leaves = st.one_of(st.integers(-9, 9).map(sympy.Integer), st.sampled_from([_x, _y]))
_divisors = st.one_of(st.integers(1, 7).map(sympy.Integer), st.sampled_from([_x, _y]))


def _expressions(depth: int = 3):
    if depth == 0:
        return _leaves
    sub = _expressions(depth - 1)
    return st.one_of(
        _leaves,
        st.builds(lambda a, b: a + b, sub, sub),
        st.builds(lambda a, b: a * b, sub, sub),
        st.builds(floordiv, sub, _divisors),
        st.builds(mod, sub, _divisors),
        st.builds(lambda a, b: canonical._raw(FloorDiv, a + _x, b), sub, _divisors),  # unevaluated, as sympy may
        st.builds(lambda a, b: canonical._raw(IntMod, a + _x, b), sub, _divisors),  # leave them
        st.builds(lambda a, b: a // b, sub, _divisors),  # sympy's own floor and Mod: left to xreplace
        st.builds(lambda a, b: a % b, sub, _divisors),
        st.builds(lambda a, b: sympy.Rational(1, 2) * a + b, sub, sub),
        st.builds(lambda a, e: a**e, sub, st.integers(0, 3)),
        st.builds(lambda a: 1 / (_x + a * a), sub),
        st.builds(lambda a, b: sympy.Max(a, b), sub, sub),
        st.builds(lambda a, b: sympy.Min(a, b), sub, sub),
    )


_RELATIONS = (sympy.Eq, sympy.Ne, sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt)
_atoms = st.one_of(
    st.tuples(st.sampled_from(_RELATIONS), _expressions(), _expressions(), st.booleans()),
    st.tuples(st.just(at_least), _expressions(2), st.integers(-5, 5)),
    st.tuples(st.just(divides), _expressions(2), st.integers(1, 6)),
    st.sampled_from([sympy.true, sympy.false]))
_conditions = st.one_of(_atoms, st.tuples(st.sampled_from([sympy.And, sympy.Or]), _atoms, _atoms),
                        st.tuples(st.just(sympy.Not), _atoms))


def _build(c):
    if not isinstance(c, tuple):
        return c
    if c[0] in _RELATIONS:
        return c[0](c[1], c[2], evaluate=c[3])
    if c[0] in (sympy.And, sympy.Or, sympy.Not):
        return c[0](*(_build(a) for a in c[1:]))
    return c[0](c[1], c[2])


@settings(max_examples=500, deadline=None)
@given(_conditions, st.integers(1, 40), st.integers(-40, 40), st.booleans())
def test_holds_equals_the_sympy_substitution(c, h, k, partial):
    try:
        cond = _build(c)
    except (TypeError, ValueError, ZeroDivisionError):  # sympy refuses to build it (a comparison with zoo)
        assume(False)
    values = {_x: sympy.Integer(h)} if partial else {_x: sympy.Integer(h), _y: sympy.Integer(k)}
    try:
        want = cond.xreplace(values) == sympy.true
    except ZeroDivisionError:
        want = False
    except (TypeError, ValueError):  # sympy cannot compare what the substitution gave (zoo)
        assume(False)
    assert shapes.holds(cond, values) == want


@given(st.integers(-10**6, 10**6), st.integers(-50, 50).filter(bool))
def test_integer_floordiv_and_mod_are_pythons(a, b):
    assert floordiv(a, b) == sympy.floor(sympy.Rational(a, b)) == a // b
    assert mod(a, b) == a % b and type(mod(a, b)) is type(sympy.Integer(a % b))


@given(st.one_of(chain_terms, affine, st.sampled_from(SYMBOLS)))
def test_floordiv_by_one_keeps_a_chain_dim(a):
    assert floordiv(a, 1) is a and canonical._chain_dim(a) and a.is_integer


@given(st.integers(-64, 64).filter(lambda k: k not in (0, 1)), st.one_of(chain_terms, affine, st.sampled_from(SYMBOLS)))
def test_floordiv_by_one_keeps_a_whole_multiple_of_a_chain_dim(k, a):
    """An Upsample by a whole factor: k*d//1 is k*d, as the assumption query (`is_integer`) says."""
    scaled = k * a
    assert canonical._scaled_chain_dim(scaled) == (type(scaled) is sympy.Mul)
    assert floordiv(scaled, 1) is scaled and scaled.is_integer
    assert not canonical._scaled_chain_dim((2 * k + 1) * a / 2)
    assert not canonical._scaled_chain_dim(a * sympy.Symbol("r"))


def _chain_dims(depth: int = 3):
    """Symbols, and floors and remainders of chain dims by positive numbers, each plus a number or not."""
    base = st.sampled_from(SYMBOLS)
    if depth == 0:
        return base
    sub = _chain_dims(depth - 1)
    term = st.one_of(base, st.builds(lambda a, b: canonical._raw(FloorDiv, a, b), sub, st.integers(1, 16)),
                     st.builds(lambda a, b: canonical._raw(IntMod, a, b), sub, st.integers(1, 16)))
    return st.one_of(term, st.builds(lambda t, c: t + c, term, st.integers(-300, 300)))


@settings(max_examples=600, deadline=None)
@given(st.one_of(_chain_dims(), st.integers(-50, 50).map(sympy.Integer),
                 st.builds(lambda r, a, b: r(a, b, evaluate=False),
                           st.sampled_from([sympy.Eq, sympy.Ne, sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt]),
                           st.one_of(_chain_dims(2), st.integers(-9, 9).map(sympy.Integer)),
                           st.one_of(_chain_dims(2), st.integers(-9, 9).map(sympy.Integer))),
                 st.builds(lambda a, b: a * b + 1, _chain_dims(1), _chain_dims(1))))
def test_quick_printing_is_the_printers(e):
    assert printing._print.__wrapped__(e) == printing._printer.doprint(e)


# -- long sums (named unknowns, layer after layer): merged term by term, tested against sympy.Add -------------

_MANY = [dim(f"d{i}") for i in range(9)] + [unknown(f"u{i}") for i in range(5)] + [
    unknown("d0"),  # a second symbol named d0: the printer's order is sympy's own
    sympy.Symbol("n", integer=True, nonnegative=True), sympy.Symbol("q", integer=True, negative=True)]
_SYMBOL_COUNT = len(_MANY)
_monomials = st.one_of(
    st.sampled_from(_MANY),
    st.builds(lambda x, b, c: floordiv(x + c, b), st.sampled_from(_MANY[7:10]), st.integers(2, 5), st.integers(0, 4)),
    st.builds(lambda x, b: mod(x, b), st.sampled_from(_MANY[7:10]), st.integers(2, 5)))
# mostly small; now and then past the 100 digits a dim may hold (E008)
_coefficients = st.integers(-60, 60).filter(bool).map(lambda k: (k % 9 - 4 or 1) if abs(k) < 58 else k * 10**99)


def _summed(terms, c):
    return sympy.Add(*(k * m for k, m in terms), c)


_symbol_sums = st.builds(_summed, st.lists(st.tuples(_coefficients, st.sampled_from(_MANY)), min_size=shapes.LONG_SUM,
                                           max_size=_SYMBOL_COUNT, unique_by=lambda t: t[1]), st.integers(-50, 50))
_long_sums = st.one_of(_symbol_sums, st.builds(
    _summed, st.lists(st.tuples(_coefficients, _monomials), min_size=shapes.LONG_SUM, max_size=14,
                      unique_by=lambda t: t[1]), st.integers(-50, 50)))
_additions = st.one_of(
    st.integers(-9, 9), st.integers(-9, 9).map(sympy.Integer), _monomials,
    st.builds(_summed, st.lists(st.tuples(_coefficients, _monomials), max_size=4), st.integers(-5, 5)))


def _same(fast, general):
    assert fast == general and type(fast) is type(general)
    assert fast.args == general.args and hash(fast) == hash(general)


@settings(max_examples=300, deadline=None)
@given(_long_sums, st.lists(_additions, min_size=1, max_size=8), st.randoms())
def test_long_sums_grow_as_sympy_adds(e, additions, rnd):
    fast, general = e, e
    for d in additions:
        fast, general = shapes.offset(fast, d), general + d
        _same(fast, general)
        assert pyrepr(fast) == printing._printer.doprint(general)
        assert at_least(fast, 0) == conditions._nonneg_general(general)
        assert type(at_least(fast, 0)) is type(conditions._nonneg_general(general))
        assert floordiv(fast, 1) == general
        limit = 10**100
        walked = any(layercall._holds_number_past(a, limit) for a in sympy.Add.make_args(general))
        assert not (shapes.numbers_below(fast, limit) and walked)
    values = {s.name: rnd.randint(1, 50) for s in general.free_symbols}  # names shared by two symbols: one value
    assert evaluate(fast, values) == evaluate(general, values)


@settings(max_examples=150, deadline=None)
@given(_long_sums, st.lists(st.tuples(st.integers(0, 10**6), _additions), min_size=1, max_size=12),
       st.lists(st.tuples(st.integers(0, 10**6), _additions), min_size=1, max_size=12))
def test_sums_read_again_in_any_order_are_what_sympy_makes(e, grow, revisit):
    """Sums grown from any earlier one (a tree, as a layer's message adds to its input after its output was
    made from it), then each read again in another order: the terms they share are held by one of them at a
    time (sums._Family), so every read moves them; each sum still prints, bounds and grows as sympy's own."""
    fast, general = [e], [e]
    for pick, d in grow:
        i = pick % len(fast)
        fast.append(shapes.offset(fast[i], d))
        general.append(general[i] + d)
        _same(fast[-1], general[-1])
    for pick, d in revisit:
        i = pick % len(fast)
        assert pyrepr(fast[i]) == printing._printer.doprint(general[i])
        assert at_least(fast[i], 0) == conditions._nonneg_general(general[i])
        _same(shapes.offset(fast[i], d), general[i] + d)


@settings(max_examples=200, deadline=None)
@given(_symbol_sums, st.lists(st.tuples(_coefficients, st.sampled_from(_MANY)), min_size=1, max_size=6))
@example(sympy.Add(*_MANY[:8], _MANY[-2], -5), [(1, _MANY[8])])  # no unknown: sizes >= 1 decide it
@example(sympy.Add(*_MANY[:8], _MANY[-1], -20), [(-1, _MANY[-1])])  # q < 0 cancels out
def test_long_symbol_sums_print_and_bound_as_sympy(e, steps):
    for k, m in steps:  # like terms meet, and cancel
        e = shapes.offset(e, k * m)
        general = sympy.Add(*e.args)
        assert pyrepr(e) == printing._printer.doprint(general)
        for bound in (0, 3, -7):
            assert at_least(e, bound) == conditions._nonneg_general(general - bound)
            assert type(at_least(e, bound)) is type(conditions._nonneg_general(general - bound))
        walked = any(layercall._holds_number_past(a, 10**100) for a in sympy.Add.make_args(e))
        assert not (shapes.numbers_below(e, 10**100) and walked)


@settings(max_examples=100, deadline=None)
@given(_symbol_sums, st.integers(-9, 9), st.randoms())
def test_an_unsorted_sum_is_left_to_sympy(e, c, rnd):
    args = list(e.args)
    rnd.shuffle(args)
    unsorted = sympy.Add(*args, evaluate=False)
    _same(shapes.offset(unsorted, c), unsorted + c)
