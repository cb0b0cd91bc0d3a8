"""Text -> syntax tree by recursive descent: parse_module's first try, for the text people write.

grammar/plan.lark is the language and Lark's LALR parse its reference.  This parser reads the same
grammar by hand: one regex splits the whole text into tokens in C (`re.split`, positions summed by
`accumulate`), each rule is a method, an expression is read by precedence (one call a level, not one a
grammar rule), and every node comes from the NodeBuilders method the LALR loop calls (or its maker,
inline), with the same children and the same `begin`/`end`.  So the nodes are the same objects, spans
included (tests/test_parser_equivalence.py compares them with Lark's on every example and on random
plans).  A first plan's parse costs half the instructions it did through lalr.py's table loop
(benchmarks/README.md, session 13).

It answers only where it is sure.  Anything else raises Bail and lalr.py's loop (Lark's contextual
lexer, exactly) takes the whole text: a syntax error, a line continued with a backslash, and a word
of the grammar used as a name where Lark's lexer may take the keyword (`Conv2d(in=3)`: whether Lark
lexes `in` as the keyword there depends on its parser state).
Newlines inside brackets are dropped, as the Indenter drops them, on a second try (they are rare: the
first try needs no pass over the tokens for them).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate, compress

from . import nodes as n
from .errors import Span
from .nodebuilders import MAX_DEPTH, MAX_INT_DIGITS, TreeError, new_call, new_const, new_layer, new_name, new_num
from .nodes import _SpanFiller

_new = object.__new__
_Num, _Name, _Arg = n.Num, n.Name, n.Arg


class Bail(Exception):
    """Not sure: the LALR loop decides."""


# The text split at its tokens (re.split: the spaces between them, then each token): grammar/plan.lark's terminals,
# in the order Lark's lexer tries them where they overlap (a float before an int, `->` before `-`, `==` before
# `=`), the most common first (a name, a bracket or comma, `=`, an int, a line break and its indentation: each
# alternative tried before the one that matches costs the regex engine a step).  Any other character is a token
# of its own, which no rule takes (a line continued with a backslash too: the LALR loop reads those), so that only
# spaces are left between tokens.
_TOKENS = re.compile(r"""([A-Za-z_][A-Za-z0-9_]*|[(),\[\]:]|==?|[0-9]+(?![0-9_.eE])"""
                     r"""|\n[\t ]*(?:(?:\r?\n[\t ]*|\#[^\n]*)+)?|(?:\r?\n[\t ]*|\#[^\n]*)+"""
                     r"""|(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+|[0-9]+(?:_[0-9]+)*"""
                     r"""|'[^'\\\n]*'|"[^"\\\n]*"|\?(?:[A-Za-z_][A-Za-z0-9_]*)?|\.\.\.|->|\*\*|//|[!<>]="""
                     r"""|[-+*/%<>]|[^ \t\f])""")
_END = "\0"  # after the last token (parse_module refuses a NUL in the text)
_TAB = 8  # parser._Indentation.tab_len

# The words of the grammar that Lark's contextual lexer may take as keywords where this parser reads a name: Bail
# there.  A word is a keyword only in the parser states that take it: `plan` only where a file's item starts,
# `input` only where a statement starts, so both are names inside an expression (`block = sequential:`).  The
# words of expressions are kept out everywhere (`not` and the constants start an expression; `if`, `else`, `or`,
# `and` follow one), and a statement's first name may not be one that continues a statement before it.
EXPRESSION_WORDS = frozenset({"if", "elif", "else", "or", "and", "not", "in", "True", "False", "None"})
FIRST_WORDS = EXPRESSION_WORDS | {"shortcut", "branch"}
# ... and right after a dedent, none: LALR merged the states that end every body, so the state after a _DEDENT
# takes what may follow any body (a file's next item, `elif`, `shortcut`, `branch`, a statement)
KEYWORDS = FIRST_WORDS | {"plan", "block", "def", "import", "from", "input", "residual", "repeat", "sequential",
                          "output", "pass", "return"}
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NEWLINE_START = frozenset("\r\n#")
_DIGITS = frozenset("0123456789")
_CONSTANTS = {"True": "true", "False": "false", "None": "none"}
_CONSTANT_VALUES = {"True": True, "False": False, "None": None}
_COMPARE = frozenset({"==", "!=", "<=", ">=", "<", ">"})
_BINARY = {"or": (1, "or_"), "and": (2, "and_"), "+": (5, "add"), "-": (5, "sub"), "*": (6, "mul"),
           "/": (6, "truediv"), "//": (6, "floordiv"), "%": (6, "mod")}  # `not` is 3, comparisons 4
_LONE_ENDS = frozenset({",", ")", "]"})  # after an argument or a dim of one token (most of them; `()` is two)


def tokens(text: str) -> tuple[list, list, list]:
    """The tokens of `text` (ending in a newline): their texts, starts and ends, then two _END."""
    parts = _TOKENS.split(text)  # spaces, a token, spaces, ..., a token, spaces
    offsets = list(accumulate(map(len, parts), initial=0))
    end = offsets[-1]
    return [*parts[1::2], _END, _END], [*offsets[1:-1:2], end, end], [*offsets[2::2], end, end]


def parse(text: str, builder) -> n.Module:
    """The module of `text` (ending in a newline), built by `builder` (a NodeBuilders on the same text)."""
    if _END in text:  # (parse_module refuses it first; here it would read as the end)
        raise Bail
    toks, starts, ends = tokens(text)
    try:
        return _Descent(toks, starts, ends, builder).module()
    except (Bail, IndexError, RecursionError):  # (past the end of a text cut short; brackets nested past the stack)
        joined = _joined(toks, starts, ends)
        if joined is None:
            raise Bail from None
    try:
        return _Descent(*joined, builder).module()
    except (IndexError, RecursionError):
        raise Bail from None


def _joined(toks: list, starts: list, ends: list) -> tuple | None:
    """The tokens without the newlines inside brackets (the Indenter drops them), or None where there are none."""
    keep, depth = [], 0
    for t in toks:
        c = t[0]
        if c == "(" or c == "[":
            depth += 1
        elif c == ")" or c == "]":
            depth -= 1
        elif depth > 0 and (c == "#" or "\n" in t):  # (a lone carriage return is no newline: it stays, and bails)
            keep.append(False)
            continue
        keep.append(True)
    if all(keep):
        return None
    return [*compress(toks, keep)], [*compress(starts, keep)], [*compress(ends, keep)]


class _Descent:
    """One parse.  Each rule's method takes the index of its first token and returns (node, the index after its
    last); `begin`/`end` for the builder are the first token's start and the last one's end."""

    __slots__ = ("toks", "starts", "ends", "b", "lines", "levels", "opened", "pending", "dedented", "kept")

    def __init__(self, toks: list, starts: list, ends: list, builder):
        self.toks, self.starts, self.ends, self.b = toks, starts, ends, builder
        self.lines = builder._lines  # each line's first offset
        self.levels = [0]  # indentation, as the Indenter's
        self.opened = False  # the last newline indented (an _INDENT)
        self.pending = 0  # _DEDENTs the last newline made that no body has taken yet
        self.dedented = False  # the last newline made _DEDENTs
        self.kept = None  # the text of the last newline that kept the level, while the levels stay as it left them

    def tok(self, i: int) -> tuple:
        """Token i as the builders read one: (text, span)."""
        return self.toks[i], self.span(i)

    def span(self, i: int, _new=object.__new__, _filler=_SpanFiller, _span=Span):
        """Token i's span: nodes.new_span, inline (one call less for each of the ~8 a line)."""
        s = self.starts[i]
        k = bisect_right(self.lines, s)
        first = self.lines[k - 1]
        span = _new(_filler)
        span.line = span.end_line = k
        span.col = s - first + 1
        span.end_col = self.ends[i] - first + 1
        span.__class__ = _span
        return span

    def name(self, i: int) -> tuple:
        """Token i, which must be a name and no word of an expression."""
        t = self.toks[i]
        if t[0] not in _NAME_START or t in EXPRESSION_WORDS:
            raise Bail
        return self.tok(i)

    def expect(self, i: int, text: str) -> int:
        if self.toks[i] != text:
            raise Bail
        return i + 1

    # -- lines and indentation, as PlanIndenter -------------------------------------------------

    def newline(self, i: int) -> int:
        """Token i is a newline (with comments and blank lines); its indentation opens, keeps or closes levels."""
        t = self.toks[i]
        if t == self.kept:  # the last newline's text, which kept the level: this one keeps it too
            self.opened = self.dedented = False
            return i + 1
        cut = t.rfind("\n")  # (only a newline token holds one, and it ends in a line break and its indentation)
        if cut < 0:  # no newline, or a comment alone at the end of the text
            raise Bail
        indent = len(t) - cut - 1
        if "\t" in t:
            tail = t[cut + 1:]
            indent = tail.count(" ") + tail.count("\t") * _TAB
        levels = self.levels
        if indent > levels[-1]:
            levels.append(indent)
            self.opened, self.dedented, self.kept = True, False, None
            return i + 1
        self.opened = self.dedented = False
        if indent < levels[-1]:
            closed = 0
            while indent < levels[-1]:
                levels.pop()
                closed += 1
            if indent != levels[-1]:
                raise Bail  # an inconsistent dedent: Lark reports it
            self.pending, self.dedented, self.kept = closed, True, None
        else:
            self.kept = t
        return i + 1

    def end_of_line(self, i: int) -> int:
        """A simple statement's newline: it may not indent."""
        i = self.newline(i)
        if self.opened:
            raise Bail
        return i

    def body(self, i: int) -> tuple[tuple, int]:
        """`_NL _INDENT statement+ _DEDENT` from the newline after a `:`."""
        i = self.newline(i)
        if not self.opened:
            raise Bail
        statements = []
        toks, statement = self.toks, self.statement
        while True:
            if toks[i] == _END:  # the Indenter closes every level at the end
                if not statements:
                    raise Bail
                self.pending = len(self.levels) - 1
                del self.levels[1:]
            else:
                stmt, i = statement(i)
                statements.append(stmt)
            if self.pending:
                self.pending -= 1
                return tuple(statements), i  # (NodeBuilders.body)

    # -- the file --------------------------------------------------------------------------------

    def module(self) -> n.Module:
        toks, b = self.toks, self.b
        i = 0
        if toks[0][0] in _NEWLINE_START:  # `start: _NL? item*`
            i = self.end_of_line(0)
        items = []
        while toks[i] != _END:
            word = toks[i]
            if word == "plan" or word == "block" or word == "def":
                name = self.name(i + 1)
                rest = []
                j = i + 2
                if toks[j] == "(":
                    params, j = self.params(j)
                    rest.append(params)
                elif word == "def":
                    raise Bail
                body, j = self.body(self.expect(j, ":"))
                b.begin = self.starts[i]
                items.append((b.plan if word == "plan" else b.block if word == "block" else b.function)(name, *rest,
                                                                                                      body))
            elif word == "import":
                path = self.string(i + 1)
                j = self.end_of_line(i + 2)
                b.begin = self.starts[i]
                items.append(b.import_all(path))
            elif word == "from":
                path = self.string(i + 1)
                names, j = self.names(self.expect(i + 2, "import"))
                j = self.end_of_line(j)
                b.begin = self.starts[i]
                items.append(b.import_from(path, *names))
            else:
                raise Bail
            if self.pending:
                raise Bail
            i = j
        return b.start(*items)

    def string(self, i: int) -> tuple:
        t = self.toks[i]
        if t[0] != "'" and t[0] != '"' or len(t) < 2:  # (a quote alone is an unclosed string)
            raise Bail
        return self.tok(i)

    def names(self, i: int) -> tuple[list, int]:
        """NAME ("," NAME)* [","], before a newline."""
        toks = self.toks
        names = [self.name(i)]
        i += 1
        while toks[i] == ",":
            i += 1
            if toks[i][0] in _NEWLINE_START:
                break
            names.append(self.name(i))
            i += 1
        return names, i

    def params(self, i: int) -> tuple[tuple, int]:
        """`"(" [param ("," param)* [","]] ")"`, param: NAME ["=" expr]."""
        toks, b = self.toks, self.b
        made = []
        j = i + 1
        while toks[j] != ")":
            name = self.name(j)
            if toks[j + 1] == "=":
                default, k = self.expr(j + 2)
                b.begin, b.end = self.starts[j], self.ends[k - 1]
                made.append(b.param(name, default))
            else:
                k = j + 1
                b.begin, b.end = self.starts[j], self.ends[j]
                made.append(b.param(name))
            if toks[k] == ",":
                j = k + 1
            elif toks[k] == ")":
                j = k
            else:
                raise Bail
        return tuple(made), j + 1  # (NodeBuilders.params)

    # -- statements ------------------------------------------------------------------------------

    def statement(self, i: int) -> tuple[object, int]:
        toks = self.toks
        word = toks[i]
        keyword = _STATEMENTS.get(word)
        if keyword is not None:
            return keyword(self, i)
        after = toks[i + 1]
        if word in (KEYWORDS if self.dedented else FIRST_WORDS):
            raise Bail
        if after == "(":
            if word[0] not in _NAME_START:
                raise Bail
            call, j = self.call(i)
            t = toks[j]
            if t == ":":
                return self.merge(call, j + 1)
            if t == "->":
                shape, k = self.shape(j + 1)
                return self.b.layer_stmt(call, self.tok(j), shape), self.end_of_line(k)
            return new_layer(call, None, call.span), self.end_of_line(j)  # NodeBuilders.layer_stmt, inline
        if after == "=":
            return self.assignment(i)
        if after == ",":
            return self.unpack(i)
        if after == ":":
            return self.merge(self.name(i), i + 2)
        if after[0] in _NEWLINE_START:
            return self.b.ref_stmt(self.name(i)), self.end_of_line(i + 1)
        raise Bail

    def merge(self, head, i: int, target: tuple | None = None) -> tuple[object, int]:
        """`merge_head branches` from the newline after the head's `:` (head: a call, or a name's token)."""
        b = self.b
        call = b.merge_head(head)
        branches, j = self.branches(i)
        if target is None:
            return b.merge_stmt(call, branches), j
        return b.assign_merge(target, call, branches), j

    def branches(self, i: int) -> tuple[tuple, int]:
        """`_NL _INDENT branch+ _DEDENT`, branch: "branch" [NAME] ":" body."""
        toks, b = self.toks, self.b
        i = self.newline(i)
        if not self.opened:
            raise Bail
        made = []
        while True:
            if toks[i] != "branch":
                raise Bail
            rest = []
            j = i + 1
            if toks[j] != ":":
                rest.append(self.name(j))
                j += 1
            body, j = self.body(self.expect(j, ":"))
            b.begin = self.starts[i]
            made.append(b.branch(*rest, body))
            i = j
            if self.pending:
                self.pending -= 1
                return tuple(made), i  # (NodeBuilders.branches)

    def assignment(self, i: int) -> tuple[object, int]:
        """NAME "=" ...: a call with its shape, an expression, a merge, a residual, a repeat or a sequential."""
        toks, b = self.toks, self.b
        target = self.name(i)
        j = i + 2
        word = toks[j]
        if word == "repeat":
            rest, k = self.repeat_parts(j)
            b.begin = self.starts[i]
            return b.assign_repeat(target, *rest), k
        if word == "sequential":
            body, k = self.body(self.expect(j + 1, ":"))
            return b.assign_sequential(target, body), k
        if word == "residual":
            merge, k = self.residual_head(j)
            return b.assign_residual(target, merge), k
        value, k = self.expr(j)
        t = toks[k]
        bare = word[0] in _NAME_START  # the expression is the call or name itself (not in brackets, no sign)
        if t == "->":
            if not (bare and value.__class__ is n.Call):
                raise Bail
            shape, m = self.shape(k + 1)
            return b.assign_call(target, value, self.tok(k), shape), self.end_of_line(m)
        if t == ":":
            if bare and value.__class__ is n.Call:
                return self.merge(value, k + 1, target)
            if bare and value.__class__ is n.Name:  # (`x = True:` is a constant: Lark refuses it)
                return self.merge(self.tok(j), k + 1, target)
            raise Bail
        return b.assign_expr(target, value), self.end_of_line(k)

    def unpack(self, i: int) -> tuple[object, int]:
        """`NAME ("," target)+ "=" call _NL`."""
        toks = self.toks
        first = self.name(i)
        targets = []
        j = i + 1
        while toks[j] == ",":
            target, j = self.target(j + 1)
            targets.append(target)
        j = self.expect(j, "=")
        if toks[j + 1] != "(":
            raise Bail
        self.name(j)
        call, j = self.call(j)
        return self.b.assign_unpack(first, *targets, call), self.end_of_line(j)

    def target(self, i: int) -> tuple[object, int]:
        toks, b = self.toks, self.b
        if toks[i] != "(":
            return b.target_name(self.name(i)), i + 1
        items = []
        j = i
        while True:
            item, j = self.target(j + 1)
            items.append(item)
            if toks[j] == ")":
                break
            if toks[j] != ",":
                raise Bail
        if len(items) < 2:
            raise Bail
        b.begin, b.end = self.starts[i], self.ends[j]
        return b.target_group(*items), j + 1

    def input_stmt(self, i: int) -> tuple[object, int]:
        """`"input" [NAME] shape _NL`."""
        j = i + 1
        rest = []
        if self.toks[j] != "[":
            rest.append(self.name(j))
            j += 1
        shape, j = self.shape(j)
        self.b.begin = self.starts[i]
        return self.b.input_stmt(*rest, shape), self.end_of_line(j)

    def residual_stmt(self, i: int) -> tuple[object, int]:
        merge, j = self.residual_head(i)
        return self.b.residual_stmt(merge), j

    def residual_head(self, i: int) -> tuple[object, int]:
        """`"residual" ":" body [shortcut]`, shortcut: "shortcut" ":" body."""
        b = self.b
        body, j = self.body(self.expect(i + 1, ":"))
        rest = []
        if not self.pending and self.toks[j] == "shortcut":
            shortcut, j = self.body(self.expect(j + 1, ":"))
            rest.append(b.shortcut(shortcut))
        b.begin = self.starts[i]
        return b.residual_head(body, *rest), j

    def repeat_stmt(self, i: int) -> tuple[object, int]:
        rest, j = self.repeat_parts(i)
        self.b.begin = self.starts[i]
        return self.b.repeat_stmt(*rest), j

    def repeat_parts(self, i: int) -> tuple[list, int]:
        """`"repeat" [NAME "in"] expr ":" body`: the builder's children."""
        toks = self.toks
        rest = []
        j = i + 1
        if toks[j + 1] == "in":
            rest.append(self.name(j))
            j += 2
        count, j = self.expr(j)
        body, j = self.body(self.expect(j, ":"))
        rest += (count, body)
        return rest, j

    def if_stmt(self, i: int) -> tuple[object, int]:
        """`"if" expr ":" body elif_clause* [else_clause]`."""
        toks, b = self.toks, self.b
        cond, j = self.expr(i + 1)
        body, j = self.body(self.expect(j, ":"))
        clauses = []
        while not self.pending and toks[j] == "elif":
            other, k = self.expr(j + 1)
            then, k = self.body(self.expect(k, ":"))
            b.begin = self.starts[j]
            clauses.append(b.elif_clause(other, then))
            j = k
        if not self.pending and toks[j] == "else":
            orelse, j = self.body(self.expect(j + 1, ":"))
            clauses.append(b.else_clause(orelse))
        b.begin = self.starts[i]
        return b.if_stmt(cond, body, *clauses), j

    def output_stmt(self, i: int) -> tuple[object, int]:
        names, j = self.names(i + 1)
        self.b.begin = self.starts[i]
        return self.b.output_stmt(*names), self.end_of_line(j)

    def pass_stmt(self, i: int) -> tuple[object, int]:
        self.b.begin = self.starts[i]
        return self.b.pass_stmt(), self.end_of_line(i + 1)

    def return_stmt(self, i: int) -> tuple[object, int]:
        value, j = self.expr(i + 1)
        self.b.begin = self.starts[i]
        return self.b.return_stmt(value), self.end_of_line(j)

    # -- calls, shapes and expressions -----------------------------------------------------------

    def call(self, i: int) -> tuple[n.Call, int]:
        """`NAME "(" [arg ("," arg)* [","]] ")"` (token i is the name); arg: expr | NAME "=" expr.  The spans of the
        name, of an argument of one name or digits (most of them), of a keyword argument and of the call are made
        here from the name's line (one search of the line starts, not one a span), and the nodes by their makers:
        NodeBuilders.call, kwarg, name and int, inline."""
        toks, starts, ends, lines = self.toks, self.starts, self.ends, self.lines
        k = bisect_right(lines, starts[i])
        base, last = lines[k - 1] - 1, lines[k]  # a token that ends by `last` is on line k
        name = _new(_SpanFiller)
        name.line = name.end_line = k
        name.col = starts[i] - base
        name.end_col = ends[i] - base
        name.__class__ = Span
        args, depth = [], 0
        j = i + 2
        t = toks[j]
        while t != ")":
            key = None
            after = toks[j + 1]
            if after == "=" and t[0] in _NAME_START:  # a keyword argument
                if t in EXPRESSION_WORDS:
                    raise Bail
                key, first = t, starts[j]
                j += 2
                t, after = toks[j], toks[j + 1]
            c = t[0]
            if after in _LONE_ENDS and ends[j] <= last and (
                    c in _NAME_START or c in _DIGITS and len(t) <= MAX_INT_DIGITS and t.isdigit()):
                span = _new(_SpanFiller)  # (atom, inline: a name, a number or a constant)
                span.line = span.end_line = k
                span.col = starts[j] - base
                span.end_col = ends[j] - base
                span.__class__ = Span
                if c in _DIGITS:  # new_num, new_name and new_arg inline: a call less for each of ~3 a layer
                    value = _new(_Num)
                    d = value.__dict__
                    d["value"], d["span"] = int(t), span
                elif t not in EXPRESSION_WORDS:
                    value = _new(_Name)
                    d = value.__dict__
                    d["id"], d["span"] = t, span
                elif t in _CONSTANT_VALUES:
                    value = new_const(_CONSTANT_VALUES[t], span)
                else:
                    raise Bail
                if not depth:
                    depth = 1
                j += 1
            else:
                if after in _LONE_ENDS and t != "(":
                    value, j = self.atom(j)
                else:
                    value, j = self.expr(j)
                d = getattr(value, "_depth", 1)
                if d > depth:
                    depth = d
            arg = _new(_Arg)
            args.append(arg)
            d = arg.__dict__
            if key is None:
                d["name"], d["value"], d["span"] = None, value, value.span
            else:
                e = ends[j - 1]
                if e <= last:
                    span = _new(_SpanFiller)
                    span.line = span.end_line = k
                    span.col = first - base
                    span.end_col = e - base
                    span.__class__ = Span
                else:
                    b = self.b
                    b.begin, b.end = first, e
                    span = b._span()
                d["name"], d["value"], d["span"] = key, value, span
            t = toks[j]
            if t == ",":
                j += 1
                t = toks[j]
            elif t != ")":
                raise Bail
        e = ends[j]
        if e <= last:
            span = _new(_SpanFiller)
            span.line = span.end_line = k
            span.col = starts[i] - base
            span.end_col = e - base
            span.__class__ = Span
        else:
            b = self.b
            b.begin, b.end = starts[i], e
            span = b._span()
        node = new_call(toks[i], tuple(args), span, name)
        if depth >= MAX_DEPTH:
            raise TreeError("E006", f"expression nested too deeply (more than {MAX_DEPTH} levels)", span)
        node.__dict__["_depth"] = depth + 1  # as NodeBuilders.call
        return node, j + 1

    def item(self, j: int) -> tuple[object, int]:
        """An argument's or a dim's expression; one token alone (most of them) is read as an atom."""
        toks = self.toks
        if toks[j + 1] in _LONE_ENDS and toks[j] != "(":
            return self.atom(j)
        return self.expr(j)

    def next_item(self, k: int, close: str) -> int:
        """After an item at k: the next item's index past a comma, or the closing bracket's."""
        t = self.toks[k]
        if t == ",":
            return k + 1
        if t == close:
            return k
        raise Bail

    def shape(self, i: int) -> tuple[n.Shape, int]:
        """`"[" [dim ("," dim)* [","]] "]"`, dim: expr | "..."."""
        toks, b = self.toks, self.b
        if toks[i] != "[":
            raise Bail
        dims = []
        j = i + 1
        while toks[j] != "]":
            if toks[j] == "...":
                b.begin, b.end = self.starts[j], self.ends[j]
                dims.append(b.ellipsis())
                k = j + 1
            else:
                value, k = self.item(j)
                dims.append(value)
            j = self.next_item(k, "]")
        b.begin, b.end = self.starts[i], self.ends[j]
        return b.shape(*dims), j + 1

    def expr(self, i: int) -> tuple[object, int]:
        """`?test: or_test | or_test "if" or_test "else" test`."""
        node, j = self.binary(i, 1)
        if self.toks[j] != "if":
            return node, j
        cond, k = self.binary(j + 1, 1)
        orelse, m = self.expr(self.expect(k, "else"))
        b = self.b
        b.begin, b.end = self.starts[i], self.ends[m - 1]
        return b.ifexp(node, cond, orelse), m

    def binary(self, i: int, level: int) -> tuple[object, int]:
        """An expression of operators binding at `level` or tighter (1 `or`, 2 `and`, 3 `not`, 4 comparisons,
        5 `+ -`, 6 `* / // %`), left to right, comparisons chained as one node."""
        toks, b = self.toks, self.b
        if toks[i] == "not":
            if level > 3:
                raise Bail
            operand, j = self.binary(i + 1, 3)
            b.begin, b.end = self.starts[i], self.ends[j - 1]
            node = b.not_(operand)
        else:
            node, j = self.unary(i)
        while True:
            op = toks[j]
            entry = _BINARY.get(op)
            if entry is None:
                if level > 4 or op not in _COMPARE:
                    return node, j
                rest = []
                while toks[j] in _COMPARE:
                    rest.append(self.tok(j))
                    right, j = self.binary(j + 1, 5)
                    rest.append(right)
                b.begin, b.end = self.starts[i], self.ends[j - 1]
                node = b.compare(node, *rest)
                continue
            precedence, method = entry
            if precedence < level:
                return node, j
            right, j = self.binary(j + 1, precedence + 1)
            b.begin, b.end = self.starts[i], self.ends[j - 1]
            node = getattr(b, method)(node, right)

    def unary(self, i: int) -> tuple[object, int]:
        """`"-" unary -> neg | "+" unary | atom ["**" unary]`."""
        t = self.toks[i]
        if t == "-" or t == "+":
            operand, j = self.unary(i + 1)
            if t == "+":
                return operand, j  # `?unary: "+" unary` passes its operand (its span without the sign)
            b = self.b
            b.begin, b.end = self.starts[i], self.ends[j - 1]
            return b.neg(operand), j
        node, j = self.atom(i)
        if self.toks[j] != "**":
            return node, j
        power, k = self.unary(j + 1)
        b = self.b
        b.begin, b.end = self.starts[i], self.ends[k - 1]
        return b.pow(node, power), k

    def atom(self, i: int) -> tuple[object, int]:
        toks = self.toks
        t = toks[i]
        c = t[0]
        if c in _NAME_START:
            if t in EXPRESSION_WORDS:
                constant = _CONSTANTS.get(t)
                if constant is None:
                    raise Bail
                return getattr(self.b, constant)(self.tok(i)), i + 1
            if toks[i + 1] == "(":
                return self.call(i)
            return new_name(t, self.span(i)), i + 1  # NodeBuilders.name, inline
        if c in _DIGITS:
            if len(t) <= MAX_INT_DIGITS and t.isdigit():  # NodeBuilders.int, inline, for most literals
                return new_num(int(t), self.span(i)), i + 1
            if "." in t or "e" in t or "E" in t:
                return self.b.float(self.tok(i)), i + 1
            return self.b.int(self.tok(i)), i + 1
        if c == "(":
            return self.bracket(i)
        if c == "." and t[1:2] in _DIGITS:  # `.5` (a `.` or `..` alone is no token of the grammar)
            return self.b.float(self.tok(i)), i + 1
        if (c == "'" or c == '"') and len(t) > 1:  # (a quote alone is an unclosed string)
            return self.b.string(self.tok(i)), i + 1
        if c == "?":
            return self.b.unknown(self.tok(i)), i + 1
        raise Bail

    def bracket(self, i: int) -> tuple[object, int]:
        """`"(" expr ")"` (the expression, its span without the brackets) or a tuple."""
        toks, b = self.toks, self.b
        if toks[i + 1] == ")":
            b.begin, b.end = self.starts[i], self.ends[i + 1]
            return b.tuple(), i + 2
        first, j = self.expr(i + 1)
        if toks[j] == ")":
            return first, j + 1
        items = [first]
        while toks[j] == ",":
            j += 1
            if toks[j] == ")":
                break
            item, j = self.expr(j)
            items.append(item)
        if toks[j] != ")":
            raise Bail
        b.begin, b.end = self.starts[i], self.ends[j]
        return b.tuple(*items), j + 1


_STATEMENTS = {"input": _Descent.input_stmt, "residual": _Descent.residual_stmt, "repeat": _Descent.repeat_stmt,
               "if": _Descent.if_stmt, "output": _Descent.output_stmt, "pass": _Descent.pass_stmt,
               "return": _Descent.return_stmt}
