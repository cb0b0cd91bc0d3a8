"""The syntax tree of a .plan file: frozen dataclasses, each with its source span.

These say what the user wrote, nothing more: no shapes, no sympy.  `check.py` gives
them meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    op: str  # one of + - * / // % **
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


@dataclass(frozen=True)
class Compare:
    """`a < b <= c`: ops[i] sits between operands[i] and operands[i + 1]."""

    ops: tuple[str, ...]
    operands: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" or "or"
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class IfExp:
    """`a if cond else b`."""

    cond: Expr
    then: Expr
    orelse: Expr
    span: Span


@dataclass(frozen=True)
class Ellipsis_:
    """`...` in a block's input pattern: any number of leading dims."""

    span: Span


Expr = Num | Float | Str | Const | Name | Unknown | BinOp | Neg | Tuple | Compare | BoolOp | Not | IfExp  # | Call

# The functions of the value language (values.py), called as Python calls them: `max(1, C // 4)`.
SIZE_FUNCTIONS = ("max", "min", "ceil", "floor", "round", "int")

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
    """`input [N, C, L]` or `input name [...]`; in a block the shape is a pattern the caller's input binds."""

    shape: Shape
    span: Span
    name: str | None = None


@dataclass(frozen=True)
class Targets:
    """The names of a call's several outputs, nested as torch's tuples are: `out, (h, c)`."""

    items: tuple[Name | Targets, ...]
    span: Span

    def names(self) -> tuple[Name, ...]:
        """Every name, in order (depth first)."""
        return tuple(x for item in self.items for x in (item.names() if isinstance(item, Targets) else (item,)))


@dataclass(frozen=True)
class Layer:
    """A call in the chain: a torch layer, a block or a merge (`add`, `mul`, `cat`)."""

    call: Call
    expect: Shape | None  # the `-> [...]` assertion
    span: Span
    target: str | None = None  # `target = call(...)`
    target_span: Span | None = None
    targets: Targets | None = None  # `a, b = call(...)`: a call with several outputs


@dataclass(frozen=True)
class Ref:
    """A bare `name` (the named tensor becomes the chain's value) or `target = name`."""

    name: str
    span: Span
    target: str | None = None
    target_span: Span | None = None


@dataclass(frozen=True)
class Let:
    """`name = expr`: a number (or other value) computed once, e.g. `hidden = expand * C`."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Branch:
    """One sub-chain of a merge; it starts from the merge's input.  `name` names its result."""

    body: tuple[Statement, ...]
    span: Span
    name: str | None = None


@dataclass(frozen=True)
class Merge:
    """`add:` / `mul:` / `cat(dim=1):` over branches; `residual:`/`shortcut:` is an `add` of two."""

    call: Call  # the merge and its arguments (no tensors)
    branches: tuple[Branch, ...]
    span: Span  # the head, e.g. `cat(dim=1):`
    target: str | None = None
    target_span: Span | None = None


@dataclass(frozen=True)
class Repeat:
    var: str | None  # `repeat i in n:` binds i = 0 .. n-1
    count: Expr | None  # None: `name = sequential:`, the body once
    body: tuple[Statement, ...]
    span: Span
    target: str | None = None  # `target = repeat ...:` is a numbered container of the built module
    target_span: Span | None = None


@dataclass(frozen=True)
class If:
    cond: Expr
    body: tuple[Statement, ...]
    orelse: tuple[Statement, ...]  # an `elif` is an If inside orelse
    span: Span  # `if cond`


@dataclass(frozen=True)
class Output:
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class Pass:
    span: Span


@dataclass(frozen=True)
class Return:
    """`return expr`: a size function's value (only in a `def`)."""

    value: Expr
    span: Span


Statement = Input | Layer | Ref | Let | Merge | Repeat | If | Output | Pass | Return


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Definition:
    """What `plan` and `block` share: a name, parameters and a body."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Statement, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class PlanDef(Definition):
    """`plan Name(params):` the network a file describes."""


@dataclass(frozen=True)
class BlockDef(Definition):
    """`block Name(params):` a reusable, parameterised piece of a chain, called like a layer."""


@dataclass(frozen=True)
class FunctionDef(Definition):
    """`def name(params):` a size function, written in the value language: its body holds `name = expr`,
    `if`/`elif`/`else` and `return` only (the parser refuses anything else), so it computes numbers, never
    tensors, and is evaluated when the plan is checked (values.py)."""


@dataclass(frozen=True)
class Import:
    """`import "file.plan"` (names is None: every block) or `from "file.plan" import A, B`."""

    path: str
    names: tuple[Name, ...] | None
    span: Span
    path_span: Span


@dataclass(frozen=True)
class Module:
    """A whole .plan file."""

    plans: tuple[PlanDef, ...]
    blocks: tuple[BlockDef, ...] = ()
    imports: tuple[Import, ...] = ()
    functions: tuple[FunctionDef, ...] = ()
