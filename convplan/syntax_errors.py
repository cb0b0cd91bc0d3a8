"""Lark's parse failures -> diagnostics a person can act on.

LALR's "expected" sets are over-approximations (a merged state after `3` lists ']', ':' and
end of line even inside `f(...)`), so the message is built from what is actually open: a
bracket scan of the text says which closer matters.  After an error the statement is
replaced by `pass` and the text parsed again, so independent syntax errors are reported
together (bounded in count, and in the text reparsed: a count, so the machine's speed changes nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .errors import Diagnostic, Edit, Fix, PlanError, Span, source_lines

MAX_SYNTAX_ERRORS = 10
RECOVERY_BUDGET_CHARS = 200_000  # text reparsed after the first error: ~0.5-0.9 s of Lark here (load 0-13)
MAX_RECOVERY_CHARS = 200_000  # beyond this, report only the first syntax error

_CLOSER = {"(": ")", "[": "]"}
_OPERATORS = {"'+'", "'-'", "'*'", "'/'", "'**'", "'//'", "'%'", "a comparison", "'if'", "'else'", "'or'", "'and'",
              "'not'"}
_VALUES = {"a name", "an integer", "a number", "a string", "'?'", "True", "False", "None", "'('", "'...'"}
_STATEMENTS = {"'input'", "'repeat'", "'residual'", "'output'", "'pass'"}
_DEFINITIONS = {"'plan'", "'block'", "'def'", "'import'", "'from'"}
_WORDS = {
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "the end of the block",
    "$END": "end of file",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "UNKNOWN": "'?'",
    "COMPARE": "a comparison",
    "TRUE": "True",
    "FALSE": "False",
    "NONE": "None",
}
_ORDER = ("')'", "']'", "','", "':'", "'='", "'->'")  # how expected tokens are listed; the rest follow


@dataclass(frozen=True)
class Bracket:
    char: str
    line: int
    col: int

    @property
    def span(self) -> Span:
        return Span(self.line, self.col, self.line, self.col + 1)


def open_brackets(text: str, stop: int) -> tuple[list[Bracket], Bracket | None]:
    """Brackets still open at offset `stop`, and the first closer that matched nothing (or the wrong one)."""
    stack: list[Bracket] = []
    line, col, i = 1, 1, 0
    quote = None
    while i < stop:
        ch = text[i]
        if quote:
            quote = None if ch in (quote, "\n") else quote
        elif ch == "#":
            nl = text.find("\n", i, stop)
            if nl < 0:
                break
            col += nl - i
            i = nl
            continue
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            stack.append(Bracket(ch, line, col))
        elif ch in ")]":
            if not stack or _CLOSER[stack[-1].char] != ch:
                return stack, Bracket(ch, line, col)
            stack.pop()
        line, col = (line + 1, 1) if ch == "\n" else (line, col + 1)
        i += 1
    return stack, None


# -- one error -------------------------------------------------------------------------


def diagnose(exc: UnexpectedInput, text: str, filename: str, terminals) -> Diagnostic:
    """The diagnostic for one Lark failure on `text`."""
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text, filename)
    if isinstance(exc, UnexpectedToken):
        return _bad_token(exc, text, filename, _Words(terminals))
    line, col = _clamp(text, exc.line, exc.column)
    return Diagnostic("E001", "unexpected end of file", Span(line, col, line, col + 1), filename)


def indentation(token: Token, levels: list[int], text: str, filename: str) -> Diagnostic:
    """A line dedented to a column no enclosing block uses."""
    line = token.line + token.count("\n")
    col = len(token.rsplit("\n", 1)[1]) + 1
    hints = [f"indent it by {' or '.join(map(str, levels))} spaces, like a line above"]
    if any(ln[: len(ln) - len(ln.lstrip())].count("\t") for ln in source_lines(text)):
        hints.append("this file indents with tabs (a tab counts as 8 spaces); indent with spaces only")
    return Diagnostic("E004", "this line's indentation matches no enclosing block", Span(line, 1, line, col),
                      filename, tuple(hints))


class _Words:
    def __init__(self, terminals):
        self.literal = {t.name: t.pattern.value for t in terminals if t.pattern.type == "str"}

    def __call__(self, term: str) -> str:
        if term in _WORDS:
            return _WORDS[term]
        if term in self.literal:
            return repr(self.literal[term])
        return term.lower()


def _bad_character(exc: UnexpectedCharacters, text: str, filename: str) -> Diagnostic:
    line, col = _clamp(text, exc.line, exc.column)
    ch = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else ""
    hints, fixes = [], []
    if ch == "/":
        hints.append("'/' and '//' divide inside a value only")
    elif ch in "“”‘’":
        hints.append("use plain quotes ' or \"")
        fixes.append(_plain_quotes(text, line))
    elif ch in "'\"":
        hints.append("a string ends on the line it starts on, with the same quote")
    elif not ch.isascii():
        hints.append("names and numbers are ASCII")
    elif ch == "!":
        hints.append("'!' only appears in '!='")
    elif ch == "." and re.search(r"[A-Za-z_]\w*$", text[: exc.pos_in_stream]):
        pos = exc.pos_in_stream
        full = re.search(r"[A-Za-z_]\w*$", text[:pos]).group(0) + re.match(r"[\w.]*", text[pos:]).group(0)
        hints.append(f"names are not dotted: write {full.rstrip('.').split('.')[-1]}, not {full}")
        start = pos - len(re.search(r"[A-Za-z_]\w*$", text[:pos]).group(0))
        fixes.append(Fix(f"write {full.rstrip('.').split('.')[-1]}", (Edit(
            Span(*_line_col(text, start), *_line_col(text, start + len(full))), full.rstrip('.').split('.')[-1]),)))
    shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}" if ch else "end of file"
    return Diagnostic("E013", f"unexpected character {shown}", Span(line, col, line, col + 1), filename,
                      tuple(hints), fixes=tuple(fixes))


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of a character offset."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _plain_quotes(text: str, line: int) -> Fix:
    """Every typographic quote on `line` made plain: “same” -> "same"."""
    plain = {"“": '"', "”": '"', "‘": "'", "’": "'"}
    row = source_lines(text)[line - 1] if 0 < line <= len(source_lines(text)) else ""
    return Fix("use plain quotes", tuple(Edit(Span(line, k + 1, line, k + 2), plain[c])
                                         for k, c in enumerate(row) if c in plain))


def _bad_token(exc: UnexpectedToken, text: str, filename: str, words: _Words) -> Diagnostic:
    tok = exc.token
    kind = tok.type
    pos = tok.start_pos if isinstance(tok.start_pos, int) and kind not in ("$END",) else len(text)
    stack, stray = open_brackets(text, min(pos + (1 if kind in ("RPAR", "RSQB") else 0), len(text)))
    if kind == "_INDENT":
        return _unexpected_indent(tok, text, filename)
    if stray is not None:
        return _stray_closer(stray, stack, filename)
    expected = _expected(exc.expected, stack, words)
    found = _found(tok, text)
    span = _token_span(tok, text)
    if stack and (kind in ("$END", "_DEDENT", "_NL") or stack[-1].line < span.line):
        return _unclosed(stack[-1], expected, found, span, filename)
    if _block_missing(text, span, kind):
        return Diagnostic("E017", f"expected an indented block, found {found}", span, filename,
                          ("indent the lines that belong to the block above (4 spaces)",))
    if not stack and _starts_line(text, tok) and kind not in ("NAME", "_NL", "$END", "_DEDENT") and span.col > 1:
        expected = ["a statement"]
    hints = _hints(expected, kind, tok, text, stack)
    return Diagnostic("E001", f"expected {_one_of(expected)}, found {found}", span, filename, tuple(hints),
                      fixes=_token_fixes(hints, kind, tok, text, span))


def _token_fixes(hints: list[str], kind: str, tok: Token, text: str, span: Span) -> tuple[Fix, ...]:
    """The hints of `_hints` that are one insertion: a missing ',' or a header's ':'."""
    fixes = []
    if any(h.startswith("a ',' is missing") for h in hints) and isinstance(tok.start_pos, int):
        end = len(text[: tok.start_pos].rstrip())
        at = Span(*_line_col(text, end), *_line_col(text, end))
        fixes.append(Fix(f"insert ',' before {str(tok)!r}", (Edit(at, ","),)))
    if "a header line ends with ':'" in hints and kind == "_NL":
        fixes.append(Fix("end the header with ':'", (Edit(Span(span.line, span.col, span.line, span.col), ":"),)))
    if "one ',' too many: remove it" in hints:
        fixes.append(Fix("remove the second ','", (Edit(span, ""),)))
    return tuple(fixes)


def _unexpected_indent(tok: Token, text: str, filename: str) -> Diagnostic:
    newline = text[tok.start_pos : tok.end_pos]  # an _INDENT borrows the position of the newline before it
    line = min(tok.line + newline.count("\n"), max(1, text.count("\n")))
    width = len(str(tok))
    lines = source_lines(text)
    above = next((ln for ln in reversed(lines[: line - 1]) if ln.strip() and not ln.lstrip().startswith("#")), "")
    level = len(above) - len(above.lstrip())
    return Diagnostic("E016", "unexpected indentation", Span(line, 1, line, width + 1), filename,
                      (f"indent this line like the one above ({level} spaces)",))


def _stray_closer(stray: Bracket, stack: list[Bracket], filename: str) -> Diagnostic:
    if not stack:
        return Diagnostic("E015", f"{stray.char!r} closes nothing", stray.span, filename, ("remove it",),
                          fixes=(Fix(f"remove {stray.char!r}", (Edit(stray.span, ""),)),))
    opener = stack[-1]
    want = _CLOSER[opener.char]
    return Diagnostic("E015", f"{stray.char!r} does not close the {opener.char!r} opened at line {opener.line}",
                      stray.span, filename, (f"close it with {want!r}",),
                      notes=((f"{opener.char!r} opened here", opener.span),),
                      fixes=(Fix(f"close it with {want!r}", (Edit(stray.span, want),)),))


def _unclosed(opener: Bracket, expected: list[str], found: str, span: Span, filename: str) -> Diagnostic:
    want = _CLOSER[opener.char]
    return Diagnostic("E014", f"{opener.char!r} opened at line {opener.line} is never closed", opener.span,
                      filename, (f"add {want!r} where the {'call' if opener.char == '(' else 'list'} ends",),
                      notes=((f"expected {_one_of(expected)} before {found}", span),))


def _block_missing(text: str, span: Span, kind: str) -> bool:
    """The line before the failing one ends with ':' and the failing line is not indented deeper."""
    lines = source_lines(text)
    if kind in ("_NL", "$END") or not 1 < span.line <= len(lines):
        return False
    prev = next((ln for ln in reversed(lines[: span.line - 1]) if ln.split("#", 1)[0].strip()), "")
    here = lines[span.line - 1]
    indent = lambda s: len(s) - len(s.lstrip())  # noqa: E731
    header = prev.split("#", 1)[0].rstrip().endswith(":")
    return header and indent(here) <= indent(prev) and span.col <= indent(here) + 1


def _expected(terms, stack: list[Bracket], words: _Words) -> list[str]:
    """The few expected tokens that matter here, closers first."""
    got = {words(t) for t in terms if not t.startswith("__IGNORE")}
    if stack:  # inside brackets: no statement ends, and only the innermost closer
        got -= {"end of line", "':'", "'->'", "')'", "']'"}
        got.add(repr(_CLOSER[stack[-1].char]))
    else:
        got -= {"')'", "']'"}
    if got - _OPERATORS:
        got -= _OPERATORS
    if stack and "'('" in got and len(got) > 1 and not got & (_VALUES - {"'('"}):  # a name in brackets may be
        got.discard("'('")  # called (`max(...)`), which is rarely what was meant
    if len(got & _VALUES) >= 3:
        got = (got - _VALUES - {"'-'", "'+'", "'not'"}) | {"a value"}
    if len(got & _STATEMENTS) >= 3:
        got = (got - _STATEMENTS - {"a name", "'if'"}) | {"a statement"}
    if len(got & _DEFINITIONS) >= 3:
        got = (got - _DEFINITIONS - {"end of line"}) | {"`plan NAME:`"}
    rank = {w: i for i, w in enumerate(_ORDER)}
    return sorted(got, key=lambda w: (w == "end of line", rank.get(w, len(rank)), w))


def _hints(expected: list[str], kind: str, tok: Token, text: str, stack: list[Bracket]) -> list[str]:
    hints = []
    if "','" in expected and stack and kind in ("NAME", "INT", "FLOAT", "STRING", "UNKNOWN", "LPAR", "LSQB"):
        hints.append(f"a ',' is missing before {str(tok)!r}")
    if "`plan NAME:`" in expected:
        hints.append("a .plan file starts with `plan NAME:` followed by an indented body")
    if expected == ["':'"] or expected == ["'('", "':'"] or expected == ["':'", "'('"]:
        hints.append("a header line ends with ':'")
    if "a statement" in expected and kind in ("INT", "FLOAT", "STRING", "LPAR", "LSQB", "MINUS"):
        hints.append("each line of a body is a statement, such as a layer call `ReLU()`")
    before = text[: tok.start_pos].rstrip() if isinstance(tok.start_pos, int) else ""
    if "'['" in expected and before.endswith("->"):
        hints.append("'->' is followed by the shape it asserts, e.g. `-> [N, 32, L]`")
    elif "'['" in expected and kind == "LPAR":
        hints.append("shapes are written in square brackets, e.g. `[N, 1, L]`")
    elif (expected and expected[-1] == "end of line" and kind == "NAME" and not stack
          and not _starts_line(text, tok) and "a string" not in expected):
        hints.append("one statement per line")
    if "'branch'" in expected:
        hints.append("under a merge (`add:`, `cat:`), each indented block starts with `branch:`")
    if "a string" in expected and kind == "NAME":
        hints.append("an imported file's name is a string: `import \"blocks.plan\"`")
    if kind == "COMMA" and before.endswith(","):
        hints.append("one ',' too many: remove it")
    return hints


def _found(tok: Token, text: str) -> str:
    kind = tok.type
    if kind == "_NL":
        return "end of line"
    if kind in ("_DEDENT", "$END") and not _code_after(text, tok):
        return "end of file"
    if kind in _WORDS and kind.startswith(("_", "$")):
        return _WORDS[kind]
    if kind == "NAME":
        return f"the name {str(tok)!r}"
    if kind in ("INT", "FLOAT"):
        return f"the number {str(tok)}"
    if kind == "STRING":
        return f"the string {str(tok)}"
    return repr(str(tok))


def _starts_line(text: str, tok: Token) -> bool:
    if not isinstance(tok.start_pos, int) or tok.type.startswith(("_", "$")):
        return False
    return not text[text.rfind("\n", 0, tok.start_pos) + 1 : tok.start_pos].strip()


def _code_after(text: str, tok: Token) -> bool:
    rest = text[tok.start_pos :] if isinstance(tok.start_pos, int) else ""
    return any(ln.split("#", 1)[0].strip() for ln in source_lines(rest))


def _token_span(tok: Token, text: str) -> Span:
    kind = tok.type
    if kind in ("_NL", "$END", "_DEDENT"):  # point just after the last code on the line, not at the next one
        line, col = _line_end(text, tok)
        return Span(line, col, line, col + 1)
    line, col = _clamp(text, tok.line, tok.column)
    end_line, end_col = tok.end_line or line, tok.end_column or col + 1
    if end_line != line:
        end_line, end_col = line, col + 1
    return Span(line, col, end_line, max(end_col, col + 1))


def _line_end(text: str, tok: Token) -> tuple[int, int]:
    lines = source_lines(text) or [""]
    line = len(lines) if tok.type == "$END" or not tok.line else min(tok.line, len(lines))
    while line > 1 and not lines[line - 1].split("#", 1)[0].strip():
        line -= 1
    code = lines[line - 1].split("#", 1)[0].rstrip()
    return line, len(code) + 1


def _clamp(text: str, line, col) -> tuple[int, int]:
    count = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    return min(max(1, line or 1), count), max(1, col or 1)


def _one_of(words: list[str]) -> str:
    if not words:
        return "something else"
    if len(words) > 5:
        words = [*words[:4], "..."]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


# -- several errors --------------------------------------------------------------------


def report(first: Diagnostic, text: str, filename: str, reparse) -> PlanError:
    """`first` plus the syntax errors found after blanking each failing statement in turn.

    `reparse(text)` returns a Diagnostic for the first error in `text`, or None."""
    diags = [first]
    if len(text) <= MAX_RECOVERY_CHARS:
        current, spent = text, 0
        while len(diags) < MAX_SYNTAX_ERRORS:
            current = _blank_statement(current, diags[-1])
            if current is None or spent + len(current) > RECOVERY_BUDGET_CHARS:
                break
            spent += len(current)
            nxt = reparse(current)
            if nxt is None or _position(nxt) <= _position(diags[-1]) or _cascade(nxt, diags[-1]):
                break
            diags.append(nxt)
    return PlanError(diags, text)


def _position(d: Diagnostic) -> tuple[int, int]:
    span = d.notes[0][1] if d.code == "E014" and d.notes else d.span
    return span.line, span.col


def _cascade(new: Diagnostic, old: Diagnostic) -> bool:
    """Errors that the blanking itself causes (an indented body under a removed header)."""
    return new.code in ("E016", "E004", "E017") and new.span.line <= _position(old)[0] + 1


def _blank_statement(text: str, d: Diagnostic) -> str | None:
    """`text` with the failing statement replaced by `pass` (same lines, so positions stay)."""
    if d.code not in ("E001", "E013", "E014", "E015", "E005"):
        return None
    lines = text.split("\n")
    first = d.span.line
    last = _position(d)[0] if d.code == "E014" else first
    stack, _ = open_brackets(text, _offset(lines, first, 1))
    if stack:  # the statement began on an earlier line
        first = stack[0].line
    if not 1 <= first <= last <= len(lines):
        return None
    head = lines[first - 1]
    indent = len(head) - len(head.lstrip(" \t"))
    if indent == 0:  # a header line: blanking it would only cause more errors
        return None
    if d.code != "E014":
        last = _statement_end(lines, first, last)
    lines[first - 1] = head[:indent] + "pass"
    for i in range(first, last if d.code != "E014" else last - 1):
        lines[i] = ""
    return "\n".join(lines)


def _statement_end(lines: list[str], first: int, last: int, most: int = 50) -> int:
    """The line where the brackets open in the statement starting at `first` close again."""
    for end in range(last, min(len(lines), first + most) + 1):
        chunk = "\n".join(lines[first - 1 : end])
        stack, stray = open_brackets(chunk, len(chunk))
        if not stack or stray:
            return end
    return last


def _offset(lines: list[str], line: int, col: int) -> int:
    return sum(len(ln) + 1 for ln in lines[: line - 1]) + col - 1
