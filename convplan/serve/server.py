"""The wiring: one small function per LSP method, each reading the document's analysis.

Documents are analysed on open, change and save: a change a moment later (COALESCE_S), so that of the
changes sent while a check runs (typing) only the last is checked, or at once when a request needs it.
A document's diagnostics are published for the file each is in (an error in an imported block, for the
imported file); when a file changes or is saved, the open files that import it are checked again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..errors import PlanError
from ..files import read_source
from . import actions, complete, diagnostics, hover, inlay, navigate, workspace
from .document import Document, analyse_document, seen_from, uri_path
from .positions import Lines

COALESCE_S = 0.005  # a change waits this long for a newer one: enough to read the changes already sent

ENCODINGS = {lsp.PositionEncodingKind.Utf8: "utf-8", lsp.PositionEncodingKind.Utf32: "utf-32"}


class PlanServer(LanguageServer):
    def __init__(self):
        super().__init__("convplan", __version__)
        self.docs: dict[str, Document] = {}  # uri -> the analysis of its current text
        self.parsed: dict[str, Document] = {}  # uri -> the last analysis whose text parsed (for completion)
        self.published: dict[str, dict[str, list]] = {}  # document uri -> file uri -> its diagnostics there
        self.sizes: dict[str, int] = {}  # example sizes from the workspace settings (`convplan.sizes`)
        self.edits: dict[str, int] = {}  # uri -> changes received so far
        self.checked: dict[str, int] = {}  # uri -> the change its analysis in `docs` is of
        self.unpropagated: set[str] = set()  # changed documents whose importers are not checked again yet

    @property
    def encoding(self) -> str:
        return ENCODINGS.get(self.workspace.position_encoding, "utf-16")

    def source(self, uri: str) -> tuple[str, int | None] | None:
        """(text, version) of `uri`: the editor's, or for a document not open (a request may name one) its
        file's, read as `convplan check` reads it, never a FIFO, a device or a huge file; None if there is none."""
        document = self.workspace.text_documents.get(uri)
        if document is not None:
            return document.source, document.version
        text = _disk_text(uri)
        return None if text is None else (text, None)

    def analyse(self, uri: str, found: tuple[str, int | None] | None = None) -> Document:
        text, version = found or self.source(uri) or ("", None)
        doc = analyse_document(uri, text, version, self.encoding, self.sizes, self.read)
        self.docs[uri] = doc
        self.checked[uri] = self.edits.get(uri, 0)
        if doc.module is not None:
            self.parsed[uri] = doc
        self.publish(uri, diagnostics.by_file(doc))
        return doc

    def read(self, path: Path) -> str | None:
        """The editor's text of the file at `path` (resolved), if it is open: imports see unsaved changes."""
        for uri, document in self.workspace.text_documents.items():
            own = uri_path(uri)
            if own is not None and own.resolve() == path:
                return document.source
        return None

    def files(self, block) -> list[tuple[str, Path | None, str]]:
        """(uri, path, text) of every file that may name `block`: the open documents (the editor's text), the
        .plan files of the workspace folders and the block's own file."""
        out, seen = [], set()
        for uri, document in self.workspace.text_documents.items():
            path = uri_path(uri)
            path = path.resolve() if path is not None else None
            out.append((uri, path, document.source))
            seen.add(path or uri)
        roots = [p for p in (uri_path(f.uri) for f in self.workspace.folders.values()) if p is not None]
        if not roots and self.workspace.root_path:
            roots = [Path(self.workspace.root_path)]
        extra = [block.path] if block.path is not None else []
        for path in [*extra, *workspace.plan_files(roots)]:
            if path not in seen:
                seen.add(path)
                if (text := _disk_text(path.as_uri())) is not None:
                    out.append((path.as_uri(), path, text))
        return out

    def recheck_importers(self, *uris: str) -> None:
        """Check again (once each) the open documents that import one of the files at `uris`."""
        paths = {p.resolve() for p in map(uri_path, uris) if p is not None}
        for other, doc in list(self.docs.items()):
            if other not in uris and paths & doc.imported:
                self.analyse(other)

    def forget(self, uri: str) -> None:
        self.docs.pop(uri, None)
        self.parsed.pop(uri, None)
        self.publish(uri, {})
        self.published.pop(uri, None)

    def publish(self, origin: str, found: dict[str, list]) -> None:
        """Record what `origin`'s analysis found in each file, and publish each file it found something in, now
        or before: the union of what every open document found there."""
        before = self.published.get(origin, {})
        self.published[origin] = found
        order = [u for u in {**found, **before} if u != origin] + [origin]  # its own last: the others are out then
        for uri in order:
            merged, seen = [], set()
            for per_file in self.published.values():
                for d in per_file.get(uri, ()):
                    key = (d.range.start.line, d.range.start.character, d.code, d.message)
                    if key not in seen:
                        seen.add(key)
                        merged.append(d)
            version = self.docs[uri].version if uri == origin and uri in self.docs else None  # of the text checked
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=merged,
                                                                                version=version))

    def changed(self, uri: str) -> None:
        """A change: checked a moment later, unless a newer change arrives first (typing sends one per key;
        only the last is worth checking), or a request needs the analysis before."""
        self.edits[uri] = count = self.edits.get(uri, 0) + 1
        self.unpropagated.add(uri)
        try:
            asyncio.get_running_loop().call_later(COALESCE_S, self.check_change, uri, count)
        except RuntimeError:  # no event loop (called directly): check now
            self.check_change(uri, count)

    def check_change(self, uri: str, count: int) -> None:
        if self.edits.get(uri) != count or uri not in self.workspace.text_documents:
            return  # superseded by a newer change (checked in its turn), or closed
        if self.checked.get(uri) != count:
            self.analyse(uri)
        if uri in self.unpropagated:
            self.unpropagated.discard(uri)
            self.recheck_importers(uri)

    def doc(self, uri: str) -> Document:
        if uri in self.docs and self.checked.get(uri) == self.edits.get(uri, 0):
            return self.docs[uri]
        found = self.source(uri)
        if found is None:  # not open, and no readable plan file there: nothing to show (not stored)
            return analyse_document(uri, "", None, self.encoding, self.sizes, self.read)
        return self.analyse(uri, found)

    def shapes(self, uri: str) -> Document:
        """The analysis whose shapes `uri`'s lines show: its own, or for a file of blocks, that of an open plan
        calling them."""
        doc = self.doc(uri)
        if doc.plan is None and doc.library_only:
            for other in self.docs.values():
                if (view := seen_from(doc, other)) is not None:
                    return view
        return doc


def make_server() -> PlanServer:
    server = PlanServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: PlanServer, params: lsp.InitializeParams):
        options = params.initialization_options or {}
        ls.sizes = _sizes(options.get("sizes") if isinstance(options, dict) else None)

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: PlanServer, params: lsp.InitializedParams):
        """Ask to be told of .plan files changed on disk (by git, another editor, a script), where the client
        lets a server register for it (VS Code's extension sends them anyway: `synchronize.fileEvents`)."""
        client = ls.client_capabilities.workspace
        watched = client.did_change_watched_files if client else None
        if watched and watched.dynamic_registration:
            options = lsp.DidChangeWatchedFilesRegistrationOptions(watchers=[lsp.FileSystemWatcher(
                glob_pattern="**/*.plan")])
            ls.client_register_capability(lsp.RegistrationParams(registrations=[lsp.Registration(
                id="convplan-plan-files", method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options)]))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: PlanServer, params: lsp.DidChangeWatchedFilesParams):
        """Files changed, made or deleted on disk: the open documents importing them are checked again (a
        file open in the editor is read from the editor, so its change on disk changes nothing)."""
        ls.recheck_importers(*(c.uri for c in params.changes if c.uri not in ls.workspace.text_documents))

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def configuration(ls: PlanServer, params: lsp.DidChangeConfigurationParams):
        settings = params.settings if isinstance(params.settings, dict) else {}
        section = settings.get("convplan", settings)
        ls.sizes = _sizes(section.get("sizes") if isinstance(section, dict) else None)
        for uri in list(ls.docs):
            ls.analyse(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PlanServer, params: lsp.DidOpenTextDocumentParams):
        ls.analyse(params.text_document.uri)
        if params.text_document.text != _disk_text(params.text_document.uri):  # its importers read the editor's
            ls.recheck_importers(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: PlanServer, params: lsp.DidChangeTextDocumentParams):
        ls.changed(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: PlanServer, params: lsp.DidSaveTextDocumentParams):
        ls.analyse(params.text_document.uri)
        ls.unpropagated.discard(params.text_document.uri)
        ls.recheck_importers(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: PlanServer, params: lsp.DidCloseTextDocumentParams):
        ls.forget(params.text_document.uri)
        ls.recheck_importers(params.text_document.uri)  # they read the file from disk again

    @server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hint(ls: PlanServer, params: lsp.InlayHintParams):
        doc = ls.shapes(params.text_document.uri)
        if doc.plan is None:
            return []
        return inlay.hints(doc, params.range.start.line + 1, params.range.end.line + 1)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: PlanServer, params: lsp.HoverParams):
        doc = ls.shapes(params.text_document.uri)
        text = hover.hover(doc, *doc.lines.point(params.position))
        if text is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["(", ",", "=", " "]))
    def completion(ls: PlanServer, params: lsp.CompletionParams):
        uri = params.text_document.uri
        doc = ls.doc(uri)
        items = complete.complete(doc, ls.parsed.get(uri, doc), *doc.lines.point(params.position))
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: PlanServer, params: lsp.DefinitionParams):
        doc = ls.doc(params.text_document.uri)
        return navigate.definition(doc, *doc.lines.point(params.position))

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    def references(ls: PlanServer, params: lsp.ReferenceParams):
        doc = ls.doc(params.text_document.uri)
        point = doc.lines.point(params.position)
        block = navigate.block_at(doc, *point)
        if block is not None:  # a block: in every file that sees it
            return workspace.references(block, ls.files(block), ls.read, ls.encoding,
                                        params.context.include_declaration)
        return navigate.references(doc, *point, params.context.include_declaration)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: PlanServer, params: lsp.DocumentSymbolParams):
        return navigate.outline(ls.doc(params.text_document.uri))

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: PlanServer, params: lsp.DocumentFormattingParams):
        """The canonical layout (formatter.py) as one edit of the whole text; none for a text that does not
        parse (the editor keeps it as it is)."""
        from ..formatter import FormatError, format_text

        uri = params.text_document.uri
        found = ls.source(uri)
        if found is None:
            return None
        text = found[0]
        try:
            new = format_text(text, ls.doc(uri).filename)
        except FormatError:
            return None
        if new == text:
            return []
        last = text.rsplit("\n", 1)[-1]
        end = lsp.Position(text.count("\n"), Lines(last, ls.encoding).end_of(1).character)
        return [lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), end), new_text=new)]

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    def code_action(ls: PlanServer, params: lsp.CodeActionParams):
        doc = ls.doc(params.text_document.uri)
        return actions.quick_fixes(doc, params.range.start.line + 1, params.range.end.line + 1)

    return server


def _disk_text(uri: str) -> str | None:
    """The text of the file at `uri`, read as `convplan check` reads it (files.read_source); None if it cannot be."""
    path = uri_path(uri)
    try:
        return read_source(path) if path is not None else None
    except PlanError:
        return None


def _sizes(value) -> dict[str, int]:
    """`{"H": 224}` from the settings, keeping only names with positive integer sizes."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and k.isidentifier()
            and isinstance(v, int) and not isinstance(v, bool) and v > 0}


__all__ = ["PlanServer", "make_server"]
