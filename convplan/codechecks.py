"""The checks generated code makes before it computes: the constructor's, on the plan's
parameters and the sizes the weights are built for, and forward's, on the input (its rank, each
fixed dim, the sizes the weights were built for, a size named twice, the requirements on the
input's sizes).  A broken one is a ValueError that names the requirement and the plan line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from .graph import Node
from .pysource import CMP, OR, TAB, Brackets, Namespace, Ops, Printer, Writer, str_literal
from .scope import MODULE_ATTRS
from .show import show_shape

if TYPE_CHECKING:
    from .codemodel import Context, Model


def kept(model: Model, names: dict[str, str]) -> dict[str, str]:
    """The constructor's arguments that forward's checks read (an input dim must equal one the weights
    were built for; a requirement on the input's sizes names one), each kept as an attribute that is
    not a submodule's name."""
    args = {a for a, _ in model.args}
    dims = {s.name for node in model.graph.inputs for d in node.shape for s in _free_syms(d)}
    for cond, _, _ in model.requires:
        found = {s.name for s in cond.free_symbols}
        if not found <= args:
            dims |= found
    taken = Namespace([*(c.module_path[-1] if isinstance(c, Node) else c.path[-1]
                         for c in model.graph.children(())), *MODULE_ATTRS])
    return {a: taken.create(names[a]) for a, _ in model.args if a in dims}


def _is_int(d) -> bool:
    return isinstance(d, int) or (isinstance(d, sympy.Basic) and d.is_Integer)


def _free_syms(d) -> set:
    return d.free_symbols if isinstance(d, sympy.Basic) else set()


CHECKS = "check_inputs"  # the importer (importer/trace.py) knows the call by this name


def input_check_function(ctx: Context, variables: dict, width: int):
    """The checks forward makes on its input as one module-level function that fx records as one call (it
    cannot trace an `if` on a size): given fx's Proxy of the first input (symbolic tracing makes every input
    one), it records itself as `torch.fx.wrap` would, without registering the module's globals in fx's
    process-wide table (which keeps every generated module executed alive); eager mode raises the same located
    ValueError.  Returns (the function's source, forward's call of it), or None where there is nothing to
    check."""
    inputs = [variables[node.id] for node in ctx.model.graph.inputs]
    params = Namespace(["self", "torch", "nn", "fx", *inputs])
    sizes = {a: params.create(attr) for a, attr in ctx.kept.items()}
    body = Writer(width)
    body.depth = 1
    _input_checks(body, ctx, variables, sizes)
    if not body.lines:
        return None
    out = Writer(width)
    args = (*inputs, *sizes.values())
    out.code("", Brackets(f"def {CHECKS}", args), ":")
    out.depth = 1
    out.docstring([[f"{ctx.class_name}'s input checks: one call in a torch.fx trace."]])
    out.line(f"if isinstance({inputs[0]}, fx.Proxy):  # traced: one node, as fx.wrap makes")
    out.depth = 2
    out.code("return ", Brackets(f"{inputs[0]}.tracer.create_proxy",
                                 ('"call_function"', CHECKS, Brackets("", args, bare=False) if len(args) > 1
                                  else f"({args[0]},)", "{}")))
    out.depth = 1
    out.lines += body.lines
    call = Brackets(CHECKS, (*inputs, *(f"self.{attr}" for attr in ctx.kept.values())))
    return out.text(), call


def _input_checks(w: Writer, ctx: Context, variables: dict, local: dict) -> None:
    """Each input's rank and sizes against the plan's (a fixed dim, a size the weights were built for, the
    same size named twice), then the requirements on the input's sizes; a ValueError names the requirement
    and the plan line.  `local`: the constructor arguments the checks read, by the names they have here."""
    model = ctx.model
    local = dict(local)
    args = {a for a, _ in model.args}
    later = [r for r in model.requires if not {s.name for s in r[0].free_symbols} <= args]
    needed = {s.name for cond, _, _ in later for s in cond.free_symbols}
    seen: set[str] = set()
    for node in model.graph.inputs:
        for d in node.shape:
            needed |= {s.name for s in _free_syms(d) if s.name in seen}
            seen |= {s.name for s in _free_syms(d)}
    names = Namespace(["self", "torch", "nn", "fx", *variables.values(), *local.values()])
    for node in model.graph.inputs:
        v, where = variables[node.id], f"{model.file}:{node.line}"
        shape = show_shape(node.shape)
        # the rank and the dims written as numbers: one check, one message with the whole pattern
        fixed = [f"{v}.shape[{i}] != {int(d)}" for i, d in enumerate(node.shape) if _is_int(d)]
        broken = Ops((f"{v}.dim() != {len(node.shape)}", *fixed), ("or",) * len(fixed), OR)
        _raise_if(w, broken, f"{ctx.class_name} expects {v} to be {len(node.shape)}-D {shape} ({where}),",
                  f"got {{list({v}.shape)}}")
        for i, d in enumerate(node.shape):
            if _is_int(d):
                continue
            if isinstance(d, sympy.Symbol) and d.name not in args and d.name not in local:
                if d.name in needed:
                    local[d.name] = names.create(d.name)
                    w.line(f"{local[d.name]} = {v}.shape[{i}]")
                continue
            code = Printer(local)
            text = f"{ctx.class_name} requires {v}.shape[{i}] == {ctx.expr(d)} (input {v}, {where}),"
            got = f"got {{list({v}.shape)}}" + "".join(f", {s.name}={{{local[s.name]}}}"
                                                        for s in sorted(_free_syms(d), key=str))
            _raise_if(w, Ops((f"{v}.shape[{i}]", code.doc(d)), ("!=",), CMP), text, got)
    for cond, _, where in later:
        raise_unless(w, ctx, ctx.class_name, cond, where, Printer(local))


def raise_unless(w: Writer, ctx: Context, class_name: str, cond, where: str, code: Printer | None = None) -> None:
    """`if <cond broken>: raise ValueError(f"... requires <cond> ..., got L={L}")`.  `code` prints the
    sizes as the check reads them (in forward: `self.L`, or a local bound from the input's shape)."""
    code = code or ctx.expr
    names = code.names
    got = "got " + ", ".join(f"{_shown(s, names)}={{{names.get(s, s)}}}"
                             for s in sorted(s.name for s in cond.free_symbols))
    text = f"{class_name} requires {ctx.expr(cond)}" + (f" ({where})" if where else "") + ","
    _raise_if(w, code.negation(cond), text, got)


def _shown(symbol: str, names: dict) -> str:
    name = names.get(symbol, symbol)
    return symbol if name.startswith("self.") else name


def _raise_if(w: Writer, broken, text: str, got: str) -> None:
    """`if <broken>: raise ValueError(...)`: `text` as it is, then `got` as an f-string."""
    w.code("if ", broken, ":")
    w.depth += 1
    joined = str_literal(text.replace("{", "{{").replace("}", "}}") + " " + got, prefix="f")
    room = w.width - len(w.indent) - len(TAB)
    if len(joined) <= room:
        w.code("raise ", Brackets("ValueError", (joined,)))
    else:  # implicitly joined pieces, as ruff leaves strings too long to join
        fits = lambda piece: len(str_literal(piece)) + 1 <= room  # noqa: E731
        pieces = [str_literal(p) for p in _wrap_words(text + " ", fits)]
        pieces += [str_literal(p, prefix="f" if "{" in p else "") for p in _wrap_words(got, fits)]
        w.lines += [w.indent + "raise ValueError(", *(w.indent + TAB + p for p in pieces), w.indent + ")"]
    w.depth -= 1


def _wrap_words(text: str, fits) -> list[str]:
    """`text` in pieces that fit, split after spaces (which stay at the piece's end)."""
    words = text.split(" ")
    pieces, current = [], words[0]
    for word in words[1:]:
        if fits(f"{current} {word} "):
            current = f"{current} {word}"
        else:
            pieces.append(current + " ")
            current = word
    if current:
        pieces.append(current)
    return pieces
