"""Operations and learnable tensors in a plan: `permute(0, 2, 3, 1)`, `a, b = chunk(2, dim=1)`,
`matmul(q, k)`, `class_token = Parameter((1, 1, D))`.  An operation's arguments are bound and coerced as
a layer's, its registry rule (ops.py) gives its shape and the conditions that become requirements, and
a call with several outputs binds each name the statement gives (`scope.State.add_several`)."""

from __future__ import annotations

import sympy

from . import nodes as n
from .arguments import Binder
from .graph import Node
from .layers import CONTIGUOUS, DIMS, FLOAT, REQUIRED, STR, Arg, LayerError, RuleContext, worded
from .ops import OPS, OpSpec, Several
from .scope import Skip, State, Tensor
from .shapes import at_least, pyrepr
from .show import show_shape

PARAMETER = "Parameter"  # torch.nn.Parameter: a learnable tensor of the module it is declared in
PARAMETER_ARGS = (Arg("size", REQUIRED, DIMS), Arg("init", "zeros", STR, ("zeros", "ones", "randn")),
                  Arg("scale", 1.0, FLOAT))


class OpCalls:
    def __init__(self, st: State, binder: Binder):
        self.st, self.binder, self.diag = st, binder, st.diag

    def call(self, stmt: n.Layer, inputs: list[Tensor], options) -> list[Tensor]:
        """The operation applied to `inputs`: one Tensor, or one per output of a call with several."""
        call, spec = stmt.call, OPS[stmt.call.name]
        if len(inputs) != spec.tensors:
            self.diag.error("E242", f"{spec.name} takes {spec.tensors} tensor{'s' * (spec.tensors > 1)}, got "
                            f"{len(inputs)}", call.span)
            raise Skip
        args = self.binder.op(spec, call, options)
        shapes = [self.st.nodes[t.id].shape for t in inputs]
        tainted = any(t.tainted for t in inputs)
        targets = stmt.targets
        ctx = RuleContext(spec)
        try:
            out = spec.rule(ctx, shapes, {**args, "_count": len(targets.names()) if targets else 1})
        except LayerError as exc:
            if tainted:
                return [Tensor(inputs[0].id, True)]
            self.diag.error("E300", f"{spec.name}: {exc.message}", _arg_span(spec, call, exc.arg),
                            hints=[exc.hint, *(f"input {i + 1} is {show_shape(s)}{self.st.made_at(t)}"
                                               for i, (s, t) in enumerate(zip(shapes, inputs, strict=True)))])
            raise Skip from None
        self._count(spec, stmt, out)
        self._contiguous(spec, call, inputs)
        first = targets.items[0].id if targets else stmt.target
        name = self.st.node_name(spec.name, first, stmt.target_span or stmt.span)
        shape0 = out[0] if isinstance(out, Several) else out
        for cond, message, arg in ctx.conds if not tainted else ():
            self.st.conds.append((cond, f"{spec.name}: {worded(message)}", name, _arg_span(spec, call, arg), shape0))
        node = Node(len(self.st.nodes), spec.name, name, tuple(t.id for t in inputs), tuple(shape0), stmt.span,
                    args=args)
        if isinstance(out, Several):
            made = self.st.add_several(node, out, [(x.id, x.span) for x in targets.names()[1:]] if targets else [])
        else:
            made = [self.st.add_node(node)]
        self.st.layout([t.id for t in made], [t.id for t in inputs], spec.aliases_input, spec.restrides,
                       spec.reorders, spec.layout == CONTIGUOUS)
        return [Tensor(t.id, tainted) for t in made]

    def _count(self, spec: OpSpec, stmt: n.Layer, out) -> None:
        fit_targets(self.diag, spec.name, stmt, out)

    def _contiguous(self, spec: OpSpec, call: n.Call, inputs: list[Tensor]) -> None:
        """torch's view reinterprets memory in place: it refuses a tensor whose layout a permute, transpose,
        expand or slice changed.  convplan does not follow strides exactly (State.layout), so it asks for
        proof: a view of a tensor that may not be contiguous is refused, though torch takes some of them."""
        if spec.name != "view" or inputs[0].id not in self.st.strided:
            return
        self.diag.error("E300", "view: the input may not be contiguous in memory (it comes from "
                        f"{self.st.made_at(inputs[0]).strip(' ()')} through a permute, transpose, expand or "
                        "slice), which torch's view refuses", call.name_span,
                        hints=["call contiguous() before view, as torchvision's channel shuffle does, or use "
                               "reshape (which copies where it must)"])
        raise Skip

    def parameter(self, stmt: n.Layer, options) -> Tensor:
        """`name = Parameter((1, 1, D), init='zeros', scale=1.0)`: a learnable tensor, initialised as
        torch.<init>(size) * scale."""
        call = stmt.call
        if stmt.target is None:
            self.diag.error("E247", "a Parameter needs a name: it is the attribute the module holds it as",
                            call.span, hints=["e.g. class_token = Parameter((1, 1, D))"])
            raise Skip
        args = self.binder.op(_ParamSpec, call, options)
        size = args["size"] if isinstance(args["size"], tuple) else (args["size"],)
        for d in size:
            if at_least(d, 1) is not sympy.true:
                self.diag.error("E300", f"Parameter: each size must be positive, got {pyrepr(d)}",
                                _arg_span(_ParamSpec, call, "size"))
                raise Skip
        name = self.st.node_name("param", stmt.target, stmt.target_span)
        args = {**args, "size": size}
        node = Node(len(self.st.nodes), "param", name, (), size, stmt.span, kind=PARAMETER, args=args)
        return self.st.add_param(node, stmt.span)


def fit_targets(diag, name: str, stmt: n.Layer, out) -> None:
    """A call with several outputs names each, nested as torch nests them; one with one output, one name
    (E246).  Layers and operations alike."""
    targets = stmt.targets
    several = isinstance(out, Several)
    if several and targets is None and len(out) > 1:  # one piece (chunk(1)) takes one name
        names = ", ".join(f"t{k + 1}" for k in range(len(out)))
        diag.error("E246", f"{name} gives {len(out)} tensors here: name each", stmt.span,
                   hints=[f"e.g. {names} = {name}(...)"])
        raise Skip
    if targets is not None and not several:
        diag.error("E246", f"{name} gives one tensor, but the statement names {len(targets.names())}", targets.span)
        raise Skip
    if several and targets is not None:
        _fit(diag, name, targets, out)


def _fit(diag, name: str, targets: n.Targets, out: Several) -> None:
    if len(out) != len(targets.items):
        diag.error("E246", f"{name} gives {len(out)} tensors here, but the statement names {len(targets.items)}",
                   targets.span, hints=[f"each of {', '.join(_show(s) for s in out)} needs a name"])
        raise Skip
    for item, shape in zip(targets.items, out, strict=True):
        if isinstance(item, n.Targets) != isinstance(shape, Several):
            what = "a tuple of tensors" if isinstance(shape, Several) else "one tensor"
            diag.error("E246", f"{name} gives {what} here; the statement writes "
                       f"{'a group of names' if isinstance(item, n.Targets) else 'one name'}", item.span)
            raise Skip
        if isinstance(item, n.Targets):
            _fit(diag, name, item, shape)


def _show(shape) -> str:
    return "(" + ", ".join(_show(s) for s in shape) + ")" if isinstance(shape, Several) else show_shape(shape)


class _ParamSpec:
    name = PARAMETER
    args = PARAMETER_ARGS
    arg_names = tuple(a.name for a in PARAMETER_ARGS)
    star = False


def _arg_span(spec, call: n.Call, arg: str | None):
    if arg is None:
        return call.name_span
    for a in call.args:
        if a.name == arg:
            return a.span
    positional = [a for a in call.args if a.name is None]
    names = spec.arg_names
    if arg in names:
        k = names.index(arg)
        if spec.star and k == 0 and positional:
            return positional[0].span.to(positional[-1].span)
        if k < len(positional):
            return positional[k].span
    return call.name_span


def param_count(node: Node) -> sympy.Expr:
    """The elements of a learnable tensor."""
    out = sympy.Integer(1)
    for d in node.shape:
        out *= d
    return out


__all__ = ["OpCalls", "PARAMETER", "param_count"]
