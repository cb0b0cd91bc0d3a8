"""Shape graph -> a real torch.nn.Module.  With verify.py, the only place that imports torch."""

from __future__ import annotations

import warnings

import sympy

with warnings.catch_warnings():
    # torch's CPU wheel runs without numpy but warns on import; convplan never gives torch a numpy array
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch
from torch import nn

from .errors import Diagnostic, PlanError
from .graph import Graph, Module, Node, Step
from .ops import FUNCTIONS, runtime_form
from .shapes import pyrepr


class BlockModule(nn.Module):
    """One block call (or the plan): its submodules named as in the plan, and a forward that runs the
    nodes it owns, in order: its layers (however deep in numbered containers), merges (torch functions)
    and the blocks it calls.  A numbered container is an nn.Sequential that this forward indexes."""

    def __init__(self, steps: list, inputs: list[int], outputs: list[int], name: str):
        super().__init__()
        self.plan_name = name
        # (node id, op, relative submodule or parameter path or None, input ids, function arguments, unpack)
        self._steps = steps
        self._input_ids = inputs
        self._output_ids = outputs
        self._trace: dict | None = None  # set by run(): every value, by node id

    def forward(self, *inputs: torch.Tensor):
        if len(inputs) != len(self._input_ids):
            raise TypeError(f"{self.plan_name} takes {len(self._input_ids)} input tensor(s), got {len(inputs)}")
        values = dict(zip(self._input_ids, inputs, strict=True))
        for node_id, op, path, sources, args, unpack in self._steps:
            operands = [values[i] for i in sources]
            if op == "param":
                values[node_id] = self.get_parameter(path)
            elif path is not None:
                values[node_id] = _call_layer(self.get_submodule(path), operands, args, lambda i: values[i].shape)
            else:
                values[node_id] = FUNCTIONS[op].compute(torch, operands, _resolve(args, lambda i: values[i].shape))
            if unpack:  # a call with several outputs: each is a node's value
                values.update(_leaves(unpack, values[node_id]))
        if self._trace is not None:
            self._trace.update(values)
        outputs = [values[i] for i in self._output_ids]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _call_layer(layer: nn.Module, operands: list, args: dict, shape_of):
    """A layer's call as torch's forward takes it: LSTM's (h0, c0) as one tuple, the arguments its forward takes
    (MaxUnpool's output_size) with their sizes read from the values at hand (`shape_of(node id)`)."""
    if args.get("pair"):
        operands = [operands[0], tuple(operands[1:])]
    return layer(*operands, **(_resolve(args["forward"], shape_of) if "forward" in args else {}))


class PlanModule(BlockModule):
    """The plan: several inputs are positional; several outputs a tuple."""

    def run(self, *inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        """Every node's value, by node id, from every block call in the tree (verify compares each shape)."""
        trace: dict = {}
        blocks = [m for m in self.modules() if isinstance(m, BlockModule)]
        for m in blocks:
            m._trace = trace
        try:
            self(*inputs)
        finally:
            for m in blocks:
                m._trace = None
        return trace


def make_tree(graph: Graph, name: str) -> PlanModule:
    """The module tree the plan describes: a BlockModule per block call, an nn.Sequential per numbered
    container, a torch layer per layer node, each added to its parent in the order the plan makes them."""
    inputs = {m.path: m.inputs for m in graph.blocks} | {(): tuple(n.id for n in graph.inputs)}
    steps = {owner: _steps(graph, owner, found, inputs.get(owner, ())) for owner, found in graph.steps().items()}
    root = PlanModule(steps.get((), []), [n.id for n in graph.inputs], list(graph.outputs), name)
    modules: dict[tuple, nn.Module] = {(): root}
    for item in graph.tree or [n.id for n in graph.layers]:
        if isinstance(item, Module):
            path = item.path
            module = nn.Sequential() if item.kind == "seq" else \
                BlockModule(steps.get(path, []), list(item.inputs), [item.output], item.name)
        else:
            node = graph.nodes[item]
            path, module = node.module_path, make_layer(node)
        modules[path] = module
        modules[path[:-1]].add_module(path[-1], module)
    for node in graph.nodes:
        if node.op == "param":
            modules[node.path[:-1]].register_parameter(node.path[-1], make_parameter(node))
    return root


def make_parameter(node: Node) -> nn.Parameter:
    """torch.<init>(size) * scale, as the plan declares it."""
    a = node.args
    value = getattr(torch, a["init"])(*concrete(node.shape))
    return nn.Parameter(value * a["scale"] if a["scale"] != 1 else value)


def _leaves(unpack: tuple, value) -> list:
    """(node id, tensor) of each output of a call with several, nested alike."""
    out = []
    for ids, v in zip(unpack, value, strict=True):
        out += _leaves(ids, v) if isinstance(ids, tuple) else [(ids, v)]
    return out


def _steps(graph: Graph, owner: tuple[str, ...], found: list[Step], inputs) -> list[tuple]:
    """The owner's steps, each with the shapes of the values at hand before it (an operation reads its sizes
    from them when forward runs)."""
    at_hand = [(i, graph.nodes[i].shape) for i in inputs]
    out = []
    for step in found:
        out.append(_step(step, owner, at_hand))
        unpack = step.item.unpack if isinstance(step.item, Node) else ()
        at_hand = at_hand + [(i, graph.nodes[i].shape) for i in (_ids(unpack) if unpack else [step.out])]
    return out


def _ids(unpack: tuple) -> list[int]:
    return [x for item in unpack for x in (_ids(item) if isinstance(item, tuple) else (item,))]


def _step(step: Step, owner: tuple[str, ...], at_hand: list) -> tuple:
    """(node id, op, submodule or parameter path relative to the owner or None, input ids, function arguments,
    unpack)"""
    path = ".".join(step.path[len(owner):]) if step.path else None
    try:
        args = {k: _sized(v, at_hand) for k, v in step.item.args.items()} \
            if step.op not in ("layer", "block", "param") else _layer_args(step, at_hand) if step.op == "layer" else {}
    except Unsized as exc:
        raise Unsized(exc.value, step.item) from None
    unpack = step.item.unpack if isinstance(step.item, Node) else ()
    return step.out, step.op, path, tuple(step.inputs), args, unpack


def _layer_args(step: Step, at_hand: list) -> dict:
    """What a layer's call takes besides its tensors: LSTM's (h0, c0) as one tuple (`pair`), the arguments torch
    takes in forward (`forward`: MaxUnpool's output_size), their sizes read from the values at hand."""
    node = step.item
    out = {"pair": True} if node.spec.state_pair and len(step.inputs) > 1 else {}
    given = {k: _sized(node.args[k], at_hand) for k in node.spec.forward_args if k in node.given}
    return {**out, "forward": given} if given else out


class Sized:
    """A size an operation reads when forward runs: a formula of the sizes of values at hand (a module serves
    every batch size and image size the plan allows, where its weights do not depend on them)."""

    def __init__(self, formula, refs: dict):
        self.formula, self.refs = formula, refs

    def at(self, shape_of) -> int:
        return int(self.formula.xreplace({s: sympy.Integer(shape_of(i)[k]) for s, (i, k) in self.refs.items()}))


def _sized(value, at_hand: list):
    if isinstance(value, tuple):
        return tuple(_sized(v, at_hand) for v in value)
    if not isinstance(value, sympy.Basic) or value.is_Integer:
        return concrete(value)
    found = runtime_form(value, at_hand)
    if found is None:
        raise Unsized(value)
    return Sized(*found)


class Unsized(Exception):
    """An operation's size that no tensor it sees carries (a block's `narrow(2, 0, n)` called with the
    caller's L): forward could not read it, so building needs its value."""

    def __init__(self, value, node: Node | None = None):
        super().__init__(f"not a size of the tensors at hand: {value}")
        self.value, self.node = value, node


def _resolve(args: dict, shape_of) -> dict:
    """The arguments with each size read from the values at hand (`shape_of(node id)`)."""
    def one(v):
        if isinstance(v, tuple):
            return tuple(one(x) for x in v)
        return v.at(shape_of) if isinstance(v, Sized) else v

    return {k: one(v) for k, v in args.items()}


class Peak:
    """The most bytes of distinct storages alive at once during `values` (measured where tensors have storage)."""

    bytes: int = 0


def values(module: PlanModule, inputs, peak: Peak | None = None):
    """(node id, value) of every node in order, each value dropped once the last node that reads it has
    run: only the live values take memory (verify compares shapes as they come).  Block calls run here, not
    through their forward, so that a block's input is dropped after its last reader inside the block, as
    the plan's estimate counts.  `peak` records the most bytes alive at once, the inputs included.  A
    function, not a method: a layer may be called `values`."""
    peak = peak if peak is not None else Peak()
    peak.bytes = _storage_bytes(inputs)
    yield from zip(module._input_ids, inputs, strict=True)
    yield from _frame(module, list(inputs), [], inputs, peak)


def _frame(block: BlockModule, operands: list, frames: list, inputs, peak: Peak):
    """Run one block call's steps (consuming `operands`), yielding every value; returns its output(s)."""
    live = dict(zip(block._input_ids, operands, strict=True))
    shapes = {i: v.shape for i, v in live.items()}  # of every value made here: operations read sizes from them
    operands.clear()  # the caller holds no reference: the block's live values are the only ones
    frames.append(live)
    keep = set(block._output_ids)
    last = {i: k for k, step in enumerate(block._steps) for i in step[3]}
    for k, (node_id, op, path, sources, args, unpack) in enumerate(block._steps):
        ops = [live[i] for i in sources]
        for i in set(sources):
            if last[i] == k and i not in keep:
                del live[i]
        sub = block.get_submodule(path) if path is not None and op != "param" else None
        if op == "param":
            value = block.get_parameter(path)
        elif isinstance(sub, BlockModule):
            value = yield from _frame(sub, ops, frames, inputs, peak)
        else:
            value = _call_layer(sub, ops, args, shapes.get) if sub is not None else \
                FUNCTIONS[op].compute(torch, ops, _resolve(args, shapes.get))
            alive = [t for frame in frames for t in frame.values()]
            peak.bytes = max(peak.bytes, _storage_bytes([*inputs, *alive, *ops, *_tensors(value)]))
        del ops
        made = _leaves(unpack, value) if unpack else [(node_id, value)]
        for i, v in made:
            shapes[i] = v.shape
            if i in last or i in keep:
                live[i] = v
            yield i, v
        del value, made
    frames.pop()
    outputs = [live[i] for i in block._output_ids]
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _tensors(value) -> list:
    """The tensors in a value: one, or a call's several (nested) outputs."""
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return [value]


def _storage_bytes(tensors) -> int:
    if tensors and tensors[0].device.type == "meta":
        return 0
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


def example_inputs(graph: Graph, sizes: dict[str, int], device: str = "cpu") -> list:
    """A random tensor per plan input at `sizes`: floats, or integer indices in range where a layer reads
    indices from it (Embedding: below the smallest num_embeddings of the layers that read it)."""
    from .shapes import evaluate

    out = []
    for node in graph.inputs:
        shape = [int(evaluate(d, sizes)) for d in node.shape]
        bounds = [int(evaluate(r.args[r.spec.indices], sizes)) for r in graph.nodes
                  if r.op == "layer" and r.spec.indices and node.id in r.inputs]
        out.append(torch.randint(0, min(bounds), shape, device=device) if bounds
                   else torch.randn(*shape, device=device))
    return out


def make_layer(node: Node) -> nn.Module:
    """`torch.nn.<kind>(**arguments)` (or convplan's own module of that name: modules.py), every argument
    concrete."""
    spec = node.spec
    if spec.compose is not None:  # torch builds it from other modules: TransformerEncoder
        return spec.compose(lambda kind, args, kwargs: getattr(nn, kind)(*args, **kwargs),
                            lambda name: concrete(node.args[name]), node.args, node.given)
    kwargs = {name: concrete(node.args[name]) for name in spec.torch_order()
              if name in node.given and name not in spec.forward_args}
    if spec.module != "torch.nn":
        from . import modules

        return getattr(modules, spec.name)(**kwargs)
    return getattr(nn, spec.name)(**kwargs)


def concrete(value):
    """sympy integers -> int, recursively; anything symbolic left is a bug of the caller."""
    if isinstance(value, tuple):
        return tuple(concrete(v) for v in value)
    if isinstance(value, sympy.Basic):
        if not value.is_Integer:
            raise ValueError(f"not a concrete size: {value}")
        return int(value)
    return value


def build_module(plan) -> PlanModule:
    params = [node.shape for node in plan.graph.nodes if node.op == "param"]  # a learnable tensor's size
    values = [*(v for node in plan.layers for k, v in node.args.items() if k not in node.spec.forward_args), *params]
    missing = sorted({s.name for v in values for s in _symbols(v)})
    if missing:
        message = (f"building {plan.name} needs a value for {', '.join(missing)}: the layers' weights depend on it; "
                   f"pass {', '.join(f'{m}=...' for m in missing)}")
        raise PlanError([Diagnostic("E403", message, plan.definition.name_span, plan.filename)], plan.source)
    try:
        return make_tree(plan.graph, plan.name)
    except Unsized as exc:
        raise _needs_sizes(plan, exc) from None
    except (RuntimeError, MemoryError) as exc:  # torch's allocator refusing the weights: say so, not a traceback
        if not isinstance(exc, MemoryError) and "alloc" not in str(exc):
            raise
        from .limits import ITEM_BYTES, show_bytes

        weights = sum(int(n.params) for n in plan.layers) * ITEM_BYTES
        at = ", ".join(f"{k}={v}" for k, v in plan.sizes.items()) or "these sizes"
        message = (f"cannot build {plan.name} at {at}: torch could not allocate its weights (about "
                   f"{show_bytes(weights)} in float32)")
        raise PlanError([Diagnostic("E403", message, plan.definition.name_span, plan.filename,
                                    ("give smaller sizes, or count on the formulas: plan.total_params",))],
                        plan.source) from None


def _needs_sizes(plan, exc: Unsized) -> PlanError:
    """E403 at the operation: the sizes to pass, and why forward cannot read them."""
    node, names = exc.node, sorted(s.name for s in _symbols(exc.value))
    where = f"in the block call {node.owner[-1]}" if node.owner else "in the plan"
    message = (f"building {plan.name} needs a value for {', '.join(names)}: {node.op} ({node.name}) takes "
               f"{pyrepr(exc.value)}, which no tensor {where} has as a size, so forward cannot read it; pass "
               f"{', '.join(f'{m}=...' for m in names)}")
    hint = "or give the block a tensor of that size (an input), so that the module serves every size"
    if node.file:  # in an imported file, whose text this plan does not hold: point at the plan, name the line
        message += f" ({node.file}:{node.span.line})"
    diag = Diagnostic("E403", message, plan.definition.name_span if node.file else node.span, plan.filename, (hint,))
    return PlanError([diag], plan.source)


def _symbols(value):
    if isinstance(value, tuple):
        return {s for v in value for s in _symbols(v)}
    return value.free_symbols if isinstance(value, sympy.Basic) else set()
