"""Fixes worth suggesting: the argument value that satisfies an `->` assertion, asymmetric
padding where no symmetric one exists, Flatten() before a Linear, torch's argument order,
and what to do with an argument the input decides but the plan wrote anyway.

Everything here is best effort and cheap: small searches with a budget counted in checks, not
seconds (a busy machine gives the same hints as a quiet one), and a hint is simply left out when
none is found.  Layer kinds are never named: what matters is read from the registry (argument
kinds, `nd`, `asymmetric_pad`, `FLATTEN`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .errors import Fix, source_lines
from .fixes import insert_line, remove_arg, rewrite_args, set_arg
from .layers import FLATTEN, INT, PAD, SIZE, LayerError, LayerSpec, RuleContext, asymmetric_pad
from .shapes import FloorDiv, equal, holds, pyrepr, to_expr
from .show import show_shape, show_value

SEARCH = range(0, 65)
CHECKS = 200  # checks (rule runs, solves, candidates) for one assertion's hints: ~0.2 s; a count, not a clock
SIZES = range(1, 4097)  # sizes tried for `Flatten() gives 320 when L = 40`


class Budget:
    """How many more candidate checks a search may make (rule runs, equation solves, candidate values)."""

    def __init__(self, checks: int):
        self.left = checks

    def spend(self) -> bool:
        """Take one check; False once none is left."""
        self.left -= 1
        return self.left >= 0


def _u() -> sympy.Symbol:
    return sympy.Symbol("_fix", integer=True)


# -- a value that makes the assertion hold ---------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A hint, and what carries it out: argument `arg` set to the text `value`, after a new line `before`
    (a layer call) where one is needed."""

    hint: str
    arg: str | None = None
    value: str | None = None
    before: str | None = None

    def fix(self, call, positional_names, source: str) -> Fix | None:
        """The edits on `call` (whose callee takes `positional_names` in order), in the file `source`."""
        if self.arg is None:
            return None
        edits = (set_arg(call, positional_names, self.arg, self.value),)
        if self.before:
            edits = (insert_line(call.span, source, self.before), *edits)
        return Fix(self.hint, edits)


def assertion_fixes(spec: LayerSpec, shape: tuple, args: dict, index: int, want, whole=None) -> list[Suggestion]:
    """Hints like "padding=2 gives [N, 32, L]" for an asserted dim `index` that came out wrong (`whole`: the
    asserted shape, when known, so that padding=1 is preferred to padding=(1, 0) where it gives all of it)."""
    budget = Budget(CHECKS)
    order = sorted((a for a in spec.args if a.kind in (INT, SIZE, PAD)), key=lambda a: (a.kind != PAD, a.name))
    hints = []
    for arg in order:
        if budget.left <= 0 or len(hints) == 2:
            break
        fix = _fix_one(spec, shape, args, arg, index, want, budget, whole)
        if fix:
            hints.append(fix)
    return hints


def _fix_one(spec, shape, args, arg, index, want, budget: Budget, whole=None) -> Suggestion | None:
    j = index - (len(shape) - spec.nd) if spec.nd else None
    value = _with(args[arg.name], _u(), j, spec.nd)
    if value is None:
        return None
    if not budget.spend():
        return None
    out = _run(spec, shape, {**args, arg.name: value})
    if out is None or index >= len(out) or not out[index].has(_u()):
        return None
    root = _solve(out[index], want, budget)
    if root is None:
        return None
    if root.is_Integer:
        fixed = _with(args[arg.name], root, j, spec.nd)
        new = _run(spec, shape, {**args, arg.name: fixed}, strict=True)
        if new is None:
            return None
        if isinstance(fixed, tuple) and not isinstance(args[arg.name], tuple) and whole is not None:
            every = _run(spec, shape, {**args, arg.name: root}, strict=True)  # padding=1 for every dim
            if every is not None and all(equal(a, b) is True for a, b in zip(every, whole, strict=True)):
                fixed, new = root, every
        return Suggestion(f"{arg.name}={show_value(fixed)} gives {show_shape(new)}", arg.name, show_value(fixed))
    if arg.kind == PAD and (2 * root).is_Integer and root > 0 and j is not None:
        rest = _with(args[arg.name], sympy.Integer(0), j, spec.nd)
        return _asymmetric(spec, root, j, (arg.name, show_value(rest)) if rest is not None else None)
    return None


def _with(current, value, j, nd):
    """`current` (an int or an nd-tuple) with component `j` replaced by `value`."""
    if isinstance(current, (int, sympy.Integer)) and not isinstance(current, bool):
        if nd and nd > 1 and j is not None:
            return tuple(value if k == j else current for k in range(nd))
        return value
    if isinstance(current, tuple) and j is not None and len(current) == nd:
        return tuple(value if k == j else c for k, c in enumerate(current))
    return None


def _run(spec, shape, args, strict: bool = False):
    rule = RuleContext(spec)
    try:
        out = tuple(to_expr(d) for d in spec.rule(rule, shape, args))
    except (LayerError, TypeError, ValueError, ZeroDivisionError):  # a rule may refuse a symbolic value
        return None
    if strict and any(c is sympy.false or c == sympy.false for c, *_ in rule.conds):
        return None
    return out


def _solve(have, want, budget: Budget) -> sympy.Expr | None:
    u = _u()
    if not budget.spend():
        return None
    if not (have - want).has(FloorDiv):
        free = sympy.Dummy("u")  # no integer assumption, so a half-integer padding is found (and explained)
        roots = sympy.solve(sympy.Eq(have.xreplace({u: free}), want.xreplace({u: free})), free)
        roots = [r for r in roots if not r.free_symbols and r.is_rational and r >= 0]
        return roots[0] if roots else None
    for c in SEARCH:
        if not budget.spend():
            return None
        try:
            if equal(have.xreplace({u: c}), want) is True:
                return sympy.Integer(c)
        except (ZeroDivisionError, ValueError, TypeError):  # c = 0 as a stride: not a candidate
            continue
    return None


def _asymmetric(spec: LayerSpec, half, j: int, then: tuple | None = ("padding", "0")) -> Suggestion | None:
    """`padding=3/2` is no padding, but (1, 2) on either side is: a zero padding layer before it (`then`: the
    argument and value the layer then takes)."""
    pad = asymmetric_pad(spec.nd)
    if pad is None:
        return None
    total = int(2 * half)
    pairs = [(0, 0)] * spec.nd
    pairs[spec.nd - 1 - j] = (total // 2, total - total // 2)  # torch lists the last dim first
    flat = tuple(v for p in pairs for v in p)
    layer = f"{pad.name}({show_value(flat)})"
    hint = (f"no symmetric padding works (it would be {half}); pad {total} unevenly with {layer} before {spec.name}"
            + (f", and {then[0]}={then[1]}" if then else ""))
    return Suggestion(hint, then[0], then[1], layer) if then else Suggestion(hint)


def asymmetric_for_unknown(spec: LayerSpec, pairs, unknowns) -> Suggestion | None:
    """For an unsolvable `padding=?`: the asymmetric padding that works, if any."""
    if not spec.nd or len(unknowns) != 1:
        return None
    (u,) = unknowns
    free = sympy.Dummy("u")  # no integer assumption: the half-integer root is the point
    for i, (have, want) in enumerate(pairs):
        if not have.has(u) or have.has(FloorDiv):
            continue
        eq = sympy.Eq(have.xreplace({u: free}), want.xreplace({u: free}))
        roots = [r for r in sympy.solve(eq, free) if r.is_rational and not r.free_symbols]
        if roots and not roots[0].is_Integer and (2 * roots[0]).is_Integer and roots[0] > 0:
            return _asymmetric(spec, roots[0], i - (len(pairs) - spec.nd))
    return None


# -- rank ------------------------------------------------------------------------------


def flatten_hint(spec: LayerSpec, shape: tuple, out: tuple, want: list) -> str | None:
    """The layer kept extra dims the assertion does not have: flattening first would merge them."""
    takes_2d = 2 in spec.ranks if spec.ranks else spec.min_rank <= 2  # not before a Conv2d
    if len(out) <= len(want) or len(shape) < 3 or not takes_2d:
        return None
    merged = sympy.Mul(*shape[1:])
    return (f"insert {FLATTEN.name}() before {spec.name}: it turns {show_shape(shape)} into "
            f"{show_shape((shape[0], merged))}")


def torch_order_hint(spec: LayerSpec, call, source: str, least: int = 2) -> str | None:
    """`Linear(320, 10)` is torch's order; a plan leaves out the argument the input decides (GroupNorm's
    num_channels is its second)."""
    found = _torch_order(spec, call, source, least)
    if found is None:
        return None
    at, rest = found
    fix = f", so write {spec.name}({', '.join(rest)})" if None not in rest else ""
    place = ("first", "second", "third")[at] if at < 3 else f"as argument {at + 1}"
    return f"torch's {spec.name} takes {spec.inferred} {place}; a plan reads it from the input{fix}"


def torch_order_fix(spec: LayerSpec, call, source: str, least: int = 2) -> Fix | None:
    """`torch_order_hint` as an edit: the call's arguments without the one the input decides."""
    found = _torch_order(spec, call, source, least)
    if found is None or None in found[1]:
        return None
    return Fix(torch_order_hint(spec, call, source, least), (rewrite_args(call, found[1]),))


def _torch_order(spec: LayerSpec, call, source: str, least: int):
    """Where torch puts the inferred argument, and the texts of the other arguments; None if the call does
    not look like torch's order."""
    at = spec.torch_order().index(spec.inferred) if spec.inferred else 0
    positional = sum(1 for a in call.args if a.name is None)
    if not spec.inferred or positional < max(least, at + 1):
        return None
    return at, [source_text(a.span, source) for i, a in enumerate(call.args) if i != at]


def source_text(span, source: str) -> str | None:
    """The text a one-line span covers, or None."""
    lines = source_lines(source)
    if span.line != span.end_line or not 1 <= span.line <= len(lines):
        return None
    return lines[span.line - 1][span.col - 1 : span.end_col - 1]


# -- the argument the input decides, written anyway ---------------------------------------


def inferred_given(spec: LayerSpec, shape: tuple, written) -> tuple[str, list[str]]:
    """Message and hints for `Linear(in_features=320, ...)`: what the input gives, and flattening if that helps."""
    leave = f"leave {spec.inferred} out: convplan reads it from the input"
    try:
        actual = to_expr(spec.infer(shape, {}))
    except (KeyError, IndexError, TypeError, ValueError):
        return f"{spec.name}'s {spec.inferred} is read from the input, not written in a plan", [leave]
    head = f"{spec.name}({spec.inferred}={written})" if written is not None else f"{spec.name}'s {spec.inferred}"
    if written is not None and equal(actual, sympy.Integer(written)) is True:
        return f"{head} is right, but a plan leaves it out: it is read from the input", [leave]
    if written is None or len(shape) < 3 or actual != shape[-1]:
        return (f"{head} does not match the input: here it is {pyrepr(actual)} (the input is {show_shape(shape)})",
                [leave])
    merged = sympy.Mul(*shape[1:])
    when = _size_where(merged, written)
    flat = f"insert {FLATTEN.name}() before it: that gives {pyrepr(merged)}"
    if when:
        flat += f", which is {written} when {when}"
    return (f"{spec.name} expects the last dim to be {written}, but the input here is {show_shape(shape)}",
            [flat, f"and {leave}"])


def inferred_given_fixes(hints: list[str], call, arg, source: str) -> list[Fix]:
    """`inferred_given`'s hints as edits: the argument removed, after a Flatten() line where that is the fix."""
    remove = remove_arg(call, arg)
    if len(hints) == 2:  # [insert Flatten() ..., and leave it out]
        return [Fix(f"{hints[0]}, {hints[1]}", (insert_line(call.span, source, f"{FLATTEN.name}()"), remove))]
    return [Fix(hints[0], (remove,))]


def _size_where(e, value: int) -> str | None:
    syms = sorted(e.free_symbols, key=lambda s: s.name)
    if len(syms) != 1:
        return None
    wanted = sympy.Eq(e, value, evaluate=False)
    for v in SIZES:  # holds: Python integers, ~20 times faster than substituting (a division by zero is a no)
        if holds(wanted, {syms[0]: sympy.Integer(v)}):
            return f"{syms[0].name} = {v}"
    return None
