"""The analysed grammar ships as data (convplan/_grammar_tables.py), not as a cache a user's
environment could write: nothing is unpickled, and the tables can never be stale."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import lark
import pytest

from convplan import _grammar_tables as tables
from convplan import nodebuilders, parser

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted(ROOT.glob("examples/**/*.plan")) + sorted((ROOT / "tests" / "golden" / "errors").glob("*.plan"))


def test_the_tables_are_those_of_the_grammar():
    assert tables.GRAMMAR_SHA256 == parser._digest(parser._grammar_path().read_text()), \
        "grammar/plan.lark changed: run `python -m convplan.parser` to write convplan/_grammar_tables.py again"


def test_the_tables_are_plain_literals():
    text = Path(tables.__file__).read_text()
    module = ast.parse(text)
    for stmt in module.body[1:]:
        assert isinstance(stmt, ast.Assign)
        ast.literal_eval(stmt.value)  # no call, no name: data only


def test_nothing_is_unpickled(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("convplan unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    parser._lark.cache_clear()
    try:
        assert parser.parse_module("plan A:\n    input [N, 1, L]\n    Conv1d(4, 3)\n").plans[0].name == "A"
    finally:
        parser._lark.cache_clear()


@pytest.mark.skipif(tables.LARK_VERSION != lark.__version__, reason="tables written with another Lark")
def test_the_loaded_parser_equals_a_fresh_analysis():
    loaded = parser._lark()
    fresh = lark.Lark(parser._grammar_path().read_text(), postlex=parser.PlanIndenter(), **parser.LARK_OPTIONS)
    for path in CORPUS:
        text = path.read_text()
        body = text if text.endswith("\n") else text + "\n"
        results = []
        for p in (loaded, fresh):
            try:
                results.append(p.parse(body))
            except Exception as exc:  # noqa: BLE001 - the same refusal, by kind and place
                results.append((type(exc).__name__, getattr(exc, "line", None), getattr(exc, "column", None)))
        assert results[0] == results[1], path


def test_a_grammar_that_does_not_match_is_analysed_afresh(monkeypatch):
    monkeypatch.setattr(tables, "GRAMMAR_SHA256", "0" * 64)
    parser._lark.cache_clear()
    try:
        assert parser._lark().parse("plan A:\n    input [N, 3]\n").data == "start"
    finally:
        parser._lark.cache_clear()


def test_regenerating_reads_the_same():
    values = {stmt.targets[0].id: ast.literal_eval(stmt.value)
              for stmt in ast.parse(parser.tables_source()).body[1:]}
    assert values["GRAMMAR_SHA256"] == tables.GRAMMAR_SHA256
    assert len(values["MEMO"]) == len(tables.MEMO)


# -- lalr.py's tables ship in the same module: a check without syntax errors never imports Lark -----------


@pytest.mark.skipif(tables.LARK_VERSION != lark.__version__, reason="tables written with another Lark")
def test_the_shipped_lalr_tables_parse_as_a_fresh_analysis():
    """Lark numbers its states differently from run to run (set order): the tables are compared by what they do."""
    from convplan import lalr

    shipped = lalr.from_data(tables.LALR)
    fresh = lalr.tables(lark.Lark(parser._grammar_path().read_text(), postlex=parser.PlanIndenter(),
                                  **parser.LARK_OPTIONS))
    assert tables.LALR_FORMAT == lalr.FORMAT and shipped.rules == fresh.rules and len(shipped.actions) == len(
        fresh.actions)
    assert sorted(map(repr, shipped.lexers.specs)) == sorted(map(repr, fresh.lexers.specs))
    texts = [path.read_text() for path in CORPUS]
    texts += [t.replace("    ", "  ", 1) for t in texts] + [t[: len(t) // 2] for t in texts]  # some refused
    for text in texts:
        body = text if text.endswith("\n") else text + "\n"
        results = []
        for t in (shipped, fresh):
            nodes = nodebuilders.NodeBuilders("x.plan", body)
            try:
                results.append(lalr.parse(body, t, lalr.callbacks(t, nodes), nodes, parser.PlanIndenter))
            except lalr.Bail:
                results.append("bail")
            except nodebuilders.TreeError as exc:
                results.append(exc.code)
        assert results[0] == results[1]


def test_lalr_tables_that_do_not_hold_together_are_refused():
    import copy

    from convplan import lalr

    assert lalr.from_data({}) is None and lalr.from_data({"actions": 3}) is None
    broken = copy.deepcopy(tables.LALR)
    state, row = broken["actions"][0]
    row[next(iter(row))] = 10**6  # a shift to a state that does not exist
    assert lalr.from_data(broken) is None
    broken = copy.deepcopy(tables.LALR)
    broken["lexers"] = broken["lexers"][1:]  # a state without a lexer
    assert lalr.from_data(broken) is None


def test_a_check_without_syntax_errors_does_not_import_lark():
    import os
    import subprocess
    import sys

    code = ("import sys; from convplan import parser; "
            "parser.parse_module('plan A:\\n    input [N, 1, L]\\n    Conv1d(4, 3)\\n'); print('lark' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "False"


def test_lalr_tables_of_another_lark_are_read_afresh(monkeypatch):
    monkeypatch.setattr(tables, "LARK_VERSION", "0.0.0")
    parser._lark.cache_clear()
    parser._tables.cache_clear()
    try:
        assert parser._tables() is not None
        assert parser.parse_module("plan A:\n    input [N, 1, L]\n    Conv1d(4, 3)\n").plans[0].name == "A"
    finally:
        parser._lark.cache_clear()
        parser._tables.cache_clear()


def test_regenerating_reads_the_same_lalr_tables():
    values = {stmt.targets[0].id: ast.literal_eval(stmt.value)
              for stmt in ast.parse(parser.tables_source()).body[1:]}
    assert values["LALR_FORMAT"] == tables.LALR_FORMAT and values["LALR"]["rules"] == tables.LALR["rules"]
    assert len(values["LALR"]["actions"]) == len(tables.LALR["actions"])  # the states' numbers may differ
