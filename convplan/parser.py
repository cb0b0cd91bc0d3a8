"""Text -> syntax tree (`nodes.Module`).  Lark LALR; every failure becomes a PlanError."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import Indenter

from . import nodes as n
from .errors import PlanError, Span, fail

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
    return Lark(
        _grammar_path().read_text(),
        parser="lalr",
        postlex=PlanIndenter(),
        propagate_positions=True,
        maybe_placeholders=False,
    )


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
    except UnexpectedInput as exc:
        raise _syntax_error(exc, body, filename) from None
    except _DedentError as exc:
        tok = exc.token
        line = tok.line + tok.count("\n")
        col = len(tok.rsplit("\n", 1)[1]) + 1
        raise fail("E004", "this line's indentation matches no enclosing block", Span(line, 1, line, col),
                   filename, text, hints=[f"indent it by {' or '.join(map(str, exc.expected))} spaces"]) from None
    try:
        return _ToNodes(filename, text).transform(tree)
    except VisitError as exc:
        inner = exc.orig_exc
        if not isinstance(inner, _TreeError):
            raise
        raise fail(inner.code, inner.message, inner.span, filename, text) from None


# -- syntax errors ---------------------------------------------------------------------

_TOKEN_WORDS = {
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "the end of the block",
    "$END": "end of file",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "UNKNOWN": "'?'",
    "TRUE": "True",
    "FALSE": "False",
    "NONE": "None",
}


def _word(term: str) -> str:
    if term in _TOKEN_WORDS:
        return _TOKEN_WORDS[term]
    for t in _lark().terminals:
        if t.name == term and t.pattern.type == "str":
            return repr(t.pattern.value)
    return term.lower()


def _found(token: Token) -> str:
    if token.type == "_NL":
        return "end of line"
    if token.type in ("_INDENT", "_DEDENT", "$END"):
        return _word(token.type)
    return repr(str(token))


def _syntax_error(exc: UnexpectedInput, text: str, filename: str) -> PlanError:
    line, col = max(1, exc.line or 1), max(1, exc.column or 1)
    hints: list[str] = []
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        message = f"unexpected character {ch!r}"
        if ch == "/":
            hints.append("integer division is '//'; sizes are integers")
        elif ch == "*" or ch == "=":
            hints.append("'**' and '==' are not part of the plan language")
        span = Span(line, col, line, col + 1)
    elif isinstance(exc, UnexpectedToken):
        tok = exc.token
        expected = sorted({_word(t) for t in exc.expected if not t.startswith("__")})
        message = f"expected {_one_of(expected)}, found {_found(tok)}"
        if tok.type == "_NL" or tok.type == "$END":  # point at the end of the line, not the next one
            line, col = _line_end(text, exc.token)
        if tok.type == "_INDENT":
            message = "unexpected indentation"
            line, col = tok.line + tok.count("\n"), 1
        span = Span(line, col, line, col + max(1, len(str(tok)) if tok.type not in ("_NL", "$END", "_DEDENT", "_INDENT") else 1))
        if "')'" in expected and tok.type == "_NL":
            hints.append("a '(' on this line is never closed")
        if tok.type == "NAME" and "'plan'" in expected:
            hints.append("a .plan file starts with `plan NAME:` followed by an indented body")
    else:  # UnexpectedEOF and friends
        message = "unexpected end of file"
        span = Span(line, col, line, col + 1)
    return fail("E001", message, span, filename, text, hints)


def _line_end(text: str, tok: Token) -> tuple[int, int]:
    line = tok.line or 1
    lines = text.splitlines()
    if tok.type == "$END" or line > len(lines):
        line = len(lines)
        while line > 1 and not lines[line - 1].strip():
            line -= 1
    src = lines[line - 1] if lines else ""
    code = src.split("#", 1)[0].rstrip()
    return line, len(code) + 1


def _one_of(words: list[str]) -> str:
    if len(words) > 6:
        words = words[:6] + ["..."]
    if len(words) <= 1:
        return words[0] if words else "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


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

    # statements
    def kwarg(self, meta, name, value):
        return n.Arg(str(name), value, Span.of(meta))

    def call(self, meta, name, *args):
        args = tuple(a if isinstance(a, n.Arg) else n.Arg(None, a, a.span) for a in args)
        return n.Call(str(name), args, Span.of(meta), Span.of(name))

    def shape(self, meta, *dims):
        return n.Shape(tuple(dims), Span.of(meta))

    def input_stmt(self, meta, shape):
        return n.Input(shape, Span(meta.line, meta.column, shape.span.end_line, shape.span.end_col))

    def layer_stmt(self, meta, call, *rest):
        expect = rest[-1] if rest else None
        end = (expect or call).span
        return n.Layer(call, expect, call.span.to(end))

    def param(self, meta, name, default=None):
        return n.Param(str(name), default, Span.of(meta))

    def params(self, meta, *params):
        return tuple(params)

    def plan(self, meta, name, *rest):
        params = rest[0] if rest and isinstance(rest[0], tuple) else ()
        body = tuple(s for s in rest if not isinstance(s, tuple))
        head = Span(meta.line, meta.column, name.end_line, name.end_column)
        return n.PlanDef(str(name), params, body, head, Span.of(name))

    def start(self, meta, *defs):
        return n.Module(tuple(defs))
