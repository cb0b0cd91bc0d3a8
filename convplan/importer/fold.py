"""Stage 2: fold the instances of each module class into one block definition.  Bodies that agree op by op
share a block; an argument that differs between them becomes a block parameter (one parameter for the
arguments that always agree with each other); ops that only some instances run (a `downsample` that is
None elsewhere) are kept under a True/False parameter, where leaving them out is the identity.  Bodies
whose structure differs otherwise get a block each (`Block`, `Block_2`)."""

from __future__ import annotations

import builtins
import keyword
from collections import Counter
from dataclasses import dataclass, field, replace

from ..layers import REGISTRY, REQUIRED
from ..merges import MERGES
from ..scope import MODULE_ATTRS
from ..vocabulary import KEYWORDS
from .ir import Body, ImportFailure, Op, Problem
from .mapping import same

SIZE_FUNCTIONS = ("max", "min", "ceil", "floor", "round", "int")


@dataclass(frozen=True)
class Ref:
    """An argument written as a block parameter's name."""

    name: str


@dataclass
class Param:
    name: str
    default: object = REQUIRED


@dataclass
class BlockDef:
    name: str
    params: list[Param]
    body: Body  # its ops' args hold values or Refs; a block call's args are the callee's parameters
    instances: list[str] = field(default_factory=list)


@dataclass
class Folded:
    root: Body  # block calls' `args` bound to the callee's parameters, `kind` the block's name
    blocks: list[BlockDef]  # callees before callers


def fold(bodies: dict[str, Body], plan_name: str) -> Folded:
    by_class: dict[str, list[str]] = {}
    for q, body in bodies.items():
        if q:
            by_class.setdefault(body.cls, []).append(q)
    calls: dict[str, tuple[str, dict]] = {}  # instance -> (block name, parameter values)
    blocks: list[BlockDef] = []
    defaults: dict = {}  # (block name, parameter) -> its default
    taken = {plan_name}
    pending = dict(by_class)
    while pending:
        ready = [c for c, qs in pending.items()
                 if all(op.instance in calls for q in qs for op in bodies[q].ops if op.what == "block")]
        if not ready:
            cls = next(iter(pending))
            raise ImportFailure([Problem(pending[cls][0], cls, "its class contains itself: a plan's blocks may "
                                         "recurse only on a condition")])
        for cls in ready:
            members = [_with_calls(bodies[q], calls) for q in pending.pop(cls)]
            for block, values in _variants(cls, members, taken, defaults):
                blocks.append(block)
                calls.update(values)
                defaults.update({(block.name, p.name): p.default for p in block.params})
    return Folded(_with_calls(bodies[""], calls), blocks)


def _with_calls(body: Body, calls: dict) -> Body:
    """The body with each block call's kind the callee's block name and its args the parameter values."""
    ops = [replace(op, kind=calls[op.instance][0], args=dict(calls[op.instance][1])) if op.what == "block" else op
           for op in body.ops]
    return replace(body, ops=ops)


def _variants(cls: str, members: list[Body], taken: set, defaults: dict) -> list:
    """Blocks for the instances of one class: each the largest body left with the instances it covers."""
    out = []
    left = sorted(members, key=lambda b: -len(b.ops))
    while left:
        top, rest = left[0], left[1:]
        matched, left = [(top, {op.id: op.id for op in top.ops})], []
        for body in rest:
            m = match(top, body)
            (matched.append((body, m)) if m is not None else left.append(body))
        name = _block_name(cls, taken)
        out.append(_define(name, top, matched, defaults))
    return out


def _block_name(cls: str, taken: set) -> str:
    base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in cls) or "Block"
    if base[0].isdigit():
        base = "Block_" + base
    if base in REGISTRY or base in MERGES or base in KEYWORDS or base in SIZE_FUNCTIONS or \
            keyword.iskeyword(base) or base in dir(builtins):
        base += "Block"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _key(op: Op) -> tuple:
    """What must agree for two ops to be one op of a block (arguments may differ: they become parameters)."""
    return op.what, op.kind, op.path, len(op.inputs), tuple(sorted(op.args.items())) if op.what == "merge" else ()


def match(top: Body, body: Body) -> dict | None:
    """`top`'s op id -> `body`'s (None where `body` leaves that op out), if `body` is `top` without some ops
    of one input each (leaving one out passes its input on) and otherwise the same, op by op; else None."""
    if len(top.inputs) != len(body.inputs) or len(top.outputs) != len(body.outputs):
        return None
    mapping: dict[int, int | None] = {}
    j = 0
    for op in top.ops:
        if j < len(body.ops) and _key(body.ops[j]) == _key(op):
            mapping[op.id] = body.ops[j].id
            j += 1
        else:
            mapping[op.id] = None
    if j != len(body.ops):
        return None
    alias: dict[int, int] = {}  # top's value -> body's value it stands for

    def value(i: int) -> int | None:
        return mapping[i] if mapping[i] is not None else alias.get(i)

    for op in top.ops:
        if mapping[op.id] is None:
            if len(op.inputs) != 1 or op.what == "input" or value(op.inputs[0]) is None:
                return None
            alias[op.id] = value(op.inputs[0])
        elif tuple(value(i) for i in op.inputs) != body.ops[mapping[op.id]].inputs:
            return None
    if tuple(value(i) for i in top.outputs) != body.outputs:
        return None
    return mapping


def _define(name: str, top: Body, matched: list, defaults: dict) -> tuple[BlockDef, dict]:
    """The block for `top` and the bodies matched with it: constants where they agree, parameters where not."""
    taken = set(top.input_names) | {p for op in top.ops for p in op.path[:1]} | set(MODULE_ATTRS)
    params: list[Param] = []
    values: list[dict] = [{} for _ in matched]  # per instance: parameter -> value
    ops = []
    flags: dict[tuple, str] = {}
    for op in top.ops:
        present = tuple(m[op.id] is not None for _, m in matched)
        flag = ""
        if not all(present):
            flag = flags.get(present) or _fresh(f"with_{op.path[0] if op.path else op.kind.lower()}", taken)
            if present not in flags:
                flags[present] = flag
                params.append(Param(flag, False))
                for i, p in enumerate(present):
                    values[i][flag] = p
        args = {}
        for arg, _ in op.args.items() if op.what in ("layer", "block") else ():
            slot = [body.ops[m[op.id]].args[arg] if m[op.id] is not None else _ABSENT for body, m in matched]
            args[arg] = _slot(op, arg, slot, params, values, taken, (defaults, set(flags.values())))
        ops.append(replace(op, args=args if op.what in ("layer", "block") else op.args, flag=flag))
    required = [p for p in params if p.default is REQUIRED]
    params = required + [p for p in params if p.default is not REQUIRED]
    body = replace(top, ops=ops)
    calls = {b.qualname: (name, values[i]) for i, (b, _) in enumerate(matched)}
    return BlockDef(name, params, body, list(calls)), calls


_ABSENT = object()


def _slot(op: Op, arg: str, slot: list, params: list, values: list, taken: set, known: tuple):
    """A constant where every instance agrees, else a Ref to a parameter (one already made for the same values
    where it can be)."""
    defaults, flags = known
    present = [v for v in slot if v is not _ABSENT]
    if all(same(v, present[0]) for v in present):
        # an op only some instances run: the parameter of the same argument, where it agrees wherever it runs
        if len(present) < len(slot):
            for p in params:
                if p.name not in flags and (p.name == arg or p.name.endswith("_" + arg)) and \
                        not same(p.default, present[0]) and \
                        all(v is _ABSENT or same(values[i][p.name], v) for i, v in enumerate(slot)):
                    return Ref(p.name)
        return present[0]
    for p in params:
        if p.name not in flags and all(v is _ABSENT or same(values[i][p.name], v) for i, v in enumerate(slot)):
            return Ref(p.name)
    default = _default(op, arg, defaults)
    counts = Counter(repr(v) for v in present)
    if default is REQUIRED or not any(same(v, default) for v in present):
        default = REQUIRED if all(v is not _ABSENT for v in slot) else \
            next(v for v in present if repr(v) == counts.most_common(1)[0][0])
    name = _fresh(arg if arg not in taken else f"{(op.path[-1] if op.path else op.kind.lower())}_{arg}", taken)
    params.append(Param(name, default))
    for i, v in enumerate(slot):
        values[i][name] = default if v is _ABSENT else v
    return Ref(name)


def _default(op: Op, arg: str, defaults: dict):
    """torch's default of a layer's argument; a block parameter's default for a block call's."""
    if op.what == "layer":
        return next((a.default for a in REGISTRY[op.kind].args if a.name == arg), REQUIRED)
    return defaults.get((op.kind, arg), REQUIRED)


def _fresh(base: str, taken: set) -> str:
    name = base if base.isidentifier() else "p_" + "".join(c if c.isalnum() else "_" for c in base)
    if keyword.iskeyword(name) or name in KEYWORDS or name in dir(builtins):
        name += "_"
    out, k = name, 1
    while out in taken:
        k += 1
        out = f"{name}_{k}"
    taken.add(out)
    return out
