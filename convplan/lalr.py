"""Lark's LALR(1) tables and contextual lexer, run by one tight loop that builds nodes directly.

Lark analyses `grammar/plan.lark`; this module reads what it built (the parse table, each parser
state's lexer regex and keyword table, the tree builder's child filters) and drives it without
Lark's per-token machinery: no Tree, no second pass, no `propagate_positions` walk.  On a 500-line
plan that is 3x faster than `Lark.parse` plus a transform (benchmarks/bench.py).

It accepts exactly what Lark accepts and builds what Lark's tree would give: each token is lexed
with the lexer of the current parser state (as Lark's contextual lexer does), indentation is
handled as `PlanIndenter` does, and reductions call the callbacks of Lark's own tree builder.
Anything unexpected (a syntax error, a bad dedent) raises `Bail`; the caller then parses with
Lark itself, which raises the error it always did.  tests/test_parser_equivalence.py checks the two
paths give equal nodes on every example and on random plans.

A node builder learns where its rule's text lies from `builder.begin` and `builder.end`: character
offsets of the first and last token the rule consumed, anonymous ones (brackets, keywords) included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lark import Lark, Token
from lark.lexer import UnlessCallback
from lark.parse_tree_builder import ParseTreeBuilder
from lark.parsers.lalr_analysis import Shift
from lark.tree import Tree


class Bail(Exception):
    """The fast path stops here; Lark's own parser decides (and reports the error)."""


@dataclass(frozen=True)
class Tables:
    actions: dict  # state -> {terminal or rule name: next state (shift/goto), (size, rule index, origin) to
    #                reduce, or origin alone to reduce a `?rule` of one child (the child passes through unchanged)
    lexers: dict  # state -> (compiled regex, {terminal: {text: keyword terminal}})
    ignore: frozenset
    newlines: frozenset  # terminals whose text may hold a newline
    kept: frozenset  # terminals that reach the tree as tokens; the rest are placeholders
    start: int
    end: int
    builder: ParseTreeBuilder
    rules: tuple
    chains: dict = field(default_factory=dict)  # (state below, top state, terminal) -> top after `?rule` steps


def tables(lark: Lark, indenter) -> Tables:
    """Read the tables of a LALR `Lark` built with a contextual lexer and `indenter` as postlex."""
    table = lark.parser.parser._parse_table
    rules = tuple(lark.rules)
    index = {rule: i for i, rule in enumerate(rules)}
    actions = {}
    for state, row in table.states.items():
        # Lark's keys are grammar Tokens, whose __eq__ is Python code: plain str keys hash and compare in C
        actions[state] = {str(sym): arg if action is Shift else _reduction(arg, index[arg])
                          for sym, (action, arg) in row.items()}
    contextual = lark.parser.lexer.lexer
    lexers = {state: _state_lexer(lexer) for state, lexer in contextual.lexers.items()}
    root = contextual.root_lexer
    kept = frozenset(str(sym.name) for rule in rules for sym in rule.expansion if sym.is_term and not sym.filter_out)
    builder = ParseTreeBuilder(rules, Tree, propagate_positions=False, maybe_placeholders=False)
    return Tables(actions, lexers, root.ignore_types, root.newline_types, kept,
                  table.start_states["start"], table.end_states["start"], builder, rules)


def _reduction(rule, index: int) -> tuple | str:
    """How to reduce by `rule`.  `?rule: x` with one child that reaches the tree unchanged (most of
    them: expr -> test -> ... -> atom for every number) needs no callback, only a new state."""
    (sym,) = rule.expansion if len(rule.expansion) == 1 else (None,)
    passes = sym is not None and rule.options.expand1 and not rule.alias and (
        not sym.name.startswith("_") if not sym.is_term else not sym.filter_out)
    return str(rule.origin.name) if passes else (len(rule.expansion), index, str(rule.origin.name))


def _state_lexer(lexer) -> tuple:
    scanner = lexer.scanner
    if len(scanner._mres) != 1:
        raise Bail("a lexer with more than one regex")  # Lark splits past 100 terminals; ours has ~50
    keywords = {}
    for terminal, callback in lexer.callback.items():
        if not isinstance(callback, UnlessCallback):
            raise Bail(f"an unknown lexer callback on {terminal}")
        keywords[terminal] = {t.pattern.value: t.name for t in callback.scanner.terminals}
    return scanner._mres[0], keywords


def callbacks(t: Tables, builder) -> list:
    """Lark's tree-builder callbacks (child filters, `?rule` inlining) around `builder`, by rule index.

    `builder` has a method per rule (or alias) taking the rule's kept children as arguments; rules
    without one (Lark's `__anon` helpers) build Trees that Lark's child filters splice into their parent.
    """
    by_rule = t.builder.create_callback(_Inline(builder))
    return [by_rule[rule] for rule in t.rules]


class _Inline:
    def __init__(self, builder):
        self.builder = builder

    def __getattr__(self, name: str):
        method = getattr(self.builder, name)  # AttributeError for a rule without a method, as Lark expects
        return lambda children: method(*children)


def parse(text: str, t: Tables, calls: list, builder, indenter) -> object:
    """Parse `text` (ending in a newline), calling `calls` on each reduction; raise Bail on anything odd.

    One long function on purpose: it runs once per token, and a function call per step (lex, indent,
    shift, reduce) would cost about a third more.  The three parts are marked below."""
    actions, lexers, ignore, newlines, kept, end_state = t.actions, t.lexers, t.ignore, t.newlines, t.kept, t.end
    chains = t.chains
    nl, indent_type, dedent_type = indenter.NL_type, indenter.INDENT_type, indenter.DEDENT_type
    opens, closes, tab_len = set(indenter.OPEN_PAREN_types), set(indenter.CLOSE_PAREN_types), indenter.tab_len
    states, values, starts, ends = [t.start], [], [], []
    pos, size, line, line_start = 0, len(text), 1, 0
    paren, levels, queue = 0, [0], []
    p0 = p1 = 0
    while True:
        # 1. the next token: a queued _INDENT/_DEDENT, one lexed by this state's lexer, or the end
        if queue:  # _INDENT/_DEDENT, at the position of the newline before them (as Lark's Indenter)
            kind, tok = queue.pop(), None
        elif pos < size:
            regex, keywords = lexers[states[-1]]
            m = regex.match(text, pos)
            if m is None:
                raise Bail
            kind, p0, pos = m.lastgroup, pos, m.end()
            if kind in keywords:
                kind = keywords[kind].get(m.group(), kind)
            if kind in newlines:
                value = m.group()
                breaks = value.count("\n")
                if breaks:
                    line += breaks
                    line_start = p0 + value.rindex("\n") + 1
            if kind in ignore:
                continue
            p1 = pos
            if kind in kept:
                value = m.group()
                col = p0 - line_start + 1
                tok = Token(kind, value, p0, line, col, line, col + len(value), pos)
            else:
                tok = None
            if kind == nl:  # 2. indentation, as PlanIndenter: newlines inside brackets are dropped
                if paren:
                    continue
                indent_str = text[line_start:pos]
                indent = indent_str.count(" ") + indent_str.count("\t") * tab_len
                if indent > levels[-1]:
                    levels.append(indent)
                    queue.append(indent_type)
                else:
                    while indent < levels[-1]:
                        levels.pop()
                        queue.append(dedent_type)
                    if indent != levels[-1]:
                        raise Bail  # an inconsistent dedent: Lark's run reports it
            elif kind in opens:
                paren += 1
            elif kind in closes:
                paren -= 1
                if paren < 0:
                    raise Bail
        elif len(levels) > 1:
            levels.pop()
            kind, tok = dedent_type, None
        else:
            kind, tok = "$END", None
        while True:  # 3. reduce as often as the table says, then shift `kind`
            action = actions[states[-1]].get(kind)
            if action is None:
                raise Bail
            if action.__class__ is int:
                if kind == "$END":
                    raise Bail
                states.append(action)
                values.append(tok)
                starts.append(p0)
                ends.append(p1)
                break
            if action.__class__ is str:  # `?rule`s passing their one child through: only the top state changes
                key = (states[-2], states[-1], kind)
                top = chains.get(key)
                if top is None:
                    top = chains[key] = _pass_through(actions, states[-2], states[-1], kind)
                states[-1] = top
                if kind == "$END" and top == end_state:
                    return values[-1]
                continue
            n, rule, origin = action
            if n:
                children, first, last = values[-n:], starts[-n], ends[-1]
                del states[-n:], values[-n:], starts[-n:], ends[-n:]
            else:
                children, first, last = [], p0, p0
            builder.begin, builder.end = first, last
            value = calls[rule](children)
            states.append(actions[states[-1]][origin])
            values.append(value)
            starts.append(first)
            ends.append(last)
            if kind == "$END" and states[-1] == end_state:
                return value


def _pass_through(actions: dict, below: int, top: int, kind: str) -> int:
    """The top state after every `?rule` reduction in a row that `kind` causes (a number in an argument
    goes atom -> unary -> product -> ... -> expr): each replaces the top state, all from the same `below`."""
    action = actions[top].get(kind)
    while action.__class__ is str:
        top = actions[below][action]
        action = actions[top].get(kind)
    return top
