"""The Pygments lexer colours every token of every example and golden plan as the language's own lexer
(Lark's, from grammar/plan.lark) cuts it: keywords, layer kinds, names, numbers, strings, comments; never
an Error token.  Random token soup must agree too."""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint

import pytest
from _plan_tokens import PIECES, PLANS, ROOT, keywords, tokens
from hypothesis import given, settings
from hypothesis import strategies as st
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String, Text, Whitespace

from convplan import pygments_lexer as pl
from convplan.layers import REGISTRY
from convplan.vocabulary import KEYWORDS

EXPECTED = {  # oracle kind -> does this Pygments token type fit it
    "keyword": lambda t: (t in Keyword and t not in Keyword.Constant) or t in Operator.Word,
    "constant": lambda t: t in Keyword.Constant,
    "kind": lambda t: t is Name.Builtin or t in (Name.Variable, Name.Attribute),  # `Conv2d = ...` names a tensor
    "merge": lambda t: t in Name,
    "name": lambda t: t in Name and t is not Name.Builtin and t not in Name.Variable.Magic,
    "int": lambda t: t is Number.Integer,
    "float": lambda t: t is Number.Float,
    "string": lambda t: t in String,
    "unknown": lambda t: t is Name.Variable.Magic,
    "comment": lambda t: t is Comment.Single,
    "other": lambda t: t is Text,
}


def lex(text: str) -> dict[int, tuple]:
    """start offset -> (token type, end offset)."""
    lexer = pl.PlanLexer(stripnl=False, ensurenl=False)
    out, end = {}, 0
    for start, ttype, value in lexer.get_tokens_unprocessed(text):
        assert start == end, "tokens must cover the text in order"
        end = start + len(value)
        out[start] = (ttype, end)
    assert end == len(text)
    return out


def agree(text: str) -> None:
    got = lex(text)
    assert not [t for t, _ in got.values() if t in Error], text
    for tok in tokens(text):
        ttype, end = got.get(tok.start, (None, None))
        assert end == tok.end and EXPECTED[tok.kind](ttype), (
            f"{tok.kind} {tok.text!r} at {tok.start}: Pygments gave {ttype} up to {end}\n{text}")


@pytest.mark.parametrize("path", PLANS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_plan_lexes_as_the_grammar_cuts_it(path):
    text = path.read_text(encoding="utf-8")
    agree(text)
    if "golden" not in path.parts:  # valid plans: every character is the language's, none falls to Text
        assert not [(s, e) for s, (t, e) in lex(text).items() if t is Text]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_random_token_soup_agrees_with_the_grammar(text):
    agree(text)


DECLARED_AS_KINDS = ["plan Conv2d", "plan Conv2d:\n    input [N, 3, H, W]\n", "block add(x):\n    pass\n",
                     "plan\tReLU", "plan \\\nConv2d"]


@pytest.mark.parametrize("text", DECLARED_AS_KINDS)
def test_a_declared_name_spelled_as_a_layer_kind_or_merge_is_a_name(text):
    """CI's token soup drew `plan Conv2d`: the highlighter colours a declaration's name as one (Name.Class),
    the oracle had called it a layer kind; the oracle now reads the declaration as both highlighters do."""
    agree(text)


def test_the_words_are_the_grammars_and_the_registrys():
    assert set(KEYWORDS) == keywords() and len(KEYWORDS) == len(set(KEYWORDS))
    text = "\n".join(f"    {kind}()" for kind in REGISTRY)
    got = lex(text)
    assert sum(1 for t, _ in got.values() if t is Name.Builtin) == len(REGISTRY)
    assert not any(t in Whitespace and t is not Whitespace for t, _ in got.values())


def test_the_entry_point_names_this_lexer_and_pygments_finds_it(monkeypatch):
    """Through pyproject's entry point, as an installed convplan offers it (this checkout may not be the one
    installed, so the entry point is handed to Pygments' plugin loader directly)."""
    import pygments.lexers
    import pygments.plugin

    section = (ROOT / "pyproject.toml").read_text().split('[project.entry-points."pygments.lexers"]\n')[1]
    target = re.match(r'plan = "([^"]+)"\n', section).group(1)  # tomllib is Python 3.11+
    entry = EntryPoint("plan", target, "pygments.lexers")
    monkeypatch.setattr(pygments.plugin, "iter_entry_points",
                        lambda group: [entry] if group == pygments.plugin.LEXER_ENTRY_POINT else [])
    assert type(pygments.lexers.get_lexer_by_name("plan")) is pl.PlanLexer
    assert type(pygments.lexers.get_lexer_for_filename("unet.plan")) is pl.PlanLexer


def test_highlighting_and_drawing_never_import_torch():
    """The lexer reads the registry, and `convplan draw` the checked graph: neither needs torch."""
    from test_no_torch import assert_no_torch

    assert_no_torch("from convplan.pygments_lexer import PlanLexer\n"
                    "assert list(PlanLexer().get_tokens('plan P:\\n    Conv2d(3)\\n'))")
    assert_no_torch("import convplan.cli\nassert convplan.cli.main(['draw', 'examples/resnet18.plan']) == 0")
