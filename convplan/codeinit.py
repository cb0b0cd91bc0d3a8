"""A class's `__init__` over the graph: `self.<name> = ...` for each submodule the plan made, in its
order (a torch layer, an nn.Sequential, a block's class; a repeat whose iterations are alike built in a
loop, codeloops.py), then its learnable tensors.  `slot` writes each value.
"""

from __future__ import annotations

import sympy

from .codeclasses import layer_source
from .codeexpr import equal
from .codeforward import access
from .codeloops import drop_defaults, fold_iterations, list_name, write_loop
from .codemodel import Context
from .graph import Node
from .pysource import Brackets, Ops, Pre, Printer, Writer, value_source


def plan_slot(expr: Printer):
    """How the plan's class writes a value: sizes as expressions of its constructor's arguments."""
    return lambda value, hint, written=None, inferred=False: (expr.doc(value) if isinstance(value, sympy.Basic)
                                                              else value_source(value, expr))


def children(w: Writer, ctx: Context, owner: tuple[str, ...], slot) -> None:
    """`self.<name> = ...` for each submodule of `owner`, in the order the plan made them, then its
    learnable tensors."""
    for item in ctx.model.graph.children(owner):
        path = item.module_path if isinstance(item, Node) else item.path
        w.code(f"{access(path, owner)} = ", child_doc(ctx, item, owner, slot, w))
    for node in ctx.model.graph.nodes:
        if node.op == "param" and node.path[:-1] == owner:
            ctx.uses_torch = True
            hint = "_".join(node.path[len(owner):])
            size = tuple(slot(d, f"{hint}_size{k}") for k, d in enumerate(node.shape))
            value = Brackets(f"torch.{node.args['init']}", size)
            scale = node.args["scale"]
            doc = Brackets("nn.Parameter", (Ops((value, value_source(scale, ctx.expr)), ("*",), 1) if scale != 1
                                            else value,))
            w.code(f"{access(node.path, owner)} = ", doc)


def child_doc(ctx: Context, item, owner: tuple[str, ...], slot, w: Writer | None = None, full: bool = False):
    """A submodule's constructor call: a torch layer, an nn.Sequential, or a block's class.  `slot`
    writes each value (a literal, an expression, or an argument of the enclosing block's class); a
    repeat of the plan's whose iterations are alike is a loop `w` writes first (codeloops.py)."""
    graph = ctx.model.graph
    if isinstance(item, Node):
        hint, written = "_".join(item.module_path[len(owner):]), dict(item.written)
        return layer_source(item, lambda a: slot(item.args[a], f"{hint}_{a}", written.get(a),
                                                 a == item.spec.inferred))
    if item.kind == "seq":
        count = ctx.model.repeats.get((item.span.line, item.span.col)) if not item.owner else None
        if w is None or ctx.locals is None or count is None:
            return Brackets("nn.Sequential", tuple(child_doc(ctx, c, owner, slot, w, full)
                                                   for c in graph.children(item.path)))
        # no loop inside a loop: an inner repeat is an nn.Sequential of the outer one's iteration
        return _loop(w, ctx, item, count, [child_doc(ctx, c, owner, slot, None, True)
                                           for c in graph.children(item.path)])
    name, args = ctx.classes[item.path]
    hint = "_".join(item.path[len(owner):])
    defaults = ctx.defaults.get(name, {})
    return Brackets(name, tuple(Pre(f"{a}=", slot(v, f"{hint}_{a}")) for a, v in args
                                if full or not (a in defaults and equal(v, defaults[a]))))


def _loop(w: Writer, ctx: Context, item, count: int, docs: list):
    """A repeat's container: `layer2 = []`, a `for` that appends each iteration's submodules, then
    `nn.Sequential(*layer2)`, where the iterations are alike; else the submodules one by one."""
    var, folded = "_", fold_iterations(docs, count, None)  # the same in every iteration: no index
    if folded is None:
        var = ctx.locals.create("i")
        ctx.locals.release(var)  # the next loop may use it again
        folded = fold_iterations(docs, count, var)
    strip = lambda d: drop_defaults(d, ctx.defaults, ctx.expr_value)  # noqa: E731
    if folded is None:
        return Brackets("nn.Sequential", tuple(strip(d) for d in docs))
    name = ctx.locals.create(list_name(item.path))
    write_loop(w, name, var, str(count), [strip(d) for d in folded])
    return Brackets("nn.Sequential", (f"*{name}",))

