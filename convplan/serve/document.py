"""One open document, analysed once per edit: convplan's parse and check (the same steps and the same
diagnostics as `convplan check`), the syntax tree, the blocks the file can call, and what each line
made.  Every feature reads it; the costlier parts (the symbol index, MACs) are made on first use.

A file of blocks only is a library for importing: it is parsed and its imports resolved, but it is not
refused for having no plan (E010), as `convplan check` would refuse it; its lines show the shapes of the
calls of an open plan that imports it (`seen_from`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlparse

from .. import _front
from .. import nodes as n
from ..check import analyse
from ..errors import PlanError
from ..imports import library
from ..parser import parse_module
from ..plan import Plan, Result
from ..scope import Made
from .positions import Lines
from .symbols import Index, index

SIZES = re.compile(r"^[ \t]*#[ \t]*sizes:(.*)$", re.MULTILINE)
PAIR = re.compile(r"([A-Za-z_]\w*)\s*=\s*(\d{1,9})\b")


def uri_path(uri: str) -> Path | None:
    """The file a `file:` URI names, or None for another scheme (an unsaved buffer)."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


@dataclass
class Document:
    uri: str
    filename: str  # as the diagnostics name it: the path, or the URI of an unsaved buffer
    text: str
    result: Result
    module: n.Module | None  # None when the text does not parse
    blocks: dict  # block name -> scope.BlockSource: the blocks this file can call
    lines: Lines
    version: int | None = None
    settings_sizes: dict = field(default_factory=dict)
    read: object = field(default=None, repr=False)  # path -> the editor's text of that file, or None (disk)

    @property
    def plan(self) -> Plan | None:
        return self.result.plan

    @property
    def library_only(self) -> bool:
        return self.module is not None and not self.module.plans and bool(self.module.blocks or self.module.functions)

    @cached_property
    def trace(self) -> tuple[Made, ...]:
        """What each statement of this file made and which unknown each `?` is (scope.Made), in order."""
        if self.plan is None:
            return ()
        return tuple(m for m in self.plan._checked.trace if m.file == self.filename)

    @cached_property
    def made(self) -> dict[int, list[Made]]:
        """Line -> the statements that start there, each time one ran (a block's lines run at every call)."""
        by_line: dict[int, list[Made]] = {}
        for m in self.trace:
            if m.sym is None:
                by_line.setdefault(m.span.line, []).append(m)
        return by_line

    @cached_property
    def symbols(self) -> Index | None:
        return index(self.module, self.lines.lines) if self.module is not None else None

    @cached_property
    def macs(self) -> dict[str, object]:
        """Node name -> its multiply-accumulates (a formula), for the kinds that have weights."""
        if self.plan is None:
            return {}
        from ..cost import macs

        macs(self.plan.graph)
        return {node.name: node.meta["macs"] for node in self.plan.graph.nodes if node.meta.get("macs") is not None}

    @cached_property
    def imported(self) -> set[Path]:
        """Every file whose blocks this one calls, directly or through another file, and every file it names in
        an import (one that failed to import included: fixing it changes this file's diagnostics)."""
        found: set[Path] = set()
        own = uri_path(self.uri)
        if self.module is not None and own is not None:
            found.update((own.parent / imp.path).resolve() for imp in self.module.imports)
        todo = list(self.blocks.values())
        while todo:
            src = todo.pop()
            if src.path is not None and src.path not in found:
                found.add(src.path)
                todo.extend(src.namespace.values())
        found.discard(own.resolve() if own else None)
        return found

    def sizes(self) -> dict[str, int]:
        """Example sizes for hover: the workspace's, then a `# sizes: H=224, W=224` comment in the file."""
        found = dict(self.settings_sizes)
        for m in SIZES.finditer(self.text):
            found.update((k, int(v)) for k, v in PAIR.findall(m.group(1)) if int(v) > 0)
        return found


def seen_from(library_doc: Document, importer: Document) -> Document | None:
    """A file of blocks as a plan that calls them sees it: `importer`'s analysis over the library's text, so
    its lines get the shapes of each call.  None if `importer` calls none of its blocks."""
    if importer.plan is None or not any(m.file == library_doc.filename for m in importer.plan._checked.trace):
        return None
    return replace(importer, uri=library_doc.uri, filename=library_doc.filename, text=library_doc.text,
                   lines=library_doc.lines, module=library_doc.module, blocks=library_doc.blocks)


def analyse_document(uri: str, text: str, version: int | None = None, encoding: str = "utf-16",
                     settings_sizes: dict | None = None, read=None) -> Document:
    """`convplan.analyse` of the text, keeping what the features need besides the Result.  `read(path)`:
    the text of an imported file open in the editor (None: read it from disk)."""
    path = uri_path(uri)
    filename = str(path) if path is not None else uri
    lines = Lines(text, encoding)

    def doc(result, module=None, blocks=None) -> Document:
        return Document(uri, filename, text, result, module, blocks or {}, lines, version, dict(settings_sizes or {}),
                        read)

    try:
        module = parse_module(text, filename)
    except PlanError as exc:
        return doc(Result(None, tuple(exc.diagnostics)))
    if not module.plans and (module.blocks or module.functions):
        blocks = library(module, filename, text, path, read)
        return doc(Result(None, blocks.errors), module, blocks)
    try:
        definition, blocks = _front(text, filename, module, read)
    except PlanError as exc:
        return doc(Result(None, tuple(exc.diagnostics)), module)
    checked = analyse(definition, text, filename, {}, blocks)
    return doc(Result(Plan(definition, checked, text, filename, {}), checked.diagnostics), module, blocks)
