"""A branch of a block's `if` that none of the plan's calls takes, written from its syntax alone, as a
person writes it: its layers, block calls and merges under the condition in `__init__` and in forward,
so that the class also serves calls that take it.  With no call to confirm a value, only what the
syntax decides is written: each argument as the plan wrote it, the input channels a layer reads as
the channels at hand, the names build() would give (the automatic ones counted as the checker counts
them), a layer given tensors by name reading them, a numbered container of layers as an nn.Sequential.
Anything else (an `if`, a container of more than a chain of layers, a layer whose name would shift a later
one) is Untaken, and the class refuses that branch in `__init__` instead.
"""

from __future__ import annotations

import re

from . import nodes as n
from .codeclasses import Assign
from .codeexpr import Unmergeable, interp
from .layers import REGISTRY, REQUIRED
from .merges import MERGES
from .pysource import Brackets, Pre, value_source

OUT_ARGS = ("out_channels", "out_features")  # a layer's output channels, where it writes them
SAME_CHANNELS = ("num_features", "normalized_shape", "num_channels")  # a norm keeps its input's channels


class Untaken(Exception):
    """The branch holds something its syntax alone cannot write."""


def write_untaken(bw, branch, around: list, init: list, fwd_items: list, fwd) -> None:
    """The branch's statements into `init` and `fwd_items`; Untaken where it cannot.  `around`: the calls
    that reached the `if` (and took the other branch), whose state gives the channels and the counts."""
    channels = _channels(bw, around, fwd.cur)
    counts: dict[str, int] = {}
    for s in branch:
        if isinstance(s, n.Pass):
            continue
        if isinstance(s, n.Let):
            bw.let(s.name, s.value, [], init)
            continue
        where = f"{bw.file}:{s.span.line}"
        if isinstance(s, n.Repeat) and s.target is not None:
            channels = _container(bw, s, around, counts, channels, init, fwd_items, fwd, where)
            continue
        if not isinstance(s, n.Layer) or s.targets is not None:
            raise Untaken(type(s).__name__)
        tensors = named_tensors(s, fwd)
        options = s.call.args[len(tensors):]
        if s.call.name in MERGES:
            channels = _merge(bw, s, tensors, options, fwd, fwd_items, where, channels)
            continue
        if tensors:  # `Conv1d(x, 8, 1)`: it reads x (and the chain's value first where it names fewer than the
            # kind needs, as the walker reads it: GRUCell(x, 8) reads x alone, its hx being optional)
            spec = REGISTRY.get(s.call.name)
            least = len(spec.tensors) - spec.optional_tensors if spec is not None else 1
            tensors = [fwd.cur, *tensors] if len(tensors) < least else tensors
            channels = _channels(bw, around, tensors[0])
        else:
            tensors = [fwd.cur]
        attr, channels = _submodule(bw, s, options, around, counts, channels, init)
        target = bw.target(s.target, fwd)
        fwd_items.append(Assign(target, Brackets(f"self.{attr}", tuple(tensors)), tuple(tensors), where))
        fwd.cur = target


def named_tensors(s: n.Layer, fwd) -> list[str]:
    """The variables of the tensors a call names first (`Conv1d(x, 8)`, `add(a, b)`)."""
    tensors = []
    for a in s.call.args:
        if a.name is None and isinstance(a.value, n.Name) and a.value.id in fwd.tensors:
            tensors.append(fwd.tensors[a.value.id])
        else:
            break
    return tensors


def _container(bw, s: n.Repeat, around: list, counts: dict, channels, init: list, fwd_items: list, fwd, where: str):
    """`downsample = sequential:` (or `repeat 2:` without an index): `self.downsample = nn.Sequential(...)` of
    its layers, numbered as build() numbers them, and `x = self.downsample(x)`; the channels after it."""
    times = 1 if s.count is None else _literal(s.count)
    if s.var is not None or not isinstance(times, int) or times < 1:
        raise Untaken("a repeat with an index or a count that is no number")
    docs = []
    for _ in range(times):
        for x in s.body:
            if isinstance(x, n.Pass):
                continue
            if not isinstance(x, n.Layer) or x.targets is not None or x.call.name in MERGES or named_tensors(x, fwd):
                raise Untaken("a container holding more than a chain of layers")
            doc, channels, _ = _constructor(bw, x, x.call.args, channels)
            docs.append(doc)
    attr = _named(bw, s.target, around, counts)
    init.append(("code", f"self.{attr} = ", Brackets("nn.Sequential", tuple(docs))))
    target = bw.target(s.target, fwd)
    fwd_items.append(Assign(target, Brackets(f"self.{attr}", (fwd.cur,)), (fwd.cur,), where))
    fwd.cur = target
    return channels


def _merge(bw, s: n.Layer, tensors: list, options, fwd, fwd_items: list, where: str, channels):
    spec = MERGES[s.call.name]
    if spec.along is not None or any(a.name is None for a in options):
        raise Untaken(f"{spec.name} with its arguments")
    ins = [fwd.cur, *tensors] if len(tensors) < 2 else tensors
    args = {**dict(spec.args), **{a.name: _literal(a.value) for a in options}}
    target = bw.target(s.target, fwd)
    fwd_items.append(Assign(target, spec.emit(ins, args, lambda v: value_source(v, bw.ctx.expr)), tuple(ins),
                            where, True))
    fwd.cur = target
    return channels


def _literal(e):
    try:
        return interp(e, {})
    except (Unmergeable, ArithmeticError, TypeError):
        raise Untaken("an argument that is no number") from None


def _submodule(bw, s: n.Layer, options, around: list, counts: dict, channels, init: list):
    """`self.<name> = <constructor call>` of a layer or a block's class; (its name, the channels after it)."""
    doc, after, base = _constructor(bw, s, options, channels)
    attr = _named(bw, s.target, around, counts) if s.target else _automatic(bw, base, around, counts)
    init.append(("code", f"self.{attr} = ", doc))
    return attr, after


def _constructor(bw, s: n.Layer, options, channels):
    """The constructor call of a layer or a block's class: (its doc, the channels after it, its name's base)."""
    name = s.call.name
    if name in REGISTRY:
        spec = REGISTRY[name]
        if spec.infer_more:
            raise Untaken(f"{name}'s arguments read from its input")
        written = _by_name(spec.arg_names, options)
        given = set(written) | ({spec.inferred} if spec.inferred else set())
        missing = [a.name for a in spec.args if a.default is REQUIRED and a.name not in given]
        if missing or (spec.inferred and channels is None):
            raise Untaken(f"{name} without {', '.join(missing) or 'its input channels'}")
        items = []
        for arg, positional in spec.call_args(given):
            text = channels if arg == spec.inferred and arg not in written else bw.expr(written[arg])
            if arg == "normalized_shape" and arg not in written:
                text = f"({channels},)"
            items.append(text if positional else Pre(f"{arg}=", text))
        head = f"nn.{spec.name}" if spec.module == "torch.nn" else spec.name
        doc = Brackets(head, tuple(items))
        after = next((bw.expr(written[a]) for a in OUT_ARGS if a in written), None)
        if after is None and (spec.inferred is None or spec.inferred in SAME_CHANNELS):
            after = channels
        base = spec.short or spec.name.lower()
    else:
        doc, after = _block_call(bw, name, options, channels)
        base = name.lower()
    return doc, after, base


def _by_name(order, options) -> dict:
    out, k = {}, 0
    for a in options:
        if a.name is None:
            if k >= len(order):
                raise Untaken("too many arguments")
            out[order[k]] = a.value
            k += 1
        else:
            out[a.name] = a.value
    return out


def _block_call(bw, name: str, options, channels):
    """A block's class, called with the arguments the plan wrote and the channels at hand as its input's;
    the channels after it are its input's where every call of the block keeps them."""
    ctx = bw.ctx
    calls = [m for m in ctx.model.graph.blocks if m.name == name and m.path in ctx.classes]
    if not calls or len(ctx.model.blocks.get(name, [])) != 1:
        raise Untaken(f"a call of {name}, which has no class")
    cls, signature = ctx.classes[calls[0].path]
    definition = ctx.model.blocks[name][0].definition
    pymap = ctx.block_args.get(cls, {})
    written = {pymap.get(k, k): v for k, v in _by_name([p.name for p in definition.params], options).items()}
    inputs = [s for s in definition.body if isinstance(s, n.Input)]
    dims = inputs[0].shape.dims if len(inputs) == 1 else ()
    channel_dim = dims[1].id if len(dims) > 1 and isinstance(dims[1], n.Name) else None
    defaults = ctx.defaults.get(cls, {})
    items = []
    for a, _ in signature:
        if a in written:
            items.append(Pre(f"{a}=", bw.expr(written[a])))
        elif a == channel_dim and channels is not None:
            items.append(Pre(f"{a}=", channels))
        elif a not in defaults:
            raise Untaken(f"{cls}'s argument {a}")
    graph = ctx.model.graph
    keeps = all(graph.nodes[m.output].shape[1] == graph.nodes[m.inputs[0]].shape[1] for m in calls
                if m.inputs and len(graph.nodes[m.output].shape) > 1)
    return Brackets(cls, tuple(items)), channels if keeps else None


def _channels(bw, around: list, var):
    """The channels of the value at hand, as the class writes them, where the calls agree on a text."""
    found = bw.var_nodes.get(var)
    if not around or found is None or any(id(c) not in found for c in around):
        return None
    nodes = bw.ctx.model.graph.nodes
    values = [nodes[found[id(c)]].shape[1] if len(nodes[found[id(c)]].shape) > 1 else None for c in around]
    if any(v is None for v in values):
        return None
    try:
        return bw.value(around, values, None, "channels", True, lift=False)
    except Unmergeable:
        return None


def _named(bw, name: str, around: list, counts: dict) -> str:
    """The plan's name for it, where build() would give that: no other node of the call has it."""
    nodes = bw.ctx.model.graph.nodes
    if any(node.name == c.module.prefix + name for c in around for node in nodes):
        raise Untaken(f"{name!r} is taken: build() would name it otherwise")
    unique, k = name, 1
    while ("", unique) in counts:  # named twice in the branch: `bn`, then `bn_2`, as the checker names them
        k += 1
        unique = f"{name}_{k}"
    counts[("", unique)] = 1
    return unique


def _automatic(bw, base: str, around: list, counts: dict) -> str:
    """The name build() gives the next unnamed submodule of this kind: the calls' count so far, plus one;
    Untaken where a later one of the kind would then be named otherwise than in the calls."""
    nodes = bw.ctx.model.graph.nodes
    pattern = re.compile(rf"{re.escape(base)}{'_' * base[-1].isdigit()}([0-9]+)")
    made = set()
    for c in around:
        prefix, start = c.module.prefix, c.module.start
        limit = c.steps[0].out if c.steps else len(nodes)
        before = [int(m[1]) for node in nodes[start:limit] if node.name.startswith(prefix)
                  for m in [pattern.fullmatch(node.name[len(prefix):])] if m]
        later = [node for node in nodes[limit:] if node.name.startswith(prefix)
                 and pattern.fullmatch(node.name[len(prefix):])]
        if later:
            raise Untaken(f"a later {base} would be named otherwise")
        made.add(max(before, default=0))
    if len(made) != 1:
        raise Untaken(f"the calls count {base} differently")
    counts[base] = counts.get(base, made.pop()) + 1
    return f"{base}{'_' * base[-1].isdigit()}{counts[base]}"
