"""The oracle for the highlighters' tests: the plan's tokens as the language's own lexer (Lark's, from
grammar/plan.lark) cuts them, each with what it is.  A highlighter must give each such token the matching
colour class over exactly its characters.

Lark's lexer here is context-free (every terminal at once, keywords reserved), as a highlighter is.  Text it
cannot lex (the golden syntax-error plans: `nn.Conv1d`, smart quotes) is stepped over one character at a
time and reported as "other".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lark.exceptions import UnexpectedCharacters
from lark.lexer import BasicLexer, LexerThread, TextSlice

from convplan import parser
from convplan.layers import REGISTRY
from convplan.merges import MERGES
from convplan.vocabulary import DECLARATIONS

ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted([*ROOT.glob("examples/**/*.plan"), *ROOT.glob("tests/golden/**/*.plan")])

CONSTANTS = {"TRUE", "FALSE", "NONE"}
SIMPLE = {"INT": "int", "FLOAT": "float", "STRING": "string", "UNKNOWN": "unknown"}

# Pieces of random "token soup" for the highlighters' property tests: joined at random, they make words
# that run together (`in` + `put`), numbers next to names, unclosed strings and stray characters.
PIECES = [
    "plan", "block", "import", "from", "input", "output", "residual", "shortcut", "branch", "repeat", "if", "elif",
    "else", "pass", "and", "or", "not", "in", "True", "False", "None",
    "Conv2d", "ReLU", "BatchNorm2d", "add", "cat", "x", "enc1", "kernel_size", "N", "input_proj", "planes", "inplace",
    "0", "32", "1_000", "0.5", "1e3", ".5", "2.", "'same'", '"zeros"', "?", "?pad", "# a comment",
    "->", "==", "//", "**", "%", "=", "(", ")", "[", "]", ",", ":", "...",
    " ", " ", "\n", "\n    ", "\\\n", ".", "'", "é", "\U0001F600",
]


@dataclass(frozen=True)
class Tok:
    kind: str  # keyword, constant, kind (a layer kind), merge, name, int, float, string, unknown, comment, other
    start: int
    end: int
    text: str


def keywords() -> set[str]:
    """The grammar's keywords: its quoted words (`"plan"`, `"residual"`, ...) and its constants."""
    return {t.pattern.value for t in parser._lark().terminals
            if t.pattern.type == "str" and re.fullmatch(r"[A-Za-z]+", t.pattern.value)}


def _lexer():
    """Lark's context-free lexer for the grammar (True, False and None are whole words, as the other keywords)."""
    return BasicLexer(parser._lark().lexer_conf)


def tokens(text: str) -> list[Tok]:
    lark = parser._lark()
    lexer = _lexer()
    words = {t.name for t in lark.terminals if t.pattern.type == "str" and t.pattern.value.isalpha()}
    found, start = [], 0
    while start < len(text):
        try:
            for t in LexerThread.from_text(lexer, TextSlice(text, start, len(text))).lex(None):
                found.extend(_classify(t, words))
            break
        except UnexpectedCharacters as exc:
            found.append(Tok("other", exc.pos_in_stream, exc.pos_in_stream + 1, text[exc.pos_in_stream]))
            start = exc.pos_in_stream + 1
    return _declared(found, text)


def _declared(found: list[Tok], text: str) -> list[Tok]:
    """The name a `plan`, `block` or `def` declares is a name whatever its spelling (`plan Conv2d`): both
    highlighters colour it as a definition, as they read the keyword, spaces or tabs, then the name."""
    out = list(found)
    for i in range(1, len(out)):
        before, tok = out[i - 1], out[i]
        if (tok.kind in ("kind", "merge") and before.kind == "keyword" and before.text in DECLARATIONS
                and re.fullmatch(r"[ \t\f]+", text[before.end:tok.start])):
            out[i] = Tok("name", tok.start, tok.end, tok.text)
    return out


def _classify(t, words: set[str]):
    if t.type == "_NL":  # newlines and comments
        for m in re.finditer(r"#[^\n]*", t.value):
            yield Tok("comment", t.start_pos + m.start(), t.start_pos + m.end(), m.group())
        return
    if t.type in CONSTANTS:
        kind = "constant"
    elif t.type in words:
        kind = "keyword"
    elif t.type == "NAME":
        kind = "kind" if t.value in REGISTRY else "merge" if t.value in MERGES else "name"
    elif t.type in SIMPLE:
        kind = SIMPLE[t.type]
    else:
        return  # punctuation, operators, whitespace: any colour will do
    yield Tok(kind, t.start_pos, t.end_pos, t.value)
