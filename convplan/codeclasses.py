"""The parts a block's class is made of (codeblock.py walks the block and puts them together): each
call's state as the walk goes, the constructor's arguments, forward's lines and `if`s, how both
methods are laid out, and what the block's syntax says of itself (which tensors it names and reads,
which numbered containers forward can call as one, a flag's name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import nodes as n
from .codeexpr import Unmergeable, plain
from .graph import Module, Node
from .merges import MERGES
from .pysource import Brackets, Namespace, Pre, Writer, flat, str_literal


@dataclass
class Call:
    """One call of the block, as the walk goes through its statements."""

    module: Module
    known: dict  # the call's parameters and named numbers, as the checker left them
    env: dict  # plan name -> its value in this call, as the walk goes
    queues: list  # the submodules not yet met, per open container (innermost last)
    steps: list  # forward's steps not yet met


@dataclass
class Arg:
    """A constructor argument: its kind (dim, param, lifted), its value in each call, its default."""

    kind: str
    values: list
    default: object = None  # the Python value, or `NO_DEFAULT`
    text: str = ""  # the default's source


NO_DEFAULT = object()


def layer_source(node: Node, value) -> Brackets:
    """A layer's constructor call, `value(argument)` writing each value: torch's leading required arguments
    by position, the rest by keyword; a kind torch builds from other modules (LayerSpec.compose) as the calls
    of those."""
    spec = node.spec
    if spec.compose is not None:
        return spec.compose(lambda kind, args, kwargs: Brackets(f"nn.{kind}", (*args, *(Pre(f"{k}=", v) for k, v
                                                                                       in kwargs.items()))),
                            value, node.args, node.given)
    head = f"nn.{spec.name}" if spec.module == "torch.nn" else spec.name  # a copied class: codegen._copies
    return Brackets(head, tuple(value(name) if positional else Pre(f"{name}=", value(name))
                                for name, positional in spec.call_args(node.given)))


@dataclass
class Assign:
    """A forward line: `target = rhs` (target None: the value is not read)."""

    target: str | None
    rhs: object
    reads: tuple[str, ...]
    comment: str = ""
    merge: bool = False  # a merge whose value nobody reads is left out
    several: tuple[str, ...] = ()  # the variables of `a, b = x.chunk(2)` (target is the pattern)

    @property
    def defines(self) -> tuple[str, ...]:
        return self.several or (() if self.target is None else (self.target,))


@dataclass
class If:
    cond: object  # a doc
    body: list
    orelse: list = field(default_factory=list)


@dataclass
class Loop:
    """`for var in range(count):` in forward."""

    var: str
    count: str
    body: list


@dataclass
class Forward:
    """forward's variables as the walk goes: a chain variable is overwritten step by step unless a later
    statement still reads it (`pinned`)."""

    names: Namespace
    tensors: dict  # plan tensor name -> variable
    cur: str | None = None
    pinned: set = field(default_factory=set)
    output: str | None = None
    silent: int = 0  # inside a numbered container that forward calls as one
    free: list = field(default_factory=list)  # chain variables whose value is dead
    label: str = "out"  # what made the last value: a name for it


def inputs_of(block: n.BlockDef) -> list[n.Input]:
    return [s for s in block.body if isinstance(s, n.Input)]


def tensor_names(stmts) -> set[str]:
    """The names the statements give tensors: inputs, targets, branches."""
    found: set[str] = set()
    for s in stmts:
        if isinstance(s, n.Input) and s.name:
            found.add(s.name)
        if isinstance(s, (n.Layer, n.Merge, n.Repeat)) and s.target:
            found.add(s.target)
        if isinstance(s, n.Layer) and s.targets is not None:
            found |= {x.id for x in s.targets.names()}
        for b in getattr(s, "branches", ()):
            found |= {b.name} if b.name else set()
            found |= tensor_names(b.body)
        found |= tensor_names(getattr(s, "body", ()) or ()) | tensor_names(getattr(s, "orelse", ()) or ())
    return found


def walk_names(stmts) -> set[str]:
    """Tensor names the statements read: by reference, as a call's tensor argument, in an output."""
    found: set[str] = set()
    for s in stmts:
        if isinstance(s, n.Ref):
            found.add(s.name)
        elif isinstance(s, n.Layer):
            found |= {a.value.id for a in s.call.args if a.name is None and isinstance(a.value, n.Name)}
        elif isinstance(s, n.Output):
            found |= {x.id for x in s.names}
        elif isinstance(s, n.Merge):
            found |= {a.value.id for a in s.call.args if a.name is None and isinstance(a.value, n.Name)}
            for b in s.branches:
                found |= walk_names(b.body)
        elif isinstance(s, n.Repeat):
            found |= walk_names(s.body)
        elif isinstance(s, n.If):
            found |= walk_names(s.body) | walk_names(s.orelse)
    return found


def render_init(w: Writer, items: list) -> None:
    for item in items:
        kind = item[0]
        if kind == "code":
            w.code(item[1], item[2])
        elif kind == "let":
            w.line(f"{item[1]} = {item[2]}")
        elif kind == "for":
            w.line(f"for {item[1]} in range({item[2]}):")
            w.depth += 1
            render_init(w, item[3])
            w.depth -= 1
        elif kind == "raise":
            message = str_literal(item[1])
            if len(w.indent) + 4 + len(message) <= w.width:
                w.code("raise ", Brackets("ValueError", (message,)))
            else:  # implicitly joined pieces, as ruff leaves a string too long for the line
                room = w.width - len(w.indent) - 6
                w.lines += [w.indent + "raise ValueError(",
                            *(w.indent + "    " + str_literal(p) for p in _pieces(item[1], room)), w.indent + ")"]
        else:
            _render_if(w, item[1], item[2], item[3], render_init, lambda x: x[0] == "if", lambda x: x[1:])


def _pieces(text: str, room: int) -> list[str]:
    """`text` in pieces whose literals fit in `room`, split after spaces."""
    pieces, current = [], ""
    for word in text.split(" "):
        if current and len(str_literal(f"{current}{word} ")) > room:
            pieces.append(current)
            current = ""
        current += word + " "
    pieces.append(current.rstrip(" "))
    return pieces


def _render_if(w: Writer, cond, body, orelse, render, is_if, parts, word: str = "if ") -> None:
    if not body and orelse and isinstance(cond, str) and re.fullmatch(r"[\w.]+", cond):
        cond, body, orelse = f"not {cond}", orelse, []  # `if not self.use_x:`, not `if ...: pass / else:`
    w.code(word, cond, ":")
    w.depth += 1
    render(w, body) if body else w.line("pass")
    w.depth -= 1
    if len(orelse) == 1 and is_if(orelse[0]):
        c, b, o = parts(orelse[0])
        _render_if(w, c, b, o, render, is_if, parts, "elif ")
    elif orelse:
        w.line("else:")
        w.depth += 1
        render(w, orelse)
        w.depth -= 1


def render_forward(w: Writer, items: list) -> None:
    for item in items:
        if isinstance(item, Assign):
            w.statement("" if item.target is None else f"{item.target} = ", item.rhs, item.comment)
        elif isinstance(item, Loop):
            w.line(f"for {item.var} in range({item.count}):")
            w.depth += 1
            render_forward(w, item.body)
            w.depth -= 1
        else:
            _render_if(w, item.cond, item.body, item.orelse, render_forward, lambda x: isinstance(x, If),
                       lambda x: (x.cond, x.body, x.orelse))


def prune(items: list, live: set) -> tuple[list, set]:
    """Backward liveness: a value nobody reads loses its target (a merge, its line)."""
    out = []
    for item in reversed(items):
        if isinstance(item, Assign):
            if item.defines and not set(item.defines) & live:
                if item.merge or not isinstance(item.rhs, Brackets):
                    continue
                item = Assign(None, item.rhs, item.reads, item.comment)
            live = (live - set(item.defines)) | set(item.reads)
        elif isinstance(item, Loop):  # it runs its body again: what the body reads stays live
            live = live | {r for a in item.body for r in a.reads}
        else:
            body, a = prune(item.body, set(live))
            orelse, b = prune(item.orelse, set(live))
            if not body and not orelse:
                continue
            item, live = If(item.cond, body, orelse), a | b
        out.append(item)
    return out[::-1], live


def count_of(v) -> int:
    if isinstance(v, bool) or not isinstance(plain(v), int):
        raise Unmergeable("a repeat count it cannot decide")
    return plain(v)


def inside(inner, outer) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) and \
        (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)


def names_in(e) -> set[str]:
    if isinstance(e, n.Name):
        return {e.id}
    found: set[str] = set()
    for v in vars(e).values():
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, n.Arg):
                found |= names_in(x.value)
            elif hasattr(x, "__dataclass_fields__") and hasattr(x, "span") and not isinstance(x, type(e.span)):
                found |= names_in(x)
    return found


def chainable(stmts, refs: set[str]) -> bool:
    """A numbered container forward can call as one: a chain of calls, nothing named that is read."""
    for s in stmts:
        if isinstance(s, n.Layer):
            if s.call.name in MERGES or (s.target and s.target in refs) or any(
                    a.name is None and isinstance(a.value, n.Name) and a.value.id in refs for a in s.call.args):
                return False
        elif isinstance(s, n.Repeat):
            if (s.target and s.target in refs) or not chainable(s.body, refs):
                return False
        elif not isinstance(s, (n.Pass, n.Let, n.If)):
            return False
        elif isinstance(s, n.If) and not (chainable(s.body, refs) and chainable(s.orelse, refs)):
            return False
    return True


def label(stmts) -> str:
    """A flag's name from what its branch makes: `use_downsample`, `use_residual`."""
    for s in stmts:
        target = getattr(s, "target", None)
        if target:
            return target
        if isinstance(s, n.Layer):
            return "residual" if s.call.name == "add" else s.call.name.lower()
        inner = [b for br in getattr(s, "branches", ()) for b in br.body] + list(getattr(s, "body", ()))
        if inner and label(inner):
            return label(inner)
    return ""


def prune_lets(items: list, read: set) -> tuple[list, set]:
    """Backward over __init__'s items: a let whose name nothing later reads is dropped."""
    out = []
    for item in reversed(items):
        if item[0] == "let":
            if item[1] not in read:
                continue
            read = (read - {item[1]}) | idents(item[2])
        elif item[0] == "code":
            read = read | idents(flat(item[2]))
        elif item[0] == "for":
            read = read | idents(item[2]) | {i for x in item[3] for i in idents(flat(x[2]))}
        elif item[0] == "if":
            body, a = prune_lets(item[2], set(read))
            orelse, b = prune_lets(item[3], set(read))
            item = ("if", item[1], body, orelse)
            read = a | b | idents(item[1])
        out.append(item)
    return out[::-1], read


def idents(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text))


def layer_head(node) -> str:
    """`nn.Conv2d`, or a kind torch.nn lacks by its own name (its class is copied into the file)."""
    return f"nn.{node.spec.name}" if node.spec.module == "torch.nn" else node.spec.name
