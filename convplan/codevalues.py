"""A value in a block's `__init__`: the expression the plan wrote where that gives every call's value,
else a name that has the value in every call (an input dim such as `C` becomes a constructor argument
the caller passes; the layer before's output), else a literal, else a constructor argument of its own.
"""

from __future__ import annotations

from .codeclasses import (
    NO_DEFAULT,
    Arg,
    Call,
    names_in,
)
from .codeexpr import Unmergeable, equal, fold, interp, is_literal, plain, py
from .pysource import value_source


class ValueWriter:
    """How a block's class writes its values (a mixin of codeblock.BlockWriter)."""

    def _let(self, name: str, value, calls: list[Call], init: list) -> None:
        for c in calls:
            try:
                c.env[name] = interp(value, c.env)
            except (Unmergeable, ArithmeticError, TypeError):
                c.env.pop(name, None)
        if not self.frozen and not self.consts and calls and len(calls) == len(self.calls) and \
                not all(name in c.env for c in calls) and all(isinstance(plain(c.known.get(name)), int) for c in calls):
            # a value the class cannot compute (a size function's): an argument each caller passes, `out=24`
            a = self.names[name] = self.local.create(name)
            self.args[a] = Arg("lifted", [c.known[name] for c in calls], NO_DEFAULT)
            self.lets.add(name)
            for c in calls:
                c.env[name] = c.known[name]
            return
        if self.frozen or not all(name in c.env for c in calls):
            self.lets.discard(name)
            self.names.pop(name, None) if name not in self.args_by_plan() else None
            return
        try:
            text = self.expr(value)
        except Unmergeable:
            self.lets.discard(name)
            return
        if name in self.args_by_plan():  # a parameter rebound: a local of its own
            self.names[name] = self.local.create(name)
        self.names.setdefault(name, self.local.create(name))
        self.lets.add(name)
        init.append(("let", self.names[name], text))

    def args_by_plan(self) -> set[str]:
        return {p.name for p in self.block.params}

    def expr(self, e, resolve: bool = True) -> str:
        """`e` in __init__'s names; an input dim it reads becomes a constructor argument (once resolved)."""
        names = {k: v for k, v in self.names.items() if k in self.args_by_plan() or k in self.lets}
        for d in self.dims:
            names[d] = self.dims[d] or f"\0{d}\0"
        text = py(fold(e, self.consts), names)[0]
        return self.resolve(text) if resolve else text

    def resolve(self, text: str) -> str:
        for d in [d for d in self.dims if f"\0{d}\0" in text]:
            text = text.replace(f"\0{d}\0", self._dim(d))
        return text

    def _dim(self, d: str) -> str:
        if not self.dims[d]:
            self.dims[d] = self.names[d] = self.local.create(d)
            self.args[self.dims[d]] = Arg("dim", [c.env[d] for c in self.calls], NO_DEFAULT)
        return self.dims[d]

    def value(self, calls: list[Call], values: list, written, hint: str, inferred: bool, lift: bool = True):
        if written is not None:
            try:
                text = self.expr(written, resolve=False)
                if all(equal(interp(written, c.env), v) for c, v in zip(calls, values, strict=True)):
                    text = self.resolve(text)
                    if names_in(written) - set(self.consts):  # `planes`, not `3`: what a later layer may take
                        self._remember(text, calls, values)
                    return text
            except (Unmergeable, ArithmeticError, TypeError):
                pass
        if not inferred and is_literal(values):
            return value_source(plain(values[0]), self.ctx.expr)
        for text, known in self._candidates(calls):
            if all(equal(k, v) for k, v in zip(known, values, strict=True)):
                text = self.resolve(text)
                self._remember(text, calls, values)
                return text
        if inferred and values and all(isinstance(v, tuple) and len(v) == 1 for v in values) \
                and not is_literal(values):  # LayerNorm's normalized_shape: `(C,)`
            return f"({self.value(calls, [v[0] for v in values], None, hint, inferred)},)"
        if is_literal(values):
            return value_source(plain(values[0]), self.ctx.expr)
        if not lift:
            raise Unmergeable(f"no name has the value of {hint}")
        return self._lift(calls, values, hint)

    def _remember(self, text: str, calls: list[Call], values: list) -> None:
        self.decided.append((text, {id(c): v for c, v in zip(calls, values, strict=True)}))

    def _candidates(self, calls: list[Call]):
        for text, known in reversed(self.decided):  # the layer before: in_channels is its out_channels
            if all(id(c) in known for c in calls):
                yield text, [known[id(c)] for c in calls]
        for d in self.dims:
            if all(d in c.env for c in calls):
                yield (self.dims[d] or f"\0{d}\0"), [c.env[d] for c in calls]
        for name in [*(p.name for p in self.block.params), *sorted(self.lets)]:
            if name in self.names and all(name in c.env for c in calls):
                yield self.names[name], [c.env[name] for c in calls]

    def _lift(self, calls: list[Call], values: list, hint: str) -> str:
        """A constructor argument of its own, which each caller passes."""
        if len(calls) != len(self.calls):
            raise Unmergeable(f"{hint} would be an argument that only some calls need")
        for a, arg in self.args.items():
            if arg.kind == "lifted" and all(equal(x, y) for x, y in zip(arg.values, values, strict=True)):
                return a
        a = self.local.create(hint)
        self.args[a] = Arg("lifted", list(values), NO_DEFAULT)
        return a
