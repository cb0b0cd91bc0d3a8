"""The analysed grammar is cached in the user's cache directory (never a shared temp folder),
and a damaged, foreign or unsafe cache never changes what is parsed."""

from __future__ import annotations

import logging
import os

import pytest

from convplan import parser

PLAN = "plan A:\n    input [N, 1, L]\n    Conv1d(4, 3)\n"


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """Build the Lark parser anew with XDG_CACHE_HOME in a temp dir; restore the normal one after."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CONVPLAN_NO_CACHE", raising=False)
    parser._lark.cache_clear()
    yield tmp_path / "convplan"
    parser._lark.cache_clear()


def parsed_call() -> str:
    parser._lark.cache_clear()
    return parser.parse_module(PLAN).plans[0].body[1].call.name


def test_the_cache_is_written_then_loaded(fresh, caplog):
    assert parsed_call() == "Conv1d"
    files = list(fresh.iterdir())
    assert len(files) == 1 and files[0].name.startswith("plan-") and files[0].stat().st_size > 1000
    assert fresh.stat().st_mode & 0o077 == 0  # private to the user
    with caplog.at_level(logging.DEBUG, logger="lark"):
        assert parsed_call() == "Conv1d"
    assert any("Loading grammar from cache" in r.getMessage() for r in caplog.records)


def test_a_damaged_cache_is_rebuilt(fresh):
    parsed_call()
    (cache,) = fresh.iterdir()
    cache.write_bytes(b"garbage\n" + os.urandom(64))
    assert parsed_call() == "Conv1d"
    assert cache.read_bytes().startswith(b"garbage") is False  # rewritten


def test_an_unsafe_directory_is_not_used(fresh):
    fresh.mkdir(mode=0o777)
    fresh.chmod(0o777)  # world-writable: someone else could plant a pickle
    assert parser._cache_file("grammar") is False
    assert parsed_call() == "Conv1d"
    assert list(fresh.iterdir()) == []


def test_caching_can_be_switched_off(fresh, monkeypatch):
    monkeypatch.setenv("CONVPLAN_NO_CACHE", "1")
    assert parser._cache_file("grammar") is False
    assert parsed_call() == "Conv1d"
    assert not fresh.exists()


def test_the_file_name_follows_the_grammar(fresh):
    assert parser._cache_file("a") != parser._cache_file("b")
    assert str(parser._cache_file("a")).startswith(str(fresh))
