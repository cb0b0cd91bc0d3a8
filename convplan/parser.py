"""Text -> syntax tree (`nodes.Module`).  Lark LALR; every failure becomes a PlanError."""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import re
import sys
from pathlib import Path

import lark
from lark import Lark, Token, Transformer_NonRecursive
from lark.exceptions import UnexpectedInput
from lark.indenter import Indenter

from . import lalr, syntax_errors
from . import nodes as n
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
    nodes = _Nodes(filename, body)
    try:
        try:
            return _fast_parse(body, nodes)
        except (lalr.Bail, _TreeError):
            pass  # a syntax error, most likely: Lark's parser reports it (before any error of a builder)
        try:
            tree = _lark().parse(body)
        except (UnexpectedInput, _DedentError) as exc:
            raise syntax_errors.report(_diagnose(exc, body, filename), text, filename,
                                       lambda t: _first_error(t, filename)) from None
        return _FromTree(nodes).transform(tree)
    except _TreeError as exc:
        raise fail(exc.code, exc.message, exc.span, filename, text) from None


def parse_tree(text: str, filename: str = "<plan>") -> n.Module:
    """As parse_module, through Lark's parse tree only (slower): the reference the fast path is tested against."""
    body = text if text.endswith("\n") else text + "\n"
    return _FromTree(_Nodes(filename, body)).transform(_lark().parse(body))


@functools.lru_cache(maxsize=1)
def _tables(lark: Lark) -> lalr.Tables | None:
    try:
        return lalr.tables(lark, PlanIndenter())
    except (lalr.Bail, AttributeError, KeyError, TypeError):  # another Lark's internals: use Lark.parse
        return None


def _fast_parse(body: str, nodes: _Nodes) -> n.Module:
    tables = _tables(_lark())
    if tables is None:
        raise lalr.Bail
    return lalr.parse(body, tables, lalr.callbacks(tables, nodes), nodes, PlanIndenter)


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


# -- rules -> nodes --------------------------------------------------------------------


class _TreeError(Exception):
    def __init__(self, code: str, message: str, span: Span):
        self.code, self.message, self.span = code, message, span


def _depth(e) -> int:
    return getattr(e, "_depth", 1)


class _Nodes:
    """One method per grammar rule (or alias): its kept children in, a node out.

    `begin` and `end` are the character offsets of the rule's first and last token, set before each
    call: by the fast loop in lalr.py, or from Lark's tree by `_FromTree`.
    """

    def __init__(self, filename: str, text: str):
        self.filename, self.text = filename, text
        self.begin = self.end = 0
        self._lines = [0] + [m.end() for m in re.finditer("\n", text)]  # offset of each line's start

    def _at(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self._lines, offset) - 1
        return i + 1, offset - self._lines[i] + 1

    def _span(self) -> Span:
        """From the rule's first character to just after its last."""
        return Span(*self._at(self.begin), *self._at(self.end))

    def _head(self, node_or_token) -> Span:
        """From the rule's first character (a keyword) to the end of `node_or_token`."""
        end = node_or_token.span if hasattr(node_or_token, "span") else Span.of(node_or_token)
        return Span(*self._at(self.begin), end.end_line, end.end_col)

    def _keyword(self, word: str) -> Span:
        """The keyword the rule starts with."""
        line, col = self._at(self.begin)
        return Span(line, col, line, col + len(word))

    # expressions
    def int(self, tok):
        digits = str(tok).replace("_", "")
        if len(digits.lstrip("0")) > MAX_INT_DIGITS:
            raise _TreeError("E005", f"integer literal too large ({len(digits)} digits; at most {MAX_INT_DIGITS})",
                             Span.of(tok))
        return n.Num(int(digits.lstrip("0") or "0"), Span.of(tok))  # int() refuses 4301+ digits, zeros included

    def float(self, tok):
        value = float(tok)
        if value != value or value in (float("inf"), float("-inf")):
            raise _TreeError("E005", f"number {tok} is out of range", Span.of(tok))
        return n.Float(value, Span.of(tok))

    def string(self, tok):
        return n.Str(str(tok)[1:-1], Span.of(tok))

    def true(self, tok):
        return n.Const(True, Span.of(tok))

    def false(self, tok):
        return n.Const(False, Span.of(tok))

    def none(self, tok):
        return n.Const(None, Span.of(tok))

    def name(self, tok):
        return n.Name(str(tok), Span.of(tok))

    def unknown(self, tok):
        return n.Unknown(str(tok)[1:] or None, Span.of(tok))

    def _bin(op):  # noqa: N805 - a factory used in the class body
        def build(self, left, right):
            return self._nest(n.BinOp(op, left, right, self._span()), left, right)

        return build

    add, sub, mul, floordiv, mod, pow = _bin("+"), _bin("-"), _bin("*"), _bin("//"), _bin("%"), _bin("**")

    def neg(self, operand):
        return self._nest(n.Neg(operand, self._span()), operand)

    def tuple(self, *items):
        return self._nest(n.Tuple(tuple(items), self._span()), *items)

    def _nest(self, node, *children):
        depth = 1 + max((_depth(c) for c in children), default=0)
        if depth > MAX_DEPTH:
            raise _TreeError("E006", f"expression nested too deeply (more than {MAX_DEPTH} levels)", node.span)
        object.__setattr__(node, "_depth", depth)
        return node

    def compare(self, first, *rest):
        ops, operands = tuple(str(t) for t in rest[0::2]), (first, *rest[1::2])
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
        return n.Arg(str(name), value, self._span())

    def call(self, name, *args):
        args = tuple(a if isinstance(a, n.Arg) else n.Arg(None, a, a.span) for a in args)
        return n.Call(str(name), args, self._span(), Span.of(name))

    def shape(self, *dims):
        return n.Shape(tuple(dims), self._span())

    def input_stmt(self, *rest):
        shape = rest[-1]
        name = str(rest[0]) if len(rest) == 2 else None
        return n.Input(shape, self._head(shape), name)

    def layer_stmt(self, call, *rest):
        expect = rest[-1] if rest else None
        end = (expect or call).span
        return n.Layer(call, expect, call.span.to(end))

    def assign_call(self, target, call, *rest):
        stmt = self.layer_stmt(call, *rest)
        return n.Layer(stmt.call, stmt.expect, Span.of(target).to(stmt.span), str(target), Span.of(target))

    def ref_stmt(self, name):
        return n.Ref(str(name), Span.of(name))

    def assign_expr(self, target, value):
        span = Span.of(target).to(value.span)
        if isinstance(value, n.Name):  # `a = b`: a tensor's second name, or a number's (decided when checked)
            return n.Ref(value.id, span, str(target), Span.of(target))
        return n.Let(str(target), value, span, Span.of(target))

    def merge_head(self, head):
        if isinstance(head, n.Call):
            return head
        return n.Call(str(head), (), Span.of(head), Span.of(head))

    def branches(self, *items):
        return tuple(items)

    def branch(self, *rest):
        name = str(rest[0]) if len(rest) == 2 else None
        return n.Branch(rest[-1], self._keyword("branch"), name)

    def merge_stmt(self, call, branches):
        return n.Merge(call, branches, call.span, None, None)

    def assign_merge(self, target, call, branches):
        return n.Merge(call, branches, Span.of(target).to(call.span), str(target), Span.of(target))

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
        return n.Merge(merge.call, merge.branches, Span.of(target).to(merge.span), str(target), Span.of(target))

    def repeat_stmt(self, *rest):
        var = str(rest[0]) if len(rest) == 3 else None
        count, body = rest[-2], rest[-1]
        return n.Repeat(var, count, body, self._head(count))

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
        names = tuple(n.Name(str(t), Span.of(t)) for t in names)
        return n.Output(names, self._head(names[-1]))

    def pass_stmt(self):
        return n.Pass(self._keyword("pass"))

    def body(self, *statements):
        return tuple(statements)

    def param(self, name, default=None):
        return n.Param(str(name), default, self._span())

    def params(self, *params):
        return tuple(params)

    def _definition(self, cls, name, rest):
        params = rest[0] if len(rest) == 2 else ()
        return cls(str(name), params, rest[-1], self._head(name), Span.of(name))

    def plan(self, name, *rest):
        return self._definition(n.PlanDef, name, rest)

    def block(self, name, *rest):
        return self._definition(n.BlockDef, name, rest)

    def import_all(self, path):
        return n.Import(str(path)[1:-1], None, self._head(path), Span.of(path))

    def import_from(self, path, *names):
        return n.Import(str(path)[1:-1], tuple(n.Name(str(t), Span.of(t)) for t in names), self._head(names[-1]),
                        Span.of(path))

    def start(self, *items):
        kinds = (n.PlanDef, n.BlockDef, n.Import)
        plans, blocks, imports = ([i for i in items if isinstance(i, k)] for k in kinds)
        return n.Module(tuple(plans), tuple(blocks), tuple(imports))


class _FromTree(Transformer_NonRecursive):
    """Lark's parse tree -> nodes, through the same `_Nodes` methods (the reference for the fast path)."""

    def __init__(self, nodes: _Nodes):
        super().__init__()
        self.nodes = nodes

    def __default__(self, data, children, meta):
        self.nodes.begin, self.nodes.end = getattr(meta, "start_pos", 0), getattr(meta, "end_pos", 0)
        return getattr(self.nodes, data)(*children)
