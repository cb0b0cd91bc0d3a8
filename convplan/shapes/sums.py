"""``e + c`` for a dim: sympy's own sum (tested), built without Add.flatten where that is slow.

A plan of n layers with named unknowns (`Conv2d(?c, kernel_size=?k, padding=?p)`) adds a few terms to each
spatial dim per layer, so its dims grow to thousands of terms.  Add.flatten collects and sorts all of a sum's
terms on every addition (quadratic in the plan: 6 s for 160 layers).  ``offset`` puts the few new terms into
a long sum's sorted ones instead (``_merged``), and keeps what the checks and messages ask of the sum (a
``_Sum``: its terms by monomial, how it prints, a few flags) for the next addition.

Every layer makes new sums from old ones, and most old ones are read again at most once or twice (the
layer's message names its input).  Copying the terms for each new sum was still quadratic, so a line of sums
shares one set of containers (``_Family``), held by one of them at a time; every other one keeps the few
changes that lead to a neighbour, and is made the holder again by replaying them (Baker's trick for
persistent arrays).  A layer moves the holder back and forth a few steps: no copy grows with the sum.
"""

from __future__ import annotations

import bisect
import collections

import sympy

from .affine import chain_of
from .canonical import _monomial, _plus

LONG_SUM = 8  # terms from which a sum is merged into rather than rebuilt
_SUMS: collections.OrderedDict = collections.OrderedDict()  # id(sum) -> (sum, _Sum), the sums _merged read or made
_SUMS_KEPT = 256
_ORDER = sympy.core.basic._args_sortkey  # the order of an Add's terms (Add.flatten sorts with it)


def offset(e, c) -> sympy.Expr:
    """``e + c``: sympy's own sum (tested), built without Add.flatten and sympy's cache where ``c`` is an
    integer and ``e`` a number, or a symbol, FloorDiv or IntMod (or an integer times one) plus a number, as
    every conv/pool chain dim is (~30 us saved on each new one), and where ``e`` is a long sum (see _merged);
    sympy adds anything else."""
    if isinstance(c, sympy.Integer):
        c = int(c)
    t = type(e)
    if type(c) is int:
        if e.is_Integer:
            return sympy.Integer(int(e) + c)
        if t is sympy.Add:
            args = e.args
            if len(args) == 2 and args[0].is_Integer and _term(args[1]) is not None:
                return _plus(args[1], int(args[0]) + c)
        elif _term(e) is not None:  # `k*m + c` too (a Linear's count): Add.flatten's shortcut makes it so
            return _plus(e, c)
    if t is sympy.Add and len(e.args) >= LONG_SUM:
        merged = _merged(e, c)
        if merged is not None:
            return merged
    return e + c


def total(terms) -> sympy.Expr:
    """``sympy.Add(*terms)``, its numbers added in Python and the last one by ``offset``: a plan's parameter
    counts are numbers, or a number plus one product (its Linear's inferred in_features), and the first
    Add.flatten of a process imports sympy.tensor.tensor (~20 ms of a `convplan check`)."""
    number, rest = 0, []
    for t in terms:
        if t.is_Integer:
            number += int(t)
        else:
            rest.append(t)
    return offset(rest[0] if len(rest) == 1 else sympy.Add(*rest), number) if rest else sympy.Integer(number)


class _Family:
    """The containers a line of sums shares, holding the terms of one of them (its ``holder``): ``terms``,
    monomial -> (coefficient, term); ``names`` and ``pieces``, the symbol monomials in name order and how
    each prints (``+ 2*H``), for _quick_sum: None until first printed, and for good once two symbols share a
    name (sympy's order is its own then: ``clash``)."""

    __slots__ = ("terms", "names", "pieces", "clash")

    def __init__(self, terms: dict):
        self.terms, self.names, self.pieces, self.clash = terms, None, None, False

    def change(self, changes) -> list:
        """Put in ``changes`` [(monomial, (coefficient, term) or None to remove)]; the changes that undo them."""
        terms, back = self.terms, []
        for m, entry in changes:
            old = terms.get(m)
            back.append((m, old))
            if entry is None:
                del terms[m]
            else:
                terms[m] = entry
            if self.names is not None and type(m) is sympy.Symbol:
                self._reprint(m, old is not None, entry)
        back.reverse()
        return back

    def _reprint(self, m, was: bool, entry) -> None:
        names, pieces = self.names, self.pieces
        i = bisect.bisect_left(names, m.name)
        there = i < len(names) and names[i] == m.name
        if there != was:  # another symbol of the same name
            self.names = self.pieces = None
            self.clash = True
        elif entry is None:
            del names[i], pieces[i]
        elif was:
            pieces[i] = _piece(m.name, entry[0])
        else:
            names.insert(i, m.name)
            pieces.insert(i, _piece(m.name, entry[0]))

    def print_order(self) -> list[str] | None:
        """``pieces``, made from the terms when first asked; None after a clash."""
        if self.pieces is None and not self.clash:
            order = sorted((m.name, c) for m, (c, _) in self.terms.items() if type(m) is sympy.Symbol)
            names = [name for name, _ in order]
            if any(a == b for a, b in zip(names, names[1:], strict=False)):
                self.clash = True
                return None
            self.names, self.pieces = names, [_piece(name, c) for name, c in order]
        return self.pieces


class _Sum:
    """A sum of a number and integer multiples of distinct symbols, FloorDivs and IntMods, read once and then
    kept up to date term by term.  ``number``; ``integral``: every monomial is an integer, ``symbols``: every
    one is an integer symbol (both may read False after a term cancels: then the general paths decide);
    ``free``: how many are integer symbols of any sign (solver unknowns); ``ones``: how many coefficients
    are 1 or -1; ``top``: at least the largest coefficient's size.  Its terms are in its ``family``, which
    it holds where ``toward`` is None; else ``changes`` turn the terms of the sum ``toward`` into its own."""

    __slots__ = ("number", "integral", "symbols", "free", "ones", "top", "family", "toward", "changes")

    def __init__(self, number: int, family: _Family, like: _Sum | None = None):
        self.number, self.family, self.toward, self.changes = number, family, None, None
        if like is None:
            self.integral, self.symbols, self.free, self.ones, self.top = True, True, 0, 0, 0
            for m, (c, _) in family.terms.items():
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

    def held(self) -> _Family:
        """The family, holding this sum's terms: the changes on the way from the holder are replayed, each
        sum passed keeping those that lead back."""
        if self.toward is not None:
            path, s = [], self
            while s.toward is not None:
                path.append(s)
                s = s.toward
            for s in reversed(path):
                back = self.family.change(s.changes)
                s.toward.toward, s.toward.changes = s, back
                s.toward = s.changes = None
        return self.family

    def terms(self) -> dict:
        """monomial -> (coefficient, term); valid until another sum of the family is read."""
        return self.held().terms

    def pieces(self) -> list[str] | None:
        """The symbol terms as printed, in name order (`_Family.pieces`); None where sympy's order is its own."""
        return self.held().print_order()


def _merged(e, d):
    """``e + d`` as sympy.Add gives it (tested) for a sum ``e`` and a number or sum ``d`` of integer multiples
    of symbols, FloorDivs and IntMods: ``e``'s terms with ``d``'s put in their sorted places, in one new
    tuple; ``e``'s family passes to the new sum.  None for other forms."""
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
    known = _Sum(base.number + number, base.family, like=base)
    args = e.args[1:] if base.number else e.args
    terms = base.terms() if new else None
    changes, cuts = [], []
    for c, m in new:
        old = terms.get(m)
        if old is not None:  # like terms: the old one leaves its place
            i = bisect.bisect_left(args, _ORDER(old[1]), key=_ORDER)
            if i == len(args) or args[i] is not old[1]:
                return None
            cuts.append((i, 1, None))
            known.count(m, old[0], -1)
            c += old[0]
        entry = None
        if c:
            term = m if c == 1 else sympy.Mul(sympy.Integer(c), m)  # as Add.flatten makes it
            entry = (c, term)
            known.count(m, c, 1)
            cuts.append((bisect.bisect_right(args, _ORDER(term), key=_ORDER), 0, term))
        changes.append((m, entry))
    out = _add(_spliced(known.number, args, cuts))
    if type(out) is sympy.Add:
        if changes:
            back = base.held().change(changes)
            base.toward, base.changes = known, back
        else:  # the same terms: the family stays with the sum that holds it
            known.toward, known.changes = base, []
        _remember(out, known)
    return out


def _spliced(number: int, args: tuple, cuts: list) -> tuple:
    """The number (if any), then ``args`` cut at each (index, 1, None) (that term left out) and at each
    (index, 0, term) (``term`` put before args[index]): one new tuple, built by slices."""
    out = [sympy.Integer(number)] if number else []
    if not cuts:
        out.extend(args)
        return tuple(out)
    cuts.sort(key=lambda cut: (cut[0], cut[1], _ORDER(cut[2]) if cut[2] is not None else 0))
    start = 0
    for i, gone, term in cuts:
        out.extend(args[start:i])
        if gone:
            start = i + 1
        else:
            out.append(term)
            start = i
    out.extend(args[start:])
    return tuple(out)


def _add(args: tuple):
    """``Add._from_args(args)`` for two or more sorted terms, without the two copies of ``args`` its
    ``*args`` call makes (what sympy's Basic.__new__ and AssocOp._from_args set, tested equal)."""
    if len(args) < 2:
        return sympy.Add._from_args(args, True)
    obj = object.__new__(sympy.Add)
    obj._assumptions = sympy.Add.default_assumptions
    obj._mhash = None
    obj._args = args
    obj.is_commutative = True
    return obj


def without_number(d):
    """``d.as_coeff_Add()`` for a long sum ``d`` (the number, and the sum of the rest), with one copy of
    its terms."""
    args = d.args
    if not args[0].is_Number:
        return sympy.S.Zero, d
    return args[0], _add(args[1:])


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
    known = _Sum(number, _Family(terms))
    _remember(e, known)
    return known


def numbers_below(e, limit: int) -> bool:
    """True if every number in ``e`` is below ``limit`` in size, for a long sum of integer multiples of
    symbols (the coefficients and the number, kept as the sum grew) and for a conv/pool chain dim (its three
    numbers, read by affine.chain_of without walking it); False where that is not known."""
    if type(e) is not sympy.Add or len(e.args) < LONG_SUM:
        chain = chain_of(e)
        return chain is not None and max(abs(chain.low), chain.big, abs(chain.c)) < limit
    known = _long_sum(e)
    return known is not None and known.symbols and known.top < limit and abs(known.number) < limit


def _long_sum(e) -> _Sum | None:
    return _linear_terms(e) if type(e) is sympy.Add and len(e.args) >= LONG_SUM else None


def integral_sum(a) -> bool:
    """``a`` is a long sum known to be integer-valued (without sympy's assumption query, which walks it)."""
    known = _long_sum(a)
    return known is not None and known.integral


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


def quick_sum(e) -> str | None:
    """What the printer gives for a long sum of integer multiples of distinct symbols and a number: the
    symbols by name, the number last (sympy's lex order of the monomials; tested).  None for other sums."""
    known = _long_sum(e)
    if known is None or not known.symbols:
        return None
    pieces = known.pieces()
    if pieces is None:
        return None
    number = known.number
    text = " ".join(pieces)  # "+ H - 2*_p0 + ...": the first sign as a sum starts
    text = text[2:] if text[0] == "+" else "-" + text[2:]
    return text + (f" + {number}" if number > 0 else f" - {-number}" if number else "")
