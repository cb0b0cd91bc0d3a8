"""Blocks a plan can call: those of its own file and those it imports.

`import "other.plan"` brings every block of that file, `from "blocks.plan" import A, B`
the named ones; paths are relative to the importing file.  Each file gets its own
namespace (a block resolves the blocks *its* file sees), cycles are refused, and every
problem is located in the file where it is written.  An import that fails brings no block but stops
nothing: the plan is checked without it, and a call of a name it should have brought says so.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from . import nodes as n
from .errors import Diagnostic, PlanError, Span, did_you_mean
from .layers import REGISTRY
from .merges import MERGES
from .opcall import PARAMETER
from .ops import OPS
from .scope import BlockSource, Namespace

MAX_FILES = 256  # files imported, directly or not
MAX_DEPTH = 64  # imports of imports of ...: each level is a few Python frames


class _Loader:
    """Loads the files a plan imports.  Nothing here raises for what a file says: each problem is recorded
    (`errors`, located where it is written) and the import that failed brings no block, so that the rest of
    the plan is still checked."""

    def __init__(self, main: str, read=None):
        self.main = main  # the importing file's name: its diagnostics need no source of their own
        self.read = read  # path -> text: an editor's unsaved buffers (None: every file from disk)
        self.spaces: dict[Path, tuple[dict, list] | None] = {}  # resolved path -> (namespace, own block names)
        self.stack: list[Path] = []  # files being loaded, for cycles
        self.started = 0  # files imported so far, loaded or being loaded
        self.errors: list[Diagnostic] = []

    def fail(self, code: str, message: str, span: Span, file: str, source: str, hint: str | None = None) -> None:
        self.errors.append(Diagnostic(code, message, span, file, (hint,) if hint else (),
                                      source=None if file == self.main else source))

    def namespace(self, module: n.Module, file: str, source: str, path: Path | None) -> Namespace:
        space = Namespace()
        for definition in (*module.blocks, *module.functions):
            self._own(space, definition, file, source, path)
        base = path.parent if path is not None else Path.cwd()
        for imp in module.imports:
            self._import(space, imp, base, file, source)
        for src in space.values():
            if src.file == file:
                src.namespace = space
        return space

    def _own(self, space: dict, block: n.BlockDef | n.FunctionDef, file: str, source: str, path: Path | None) -> None:
        clash = None
        what = "function" if isinstance(block, n.FunctionDef) else "block"
        if block.name in space:
            clash = f"{what} {block.name} is defined twice" if what == "block" or not isinstance(
                space[block.name].definition, n.BlockDef) else f"{block.name} is both a block and a function"
        elif block.name in REGISTRY:
            clash = f"{what} {block.name} has the name of a torch layer"
        elif block.name in MERGES:
            clash = f"{what} {block.name} has the name of the merge {block.name}()"
        elif block.name in OPS or block.name == PARAMETER:
            clash = f"{what} {block.name} has the name of the tensor operation {block.name}()"
        if clash:  # the first definition stands; a layer or merge keeps its name
            self.fail("E022", clash, block.name_span, file, source, "choose another name")
            return
        space[block.name] = BlockSource(block, file, source, path=path.resolve() if path is not None else None)

    def _import(self, space: Namespace, imp: n.Import, base: Path, file: str, source: str) -> None:
        loaded = self._target(imp, base, file, source)
        if loaded is None:  # reported: the names it would have brought are unknown, and their callers told why
            if imp.names is None:
                space.broken.append((imp.path, imp.span))
            for name in imp.names or ():
                space.failed.setdefault(name.id, (imp.path, imp.span))
            return
        theirs, own = loaded
        if imp.names is None:
            wanted = [(name, imp.span) for name in own]
        else:
            wanted = [(name.id, name.span) for name in imp.names]
        for name, span in wanted:
            if name not in theirs:
                self.fail("E021", f"{imp.path} has no block or function {name}", span, file, source,
                          did_you_mean(name, theirs) or f"it defines: {', '.join(sorted(theirs)) or 'nothing'}")
                space.failed.setdefault(name, (imp.path, imp.span))
            elif name in space and space[name] is not theirs[name]:
                self.fail("E022", f"block {name} is already defined here", span, file, source, "rename one of them")
            else:
                space[name] = theirs[name]

    def _target(self, imp: n.Import, base: Path, file: str, source: str) -> tuple[dict, list] | None:
        """The namespace of the file `imp` names, or None (reported) if it cannot be imported."""
        if not imp.path:  # `from "" import B` resolved to the folder: "cannot import : is a directory"
            return self.fail("E023", "cannot import an empty path: name the file", imp.path_span, file, source,
                             'as in from "blocks.plan" import B')
        try:
            target = (base / imp.path).resolve()
            target.stat()
        except (OSError, RuntimeError) as exc:  # a name too long, a symlink loop (RuntimeError on Python < 3.13)
            if not isinstance(exc, FileNotFoundError):
                reason = getattr(exc, "strerror", None) or "a symlink loop"
                self.fail("E023", f"cannot import {imp.path}: {reason.lower()}", imp.path_span, file, source)
                return None
        shown = os.path.normpath(Path(file).parent / imp.path) if not file.startswith("<") else str(target)
        return self._load(target, shown, imp, file, source)

    def _load(self, path: Path, shown: str, imp: n.Import, file: str, source: str) -> tuple[dict, list] | None:
        """The namespace of the file at `path` (`shown` is how diagnostics name it: as the import wrote it), or
        None (reported) if it cannot be imported."""
        if path in self.stack:
            chain = " -> ".join(p.name for p in [*self.stack[self.stack.index(path):], path])
            return self.fail("E020", f"import cycle: {chain}", imp.path_span, file, source)
        if path in self.spaces:  # a file that failed to import fails once: its own errors are not repeated
            return self.spaces[path]
        if self.started >= MAX_FILES:  # counted as they start: a chain finishes none until its end
            return self.fail("E023", f"more than {MAX_FILES} imported files", imp.path_span, file, source)
        if len(self.stack) > MAX_DEPTH:
            chain = " -> ".join(p.name for p in [*self.stack[:2], Path("..."), *self.stack[-2:], path])
            return self.fail("E023", f"imports nested more than {MAX_DEPTH} deep: {chain}", imp.path_span, file,
                             source)
        if not path.is_file():
            what = ("is a directory" if path.is_dir() else "is not a regular file" if path.exists()
                    else f"no such file ({path})")
            unsaved = file.startswith("<")  # standard input, or text given to the API: no folder of its own
            return self.fail("E023", f"cannot import {imp.path}: {what}", imp.path_span, file, source,
                             f"the imports of {file} are found from the current directory" if unsaved else None)
        self.started += 1
        self.spaces[path] = None  # until it has loaded
        from .files import read_source
        from .parser import parse_module

        text = self.read(path) if self.read is not None else None
        try:
            text = read_source(path) if text is None else text
        except PlanError as exc:  # unreadable, not UTF-8: said at the import, which is what the user can change
            return self.fail("E023", f"cannot import {imp.path}: {exc.diagnostics[0].message}", imp.path_span,
                             file, source)
        try:
            module = parse_module(text, shown)
        except PlanError as exc:  # its syntax errors are shown in it; the import brings nothing
            self.errors.extend(replace(d, source=text) for d in exc.diagnostics)
            return None
        self.stack.append(path)
        try:
            space = self.namespace(module, shown, text, path)
        finally:
            self.stack.pop()
        self.spaces[path] = (space, [d.name for d in (*module.blocks, *module.functions)])
        return self.spaces[path]


def library(module: n.Module, file: str, source: str, path: Path | None = None, read=None) -> Namespace:
    """The blocks a file's plans can call: name -> BlockSource.  `read(path)` gives the text of a file to
    import, or None to read it from disk (a language server passes its open documents).  Never raises for
    what the files say: the namespace's `errors` holds every import problem, in every file."""
    loader = _Loader(file, read)
    if path is not None:
        loader.stack.append(path.resolve())
    space = loader.namespace(module, file, source, path.resolve() if path is not None else None)
    space.errors = tuple(loader.errors)
    space.files = tuple(loaded[0] for loaded in loader.spaces.values() if loaded is not None)
    return space
