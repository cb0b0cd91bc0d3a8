"""Shape graph -> one standalone, readable PyTorch module (no convplan needed to run it).

The plan is checked again with its parameters left symbolic, so every size a weight
depends on stays an expression of the class's constructor arguments: one class serves
every input size the plan allows.  The forward is generated over the graph, one line per
node: a layer calls its submodule, a merge writes what merges.py declares for it.
Submodules keep the graph's node names, so the generated module's state_dict matches
`Plan.build()`'s key for key.

Nothing from the plan's text reaches the output except validated identifiers, numbers
and strings written with a literal printer; codegen never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import sympy

from .check import Checked, check
from .errors import Diagnostic, PlanError, Span
from .graph import Graph, Node
from .merges import MERGES
from .pysource import TAB, Brackets, Namespace, Pre, Printer, Writer, str_literal, value_source
from .shapes import dim, pyrepr
from .show import show_shape

LINE_LENGTH = 88  # ruff's and black's default: the file lands in the user's project
POSITIVE = "sizes are positive integers"

# -- the plan, symbolically --------------------------------------------------------------


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
    """Names of the symbols some node's arguments (hence its weights) depend on."""
    found = set()
    for node in graph.nodes:
        for v in node.args.values():
            found |= _free(v)
    return found


def _free(v) -> set[str]:
    if isinstance(v, (tuple, list)):
        return set().union(*(_free(x) for x in v))
    return {s.name for s in v.free_symbols} if isinstance(v, sympy.Basic) else set()


# -- what to generate --------------------------------------------------------------------


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
        raise _error(plan, plan.definition.name_span, f"the layers depend on {', '.join(sorted(used - set(args)))}, "
                     "which is neither an input size nor a parameter")
    file = Path(plan.filename).name
    reqs = [(r.condition, r.reason, f"{r.layer}, {Path(r.file).name if r.file else file}:{r.span.line}")
            for r in sym.checked.requires]
    bounded = {c.lhs.name for c, _, _ in reqs
               if isinstance(c, sympy.GreaterThan) and c.lhs.is_Symbol and c.rhs.is_Integer and c.rhs >= 1}
    loose = [dim(a) for a in args if a not in bounded]
    if loose:  # one check for all: `min(C, width) >= 1`
        least = loose[0] if len(loose) == 1 else sympy.Min(*loose, evaluate=False)
        reqs.append((sympy.Ge(least, 1, evaluate=False), POSITIVE, ""))
    return Model(plan.name, file, graph, tuple((a, values[a]) for a in args), tuple(reqs),
                 tuple(sym.fixed.items()), plan.source, plan.filename)


def generate(plan, sizes: dict[str, int] | None = None, line_length: int = LINE_LENGTH) -> str:
    """The source of a module defining `class <plan name>(nn.Module)`; `sizes` become the defaults."""
    return write(describe(plan, sizes), line_length)


# -- the writer --------------------------------------------------------------------------


@dataclass
class Context:
    model: Model
    expr: Printer
    attrs: dict[int, str]  # node id -> submodule attribute
    uses_torch: bool = False


def emit(ctx: Context, node: Node, ins: list[str]):
    """The right-hand side of the node's forward line (a layout doc): a submodule call, or
    what the merge's declaration writes."""
    if node.op == "layer":
        return Brackets(f"self.{ctx.attrs[node.id]}", tuple(ins))
    spec = MERGES.get(node.op)
    if spec is None:
        raise _error(ctx.model, node.span, f"no code for the operation {node.op!r}")
    ctx.uses_torch = ctx.uses_torch or spec.needs_torch
    args = {**dict(spec.args), **node.args}  # a graph made by hand may leave the defaults out
    return spec.emit(ins, args, lambda v: value_source(v, ctx.expr))


def write(model: Model, line_length: int = LINE_LENGTH) -> str:
    names = Namespace(["self", "torch", "nn"])
    class_name = names.create(model.name)
    arg_names = {a: names.create(a) for a, _ in model.args}
    ctx = Context(model, Printer(arg_names), _attributes(model))
    body = Writer(line_length)
    body.depth = 1
    renamed = [(old, new) for old, new in [(model.name, class_name), *arg_names.items()] if old != new]
    _docstring(body, ctx, renamed)
    body.line()
    _init(body, ctx, class_name)
    body.line()
    _forward(body, ctx, names)
    out = Writer(line_length)
    out.docstring([[f"Generated by convplan from {model.file}; needs only torch."]])
    out.line()
    if ctx.uses_torch:
        out.line("import torch")
    out.line("from torch import nn")
    out.line()
    out.line()
    out.line(f"class {class_name}(nn.Module):")
    return out.text() + body.text()


def _attributes(model: Model) -> dict[int, str]:
    """Submodule names: the node names, unchanged, so state_dict keys match Plan.build()."""
    names = Namespace(allow_builtins=True)
    attrs = {}
    for node in model.graph.nodes:
        if node.op == "layer":
            attrs[node.id] = names.create(node.name)
            if attrs[node.id] != node.name:
                raise _error(model, node.span, f"cannot name a submodule {node.name!r} in Python source")
    return attrs


def _error(where, span: Span, message: str) -> PlanError:
    """E600: a graph that codegen cannot write (`where`: the Model or Plan, for its file and text)."""
    return PlanError([Diagnostic("E600", f"codegen: {message}", span, where.filename)], where.source)


# -- the class docstring and __init__ ------------------------------------------------------


def _docstring(w: Writer, ctx: Context, renamed: list[tuple[str, str]]) -> None:
    model, graph = ctx.model, ctx.model.graph
    shapes = [f"Input {n.name}: {show_shape(n.shape)}" for n in graph.inputs]
    outs = [graph.nodes[i] for i in graph.outputs]
    shapes += [f"Output{' ' + n.name if len(outs) > 1 else ''}: {show_shape(n.shape)}" for n in outs]
    total = sympy.Add(*(n.params for n in graph.nodes if n.op == "layer"))
    shapes.append(f"Parameter count: {pyrepr(total)}")
    if model.fixed:
        shapes.append("Fixed parameters: " + ", ".join(f"{k} = {v}" for k, v in model.fixed))
    paras = [[f"Plan {model.name} from {model.file}."], shapes]
    if renamed:  # the formulas above keep the plan's names; the code cannot (`self`, `nn`, `torch`)
        paras.append(["Renamed for Python: " + ", ".join(f"{old} -> {new}" for old, new in renamed) + "."])
    if model.requires:
        paras.append(["Requires:"] + [f"{TAB}{ctx.expr(c)}: {reason}" + (f" ({where})" if where else "")
                                      for c, reason, where in model.requires])
    w.docstring(paras)


def _init(w: Writer, ctx: Context, class_name: str) -> None:
    names = ctx.expr.names
    w.code("", Brackets("def __init__", ("self", *(f"{names[a]}={value}" for a, value in ctx.model.args))), ":")
    w.depth += 1
    w.line("super().__init__()")
    for cond, _, where in ctx.model.requires:
        if {s.name for s in cond.free_symbols} <= set(names):
            _check(w, ctx, class_name, cond, where)
    for node in ctx.model.graph.nodes:
        if node.op == "layer":
            call = Brackets(f"nn.{node.spec.name}", tuple(_layer_args(node, ctx.expr)))
            w.code(f"self.{ctx.attrs[node.id]} = ", call)
    w.depth -= 1


def _check(w: Writer, ctx: Context, class_name: str, cond, where: str) -> None:
    """`if <cond broken>: raise ValueError(f"... requires <cond> ..., got L={L}")`."""
    names = ctx.expr.names
    got = "got " + ", ".join(f"{names[s]}={{{names[s]}}}" for s in sorted(s.name for s in cond.free_symbols))
    text = f"{class_name} requires {ctx.expr(cond)}" + (f" ({where})" if where else "") + ","
    w.code("if ", ctx.expr.negation(cond), ":")
    w.depth += 1
    joined = str_literal(text.replace("{", "{{").replace("}", "}}") + " " + got, prefix="f")
    room = w.width - len(w.indent) - len(TAB)
    if len(joined) <= room:
        w.code("raise ", Brackets("ValueError", (joined,)))
    else:  # implicitly joined pieces, as ruff leaves strings too long to join
        fits = lambda piece: len(str_literal(piece)) + 1 <= room  # noqa: E731
        pieces = [str_literal(p) for p in _wrap_words(text + " ", fits)]
        pieces += [str_literal(p, prefix="f" if "{" in p else "") for p in _wrap_words(got, fits)]
        w.lines += [w.indent + "raise ValueError(", *(w.indent + TAB + p for p in pieces), w.indent + ")"]
    w.depth -= 1


def _wrap_words(text: str, fits) -> list[str]:
    """`text` in pieces that fit, split after spaces (which stay at the piece's end)."""
    words = text.split(" ")
    pieces, current = [], words[0]
    for word in words[1:]:
        if fits(f"{current} {word} "):
            current = f"{current} {word}"
        else:
            pieces.append(current + " ")
            current = word
    if current:
        pieces.append(current)
    return pieces


def _layer_args(node: Node, expr: Printer) -> list:
    """Torch's leading required arguments by position, the rest by keyword."""
    out = []
    for name, positional in node.spec.call_args(node.given):
        value = node.args[name]
        doc = expr.doc(value) if isinstance(value, sympy.Basic) else value_source(value, expr)
        out.append(doc if positional else Pre(f"{name}=", doc))
    return out


# -- forward -----------------------------------------------------------------------------


def _forward(w: Writer, ctx: Context, names: Namespace) -> None:
    graph, file = ctx.model.graph, ctx.model.file
    steps, variables = assign_variables(graph, names)
    w.code("", Brackets("def forward", ("self", *(variables[n.id] for n in graph.inputs))), ":")
    w.depth += 1
    for node in graph.inputs:
        w.comment(f"{variables[node.id]}: {show_shape(node.shape)}  {file}:{node.line}")
    for node in steps:
        rhs = emit(ctx, node, [variables[i] for i in node.inputs])
        target = "" if variables[node.id] is None else f"{variables[node.id]} = "
        where = Path(node.file).name if node.file else file  # a block may come from another file
        w.statement(target, rhs, f"{show_shape(node.shape)}  {where}:{node.line}")
    w.code("", Brackets("return ", tuple(variables[i] for i in graph.outputs), bare=True))
    w.depth -= 1


def live_steps(graph: Graph) -> list[Node]:
    """The nodes forward computes, in order: every layer (a layer may keep state, like
    BatchNorm's running statistics, so it runs even when its value is unused) and the
    merges that an output or a layer needs."""
    needed = set(graph.outputs)
    for node in reversed(graph.nodes):
        if node.op == "layer" or node.id in needed:
            needed.add(node.id)
            needed.update(node.inputs)
    return [node for node in graph.nodes if node.op != "input" and node.id in needed]


def assign_variables(graph: Graph, names: Namespace) -> tuple[list[Node], dict[int, str | None]]:
    """The steps of forward and a variable per node (None: the value is never read).  A
    straight chain reuses one variable (`x = self.conv1(x)`); a value read by several steps,
    or by a step other than the next one, gets its own name (the node's), so it survives
    until its last use."""
    steps = live_steps(graph)
    pos = {node.id: i for i, node in enumerate(steps)}
    left = {node.id: 0 for node in graph.nodes}  # reads still to come
    readers: dict[int, list[int]] = {node.id: [] for node in graph.nodes}
    for node in steps:
        for i in node.inputs:
            left[i] += 1
            readers[i].append(pos[node.id])
    for i in graph.outputs:
        left[i] += 1
        readers[i].append(len(steps))
    if len(graph.outputs) > 1:  # `return a, b`: each output keeps its own name
        for i in graph.outputs:
            readers[i].append(-1)
    variables: dict[int, str | None] = {node.id: names.create(node.name) for node in graph.inputs}
    chain = set(variables.values())  # variables a chain may take over once their value is dead
    holds_input = set(chain)  # not reused for an unrelated value: `x = a * b` would mislead
    reusable: list[str] = []  # chain variables whose value is dead
    for node in steps:
        dying = []
        for i in node.inputs:
            left[i] -= 1
            if left[i] == 0 and variables[i] in chain and variables[i] not in dying:
                dying.append(variables[i])
        if not readers[node.id]:
            target = None
        elif readers[node.id] != [pos[node.id] + 1]:
            target = names.create(node.name)
        elif dying:
            target = dying[0]
        elif reusable:
            target = reusable.pop(0)
        else:
            target = names.create("out" if names.taken("x") else "x")
            chain.add(target)
        variables[node.id] = target
        holds_input.discard(target)
        reusable += [v for v in dying if v != target and v not in reusable and v not in holds_input]
    return steps, variables
