"""The walker: a plan body run statement by statement, deciding what feeds what.

A body is a chain: each statement consumes the chain's value and makes a new one.  Blocks
are expanded at each call (their input shapes bind names, so a block can compute widths
from its input), repeats are unrolled and conditions decided, so the graph that comes out
is plain: layers and merges.  Structure must be decidable: a condition or repeat count
that depends on an unknown size is refused.  A statement that fails passes its input on,
so later lines are still checked (and keep their shapes).
"""

from __future__ import annotations

import weakref
from dataclasses import replace

import sympy

from . import nodes as n
from .arguments import Binder
from .assertions import Assertions, Named
from .blockcall import BlockCalls
from .errors import Span, did_you_mean, rename_fix
from .functions import Functions
from .hints import source_text
from .layercall import _LITERALS, LayerCalls, laid_out, literal_key
from .layercall import UNREAD as _UNREAD
from .layers import BATCH_FIRST, BATCH_FIRST_IN_TRAINING, CONTIGUOUS, REGISTRY, LayerSpec, same_shape
from .merges import MERGES, MergeError
from .opcall import PARAMETER, OpCalls
from .ops import OPS
from .scope import Abort, Frame, Made, Skip, State, Tensor, check_name, new_tensor
from .shapes import at_least, dim, pyrepr, stand_in
from .show import show_shape
from .values import Values, what_is
from .viewcheck import merged_view

_new_tuple = tuple.__new__  # a Made in one call into C
MAX_NESTING = 100  # bodies inside bodies (blocks, repeats, ifs, branches), all files together
MAX_REPEAT = 10_000
MAX_STEPS = 100_000  # statements executed while unrolling

_MISSING = object()


class Walker:
    def __init__(self, st: State):
        self.st, self.diag = st, st.diag
        self.values = Values(st)
        self.binder = Binder(st, self.values)
        self.assertions = Assertions(st, self.values)
        self.layers = LayerCalls(st, self.binder, self.assertions)
        self.functions = Functions(st, self.values, self.binder)  # calls values: values refers back to it weakly
        self.values.functions = weakref.proxy(self.functions)  # (a cycle otherwise, for the collector: nogc.py)
        self.ops = OpCalls(st, self.binder)
        self.blocks = BlockCalls(self)
        self.depth = 0  # bodies being walked, one inside the other
        # id(layer statement) -> what `_call` reads of it alone (see `_site`): a block's lines run at every call
        self.sites: dict = {}
        # (id(merge call), its options' count, id of each input shape) -> (the call, the shapes, options, output,
        # conditions): see `_merge`
        self.merged: dict = {}

    @property
    def frame(self) -> Frame:
        return self.st.frame

    # -- the plan --------------------------------------------------------------------------

    def plan(self, plan: n.PlanDef) -> Frame:
        """Walk the plan; its frame holds the outputs.  Problems are diagnostics; Abort stops early."""
        check_name(self.diag, plan.name, plan.name_span, "plan name")
        root = Frame({}, self.st.library, self.diag.file, self.diag.source)
        self.diag.frames.append(root)
        self._definitions()
        self._params(plan)
        body = plan.body
        if not body or not isinstance(body[0], n.Input):
            span = body[0].span if body else plan.span
            self.diag.error("E200", "a plan starts with its input, e.g. `input [N, C, L]`", span)
            return root
        self.body(body)
        return root

    def _params(self, plan: n.PlanDef) -> None:
        env = self.st.env
        for p in plan.params:
            if p.name in env:
                self.diag.error("E201", f"parameter {p.name!r} is declared twice", p.span)
                continue
            ok = check_name(self.diag, p.name, p.span, "parameter name")
            if p.name in self.st.sizes:
                value = sympy.Integer(self.st.sizes[p.name])
            elif p.default is not None:
                try:
                    value = self.values.number(p.default, "a parameter default")  # an int, or a float as a block's
                    if not isinstance(value, float):
                        value = self.values.integer(value, p.default, "a parameter default")
                except Skip:  # reported; a stand-in symbol keeps its uses from each saying "unknown name"
                    value = dim(p.name) if ok else stand_in(p.name)
            else:
                value = dim(p.name) if ok else stand_in(p.name)
            env[p.name] = value
            self.frame.names[p.name] = value

    def _definitions(self) -> None:
        """Names of the blocks the plan can call, checked once whether or not they are called."""
        for src in {id(s): s for s in self.st.library.values()}.values():
            frame = Frame({}, src.namespace, src.file, src.source)
            with self.diag.located(frame):
                what = "function name" if isinstance(src.definition, n.FunctionDef) else "block name"
                check_name(self.diag, src.definition.name, src.definition.name_span, what)
                seen = set()
                for p in src.definition.params:
                    if p.name in seen:
                        self.diag.error("E201", f"parameter {p.name!r} is declared twice", p.span)
                    seen.add(p.name)
                    check_name(self.diag, p.name, p.span, "parameter name")

    # -- bodies ----------------------------------------------------------------------------

    def body(self, stmts, nested: bool = False) -> None:
        if self.depth >= MAX_NESTING:
            self.diag.error("E262", f"statements nest more than {MAX_NESTING} deep", stmts[0].span if stmts else
                            Span(1, 1, 1, 1), hints=["move the inner part into a block of its own"])
            raise Abort
        # self.frame: the body is walked in the frame it starts in (a block call's frame is pushed and popped
        # within its statement), so it is the frame after each statement too
        frame = self.diag.frames[-1]
        frame.nested += nested
        self.depth += 1
        st, handlers = self.st, _HANDLERS
        nodes, trace, file = st.nodes, st.trace, frame.file
        try:
            for stmt in stmts:
                try:  # a statement, in this loop rather than a call of its own: this runs for every statement
                    st.steps += 1
                    if st.steps > MAX_STEPS:  # repeats and recursion multiply: bound the work, not just the depth
                        self.diag.error("E007", f"the plan unrolls to more than {MAX_STEPS:,} statements",
                                        stmt.span, hints=["a block that calls itself several times, or nested "
                                                          "repeats, grow exponentially"])
                        raise Abort
                    start = len(nodes)
                    kind = type(stmt)
                    handlers[kind](self, stmt)
                    current = frame.current
                    if current is not None and kind not in _MAKE_NOTHING:  # what it made, for editors
                        trace.append(_new_tuple(Made, (file, stmt.span, start, len(nodes), current.id, None)))
                except Skip:
                    if type(stmt) is n.Layer:
                        self._stand_in(stmt)
                    elif isinstance(stmt, n.Input) and frame.block is not None:
                        raise  # the caller's tensor does not fit the block: the rest would only say E244
                    cur = frame.current
                    if cur is not None:
                        frame.current = replace(cur, tainted=True)
        finally:
            frame.nested -= nested
            self.depth -= 1

    def bind(self, name: str | None, value, span: Span) -> None:
        if name is None:
            return
        check_name(self.diag, name, span, "name")
        old = self.frame.names.get(name, _MISSING)
        if old is not _MISSING and isinstance(old, Tensor) != isinstance(value, Tensor):
            what = "a tensor" if isinstance(old, Tensor) else "a parameter or size"
            self.diag.error("E243", f"{name!r} is already {what} here; choose another name", span)
            raise Skip
        self.frame.names[name] = value

    def _need_current(self, span: Span) -> Tensor:
        current = self.diag.frames[-1].current  # self.frame's: this runs for nearly every layer
        if current is None:
            self.diag.error("E244", "there is no tensor here to work on", span,
                            hints=["start with `input [...]`, or name a tensor on its own line first"])
            raise Skip
        return current

    # -- statements ------------------------------------------------------------------------

    def _input(self, stmt: n.Input) -> None:
        f = self.diag.frames[-1]  # self.frame: read once, and handed to a block's input (one each call)
        if f.nested:
            self.diag.error("E206", "an input belongs at the top level of a plan or block", stmt.span)
            raise Skip
        if f.block is not None:
            return self.blocks.input(stmt, f)
        for d in stmt.shape.dims:
            if isinstance(d, n.Ellipsis_):
                self.diag.error("E207", "`...` stands for leading dims only in a block's input pattern", d.span)
                raise Skip
        dims = self._input_dims(stmt)
        name = self.st.node_name("x", stmt.name or "x", stmt.span)
        tensor = self.st.new_node("input", name, (), tuple(dims), stmt.span)
        f.current = tensor  # first: the chain goes on even if the name is refused (no E244 on every line)
        try:
            self.bind(stmt.name or "x", tensor, stmt.span)
        except Skip:
            if stmt.name is None:
                self.diag.add_hint("an unnamed input is called `x`: rename that dim, or name the input "
                                   "(`input img [...]`)")
            raise

    def _input_dims(self, stmt: n.Input) -> list:
        """A plan input's dims: a new name is a size symbol (N, L, H, W), the rest are expressions."""
        dims = []
        for d in stmt.shape.dims:
            if isinstance(d, n.Name) and (d.id not in self.frame.names or d.id in self.st.symbols):
                dims.append(self._symbol(d))
            else:
                try:
                    dims.append(self.values.int(d, "an input dim"))
                except Skip:  # reported; a stand-in keeps the layers below checked
                    dims.append(stand_in(source_text(d.span, self.diag.source) or f"dim {len(dims) + 1}"))
                self._positive_dim(dims[-1], d.span)
        if not dims:
            self.diag.error("E204", "the input needs at least one dim", stmt.shape.span)
            raise Skip
        return dims

    def _symbol(self, name: n.Name) -> sympy.Basic:
        if not check_name(self.diag, name.id, name.span, "dim name"):
            return stand_in(name.id)  # the plan is refused; later layers are still checked
        if name.id not in self.st.symbols:
            self.st.symbols.append(name.id)
        if name.id in self.st.sizes:
            value = sympy.Integer(self.st.sizes[name.id])
            self._positive_dim(value, name.span)
        else:
            value = dim(name.id)
        self.frame.names[name.id] = value
        return value

    def _positive_dim(self, value, span: Span) -> None:
        if at_least(value, 1) is sympy.false:
            self.diag.error("E205", f"an input dim must be positive, got {pyrepr(value)}", span)

    def _let(self, stmt: n.Let) -> None:
        self.bind(stmt.name, self.values.eval(stmt.value, stmt.name), stmt.name_span)

    def _ref(self, stmt: n.Ref) -> None:
        value = self.values.lookup(n.Name(stmt.name, stmt.span if stmt.target is None else _tail(stmt)))
        if stmt.target is not None and not isinstance(value, Tensor):  # `a = b` of numbers
            self.bind(stmt.target, value, stmt.target_span)
            return
        if not isinstance(value, Tensor):
            self.diag.error("E240", f"{stmt.name!r} is {what_is(value)}, not a tensor", stmt.span,
                            hints=["a name on its own line continues the chain from that tensor"])
            raise Skip
        self.bind(stmt.target, value, stmt.target_span or stmt.span)
        self.frame.current = value

    def _return(self, stmt: n.Return) -> None:
        self.diag.error("E209", "`return` belongs in a def (a size function); a plan or block ends with its "
                        "chain's value, or `output name`", stmt.span)
        raise Skip

    def _output(self, stmt: n.Output) -> None:
        if self.frame.nested:
            self.diag.error("E206", "an output belongs at the top level of a plan or block", stmt.span,
                            hints=["name the tensor here (`skip = ...`) and write `output` at the end of the body"])
            raise Skip
        tensors = []
        for name in stmt.names:
            value = self.values.lookup(name)
            if not isinstance(value, Tensor):
                self.diag.error("E240", f"{name.id!r} is {what_is(value)}, not a tensor", name.span)
                raise Skip
            tensors.append(value)
        f = self.frame
        if f.block is not None and len(tensors) != 1:
            self.diag.error("E250", f"a block gives one tensor; this output names {len(tensors)}", stmt.span)
            raise Skip
        if f.outputs is not None:
            self.diag.error("E251", "there is already an output statement", stmt.span)
            raise Skip
        f.outputs = tuple(tensors)
        f.current = tensors[-1]

    def _repeat(self, stmt: n.Repeat) -> None:
        count = sympy.Integer(1) if stmt.count is None else self.values.int(stmt.count, "a repeat count")
        if not count.is_Integer:
            self.values.undecidable(stmt.count, count, "a repeat count")
        if not 0 <= int(count) <= MAX_REPEAT:
            self.diag.error("E221", f"a repeat count must be between 0 and {MAX_REPEAT}, got {count}",
                            stmt.count.span)
            raise Skip
        if stmt.target is None:
            return self._unroll(stmt, int(count))
        # `name = repeat ...:` is a numbered submodule (an nn.Sequential): its children are numbered
        name = self.st.node_name("repeat", stmt.target, stmt.target_span)
        f = self.frame
        f.containers.append(self.st.open_module("seq", name, stmt.target_span))
        saved = f.prefix, f.counts
        f.prefix, f.counts = name + "_", {}  # node names follow the tree: layer1_basicblock1_conv1
        try:
            self._unroll(stmt, int(count))
        finally:
            f.containers.pop()
            f.prefix, f.counts = saved
        if f.current is not None:
            self.bind(stmt.target, f.current, stmt.target_span)

    def _unroll(self, stmt: n.Repeat, count: int) -> None:
        f = self.frame
        saved = f.names.get(stmt.var, _MISSING) if stmt.var else _MISSING
        if stmt.var:
            check_name(self.diag, stmt.var, stmt.span, "loop variable")
        for i in range(count):
            if stmt.var:
                f.names[stmt.var] = sympy.Integer(i)
            f.loop += (i,)
            try:
                self.body(stmt.body, nested=True)
            finally:
                f.loop = f.loop[:-1]
        if stmt.var:
            if saved is _MISSING:
                f.names.pop(stmt.var, None)
            else:
                f.names[stmt.var] = saved

    def _if(self, stmt: n.If) -> None:
        self.body(stmt.body if self.values.truth(stmt.cond) else stmt.orelse, nested=True)

    # -- calls -----------------------------------------------------------------------------

    def _call(self, stmt: n.Layer) -> None:
        frame = self.st.diag.frames[-1]  # self.frame, read once: this runs for every layer
        site = self.sites.get(id(stmt))  # a site found is this statement's: it holds it, so its id stays its own
        if site is None or site[1] is not frame.namespace:
            site = self._site(stmt, frame.namespace)
        scan = site[2]
        if scan is not None:  # a layer (nearly every statement): on the chain's value, unless a name is a tensor
            names = frame.names
            for value in scan:
                if type(names.get(value.id)) is Tensor:
                    break
            else:
                if site[6]:  # one tensor, the chain's value (`_layer_call`'s case), in one frame
                    current = frame.current
                    if current is None:
                        current = self._need_current(stmt.call.span)  # E244
                    out = self.layers.chain(stmt, current, site[3], site[4], site[5])
                elif site[7] is not None:  # a block, on the chain's value: what `_any_call` would find, found once
                    out = self.blocks.call(stmt, [], site[7])
                else:
                    out = self._layer_call(stmt, (), site)
                if stmt.target is not None:
                    self.bind(stmt.target, out, stmt.target_span or stmt.span)
                frame.current = out
                return None
        return self._any_call(stmt, frame)

    def _site(self, stmt: n.Layer, namespace: dict) -> tuple:
        """What `_call` and `_layer_call` read of a statement alone, worked out once a check: (the statement, the
        namespace it was read in, the arguments that are names where it is a plain layer or block call (a name
        holding a tensor makes it a call on that tensor) or None for anything else (a def, merge, operation, several
        outputs, a tuple argument: `_any_call`), the kind's spec, `_layer_shape`'s tuple of it, `literal_key`, whether
        `LayerCalls.chain` makes it (a known kind, on the chain's value alone), the block's source where it calls
        a block (else None)).  Kept while the statement is (its id stays its own)."""
        call = stmt.call
        name = call.name
        src = namespace.get(name)  # a BlockSource, or None: no block or def of that name
        scan = None
        # `_any_call`'s order: a def, an operation, Parameter (unless a block takes its name), a merge, a block
        if stmt.targets is None and name not in OPS and name not in MERGES and (
                src is None and name != PARAMETER or src is not None and not isinstance(src.definition, n.FunctionDef)):
            scan = ()
            for arg in call.args:  # a loop, not a generator: most statements are met once
                kind = type(arg.value)
                if kind is n.Name:
                    scan += (arg.value,)
                elif kind is n.Tuple:
                    scan = None
                    break
        spec = REGISTRY.get(name)
        shape = _LAYER_SHAPES.get(id(spec)) or _layer_shape(spec)
        site = (stmt, namespace, scan, spec, shape, None if spec is None else literal_key(spec, call),
                scan is not None and src is None and spec is not None and shape[1] == 1,
                src if scan is not None else None)
        self.sites[id(stmt)] = site
        return site

    def _any_call(self, stmt: n.Layer, frame: Frame) -> None:
        """`_call` of a statement that is not a plain layer call: a block, merge, operation or def, several
        outputs, tensors named in the arguments."""
        call = stmt.call
        namespace = frame.namespace
        src = namespace.get(call.name)
        if src is not None and isinstance(src.definition, n.FunctionDef):
            return self._function_stmt(stmt)
        names = frame.names
        for arg in call.args:
            value = arg.value
            kind = type(value)
            if kind is n.Tuple or kind is n.Name and type(names.get(value.id)) is Tensor:
                inputs, rest = self._tensor_args(call, names)
                break
        else:  # no argument names a tensor (nearly every layer, `Conv2d(planes, ...)` in a block): spare the call,
            inputs, rest = [], call.args  # which would find no tensor and give every argument back
        if call.name in OPS:
            outs = self.ops.call(stmt, self.with_current(inputs, OPS[call.name].tensors, call), rest)
            return self._bind_outputs(stmt, outs)
        if call.name == PARAMETER and call.name not in namespace:
            if inputs:
                self.diag.error("E242", "Parameter takes no tensor", call.span)
                raise Skip
            self.bind(stmt.target, self.ops.parameter(stmt, rest), stmt.target_span)
            return None  # the chain goes on from the tensor before it
        if stmt.targets is not None and (call.name in MERGES or call.name in namespace):
            self.diag.error("E246", f"{call.name} gives one tensor, but the statement names "
                            f"{len(stmt.targets.names())}", stmt.targets.span)
            raise Skip
        if stmt.targets is not None:  # a layer with several outputs (LSTM's `out, (h, c)`)
            if len(rest) != len(call.args):
                stmt = replace(stmt, call=replace(call, args=rest))
            node = self.st.nodes[self._layer_call(stmt, inputs).id]
            tainted = any(t.tainted for t in inputs)
            return self._bind_outputs(stmt, [Tensor(i, tainted) for i in _leaf_ids(node.unpack or (node.id,))])
        if call.name in MERGES:
            out = self._merge(call, rest, self.with_current(inputs, 2, call), stmt.target, stmt.span)
            if stmt.expect is not None:
                self.assertions.check(stmt, Named(call.name), self.st.nodes[out.id].shape)
        else:
            if len(rest) != len(call.args):
                stmt = replace(stmt, call=replace(call, args=rest))
            if src is not None:  # a block (a def returned above)
                out = self.blocks.call(stmt, inputs, src)
            else:
                out = self._layer_call(stmt, inputs)
        if stmt.target is not None:
            self.bind(stmt.target, out, stmt.target_span or stmt.span)
        frame.current = out

    def _function_stmt(self, stmt: n.Layer) -> None:
        """`c = make_divisible(v, 8)` parses as a layer call: a def's value is a number, named like one."""
        if stmt.target is None or stmt.expect is not None or stmt.targets is not None:
            self.diag.error("E114", f"{stmt.call.name} is a size function: it gives a number, not a tensor",
                            stmt.call.name_span, hints=[f"name its value (`c = {stmt.call.name}(...)`) or use it "
                                                        "in an argument"])
            raise Skip
        self._let(n.Let(stmt.target, stmt.call, stmt.span, stmt.target_span))

    def _stand_in(self, stmt: n.Layer) -> None:
        """Where a call fails, the names it gives stand for its input (tainted), so that later lines using them
        are still checked instead of each saying "unknown name".  (Called from `body`, where the failure is
        caught: a frame of its own around every call would cost every layer.)"""
        current = self.frame.current
        if stmt.targets is not None and current is not None:
            for name in stmt.targets.names():
                if name.id not in self.frame.names:
                    self.frame.names[name.id] = replace(current, tainted=True)

    def _bind_outputs(self, stmt: n.Layer, outs: list[Tensor]) -> None:
        """Each output to the name the statement gives it; the chain goes on from the first."""
        if stmt.targets is None:
            self.bind(stmt.target, outs[0], stmt.target_span or stmt.span)
        else:
            names = stmt.targets.names()
            if len(outs) == 1 < len(names) and outs[0].tainted:  # an operation that failed on what an error made:
                outs = outs * len(names)  # each name stands for its input, as where a call fails (_stand_in)
            for name, out in zip(names, outs, strict=True):
                self.bind(name.id, out, name.span)
        self.frame.current = outs[0]

    def _tensor_args(self, call: n.Call, names: dict):
        """The call's leading positional arguments that name tensors, and the other arguments.  A pair of
        tensors is one argument of a kind that takes its state so (LSTM's `(h0, c0)`).  `names`: the frame's."""
        tensors = []
        for i, arg in enumerate(call.args):
            if type(arg.value) in _NAME_OR_TUPLE and self._pair(call, arg, tensors):  # else no pair: spare the call
                tensors += [names[item.id] for item in arg.value.items]
                continue
            value = names.get(arg.value.id, None) if isinstance(arg.value, n.Name) else None
            if not isinstance(value, Tensor):
                for later in call.args[i:]:
                    if isinstance(later.value, n.Name) and isinstance(names.get(later.value.id), Tensor):
                        self.diag.error("E245", f"tensor {later.value.id!r} must come before the other arguments",
                                        later.span, hints=[f"e.g. {call.name}({later.value.id}, ...)"])
                        raise Skip
                return tensors, call.args[i:]
            if arg.name is not None:
                self.diag.error("E245", "tensors are passed by position, not by keyword", arg.span)
                raise Skip
            tensors.append(value)
        return tensors, ()

    def _pair(self, call: n.Call, arg: n.Arg, before: list) -> bool:
        """Whether `arg` is a tuple of tensors: the state pair of a kind that takes one, after its input (E242
        elsewhere); a kind that takes one refuses its tensors written one by one."""
        value, names = arg.value, self.frame.names
        spec = REGISTRY.get(call.name)
        if not (isinstance(value, n.Tuple) and value.items and arg.name is None
                and all(isinstance(v, n.Name) and isinstance(names.get(v.id), Tensor) for v in value.items)):
            if spec is not None and spec.state_pair and before and isinstance(value, n.Name) \
                    and isinstance(names.get(value.id), Tensor):
                self.diag.error("E242", f"{call.name} takes its initial state as one pair of tensors", arg.span,
                                hints=[f"e.g. {call.name}(x, (h0, c0), ...)"])
                raise Skip
            return False
        if spec is None or not spec.state_pair or len(value.items) != 2:
            self.diag.error("E242", f"{call.name} takes its tensors one by one, not as a tuple", arg.span,
                            hints=["LSTM and LSTMCell take their state as a pair: LSTM(x, (h0, c0), ...)"])
            raise Skip
        if not before:
            self.diag.error("E242", f"{call.name}'s state comes after its input", arg.span,
                            hints=[f"name the input first: {call.name}(x, (h0, c0), ...)"])
            raise Skip
        return True

    def with_current(self, inputs: list, needed: int, call: n.Call) -> list:
        """Inputs for a call that takes `needed` tensors: the chain's value fills the first place."""
        if len(inputs) < needed:
            inputs = [self._need_current(call.span), *inputs]
        return inputs

    def _layer_call(self, stmt: n.Layer, inputs, site: tuple | None = None) -> Tensor:
        """The layer `stmt` calls on `inputs` (the chain's value first where it names fewer).  `site`: `_site`'s
        record of `stmt` (None: read from the statement here)."""
        call = stmt.call
        if site is None:
            spec = REGISTRY.get(call.name)
            shape, literal = _LAYER_SHAPES.get(id(spec)) or _layer_shape(spec), _UNREAD
        else:
            spec, shape, literal = site[3], site[4], site[5]
        most, least = shape[0], shape[1]
        if not inputs and least == 1:  # the chain's value alone (nearly every layer): nothing to count
            current = self.diag.frames[-1].current
            inputs = [current if current is not None else self._need_current(call.span)]
        else:
            if len(inputs) < least:  # the chain's value is the first
                current = self.diag.frames[-1].current
                inputs = [current if current is not None else self._need_current(call.span), *inputs]
            if not least <= len(inputs) <= most:
                names = ", ".join(spec.tensors) if spec else "input"
                self.diag.error("E242", f"{call.name} takes {least if least == most else f'{least} to {most}'} "
                                f"tensor{'s' * (most > 1)} ({names}), got {len(inputs)}", call.span,
                                hints=["the chain's value is the first, where the call names fewer"] if most > 1
                                else [])
                raise Skip
        st = self.st
        nodes = st.nodes
        source = inputs[0]
        if (st.strided or st.reordered) and spec is not None and spec.views_from:  # a view in torch's forward
            merged_view(st, spec, call, source)
        node = self.layers.node(stmt, nodes[source.id], tuple(nodes[t.id] for t in inputs[1:]) if len(inputs) > 1
                                else (), spec, literal)
        laid_out(st, shape, node, source)
        return new_tensor(node.id, source.tainted if len(inputs) == 1 else any(t.tainted for t in inputs))

    # -- merges ----------------------------------------------------------------------------

    def _merge_stmt(self, stmt: n.Merge) -> None:
        f = self.diag.frames[-1]  # self.frame
        start = f.current if f.current is not None else self._need_current(stmt.span)
        outs = []
        for branch in stmt.branches:
            f.current = start
            self.body(branch.body, nested=True)
            if branch.name is not None:  # `branch:` (the usual) names nothing
                self.bind(branch.name, f.current, branch.span)
            outs.append(f.current)
        if len(outs) < 2:
            self.diag.error("E333", f"{stmt.call.name} needs at least two branches, got {len(outs)}", stmt.span,
                            hints=["an empty branch (`pass`) is the identity"])
            raise Skip
        out = self._merge(stmt.call, stmt.call.args, outs, stmt.target, stmt.span)
        self.bind(stmt.target, out, stmt.target_span or stmt.span)
        f.current = out

    def _merge(self, call: n.Call, options, inputs: list, target: str | None, span: Span) -> Tensor:
        """A merge of `inputs`; `options` are the call's arguments that are not tensors (cat's dim)."""
        spec = MERGES.get(call.name)
        if spec is None:  # `name:` with branches, where name is no merge
            self.diag.error("E100", f"unknown merge {call.name!r}", call.name_span,
                            hints=[did_you_mean(call.name, MERGES) or f"merges: {', '.join(sorted(MERGES))}"],
                            fixes=[rename_fix(call.name, MERGES, call.name_span)])
            raise Skip
        for arg in options:  # `add(skp)`: a misspelt tensor is the news, not "needs two tensors"
            if arg.name is None and isinstance(arg.value, n.Name):
                self.values.lookup(arg.value)
        if len(inputs) < 2:
            self.diag.error("E333", f"{call.name} needs at least two tensors, got {len(inputs)}", call.span)
            raise Skip
        nodes = self.st.nodes
        ids = [t.id for t in inputs]
        shapes = [nodes[i].shape for i in ids]
        tainted = any([t.tainted for t in inputs])  # a list: a generator is made and resumed per item
        # a block's merge met again on the very shape objects it merged before (the block called again on the
        # same shape, its layers found again): its options are literals, no `?` is known (assertions.merge would
        # solve), so its options and rule give what they gave
        key = (id(call), len(options), *map(id, shapes)) if not self.st.unknowns.table else None
        kept = self.merged.get(key) if key is not None else None
        if kept is not None and kept[0] is call and kept[1] == shapes:  # the same objects: compared by identity
            args, out, conds = dict(kept[2]), kept[3], kept[4]
        else:
            args = self.binder.merge(spec, call, options)
            shapes = self.assertions.merge(spec, call, shapes, args)
            try:
                out, conds = spec.rule(shapes, args)
            except MergeError as exc:
                if tainted:  # an earlier error made these shapes; do not report it twice
                    return Tensor(inputs[0].id, True)
                hints = [exc.hint, *(f"input {i + 1} is {show_shape(s)}{self.st.made_at(t)}"
                                     for i, (s, t) in enumerate(zip(shapes, inputs, strict=True)))]
                self.diag.error("E330", f"{call.name}: {exc.message}", call.name_span, hints=hints)
                raise Skip from None
            if key is not None and all(type(a.value) in _LITERALS for a in options):
                self.merged[key] = call, shapes, dict(args), out, conds
        name = self.st.node_name(call.name, target, span)
        for cond, message in conds if not tainted else ():
            self.st.conds.append((cond, f"{call.name}: {message}", name, call.name_span, out))
        made = self.st.new_node(call.name, name, tuple(ids), tuple(out), span, args=args)
        self.st.layout([made.id], ids, aliases=False)
        return Tensor(made.id, tainted)


# statement type -> the Walker method that runs it, as plain functions: bound methods kept on the walker would
# refer to it, a cycle the collector has to find after every check (nogc.py)
_HANDLERS = {n.Input: Walker._input, n.Layer: Walker._call, n.Ref: Walker._ref, n.Let: Walker._let,
             n.Merge: Walker._merge_stmt, n.Repeat: Walker._repeat, n.If: Walker._if, n.Output: Walker._output,
             n.Pass: lambda walker, stmt: None, n.Return: Walker._return}
_NAME_OR_TUPLE = (n.Name, n.Tuple)
_MAKE_NOTHING = (n.Let, n.Pass)  # statements without a record in the trace
# id(spec) -> (most tensors, least, aliases its input, reorders, always contiguous, batch-first transposes, the
# spec, its output is its input whatever the input's shape but its rank (LayerCalls.chain)): keyed by the spec,
# not its name, so that a kind registered again is read again; holding the spec keeps its id from being reused
_LAYER_SHAPES: dict = {}


def _layer_shape(spec: LayerSpec | None) -> tuple:
    """What `_layer_call` reads of a kind, read from its spec once (a name that is no layer: one tensor, and
    `LayerCalls.node` reports it)."""
    if spec is None:
        return 1, 1, False, False, False, False
    most = len(spec.tensors)
    _LAYER_SHAPES[id(spec)] = shape = (most, most - spec.optional_tensors, bool(spec.aliases_input),
                                       spec.moves_axes == "permute", spec.layout == CONTIGUOUS,
                                       spec.layout in (BATCH_FIRST, BATCH_FIRST_IN_TRAINING), spec,
                                       spec.rule is same_shape and not spec.inferred)
    return shape


def _leaf_ids(unpack: tuple) -> list[int]:
    return [x for item in unpack for x in (_leaf_ids(item) if isinstance(item, tuple) else (item,))]


def _tail(stmt: n.Ref) -> Span:
    return Span(stmt.span.end_line, stmt.span.end_col - len(stmt.name), stmt.span.end_line, stmt.span.end_col)
