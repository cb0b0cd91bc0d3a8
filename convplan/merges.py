"""Merges: the operations that join tensors (`add`, `mul`, `cat`, `stack`), declared once like layers.

Each merge is one `MergeSpec`: its arguments, its shape rule, how build.py computes it with
torch and what codegen writes for it.  Nothing else in convplan names a merge, so a new one
is one declaration here.

A rule takes the input shapes and returns the output shape plus the conditions that must
hold (dim equalities convplan could neither prove nor refute); a mismatch that is certain
raises `MergeError` naming the dim.  torch is the oracle: `add` and `mul` broadcast as torch
does (right-aligned; a dim of 1, or one missing on the left, stretches), `cat` needs equal
shapes except along `dim`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import sympy

from .layers.spec import LIKE_INPUT
from .pysource import Brackets, Ops
from .shapes import equal, equal_condition, pyrepr, total
from .shapes.broadcast import broadcast as broadcast_shapes
from .show import show_shape


class MergeError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class MergeSpec:
    name: str  # as written in a plan, and the base of the node's name (add1, cat2, ...)
    rule: Callable  # (shapes, args) -> (output shape, [(condition, message)])
    # (torch, operands, args) -> tensor.  build.py passes torch in: `convplan check` never imports it.
    compute: Callable
    # (operand variables, args, value printer) -> the forward line's right-hand side, a pysource layout
    emit: Callable
    args: tuple[tuple[str, object], ...] = ()  # (name, default); every argument is an int
    needs_torch: bool = False  # the generated code calls `torch.*`, so it imports torch
    broadcasts: bool = False  # dims may differ where one is 1: equal operands are not required
    along: str | None = None  # the argument naming the one dim the operands may differ in
    saves_operands: bool = False  # autograd saves each operand for the others' gradients (a product)
    # Its output's strides (layouts.py): "", contiguous where every operand is; LIKE_INPUT, elementwise: operands of
    # one shape and one dense layout keep it (TensorIterator)
    layout: str = ""


def _same_rank(shapes, what: str) -> int:
    ranks = {len(s) for s in shapes}
    if len(ranks) > 1:
        raise MergeError(f"tensors of different ranks cannot be {what}: "
                         + " and ".join(f"{len(s)}-D {show_shape(s)}" for s in shapes))
    return ranks.pop()


def _agree(shapes, i: int, what: str, conds: list) -> None:
    """Dim i of every shape equals dim i of the first."""
    first = shapes[0][i]
    for other in shapes[1:]:
        if other[i] is first:  # the same dim (branches of one input keep N, H, W): equal, nothing to decide
            continue
        cond = equal_condition(first, other[i])
        if cond is sympy.false:
            raise MergeError(f"tensors {show_shape(shapes[0])} and {show_shape(other)} cannot be {what}: "
                             f"dim {i} differs ({pyrepr(first)} vs {pyrepr(other[i])})")
        if cond is not sympy.true:
            conds.append((cond, f"dim {i} of the {what} tensors must agree ({pyrepr(first)} vs {pyrepr(other[i])})"))


def broadcast(shapes, what: str):
    """torch's broadcast shape (shapes/broadcast.py), each clash a condition or, where it never holds, an error."""
    out, clashes = broadcast_shapes(shapes)
    same_rank = len({len(s) for s in shapes}) == 1
    conds = []
    for clash in clashes:
        where = f"dim {clash.index}" if same_rank else f"dim {clash.from_right} (from the right)"
        first, other = pyrepr(clash.first), pyrepr(clash.other)
        if clash.condition is sympy.false:
            raise MergeError(f"tensors {' and '.join(show_shape(s) for s in shapes)} cannot be {what}: {where} "
                             f"differs ({first} vs {other})", _broadcast_hint(shapes, same_rank))
        conds.append((clash.condition, f"{where} of the {what} tensors must agree ({first} vs {other})"))
    return out, conds


def _broadcast_hint(shapes, same_rank: bool) -> str | None:
    """Where the operands broadcast already (a dim of 1, ranks that differ), how torch's rule goes."""
    if same_rank and not any(d == 1 for s in shapes for d in s):
        return None  # a residual whose shapes differ: the news is the dim, not broadcasting
    return ("torch broadcasts a dim only where it is 1 or missing on the left ([C, 1, 1] with [N, C, H, W]): "
            "write that dim as 1")


def add_rule(shapes, args):
    return broadcast(shapes, "added")


def mul_rule(shapes, args):
    return broadcast(shapes, "multiplied")


def cat_rule(shapes, args):
    rank = _same_rank(shapes, "concatenated")
    d = args["dim"]
    if not -rank <= d < rank:
        raise MergeError(f"dim={d} is out of range for {rank}-D tensors (expected {-rank} to {rank - 1})")
    d %= rank
    conds: list = []
    for i in range(rank):
        if i != d:
            try:
                _agree(shapes, i, "concatenated", conds)
            except MergeError as exc:  # cat(a) joins along dim 0, as torch.cat: dim=1 was probably meant
                raise MergeError(exc.message, _other_dim_hint(shapes, d, args["dim"])) from None
    out = list(shapes[0])
    out[d] = total(s[d] for s in shapes)  # channels are numbers: summed without Add.flatten
    return tuple(out), conds


def stack_rule(shapes, args):
    """torch.stack: equal shapes, joined along a new dim."""
    rank = _same_rank(shapes, "stacked")
    d = args["dim"]
    if not -(rank + 1) <= d <= rank:
        raise MergeError(f"dim={d} is out of range for stacking {rank}-D tensors (expected {-rank - 1} to {rank})")
    conds: list = []
    for i in range(rank):
        _agree(shapes, i, "stacked", conds)
    d %= rank + 1
    out = list(shapes[0])
    out.insert(d, sympy.Integer(len(shapes)))
    return tuple(out), conds


def _other_dim_hint(shapes, d: int, written: int) -> str | None:
    """`dim=1` when the shapes differ in that one dim only, the one cat could join along instead of `d`."""
    differ = [i for i in range(len(shapes[0])) if any(equal(s[i], shapes[0][i]) is not True for s in shapes)]
    if len(differ) != 1 or differ[0] == d:
        return None
    return f"cat joins along dim={written}; the tensors differ only in dim {differ[0]}: cat(..., dim={differ[0]})"


def _fold(op: Callable) -> Callable:
    """The operator over the operands, left to right, never in place: an operand may be another
    node's value too (a skip connection)."""
    return lambda torch, ops, args: functools.reduce(op, ops)


def _infix(op: str) -> Callable:
    """`a + b + c` in the generated forward."""
    return lambda ins, args, value: Ops(tuple(ins), (op,) * (len(ins) - 1))


def _joined(function: str) -> Callable:
    """`torch.cat([a, b], dim=1)`, `torch.stack(...)`."""
    def emit(ins, args, value) -> Brackets:
        return Brackets(function, (Brackets("", tuple(ins), "[", "]"), f"dim={value(args['dim'])}"))

    return emit


def _register(*specs: MergeSpec) -> dict[str, MergeSpec]:
    return {spec.name: spec for spec in specs}


MERGES: dict[str, MergeSpec] = _register(
    MergeSpec(name="add", rule=add_rule, compute=_fold(operator.add), emit=_infix("+"), broadcasts=True,
              layout=LIKE_INPUT),
    MergeSpec(name="mul", rule=mul_rule, compute=_fold(operator.mul), emit=_infix("*"), broadcasts=True,
              saves_operands=True, layout=LIKE_INPUT),
    MergeSpec(name="cat", rule=cat_rule, emit=_joined("torch.cat"), needs_torch=True,
              args=(("dim", 0),), along="dim",  # torch.cat's default dim
              compute=lambda torch, ops, args: torch.cat(ops, dim=args["dim"])),
    MergeSpec(name="stack", rule=stack_rule, emit=_joined("torch.stack"), needs_torch=True, args=(("dim", 0),),
              compute=lambda torch, ops, args: torch.stack(ops, dim=args["dim"])),
)
