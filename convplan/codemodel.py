"""What codegen writes, found from the plan: the plan re-checked with its parameters left symbolic (so
every size a weight depends on is an expression of the class's constructor arguments), the constructor's
arguments and defaults, the requirements its checks raise on, the blocks the plan reaches; and the
context the writers share while they write (codegen.py, codeinit.py, codeforward.py, the block classes).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import sympy

from .check import Checked, check
from .codeexpr import plain
from .errors import Diagnostic, PlanError, Span
from .graph import Graph
from .pysource import Namespace, Printer, value_source
from .shapes import dim

POSITIVE = "sizes are positive integers"


@dataclass(frozen=True)
class Symbolic:
    """The plan re-checked with its parameters as symbols, where that works."""

    checked: Checked
    params: tuple[str, ...]  # the plan parameters that stayed symbolic
    fixed: dict  # the other parameters, with their values


def symbolic(plan, values: dict[str, int]) -> Symbolic:
    """Re-check `plan` with each parameter symbolic.  A parameter stays a constant when the
    plan cannot be checked with it symbolic (a rule needs its value, a `?` cannot be solved)
    or when its value is not positive (symbols are positive)."""
    floats = {k: v for k, v in plan.params.items() if isinstance(v, float)}  # constants: sizes are integers
    names = [p.name for p in plan.definition.params if p.name not in floats]
    fixed = {p: values[p] for p in names}
    trial = [p for p in names if values[p] >= 1]
    checked = _try_check(plan, {k: v for k, v in fixed.items() if k not in trial})
    if checked is None:  # find the parameters that can stay symbolic, one at a time
        trial, checked = [], _try_check(plan, fixed)
        for p in names:
            if values[p] >= 1:
                found = _try_check(plan, {k: v for k, v in fixed.items() if k not in (*trial, p)})
                if found is not None:
                    trial, checked = [*trial, p], found
    if checked is None:
        checked = check(plan.definition, plan.source, plan.filename, fixed, plan._checked.library)
    return Symbolic(checked, tuple(trial), {**floats, **{k: v for k, v in fixed.items() if k not in trial}})


def _try_check(plan, fixed: dict[str, int]) -> Checked | None:
    floats = {k for k, v in plan.params.items() if isinstance(v, float)}  # keep their defaults
    definition = replace(plan.definition, params=tuple(p if p.name in floats else replace(p, default=None)
                                                       for p in plan.definition.params))
    try:
        return check(definition, plan.source, plan.filename, fixed, plan._checked.library)
    except Exception:  # noqa: BLE001 - a rule may need a concrete value; keep the constant
        return None


def weight_symbols(graph: Graph) -> set[str]:
    """Names of the symbols some layer's arguments (hence its weights) or a learnable tensor's shape depend
    on.  An operation's sizes are read from the tensors at hand when forward runs (`x.shape[0]`)."""
    found = set()
    for node in graph.nodes:
        if node.op in ("layer", "param"):
            forward = node.spec.forward_args if node.op == "layer" else ()  # read in forward, like an operation's
            for v in (*(v for k, v in node.args.items() if k not in forward), node.shape if node.op == "param" else ()):
                found |= free_names(v)
    return found


def free_names(v) -> set[str]:
    if isinstance(v, (tuple, list)):
        return set().union(*(free_names(x) for x in v))
    return {s.name for s in v.free_symbols} if isinstance(v, sympy.Basic) else set()


@dataclass(frozen=True)
class Model:
    """What the writer needs, however it was found: a plan (`describe`) or a test's graph."""

    name: str  # the plan's name
    file: str  # the plan file's name, for comments
    graph: Graph
    args: tuple[tuple[str, int], ...]  # constructor arguments: symbol name, default
    requires: tuple[tuple[sympy.Basic, str, str], ...] = ()  # condition, reason, where ("" if nowhere)
    fixed: tuple[tuple[str, int], ...] = ()  # plan parameters that had to stay constants
    source: str = ""  # the plan's text and file, for diagnostics
    filename: str = "<plan>"
    blocks: dict = field(default_factory=dict)  # block name -> its BlockDefs (two files may each have one)
    repeats: dict = field(default_factory=dict)  # (line, col) of the plan's `name = repeat n:` -> n


def describe(plan, sizes: dict[str, int] | None = None) -> Model:
    """The plan with symbolic parameters; `sizes` (and the plan's own) become the defaults,
    the smallest valid sizes the rest."""
    sizes = dict(sizes or {})
    base = plan.bind(**sizes) if sizes else plan  # refuses unknown names and broken requirements
    values = {**{k: int(v) for k, v in base.params.items() if isinstance(v, sympy.Basic) and v.is_Integer},
              **plan.sizes, **sizes}
    values.update({k: v for k, v in base.smallest_sizes().items() if k not in values})
    sym = symbolic(plan, values)
    graph = sym.checked.graph
    used = weight_symbols(graph)
    args = [s for s in sym.checked.symbols if s in used] + list(sym.params)
    if used - set(args):  # a bug upstream: the source would name an undefined size
        raise codegen_error(plan, plan.definition.name_span, f"the layers depend on "
                            f"{', '.join(sorted(used - set(args)))}, which is neither an input size nor a parameter")
    file = Path(plan.filename).name
    reqs = [(r.condition, r.reason, f"{r.layer}, {Path(r.file).name if r.file else file}:{r.span.line}")
            for r in sym.checked.requires]
    bounded = {c.lhs.name for c, _, _ in reqs
               if isinstance(c, sympy.GreaterThan) and c.lhs.is_Symbol and c.rhs.is_Integer and c.rhs >= 1}
    loose = [dim(a) for a in args if a not in bounded]
    if loose:  # one check for all: `min(C, width) >= 1`
        least = loose[0] if len(loose) == 1 else sympy.Min(*loose, evaluate=False)
        reqs.append((sympy.Ge(least, 1, evaluate=False), POSITIVE, ""))
    # a size the weights depend on has a default only where one was given: the smallest valid size
    # (L=2) would be a guess that the first real input breaks
    given = {**plan.sizes, **sizes}
    defaults = [(a, values[a] if a in given or a in sym.params else None) for a in args]
    defaults.sort(key=lambda item: item[1] is not None)  # Python: no default after a default
    return Model(plan.name, file, graph, tuple(defaults), tuple(reqs), tuple(sym.fixed.items()), plan.source,
                 plan.filename, definitions(sym.checked.library), repeat_counts(plan.definition.body, values))


def repeat_counts(stmts, values: dict) -> dict:
    """(line, col) of each `name = repeat n:` of the plan's own statements -> n, where it is a number."""
    from . import nodes as n
    from .codeexpr import interp, plain

    found = {}
    for s in stmts:
        if isinstance(s, n.Repeat) and s.target and s.count is not None:
            try:
                count = plain(interp(s.count, values))
            except Exception:  # noqa: BLE001 - a count codegen cannot evaluate: the container is unrolled
                count = None
            if isinstance(count, int) and not isinstance(count, bool):
                found[(s.span.line, s.span.col)] = count
        for inner in (getattr(s, "body", None), getattr(s, "orelse", None)):
            if isinstance(inner, tuple):
                found.update(repeat_counts(inner, values))
        for b in getattr(s, "branches", ()):
            found.update(repeat_counts(b.body, values))
    return found


def definitions(library: dict) -> dict:
    """Every block the plan can reach, by name."""
    found: dict = {}
    seen, todo = set(), list(library.values())
    while todo:
        src = todo.pop()
        if id(src.definition) not in seen:
            seen.add(id(src.definition))
            found.setdefault(src.definition.name, []).append(src)
            todo += list(src.namespace.values())
    return found


@dataclass
class Context:
    model: Model
    expr: Printer
    classes: dict = field(default_factory=dict)  # block call path -> (class name, ((argument, value), ...))
    defaults: dict = field(default_factory=dict)  # class name -> {argument: default}: callers leave those out
    block_args: dict = field(default_factory=dict)  # class name -> {block parameter: its argument}
    uses_torch: bool = False
    class_name: str = ""
    kept: dict = field(default_factory=dict)  # constructor argument -> the attribute forward reads it from
    locals: Namespace | None = None  # the plan class's __init__ locals, where a repeat may become a loop
    checks: str = ""  # the module-level function of forward's input checks (codechecks.input_check_function)

    def expr_value(self, v) -> str:
        return value_source(plain(v), self.expr)


def codegen_error(where, span: Span, message: str) -> PlanError:
    """E600: a graph that codegen cannot write (`where`: the Model or Plan, for its file and text)."""
    return PlanError([Diagnostic("E600", f"codegen: {message}", span, where.filename)], where.source)
