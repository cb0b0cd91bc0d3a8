"""Periodic conditions: equalities that hold for some residues of a size (`2*(H//2) == H`), turned into
congruences (`H % 16 == 0`) and joined; evaluating conditions and expressions at concrete sizes."""

from __future__ import annotations

import math
import operator

import sympy

from .canonical import FloorDiv, IntMod, _mod_to_floordiv, mod, to_expr
from .conditions import _bool, at_least, equal, evaluate, ops

MAX_PERIOD = 1 << 12


def equal_condition(a, b) -> sympy.Basic:
    """Condition ``a == b``: true/false if decidable, else the simplest form found.

    A difference that is periodic in one symbol (``2*(H//2) - H``) depends only on the
    residue of that symbol, so ``2*(H//2) == H`` becomes ``H % 2 == 0``.
    """
    verdict = equal(a, b)
    if verdict is not None:
        return _bool(verdict)
    cond = sympy.Eq(to_expr(a), to_expr(b), evaluate=False)
    if _never_zero(_mod_to_floordiv(cond.lhs - cond.rhs)):
        return sympy.false
    found = residues(cond)
    if found is None:
        return cond
    simpler = _residue_condition(*found)
    return cond if simpler is None else simpler


def pinned(cond):
    """``C == 8`` for ``8 == C`` and ``L == 5`` for ``L - 4 == 1``: a size fixed to one value reads as that."""
    c, rest = (cond.lhs - cond.rhs).as_coeff_Add()
    if rest.is_Symbol:
        return sympy.Eq(rest, -c, evaluate=False)
    if (-rest).is_Symbol:
        return sympy.Eq(-rest, c, evaluate=False)
    return sympy.Eq(cond.rhs, cond.lhs, evaluate=False) if cond.lhs.is_Number else cond


def holds(cond, values: dict) -> bool:
    """Whether ``cond`` is true at ``values`` (symbol -> sympy.Integer).  A division by zero on the way
    (a symbolic stride at a size that its own requirement ``stride >= 1`` excludes) is a no."""
    try:
        try:
            return _truth(cond, {s: int(v) for s, v in values.items() if v.is_Integer})
        except _Opaque:
            return cond.xreplace(values) == sympy.true
    except ZeroDivisionError:
        return False


class _Opaque(Exception):
    """An expression the integer evaluator below does not know: sympy's xreplace decides."""


def _truth(c, values: dict) -> bool:
    """``c`` at ``values`` (symbol -> int) with Python integers: what ``c.xreplace(values) == true`` gives when
    every symbol has a value, without building a sympy object per node (tested equal)."""
    if c is sympy.true or c is sympy.false:
        return c is sympy.true
    compare = _COMPARE.get(type(c))
    if compare is not None:
        a, b = c.args
        if a.is_Integer and b.is_Integer:  # left unevaluated and without symbols: xreplace keeps it so
            raise _Opaque
        return compare(_number(a, values), _number(b, values))
    if isinstance(c, (sympy.And, sympy.Or)):  # every argument, as xreplace: a division by zero in any is a no
        found = [_truth(a, values) for a in c.args]
        return all(found) if isinstance(c, sympy.And) else any(found)
    if isinstance(c, sympy.Not):
        return not _truth(c.args[0], values)
    raise _Opaque


_COMPARE = {sympy.Eq: operator.eq, sympy.Ne: operator.ne, sympy.Ge: operator.ge, sympy.Gt: operator.gt,
            sympy.Le: operator.le, sympy.Lt: operator.lt}


def _number(e, values: dict) -> int:
    if e.is_Integer:
        return int(e)
    if e.is_Symbol:
        v = values.get(e)
        if v is None:
            raise _Opaque
        return v
    t = type(e)
    if t is sympy.Add:
        return sum(_number(a, values) for a in e.args)
    if t is sympy.Mul:
        return math.prod(_number(a, values) for a in e.args)
    if all(a.is_Integer for a in e.args):  # an operation on numbers left unevaluated: xreplace keeps it so
        raise _Opaque
    if t is FloorDiv:
        return _number(e.args[0], values) // _number(e.args[1], values)  # ZeroDivisionError as sympy's
    if t is IntMod:
        return _number(e.args[0], values) % _number(e.args[1], values)
    if t is sympy.Pow:
        base, exp = _number(e.args[0], values), _number(e.args[1], values)
        if exp < 0:
            raise _Opaque  # a fraction
        return base**exp
    if t is sympy.Max:
        return max(_number(a, values) for a in e.args)
    if t is sympy.Min:
        return min(_number(a, values) for a in e.args)
    raise _Opaque


def _never_zero(d) -> bool:
    """True if ``d`` has one sign for all sizes: bound each ``a//b`` by ``a/b`` and
    ``(a - b + 1)/b`` (whichever bounds ``d`` from the side wanted) and decide the now linear rest."""
    terms = sympy.Add.make_args(sympy.expand(d)) if ops(d) < 200 else None
    if terms is None or not all(_linear_or_floor(t) for t in terms):
        return False
    for side in (1, -1):  # side=1: is d <= -1 always?  side=-1: is d >= 1 always?
        bound = sympy.Add(*(_bound(t, side) for t in terms))
        den = math.lcm(*(int(sympy.fraction(t.as_coeff_Mul()[0])[1]) for t in sympy.Add.make_args(bound)))
        scaled = sympy.expand(-side * bound * den)
        if at_least(scaled, 1) == sympy.true:
            return True
    return False


def decide_at_least(e, k) -> bool | None:
    """``e >= k`` for every size (True), for none (False), or depending on the sizes (None).

    Stronger than ``at_least`` for floors: ``H - H//2 >= 1`` holds since ``H//2 <= H/2``.
    """
    cond = at_least(e, k)
    if cond in (sympy.true, sympy.false):
        return cond == sympy.true
    d = _mod_to_floordiv(to_expr(e) - k)
    terms = sympy.Add.make_args(sympy.expand(d)) if ops(d) < 200 else None
    if terms is None or not all(_linear_or_floor(t) for t in terms):
        return None
    low = sympy.Add(*(_bound(t, -1) for t in terms))  # d >= low
    high = sympy.Add(*(_bound(t, 1) for t in terms))  # d <= high
    if _above(low, -1):  # d is an integer: d >= low > -1 means d >= 0
        return True
    if _above(-high, 0):  # d <= high < 0
        return False
    return None


def _above(e, k: int) -> bool:
    """``e > k`` for every size, ``e`` linear with rational coefficients (denominators cleared)."""
    den = math.lcm(*(int(sympy.fraction(t.as_coeff_Mul()[0])[1]) for t in sympy.Add.make_args(e)))
    return at_least(sympy.expand(e * den), k * den + 1) == sympy.true


def _linear_or_floor(t) -> bool:
    c, m = t.as_coeff_Mul()
    if m == 1 or m.is_Symbol:
        return True
    return (isinstance(m, FloorDiv) and m.args[1].is_Integer and m.args[1] > 0
            and all(_linear_or_floor(u) for u in sympy.Add.make_args(m.args[0])))


def _bound(t, side):
    """An upper (side=1) or lower (side=-1) bound of term ``t``, linear in the symbols."""
    c, m = t.as_coeff_Mul()
    if not isinstance(m, FloorDiv):
        return t
    a, b = m.args
    upper = (c > 0) == (side == 1)
    return c * (a / b if upper else (a - b + 1) / b)


def residues(cond):
    """``(x, period, good residues)`` if ``cond`` is an equation whose truth depends only on ``x % period``."""
    if not isinstance(cond, sympy.Eq):
        return None
    d = _mod_to_floordiv(cond.lhs - cond.rhs)
    if len(d.free_symbols) != 1:
        return None
    x = next(iter(d.free_symbols))
    period = _period(d, x)
    if period is None or not equal(d.xreplace({x: x + period}), d):
        return None
    # x is a positive dim: test each residue at a positive representative
    good = [r for r in range(period) if d.xreplace({x: sympy.Integer(r + period)}) == 0]
    return x, period, good


def _period(d, x):
    period = 1
    for f in d.atoms(FloorDiv):
        arg, b = f.args
        if not b.is_Integer:
            return None
        c = sympy.Poly(arg, x).coeffs()[0] if arg.is_polynomial(x) and sympy.degree(arg, x) == 1 else None
        if c is None or not c.is_Integer:
            return None
        period = math.lcm(period, int(b) // math.gcd(int(c), int(b)))
        if period > MAX_PERIOD:
            return None
    return period if period > 1 else None


def _residue_condition(x, period, good):
    """``x % m == r`` when ``good`` (residues mod ``period``) is one class mod some m; else None."""
    if not good:
        return sympy.false
    if len(good) == period:
        return sympy.true
    for m in sorted(k for k in range(2, period + 1) if period % k == 0):
        r = good[0] % m
        if good == [g for g in range(period) if g % m == r]:
            return sympy.Eq(mod(x, m), r, evaluate=False)
    return None


def combine_residues(conds):
    """Join the periodic one-symbol equations among ``conds``.

    Returns ``[(condition, indices it replaces)]``, one per symbol with two or more such
    equations: ``H % 2 == 0`` and ``(H//2) % 2 == 0`` give ``H % 4 == 0``.  The condition
    is ``false`` when they contradict each other, and None when the joint set of residues
    has no single-class form (then the originals stay).
    """
    groups: dict = {}
    for i, c in enumerate(conds):
        found = residues(c)
        if found is not None:
            groups.setdefault(found[0], []).append((i, found[1], set(found[2])))
    out = []
    for x, items in groups.items():
        if len(items) < 2:
            continue
        period = math.lcm(*(p for _, p, _ in items))
        if period > MAX_PERIOD:
            continue
        good = [r for r in range(period) if all(r % p in g for _, p, g in items)]
        out.append((_residue_condition(x, period, good), [i for i, _, _ in items]))
    return out


def value_at(e, sizes: dict[str, int], what: str = "the value") -> int:
    """`e` at `sizes` (names -> ints) as a Python int; ValueError naming the sizes still missing."""
    value = evaluate(e, sizes)
    if isinstance(value, sympy.Basic):
        missing = sorted(s.name for s in value.free_symbols)
        raise ValueError(f"{what} depends on {', '.join(missing)}: give {', '.join(m + '=...' for m in missing)}")
    return int(value)
