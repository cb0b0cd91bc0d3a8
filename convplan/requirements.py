"""Requirements: the conditions the layers found (`L >= 2`, `H % 16 == 0`), turned into what a
plan requires of its sizes.  Unknowns are put in, proven and refuted ones leave (a refuted one
is an error, E302), duplicates and weaker bounds go, divisibility conditions on one size are
joined, and sizes no value satisfies are reported (E303, E304).  W310 warnings are worded here,
once it is known which sizes the requirements leave."""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy

from .errors import Span
from .scope import State
from .shapes import FloorDiv, at_least, combine_residues, holds, pinned, pyrepr, residues
from .show import show_shape

SATISFY_WINDOW = 1024  # sizes searched past a lower bound for a merge's equality (E304)
TAIL_TRIES = 256  # sizes searched (from a size's lower bound, see _candidates) for an example of a W310


@dataclass(frozen=True)
class Requirement:
    """A condition on the input sizes (and parameters) for the plan to be valid."""

    condition: sympy.Basic
    reason: str
    layer: str  # the node that needs it
    span: Span
    file: str = ""  # the file the span is in, when not the plan's own (a block from another file)

    def __str__(self) -> str:
        return pyrepr(self.condition)


def requirements(st: State) -> tuple[Requirement, ...]:
    """The plan's requirements, from every condition found; reports E302-E304."""
    found = []  # (index of the finding, the condition as required), one finding of each condition object
    kept = set()  # ids of the conditions already in `found`: every layer of a stack finds `H >= 3` again (DenseNet121:
    # 218 conditions, 6 distinct), the same object (the rules keep their results), which would be worked out and
    # printed again only to be dropped; known by identity, as hashing a sympy condition is Python code
    unknowns = st.unknowns
    for i, ((original, message, _, span, shape), frame) in enumerate(zip(st.conds, st.conds.frames, strict=True)):
        if _known(kept, original):
            continue
        cond = original.xreplace(unknowns.solution) if unknowns.solution else original
        if cond is not original and isinstance(cond, sympy.GreaterThan):  # `L - 2 >= 0` -> `L >= 2`
            cond = at_least(cond.lhs, cond.rhs)
        if isinstance(cond, sympy.Eq):  # `8 == C` -> `C == 8`
            cond = pinned(cond)
        if unknowns.table and unknowns.in_((cond,)) or type(cond) not in _RELATIONS and cond == sympy.true:
            continue  # an unsolved unknown is reported already (E310)
        if type(cond) not in _RELATIONS and cond == sympy.false:  # (a relation is neither: no sympy `==`)
            with st.diag.located(frame):
                st.diag.error("E302", unknowns.as_written(str(message)), span,
                              hints=[f"the input here is {show_shape(shape)}", unknowns.solved_hint(original)])
            continue
        found.append((i, cond))
        kept.add(id(original))
    reqs = _joined(st, _distinct(st, found))
    _bounds_meet(st, reqs)
    return tuple(_satisfiable(st, reqs))


def _distinct(st: State, kept: list) -> list[Requirement]:
    """The requirements of the conditions kept: one per printed form (the first found), and of the lower bounds
    `X >= k` only the largest per size (_strongest), bounds first.  A bound is not printed: a weaker one goes
    before it is (most of a stack's are weaker: SqueezeNet1_1's 8 conditions leave H >= 17 and W >= 17), and
    two bounds print alike only where their sizes do, which is checked, once per size."""
    bounds: dict = {}  # size -> (index, its largest bound, the first found of that value)
    found: dict = {}  # printed form -> (index, condition), of the other conditions
    for i, cond in kept:
        if is_bound(cond):
            best = bounds.get(cond.lhs)
            if best is None or cond.rhs.p > best[1].rhs.p:  # Python ints: sympy's `>` sympifies both
                bounds[cond.lhs] = i, cond
        else:
            found.setdefault(pyrepr(cond), (i, cond))
    if len(bounds) > 1 and len(set(map(pyrepr, bounds))) < len(bounds):  # two sizes shown alike (stand-ins)
        every: dict = {}
        for i, cond in kept:
            every.setdefault(pyrepr(cond), (i, cond))
        return _strongest([_requirement(st, i, cond) for i, cond in every.values()])
    return [_requirement(st, i, cond) for i, cond in (*bounds.values(), *found.values())]


def is_bound(c) -> bool:
    """Whether `c` is a lower bound on one size, `X >= k`."""
    return isinstance(c, sympy.GreaterThan) and c.lhs.is_Symbol and c.rhs.is_Integer


def _requirement(st: State, i: int, cond) -> Requirement:
    """The requirement `cond` from the finding `i` (its reason, layer and place)."""
    _, message, layer, span, _ = st.conds[i]
    frame = st.conds.frames[i]
    file = frame.file if frame is not None and frame.file != st.diag.file else ""
    return Requirement(cond, str(message), layer, span, file)  # a str, or a Worded (layers/spec.py)


_RELATIONS = frozenset({sympy.Eq, sympy.Ne, sympy.Ge, sympy.Gt, sympy.Le, sympy.Lt})


def _known(kept: set, cond) -> bool:
    """Whether `cond` is in `found` already (a function of its own so that a test can say no).  By identity: an
    equal condition made anew is worked out again and dropped by its printed form, as it was found."""
    return id(cond) in kept


def _strongest(reqs) -> list[Requirement]:
    """Keep, per symbol, only the largest lower bound `X >= k`; other conditions as they are."""
    bounds: dict[sympy.Symbol, Requirement] = {}
    rest = []
    for r in reqs:
        c = r.condition
        if is_bound(c):
            best = bounds.get(c.lhs)
            if best is None or c.rhs.p > best.condition.rhs.p:  # Python ints: sympy's `>` sympifies both
                bounds[c.lhs] = r
        else:
            rest.append(r)
    return [*bounds.values(), *rest]


def _bounds_meet(st: State, reqs: list[Requirement]) -> None:
    """E303 where a size's lower bound passes its upper bound: an Upsample's `L <= 65536` (its scale rule is
    checked that far) after layers that need L >= 100000 left a plan no size satisfies, which checked clean."""
    highs: dict[sympy.Symbol, Requirement] = {}
    for r in reqs:
        c = r.condition
        if isinstance(c, sympy.LessThan) and c.lhs.is_Symbol and c.rhs.is_Integer:
            best = highs.get(c.lhs)
            if best is None or c.rhs.p < best.condition.rhs.p:
                highs[c.lhs] = r
    if not highs:  # most plans
        return
    for r in reqs:
        c = r.condition
        high = highs.get(c.lhs) if isinstance(c, sympy.GreaterThan) and c.rhs.is_Integer else None
        if high is not None and c.rhs.p > high.condition.rhs.p:
            st.diag.error("E303", f"these requirements contradict each other: {r}, {high}", high.span,
                          hints=[f"{r}: {r.reason}", f"{high}: {high.reason}"])


def _joined(st: State, reqs: list[Requirement]) -> list[Requirement]:
    """Divisibility conditions on one size, joined: H % 2 == 0 and (H//2) % 2 == 0 give H % 4 == 0."""
    out: list = list(reqs)
    for cond, replaced in combine_residues([r.condition for r in reqs]):
        if cond is None:
            continue
        main = max(replaced, key=lambda i: residues(reqs[i].condition)[1])
        r = reqs[main]
        if cond is sympy.false:
            st.diag.error("E303", "these requirements contradict each other: "
                          + ", ".join(str(reqs[i]) for i in replaced), r.span)
            continue
        joined = Requirement(cond, f"{r.reason} (with {len(replaced) - 1} more like it)", r.layer, r.span, r.file)
        out[replaced[0]] = joined
        for i in replaced[1:]:
            out[i] = None
    return [r for r in out if r is not None]


def _satisfiable(st: State, reqs: list[Requirement]) -> list[Requirement]:
    """E304 when no size meets a size's requirements together: a merge of `(L + 3)//4` with `(L + 1)//2`
    holds only for L < 5, and a kernel needs L >= 5.  Lower bounds and residues always have solutions (an
    upper bound below a lower one is _bounds_meet's E303), so only the other equalities (from merges) are
    searched, over a window past the size's lower bound."""
    if not any(isinstance(r.condition, sympy.Eq) for r in reqs):  # bounds and residues only (most plans)
        return reqs
    for r in reqs:  # an equality of several sizes that no integers meet: `2*A*N == 3` (its sides' parity)
        c = r.condition
        if isinstance(c, sympy.Eq) and len(c.free_symbols) > 1 and _never_zero(c.lhs - c.rhs):
            st.diag.error("E304", f"no sizes meet this requirement: {r}", r.span,
                          hints=[f"{r.reason}; its two sides cannot be equal for any integer sizes"])
    for sym in {s for r in reqs for s in r.condition.free_symbols}:
        own = [r for r in reqs if r.condition.free_symbols == {sym}]
        odd = [r for r in own if isinstance(r.condition, sympy.Eq) and residues(r.condition) is None]
        if not odd:
            continue
        low = max([int(r.condition.rhs) for r in own if isinstance(r.condition, sympy.GreaterThan)
                   and r.condition.lhs == sym and r.condition.rhs.is_Integer] + [1])
        if not any(all(holds(r.condition, {sym: sympy.Integer(v)}) for r in own)
                   for v in range(low, low + SATISFY_WINDOW)):
            last = max(odd, key=lambda r: (r.span.line, r.span.col))
            st.diag.error("E304", f"no {sym.name} meets these requirements together: "
                          + ", ".join(str(r) for r in own), last.span,
                          hints=[f"{last.reason}; the shapes meeting here cannot agree for any {sym.name} >= {low}"])
    return reqs


def word_tails(st: State, requires) -> None:
    """A W310 is noise for the dims whose sizes the requirements already rule out (the U-Net's pools once
    H % 16 == 0 is required); the rest get an example size.  The sizes the requirements leave are found
    once per symbol, so the cost is linear in the number of warnings."""
    if not st.tails:
        return
    allowed = _allowed_sizes(requires)
    at = {id(d): i for i, d in enumerate(st.diag.diags)}
    dropped = set()
    solution = st.unknowns.solution
    for warning, kind, tails in st.tails:
        index = at.get(id(warning))
        if index is None or st.diag.diags[index] is not warning:
            continue  # a block called many times: its copy was not kept
        parts = []
        for cond, message in tails:
            example = _tail_example(cond.xreplace(solution) if solution else cond, allowed)  # (xreplace walks it)
            if example is not None:
                parts.append(f"{message} when {pyrepr(cond)}" + (f" (e.g. {example})" if example else ""))
        if parts:
            st.diag.diags[index] = replace(warning, message=f"{kind} never reads " + "; nor ".join(parts))
        else:
            dropped.add(index)
    if dropped:
        kept = [d for i, d in enumerate(st.diag.diags) if i not in dropped]
        st.diag.diags[:] = []
        st.diag.diags.extend(kept)


def _allowed_sizes(requires):
    """symbol -> (its lower bound, whether a size from the bound on meets its other requirements), computed when
    first asked.  The search starts at the bound, not at 1: `Conv1d(4, kernel_size=80, stride=16)` needs L >= 80,
    and a search below it found no example and dropped a warning that torch's real tail deserves.  Every size
    tried is at least the bound, so the bound itself is not tried again (most sizes have no other requirement:
    then nothing is)."""
    cache: dict = {}
    split: list = []  # [the lower bounds by symbol, (condition, its symbols) of the others], at the first symbol asked

    def allowed(sym):
        if sym not in cache:
            if not split:
                split.extend(_bounds_and_others(requires))
            lows, others = split
            own = [c for c, free in others if free == {sym}]
            meets: dict[int, bool] = {}

            def ok(v: int) -> bool:
                if v not in meets:
                    meets[v] = all(holds(c, {sym: sympy.Integer(v)}) for c in own)
                return meets[v]

            cache[sym] = lows.get(sym, 1), ok if own else _any_size
        return cache[sym]

    return allowed


def _bounds_and_others(requires) -> tuple[dict, list]:
    """The largest lower bound `X >= k` of each size X (at least 1), and (condition, its symbols) of the other
    requirements."""
    lows: dict = {}
    others = []
    for r in requires:
        c = r.condition
        if is_bound(c):
            lows[c.lhs] = max(lows.get(c.lhs, 1), int(c.rhs))
        else:
            others.append((c, c.free_symbols))
    return lows, others


def _any_size(v: int) -> bool:
    return True


def _tail_example(cond, allowed) -> str | None:
    """`H = 9`: a size of the condition's one symbol that meets the requirements on it; None if there is
    none among the sizes tried (`_candidates`); "" when the condition has several symbols (kept, without an
    example)."""
    symbols = cond.free_symbols
    if len(symbols) != 1:
        return ""
    sym = next(iter(symbols))
    low, ok = allowed(sym)
    for v in _candidates(low, cond):
        if ok(v) and holds(cond, {sym: sympy.Integer(v)}):  # holds: a symbolic stride may be 0 at `v`
            return f"{sym.name} = {v}"
    return None


def _candidates(low: int, cond):
    """TAIL_TRIES sizes from `low` on, then TAIL_TRIES more `_period(cond)` apart: after eight stride-2 layers a pool
    reads (L + 255)//256, which a window of consecutive sizes from L = 769 does not move past 4.  The period is
    found only if the first window has no example (nearly always it has: walking the condition costs more)."""
    yield from range(low, low + TAIL_TRIES)
    period = _period(cond)
    if period > 1:
        yield from range(low + period, low + period * TAIL_TRIES, period)


def _period(cond) -> int:
    """The largest divisor of a floor division in `cond`: stepping the size by it moves that quotient by one."""
    return max((int(f.args[1]) for f in cond.atoms(FloorDiv) if f.args[1].is_Integer), default=1)


def _never_zero(e) -> bool:
    """Whether `e`, a formula of sizes (positive integers) and their floor divisions (integers), is never 0: each
    factor is a positive product of sizes, or a sum of integer terms whose coefficients' gcd does not divide its
    constant (`2*A*N - 3`, `N*(3 - 2*A)`).  False where that does not prove it."""
    try:
        _, factors = sympy.factor_list(sympy.expand(e))
    except (sympy.PolynomialError, sympy.CoercionFailed, NotImplementedError):
        factors = [(e, 1)]
    return bool(factors) and all(f.is_positive or _coprime_to_constant(f) for f, _ in factors)


def _coprime_to_constant(f) -> bool:
    terms = sympy.expand(f).as_coefficients_dict()
    constant = terms.pop(sympy.S.One, sympy.S.Zero)
    if not terms or not all(c.is_Integer for c in (constant, *terms.values())):
        return False
    if not all(m.is_integer for m in terms):
        return False
    g = sympy.igcd(*terms.values()) if len(terms) > 1 else abs(next(iter(terms.values())))
    return int(constant) % int(g) != 0
