"""Receptive fields as formulas: for every node and every spatial dim of the plan's input, which input
positions an output position reads.

Output position i of a node reads input positions `start + i*jump` to `start + i*jump + size - 1`
(clipped to the input: padding reads nothing), as the classic recurrence computes it through each
window a layer slides (registry: `LayerSpec.window`): size += (extent - 1)*jump, start -= left*jump,
jump *= stride.  Dilation counts in the extent (the span, holes included).  Where paths meet (add, mul,
cat along the channels) the field is the union over every path, not just the main one.

Through a transposed convolution or a nearest upsampling the field means the same thing, the input
positions that can affect one output position, but an output position moves by a fraction of an input
position: ConvTranspose with stride s reads inputs (o + padding - dilation*(kernel_size - 1))/s to
(o + padding)/s, those that are integers, so its window has stride 1/s and a fractional extent and left
(`conv_t_window`; `upsample_window`: output o of a nearest upsampling by s reads input o//s).  The
recurrence is the same with fractions; the jump, size and start may be fractions, and `Field.span`
rounds the span inwards (the first position up, the last down) to the input positions it holds.  A
U-Net's decoder has jump 1 again where it meets its skip, so the union at each concatenation is a window.

`GLOBAL` means every position reads the whole input along that dim (after a global pool, Flatten and
Linear, GroupNorm); `None` means it is not modelled (bilinear and other interpolating upsampling, an
upsampling to a `size=`, pixel shuffles and adaptive pools to a size other than 1 read windows that vary
from position to position).  The spatial dims are the input's dims after the batch and channel:
[N, C, *spatial].

The fields are those of the module in eval mode.  In training, a BatchNorm normalises with the batch's
statistics, which every position of every sample feeds: each output position then reads the whole input
(GLOBAL), whatever track_running_stats says.  In eval mode a BatchNorm that tracks running statistics is
POINTWISE (a scale and a shift per channel); one with track_running_stats=False still uses the batch's
statistics in eval mode, so it is GLOBAL there too (and so is InstanceNorm without running statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .graph import Graph, Node
from .layers import GLOBAL, POINTWISE
from .ops import OPS
from .shapes import to_expr

POSITION = sympy.Symbol("i", integer=True)  # the output position in `Field.first` and `Field.last`


@dataclass(frozen=True)
class Field:
    size: sympy.Expr  # input positions one output position spans
    jump: sympy.Expr  # input positions between two neighbouring output positions (the effective stride)
    start: sympy.Expr  # the first input position output position 0 reads (negative: into the padding)
    # After a fractional window: the first and last input position that output position POSITION reads,
    # exactly (floors and ceilings of it); size, jump and start then describe the window in real numbers,
    # which can hold one more position on a side than the integer span.  None: start + i*jump, + size - 1.
    first: sympy.Expr | None = None
    last: sympy.Expr | None = None

    def span(self, i) -> tuple:
        """The input positions output position `i` reads, first and last (before clipping to the input)."""
        if self.first is None:
            first = self.start + i * self.jump
            return first, first + self.size - 1
        return self.first.xreplace({POSITION: i}), self.last.xreplace({POSITION: i})

    def bounds(self) -> tuple:
        """(first, last) as formulas of POSITION."""
        return self.span(POSITION)


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
    if callable(window):  # a kind that is no 1d/2d/3d family member (Upsample) has as many as its input
        window = window(node.args, node.spec.nd or len(source.shape) - 2)
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
    out = Field(f.size + (extent - 1) * f.jump, f.jump * stride, f.start - left * f.jump)
    if f.first is None and stride.is_integer:
        return out
    # output position i reads the layer's input positions ceil(i*stride - left) .. floor(i*stride - left +
    # extent - 1) (all of them when the window is whole), and each of those its own span
    first, _ = f.span(sympy.ceiling(POSITION * stride - left))
    _, last = f.span(sympy.floor(POSITION * stride - left + extent - 1))
    return Field(out.size, out.jump, out.start, first, last)


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
    if all(f.first is None for f in fields):
        return Field(end - start, jumps.pop(), start)
    spans = [f.bounds() for f in fields]
    return Field(end - start, jumps.pop(), start, sympy.Min(*(a for a, _ in spans)), sympy.Max(*(b for _, b in spans)))


def receptive_field(graph: Graph) -> dict:
    """Node name -> its fields (one per spatial dim), in plan order; runs the pass if it has not run."""
    if any("receptive_field" not in node.meta for node in graph.nodes):
        receptive_fields(graph)
    return {node.name: node.meta["receptive_field"] for node in graph.nodes}
