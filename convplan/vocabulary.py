"""The words of the plan language, grouped as highlighters colour them: the Pygments lexer
(pygments_lexer.py) and the TextMate grammar (editors/make_grammar.py) read them here.
grammar/plan.lark is the source of truth; tests/test_pygments_lexer.py checks these are its keywords."""

from __future__ import annotations

STATEMENTS = ("input", "output", "residual", "shortcut", "branch", "repeat", "if", "elif", "else", "pass",
              "return", "sequential")  # `name = sequential:` (a keyword there only)
DECLARATIONS = ("plan", "block", "def")  # followed by the name they declare
NAMESPACE = ("import", "from")
WORD_OPERATORS = ("and", "or", "not", "in")
CONSTANTS = ("True", "False", "None")
KEYWORDS = (*STATEMENTS, *DECLARATIONS, *NAMESPACE, *WORD_OPERATORS, *CONSTANTS)

# The grammar's terminals (plan.lark), as regular expressions both Python's re and Oniguruma read
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
END = r"(?![A-Za-z0-9_])"  # a whole word: `input_proj` is a name, not `input`
FLOAT = r"(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+"
INT = r"[0-9]+(?:_[0-9]+)*"
UNKNOWN = rf"\?(?:{IDENT})?"
SINGLE_QUOTED = r"'[^'\\\n]*'"
DOUBLE_QUOTED = r'"[^"\\\n]*"'
OPERATORS = r"->|==|!=|<=|>=|<|>|\*\*|//|[-+*/%=]"
