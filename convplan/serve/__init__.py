"""`convplan lsp`: a language server for .plan files (pygls, over stdio).

Every request reads one analysis of the document (`document.py`: `convplan`'s own parse and check,
the graph built so far and every diagnostic), made once per edit; one small module per feature:

    positions.py    plan spans (1-based, characters) <-> LSP ranges (0-based, UTF-16 by default)
    document.py     a document analysed: the Result, its syntax tree, what each line made, blocks seen
    symbols.py      names defined and used in the syntax tree: definitions, references, outline
    diagnostics.py  Diagnostic -> LSP diagnostic, per file (a block's error is in its own file)
    inlay.py        each line's output shape, the value of each `?`
    hover.py        a statement's torch call, shape, parameters, MACs, requirements, shape at sizes
    complete.py     layer kinds and their arguments, blocks, merges, names in scope
    actions.py      the diagnostics' fixes as quick fixes
    server.py       the wiring: one function per LSP method, open documents, who imports whom

Nothing here imports torch.
"""

from __future__ import annotations


def main() -> int:
    """Run the server on stdin/stdout until the client says exit."""
    try:
        from .server import make_server
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("pygls", "lsprotocol"):
            raise
        import sys

        print("convplan: error: `convplan lsp` needs pygls: pip install 'convplan[lsp]'", file=sys.stderr)
        return 2
    make_server().start_io()
    return 0
