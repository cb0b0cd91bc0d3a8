"""The syntax tree's builders: one method per grammar rule (or alias), its kept children in, a node out.

lalr.py's loop (or Lark's tree, for the reference path and syntax errors) calls them at each reduction;
what they build is `nodes.py`'s frozen dataclasses with their spans.  A node the grammar allows but the
language refuses (a literal past 18 digits, an expression nested past 64 levels, a def's body that makes
tensors) raises TreeError, which parse_module turns into a located PlanError.
"""

from __future__ import annotations

import bisect
from dataclasses import MISSING, fields, replace
from itertools import accumulate

from . import nodes as n
from .errors import Span
from .nodes import _SpanFiller, new_span

MAX_INT_DIGITS = 18  # sympy evaluates huge literals eagerly; nothing real needs more
MAX_DEPTH = 64  # nesting of expressions and tuples


class TreeError(Exception):
    """A node builder refuses what the grammar allows (a literal too large, nesting too deep): a PlanError
    at `span` once parse_module catches it."""

    def __init__(self, code: str, message: str, span: Span):
        self.code, self.message, self.span = code, message, span


def _to(first: Span, last: Span) -> Span:
    """From the start of `first` to the end of `last` (Span.to, made as the parser makes spans)."""
    return new_span(first.line, first.col, last.end_line, last.end_col)


# The nodes every layer line makes, made without their frozen dataclass's __init__ (an object.__setattr__ per
# field: about twice the time, as nodes.new_span); the same objects in every respect (tests/test_nodes_fast.py).

def _maker(cls, given: int, _new=object.__new__):
    """A maker of `cls` from its first `given` fields, positionally, the others at their defaults.  The names
    come from `dataclasses.fields` (a field added to the class is not missed); no source is generated: one
    closure per count, its field names in its cells, so that a node costs what hand-written assignments do."""
    all_fields = fields(cls)
    names = tuple(f.name for f in all_fields[:given])
    rest = {f.name: f.default for f in all_fields[given:]}
    if MISSING in rest.values() or any(f.default_factory is not MISSING for f in all_fields[given:]):
        raise TypeError(f"{cls.__name__}'s fields after the first {given} need plain defaults")
    if given == 2:
        a, b = names

        def make(x, y):
            node = _new(cls)
            d = node.__dict__
            d[a], d[b] = x, y
            if rest:
                d.update(rest)
            return node
    elif given == 3:
        a, b, c = names

        def make(x, y, z):
            node = _new(cls)
            d = node.__dict__
            d[a], d[b], d[c] = x, y, z
            if rest:
                d.update(rest)
            return node
    elif given == 4:
        a, b, c, e = names

        def make(x, y, z, w):
            node = _new(cls)
            d = node.__dict__
            d[a], d[b], d[c], d[e] = x, y, z, w
            if rest:
                d.update(rest)
            return node
    else:
        raise TypeError(f"no maker of {given} fields")
    make.__name__ = make.__qualname__ = f"new_{cls.__name__.lower()}"
    make.__doc__ = f"`n.{cls.__name__}({', '.join(names)})`" + (f", {', '.join(rest)} at their defaults" if rest
                                                                 else "")
    return make


new_num = _maker(n.Num, 2)
new_name = _maker(n.Name, 2)
new_const = _maker(n.Const, 2)
new_arg = _maker(n.Arg, 3)
new_call = _maker(n.Call, 4)
new_layer = _maker(n.Layer, 3)  # no target


class NodeBuilders:
    """One method per grammar rule (or alias): its kept children in, a node out.  A token comes as
    (text, Span).

    `begin` and `end` are the character offsets of the rule's first and last token, set before each
    call: by the fast loop in lalr.py, or from Lark's tree by parser's `_FromTree`.
    """

    def __init__(self, filename: str, text: str):
        self.filename, self.text = filename, text
        self.begin = self.end = 0
        # the offset of each line's start (one after each "\n"), summed in C: a comprehension over re.finditer was
        # ~0.2 us a line, 2 % of a 500-line stack's parse
        self._lines = list(accumulate(map((1).__add__, map(len, text.split("\n")[:-1])), initial=0))

    def _at(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self._lines, offset) - 1
        return i + 1, offset - self._lines[i] + 1

    def _span(self, _new=object.__new__, _filler=_SpanFiller, _span=Span) -> Span:
        """From the rule's first character to just after its last (nodes.new_span, inline: one call less for each
        of the ~3 a line)."""
        lines, begin, end = self._lines, self.begin, self.end
        i = bisect.bisect_right(lines, begin) - 1
        j = i if i + 1 == len(lines) or end < lines[i + 1] else bisect.bisect_right(lines, end) - 1
        span = _new(_filler)
        span.line = i + 1
        span.col = begin - lines[i] + 1
        span.end_line = j + 1
        span.end_col = end - lines[j] + 1
        span.__class__ = _span
        return span

    def _head(self, node_or_token) -> Span:
        """From the rule's first character (a keyword) to the end of `node_or_token`."""
        end = node_or_token[1] if isinstance(node_or_token, tuple) else node_or_token.span
        return new_span(*self._at(self.begin), end.end_line, end.end_col)

    def _keyword(self, word: str) -> Span:
        """The keyword the rule starts with."""
        line, col = self._at(self.begin)
        return new_span(line, col, line, col + len(word))

    # expressions
    def int(self, tok):
        text = tok[0]
        if len(text) <= MAX_INT_DIGITS and text.isdigit():  # most literals: no `_`, short
            return new_num(int(text), tok[1])
        digits = text.replace("_", "")
        if len(digits.lstrip("0")) > MAX_INT_DIGITS:
            raise TreeError("E005", f"integer literal too large ({len(digits)} digits; at most {MAX_INT_DIGITS})",
                             tok[1])
        return n.Num(int(digits.lstrip("0") or "0"), tok[1])  # int() refuses 4301+ digits, zeros included

    def float(self, tok):
        value = float(tok[0])
        if value != value or value in (float("inf"), float("-inf")):
            raise TreeError("E005", f"number {tok[0]} is out of range", tok[1])
        return n.Float(value, tok[1])

    def string(self, tok):
        return n.Str(tok[0][1:-1], tok[1])

    def true(self, tok):
        return new_const(True, tok[1])

    def false(self, tok):
        return new_const(False, tok[1])

    def none(self, tok):
        return new_const(None, tok[1])

    def name(self, tok):
        return new_name(tok[0], tok[1])

    def unknown(self, tok):
        return n.Unknown(tok[0][1:] or None, tok[1])

    def _bin(op):  # noqa: N805 - a factory used in the class body
        def build(self, left, right):
            return self._nest(n.BinOp(op, left, right, self._span()), left, right)

        return build

    add, sub, mul, floordiv, mod, pow = _bin("+"), _bin("-"), _bin("*"), _bin("//"), _bin("%"), _bin("**")
    truediv = _bin("/")

    def neg(self, operand):
        return self._nest(n.Neg(operand, self._span()), operand)

    def tuple(self, *items):
        return self._nest(n.Tuple(tuple(items), self._span()), *items)

    def _nest(self, node, *children):
        depth = 0
        for c in children:  # a loop, not max() of a generator: this runs for every operator and call
            d = getattr(c, "_depth", 1)
            if d > depth:
                depth = d
        depth += 1
        if depth > MAX_DEPTH:
            raise TreeError("E006", f"expression nested too deeply (more than {MAX_DEPTH} levels)", node.span)
        object.__setattr__(node, "_depth", depth)
        return node

    def compare(self, first, *rest):
        ops, operands = tuple(t[0] for t in rest[0::2]), (first, *rest[1::2])
        return self._nest(n.Compare(ops, operands, self._span()), *operands)

    def or_(self, left, right):
        return self._nest(n.BoolOp("or", left, right, self._span()), left, right)

    def and_(self, left, right):
        return self._nest(n.BoolOp("and", left, right, self._span()), left, right)

    def not_(self, operand):
        return self._nest(n.Not(operand, self._span()), operand)

    def ifexp(self, then, cond, orelse):
        return self._nest(n.IfExp(cond, then, orelse, self._span()), then, cond, orelse)

    def ellipsis(self):
        return n.Ellipsis_(self._span())

    # statements
    def kwarg(self, name, value):
        return new_arg(name[0], value, self._span())

    def call(self, name, *args):
        made, depth = [], 0  # as _nest over the arguments' values (a call nests in expressions too), in one loop
        for a in args:
            if a.__class__ is not n.Arg:
                a = new_arg(None, a, a.span)
            made.append(a)
            d = getattr(a.value, "_depth", 1)
            if d > depth:
                depth = d
        node = new_call(name[0], tuple(made), self._span(), name[1])
        if depth >= MAX_DEPTH:
            raise TreeError("E006", f"expression nested too deeply (more than {MAX_DEPTH} levels)", node.span)
        node.__dict__["_depth"] = depth + 1  # object.__setattr__, as _nest
        return node

    def shape(self, *dims):
        return n.Shape(tuple(dims), self._span())

    def input_stmt(self, *rest):
        shape = rest[-1]
        name = rest[0][0] if len(rest) == 2 else None
        return n.Input(shape, self._head(shape), name)

    def layer_stmt(self, call, *rest):
        expect = rest[-1] if rest else None
        end = (expect or call).span
        return new_layer(call, expect, _to(call.span, end))

    def assign_call(self, target, call, *rest):
        stmt = self.layer_stmt(call, *rest)
        return n.Layer(stmt.call, stmt.expect, _to(target[1], stmt.span), target[0], target[1])

    def target_name(self, tok):
        return n.Name(tok[0], tok[1])

    def target_group(self, *items):
        return n.Targets(tuple(items), self._span())

    def assign_unpack(self, first, *rest):
        *more, call = rest
        items = (n.Name(first[0], first[1]), *more)
        targets = n.Targets(items, _to(first[1], more[-1].span))
        return n.Layer(call, None, _to(first[1], call.span), targets=targets)

    def ref_stmt(self, name):
        return n.Ref(name[0], name[1])

    def assign_expr(self, target, value):
        if isinstance(value, n.Call) and value.name not in n.SIZE_FUNCTIONS:  # `h = Conv2d(8)`: a layer
            return self.assign_call(target, value)
        span = _to(target[1], value.span)
        if isinstance(value, n.Name):  # `a = b`: a tensor's second name, or a number's (decided when checked)
            return n.Ref(value.id, span, target[0], target[1])
        return n.Let(target[0], value, span, target[1])

    def merge_head(self, head):
        if isinstance(head, n.Call):
            return head
        return n.Call(head[0], (), head[1], head[1])

    def branches(self, *items):
        return tuple(items)

    def branch(self, *rest):
        name = rest[0][0] if len(rest) == 2 else None
        return n.Branch(rest[-1], self._keyword("branch"), name)

    def merge_stmt(self, call, branches):
        return n.Merge(call, branches, call.span, None, None)

    def assign_merge(self, target, call, branches):
        return n.Merge(call, branches, _to(target[1], call.span), target[0], target[1])

    def residual_head(self, body, shortcut=()):
        # `residual: F  shortcut: S` is add(F(x), S(x)); no shortcut means S is the identity.
        # "add" is what the keyword means in the language, not a registry lookup: the parser stays
        # syntax only (merges.py brings sympy), and check refuses the name if `add` ever goes.
        head = self._keyword("residual")
        call = n.Call("add", (), head, head)
        return n.Merge(call, (n.Branch(body, head), n.Branch(tuple(shortcut), head)), head)

    def shortcut(self, body):
        return body

    def residual_stmt(self, merge):
        return merge

    def assign_residual(self, target, merge):
        return n.Merge(merge.call, merge.branches, _to(target[1], merge.span), target[0], target[1])

    def repeat_stmt(self, *rest):
        var = rest[0][0] if len(rest) == 3 else None
        count, body = rest[-2], rest[-1]
        return n.Repeat(var, count, body, self._head(count))

    def assign_repeat(self, target, *rest):
        stmt = self.repeat_stmt(*rest)
        return replace(stmt, span=_to(target[1], stmt.count.span), target=target[0], target_span=target[1])

    def assign_sequential(self, target, body):
        span = target[1]
        start = self.text.find("sequential", self._lines[span.end_line - 1] + span.end_col - 1)
        line, col = self._at(start)
        head = Span(span.line, span.col, line, col + len("sequential"))
        return n.Repeat(None, None, body, head, target[0], target[1])

    def if_stmt(self, cond, body, *clauses):
        orelse: tuple = ()
        for clause in reversed(clauses):  # `elif` nests: if a: .. else: (if b: .. else: ..)
            if clause[0] == "else":
                orelse = clause[1]
            else:
                _, c, b, span = clause
                orelse = (n.If(c, b, orelse, span),)
        return n.If(cond, body, orelse, self._head(cond))

    def elif_clause(self, cond, body):
        return ("elif", cond, body, self._head(cond))

    def else_clause(self, body):
        return ("else", body)

    def output_stmt(self, *names):
        names = tuple(n.Name(t[0], t[1]) for t in names)
        return n.Output(names, self._head(names[-1]))

    def pass_stmt(self):
        return n.Pass(self._keyword("pass"))

    def return_stmt(self, value):
        return n.Return(value, self._head(value))

    def body(self, *statements):
        return tuple(statements)

    def param(self, name, default=None):
        return n.Param(name[0], default, self._span())

    def params(self, *params):
        return tuple(params)

    def _definition(self, cls, name, rest):
        params = rest[0] if len(rest) == 2 else ()
        return cls(name[0], params, rest[-1], self._head(name), name[1])

    def plan(self, name, *rest):
        return self._definition(n.PlanDef, name, rest)

    def block(self, name, *rest):
        return self._definition(n.BlockDef, name, rest)

    def function(self, name, params, body):
        return n.FunctionDef(name[0], params, _function_body(body), self._head(name), name[1])

    def import_all(self, path):
        return n.Import(path[0][1:-1], None, self._head(path), path[1])

    def import_from(self, path, *names):
        return n.Import(path[0][1:-1], tuple(n.Name(t[0], t[1]) for t in names), self._head(names[-1]),
                        path[1])

    def start(self, *items):
        kinds = (n.PlanDef, n.BlockDef, n.Import, n.FunctionDef)
        plans, blocks, imports, functions = ([i for i in items if isinstance(i, k)] for k in kinds)
        return n.Module(tuple(plans), tuple(blocks), tuple(imports), tuple(functions))


def _function_body(body: tuple) -> tuple:
    """A def's statements as values: `h = f(x)` and `a = b` parse as a layer call and a second name (a plan's
    meanings), and are numbers here; anything that makes tensors is refused where it is written."""
    out = []
    for stmt in body:
        if isinstance(stmt, n.Layer) and stmt.target is not None and stmt.expect is None:
            stmt = n.Let(stmt.target, stmt.call, stmt.span, stmt.target_span)
        elif isinstance(stmt, n.Ref) and stmt.target is not None:
            stmt = n.Let(stmt.target, n.Name(stmt.name, _ref_value_span(stmt)), stmt.span, stmt.target_span)
        elif isinstance(stmt, n.If):
            stmt = replace(stmt, body=_function_body(stmt.body), orelse=_function_body(stmt.orelse))
        elif not isinstance(stmt, (n.Let, n.Return, n.Pass)):
            raise TreeError("E208", "a def computes a number: its body holds `name = expr`, `if` and `return` "
                             "only", stmt.span)
        out.append(stmt)
    return tuple(out)


def _ref_value_span(stmt: n.Ref) -> Span:
    """The `b` of `a = b`, which ends the statement."""
    end = stmt.span
    return Span(end.end_line, end.end_col - len(stmt.name), end.end_line, end.end_col)
