"""The smallest sizes that meet a plan's requirements (`Plan.smallest_sizes`, and the sizes `verify` and
`codegen` choose where none are given): a search that steps the sizes up from a start, a requirement at a time."""

from __future__ import annotations

import sympy

from .requirements import Requirement, is_bound
from .shapes import dim, evaluate, holds

SIZE_SEARCH = 4096  # steps of smallest_sizes' search
NEAR_SEARCH = 1 << 14  # points smallest_sizes tries, in all, where no single step helps (_nearest)
NEAR_TRIES = 1 << 11  # of them, at one such place
LAST_SEARCH = 1 << 13  # points tried from the start where the stepping search found none (_first_met)


def smallest_sizes(requires, symbols, fixed: dict[str, int], start: int):
    """The smallest sizes (each at least `start`) meeting `requires`, the `fixed` ones as given: (sizes, None,
    None), or (None, why none were found, the requirement that cannot be met or None).  Each bound `X >= k`
    is jumped to and each `X == k` pins X; then a size of the first unmet requirement that is neither fixed
    nor pinned steps up (see _stepped), until all are met; where no single step brings it closer (`A % (2*N) == 0`
    at N = 2, A = 1: A = 2 and N = 3 both leave it as far), the nearest sizes that meet it and the others on the
    same sizes are looked for instead (_nearest).  Sizes only go up, and a step can pass every answer (N % A == 0
    and A//2 % N == 0 hold together only at A = 1, which `A*N >= 2` stepped past): where the steps find none, the
    sizes nearest the start that meet every requirement are looked for (_first_met).  A requirement on fixed and
    pinned sizes only cannot be helped: the answer says what holds each of them."""
    values = {s: start for s in symbols if s not in fixed}
    held: dict[str, tuple[int, Requirement | None]] = {k: (v, None) for k, v in fixed.items()}
    for req in requires:
        c = req.condition
        if is_bound(c) and c.lhs.name in values:
            values[c.lhs.name] = max(values[c.lhs.name], int(c.rhs))
    for req in requires:  # after the bounds: `C == 8` holds even where the search starts higher
        c = req.condition
        if isinstance(c, sympy.Eq) and c.lhs.is_Symbol and c.rhs.is_Integer and c.lhs.name in values:
            values[c.lhs.name] = int(c.rhs)
            held.setdefault(c.lhs.name, (int(c.rhs), req))
    budget = [NEAR_SEARCH]
    first = dict(values)
    for _ in range(SIZE_SEARCH):
        at = {**values, **fixed}
        broken = next((r for r in requires if not holds(r.condition, _subs(at))), None)
        if broken is None:
            return {s: at[s] for s in symbols}, None, None
        names = sorted(sym.name for sym in broken.condition.free_symbols)
        free = [name for name in names if name in values and name not in held]
        if not free:
            return None, _held_against(broken, names, held), broken
        stepped = _stepped(broken.condition, free, at)
        near, whole = _nearest(broken, requires, free, set(held), at, budget) if len(stepped) > 1 else (None, True)
        if not whole and first is not None:  # no sizes near meet the others too: the steps may have passed them
            found = _first_met(requires, [name for name in first if name not in held], {**first, **fixed})
            if found is not None:
                return {s: found[s] for s in symbols}, None, None
            first = None  # tried
        if near is not None:
            values.update(near)
            continue
        for name in stepped:
            values[name] += 1
    found = None if first is None else _first_met(requires, [name for name in first if name not in held],
                                                  {**first, **fixed})
    if found is not None:
        return {s: found[s] for s in symbols}, None, None
    given = f" with {', '.join(f'{k} = {v}' for k, v in fixed.items())}" if fixed else ""
    return None, f"none found{given} in {SIZE_SEARCH} steps of the search: " + ", ".join(map(str, requires)), None


def _subs(sizes: dict[str, int]) -> dict:
    return {dim(k): sympy.Integer(v) for k, v in sizes.items()}


def _stepped(cond, free: list[str], at: dict[str, int]) -> list[str]:
    """The sizes to step up for the unmet `cond` at sizes `at`: the one whose step brings it closest to holding
    (`C*D >= 6` steps one size up to 6, not both to 3: each size stays as small as the others allow), the
    first of equals; all of them where no single step helps or the condition has no distance."""
    now = _distance(cond, at)
    steps = [_distance(cond, {**at, name: at[name] + 1}) for name in free]
    best = min((d, i) for i, d in enumerate(steps) if d is not None) if any(d is not None for d in steps) else None
    if best is not None and now is not None and best[0] < now:
        return [free[best[1]]]
    return free


def _nearest(broken: Requirement, requires, free: list[str], kept: set[str], at: dict[str, int],
             budget: list[int]) -> tuple[dict[str, int] | None, bool]:
    """The sizes `free` raised by the fewest steps in all (a point per way of sharing them out, up to NEAR_TRIES
    points of what is left of `budget[0]`, which it spends) at which `broken` holds and so does every other
    requirement on those sizes (and on the `kept` ones, which cannot move), and True; failing that, at which
    `broken` alone holds (or None), and False.  For a requirement no single step brings closer: `A % (2*N) == 0` from
    N = 2, A = 1 is met at A = 4, three steps of A, where stepping both sizes at once kept A below 2*N for ever."""
    names = set(free)
    touching = []
    for r in requires:
        symbols = {sym.name for sym in r.condition.free_symbols}
        if r is not broken and symbols & names and symbols <= names | kept:
            touching.append(r.condition)
    alone = None
    total, tries = 1, min(budget[0], NEAR_TRIES)
    budget[0] -= tries
    while tries > 0 and total <= SIZE_SEARCH:
        for steps in _shares(total, len(free)):
            tries -= 1
            point = {**at, **{name: at[name] + k for name, k in zip(free, steps, strict=True)}}
            values = _subs(point)
            if holds(broken.condition, values):
                if all(holds(c, values) for c in touching):
                    budget[0] += tries  # what it did not try
                    return {name: point[name] for name in free}, True
                if alone is None:
                    alone = {name: point[name] for name in free}
            if tries <= 0:
                break
        total += 1
    budget[0] += tries  # what it did not try
    return alone, False


def _first_met(requires, free: list[str], at: dict[str, int]) -> dict[str, int] | None:
    """The sizes `at`, the `free` ones raised by the fewest steps in all (up to LAST_SEARCH points), at which every
    requirement holds; None if none is found.  A requirement on one free size is worked out once per value of it
    (the points share them: a true E402, ViT's `H//16 == 14` from H = 997, is refused in a few milliseconds)."""
    own: dict[str, list] = {name: [] for name in free}
    others = []
    for r in requires:
        symbols = [sym.name for sym in r.condition.free_symbols]
        (own[symbols[0]] if len(symbols) == 1 and symbols[0] in own else others).append(r.condition)
    verdicts: dict[tuple[str, int], bool] = {}

    def alone(name: str, value: int) -> bool:
        found = verdicts.get((name, value))
        if found is None:
            found = verdicts[name, value] = all(holds(c, {dim(name): sympy.Integer(value)}) for c in own[name])
        return found

    tries, total = LAST_SEARCH, 0
    while tries > 0 and total <= SIZE_SEARCH and free:
        for steps in _shares(total, len(free)):
            if all(alone(name, at[name] + k) for name, k in zip(free, steps, strict=True)):
                point = {**at, **{name: at[name] + k for name, k in zip(free, steps, strict=True)}}
                if all(holds(c, _subs(point)) for c in others):
                    return point
            tries -= 1
            if tries <= 0:
                break
        total += 1
    return None


def _shares(total: int, parts: int):
    """Every way of sharing `total` steps among `parts` sizes, the last sizes' share largest first."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _shares(total - first, parts - 1):
            yield (first, *rest)


def _distance(cond, at: dict[str, int]) -> int | None:
    """How far `cond` is from holding at `at` (0 where it holds), for a comparison of two sides that evaluate to
    integers; None for anything else."""
    if holds(cond, _subs(at)):
        return 0
    if not isinstance(cond, (sympy.Eq, sympy.GreaterThan, sympy.StrictGreaterThan, sympy.LessThan,
                             sympy.StrictLessThan)):
        return None
    try:
        diff = evaluate(cond.lhs - cond.rhs, at)
    except ZeroDivisionError:
        return None
    if not isinstance(diff, int):
        return None
    if isinstance(cond, sympy.Eq):
        return abs(diff)
    upward = isinstance(cond, (sympy.GreaterThan, sympy.StrictGreaterThan))  # the left side must grow
    return (max(-diff, 0) if upward else max(diff, 0)) + 1  # + 1: unmet, even where both sides are equal (>)


def _held_against(req: Requirement, names: list[str], held: dict) -> str:
    """Why `req` cannot be met: each of its sizes (all given or pinned) with its value and what holds it."""
    parts = []
    for name in names:
        value, by = held[name]
        parts.append(f"{name} = {value} (" + (f"{by} is required at line {by.span.line}: {by.reason})" if by
                                              else "given)"))
    return f"{req} cannot hold with " + " and ".join(parts) + f"; it is required for {req.reason}"
