"""firstchar.singles: where a state's lexer takes a one-character terminal without its regex, the regex agrees."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from convplan import _grammar_tables as shipped
from convplan import firstchar, lalr

SPECS = lalr.from_data(shipped.LALR).lexers.specs
LEXERS = [(re.compile(pattern, flags), singles) for pattern, flags, _, singles in SPECS]
# what a plan is made of, and a few characters no terminal starts with
ALPHABET = st.sampled_from(list("abeilnorsdfxyzABCN_0123456789.+-*/%<>=!()[]{}:,\"'#\\ \t\f\r\n?@$~é"))


def test_the_shipped_singles_are_firstchars_and_cover_the_brackets():
    assert all(singles == {c: name for c, name in firstchar.singles(pattern, flags).items() if name not in keywords}
               for pattern, flags, keywords, singles in SPECS)
    met = {c for _, singles in LEXERS for c in singles}
    assert set("(),:=[]") <= met


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.lists(ALPHABET, min_size=1, max_size=8).map("".join))
def test_the_regex_finds_the_single_terminal_one_character_long(text):
    for regex, singles in LEXERS:
        for pos in range(len(text)):
            if text[pos] in singles:
                m = regex.match(text, pos)
                assert m is not None and (m.lastgroup, m.span()) == (singles[text[pos]], (pos, pos + 1))


def test_only_a_terminal_of_one_character_that_alone_can_start_there():
    assert firstchar.singles(r"(?P<EQ>=)|(?P<EQEQ>==)|(?P<COMMA>,)|(?P<NAME>[a-z]+)|(?P<A>a)|(?P<S>;)|(?P<T>x?;)",
                             0) == {",": "COMMA"}  # `=` may start `==`, `a` a NAME, `;` an `x?;`


def test_what_is_not_understood_gives_none():
    assert firstchar.singles("(?P<A>a)|(?P<B>b)", re.IGNORECASE) == {}
    assert firstchar.singles("a|b", 0) == {}  # not named groups
    assert firstchar.singles("(?P<A>a)", 0) == {}  # one terminal: not a `|`
    assert firstchar.singles("(?P<A>ab?)|(?P<B>b)", 0) == {"b": "B"}  # A: not one character long
    for anywhere in (".", "^c", r"\d", "[^a]", "(?=b)b"):  # a terminal that may start with any character
        assert firstchar.singles(f"(?P<A>{anywhere})|(?P<B>b)|(?P<C>c)", 0) == {}
