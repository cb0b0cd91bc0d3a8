"""Where the input's spatial dims are in each tensor, for the receptive-field pass (receptive.py), and what
tensor operations do to their fields.

A node's axes hold, per spatial dim of the plan's first input, the axis of the node's tensor that indexes
its positions (`standard`: [N, C, *spatial], axes 2, 3, ...), or None where no axis does any more.  An
operation that moves axes without touching positions carries the fields exactly:

- permute and transpose (and torchvision's Permute) move the axes: ConvNeXt's channels-last LayerNorm
  and Linears read one position each, and the permute back puts the spatial dims where they were;
- reshape, view, flatten, unflatten (and the Flatten / Unflatten kinds) keep an axis where the dims before
  it hold as many elements and it keeps its size (its positions are then the same elements); contiguous
  and expand (new leading dims) keep them;
- narrow, and each piece of chunk and split, along a spatial dim shifts the field by the piece's offset
  (output position i is the input's i + offset); along another dim they keep it;
- mean, sum and amax over a spatial dim read all of it (GLOBAL), over others keep it; softmax likewise.

Not modelled (None), with the reason: a reshape that merges or splits a spatial dim (its positions no
longer lie along one axis), select on a spatial dim (no output position along it), expand of a spatial
dim of 1 (every position reads the same one), and matmul and scaled_dot_product_attention (they mix
whatever dims they contract, spatial ones included: attention over the positions is no window).
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from .layers import GLOBAL, prod
from .shapes import ceildiv, equal, to_expr

POSITION = sympy.Symbol("i", integer=True)  # the output position in a Field's `first` and `last`


def standard(spatial: int) -> tuple:
    return tuple(range(2, 2 + spatial))


def lost(fields: tuple, d: int | None = None) -> tuple:
    """The fields where dim `d` (None: every dim) no longer lies along one axis: None, unless it is GLOBAL."""
    return tuple(f if f == GLOBAL or (d is not None and k != d) else None for k, f in enumerate(fields))


def through_op(node, source, fields: tuple, axes: tuple) -> tuple:
    """(fields, axes) of an operation's output (its first, for chunk and split) from its first input's."""
    rule = OPS.get(node.op)
    if rule is None:
        return lost(fields), (None,) * len(axes)
    return rule(node.args, tuple(source.shape), tuple(node.shape), fields, axes)


def through_item(op: str, args: dict, index: int, shape: tuple, fields: tuple, axes: tuple) -> tuple:
    """Piece `index` of chunk or split of a tensor of `shape`: the field shifted along the dim it cuts."""
    dim = int(args["dim"]) % len(shape)
    if op == "chunk":
        offset = index * ceildiv(shape[dim], int(args["chunks"]))
    else:
        sizes = args["split_size_or_sections"]
        offset = sympy.Add(*sizes[:index]) if isinstance(sizes, tuple) else index * to_expr(sizes)
    return _shift(fields, axes, dim, offset), axes


def permuted(order, fields: tuple, axes: tuple, rank: int) -> tuple:
    order = [int(d) % rank for d in (order if isinstance(order, tuple) else (order,))]
    return fields, tuple(None if a is None else order.index(a) for a in axes)


def reshaped(shape: tuple, out: tuple, fields: tuple, axes: tuple) -> tuple:
    """A row-major reshape keeps axis a as axis b where the dims before each hold as many elements and a and b
    are as long: the elements along them are the same ones."""
    fields, found = list(fields), []
    for d, a in enumerate(axes):
        b = None if a is None else next((b for b in range(len(out)) if equal(shape[a], out[b]) is True
                                         and equal(prod(shape[:a]), prod(out[:b])) is True), None)
        if b is None:
            fields = list(lost(tuple(fields), d))
        found.append(b)
    return tuple(fields), tuple(found)


def _shift(fields: tuple, axes: tuple, dim: int, offset) -> tuple:
    return tuple(_shifted(f, offset) if a == dim else f for f, a in zip(fields, axes, strict=True))


def _shifted(f, offset):
    """Output position i reads what the input's position i + offset reads."""
    if f is None or f == GLOBAL or offset == 0:
        return f
    offset = to_expr(offset)
    moved = lambda e: None if e is None else e.xreplace({POSITION: POSITION + offset})  # noqa: E731
    return replace(f, start=f.start + offset * f.jump, first=moved(f.first), last=moved(f.last))


def _narrow(a, shape, out, fields, axes):
    return _shift(fields, axes, int(a["dim"]) % len(shape), a["start"]), axes


def _chunk(a, shape, out, fields, axes):  # the first piece: no offset
    return fields, axes


def _reduce(a, shape, out, fields, axes):
    """Every position along a reduced dim is read; the other dims keep their fields (and move down past the
    reduced ones unless keepdim)."""
    dims = {int(d) % len(shape) for d in (a["dim"] if isinstance(a["dim"], tuple) else (a["dim"],))}
    fields = tuple(GLOBAL if ax in dims else f for f, ax in zip(fields, axes, strict=True))
    if a["keepdim"]:
        return fields, axes
    return fields, tuple(None if ax is None or ax in dims else ax - sum(d < ax for d in dims) for ax in axes)


def _softmax(a, shape, out, fields, axes):
    dim = int(a["dim"]) % len(shape)
    return tuple(GLOBAL if ax == dim else f for f, ax in zip(fields, axes, strict=True)), axes


def _select(a, shape, out, fields, axes):
    dim = int(a["dim"]) % len(shape)
    fields = tuple(lost(fields, d)[d] if ax == dim else f for d, (f, ax) in enumerate(zip(fields, axes, strict=True)))
    return fields, tuple(None if ax is None or ax == dim else ax - (ax > dim) for ax in axes)


def _expand(a, shape, out, fields, axes):
    new = len(out) - len(shape)
    moved, fields = [], list(fields)
    for d, ax in enumerate(axes):
        if ax is not None and equal(shape[ax], out[ax + new]) is not True:  # a dim of 1 stretched
            fields[d], ax = lost(tuple(fields), d)[d], None
        moved.append(None if ax is None else ax + new)
    return tuple(fields), tuple(moved)


OPS = {
    "permute": lambda a, shape, out, fields, axes: permuted(a["dims"], fields, axes, len(shape)),
    "transpose": lambda a, shape, out, fields, axes: permuted(
        _swap(len(shape), a["dim0"], a["dim1"]), fields, axes, len(shape)),
    "reshape": lambda a, shape, out, fields, axes: reshaped(shape, out, fields, axes),
    "view": lambda a, shape, out, fields, axes: reshaped(shape, out, fields, axes),
    "flatten": lambda a, shape, out, fields, axes: reshaped(shape, out, fields, axes),
    "unflatten": lambda a, shape, out, fields, axes: reshaped(shape, out, fields, axes),
    "contiguous": lambda a, shape, out, fields, axes: (fields, axes),
    "expand": _expand,
    "narrow": _narrow,
    "select": _select,
    "chunk": _chunk,
    "split": _chunk,
    "mean": _reduce,
    "sum": _reduce,
    "amax": _reduce,
    "softmax": _softmax,
}


def _swap(rank: int, i, j) -> tuple:
    order = list(range(rank))
    i, j = int(i) % rank, int(j) % rank
    order[i], order[j] = order[j], order[i]
    return tuple(order)
