"""A Pygments lexer for `.plan` files, so that docs (Sphinx, MkDocs, GitHub-style renderers that use
Pygments) highlight plans: ```` ```plan ````.  Registered as the `pygments.lexers` entry point `plan`.

The words come from where the language defines them: the keywords are `grammar/plan.lark`'s
(vocabulary.py; tests/test_pygments_lexer.py compares), the layer kinds and merges are the registries' (no torch).
A character outside the language (a `.` in `nn.Conv2d`, a smart quote) is plain Text, not Error:
docs show wrong plans on purpose (docs/errors.md), and Sphinx drops the highlighting of a whole
block that has one Error token.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from . import vocabulary as v
from .layers import REGISTRY
from .merges import MERGES
from .vocabulary import END, IDENT, KEYWORDS

NOT_KEYWORD = rf"(?!(?:{'|'.join(KEYWORDS)}){END})"
DECLARED = rf"({'|'.join(v.DECLARATIONS)})([ \t\f]+)({NOT_KEYWORD}{IDENT})"  # `plan UNet`, `block Up`


class PlanLexer(RegexLexer):
    """convplan's plan language."""

    name = "convplan plan"
    aliases = ["plan", "convplan"]
    filenames = ["*.plan"]
    mimetypes = ["text/x-convplan-plan"]

    tokens = {
        "root": [
            (r"\(", Punctuation, "call"),
            include("common"),
            (rf"{IDENT}(?=[ \t\f]*=(?!=))", Name.Variable),  # `enc1 = ...`, `hidden = expand * C`
            include("names"),
        ],
        "call": [  # inside (...): `name=` is a keyword argument; parentheses nest
            (r"\(", Punctuation, "#push"),
            (r"\)", Punctuation, "#pop"),
            include("common"),
            (rf"{IDENT}(?=[ \t\f]*=(?!=))", Name.Attribute),
            include("names"),
        ],
        "common": [
            (r"[ \t\f]+|\r?\n", Whitespace),
            (r"\\[ \t\f]*\r?\n", Whitespace),  # a line continuation
            (r"#[^\n]*", Comment.Single),
            (DECLARED, bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (words(v.DECLARATIONS, suffix=END), Keyword.Declaration),
            (words(v.NAMESPACE, suffix=END), Keyword.Namespace),
            (words(v.STATEMENTS, suffix=END), Keyword),
            (words(v.WORD_OPERATORS, suffix=END), Operator.Word),
            (words(v.CONSTANTS, suffix=END), Keyword.Constant),
            (v.UNKNOWN, Name.Variable.Magic),  # `?`, `?pad`: solved by convplan
            (v.FLOAT, Number.Float),
            (v.INT, Number.Integer),
            (v.SINGLE_QUOTED, String.Single),
            (v.DOUBLE_QUOTED, String.Double),
            (r"\.\.\.", Keyword.Pseudo),  # `input [..., C]` in a block's pattern
            (v.OPERATORS, Operator),
            (r"[\[\],:)]", Punctuation),
        ],
        "names": [
            (words(tuple(REGISTRY), suffix=END), Name.Builtin),  # layer kinds
            (words(tuple(MERGES), suffix=r"(?=[ \t\f]*\()"), Name.Builtin.Pseudo),  # add(...), cat(dim=1):
            (rf"{IDENT}(?=[ \t\f]*\()", Name.Function),  # a block's call
            (IDENT, Name),
            (r".", Text),  # outside the language: see the module's docstring
        ],
    }
