"""The plan's expressions in a block's class: evaluated per call (as the checker evaluates them, so
that each call's value can be confirmed) and printed as Python.  Only the syntax tree is read:
no plan text is evaluated; names are printed through the map the caller gives.
"""

from __future__ import annotations

from dataclasses import fields

import sympy

from . import nodes as n
from .pysource import ADD, AND, ATOM, CMP, MUL, NOT, OR, POW, UNARY, float_literal, str_literal
from .shapes import floordiv, mod


class Unmergeable(Exception):
    """The calls of a block need a class per variant; the message says why."""


# -- the plan's expressions: evaluated per call, printed as Python ---------------------------

IFEXP = OR - 1
_BINOPS = {"+": ADD, "-": ADD, "*": MUL, "//": MUL, "%": MUL, "**": POW}


def interp(e, env: dict):
    """The value of expression `e` with the plan's names in `env`, as the checker computes it,
    for the expressions `py` can print (others: Unmergeable)."""
    if isinstance(e, (n.Num, n.Float, n.Str, n.Const)):
        return e.value
    if isinstance(e, n.Name):
        if e.id not in env:
            raise Unmergeable(f"{e.id!r} has no value here")
        return plain(env[e.id])
    if isinstance(e, n.Neg):
        return -interp(e.operand, env)
    if isinstance(e, n.Tuple):
        return tuple(interp(i, env) for i in e.items)
    if isinstance(e, n.BinOp) and e.op in _BINOPS:
        a, b = interp(e.left, env), interp(e.right, env)
        if e.op in ("//", "%") and not _concrete(a) and isinstance(b, int) and b > 0:  # as the checker writes it
            return (floordiv if e.op == "//" else mod)(a, sympy.Integer(b))
        if e.op in ("//", "%", "**") and not (_concrete(a) and _concrete(b)):
            raise Unmergeable("a symbolic size in // % **")
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "//": lambda: a // b,
                "%": lambda: a % b, "**": lambda: a**b}[e.op]()
    if isinstance(e, n.Compare):
        values = [interp(o, env) for o in e.operands]
        return all(_compare(op, a, b) for op, a, b in zip(e.ops, values, values[1:], strict=False))
    if isinstance(e, n.BoolOp):
        a = _truth(interp(e.left, env))
        if (e.op == "and") != a:
            return a
        return _truth(interp(e.right, env))
    if isinstance(e, n.Not):
        return not _truth(interp(e.operand, env))
    if isinstance(e, n.IfExp):
        return interp(e.then if _truth(interp(e.cond, env)) else e.orelse, env)
    if isinstance(e, n.Call) and e.name in ("max", "min") and e.args and all(a.name is None for a in e.args):
        values = [interp(a.value, env) for a in e.args]
        if not all(_concrete(v) for v in values):
            raise Unmergeable("max or min of a symbolic size")
        return (max if e.name == "max" else min)(values)
    if isinstance(e, n.Call) and e.name in ("round", "int") and 1 <= len(e.args) <= (2 if e.name == "round" else 1) \
            and all(a.name is None for a in e.args):
        values = [interp(a.value, env) for a in e.args]
        if not all(_concrete(v) for v in values):
            raise Unmergeable(f"{e.name} of a symbolic size")
        return (round if e.name == "round" else int)(*values)
    raise Unmergeable(f"cannot write {type(e).__name__} in Python")


def _compare(op: str, a, b) -> bool:
    """`a op b`; on sizes with symbols only where the answer holds for every size (as the checker decides)."""
    if _concrete(a) and _concrete(b):
        return {"==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b, "<=": lambda: a <= b,
                ">": lambda: a > b, ">=": lambda: a >= b}[op]()
    if not all(isinstance(v, (int, sympy.Basic)) and not isinstance(v, bool) for v in (a, b)):
        raise Unmergeable("a condition on a symbolic size")
    diff = sympy.expand(sympy.Integer(a) - b if isinstance(a, int) else a - b)
    if op in ("==", "!="):
        if diff == 0:
            return op == "=="
        if diff.is_number or (diff > 0) is sympy.true or (diff < 0) is sympy.true:
            return op == "!="
        raise Unmergeable("a condition on a symbolic size")
    verdict = sympy.Rel(diff, 0, op)
    if verdict in (sympy.true, sympy.false):
        return bool(verdict)
    raise Unmergeable("a condition on a symbolic size")


def _concrete(v) -> bool:
    return not isinstance(v, sympy.Basic)


def _truth(v) -> bool:
    if not _concrete(v):
        raise Unmergeable("a condition on a symbolic size")
    return bool(v)


def plain(v):
    """sympy integers as ints (tuples too): how values compare and print."""
    if isinstance(v, tuple):
        return tuple(plain(x) for x in v)
    if isinstance(v, sympy.Basic) and v.is_Integer:
        return int(v)
    return v


def equal(a, b) -> bool:
    """The same value of the same type (1 is not 1.0 or True: torch may care)."""
    a, b = plain(a), plain(b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic):
        return a == b or sympy.expand(a - b) == 0
    return type(a) is type(b) and a == b


def py(e, names: dict) -> tuple[str, int]:
    """(Python source, precedence level) of expression `e`; `names` maps each plan name to its
    Python text (an argument, a local, or a literal for a loop index)."""
    if isinstance(e, n.Num):
        return str(e.value), ATOM
    if isinstance(e, n.Float):
        return float_literal(e.value), ATOM
    if isinstance(e, n.Str):
        return str_literal(e.value), ATOM
    if isinstance(e, n.Const):
        return repr(e.value), ATOM
    if isinstance(e, n.Name):
        if e.id not in names:
            raise Unmergeable(f"{e.id!r} is not known in the class")
        text = names[e.id]
        return text, (UNARY if text.startswith("-") else ATOM)
    if isinstance(e, n.Neg):
        inner = e.operand
        level = POW + 1 if isinstance(inner, n.BinOp) and inner.op == "**" else UNARY
        return "-" + _wrap(inner, names, level), UNARY
    if isinstance(e, n.Tuple):
        items = [_wrap(i, names, IFEXP) for i in e.items]
        return (f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"), ATOM
    if isinstance(e, n.BinOp) and e.op in _BINOPS:
        level = _BINOPS[e.op]
        if e.op == "**":
            simple = all(isinstance(x, (n.Name, n.Num)) for x in (e.left, e.right))
            left, right = _wrap(e.left, names, POW + 1), _wrap(e.right, names, UNARY)
            return (f"{left}**{right}" if simple else f"{left} ** {right}"), POW
        return f"{_wrap(e.left, names, level)} {e.op} {_wrap(e.right, names, level + 1)}", level
    if isinstance(e, n.Compare):
        parts = [_wrap(o, names, CMP + 1) for o in e.operands]
        return parts[0] + "".join(f" {op} {p}" for op, p in zip(e.ops, parts[1:], strict=True)), CMP
    if isinstance(e, n.BoolOp):
        level = AND if e.op == "and" else OR
        return f"{_wrap(e.left, names, level)} {e.op} {_wrap(e.right, names, level + 1)}", level
    if isinstance(e, n.Not):
        return "not " + _wrap(e.operand, names, NOT), NOT
    if isinstance(e, n.IfExp):
        return (f"{_wrap(e.then, names, OR)} if {_wrap(e.cond, names, OR)} else "
                f"{_wrap(e.orelse, names, IFEXP)}"), IFEXP
    if isinstance(e, n.Call) and e.name in ("max", "min", "round", "int") and e.args and \
            all(a.name is None for a in e.args):
        return f"{e.name}({', '.join(_wrap(a.value, names, IFEXP) for a in e.args)})", ATOM
    raise Unmergeable(f"cannot write {type(e).__name__} in Python")


def fold(e, consts: dict):
    """`e` with the loop indices of an unrolled repeat as numbers, and what they decide decided:
    `stride if i == 0 else 1` is `stride` in the first iteration."""
    if not consts:
        return e
    if isinstance(e, n.Name) and e.id in consts:
        return n.Num(consts[e.id], e.span)
    if isinstance(e, n.IfExp):
        cond = fold(e.cond, consts)
        if isinstance(cond, (n.Num, n.Const)):
            return fold(e.then if cond.value else e.orelse, consts)
        return n.IfExp(cond, fold(e.then, consts), fold(e.orelse, consts), e.span)
    if isinstance(e, (n.BinOp, n.Compare, n.BoolOp, n.Not, n.Neg, n.Tuple, n.Call)):
        given = {f.name: getattr(e, f.name) for f in fields(e)}  # (not the parser's own `_depth`)
        parts = {k: (tuple(fold(x, consts) for x in v) if isinstance(v, tuple) else fold(v, consts))
                 for k, v in given.items() if k != "span" and not isinstance(v, str)}
        folded = type(e)(**{**given, **parts})
        if isinstance(folded, n.BoolOp):  # `i == 0 and down` at i = 0: `down`, not `True and down`
            for side, other in ((folded.left, folded.right), (folded.right, folded.left)):
                if isinstance(side, n.Const) and isinstance(side.value, bool):
                    decides = side.value is (folded.op == "or")
                    return side if decides else other
        if all(isinstance(x, (n.Num, n.Const)) for x in _operands(folded)):
            try:
                value = interp(folded, {})
            except (Unmergeable, ArithmeticError, TypeError):
                return folded
            if isinstance(value, bool):
                return n.Const(value, e.span)
            if isinstance(value, int) and value >= 0:
                return n.Num(value, e.span)
        return folded
    if isinstance(e, n.Arg):
        return n.Arg(e.name, fold(e.value, consts), e.span)
    return e


def _operands(e) -> list:
    """The expressions `e` is made of (not its operators: a Compare's `ops`, a BinOp's `op`)."""
    out = []
    for f in fields(e):
        v = getattr(e, f.name)
        if f.name == "span" or isinstance(v, str):
            continue
        for x in v if isinstance(v, tuple) else (v,):
            if not isinstance(x, str):
                out.append(x.value if isinstance(x, n.Arg) else x)
    return out


def _wrap(e, names: dict, level: int) -> str:
    text, prec = py(e, names)
    return f"({text})" if prec < level else text


# -- what a class is made of ---------------------------------------------------------------


def default_text(p: n.Param):
    """A parameter's default as a literal (value, source), or None where it is an expression."""
    e = p.default
    literal = (n.Num, n.Float, n.Str, n.Const)
    if e is None or not (isinstance(e, literal) or isinstance(e, n.Neg) and isinstance(e.operand, literal)
                         or isinstance(e, n.Tuple) and all(isinstance(i, literal) for i in e.items)):
        return None
    return interp(e, {}), py(e, {})[0]


def is_literal(values: list) -> bool:
    first = values[0]
    return all(equal(v, first) for v in values) and not _symbolic(first)


def _symbolic(v) -> bool:
    if isinstance(v, tuple):
        return any(_symbolic(x) for x in v)
    return isinstance(v, sympy.Basic) and bool(v.free_symbols)
