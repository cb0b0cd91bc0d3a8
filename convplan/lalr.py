"""Lark's LALR(1) tables and contextual lexer, run by one tight loop that builds nodes directly.

Lark analyses `grammar/plan.lark`; this module reads what it built (the parse table, each parser
state's lexer regex and keyword table, the rules' child filters) into plain data, which ships in
`_grammar_tables.py` beside Lark's own analysis, and drives it without Lark's per-token machinery: no
Tree, no second pass, no `propagate_positions` walk, and no Lark at all.  On a
500-line plan that is 3x faster than `Lark.parse` plus a transform (benchmarks/bench.py).

It accepts exactly what Lark accepts and builds what Lark's tree would give: each token is lexed
with the lexer of the current parser state (as Lark's contextual lexer does), indentation is
handled as `PlanIndenter` does, and reductions filter and splice children as Lark's tree builder.
Anything unexpected (a syntax error, a bad dedent) raises `Bail`; the caller then parses with
Lark itself, which raises the error it always did.  tests/test_parser_equivalence.py checks the two
paths give equal nodes on every example and on random plans.

descent.py reads a text first; this loop reads those the descent is not sure of (a word of the grammar
used as a name, a line continued with a backslash), exactly as Lark's contextual lexer would.

A node builder learns where its rule's text lies from `builder.begin` and `builder.end`: character
offsets of the first and last token the rule consumed, anonymous ones (brackets, keywords) included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from operator import itemgetter

from .nodes import new_span

FORMAT = 2  # of the shipped tables (data/from_data); a change of the layout bumps it


class Bail(Exception):
    """The fast path stops here; Lark's own parser decides (and reports the error)."""


@dataclass(frozen=True)
class Tables:
    """What the loop needs of Lark's analysis, as plain data (shipped in `_grammar_tables.py`, so that a
    `convplan check` never imports Lark unless the text has a syntax error)."""

    actions: dict  # state -> {terminal or rule name: next state (shift/goto), (size, rule index, origin) to
    #                reduce, or origin alone to reduce a `?rule` of one child (the child passes through unchanged)
    lexers: _Lexers  # state -> (compiled regex, {terminal: {text: keyword terminal}}, {character: terminal})
    ignore: frozenset
    newlines: frozenset  # terminals whose text may hold a newline
    kept: frozenset  # terminals that reach the tree as tokens; the rest are placeholders
    start: int
    end: int
    rules: tuple  # per rule index: (origin, alias, template, expand1, ((symbol, is_term, dropped), ...))
    chains: dict = field(default_factory=dict)  # (state below, top state, terminal) -> top after `?rule` steps
    reducers: dict = field(default_factory=dict)  # node builder class -> reducers (see callbacks)
    plains: dict = field(default_factory=dict)  # indentation settings -> {terminal: _plain(terminal)}, filled as met


class _Lexers(dict):
    """state -> (compiled regex, keyword table, {character: terminal}); `specs` are the distinct ones (44).  Each
    is compiled the first time a state that lexes with it is met: ~7 ms for all of them, and a plan meets few
    (cnn1d 17, all the examples 30).  The third is firstchar.singles, shipped with the tables: where a bracket,
    comma or `=` is the only terminal that can start, the loop takes it without a regex match.  A pattern this
    Python's `re` refuses stops the fast path (Bail: Lark parses), as before."""

    def __init__(self, by_state: dict, specs: list):
        super().__init__()
        self.by_state, self.specs = by_state, specs
        self._compiled: list = [None] * len(specs)

    def __missing__(self, state: int):
        i = self.by_state[state]  # KeyError: a state without a lexer
        if self._compiled[i] is None:
            pattern, flags, keywords, singles = self.specs[i]
            try:
                self._compiled[i] = (re.compile(pattern, flags), keywords, singles)
            except re.error:
                raise Bail from None
        self[state] = self._compiled[i]
        return self[state]


def tables(lark) -> Tables:
    """Read the tables of a LALR `Lark` built with a contextual lexer (and an Indenter as postlex)."""
    from lark.parsers.lalr_analysis import Shift

    table = lark.parser.parser._parse_table
    index = {rule: i for i, rule in enumerate(lark.rules)}
    actions = {}
    for state, row in table.states.items():
        # Lark's keys are grammar Tokens, whose __eq__ is Python code: plain str keys hash and compare in C
        actions[state] = {str(sym): arg if action is Shift else _reduction(arg, index[arg])
                          for sym, (action, arg) in row.items()}
    import json  # here: a check reads the shipped tables and never gets here

    contextual = lark.parser.lexer.lexer
    specs, by_state, seen = [], {}, {}
    for state, lexer in contextual.lexers.items():
        spec = _state_lexer(lexer)
        key = json.dumps(spec, sort_keys=True)
        if key not in seen:
            seen[key] = len(specs)
            specs.append(spec)
        by_state[state] = seen[key]
    root = contextual.root_lexer
    rules = tuple((str(r.origin.name), _name(r.alias), _name(r.options.template_source), bool(r.options.expand1),
                   tuple((str(sym.name), bool(sym.is_term), bool(sym.is_term and sym.filter_out))
                         for sym in r.expansion)) for r in lark.rules)
    kept = frozenset(name for *_, expansion in rules for name, term, dropped in expansion if term and not dropped)
    return Tables(actions, _Lexers(by_state, specs), frozenset(root.ignore_types), frozenset(root.newline_types),
                  kept, table.start_states["start"], table.end_states["start"], rules)


def _name(name) -> str | None:
    return None if name is None else str(name)


def _reduction(rule, index: int) -> tuple | str:
    """How to reduce by `rule`.  `?rule: x` with one child that reaches the tree unchanged (most of
    them: expr -> test -> ... -> atom for every number) needs no callback, only a new state."""
    (sym,) = rule.expansion if len(rule.expansion) == 1 else (None,)
    passes = sym is not None and rule.options.expand1 and not rule.alias and (
        not sym.name.startswith("_") if not sym.is_term else not sym.filter_out)
    return str(rule.origin.name) if passes else (len(rule.expansion), index, str(rule.origin.name))


def _state_lexer(lexer) -> tuple:
    from lark.lexer import UnlessCallback

    scanner = lexer.scanner
    if len(scanner._mres) != 1:
        raise Bail("a lexer with more than one regex")  # Lark splits past 100 terminals; ours has ~50
    keywords = {}
    for terminal, callback in lexer.callback.items():
        if not isinstance(callback, UnlessCallback):
            raise Bail(f"an unknown lexer callback on {terminal}")
        keywords[terminal] = {t.pattern.value: t.name for t in callback.scanner.terminals}
    regex = scanner._mres[0]
    if not isinstance(regex, re.Pattern):
        raise Bail("a lexer regex of another module than re")
    from . import firstchar  # (here: a check reads the shipped tables)

    singles = sorted(firstchar.singles(regex.pattern, regex.flags).items())  # (sorted: the same file each time)
    singles = {c: name for c, name in singles if name not in keywords}
    return regex.pattern, regex.flags, keywords, singles


def data(t: Tables) -> dict:
    """The tables as plain literals (lists, dicts, str, int, bool, None): what `_grammar_tables.py` ships."""
    return {
        "actions": [[state, {sym: list(a) if isinstance(a, tuple) else a for sym, a in row.items()}]
                    for state, row in t.actions.items()],
        "lexers": [[state, i] for state, i in t.lexers.by_state.items()],
        "specs": [[pattern, flags, keywords, singles] for pattern, flags, keywords, singles in t.lexers.specs],
        "ignore": sorted(t.ignore), "newlines": sorted(t.newlines), "kept": sorted(t.kept),
        "start": t.start, "end": t.end,
        "rules": [[origin, alias, template, expand1, [list(sym) for sym in expansion]]
                  for origin, alias, template, expand1, expansion in t.rules]}


def from_data(data: dict) -> Tables | None:
    """Tables from `data`, or None if they do not hold together (every state the loop can reach has a row and a
    lexer, every reduction names a rule, every regex compiles)."""
    try:
        actions = {int(state): {str(sym): tuple(a) if isinstance(a, list) else a for sym, a in row.items()}
                   for state, row in data["actions"]}
        rules = tuple((str(origin), _name(alias), _name(template), bool(expand1),
                       tuple((str(sym), bool(term), bool(dropped)) for sym, term, dropped in expansion))
                      for origin, alias, template, expand1, expansion in data["rules"])
        for row in actions.values():
            for a in row.values():
                if not (a in actions if type(a) is int else type(a) is str or (
                        len(a) == 3 and type(a[0]) is int and type(a[1]) is int and 0 <= a[1] < len(rules)
                        and type(a[2]) is str)):
                    return None
        specs = [(str(p), int(f), {str(k): {str(t): str(n) for t, n in v.items()} for k, v in kw.items()},
                  {str(c): str(n) for c, n in one.items() if len(c) == 1}) for p, f, kw, one in data["specs"]]
        by_state = {int(state): int(i) for state, i in data["lexers"]}
        if by_state.keys() != actions.keys() or any(not 0 <= i < len(specs) for i in by_state.values()):
            return None
        return Tables(actions, _Lexers(by_state, specs), frozenset(map(str, data["ignore"])),
                      frozenset(map(str, data["newlines"])), frozenset(map(str, data["kept"])),
                      int(data["start"]), int(data["end"]), rules)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, re.error):
        return None


def callbacks(t: Tables, builder) -> list:
    """A reducer per rule index, called as reducer(builder, children): the rule's children in (tokens and
    filtered placeholders as the loop pushed them), what Lark's tree builder would give out, with the
    builder's method per rule (or alias) for a Tree.  Made once per builder class (`t.reducers`).

    As Lark's filters: anonymous tokens are dropped, the children of `_rule`s and of Lark's `__anon`
    helpers (which have no method: they build a list here, not a Tree) are spliced into their parent, and a
    `?rule` left with one child passes it on.  A named rule without a method would give a Tree: Bail."""
    return reducers(t, type(builder))


def reducers(t: Tables, cls) -> list:
    """The reducers for node builders of class `cls`, made on first use."""
    made = t.reducers.get(cls)
    if made is None:
        made = t.reducers[cls] = [_reducer(rule, cls) for rule in t.rules]
    return made


class _Splice(list):
    """The children of a rule spliced into its parent (Lark: a Tree of a `_rule`, inlined by the parent)."""


def _reducer(rule: tuple, cls):
    origin, alias, template, expand1, expansion = rule
    keep = tuple(i for i, (_, _, dropped) in enumerate(expansion) if not dropped)
    spliced = frozenset(i for i in keep if not expansion[i][1] and expansion[i][0].startswith("_"))
    single = expand1 and not alias
    method = getattr(cls, alias or template or origin, None)
    pack = method is None
    if single and len(keep) == 1 and not spliced:  # `?rule: "(" expr ")"`: the child passes on
        (i,) = keep
        return lambda builder, children: children[i]
    if pack and not origin.startswith("_"):
        raise Bail(f"no node builder for rule {origin}")
    if spliced:
        return _splicing(keep, spliced, single, method)
    # (each case is written out: a comprehension is a frame of its own, and `f(*args)` slower than `f(a, b)`)
    whole = len(keep) == len(expansion)
    if pack:
        if whole:
            return lambda builder, children: _Splice(children)
        if not keep:
            return lambda builder, children: _Splice()
        if len(keep) == 1:
            (i,) = keep
            return lambda builder, children: _Splice((children[i],))
        pick = itemgetter(*keep)
        return lambda builder, children: _Splice(pick(children))
    if not keep:
        return lambda builder, children: method(builder)
    if len(keep) == 1:
        (i,) = keep
        return lambda builder, children: method(builder, children[i])
    if len(keep) == 2:
        i, j = keep
        return lambda builder, children: method(builder, children[i], children[j])
    if whole:
        return lambda builder, children: method(builder, *children)
    pick = itemgetter(*keep)
    return lambda builder, children: method(builder, *pick(children))


def _splicing(keep: tuple, spliced: frozenset, single: bool, method):
    """The reducer of a rule with `_rule` children to splice in (see callbacks); `method` None packs them."""
    first = keep[0] if keep[0] in spliced else None
    pack = method is None
    if first is not None and len(keep) == 2 and keep[1] not in spliced and not single:  # `x: x item`
        j = keep[1]

        def grow(builder, children):
            kept = children[first]  # as Lark's filter, the list of a left-recursive rule grows in place
            kept.append(children[j])
            if pack:
                return kept if kept.__class__ is _Splice else _Splice(kept)
            return method(builder, *kept)
        return grow

    def reduce(builder, children):
        # as Lark's filter, the list of a left-recursive `x: x item` grows in place: each list is consumed once
        kept = [] if first is None else children[first]
        for i in keep:
            if i in spliced:
                if i != first:
                    kept += children[i]
            else:
                kept.append(children[i])
        if single and len(kept) == 1:
            return kept[0]
        if pack:  # the list grown in place is the rule's value: copying it made a body of n statements n**2
            return kept if kept.__class__ is _Splice else _Splice(kept)
        return method(builder, *kept)
    return reduce


def parse(text: str, t: Tables, calls: list, builder, indenter) -> object:
    """Parse `text` (ending in a newline), calling `calls` on each reduction; raise Bail on anything odd.

    One long function on purpose: it runs once per token, and a function call per step (lex, shift, reduce)
    would cost about a third more.  The three parts are marked below."""
    actions, lexers, ignore, newlines, kept, end_state = t.actions, t.lexers, t.ignore, t.newlines, t.kept, t.end
    chains = t.chains
    plains = t.plains.setdefault(indenter, {})
    nl, dedent_type = indenter.NL_type, indenter.DEDENT_type
    opens, closes = set(indenter.OPEN_PAREN_types), set(indenter.CLOSE_PAREN_types)
    states, values, starts, ends = [t.start], [], [], []
    pos, size, line, line_start = 0, len(text), 1, 0
    paren, levels, queue = 0, [0], []
    indent = _indentation(levels, queue, indenter)
    p0 = p1 = 0
    while True:
        # 1. the next token: a queued _INDENT/_DEDENT, one lexed by this state's lexer, or the end
        if queue:  # _INDENT/_DEDENT, at the position of the newline before them (as Lark's Indenter)
            kind, tok = queue.pop(), None
        elif pos < size:
            regex, keywords, singles = lexers[states[-1]]
            kind = singles.get(text[pos])
            if kind is None:
                m = regex.match(text, pos)
                if m is None:
                    raise Bail
                kind, p0, pos = m.lastgroup, pos, m.end()
                if kind in keywords:
                    kind = keywords[kind].get(m.group(), kind)
            else:  # the one terminal that can start here, of this one character: no regex match (~1/3 of the tokens)
                p0, pos = pos, pos + 1
            plain = plains.get(kind)
            if plain is None:
                plain = plains[kind] = _plain(kind, kept, newlines, ignore, nl, opens, closes)
            if plain:  # most tokens: a name or a number the node builders read as (text, span)
                p1, value = pos, text[p0:pos]
                col = p0 - line_start + 1
                tok = (value, new_span(line, col, line, col + pos - p0))
            elif plain is False:  # a comma, an operator, a keyword the tree drops
                p1, tok = pos, None
            else:  # newlines, comments, spaces, brackets
                if kind in newlines:
                    value = text[p0:pos]
                    breaks = value.count("\n")
                    if breaks:
                        line += breaks
                        line_start = p0 + value.rindex("\n") + 1
                if kind in ignore:
                    continue
                p1 = pos
                if kind in kept:  # (text, span): what the node builders read of a token
                    value = text[p0:pos]
                    col = p0 - line_start + 1
                    tok = (value, new_span(line, col, line, col + pos - p0))
                else:
                    tok = None
                if kind == nl:  # 2. indentation, as PlanIndenter: newlines inside brackets are dropped
                    if paren:
                        continue
                    indent(text[line_start:pos])  # 2. indentation: _INDENT/_DEDENT queued
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
            # the rule's n entries become one: the first stays (its start is the rule's) and is rewritten below,
            # the others go: no del at all for one child (most rules), and no append
            if n:
                children, last = values[-n:], ends[-1]
                if n > 1:
                    del states[1 - n:], values[1 - n:], starts[1 - n:], ends[1 - n:]
                    ends[-1] = last
                first = starts[-1]
            else:  # an empty rule: a new entry, at the lookahead
                children, first, last = [], p0, p0
                states.append(None)
                values.append(None)
                starts.append(p0)
                ends.append(p0)
            builder.begin, builder.end = first, last
            value = calls[rule](builder, children)
            states[-1] = actions[states[-2]][origin]
            values[-1] = value
            if kind == "$END" and states[-1] == end_state:
                return value


def _indentation(levels: list, queue: list, indenter):
    """The indentation step, as PlanIndenter's: indent(text after a newline) queues the _INDENT or _DEDENTs the
    new line's indentation makes, levels kept in `levels`; Bail on an inconsistent dedent (Lark's run reports it).
    Once a line, after a newline lexed."""
    tab_len, indent_type, dedent_type = indenter.tab_len, indenter.INDENT_type, indenter.DEDENT_type

    def indent(indent_str: str) -> None:
        indent = indent_str.count(" ") + indent_str.count("\t") * tab_len
        if indent > levels[-1]:
            levels.append(indent)
            queue.append(indent_type)
        else:
            while indent < levels[-1]:
                levels.pop()
                queue.append(dedent_type)
            if indent != levels[-1]:
                raise Bail
    return indent


def _plain(kind: str, kept: frozenset, newlines: frozenset, ignore: frozenset, nl: str, opens: set, closes: set):
    """How the loop takes a token of `kind`: True, a token the tree keeps and nothing more; False, one it drops and
    nothing more; 0, one that needs more (newlines, ignored text, brackets: the loop's general path)."""
    if kind in newlines or kind in ignore or kind == nl or kind in opens or kind in closes:
        return 0
    return kind in kept


def _pass_through(actions: dict, below: int, top: int, kind: str) -> int:
    """The top state after every `?rule` reduction in a row that `kind` causes (a number in an argument
    goes atom -> unary -> product -> ... -> expr): each replaces the top state, all from the same `below`."""
    action = actions[top].get(kind)
    while action.__class__ is str:
        top = actions[below][action]
        action = actions[top].get(kind)
    return top
