"""Stage 3a: a folded body -> statements.  Each body is read as a chain: an op that reads the value before it
is a plain statement; a fork whose branches meet again at one merge, touching nothing else, becomes
`residual:`/`shortcut:` (add), `cat(dim=d):` or `mul:` with a `branch:` each; ops run under a block
parameter go under `if flag:`; a module path `name.0`, `name.1`, ... is one numbered container; everything
else reads named tensors.  write.py turns the statements into text."""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass, field, replace

from ..layers import REGISTRY, REQUIRED
from ..merges import MERGES
from ..scope import MODULE_ATTRS
from ..vocabulary import KEYWORDS
from .fold import SIZE_FUNCTIONS, Ref
from .ir import Body, Op
from .mapping import same


class Unwritable(Exception):
    """A body has no plan syntax (a module tree a plan cannot name, a value it cannot write)."""


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
        for stmt in walk(stmts):
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


def walk(stmts):
    for s in stmts:
        yield s
        if isinstance(s, (If, Seq)):
            yield from walk(s.body)
        elif isinstance(s, MergeBlock):
            for _, body in s.parts:
                yield from walk(body)


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
        if not isinstance(value, Ref) and a.default is not REQUIRED and same(value, a.default):
            continue
        out.append((a.name, value, a.default, k == 0 and a.default is REQUIRED and a.name != "kernel_size"))
    return out
