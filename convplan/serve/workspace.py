"""References of a block across files: every open document and every .plan file of the workspace that
sees the block (defines it, or imports it directly or through another file) and names it, in a call or
in an import.

A block is known by its file and its name; a file sees it when the name resolves, through that file's
imports, to the same block (a block of the same name in another file is another block).  Files are read
from the editor where open (unsaved changes included), else from disk; a file is parsed only if its text
holds the name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from lsprotocol import types as lsp

from ..errors import PlanError
from ..imports import library
from ..parser import parse_module
from ..scope import BlockSource
from .positions import Lines
from .symbols import index

MAX_FILES = 5000  # .plan files of a workspace searched; past it, the open documents and the first ones found
SKIPPED = {"node_modules", "__pycache__", "site-packages"}  # besides hidden folders


def block_key(src: BlockSource | None) -> tuple | None:
    return None if src is None else (str(src.path) if src.path is not None else src.file, src.definition.name)


def plan_files(roots: Iterable[Path]) -> Iterator[Path]:
    """The .plan files under `roots` (resolved, each once), not in hidden folders, at most MAX_FILES."""
    seen: set[Path] = set()
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED)
            for name in sorted(files):
                if name.endswith(".plan"):
                    path = (Path(folder) / name).resolve()
                    if path not in seen:
                        seen.add(path)
                        yield path
                    if len(seen) >= MAX_FILES:
                        return


def references(block: BlockSource, files: Iterable[tuple[str, Path | None, str]], read, encoding: str,
               include_declaration: bool = True) -> list[lsp.Location]:
    """Where `block` is named in `files` ((uri, path or None, text) each): its definition, the imports that
    name it and the calls of it.  `read`: the editor's text of an imported file, as for the analysis."""
    key, name = block_key(block), block.definition.name
    word = re.compile(rf"\b{re.escape(name)}\b")
    found: list[lsp.Location] = []
    for uri, path, text in files:
        if not word.search(text):
            continue
        filename = str(path) if path is not None else uri
        try:
            module = parse_module(text, filename)
        except PlanError:  # a file that does not parse names nothing yet
            continue
        if block_key(library(module, filename, text, path, read).get(name)) != key:
            continue
        lines = Lines(text, encoding)
        symbols = index(module, lines.lines)
        spans = [u.span for u in symbols.uses if u.call and u.name == name]
        spans += [s.span for s in symbols.symbols if s.name == name and s.kind == "import"]
        own = block.path is not None and path == block.path or block.path is None and filename == block.file
        if own and include_declaration:
            spans.append(block.definition.name_span)
        found += [lsp.Location(uri, lines.range(s)) for s in sorted(set(spans), key=lambda s: (s.line, s.col))]
    return found
