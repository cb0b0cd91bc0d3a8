"""The `?` unknowns of one plan: which symbol stands for which `?`, what was solved, and how to
write a message about them as the plan wrote them (`?k`, not the symbol `_k`)."""

from __future__ import annotations

import itertools
import re

import sympy

from . import nodes as n
from .shapes import unknown


class Unknowns:
    def __init__(self):
        self.table: dict[sympy.Symbol, n.Unknown] = {}  # symbol -> the `?` that made it
        self.solution: dict[sympy.Symbol, sympy.Integer] = {}
        self.unsolvable: set = set()  # unknowns whose error is already reported (no E310 for them)

    def __contains__(self, sym) -> bool:
        return sym in self.table

    def new(self, expr: n.Unknown, what: str) -> sympy.Symbol:
        """The symbol for `expr`; an anonymous `?` is named after the argument it stands in."""
        label = expr.name
        if label is None:
            taken = {s.name for s in self.table}
            label = what if f"_{what}" not in taken else next(
                f"{what}_{i}" for i in itertools.count(2) if f"_{what}_{i}" not in taken)
        sym = unknown(f"_{label}")  # `?p` -> `_p`: a legal name that reads back as the unknown
        if expr.name and sym in self.table:
            return sym  # `?p` twice means the same unknown
        self.table[sym] = expr
        return sym

    def in_(self, exprs) -> set:
        """The unknowns the expressions hold."""
        if not self.table:  # no `?` in the plan: none, without walking the expressions
            return set()
        return {s for d in exprs for s in d.free_symbols if s in self.table}

    def unsolved(self):
        """(symbol, `?`) of each unknown nothing determined and no error reported yet."""
        return [(s, u) for s, u in self.table.items() if s not in self.solution and s not in self.unsolvable]

    def solved(self) -> dict[str, int]:
        return {s.name[1:]: int(v) for s, v in self.solution.items()}

    def as_written(self, text: str) -> str:
        """`_k` (the unknown's symbol in a message) back to `?k`, as the plan wrote it; an anonymous `?` reads
        as `?padding` (the `solved:` line's name for it), not "this `?`", inside an expression."""
        for u in self.table:
            text = re.sub(rf"(?<![\w?]){re.escape(u.name)}(?!\w)", f"?{u.name[1:]}", text)
        return text

    def solved_hint(self, cond) -> str | None:
        """`?k = -1` for the unknowns in a condition that their solution made false."""
        solved = [f"{label(self.table[u])} = {self.solution[u]}"
                  for u in sorted(cond.free_symbols & set(self.solution), key=str)]
        return f"solved from the `->` assertion: {', '.join(solved)}" if solved else None


def label(unk: n.Unknown) -> str:
    return f"?{unk.name}" if unk.name else "this `?`"
