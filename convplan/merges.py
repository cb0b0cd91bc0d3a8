"""Merges: the operations that join tensors (`add`, `mul`, `cat`), declared once like layers.

Each rule takes the input shapes and returns the output shape plus the conditions that
must hold (dim equalities convplan could neither prove nor refute); a mismatch that is
certain raises `MergeError` naming the dim.  torch is the oracle: `add` is strict (the
shapes agree), `mul` broadcasts as torch does (a dim of 1 stretches), `cat` needs equal
shapes except along `dim`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy

from .shapes import equal, equal_condition, pyrepr
from .show import show_shape


class MergeError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class MergeSpec:
    name: str
    rule: Callable  # (shapes, args) -> (output shape, [(condition, message)])
    args: tuple[tuple[str, object], ...] = ()  # (name, default); every argument is an int
    what: str = ""  # for messages: "added", "multiplied", "concatenated"


def _same_rank(shapes, what: str) -> int:
    ranks = {len(s) for s in shapes}
    if len(ranks) > 1:
        raise MergeError(f"tensors of different ranks cannot be {what}: "
                         + " and ".join(f"{len(s)}-D {show_shape(s)}" for s in shapes))
    return ranks.pop()


def _agree(shapes, i: int, what: str, conds: list) -> None:
    """Dim i of every shape equals dim i of the first."""
    first = shapes[0][i]
    for other in shapes[1:]:
        cond = equal_condition(first, other[i])
        if cond is sympy.false:
            raise MergeError(f"tensors {show_shape(shapes[0])} and {show_shape(other)} cannot be {what}: "
                             f"dim {i} differs ({pyrepr(first)} vs {pyrepr(other[i])})")
        if cond is not sympy.true:
            conds.append((cond, f"dim {i} of the {what} tensors must agree ({pyrepr(first)} vs {pyrepr(other[i])})"))


def add_rule(shapes, args):
    conds: list = []
    for i in range(_same_rank(shapes, "added")):
        _agree(shapes, i, "added", conds)
    return tuple(shapes[0]), conds


def mul_rule(shapes, args):
    """torch broadcasting, right-aligned: a dim of 1 stretches to the other."""
    rank = max(len(s) for s in shapes)
    padded = [(sympy.Integer(1),) * (rank - len(s)) + tuple(s) for s in shapes]
    out, conds = [], []
    for i in range(rank):
        wide = [s[i] for s in padded if s[i] != 1]
        if not wide:
            out.append(sympy.Integer(1))
            continue
        for other in wide[1:]:
            if equal(wide[0], other) is False:
                raise MergeError(f"tensors {' and '.join(show_shape(s) for s in shapes)} cannot be multiplied: dim {i} "
                                 f"is {pyrepr(wide[0])} in one and {pyrepr(other)} in another",
                                 "broadcasting stretches only a dim written as 1 (e.g. after AdaptiveAvgPool2d(1))")
            cond = equal_condition(wide[0], other)
            if cond is not sympy.true:
                conds.append((cond, f"dim {i} of the multiplied tensors must agree ({pyrepr(wide[0])} vs "
                              f"{pyrepr(other)})"))
        out.append(wide[0])
    return tuple(out), conds


def cat_rule(shapes, args):
    rank = _same_rank(shapes, "concatenated")
    d = args["dim"]
    if not -rank <= d < rank:
        raise MergeError(f"dim={d} is out of range for {rank}-D tensors (expected {-rank} to {rank - 1})")
    d %= rank
    conds: list = []
    for i in range(rank):
        if i != d:
            try:
                _agree(shapes, i, "concatenated", conds)
            except MergeError as exc:  # cat(a) joins along dim 0, as torch.cat: dim=1 was probably meant
                raise MergeError(exc.message, _other_dim_hint(shapes, d, args["dim"])) from None
    out = list(shapes[0])
    out[d] = sympy.Add(*(s[d] for s in shapes))
    return tuple(out), conds


def _other_dim_hint(shapes, d: int, written: int) -> str | None:
    """`dim=1` when the shapes differ in that one dim only, the one cat could join along instead of `d`."""
    differ = [i for i in range(len(shapes[0])) if any(equal(s[i], shapes[0][i]) is not True for s in shapes)]
    if len(differ) != 1 or differ[0] == d:
        return None
    return f"cat joins along dim={written}; the tensors differ only in dim {differ[0]}: cat(..., dim={differ[0]})"


MERGES: dict[str, MergeSpec] = {
    spec.name: spec
    for spec in (
        MergeSpec("add", add_rule, what="added"),
        MergeSpec("mul", mul_rule, what="multiplied"),
        MergeSpec("cat", cat_rule, (("dim", 0),), "concatenated"),  # torch.cat's default dim
    )
}
