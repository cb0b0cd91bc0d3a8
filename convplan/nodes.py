"""The syntax tree of a .plan file: frozen dataclasses, each with its source span.

These say what the user wrote, nothing more: no shapes, no sympy.  `check.py` gives
them meaning.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields

from .errors import Span
from .fillers import filler

_SpanFiller = filler(Span)


def new_span(line: int, col: int, end_line: int, end_col: int, _new=object.__new__, _cls=Span) -> Span:
    """`Span(line, col, end_line, end_col)`, made without the frozen dataclass's __init__ (an
    object.__setattr__ per field: twice the time), as the parser makes ~8 a line, and without a `__dict__`
    (fillers.py).  The same object in every respect: equal, same hash and repr, still frozen
    (tests/test_parser_equivalence.py)."""
    span = _new(_SpanFiller)
    span.line = line
    span.col = col
    span.end_line = end_line
    span.end_col = end_col
    span.__class__ = _cls
    return span


def syntax(cls):
    """`@dataclass(frozen=True)`, with __eq__, __hash__ and __repr__ shared by every node class: what the
    dataclass's would do (equal by class and fields, hashed as the tuple of the fields, shown as
    `Num(value=3, span=Span(...))`; tests/test_startup.py).  dataclass writes each method it makes as text and
    compiles it, six per frozen class: half of them shared, the 36 classes cost every process ~40 % less to
    declare (~6 ms at load 8; a `convplan check` is ~0.35 s).  A check never compares, hashes or shows a node."""
    cls = dataclass(frozen=True, eq=False, repr=False)(cls)
    names = tuple(f.name for f in fields(cls))
    cls._field_names = names
    get = operator.attrgetter(*names)  # a tuple of the fields; of one field, the field itself
    cls._field_values = get if len(names) > 1 else staticmethod(lambda self: (get(self),))
    cls.__eq__, cls.__hash__, cls.__repr__ = _eq, _hash, _repr
    return cls


def _eq(self, other):
    if other.__class__ is self.__class__:
        return self._field_values(self) == other._field_values(other)
    return NotImplemented


def _hash(self):
    return hash(self._field_values(self))


def _repr(self):
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._field_names)
    return f"{self.__class__.__qualname__}({shown})"

# -- expressions -----------------------------------------------------------------------


@syntax
class Num:
    value: int
    span: Span


@syntax
class Float:
    value: float
    span: Span


@syntax
class Str:
    value: str
    span: Span


@syntax
class Const:
    """True, False or None."""

    value: object
    span: Span


@syntax
class Name:
    id: str
    span: Span


@syntax
class Unknown:
    """`?` or `?name`: an integer the solver finds."""

    name: str | None
    span: Span


@syntax
class BinOp:
    op: str  # one of + - * / // % **
    left: Expr
    right: Expr
    span: Span


@syntax
class Neg:
    operand: Expr
    span: Span


@syntax
class Tuple:
    items: tuple[Expr, ...]
    span: Span


@syntax
class Compare:
    """`a < b <= c`: ops[i] sits between operands[i] and operands[i + 1]."""

    ops: tuple[str, ...]
    operands: tuple[Expr, ...]
    span: Span


@syntax
class BoolOp:
    op: str  # "and" or "or"
    left: Expr
    right: Expr
    span: Span


@syntax
class Not:
    operand: Expr
    span: Span


@syntax
class IfExp:
    """`a if cond else b`."""

    cond: Expr
    then: Expr
    orelse: Expr
    span: Span


@syntax
class Ellipsis_:
    """`...` in a block's input pattern: any number of leading dims."""

    span: Span


Expr = Num | Float | Str | Const | Name | Unknown | BinOp | Neg | Tuple | Compare | BoolOp | Not | IfExp  # | Call

# The functions of the value language (values.py), called as Python calls them: `max(1, C // 4)`.
SIZE_FUNCTIONS = ("max", "min", "ceil", "floor", "round", "int")

# -- statements ------------------------------------------------------------------------


@syntax
class Arg:
    name: str | None  # None for a positional argument
    value: Expr
    span: Span  # the whole `name=value`


@syntax
class Call:
    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span


@syntax
class Shape:
    dims: tuple[Expr, ...]
    span: Span


@syntax
class Input:
    """`input [N, C, L]` or `input name [...]`; in a block the shape is a pattern the caller's input binds."""

    shape: Shape
    span: Span
    name: str | None = None


@syntax
class Targets:
    """The names of a call's several outputs, nested as torch's tuples are: `out, (h, c)`."""

    items: tuple[Name | Targets, ...]
    span: Span

    def names(self) -> tuple[Name, ...]:
        """Every name, in order (depth first)."""
        return tuple(x for item in self.items for x in (item.names() if isinstance(item, Targets) else (item,)))


@syntax
class Layer:
    """A call in the chain: a torch layer, a block or a merge (`add`, `mul`, `cat`)."""

    call: Call
    expect: Shape | None  # the `-> [...]` assertion
    span: Span
    target: str | None = None  # `target = call(...)`
    target_span: Span | None = None
    targets: Targets | None = None  # `a, b = call(...)`: a call with several outputs


@syntax
class Ref:
    """A bare `name` (the named tensor becomes the chain's value) or `target = name`."""

    name: str
    span: Span
    target: str | None = None
    target_span: Span | None = None


@syntax
class Let:
    """`name = expr`: a number (or other value) computed once, e.g. `hidden = expand * C`."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@syntax
class Branch:
    """One sub-chain of a merge; it starts from the merge's input.  `name` names its result."""

    body: tuple[Statement, ...]
    span: Span
    name: str | None = None


@syntax
class Merge:
    """`add:` / `mul:` / `cat(dim=1):` over branches; `residual:`/`shortcut:` is an `add` of two."""

    call: Call  # the merge and its arguments (no tensors)
    branches: tuple[Branch, ...]
    span: Span  # the head, e.g. `cat(dim=1):`
    target: str | None = None
    target_span: Span | None = None


@syntax
class Repeat:
    var: str | None  # `repeat i in n:` binds i = 0 .. n-1
    count: Expr | None  # None: `name = sequential:`, the body once
    body: tuple[Statement, ...]
    span: Span
    target: str | None = None  # `target = repeat ...:` is a numbered container of the built module
    target_span: Span | None = None


@syntax
class If:
    cond: Expr
    body: tuple[Statement, ...]
    orelse: tuple[Statement, ...]  # an `elif` is an If inside orelse
    span: Span  # `if cond`


@syntax
class Output:
    names: tuple[Name, ...]
    span: Span


@syntax
class Pass:
    span: Span


@syntax
class Return:
    """`return expr`: a size function's value (only in a `def`)."""

    value: Expr
    span: Span


Statement = Input | Layer | Ref | Let | Merge | Repeat | If | Output | Pass | Return


@syntax
class Param:
    name: str
    default: Expr | None
    span: Span


@syntax
class Definition:
    """What `plan` and `block` share: a name, parameters and a body."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Statement, ...]
    span: Span
    name_span: Span


@syntax
class PlanDef(Definition):
    """`plan Name(params):` the network a file describes."""


@syntax
class BlockDef(Definition):
    """`block Name(params):` a reusable, parameterised piece of a chain, called like a layer."""


@syntax
class FunctionDef(Definition):
    """`def name(params):` a size function, written in the value language: its body holds `name = expr`,
    `if`/`elif`/`else` and `return` only (the parser refuses anything else), so it computes numbers, never
    tensors, and is evaluated when the plan is checked (values.py)."""


@syntax
class Import:
    """`import "file.plan"` (names is None: every block) or `from "file.plan" import A, B`."""

    path: str
    names: tuple[Name, ...] | None
    span: Span
    path_span: Span


@syntax
class Module:
    """A whole .plan file."""

    plans: tuple[PlanDef, ...]
    blocks: tuple[BlockDef, ...] = ()
    imports: tuple[Import, ...] = ()
    functions: tuple[FunctionDef, ...] = ()
