"""Symbolic tensor dimensions.

Every dimension is a sympy expression of integer symbols (``dim``: positive,
``unknown``: any integer).  Conv/pool arithmetic is floor division by a
constant; sympy's ``floor`` nests without end and ``simplify`` is slow, so
``FloorDiv`` keeps itself canonical on construction: a conv/pool chain stays
one term ``(x + A)//B + C`` with ``0 <= A < B``.  Canonicalisation lives in
``FloorDiv.eval`` / ``IntMod.eval`` so ``subs`` and ``xreplace`` re-apply it.
"""

from __future__ import annotations

import functools
import keyword
import math

import sympy
from sympy.core.sympify import _sympify


def to_expr(value) -> sympy.Basic:
    """An int or a sympy object as a sympy object.  Strict: a string raises instead of being parsed, so
    no text can ever reach sympy's parser through here."""
    if isinstance(value, sympy.Basic):  # most calls: already sympy (what _sympify returns as it is)
        return value
    if type(value) is int:  # not bool: True is sympy.true
        return sympy.Integer(value)
    return _sympify(value)


_ZERO = sympy.S.Zero


def _check_name(name: str) -> None:
    # Names end up in pyrepr output, which must be valid Python.
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"invalid dimension name: {name!r}")


@functools.cache
def dim(name: str) -> sympy.Symbol:
    """A positive integer dimension symbol; same name gives the same object."""
    _check_name(name)
    return sympy.Symbol(name, integer=True, positive=True)


@functools.cache
def unknown(name: str) -> sympy.Symbol:
    """An integer solver unknown (may be zero or negative); `_k` prints as the plan wrote it, `?k`."""
    _check_name(name)
    sym = sympy.Symbol(name, integer=True)
    _SHOWN[sym] = "?" + name[1:] if name.startswith("_") else name
    return sym


# Symbols printed otherwise than by their name: a `?` unknown as the plan wrote it (`?k`), and the stand-in for
# something the plan wrote but was refused (`<refused: 3*foo>`), so that a partial plan's shapes and messages
# say what they hold.  Neither reaches generated code: a plan that holds one is refused.
_SHOWN: dict[sympy.Symbol, str] = {}


@functools.cache
def stand_in(text: str) -> sympy.Symbol:
    """A positive size standing in for what the plan wrote (`text`) and was refused, so that the layers below it
    are still checked; it prints as `<refused: text>`."""
    sym = dim(f"_refused{len(_SHOWN)}_")
    shown = text if len(text) <= 40 else text[:37] + "..."
    _SHOWN[sym] = f"<refused: {shown}>"
    return sym


def is_int_const(e) -> bool:
    if isinstance(e, bool):
        return False
    return isinstance(e, (int, sympy.Integer))


# ---------------------------------------------------------------- splitting

def _split(a, b):
    """Split ``a`` for division by positive int ``b``.

    Returns (const, pulled, keep, integral): ``pulled`` are terms ``c*m`` with
    ``b | c`` (already divided by b), ``keep`` the other (coeff, m, term)
    triples, ``integral`` whether every kept term is integer-valued with an
    integer coefficient (needed for the gcd and nesting rules).
    """
    const, pulled, keep, integral = _ZERO, [], [], True
    for t in sympy.Add.make_args(a):
        if t.is_Number:
            const += t
            continue
        c, m = t.as_coeff_Mul()
        expanded = _expand_term(t, m)
        if expanded is not None:
            parts = _split(expanded, b)
            const += parts[0]
            pulled += parts[1]
            keep += parts[2]
            integral = integral and parts[3]
            continue
        if c.is_Integer and m.is_integer:
            if int(c) % b == 0:
                pulled.append(c // b * m)
            else:
                keep.append((int(c), m, t))
        else:
            keep.append((c, m, t))
            integral = False
    return const, pulled, keep, integral


def _expand_term(t, m):
    """Expanded ``t`` if ``m`` is a product/power of sums (so like terms
    meet), else None.  Only such terms are expanded: expand() is slow."""
    def sum_power(f):
        return f.is_Pow and f.base.is_Add and f.exp.is_Integer and f.exp > 0
    if not (sum_power(m) or (m.is_Mul and any(f.is_Add or sum_power(f) for f in m.args))):
        return None
    e = t.expand(power_exp=False, power_base=False, log=False)
    return None if e == t else e


def _raw(cls, a, b):
    """``cls(a, b, evaluate=False)`` for sympy args, without Function.__new__'s checks (a third of the cost)."""
    return sympy.Basic.__new__(cls, a, integer(b) if isinstance(b, int) else b)


def integer(n: int) -> sympy.Integer:
    """``sympy.Integer(n)``, the object sympy's cache gives, found in a dict (no Python frame of the cache's
    wrapper): the chain paths build a few per new dim."""
    v = _INTEGERS.get(n)
    if v is None:
        if len(_INTEGERS) >= MAX_INTEGERS:
            _INTEGERS.clear()
        v = _INTEGERS[n] = sympy.Integer(n)
    return v


MAX_INTEGERS = 4096  # integers kept (then forgotten all at once)
_INTEGERS: dict = {}  # int -> sympy.Integer


def _gcd(b, keep):
    return math.gcd(b, *(c for c, _, _ in keep))


def _divided(keep, g):
    return [sympy.Integer(c // g) * m for c, m, _ in keep]


# ---------------------------------------------------------------- floordiv

def _exact_quotient(a, b):
    """``a/b`` when a positive symbolic ``b`` divides ``a`` exactly (depthwise ``groups=C``: ``C//C`` is 1,
    ``16*T//T`` is 16), else None."""
    if not b.is_positive or b.is_Number:
        return None
    num, den = sympy.fraction(sympy.cancel(a / b))
    return num if den == 1 and num.is_integer else None


def _chain_dim(a) -> bool:
    """``a`` is an integer symbol or a FloorDiv, plus a number or not."""
    if type(a) is sympy.Add and len(a.args) == 2 and a.args[0].is_Integer:
        a = a.args[1]
    return type(a) is FloorDiv or (a.is_Symbol and a.is_integer is True)


def _scaled_chain_dim(a) -> bool:
    """``a`` is ``n*d``, an integer times a chain dim (`_chain_dim`): an Upsample's output by a whole factor."""
    return type(a) is sympy.Mul and len(a.args) == 2 and a.args[0].is_Integer and _chain_dim(a.args[1])


def times(k: int, e):
    """``k*e`` for an int ``k >= 2`` and a chain dim ``e`` (`_chain_dim`: an Upsample's input): what sympy's
    Mul gives (the number distributed over e's sum), built without Mul.flatten and the assumption queries of
    a new product (tested equal)."""
    c = 0
    if type(e) is sympy.Add:
        c, e = int(e.args[0]), e.args[1]
    return _plus(sympy.Mul._from_args((sympy.Integer(k), e), True), k * c)


def _floordiv(a, b):
    """Canonical ``a//b`` or None (leave ``FloorDiv(a, b)`` as is)."""
    if not b.is_Integer:
        if a.is_Number and b.is_Number and b != 0:
            return sympy.floor(a / b)
        return _exact_quotient(a, b)
    b = int(b)
    if b == 0:
        raise ZeroDivisionError("floordiv by zero")
    if b < 0:  # floor(a/b) == floor(-a/-b)
        return _floordiv(-a, sympy.Integer(-b))
    if a.is_Integer:  # in_channels // groups: not through a Rational and sympy's floor
        return sympy.Integer(int(a) // b)
    if a.is_Number:
        return sympy.floor(a / b)
    if b == 1 and (_chain_dim(a) or _scaled_chain_dim(a) or _integral_sum(a) or a.is_integer):
        return a  # a conv's stride 1, an Upsample by a whole factor: no assumption query (the first is ~5 ms)
    step = _chain_step(a, b)
    return step if step is not None else _floordiv_split(a, b)


def _integral_sum(a) -> bool:
    from .sums import integral_sum  # sums.py builds on this module

    return integral_sum(a)


def _floordiv_split(a, b: int):
    """Canonical ``a//b`` for an integer ``b >= 2``: the general path."""
    const, pulled, keep, integral = _split(a, b)
    if const.is_Integer:  # fast path: python ints
        q, rem = (sympy.Integer(v) for v in divmod(int(const), b))
    else:
        q = sympy.floor(const / b)
        rem = const - q * b  # 0 <= rem < b
    if not keep:  # 0 <= rem < b, so rem//b == 0
        return sympy.Add(*pulled, q)
    if integral:
        rem = sympy.floor(rem)  # floor((r + rem)/b) == floor((r + floor(rem))/b) for integer r
        core = _floordiv_core(keep, int(rem), b)
    else:
        core = _raw(FloorDiv, sympy.Add(*(t for _, _, t in keep), rem), b)
    return sympy.Add(core, *pulled, q)


def _chain_step(a, b):
    """``a//b`` for ``a = (x + A)//B + c`` or ``a = x + c`` (x a symbol, b >= 2), the form every conv/pool
    chain stays in, with Python integers: ``(x + A + B*c)//(B*b)``, its constant split into
    ``(x + r)//M + q`` with ``0 <= r < M``.  The general path gives the same (tested) with three times the
    sympy work; None where it does not apply.  ``k*t + c`` with ``b`` dividing ``k`` (a stride-2 conv after an
    Upsample by 2) is ``(k//b)*t + c//b``, as the general path pulls the multiple out (tested)."""
    c, rest = a.as_coeff_Add()
    if not c.is_Integer:
        return None
    if type(rest) is sympy.Mul and len(rest.args) == 2 and rest.args[0].is_Integer:
        k, t = int(rest.args[0]), rest.args[1]
        if k % b or not (type(t) is FloorDiv or t.is_Symbol and t.is_integer is True):
            return None
        return _plus(t if k == b else sympy.Integer(k // b) * t, int(c) // b)
    if isinstance(rest, FloorDiv):
        y, big = rest.args
        if not big.is_Integer:
            return None
        low, x = y.as_coeff_Add()
        if not low.is_Integer:
            return None
        shift, m = int(low) + int(big) * int(c), int(big) * b
    else:
        x, shift, m = rest, int(c), b
    if not (x.is_Symbol and x.is_integer):
        return None
    q, r = divmod(shift, m)
    return _plus(_raw(FloorDiv, _plus(x, r), m), q)


def _monomial(t) -> bool:
    return type(t) is FloorDiv or type(t) is IntMod or t.is_Symbol


def _plus(t, c: int):
    """``t + c`` for a symbol, FloorDiv or IntMod ``t`` (or an integer times one): what sympy.Add gives (the
    number first), built without Add.flatten and sympy's cache (tested equal)."""
    return sympy.Add._from_args((integer(c), t), True) if c else t


def _floordiv_core(keep, rem, b):
    """``(r + rem)//b`` for integral terms r, 0 <= rem < b, no term divisible by b."""
    g = _gcd(b, keep)
    if g > 1:  # (g*r' + rem)//(g*b') == (r' + rem//g)//b'
        return _floordiv(sympy.Add(*_divided(keep, g), rem // g), sympy.Integer(b // g))
    nested = [k for k in keep if k[0] == 1 and isinstance(k[1], FloorDiv)
              and k[1].args[1].is_Integer and k[1].args[1] > 0]
    if len(nested) == 1:
        # (y//m + s + rem)//b == (y + m*(s + rem))//(m*b) for integer s
        y, m = nested[0][1].args
        rest = [m * t for _, _, t in keep if t is not nested[0][2]]
        return _floordiv(sympy.Add(y, *rest, m * rem), m * b)
    return _raw(FloorDiv, sympy.Add(*(t for _, _, t in keep), rem), b)


class FloorDiv(sympy.Function):
    """Integer floor division ``a//b``; canonicalises itself (see module doc)."""

    @classmethod
    def eval(cls, a, b):
        return _floordiv(a, b)

    def _eval_is_integer(self):
        return True

    def _eval_is_nonnegative(self):
        a, b = self.args
        if b.is_positive and a.is_nonnegative:
            return True
        return None


def floordiv(a, b) -> sympy.Expr:
    a, b = to_expr(a), to_expr(b)
    r = _floordiv(a, b)
    return _raw(FloorDiv, a, b) if r is None else r


def ceildiv(a, b) -> sympy.Expr:
    a, b = to_expr(a), to_expr(b)
    if b.is_Integer and b > 0:
        return floordiv(a + b - 1, b)
    return -floordiv(-a, b)


# ---------------------------------------------------------------- mod

def _mod(a, b):
    """Canonical ``a % b`` (Python sign convention) or None."""
    if not b.is_Integer:
        if a.is_Number and b.is_Number and b != 0:
            return a - b * sympy.floor(a / b)
        return None if _exact_quotient(a, b) is None else sympy.S.Zero
    b = int(b)
    if b == 0:
        raise ZeroDivisionError("mod by zero")
    if b < 0:  # a % b == -((-a) % -b)
        return -_mod(-a, sympy.Integer(-b))
    if a.is_Integer:  # in_channels % groups
        return sympy.Integer(int(a) % b)
    if a.is_Number:
        return a - b * sympy.floor(a / b)
    step = _chain_mod(a, b)
    return step if step is not None else _mod_split(a, b)


def _chain_mod(a, b: int):
    """``(x + c) % b`` and ``(y//B + c) % b`` (b >= 2), as conv/pool chains ask them: ``IntMod(rest + c % b, b)``,
    what _mod_split gives (tested) through _split, a gcd and sympy's floor; None for other forms."""
    if b < 2:
        return None
    c, rest = a.as_coeff_Add()
    if c.is_Integer and (type(rest) is FloorDiv or (rest.is_Symbol and rest.is_integer)):
        return _raw(IntMod, _plus(rest, int(c) % b), b)
    return None


def _mod_split(a, b: int):
    """Canonical ``a % b`` for a non-number ``a`` and an integer ``b >= 1``: the general path."""
    const, _, keep, integral = _split(a, b)  # terms divisible by b vanish
    rem = const - b * sympy.floor(const / b)
    if not keep:
        return rem
    if not (integral and rem.is_Integer):
        return _raw(IntMod, sympy.Add(*(t for _, _, t in keep), rem), b)
    rem = int(rem)
    g = math.gcd(_gcd(b, keep), rem)
    if g > 1:  # (g*r' + g*c) % (g*b') == g*((r' + c) % b')
        return g * _mod(sympy.Add(*_divided(keep, g), rem // g), sympy.Integer(b // g))
    if len(keep) == 1 and isinstance(keep[0][1], IntMod) and keep[0][0] == 1:
        y, m = keep[0][1].args
        if m.is_Integer and int(m) % b == 0:  # (y % m) % b == y % b when b | m
            return _mod(y + rem, sympy.Integer(b))
    return _raw(IntMod, sympy.Add(*(t for _, _, t in keep), rem), b)


class IntMod(sympy.Function):
    """Integer ``a % b`` (Python semantics); canonicalises itself."""

    @classmethod
    def eval(cls, a, b):
        return _mod(a, b)

    def _eval_is_integer(self):
        a, b = self.args
        if a.is_integer and b.is_integer:
            return True
        return None

    def _eval_is_nonnegative(self):
        if self.args[1].is_positive:
            return True
        return None


def mod(a, b) -> sympy.Expr:
    a, b = to_expr(a), to_expr(b)
    r = _mod(a, b)
    return _raw(IntMod, a, b) if r is None else r


def _mod_to_floordiv(e):
    """Rewrite every ``a % b`` as ``a - b*(a//b)`` (for comparisons)."""
    if not e.has(IntMod):
        return e
    return e.replace(lambda x: isinstance(x, IntMod),
                     lambda x: x.args[0] - x.args[1] * floordiv(*x.args))
