"""Syntax tree -> shape graph.  Gives every name and argument its meaning, runs each
layer's shape rule, solves `?` unknowns from `->` assertions and collects requirements.
The structure around the layers (blocks, repeats, conditions, merges) is structure.py's.

All problems become diagnostics; independent ones (a typo on line 3 and one on line 9)
are reported together.  A layer that fails passes its input shape on, so later layers
are still checked.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import math
import re
from dataclasses import dataclass, field, replace

import sympy

from . import nodes as n
from .errors import MAX_REPORTED, Span, TooManyErrors, suggest
from .graph import Graph, Node, show_shape
from .hints import assertion_fixes, asymmetric_for_unknown, flatten_hint, inferred_given, source_text, torch_order_hint
from .layers import (
    ANY,
    BOOL,
    DIMS,
    FLOAT,
    INT,
    OPT_INT,
    OPT_SIZE,
    PAD,
    PADS,
    REGISTRY,
    REQUIRED,
    SCALE,
    SIZE,
    STR,
    LayerError,
    LayerSpec,
    Rule,
)
from .merges import MERGES
from .shapes import (
    at_least,
    combine_residues,
    dim,
    equal,
    equal_condition,
    floordiv,
    holds,
    mod,
    pinned,
    pyrepr,
    residues,
    to_expr,
    unknown,
)
from .solve import SolveError, solve
from .structure import Conds, Frame, ScopedCollector, Structure, Tensor, Value, _Abort
from .structure import Skip as _Skip

MAX_LAYERS = 10_000
MAX_NAME = 64
MAX_INT_DIGITS = 18  # as for literals (parser.py)
BATCH_NAMES = ("N", "B", "batch", "batch_size")  # a first dim so named is a batch, not a channel
MAX_EXPONENT = 64  # of `**`: 2**i for the dilations of a deep stack, not towers
SATISFY_WINDOW = 1024  # sizes searched past a lower bound for a merge's equality (E304)
MAX_DIM_DIGITS = 100  # derived formulas: 250 stride-2 stages make 2**250 (76 digits); str() fails at 4,300
BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True)
class Requirement:
    """A condition on the input sizes (and parameters) for the plan to be valid."""

    condition: sympy.Basic
    reason: str
    layer: str  # the node that needs it
    span: Span
    file: str = ""  # the file the span is in, when not the plan's own (a block from another file)

    def __str__(self) -> str:
        return pyrepr(self.condition)


@dataclass(frozen=True)
class Checked:
    graph: Graph
    requires: tuple[Requirement, ...]
    unknowns: dict  # name -> solved int
    env: dict  # plan parameter / size name -> sympy value
    symbols: tuple[str, ...]  # free symbol names, in order of appearance
    warnings: tuple
    library: dict = field(default_factory=dict)  # block name -> structure.BlockSource, as the plan sees them


class Checker(Structure):
    def __init__(self, plan: n.PlanDef, source: str, filename: str, sizes: dict[str, int] | None = None,
                 library: dict | None = None):
        self.plan, self.sizes = plan, dict(sizes or {})
        self.library = dict(library or {})
        self.diag = ScopedCollector(source, filename)
        self.taken: set[str] = set()  # node names
        self.max_nodes = MAX_LAYERS
        self.steps = 0  # statements run so far (structure.MAX_STEPS)
        self.env: dict[str, sympy.Basic] = {}
        self.symbols: list[str] = []
        self.unknowns: dict[sympy.Symbol, n.Unknown] = {}
        self.unsolvable: set = set()  # unknowns whose E321 is already reported
        self.solution: dict[sympy.Symbol, sympy.Integer] = {}
        self.conds = Conds(self.diag)  # (cond, message, node name, span, shape), each with its frame
        self.nodes: list[Node] = []
        self.tails: list = []  # (W310 warning, its condition): dropped if the requirements rule it out
        self.applied: dict = {}  # (kind, shape, args) -> (output shape, Rule, parameter count): see _apply

    # -- the plan ----------------------------------------------------------------------

    def run(self) -> Checked:
        self._name(self.plan.name, self.plan.name_span, "plan name")
        root = Frame({}, self.library, self.diag.file, self.diag.source)
        self.diag.frames.append(root)
        self._check_definitions()
        self._params()
        body = self.plan.body
        if not body or not isinstance(body[0], n.Input):
            span = body[0].span if body else self.plan.span
            self.diag.error("E200", "a plan starts with its input, e.g. `input [N, C, L]`", span)
            self.diag.raise_if_any()
        try:
            self._body(body)
        except (_Abort, TooManyErrors):
            self.diag.raise_if_any()
        for sym, unk in self.unknowns.items():
            if sym not in self.solution and sym not in self.unsolvable:
                self.diag.error("E310", f"nothing determines {_unknown_label(unk)}", unk.span,
                                hints=["add an `-> [shape]` assertion after this layer that fixes it"])
        outputs = root.outputs or ((root.current,) if root.current is not None else ())
        graph = Graph(tuple(self.nodes), tuple(t.id for t in outputs))
        graph = graph.substitute(self.solution)
        requires = self._requirements()
        self._drop_ruled_out_tails(requires)
        for name in self.sizes:
            if name not in self.env and name not in self.symbols:
                self.diag.error("E400", f"there is no size or parameter named {name!r} in plan {self.plan.name}",
                                self.plan.name_span, hints=[_did_you_mean(name, [*self.env, *self.symbols])])
        self.diag.raise_if_any()
        unknowns = {s.name[1:]: int(v) for s, v in self.solution.items()}
        return Checked(graph, requires, unknowns, dict(self.env), tuple(self.symbols), tuple(self.diag.warnings),
                       self.library)

    def _params(self) -> None:
        for p in self.plan.params:
            if p.name in self.env:
                self.diag.error("E201", f"parameter {p.name!r} is declared twice", p.span)
                continue
            ok = self._name(p.name, p.span, "parameter name")
            if p.name in self.sizes:
                value = sympy.Integer(self.sizes[p.name])
            elif p.default is not None:
                try:
                    value = self._int(p.default, "a parameter default")
                except _Skip:  # reported; a stand-in symbol keeps its uses from each saying "unknown name"
                    value = dim(p.name if ok else f"refused{len(self.env)}")
            else:
                value = dim(p.name if ok else f"refused{len(self.env)}")
            self.env[p.name] = value
            self.frame.names[p.name] = value

    def _name(self, name: str, span: Span, what: str) -> bool:
        """False (and an E202) for a name that could clash with Python in generated code."""
        problem = None
        if not name.isascii() or not name.isidentifier():
            problem = "is not an ASCII identifier"
        elif keyword.iskeyword(name) or keyword.issoftkeyword(name):
            problem = "is a Python keyword"
        elif name.startswith("__") and name.endswith("__"):
            problem = "is a dunder name"
        elif name in BUILTIN_NAMES:
            problem = "shadows a Python builtin"
        elif len(name) > MAX_NAME:
            problem = f"is longer than {MAX_NAME} characters"
        if problem:
            self.diag.error("E202", f"{what} {name!r} {problem}", span, hints=["choose another name"])
        return problem is None

    # -- statements --------------------------------------------------------------------

    def _input_dims(self, stmt: n.Input) -> list:
        """A plan input's dims: a new name is a size symbol (N, L, H, W), the rest are expressions."""
        dims = []
        for d in stmt.shape.dims:
            if isinstance(d, n.Name) and (d.id not in self.frame.names or d.id in self.symbols):
                dims.append(self._symbol(d))
            else:
                try:
                    dims.append(self._int(d, "an input dim"))
                except _Skip:  # reported; a stand-in keeps the layers below checked
                    dims.append(dim(f"refused{len(dims)}"))
                self._positive_dim(dims[-1], d.span)
        if not dims:
            self.diag.error("E204", "the input needs at least one dim", stmt.shape.span)
            raise _Skip
        return dims

    def _symbol(self, name: n.Name) -> sympy.Basic:
        if not self._name(name.id, name.span, "dim name"):
            return dim(f"refused{len(self.symbols)}")  # the plan is refused; later layers are still checked
        if name.id not in self.symbols:
            self.symbols.append(name.id)
        if name.id in self.sizes:
            value = sympy.Integer(self.sizes[name.id])
            self._positive_dim(value, name.span)
        else:
            value = dim(name.id)
        self.frame.names[name.id] = value
        return value

    def _positive_dim(self, value, span: Span) -> None:
        if at_least(value, 1) is sympy.false:
            self.diag.error("E205", f"an input dim must be positive, got {pyrepr(value)}", span)

    def _layer(self, stmt: n.Layer, prev: Node | None) -> Node:
        if prev is None:
            raise _Skip
        call = stmt.call
        spec = REGISTRY.get(call.name)
        if spec is None:
            self.diag.error("E100", f"unknown layer {call.name!r}", call.name_span,
                            hints=[_did_you_mean(call.name, [*REGISTRY, *self.frame.namespace, *MERGES])])
            raise _Skip
        shape = prev.shape
        self._check_rank(spec, shape, stmt)
        args, given = self._bind_args(spec, call, shape)
        order = None
        if spec.inferred:
            args[spec.inferred] = spec.infer(shape, args)
            given = (spec.inferred, *given)
            order = self._torch_order(spec, call, args)
        try:
            out, rule, params = self._apply(spec, call, shape, args)
        except LayerError as exc:  # an error hides the W320 that explains it: say it here too
            self.diag.error("E300", f"{spec.name}: {exc.message}", self._arg_span(call, exc.arg),
                            hints=[exc.hint, f"the input here is {show_shape(shape)}", order])
            raise _Skip from None
        name = self._node_name(spec.short or spec.name.lower(), stmt.target, stmt.target_span)
        for cond, message, arg in rule.conds:
            self.conds.append((cond, f"{spec.name}: {message}", name, self._arg_span(call, arg), shape))
        for cond, message, arg, code in rule.warns:  # torch warns, or refuses only in training
            if code != "W310":
                when = "" if cond is sympy.true else f" when {pyrepr(cond)}"
                self.diag.warn(code, f"{spec.name}: {message}{when}", self._arg_span(call, arg))
        tails = [(cond, message) for cond, message, _, code in rule.warns if code == "W310"]
        if tails:  # one warning per layer, worded at the end, when the requirements are known
            warning = self.diag.warn("W310", f"{spec.name} never reads {tails[0][1]}", call.name_span,
                                     ["torch drops them silently; if that is intended, ignore this, otherwise pad "
                                      "the input or change the stride"])
            self.tails.append((warning, spec.name, tails))
        if stmt.expect is not None:
            out = self._assert_shape(stmt, spec, out, shape, args, name)
        node = Node(len(self.nodes), "layer", name, (prev.id,), out, stmt.span, spec.name, args, given, params)
        return self.nodes[self._add_node(node).id]

    def _apply(self, spec: LayerSpec, call: n.Call, shape: tuple, args: dict) -> tuple[tuple, Rule, object]:
        """The rule's output shape and conditions, and the parameter count.  Rules are pure, and real networks
        repeat the same layer on the same shape (a stage of identical blocks), so results are kept per
        (kind, shape, args), once the output is known to be in bounds."""
        try:
            key = (spec.name, shape, tuple(args.items()))
            hash(key)
        except TypeError:  # an argument value that cannot be a key: just run the rule
            key = None
        if key is not None and key in self.applied:
            return self.applied[key]
        rule = Rule(spec)
        out = tuple(to_expr(d) for d in spec.rule(rule, shape, args))
        self._bounded_shape(spec, call, out, shape)
        result = out, rule, to_expr(spec.count(args))
        if key is not None:
            self.applied[key] = result
        return result

    def _torch_order(self, spec: LayerSpec, call: n.Call, args: dict) -> str | None:
        """W320 for `Conv1d(1, 32, 3)` on a 1-channel input: torch's order, which a plan reads shifted by one
        (out_channels=1, kernel_size=32, stride=3) and may well accept; and for `BatchNorm2d(64)`, which reads
        as eps=64.0.  Returns the hint, for an error the shifted reading causes."""
        positional = [a for a in call.args if a.name is None]
        required = sum(1 for a in spec.args if a.default is REQUIRED)
        first = args[spec.arg_names[0]] if spec.args else None
        if required and len(positional) > required and isinstance(first, sympy.Basic) \
                and equal(first, args[spec.inferred]) is True:
            why = f"the first value equals the input's {spec.inferred}, as in torch's order"
        elif whole := _whole_floats(spec, positional, args):
            why = f"a whole number as {whole} looks like torch's {spec.inferred}"
        else:
            return None
        texts = [source_text(a.span, self.diag.source) or "..." for a in positional]
        shifted = ", ".join(f"{name}={text}" for name, text in zip(spec.arg_names, texts, strict=False))
        hint = torch_order_hint(spec, call, self.diag.source, least=1)
        self.diag.warn("W320", f"{spec.name}({', '.join(texts)}) reads as {shifted}: {why}", call.span, hints=[hint])
        return hint

    @staticmethod
    def _arg_span(call: n.Call, arg: str | None) -> Span:
        """Where to point for a problem with argument `arg`: the argument if written, else the call."""
        if arg is None:
            return call.name_span
        for a in call.args:
            if a.name == arg:
                return a.span
        names = REGISTRY[call.name].arg_names
        positional = [a for a in call.args if a.name is None]
        if arg in names and names.index(arg) < len(positional):
            return positional[names.index(arg)].span
        return call.name_span

    def _check_rank(self, spec: LayerSpec, shape, stmt: n.Layer) -> None:
        r = len(shape)
        ok = r in spec.ranks if spec.ranks else r >= spec.min_rank
        if ok:
            return
        if spec.ranks:
            names = {spec.nd + 1: "unbatched", spec.nd + 2: "batched"} if spec.nd else {}
            want = " or ".join(f"{k}-D" + (f" ({names[k]})" if k in names and len(spec.ranks) > 1 else "")
                               for k in spec.ranks)
        else:
            want = f"at least a {spec.min_rank}-D"
        hints = []
        if spec.nd and r == spec.nd + 1 and spec.ranks == (spec.nd + 2,) and str(shape[0]) not in BATCH_NAMES:
            # BatchNorm2d on [C, H, W]: BatchNorm1d would take it, reading C as the batch; the batch dim is missing
            hints.append(f"{spec.name} takes batched input only: give the input a batch dim, "
                         f"[N, {', '.join(pyrepr(d) for d in shape)}]")
        elif spec.family:
            nd = r - 2
            other = f"{spec.family}{nd}d"
            if other in REGISTRY and other != spec.name:
                hints.append(f"for a {r}-D input use {other}")
        self.diag.error("E301", f"{spec.name} expects a {want} input, got {r}-D {show_shape(shape)}",
                        stmt.call.name_span, hints=hints)
        raise _Skip

    # -- arguments ---------------------------------------------------------------------

    def _bind_args(self, spec: LayerSpec, call: n.Call, shape=None) -> tuple[dict, tuple[str, ...]]:
        bound: dict[str, n.Arg] = {}
        ok = True
        names = spec.arg_names
        for i, arg in enumerate(call.args):
            if arg.name is None:
                if any(a.name is not None for a in call.args[:i]):
                    self.diag.error("E101", "a positional argument follows a keyword argument", arg.span)
                    ok = False
                elif i >= len(names):
                    self.diag.error("E102", f"{spec.name} takes at most {len(names)} positional argument"
                                    f"{'s' if len(names) != 1 else ''} here, got {len(call.args)}", arg.span,
                                    hints=[_inferred_hint(spec)])
                    ok = False
                else:
                    bound[names[i]] = arg
            elif arg.name not in names:
                hint = _did_you_mean(arg.name, names)
                if arg.name == spec.inferred and shape:  # Linear(in_features=320, ...): compare with the input
                    written = arg.value.value if isinstance(arg.value, n.Num) else None
                    message, hints = inferred_given(spec, shape, written)
                    self.diag.error("E110", message, arg.span, hints=hints)
                else:
                    self.diag.error("E103", f"{spec.name} has no argument {arg.name!r}", arg.span, hints=[hint])
                ok = False
            elif arg.name in bound:
                self.diag.error("E104", f"argument {arg.name!r} is given twice", arg.span)
                ok = False
            else:
                bound[arg.name] = arg
        values = {}
        for a in spec.args:
            if a.name in bound:
                try:
                    values[a.name] = self._coerce(a, self._lower(bound[a.name].value))
                except _Skip:
                    ok = False
                    if bound[a.name].name is None:  # Linear(320, 10): torch's order, in_features first
                        self.diag.add_hint(torch_order_hint(spec, call, self.diag.source))
            elif a.default is REQUIRED and ok:  # after a typo (E103) the typo is the news, not this
                self.diag.error("E105", f"{spec.name} needs the argument {a.name!r}", call.span,
                                hints=[f"e.g. {spec.name}({a.name}=...)"])
                ok = False
            else:
                values[a.name] = a.default
        if not ok:
            raise _Skip
        return values, tuple(a for a in names if a in bound)

    def _coerce(self, arg, expr: n.Expr):
        kind = arg.kind
        if isinstance(expr, n.Const) and expr.value is None and kind in (OPT_INT, OPT_SIZE, SCALE, BOOL, DIMS, ANY):
            return None
        if kind in (INT, OPT_INT):
            return self._int(expr, arg.name)
        if kind in (SIZE, OPT_SIZE, PADS, DIMS):
            if isinstance(expr, n.Tuple):
                if not expr.items:
                    self._expected(arg.name, "at least one value", expr)
                return tuple(None if _is_none(e) and kind == OPT_SIZE else self._int(e, arg.name) for e in expr.items)
            return self._int(expr, arg.name)
        if kind in (PAD, STR) and isinstance(expr, n.Name) and expr.id not in self.frame.names:
            self.diag.error("E107", f"unknown name {expr.id!r}", expr.span,  # padding=same
                            hints=[f"a string is written in quotes: {arg.name}='{expr.id}'"])
            raise _Skip
        if kind == PAD:
            if isinstance(expr, n.Str):
                if expr.value not in ("same", "valid"):
                    self._expected(arg.name, "'same', 'valid', an int or a tuple of ints", expr)
                return expr.value
            return self._coerce(type(arg)(arg.name, kind=SIZE), expr)
        if kind == BOOL:
            if isinstance(expr, n.Const) and isinstance(expr.value, bool):
                return expr.value
            word = expr.id.capitalize() if isinstance(expr, n.Name) and expr.id.lower() in ("true", "false") else None
            self._expected(arg.name, "True or False", expr, word and f"did you mean {word}?")
        if kind in (FLOAT, SCALE):
            if kind == SCALE and isinstance(expr, n.Tuple) and expr.items:
                return tuple(self._float(e, arg.name) for e in expr.items)
            return self._float(expr, arg.name)
        if kind == STR:
            if isinstance(expr, n.Str) and (not arg.choices or expr.value in arg.choices):
                return expr.value
            choices = ", ".join(repr(c) for c in arg.choices)
            best = suggest(expr.value, arg.choices) if isinstance(expr, n.Str) else None
            hint = f"did you mean {best!r}?" if best else None
            self._expected(arg.name, f"one of {choices}" if choices else "a string", expr, hint)
        return self._value(expr)

    def _expected(self, name: str, what: str, expr: n.Expr, hint: str | None = None):
        self.diag.error("E106", f"{name} must be {what}, got {_describe(expr)}", expr.span, hints=[hint])
        raise _Skip

    def _float(self, expr: n.Expr, name: str) -> float:
        if isinstance(expr, n.Float):
            return expr.value
        if isinstance(expr, n.Neg) and isinstance(expr.operand, n.Float):
            return -expr.operand.value
        if isinstance(expr, n.Unknown):  # `?` stands for integers only; not registered, so no E310 follows
            self._expected(name, "a number (a `?` unknown stands only for an integer argument)", expr)
        value = self._int(expr, name)
        if not value.is_Integer:
            self._expected(name, "a number", expr)
        return float(int(value))

    def _value(self, expr: n.Expr):
        if isinstance(expr, (n.Str, n.Const, n.Float)):
            return expr.value
        if isinstance(expr, n.Tuple):
            return tuple(self._value(e) for e in expr.items)
        return self._int(expr, "value")

    # -- integer expressions (sympy built from the tree, never from text) ---------------

    def _int(self, expr: n.Expr, what: str) -> sympy.Expr:
        if isinstance(expr, n.Num):
            return sympy.Integer(expr.value)
        if isinstance(expr, n.Name):
            value = self._lookup(expr)
            if isinstance(value, sympy.Basic):
                return value
            if isinstance(value, Tensor):
                self.diag.error("E241", f"{expr.id!r} is a tensor; it cannot be {what}", expr.span)
                raise _Skip
            self._expected(what, "an integer", self._lower(expr))
        if isinstance(expr, Value):
            return expr.value
        if isinstance(expr, n.IfExp):
            return self._int(expr.then if self._truth(expr.cond) else expr.orelse, what)
        if isinstance(expr, n.Unknown):
            if not what.isidentifier():
                self.diag.error("E311", f"a `?` unknown can stand only for a layer argument, not {what}", expr.span)
                raise _Skip
            return self._unknown(expr, what)
        if isinstance(expr, n.Neg):
            return -self._int(expr.operand, what)
        if isinstance(expr, n.BinOp):
            left, right = self._int(expr.left, what), self._int(expr.right, what)
            return self._bounded(expr, self._binop(expr, left, right))
        self._expected(what, "an integer", expr)

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
            raise _Skip
        if right <= 0:
            self.diag.error("E109", f"{expr.op} by {pyrepr(right)}: the divisor must be positive", expr.right.span)
            raise _Skip
        return floordiv(left, right) if expr.op == "//" else mod(left, right)

    def _bounded_shape(self, spec: LayerSpec, call: n.Call, out: tuple, before: tuple) -> None:
        """Dims whose formulas hold numbers past 100 digits (an Upsample tower) are refused before printing
        them costs seconds or str() refuses an integer of 4,300 digits.  Dims passed through unchanged were
        checked at the layer that made them."""
        limit = 10**MAX_DIM_DIGITS
        for d in out:
            if d in before:
                continue
            if _holds_number_past(d, limit):
                shown = show_shape(out)  # cheap: the first layer past the limit is reported
                shown = shown if len(shown) <= 160 else shown[:160] + "..."
                self.diag.error("E008", f"{spec.name} makes a dim whose formula holds a number of more than "
                                f"{MAX_DIM_DIGITS} digits: {shown}", call.name_span,
                                hints=["no real tensor is that large: check the scale factors, strides and "
                                       "repeat counts before here"])
                raise _Skip

    def _power(self, expr: n.BinOp, base, exponent):
        """`base ** exponent` for a constant exponent in 0..MAX_EXPONENT, so that sizes stay integers; an
        integer power is sized from its logarithm before it is computed (10**10**9 would never finish)."""
        if not exponent.is_Integer or not 0 <= exponent <= MAX_EXPONENT:
            self.diag.error("E111", f"the exponent of ** must be a constant from 0 to {MAX_EXPONENT} here, got "
                            f"{pyrepr(exponent)}", expr.right.span,
                            hints=["a negative power is no integer" if exponent.is_Integer and exponent < 0 else
                                   "write a number, a parameter with a value or a repeat index there"])
            raise _Skip
        if base.is_Integer and abs(base) > 1 and int(exponent) * math.log10(abs(int(base))) > MAX_INT_DIGITS + 1:
            self.diag.error("E005", f"this value has more than {MAX_INT_DIGITS} digits", expr.span)
            raise _Skip
        return base ** exponent

    def _bounded(self, expr: n.BinOp, value):
        """Products of literals could build integers sympy and str() choke on: keep them to 18 digits."""
        if value.is_Integer and abs(value) >= 10**MAX_INT_DIGITS:
            self.diag.error("E005", f"this value has more than {MAX_INT_DIGITS} digits", expr.span)
            raise _Skip
        return value

    def _unknown(self, expr: n.Unknown, what: str) -> sympy.Symbol:
        label = expr.name
        if label is not None and not self._name(label, expr.span, "`?` name"):
            raise _Skip
        if label is None:  # an anonymous `?` is named after the argument it stands in
            taken = {s.name for s in self.unknowns}
            label = what if f"_{what}" not in taken else next(
                f"{what}_{i}" for i in itertools.count(2) if f"_{what}_{i}" not in taken)  # lazy: no list built
        sym = unknown(f"_{label}")  # `?p` -> `_p`: a legal name that reads back as the unknown
        if expr.name and sym in self.unknowns:
            return sym  # `?p` twice means the same unknown
        self.unknowns[sym] = expr
        return sym

    # -- assertions and unknowns -------------------------------------------------------

    def _assert_shape(self, stmt: n.Layer, spec: LayerSpec, out: tuple, shape=None, args=None,
                      name: str | None = None) -> tuple:
        want_expr = stmt.expect
        try:
            want = [self._asserted_dim(d) for d in want_expr.dims]
            if len(want) != len(out):
                self.diag.error("E320", self._as_written(f"{spec.name} gives a {len(out)}-D output {show_shape(out)}, "
                                                         f"but the plan asserts {len(want)}-D {show_shape(want)}"),
                                want_expr.span, hints=[shape and flatten_hint(spec, shape, out, want)])
                raise _Skip
        except _Skip:  # the assertion is reported: its layer's `?` is not "determined by nothing" (E310) as well
            self.unsolvable |= {s for d in out for s in d.free_symbols if s in self.unknowns}
            raise
        out = tuple(d.xreplace(self.solution) for d in out)
        want = [d.xreplace(self.solution) for d in want]
        free = {s for d in (*out, *want) for s in d.free_symbols if s in self.unknowns}
        try:
            found = solve(list(zip(out, want, strict=True)), free)
        except SolveError as exc:
            self.unsolvable |= free  # reported here, not again as E310
            fix = asymmetric_for_unknown(spec, list(zip(out, want, strict=True)), free) if self._fixes(shape) else None
            self.diag.error("E323" if exc.timed_out else "E321", f"{spec.name}: {self._as_written(exc.message)}",
                            want_expr.span,
                            hints=[exc.hint, fix])
            raise _Skip from None
        self.solution.update(found)
        out = tuple(d.xreplace(found) for d in out)
        for i, (have, asserted, d) in enumerate(zip(out, want, want_expr.dims, strict=True)):
            asserted = asserted.xreplace(found)
            verdict = equal(have, asserted)
            if verdict is False:
                self.diag.error("E322", f"{spec.name} gives {show_shape(out)}, but the plan asserts "
                                f"{show_shape([w.xreplace(found) for w in want])}", d.span,
                                hints=[f"this dim is {pyrepr(have)}, not {pyrepr(asserted)}",
                                       *(assertion_fixes(spec, shape, args, i, asserted,
                                                         [w.xreplace(found) for w in want])
                                         if self._fixes(shape) and not free else ())])
                raise _Skip
            if verdict is None:  # true for some sizes only: the assertion becomes a requirement (H % 8 == 0)
                self.conds.append((equal_condition(have, asserted), f"{spec.name}: the asserted dim {pyrepr(asserted)}",
                                   name or (self.nodes[-1].name if self.nodes else ""), d.span, out))
        return out

    # -- requirements ------------------------------------------------------------------

    def _fixes(self, shape) -> bool:
        """Whether to search for a fix: only for the errors that will be shown."""
        return bool(shape) and len(self.diag.errors) < MAX_REPORTED

    def _asserted_dim(self, d: n.Expr):
        if isinstance(d, n.Ellipsis_):
            self.diag.error("E207", "`...` stands for leading dims only in a block's input pattern, not in an "
                            "assertion", d.span, hints=["write every dim out; in a block, name them in its input "
                                                        "pattern (`input [N, C, L]`)"])
            raise _Skip
        return self._int(d, "an asserted dim")

    def _as_written(self, text: str) -> str:
        """`_k` (the unknown's symbol in a message) back to `?k`, as the plan wrote it; an anonymous `?` reads
        as `?padding` (the `solved:` line's name for it), not "this `?`", inside an expression."""
        for u in self.unknowns:
            text = re.sub(rf"(?<![\w?]){re.escape(u.name)}(?!\w)", f"?{u.name[1:]}", text)
        return text

    def _solved_hint(self, cond) -> str | None:
        """`?k = -1` for the unknowns in a condition that their solution made false."""
        solved = [f"{_unknown_label(self.unknowns[u])} = {self.solution[u]}"
                  for u in sorted(cond.free_symbols & set(self.solution), key=str)]
        return f"solved from the `->` assertion: {', '.join(solved)}" if solved else None

    def _requirements(self) -> tuple[Requirement, ...]:
        found: dict[str, Requirement] = {}
        for (original, message, layer, span, shape), frame in zip(self.conds, self.conds.frames, strict=True):
            cond = original.xreplace(self.solution) if self.solution else original
            if cond is not original and isinstance(cond, sympy.GreaterThan):  # `L - 2 >= 0` -> `L >= 2`
                cond = at_least(cond.lhs, cond.rhs)
            if isinstance(cond, sympy.Eq):  # `8 == C` -> `C == 8`
                cond = pinned(cond)
            if cond.free_symbols & set(self.unknowns):
                continue  # an unsolved unknown: already reported (E310)
            if cond == sympy.true:
                continue
            if cond == sympy.false:
                with self.diag.located(frame):
                    self.diag.error("E302", self._as_written(message), span,
                                    hints=[f"the input here is {show_shape(shape)}",
                                                                   self._solved_hint(original)])
                continue
            key = pyrepr(cond)
            file = frame.file if frame is not None and frame.file != self.diag.file else ""
            found.setdefault(key, Requirement(cond, message, layer, span, file))
        return tuple(self._satisfiable(self._joined(_strongest(found.values()))))

    def _satisfiable(self, reqs: list[Requirement]) -> list[Requirement]:
        """E304 when no size meets a size's requirements together: a merge of `(L + 3)//4` with `(L + 1)//2`
        holds only for L < 5, and a kernel needs L >= 5.  Bounds and residues always have solutions, so only
        the other equalities (from merges) are searched, over a window past the size's lower bound."""
        for sym in {s for r in reqs for s in r.condition.free_symbols}:
            own = [r for r in reqs if r.condition.free_symbols == {sym}]
            odd = [r for r in own if isinstance(r.condition, sympy.Eq) and residues(r.condition) is None]
            if not odd:
                continue
            low = max([int(r.condition.rhs) for r in own if isinstance(r.condition, sympy.GreaterThan)
                       and r.condition.lhs == sym and r.condition.rhs.is_Integer] + [1])
            if not any(all(holds(r.condition, {sym: sympy.Integer(v)}) for r in own)
                       for v in range(low, low + SATISFY_WINDOW)):
                last = max(odd, key=lambda r: (r.span.line, r.span.col))
                self.diag.error("E304", f"no {sym.name} meets these requirements together: "
                                + ", ".join(str(r) for r in own), last.span,
                                hints=[f"{last.reason}; the shapes meeting here cannot agree for any {sym.name} "
                                       f">= {low}"])
        return reqs

    def _drop_ruled_out_tails(self, requires) -> None:
        """A W310 is noise for the dims whose sizes the requirements already rule out (the U-Net's pools once
        H % 16 == 0 is required); the rest get an example size."""
        for warning, kind, tails in self.tails:
            if not any(d is warning for d in self.diag.diags):
                continue  # a block called many times: its copy was not kept
            parts = []
            for cond, message in tails:
                example = _tail_example(cond.xreplace(self.solution), requires)
                if example is not None:
                    parts.append(f"{message} when {pyrepr(cond)}" + (f" (e.g. {example})" if example else ""))
            index = next(i for i, d in enumerate(self.diag.diags) if d is warning)
            if parts:
                self.diag.diags[index] = replace(warning, message=f"{kind} never reads " + "; nor ".join(parts))
            else:
                del self.diag.diags[index]

    def _joined(self, reqs: list[Requirement]) -> list[Requirement]:
        """Divisibility conditions on one size, joined: H % 2 == 0 and (H//2) % 2 == 0 give H % 4 == 0."""
        out: list = list(reqs)
        for cond, replaced in combine_residues([r.condition for r in reqs]):
            if cond is None:
                continue
            main = max(replaced, key=lambda i: residues(reqs[i].condition)[1])
            r = reqs[main]
            if cond is sympy.false:
                self.diag.error("E303", "these requirements contradict each other: "
                                + ", ".join(str(reqs[i]) for i in replaced), r.span)
                continue
            joined = Requirement(cond, f"{r.reason} (with {len(replaced) - 1} more like it)", r.layer, r.span,
                                 r.file)
            out[replaced[0]] = joined
            for i in replaced[1:]:
                out[i] = None
        return [r for r in out if r is not None]


def _whole_floats(spec: LayerSpec, positional: list, args: dict) -> str | None:
    """The name of a float argument (eps) given by position as a whole number: `BatchNorm2d(64)`,
    `GroupNorm(8, 64)`.  Nobody means eps=64.0; torch's num_features came first."""
    for a, arg in zip(spec.args, positional, strict=False):
        written_float = isinstance(arg.value, n.Float) or (isinstance(arg.value, n.Neg)
                                                           and isinstance(arg.value.operand, n.Float))
        value = args[a.name]
        if a.kind == FLOAT and not written_float and isinstance(value, float) and value.is_integer():
            return a.name
    return None


def _holds_number_past(e, limit: int) -> bool:
    """Whether a number in `e` reaches `limit` (a plain walk: sympy's atoms() builds sets, and this runs on
    every new dim)."""
    if e.is_Rational:
        return abs(e.p) >= limit or abs(e.q) >= limit
    return any(_holds_number_past(a, limit) for a in e.args)


def _tail_example(cond, requires, tries: int = 64) -> str | None:
    """`H = 9`: a size of the condition's one symbol that meets the requirements on it; None if there is
    none among the first `tries`; "" when the condition has several symbols (kept, without an example)."""
    if len(cond.free_symbols) != 1:
        return ""
    sym = next(iter(cond.free_symbols))
    own = [r.condition for r in requires if r.condition.free_symbols == {sym}]
    for v in range(1, tries + 1):
        at = {sym: sympy.Integer(v)}
        if all(holds(c, at) for c in own) and holds(cond, at):  # holds: a symbolic stride may be 0 at `at`
            return f"{sym.name} = {v}"
    return None


def _strongest(reqs) -> list[Requirement]:
    """Keep, per symbol, only the largest lower bound `X >= k`; other conditions as they are."""
    bounds: dict[sympy.Symbol, Requirement] = {}
    rest = []
    for r in reqs:
        c = r.condition
        if isinstance(c, sympy.GreaterThan) and c.lhs.is_Symbol and c.rhs.is_Integer:
            best = bounds.get(c.lhs)
            if best is None or c.rhs > best.condition.rhs:
                bounds[c.lhs] = r
        else:
            rest.append(r)
    return [*bounds.values(), *rest]


def _is_none(e) -> bool:
    return isinstance(e, n.Const) and e.value is None


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


def _unknown_label(unk: n.Unknown) -> str:
    return f"?{unk.name}" if unk.name else "this `?`"


def _did_you_mean(word: str, choices) -> str | None:
    from .errors import suggest

    best = suggest(word, choices)
    return f"did you mean {best}?" if best and best != word else None


def _inferred_hint(spec: LayerSpec) -> str | None:
    if spec.inferred:
        return f"leave out {spec.inferred}: convplan reads it from the input"
    return None


def check(plan: n.PlanDef, source: str, filename: str, sizes: dict[str, int] | None = None,
          library: dict | None = None) -> Checked:
    return Checker(plan, source, filename, sizes, library).run()
