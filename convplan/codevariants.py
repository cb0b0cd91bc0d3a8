"""The block classes of the generated module, callees first: one per block, written from the block's
syntax (codeblock.py); where a block's calls cannot share one, the fewest classes that each serve a
group of its calls; and where the block's syntax cannot be written at all (a block that calls
itself), a class per variant of the graph, the calls whose code differs only in values sharing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import nodes as n
from .codeblock import BlockWriter
from .codeclasses import NO_DEFAULT
from .codeexpr import Unmergeable
from .codeforward import Forward, write_forward
from .codeinit import children, plan_slot
from .codemodel import Context, free_names
from .pysource import Brackets, Namespace, Writer


@dataclass(frozen=True)
class BlockClass:
    name: str
    text: str


class _Slots:
    """Records the values a block call's class body writes, in order (the first pass), or writes each
    as what was decided for it: a literal or a constructor argument (the second)."""

    def __init__(self, decided: list | None = None):
        self.values: list = []
        self.hints: list[str] = []
        self.written: list[str | None] = []  # the name the plan wrote for the value, if it wrote one
        self.inferred: list[bool] = []  # a layer's argument read from its input (in_channels, ...)
        self.decided = decided

    def __call__(self, value, hint: str, written: str | None = None, inferred: bool = False):
        k = len(self.values)
        self.values.append(value)
        self.hints.append(hint)
        self.written.append(written)
        self.inferred.append(inferred)
        return "_" if self.decided is None else self.decided[k]


def block_classes(ctx: Context, names: Namespace, line_length: int) -> list[BlockClass]:
    """A class per block, callees first (a block's calls sit deeper than its callers' deepest), written
    from the block's syntax (codeblock.py); where its calls cannot share one class, a class per variant."""
    graph = ctx.model.graph
    calls: dict = {}
    for m in graph.blocks:
        calls.setdefault(m.name, []).append(m)
    order = sorted(calls, key=lambda key: -max(len(m.path) for m in calls[key]))
    out = []
    for key in order:
        sources = ctx.model.blocks.get(key, [])
        reason = "two files define a block of this name" if len(sources) > 1 else ""
        if len(sources) == 1:
            try:
                out += _one_class(ctx, sources[0], calls[key], names, line_length)
                continue
            except Unmergeable as exc:
                reason = str(exc)
        out += _variants(ctx, calls[key], names, line_length, reason or "its definition is not known")
    return out


def _one_class(ctx: Context, source, modules: list, names: Namespace, line_length: int) -> list[BlockClass]:
    """The block's class; where the calls cannot share one, the fewest classes that each serve a group
    of calls (greedily: each call joins the first group it fits), each saying why."""
    if any(m.path[:len(o.path)] == o.path for m in modules for o in modules if o is not m):
        raise Unmergeable("it calls itself: its structure differs with every level of the recursion")
    block = source.definition
    file = Path(source.file).name
    functions = frozenset(k for k, v in source.namespace.items() if isinstance(v.definition, n.FunctionDef))
    groups: list = []  # [calls, text, signature, reason]
    for m in modules:
        for g in groups:
            try:
                text, signature = BlockWriter(ctx, block, file, [*g[0], m], "", line_length, "", functions).write()
            except Unmergeable as exc:
                g[3] = g[3] or str(exc)
                continue
            g[0].append(m)
            break
        else:
            # Unmergeable: its syntax is the reason
            BlockWriter(ctx, block, file, [m], "", line_length, "", functions).write()
            groups.append([[m], "", {}, ""])
    reason = next((g[3] for g in groups if g[3]), "")
    out = []
    for calls, _, _, _ in groups:
        name = names.create(block.name)
        text, signature = BlockWriter(ctx, block, file, calls, name, line_length,
                                      reason if len(groups) > 1 else "", functions).write()
        for j, m in enumerate(calls):
            ctx.classes[m.path] = (name, tuple((a, arg.values[j]) for a, arg in signature.items()))
        ctx.defaults[name] = {a: arg.default for a, arg in signature.items() if arg.default is not NO_DEFAULT}
        local = Namespace(["self", "torch", "nn"])
        ctx.block_args[name] = {p.name: local.create(p.name) for p in block.params}
        out.append(BlockClass(name, text))
    return out


def _variants(ctx: Context, modules: list, names: Namespace, line_length: int, reason: str) -> list[BlockClass]:
    """The calls of one block as a class per variant (calls whose code differs only in values share
    one), deepest first, each saying why the block is not one class."""
    out: list[BlockClass] = []
    for depth in sorted({len(m.path) for m in modules}, reverse=True):
        groups: dict = {}
        for m in (m for m in modules if len(m.path) == depth):
            slots = _Slots()
            text = _class_body(ctx, m, slots, line_length)
            groups.setdefault(text, []).append((m, slots))
        for group in groups.values():
            made = _block_class(ctx, names.create(group[0][0].name), group, line_length, reason)
            same = next((c for c in out if _unnamed(c) == _unnamed(made)), None)
            if same is None:
                out.append(made)
            else:  # the same code as a class made for deeper calls: use that one
                names.release(made.name)
                for m, _ in group:
                    ctx.classes[m.path] = (same.name, ctx.classes[m.path][1])
    return out


def _unnamed(c: BlockClass) -> str:
    return c.text.replace(f"class {c.name}(", "class (", 1)


def _block_class(ctx: Context, class_name: str, calls: list, line_length: int, reason: str = "") -> BlockClass:
    first = calls[0][1]
    known = [dict(m.values) for m, _ in calls]
    args = Namespace(["self", "torch", "nn"])
    params: dict[str, list] = {}  # argument -> its value in each call
    decided: list = [None] * len(first.hints)

    def holds(name: str, values: list) -> bool:
        return all(name in kv and _same(kv[name], v) for kv, v in zip(known, values, strict=True))

    def lift(k: int, name: str, values: list) -> None:
        found = next((p for p, vs in params.items() if p.startswith(name) and vs == values), None)
        if found is None:
            found = args.create(name)
            params[found] = values
        decided[k] = found

    # the values the plan wrote as names, and those that differ between calls, first; then the
    # arguments read from the input (in_channels, num_features): the argument with their value, if any
    order = [k for k in range(len(decided)) if not first.inferred[k]]
    for k in order + [k for k in range(len(decided)) if first.inferred[k]]:
        values = [slots.values[k] for _, slots in calls]
        same = all(_same(v, values[0]) for v in values) and not free_names(values[0])
        written = first.written[k]
        if written and holds(written, values):  # `stride=stride`: the block's parameter, in its class too
            lift(k, written, values)
        elif first.inferred[k]:  # the channels the layer before gave, as it wrote them; else a name
            before = (decided[j] for j in range(k - 1, -1, -1) if not first.inferred[j])
            name = next((p for p in before if p in params and params[p] == values), None) or \
                next((n for n in known[0] if holds(n, values)), None)
            if name is None and same:
                decided[k] = plan_slot(ctx.expr)(values[0], first.hints[k])
            else:
                lift(k, name or first.hints[k], values)
        elif same:
            decided[k] = plan_slot(ctx.expr)(values[0], first.hints[k])
        else:
            lift(k, next((n for n in known[0] if holds(n, values)), first.hints[k]), values)
    rank = {name: i for i, name in enumerate(known[0])}  # the block's parameters, then its input dims, ...
    params = dict(sorted(params.items(), key=lambda item: rank.get(item[0], len(rank))))
    for j, (m, _) in enumerate(calls):
        ctx.classes[m.path] = (class_name, tuple((p, vs[j]) for p, vs in params.items()))
    body = _class_body(ctx, calls[0][0], _Slots(decided), line_length)
    w = Writer(line_length)
    w.line(f"class {class_name}(nn.Module):")
    w.depth = 1
    m = calls[0][0]
    doc = [[f"Block {m.name} of {ctx.model.file}, for some of its calls."]]
    if reason:
        doc.append([f"A class per variant: {reason}."])
    w.docstring(doc if reason else [[f"Block {m.name} of {ctx.model.file}."]])
    w.line()
    w.code("", Brackets("def __init__", ("self", *params)), ":")
    w.lines.append(body)
    return BlockClass(class_name, w.text())


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def _class_body(ctx: Context, m, slots, line_length: int) -> str:
    """A block call's __init__ body and forward, as its class would have them."""
    w = Writer(line_length)
    w.depth = 2
    w.line("super().__init__()")
    children(w, ctx, m.path, slots)
    w.line()
    w.depth = 1
    inputs = list(zip(m.inputs, m.input_names, strict=True))
    write_forward(w, ctx, Namespace(["self", "torch", "nn"]), Forward(m.path, inputs, [m.output], m.prefix, False))
    return w.text().rstrip("\n")
