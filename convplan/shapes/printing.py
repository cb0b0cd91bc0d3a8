"""Sympy expressions printed as the Python a user would write: `(L - 1)//2 + 1`, `H % 16 == 0`.

Plan names are printed as written (`?k` for an unknown), and the quick paths print the common shapes without
sympy's printer, which dominates a check's time otherwise."""

from __future__ import annotations

import functools

import sympy
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from .canonical import _SHOWN, LONG_SUM, FloorDiv, IntMod, _long_sum, _printed, to_expr


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
