"""Size functions a plan file defines, `def make_divisible(v, divisor, min_value=None): ...`, called
in any value (`Conv2d(make_divisible(32 * width, 8))`) of the file's plan and blocks and of the files
that import them.

A def's body is the value language only (the parser refuses anything else): `name = expr`, `if` /
`elif` / `else` and `return`, evaluated by values.py when the plan is checked, so every result is an
exact sympy integer (or a Python float) like any other value, and nothing of a def reaches generated
code but the numbers it computed.  A call runs in a frame of its own: it sees its parameters and its
own names, never the caller's, and problems inside it are located in its file with a note for the call.
"""

from __future__ import annotations

import sympy

from . import nodes as n
from .arguments import Binder, Callee
from .scope import Frame, Skip, State, check_name
from .values import Values

MAX_CALL_DEPTH = 32  # nested calls, recursion included (as blocks: blockcall.MAX_BLOCK_DEPTH)
MAX_CALLS = 100_000  # calls in one check, as walker.MAX_STEPS: depth alone lets a def that calls itself twice
# a step make 2**32 calls (hours); this many take about 3 s

_FELL_OFF = object()


class Functions:
    def __init__(self, st: State, values: Values, binder: Binder):
        self.st, self.values, self.binder, self.diag = st, values, binder, st.diag
        self.depth = 0
        self.calls = 0

    def call(self, call: n.Call, src):
        """The value of `call` to the def in `src` (a scope.BlockSource holding a FunctionDef)."""
        fn: n.FunctionDef = src.definition
        callee = Callee("function", fn.name, tuple(p.name for p in fn.params),
                        tuple(p.name for p in fn.params if p.default is None))
        bound = self.binder.match(callee, call, call.args)
        given = {name: self.value(arg.value, f"{fn.name}()'s {name}") for name, arg in bound.items()}
        if self.depth >= MAX_CALL_DEPTH:
            self.diag.error("E261", f"size functions call each other more than {MAX_CALL_DEPTH} deep (does "
                            f"{fn.name} call itself without end?)", call.name_span,
                            hints=["a recursive def needs a condition that ends it: `return 1 if k == 0 else ...`"])
            raise Skip
        self.calls += 1
        if self.calls > MAX_CALLS:
            self.diag.error("E261", f"size functions ran more than {MAX_CALLS:,} calls (does {fn.name} call itself "
                            "more than once a step?)", call.name_span,
                            hints=["name a value once and use the name (`a = f(k - 1)`), or compute it without "
                                   "recursion"])
            raise Skip
        caller = self.st.frame
        note = (f"in function {fn.name}, called here", call.span, caller.file, caller.source)
        frame = Frame({}, src.namespace, src.file, src.source, notes=(note, *caller.notes))
        self.diag.frames.append(frame)
        self.depth += 1
        try:
            for p in fn.params:
                frame.names[p.name] = given[p.name] if p.name in given else self.value(p.default, p.name)
            result = self._run(fn.body)
            if result is _FELL_OFF:
                self.diag.error("E114", f"function {fn.name} ends without `return` here", fn.name_span,
                                hints=["every path through a def ends in `return expr`"])
                raise Skip
        finally:
            self.depth -= 1
            self.diag.frames.pop()
        return result

    def value(self, expr, what: str):
        """A number as values.py computes it (a float stays one; a ratio of sizes waits for floor/ceil/int);
        other values (None, True, a string, a tuple) as written."""
        if isinstance(expr, (n.Float, n.Call, n.BinOp, n.Neg)):
            return self.values.number(expr, what)
        return self.values.eval(expr, what)

    def _run(self, body):
        frame = self.st.frame
        for stmt in body:
            if isinstance(stmt, n.Let):
                if check_name(self.diag, stmt.name, stmt.name_span, "name"):
                    frame.names[stmt.name] = self.value(stmt.value, stmt.name)
            elif isinstance(stmt, n.If):
                result = self._run(stmt.body if self.values.truth(stmt.cond) else stmt.orelse)
                if result is not _FELL_OFF:
                    return result
            elif isinstance(stmt, n.Return):
                return self._number(self.value(stmt.value, "the value returned"), stmt)
        return _FELL_OFF

    def _number(self, value, stmt: n.Return):
        # a condition, not a number; a Symbol is a Boolean too (sympy lets one stand in logic), and an Expr
        boolean = isinstance(value, sympy.logic.boolalg.Boolean) and not isinstance(value, sympy.Expr)
        if isinstance(value, float) or isinstance(value, sympy.Basic) and not boolean:
            return value
        self.diag.error("E114", f"a size function returns a number, got {value!r}", stmt.value.span)
        raise Skip
