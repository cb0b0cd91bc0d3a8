"""Names in a .plan file's syntax tree: where each is defined and where it is used.

A plan and each block are scopes.  Their parameters, `name = expr` values, the input dims (a
plan's sizes, a block's pattern), the input and every named tensor (`x = Conv1d(...)`, `branch a:`)
are defined in one; blocks and imported names are defined in the file.  A use resolves to the last
definition of its name above it in its scope (a tensor name may be bound again), else to the file's.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .. import nodes as n
from ..errors import Span

TENSORS = ("input", "tensor", "branch")  # the kinds of names that stand for tensors


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str  # plan, block, import, param, let, size, input, tensor, branch, index
    span: Span  # where the name is written
    scope: str | None  # the plan or block it belongs to (None: the file)
    extent: Span | None = None  # for plans and blocks: the whole definition


@dataclass(frozen=True)
class Use:
    name: str
    span: Span
    scope: str | None
    call: bool = False  # the name of a call (a block, layer or merge), not a value


@dataclass
class Index:
    symbols: list[Symbol]
    uses: list[Use]

    def scope_at(self, line: int) -> str | None:
        """The plan or block `line` is in: the last one that starts above it (a line being typed below a
        body belongs to it)."""
        found = None
        for s in self.symbols:
            if s.kind in ("plan", "block") and s.extent.line <= line and (found is None or s.extent.line
                                                                          > found.extent.line):
                found = s
        return found.name if found else None

    def resolve(self, name: str, scope: str | None, line: int, call: bool = False) -> Symbol | None:
        """The definition a use of `name` on `line` in `scope` refers to."""
        if not call:
            here = [s for s in self.symbols if s.scope == scope and s.name == name and scope is not None]
            above = [s for s in here if s.span.line <= line]
            if above or here:
                return (above or here)[-1]
        top = [s for s in self.symbols if s.scope is None and s.name == name and s.kind != "plan"]
        return top[-1] if top else None

    def at(self, line: int, col: int) -> Symbol | Use | None:
        """The definition or use whose name is at (line, col)."""
        for item in (*self.symbols, *self.uses):
            s = item.span
            if s.line == line and s.col <= col <= s.end_col:
                return item
        return None

    def target(self, item: Symbol | Use) -> Symbol | None:
        if isinstance(item, Symbol):
            return item
        return self.resolve(item.name, item.scope, item.span.line, item.call)

    def references(self, symbol: Symbol) -> list[Span]:
        """Every place `symbol` is written: its definition and the uses that resolve to it (for a size, every
        mention in its scope: each input pattern that names it defines it again)."""
        same = [symbol]
        if symbol.kind == "size":
            same = [s for s in self.symbols if s.name == symbol.name and s.scope == symbol.scope and s.kind == "size"]
        found = [s.span for s in same]
        found += [u.span for u in self.uses if u.name == symbol.name and self.target(u) in same]
        return sorted(set(found), key=lambda s: (s.line, s.col))

    def in_scope(self, scope: str | None, line: int, kinds) -> list[Symbol]:
        """The names of `kinds` defined in `scope` above `line` (the latest of each name)."""
        seen: dict[str, Symbol] = {}
        for s in self.symbols:
            if s.scope == scope and s.kind in kinds and s.span.line <= line:
                seen[s.name] = s
        return list(seen.values())


def index(module: n.Module, lines: list[str]) -> Index:
    builder = _Builder(lines)
    for imp in module.imports:
        for name in imp.names or ():
            builder.define(name.id, "import", name.span, None)
    for definition in (*module.blocks, *module.plans):
        kind = "plan" if isinstance(definition, n.PlanDef) else "block"
        extent = definition.span.to(_end(definition.body, definition.span))
        builder.define(definition.name, kind, definition.name_span, None, extent)
        builder.scope = definition.name
        for p in definition.params:
            builder.define(p.name, "param", _head(p.span, p.name), definition.name)
            builder.expr(p.default)
        builder.body(definition.body)
    return Index(builder.symbols, builder.uses)


def _head(span: Span, name: str) -> Span:
    return Span(span.line, span.col, span.line, span.col + len(name))


def _end(body, default: Span) -> Span:
    """The span of the last statement in `body`, nested bodies included."""
    if not body:
        return default
    last = body[-1]
    inner = getattr(last, "body", None) or ()
    if isinstance(last, n.Merge):
        inner = last.branches[-1].body if last.branches else ()
    if isinstance(last, n.If) and last.orelse:
        inner = last.orelse
    return _end(inner, last.span) if inner else last.span


class _Builder:
    def __init__(self, lines: list[str]):
        self.lines = lines
        self.symbols: list[Symbol] = []
        self.uses: list[Use] = []
        self.scope: str | None = None

    def define(self, name, kind, span, scope, extent=None) -> None:
        self.symbols.append(Symbol(name, kind, span, scope, extent))

    def use(self, name, span, call=False) -> None:
        self.uses.append(Use(name, span, self.scope, call))

    def find(self, span: Span, name: str, after: str = "") -> Span:
        """Where `name` is written on `span`'s first line (after the word `after`)."""
        text = self.lines[span.line - 1] if 0 < span.line <= len(self.lines) else ""
        m = re.compile(rf"{re.escape(after)}\s*\b{re.escape(name)}\b").search(text, span.col - 1)
        if m is None:
            return _head(span, name)
        start = m.end() - len(name)
        return Span(span.line, start + 1, span.line, start + 1 + len(name))

    def body(self, stmts) -> None:
        handlers = {n.Input: self.input, n.Layer: self.layer, n.Ref: self.ref, n.Let: self.let, n.Merge: self.merge,
                    n.Repeat: self.repeat, n.If: self.if_, n.Output: self.output, n.Pass: lambda s: None}
        for stmt in stmts:
            handlers[type(stmt)](stmt)

    def input(self, stmt: n.Input) -> None:
        if stmt.name:
            self.define(stmt.name, "input", self.find(stmt.span, stmt.name, "input"), self.scope)
        for d in stmt.shape.dims:
            if isinstance(d, n.Name):
                self.define(d.id, "size", d.span, self.scope)
            else:
                self.expr(d)

    def layer(self, stmt: n.Layer) -> None:
        self.call(stmt.call)
        if stmt.expect is not None:
            for d in stmt.expect.dims:
                self.expr(d)
        if stmt.target:
            self.define(stmt.target, "tensor", stmt.target_span, self.scope)
        for name in stmt.targets.names() if stmt.targets is not None else ():  # `out, (h, c) = LSTM(...)`
            self.define(name.id, "tensor", name.span, self.scope)

    def call(self, call: n.Call) -> None:
        self.use(call.name, call.name_span, call=True)
        for a in call.args:
            self.expr(a.value)

    def ref(self, stmt: n.Ref) -> None:
        s = stmt.span
        self.use(stmt.name, Span(s.end_line, s.end_col - len(stmt.name), s.end_line, s.end_col))
        if stmt.target:
            self.define(stmt.target, "tensor", stmt.target_span, self.scope)

    def let(self, stmt: n.Let) -> None:
        self.expr(stmt.value)
        self.define(stmt.name, "let", stmt.name_span, self.scope)

    def merge(self, stmt: n.Merge) -> None:
        self.call(stmt.call)
        for branch in stmt.branches:
            if branch.name:
                self.define(branch.name, "branch", self.find(branch.span, branch.name, "branch"), self.scope)
            self.body(branch.body)
        if stmt.target:
            self.define(stmt.target, "tensor", stmt.target_span, self.scope)

    def repeat(self, stmt: n.Repeat) -> None:
        if stmt.count is not None:  # None: `name = sequential:`
            self.expr(stmt.count)
        if stmt.var:
            self.define(stmt.var, "index", self.find(stmt.span, stmt.var, "repeat"), self.scope)
        self.body(stmt.body)
        if stmt.target:  # `layer1 = repeat ...:` names the tensor after it
            self.define(stmt.target, "tensor", stmt.target_span, self.scope)

    def if_(self, stmt: n.If) -> None:
        self.expr(stmt.cond)
        self.body(stmt.body)
        self.body(stmt.orelse)

    def output(self, stmt: n.Output) -> None:
        for name in stmt.names:
            self.use(name.id, name.span)

    def expr(self, e) -> None:
        """Every name used in the expression `e`."""
        if isinstance(e, n.Name):
            self.use(e.id, e.span)
        elif dataclasses.is_dataclass(e):
            for f in dataclasses.fields(e):
                value = getattr(e, f.name)
                for item in value if isinstance(value, tuple) else (value,):
                    if dataclasses.is_dataclass(item):
                        self.expr(item)

