"""Completion from the registry and the file: layer kinds, merges and blocks where a statement starts,
a callee's keyword arguments inside its call (choices after `mode=`), the names in scope elsewhere, and
a file's blocks after `from "file.plan" import`.  The line is read as text: while one types, the file
rarely parses, so names come from the last version that did."""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as lsp

from ..errors import PlanError
from ..files import read_source
from ..layers import REGISTRY, REQUIRED, STR, LayerSpec
from ..merges import MERGES
from ..parser import parse_module
from ..show import show_value
from .document import Document
from .symbols import TENSORS

KEYWORDS = ("input", "output", "repeat", "if", "elif", "else:", "residual:", "shortcut:", "branch:")
STATEMENT = re.compile(r"^\s*(?:\w+\s*=\s*)?(\w*)$")
IMPORT = re.compile(r'^\s*from\s+"([^"]+)"\s+import\s+(?:\w+\s*,\s*)*(\w*)$')
ARG_VALUE = re.compile(r"(\w+)\s*=\s*['\"]?(\w*)$")
WORD = re.compile(r"(\w*)$")

K = lsp.CompletionItemKind


def complete(doc: Document, known: Document, line: int, col: int) -> list[lsp.CompletionItem]:
    """Items at (line, col) of `doc`; `known` is the last version of it that parsed (names come from there)."""
    prefix = doc.lines.line(line)[: col - 1]
    if m := IMPORT.match(prefix):
        return _file_blocks(doc, m.group(1))
    if STATEMENT.match(prefix):
        return _statement_start(known, line)
    callee = _open_call(prefix)
    if callee is not None:
        value = ARG_VALUE.search(prefix)
        if value and value.end() == len(prefix) and "," not in prefix[value.start():]:
            return _values(known, line, callee, value.group(1))
        return _arguments(known, line, callee, prefix)
    return _names(known, line)


def _open_call(prefix: str) -> str | None:
    """The name of the innermost call whose parenthesis is still open at the end of `prefix`."""
    depth = 0
    for i in range(len(prefix) - 1, -1, -1):
        ch = prefix[i]
        if ch in ")]":
            depth += 1
        elif ch in "([":
            if depth == 0:
                m = re.search(r"(\w+)\s*$", prefix[:i]) if ch == "(" else None
                return m.group(1) if m else None
            depth -= 1
    return None


def _statement_start(doc: Document, line: int) -> list[lsp.CompletionItem]:
    items = [_layer_item(spec) for spec in REGISTRY.values()]
    items += [lsp.CompletionItem(name, kind=K.Operator, detail=f"merge {name}({', '.join(a for a, _ in m.args)})")
              for name, m in MERGES.items()]
    items += [_block_item(name, src) for name, src in doc.blocks.items()]
    items += [lsp.CompletionItem(k, kind=K.Keyword) for k in KEYWORDS]
    return items + _names(doc, line, TENSORS)


def _layer_item(spec: LayerSpec) -> lsp.CompletionItem:
    args = ", ".join(a.name if a.default is REQUIRED else f"{a.name}={show_value(a.default)}" for a in spec.args)
    doc = f"torch.nn.{spec.name}" + (f"; `{spec.inferred}` is read from the input" if spec.inferred else "")
    return lsp.CompletionItem(spec.name, kind=K.Class, detail=f"{spec.name}({args})", documentation=doc)


def _block_item(name: str, src) -> lsp.CompletionItem:
    params = ", ".join(p.name for p in src.definition.params)
    return lsp.CompletionItem(name, kind=K.Module, detail=f"block {name}({params})",
                              documentation=f"{src.file}:{src.definition.name_span.line}")


def _arguments(doc: Document, line: int, callee: str, prefix: str) -> list[lsp.CompletionItem]:
    """The callee's keyword arguments not written yet, and the names a value can be."""
    written = set(re.findall(r"(\w+)\s*=", prefix[prefix.rfind(callee):]))
    if callee in REGISTRY:
        spec = REGISTRY[callee]
        params = [(a.name, "required" if a.default is REQUIRED else f"default {show_value(a.default)}")
                  for a in spec.args]
    elif callee in MERGES:
        params = [(a, f"default {d}") for a, d in MERGES[callee].args]
    elif callee in doc.blocks:
        params = [(p.name, "block parameter") for p in doc.blocks[callee].definition.params]
    else:
        params = []
    items = [lsp.CompletionItem(f"{name}=", kind=K.Property, detail=detail, insert_text=f"{name}=",
                                sort_text=f"0{i:03}") for i, (name, detail) in enumerate(params) if name not in written]
    kinds = ("param", "let", "size", "index", *TENSORS) if callee in MERGES or callee in doc.blocks else \
        ("param", "let", "size", "index")
    return items + _names(doc, line, kinds)


def _values(doc: Document, line: int, callee: str, arg: str) -> list[lsp.CompletionItem]:
    spec = REGISTRY.get(callee)
    choices = next((a.choices for a in spec.args if a.name == arg and a.kind == STR), ()) if spec else ()
    items = [lsp.CompletionItem(f"'{c}'", kind=K.EnumMember) for c in choices]
    return items + _names(doc, line, ("param", "let", "size", "index"))


def _names(doc: Document, line: int, kinds=("param", "let", "size", "index", *TENSORS)) -> list[lsp.CompletionItem]:
    index = doc.symbols
    if index is None:
        return []
    scope = index.scope_at(line)
    kind = {"param": K.Variable, "let": K.Variable, "size": K.Constant, "index": K.Variable}
    return [lsp.CompletionItem(s.name, kind=kind.get(s.kind, K.Field), detail=f"{s.kind} (line {s.span.line})")
            for s in index.in_scope(scope, line, kinds)]


def _file_blocks(doc: Document, path: str) -> list[lsp.CompletionItem]:
    """The blocks of the file an import names (relative to this one)."""
    base = Path(doc.filename).parent
    try:
        target = base / path
        module = parse_module(read_source(target), str(target))
    except (PlanError, OSError):
        return []
    return [lsp.CompletionItem(b.name, kind=K.Module, detail=f"block {b.name}({', '.join(p.name for p in b.params)})")
            for b in module.blocks]
