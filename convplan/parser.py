"""Text -> syntax tree (`nodes.Module`).  Lark LALR; every failure becomes a PlanError.

Lark analyses the grammar; lalr.py runs the analysed tables.  Both analyses ship as data in
`_grammar_tables.py` (`python -m convplan.parser` writes it), and a text without syntax errors is
parsed from lalr.py's tables alone: Lark is imported only to report a syntax error, or where the
shipped tables do not match the grammar or the installed Lark (~40 ms of every `convplan check`
otherwise).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
import sys
from dataclasses import replace
from pathlib import Path

from . import lalr
from . import nodes as n
from .errors import Span, fail
from .nogc import paused

MAX_SOURCE_CHARS = 1_000_000
MAX_INT_DIGITS = 18  # sympy evaluates huge literals eagerly; nothing real needs more
MAX_DEPTH = 64  # nesting of expressions and tuples


def _grammar_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "plan.lark", here.parent / "grammar" / "plan.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("convplan's grammar/plan.lark is missing from this installation")


@functools.lru_cache(maxsize=1)
def _grammar() -> str:
    return _grammar_path().read_text()


class _DedentError(Exception):
    def __init__(self, token, expected: list[int]):
        self.token, self.expected = token, expected


class _Indentation:
    """PlanIndenter's settings, which the fast loop reads without importing Lark."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@functools.cache
def _lark_classes() -> dict:
    """The classes built on Lark's: made when Lark is first needed (a syntax error, parse_tree, new tables)."""
    from lark import Token, Transformer_NonRecursive
    from lark.indenter import Indenter

    class PlanIndenter(Indenter):
        NL_type = _Indentation.NL_type
        OPEN_PAREN_types = _Indentation.OPEN_PAREN_types
        CLOSE_PAREN_types = _Indentation.CLOSE_PAREN_types
        INDENT_type = _Indentation.INDENT_type
        DEDENT_type = _Indentation.DEDENT_type
        tab_len = _Indentation.tab_len

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

    class FromTree(Transformer_NonRecursive):
        """Lark's parse tree -> nodes, through the same `_Nodes` methods (the reference for the fast path)."""

        def __init__(self, nodes: _Nodes):
            super().__init__()
            self.nodes = nodes

        def __default__(self, data, children, meta):
            self.nodes.begin, self.nodes.end = getattr(meta, "start_pos", 0), getattr(meta, "end_pos", 0)
            children = [(str(c), Span.of(c)) if isinstance(c, Token) else c for c in children]  # as the fast loop's
            return getattr(self.nodes, data)(*children)

    return {"PlanIndenter": PlanIndenter, "_FromTree": FromTree}


def __getattr__(name: str):
    if name in ("PlanIndenter", "_FromTree"):
        return _lark_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


LARK_OPTIONS = dict(parser="lalr", propagate_positions=True, maybe_placeholders=False)


@functools.lru_cache(maxsize=1)
def _lark():
    """Lark's parser for grammar/plan.lark.  Analysing the grammar costs ~40 ms of every `convplan check`,
    so the analysis ships as data in `_grammar_tables.py` (written by `python -m convplan.parser`; plain
    literals, never a pickle or a file a user's environment writes); a grammar or a Lark that does not
    match it is analysed afresh."""
    import lark

    from . import _grammar_tables as tables

    grammar = _grammar()
    indenter = _lark_classes()["PlanIndenter"]()
    if tables.GRAMMAR_SHA256 == _digest(grammar) and tables.LARK_VERSION == lark.__version__:
        return lark.Lark._load_from_dict(tables.DATA, tables.MEMO, postlex=indenter)
    return lark.Lark(grammar, postlex=indenter, **LARK_OPTIONS)


def _digest(grammar: str) -> str:
    return hashlib.sha256(grammar.encode()).hexdigest()


def _lark_version() -> str | None:
    """The version of the Lark the import system would find first on sys.path, read from its package without
    importing it; None if it is not a plain directory there."""
    for entry in sys.path:
        init = Path(entry or ".") / "lark" / "__init__.py"
        try:
            source = init.read_text(encoding="utf-8")
        except OSError:
            continue
        found = re.search(r"^__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", source, re.M)
        return found.group(1) if found else None
    return None


def tables_source() -> str:
    """The text of `_grammar_tables.py`: Lark's analysis of the grammar and lalr.py's tables, as Python literals."""
    import lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    grammar = _grammar()
    fresh = lark.Lark(grammar, postlex=_lark_classes()["PlanIndenter"](), **LARK_OPTIONS)
    data, memo = fresh.memo_serialize([TerminalDef, Rule])
    data["options"].pop("postlex")  # an object: given again when the tables are loaded
    return ('"""Generated by `python -m convplan.parser` from grammar/plan.lark: Lark\'s analysis of the grammar, as\n'
            'data (see parser._lark), and the tables lalr.py runs (see parser._tables).  Do not edit; regenerate\n'
            'after changing the grammar, upgrading Lark or changing lalr.FORMAT."""\n\n'
            "# ruff: noqa\n"
            f"GRAMMAR_SHA256 = {_digest(grammar)!r}\nLARK_VERSION = {lark.__version__!r}\n"
            f"DATA = {data!r}\nMEMO = {memo!r}\n"
            f"LALR_FORMAT = {lalr.FORMAT!r}\nLALR = {lalr.data(lalr.tables(fresh))!r}\n")


@functools.lru_cache(maxsize=1)
def _tables() -> lalr.Tables | None:
    """lalr.py's tables, with the reducers of `_Nodes` made: part of loading the parser, once a process.  The
    shipped ones where they match the grammar, the installed Lark (its version read without importing it) and
    lalr.py's format; else read from a fresh analysis.  None where this Lark's internals are not understood."""
    from . import _grammar_tables as shipped

    tables = None
    if (shipped.GRAMMAR_SHA256 == _digest(_grammar()) and shipped.LARK_VERSION == _lark_version()
            and getattr(shipped, "LALR_FORMAT", None) == lalr.FORMAT):
        tables = lalr.from_data(shipped.LALR)
    if tables is None:
        try:
            tables = lalr.tables(_lark())
        except (lalr.Bail, AttributeError, KeyError, TypeError):  # another Lark's internals: use Lark.parse
            return None
    lalr.reducers(tables, _Nodes)
    return tables


@paused
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
        from lark.exceptions import UnexpectedInput

        from . import syntax_errors

        try:
            tree = _lark().parse(body)
        except (UnexpectedInput, _DedentError) as exc:
            raise syntax_errors.report(_diagnose(exc, body, filename), text, filename,
                                       lambda t: _first_error(t, filename)) from None
        return _lark_classes()["_FromTree"](nodes).transform(tree)
    except _TreeError as exc:
        raise fail(exc.code, exc.message, exc.span, filename, text) from None


def parse_tree(text: str, filename: str = "<plan>") -> n.Module:
    """As parse_module, through Lark's parse tree only (slower): the reference the fast path is tested against."""
    body = text if text.endswith("\n") else text + "\n"
    return _lark_classes()["_FromTree"](_Nodes(filename, body)).transform(_lark().parse(body))


def _fast_parse(body: str, nodes: _Nodes) -> n.Module:
    tables = _tables()
    if tables is None:
        raise lalr.Bail
    try:
        return lalr.parse(body, tables, lalr.callbacks(tables, nodes), nodes, _Indentation)
    except (KeyError, IndexError) as exc:  # tables that do not fit the text's states: Lark decides
        raise lalr.Bail from exc


# -- syntax errors (worded in syntax_errors.py) -----------------------------------------


def _diagnose(exc: Exception, text: str, filename: str):
    from . import syntax_errors

    if isinstance(exc, _DedentError):
        return syntax_errors.indentation(exc.token, exc.expected, text, filename)
    return syntax_errors.diagnose(exc, text, filename, _lark().terminals)


def _first_error(text: str, filename: str):
    """The first syntax error in `text`, or None (used to find the next error after one)."""
    from lark.exceptions import UnexpectedInput

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
    """One method per grammar rule (or alias): its kept children in, a node out.  A token comes as
    (text, Span).

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
        lines, begin, end = self._lines, self.begin, self.end
        i = bisect.bisect_right(lines, begin) - 1
        j = i if i + 1 == len(lines) or end < lines[i + 1] else bisect.bisect_right(lines, end) - 1
        return Span(i + 1, begin - lines[i] + 1, j + 1, end - lines[j] + 1)

    def _head(self, node_or_token) -> Span:
        """From the rule's first character (a keyword) to the end of `node_or_token`."""
        end = node_or_token[1] if isinstance(node_or_token, tuple) else node_or_token.span
        return Span(*self._at(self.begin), end.end_line, end.end_col)

    def _keyword(self, word: str) -> Span:
        """The keyword the rule starts with."""
        line, col = self._at(self.begin)
        return Span(line, col, line, col + len(word))

    # expressions
    def int(self, tok):
        text = tok[0]
        if len(text) <= MAX_INT_DIGITS and text.isdigit():  # most literals: no `_`, short
            return n.Num(int(text), tok[1])
        digits = text.replace("_", "")
        if len(digits.lstrip("0")) > MAX_INT_DIGITS:
            raise _TreeError("E005", f"integer literal too large ({len(digits)} digits; at most {MAX_INT_DIGITS})",
                             tok[1])
        return n.Num(int(digits.lstrip("0") or "0"), tok[1])  # int() refuses 4301+ digits, zeros included

    def float(self, tok):
        value = float(tok[0])
        if value != value or value in (float("inf"), float("-inf")):
            raise _TreeError("E005", f"number {tok[0]} is out of range", tok[1])
        return n.Float(value, tok[1])

    def string(self, tok):
        return n.Str(tok[0][1:-1], tok[1])

    def true(self, tok):
        return n.Const(True, tok[1])

    def false(self, tok):
        return n.Const(False, tok[1])

    def none(self, tok):
        return n.Const(None, tok[1])

    def name(self, tok):
        return n.Name(tok[0], tok[1])

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
            raise _TreeError("E006", f"expression nested too deeply (more than {MAX_DEPTH} levels)", node.span)
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
        return n.Arg(name[0], value, self._span())

    def call(self, name, *args):
        args = tuple([a if a.__class__ is n.Arg else n.Arg(None, a, a.span) for a in args])
        return self._nest(n.Call(name[0], args, self._span(), name[1]), *[a.value for a in args])  # in exprs too

    def shape(self, *dims):
        return n.Shape(tuple(dims), self._span())

    def input_stmt(self, *rest):
        shape = rest[-1]
        name = rest[0][0] if len(rest) == 2 else None
        return n.Input(shape, self._head(shape), name)

    def layer_stmt(self, call, *rest):
        expect = rest[-1] if rest else None
        end = (expect or call).span
        return n.Layer(call, expect, call.span.to(end))

    def assign_call(self, target, call, *rest):
        stmt = self.layer_stmt(call, *rest)
        return n.Layer(stmt.call, stmt.expect, target[1].to(stmt.span), target[0], target[1])

    def target_name(self, tok):
        return n.Name(tok[0], tok[1])

    def target_group(self, *items):
        return n.Targets(tuple(items), self._span())

    def assign_unpack(self, first, *rest):
        *more, call = rest
        items = (n.Name(first[0], first[1]), *more)
        targets = n.Targets(items, first[1].to(more[-1].span))
        return n.Layer(call, None, first[1].to(call.span), targets=targets)

    def ref_stmt(self, name):
        return n.Ref(name[0], name[1])

    def assign_expr(self, target, value):
        if isinstance(value, n.Call) and value.name not in n.SIZE_FUNCTIONS:  # `h = Conv2d(8)`: a layer
            return self.assign_call(target, value)
        span = target[1].to(value.span)
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
        return n.Merge(call, branches, target[1].to(call.span), target[0], target[1])

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
        return n.Merge(merge.call, merge.branches, target[1].to(merge.span), target[0], target[1])

    def repeat_stmt(self, *rest):
        var = rest[0][0] if len(rest) == 3 else None
        count, body = rest[-2], rest[-1]
        return n.Repeat(var, count, body, self._head(count))

    def assign_repeat(self, target, *rest):
        stmt = self.repeat_stmt(*rest)
        return replace(stmt, span=target[1].to(stmt.count.span), target=target[0], target_span=target[1])

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
            raise _TreeError("E208", "a def computes a number: its body holds `name = expr`, `if` and `return` "
                             "only", stmt.span)
        out.append(stmt)
    return tuple(out)


def _ref_value_span(stmt: n.Ref) -> Span:
    """The `b` of `a = b`, which ends the statement."""
    end = stmt.span
    return Span(end.end_line, end.end_col - len(stmt.name), end.end_line, end.end_col)


if __name__ == "__main__":  # python -m convplan.parser: write _grammar_tables.py after a grammar change
    Path(__file__).with_name("_grammar_tables.py").write_text(tables_source(), encoding="utf-8")
