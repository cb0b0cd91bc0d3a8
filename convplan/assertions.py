"""`->` assertions and the `?` unknowns they determine: an assertion is solved for the unknowns
of its layer, then each asserted dim is proven, refused (with the argument value that would
make it hold) or kept as a requirement (`H % 8 == 0`).  Merges solve their operands' unknowns
the same way (`Conv2d(64, 3, padding=?)` in a residual)."""

from __future__ import annotations

from dataclasses import dataclass

from . import nodes as n
from .errors import MAX_REPORTED, Fix
from .fixes import insert_line
from .hints import assertion_fixes, asymmetric_for_unknown, flatten_hint
from .layers import FLATTEN
from .scope import Skip, State
from .shapes import equal, equal_condition, pyrepr
from .show import show_shape
from .solve import SolveError, solve
from .values import Values


@dataclass(frozen=True)
class Named:
    """What an assertion needs of the thing asserted on when it is no layer: its name (a block or merge)."""

    name: str


class Assertions:
    def __init__(self, st: State, values: Values):
        self.st, self.values, self.diag, self.unknowns = st, values, st.diag, st.unknowns

    def check(self, stmt: n.Layer, spec, out: tuple, shape=None, args=None, name: str | None = None) -> tuple:
        """The output shape, with the assertion's unknowns solved; Skip if the assertion is refused."""
        written = stmt.expect
        try:
            want = [self._dim(d) for d in written.dims]
            if len(want) != len(out):
                flat = shape and flatten_hint(spec, shape, out, want)
                self.diag.error("E320", self.unknowns.as_written(
                    f"{spec.name} gives a {len(out)}-D output {show_shape(out)}, but the plan asserts {len(want)}-D "
                    f"{show_shape(want)}"), written.span, hints=[flat],
                    fixes=[Fix(flat, (insert_line(stmt.span, self.st.frame.source, f"{FLATTEN.name}()"),))
                           if flat and isinstance(stmt, n.Layer) else None])
                raise Skip
        except Skip:  # the assertion is reported: its layer's `?` is not "determined by nothing" (E310) as well
            self.unknowns.unsolvable |= self.unknowns.in_(out)
            raise
        solution = self.unknowns.solution
        out = tuple(d.xreplace(solution) for d in out)
        want = [d.xreplace(solution) for d in want]
        free = self.unknowns.in_((*out, *want))
        try:
            found = solve(list(zip(out, want, strict=True)), free)
        except SolveError as exc:
            self.unknowns.unsolvable |= free  # reported here, not again as E310
            pairs = list(zip(out, want, strict=True))
            fix = asymmetric_for_unknown(spec, pairs, free) if self._fixes(shape) else None
            self.diag.error("E323" if exc.timed_out else "E321",
                            f"{spec.name}: {self.unknowns.as_written(exc.message)}", written.span,
                            hints=[exc.hint, fix and fix.hint], fixes=[self._edit(fix, stmt, spec)])
            raise Skip from None
        solution.update(found)
        out = tuple(d.xreplace(found) for d in out)
        want = [w.xreplace(found) for w in want]
        for i, (have, asserted, d) in enumerate(zip(out, want, written.dims, strict=True)):
            verdict = equal(have, asserted)
            if verdict is False:
                found = assertion_fixes(spec, shape, args, i, asserted, want) if self._fixes(shape) and not free \
                    else []
                self.diag.error("E322", f"{spec.name} gives {show_shape(out)}, but the plan asserts "
                                f"{show_shape(want)}", d.span,
                                hints=[f"this dim is {pyrepr(have)}, not {pyrepr(asserted)}", *(f.hint for f in found)],
                                fixes=[self._edit(f, stmt, spec) for f in found])
                raise Skip
            if verdict is None:  # true for some sizes only: the assertion becomes a requirement (H % 8 == 0)
                self.st.conds.append((equal_condition(have, asserted), f"{spec.name}: the asserted dim "
                                      f"{pyrepr(asserted)}", name or (self.st.nodes[-1].name if self.st.nodes else ""),
                                      d.span, out))
        return out

    def _edit(self, found, stmt, spec):
        """A suggested argument value as an edit of the layer's call (None for no layer, or no edit)."""
        if found is None or not isinstance(stmt, n.Layer) or not hasattr(spec, "arg_names"):
            return None
        return found.fix(stmt.call, spec.arg_names, self.st.frame.source)

    def _fixes(self, shape) -> bool:
        """Whether to search for a fix: only for the errors that will be shown."""
        return bool(shape) and len(self.diag.errors) < MAX_REPORTED

    def _dim(self, d: n.Expr):
        if isinstance(d, n.Ellipsis_):
            self.diag.error("E207", "`...` stands for leading dims only in a block's input pattern, not in an "
                            "assertion", d.span, hints=["write every dim out; in a block, name them in its input "
                                                        "pattern (`input [N, C, L]`)"])
            raise Skip
        return self.values.int(d, "an asserted dim")

    def merge(self, spec, call: n.Call, shapes: list, args: dict) -> list:
        """The operands' shapes with their unknowns solved so that they agree (except along the dim a
        merge like cat joins on)."""
        if not self.unknowns.table:  # no `?` so far: nothing to put in or solve (both walk every dim)
            return shapes
        solution = self.unknowns.solution
        shapes = [tuple(d.xreplace(solution) for d in s) for s in shapes]
        free = self.unknowns.in_(d for s in shapes for d in s)
        if not free or (len({len(s) for s in shapes}) > 1 and not spec.broadcasts):
            return shapes  # nothing to solve; the rule reports the ranks
        rank = max(len(s) for s in shapes)
        if spec.broadcasts:  # right-aligned: `?` makes the dims equal, else (a dim of 1 stretches) meets the sizes
            aligned = [(1,) * (rank - len(s)) + s for s in shapes]
            common = [(s[i], aligned[0][i]) for s in aligned[1:] for i in range(rank - min(map(len, shapes)), rank)]
            tries = [common, [(a, b) for a, b in common if a != 1 != b]]
        else:
            written = args[spec.along] if spec.along else None
            along = written % rank if written is not None and -rank <= written < rank else None
            tries = [[(s[i], shapes[0][i]) for s in shapes[1:] for i in range(len(s)) if i != along]]
        for k, pairs in enumerate(tries):
            try:
                found = solve(pairs, free)
                break
            except SolveError as exc:
                if k + 1 < len(tries):
                    continue
                self.diag.error("E321", f"{call.name}: {exc.message}", call.name_span, hints=[exc.hint])
                raise Skip from None
        solution.update(found)
        return [tuple(d.xreplace(found) for d in s) for s in shapes]
