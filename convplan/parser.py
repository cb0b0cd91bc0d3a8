"""Text -> syntax tree (`nodes.Module`).  Lark LALR; every failure becomes a PlanError."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from pathlib import Path

import lark
from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedInput, VisitError
from lark.indenter import Indenter

from . import nodes as n
from . import syntax_errors
from .errors import Span, fail

MAX_SOURCE_CHARS = 1_000_000
MAX_INT_DIGITS = 18  # sympy evaluates huge literals eagerly; nothing real needs more
MAX_DEPTH = 64  # nesting of expressions and tuples


def _grammar_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "plan.lark", here.parent / "grammar" / "plan.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("convplan's grammar/plan.lark is missing from this installation")


class _DedentError(Exception):
    def __init__(self, token: Token, expected: list[int]):
        self.token, self.expected = token, expected


class PlanIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def handle_NL(self, token):  # as Lark's, but a bad dedent keeps its position
        if self.paren_level > 0:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
        else:
            levels = list(self.indent_level)
            while indent < self.indent_level[-1]:
                self.indent_level.pop()
                yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
            if indent != self.indent_level[-1]:
                raise _DedentError(token, [lv for lv in levels if lv < levels[-1]] + [levels[-1]])


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = _grammar_path().read_text()
    return Lark(
        grammar,
        parser="lalr",
        postlex=PlanIndenter(),
        propagate_positions=True,
        maybe_placeholders=False,
        cache=_cache_file(grammar),  # analysing the grammar costs ~40 ms of every `convplan check`; loading ~2 ms
    )


def _cache_file(grammar: str) -> str | bool:
    """A file for Lark's analysed grammar in the user's own cache directory, or False.

    Never a shared temp folder: Lark unpickles the file.  Lark checks a hash of the grammar, its
    options and versions on load and rebuilds on any mismatch or damage; the name keeps versions apart.
    """
    if os.environ.get("CONVPLAN_NO_CACHE"):
        return False
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convplan"
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = root.stat()
    except OSError:
        return False
    if info.st_mode & 0o022 or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return False  # someone else could plant a pickle here
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:16]
    return str(root / f"plan-{digest}-lark{lark.__version__}-py{sys.version_info[0]}{sys.version_info[1]}.cache")


def parse_module(text: str, filename: str = "<plan>") -> n.Module:
    """Parse a whole .plan file.  Raises PlanError (never anything else) for bad text."""
    if len(text) > MAX_SOURCE_CHARS:
        raise fail("E002", f"the file is too large ({len(text):,} characters; the limit is {MAX_SOURCE_CHARS:,})",
                   Span(1, 1, 1, 2), filename, text)
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise fail("E003", "the file contains a NUL character; is it a binary file?", Span(line, 1, line, 2),
                   filename, text)
    body = text if text.endswith("\n") else text + "\n"
    try:
        tree = _lark().parse(body)
    except (UnexpectedInput, _DedentError) as exc:
        raise syntax_errors.report(_diagnose(exc, body, filename), text, filename,
                                   lambda t: _first_error(t, filename)) from None
    try:
        return _ToNodes(filename, text).transform(tree)
    except VisitError as exc:
        inner = exc.orig_exc
        if not isinstance(inner, _TreeError):
            raise
        raise fail(inner.code, inner.message, inner.span, filename, text) from None


# -- syntax errors (worded in syntax_errors.py) -----------------------------------------


def _diagnose(exc: Exception, text: str, filename: str):
    if isinstance(exc, _DedentError):
        return syntax_errors.indentation(exc.token, exc.expected, text, filename)
    return syntax_errors.diagnose(exc, text, filename, _lark().terminals)


def _first_error(text: str, filename: str):
    """The first syntax error in `text`, or None (used to find the next error after one)."""
    text = text if text.endswith("\n") else text + "\n"  # as parse_module: a last comment needs its newline
    try:
        _lark().parse(text)
    except (UnexpectedInput, _DedentError) as exc:
        return _diagnose(exc, text, filename)
    return None


# -- parse tree -> nodes ---------------------------------------------------------------


class _TreeError(Exception):
    def __init__(self, code: str, message: str, span: Span):
        self.code, self.message, self.span = code, message, span


def _depth(e) -> int:
    return getattr(e, "_depth", 1)


@v_args(meta=True, inline=True)
class _ToNodes(Transformer_NonRecursive):
    def __init__(self, filename: str, text: str):
        super().__init__()
        self.filename, self.text = filename, text

    # expressions
    def int(self, meta, tok):
        digits = str(tok).replace("_", "")
        if len(digits.lstrip("0")) > MAX_INT_DIGITS:
            raise _TreeError("E005", f"integer literal too large ({len(digits)} digits; at most {MAX_INT_DIGITS})",
                             Span.of(tok))
        return n.Num(int(digits), Span.of(tok))

    def float(self, meta, tok):
        value = float(tok)
        if value != value or value in (float("inf"), float("-inf")):
            raise _TreeError("E005", f"number {tok} is out of range", Span.of(tok))
        return n.Float(value, Span.of(tok))

    def string(self, meta, tok):
        return n.Str(str(tok)[1:-1], Span.of(tok))

    def true(self, meta, tok):
        return n.Const(True, Span.of(tok))

    def false(self, meta, tok):
        return n.Const(False, Span.of(tok))

    def none(self, meta, tok):
        return n.Const(None, Span.of(tok))

    def name(self, meta, tok):
        return n.Name(str(tok), Span.of(tok))

    def unknown(self, meta, tok):
        return n.Unknown(str(tok)[1:] or None, Span.of(tok))

    def _bin(op):  # noqa: N805 - a factory used in the class body
        def build(self, meta, left, right):
            return self._nest(n.BinOp(op, left, right, Span.of(meta)), left, right)

        return build

    add, sub, mul, floordiv, mod = _bin("+"), _bin("-"), _bin("*"), _bin("//"), _bin("%")

    def neg(self, meta, operand):
        return self._nest(n.Neg(operand, Span.of(meta)), operand)

    def tuple(self, meta, *items):
        return self._nest(n.Tuple(tuple(items), Span.of(meta)), *items)

    def _nest(self, node, *children):
        depth = 1 + max((_depth(c) for c in children), default=0)
        if depth > MAX_DEPTH:
            raise _TreeError("E006", f"expression nested too deeply (more than {MAX_DEPTH} levels)", node.span)
        object.__setattr__(node, "_depth", depth)
        return node

    def compare(self, meta, first, *rest):
        ops, operands = tuple(str(t) for t in rest[0::2]), (first, *rest[1::2])
        return self._nest(n.Compare(ops, operands, Span.of(meta)), *operands)

    def or_(self, meta, left, right):
        return self._nest(n.BoolOp("or", left, right, Span.of(meta)), left, right)

    def and_(self, meta, left, right):
        return self._nest(n.BoolOp("and", left, right, Span.of(meta)), left, right)

    def not_(self, meta, operand):
        return self._nest(n.Not(operand, Span.of(meta)), operand)

    def ifexp(self, meta, then, cond, orelse):
        return self._nest(n.IfExp(cond, then, orelse, Span.of(meta)), then, cond, orelse)

    def ellipsis(self, meta):
        return n.Ellipsis_(Span.of(meta))

    # statements
    def kwarg(self, meta, name, value):
        return n.Arg(str(name), value, Span.of(meta))

    def call(self, meta, name, *args):
        args = tuple(a if isinstance(a, n.Arg) else n.Arg(None, a, a.span) for a in args)
        return n.Call(str(name), args, Span.of(meta), Span.of(name))

    def shape(self, meta, *dims):
        return n.Shape(tuple(dims), Span.of(meta))

    def input_stmt(self, meta, *rest):
        shape = rest[-1]
        name = str(rest[0]) if len(rest) == 2 else None
        return n.Input(shape, Span(meta.line, meta.column, shape.span.end_line, shape.span.end_col), name)

    def layer_stmt(self, meta, call, *rest):
        expect = rest[-1] if rest else None
        end = (expect or call).span
        return n.Layer(call, expect, call.span.to(end))

    def assign_call(self, meta, target, call, *rest):
        stmt = self.layer_stmt(meta, call, *rest)
        return n.Layer(stmt.call, stmt.expect, Span.of(target).to(stmt.span), str(target), Span.of(target))

    def ref_stmt(self, meta, name):
        return n.Ref(str(name), Span.of(name))

    def assign_expr(self, meta, target, value):
        span = Span.of(target).to(value.span)
        if isinstance(value, n.Name):  # `a = b`: a tensor's second name, or a number's (decided when checked)
            return n.Ref(value.id, span, str(target), Span.of(target))
        return n.Let(str(target), value, span, Span.of(target))

    def merge_head(self, meta, head):
        if isinstance(head, n.Call):
            return head
        return n.Call(str(head), (), Span.of(head), Span.of(head))

    def branches(self, meta, *items):
        return tuple(items)

    def branch(self, meta, *rest):
        name = str(rest[0]) if len(rest) == 2 else None
        return n.Branch(rest[-1], Span(meta.line, meta.column, meta.line, meta.column + len("branch")), name)

    def merge_stmt(self, meta, call, branches):
        return n.Merge(call, branches, call.span, None, None)

    def assign_merge(self, meta, target, call, branches):
        return n.Merge(call, branches, Span.of(target).to(call.span), str(target), Span.of(target))

    def residual_head(self, meta, body, shortcut=()):
        # `residual: F  shortcut: S` is add(F(x), S(x)); no shortcut means S is the identity
        head = Span(meta.line, meta.column, meta.line, meta.column + len("residual"))
        call = n.Call("add", (), head, head)
        return n.Merge(call, (n.Branch(body, head), n.Branch(tuple(shortcut), head)), head)

    def shortcut(self, meta, body):
        return body

    def residual_stmt(self, meta, merge):
        return merge

    def assign_residual(self, meta, target, merge):
        return n.Merge(merge.call, merge.branches, Span.of(target).to(merge.span), str(target), Span.of(target))

    def repeat_stmt(self, meta, *rest):
        var = str(rest[0]) if len(rest) == 3 else None
        count, body = rest[-2], rest[-1]
        return n.Repeat(var, count, body, Span(meta.line, meta.column, count.span.end_line, count.span.end_col))

    def if_stmt(self, meta, cond, body, *clauses):
        orelse: tuple = ()
        for clause in reversed(clauses):  # `elif` nests: if a: .. else: (if b: .. else: ..)
            if clause[0] == "else":
                orelse = clause[1]
            else:
                _, c, b, span = clause
                orelse = (n.If(c, b, orelse, span),)
        return n.If(cond, body, orelse, Span(meta.line, meta.column, cond.span.end_line, cond.span.end_col))

    def elif_clause(self, meta, cond, body):
        return ("elif", cond, body, Span(meta.line, meta.column, cond.span.end_line, cond.span.end_col))

    def else_clause(self, meta, body):
        return ("else", body)

    def output_stmt(self, meta, *names):
        names = tuple(n.Name(str(t), Span.of(t)) for t in names)
        return n.Output(names, Span(meta.line, meta.column, names[-1].span.end_line, names[-1].span.end_col))

    def pass_stmt(self, meta):
        return n.Pass(Span(meta.line, meta.column, meta.line, meta.column + 4))

    def body(self, meta, *statements):
        return tuple(statements)

    def param(self, meta, name, default=None):
        return n.Param(str(name), default, Span.of(meta))

    def params(self, meta, *params):
        return tuple(params)

    def _definition(self, cls, meta, name, rest):
        params = rest[0] if len(rest) == 2 else ()
        head = Span(meta.line, meta.column, name.end_line, name.end_column)
        return cls(str(name), params, rest[-1], head, Span.of(name))

    def plan(self, meta, name, *rest):
        return self._definition(n.PlanDef, meta, name, rest)

    def block(self, meta, name, *rest):
        return self._definition(n.BlockDef, meta, name, rest)

    def import_all(self, meta, path):
        return n.Import(str(path)[1:-1], None, Span(meta.line, meta.column, path.end_line, path.end_column),
                        Span.of(path))

    def import_from(self, meta, path, *names):
        last = names[-1]
        return n.Import(str(path)[1:-1], tuple(n.Name(str(t), Span.of(t)) for t in names),
                        Span(meta.line, meta.column, last.end_line, last.end_column), Span.of(path))

    def start(self, meta, *items):
        kinds = (n.PlanDef, n.BlockDef, n.Import)
        plans, blocks, imports = ([i for i in items if isinstance(i, k)] for k in kinds)
        return n.Module(tuple(plans), tuple(blocks), tuple(imports))
