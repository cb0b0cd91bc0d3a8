"""Text -> syntax tree (`nodes.Module`).  Lark LALR; every failure becomes a PlanError.

descent.py reads the text first, by recursive descent over the same grammar; where it is not sure (a syntax
error, a word of the grammar used as a name), lalr.py's loop reads it exactly as Lark would.
Lark analyses the grammar; lalr.py runs the analysed tables.  Both analyses ship as data in
`_grammar_tables.py` (`python -m convplan.parser` writes it), and a text without syntax errors is
parsed from lalr.py's tables alone: Lark is imported only to report a syntax error, or where the
shipped tables do not match the grammar or the installed Lark (~40 ms of every `convplan check`
otherwise).
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from pathlib import Path

from . import descent, lalr
from . import nodes as n
from .errors import Span, fail
from .nodebuilders import NodeBuilders, TreeError
from .nogc import paused

MAX_SOURCE_CHARS = 1_000_000


def _grammar_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "plan.lark", here.parent / "grammar" / "plan.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("convplan's grammar/plan.lark is missing from this installation")


@functools.lru_cache(maxsize=1)
def _grammar() -> str:
    return _grammar_path().read_text()


class _DedentError(Exception):
    def __init__(self, token, expected: list[int]):
        self.token, self.expected = token, expected


class _Indentation:
    """PlanIndenter's settings, which the fast loop reads without importing Lark."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@functools.cache
def _lark_classes() -> dict:
    """The classes built on Lark's: made when Lark is first needed (a syntax error, parse_tree, new tables)."""
    from lark import Token, Transformer_NonRecursive
    from lark.indenter import Indenter

    class PlanIndenter(Indenter):
        NL_type = _Indentation.NL_type
        OPEN_PAREN_types = _Indentation.OPEN_PAREN_types
        CLOSE_PAREN_types = _Indentation.CLOSE_PAREN_types
        INDENT_type = _Indentation.INDENT_type
        DEDENT_type = _Indentation.DEDENT_type
        tab_len = _Indentation.tab_len

        def handle_NL(self, token):  # as Lark's, but a bad dedent keeps its position
            if self.paren_level > 0:
                return
            yield token
            indent_str = token.rsplit("\n", 1)[1]
            indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
            if indent > self.indent_level[-1]:
                self.indent_level.append(indent)
                yield Token.new_borrow_pos(self.INDENT_type, indent_str, token)
            else:
                levels = list(self.indent_level)
                while indent < self.indent_level[-1]:
                    self.indent_level.pop()
                    yield Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
                if indent != self.indent_level[-1]:
                    raise _DedentError(token, [lv for lv in levels if lv < levels[-1]] + [levels[-1]])

    class FromTree(Transformer_NonRecursive):
        """Lark's parse tree -> nodes, through the same `NodeBuilders` methods (the reference for the fast path)."""

        def __init__(self, nodes: NodeBuilders):
            super().__init__()
            self.nodes = nodes

        def __default__(self, data, children, meta):
            self.nodes.begin, self.nodes.end = getattr(meta, "start_pos", 0), getattr(meta, "end_pos", 0)
            children = [(str(c), Span.of(c)) if isinstance(c, Token) else c for c in children]  # as the fast loop's
            return getattr(self.nodes, data)(*children)

    return {"PlanIndenter": PlanIndenter, "_FromTree": FromTree}


def __getattr__(name: str):
    if name in ("PlanIndenter", "_FromTree"):
        return _lark_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


LARK_OPTIONS = dict(parser="lalr", propagate_positions=True, maybe_placeholders=False)


@functools.lru_cache(maxsize=1)
def _lark():
    """Lark's parser for grammar/plan.lark.  Analysing the grammar costs ~40 ms of every `convplan check`,
    so the analysis ships as data in `_grammar_tables.py` (written by `python -m convplan.parser`; plain
    literals, never a pickle or a file a user's environment writes); a grammar or a Lark that does not
    match it is analysed afresh."""
    import lark

    from . import _grammar_tables as tables

    grammar = _grammar()
    indenter = _lark_classes()["PlanIndenter"]()
    if tables.GRAMMAR_SHA256 == _digest(grammar) and tables.LARK_VERSION == lark.__version__:
        return lark.Lark._load_from_dict(tables.DATA, tables.MEMO, postlex=indenter)
    return lark.Lark(grammar, postlex=indenter, **LARK_OPTIONS)


def _digest(grammar: str) -> str:
    return hashlib.sha256(grammar.encode()).hexdigest()


def _lark_version() -> str | None:
    """The version of the Lark the import system would find first on sys.path, read from its package without
    importing it; None if it is not a plain directory there."""
    for entry in sys.path:
        init = Path(entry or ".") / "lark" / "__init__.py"
        try:
            source = init.read_text(encoding="utf-8")
        except OSError:
            continue
        found = re.search(r"^__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", source, re.M)
        return found.group(1) if found else None
    return None


def tables_source() -> str:
    """The text of `_grammar_tables.py`: Lark's analysis of the grammar and lalr.py's tables, as Python literals."""
    import lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    grammar = _grammar()
    fresh = lark.Lark(grammar, postlex=_lark_classes()["PlanIndenter"](), **LARK_OPTIONS)
    data, memo = fresh.memo_serialize([TerminalDef, Rule])
    data["options"].pop("postlex")  # an object: given again when the tables are loaded
    return ('"""Generated by `python -m convplan.parser` from grammar/plan.lark: Lark\'s analysis of the grammar, as\n'
            'data (see parser._lark), and the tables lalr.py runs (see parser._tables).  Do not edit; regenerate\n'
            'after changing the grammar, upgrading Lark or changing lalr.FORMAT."""\n\n'
            "# ruff: noqa\n"
            f"GRAMMAR_SHA256 = {_digest(grammar)!r}\nLARK_VERSION = {lark.__version__!r}\n"
            f"DATA = {data!r}\nMEMO = {memo!r}\n"
            f"LALR_FORMAT = {lalr.FORMAT!r}\nLALR = {lalr.data(lalr.tables(fresh))!r}\n")


@functools.lru_cache(maxsize=1)
def _tables() -> lalr.Tables | None:
    """lalr.py's tables, with the reducers of `NodeBuilders` made: part of loading the parser, once a process.  The
    shipped ones where they match the grammar, the installed Lark (its version read without importing it) and
    lalr.py's format; else read from a fresh analysis.  None where this Lark's internals are not understood."""
    from . import _grammar_tables as shipped

    tables = None
    if (shipped.GRAMMAR_SHA256 == _digest(_grammar()) and shipped.LARK_VERSION == _lark_version()
            and getattr(shipped, "LALR_FORMAT", None) == lalr.FORMAT):
        tables = lalr.from_data(shipped.LALR)
    if tables is None:
        try:
            tables = lalr.tables(_lark())
        except (lalr.Bail, AttributeError, KeyError, TypeError):  # another Lark's internals: use Lark.parse
            return None
    lalr.reducers(tables, NodeBuilders)
    return tables


@paused
def parse_module(text: str, filename: str = "<plan>") -> n.Module:
    """Parse a whole .plan file.  Raises PlanError (never anything else) for bad text."""
    if len(text) > MAX_SOURCE_CHARS:
        raise fail("E002", f"the file is too large ({len(text):,} characters; the limit is {MAX_SOURCE_CHARS:,})",
                   Span(1, 1, 1, 2), filename, text)
    if "\0" in text:
        at = text.index("\0")
        line, col = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise fail("E003", "the file contains a NUL character; is it a binary file?", Span(line, col, line, col + 1),
                   filename, text)
    body = text if text.endswith("\n") else text + "\n"
    nodes = NodeBuilders(filename, body)
    try:
        try:
            return _fast_parse(body, nodes)
        except (lalr.Bail, TreeError):
            pass  # a syntax error, most likely: Lark's parser reports it (before any error of a builder)
        from lark.exceptions import UnexpectedInput

        from . import syntax_errors

        try:
            tree = _lark().parse(body)
        except (UnexpectedInput, _DedentError) as exc:
            raise syntax_errors.report(_diagnose(exc, body, filename), text, filename,
                                       lambda t: _first_error(t, filename)) from None
        return _lark_classes()["_FromTree"](nodes).transform(tree)
    except TreeError as exc:
        raise fail(exc.code, exc.message, exc.span, filename, text) from None


def parse_tree(text: str, filename: str = "<plan>") -> n.Module:
    """As parse_module, through Lark's parse tree only (slower): the reference the fast path is tested against."""
    body = text if text.endswith("\n") else text + "\n"
    return _lark_classes()["_FromTree"](NodeBuilders(filename, body)).transform(_lark().parse(body))


def _fast_parse(body: str, nodes: NodeBuilders) -> n.Module:
    try:
        return descent.parse(body, nodes)
    except descent.Bail:
        pass  # not sure (a syntax error, a word of the grammar as a name): the LALR loop, exactly as Lark
    tables = _tables()
    if tables is None:
        raise lalr.Bail
    try:
        return lalr.parse(body, tables, lalr.callbacks(tables, nodes), nodes, _Indentation)
    except (KeyError, IndexError) as exc:  # tables that do not fit the text's states: Lark decides
        raise lalr.Bail from exc


# -- syntax errors (worded in syntax_errors.py) -----------------------------------------


def _diagnose(exc: Exception, text: str, filename: str):
    from . import syntax_errors

    if isinstance(exc, _DedentError):
        return syntax_errors.indentation(exc.token, exc.expected, text, filename)
    return syntax_errors.diagnose(exc, text, filename, _lark().terminals)


def _first_error(text: str, filename: str):
    """The first syntax error in `text`, or None (used to find the next error after one)."""
    from lark.exceptions import UnexpectedInput

    text = text if text.endswith("\n") else text + "\n"  # as parse_module: a last comment needs its newline
    try:
        _lark().parse(text)
    except (UnexpectedInput, _DedentError) as exc:
        return _diagnose(exc, text, filename)
    return None


if __name__ == "__main__":  # python -m convplan.parser: write _grammar_tables.py after a grammar change
    Path(__file__).with_name("_grammar_tables.py").write_text(tables_source(), encoding="utf-8")
