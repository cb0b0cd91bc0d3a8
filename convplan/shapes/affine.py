"""A conv/pool chain dim as plain integers: ``(x + low)//big + c`` (``x + c`` where ``big`` is 1), x a size.

Every conv and pool on such a dim gives another one (``floor((floor(A/d) + m)/s) = floor((A + m*d)/(d*s))``
for integer A and positive d, s; ceil mode is a floor of a shifted numerator), and the requirements they raise
are bounds ``x >= n``.  sympy's first construction of each new expression in a process (Add.flatten, the
assumption queries, hashing it for a cache, printing it for a message) was most of a new conv's check; here
the arithmetic is Python ints, and each sympy object a rule keeps is built once, directly in the canonical
form canonical.py's `floordiv` and sums.py's `offset` give (tested: equal, same hash and str), and messages
are printed from the integers as printing.py prints the expressions (tested).  Anything else (a number, a
solver unknown, `2*H`, a long sum) is left to the general paths: `chain_of` gives None."""

from __future__ import annotations

from typing import NamedTuple

import sympy

from .canonical import _SHOWN, FloorDiv, IntMod, _plus, _raw, integer


class Chain(NamedTuple):
    """``term + c``: ``term`` is the size ``x`` (``low`` 0, ``big`` 1) or the FloorDiv ``(x + low)//big``,
    kept as the sympy object it is so that a dim shifted by a number reuses it, as `offset` does."""

    x: sympy.Symbol
    low: int
    big: int
    c: int
    term: sympy.Expr


def chain_of(e) -> Chain | None:
    """``e`` read as a Chain, or None: x must be a positive integer symbol (a plan's size) and ``big`` >= 2.
    Read once per object: the dims affine builds are kept with their chain (`_made`), and any other dim read
    is kept by identity, so that the layers after it and layercall's bound check find it by a dict lookup."""
    kept = _READ.get(id(e))
    if kept is not None and kept[0] is e:
        return kept[1]
    ch = _read(e)
    _made(e, ch)
    return ch


def _made(e, ch: Chain | None):
    """Keep ``e``'s chain (None: no chain) by e's identity; e kept too, so that its id stays its own."""
    if len(_READ) >= MAX_READ:
        _READ.clear()
    _READ[id(e)] = e, ch
    return e


MAX_READ = 8192  # dims kept with their chain (then forgotten all at once): a plan has a few per layer
_READ: dict = {}  # id(dim) -> (dim, its Chain or None)


def _read(e) -> Chain | None:
    """chain_of's reading of an object it has not met."""
    c = 0
    if type(e) is sympy.Add:
        args = e.args
        if len(args) != 2 or not args[0].is_Integer:  # a sum's number comes first (One is no Integer by type)
            return None
        c, e = args[0].p, args[1]
    t = type(e)
    if t is FloorDiv:
        y, big = e.args
        if not big.is_Integer or big.p < 2:
            return None
        low, x = 0, y
        if type(y) is sympy.Add:
            args = y.args
            if len(args) != 2 or not args[0].is_Integer:
                return None
            low, x = args[0].p, args[1]
        return _chain(Chain, (x, low, big.p, c, e)) if _size(x) else None
    return _chain(Chain, (e, 0, 1, c, e)) if _size(e) else None


def _size(x) -> bool:
    return type(x) is sympy.Symbol and x.is_integer is True and x.is_positive is True


_chain = tuple.__new__  # Chain(...) runs namedtuple's Python __new__: 4x the cost of tuple's own


def shifted(ch: Chain, k: int) -> Chain:
    """``ch + k``."""
    return _chain(Chain, (ch.x, ch.low, ch.big, ch.c + k, ch.term))


def divided(ch: Chain, s: int) -> Chain:
    """``ch // s`` for a whole ``s`` >= 1: ``(x + low + big*c)//(big*s)``, its constant split so that
    ``0 <= low < big``, as canonical._chain_step does; ``ch`` itself for ``s`` 1 (as floordiv gives it)."""
    if s == 1:
        return ch
    shift, m = ch.low + ch.big * ch.c, ch.big * s
    q, r = divmod(shift, m)
    return _chain(Chain, (ch.x, r, m, q, _raw(FloorDiv, _plus(ch.x, r), m)))


def expr(ch: Chain) -> sympy.Expr:
    """The sympy expression: what `offset(term, c)` gives (kept with its chain: see chain_of)."""
    return _made(_plus(ch.term, ch.c), ch)


def expr_of(ch: Chain, x: Chain, e) -> sympy.Expr:
    """``expr(ch)``, or ``e`` itself where ``ch`` is ``x``, e's own chain: a layer that keeps the size (a 3x3
    conv with padding 1) gives its input's dim back, equal to what it would build, and already hashed, so
    that the layers after it key and compare it by identity."""
    return e if ch.c == x.c and ch.term is x.term else _made(_plus(ch.term, ch.c), ch)


def nonneg(ch: Chain):
    """The condition ``ch >= 0`` as `at_least(expr(ch), 0)` gives it: ``x >= n`` (x + low >= -big*c), true
    where x >= 1 decides it, else unevaluated (see conditions._chain_bound).  One object per bound: every
    layer of a resolution finds the same ``H >= 17``, which requirements() then drops by identity (no
    sympy ``==``, no hash of a new relational)."""
    n = -(ch.low + ch.big * ch.c)
    if n <= 1:
        return sympy.true
    key = ch.x, n
    bound = _BOUNDS.get(key)
    if bound is None:
        if len(_BOUNDS) >= MAX_BOUNDS:
            _BOUNDS.clear()
        bound = _BOUNDS[key] = sympy.Basic.__new__(sympy.GreaterThan, ch.x, integer(n))
    return bound


MAX_BOUNDS = 4096  # bounds kept (then forgotten all at once): a plan has a few per size
_BOUNDS: dict = {}  # (x, n) -> the relational x >= n


def _name(x) -> str:
    return _SHOWN.get(x, x.name)


def _plus_text(inner: str, c: int) -> str:
    return inner if not c else f"{inner} + {c}" if c > 0 else f"{inner} - {-c}"


def _term_text(ch: Chain) -> str:
    if ch.big == 1:
        return _name(ch.x)
    y = _name(ch.x) if not ch.low else f"({_plus_text(_name(ch.x), ch.low)})"
    return f"{y}//{ch.big}"


def text(ch: Chain) -> str:
    """``expr(ch)`` printed as printing.pyrepr prints it."""
    return _plus_text(_term_text(ch), ch.c)


def tail(ch: Chain, s: int, hi: int) -> tuple:
    """The W310 tail of a window sliding over ``ch`` (m, in RuleContext.tail) with stride ``s`` >= 2 and right
    padding ``hi``: (``(m % s) - hi > 0`` unevaluated, its text), as RuleContext.tail makes them."""
    r = ch.c % s  # canonical._chain_mod: (term + c) % s is (term + c % s) % s
    short = _plus(_raw(IntMod, _plus(ch.term, r), s), -hi)
    inner = _term_text(ch)
    inner = f"({_plus_text(inner, r)})" if r else inner
    return sympy.Basic.__new__(sympy.StrictGreaterThan, short, sympy.S.Zero), _plus_text(f"{inner} % {s}", -hi)
