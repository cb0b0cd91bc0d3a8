"""The syntax tree of a .plan file: frozen dataclasses, each with its source span.

These say what the user wrote, nothing more: no shapes, no sympy.  `check.py` gives
them meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .errors import Span

# -- expressions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: int
    span: Span


@dataclass(frozen=True)
class Float:
    value: float
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True)
class Const:
    """True, False or None."""

    value: object
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Unknown:
    """`?` or `?name`: an integer the solver finds."""

    name: str | None
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * // %
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Tuple:
    items: tuple[Expr, ...]
    span: Span


Expr = Union[Num, Float, Str, Const, Name, Unknown, BinOp, Neg, Tuple]

# -- statements ------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    name: str | None  # None for a positional argument
    value: Expr
    span: Span  # the whole `name=value`


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Shape:
    dims: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class Input:
    shape: Shape
    span: Span


@dataclass(frozen=True)
class Layer:
    call: Call
    expect: Shape | None  # the `-> [...]` assertion
    span: Span


Statement = Union[Input, Layer]


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class PlanDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Statement, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Module:
    """A whole .plan file."""

    plans: tuple[PlanDef, ...]
