"""A block's one class: its syntax walked once for all its calls (codeclasses.py holds the parts,
codeexpr.py the expressions; how a value is chosen is codevalues.py's, an operation codeops.py's, a
repeat coderepeats.py's, an `if` codebranches.py's).

Each statement is matched with what it made in every call (the next submodule and the next step
of forward, in order), so the class has the plan's names and the graph's values.  Each argument is
the expression the plan wrote where that gives every call's value, else a name that has the value in
every call (the block's input dims, such as `C`, become constructor arguments the caller passes),
else a literal, else a constructor argument of its own.  `if`s are decided per call, and each branch
is written from the calls that took it; where the calls cannot share the class, Unmergeable says why.
"""

from __future__ import annotations

from dataclasses import replace

from . import nodes as n
from .codebranches import BranchWriter, Shifted, culprit
from .codeclasses import (
    NO_DEFAULT,
    Arg,
    Assign,
    Call,
    Forward,
    inputs_of,
    inside,
    layer_source,
    prune,
    prune_lets,
    render_forward,
    render_init,
    tensor_names,
    walk_names,
)
from .codeexpr import Unmergeable, default_text, equal
from .codeops import OpWriter
from .coderepeats import RepeatWriter
from .codeuntaken import named_tensors
from .codevalues import ValueWriter
from .graph import Module, Node
from .opcall import PARAMETER
from .pysource import Brackets, Namespace, Ops, Pre, Writer, value_source
from .scope import MODULE_ATTRS


class BlockWriter(ValueWriter, OpWriter, RepeatWriter, BranchWriter):
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
        self.in_repeat = False  # inside a repeat's container: an inner one is no loop of its own
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
                key = culprit(writer.ifs, exc.paths, writer.room, absorb)
                if key is None:
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

    def let(self, name: str, value, calls: list[Call], init: list) -> None:
        self._let(name, value, calls, init)

    def target(self, name: str | None, fwd: Forward) -> str:
        return self._target(name, fwd)

    # -- calls of layers, blocks and merges ---------------------------------------------

    def _call(self, s: n.Layer, calls, init, fwd_items, fwd: Forward, seq) -> None:
        tensors = named_tensors(s, fwd)
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
            # the graph says how many tensors the call took: the chain's value comes first where fewer are
            # written (MultiheadAttention(k, v) after the line that made its query)
            wanted = len(step.item.inputs)
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
            if step.op == "layer" and any(k in step.item.given for k in step.item.spec.forward_args):
                raise Unmergeable(f"{step.item.kind} takes {', '.join(step.item.spec.forward_args)} in forward")
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
            return layer_source(node, lambda name: self.value(calls, [st.item.args[name] for st in steps],
                                                              written.get(name), f"{hint}_{name}",
                                                              name == node.spec.inferred))
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



def _pattern(targets: n.Targets, variables, top: bool) -> str:
    """`a, (b, c)`: the variables in the shape of the statement's targets."""
    text = ", ".join(_pattern(x, variables, False) if isinstance(x, n.Targets) else next(variables)
                     for x in targets.items)
    text += "," * (len(targets.items) == 1)
    return text if top else f"({text})"
