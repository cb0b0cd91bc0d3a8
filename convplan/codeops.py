"""An operation in a block's class (a view, a chunk, a reduction): its sizes as the plan wrote them
(`x.view(N, self.groups, C // self.groups, H, W)`, the input's dims bound from its shape, the block's
parameters kept as attributes) where that gives every call's values, else read from the tensors at hand
when forward runs (`x.shape[0]`), the same text for every call or Unmergeable.
"""

from __future__ import annotations

import sympy

from . import nodes as n
from .codeclasses import (
    names_in,
)
from .codeexpr import Unmergeable, equal, fold, interp, py
from .ops import OPS
from .pysource import value_source


class OpWriter:
    """The operations of a block's forward (a mixin of codeblock.BlockWriter)."""

    def _function(self, calls, steps, tensors: list, owner) -> object:
        """A function's right-hand side, the same for every call: an operation's sizes read from its operands
        when forward runs (`x.shape[0]`); calls whose code differs cannot share the class."""
        from .codeforward import emit
        from .errors import PlanError
        from .pysource import flat

        written = self._written_op(calls, steps, tensors)
        if written is not None:
            return written
        nodes = self.ctx.model.graph.nodes
        docs = []
        for c, st in zip(calls, steps, strict=True):
            known = {var: nodes[i].shape for var, i in zip(tensors, st.inputs, strict=True)}
            try:
                docs.append(emit(self.ctx, st, tensors, c.module.path, known))
            except PlanError as exc:
                raise Unmergeable(exc.diagnostics[0].message) from None
        if len({flat(d) for d in docs}) > 1:
            raise Unmergeable(f"the sizes of {steps[0].op} differ between the calls")
        return docs[0]

    def _written_op(self, calls, steps, tensors: list):
        """An operation's right-hand side with its sizes as the plan wrote them (`x.view(N, self.groups,
        C // self.groups, H, W)`), where that gives every call's values; None where it does not."""
        step = steps[0]
        spec = OPS.get(step.op)
        if spec is None or self.stmt is None:
            return None
        options = [a for a in self.stmt.call.args if not (a.name is None and isinstance(a.value, n.Name)
                                                           and a.value.id in self.fwd.tensors)]
        written = _op_written(spec, options)
        args: dict = {}
        for k, v in step.item.args.items():
            e = written.get(k)
            if k[0] == "_" or e is None:
                if not all(equal(st.item.args[k], v) for st in steps[1:]) or _has_symbols(v):
                    return None
                args[k] = v
                continue
            e = fold(e, self.consts)
            try:
                if not all(equal(interp(e, c.env), st.item.args[k]) for c, st in zip(calls, steps, strict=True)):
                    return None
            except (Unmergeable, ArithmeticError, TypeError):
                return None
            known = set(self.args_by_plan()) | set(self.dim_at)
            if not names_in(e) <= known:
                return None
            names = {x: self._forward_name(x) for x in names_in(e)}
            if spec.star and k == spec.arg_names[0] and isinstance(e, n.Tuple):  # spread: x.view(N, C, H, W)
                args[k] = tuple(_Text(py(i, names)[0]) for i in e.items)
            else:
                args[k] = _Text(py(e, names)[0])
        self.ctx.uses_torch = self.ctx.uses_torch or spec.needs_torch
        return spec.emit(tensors, args, self._op_value)

    def _op_value(self, v) -> str:
        if isinstance(v, _Text):
            return v.text
        if isinstance(v, tuple) and any(isinstance(x, _Text) for x in v):
            items = [self._op_value(x) for x in v]
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        return value_source(v, self.ctx.expr)

    def _forward_name(self, name: str) -> str:
        """A plan name in forward: a block parameter kept as an attribute, or an input dim read from the input."""
        if name in self.args_by_plan():
            if name not in self.kept:
                self.kept[name] = self.flags.create(name)
            return f"self.{self.kept[name]}"
        if name not in self.bound:
            self.bound[name] = self.fwd.names.create(name)
        return self.bound[name]


class _Text:
    """An argument already written as Python (an operation's size as the plan wrote it)."""

    def __init__(self, text: str):
        self.text = text


def _op_written(spec, options) -> dict:
    """Argument name -> the expression the plan wrote for it; a `star` operation's positional sizes
    (`view(N, C, H, W)`) are its first argument's tuple."""
    positional = [a.value for a in options if a.name is None]
    out = {a.name: a.value for a in options if a.name is not None}
    names = list(spec.arg_names)
    if spec.star and names and (len(positional) > 1 or positional and not isinstance(positional[0], n.Tuple)):
        out[names[0]] = n.Tuple(tuple(positional), positional[0].span)
        return out
    out.update(zip(names, positional, strict=False))
    return out


def _has_symbols(v) -> bool:
    if isinstance(v, (tuple, list)):
        return any(_has_symbols(x) for x in v)
    return isinstance(v, sympy.Basic) and bool(v.free_symbols)
