"""Syntax tree -> shape graph: the check stage.

`analyse` walks the plan (walker.py: statements, blocks, repeats, merges; layercall.py: one
layer; values.py: the expressions; arguments.py: binding; assertions.py: `->` and `?`), turns
the conditions found into requirements (requirements.py) and runs the passes that annotate the
graph (passes.py).  Every problem is a diagnostic, and the result holds the graph built so far
whatever went wrong: the lines before and beside an error keep their shapes.  `check` is the
strict form: it raises PlanError when there is any error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from . import nodes as n
from .errors import PlanError, TooManyErrors, did_you_mean
from .graph import Graph
from .nogc import paused
from .overwrites import overwrite_warnings
from .passes import run_passes
from .requirements import Requirement, requirements, word_tails
from .scope import Abort, State
from .shapes import unknown
from .unknowns import label
from .walker import Walker

__all__ = ["Checked", "Requirement", "analyse", "check"]


@dataclass(frozen=True)
class Checked:
    graph: Graph
    requires: tuple[Requirement, ...]
    unknowns: dict  # name -> solved int
    env: dict  # plan parameter / size name -> sympy value
    symbols: tuple[str, ...]  # free symbol names, in order of appearance
    warnings: tuple
    library: dict = field(default_factory=dict)  # block name -> scope.BlockSource, as the plan sees them
    errors: tuple = ()  # empty for a plan that checked; else the graph is what could be built
    error: PlanError | None = field(default=None, compare=False)  # the errors as check() raises them
    trace: tuple = field(default=(), compare=False, repr=False)  # scope.Made per statement and `?`: for editors

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def diagnostics(self) -> tuple:
        """Every error and warning, in source order (the plan's own file first)."""
        return tuple(sorted((*self.errors, *self.warnings), key=_position))


@paused
def analyse(plan: n.PlanDef, source: str, filename: str, sizes: dict[str, int] | None = None,
            library: dict | None = None) -> Checked:
    """Check `plan`, never raising for what the plan says: the result holds every node that could be
    computed, and the errors.

    A `?` is the value that holds for every size: with sizes given, more than one may hold there (a kernel of 2 or 3
    both give `(L - 3)//2 + 1` at L = 9), so where the plan's own check (no sizes) solves it, that value is taken, as
    the plan without sizes builds it; else (an assertion that holds at these sizes only) it is solved at them."""
    checked = _analyse(plan, source, filename, sizes, library)
    if sizes and checked.unknowns:
        general = _analyse(plan, source, filename, None, library).unknowns
        if any(checked.unknowns.get(name) != value for name, value in general.items()):
            checked = _analyse(plan, source, filename, sizes, library, general)
    return checked


def _analyse(plan: n.PlanDef, source: str, filename: str, sizes: dict[str, int] | None,
             library: dict | None, solved: dict[str, int] | None = None) -> Checked:
    st = State(source, filename, sizes, library)
    if solved:  # each `?` solved for every size (analyse): its symbol is the one the walk makes for it again
        st.unknowns.solution.update({unknown(f"_{name}"): sympy.Integer(value) for name, value in solved.items()})
    outputs, requires = (), ()
    try:
        for d in getattr(st.library, "errors", ()):  # the imports' problems (imports.library), then the plan's
            st.diag.diags.append(d)
        root = Walker(st).plan(plan)
        outputs = root.outputs or ((root.current,) if root.current is not None else ())
        for _, unk in st.unknowns.unsolved():
            st.diag.error("E310", f"nothing determines {label(unk)}", unk.span,
                          hints=["add an `-> [shape]` assertion after this layer that fixes it"])
        requires = requirements(st)
        word_tails(st, requires)
        _unused_sizes(st, plan)
        overwrite_warnings(st, tuple(t.id for t in outputs))
    except (Abort, TooManyErrors):
        pass  # what was built so far stands; the errors say why it stopped
    graph = Graph(tuple(st.nodes), tuple(t.id for t in outputs), tuple(st.tree))
    graph = run_passes(graph.substitute(st.unknowns.solution))
    return Checked(graph, requires, st.unknowns.solved(), dict(st.env), tuple(st.symbols),
                   tuple(st.diag.warnings), st.library, tuple(st.diag.errors), st.diag.as_error(), tuple(st.trace))


def check(plan: n.PlanDef, source: str, filename: str, sizes: dict[str, int] | None = None,
          library: dict | None = None) -> Checked:
    """Check `plan`; PlanError with every error found if there is any."""
    checked = analyse(plan, source, filename, sizes, library)
    if checked.error is not None:
        try:
            raise checked.error
        finally:  # the traceback holds this frame: without `checked` in it, not a cycle through the error
            checked = None
    return checked


def _position(d) -> tuple:
    return (d.source is not None, d.file, d.span.line, d.span.col)


def _unused_sizes(st: State, plan: n.PlanDef) -> None:
    for name in st.sizes:
        if name not in st.env and name not in st.symbols:
            st.diag.error("E400", f"there is no size or parameter named {name!r} in plan {plan.name}",
                          plan.name_span, hints=[did_you_mean(name, [*st.env, *st.symbols])])

