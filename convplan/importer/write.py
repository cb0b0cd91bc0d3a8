"""Stage 3b: statements (structure.py) -> plan text: blocks before the plan, each with its parameters and
input pattern (symbols N, C, H, W; L for 3-D, D for depth or features), a numbered container written as a
`repeat` where its calls differ in the first only."""

from __future__ import annotations

import math

from ..layers import REQUIRED
from .fold import Folded, Ref
from .ir import Body, ImportFailure, Problem
from .mapping import same
from .structure import BodyWriter, Call, If, Jump, MergeBlock, MergeCall, Seq, Stmt, Unwritable

INDENT = "    "
RANK_DIMS = {1: ("D",), 2: ("N", "D"), 3: ("N", "C", "L"), 4: ("N", "C", "H", "W"), 5: ("N", "C", "D", "H", "W")}


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

    def call(self, s: Call) -> str:
        parts = [self.names[t] for t in s.tensors]
        for name, value, _, positional in self._args(s):
            parts.append(literal(value) if positional else f"{name}={literal(value)}")
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
            elif not same(value, default):
                out.append((name, value, default, False))
        return out

    def seq(self, s: Seq, depth: int) -> list[str]:
        """`name = repeat n:` where the calls are alike, `name = repeat i in n:` where only the first differs,
        else `name = sequential:` with each statement."""
        pad = INDENT * depth
        calls = s.body
        if len(calls) > 1 and all(isinstance(c, Call) and not c.tensors and not c.flag and c.value not in self.wanted
                                  for c in calls) and len({c.callee for c in calls}) == 1:
            texts = [self.call(c) for c in calls]
            if len(set(texts)) == 1:
                return [pad + f"{s.name} = repeat {len(calls)}:", pad + INDENT + texts[0]]
            merged = self._first_differs(calls)
            if merged is not None:
                return [pad + f"{s.name} = repeat i in {len(calls)}:", pad + INDENT + merged]
        return [pad + f"{s.name} = sequential:", *self.lines(s.body, depth + 1)]

    def _first_differs(self, calls: list[Call]) -> str | None:
        """One call for all, an argument the first call sets apart written `a if i == 0 else b` (`i == 0` for
        True/False); None where a later call differs too."""
        rows = [self._args(c) for c in calls]
        order = list(dict.fromkeys(n for row in rows for n, _, _, _ in row))
        info = {n: (d, p) for row in rows for n, _, d, p in row}
        parts = []
        for name in order:
            default, positional = info[name]
            texts = [next((literal(v) for n, v, _, _ in row if n == name), None) for row in rows]
            if default is not REQUIRED:
                texts = [literal(default) if t is None else t for t in texts]
            if None in texts or len(set(texts[1:])) > 1:
                return None
            first, rest = texts[0], texts[1]
            text = first if first == rest else {("True", "False"): "i == 0", ("False", "True"): "i != 0"}.get(
                (first, rest), f"{first} if i == 0 else {rest}")
            parts.append(text if positional else f"{name}={text}")
        return f"{calls[0].callee}({', '.join(parts)})"


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
    input on; at the plan's input (`concrete` given) what a layer's weights fix is a number."""
    names = RANK_DIMS.get(len(shape), ("N", *(f"D{i}" for i in range(1, len(shape)))))
    out = []
    for i, (name, size) in enumerate(zip(names, shape, strict=True)):
        if concrete is not None and (k, i) in concrete:
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
