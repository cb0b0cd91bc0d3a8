"""shapes.affine, the conv/pool chain dim in Python ints, against the sympy paths it skips: every object it
builds equal to theirs, with the same hash, type and str, and every text it prints what pyrepr prints."""

import sympy
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convplan.layers import RuleContext
from convplan.layers.spec import REGISTRY
from convplan.shapes import affine, at_least, dim, evaluate, floordiv, mod, offset, pyrepr, stand_in, unknown
from convplan.shapes.canonical import FloorDiv, _raw

SIZES = [dim("H"), dim("W"), dim("L"), stand_in("3*foo")]  # the stand-in prints as `<refused: 3*foo>`


@st.composite
def chains(draw):
    """``(x + low)//big + c`` (``x + c`` for big 1), built as canonical.py builds it, or raw (low past big)."""
    x, c = draw(st.sampled_from(SIZES)), draw(st.integers(-40, 40))
    big = draw(st.sampled_from([1, 1, 2, 3, 4, 7, 16, 64]))
    if big == 1:
        return offset(x, c)
    low = draw(st.integers(-300, 300))
    inner = _raw(FloorDiv, offset(x, low), big) if draw(st.booleans()) else floordiv(offset(x, low), big)
    return offset(inner, c)


def same(built, general):
    assert built == general and hash(built) == hash(general)
    assert type(built) is type(general) and str(built) == str(general) and built.args == general.args


@settings(max_examples=500, deadline=None)
@given(chains(), st.integers(-12, 12), st.integers(1, 9), st.integers(0, 4), st.integers(1, 500))
@example(dim("H") + 1, -1, 1, 0, 3)  # x + 1 - 1: the size itself
@example(floordiv(dim("H") - 1, 2), 0, 2, 0, 7)  # no number: the FloorDiv alone
def test_chain_arithmetic_equals_sympys(e, k, s, hi, v):
    ch = affine.chain_of(e)
    assert ch is not None
    same(affine.expr(ch), e)
    assert affine.text(ch) == pyrepr(e)
    m, general_m = affine.shifted(ch, k), offset(e, k)
    same(affine.expr(m), general_m)
    assert affine.text(m) == pyrepr(general_m)
    bound = affine.nonneg(m)
    assert bound == at_least(general_m, 0)
    if bound is not sympy.true:
        same(bound, at_least(general_m, 0))
    q, general_q = affine.divided(m, s), floordiv(general_m, s)
    same(affine.expr(q), general_q)
    assert affine.text(q) == pyrepr(general_q)
    x = ch.x
    assert evaluate(affine.expr(q), {x.name: v}) == (evaluate(e, {x.name: v}) + k) // s  # floor division itself
    holds = evaluate(general_m, {x.name: v}) >= 0
    assert bound is sympy.true and holds or bound is not sympy.true and bound.subs(x, v) == holds


@settings(max_examples=200, deadline=None)
@given(chains(), st.integers(-12, 12), st.integers(1, 9))
def test_a_bound_found_again_is_the_same_object(e, k, s):
    """nonneg gives one object per bound (requirements() drops a bound found again by identity), whichever chain
    it comes from, equal to the general path's; also right after the kept bounds are forgotten."""
    m = affine.shifted(affine.chain_of(e), k)
    bound = affine.nonneg(m)
    other = affine.shifted(affine.divided(m, s), 0)  # another chain, often of the same bound (s == 1)
    assert affine.nonneg(m) is bound
    if affine.nonneg(other) == bound:
        assert affine.nonneg(other) is bound
    kept = dict(affine._BOUNDS)
    affine._BOUNDS.clear()
    try:
        again = affine.nonneg(m)
        assert again == at_least(affine.expr(m), 0) and affine.nonneg(m) is again
    finally:  # the process's kept bounds back, even after a failure: later tests compare by identity
        affine._BOUNDS.clear()
        affine._BOUNDS.update(kept)


@settings(max_examples=300, deadline=None)
@given(chains(), st.integers(-12, 12), st.integers(2, 9), st.integers(0, 4))
def test_chain_tail_equals_the_rule_contexts(e, k, s, hi):
    """RuleContext.tail's condition and text, for a window of extent above the stride."""
    ext = s + 1
    ch = affine.chain_of(e)
    general, fast = RuleContext(REGISTRY["Conv1d"]), RuleContext(REGISTRY["Conv1d"])
    general.tail(e, offset(e, k), s, hi, ext)
    fast.chain_tail(ch, affine.shifted(ch, k), s, hi, ext)
    assert len(fast.tails) == len(general.tails) == (1 if s - 1 > hi else 0)
    for (a, text_a), (b, text_b) in zip(fast.tails, general.tails, strict=True):
        same(a, b)
        assert text_a == text_b
        same(a.args[0], offset(mod(offset(e, k), s), -hi))


def test_what_is_no_chain():
    h, w = dim("H"), dim("W")
    for e in (sympy.Integer(5), unknown("_k"), unknown("_k") + 1, 2 * h, h + w, _raw(FloorDiv, 2 * h + 1, 4),
              _raw(FloorDiv, h, dim("K")), floordiv(h + w, 2) + 1, sympy.Symbol("y", integer=True),
              sympy.Symbol("n", integer=True, nonnegative=True), h * w, mod(h, 2)):
        assert affine.chain_of(e) is None, e


@settings(max_examples=100, deadline=None)
@given(chains(), st.integers(-3, 3), st.integers(1, 3))
def test_a_kept_size_is_the_input_dim_itself(e, k, s):
    """A stride-1 window that keeps the size gives its input's dim back (equal to what expr builds)."""
    x = affine.chain_of(e)
    back = affine.shifted(affine.divided(affine.shifted(x, k), 1), -k)
    assert affine.expr_of(back, x, e) is e
    moved = affine.divided(affine.shifted(x, k), s)
    same(affine.expr_of(moved, x, e), floordiv(offset(e, k), s))


@settings(max_examples=200, deadline=None)
@given(chains(), st.integers(0, 400), st.integers(1, 120))
def test_a_chains_numbers_are_read_without_walking_it(e, power, digits):
    """numbers_below on a chain dim: exactly what the walk of layercall._bounded_shape finds (Chain500's
    divisors reach 2**250)."""
    from convplan import layercall
    from convplan.shapes import numbers_below

    e = offset(floordiv(e, 2**power), 0) if power else e
    limit = 10**digits
    walked = any(layercall._holds_number_past(a, limit) for a in sympy.Add.make_args(e))
    assert numbers_below(e, limit) == (not walked)


@settings(max_examples=200, deadline=None)
@given(chains(), st.integers(-12, 12), st.integers(1, 9), st.booleans())
def test_a_dim_is_read_once_as_the_chain_reading_it_gives(e, k, s, forget):
    """chain_of finds a dim that affine built, or read before, by identity (affine._READ): the chain kept with it
    is the one reading the object anew gives; also after the kept ones are forgotten."""
    if forget:
        affine._READ.clear()
    ch = affine.chain_of(e)
    m = affine.shifted(ch, k)
    built = [affine.expr(m), affine.expr(affine.divided(m, s)), affine.expr_of(affine.divided(m, s), ch, e)]
    for b in (*built, e):
        assert affine.chain_of(b) == affine._read(b), b
    assert affine.chain_of(e) == ch
