"""Symbolic tensor dimensions.

Every dimension is a sympy expression of integer symbols (``dim``: positive,
``unknown``: any integer).  Conv/pool arithmetic is floor division by a
constant; sympy's ``floor`` nests without end and ``simplify`` is slow, so
``FloorDiv`` keeps itself canonical on construction: a conv/pool chain stays
one term ``(x + A)//B + C`` with ``0 <= A < B``.  Canonicalisation lives in
``FloorDiv.eval`` / ``IntMod.eval`` so ``subs`` and ``xreplace`` re-apply it.
"""
from __future__ import annotations

import bisect
import collections
import functools
import keyword
import math
import operator

import sympy
from sympy.core.sympify import _sympify
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

__all__ = [
    "dim", "unknown", "stand_in", "FloorDiv", "IntMod", "floordiv", "ceildiv", "mod", "offset",
    "pyrepr", "is_int_const", "ops", "at_least", "greater", "divides", "equal",
    "evaluate", "to_expr",
]

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
    return sympy.Basic.__new__(cls, a, sympy.Integer(b) if isinstance(b, int) else b)


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
    if b == 1 and (_chain_dim(a) or _integral_sum(a) or a.is_integer):  # a conv's stride 1: no assumption query
        return a
    step = _chain_step(a, b)
    return step if step is not None else _floordiv_split(a, b)


def _integral_sum(a) -> bool:
    known = _long_sum(a)
    return known is not None and known.integral


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
    sympy work; None where it does not apply."""
    c, rest = a.as_coeff_Add()
    if not c.is_Integer:
        return None
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


def offset(e, c) -> sympy.Expr:
    """``e + c``: sympy's own sum (tested), built without Add.flatten and sympy's cache where ``c`` is an
    integer and ``e`` a number, or a symbol, FloorDiv or IntMod plus a number, as every conv/pool chain dim is
    (~30 us saved on each new one), and where ``e`` is a long sum (see _merged); sympy adds anything else."""
    if isinstance(c, sympy.Integer):
        c = int(c)
    t = type(e)
    if type(c) is int:
        if e.is_Integer:
            return sympy.Integer(int(e) + c)
        if t is sympy.Add:
            args = e.args
            if len(args) == 2 and args[0].is_Integer and _monomial(args[1]):
                return _plus(args[1], int(args[0]) + c)
        elif _monomial(e):
            return _plus(e, c)
    if t is sympy.Add and len(e.args) >= LONG_SUM:
        merged = _merged(e, c)
        if merged is not None:
            return merged
    return e + c


# A plan of n layers with named unknowns (`Conv2d(?c, kernel_size=?k, padding=?p)`) adds a few terms to each
# spatial dim per layer; Add.flatten collects and sorts all of a sum's terms on every addition, and the checks
# and messages of each layer walk them again (quadratic in the plan: 6 s for 160 layers).  _merged puts the
# few new terms into a long sum's sorted ones instead, and keeps what those checks ask of the sum (_Sum).
LONG_SUM = 8  # terms from which a sum is merged into rather than rebuilt
_SUMS: collections.OrderedDict = collections.OrderedDict()  # id(sum) -> (sum, _Sum), the sums _merged read or made
_SUMS_KEPT = 256
_ORDER = sympy.core.basic._args_sortkey  # the order of an Add's terms (Add.flatten sorts with it)


class _Sum:
    """A sum of a number and integer multiples of distinct symbols, FloorDivs and IntMods, read once and then
    kept up to date term by term.  ``terms``: monomial -> (coefficient, term); ``integral``: every monomial
    is an integer, ``symbols``: every one is an integer symbol (both may read False after a term cancels:
    then the general paths decide); ``free``: how many are integer symbols of any sign (solver unknowns);
    ``ones``: how many coefficients are 1 or -1; ``top``: at least the largest coefficient's size;
    ``printed``: (names, pieces) in name order, for _quick_sum, where every monomial is a symbol."""

    __slots__ = ("number", "terms", "integral", "symbols", "free", "ones", "top", "printed")

    def __init__(self, number: int, terms: dict, like: _Sum | None = None):
        self.number, self.terms, self.printed = number, terms, None
        if like is None:
            self.integral, self.symbols, self.free, self.ones, self.top = True, True, 0, 0, 0
            for m, (c, _) in terms.items():
                self.count(m, c, 1)
        else:
            self.integral, self.symbols, self.free, self.ones, self.top = (like.integral, like.symbols, like.free,
                                                                           like.ones, like.top)

    def count(self, m, c: int, sign: int) -> None:
        """Count the term ``c*m`` into (sign 1) or out of (sign -1) the flags."""
        whole = m.is_integer is True
        symbol = whole and type(m) is sympy.Symbol
        if sign > 0:
            self.integral = self.integral and whole
            self.symbols = self.symbols and symbol
            self.top = max(self.top, abs(c))
        if symbol and m.is_nonnegative is None and m.is_nonpositive is None:
            self.free += sign
        if c in (1, -1):
            self.ones += sign


def _merged(e, d):
    """``e + d`` as sympy.Add gives it (tested) for a sum ``e`` and a number or sum ``d`` of integer multiples
    of symbols, FloorDivs and IntMods: a copy of ``e``'s terms with ``d``'s put in their sorted places.  None
    for other forms."""
    base = _linear_terms(e)
    if base is None:
        return None
    if type(d) is int:
        number, new = d, ()
    else:
        number, new = 0, []
        for t in sympy.Add.make_args(d):
            if t.is_Integer:
                number += int(t)
                continue
            term = _term(t)
            if term is None:
                return None
            new.append(term)
    number += base.number
    terms, args = dict(base.terms), list(e.args[1:] if base.number else e.args)
    known = _Sum(number, terms, like=base)
    changed = []
    for c, m in new:
        old = terms.pop(m, None)
        if old is not None:  # like terms: the old one leaves its place
            i = bisect.bisect_left(args, _ORDER(old[1]), key=_ORDER)
            if args[i] is not old[1]:
                return None
            del args[i]
            known.count(m, old[0], -1)
            c += old[0]
        if c:
            term = m if c == 1 else sympy.Mul(sympy.Integer(c), m)  # as Add.flatten makes it
            terms[m] = (c, term)
            known.count(m, c, 1)
            bisect.insort(args, term, key=_ORDER)
        changed.append((m, c, old is not None))
    if number:
        args.insert(0, sympy.Integer(number))
    out = sympy.Add._from_args(args, True)
    if type(out) is sympy.Add:
        if base.printed is not None and known.symbols:
            known.printed = _reprinted(base.printed, changed)
        elif known.symbols:
            known.printed = _printed(terms)
        _remember(out, known)
    return out


def _reprinted(printed, changed):
    """_Sum.printed with the ``changed`` terms (monomial, new coefficient, whether it was there) put in."""
    names, pieces = list(printed[0]), list(printed[1])
    for m, c, was in changed:
        i = bisect.bisect_left(names, m.name)
        there = i < len(names) and names[i] == m.name
        if there != was:  # another symbol of the same name: _quick_sum declines
            return None
        if not c:
            del names[i], pieces[i]
        elif was:
            pieces[i] = _piece(m.name, c)
        else:
            names.insert(i, m.name)
            pieces.insert(i, _piece(m.name, c))
    return names, pieces


def _printed(terms) -> tuple | None:
    """_Sum.printed of symbol ``terms``; None where two symbols share a name (sympy's order is its own)."""
    order = sorted((m.name, c) for m, (c, _) in terms.items())
    names = [name for name, _ in order]
    if any(a == b for a, b in zip(names, names[1:], strict=False)):
        return None
    return names, [_piece(name, c) for name, c in order]


def _piece(name: str, c: int) -> str:
    return ("- " if c < 0 else "+ ") + (name if abs(c) == 1 else f"{abs(c)}*{name}")


def _linear_terms(e) -> _Sum | None:
    """``e`` read as a _Sum (its terms in Add's order), or None for any other sum."""
    hit = _SUMS.get(id(e))
    if hit is not None and hit[0] is e:
        return hit[1]
    args, number, terms = e.args, 0, {}
    if args[0].is_Integer:
        number, args = int(args[0]), args[1:]
    for t in args:
        term = _term(t)
        if term is None or term[1] in terms:
            return None
        terms[term[1]] = (term[0], t)
    if any(a.compare(b) >= 0 for a, b in zip(args, args[1:], strict=False)):  # built unsorted (evaluate=False)
        return None
    known = _Sum(number, terms)
    _remember(e, known)
    return known


def numbers_below(e, limit: int) -> bool:
    """True if every number in ``e`` is below ``limit`` in size, for a long sum of integer multiples of
    symbols (the coefficients and the number, kept as the sum grew); False where that is not known."""
    known = _long_sum(e)
    return known is not None and known.symbols and known.top < limit and abs(known.number) < limit


def _long_sum(e) -> _Sum | None:
    return _linear_terms(e) if type(e) is sympy.Add and len(e.args) >= LONG_SUM else None


def _term(t):
    """(coefficient, monomial) of ``k*m`` or ``m`` for an integer k and a symbol, FloorDiv or IntMod m."""
    if type(t) is sympy.Mul:
        args = t.args
        if len(args) == 2 and args[0].is_Integer and _monomial(args[1]):
            return int(args[0]), args[1]
        return None
    return (1, t) if _monomial(t) else None


def _remember(e, known: _Sum) -> None:
    if len(_SUMS) >= _SUMS_KEPT:
        _SUMS.popitem(last=False)  # the oldest: a chain's newest sums stay
    _SUMS[id(e)] = e, known  # by identity: hashing a long sum walks it (e kept alive, so its id stays its own)


def _monomial(t) -> bool:
    return type(t) is FloorDiv or type(t) is IntMod or t.is_Symbol


def _plus(t, c: int):
    """``t + c`` for a symbol, FloorDiv or IntMod ``t``: what sympy.Add gives (the number first), built
    without Add.flatten and sympy's cache (tested equal)."""
    return sympy.Add._from_args((sympy.Integer(c), t), True) if c else t


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


# ---------------------------------------------------------------- printing

def _print_binop(printer, e, op):
    # "a//b" but "a % b": the forms people write (and PEP 8 tolerates).
    a, b = e.args
    prec = PRECEDENCE["Mul"]
    # Python's // and % are left-associative at * level: the left operand needs
    # parentheses only below that level, the right one also at it.
    left = printer.parenthesize(a, prec, strict=True)
    right = printer.parenthesize(b, prec, strict=False)
    return f"{left}{op}{right}" if op == "//" else f"{left} {op} {right}"


def _prec(x):
    if isinstance(x, (FloorDiv, IntMod)):
        return PRECEDENCE["Mul"]  # same level as Python's // and %
    return precedence(x)


class _PyPrinter(StrPrinter):
    """sympy's str printer, with Python operators where str uses functions."""

    def parenthesize(self, item, level, strict=False):
        p = _prec(item)
        if p < level or (not strict and p <= level):
            return f"({self._print(item)})"
        return self._print(item)

    _relops = {"==": "==", "!=": "!=", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}

    def _print_Symbol(self, e):
        return _SHOWN.get(e, e.name)

    def _print_FloorDiv(self, e):
        return _print_binop(self, e, "//")

    def _print_Max(self, e):  # Python's max(), as a plan writes it
        return f"max({', '.join(self._print(a) for a in e.args)})"

    def _print_Min(self, e):
        return f"min({', '.join(self._print(a) for a in e.args)})"

    def _print_IntMod(self, e):
        return _print_binop(self, e, "%")

    def _print_Mod(self, e):  # sympy's own Mod, should one sneak in
        return _print_binop(self, e, "%")

    def _print_Mul(self, e):
        # sympy gives a negative product Add precedence and prints its factors
        # against that, so -2*(L//2) would come out as -2*L//2 == (-2*L)//2.
        # Print the sign, then the positive product at its own level.
        if e.as_coeff_Mul()[0].is_negative:
            pos = -e
            if not pos.is_Mul and _prec(pos) <= PRECEDENCE["Mul"]:
                return f"-({self._print(pos)})"
            return f"-{self._print(pos)}"
        return super()._print_Mul(e)

    def _print_Add(self, e, order=None):
        # Binary minus binds looser than // and %, so "L - L//2" needs no
        # parentheses (sympy's printer would add them around the negated term).
        out = []
        for i, term in enumerate(self._ordered_terms(e, order)):
            if i and term.as_coeff_Mul()[0].is_negative:
                out.append(f"- {self.parenthesize(-term, PRECEDENCE['Add'], strict=True)}")
            elif i:
                out.append(f"+ {self.parenthesize(term, PRECEDENCE['Add'], strict=True)}")
            else:
                out.append(self.parenthesize(term, PRECEDENCE["Add"], strict=True))
        return " ".join(out)

    def _ordered_terms(self, e, order):
        """sympy's term order; `x + c` without its monomial sort, which costs ~0.2 ms per Add."""
        args = e.args
        if order is None and self.order is None and len(args) == 2 and args[0].is_Number:
            c, t = args  # an Add keeps its number first
            coeff, m = t.as_coeff_Mul()
            if m.is_Symbol or isinstance(m, (FloorDiv, IntMod)):  # one monomial of degree 1
                # as_ordered_terms' special case: "1 - L" when a positive number meets -k*x
                number_first = c.is_positive and coeff.is_negative and t.is_Mul and len(t.args) == 2
                return [c, t] if number_first else [t, c]
        return self._as_ordered_terms(e, order=order)

    def _print_Relational(self, e):
        op = self._relops.get(e.rel_op)
        if op is None:
            return super()._print_Relational(e)
        return f"{self._print_operand(e.lhs)} {op} {self._print_operand(e.rhs)}"

    def _print_operand(self, x):
        if isinstance(x, sympy.logic.boolalg.Boolean) and not x.is_Atom:
            return f"({self._print(x)})"
        return self._print(x)

    def _print_And(self, e):
        return " and ".join(self._print_bool_arg(a) for a in e.args)

    def _print_Or(self, e):
        return " or ".join(self._print_bool_arg(a) for a in e.args)

    def _print_Not(self, e):
        return f"not {self._print_bool_arg(e.args[0])}"

    def _print_bool_arg(self, a):
        if isinstance(a, (sympy.And, sympy.Or)):
            return f"({self._print(a)})"
        return self._print(a)


_printer = _PyPrinter()


def pyrepr(e) -> str:
    """Python source for ``e``; evaluates to the same value for int symbols."""
    if isinstance(e, bool):
        return repr(e)
    if type(e) is sympy.Add and len(e.args) >= LONG_SUM:  # before the cache: hashing walks the sum
        quick = _quick_sum(e)
        if quick is not None:
            return quick
    return _print(to_expr(e))


@functools.lru_cache(maxsize=4096)  # a plan prints the same dims again and again; printing is slow
def _print(e: sympy.Basic) -> str:
    quick = _quick_relation(e) if isinstance(e, sympy.core.relational.Relational) else _quick(e)
    return _printer.doprint(e) if quick is None else quick


_QUICK_OPS = {sympy.Eq: "==", sympy.Ne: "!=", sympy.Ge: ">=", sympy.Gt: ">", sympy.Le: "<=", sympy.Lt: "<"}


def _quick(e) -> str | None:
    """What the printer gives for a conv/pool chain dim (tested): a symbol, ``a//b`` or ``a % b`` of such a
    dim by a positive number, each plus a number or not; None for anything else.  sympy's printer spends
    ~0.1 ms on each new one: sorting the terms, precedences, dispatch."""
    if e.is_Symbol:
        return _SHOWN.get(e, e.name)
    if e.is_Integer:
        return str(e.p)
    t = type(e)
    if t is sympy.Add:
        args = e.args
        if len(args) >= LONG_SUM:
            return _quick_sum(e)
        if len(args) != 2 or not args[0].is_Integer or args[1].is_Integer:
            return None
        c, m = int(args[0]), args[1]
        if not (m.is_Symbol or type(m) is FloorDiv or type(m) is IntMod):
            return None
        inner = _quick(m)
        if inner is None:
            return None
        return f"{inner} + {c}" if c > 0 else f"{inner} - {-c}"
    if t is FloorDiv or t is IntMod:
        a, b = e.args
        if not (b.is_Integer and b.p > 0):
            return None
        inner = _quick(a)
        if inner is None:
            return None
        if type(a) is sympy.Add:
            inner = f"({inner})"
        return f"{inner}//{b.p}" if t is FloorDiv else f"{inner} % {b.p}"
    return None


def _quick_sum(e) -> str | None:
    """What the printer gives for a long sum of integer multiples of distinct symbols and a number: the
    symbols by name, the number last (sympy's lex order of the monomials; tested).  None for other sums."""
    known = _long_sum(e)
    if known is None or not known.symbols:
        return None
    if known.printed is None:
        known.printed = _printed(known.terms)
        if known.printed is None:
            return None
    pieces, number = known.printed[1], known.number
    first = pieces[0][2:] if pieces[0][0] == "+" else "-" + pieces[0][2:]
    tail = f" + {number}" if number > 0 else f" - {-number}" if number else ""
    return " ".join([first, *pieces[1:]]) + tail


def _quick_relation(e) -> str | None:
    op = _QUICK_OPS.get(type(e))
    if op is None:
        return None
    lhs, rhs = _quick(e.args[0]), _quick(e.args[1])
    return None if lhs is None or rhs is None else f"{lhs} {op} {rhs}"


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
    return math.gcd(*(c for c, _ in known.terms.values()))


def _free_sum_bound(d):
    """``d >= 0`` for a long sum of integer symbols (distinct, coefficients without a common factor) and a
    number, one symbol of any sign (a solver unknown): undecidable, so ``rest >= n`` unevaluated, what the
    general path gives through sympy.Ge (tested) after walking the sum four times.  None for other forms."""
    known = _long_sum(d)
    if known is None or not (known.symbols and known.free and (known.ones or _gcd_of(known) == 1)):
        return None
    c, rest = d.as_coeff_Add()
    return sympy.Ge(rest, -c, evaluate=False)


def _chain_bound(d):
    """``d >= 0`` for ``d = (x + A)//B + c`` or ``d = x + c`` (x a symbol), as conv/pool chains ask it:
    ``x >= n`` with Python integers, true where x's sign decides it.  The general path gives the same
    (tested) through two rewrites; None where it does not apply."""
    c, rest = d.as_coeff_Add()
    if not c.is_Integer:
        return None
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


def _chain_dim(a) -> bool:
    """``a`` is an integer symbol or a FloorDiv, plus a number or not."""
    if type(a) is sympy.Add and len(a.args) == 2 and a.args[0].is_Integer:
        a = a.args[1]
    return type(a) is FloorDiv or (a.is_Symbol and a.is_integer is True)


def divides(e, m) -> sympy.Basic:
    """Condition ``e % m == 0``; true/false if decidable."""
    r = mod(e, m)
    if r.is_Number:
        return _bool(r == 0)
    return sympy.Eq(r, 0, evaluate=False)


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


# ---------------------------------------------------------------- periodic conditions

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
