"""The value language of a plan: names, integer arithmetic (sympy built from the syntax tree,
never from text), conditions and the other literals an argument can hold.

Integers are sympy expressions of the plan's sizes; conditions must be decidable when the
plan is checked, since they decide its structure.
"""

from __future__ import annotations

import fractions
import math
import operator
from dataclasses import replace

import sympy

from . import nodes as n
from .errors import Edit, Fix, Span, did_you_mean, rename_fix
from .scope import Made, Skip, State, Tensor, Value, check_name
from .shapes import ceildiv, decide_at_least, equal, equal_condition, floordiv, mod, pyrepr, to_expr

MAX_INT_DIGITS = 18  # as for literals (nodebuilders.py)
_INT_LIMIT = 10**MAX_INT_DIGITS
MAX_EXPONENT = 64  # of `**`: 2**i for the dilations of a deep stack, not towers

_MISSING = object()
_INT_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
                ">=": operator.ge}


class Values:
    def __init__(self, st: State):
        self.st = st
        self.diag = st.diag
        self.functions = None  # functions.Functions: the file's `def`s (set by the walker)

    # -- names -------------------------------------------------------------------------

    def lookup(self, name: n.Name):
        value = self.diag.frames[-1].names.get(name.id, _MISSING)  # self.st.frame's
        if value is _MISSING:
            unnamed = name.id == "x" and self.st.frame.block is not None  # a plan's unnamed input is `x`
            self.diag.error("E107", f"unknown name {name.id!r}", name.span,
                            hints=[did_you_mean(name.id, list(self.st.frame.names)),
                                   "a block's input has a name only if it is given one: `input x [...]`"
                                   if unnamed else None],
                            fixes=[rename_fix(name.id, list(self.st.frame.names), name.span)])
            raise Skip
        return value

    # -- any value ---------------------------------------------------------------------

    def eval(self, expr, what: str):
        """Any argument value: a sympy int, bool, float, str, None or a tuple of them."""
        if type(expr) is n.Num:  # `Stage(64, blocks=3)`: `int` below, without the checks before it
            return sympy.Integer(expr.value)
        if isinstance(expr, n.Name):
            value = self.lookup(expr)
            if isinstance(value, Tensor):
                self.diag.error("E241", f"{expr.id!r} is a tensor; it cannot be {what}", expr.span)
                raise Skip
            return value
        if isinstance(expr, (n.Str, n.Const, n.Float)):
            return expr.value
        if isinstance(expr, n.Tuple):
            return tuple(self.eval(e, what) for e in expr.items)
        if isinstance(expr, n.IfExp):
            return self.eval(expr.then if self.truth(expr.cond) else expr.orelse, what)
        if isinstance(expr, (n.Compare, n.BoolOp, n.Not)):
            return self.truth(expr)
        if isinstance(expr, (n.Float, n.Call, n.BinOp, n.Neg)):  # a float stays one: `0.9 * w`, `max(0.1, p)`, `-0.5`
            value = self.number(expr, what)
            return value if isinstance(value, float) else self.integer(value, expr, what)
        return self.int(expr, what)

    def lower(self, expr):
        """Syntax with parameter values put in: what a layer argument's checks read."""
        if isinstance(expr, n.Name):
            value = self.st.frame.names.get(expr.id, _MISSING)
            if isinstance(value, Tensor):
                self.diag.error("E241", f"{expr.id!r} is a tensor; it cannot be a layer argument", expr.span,
                                hints=["tensors come first: Layer(x, ...)"])
                raise Skip
            if value is _MISSING or isinstance(value, sympy.Basic):
                return expr
            return _literal(value, expr.span)
        if isinstance(expr, n.Tuple):
            return replace(expr, items=tuple(self.lower(e) for e in expr.items))
        if isinstance(expr, n.IfExp):
            return self.lower(expr.then if self.truth(expr.cond) else expr.orelse)
        if isinstance(expr, (n.Compare, n.BoolOp, n.Not)):
            return n.Const(self.truth(expr), expr.span)
        return expr

    def expected(self, name: str, what: str, expr: n.Expr, hint: str | None = None, fix=None):
        """E106: `name` must be `what`, and the value written is not (`fix`: the hint as an edit)."""
        self.diag.error("E106", f"{name} must be {what}, got {_describe(expr)}", expr.span, hints=[hint],
                        fixes=[fix])
        raise Skip

    # -- conditions ----------------------------------------------------------------------

    def truth(self, expr) -> bool:
        """A condition's value; structure must be decidable, so an undecided one is an error."""
        if isinstance(expr, n.BoolOp):
            left = self.truth(expr.left)
            if left == (expr.op == "or"):
                return left
            return self.truth(expr.right)
        if isinstance(expr, n.Not):
            return not self.truth(expr.operand)
        if isinstance(expr, n.Compare):
            names = self.diag.frames[-1].names  # self.st.frame's
            operands = expr.operands
            if len(operands) == 2:  # `C != planes * 4` (nearly every condition): Python ints, no sympy, no list
                left = _whole(operands[0], names)
                right = _whole(operands[1], names) if left is not None else None
                if right is not None:
                    return _INT_COMPARE[expr.ops[0]](left, right)
            else:
                known = [_whole(e, names) for e in operands]
                if None not in known:
                    return all(_INT_COMPARE[op](known[i], known[i + 1]) for i, op in enumerate(expr.ops))
            values = [self.eval(e, "compared") for e in expr.operands]
            for i, op in enumerate(expr.ops):
                if not self._compare(values[i], op, values[i + 1], expr):
                    return False
            return True
        value = self.eval(expr, "a condition")
        if isinstance(value, sympy.Basic):  # a number is true when it is not 0
            zero = equal(value, 0)
            if zero is None:
                self.undecidable(expr, value, "a condition")
            return not zero
        return bool(value)

    def _compare(self, a, op: str, b, expr) -> bool:
        if isinstance(a, sympy.Integer) and isinstance(b, sympy.Integer):  # `stride != 1`: no sympy condition
            return _INT_COMPARE[op](int(a), int(b))
        if isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic):
            same = {sympy.true: True, sympy.false: False}.get(equal_condition(a, b)) if op in ("==", "!=") else None
            verdict = {"==": lambda: same, "!=": lambda: _negate(same),
                       "<": lambda: decide_at_least(b - a, 1), "<=": lambda: decide_at_least(b - a, 0),
                       ">": lambda: decide_at_least(a - b, 1), ">=": lambda: decide_at_least(a - b, 0)}[op]()
            return self._decide(sympy.Rel(a, b, op) if verdict is None else verdict, expr)
        if isinstance(a, float) or isinstance(b, float):  # as Python compares: sympy's Float(1.0) is not 1
            a, b = (self._concrete(v, expr) if isinstance(v, sympy.Basic) else v for v in (a, b))
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if all(isinstance(v, (float, int, sympy.Integer)) and not isinstance(v, bool) for v in (a, b)):
            return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
        self.diag.error("E231", f"cannot order {what_is(a)} and {what_is(b)} with {op}", expr.span)
        raise Skip

    def _decide(self, cond, expr) -> bool:
        if cond is True or cond is sympy.true:
            return True
        if cond is False or cond is sympy.false:
            return False
        self.undecidable(expr, cond, "a condition")

    def undecidable(self, expr, value, what: str):
        """E230: `what` (a condition, a repeat count, a merge's dim) depends on a size without a value."""
        names = sorted(s.name for s in to_expr(value).free_symbols)
        shown = ", ".join(names)
        why = (f"{shown} is a size without a value" if pyrepr(value) == shown
               else f"{pyrepr(value)} depends on {shown}")  # not "L depends on L"
        self.diag.error("E230", f"{what} must be known when the plan is checked, but {why}", expr.span,
                        hints=[f"give {shown} a value (`--set {names[0]}=...`), or decide on parameters and "
                               "channel counts" if names else None])
        raise Skip

    # -- integers ------------------------------------------------------------------------

    def int(self, expr: n.Expr, what: str) -> sympy.Expr:
        if isinstance(expr, n.Num):
            return sympy.Integer(expr.value)
        if isinstance(expr, n.Name):
            value = self.lookup(expr)
            if isinstance(value, sympy.Basic):
                return value
            if isinstance(value, Tensor):
                self.diag.error("E241", f"{expr.id!r} is a tensor; it cannot be {what}", expr.span)
                raise Skip
            self.expected(what, "an integer", self.lower(expr))
        if isinstance(expr, (n.Call, n.Float)) or isinstance(expr, n.BinOp) and expr.op == "/":
            return self.integer(self.number(expr, what), expr, what)
        if isinstance(expr, Value):
            return expr.value
        if isinstance(expr, n.IfExp):
            return self.int(expr.then if self.truth(expr.cond) else expr.orelse, what)
        if isinstance(expr, n.Unknown):
            if not what.isidentifier():
                self.diag.error("E311", f"a `?` unknown can stand only for a layer argument, not {what}", expr.span)
                raise Skip
            if expr.name is not None and not check_name(self.diag, expr.name, expr.span, "`?` name"):
                raise Skip
            sym = self.st.unknowns.new(expr, what)
            self.st.trace.append(Made(self.st.frame.file, expr.span, sym=sym))
            return sym
        if isinstance(expr, n.Neg):
            return -self.int(expr.operand, what)
        if isinstance(expr, n.BinOp):
            known = _whole(expr, self.diag.frames[-1].names)  # `planes * 4`: Python ints, no sympy
            if known is not None:
                return sympy.Integer(known)
            left, right = self.int_or_float(expr.left, what), self.int_or_float(expr.right, what)
            if isinstance(left, float) or isinstance(right, float):  # `C * 0.5`: Python's float, then an int?
                return self.integer(self._float_op(expr, left, right), expr, what)
            return self._bounded(expr, self._binop(expr, left, right))
        self.expected(what, "an integer", expr)

    def int_or_float(self, expr, what: str):
        """An integer, or a float where one is written or named (`w * 0.75`, a float parameter)."""
        if isinstance(expr, n.Name):
            value = self.st.frame.names.get(expr.id)
            if isinstance(value, float) and not isinstance(value, bool):
                return value
        if isinstance(expr, n.Neg):
            value = self.int_or_float(expr.operand, what)
            return -value
        if isinstance(expr, n.IfExp):  # `int(7.5 if wide else 1.5)`: the branch taken, a float kept as Python keeps it
            return self.int_or_float(expr.then if self.truth(expr.cond) else expr.orelse, what)
        return self.number(expr, what) if isinstance(expr, (n.Float, n.Call, n.BinOp)) else self.int(expr, what)

    # -- numbers: floats and the size functions, with Python's semantics ------------------------

    def number(self, expr, what: str):
        """A sympy integer (or a ratio, from `/` of sizes without values) or a Python float."""
        if isinstance(expr, n.Float):
            return expr.value
        if isinstance(expr, n.Call):
            return self._call(expr, what)
        if isinstance(expr, n.BinOp):
            known = _whole(expr, self.diag.frames[-1].names)  # `planes * 4`: Python ints, no sympy
            if known is not None:
                return sympy.Integer(known)
            left, right = self.int_or_float(expr.left, what), self.int_or_float(expr.right, what)
            if isinstance(left, float) or isinstance(right, float):
                return self._float_op(expr, left, right)
            if expr.op == "/":
                return self._divide(expr, left, right)
            return self._bounded(expr, self._binop(expr, left, right))
        return self.int_or_float(expr, what)

    def integer(self, value, expr, what: str) -> sympy.Expr:
        """`value` where an integer must stand: a float or a ratio is refused, with the functions that round."""
        if isinstance(value, sympy.Basic) and value.is_integer:
            return value
        shown = repr(value) if isinstance(value, float) else pyrepr(value)
        self.diag.error("E106", f"{what} must be an integer, got {shown}", expr.span,
                        hints=["round it as Python would: round(...), floor(...), ceil(...) or int(...)",
                               "`//` divides integers, `/` gives a float" if _has_div(expr) else None],
                        fixes=[self._floor_division(expr)])
        raise Skip

    def _floor_division(self, expr) -> Fix | None:
        """`a / b` -> `a // b`, as an edit of the operator (found between the operands, on their line)."""
        if not (isinstance(expr, n.BinOp) and expr.op == "/") or expr.left.span.end_line != expr.right.span.line:
            return None
        line = expr.right.span.line
        text = self.st.frame.source.splitlines()[line - 1]
        at = text.find("/", expr.left.span.end_col - 1, expr.right.span.col - 1)
        return Fix("write '//'", (Edit(Span(line, at + 1, line, at + 2), "//"),)) if at >= 0 else None

    def _concrete(self, value, expr):
        """A Python int or float, for arithmetic with a float: a size without a value cannot take part."""
        if isinstance(value, float):
            return value
        if value.is_Integer:
            return int(value)
        self.undecidable(expr, value, "a computation with a float")

    def _float_op(self, expr: n.BinOp, left, right) -> float:
        a, b = self._concrete(left, expr.left), self._concrete(right, expr.right)
        if expr.op in ("/", "//", "%") and b == 0:
            self.diag.error("E109", f"{expr.op} by {b!r}: division by zero", expr.right.span)
            raise Skip
        try:
            value = {"+": a.__add__, "-": a.__sub__, "*": a.__mul__, "/": a.__truediv__, "//": a.__floordiv__,
                     "%": a.__mod__, "**": a.__pow__}[expr.op](b)
            if value is NotImplemented:  # int <op> float: Python asks the float (2 ** 1e12 overflows there)
                value = {"+": b.__radd__, "-": b.__rsub__, "*": b.__rmul__, "/": b.__rtruediv__,
                         "//": b.__rfloordiv__, "%": b.__rmod__, "**": b.__rpow__}[expr.op](a)
        except ZeroDivisionError:  # 0.0 ** -1: Python refuses it as a division by zero
            self.diag.error("E109", f"{a!r} ** {b!r}: zero to a negative power is a division by zero", expr.span)
            raise Skip from None
        except OverflowError:
            value = math.inf
        if isinstance(value, complex):  # (-1) ** 0.5
            self.diag.error("E005", f"({a!r}) ** {b!r} is a complex number, not a size", expr.span,
                            hints=["a negative number to a fractional power has no real value"])
            raise Skip
        if not isinstance(value, float) or not math.isfinite(value):
            self.diag.error("E005", f"this value is out of range ({value!r})", expr.span)
            raise Skip
        return value

    def _divide(self, expr: n.BinOp, left, right):
        """`/` as Python: a float for numbers; for sizes without values, the exact ratio, which only
        floor/ceil/int/round (or an integer result) may take."""
        if right.is_Integer and right == 0:
            self.diag.error("E109", "/ by 0: division by zero", expr.right.span)
            raise Skip
        if left.is_Integer and right.is_Integer:
            return int(left) / int(right)
        if not right.is_Integer:
            self.diag.error("E108", f"the divisor of / must be a constant here, got {pyrepr(right)}", expr.right.span)
            raise Skip
        return left / right

    def _call(self, call: n.Call, what: str):
        name = call.name
        if name not in n.SIZE_FUNCTIONS:
            src = self.st.frame.namespace.get(name)
            if src is not None and isinstance(src.definition, n.FunctionDef):
                return self.functions.call(call, src)
            defined = [k for k, v in self.st.frame.namespace.items() if isinstance(v.definition, n.FunctionDef)]
            functions = ", ".join((*n.SIZE_FUNCTIONS, *defined))
            self.diag.error("E113", f"{name!r} is not a function of sizes; they are {functions}", call.name_span,
                            hints=[did_you_mean(name, (*n.SIZE_FUNCTIONS, *defined)),
                                   "a layer is called on its own line, or as `h = Layer(...)`",
                                   "define one in the file: `def name(a, b):` with `return expr`"])
            raise Skip
        for arg in call.args:
            if arg.name is not None:
                self.diag.error("E113", f"{name}() takes no keyword arguments here, got {arg.name}=", arg.span)
                raise Skip
        values = [self.number(a.value, f"{name}()'s argument") for a in call.args]
        counts = {"max": (2, None), "min": (2, None), "round": (1, 2)}.get(name, (1, 1))
        if len(values) < counts[0] or counts[1] is not None and len(values) > counts[1]:
            wanted = {(2, None): "at least 2 arguments", (1, 2): "1 or 2 arguments", (1, 1): "1 argument"}[counts]
            self.diag.error("E113", f"{name}() takes {wanted}, got {len(values)}", call.span)
            raise Skip
        return getattr(self, f"_{name}")(call, values)

    def _max(self, call, values):
        return self._extreme(call, values, max, sympy.Max)

    def _min(self, call, values):
        return self._extreme(call, values, min, sympy.Min)

    def _extreme(self, call, values, python, symbolic):
        if any(isinstance(v, float) for v in values) or all(v.is_Number for v in values):
            result = python(self._concrete(v, a.value) for v, a in zip(values, call.args, strict=True))
            return result if isinstance(result, float) else sympy.Integer(result)
        return symbolic(*values)

    def _floor(self, call, values):
        return self._rounded(call, values[0], math.floor, lambda p, q: floordiv(p, q))

    def _ceil(self, call, values):
        return self._rounded(call, values[0], math.ceil, ceildiv)

    def _int(self, call, values):
        value = values[0]  # toward zero: the floor of a ratio of sizes known not to be negative
        return self._rounded(call, value, int, floordiv if getattr(value, "is_nonnegative", False) else None)

    def _round(self, call, values):
        if len(values) == 2:  # round(x, ndigits): Python's, on numbers with values
            x, digits = (self._concrete(v, a.value) for v, a in zip(values, call.args, strict=True))
            if not isinstance(digits, int):
                self.diag.error("E106", f"round()'s ndigits must be an integer, got {digits!r}", call.args[1].span)
                raise Skip
            result = round(x, digits)
            return result if isinstance(result, float) else sympy.Integer(result)
        return self._rounded(call, values[0], round, None)  # half to even: no floor rule for sizes

    def _rounded(self, call, value, python, ratio):
        """An integer from a float (Python's function) or from an exact ratio p/q of sizes (`ratio`)."""
        if isinstance(value, float):
            return sympy.Integer(python(value))
        if value.is_integer:
            return value
        if value.is_Rational:
            return sympy.Integer(python(fractions.Fraction(int(value.p), int(value.q))))
        p, q = sympy.fraction(sympy.together(value))
        if ratio is not None and q.is_Integer and q > 0 and p.is_integer:
            return ratio(p, q)
        self.undecidable(call, value, f"{call.name}() of a ratio")

    def _binop(self, expr: n.BinOp, left, right):
        if expr.op == "+":
            return left + right
        if expr.op == "-":
            return left - right
        if expr.op == "*":
            return left * right
        if expr.op == "**":
            return self._power(expr, left, right)
        if not right.is_Integer:
            self.diag.error("E108", f"the divisor of {expr.op} must be a constant here, got {pyrepr(right)}",
                            expr.right.span)
            raise Skip
        if right <= 0:
            self.diag.error("E109", f"{expr.op} by {pyrepr(right)}: the divisor must be positive", expr.right.span)
            raise Skip
        return floordiv(left, right) if expr.op == "//" else mod(left, right)

    def _power(self, expr: n.BinOp, base, exponent):
        """`base ** exponent` for a constant exponent in 0..MAX_EXPONENT, so that sizes stay integers; an
        integer power is sized from its logarithm before it is computed (10**10**9 would never finish)."""
        if not exponent.is_Integer or not 0 <= exponent <= MAX_EXPONENT:
            self.diag.error("E111", f"the exponent of ** must be a constant from 0 to {MAX_EXPONENT} here, got "
                            f"{pyrepr(exponent)}", expr.right.span,
                            hints=["a negative power is no integer" if exponent.is_Integer and exponent < 0 else
                                   "write a number, a parameter with a value or a repeat index there"])
            raise Skip
        if base.is_Integer and abs(base) > 1 and int(exponent) * math.log10(abs(int(base))) > MAX_INT_DIGITS + 1:
            self.diag.error("E005", f"this value has more than {MAX_INT_DIGITS} digits", expr.span)
            raise Skip
        return base ** exponent

    def _bounded(self, expr: n.BinOp, value):
        """Products of literals could build integers sympy and str() choke on: keep them to 18 digits."""
        if type(value) is sympy.Integer and -_INT_LIMIT < value.p < _INT_LIMIT:  # `planes * 4`: no sympy abs/compare
            return value
        if value.is_Integer and abs(value) >= 10**MAX_INT_DIGITS:
            self.diag.error("E005", f"this value has more than {MAX_INT_DIGITS} digits", expr.span)
            raise Skip
        return value


_WHOLE_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}


def _whole(expr, names: dict) -> int | None:
    """The value of an integer expression whose every name holds a whole number (a sympy Integer), computed with
    Python ints, as sympy computes it (`//` and `%` floor as sympy's do); None for anything else (a size without
    a value, a float, `/` or `**`, a divisor that is not positive, a result past 18 digits, an unknown name),
    which the general path works out or reports."""
    kind = type(expr)
    if kind is n.Num:
        return expr.value
    if kind is n.Name:
        value = names.get(expr.id)
        return int(value.p) if isinstance(value, sympy.Integer) else None
    if kind is n.BinOp:
        op = _WHOLE_OPS.get(expr.op)
        if op is None:
            return None
        left = _whole(expr.left, names)
        if left is None:
            return None
        right = _whole(expr.right, names)
        if right is None or right <= 0 and expr.op in ("//", "%"):
            return None
        value = op(left, right)
        return value if -_INT_LIMIT < value < _INT_LIMIT else None
    if kind is n.Neg:
        value = _whole(expr.operand, names)
        return None if value is None else -value
    return None


def _has_div(expr) -> bool:
    return isinstance(expr, n.BinOp) and (expr.op == "/" or _has_div(expr.left) or _has_div(expr.right))


def _negate(verdict):
    return None if verdict is None else not verdict


def _literal(value, span):
    if isinstance(value, tuple):
        return n.Tuple(tuple(_literal(v, span) for v in value), span)
    if isinstance(value, sympy.Basic):
        return Value(value, span)
    if isinstance(value, float):
        return n.Float(value, span)
    if isinstance(value, str):
        return n.Str(value, span)
    return n.Const(value, span)


def _describe(expr: n.Expr) -> str:
    if isinstance(expr, n.Unknown):
        return "an unknown `?`"
    if isinstance(expr, n.Str):
        return f"the string {expr.value!r}"
    if isinstance(expr, n.Const):
        return repr(expr.value)
    if isinstance(expr, n.Float):
        return f"the number {expr.value!r}"
    if isinstance(expr, n.Tuple):
        return f"a {len(expr.items)}-tuple"
    if isinstance(expr, n.Num):
        return str(expr.value)
    return "an expression"


def what_is(value) -> str:
    """`a tensor`, `a number (L//2)`, `str 'same'`: a value, for a message."""
    if isinstance(value, Tensor):
        return "a tensor"
    if isinstance(value, sympy.Basic):
        return f"a number ({pyrepr(value)})"
    return f"{type(value).__name__} {value!r}"
