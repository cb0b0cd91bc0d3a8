"""Stage 3: folded bodies -> plan text.  Each body is written as a chain: an op that reads the value before
it is a plain statement; a fork whose branches meet again at one merge, touching nothing else, becomes
`residual:`/`shortcut:` (add), `cat(dim=d):` or `mul:` with a `branch:` each; ops run under a block
parameter go under `if flag:`; a module path `name.0`, `name.1`, ... becomes `name = sequential:` (or
`name = repeat ...:` where its calls differ only in the first); everything else reads named tensors."""

from __future__ import annotations

import builtins
import keyword
import math
from dataclasses import dataclass, field, replace

from ..layers import REGISTRY, REQUIRED
from ..merges import MERGES
from ..scope import MODULE_ATTRS
from ..vocabulary import KEYWORDS
from .fold import SIZE_FUNCTIONS, Folded, Ref
from .ir import Body, ImportFailure, Op, Problem

INDENT = "    "
RANK_DIMS = {1: ("D",), 2: ("N", "D"), 3: ("N", "C", "L"), 4: ("N", "C", "H", "W"), 5: ("N", "C", "D", "H", "W")}


class Unwritable(Exception):
    pass


# -- statements ---------------------------------------------------------------------------


@dataclass
class Stmt:
    value: int | None  # the tensor it makes (None: a Ref, an If)
    flag: str = ""


@dataclass
class Call(Stmt):
    callee: str = ""
    args: list = field(default_factory=list)  # (name, value, default, positional)
    tensors: tuple = ()  # value ids written as the leading arguments
    module: str = ""  # the attribute name it must have ("" where it needs none)


@dataclass
class Jump(Stmt):
    """A bare name: the chain continues from that tensor."""

    target: int = -1


@dataclass
class MergeCall(Stmt):
    kind: str = ""
    tensors: tuple = ()
    dim: int | None = None


@dataclass
class MergeBlock(Stmt):
    head: str = ""  # "residual", "cat(dim=1)", "mul", "add"
    parts: list = field(default_factory=list)  # (label, [Stmt]); residual: ("residual", ..), ("shortcut", ..)


@dataclass
class Seq(Stmt):
    name: str = ""
    body: list = field(default_factory=list)


@dataclass
class If(Stmt):
    body: list = field(default_factory=list)


# -- units: an op, or a numbered container's ops ------------------------------------------


@dataclass
class Unit:
    ops: list[Op]
    ins: tuple[int, ...]
    out: int
    seq: str = ""  # the container's name

    @property
    def first(self) -> int:
        return self.ops[0].id


def _units(body: Body) -> list[Unit]:
    """The body's ops with each numbered container's run of ops made one unit."""
    ops = [op for op in body.ops if op.what != "input"]
    spans: dict[str, list[int]] = {}
    for k, op in enumerate(ops):
        if len(op.path) > 2 or len(op.path) == 2 and not op.path[1].isdigit():
            raise Unwritable(f"{'.'.join(op.path)}: a module two levels down (a container in a container, or a "
                             "ModuleDict) has no place in a plan's module tree")
        if len(op.path) == 2:
            spans.setdefault(op.path[0], []).append(k)
        elif len(op.path) == 1 and not op.path[0].isidentifier():
            raise Unwritable(f"its submodule {op.path[0]!r} has a name a plan cannot write (an nn.Sequential's "
                             "children are numbered): put the Sequential in a module (self.body = ...), and the "
                             "keys become body.0.weight, ...")
    units, k = [], 0
    starts = {v[0]: name for name, v in spans.items()}
    while k < len(ops):
        if k not in starts:
            units.append(Unit([ops[k]], ops[k].inputs, ops[k].id))
            k += 1
            continue
        name = starts[k]
        end = spans[name][-1]
        run = ops[k:end + 1]
        _check_container(name, run)
        inside = {op.id for op in run}
        ins = tuple(dict.fromkeys(i for op in run for i in op.inputs if i not in inside))
        if len(ins) != 1:
            raise Unwritable(f"{name}: its modules read {len(ins)} tensors from outside it; a numbered container "
                             "is a chain from one")
        users = {i for op in ops[end + 1:] for i in op.inputs} | set(body.outputs)
        leaving = [op.id for op in run if op.id in users]
        if leaving != [run[-1].id]:
            raise Unwritable(f"{name}: values made inside it are read after it; a numbered container gives one")
        units.append(Unit(run, ins, run[-1].id, seq=name))
        k = end + 1
    return units


def _check_container(name: str, run: list[Op]) -> None:
    index = 0
    for op in run:
        if len(op.path) == 2 and op.path[0] == name:
            if op.path[1] != str(index):
                raise Unwritable(f"{name}.{op.path[1]} runs where {name}.{index} should: a numbered container's "
                                 "modules run in the order of their indices")
            index += 1
        elif op.what != "merge":
            raise Unwritable(f"{op.name} ({op.kind}) runs between {name}'s modules: it would take an index of "
                             "the container and move the others' keys")


# -- one body -----------------------------------------------------------------------------


class BodyWriter:
    def __init__(self, body: Body, params: set[str]):
        self.body = body
        self.units = _units(body)
        self.made = {u.out: u for u in self.units}
        self.users: dict[int, list[Unit]] = {}
        for u in self.units:
            for i in u.ins:
                self.users.setdefault(i, []).append(u)
        self.wanted: set[int] = set()  # values read by name
        self.first_use: set[str] = set()  # module names given out
        self.taken = set(params) | set(MODULE_ATTRS) | set(KEYWORDS) | set(MERGES) | set(SIZE_FUNCTIONS) | \
            {p for op in body.ops for p in op.path[:1]} | set(dir(builtins))

    def statements(self) -> list[Stmt]:
        entry = self.body.inputs[-1].id if self.body.inputs else None  # after `input` lines: the last
        last = self.body.outputs[-1] if len(self.body.outputs) == 1 else None
        stmts = self.region(self.units, entry, last)
        if len(self.body.outputs) > 1:
            self.wanted.update(self.body.outputs)
        return stmts

    def region(self, units: list[Unit], entry: int | None, exit: int | None) -> list[Stmt]:
        out: list[Stmt] = []
        cur, done = entry, set()
        pending = list(units)
        while pending:
            if cur is not None:
                found = self.merge_block(pending, cur)
                if found is not None:
                    stmt, used = found
                    out.append(stmt)
                    done |= {id(u) for u in used}
                    pending = [u for u in pending if id(u) not in done]
                    cur = stmt.value
                    continue
            u = pending.pop(0)
            out.extend(self.linear(u, cur))
            cur = u.out
        if exit is not None and cur != exit:
            self.wanted.add(exit)
            out.append(Jump(None, target=exit))
        return _wrap_flags(out)

    # A fork at `v` that meets again at one merge, its branches touching nothing else
    def merge_block(self, pending: list[Unit], v: int):
        position = {id(u): k for k, u in enumerate(pending)}
        desc = self._descendants(pending, v)
        for m in pending:
            op = m.ops[0]
            if m.seq or op.what != "merge" or len(set(m.ins)) != len(m.ins) or id(m) not in desc:
                continue
            branches = []
            for o in m.ins:
                if o == v:
                    branches.append([])
                    continue
                u = self.made.get(o)
                if u is None or id(u) not in desc:
                    break
                branches.append(self._ancestors(u, desc))
            else:
                if self._clean(branches, m, v) and any(branches):
                    return self._emit_block(m, op, branches, v, position)
        return None

    def _descendants(self, pending, v) -> set:
        reach, values = set(), {v}
        for u in pending:
            if any(i in values for i in u.ins):
                reach.add(id(u))
                values.add(u.out)
        return reach

    def _ancestors(self, u: Unit, desc: set) -> list[Unit]:
        out, todo, seen = [], [u], set()
        while todo:
            w = todo.pop()
            if id(w) in seen or id(w) not in desc:
                continue
            seen.add(id(w))
            out.append(w)
            todo.extend(self.made[i] for i in w.ins if i in self.made)
        return sorted(out, key=lambda w: w.first)

    def _clean(self, branches, m: Unit, v: int) -> bool:
        ids = [{id(w) for w in b} for b in branches]
        if sum(len(s) for s in ids) != len(set().union(*ids)):
            return False
        for b, s in zip(branches, ids, strict=True):
            for w in b:
                if any(i != v and (i not in self.made or id(self.made[i]) not in s) for i in w.ins):
                    return False
                if w.out in self.body.outputs:
                    return False
                for user in self.users.get(w.out, []):
                    if id(user) not in s and user is not m:
                        return False
        return True

    def _emit_block(self, m: Unit, op: Op, branches, v: int, position) -> tuple[MergeBlock, list[Unit]]:
        bodies = [self.region(b, v, o) if b else [] for b, o in zip(branches, m.ins, strict=True)]
        used = [m, *(w for b in branches for w in b)]
        if op.kind == "add" and len(branches) == 2:
            order = sorted(range(2), key=lambda k: (not branches[k], branches[k][0].first if branches[k] else 0))
            parts = [("residual", bodies[order[0]])] + ([("shortcut", bodies[order[1]])] if bodies[order[1]] else [])
            return MergeBlock(m.out, head="residual", parts=parts), used
        head = f"cat(dim={op.args['dim']})" if op.kind == "cat" else op.kind
        return MergeBlock(m.out, head=head, parts=[("branch", b) for b in bodies]), used

    def linear(self, u: Unit, cur: int | None) -> list[Stmt]:
        op = u.ops[0]
        if u.seq:
            pre = self._jump(u.ins[0], cur)
            flags = {o.flag for o in u.ops}
            flag = flags.pop() if len(flags) == 1 else ""
            ops = [replace(o, flag="") if flag else o for o in u.ops]  # the `if` goes around the container
            inner = self.region([Unit([o], o.inputs, o.id) for o in ops], u.ins[0], u.out)
            return [*pre, Seq(u.out, flag, name=u.seq, body=inner)]
        if op.what == "merge":
            self.wanted.update(u.ins)
            return [MergeCall(u.out, op.flag, kind=op.kind, tensors=u.ins, dim=op.args.get("dim"))]
        module = op.path[0] if len(op.path) == 1 and op.path[0] not in self.first_use else ""
        if module:
            self.first_use.add(module)
        if len(u.ins) == 1:
            return [*self._jump(u.ins[0], cur), Call(u.out, op.flag, op.kind, _call_args(op), (), module)]
        self.wanted.update(u.ins)
        return [Call(u.out, op.flag, op.kind, _call_args(op), u.ins, module)]

    def _jump(self, value: int, cur: int | None) -> list[Stmt]:
        if value == cur:
            return []
        self.wanted.add(value)
        return [Jump(None, target=value)]

    # -- names
    def names(self, stmts: list[Stmt]) -> dict[int, str]:
        """A name for every value read by name: its module's where the statement has one, else a fresh one
        from the fx node's name."""
        names: dict[int, str] = {}
        inputs = self.body.inputs
        for k, op in enumerate(inputs):
            base = "x" if len(inputs) == 1 else self.body.input_names[k]
            names[op.id] = self._fresh(base)
        for stmt in _walk(stmts):
            if isinstance(stmt, Call) and stmt.module:
                names.setdefault(stmt.value, stmt.module)
        ops = {op.id: op for op in self.body.ops}
        for v in sorted(self.wanted):
            if v not in names:
                names[v] = self._fresh(ops[v].name or "t")
        return names

    def _fresh(self, base: str) -> str:
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in base) or "t"
        if base[0].isdigit():
            base = "t_" + base
        name, k = base, 1
        while name in self.taken or keyword.iskeyword(name):
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


def _walk(stmts):
    for s in stmts:
        yield s
        if isinstance(s, (If, Seq)):
            yield from _walk(s.body)
        elif isinstance(s, MergeBlock):
            for _, body in s.parts:
                yield from _walk(body)


def _wrap_flags(stmts: list[Stmt]) -> list[Stmt]:
    """Runs of statements under one flag as `if flag:`."""
    out: list[Stmt] = []
    for s in stmts:
        if s.flag and out and isinstance(out[-1], If) and out[-1].flag == s.flag:
            out[-1].body.append(s)
        elif s.flag:
            out.append(If(s.value, flag=s.flag, body=[s]))
        else:
            out.append(s)
    return out


def _call_args(op: Op) -> list:
    """(name, value, default, positional) of what a call writes: a layer's non-default arguments (a block
    parameter's name always), a block call's parameters."""
    if op.what == "block":
        return [(k, v, REQUIRED, False) for k, v in op.args.items()]  # _Renderer knows the callee's defaults
    spec = REGISTRY[op.kind]
    out = []
    for k, a in enumerate(spec.args):
        if a.name not in op.args:
            continue
        value = op.args[a.name]
        if not isinstance(value, Ref) and a.default is not REQUIRED and _same_value(value, a.default):
            continue
        out.append((a.name, value, a.default, k == 0 and a.default is REQUIRED and a.name != "kernel_size"))
    return out


def _same_value(a, b) -> bool:
    from .mapping import same

    return same(a, b)


# -- text ---------------------------------------------------------------------------------


def literal(value) -> str:
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unwritable(f"the value {value} cannot be written in a plan")
        text = repr(value)
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(value, str):
        if "'" in value or "\\" in value or "\n" in value:
            raise Unwritable(f"the string {value!r} cannot be written in a plan")
        return f"'{value}'"
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    raise Unwritable(f"the value {value!r} ({type(value).__name__}) cannot be written in a plan")


class _Renderer:
    def __init__(self, names: dict[int, str], wanted: set[int], defaults: dict):
        self.names, self.wanted, self.defaults = names, wanted, defaults

    def lines(self, stmts: list[Stmt], depth: int) -> list[str]:
        out = []
        for s in stmts:
            out.extend(self.stmt(s, depth))
        return out or [INDENT * depth + "pass"]

    def _lhs(self, s: Stmt) -> str:
        name = self.names.get(s.value) if s.value in self.wanted or isinstance(s, Call) and s.module else None
        if isinstance(s, Call) and s.module:
            name = s.module
        return f"{name} = " if name else ""

    def stmt(self, s: Stmt, depth: int) -> list[str]:
        pad = INDENT * depth
        if isinstance(s, Jump):
            return [pad + self.names[s.target]]
        if isinstance(s, Call):
            return [pad + self._lhs(s) + self.call(s)]
        if isinstance(s, MergeCall):
            args = [self.names[t] for t in s.tensors] + ([f"dim={s.dim}"] if s.kind == "cat" else [])
            return [pad + self._lhs(s) + f"{s.kind}({', '.join(args)})"]
        if isinstance(s, If):
            return [pad + f"if {s.flag}:", *self.lines(s.body, depth + 1)]
        if isinstance(s, Seq):
            return self.seq(s, depth)
        if isinstance(s, MergeBlock):
            out = [pad + self._lhs(s) + s.head + ":"]
            if s.head == "residual":
                label, body = s.parts[0]
                out += self.lines(body, depth + 1)
                for label, body in s.parts[1:]:
                    out += [pad + f"{label}:", *self.lines(body, depth + 1)]
                return out
            for label, body in s.parts:
                out += [pad + INDENT + f"{label}:", *self.lines(body, depth + 2)]
            return out
        raise AssertionError(s)

    def call(self, s: Call, alt: dict | None = None) -> str:
        parts = [self.names[t] for t in s.tensors]
        for name, value, _, positional in self._args(s):
            text = alt[name] if alt is not None and name in alt else literal(value)
            parts.append(text if positional else f"{name}={text}")
        return f"{s.callee}({', '.join(parts)})"

    def _args(self, s: Call) -> list:
        if s.callee not in self.defaults:
            return s.args
        params = self.defaults[s.callee]  # [(name, default)]
        given = dict((k, v) for k, v, _, _ in s.args)
        out = []
        for name, default in params:
            value = given.get(name, default)
            if default is REQUIRED:
                out.append((name, value, default, True))
            elif not _same_value(value, default):
                out.append((name, value, default, False))
        return out

    def seq(self, s: Seq, depth: int) -> list[str]:
        pad = INDENT * depth
        calls = s.body
        if len(calls) > 1 and all(isinstance(c, Call) and not c.tensors and not c.flag and c.value not in self.wanted
                                  for c in calls) and len({c.callee for c in calls}) == 1:
            texts = [self.call(c) for c in calls]
            if len(set(texts)) == 1:
                return [pad + f"{s.name} = repeat {len(calls)}:", pad + INDENT + texts[0]]
            alt = self._first_differs(calls)
            if alt is not None:
                return [pad + f"{s.name} = repeat i in {len(calls)}:", pad + INDENT + self.call(calls[1], alt=alt)]
        return [pad + f"{s.name} = sequential:", *self.lines(s.body, depth + 1)]

    def _first_differs(self, calls: list[Call]) -> dict | None:
        """name -> `a if i == 0 else b` where only the first call differs; None where others differ too."""
        written = [{n: literal(v) for n, v, _, _ in self._args(c)} for c in calls]
        keys = set().union(*written)
        alt = {}
        for k in keys:
            default = next((d for c in calls for n, _, d, _ in self._args(c) if n == k), REQUIRED)
            vals = [w.get(k, None if default is REQUIRED else literal(default)) for w in written]
            if any(v is None for v in vals) or len(set(vals[1:])) > 1:
                return None
            if vals[0] != vals[1]:
                alt[k] = {("True", "False"): "i == 0", ("False", "True"): "i != 0"}.get(
                    (vals[0], vals[1]), f"{vals[0]} if i == 0 else {vals[1]}")
        rest = [k for k in keys if k not in written[1]]
        if rest:  # an argument only the first call writes: calls[1] must show it too
            for k in rest:
                if k not in alt:
                    return None
            calls[1].args = calls[1].args + [(k, None, REQUIRED, False) for k in rest]
        return alt


# -- the plan -----------------------------------------------------------------------------


def write_plan(folded: Folded, plan_name: str, concrete: dict[tuple[int, int], int] | None = None) -> str:
    """The plan text.  `concrete`: (input index, dim) -> the size to write instead of a symbol at the plan's
    input (a layer's weights fix it)."""
    defaults = {b.name: [(p.name, p.default) for p in b.params] for b in folded.blocks}
    parts = []
    for block in folded.blocks:
        head = ", ".join(p.name if p.default is REQUIRED else f"{p.name}={literal(p.default)}" for p in block.params)
        parts.append(_body_text(f"block {block.name}" + (f"({head})" if head else ""), block.body,
                                {p.name for p in block.params}, defaults, None))
    parts.append(_body_text(f"plan {plan_name}", folded.root, set(), defaults, concrete or {}))
    return "\n\n".join(parts) + "\n"


def _body_text(header: str, body: Body, params: set, defaults: dict, concrete: dict | None) -> str:
    try:
        return _lines(header, body, params, defaults, concrete)
    except Unwritable as exc:  # located at the module whose body it is
        raise ImportFailure([Problem(body.qualname, body.cls, str(exc))]) from None


def _lines(header: str, body: Body, params: set, defaults: dict, concrete: dict | None) -> str:
    writer = BodyWriter(body, params)
    stmts = writer.statements()
    names = writer.names(stmts)
    lines = [header + ":"]
    first_batch = body.inputs[0].shape[0] if body.inputs and body.inputs[0].shape else None
    for k, op in enumerate(body.inputs):
        dims = _dims(op.shape, k, first_batch, concrete)
        name = "" if len(body.inputs) == 1 and names[op.id] == "x" else names[op.id] + " "
        lines.append(INDENT + f"input {name}[{', '.join(dims)}]")
    lines += _Renderer(names, writer.wanted, defaults).lines(stmts, 1)
    if len(body.outputs) > 1:
        lines.append(INDENT + "output " + ", ".join(names[o] for o in body.outputs))
    return "\n".join(lines)


def _dims(shape: tuple, k: int, first_batch, concrete: dict | None) -> list[str]:
    """Symbols for an input's dims: N, C, H, W (L for 3-D, D for depth or features), suffixed from the second
    input on; at the plan's input (`concrete` given) the channels and what a layer fixes are numbers."""
    names = RANK_DIMS.get(len(shape), ("N", *(f"D{i}" for i in range(1, len(shape)))))
    out = []
    for i, (name, size) in enumerate(zip(names, shape, strict=True)):
        if concrete is not None and ((k, i) in concrete or (i == 1 and len(shape) >= 3) or
                                     (len(shape) <= 2 and i == len(shape) - 1)):
            out.append(str(size))
        elif i == 0 and name == "N" and size == first_batch:
            out.append("N")
        else:
            out.append(name + (str(k + 1) if k else ""))
    return out


def write(folded: Folded, plan_name: str, concrete=None) -> str:
    """The plan text; ImportFailure where a body has no plan syntax (located at its module)."""
    try:
        return write_plan(folded, plan_name, concrete)
    except Unwritable as exc:  # a block's parameter default
        raise ImportFailure([Problem("", plan_name, str(exc))]) from None
