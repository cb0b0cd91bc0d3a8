"""The canonical layout of a .plan file (`convplan fmt`, the language server's formatting).

Line by line, and only these changes: indentation by 4 spaces a level; one space after a comma and none
before it; `=` without spaces in keyword arguments and parameter defaults (inside brackets), with one on
each side elsewhere (`x = Conv1d(...)`); one space on each side of `->`; no trailing whitespace; runs of
blank lines collapsed to one, none at the start or end.  Everything else, comments above all, is kept as
written.  A line continued inside brackets moves with its statement.

Formatting never changes what a file says: a text that does not parse is refused, and the result must
parse to the same syntax tree with the same comments, else it is refused too (FormatError).
"""

from __future__ import annotations

import dataclasses
import re

from .errors import PlanError
from .parser import parse_module

INDENT = "    "
TAB = 8  # the width of a tab in indentation, as the parser counts it
TOKEN = re.compile(r"""(?P<comment>\#[^\n]*)|(?P<string>'[^'\\\n]*'|"[^"\\\n]*")|(?P<op>->|==|!=|<=|>=)
    |(?P<space>[ \t\f]+)|(?P<word>[A-Za-z0-9_.?]+)|(?P<char>.)""", re.VERBOSE)
OPEN, CLOSE = "([", ")]"


class FormatError(Exception):
    """The text was not formatted: it does not parse (`diagnostics`), or formatting would change it."""

    def __init__(self, message: str, diagnostics=()):
        super().__init__(message)
        self.diagnostics = list(diagnostics)


def format_text(text: str, filename: str = "<plan>") -> str:
    """`text` in the canonical layout; FormatError if it does not parse (or, a bug, if the layout would
    change its syntax tree or comments)."""
    try:
        before = parse_module(text, filename)
    except PlanError as exc:
        raise FormatError(f"{filename} does not parse", exc.diagnostics) from None
    newline = "\r\n" if "\r\n" in text else "\n"
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    out = newline.join(_layout(text.removeprefix(bom).replace("\r\n", "\n").split("\n")))
    out = bom + out + newline if out else ""
    try:
        after = parse_module(out, filename)
    except PlanError:
        after = None
    if after is None or tree(after) != tree(before) or comments(out) != comments(text):
        raise FormatError(f"formatting {filename} would change what it says (a convplan bug: please report it)")
    return out


def tree(node):
    """A syntax tree without its positions: what two layouts of one plan share."""
    if isinstance(node, (list, tuple)):
        return tuple(tree(x) for x in node)
    if dataclasses.is_dataclass(node):
        return (type(node).__name__, *(tree(getattr(node, f.name)) for f in dataclasses.fields(node)
                                       if not f.name.endswith("span")))
    return node


def comments(text: str) -> list[str]:
    """Every comment of `text`, in order (without trailing whitespace, which the layout drops)."""
    return [m.group("comment").rstrip() for m in TOKEN.finditer(text) if m.group("comment")]


def _layout(lines: list[str]) -> list[str]:
    """The lines laid out (blank runs collapsed; none first or last)."""
    kinds = _kinds(lines)
    levels = _levels(lines, kinds)
    out: list[str] = []
    depth, shift = 0, 0
    for line, kind, level in zip(lines, kinds, levels, strict=True):
        if kind == "blank":
            if out and out[-1] != "":
                out.append("")
            continue
        body = line.lstrip(" \t\f")
        if kind == "continued":
            indent = " " * max(0, _width(line) + shift)
        else:
            indent = INDENT * level
            if kind == "statement":
                shift = len(indent) - _width(line)
        text, depth = _spaced(body, depth)
        out.append((indent + text).rstrip())
    while out and out[-1] == "":
        out.pop()
    return out


def _kinds(lines: list[str]) -> list[str]:
    """Each line: blank, comment (alone on its line), statement (starts one) or continued (inside brackets,
    or after a backslash)."""
    kinds, depth, backslash = [], 0, False
    for line in lines:
        body = line.strip(" \t\f")
        if depth > 0 or backslash:
            kinds.append("continued" if body else "blank")
        elif not body:
            kinds.append("blank")
        elif body.startswith("#"):
            kinds.append("comment")
        else:
            kinds.append("statement")
        for m in TOKEN.finditer(line):
            char = m.group("char")
            if char and char in OPEN:
                depth += 1
            elif char and char in CLOSE:
                depth = max(0, depth - 1)
        code = [m.group() for m in TOKEN.finditer(line) if m.lastgroup not in ("space", "comment")]
        backslash = bool(code) and code[-1] == "\\"
    return kinds


def _levels(lines: list[str], kinds: list[str]) -> list[int]:
    """The indentation level of each statement and comment line: a statement's from the widths of those
    above it (as the parser counts them); a comment's is that of the statement it is indented like, the
    next one or one enclosing the previous one, else the next one's."""
    levels = [0] * len(lines)
    stack, enclosing = [0], {}  # line -> the widths of the levels open at that statement
    for i, kind in enumerate(kinds):
        if kind == "statement":
            width = _width(lines[i])
            if width > stack[-1]:
                stack = [*stack, width]
            while width < stack[-1]:
                stack = stack[:-1]
            levels[i], enclosing[i] = len(stack) - 1, stack
    previous, following = [0], (0, 0)  # (width, level) of the next statement
    nexts = {}
    for i in range(len(lines) - 1, -1, -1):
        if kinds[i] == "statement":
            following = (_width(lines[i]), levels[i])
        nexts[i] = following
    for i, kind in enumerate(kinds):
        if kind == "statement":
            previous = enclosing[i]
        elif kind == "comment":
            width, (next_width, next_level) = _width(lines[i]), nexts[i]
            levels[i] = previous.index(width) if width in previous and width != next_width else next_level
    return levels


def _width(line: str) -> int:
    """The indentation of `line`, tabs counted as the parser counts them."""
    body = line.lstrip(" \t\f")
    lead = line[: len(line) - len(body)]
    return lead.count(" ") + lead.count("\t") * TAB


def _spaced(body: str, depth: int) -> tuple[str, int]:
    """One line's text (without its indentation) with canonical spacing, and the bracket depth after it."""
    out: list[str] = []
    pending = ""  # whitespace read and not yet written
    after = None  # what the last token asks of the space before the next: "one", "none" or None (as written)
    for m in TOKEN.finditer(body):
        kind, tok = m.lastgroup, m.group()
        if kind == "space":
            pending = tok
            continue
        if kind == "comment":  # kept, with the space before it as written
            out.append(pending + tok)
        elif tok == "," or (tok == "=" and depth > 0):
            out.append(tok)
            after = "one" if tok == "," else "none"
            pending = ""
            continue
        elif tok in ("->", "=") and kind in ("op", "char"):
            out.append((" " if out else "") + tok)
            after, pending = "one", ""
            continue
        elif after == "one":
            out.append(tok if tok in CLOSE else " " + tok)
        elif after == "none":
            out.append(tok)
        else:
            out.append(pending + tok)
        if kind == "char":
            depth += tok in OPEN
            depth = max(0, depth - (tok in CLOSE))
        after, pending = None, ""
    return "".join(out), depth


__all__ = ["FormatError", "comments", "format_text", "tree"]
