"""Receptive fields as formulas: for every node and every spatial dim of the plan's input, which input
positions an output position reads.

Output position i of a node reads input positions `start + i*jump` to `start + i*jump + size - 1`
(clipped to the input: padding reads nothing), as the classic recurrence computes it through each
window a layer slides (registry: `LayerSpec.window`): size += (extent - 1)*jump, start -= left*jump,
jump *= stride.  Dilation counts in the extent (the span, holes included).  Where paths meet (add, mul,
cat along the channels) the field is the union over every path, not just the main one.

`GLOBAL` means every position reads the whole input along that dim (after a global pool, Flatten and
Linear, GroupNorm); `None` means it is not modelled (transposed convolutions, upsampling, pixel
shuffles and adaptive pools to a size other than 1 read windows that vary from position to position).
The spatial dims are the input's dims after the batch and channel: [N, C, *spatial].
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .graph import Graph, Node
from .layers import GLOBAL, POINTWISE
from .ops import OPS
from .shapes import to_expr


@dataclass(frozen=True)
class Field:
    size: sympy.Expr  # input positions one output position spans
    jump: sympy.Expr  # input positions between two neighbouring output positions (the effective stride)
    start: sympy.Expr  # the first input position output position 0 reads (negative: into the padding)

    def span(self, i) -> tuple:
        """The input positions output position `i` reads, first and last (before clipping)."""
        first = self.start + i * self.jump
        return first, first + self.size - 1


def receptive_fields(graph: Graph) -> None:
    """meta["receptive_field"]: a tuple with one Field, GLOBAL or None per spatial dim of the first input."""
    nodes = graph.nodes
    spatial = max(len(graph.inputs[0].shape) - 2, 0) if graph.inputs else 0
    for node in nodes:
        if node.op == "input":
            ones = sympy.Integer(1)
            node.meta["receptive_field"] = tuple(Field(ones, ones, sympy.Integer(0)) for _ in range(spatial)) \
                if node is graph.inputs[0] else (None,) * spatial
            continue
        fields = [nodes[i].meta["receptive_field"] for i in node.inputs]
        if node.op in OPS or node.op == "param":  # operations rearrange dims: not modelled; weights read nothing
            node.meta["receptive_field"] = fields[0] if node.op == "contiguous" else (None,) * spatial
        elif node.op == "item":
            node.meta["receptive_field"] = fields[0]
        else:
            node.meta["receptive_field"] = _layer(node, nodes[node.inputs[0]], fields[0], spatial) \
                if node.op == "layer" else _merge(node, fields, spatial)


def _layer(node: Node, source: Node, field: tuple, spatial: int) -> tuple:
    if all(f == GLOBAL for f in field):
        return field  # nothing a layer does makes a position read less than everything
    window = node.spec.window
    if callable(window):
        window = window(node.args, node.spec.nd)
    if window == POINTWISE:
        return field
    if window == GLOBAL:
        return (GLOBAL,) * spatial
    if window is None or len(node.shape) != len(source.shape) or len(source.shape) != spatial + 2:
        return (None,) * spatial  # not modelled, or the dims no longer line up with the input's
    dims = list(field)
    first = spatial - len(window)  # a window covers the trailing dims
    for k, w in enumerate(window):
        dims[first + k] = _through(dims[first + k], w)
    return tuple(dims)


def _through(f, w):
    """The field after one window: `w` is (extent, stride, left padding), POINTWISE, GLOBAL or None."""
    if f is None or f == GLOBAL or w == POINTWISE:
        return f
    if w is None or w == GLOBAL:
        return w
    extent, stride, left = (to_expr(v) for v in w)
    return Field(f.size + (extent - 1) * f.jump, f.jump * stride, f.start - left * f.jump)


def _merge(node: Node, fields: list, spatial: int) -> tuple:
    along = node.args.get("dim")
    out = []
    for d in range(spatial):
        if along is not None and along % len(node.shape) == d + 2:
            out.append(None)  # cat along a spatial dim: positions come from different tensors
        else:
            out.append(_union([f[d] for f in fields]))
    return tuple(out)


def _union(fields: list):
    if any(f is None for f in fields):
        return None
    if any(f == GLOBAL for f in fields):
        return GLOBAL
    jumps = {f.jump for f in fields}
    if len(jumps) > 1:
        return None  # paths that stride differently: the union is no single window
    start = sympy.Min(*(f.start for f in fields))
    end = sympy.Max(*(f.start + f.size for f in fields))
    return Field(end - start, jumps.pop(), start)


def receptive_field(graph: Graph) -> dict:
    """Node name -> its fields (one per spatial dim), in plan order; runs the pass if it has not run."""
    if any("receptive_field" not in node.meta for node in graph.nodes):
        receptive_fields(graph)
    return {node.name: node.meta["receptive_field"] for node in graph.nodes}
