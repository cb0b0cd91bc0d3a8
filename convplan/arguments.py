"""Arguments: ONE binder matches a call's arguments to what the callee declares (a layer's
torch arguments, a block's parameters, a merge's options), then each kind of callee turns the
matched syntax into values: a layer coerces each by its argument kind (the table `COERCE`,
one entry per kind of layers/spec.py), a block evaluates them where it is called, a merge takes
integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import nodes as n
from .errors import did_you_mean, rename_fix, suggest
from .fixes import name_span
from .fixes import replace as replace_fix
from .hints import inferred_given, inferred_given_fixes, torch_order_fix, torch_order_hint
from .layers import (
    BOOL,
    DIMS,
    FLOAT,
    INT,
    OPT_FLOAT,
    OPT_INT,
    OPT_SIZE,
    PAD,
    PADS,
    REQUIRED,
    SCALE,
    SIZE,
    STR,
    LayerSpec,
)
from .scope import Skip, State
from .values import Values


@dataclass(frozen=True)
class Callee:
    """What the binder needs of the thing called, and how its messages name it."""

    kind: str  # "layer", "block", "function" or "merge"
    name: str  # Conv2d, Stage, cat
    names: tuple[str, ...]  # its arguments, in positional order
    required: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}" if self.kind in ("block", "function") else self.name

    @property
    def word(self) -> str:
        return "parameter" if self.kind in ("block", "function") else "argument"


class Binder:
    def __init__(self, st: State, values: Values):
        self.st, self.values, self.diag = st, values, st.diag
        self.callees: dict = {}  # id(block) -> (block, its Callee), for this check (the block is kept)
        self.matched: dict = {}  # id(call) -> (call, Callee, `match`'s result) of a block call: see `block`
        self.layers: dict = {}  # id(call) -> (call, Callee, what `match` gave and follows from it): see `layer`

    def match(self, callee: Callee, call: n.Call, args, shape=None, spec: LayerSpec | None = None) -> dict:
        """Argument name -> the argument written for it (of `args`, those of `call` that are not tensors):
        positional first, then by keyword.  Every problem is reported (E101-E105); then Skip."""
        bound: dict[str, n.Arg] = {}
        ok = True
        keywords = False  # whether a keyword argument came before (a flag, not a scan of the ones before each)
        for i, arg in enumerate(args):
            name = arg.name
            if name is not None:
                keywords = True
            else:
                if keywords:
                    self.diag.error("E101", "a positional argument follows a keyword argument", arg.span)
                    ok = False
                    continue
                if i >= len(callee.names):
                    if i == len(callee.names):  # once, at the first one too many
                        self._too_many(callee, arg, sum(a.name is None for a in args), spec)
                    ok = False
                    continue
                name = callee.names[i]
            if name not in callee.names:
                self._no_such(callee, call, arg, shape, spec)
                ok = False
            elif name in bound:
                self.diag.error("E104", f"argument {name!r} is given twice", arg.span)
                ok = False
            else:
                bound[name] = arg
        missing = [name for name in callee.required if name not in bound]
        for name in missing if ok else ():  # after a typo (E103) the typo is the news, not this
            self.diag.error("E105", f"{callee.label} needs the argument {name!r}", call.span,
                            hints=[f"e.g. {callee.name}({name}=...)"])
        if missing or not ok:
            raise Skip
        return bound

    def _too_many(self, callee: Callee, arg: n.Arg, given: int, spec: LayerSpec | None) -> None:
        count = len(callee.names)
        s = "s" * (count != 1)
        if callee.kind == "layer":
            self.diag.error("E102", f"{callee.name} takes at most {count} positional argument{s} here, got {given}",
                            arg.span, hints=[f"leave out {spec.inferred}: convplan reads it from the input"
                                             if spec.inferred else None])
        elif callee.kind in ("block", "function"):
            self.diag.error("E102", f"{callee.label} takes at most {count} argument{s}, got {given}", arg.span)
        else:  # a merge's tensors come first: a value past its options is a tensor that is not one
            what = (f"takes at most {count} positional argument{s} after the tensors" if count
                    else "takes only tensors, and this is not one")
            self.diag.error("E103", f"{callee.name} {what}", arg.span,
                            hints=[f"{callee.name} takes {', '.join(callee.names)}" if count else None])

    def _no_such(self, callee: Callee, call: n.Call, arg: n.Arg, shape, spec: LayerSpec | None) -> None:
        hint = did_you_mean(arg.name, callee.names)
        if spec is not None and arg.name == spec.inferred and shape:  # Linear(in_features=320): compare
            written = arg.value.value if isinstance(arg.value, n.Num) else None
            message, hints = inferred_given(spec, shape, written)
            self.diag.error("E110", message, arg.span, hints=hints,
                            fixes=inferred_given_fixes(hints, call, arg, self.st.frame.source))
            return
        fix = rename_fix(arg.name, callee.names, name_span(arg))
        if callee.kind == "merge" and not hint and callee.names:
            hint = f"{callee.name} takes {', '.join(callee.names)}"
        self.diag.error("E103", f"{callee.label} has no {callee.word} {arg.name!r}", arg.span, hints=[hint],
                        fixes=[fix])

    # -- the three kinds of callee ---------------------------------------------------------

    def layer(self, spec: LayerSpec, call: n.Call, shape=None) -> tuple[dict, tuple[str, ...], tuple]:
        """A layer's arguments, every one coerced by its kind, defaults filled in; the names written; and
        (argument, name) for each argument written as a bare name (a block's class takes it as its own)."""
        callee, defaults = _layer_callee(spec)
        kept = self.layers.get(id(call))
        if kept is not None and kept[1] is callee:  # (the entry keeps the call: its id stays its own)
            bound, pairs, given, written = kept[2]
        else:  # which argument is which depends on the call's syntax alone: matched once a call site
            bound = self.match(callee, call, call.args, shape, spec)  # (refused: Skip, nothing kept)
            pairs = tuple([(a, bound[a.name]) for a in spec.args if a.name in bound])  # in the kind's order
            # lists, not generators: a generator is made and resumed per item
            written = tuple([(a, arg.value.id) for a, arg in bound.items() if isinstance(arg.value, n.Name)])
            given = tuple([a for a in spec.arg_names if a in bound])
            self.layers[id(call)] = call, callee, (bound, pairs, given, written)  # the call kept: its id stays its own
        values = dict(defaults)  # every argument in the kind's order; those written replace their default
        ok = True
        for a, arg in pairs:
            before = len(self.diag.diags)
            try:
                values[a.name] = self.coerce(a, self.values.lower(arg.value))
            except Skip:
                ok = False
                self._refused(spec, call, arg, self.diag.diags[before:])
        if not ok:
            raise Skip
        return values, given, written

    def _refused(self, spec: LayerSpec, call: n.Call, arg: n.Arg, reported: list) -> None:
        """A layer's argument `arg` refused, `reported` what it reported: torch's order as a hint (Linear(320, 10):
        in_features first) where a value of the wrong kind is refused at the argument itself (a size function
        failing inside is no question of order).  A method, not a closure made at every layer call."""
        if arg.name is None and reported and reported[-1].code == "E106" and _within(reported[-1].span, arg.span):
            self.diag.add_hint(torch_order_hint(spec, call, self.st.frame.source),
                               torch_order_fix(spec, call, self.st.frame.source))

    def block(self, block: n.BlockDef, call: n.Call) -> dict:
        """A block call's arguments, evaluated where the call is (defaults are evaluated in the block)."""
        kept = self.callees.get(id(block))
        if kept is None:  # (the entry keeps the block: its id stays its own)
            kept = self.callees[id(block)] = block, Callee("block", block.name, tuple(p.name for p in block.params),
                                                           tuple(p.name for p in block.params if p.default is None))
        callee = kept[1]
        matched = self.matched.get(id(call))
        if matched is not None and matched[1] is callee:
            bound = matched[2]
        else:  # which argument is which depends on the call's syntax alone: matched once a call site
            bound = self.match(callee, call, call.args)  # (refused: Skip, nothing kept)
            self.matched[id(call)] = call, callee, bound  # the call kept: its id stays its own
        given, ok = {}, True
        for name, arg in bound.items():
            try:
                given[name] = self.values.eval(arg.value, name)
            except Skip:
                ok = False
        if not ok:
            raise Skip
        return given

    def merge(self, spec, call: n.Call, args) -> dict:
        """A merge's options (`dim` of cat): integers known when the plan is checked."""
        callee = _merge_callee(spec)
        values = dict(spec.args)
        for name, arg in self.match(callee, call, args).items():
            value = self.values.int(arg.value, f"{spec.name}'s {name}")  # not an identifier: a `?` is E311
            if not value.is_Integer:
                self.values.undecidable(arg.value, value, f"{spec.name}'s {name}")
            values[name] = int(value)
        return values

    def op(self, spec, call: n.Call, args) -> dict:
        """An operation's arguments after its tensors (ops.py), coerced as a layer's are, defaults filled
        in.  A `star` operation takes its positional values as its first argument, as torch's tensor methods
        do: `permute(0, 2, 1)` is `permute((0, 2, 1))`."""
        positional = [a for a in args if a.name is None]
        if spec.star and positional and (len(positional) > 1 or not isinstance(positional[0].value, n.Tuple)):
            span = positional[0].span.to(positional[-1].span)
            gathered = n.Arg(None, n.Tuple(tuple(a.value for a in positional), span), span)
            args = (gathered, *(a for a in args if a.name is not None))
        callee = Callee("merge", spec.name, spec.arg_names, tuple(a.name for a in spec.args if a.default is REQUIRED))
        return self._coerced(spec.args, self.match(callee, call, args))

    def _coerced(self, args, bound: dict, refused=None) -> dict:
        """Every argument of a layer or an operation: the bound ones coerced by their kind, the others their
        default.  Each refusal is reported (and `refused` told, with what was reported) before the call is
        skipped."""
        values, ok = {}, True
        for a in args:
            if a.name not in bound:
                values[a.name] = a.default
                continue
            before = len(self.diag.diags)
            try:
                values[a.name] = self.coerce(a, self.values.lower(bound[a.name].value))
            except Skip:
                ok = False
                if refused is not None:
                    refused(bound[a.name], self.diag.diags[before:])
        if not ok:
            raise Skip
        return values

    # -- a layer argument's value, by its kind ---------------------------------------------

    def coerce(self, arg, expr: n.Expr):
        if isinstance(expr, n.Const) and expr.value is None and arg.kind in NONE_ALLOWED and \
                (arg.kind != BOOL or arg.default is None):  # `_is_none`, written out: every argument comes here
            return None  # a bool argument takes None where torch's default is None (align_corners)
        return COERCE.get(arg.kind, Binder._any)(self, arg, expr)

    def _int(self, arg, expr):
        return self.values.int(expr, arg.name)

    def _size(self, arg, expr):
        """An int, or a tuple of them (None entries keep a dim of an adaptive pool)."""
        if isinstance(expr, n.Tuple):
            if not expr.items:
                self.values.expected(arg.name, "at least one value", expr)
            return tuple(None if _is_none(e) and arg.kind == OPT_SIZE else self.values.int(e, arg.name)
                         for e in expr.items)
        return self.values.int(expr, arg.name)

    def _pad(self, arg, expr):
        """A size, or one of the strings the argument declares (`padding='same'`)."""
        self._quoted(arg, expr)
        if isinstance(expr, n.Str):
            if expr.value not in arg.choices:
                choices = ", ".join(repr(c) for c in arg.choices)
                self.values.expected(arg.name, f"{choices}, an int or a tuple of ints", expr)
            return expr.value
        return self._size(arg, expr)

    def _bool(self, arg, expr):
        if isinstance(expr, n.Const) and isinstance(expr.value, bool):
            return expr.value
        word = expr.id.capitalize() if isinstance(expr, n.Name) and expr.id.lower() in ("true", "false") else None
        hint = word and f"did you mean {word}?"
        if _is_none(expr):  # torch's type is bool; its `if bias:` happens to read None as False
            hint = f"write {arg.name}=False (torch's {arg.name} is a bool, where None would act as False)"
        self.values.expected(arg.name, "True or False", expr, hint)

    def _float(self, arg, expr):
        if arg.kind == SCALE and isinstance(expr, n.Tuple) and expr.items:
            return tuple(self._number(e, arg.name) for e in expr.items)
        return self._number(expr, arg.name)

    def _number(self, expr: n.Expr, name: str) -> float:
        if isinstance(expr, n.Float):
            return expr.value
        if isinstance(expr, n.Neg) and isinstance(expr.operand, n.Float):
            return -expr.operand.value
        if isinstance(expr, (n.Str, n.Const, n.Tuple)):  # not "must be an integer": 0.5 is fine here
            self.values.expected(name, "a number", expr)
        if isinstance(expr, n.Unknown):  # `?` stands for integers only; not registered, so no E310 follows
            self.values.expected(name, "a number (a `?` unknown stands only for an integer argument)", expr)
        value = self.values.number(expr, name)  # `slope * 2`, `p / 2`: Python's arithmetic
        if isinstance(value, float):
            return value
        if not value.is_Integer:
            self.values.expected(name, "a number", expr)
        return float(int(value))

    def _str(self, arg, expr):
        self._quoted(arg, expr)
        if isinstance(expr, n.Str) and (not arg.choices or expr.value in arg.choices):
            return expr.value
        choices = ", ".join(repr(c) for c in arg.choices)
        best = suggest(expr.value, arg.choices) if isinstance(expr, n.Str) else None
        hint = f"did you mean {best!r}?" if best else None
        self.values.expected(arg.name, f"one of {choices}" if choices else "a string", expr, hint,
                             replace_fix(hint, expr.span, repr(best)) if best else None)

    def _quoted(self, arg, expr) -> None:
        """`padding=same`: an unknown bare name where a string may stand was meant as one."""
        if isinstance(expr, n.Name) and expr.id not in self.st.frame.names:
            self.diag.error("E107", f"unknown name {expr.id!r}", expr.span,
                            hints=[f"a string is written in quotes: {arg.name}='{expr.id}'"],
                            fixes=[replace_fix(f"write it in quotes: '{expr.id}'", expr.span, f"'{expr.id}'")])
            raise Skip

    def _any(self, arg, expr):
        if isinstance(expr, (n.Str, n.Const, n.Float)):
            return expr.value
        if isinstance(expr, n.Tuple):
            return tuple(self._any(arg, e) for e in expr.items)
        return self.values.int(expr, "value")


# How a value written for each argument kind of layers/spec.py is validated.
COERCE = {
    INT: Binder._int, OPT_INT: Binder._int,
    SIZE: Binder._size, OPT_SIZE: Binder._size, PADS: Binder._size, DIMS: Binder._size,
    PAD: Binder._pad,
    BOOL: Binder._bool,
    FLOAT: Binder._float, OPT_FLOAT: Binder._float, SCALE: Binder._float,
    STR: Binder._str,
}
NONE_ALLOWED = (OPT_INT, OPT_FLOAT, OPT_SIZE, SCALE, BOOL, DIMS)  # kinds whose value may be None


_CALLEES: dict = {}  # id(spec) -> (spec, the binder's view of it): made once, not at every call; the spec is kept,
# so the id stays its own
MAX_CALLEES = 1024  # specs made on the fly (tests) do not pile up


def _kept_view(spec, make):
    """`make(spec)`, made once a spec (a layer kind's or a merge's)."""
    kept = _CALLEES.get(id(spec))
    if kept is None:
        if len(_CALLEES) >= MAX_CALLEES:
            _CALLEES.clear()
        kept = _CALLEES[id(spec)] = spec, make(spec)
    return kept[1]


def _layer_callee(spec: LayerSpec) -> tuple[Callee, dict]:
    """The binder's view of a layer kind, and its arguments' defaults in its order (REQUIRED where it has none:
    `match` refuses a call that leaves one out)."""
    return _kept_view(spec, _new_layer_callee)


def _new_layer_callee(spec: LayerSpec) -> tuple[Callee, dict]:
    return (Callee("layer", spec.name, spec.arg_names, tuple(a.name for a in spec.args if a.default is REQUIRED)),
            {a.name: a.default for a in spec.args})


def _merge_callee(spec) -> Callee:
    """The binder's view of a merge kind: its options, in order (each has a default)."""
    return _kept_view(spec, _new_merge_callee)


def _new_merge_callee(spec) -> Callee:
    return Callee("merge", spec.name, tuple([name for name, _ in spec.args]))


def _within(inner, outer) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) and \
        (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)


def _is_none(e) -> bool:
    return isinstance(e, n.Const) and e.value is None
