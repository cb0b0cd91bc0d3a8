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
from position to position; a concatenation along a spatial dim joins positions of different tensors; a
sliding window whose spatial dim has been moved among its channels; the operations receptive_axes.py
lists).  The spatial dims are the input's dims after the batch and channel:
[N, C, *spatial].

Tensor operations (permute, reshape, chunk, mean, ...) carry the fields where they move the spatial dims
without mixing their positions (receptive_axes.py): each node's `meta["receptive_axes"]` says which axis
of its tensor holds each spatial dim, so a layer's window slides over the dims it covers wherever they
are (ConvNeXt's channels-last LayerNorm and Linears read one position each), and a layer that mixes only
its trailing dims (Linear, LayerNorm: windows of GLOBAL entries) leaves the others alone.  A learnable
tensor (Parameter) reads no input position: a merge with it has the other operands' field.

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
from .receptive_axes import OPS as AXES
from .receptive_axes import POSITION, lost, standard, through_item, through_op
from .shapes import equal, to_expr

__all__ = ["POSITION", "Field", "receptive_field", "receptive_fields"]


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
    """meta["receptive_field"]: a tuple with one Field, GLOBAL or None per spatial dim of the first input;
    meta["receptive_axes"]: the axis of the node's tensor that holds each (None: none does)."""
    nodes = graph.nodes
    spatial = max(len(graph.inputs[0].shape) - 2, 0) if graph.inputs else 0
    for node in nodes:
        fields, axes = _node(node, nodes, graph, spatial)
        node.meta["receptive_field"], node.meta["receptive_axes"] = fields, axes


def _node(node: Node, nodes, graph: Graph, spatial: int) -> tuple:
    nothing = (None,) * spatial
    if node.op == "input":
        ones = sympy.Integer(1)
        first = node is graph.inputs[0]
        return ((tuple(Field(ones, ones, sympy.Integer(0)) for _ in range(spatial)), standard(spatial)) if first
                else (nothing, nothing))
    if node.op == "param":  # weights read no input position
        return nothing, nothing
    source = nodes[node.inputs[0]]
    fields, axes = source.meta["receptive_field"], source.meta["receptive_axes"]
    if node.op == "item":
        if node.kind in ("chunk", "split"):  # the piece's field: its input's, shifted by its offset
            whole = nodes[source.inputs[0]]
            return through_item(node.kind, source.args, node.args["index"], tuple(whole.shape),
                                whole.meta["receptive_field"], whole.meta["receptive_axes"])
        return fields, axes
    if node.op in OPS:
        return through_op(node, source, fields, axes)
    if node.op != "layer":
        return _merge(node, nodes, spatial)
    if node.spec.moves_axes is not None:  # Permute, Flatten: as the operation of that name
        return AXES[node.spec.moves_axes](node.args, tuple(source.shape), tuple(node.shape), fields, axes)
    return _layer(node, source, fields, axes, spatial)


def _layer(node: Node, source: Node, field: tuple, axes: tuple, spatial: int) -> tuple:
    if all(f == GLOBAL for f in field):
        return field, axes  # nothing a layer does makes a position read less than everything
    window = node.spec.window
    if callable(window):  # a kind that is no 1d/2d/3d family member (Upsample) has as many as its input
        window = window(node.args, node.spec.nd or len(source.shape) - 2)
    if window == POINTWISE:
        return field, axes
    if window == GLOBAL:
        return (GLOBAL,) * spatial, axes
    rank = len(source.shape)
    if window is None or len(node.shape) != rank:
        return lost(field), (None,) * spatial  # not modelled, or the dims no longer line up with the input's
    lead = rank - len(window)  # a window covers the trailing dims
    sliding = any(w not in (GLOBAL, POINTWISE) for w in window)
    dims = list(field)
    for d, a in enumerate(axes):
        if a is not None and a >= lead:
            dims[d] = _through(dims[d], window[a - lead])
        elif a is not None and sliding:
            dims[d] = lost(field, d)[d]  # a spatial dim among a convolution's channels: not modelled
    return tuple(dims), axes


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


def _merge(node: Node, nodes, spatial: int) -> tuple:
    """The union over the operands (a learnable tensor reads nothing), where each holds the dim at the same
    axis of the output (right-aligned, as torch broadcasts; stack inserts an axis)."""
    operands = [nodes[i] for i in node.inputs if nodes[i].op != "param"]
    rank = len(node.shape)
    along = node.args.get("dim")
    along = None if along is None else int(along) % rank
    fields, axes = [], []
    for d in range(spatial):
        found, places = [], set()
        for operand in operands:
            f, a = operand.meta["receptive_field"][d], operand.meta["receptive_axes"][d]
            found.append(f)
            if f is None or f == GLOBAL:
                continue
            at = a + (a >= along) if node.op == "stack" else a + rank - len(operand.shape)
            if equal(operand.shape[a], 1) is True and equal(node.shape[at], 1) is not True:
                found[-1] = None  # a spatial dim of 1 broadcast: every position reads the same one
            places.add(at)
        field = _union(found) if found and len(places) <= 1 else None
        if node.op == "cat" and places == {along}:
            field = None  # cat along a spatial dim: positions come from different tensors
        fields.append(field)
        axes.append(places.pop() if field is not None and places else None)
    return tuple(fields), tuple(axes)


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
