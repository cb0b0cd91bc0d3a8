"""Tensor operations: torch's functions and tensor methods on tensors (`permute`, `reshape`, `chunk`,
`mean`, `matmul`, `scaled_dot_product_attention`, ...), declared once, as layers and merges are.

An operation is a function, not a module: it holds no weights and takes no place in the module tree
(no submodule, no index in a numbered container), as in torchvision's forwards (`x.permute(0, 2, 3, 1)`,
`x.chunk(2, dim=1)`).  A module that does the same and takes a place is a layer kind (`Permute`).

Each is one `OpSpec`: its arguments after the tensors (layers.Arg, coerced as a layer's are), its shape
rule (a `RuleContext` rule as a layer's: symbolic, torch-exact, with the conditions under which torch
raises), the torch call build() makes and the code codegen writes.  Names and argument names are
torch's; `star` ops take their sizes as torch's tensor methods do, `x.permute(0, 2, 1)`, or as one tuple.

An operation that gives several tensors (chunk, split) returns `Several` shapes; the plan names each
(`a, b = chunk(2, dim=1)`, see walker.py).

Each declares its output's layout, which layouts.py follows: `layout` (a new contiguous tensor, or contiguous where
every input is), `view_strides` (a view's strides from its input's), `aliases_input` (no new memory); and, for the
walker's coarser check of `view` (no formulas), `restrides` (the output may not be contiguous: view refuses to
reinterpret it) and `reorders` (its strides are out of order).
"""

# Messages are lambdas (printing sympy is slow) that RuleContext.require calls at once, never later:
# ruff: noqa: B023

from __future__ import annotations

import math
from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass

import sympy

from . import saves as sv
from . import saves_ops
from . import strides as sd
from .layers import BOOL, CONTIGUOUS, DIMS, FLOAT, INT, OPT_FLOAT, REQUIRED, Arg, RuleContext
from .layers.spec import show as _s
from .layers.torchvision import permutation
from .merges import MERGES
from .pysource import Brackets, Pre
from .shapes import at_least, ceildiv, divides, equal, equal_condition, floordiv, to_expr
from .shapes.broadcast import broadcast


class Several(tuple):
    """The shapes of an operation's several outputs, in torch's order (nested as torch's tuples are)."""


@dataclass(frozen=True)
class OpSpec:
    name: str  # torch's function and tensor method name, as written in a plan
    args: tuple[Arg, ...]  # after the tensors, in torch's positional order
    rule: Callable  # (ctx, shapes, args) -> output shape, or Several shapes
    compute: Callable  # (torch, operands, args) -> tensor, or a tuple of them; build.py passes torch in
    emit: Callable  # (operand variables, args, value printer) -> the forward line's right-hand side
    tensors: int = 1  # how many tensors it takes (the chain's value fills the first place)
    star: bool = False  # its first argument also takes the positional values: x.permute(0, 2, 1)
    aliases_input: bool = False  # the output is a view of the first input (no new memory)
    # Its output's strides (layouts.py, measured: tests/test_layouts.py): CONTIGUOUS, a new contiguous tensor whatever
    # the input's layout; "", contiguous where every input is (a reshape of a contiguous tensor is a view of it)
    layout: str = ""
    # A view's strides from its input's: (input shape, input strides, output shape, args) -> strides; a view with
    # several outputs (chunk) gives each piece the first one's
    view_strides: Callable | None = None
    # Where the output is the input itself at some sizes (contiguous(): where torch calls the input contiguous, its
    # strides at dims of size 1 kept): (shape, input strides) -> strides, read where the input's are followed
    kept_strides: Callable | None = None
    restrides: bool = False  # the output may not be contiguous (a slice, a broadcast): view refuses it
    reorders: bool = False  # the output's strides are out of order (a permute): so are those of what it feeds
    saves: Callable | None = None  # (args, first input's shape, output shape) -> saves.Saves
    # (input shapes, output shape, args) -> multiply-accumulates of a product of tensors (not with weights):
    # torch's FlopCounterMode counts 2 per one (cost.py)
    products: Callable | None = None
    needs_torch: bool = True  # the generated code calls `torch.*`

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)


def _dim(ctx: RuleContext, rank: int, d, arg: str = "dim", extra: int = 0) -> int:
    """A dim index in [-rank - extra, rank + extra) as torch wraps it; refused otherwise."""
    top = rank + extra
    if not isinstance(d, (int, sympy.Integer)) or not -top <= int(d) < top:
        ctx.fail(f"{arg}={_s(d)} is out of range for a {rank}-D tensor (expected {-top} to {top - 1})", arg,
                 hint=f"dims count from 0 (the first) to {top - 1}, or from -1 (the last) back to {-top}")
    return int(d) % top


def _dims(ctx: RuleContext, rank: int, dims, arg: str) -> list[int]:
    dims = dims if isinstance(dims, tuple) else (dims,)
    out = [_dim(ctx, rank, d, arg) for d in dims]
    if len(set(out)) != len(out):
        ctx.fail(f"{arg} {_s(dims)} names a dim twice", arg)
    return out


def _prod(values):
    return math.prod(values, start=sympy.Integer(1))


def _positive(ctx: RuleContext, out) -> tuple:
    for i, d in enumerate(out):
        ctx.require(at_least(d, 1), lambda: f"output dim {i} would be {_s(d)}: empty tensors are not planned")
    return tuple(out)


# -- views and reshapes ----------------------------------------------------------------


def permute_rule(ctx, shapes, a):
    return permutation(ctx, shapes[0], a["dims"])


def transpose_rule(ctx, shapes, a):
    shape = list(shapes[0])
    i, j = _dim(ctx, len(shape), a["dim0"], "dim0"), _dim(ctx, len(shape), a["dim1"], "dim1")
    shape[i], shape[j] = shape[j], shape[i]
    return tuple(shape)


def reshape_rule(ctx, shapes, a):
    """torch's reshape and view: one size may be -1, solved from the element count."""
    shape, sizes = shapes[0], a["shape"]
    sizes = sizes if isinstance(sizes, tuple) else (sizes,)
    holes = [k for k, v in enumerate(sizes) if _is(v, -1)]
    if len(holes) > 1:
        ctx.fail(f"only one size may be -1, got {_s(sizes)}", "shape")
    known = [v for k, v in enumerate(sizes) if k not in holes]
    for v in known:
        ctx.require(at_least(v, 1), lambda: f"a size must be positive (or -1), got {_s(v)}", "shape")
    numel, fixed = _prod(shapes[0]), _prod(known)
    if not holes:
        message = lambda: (f"shape {_s(sizes)} ({_s(fixed)} elements) must hold the input's {_s(numel)} "  # noqa: E731
                           f"elements ({_s(tuple(shape))})")
        same = equal_condition(fixed, numel)
        if same is sympy.false:
            ctx.fail(message(), "shape", hint="write -1 for the one size torch should compute from the others")
        ctx.require(same, message, "shape")
        return tuple(sizes)
    message = lambda: (f"the input's {_s(numel)} elements ({_s(tuple(shape))}) must divide into rows of "  # noqa: E731
                       f"{_s(fixed)} for the -1 in {_s(sizes)}")
    solved = _quotient(ctx, numel, fixed, message, lambda: _divisor_hint(numel, fixed))
    return tuple(solved if k in holes else v for k, v in enumerate(sizes))


def _divisor_hint(numel, fixed) -> str | None:
    """What the sizes written besides the -1 could multiply to: the whole-number factor of the element count
    times its symbols (the batch N), each divisor of the number."""
    count, rest = numel.as_coeff_Mul()
    if not count.is_Integer or count > 10**6:
        return None
    found = [d for d in range(2, min(int(count), 64) + 1) if int(count) % d == 0][:6]
    shown = ", ".join(_s(rest * d) for d in found)
    return f"the sizes besides the -1 multiply to {_s(fixed)}; to divide {_s(numel)} they could multiply to {shown}"


def _is(v, k: int) -> bool:
    return isinstance(v, (int, sympy.Integer)) and int(v) == k


def _quotient(ctx, numel, known, message, hint):
    """numel / known, exact: the cancelled quotient where nothing is left to divide, else a floor division of
    what is left, with its divisibility a requirement (refused with `hint()` where it never holds)."""
    top, bottom = sympy.fraction(sympy.together(sympy.cancel(numel / known)))
    if bottom == 1:
        return to_expr(top)
    whole = divides(top, bottom)
    if whole is sympy.false:
        ctx.fail(message(), "shape", hint=hint())
    ctx.require(whole, message, "shape")
    return floordiv(top, bottom)


def flatten_rule(ctx, shapes, a):
    shape = shapes[0]
    start, end = _dim(ctx, len(shape), a["start_dim"], "start_dim"), _dim(ctx, len(shape), a["end_dim"], "end_dim")
    if start > end:
        ctx.fail(f"start_dim ({_s(a['start_dim'])}) cannot come after end_dim ({_s(a['end_dim'])})", "start_dim")
    return (*shape[:start], _prod(shape[start : end + 1]), *shape[end + 1 :])


def unflatten_rule(ctx, shapes, a):
    shape = shapes[0]
    i = _dim(ctx, len(shape), a["dim"])
    sizes = a["sizes"] if isinstance(a["sizes"], tuple) else (a["sizes"],)
    inner = reshape_rule(ctx, ((shape[i],), None), {"shape": sizes})
    return (*shape[:i], *inner, *shape[i + 1 :])


def expand_rule(ctx, shapes, a):
    """New leading dims; -1 keeps a dim; a dim of 1 stretches to any size; others stay."""
    shape, sizes = shapes[0], a["size"]
    sizes = sizes if isinstance(sizes, tuple) else (sizes,)
    new = len(sizes) - len(shape)
    if new < 0:
        ctx.fail(f"expand needs at least {len(shape)} sizes for a {len(shape)}-D tensor, got {len(sizes)}", "size")
    out = []
    for k, v in enumerate(sizes):
        old = shape[k - new] if k >= new else None
        if _is(v, -1):
            if old is None:
                ctx.fail(f"-1 cannot stand for a new leading dim (size {k} of {_s(sizes)})", "size")
            out.append(old)
            continue
        ctx.require(at_least(v, 1), lambda: f"a size must be positive (or -1), got {_s(v)}", "size")
        if old is not None and equal(old, 1) is not True:
            ctx.require(equal_condition(old, v), lambda: f"dim {k - new} ({_s(old)}) is not 1, so it cannot be "
                        f"expanded to {_s(v)}", "size")
        out.append(to_expr(v))
    return tuple(out)


def narrow_rule(ctx, shapes, a):
    shape = list(shapes[0])
    i = _dim(ctx, len(shape), a["dim"])
    start, length, size = to_expr(a["start"]), to_expr(a["length"]), shape[i]
    ctx.require(at_least(start, 0), lambda: f"start must not be negative here, got {_s(start)}", "start")
    ctx.require(at_least(length, 1), lambda: f"length must be positive, got {_s(length)}", "length")
    ctx.require(at_least(size - start - length, 0), lambda: f"start + length ({_s(start + length)}) must not pass "
                f"the end of dim {i} ({_s(size)})", "length")
    shape[i] = length
    return tuple(shape)


def select_rule(ctx, shapes, a):
    shape = shapes[0]
    i = _dim(ctx, len(shape), a["dim"])
    if len(shape) == 1:
        ctx.fail("select on a 1-D tensor gives a 0-d tensor, which a plan does not hold", "dim",
                 hint="narrow(dim, index, 1) keeps the dim")
    index = to_expr(a["index"])
    ctx.require(at_least(index, 0), lambda: f"index must not be negative here, got {_s(index)}", "index")
    ctx.require(at_least(shape[i] - index, 1), lambda: f"index {_s(index)} is past the end of dim {i} "
                f"({_s(shape[i])})", "index")
    return (*shape[:i], *shape[i + 1 :])


def same_rule(ctx, shapes, a):
    return tuple(shapes[0])


def softmax_rule(ctx, shapes, a):
    _dim(ctx, len(shapes[0]), a["dim"])
    return tuple(shapes[0])


def reduce_rule(ctx, shapes, a):
    shape = shapes[0]
    dims = _dims(ctx, len(shape), a["dim"], "dim")
    if a["keepdim"]:
        return tuple(sympy.Integer(1) if k in dims else d for k, d in enumerate(shape))
    out = tuple(d for k, d in enumerate(shape) if k not in dims)
    if not out:
        ctx.fail("reducing every dim gives a 0-d tensor, which a plan does not hold", "dim",
                 hint="keepdim=True keeps each reduced dim as 1")
    return out


# -- several outputs -------------------------------------------------------------------


def chunk_rule(ctx, shapes, a):
    """torch.chunk: pieces of ceil(size/chunks); torch gives fewer than `chunks` pieces where the last would be
    empty (6 in 4 pieces is 3 of 2): required not to happen, so the plan's names each get a piece."""
    shape, k = shapes[0], a["chunks"]
    ctx.positive([k], "chunks")
    k = int(k) if isinstance(k, (int, sympy.Integer)) else ctx.fail("chunks must be a number", "chunks")
    i = _dim(ctx, len(shape), a["dim"])
    size = ceildiv(shape[i], k)
    last = shape[i] - (k - 1) * size
    ctx.require(at_least(last, 1), lambda: f"dim {i} ({_s(shape[i])}) makes fewer than {k} chunks of "
                f"{_s(size)} (torch gives ceil(size/chunks) per chunk)", "chunks")
    return Several(_with(shape, i, size if n < k - 1 else last) for n in range(k))


def split_rule(ctx, shapes, a):
    """torch.split: pieces of split_size (the last smaller), or the sizes listed, which must sum to the dim."""
    shape, sizes = shapes[0], a["split_size_or_sections"]
    i = _dim(ctx, len(shape), a["dim"])
    if isinstance(sizes, tuple):
        ctx.positive(sizes, "split_size_or_sections")
        total = sympy.Add(*sizes)
        ctx.require(equal_condition(total, shape[i]), lambda: f"the sizes {_s(sizes)} sum to {_s(total)}, not to "
                    f"dim {i} ({_s(shape[i])})", "split_size_or_sections")
        return Several(_with(shape, i, s) for s in sizes)
    ctx.positive([sizes], "split_size_or_sections")
    count = a["_count"]  # how many names the plan gives them: the number of pieces must be that
    last = shape[i] - (count - 1) * sizes
    ctx.require(sympy.And(at_least(last, 1), at_least(sizes - last, 0)),
                lambda: f"dim {i} ({_s(shape[i])}) must split into {count} pieces of {_s(sizes)} (the last "
                f"may be smaller)", "split_size_or_sections")
    return Several(_with(shape, i, sizes if n < count - 1 else last) for n in range(count))


def _with(shape, i, size) -> tuple:
    return (*shape[:i], to_expr(size), *shape[i + 1 :])


# -- products --------------------------------------------------------------------------


def matmul_rule(ctx, shapes, a):
    """torch.matmul: 1-D operands get a dim prepended (left) or appended (right) and lose it after; the
    dims before the last two broadcast."""
    x, y = (tuple(s) for s in shapes)
    if len(x) == 1 and len(y) == 1:
        ctx.fail("the product of two 1-D tensors is a 0-d tensor, which a plan does not hold")
    left, right = (sympy.Integer(1), *x) if len(x) == 1 else x, (*y, sympy.Integer(1)) if len(y) == 1 else y
    inner = equal_condition(left[-1], right[-2])
    ctx.require(inner, lambda: f"the inner dims must agree: {_s(left[-1])} (last of {_s(x)}) vs {_s(right[-2])} "
                f"(second to last of {_s(y)})")
    batch = _broadcast(ctx, left[:-2], right[:-2])
    out = (*batch, *((left[-2],) if len(x) > 1 else ()), *((right[-1],) if len(y) > 1 else ()))
    return out


def _broadcast(ctx, a: tuple, b: tuple) -> tuple:
    out, clashes = broadcast((a, b))
    for clash in clashes:
        ctx.require(clash.condition, lambda: f"batch dims {_s(clash.first)} and {_s(clash.other)} must agree (or one "
                    "be 1)")
    return out


def matmul_products(shapes, out, a):
    x, y = shapes
    return _prod(out) * (x[-1])


def sdpa_rule(ctx, shapes, a):
    """scaled_dot_product_attention(q [..., L, E], k [..., S, E], v [..., S, Ev]) -> [..., L, Ev]."""
    q, k, v = (tuple(s) for s in shapes)
    if not (len(q) == len(k) == len(v)) or len(q) < 2:
        ctx.fail(f"query, key and value must have one rank of at least 2, got {_s(q)}, {_s(k)} and {_s(v)}")
    for what, p, r in (("E", q[-1], k[-1]), ("S", k[-2], v[-2])):
        ctx.require(equal_condition(p, r), lambda: f"{what} must agree: {_s(p)} vs {_s(r)} (query {_s(q)}, key "
                    f"{_s(k)}, value {_s(v)})")
    for p, r, s in zip(q[:-2], k[:-2], v[:-2], strict=True):
        ctx.require(sympy.And(equal_condition(p, r), equal_condition(p, s)),
                    lambda: f"batch dims must agree: {_s(p)}, {_s(r)}, {_s(s)}")
    return (*q[:-1], v[-1])


def sdpa_products(shapes, out, a):
    q, k, v = shapes
    return _prod(q[:-1]) * k[-2] * (q[-1] + v[-1])  # q @ k^T, then the weights @ v


# -- sizes read when forward runs ----------------------------------------------------------


def runtime_form(value, available) -> tuple | None:
    """An operation's size argument as a formula of the sizes of tensors at hand when forward runs (the plan's
    size symbols are not known to a module that serves every size): (formula, {placeholder: (ref, dim)}),
    where `available` lists (ref, shape) of the tensors at hand, the operands first.  None where some symbol
    is in no shape at hand."""
    e = to_expr(value)
    if not e.free_symbols:
        return e, {}
    mapping, refs = {}, {}
    for ref, shape in available:
        for k, d in enumerate(shape):
            if d.free_symbols and d not in mapping:
                mapping[d] = sympy.Symbol(f"_size{len(mapping)}", integer=True, positive=True)
                refs[mapping[d]] = (ref, k)
    for d in sorted(mapping, key=lambda d: (-sympy.count_ops(d), str(d))):  # a floor division before its symbol
        e = e.xreplace({d: mapping[d]})
    if e.free_symbols - set(mapping.values()):
        return None
    return e, {s: refs[s] for s in e.free_symbols}


# -- registry --------------------------------------------------------------------------


def _method(name: str, star: bool = False, keywords: tuple[str, ...] = ()) -> Callable:
    """`x.name(a, b, k=v)`: a tensor method call in generated code; `star` spreads the first argument."""

    def emit(ins, args, value):
        items = [Pre(f"{k}=", value(args[k])) if k in keywords else value(args[k]) for k in args if k[0] != "_"]
        if star and items:
            first = args[next(iter(args))]
            items = [value(v) for v in (first if isinstance(first, tuple) else (first,))] + items[1:]
        return Brackets(f"{ins[0]}.{name}", tuple(items))

    return emit


def _function(name: str, keywords: tuple[str, ...] = ()) -> Callable:
    """`torch.name(x, y, k=v)` in generated code."""

    def emit(ins, args, value):
        items = [value(args[k]) if k not in keywords else Pre(f"{k}=", value(args[k])) for k in args if k[0] != "_"]
        return Brackets(f"torch.{name}", (*ins, *items))

    return emit


def _call(name: str, star: bool = False) -> Callable:
    """build(): the tensor method with the arguments in torch's order."""

    def compute(torch, ops, args):
        values = [v for k, v in args.items() if k[0] != "_"]
        if star and isinstance(values[0], tuple):
            values = [*values[0], *values[1:]]
        return getattr(ops[0], name)(*values, *ops[1:])

    return compute


def _reg(*specs: OpSpec) -> dict[str, OpSpec]:
    return {spec.name: spec for spec in specs}


_DIM0 = Arg("dim", 0, INT)
_REDUCE = (Arg("dim", REQUIRED, DIMS), Arg("keepdim", False, BOOL))
_VIEW = dict(aliases_input=True, saves=sv.VIEW, needs_torch=False)
_PIECE = dict(view_strides=lambda shape, before, out, a: before, restrides=True, **_VIEW)  # pieces of a dim

OPS: dict[str, OpSpec] = _reg(
    OpSpec("permute", (Arg("dims", REQUIRED, DIMS),), permute_rule, _call("permute", True), _method("permute", True),
           star=True, restrides=True, reorders=True, **_VIEW,
           view_strides=lambda shape, before, out, a: sd.permuted(before, a["dims"])),
    OpSpec("transpose", (Arg("dim0"), Arg("dim1")), transpose_rule, _call("transpose"), _method("transpose"),
           restrides=True, reorders=True, **_VIEW,
           view_strides=lambda shape, before, out, a: sd.transposed(before, a["dim0"], a["dim1"])),
    OpSpec("reshape", (Arg("shape", REQUIRED, DIMS),), reshape_rule, _call("reshape", True), _method("reshape", True),
           star=True, **_VIEW),
    OpSpec("view", (Arg("shape", REQUIRED, DIMS),), reshape_rule, _call("view", True), _method("view", True),
           star=True, **_VIEW),
    OpSpec("flatten", (Arg("start_dim", 0), Arg("end_dim", -1)), flatten_rule, _call("flatten"),
           _method("flatten", keywords=("start_dim", "end_dim")), **_VIEW),
    OpSpec("unflatten", (Arg("dim"), Arg("sizes", REQUIRED, DIMS)), unflatten_rule, _call("unflatten"),
           _method("unflatten"), **_VIEW,
           view_strides=lambda shape, before, out, a: sd.viewed(shape, before, out)),
    OpSpec("expand", (Arg("size", REQUIRED, DIMS),), expand_rule, _call("expand", True), _method("expand", True),
           star=True, restrides=True, **_VIEW,
           view_strides=lambda shape, before, out, a: sd.expanded(shape, before, out)),
    OpSpec("narrow", (Arg("dim"), Arg("start"), Arg("length")), narrow_rule, _call("narrow"), _method("narrow"),
           **_PIECE),
    OpSpec("select", (Arg("dim"), Arg("index")), select_rule, _call("select"), _method("select"),
           restrides=True, **_VIEW, view_strides=lambda shape, before, out, a: sd.selected(before, a["dim"])),
    OpSpec("contiguous", (), same_rule, _call("contiguous"), _method("contiguous"), needs_torch=False,
           saves=sv.NOTHING, layout=CONTIGUOUS, kept_strides=sd.kept_if_contiguous),
    OpSpec("chunk", (Arg("chunks"), _DIM0), chunk_rule, _call("chunk"), _method("chunk", keywords=("dim",)),
           **_PIECE),
    OpSpec("split", (Arg("split_size_or_sections", REQUIRED, DIMS), _DIM0), split_rule, _call("split"),
           _method("split", keywords=("dim",)), **_PIECE),
    OpSpec("mean", _REDUCE, reduce_rule, _call("mean"), _method("mean", keywords=("dim", "keepdim")),
           needs_torch=False, saves=sv.NOTHING),
    OpSpec("sum", _REDUCE, reduce_rule, _call("sum"), _method("sum", keywords=("dim", "keepdim")), needs_torch=False,
           saves=sv.NOTHING),
    OpSpec("amax", _REDUCE, reduce_rule, _call("amax"), _method("amax", keywords=("dim", "keepdim")),
           needs_torch=False, saves=saves_ops.amax_saves),
    OpSpec("softmax", (Arg("dim", REQUIRED, INT),), softmax_rule, _call("softmax"),
           _method("softmax", keywords=("dim",)), needs_torch=False, saves=sv.SAVES_OUTPUT,
           layout=CONTIGUOUS),  # measured contiguous on a transposed input
    OpSpec("matmul", (), matmul_rule, lambda torch, ops, args: torch.matmul(*ops), _function("matmul"), tensors=2,
           products=matmul_products, saves=saves_ops.matmul_saves, layout=CONTIGUOUS),
    OpSpec("scaled_dot_product_attention",
           (Arg("dropout_p", 0.0, FLOAT), Arg("is_causal", False, BOOL), Arg("scale", None, OPT_FLOAT)),
           sdpa_rule, lambda torch, ops, args: torch.nn.functional.scaled_dot_product_attention(*ops, **args),
           _function("nn.functional.scaled_dot_product_attention", keywords=("dropout_p", "is_causal", "scale")),
           tensors=3, products=sdpa_products, saves=saves_ops.sdpa_saves),
)

# Functions of tensors: the merges and the operations (a live view of both registries).  A node whose op is
# one of these is computed by its spec's `compute` and written by its `emit`; it has no submodule.
FUNCTIONS: ChainMap = ChainMap(MERGES, OPS)
