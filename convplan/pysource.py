"""Writing Python source as ruff formats it: legal names, integer expressions and
conditions from sympy, literals, and a small layout engine for long lines.

codegen.py decides what to write; this file decides how it reads.  The layout follows
ruff's order of preference (flat; brackets opened with their items on one line; one item
per line with a trailing comma; operator chains split before the operators), and
tests/test_codegen.py compares it with `ruff format` at several line widths.
"""

from __future__ import annotations

import builtins
import keyword
import math
import textwrap
from dataclasses import dataclass

import sympy

from .shapes import FloorDiv, IntMod, to_expr

TAB = "    "


# -- names -------------------------------------------------------------------------------


class Namespace:
    """Hands out legal, unique identifiers (after torch.fx's `_Namespace`): never a keyword,
    a dunder or, unless allowed, a builtin; a clash gets a `_1`, `_2`, ... suffix."""

    def __init__(self, reserved=(), allow_builtins: bool = False):
        self._taken = set(reserved)
        self._allow_builtins = allow_builtins

    def create(self, base: str) -> str:
        base = _legal(base)
        name, i = base, 0
        while not self._free(name):
            i += 1
            name = f"{base}_{i}"
        self._taken.add(name)
        return name

    def release(self, name: str) -> None:
        """Give a name back (a class that was not written after all)."""
        self._taken.discard(name)

    def taken(self, name: str) -> bool:
        return name in self._taken

    def _free(self, name: str) -> bool:
        if name in self._taken or keyword.iskeyword(name) or keyword.issoftkeyword(name):
            return False
        if name.startswith("__") and name.endswith("__"):
            return False
        return self._allow_builtins or not hasattr(builtins, name)


def _legal(base: str) -> str:
    name = "".join(c if (c.isascii() and (c.isalnum() or c == "_")) else "_" for c in base)
    if name.startswith("__"):  # a class mangles `__name`: `__init__(self, __L=1)` takes no `__L=`
        name = "_" + name.lstrip("_")
    if name in ("", "_"):
        return "v"
    return f"_{name}" if name[0].isdigit() else name


# -- literals and expressions ------------------------------------------------------------

# Python's precedence levels, loosest first.
OR, AND, NOT, CMP, ADD, MUL, UNARY, POW, ATOM = range(9)
NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "==": "!=", "!=": "=="}


class Printer:
    """sympy integer expressions and conditions -> Python source in ruff's format
    (`32 * (L // 2)`), with symbols renamed through `names`.  `doc` gives the same text as
    an operator chain (`Ops`) that the layout may split across lines."""

    def __init__(self, names: dict[str, str]):
        self.names = names

    def __call__(self, e) -> str:
        return self.expr(e)[0]

    def expr(self, e) -> tuple[str, int]:
        """(source, precedence level) of `e`."""
        e = to_expr(e)
        chain = self._chain(e, self.wrap)
        if chain is not None:
            items, ops, prec = chain
            return items[0] + "".join(f" {op} {item}" for op, item in zip(ops, items[1:], strict=True)), prec
        for cls in type(e).__mro__:  # Integer subclasses (One, Zero, ...), relationals
            method = getattr(self, f"_{cls.__name__}", None)
            if method:
                return method(e)
        raise ValueError(f"codegen cannot print {type(e).__name__}: {e}")

    def doc(self, e):
        """`e` as a layout doc: an `Ops` chain where `e` is one, else its text."""
        e = to_expr(e)
        chain = self._chain(e, self._operand_doc)
        if chain is None:
            return self._call_doc(e) or self(e)
        return Ops(tuple(chain[0]), tuple(chain[1]), chain[2])

    def wrap(self, e, level: int) -> str:
        """`e` as an operand that must bind at least as tightly as `level`."""
        text, prec = self.expr(e)
        return f"({text})" if prec < level else text

    def _operand_doc(self, e, level: int):
        prec = self.expr(e)[1]
        return Brackets("", (self.doc(e),)) if prec < level else self.doc(e)

    def _call_doc(self, e):
        """Max/Min as calls, `-(...)` as brackets: splittable where the text has brackets."""
        if isinstance(e, (sympy.Max, sympy.Min)):
            return Brackets(type(e).__name__.lower(), tuple(self.doc(a) for a in e.args))
        if e.is_Mul and e.as_coeff_Mul()[0] == -1:
            return Pre("-", self._operand_doc(-e, POW + 1 if (-e).is_Pow else UNARY))
        return None

    def _chain(self, e, operand):
        """(operands, operators, level) for a binary-operator chain, else None."""
        if e.is_Add:
            terms = e.as_ordered_terms()
            items, ops = [operand(terms[0], ADD)], []
            for t in terms[1:]:
                negative = t.as_coeff_Mul()[0].is_negative
                ops.append("-" if negative else "+")
                items.append(operand(-t if negative else t, MUL))
            return items, ops, ADD
        if e.is_Mul:
            c, rest = e.as_coeff_Mul()
            if not c.is_Integer:
                raise ValueError(f"codegen needs integer expressions, got {e}")
            if c == -1:
                return None  # unary minus
            factors = rest.as_ordered_factors()
            items = ([] if c == 1 else [str(int(c))])
            items += [operand(f, MUL if not items and i == 0 else MUL + 1) for i, f in enumerate(factors)]
            ops = ["*"] * (len(items) - 1)
            if isinstance(items[0], Ops) and items[0].level == MUL:  # `L // 2 * H`: one chain at the level of *
                items, ops = [*items[0].items, *items[1:]], [*items[0].ops, *ops]
            return items, ops, MUL
        if isinstance(e, (FloorDiv, IntMod)):  # left-associative at the level of *
            a, b = e.args
            left = operand(a, MUL)
            same = isinstance(left, Ops) and left.level == MUL
            items, ops = (list(left.items), list(left.ops)) if same else ([left], [])
            return items + [operand(b, MUL + 1)], ops + ["//" if isinstance(e, FloorDiv) else "%"], MUL
        if e.is_Pow and e.exp.is_Integer and e.exp > 0 and not (e.base.is_Symbol or e.base.is_Integer):
            return [operand(e.base, POW + 1), str(e.exp)], ["**"], POW  # `L**2` hugs; `(L + 1) ** 2` splits
        if isinstance(e, sympy.Rel) and e.rel_op in NEGATED:  # comparisons chain: operands bind tighter
            return [operand(e.lhs, CMP + 1), operand(e.rhs, CMP + 1)], [e.rel_op], CMP
        return None

    def _Integer(self, e):
        return str(int(e)), (ATOM if e >= 0 else UNARY)

    def _Rational(self, e):
        raise ValueError(f"codegen needs integer expressions, got {e}")

    def _Symbol(self, e):
        return self.names.get(e.name, e.name), ATOM  # sizes that are not arguments keep their names

    def _Mul(self, e):  # only -x reaches here; ruff writes -(L**2) for -L**2
        rest = -e
        return f"-{self.wrap(rest, POW + 1 if rest.is_Pow else UNARY)}", UNARY

    def _Pow(self, e):
        base, exp = e.args
        if not (exp.is_Integer and exp > 0):
            raise ValueError(f"codegen needs integer expressions, got {e}")
        left = self.wrap(base, POW + 1)
        simple = base.is_Symbol or (base.is_Integer and base >= 0)
        return (f"{left}**{exp}" if simple else f"{left} ** {exp}"), POW

    def _Max(self, e):
        return f"max({', '.join(self(a) for a in e.args)})", ATOM

    def _Min(self, e):
        return f"min({', '.join(self(a) for a in e.args)})", ATOM

    def negation(self, cond):
        """The doc of `not cond`: a plain comparison where there is one (sympy would evaluate it)."""
        if isinstance(cond, sympy.Rel) and cond.rel_op in NEGATED:
            return self.doc(sympy.Rel(cond.lhs, cond.rhs, NEGATED[cond.rel_op], evaluate=False))
        return f"not {self.wrap(cond, NOT)}"

    def _And(self, e):
        return " and ".join(self.wrap(a, AND + 1) for a in e.args), AND

    def _Or(self, e):
        return " or ".join(self.wrap(a, OR + 1) for a in e.args), OR

    def _Not(self, e):
        return f"not {self.wrap(e.args[0], NOT)}", NOT

    def _BooleanTrue(self, e):
        return "True", ATOM

    def _BooleanFalse(self, e):
        return "False", ATOM


def str_literal(s: str, prefix: str = "") -> str:
    """A string literal with ruff's quotes: double, unless single quotes need fewer escapes."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    body = "".join(f"\\{c}" if c == quote else c if c in "\"'" else repr(c)[1:-1] for c in s)
    return f"{prefix}{quote}{body}{quote}"


def float_literal(v: float) -> str:
    if math.isfinite(v):
        return repr(v)
    return f"float({str_literal(repr(v))})"  # inf, -inf, nan have no literal


def value_source(v, expr: Printer) -> str:
    """A resolved layer argument as Python source."""
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, str):
        return str_literal(v)
    if isinstance(v, float):
        return float_literal(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (tuple, list)):
        items = ", ".join(value_source(x, expr) for x in v)
        if isinstance(v, list):
            return f"[{items}]"
        return f"({items},)" if len(v) == 1 else f"({items})"
    if isinstance(v, sympy.Basic):
        return expr(v)
    raise ValueError(f"codegen cannot write the value {v!r}")


def comment_text(s: str) -> str:
    """Text safe inside a comment or a docstring: one line, ASCII, no quote runs."""
    return s.encode("ascii", "backslashreplace").decode("ascii").replace("\n", "\\n").replace('"""', '\\"""')


# -- layout ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Brackets:
    """`head(item, item)`: a call, a list, a signature; `bare`: flat without the brackets
    (`return a, b`, which splits as `return (...)`)."""

    head: str
    items: tuple
    open: str = "("
    close: str = ")"
    bare: bool = False


@dataclass(frozen=True)
class Ops:
    """`a + b - c`: operands (strings or nested `Ops`) and the operators between them, all
    of one precedence `level`."""

    items: tuple
    ops: tuple[str, ...]
    level: int = 0


@dataclass(frozen=True)
class Pre:
    """`text` glued to a doc: `padding=...` in a call, unary `-...`."""

    text: str
    value: object


def flat(doc) -> str:
    if isinstance(doc, Brackets):
        inner = ", ".join(flat(i) for i in doc.items)
        return doc.head + (inner if doc.bare else f"{doc.open}{inner}{doc.close}")
    if isinstance(doc, Ops):
        return flat(doc.items[0]) + "".join(f" {op} {flat(i)}" for op, i in zip(doc.ops, doc.items[1:], strict=True))
    if isinstance(doc, Pre):
        return doc.text + flat(doc.value)
    return doc


def layout(prefix: str, doc, suffix: str, depth: int, width: int, enclosed: bool = False) -> list[str]:
    """Lines for `prefix + doc + suffix` at `depth`, in ruff's order of preference: flat;
    brackets opened with the items on one line of their own; one item per line with a
    trailing comma.  An operator chain splits before its operators, inside parentheses
    that it gets unless `enclosed` in brackets already."""
    indent = TAB * depth
    text = prefix + flat(doc) + suffix
    if len(indent) + len(text) <= width or isinstance(doc, str):
        return [indent + text]
    if isinstance(doc, Pre):
        return layout(prefix + doc.text, doc.value, suffix, depth, width, enclosed)
    if isinstance(doc, Ops):
        if not enclosed:
            return _unenclosed(prefix, doc, suffix, depth, width)
        last = len(doc.items) - 1
        return [line for i, item in enumerate(doc.items)
                for line in layout(prefix if i == 0 else f"{doc.ops[i - 1]} ", item, suffix if i == last else "",
                                   depth, width, True)]
    head = prefix + doc.head + doc.open
    if prefix.endswith(" = ") and (len(indent + head) > width or not doc.items):
        # `target = (` / the call / `)`: ruff's choice when the call cannot open on the line
        return [f"{indent}{prefix}("] + layout("", doc, "", depth + 1, width, True) + [f"{indent}){suffix}"]
    if not doc.items:
        return [indent + text]
    return [indent + head] + _bracket_body(doc, depth, width) + [indent + doc.close + suffix]


def _unenclosed(prefix: str, doc: Ops, suffix: str, depth: int, width: int) -> list[str]:
    """A too long operator chain outside brackets.  Like ruff: a chain of one operator that
    starts or ends with brackets keeps its line and opens brackets, left to right, until
    the rest fits (`if a < max(` / `b, c` / `):`); any other chain gets parentheses."""
    indent = TAB * depth
    first, last = _edge(doc, 0), _edge(doc, -1)
    if len(doc.ops) == 1 and (first.head == "" and first.items or last.items):
        lines = _open_brackets(_tokens(doc) + [suffix], indent + prefix, depth, width)
        if all(len(line) <= width for line in lines):
            return lines
    return [f"{indent}{prefix}("] + layout("", doc, "", depth + 1, width, True) + [f"{indent}){suffix}"]


def _edge(doc, end: int) -> Brackets:
    """The chain's first (end=0) or last (end=-1) operand if in brackets, else empty ones.
    Ruff counts a first operand in parentheses, and a last one in any brackets (`-(...)` too)."""
    while isinstance(doc, Ops) or (end == -1 and isinstance(doc, Pre)):
        doc = doc.items[end] if isinstance(doc, Ops) else doc.value
    return doc if isinstance(doc, Brackets) else Brackets("-", ())


def _tokens(doc) -> list:
    """The chain as text pieces and the bracket groups between them, left to right."""
    if isinstance(doc, Ops):
        out = _tokens(doc.items[0])
        for op, item in zip(doc.ops, doc.items[1:], strict=True):
            out += [f" {op} ", *_tokens(item)]
        return out
    if isinstance(doc, Pre):
        return [doc.text, *_tokens(doc.value)]
    return [doc] if isinstance(doc, Brackets) else [flat(doc)]


def _open_brackets(tokens: list, line: str, depth: int, width: int) -> list[str]:
    """Ruff's printer: a group stays flat if the line fits up to the next place it could
    break (the next group's opening bracket, or the end); else it opens."""
    lines = []
    for i, tok in enumerate(tokens):
        if not isinstance(tok, Brackets):
            line += tok
            continue
        rest = ""
        for nxt in tokens[i + 1 :]:
            if isinstance(nxt, Brackets):
                rest += nxt.head + nxt.open
                break
            rest += nxt
        if len(line + flat(tok) + rest) <= width or not tok.items:
            line += flat(tok)
            continue
        lines.append(line + tok.head + tok.open)
        lines += _bracket_body(tok, depth, width)
        line = TAB * depth + tok.close
    return lines + [line]


def _bracket_body(doc: Brackets, depth: int, width: int) -> list[str]:
    """The items of opened brackets: on one line if they fit, else one per line."""
    inner = TAB * (depth + 1)
    hugged = ", ".join(flat(i) for i in doc.items)
    if len(inner) + len(hugged) <= width:
        return [inner + hugged]
    if len(doc.items) == 1:
        return layout("", doc.items[0], "", depth + 1, width, True)
    return [line for item in doc.items for line in layout("", item, ",", depth + 1, width, True)]


class Writer:
    """Lines at an indentation, laid out as ruff would for this line length."""

    def __init__(self, line_length: int):
        self.lines: list[str] = []
        self.width = line_length
        self.depth = 0

    @property
    def indent(self) -> str:
        return TAB * self.depth

    def line(self, text: str = "") -> None:
        self.lines.append(self.indent + text if text else "")

    def comment(self, text: str) -> None:
        """A comment line, wrapped at spaces when it is too long."""
        room = max(20, self.width - len(self.indent) - 2)
        for part in textwrap.wrap(comment_text(text), room, break_long_words=False, break_on_hyphens=False):
            self.line(f"# {part}")

    def statement(self, prefix: str, doc, comment: str = "") -> None:
        """`prefix + doc  # comment`; the comment moves above the code when the line is too long."""
        code = prefix + flat(doc)
        inline = f"{self.indent}{code}  # {comment_text(comment)}" if comment else self.indent + code
        if len(inline) <= self.width:
            self.lines.append(inline)
            return
        if comment:
            self.comment(comment)
        self.code(prefix, doc)

    def code(self, prefix: str, doc, suffix: str = "") -> None:
        """`prefix + doc + suffix`, split the way ruff splits brackets and operator chains."""
        self.lines += layout(prefix, doc, suffix, self.depth, self.width)

    def docstring(self, paragraphs: list[list[str]]) -> None:
        """A docstring; each paragraph is a list of lines.  Long lines wrap; an indented
        line's continuation hangs one level deeper (ruff keeps indentation relative to the
        least indented line, so unindented text continues flush)."""
        flat = [comment_text(text) for para in paragraphs for text in para]
        if len(flat) == 1 and len(self.indent) + len(flat[0]) + 6 <= self.width:
            self.line(f'"""{flat[0]}"""')
            return
        room = self.width - len(self.indent) - 3  # the opening quotes
        out = []
        for para in paragraphs:
            if out:
                out.append("")
            for text in para:
                lead = text[: len(text) - len(text.lstrip())]
                out += textwrap.wrap(comment_text(text), room, subsequent_indent=lead + TAB if lead else "",
                                     break_long_words=False, break_on_hyphens=False) or [""]
        self.line(f'"""{out[0]}')
        for text in out[1:]:
            self.line(text)
        self.line('"""')

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
