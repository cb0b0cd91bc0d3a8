"""Shape graph -> one standalone, readable PyTorch module (no convplan needed to run it).

The plan is checked again with its parameters left symbolic, so every size a weight
depends on stays an expression of the class's constructor arguments: one class serves
every input size the plan allows.  Each block becomes one class (codevariants.py, codeblock.py),
each numbered container an nn.Sequential, and the plan's forward is generated over the graph,
one line per step: a layer or block calls its submodule, a merge writes what
merges.py declares for it.  The module tree is the graph's (graph.Module, node.path), so
the generated module's state_dict matches `Plan.build()`'s key for key.  The checks it
makes on its arguments and input are codechecks.py's.

Nothing from the plan's text reaches the output except validated identifiers, numbers
and strings written with a literal printer; codegen never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import sympy

from .check import Checked, check
from .codechecks import input_checks, kept, raise_unless
from .codeexpr import equal, plain
from .codeloops import drop_defaults, fold_iterations, write_loop
from .errors import Diagnostic, PlanError, Span
from .graph import Graph, Node, Step
from .ops import FUNCTIONS, runtime_form
from .pysource import TAB, Brackets, Namespace, Ops, Pre, Printer, Writer, value_source
from .shapes import dim, pyrepr, to_expr
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
    """Names of the symbols some layer's arguments (hence its weights) or a learnable tensor's shape depend
    on.  An operation's sizes are read from the tensors at hand when forward runs (`x.shape[0]`)."""
    found = set()
    for node in graph.nodes:
        if node.op in ("layer", "param"):
            for v in (*node.args.values(), node.shape if node.op == "param" else ()):
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


def generate(plan, sizes: dict[str, int] | None = None, line_length: int = LINE_LENGTH) -> str:
    """The source of a module defining `class <plan name>(nn.Module)`; `sizes` become the defaults."""
    return write(describe(plan, sizes), line_length)


# -- the writer --------------------------------------------------------------------------


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

    def expr_value(self, v) -> str:
        return value_source(plain(v), self.expr)


def access(path: tuple[str, ...], owner: tuple[str, ...]) -> str:
    """`self.features[3]`: a submodule, from the class whose forward calls it."""
    return "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path[len(owner):])


def emit(ctx: Context, step: Step, ins: list[str], owner: tuple[str, ...], known: dict | None = None):
    """The right-hand side of the step's forward line (a layout doc): a submodule call, or what the
    function's declaration writes.  `known`: variable -> the shape of its value, for sizes read at run time."""
    if step.op in ("layer", "block"):
        return Brackets(access(step.path, owner), tuple(ins))
    spec = FUNCTIONS.get(step.op)
    if spec is None:
        raise _error(ctx.model, step.item.span, f"no code for the operation {step.op!r}")
    ctx.uses_torch = ctx.uses_torch or spec.needs_torch
    if isinstance(spec.args, tuple) and spec.args and isinstance(spec.args[0], tuple):  # a merge: (name, default)
        args = {**dict(spec.args), **step.item.args}  # a graph made by hand may leave the defaults out
        return spec.emit(ins, args, lambda v: value_source(v, ctx.expr))
    sizes = lambda e: _runtime(ctx, step, e, known or {})  # noqa: E731
    return spec.emit(ins, step.item.args, lambda v: value_source(v, sizes))


def _runtime(ctx: Context, step: Step, value, known: dict) -> str:
    """An operation's size in forward: a number, or an expression of the sizes of the values at hand
    (`x.shape[0]`): the plan's sizes are no constructor arguments, and a block's class serves many."""
    found = runtime_form(value, list(known.items()))
    if found is None:
        raise _error(ctx.model, step.item.span, f"cannot write the size {pyrepr(to_expr(value))} of "
                     f"{step.op} from the sizes of the tensors at hand")
    e, refs = found
    return Printer({s.name: f"{var}.shape[{k}]" for s, (var, k) in refs.items()})(e)


def write(model: Model, line_length: int = LINE_LENGTH) -> str:
    names = Namespace(["self", "torch", "nn", *(node.kind for node in model.graph.layers
                                                 if node.spec.module != "torch.nn")])  # the copied classes
    class_name = names.create(model.name)
    arg_names = {a: names.create(a) for a, _ in model.args}
    ctx = Context(model, Printer(arg_names), class_name=class_name)
    _check_attributes(model)
    ctx.kept = kept(model, arg_names)
    from .codevariants import block_classes  # it writes block classes with this module's parts

    blocks = [cls.text for cls in block_classes(ctx, names, line_length)]
    body = Writer(line_length)
    body.depth = 1
    renamed = [(old, new) for old, new in [(model.name, class_name), *arg_names.items()] if old != new]
    _docstring(body, ctx, renamed)
    body.line()
    _init(body, ctx, class_name)
    body.line()
    graph = model.graph
    _forward(body, ctx, names, Forward((), [(n.id, n.name) for n in graph.inputs], list(graph.outputs)))
    out = Writer(line_length)
    out.docstring([[f"Generated by convplan from {model.file}; needs only torch."]])
    out.line()
    copies = _copies(graph)
    if copies:
        ctx.uses_torch = True
    if ctx.uses_torch:
        out.line("import torch")
    out.line("from torch import nn")
    for text in [*copies, *blocks, f"class {class_name}(nn.Module):\n" + body.text()]:
        out.line()
        out.line()
        out.lines.append(text.rstrip("\n"))
    return out.text()


def _copies(graph: Graph) -> list[str]:
    """The source of each class of convplan/modules.py the graph's layers use (torchvision's kinds), read as
    text: the generated file needs torch alone."""
    import ast

    kinds = sorted({node.kind for node in graph.layers if node.spec.module != "torch.nn"})
    if not kinds:
        return []
    text = (Path(__file__).with_name("modules.py")).read_text(encoding="utf-8")
    found = {c.name: ast.get_source_segment(text, c) for c in ast.parse(text).body if isinstance(c, ast.ClassDef)}
    return [found[k] for k in kinds]


def _check_attributes(model: Model) -> None:
    """Submodule names are the plan's, unchanged, so state_dict keys match Plan.build()."""
    for node in model.graph.layers:
        attr = node.module_path[-1]
        if not attr.isdigit() and Namespace(allow_builtins=True).create(attr) != attr:
            raise _error(model, node.span, f"cannot name a submodule {attr!r} in Python source")


def _error(where, span: Span, message: str) -> PlanError:
    """E600: a graph that codegen cannot write (`where`: the Model or Plan, for its file and text)."""
    return PlanError([Diagnostic("E600", f"codegen: {message}", span, where.filename)], where.source)


# -- the class docstring and __init__ ------------------------------------------------------


def _docstring(w: Writer, ctx: Context, renamed: list[tuple[str, str]]) -> None:
    model, graph = ctx.model, ctx.model.graph
    shapes = [f"Input {n.name}: {show_shape(n.shape)}" for n in graph.inputs]
    outs = [graph.nodes[i] for i in graph.outputs]
    shapes += [f"Output{' ' + n.name if len(outs) > 1 else ''}: {show_shape(n.shape)}" for n in outs]
    total = sympy.Add(*(n.params for n in graph.nodes if n.op in ("layer", "param")))
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
    params = [names[a] if value is None else f"{names[a]}={value}" for a, value in ctx.model.args]
    w.code("", Brackets("def __init__", ("self", *params)), ":")
    w.depth += 1
    w.line("super().__init__()")
    for cond, _, where in ctx.model.requires:
        if {s.name for s in cond.free_symbols} <= set(names):
            raise_unless(w, ctx, class_name, cond, where)
    for a, attr in ctx.kept.items():
        w.line(f"self.{attr} = {names[a]}  # the input's size must match it")
    ctx.locals = Namespace(["self", "torch", "nn", *names.values()])
    children(w, ctx, (), plan_slot(ctx.expr))
    ctx.locals = None
    w.depth -= 1


def plan_slot(expr: Printer):
    """How the plan's class writes a value: sizes as expressions of its constructor's arguments."""
    return lambda value, hint, written=None, inferred=False: (expr.doc(value) if isinstance(value, sympy.Basic)
                                                              else value_source(value, expr))


def children(w: Writer, ctx: Context, owner: tuple[str, ...], slot) -> None:
    """`self.<name> = ...` for each submodule of `owner`, in the order the plan made them, then its
    learnable tensors."""
    for item in ctx.model.graph.children(owner):
        path = item.module_path if isinstance(item, Node) else item.path
        w.code(f"{access(path, owner)} = ", child_doc(ctx, item, owner, slot, w))
    for node in ctx.model.graph.nodes:
        if node.op == "param" and node.path[:-1] == owner:
            ctx.uses_torch = True
            hint = "_".join(node.path[len(owner):])
            size = tuple(slot(d, f"{hint}_size{k}") for k, d in enumerate(node.shape))
            value = Brackets(f"torch.{node.args['init']}", size)
            scale = node.args["scale"]
            doc = Brackets("nn.Parameter", (Ops((value, value_source(scale, ctx.expr)), ("*",), 1) if scale != 1
                                            else value,))
            w.code(f"{access(node.path, owner)} = ", doc)


def child_doc(ctx: Context, item, owner: tuple[str, ...], slot, w: Writer | None = None, full: bool = False):
    """A submodule's constructor call: a torch layer, an nn.Sequential, or a block's class.  `slot`
    writes each value (a literal, an expression, or an argument of the enclosing block's class); a
    repeat of the plan's whose iterations are alike is a loop `w` writes first (codeloops.py)."""
    graph = ctx.model.graph
    if isinstance(item, Node):
        hint, written = "_".join(item.module_path[len(owner):]), dict(item.written)
        head = f"nn.{item.spec.name}" if item.spec.module == "torch.nn" else item.spec.name  # copied: _copies
        return Brackets(head,
                        tuple(_layer_args(item, lambda v, a: slot(v, f"{hint}_{a}", written.get(a),
                                                                  a == item.spec.inferred))))
    if item.kind == "seq":
        count = ctx.model.repeats.get((item.span.line, item.span.col)) if not item.owner else None
        if w is None or ctx.locals is None or count is None:
            return Brackets("nn.Sequential", tuple(child_doc(ctx, c, owner, slot, w, full)
                                                   for c in graph.children(item.path)))
        return _loop(w, ctx, item, count, [child_doc(ctx, c, owner, slot, w, True) for c in graph.children(item.path)])
    name, args = ctx.classes[item.path]
    hint = "_".join(item.path[len(owner):])
    defaults = ctx.defaults.get(name, {})
    return Brackets(name, tuple(Pre(f"{a}=", slot(v, f"{hint}_{a}")) for a, v in args
                                if full or not (a in defaults and equal(v, defaults[a]))))


def _loop(w: Writer, ctx: Context, item, count: int, docs: list):
    """A repeat's container: `layer2 = []`, a `for` that appends each iteration's submodules, then
    `nn.Sequential(*layer2)`, where the iterations are alike; else the submodules one by one."""
    var, folded = "_", fold_iterations(docs, count, None)  # the same in every iteration: no index
    if folded is None:
        var = ctx.locals.create("i")
        ctx.locals.release(var)  # the next loop may use it again
        folded = fold_iterations(docs, count, var)
    strip = lambda d: drop_defaults(d, ctx.defaults, ctx.expr_value)  # noqa: E731
    if folded is None:
        return Brackets("nn.Sequential", tuple(strip(d) for d in docs))
    name = ctx.locals.create(item.path[-1])
    write_loop(w, name, var, str(count), [strip(d) for d in folded])
    return Brackets("nn.Sequential", (f"*{name}",))


def _layer_args(node: Node, slot) -> list:
    """Torch's leading required arguments by position, the rest by keyword."""
    out = []
    for name, positional in node.spec.call_args(node.given):
        doc = slot(node.args[name], name)
        out.append(doc if positional else Pre(f"{name}=", doc))
    return out


# -- forward -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """What one class's forward computes: the steps of `owner` (the plan, (), or a block call)."""

    owner: tuple[str, ...]
    inputs: list  # (node id, variable name)
    outputs: list[int]
    prefix: str = ""  # of the node names inside a block call: variables drop it
    shapes: bool = True  # comments give each value's shape (a block's class serves several shapes: no)


def _forward(w: Writer, ctx: Context, names: Namespace, f: Forward) -> None:
    graph, file = ctx.model.graph, ctx.model.file
    steps, variables = assign_variables(graph, _chains(graph, graph.steps().get(f.owner, []), f), f, names)
    w.code("", Brackets("def forward", ("self", *(variables[i] for i, _ in f.inputs))), ":")
    w.depth += 1
    if f.shapes:
        for i, _ in f.inputs:
            node = graph.nodes[i]
            w.comment(f"{variables[i]}: {show_shape(node.shape)}  {file}:{node.line}")
        if graph.inputs and graph.inputs[0].shape and not f.owner:
            input_checks(w, ctx, variables)
    known = {variables[i]: graph.nodes[i].shape for i, _ in f.inputs}  # variable -> its value's shape now
    known.update({variables[s.out]: s.item.shape for s in steps if s.op == "param"})
    for step in steps:
        if step.op == "param":  # read where it is used: `self.class_token`
            continue
        rhs = emit(ctx, step, [variables[i] for i in step.inputs], f.owner, known)
        target = _target(step, variables)
        for i in _outputs(step):
            if variables[i] not in (None, "_"):
                known[variables[i]] = graph.nodes[i].shape
        item = step.item
        where = f"{Path(item.file).name if item.file else file}:{item.span.line}"  # a block may be imported
        shape = f"{show_shape(graph.nodes[step.out].shape)}  " if f.shapes else ""
        w.statement(target, rhs, shape + where)
    w.code("", Brackets("return ", tuple(variables[i] for i in f.outputs), bare=True))
    w.depth -= 1


def _target(step: Step, variables: dict) -> str:
    """`x = `, `a, b = ` (a call with several outputs: `out, (h, c) = `), or nothing for a value never read."""
    unpack = step.item.unpack if isinstance(step.item, Node) else ()
    if not unpack:
        return "" if variables[step.out] is None else f"{variables[step.out]} = "
    if all(variables.get(i) in (None, "_") for i in _leaves(unpack)):
        return ""

    def pattern(ids, top: bool) -> str:
        text = ", ".join(pattern(i, False) if isinstance(i, tuple) else (variables.get(i) or "_") for i in ids)
        text += "," * (len(ids) == 1)  # a tuple of one: `a, = x.chunk(1)`
        return text if top else f"({text})"

    return f"{pattern(unpack, True)} = "


def _leaves(unpack: tuple) -> list[int]:
    return [x for item in unpack for x in (_leaves(item) if isinstance(item, tuple) else (item,))]


def _outputs(step: Step) -> list[int]:
    """The values a step makes: its node's, or each output of a call with several."""
    unpack = step.item.unpack if isinstance(step.item, Node) else ()
    return _leaves(unpack) if unpack else [step.out]


def _chains(graph: Graph, steps: list[Step], f: Forward) -> list[Step]:
    """Each numbered container whose steps are a chain (one input, each step reading the one before,
    nothing else reading inside it) becomes one call: `x = self.layer1(x)`."""
    for seq in (m for m in graph.children(f.owner) if not isinstance(m, Node) and m.kind == "seq"):
        inside = [k for k, s in enumerate(steps) if s.path[:len(seq.path)] == seq.path]
        if not inside or inside != list(range(inside[0], inside[-1] + 1)):
            continue
        run = [steps[k] for k in inside]
        chained = len(run[0].inputs) == 1 and all(b.inputs == (a.out,) for a, b in zip(run, run[1:], strict=False))
        inner = {s.out for s in run[:-1]}
        read_outside = any(i in inner for s in steps if s not in run for i in s.inputs) or inner & set(f.outputs)
        if chained and not read_outside:
            call = Step(run[-1].out, "block", seq.path, run[0].inputs, seq)
            steps = [*steps[:inside[0]], call, *steps[inside[-1] + 1:]]
    return steps


def live_steps(steps: list[Step], outputs: list[int]) -> list[Step]:
    """The steps forward runs, in order: every layer and block (a layer may keep state, like
    BatchNorm's running statistics, so it runs even when its value is unused) and the
    merges that an output, a layer or a block needs."""
    needed = set(outputs)
    for step in reversed(steps):
        if step.op in ("layer", "block") or any(i in needed for i in _outputs(step)):
            needed.add(step.out)
            needed.update(step.inputs)
    return [step for step in steps if step.out in needed]


def _local(graph: Graph, step: Step, f: Forward) -> str:
    """A variable's name: the node's, less the block call's prefix (a block's call: its submodule's)."""
    if step.op == "block":
        return "_".join(step.path[len(f.owner):])
    name = graph.nodes[step.out].name
    return name[len(f.prefix):] if f.prefix and name.startswith(f.prefix) else name


def assign_variables(graph: Graph, all_steps: list[Step], f: Forward,
                     names: Namespace) -> tuple[list[Step], dict[int, str | None]]:
    """The steps of forward and a variable per value (None: the value is never read).  A
    straight chain reuses one variable (`x = self.conv1(x)`); a value read by several steps,
    or by a step other than the next one, gets its own name (the node's), so it survives
    until its last use."""
    steps = live_steps(all_steps, f.outputs)
    pos = {step.out: i for i, step in enumerate(steps)}
    left: dict[int, int] = {}  # reads still to come
    readers: dict[int, list[int]] = {}
    for i, _ in f.inputs:
        left[i], readers[i] = 0, []
    for step in steps:
        for i in _outputs(step):
            left[i], readers[i] = 0, []
    for step in steps:
        for i in step.inputs:
            left[i] += 1
            readers[i].append(pos[step.out])
    for i in f.outputs:
        left[i] += 1
        readers[i].append(len(steps))
    if len(f.outputs) > 1:  # `return a, b`: each output keeps its own name
        for i in f.outputs:
            readers[i].append(-1)
    variables: dict[int, str | None] = {i: names.create(name) for i, name in f.inputs}
    chain = set(variables.values())  # variables a chain may take over once their value is dead
    holds_input = set(chain)  # not reused for an unrelated value: `x = a * b` would mislead
    reusable: list[str] = []  # chain variables whose value is dead
    for step in steps:
        if step.op == "param":  # a learnable tensor is read where it is used
            variables[step.out] = access(step.path, f.owner)
            continue
        dying = []
        for i in step.inputs:
            left[i] -= 1
            if left[i] == 0 and variables[i] in chain and variables[i] not in dying:
                dying.append(variables[i])
        if not readers[step.out]:
            target = None
        elif readers[step.out] != [pos[step.out] + 1]:
            target = names.create(_local(graph, step, f))
        elif dying:
            target = dying[0]
        elif reusable:
            target = reusable.pop(0)
        else:
            target = names.create("out" if names.taken("x") else "x")
            chain.add(target)
        variables[step.out] = target
        for i in _outputs(step)[1:]:  # the other outputs of a call with several: each its own name, if read
            variables[i] = names.create(_local(graph, Step(i, "item", (), (), graph.nodes[i]), f)) \
                if readers[i] else "_"
        if step.item is not None and isinstance(step.item, Node) and step.item.unpack and target is None:
            variables[step.out] = "_"
        holds_input.discard(target)
        reusable += [v for v in dying if v != target and v not in reusable and v not in holds_input]
    return steps, variables
