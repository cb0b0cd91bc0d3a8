"""A Pygments lexer for `.plan` files, so that docs (Sphinx, MkDocs, GitHub-style renderers that use
Pygments) highlight plans: ```` ```plan ````.  Registered as the `pygments.lexers` entry point `plan`.

The words come from where the language defines them: the keywords are `grammar/plan.lark`'s
(tests/test_pygments_lexer.py compares), the layer kinds and merges are the registries' (no torch).
A character outside the language (a `.` in `nn.Conv2d`, a smart quote) is plain Text, not Error:
docs show wrong plans on purpose (docs/errors.md), and Sphinx drops the highlighting of a whole
block that has one Error token.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from .layers import REGISTRY
from .merges import MERGES

# grammar/plan.lark's keywords, by what they do
STATEMENTS = ("input", "output", "residual", "shortcut", "branch", "repeat", "if", "elif", "else", "pass")
DECLARATIONS = ("plan", "block")
NAMESPACE = ("import", "from")
WORD_OPERATORS = ("and", "or", "not", "in")
CONSTANTS = ("True", "False", "None")

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
END = r"(?![A-Za-z0-9_])"  # a whole word: `input_proj` is a name, not `input`
KEYWORDS = (*STATEMENTS, *DECLARATIONS, *NAMESPACE, *WORD_OPERATORS, *CONSTANTS)
NOT_KEYWORD = rf"(?!(?:{'|'.join(KEYWORDS)}){END})"


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
            (rf"({'|'.join(DECLARATIONS)})([ \t\f]+)({NOT_KEYWORD}{IDENT})", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (words(DECLARATIONS, suffix=END), Keyword.Declaration),
            (words(NAMESPACE, suffix=END), Keyword.Namespace),
            (words(STATEMENTS, suffix=END), Keyword),
            (words(WORD_OPERATORS, suffix=END), Operator.Word),
            (words(CONSTANTS, suffix=END), Keyword.Constant),
            (rf"\?(?:{IDENT})?", Name.Variable.Magic),  # `?`, `?pad`: solved by convplan
            (r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+", Number.Float),
            (r"[0-9]+(_[0-9]+)*", Number.Integer),
            (r"'[^'\\\n]*'", String.Single),
            (r'"[^"\\\n]*"', String.Double),
            (r"\.\.\.", Keyword.Pseudo),  # `input [..., C]` in a block's pattern
            (r"->|==|!=|<=|>=|<|>|\*\*|//|[-+*%=]", Operator),
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
