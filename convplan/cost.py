"""Cost as exact formulas: how many operations a plan's forward pass takes, for every size at once.

Counting tools disagree because they count different things; each convention here is named
for what it reproduces, says what it counts, and lists the kinds it does not count instead of
counting them as zero:

- "macs": multiply-accumulates with the weights: each output element of a convolution or a
  Linear is a dot product of `in_channels/groups x kernel` (or `in_features`) terms; a
  transposed convolution scatters each INPUT element through `out_channels/groups x kernel`
  weights; a recurrent layer multiplies every step's input and state by its weights; attention
  counts its projections and both products of attention (docs/layers.md has each kind's rule).
  Bias adds are not counted.  Every other kind is listed in `uncounted`.
- "flopcounter": exactly what `torch.utils.flop_counter.FlopCounterMode` reports for the
  built module on the CPU in eval mode under no_grad: 2 per multiply-accumulate of convolutions
  and matrix products (mm, addmm, bmm; the operations matmul and scaled_dot_product_attention:
  their `products`), nothing else (normalisation, pooling, activations, merges are uncounted
  there); the kinds torch runs in fused kernels it cannot see (cost_flopcounter.py) are listed, and
  attention where which kernel runs depends on strides convplan does not follow (layouts.py).
- "fvcore": exactly what fvcore's `FlopCountAnalysis(module, inputs).total()` reports: the
  multiply-accumulates of convolutions and Linear, plus its own rules for normalisation, adaptive
  average pooling and upsampling (cost_fvcore.py); `skipped` lists the operators it skips with a
  warning, by kind.
- "ptflops": exactly what ptflops' `get_model_complexity_info` (pytorch backend) reports: module hooks
  per sample plus patched functions per batch, truncated to an int (cost_ptflops.py).  Its per-layer
  counts are rationals (a hook's share of the batch); the total is the floor of their sum.

The per-node multiply-accumulates come from the registry (`LayerSpec.macs`), by the `macs`
pass, which runs when a cost is first asked for.  A convention is one rule over a node and its
first input: (count or None, operators the tool skips with a warning).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy

from . import cost_flopcounter, cost_fvcore, cost_ptflops
from .graph import Graph, Node
from .ops import OPS
from .shapes import to_expr, value_at


@dataclass(frozen=True)
class Convention:
    name: str
    counts: str  # what it counts, in words
    rule: Callable[[Node, Graph], tuple]  # (node, graph) -> (count or None, operators skipped with a warning)
    total: Callable[[dict], sympy.Expr] | None = None  # by_layer -> the total, where it is not their sum
    why: Callable[[Node, Graph], str | None] | None = None  # why a node it does not count is left out


def _per_mac(k: int) -> Callable:
    return lambda node, graph: (None if node.meta["macs"] is None else k * node.meta["macs"], ())


CONVENTIONS = {
    c.name: c
    for c in (
        Convention("macs", "multiply-accumulates with the weights of convolutions and Linear layers", _per_mac(1)),
        Convention("flopcounter", "torch FlopCounterMode: 2 per multiply-accumulate of convolutions and matrix "
                   "products (Linear, matmul, attention, recurrent layers), nothing else", cost_flopcounter.count,
                   why=cost_flopcounter.why),
        Convention("fvcore", "fvcore FlopCountAnalysis: multiply-accumulates of convolutions and Linear, "
                   "normalisation, adaptive average pooling and upsampling by its own rules", cost_fvcore.count),
        Convention("ptflops", "ptflops get_model_complexity_info (pytorch backend): module hooks per sample "
                   "plus patched functions per batch, truncated", cost_ptflops.count, cost_ptflops.total,
                   cost_ptflops.why),
    )
}


def macs(graph: Graph) -> None:
    """meta["macs"]: a node's multiply-accumulates with its weights, or None where its kind declares none;
    meta["products"]: those of a product of tensors (matmul, attention: no weights), or None."""
    nodes = graph.nodes
    for node in nodes:
        function = OPS.get(node.op)
        products = function.products if function is not None else None
        node.meta["products"] = None if products is None else \
            to_expr(products([nodes[i].shape for i in node.inputs], node.shape, node.args))
        spec = node.spec if node.op == "layer" else None
        if spec is None or spec.macs is None:
            node.meta["macs"] = None
            continue
        others = (nodes[i].shape for i in node.inputs[1:])  # MultiheadAttention's key and value
        node.meta["macs"] = to_expr(spec.macs(nodes[node.inputs[0]].shape, node.shape, node.args, *others))


@dataclass(frozen=True)
class Cost:
    """A plan's cost under one convention: formulas of the plan's symbols."""

    convention: str
    by_layer: dict  # node name -> its cost, in plan order: the nodes this convention counts
    uncounted: tuple[str, ...]  # the kinds in the plan this convention does not count (never a silent 0)
    skipped: dict = field(default_factory=dict)  # kind -> operators the tool skips with a warning (fvcore)
    reasons: dict = field(default_factory=dict)  # kind -> why the tool counts it as nothing, where it says why
    # raises for sizes the plan refuses (Plan.cost passes its own check): no count for a network that cannot run
    check: Callable[[dict], None] | None = field(default=None, repr=False, compare=False)

    @property
    def total(self) -> sympy.Expr:
        finish = CONVENTIONS[self.convention].total
        return finish(self.by_layer) if finish is not None else sympy.Add(*self.by_layer.values())

    def at(self, **sizes: int) -> int:
        """The total at these sizes (every symbol of the total needs a value)."""
        if self.check is not None:
            self.check(sizes)
        return value_at(self.total, sizes, "the cost")

    def __str__(self) -> str:
        from .shapes import pyrepr

        text = f"{self.convention}: {pyrepr(self.total)}"
        return text + (f" (not counted: {', '.join(self.uncounted)})" if self.uncounted else "")

    @property
    def skipped_ops(self) -> set[str]:
        """Every operator the tool skips with a warning (fvcore's `unsupported_ops()`)."""
        return {op for ops in self.skipped.values() for op in ops}


def cost(graph: Graph, convention: str = "macs", check: Callable[[dict], None] | None = None) -> Cost:
    """The cost of `graph` under `convention` (see CONVENTIONS); runs the macs pass if it has not run."""
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise ValueError(f"unknown cost convention {convention!r}; the conventions are "
                         + ", ".join(sorted(CONVENTIONS)))
    if any("macs" not in node.meta for node in graph.nodes):
        macs(graph)
    rule, why = CONVENTIONS[convention].rule, CONVENTIONS[convention].why
    by_layer, uncounted, skipped, reasons = {}, [], {}, {}
    for node in graph.nodes:
        if node.op in UNCOSTED:
            continue
        value, ops = rule(node, graph)
        kind = node.kind or node.op
        if ops:
            skipped[kind] = tuple(dict.fromkeys(skipped.get(kind, ()) + ops))
        if value is None:
            if kind not in uncounted:
                uncounted.append(kind)
            reason = why(node, graph) if why is not None and kind not in reasons else None
            if reason:
                reasons[kind] = reason
        else:
            by_layer[node.name] = to_expr(value)
    return Cost(convention, by_layer, tuple(uncounted), skipped, reasons, check)


@dataclass(frozen=True)
class Comparison:
    """Every convention's count of a plan, by layer kind (in plan order): where two conventions differ, the
    difference is the sum of their per-kind differences, with nothing left over."""

    by_kind: dict  # kind -> {convention: its count of that kind's nodes, or None where it counts none of them}
    costs: dict  # convention -> its Cost

    @property
    def totals(self) -> dict:
        return {name: c.total for name, c in self.costs.items()}

    def difference(self, a: str, b: str) -> dict:
        """kind -> a's count minus b's (an uncounted kind counts 0), for the kinds where they may differ."""
        out = {}
        for kind, row in self.by_kind.items():
            delta = to_expr((row[a] or 0) - (row[b] or 0))
            if delta != 0:
                out[kind] = delta
        return out


def compare(graph: Graph, conventions=None, check: Callable[[dict], None] | None = None) -> Comparison:
    """The conventions (all, by default) side by side, by layer kind."""
    if isinstance(conventions, str):  # one name, not its letters ("unknown cost convention 'm'")
        conventions = (conventions,)
    names = tuple(conventions or CONVENTIONS)
    costs = {name: cost(graph, name, check) for name in names}
    kinds: dict[str, dict] = {}
    for node in graph.nodes:
        if node.op in UNCOSTED:
            continue
        row = kinds.setdefault(node.kind or node.op, dict.fromkeys(names))
        for name, c in costs.items():
            if node.name in c.by_layer:
                row[name] = (row[name] or 0) + c.by_layer[node.name]
    for name, c in costs.items():  # a total that is not the sum of the layers (ptflops' int()): its own row
        if CONVENTIONS[name].total is not None:
            kinds.setdefault(ROUNDING, dict.fromkeys(names))[name] = c.total - sympy.Add(*c.by_layer.values())
    return Comparison(kinds, costs)


ROUNDING = "int() of the sum"
# Nodes that compute nothing: inputs, learnable tensors (weights), and the other outputs of a call (counted
# at the call)
UNCOSTED = ("input", "param", "item")  # the --compare row of what a tool's rounding of its total adds
