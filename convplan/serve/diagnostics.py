"""convplan's diagnostics as LSP diagnostics, grouped by the file each is in: an error inside a block
imported from another file is published for that file, with its call site as related information."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from ..errors import Diagnostic
from .document import Document
from .positions import Lines

SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning}


def by_file(doc: Document) -> dict[str, list[lsp.Diagnostic]]:
    """URI -> the LSP diagnostics of `doc`'s analysis located in that file (the document's own URI first)."""
    out: dict[str, list[lsp.Diagnostic]] = {doc.uri: []}
    for d in doc.result.diagnostics:
        uri, lines = where(doc, d.file, d.source)
        out.setdefault(uri, []).append(convert(d, lines, doc))
    return out


def where(doc: Document, file: str, text: str | None) -> tuple[str, Lines]:
    """The URI of `file` (as a diagnostic names it) and its lines."""
    if file == doc.filename:
        return doc.uri, doc.lines
    path = Path(file)
    if text is None and doc.read is not None:
        text = doc.read(path.resolve())
    if text is None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            text = ""
    return (path.resolve().as_uri() if not file.startswith("<") else file), Lines(text, doc.lines.encoding)


def convert(d: Diagnostic, lines: Lines, doc: Document) -> lsp.Diagnostic:
    """One diagnostic; its hints end the message (every client shows them), its notes are related places."""
    message = "\n".join([d.message, *(f"hint: {h}" for h in d.hints)])
    related = []
    for note, span, *rest in d.notes:
        file, text = rest if rest else (d.file, d.source)
        uri, note_lines = where(doc, file, text)
        related.append(lsp.DiagnosticRelatedInformation(lsp.Location(uri, note_lines.range(span)), note))
    return lsp.Diagnostic(range=lines.range(d.span), message=message, severity=SEVERITY[d.severity], code=d.code,
                          source="convplan", related_information=related or None)
