"""A line of a plan met again, parsed without the LALR loop: recorded once, then replayed (lalr.parse).

A line, from its first token to its newline shifted, is parsed the same way wherever the parser's top
states are the same: LALR actions depend only on them and on the tokens.  lalr.parse records the line's
shifts and reductions the third time it meets it, and `compiled` turns them into a `Line`, a program
over registers.  From the fourth time on `Line.run` replays it: the node builders run on the same texts at
the new positions, as the loop would have called them.  (A recording costs ~20 to 30 us and a copy as much: in
a small plan, whose lines repeat two to five times, more than they save; in a stack, nothing.)

After COPY_AFTER replays, most of a line is not even built: what a line makes from its own text alone (a
layer's call, with its arguments and numbers) is the node the builders made the time before, with its
spans moved to the new line and column.  `Line.run` copies it (`_Copy`: a closure per node, `_making`),
and runs the builders only for the reductions that take values from the lines before (the statement before
it, finished by this line's first token).  tests/test_parser_equivalence.py checks every node and span
against Lark's parse.

A line of the same tokens as a recorded one, in other texts (`Conv2d(64, 1, ...)` then `Conv2d(128, 3, ...)`),
is parsed the same way too: `tokens_like` lexes it with the recorded lexers, checking each token's kind, and
`like` makes its Line from the recorded one at its own positions.
"""

from __future__ import annotations

from operator import itemgetter

from .errors import Span
from .nodes import new_span

_CONSTANTS = (str, int, float, bool, type(None))
COPY_AFTER = 4  # runs of a line through its node builders before its nodes are copied instead
COPY_AHEAD = 8  # ... where its text is written at least this many times more (else the copy costs more than it saves)


class Line:
    """A recorded line.  Registers: 0 is None (a dropped token), then the `inputs` values the line takes from
    the stack below its start, then its kept tokens, then each reduction's node in order.  A position is an
    offset from the line's first character, or (negative, ~i) the i-th of the inputs' starts then ends."""

    __slots__ = ("depth", "below", "inputs", "tokens", "steps", "run_steps", "left", "above", "nl_state", "nl_at",
                 "copy", "runs", "fixed", "kinds", "kept_at", "shaped_steps", "shaped_left")

    def __init__(self, depth, below, inputs, tokens, steps, left, above, nl_state, nl_at, shape):
        self.depth = depth  # how many states the line reads from the top of the stack
        self.below = below  # those states, as the line found them
        self.inputs = inputs
        self.tokens = tokens  # (start, end) of each kept token
        self.steps = steps  # (rule, registers of its children, begin, end)
        self.run_steps = tuple((rule, children(sources), a, b) for rule, sources, a, b in steps)  # as Line.run reads
        self.left = left  # (register, start, end) of each value the line leaves, its newline's apart
        self.above = above  # the states the line leaves above the `depth - 1` it read and kept
        self.nl_state = nl_state  # the state that lexes its newline
        self.nl_at = nl_at  # where its newline starts
        self.copy = None  # a _Copy after COPY_AFTER runs; False where it cannot be copied
        self.runs = 0
        self.fixed = above == below[1:]  # it leaves the states as it found them (a stack of the same layer)
        # as tokens, for `like`: (lexing state, kind) of each token shifted, where the kept ones are in the
        # positions (2 * shift: start, + 1: end), and the steps and values left with positions as those
        self.kinds, self.kept_at, self.shaped_steps, self.shaped_left = shape

    def run(self, text: str, base: int, line: int, col0: int, values: list, starts: list, ends: list,
            builder, calls: list, _new=object.__new__, _span=Span) -> None:
        """Replay the line starting at offset `base` (line `line`, column `col0`): pop its inputs from the
        stack (values, starts, ends) and push what it leaves."""
        k = self.inputs
        regs = [None]
        if k:
            regs += values[-k:]
            at = starts[-k:] + ends[-k:]
            del values[-k:], starts[-k:], ends[-k:]
        copy = self.copy
        if copy:
            for rule, children, a, b in copy.steps:
                builder.begin = base + a if a >= 0 else at[~a]
                builder.end = base + b if b >= 0 else at[~b]
                regs.append(calls[rule](builder, children(regs)))
            # the copy (_Copy): constants, spans on the line, then nodes, tuples and lists
            regs += copy.constants
            for a, b in copy.spans:  # nodes.new_span, inline: ~6 a line
                span = _new(_span)
                d = span.__dict__
                d["line"], d["col"], d["end_line"], d["end_col"] = line, col0 + a, line, col0 + b
                regs.append(span)
            for make in copy.objects:
                regs.append(make(regs))
            left = copy.left
        else:
            for a, b in self.tokens:
                regs.append((text[base + a:base + b], new_span(line, col0 + a, line, col0 + b)))
            for rule, children, a, b in self.run_steps:
                builder.begin = base + a if a >= 0 else at[~a]
                builder.end = base + b if b >= 0 else at[~b]
                regs.append(calls[rule](builder, children(regs)))
            left = self.left
            self.runs += 1
            if copy is None and self.runs == COPY_AFTER:  # (a line met a few times only is not worth the copy's making:
                # ~350,000 instructions for a convolution's, ~15,000 saved a run)
                ahead = _written_again(text, text[base:base + self.nl_at], base + self.nl_at, COPY_AHEAD)
                self.copy = ahead and _Copy.of(self, regs, line, col0) or False
        for i, a, b in left:
            values.append(regs[i])
            starts.append(base + a if a >= 0 else at[~a])
            ends.append(base + b if b >= 0 else at[~b])


def _written_again(text: str, content: str, pos: int, times: int) -> bool:
    """Whether `content` is in `text` `times` times from `pos` (at most `times` finds: a count of a 500-line stack's
    line was ~120,000 instructions)."""
    for _ in range(times):
        pos = text.find(content, pos)
        if pos < 0:
            return False
        pos += len(content)
    return True


def children(sources: tuple):
    """A function of the registers that gives the registers `sources` as a reducer's children (a tuple: the
    reducers only index, unpack and splice them), without a comprehension's frame."""
    if len(sources) > 1:
        return itemgetter(*sources)
    if sources:
        (i,) = sources
        return lambda regs: (regs[i],)
    return lambda regs: ()


def tokens_like(line: Line, text: str, pos: int, lexers, ignore: frozenset) -> list | None:
    """Where the tokens of a line of `line`'s kinds lie from `pos` (start, end, ...; its newline last), lexed as
    the loop would (each by the lexer `line` read it with); None where a token is of another kind, or text that
    is ignored holds a newline (a line continued with a backslash)."""
    at = []
    for state, kind in line.kinds:
        regex, keywords, _ = lexers[state]
        while True:
            m = regex.match(text, pos)
            if m is None:
                return None
            found = m.lastgroup
            if found in keywords:
                found = keywords[found].get(m.group(), found)
            if found not in ignore:
                break
            if "\n" in m.group():
                return None
            pos = m.end()
        if found != kind:
            return None
        at += (pos, m.end())
        pos = m.end()
    return at


def like(line: Line, at: list, base: int) -> Line:
    """`line` for another text of its tokens (`at`, from tokens_like, the line starting at `base`): what recording
    that text would give, the same shifts and reductions at its own positions."""
    k2 = 2 * line.inputs

    def offset(x: int) -> int:  # a token's start or end, from the line's start; an input's as Line.run reads it
        return at[x] - base if x >= 0 else ~(x + k2)

    return Line(line.depth, line.below, line.inputs, tuple((at[t] - base, at[t + 1] - base) for t in line.kept_at),
                tuple((rule, sources, offset(a), offset(b)) for rule, sources, a, b in line.shaped_steps),
                tuple((i, offset(a), offset(b)) for i, a, b in line.shaped_left), line.above, line.nl_state,
                at[-2] - base, (line.kinds, line.kept_at, line.shaped_steps, line.shaped_left))


def compiled(record: list, found: list, s_floor: int, v_floor: int, above: list, nl_state: int) -> Line:
    """A recorded line as a Line.  `record` holds its shifts (None, kept?, start, end, the state whose lexer
    read the token, its kind) and reductions (size, rule, lookahead start) from the stack of states `found`;
    `s_floor` and `v_floor` are the lowest heights of the states and values it changed, `above` the states it
    left from `s_floor` up.  Each position is kept twice: as an offset, and as the token it is the start or end
    of (2 * shift, or 2 * shift + 1), for a line of the same tokens in other texts (`like`)."""
    k = len(found) - 1 - v_floor  # values below the line's start that its reductions took
    # (register, start, end, and those as tokens: an input's from the end of the shaped_steps' positions)
    stack = [(1 + j, ~j, ~(k + j), j - 2 * k, j - k) for j in range(k)]
    tokens, steps, kinds, kept_at = [], [], [], []
    for op in record:
        if op[0] is None:
            _, keep, a, b, lexed_in, kind = op
            t = 2 * len(kinds)
            if keep:
                tokens.append((a, b))
                kept_at.append(t)
            kinds.append((lexed_in, kind))
            stack.append((k + len(tokens) if keep else 0, a, b, t, t + 1))
        else:
            n, rule, at = op
            popped = stack[len(stack) - n:]
            del stack[len(stack) - n:]
            a, b, sa, sb = (popped[0][1], popped[-1][2], popped[0][3], popped[-1][4]) if n else (
                at, at, 2 * len(kinds), 2 * len(kinds))  # an empty rule: at the lookahead, the next token shifted
            steps.append((rule, tuple(r for r, *_ in popped), a, b, sa, sb))
            stack.append((-len(steps), a, b, sa, sb))  # numbered once the tokens are counted
    first_step = 1 + k + len(tokens)

    def register(r: int) -> int:
        return first_step - r - 1 if r < 0 else r

    steps = [(rule, tuple(register(r) for r in sources), a, b, sa, sb) for rule, sources, a, b, sa, sb in steps]
    *left, newline = stack
    depth = len(found) - s_floor + 1
    shape = (tuple(kinds), tuple(kept_at), tuple((rule, sources, sa, sb) for rule, sources, _, _, sa, sb in steps),
             tuple((register(r), sa, sb) for r, _, _, sa, sb in left))
    return Line(depth, found[len(found) - depth:], k, tuple(tokens), tuple(s[:4] for s in steps),
                tuple((register(r), a, b) for r, a, b, _, _ in left), above, nl_state, newline[1], shape)


class _Copy:
    """How a Line makes its nodes by copying those of a run before (in Line.run).  The reductions that read
    the inputs (`steps`, all before the others) still run; the rest of what the line leaves is made from
    registers: constants, then spans on the line (columns from its start), then nodes, tuples and lists, each
    from registers before it by a function of the registers (`_making`).  A node is made as nodebuilders'
    makers do (without its dataclass's __init__): each field from a register (a constant's too), in the order
    of the run's."""

    __slots__ = ("steps", "constants", "spans", "objects", "left")

    def __init__(self, steps, constants, spans, objects, left):
        self.steps, self.constants, self.spans, self.objects, self.left = steps, constants, spans, objects, left

    @staticmethod
    def of(line: Line, regs: list, at_line: int, col0: int) -> _Copy | None:
        """The copy of what `line` made in `regs` (a run at line `at_line`, column `col0`), or None where it
        cannot be copied: a reduction reading the inputs after one that does not, or reading a token; a value
        of a type not known here, or a span off the line."""
        k = line.inputs
        first = 1 + k + len(line.tokens)  # the first step's register
        reading = 0  # how many steps read the inputs: the first ones
        for _, sources, a, b in line.steps:
            if not (a < 0 or b < 0 or any(1 <= i <= k or first <= i < first + reading for i in sources)):
                break
            if any(k < i < first for i in sources):
                return None
            reading += 1
        kept = first + reading  # the registers of the steps from here are copied
        for _, sources, a, b in line.steps[reading:]:
            if a < 0 or b < 0 or any(1 <= i <= k or first <= i < kept for i in sources):
                return None

        def run(i: int) -> int:  # where a register that still runs is, without the tokens
            return i if i <= k else i - len(line.tokens)

        steps = tuple((rule, children(tuple(run(i) for i in sources)), a, b)
                      for rule, sources, a, b in line.steps[:reading])
        maker = _Maker(1 + k + reading, at_line, col0)
        try:
            left = [(run(i) if i <= k or first <= i < kept else maker.register(regs[i]), a, b)
                    for i, a, b in line.left]
        except _CannotCopy:
            return None
        left = maker.resolve(left)
        return _Copy(steps, tuple(maker.constants), tuple(maker.spans), tuple(_making(*o) for o in maker.objects), left)


class _CannotCopy(Exception):
    pass


class _Maker:
    """Builds a _Copy's program from the objects of a run: registers numbered after `kept` (constants,
    spans, then objects; resolved at the end, as their counts are known then), each object once."""

    def __init__(self, kept: int, line: int, col0: int):
        self.kept, self.line, self.col0 = kept, line, col0
        self.constants, self.spans, self.objects = [], [], []
        self.seen: dict = {}  # id -> ("c" | "s" | "o", index)

    def register(self, value) -> tuple:
        key = id(value)
        if key in self.seen:
            return self.seen[key]
        cls = value.__class__
        if cls in _CONSTANTS or (cls is tuple and all(v.__class__ in _CONSTANTS for v in value)):
            self.constants.append(value)
            ref = ("c", len(self.constants) - 1)
        elif cls is Span:
            if not value.line == value.end_line == self.line:
                raise _CannotCopy
            self.spans.append((value.col - self.col0, value.end_col - self.col0))
            ref = ("s", len(self.spans) - 1)
        elif cls is tuple or isinstance(value, list):
            sets = [self.register(v) for v in value]
            self.objects.append((cls, None, sets))
            ref = ("o", len(self.objects) - 1)
        elif hasattr(cls, "_field_names"):  # a syntax node (nodes.syntax): each field a register, constants too
            self.objects.append((cls, tuple(vars(value)), [self.register(v) for v in vars(value).values()]))
            ref = ("o", len(self.objects) - 1)
        else:
            raise _CannotCopy
        self.seen[key] = ref  # (every object is alive in the run's registers: ids stay unique)
        return ref

    def resolve(self, left: tuple) -> tuple:
        """Registers from the provisional references; `left` resolved, the objects' in place."""
        offsets = {"c": self.kept, "s": self.kept + len(self.constants),
                   "o": self.kept + len(self.constants) + len(self.spans)}

        def number(ref):
            return ref if isinstance(ref, int) else offsets[ref[0]] + ref[1]

        self.objects[:] = [(cls, names, tuple(number(r) for r in sets)) for cls, names, sets in self.objects]
        return tuple((number(r), a, b) for r, a, b in left)


def _making(cls, names: tuple | None, sources: tuple):
    """A function of the registers that makes one object of a _Copy: a tuple or list of the registers `sources`
    (where `names` is None), or a node of class `cls` whose fields `names` (the run's, in their order: the dict
    comes out as the builders' did) are the registers `sources`.  One closure per count of fields, the names and
    registers in its cells: ~1.8x faster a node than a loop over (name, register) pairs, and no dict.update."""
    new = object.__new__
    if names is None:
        items = children(sources)
        return items if cls is tuple else lambda regs: cls(items(regs))
    if len(names) == 2:
        a, b = names
        i, j = sources

        def make(regs):
            node = new(cls)
            d = node.__dict__
            d[a], d[b] = regs[i], regs[j]
            return node
    elif len(names) == 3:
        a, b, c = names
        i, j, k = sources

        def make(regs):
            node = new(cls)
            d = node.__dict__
            d[a], d[b], d[c] = regs[i], regs[j], regs[k]
            return node
    elif len(names) == 4:
        a, b, c, e = names
        i, j, k, m = sources

        def make(regs):
            node = new(cls)
            d = node.__dict__
            d[a], d[b], d[c], d[e] = regs[i], regs[j], regs[k], regs[m]
            return node
    elif len(names) == 5:  # a Call: name, args, span, name_span and _depth
        a, b, c, e, f = names
        i, j, k, m, o = sources

        def make(regs):
            node = new(cls)
            d = node.__dict__
            d[a], d[b], d[c], d[e], d[f] = regs[i], regs[j], regs[k], regs[m], regs[o]
            return node
    else:
        pairs = tuple(zip(names, sources, strict=True))

        def make(regs):
            node = new(cls)
            d = node.__dict__
            for name, r in pairs:
                d[name] = regs[r]
            return node
    return make
