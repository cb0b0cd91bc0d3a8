"""Plan spans <-> LSP positions.  The parser counts 1-based lines and columns in characters; LSP
counts 0-based lines and columns in code units of the negotiated encoding (UTF-16 unless the client
asks for another)."""

from __future__ import annotations

from lsprotocol import types as lsp

from ..errors import WHOLE_FILE, Span, source_lines


class Lines:
    """The lines of one text, for converting positions in it."""

    def __init__(self, text: str, encoding: str = "utf-16"):
        self.lines = source_lines(text)
        self.encoding = encoding

    def _units(self, line_text: str) -> int:
        if self.encoding == "utf-32" or line_text.isascii():
            return len(line_text)
        # "surrogatepass": a lone surrogate (JSON may carry one) is one UTF-16 unit, as the editor counts it
        if self.encoding == "utf-8":
            return len(line_text.encode("utf-8", "surrogatepass"))
        return len(line_text.encode("utf-16-le", "surrogatepass")) // 2

    def line(self, number: int) -> str:
        """Line `number` (1-based), or "" past the end."""
        return self.lines[number - 1] if 1 <= number <= len(self.lines) else ""

    def position(self, line: int, col: int) -> lsp.Position:
        """The LSP position of the character at 1-based `line`, `col`."""
        text = self.line(line)
        return lsp.Position(max(line - 1, 0), self._units(text[: max(col - 1, 0)]))

    def range(self, span: Span) -> lsp.Range:
        if span == WHOLE_FILE:
            return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
        return lsp.Range(self.position(span.line, span.col), self.position(span.end_line, span.end_col))

    def end_of(self, line: int) -> lsp.Position:
        return self.position(line, len(self.line(line)) + 1)

    def point(self, pos: lsp.Position) -> tuple[int, int]:
        """An LSP position as the parser's (line, col)."""
        text = self.line(pos.line + 1)
        if self.encoding != "utf-32" and not text.isascii():
            units = 0
            for i, ch in enumerate(text):
                if units >= pos.character:
                    return pos.line + 1, i + 1
                units += self._units(ch)
            return pos.line + 1, len(text) + 1
        return pos.line + 1, pos.character + 1


def contains(span: Span, line: int, col: int) -> bool:
    """Whether the character at (line, col), or the cursor just after the span, is in it."""
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)
