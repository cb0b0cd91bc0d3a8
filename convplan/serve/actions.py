"""Code actions: each fix of a diagnostic under the cursor (`Diagnostic.fixes`, made where its hint is)
as a quick fix, its edits in the file of the diagnostic."""

from __future__ import annotations

from lsprotocol import types as lsp

from .diagnostics import convert, where
from .document import Document


def quick_fixes(doc: Document, first: int, last: int) -> list[lsp.CodeAction]:
    """The fixes of the diagnostics of this document on lines `first` to `last` (1-based)."""
    actions = []
    for d in doc.result.diagnostics:
        uri, lines = where(doc, d.file, d.source)
        if uri != doc.uri or not d.fixes or d.span.end_line < first or d.span.line > last:
            continue
        shown = convert(d, lines, doc)
        for k, fix in enumerate(d.fixes):
            edits = [lsp.TextEdit(lines.range(e.span), e.text) for e in fix.edits]
            actions.append(lsp.CodeAction(title=fix.hint, kind=lsp.CodeActionKind.QuickFix, diagnostics=[shown],
                                          edit=lsp.WorkspaceEdit(changes={uri: edits}), is_preferred=k == 0))
    return actions
