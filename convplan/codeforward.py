"""A class's `forward` over the graph, one line per step: a layer or block calls its submodule, a merge or
an operation writes what its declaration says (its sizes read from the tensors at hand when forward
runs); a straight chain reuses one variable, a value read later keeps its own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .codechecks import input_check_function
from .codemodel import Context, codegen_error, free_names
from .graph import Graph, Node, Step
from .ops import FUNCTIONS, runtime_form
from .pysource import Brackets, Namespace, Pre, Printer, Writer, value_source
from .shapes import pyrepr, to_expr
from .show import show_shape


def access(path: tuple[str, ...], owner: tuple[str, ...]) -> str:
    """`self.features[3]`: a submodule, from the class whose forward calls it."""
    return "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path[len(owner):])


def emit(ctx: Context, step: Step, ins: list[str], owner: tuple[str, ...], known: dict | None = None,
         bound: dict | None = None):
    """The right-hand side of the step's forward line (a layout doc): a submodule call, or what the
    function's declaration writes.  `known`: variable -> the shape of its value, for sizes read at run time;
    `bound`: input dims forward read into locals at its start (`forward_sizes`)."""
    if step.op == "layer" and step.item.spec.state_pair and len(ins) > 1:  # LSTM's (h0, c0): one tuple
        return Brackets(access(step.path, owner), (ins[0], Brackets("", tuple(ins[1:]))))
    sizes = lambda e: _runtime(ctx, step, e, known or {})  # noqa: E731
    if step.op == "layer" and step.item.spec.forward_args:  # MaxUnpool's output_size: forward takes it
        bound = bound or {}
        local = lambda e: Printer(bound)(e) if {x.name for x in to_expr(e).free_symbols} <= set(bound) \
            else sizes(e)  # noqa: E731
        given = [k for k in step.item.spec.forward_args if k in step.item.given]
        return Brackets(access(step.path, owner), (*ins, *(Pre(f"{k}=", value_source(step.item.args[k], local))
                                                           for k in given)))
    if step.op in ("layer", "block"):
        return Brackets(access(step.path, owner), tuple(ins))
    spec = FUNCTIONS.get(step.op)
    if spec is None:
        raise codegen_error(ctx.model, step.item.span, f"no code for the operation {step.op!r}")
    ctx.uses_torch = ctx.uses_torch or spec.needs_torch
    if isinstance(spec.args, tuple) and spec.args and isinstance(spec.args[0], tuple):  # a merge: (name, default)
        args = {**dict(spec.args), **step.item.args}  # a graph made by hand may leave the defaults out
        return spec.emit(ins, args, lambda v: value_source(v, ctx.expr))
    return spec.emit(ins, step.item.args, lambda v: value_source(v, sizes))


def _runtime(ctx: Context, step: Step, value, known: dict) -> str:
    """An operation's size in forward: a number, or an expression of the sizes of the values at hand
    (`x.shape[0]`): the plan's sizes are no constructor arguments, and a block's class serves many."""
    found = runtime_form(value, list(known.items()))
    if found is None:
        raise codegen_error(ctx.model, step.item.span, f"cannot write the size {pyrepr(to_expr(value))} of "
                     f"{step.op} from the sizes of the tensors at hand")
    e, refs = found
    return Printer({s.name: f"{var}.shape[{k}]" for s, (var, k) in refs.items()})(e)


@dataclass(frozen=True)
class Forward:
    """What one class's forward computes: the steps of `owner` (the plan, (), or a block call)."""

    owner: tuple[str, ...]
    inputs: list  # (node id, variable name)
    outputs: list[int]
    prefix: str = ""  # of the node names inside a block call: variables drop it
    shapes: bool = True  # comments give each value's shape (a block's class serves several shapes: no)


def write_forward(w: Writer, ctx: Context, names: Namespace, f: Forward) -> None:
    graph, file = ctx.model.graph, ctx.model.file
    steps, variables = assign_variables(graph, _chains(graph, graph.steps().get(f.owner, []), f), f, names)
    w.code("", Brackets("def forward", ("self", *(variables[i] for i, _ in f.inputs))), ":")
    w.depth += 1
    if f.shapes:
        for i, _ in f.inputs:
            node = graph.nodes[i]
            w.comment(f"{variables[i]}: {show_shape(node.shape)}  {file}:{node.line}")
        checks = input_check_function(ctx, variables, w.width) \
            if graph.inputs and graph.inputs[0].shape and not f.owner else None
        if checks is not None:
            ctx.checks = checks[0]
            w.code("", checks[1])
    known = {variables[i]: graph.nodes[i].shape for i, _ in f.inputs}  # variable -> its value's shape now
    known.update({variables[s.out]: s.item.shape for s in steps if s.op == "param"})
    bound = forward_sizes(w, graph, steps, [(variables[i], graph.nodes[i].shape) for i, _ in f.inputs], names)
    for step in steps:
        if step.op == "param":  # read where it is used: `self.class_token`
            continue
        rhs = emit(ctx, step, [variables[i] for i in step.inputs], f.owner, known, bound)
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


def forward_sizes(w: Writer, graph: Graph, steps: list[Step], inputs: list, names: Namespace) -> dict[str, str]:
    """`H = x.shape[2]` at forward's start for each input dim a layer's forward-time argument names
    (MaxUnpool's `output_size=(H, W)`): the input's variable may hold another value by then."""
    wanted = {s for step in steps if step.op == "layer" for k in step.item.spec.forward_args
              if k in step.item.given for s in free_names(step.item.args[k])}
    bound = {}
    for var, shape in inputs:
        for i, d in enumerate(shape):
            if getattr(d, "is_Symbol", False) and d.name in wanted and d.name not in bound:  # a graph by hand: ints
                bound[d.name] = names.create(d.name)
                w.line(f"{bound[d.name]} = {var}.shape[{i}]")
    return bound


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
