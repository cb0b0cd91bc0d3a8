"""Conditions on sizes: `e >= k`, divisibility, equality, decided symbolically where they can be.

A condition is a sympy relational (or True/False); these helpers decide what they can at once (a conv chain
is monotonic, a floor division has known bounds) so that only the undecided ones reach the solver."""

from __future__ import annotations

import functools
import math
import operator

import sympy

from .canonical import FloorDiv, IntMod, _chain_dim, _mod_to_floordiv, mod, to_expr
from .sums import LONG_SUM, _long_sum, _Sum, offset, without_number

# ---------------------------------------------------------------- measures

def ops(e) -> int:
    """Operation count: each +, *, **, //, %, comparison or call counts 1."""
    e = to_expr(e)
    if e.is_Atom:
        return 0
    if e.is_Add or e.is_Mul:
        return len(e.args) - 1 + sum(ops(a) for a in e.args)
    return 1 + sum(ops(a) for a in e.args)


# ---------------------------------------------------------------- conditions

def _bool(v: bool):
    return sympy.true if v else sympy.false


def at_least(e, k) -> sympy.Basic:
    """Condition ``e >= k`` for integer-valued ``e``; true/false if decidable."""
    if isinstance(e, (int, sympy.Integer)) and isinstance(k, (int, sympy.Integer)):  # most checks: kernel >= 1
        return _bool(int(e) >= int(k))
    if type(e) is sympy.Symbol and type(k) is int and k <= 1 and e.is_integer and e.is_positive:
        return sympy.true  # a size >= 1 (an output dim N, a symbolic kernel): what _chain_bound finds (tested)
    e, k = to_expr(e), to_expr(k)
    d = e if k == 0 else offset(e, -k)
    if type(d) is sympy.Add and len(d.args) >= LONG_SUM:  # before the cache: hashing walks the sum
        bound = _free_sum_bound(d)
        if bound is not None:
            return bound
    return _nonneg(d)


@functools.lru_cache(maxsize=4096)  # layers repeat the same checks (kernel >= 1, H + 2 >= 3, ...)
def _nonneg(d):
    """Condition ``d >= 0`` for an integer-valued ``d``, in simplest form."""
    bound = _chain_bound(d)
    if bound is None:
        bound = _free_sum_bound(d)
    return bound if bound is not None else _nonneg_general(d)


def _gcd_of(known: _Sum) -> int:
    return math.gcd(*(c for c, _ in known.terms().values()))


def _free_sum_bound(d):
    """``d >= 0`` for a long sum of integer symbols (distinct, coefficients without a common factor) and a
    number, one symbol of any sign (a solver unknown): undecidable, so ``rest >= n`` unevaluated, what the
    general path gives through sympy.Ge (tested) after walking the sum four times.  None for other forms."""
    known = _long_sum(d)
    if known is None or not (known.symbols and known.free and (known.ones or _gcd_of(known) == 1)):
        return None
    c, rest = without_number(d)
    return sympy.Ge(rest, -c, evaluate=False)


def _chain_bound(d):
    """``d >= 0`` for ``d = (x + A)//B + c`` or ``d = x + c`` (x a symbol), as conv/pool chains ask it:
    ``x >= n`` with Python integers, true where x's sign decides it.  The general path gives the same
    (tested) through two rewrites; None where it does not apply.  ``k*t + c`` (k >= 2, t either of those
    forms, as an Upsample by k makes) is ``t + c//k``: ``k*t >= -c  <=>  t >= ceil(-c/k)``, the general path's
    step through the coefficients' gcd, taken after it asked t's sign (~1 ms for each new t in a fresh
    process), which decides nothing the bound on x does not (tested)."""
    c, rest = d.as_coeff_Add()
    if not c.is_Integer:
        return None
    if type(rest) is sympy.Mul and len(rest.args) == 2 and rest.args[0].is_Integer and rest.args[0] > 1:
        k, rest = rest.args
        c = sympy.Integer(int(c) // int(k))
    if isinstance(rest, FloorDiv):  # (x + A)//B + c >= 0  <=>  x + A >= -c*B
        y, big = rest.args
        low, x = y.as_coeff_Add()
        if not (big.is_Integer and big > 0 and low.is_Integer):
            return None
        n = -(int(low) + int(big) * int(c))
    else:
        x, n = rest, -int(c)
    if not (x.is_Symbol and x.is_integer):
        return None
    least = 1 if x.is_positive else 0 if x.is_nonnegative else None
    if least is None:  # a solver unknown (any integer): sympy decides what its assumptions allow
        if x.is_nonnegative is None and x.is_nonpositive is None:  # unbounded: undecidable, as sympy finds
            return sympy.Ge(x, sympy.Integer(n), evaluate=False)
        return sympy.Ge(x, n)
    # x >= least and nothing bounds it above: true, or undecidable, which is what sympy.Ge would find through
    # its assumption system (~1 ms for each new bound in a fresh process)
    return sympy.true if least >= n else sympy.Ge(x, sympy.Integer(n), evaluate=False)


def _nonneg_general(d):
    c, rest = d.as_coeff_Add()
    if rest == 0:
        return _bool(c >= 0)
    n = -c if c.is_Integer else sympy.ceiling(-c)  # rest >= -c  <=>  rest >= ceil(-c), rest integral
    terms = [t.as_coeff_Mul() + (t,) for t in sympy.Add.make_args(rest)]
    if not all(cf.is_Integer and m.is_integer for cf, m, _ in terms):
        return sympy.Ge(rest, -c)
    nested = [x for x in terms if x[0] == 1 and isinstance(x[1], FloorDiv)
              and x[1].args[1].is_Integer and x[1].args[1] > 0]
    if len(nested) == 1:
        # y//m + s >= n  <=>  (y + m*s)//m >= n  <=>  y + m*s >= m*n
        y, m = nested[0][1].args
        s = [m * t for _, _, t in terms if t is not nested[0][2]]
        return _nonneg(sympy.Add(y, *s, -m * n))
    verdict = _bound_verdict(terms, n)
    if verdict is not None:
        return verdict
    g = math.gcd(*(int(cf) for cf, _, _ in terms))
    if g > 1:  # g*r >= n  <=>  r >= ceil(n/g)
        return _nonneg(sympy.Add(*(cf // g * m for cf, m, _ in terms)) - sympy.ceiling(n / g))
    if len(terms) == 1 and terms[0][0] == -1:
        return sympy.Le(terms[0][1], -n)
    return sympy.Ge(rest, n)


def _bound_verdict(terms, n):
    """Decide ``sum(cf*m) >= n`` from signs alone, if possible.

    A positive integer term is >= 1 and a nonnegative one >= 0, so with
    all coefficients positive the sum has a lower bound (all negative: upper).
    """
    def floor_of(m):
        if m.is_positive:
            return 1
        if m.is_nonnegative:
            return 0
        return None
    lows = [floor_of(m) for _, m, _ in terms]
    if None in lows:
        return None
    if all(cf > 0 for cf, _, _ in terms):
        if sum(cf * lo for (cf, _, _), lo in zip(terms, lows, strict=True)) >= n:
            return sympy.true
    elif all(cf < 0 for cf, _, _ in terms):
        if sum(cf * lo for (cf, _, _), lo in zip(terms, lows, strict=True)) < n:
            return sympy.false
    return None


def greater(e, k) -> sympy.Basic:
    """Condition ``e > k``: what sympy.Gt(e, k) gives (tested).  For ``k == 0`` and ``e`` a remainder of a
    conv/pool chain plus a number, ``(x + r) % b + c`` (the windows a layer never reads), decided as sympy
    decides it, true for c >= 1 (a remainder is nonnegative) and open otherwise, without its assumption
    system (~1 ms for each new condition in a fresh process)."""
    if (k == 0) is True and not isinstance(e, (int, bool)):
        c, t = 0, e
        if type(e) is sympy.Add and len(e.args) == 2 and e.args[0].is_Integer:
            c, t = int(e.args[0]), e.args[1]
        if type(t) is IntMod and t.args[1].is_Integer and t.args[1] > 1 and _chain_dim(t.args[0]):
            return sympy.true if c >= 1 else sympy.Gt(e, sympy.S.Zero, evaluate=False)
    return sympy.Gt(e, k)


def divides(e, m) -> sympy.Basic:
    """Condition ``e % m == 0``; true/false if decidable."""
    r = mod(e, m)
    if r.is_Number:
        return _bool(r == 0)
    return sympy.Eq(r, 0, evaluate=False)


def even(value):
    """Whether a count is even (an even number of heads sends attention down torch's fast path, which each cost
    convention counts its own way): True or False for a number, the condition `Mod(value, 2) == 0` for a
    symbolic one (plain Python booleans, not sympy's, so that `is True` tells a path taken)."""
    if isinstance(value, int) or getattr(value, "is_Integer", False):
        return int(value) % 2 == 0
    return sympy.Eq(sympy.Mod(value, 2), 0)


def equal(a, b) -> bool | None:
    """True if equal for all symbol values, False if never equal, else None."""
    a, b = to_expr(a), to_expr(b)
    if a == b:
        return True
    d = _mod_to_floordiv(a - b)
    if d.is_Number:
        return d == 0
    if ops(d) < 200:  # expand re-canonicalises FloorDiv args; skip huge exprs
        d = sympy.expand(d)
        if d.is_Number:
            return d == 0
    if at_least(d, 1) == sympy.true or at_least(-d, 1) == sympy.true:
        return False
    return None


def evaluate(e, values: dict[str, int]):
    """Substitute ints for symbols by name; a python int (or bool) if concrete."""
    e = to_expr(e)
    repl = {s: sympy.Integer(operator.index(values[s.name]))
            for s in e.free_symbols if s.name in values}
    r = e.xreplace(repl) if repl else e
    if r.is_Integer:
        return int(r)
    if r is sympy.true or r is sympy.false:
        return bool(r)
    return r
