"""Go to definition, find references, and the outline (plans and blocks, with their named tensors), for
blocks, named tensors, parameters, sizes and imports.  A block imported from another file is found
there (`Document.blocks` knows each block's file); the references of a block are found in every file
that sees it (workspace.py, `block_at` says which block a position names)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from ..errors import Span
from ..scope import BlockSource
from .document import Document
from .positions import Lines
from .symbols import TENSORS, Symbol, Use

OUTLINE = {"plan": lsp.SymbolKind.Class, "block": lsp.SymbolKind.Function, "param": lsp.SymbolKind.TypeParameter,
           "input": lsp.SymbolKind.Variable, "tensor": lsp.SymbolKind.Variable, "branch": lsp.SymbolKind.Variable,
           "let": lsp.SymbolKind.Constant, "import": lsp.SymbolKind.Module}


def definition(doc: Document, line: int, col: int) -> list[lsp.Location]:
    index = doc.symbols
    item = index.at(line, col) if index else None
    if item is None:
        return _import_path(doc, line, col)
    target = index.target(item)
    if target is not None and target.kind not in ("import",):
        return [lsp.Location(doc.uri, doc.lines.range(target.span))]
    if isinstance(item, (Use, Symbol)) and item.name in doc.blocks:  # a block of another file
        return [_block_location(doc, item.name)]
    return []


def references(doc: Document, line: int, col: int, include_declaration: bool = True) -> list[lsp.Location]:
    index = doc.symbols
    item = index.at(line, col) if index else None
    target = index.target(item) if item else None
    if target is None:
        if isinstance(item, Use) and item.call and item.name in doc.blocks:  # calls of an imported block
            return [lsp.Location(doc.uri, doc.lines.range(u.span)) for u in index.uses if u.name == item.name]
        return []
    spans = index.references(target)
    if not include_declaration:
        spans = [s for s in spans if s != target.span]
    return [lsp.Location(doc.uri, doc.lines.range(s)) for s in spans]


def block_at(doc: Document, line: int, col: int) -> BlockSource | None:
    """The block whose name is at (line, col): its definition, a call of it or an import naming it."""
    index = doc.symbols
    item = index.at(line, col) if index else None
    if isinstance(item, Symbol) and item.kind in ("block", "import") or isinstance(item, Use) and item.call:
        return doc.blocks.get(item.name)
    return None


def outline(doc: Document) -> list[lsp.DocumentSymbol]:
    index = doc.symbols
    if index is None:
        return []
    out = []
    for s in index.symbols:
        if s.kind in ("plan", "block"):
            children = [_symbol(doc, c, c.span) for c in index.symbols
                        if c.scope == s.name and c.kind in ("param", "let", *TENSORS)]
            out.append(_symbol(doc, s, s.extent, children))
        elif s.kind == "import":
            out.append(_symbol(doc, s, s.span))
    return out


def _symbol(doc: Document, s: Symbol, extent: Span, children=None) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(name=s.name, kind=OUTLINE.get(s.kind, lsp.SymbolKind.Variable), detail=s.kind,
                              range=doc.lines.range(extent),
                              selection_range=doc.lines.range(s.span), children=children or None)


def _block_location(doc: Document, name: str) -> lsp.Location:
    src = doc.blocks[name]
    lines = Lines(src.source, doc.lines.encoding)
    uri = Path(src.path).as_uri() if src.path is not None else doc.uri
    return lsp.Location(uri, lines.range(src.definition.name_span))


def _import_path(doc: Document, line: int, col: int) -> list[lsp.Location]:
    """On the path of an import: the file it names."""
    if doc.module is None:
        return []
    for imp in doc.module.imports:
        s = imp.path_span
        if s.line == line and s.col <= col <= s.end_col:
            target = (Path(doc.filename).parent / imp.path).resolve()
            if target.is_file():
                return [lsp.Location(target.as_uri(), lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)))]
    return []
