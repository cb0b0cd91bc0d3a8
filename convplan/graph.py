"""The shape graph: nodes with inputs (so blocks and branches fit), each carrying its
resolved arguments and symbolic output shape.  Built by check.py; read by build, verify
and codegen."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy

from .errors import Span
from .layers import REGISTRY, LayerSpec
from .ops import FUNCTIONS
from .show import show_shape, show_value


@dataclass(frozen=True, repr=False, slots=True)
class Node:
    """One tensor of the plan: an input, a layer's output or a merge's; read-only."""

    id: int
    # "input", "layer", a function's name (a merge or an operation: ops.FUNCTIONS), "param" (a learnable
    # tensor: an nn.Parameter of the module `path` names) or "item" (one of several outputs, see `unpack`)
    op: str
    name: str  # unique, a valid Python identifier: x, conv1, layer1_basicblock1_conv2, add1, ...
    inputs: tuple[int, ...]  # node ids, in order (a merge's operands, in the order written)
    shape: tuple  # sympy expressions
    span: Span
    kind: str = ""  # layer class name for op == "layer"
    args: dict = field(default_factory=dict)  # every torch argument, resolved (inferred ones included)
    given: tuple[str, ...] = ()  # the arguments the user wrote, plus the inferred one: what to show
    file: str = ""  # the file its span is in, when not the plan's own (a block imported from another file)
    # Where it lives in the built module: a layer's submodule path (("layer1", "0", "conv1")), and the
    # block call (or the plan, ()) whose forward computes it.  Empty for a graph made by hand: flat.
    path: tuple[str, ...] = ()
    owner: tuple[str, ...] = ()
    written: tuple[tuple[str, str], ...] = ()  # (argument, name): arguments written as a bare name
    # What the passes (passes.py) found about this node, by pass: like torch.fx's `node.meta`.
    meta: dict = field(default_factory=dict, compare=False, repr=False)
    # The block calls and numbered containers it is inside, outermost first, each (node-name prefix,
    # block name or "Sequential"): (("layer1", "Sequential"), ("layer1_basicblock1", "BasicBlock")).
    # Drawings group by it.
    scope: tuple[tuple[str, str], ...] = ()
    # A call with several outputs is this node (its first output) and an "item" node per other output, each
    # reading this one: `unpack` nests their ids as torch nests the outputs, `(5, (6, 7))` for LSTM's
    # `out, (h, c)`.  The call runs once, at this node; its items are its other outputs.  Empty: one output.
    unpack: tuple = ()

    @property
    def spec(self) -> LayerSpec | None:
        """The layer registry's entry for `kind` (None for inputs and merges)."""
        return REGISTRY.get(self.kind)

    @property
    def params(self) -> sympy.Expr:
        """The parameter count (the `params` pass)."""
        return self.meta.get("params", sympy.Integer(0))

    @property
    def line(self) -> int:
        """The line it is written on (in `file` when that is set)."""
        return self.span.line

    @property
    def output_shape(self) -> tuple:
        """Its shape (`shape`): one sympy formula per dim."""
        return self.shape

    @property
    def module_path(self) -> tuple[str, ...]:
        """A layer's submodule path in the built module (its name, in a flat graph made by hand)."""
        return self.path or (self.name,)

    def __repr__(self) -> str:
        what = self.op if self.op in ("input", "param", "item") else show_call(self)
        if self.op in FUNCTIONS:  # without the graph, its operands by node id
            what += " of " + ", ".join(f"#{i}" for i in self.inputs)
        where = f"{self.file}:{self.line}" if self.file else f"line {self.line}"
        return f"<Node {self.name} = {what} -> {show_shape(self.shape)}, {where}>"

    def substitute(self, mapping: dict) -> Node:
        """The same node with symbols replaced (`{L: 20}`) in its shape, arguments and pass results."""
        if not mapping:
            return self
        sub = lambda v: _subst(v, mapping)  # noqa: E731
        return replace(self, shape=tuple(sub(d) for d in self.shape), args={k: sub(v) for k, v in self.args.items()},
                       meta={k: sub(v) for k, v in self.meta.items()})


def _subst(value, mapping):
    if isinstance(value, tuple):
        return tuple(_subst(v, mapping) for v in value)
    if isinstance(value, sympy.Basic):
        return value.xreplace(mapping)
    return value


@dataclass(frozen=True, slots=True)
class Module:
    """A submodule that holds others: a block call (`kind` "block", its forward runs the nodes it
    owns) or a numbered container (`name = repeat ...:` / `name = sequential:`, kind "seq")."""

    path: tuple[str, ...]
    kind: str
    span: Span
    owner: tuple[str, ...]  # the block call (or the plan, ()) that runs it
    name: str = ""  # the block's name
    inputs: tuple[int, ...] = ()  # a block's input tensors, in order
    output: int = -1  # the tensor a block gives
    file: str = ""
    start: int = 0  # the id of the first node made inside it: a block's place among its owner's steps
    prefix: str = ""  # of its nodes' names (layer1_basicblock1_)
    input_names: tuple[str, ...] = ()  # as the block's `input` statements name them
    values: tuple = ()  # (name, value): the block's parameters and the other numbers it named, when called

    def substitute(self, mapping: dict) -> Module:
        """The same module with symbols replaced in its values (a `?` given to the block: its solution)."""
        if not self.values:
            return self
        return replace(self, values=tuple((k, _subst(v, mapping)) for k, v in self.values))


@dataclass(frozen=True)
class Graph:
    """The nodes in plan order (a node's inputs come before it) and the ids of the outputs."""

    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    # The built module's tree in the order its submodules are made: a layer's node id, or a Module.
    # Empty for a graph made by hand: every layer is a submodule of the plan, by its node name.
    tree: tuple = ()

    @property
    def layers(self) -> tuple[Node, ...]:
        """The layer nodes, in plan order."""
        return tuple(n for n in self.nodes if n.op == "layer")

    @property
    def inputs(self) -> tuple[Node, ...]:
        """The input nodes, in the order the module takes them."""
        return tuple(n for n in self.nodes if n.op == "input")

    @property
    def merges(self) -> tuple[Node, ...]:
        """The function nodes (merges: add, cat, ...; operations: permute, chunk, ...), in plan order."""
        return tuple(n for n in self.nodes if n.op in FUNCTIONS)

    def substitute(self, mapping: dict) -> Graph:
        """Every node, and every block call's values, with symbols replaced (`Node.substitute`)."""
        if not mapping:  # nothing to replace (nearly every plan): no pass over the nodes
            return self
        return replace(self, nodes=tuple(n.substitute(mapping) for n in self.nodes),
                       tree=tuple(m.substitute(mapping) if isinstance(m, Module) else m for m in self.tree))

    @property
    def blocks(self) -> tuple[Module, ...]:
        """The block calls, each a submodule of the built module, in the order they are made."""
        return tuple(m for m in self.tree if isinstance(m, Module) and m.kind == "block")

    def children(self, path: tuple[str, ...]) -> list:
        """The submodules directly in `path`, in the order they are made: layer nodes and Modules."""
        items = self.tree or [n.id for n in self.layers]
        out = [self.nodes[i] if isinstance(i, int) else i for i in items]
        return [m for m in out if (m.module_path if isinstance(m, Node) else m.path)[:-1] == path]

    def steps(self) -> dict[tuple[str, ...], list[Step]]:
        """What each block call's (and the plan's, ()) forward runs, in the order the plan made it:
        its layers and merges, and the blocks it calls (a call after the tensors it reads, before
        the nodes made inside it)."""
        keyed: dict[tuple, list] = {}
        for k, item in enumerate(self.tree):
            if isinstance(item, Module) and item.kind == "block":
                step = Step(item.output, "block", item.path, item.inputs, item)
                keyed.setdefault(item.owner, []).append(((item.start, 0, k), step))
        for node in self.nodes:
            if node.op not in ("input", "item"):  # an item is made by the step of the call it is an output of
                path = node.module_path if node.op in ("layer", "param") else ()
                step = Step(node.id, node.op, path, node.inputs, node)
                keyed.setdefault(node.owner, []).append(((node.id, 1, 0), step))
        return {owner: [step for _, step in sorted(steps, key=lambda s: s[0])] for owner, steps in keyed.items()}


@dataclass(frozen=True)
class Step:
    """One line of a forward: a layer, a merge or a block call, computing node `out` from `inputs`."""

    out: int
    op: str  # "layer", a function's name, "param" or "block"
    path: tuple[str, ...]  # the submodule called (a layer's or a block's), a parameter's; () for a function
    inputs: tuple[int, ...]
    item: Node | Module


def show_call(node: Node, graph: Graph | None = None) -> str:
    """`Conv1d(1, 32, kernel_size=3, padding=1)`: as codegen writes it (`LayerSpec.call_args`).
    A merge shows its inputs when the graph is given: `cat(b1, b2, dim=1)`."""
    if node.op == "item":  # one of several outputs: its call is the node it reads
        return "item"
    if node.op == "param":
        given = [show_value(node.args["size"]), *(f"{k}={show_value(node.args[k])}" for k in ("init", "scale"))]
        return f"Parameter({', '.join(given)})"
    if node.op in FUNCTIONS:
        parts = [graph.nodes[i].name for i in node.inputs] if graph is not None else []
        parts += [f"{k}={show_value(v)}" for k, v in node.args.items()]
        return f"{node.op}({', '.join(parts)})"
    parts = [(f"{name}=" if not positional else "") + show_value(node.args[name])
             for name, positional in node.spec.call_args(node.given)]
    return f"{node.kind}({', '.join(parts)})"
