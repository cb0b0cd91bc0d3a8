"""Memory as exact formulas, in bytes, for every size at once.

- parameters: every weight and bias (the `params` pass), at the dtype's size;
- gradients: one per parameter (training);
- optimizer state: SGD none, SGD with momentum one buffer per parameter, Adam two;
- buffers: the modules' buffers (BatchNorm's running mean and variance, and its int64 count);
- activations: every tensor the forward pass creates in eval mode (inputs excluded).  A layer
  whose output is its input's storage takes nothing: views and eval-mode dropout (the registry's
  `aliases_input`) and layers written with `inplace=True`.

- saved: what autograd keeps for backward in training mode (the `saved` pass): the distinct storages
  the layers save (registry: `LayerSpec.saves`, saves.py; a product merge saves its operands, and from the
  third on the product so far, as torch folds `a * b * c`), the
  input's among them where a layer saves it; the model's input does not require grad.  A layer saves
  only where autograd records it: its input requires grad or it has weights.  A view or an in-place
  layer shares its input's storage, so what two layers save of one storage is counted once (where
  torch decides by the sizes, a formula: 1 where it is saved).  Kinds whose rule is not modelled (in
  this dtype: an LSTM in bfloat16) are listed in `unmodelled`, never counted as nothing.  The tensor
  operations amax, matmul and scaled_dot_product_attention follow torch's own code (saves_ops.py): what
  matmul keeps is a view or a copy by its operands' strides, which this pass follows along the graph
  (layouts.py); an operand whose strides it does not follow lists the operation as unmodelled.

`training(optimizer)` adds up what a training step holds when its backward starts: parameters, buffers,
gradients, optimizer state and the saved tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy

from .graph import Graph, Node
from .layers import REGISTRY
from .layouts import layouts
from .merges import mul_rule
from .ops import FUNCTIONS, OpSpec
from .saves import BYTE, INPUT, INT64, NEW, OPMATH, OUTPUT, SAME, STATS
from .shapes import to_expr, value_at

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8": 1}
# A norm's saved statistics are in the module's dtype: a module converted with .half() or .to(torch.bfloat16)
# keeps them in 16 bits (measured on CPU, tests/test_memory.py; autocast, which keeps float32 weights, is not
# modelled).
ITEM_BYTES = {STATS: lambda size: size, INT64: lambda size: 8, SAME: lambda size: size,
              OPMATH: lambda size: max(size, 4), BYTE: lambda size: 1}
OPTIMIZER_BUFFERS = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}  # state tensors per parameter


@dataclass(frozen=True)
class Memory:
    """Bytes, as formulas of the plan's symbols."""

    dtype: str
    parameters: sympy.Expr
    gradients: sympy.Expr
    optimizer: dict  # optimizer name -> bytes of its state
    activations: sympy.Expr
    by_layer: dict  # node name -> bytes of the tensor it creates (0 where it aliases its input)
    saved: sympy.Expr = sympy.Integer(0)  # bytes autograd keeps for backward in training
    buffers: sympy.Expr = sympy.Integer(0)  # the modules' buffers: BatchNorm's running statistics and count
    saved_by_layer: dict = field(default_factory=dict)  # node name -> bytes of the storages it is first to save
    unmodelled: tuple[str, ...] = ()  # kinds whose saved tensors are not modelled (not counted in `saved`)
    # raises for sizes the plan refuses (Plan.memory passes its own check)
    check: Callable[[dict], None] | None = field(default=None, repr=False, compare=False)

    def training(self, optimizer: str = "adam") -> sympy.Expr:
        """What a training step holds when its backward starts: parameters, buffers, gradients (kept from the
        step before, as `zero_grad(set_to_none=False)` keeps them), the optimizer's state and what autograd
        saved for backward.  The step's peak is higher by what backward makes while these are alive (the
        gradients of the activations): tests/test_memory.py measures it with torch's memory profiler.
        No formula gives that peak: it holds the kernels' own workspaces, which depend on the kernel torch
        picks, not on the shapes (tests/test_backward_peak.py: the same convolutions peak 4.7 x higher
        without oneDNN, with the same saved tensors).
        Adam's step counters (a 4-byte scalar per parameter tensor) are not counted."""
        if optimizer not in self.optimizer:
            raise ValueError(f"unknown optimizer {optimizer!r}; the optimizers are {', '.join(self.optimizer)}")
        return self.parameters + self.buffers + self.gradients + self.optimizer[optimizer] + self.saved

    def at(self, expr, /, **sizes: int) -> int:  # positional: a size may be called expr
        """`expr` (one of the fields) at these sizes."""
        if self.check is not None:
            self.check(sizes)
        return value_at(expr, sizes, "the memory")


def creates(node: Node) -> bool:
    """Whether the node's output is a new tensor in eval mode (not a view or its input itself, nor a weight)."""
    if node.op in ("input", "param"):
        return False
    if node.op == "item":  # one of several outputs: a view where its call's are
        spec = FUNCTIONS.get(node.kind) or REGISTRY.get(node.kind)
        return not getattr(spec, "aliases_input", False)
    if node.op != "layer":
        return not getattr(FUNCTIONS[node.op], "aliases_input", False)  # merges compute new tensors
    return not (node.spec.aliases_input or node.args.get("inplace") is True)


def memory(graph: Graph, dtype: str = "float32", check: Callable[[dict], None] | None = None) -> Memory:
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; the dtypes are {', '.join(DTYPE_BYTES)}")
    size = DTYPE_BYTES[dtype]
    params = size * sympy.Add(*(node.params for node in graph.nodes))
    by_layer = {node.name: size * storage_elements(graph.nodes, node, dtype) if creates(node) else sympy.Integer(0)
                for node in graph.nodes if node.op != "input"}
    saved_by_layer, unmodelled = saved(graph, dtype)
    kept = sympy.Add(*(size * floats + 8 * counts for floats, counts in map(buffers, graph.nodes)))
    return Memory(dtype, params, params, {name: k * params for name, k in OPTIMIZER_BUFFERS.items()},
                  sympy.Add(*by_layer.values()), by_layer, saved=sympy.Add(*saved_by_layer.values()),
                  saved_by_layer=saved_by_layer, unmodelled=unmodelled, buffers=kept, check=check)


def storage_elements(nodes, node: Node, dtype: str = "float32") -> sympy.Expr:
    """Elements of the storage a node's output is made in, in this dtype: its own, or more where its kind's saves
    rule says so (Unfold with a 1 x 1 kernel keeps a storage of its input's size), or where the registry says its
    output can be a view of a larger tensor it made (`LayerSpec.storage`: ShiftedWindowAttention's crop; a
    ConvTranspose3d that torch runs in its own kernel, by dtype)."""
    if node.op == "layer" and node.spec.storage is not None:
        return to_expr(node.spec.storage(node.args, nodes[node.inputs[0]].shape, node.shape, dtype))
    if node.op == "layer" and node.spec.saves is not None:
        found = _rule(node.spec, node, [nodes[i] for i in node.inputs]).storage
        if found is not None:
            return found
    return sympy.Mul(*node.shape)


def buffers(node: Node) -> tuple:
    """(floating-point elements, int64 elements) of the buffers a layer's module holds: a norm that tracks
    running statistics keeps a mean and a variance per channel, in the module's dtype, and one int64 count."""
    if node.op == "layer" and node.args.get("track_running_stats") is True:
        return to_expr(2 * node.args["num_features"]), sympy.Integer(1)
    if node.op == "layer" and node.spec.buffers is not None:
        return tuple(to_expr(v) for v in node.spec.buffers(node.args))
    return sympy.Integer(0), sympy.Integer(0)


def saved(graph: Graph, dtype: str) -> tuple[dict, tuple[str, ...]]:
    """(node name -> bytes of the storages it is the first to save for backward, kinds not modelled)."""
    nodes = graph.nodes
    storage: dict[int, int] = {}  # node id -> the id of the node whose output storage it is
    grad: dict[int, bool] = {}  # node id -> whether its output requires grad
    kept: dict = {}  # storage -> 1 where it is saved so far (a formula where that depends on the sizes)
    layout = layouts(graph)  # node id -> its output's strides, or None where convplan does not follow them
    by_layer, unmodelled = {}, []
    for node in nodes:
        ins = [nodes[i] for i in node.inputs]
        grad[node.id] = node.op in ("layer", "param") and node.params != 0 or any(grad[i.id] for i in ins)
        storage[node.id] = node.id
        if node.op in ("input", "param"):
            continue
        if node.op == "item":  # saved by its call; its storage is the call's input's where that is a view
            storage[node.id] = storage[ins[0].id] if not creates(node) else node.id
            continue
        spec = FUNCTIONS.get(node.op)
        if isinstance(spec, OpSpec) or node.op == "layer":
            if node.op == "layer":
                spec = node.spec
            if spec.saves is None:
                unmodelled.append(node.kind or node.op)
                continue
            rule = _rule(spec, node, ins, grad, layout)
            if rule.unmodelled or dtype in rule.unmodelled_in:
                unmodelled.append(node.kind or node.op)
                continue
            if rule.aliases:
                storage[node.id] = storage[ins[0].id]
            saving = [_item(item, node, ins, storage, dtype, nodes) for item in rule.items
                      if grad[node.id] and (not item.input_grad_only or grad[ins[item.index].id])
                      and (not item.only or dtype in item.only) and not _weight(item, ins, storage, nodes)]
        else:
            saving = _product(ins, grad, storage, dtype, nodes) if spec.saves_operands else []
        by_layer[node.name] = _keep(saving, kept)
    return by_layer, tuple(dict.fromkeys(unmodelled))


def _weight(item, ins: list, storage: dict, nodes) -> bool:
    """Whether the item is a learnable tensor's storage (a Parameter a matmul keeps): counted as parameters."""
    return item.what == INPUT and nodes[storage[ins[item.index].id]].op == "param"


def _rule(spec, node: Node, ins: list, grad: dict | None = None, layout: dict | None = None):
    """The kind's Saves here.  A layer of several tensors gets the others' shapes too, and `tied`: for each of
    its tensors the index of the first that is the same tensor (MultiheadAttention(x, x, x) projects once);
    an operation of several tensors (matmul, attention) which of them require grad, and their strides."""
    if len(ins) < 2:
        return spec.saves(node.args, ins[0].shape, node.shape)
    if node.op != "layer":
        others = (i.shape for i in ins[1:])
        if grad is None:  # storage_elements: only the storage's size is asked
            return spec.saves(node.args, ins[0].shape, node.shape, *others)
        return spec.saves(node.args, ins[0].shape, node.shape, *others, grads=tuple(grad[i.id] for i in ins),
                          strides=tuple(layout[i.id] for i in ins))
    tied = tuple(node.inputs.index(i) for i in node.inputs)
    return spec.saves(node.args, ins[0].shape, node.shape, *(i.shape for i in ins[1:]), tied=tied)


def _product(ins: list, grad: dict, storage: dict, dtype: str, nodes) -> list:
    """A product of operands, left to right as torch folds it: each `left * right` saves `left` where `right`
    requires grad and `right` where `left` does; from the third operand on, `left` is a new tensor (the
    product so far, broadcast: `mul_rule`).  An operand keeps its whole storage (a narrowed view, all of it)."""
    saving, size = [], DTYPE_BYTES[dtype]
    left, left_bytes, left_grad = storage[ins[0].id], _stored(ins[0], storage, dtype, nodes), grad[ins[0].id]
    shapes = [ins[0].shape]
    if ins[0].op == "param":  # a learnable tensor is a weight, counted as parameters
        left = None
    for right in ins[1:]:
        if grad[right.id] and left is not None:
            saving.append((left, left_bytes, 1))
        if left_grad and right.op != "param":
            saving.append((storage[right.id], _stored(right, storage, dtype, nodes), 1))
        shapes.append(right.shape)
        left, left_bytes = object(), size * sympy.Mul(*mul_rule(shapes, {})[0])
        left_grad = left_grad or grad[right.id]
    return saving


def _item(item, node: Node, ins: list, storage: dict, dtype: str, nodes) -> tuple:
    """(storage key, bytes, scale) of one saved tensor; a new tensor is a storage of its own.  A view keeps its
    whole storage alive (a chunk of a tensor keeps all of it): the bytes are its storage owner's."""
    size = DTYPE_BYTES[dtype]
    if item.what == NEW:
        key = object() if item.key is None else (node.id, item.key)
        return key, ITEM_BYTES[item.dtype](size) * item.numel, item.scale
    if item.what == OUTPUT and item.index:  # another of its outputs: the item node that names it
        named = _named_output(nodes, node, item.index)
        key = object() if named is None else named.id
        return key, ITEM_BYTES[item.dtype](size) * (_numel(named) if named else _numel(node)), item.scale
    of = ins[item.index] if item.what == INPUT else node
    if item.dtype == OPMATH and size < 4:  # a float32 copy of a 16-bit tensor
        return object(), 4 * _numel(of), item.scale
    owner = nodes[storage[of.id]]
    return storage[of.id], ITEM_BYTES[item.dtype](size) * storage_elements(nodes, owner, dtype), item.scale


def _stored(node: Node, storage: dict, dtype: str, nodes) -> sympy.Expr:
    """Bytes of the storage a node's output lives in (its storage owner's: a view keeps all of it alive)."""
    return DTYPE_BYTES[dtype] * storage_elements(nodes, nodes[storage[node.id]], dtype)


def _named_output(nodes, node: Node, index: int) -> Node | None:
    """The item node that names the call's output `index`, or None: a call's items follow it at once, in order
    (scope.State.add_several), so it is the node `index` places on, where any is; not a scan of the graph."""
    at = node.id + index
    named = nodes[at] if at < len(nodes) else None
    if named is not None and named.op == "item" and named.inputs == (node.id,) and named.args.get("index") == index:
        return named
    return None


def _numel(node: Node) -> sympy.Expr:
    return sympy.Mul(*node.shape)


def _keep(saving: list, kept: dict) -> sympy.Expr:
    """Bytes of the storages in `saving` not saved before.  A storage saved only at some sizes (a scale of
    0 or 1 by the sizes: an adaptive pool that torch turns into a mean) is saved so far where any of its
    savers saved it."""
    total = sympy.Integer(0)
    for key, nbytes, scale in saving:
        before = kept.get(key, sympy.Integer(0))
        if before == 1:
            continue
        new = scale * (1 - before)
        kept[key] = before + new
        total += new * nbytes
    return total
