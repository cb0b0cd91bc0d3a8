"""The characters at which a state's lexer can only find one one-character terminal (lalr.py's loop).

Lark's contextual lexer matches one regex per parser state: `(?P<A>...)|(?P<B>...)|...`, the terminals in
priority order, the first that matches winning.  Python's `re` enters every alternative in turn (a named group
defeats its quick first-character test): ~3,000 instructions a token.  Here each alternative's possible first
characters are read from the pattern (`re`'s own parser); where only one terminal can start with a character
and that terminal is that one character (a bracket, a comma, `=`), the regex would find it, one character
long, so the loop takes it without matching.  Read once, when the tables are made from Lark's analysis
(lalr.tables), and shipped with them: a check never runs this.

Anything not understood (a terminal whose first characters are not a plain set, so that it may start anywhere;
flags that change what a character matches; a pattern that is not a `|` of named groups) gives no entry.
"""

from __future__ import annotations

import re

try:
    from re import _constants as _c  # Python 3.11+
    from re import _parser as _sre
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre  # type: ignore[no-redef]

_REPEATS = tuple(getattr(_c, name) for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_c, name))
_WIDE = 256  # a character range wider than this is not spelled out (its terminal may start anywhere)


def singles(pattern: str, flags: int) -> dict:
    """{character: terminal} for the characters at which only one terminal of `pattern` can match, a terminal of
    that one character: there the whole regex finds that terminal, one character long.  {} where not understood."""
    try:
        parts = _alternatives(pattern, flags)
    except (re.error, ValueError, TypeError, AttributeError, IndexError, OverflowError, RecursionError):
        return {}
    if parts is None or any(starts is None for _, starts, _ in parts):
        return {}  # (a terminal that may start with any character is a candidate everywhere)
    count: dict = {}
    for _, starts, _ in parts:
        for char in starts:
            count[char] = count.get(char, 0) + 1
    return {char: name for name, _, char in parts if char is not None and count[char] == 1}


def _alternatives(pattern: str, flags: int) -> list | None:
    """[(terminal, its possible first characters or None for any, its character if it is one literal character)]
    of `pattern`, a `|` of named groups as Lark joins its terminals; None where it is not that."""
    if flags & (re.IGNORECASE | re.VERBOSE | re.LOCALE):
        return None  # (a character class would need case folding)
    parsed = _sre.parse(pattern, flags)
    items = list(parsed)
    if len(items) != 1 or items[0][0] is not _c.BRANCH:
        return None
    names = {index: name for name, index in parsed.state.groupdict.items()}
    parts = []
    for alternative in items[0][1][1]:
        body = list(alternative)
        if len(body) != 1 or body[0][0] is not _c.SUBPATTERN or body[0][1][0] not in names:
            return None
        group, _, _, inner = body[0][1]
        inner = list(inner)
        found, empty = _first(inner)
        one = chr(inner[0][1]) if len(inner) == 1 and inner[0][0] is _c.LITERAL else None
        parts.append((names[group], None if found is None or empty else frozenset(found), one))
    return parts


def _first(items: list) -> tuple:
    """(the characters a match of the sequence `items` can start with, or None for any; whether it can be empty)."""
    found: set = set()
    for op, av in items:
        chars, empty = _item(op, av)
        if chars is None:
            return None, False
        found |= chars
        if not empty:
            return found, False
    return found, True


def _item(op, av) -> tuple:
    if op is _c.LITERAL:
        return {chr(av)}, False
    if op is _c.IN:
        chars: set = set()
        for kind, value in av:
            if kind is _c.LITERAL:
                chars.add(chr(value))
            elif kind is _c.RANGE and value[1] - value[0] < _WIDE:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:  # a negated set, a category (\d, \w), a wide range: any character
                return None, False
        return chars, False
    if op is _c.SUBPATTERN:
        return _first(list(av[-1]))
    if op is _c.BRANCH:
        chars, empty = set(), False
        for alternative in av[1]:
            found, can_be_empty = _first(list(alternative))
            if found is None:
                return None, False
            chars |= found
            empty = empty or can_be_empty
        return chars, empty
    if op in _REPEATS:
        low, _, inner = av
        found, empty = _first(list(inner))
        return found, empty or low == 0
    return None, False  # anything else (anchors, lookarounds, backreferences, `.`): any character
