"""A block's one class: its syntax walked once for all its calls (codeclasses.py holds the parts,
codeexpr.py the expressions).

Each statement is matched with what it made in every call (the next submodule and the next step
of forward, in order), so the class has the plan's names and the graph's values.  Each argument is
the expression the plan wrote where that gives every call's value, else a name that has the value in
every call (the block's input dims, such as `C`, become constructor arguments the caller passes),
else a literal, else a constructor argument of its own.  `if`s are decided per call, and each branch
is written from the calls that took it; where the calls cannot share the class, Unmergeable says why.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from . import nodes as n
from .codeclasses import (
    NO_DEFAULT,
    Arg,
    Assign,
    Call,
    Forward,
    If,
    Loop,
    chainable,
    count_of,
    inputs_of,
    inside,
    label,
    names_in,
    prune,
    prune_lets,
    render_forward,
    render_init,
    tensor_names,
    walk_names,
)
from .codeexpr import Unmergeable, default_text, equal, fold, interp, is_literal, plain, py
from .codeloops import drop_defaults, fold_iterations, loop_items
from .codeuntaken import Untaken, write_untaken
from .graph import Module, Node
from .opcall import PARAMETER
from .ops import OPS
from .pysource import Brackets, Namespace, Ops, Pre, Writer, value_source
from .scope import MODULE_ATTRS


class Shifted(Unmergeable):
    """The calls name a submodule differently: an `if` before it shifted the automatic names."""

    def __init__(self, message: str, paths: dict):
        super().__init__(message)
        self.paths = paths  # id of a call -> the submodule's name in it


def _culprit(ifs: list, paths: dict) -> int | None:
    """The `if` that explains the names: the last one whose branches each name the submodule one way."""
    for key, yes, no in reversed(ifs):
        if all(len({paths[c] for c in group if c in paths}) <= 1 for group in (yes, no)):
            return key
    return ifs[-1][0] if ifs else None


class BlockWriter:
    """Writes `class <name>(nn.Module)` for every call of one block definition."""

    def __init__(self, ctx, block: n.BlockDef, file: str, modules: list[Module], class_name: str, line_length: int,
                 reason: str = "", functions: frozenset = frozenset()):
        self.ctx, self.block, self.file, self.class_name = ctx, block, file, class_name
        self.reason = reason  # why the block's calls need more than this class
        self.functions = functions  # the size functions (`def`) the block's statements may call
        self.width = line_length
        graph = ctx.model.graph
        self.graph = graph
        self.steps = graph.steps()
        self.calls = [Call(m, dict(m.values), {}, [list(graph.children(m.path))], list(self.steps.get(m.path, [])))
                      for m in modules]
        self.local = Namespace(["self", "torch", "nn"])  # __init__'s names
        self.names: dict[str, str] = {}  # plan name -> its Python text in __init__
        self.args: dict[str, Arg] = {}  # Python argument name -> Arg
        self.dims: dict[str, str] = {}  # input dim (plan name) -> its argument, once used
        self.lets: set[str] = set()  # plan names assigned in __init__ so far, in scope here
        self.consts: dict[str, int] = {}  # loop indices of unrolled repeats
        self.decided: list = []  # (text, values): expressions chosen so far, for the arguments read from the input
        attrs = {(c.module_path if isinstance(c, Node) else c.path)[-1]
                 for m in modules for c in graph.children(m.path)}
        self.flags = Namespace([*attrs, *MODULE_ATTRS])
        self.refs = walk_names(block.body) & tensor_names(block.body)
        self.absorb: dict[int, int] = {}  # id of an `if` -> how many statements after it both branches take
        self.room: dict[int, int] = {}  # id of an `if` -> how many statements follow it
        self.ifs: list = []  # the `if`s written, where the calls took different branches: (id, yes, no) calls
        self.stmt = None  # the statement being written, for an operation's written arguments
        self.frozen = 0  # inside a numbered container: __init__ builds it as one expression
        self.kept: dict[str, str] = {}  # block parameter -> the attribute forward reads it from
        self.var_nodes: dict[str, dict] = {}  # forward's variable -> id of a call -> the node it holds there
        self.bound: dict[str, str] = {}  # input dim -> forward's local bound from the input's shape
        self.dim_at: dict[str, tuple[str, int]] = {}  # input dim -> (input variable, index)

    # -- the class ----------------------------------------------------------------------

    def write(self) -> tuple[str, dict]:
        """The class's text and its signature.  Where an `if` shifts the automatic names of what follows it
        (`convbnrelu1` or `convbnrelu2`), each of its branches takes the statements after it, one more per
        try, until the names line up again."""
        absorb: dict[int, int] = {}
        while True:
            writer = BlockWriter(self.ctx, self.block, self.file, [c.module for c in self.calls], self.class_name,
                                 self.width, self.reason, self.functions)
            writer.absorb = absorb
            try:
                return writer._write()
            except Shifted as exc:
                key = _culprit(writer.ifs, exc.paths)
                if key is None or absorb.get(key, 0) >= writer.room.get(key, 0):
                    raise Unmergeable(str(exc)) from None
                absorb[key] = absorb.get(key, 0) + 1

    def _write(self) -> tuple[str, dict]:
        block = self.block
        for p in block.params:
            self.names[p.name] = self.local.create(p.name)
            found = default_text(p)
            default, text = found if found else (NO_DEFAULT, "")
            self.args[self.names[p.name]] = Arg("param", [c.known[p.name] for c in self.calls], default,
                                                text)
        for c in self.calls:
            c.env = {p.name: c.known[p.name] for p in block.params}
        fwd = Forward(Namespace(["self", "torch", "nn"]), {})
        params = []
        for s, name in zip(inputs_of(block), self.calls[0].module.input_names, strict=True):
            var = fwd.names.create(name)
            params.append(var)
            self.var_nodes[var] = {id(c): c.module.inputs[len(params) - 1] for c in self.calls}
            if s.name:
                fwd.tensors[s.name] = var
            if not any(isinstance(d, n.Ellipsis_) for d in s.shape.dims):
                for k, d in enumerate(s.shape.dims):
                    if isinstance(d, n.Name) and d.id not in self.dim_at and d.id not in self.args_by_plan():
                        self.dim_at[d.id] = (var, k)
        self.fwd, self.fwd_inputs = fwd, params
        fwd.cur = params[0] if params else None
        init, forward = [], []
        self.body(block.body, self.calls, init, forward, fwd, None)
        for c in self.calls:
            if any(c.queues[0]) or c.steps:
                raise Unmergeable("the statements and the graph do not line up")
        result = fwd.output or fwd.cur
        forward, _ = prune(forward, {result})
        return self._text(init, forward, params, result), self._signature()

    def _signature(self) -> dict:
        """Python argument -> Arg, in the constructor's order: input dims, required parameters, the
        arguments of their own, parameters with defaults."""
        rank = {"dim": 0, "lifted": 2}
        order = sorted(self.args.items(), key=lambda kv: rank.get(kv[1].kind, 1 if kv[1].default is NO_DEFAULT
                                                                   else 3))
        return dict(order)

    def _text(self, init: list, forward: list, params: list, result: str) -> str:
        w = Writer(self.width)
        w.line(f"class {self.class_name}(nn.Module):")
        w.depth = 1
        doc = [[f"Block {self.block.name} of {self.file}."]]
        if self.reason:
            doc = [[f"Block {self.block.name} of {self.file}, for some of its calls."],
                   [f"A class per group of calls: {self.reason}."]]
        w.docstring(doc)
        w.line()
        sig = [a if arg.default is NO_DEFAULT else f"{a}={arg.text}" for a, arg in self._signature().items()]
        w.code("", Brackets("def __init__", ("self", *sig)), ":")
        w.depth = 2
        w.line("super().__init__()")
        for p, attr in self.kept.items():  # forward reads them: an operation's sizes
            w.line(f"self.{attr} = {self.names[p]}")
        render_init(w, prune_lets(init, set())[0])
        w.line()
        w.depth = 1
        w.code("", Brackets("def forward", ("self", *params)), ":")
        w.depth = 2
        self._bind_dims(w)
        render_forward(w, forward)
        w.line(f"return {result}")
        return w.text()

    def _bind_dims(self, w: Writer) -> None:
        """`N, C, H, W = x.shape`: the input's sizes an operation's written arguments read."""
        by_input: dict[str, dict[int, str]] = {}
        for d, local in self.bound.items():
            var, k = self.dim_at[d]
            by_input.setdefault(var, {})[k] = local
        for var, found in by_input.items():
            rank = next(len(s.shape.dims) for s, v in zip(inputs_of(self.block), self.fwd_inputs, strict=True)
                        if v == var)
            if len(found) > 1:
                names = ", ".join(found.get(k, "_") for k in range(rank))
                w.line(f"{names} = {var}.shape")
            else:
                (k, local), = found.items()
                w.line(f"{local} = {var}.shape[{k}]")

    # -- statements ---------------------------------------------------------------------

    def body(self, stmts, calls: list[Call], init: list, fwd_items: list, fwd: Forward, seq: list | None) -> None:
        k = 0
        while k < len(stmts):
            s, k = stmts[k], k + 1
            if isinstance(s, n.If):  # the statements it takes into both branches (write)
                key, more = id(s), self.absorb.get(id(s), 0)
                self.room[key] = len(stmts) - k
                tail = tuple(stmts[k:k + more])
                self._if(replace(s, body=s.body + tail, orelse=s.orelse + tail) if more else s, calls, init,
                         fwd_items, fwd, seq, key)
                k += more
                continue
            if isinstance(s, n.Input):
                self._input(s, calls)
            elif isinstance(s, n.Let):
                self._let(s.name, s.value, calls, init)
            elif isinstance(s, n.Ref):
                if s.name in fwd.tensors:
                    if s.target:
                        fwd.tensors[s.target] = fwd.tensors[s.name]
                    fwd.cur = fwd.tensors[s.name]
                elif s.target:
                    self._let(s.target, n.Name(s.name, s.span), calls, init)
                else:
                    raise Unmergeable(f"{s.name!r} is no tensor")
            elif isinstance(s, n.Layer) and s.call.name in self.functions and s.target:  # `c = make_divisible(...)`
                self._let(s.target, s.call, calls, init)
            elif isinstance(s, n.Layer) and s.call.name == PARAMETER and s.target and not fwd.silent:
                self._parameter(s, calls, init, fwd)
            elif isinstance(s, n.Layer):
                self._call(s, calls, init, fwd_items, fwd, seq)
            elif isinstance(s, n.Merge):
                self._merge(s, calls, init, fwd_items, fwd, seq)
            elif isinstance(s, n.Repeat):
                self._repeat(s, calls, init, fwd_items, fwd, seq)
            elif isinstance(s, n.Output):
                fwd.output = fwd.tensors[s.names[0].id]
            elif not isinstance(s, n.Pass):
                raise Unmergeable(f"cannot write {type(s).__name__}")

    def _input(self, s: n.Input, calls: list[Call]) -> None:
        for d in s.shape.dims:
            if isinstance(d, n.Name) and d.id not in self.names and d.id not in self.dims:
                self.dims[d.id] = ""  # an argument once an expression needs it
                for c in calls:
                    c.env[d.id] = c.known[d.id]

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

    # -- a value in __init__: the plan's expression, a name, a literal or an argument -------

    def let(self, name: str, value, calls: list[Call], init: list) -> None:
        self._let(name, value, calls, init)

    def target(self, name: str | None, fwd: Forward) -> str:
        return self._target(name, fwd)

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

    # -- calls of layers, blocks and merges ---------------------------------------------

    def _call(self, s: n.Layer, calls, init, fwd_items, fwd: Forward, seq) -> None:
        tensors = []
        for a in s.call.args:
            if a.name is None and isinstance(a.value, n.Name) and a.value.id in fwd.tensors:
                tensors.append(fwd.tensors[a.value.id])
            else:
                break
        options = s.call.args[len(tensors):]
        steps = [self._next_step(c, s) for c in calls]
        step = steps[0]
        if step.op == "layer" or step.op == "block":
            children = [c.queues[-1].pop(0) if c.queues[-1] else None for c in calls]
            for child, st in zip(children, steps, strict=True):
                path = child.module_path if isinstance(child, Node) else getattr(child, "path", None)
                if path != st.path:
                    raise Unmergeable("the statements and the graph do not line up")
            doc = self._child_doc(s, calls, steps, options)
            self._place(calls, steps, doc, init, seq)
            wanted = len(step.item.inputs) if step.op == "block" else 1
        else:
            wanted = 2
        if len(tensors) < wanted:
            tensors = [fwd.cur, *tensors]
        self.stmt = s
        self._step(s, calls, steps, tensors, fwd_items, fwd)
        self.stmt = None

    def _parameter(self, s: n.Layer, calls, init: list, fwd: Forward) -> None:
        """`self.scale = nn.Parameter(torch.ones(C, 1, 1) * 1e-06)`; forward reads it where the plan names it."""
        steps = []
        for c in calls:
            if not c.steps or c.steps[0].op != "param" or not inside(c.steps[0].item.span, s.span):
                raise Unmergeable("the statements and the graph do not line up")
            steps.append(c.steps.pop(0))
        node = steps[0].item
        rel = {st.path[len(c.module.path):] for c, st in zip(calls, steps, strict=True)}
        if len(rel) != 1 or any((st.item.args["init"], st.item.args["scale"]) != (node.args["init"], node.args["scale"])
                                or len(st.item.shape) != len(node.shape) for st in steps):
            raise Unmergeable("its Parameter differs between calls")
        written = s.call.args[0].value if s.call.args and s.call.args[0].name is None else None
        items = written.items if isinstance(written, n.Tuple) and len(written.items) == len(node.shape) else ()
        size = tuple(self.value(calls, [st.item.shape[k] for st in steps], items[k] if items else None,
                                f"{s.target}_size{k}", False) for k in range(len(node.shape)))
        self.ctx.uses_torch = True
        value = Brackets(f"torch.{node.args['init']}", size)
        scale = node.args["scale"]
        doc = Brackets("nn.Parameter", (Ops((value, value_source(scale, self.ctx.expr)), ("*",), 1)
                                        if scale != 1 else value,))
        access = "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rel.pop())
        init.append(("code", f"{access} = ", doc))
        fwd.tensors[s.target] = access

    def _next_step(self, c: Call, s: n.Layer):
        if not c.steps:
            raise Unmergeable("the statements and the graph do not line up")
        st = c.steps.pop(0)
        span = st.item.span
        name = st.item.name if st.op == "block" else (st.item.kind if st.op == "layer" else st.op)
        if name != s.call.name or not inside(span, s.span):
            raise Unmergeable("the statements and the graph do not line up")
        return st

    def _step(self, s, calls, steps, tensors: list, fwd_items: list, fwd: Forward) -> None:
        """forward's line for the step every call made here."""
        step = steps[0]
        owner = calls[0].module.path
        if step.op in ("layer", "block"):
            rel = step.path[len(owner):]
            other = next((st.path[len(c.module.path):] for c, st in zip(calls, steps, strict=True)
                          if st.path[len(c.module.path):] != rel), None)
            if other is not None:
                raise Shifted(f"an `if` shifts the automatic names ({'.'.join(rel)} or {'.'.join(other)}); "
                              "naming the layers in the plan (`conv = ...`) gives one class",
                              {id(c): st.path[len(c.module.path):] for c, st in zip(calls, steps, strict=True)})
            rhs = Brackets("self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rel), tuple(tensors))
        else:
            rhs = self._function(calls, steps, tensors, owner)
        if fwd.silent:
            fwd.cur = None
            return
        before = fwd.cur
        several = getattr(s, "targets", None)
        target = self._target(getattr(s, "target", None), fwd) if several is None else None
        if before in tensors and before != target and before not in fwd.pinned and \
                before not in fwd.tensors.values() and before not in fwd.free:
            fwd.free.append(before)  # the chain went on in a named variable: its own is free again
        fwd.label = step.path[-1] if step.op in ("layer", "block") else step.op
        where = f"{self.file}:{step.item.span.line}"
        if several is not None:  # `x1, x2 = x.chunk(2, dim=1)`: each name a variable; the chain goes on from the first
            variables = [fwd.names.create(x.id) if x.id in self.refs or k == 0 else "_"
                         for k, x in enumerate(several.names())]
            fwd.tensors.update({x.id: v for x, v in zip(several.names(), variables, strict=True) if v != "_"})
            it = iter(variables)
            fwd_items.append(Assign(_pattern(several, it, True), rhs, tuple(tensors), where, True,
                                    tuple(v for v in variables if v != "_")))
            fwd.cur = variables[0]
            return
        fwd_items.append(Assign(target, rhs, tuple(tensors), where, step.op not in ("layer", "block")))
        self.var_nodes.setdefault(target, {}).update({id(c): st.out for c, st in zip(calls, steps, strict=True)})
        fwd.cur = target

    def _function(self, calls, steps, tensors: list, owner) -> object:
        """A function's right-hand side, the same for every call: an operation's sizes read from its operands
        when forward runs (`x.shape[0]`); calls whose code differs cannot share the class."""
        from .codegen import emit
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

    def _target(self, name: str | None, fwd: Forward) -> str:
        """The variable a value goes to: its own where a later statement names it, else the chain's."""
        if name and name in self.refs:
            var = fwd.names.create(name)
            fwd.tensors[name] = var
            return var
        if fwd.cur is not None and fwd.cur not in fwd.pinned and fwd.cur not in fwd.tensors.values():
            return fwd.cur
        while fwd.free:
            var = fwd.free.pop(0)
            if var not in fwd.pinned:
                return var
        return fwd.names.create("out" if fwd.names.taken("x") else "x")

    def _child_doc(self, s: n.Layer, calls, steps, options):
        """The constructor call of the submodule every call made here."""
        step = steps[0]
        written = self._written(s, step, options)
        if step.op == "layer":
            node = step.item
            if any(st.item.kind != node.kind or st.item.given != node.given for st in steps):
                raise Unmergeable(f"{node.kind} is given different arguments in different calls")
            hint = node.module_path[-1]
            out = []
            for name, positional in node.spec.call_args(node.given):
                doc = self.value(calls, [st.item.args[name] for st in steps], written.get(name), f"{hint}_{name}",
                                 name == node.spec.inferred)
                out.append(doc if positional else Pre(f"{name}=", doc))
            return Brackets(_layer_head(node), tuple(out))
        cls, args = self.ctx.classes[step.item.path]
        if any(self.ctx.classes[st.item.path][0] != cls for st in steps):
            raise Unmergeable(f"the calls of {step.item.name} here are different classes")
        defaults = self.ctx.defaults.get(cls, {})
        hint = step.path[-1]
        out = []
        for a, _ in args:
            values = [dict(self.ctx.classes[st.item.path][1])[a] for st in steps]
            if a in defaults and all(equal(v, defaults[a]) for v in values) and not self.frozen:
                continue  # in a repeat, left out once its iterations are folded (codeloops.drop_defaults)
            out.append(Pre(f"{a}=", self.value(calls, values, written.get(a), f"{hint}_{a}",
                                               a not in written)))
        return Brackets(cls, tuple(out))

    def _written(self, s: n.Layer, step, options) -> dict:
        """Argument name -> the expression written for it."""
        if step.op == "layer":
            order = step.item.spec.arg_names
        else:
            order = [p.name for p in self._definition(step.item).params]
        out = {}
        for i, a in enumerate(options):
            name = a.name if a.name is not None else (order[i] if i < len(order) else None)
            if name is not None:
                out[name] = a.value
        if step.op == "block":  # the callee's parameter -> its Python argument
            pymap = self.ctx.block_args.get(self.ctx.classes[step.item.path][0], {})
            out = {pymap.get(k, k): v for k, v in out.items()}
        return out

    def _definition(self, m: Module) -> n.BlockDef:
        return self.ctx.model.blocks[m.name][0].definition

    def _place(self, calls, steps, doc, init: list, seq: list | None) -> None:
        if seq is not None:
            seq.append(doc)
            return
        rel = steps[0].path[len(calls[0].module.path):]
        init.append(("code", "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rel) + " = ", doc))

    def _merge(self, s: n.Merge, calls, init, fwd_items, fwd: Forward, seq) -> None:
        start, outs = fwd.cur, []
        saved = set(fwd.pinned)
        for k, branch in enumerate(s.branches):
            fwd.cur = start
            fwd.pinned = saved | set(outs) | ({start} if k < len(s.branches) - 1 else set())
            mark = len(fwd_items)
            self.body(branch.body, calls, init, fwd_items, fwd, seq)
            last = fwd_items[-1] if len(fwd_items) > mark else None
            if k < len(s.branches) - 1 and isinstance(last, Assign) and last.target == fwd.cur and \
                    fwd.cur != start and fwd.cur not in fwd.tensors.values() and fwd.cur not in saved:
                # the branch's value waits for the merge: named after what made it (`convbn3`); the chain's
                # variable is free again
                fwd.free.append(fwd.cur)
                last.target = fwd.cur = fwd.names.create(fwd.label)
            outs.append(fwd.cur)
            if branch.name:
                fwd.tensors[branch.name] = fwd.cur
        fwd.pinned = saved
        steps = [self._next_step(c, n.Layer(s.call, None, s.span)) for c in calls]
        for st in steps[1:]:
            if st.item.args != steps[0].item.args:
                raise Unmergeable(f"{s.call.name}'s arguments differ between calls")
        self._step(s, calls, steps, outs, fwd_items, fwd)

    # -- repeats and conditions ---------------------------------------------------------

    def _repeat(self, s: n.Repeat, calls, init, fwd_items, fwd: Forward, seq) -> None:
        each = [1 if s.count is None else count_of(interp(s.count, c.env)) for c in calls]
        counts = set(each)
        if len(counts) > 1 and s.target is None:
            return self._loop(s, calls, each, init, fwd_items, fwd, seq)
        if len(counts) != 1:
            raise Unmergeable(f"its repeat count differs between calls ({', '.join(map(str, sorted(counts)))}): "
                              "the submodules are numbered per call")
        count = counts.pop()
        if s.target is None:
            return self._unroll(s, count, calls, init, fwd_items, fwd, seq)
        seqs = [c.queues[-1].pop(0) if c.queues[-1] else None for c in calls]
        if any(not isinstance(m, Module) or m.kind != "seq" for m in seqs):
            raise Unmergeable("the statements and the graph do not line up")
        rel = {m.path[len(c.module.path):] for m, c in zip(seqs, calls, strict=True)}
        if len(rel) != 1:
            raise Unmergeable("the submodules' paths differ between calls")
        for m, c in zip(seqs, calls, strict=True):
            c.queues.append(list(self.graph.children(m.path)))
        docs: list = []
        chained = chainable(s.body, self.refs) and count > 0 and not fwd.silent
        entry = fwd.cur
        self.frozen += 1
        fwd.silent += chained
        try:
            self._unroll(s, count, calls, init, fwd_items, fwd, docs)
        finally:
            self.frozen -= 1
            fwd.silent -= chained
        for c in calls:
            if c.queues.pop():
                raise Unmergeable("the statements and the graph do not line up")
        path = rel.pop()
        doc = self._container(s, count, path, docs, init)
        if seq is not None:
            seq.append(doc)
        else:
            init.append(("code", "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path) + " = ", doc))
        if chained:
            fwd.cur = entry
            target = self._target(s.target, fwd)
            line = seqs[0].span.line
            access = "self" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path)
            fwd_items.append(Assign(target, Brackets(access, (entry,)), (entry,), f"{self.file}:{line}"))
            fwd.label = path[-1]
            fwd.cur = target
        elif s.target in self.refs and fwd.cur is not None:
            fwd.tensors[s.target] = fwd.cur

    def _container(self, s: n.Repeat, count: int, path: tuple, docs: list, init: list):
        """A repeat's nn.Sequential: built in a `for` where its iterations are alike (codeloops.py)."""
        written = lambda v: value_source(plain(v), self.ctx.expr)  # noqa: E731
        strip = lambda d: drop_defaults(d, self.ctx.defaults, written)  # noqa: E731
        var, folded = "_", fold_iterations(docs, count, None)
        if folded is None:
            var = self.local.create(s.var or "i")
            folded = fold_iterations(docs, count, var)
            if folded is None:
                self.local.release(var)
                return Brackets("nn.Sequential", tuple(strip(d) for d in docs))
        name = self.local.create(path[-1])
        init += loop_items(name, var, str(count), [strip(d) for d in folded])
        return Brackets("nn.Sequential", (f"*{name}",))

    def _loop(self, s: n.Repeat, calls, counts: list[int], init, fwd_items, fwd: Forward, seq) -> None:
        """A repeat whose count differs between calls, of one call (`repeat i in repeats: Block(...)`), as a
        loop: `self.add_module(f"block{i + 1}", Block(...))` in __init__, `getattr(self, f"block{i + 1}")` in
        forward: the submodules keep the names build() gives them."""
        differs = Unmergeable(f"its repeat count differs between calls ({', '.join(map(str, sorted(set(counts))))})"
                              ": the submodules are numbered per call")
        body = [x for x in s.body if not isinstance(x, n.Pass)]
        stmt = body[0] if len(body) == 1 else None
        if seq is not None or fwd.silent or not isinstance(stmt, n.Layer) or stmt.target or stmt.targets or \
                any(a.name is None and isinstance(a.value, n.Name) and a.value.id in fwd.tensors
                    for a in stmt.call.args):
            raise differs
        runs = []
        for c, k in zip(calls, counts, strict=True):
            steps = [self._next_step(c, stmt) for _ in range(k)]
            for st in steps:
                child = c.queues[-1].pop(0) if c.queues[-1] else None
                if st.op not in ("layer", "block") or \
                        (child.module_path if isinstance(child, Node) else getattr(child, "path", None)) != st.path:
                    raise differs
            runs.append(steps)
        numbered = {_numbered(st.path[len(c.module.path):], j) for c, steps in zip(calls, runs, strict=True)
                    for j, st in enumerate(steps)}
        if len(numbered) != 1 or None in numbered:
            raise differs
        prefix, start = numbered.pop()
        var = self.local.create(s.var or "i")
        self.names[s.var or "\0i"], saved = var, set(self.lets)
        self.lets.add(s.var or "\0i")
        try:
            doc = self._loop_child(stmt, calls, runs, var, s.var)
        finally:
            self.lets = saved
        name = f'f"{prefix}{{{var} + {start}}}"' if start else f'f"{prefix}{{{var}}}"'
        init.append(("for", var, self.expr(s.count), [("code", "", Brackets("self.add_module", (name, doc)))]))
        entry = fwd.cur
        target = self._target(None, fwd)
        if target != entry:
            fwd_items.append(Assign(target, entry, (entry,)))
        fvar = fwd.names.create(s.var or "i")
        count = py(s.count, {x: self._forward_name(x) for x in names_in(s.count)})[0]
        call = f'getattr(self, f"{prefix}{{{fvar} + {start}}}")' if start else f'getattr(self, f"{prefix}{{{fvar}}}")'
        fwd_items.append(Loop(fvar, count, [Assign(target, Brackets(call, (target,)), (target,),
                                                   f"{self.file}:{stmt.span.line}")]))
        fwd.cur = target

    def _loop_child(self, stmt: n.Layer, calls, runs: list, var: str, plan_var: str | None):
        """The constructor call of a loop's submodule: each argument as the plan wrote it (with the loop's index),
        else as one value for the first iteration and one for the others (`C if i == 0 else out`)."""
        first = runs[0][0] if runs[0] else next(r[0] for r in runs if r)
        options = stmt.call.args
        written = self._written(stmt, first, options)
        if first.op == "block":
            cls, args = self.ctx.classes[first.item.path]
            if any(self.ctx.classes[st.item.path][0] != cls for r in runs for st in r):
                raise Unmergeable(f"the calls of {first.item.name} here are different classes")
            names = [a for a, _ in args]
            value_of = lambda st, a: dict(self.ctx.classes[st.item.path][1])[a]  # noqa: E731
            defaults = self.ctx.defaults.get(cls, {})
            head, keyword = cls, lambda a, positional: True  # noqa: E731
        else:
            node = first.item
            if any(st.item.kind != node.kind or st.item.given != node.given for r in runs for st in r):
                raise Unmergeable(f"{node.kind} is given different arguments in different calls")
            order = node.spec.call_args(node.given)
            names = [a for a, _ in order]
            value_of = lambda st, a: st.item.args[a]  # noqa: E731
            defaults, head = {}, _layer_head(node)
            keyword = lambda a, positional: not positional  # noqa: E731
            positions = dict(order)
        out = []
        for a in names:
            values = [[value_of(st, a) for st in r] for r in runs]
            if a in defaults and all(equal(v, defaults[a]) for vs in values for v in vs):
                continue
            text = self._loop_value(calls, values, written.get(a), var, plan_var, a,
                                    first.op == "block" and a not in written or first.op == "layer"
                                    and a == first.item.spec.inferred)
            positional = first.op == "layer" and positions[a]
            out.append(Pre(f"{a}=", text) if keyword(a, positional) else text)
        return Brackets(head, tuple(out))

    def _loop_value(self, calls, values: list, written, var: str, plan_var: str | None, hint: str, inferred: bool):
        if written is not None and plan_var is not None:
            try:
                if all(equal(interp(written, {**c.env, plan_var: j}), v)
                       for c, vs in zip(calls, values, strict=True) for j, v in enumerate(vs)):
                    return self.expr(written)
            except (Unmergeable, ArithmeticError, TypeError):
                pass
        head = [(c, vs[0]) for c, vs in zip(calls, values, strict=True) if vs]
        rest = [(c, vs[1]) for c, vs in zip(calls, values, strict=True) if len(vs) > 1]
        if any(not all(equal(v, vs[1]) for v in vs[1:]) for vs in values if len(vs) > 1):
            raise Unmergeable(f"the iterations' {hint} differ otherwise than the first from the others")
        texts = [self.value([c for c, _ in part], [v for _, v in part], written if plan_var is None else None, hint,
                            inferred) for part in (head, rest) if part]
        return texts[0] if len(texts) == 1 or texts[0] == texts[1] else f"{texts[0]} if {var} == 0 else {texts[1]}"

    def _unroll(self, s: n.Repeat, count: int, calls, init, fwd_items, fwd: Forward, seq) -> None:
        saved = self.consts.get(s.var) if s.var else None
        for i in range(count):
            if s.var:
                self.consts[s.var] = i
                for c in calls:
                    c.env[s.var] = i
            self.body(s.body, calls, init, fwd_items, fwd, seq)
        if s.var:
            self.consts.pop(s.var, None)
            if saved is not None:
                self.consts[s.var] = saved

    def _if(self, s: n.If, calls, init, fwd_items, fwd: Forward, seq, key: int) -> None:
        taken = []
        for c in calls:
            try:
                taken.append(bool(interp(s.cond, c.env)))
            except (ArithmeticError, TypeError) as exc:
                raise Unmergeable("a condition it cannot decide") from exc
        static = names_in(s.cond) <= set(self.consts)
        if static or len(calls) == 0:
            branch = s.body if (taken and taken[0]) else s.orelse
            return self.body(branch, calls, init, fwd_items, fwd, seq)
        if seq is not None or fwd.silent:
            raise Unmergeable("an `if` inside a numbered container")
        cond = self.expr(s.cond)
        yes = [c for c, t in zip(calls, taken, strict=True) if t]
        no = [c for c, t in zip(calls, taken, strict=True) if not t]
        entry, tensors, pinned = fwd.cur, dict(fwd.tensors), set(fwd.pinned)
        reusable = entry is not None and entry not in pinned and entry not in tensors.values()
        phi = entry if reusable else fwd.names.create("out" if fwd.names.taken("x") else "x")
        lets = set(self.lets)
        parts = []
        for branch, group in ((s.body, yes), (s.orelse, no)):
            init_b, fwd_b = [], []
            fwd.cur, fwd.tensors, fwd.pinned = phi, dict(tensors), set(pinned)
            self.lets = set(lets)
            if group:
                self.body(branch, group, init_b, fwd_b, fwd, None)
                last = fwd_b[-1] if fwd_b else None
                if isinstance(last, Assign) and last.target == fwd.cur and not last.several and \
                        fwd.cur not in tensors.values() and fwd.cur not in pinned and fwd.cur not in last.reads:
                    last.target = fwd.cur = phi  # `x = torch.cat(...)`, not `out = ...` and then `x = out`
                if fwd.cur != phi:
                    fwd_b.append(Assign(phi, fwd.cur, (fwd.cur,)))
                    self.var_nodes.setdefault(phi, {}).update({k: v for k, v in self.var_nodes.get(fwd.cur, {}).items()
                                                               if k in {id(c) for c in group}})
            elif any(not isinstance(x, (n.Pass, n.Let)) for x in branch):
                try:  # no call takes it: written from its syntax, for the calls that would
                    write_untaken(self, branch, calls, init_b, fwd_b, fwd)
                    if fwd.cur != phi:
                        fwd_b.append(Assign(phi, fwd.cur, (fwd.cur,)))
                except (Untaken, Unmergeable):
                    line = branch[0].span.line
                    init_b, fwd_b = [("raise", f"{self.class_name} cannot write this branch, which none of the "
                                               f"plan's calls takes ({self.file}:{line})")], []
            parts.append((init_b, fwd_b))
        fwd.tensors, fwd.pinned, self.lets = tensors, pinned, lets
        if yes and no:
            self.ifs.append((key, {id(c) for c in yes}, {id(c) for c in no}))
        (init_yes, fwd_yes), (init_no, fwd_no) = parts
        if fwd_yes or fwd_no:
            flag = self.flags.create("use_" + (label(s.body) or label(s.orelse) or "branch"))
            init.append(("code", f"self.{flag} = ", cond))
            if init_yes or init_no:
                init.append(("if", f"self.{flag}", init_yes, init_no))
            if phi != entry:
                fwd_items.append(Assign(phi, entry, (entry,)))
            fwd_items.append(If(f"self.{flag}", fwd_yes, fwd_no))
            fwd.cur = phi
        else:
            if init_yes or init_no:
                init.append(("if", cond, init_yes, init_no))
            if phi != entry:
                fwd.names.release(phi)
            fwd.cur = entry


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


def _pattern(targets: n.Targets, variables, top: bool) -> str:
    """`a, (b, c)`: the variables in the shape of the statement's targets."""
    text = ", ".join(_pattern(x, variables, False) if isinstance(x, n.Targets) else next(variables)
                     for x in targets.items)
    text += "," * (len(targets.items) == 1)
    return text if top else f"({text})"


def _numbered(rel: tuple[str, ...], j: int):
    """(`invertedresidual`, 1) for the j-th of `invertedresidual1`, `invertedresidual2`, ...; None otherwise."""
    import re

    found = re.fullmatch(r"(.*?[^0-9])([0-9]+)", rel[0]) if len(rel) == 1 else None
    return (found[1], int(found[2]) - j) if found else None


def _layer_head(node: Node) -> str:
    """`nn.Conv2d`, or a kind torch.nn lacks by its own name (its class is copied into the file)."""
    return f"nn.{node.spec.name}" if node.spec.module == "torch.nn" else node.spec.name
