"""The structure of a plan body: the chain of statements, named tensors, blocks, repeats,
conditionals and merges.  `Structure` is a part of `check.Checker` (which keeps each
layer's own checks); this file decides what feeds what.

A body is a chain: each statement consumes the chain's value and makes a new one.  Blocks
are expanded at each call (their input shapes bind names, so a block can compute widths
from its input), repeats are unrolled and conditions decided, so the graph that comes out
is plain: layers and merges.  Structure must be decidable: a condition or repeat count
that depends on an unknown size is refused.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import sympy

from . import nodes as n
from .errors import Collector, Diagnostic, Span, suggest
from .graph import Node, show_shape
from .merges import MERGES, MergeError
from .shapes import decide_at_least, equal, equal_condition, pyrepr, to_expr
from .solve import SolveError, solve

MAX_BLOCK_DEPTH = 32  # nested block calls (recursion included)
MAX_REPEAT = 10_000
MAX_STEPS = 100_000  # statements executed while unrolling


# Attributes of torch.nn.Module (torch 2.x) and of build.PlanModule: a layer named so could not be its
# submodule.  Kept here as text because checking never imports torch; a test compares it with torch.
MODULE_ATTRS = frozenset("""
T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
_forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
_forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name _input_ids
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _names _non_persistent_buffers_set _output_ids
_parameters _register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _steps _version _wrapped_call_impl
add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval
extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict
modules mtia named_buffers named_children named_modules named_parameters parameters plan_name
register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
register_state_dict_pre_hook requires_grad_ run set_extra_state set_submodule share_memory state_dict to
to_empty train training type xpu zero_grad
""".split())


class Skip(Exception):
    """A diagnostic was recorded; abandon this statement."""


@dataclass(frozen=True)
class Tensor:
    id: int  # its graph node
    tainted: bool = False  # made after a statement failed: merges do not check it again


@dataclass(frozen=True)
class Value:
    """An already-evaluated integer standing where syntax is expected (a block parameter's value)."""

    value: sympy.Basic
    span: Span


@dataclass
class BlockSource:
    """A block definition with the file it was written in; `namespace` holds the blocks that file sees."""

    definition: n.BlockDef
    file: str
    source: str
    namespace: dict = field(default_factory=dict, repr=False)


@dataclass
class Frame:
    """The plan, or one call of a block, being checked."""

    names: dict  # name -> sympy int | Tensor | bool/float/str/None/tuple (block parameters)
    namespace: dict  # block name -> BlockSource
    file: str
    source: str
    prefix: str = ""  # of node names: "layer1_" inside `layer1 = Stage(...)`
    notes: tuple = ()  # where this block was called from, innermost first
    block: n.BlockDef | None = None
    pending: list = field(default_factory=list)  # a block's input tensors not yet taken by `input`
    current: Tensor | None = None
    outputs: tuple | None = None
    counts: dict = field(default_factory=dict)  # auto-names per base: conv1, conv2, ...
    loop: tuple = ()  # indices of the enclosing repeats (suffix of named nodes)
    nested: int = 0  # depth inside branches, repeats and ifs


class ScopedCollector(Collector):
    """A Collector that locates each diagnostic in the frame being checked: its file, and
    the call sites of the blocks it is in (as notes).  Identical reports (one block called
    many times) are kept once."""

    def __init__(self, source: str, file: str):
        super().__init__(source, file)
        self.frames: list[Frame] = []
        self._seen: set = set()  # _key of every diagnostic added

    def error(self, code, message, span, hints=(), notes=()) -> Diagnostic:
        return self._add(code, message, span, hints, notes, "error")

    def warn(self, code, message, span, hints=()) -> Diagnostic:
        return self._add(code, message, span, hints, (), "warning")

    def _add(self, code, message, span, hints, notes, severity) -> Diagnostic:
        frame = self.frames[-1] if self.frames else None
        file = frame.file if frame else self.file
        text = frame.source if frame and file != self.file else None
        notes = tuple(notes) + _fold(frame.notes if frame else ())
        d = Diagnostic(code, message, span, file, tuple(h for h in hints if h), severity, notes, text)
        key = _key(d)
        if key not in self._seen:  # a block called many times reports once
            self._seen.add(key)
            self.diags.append(d)
        return d


    @contextmanager
    def located(self, frame: Frame | None):
        """Report as if `frame` were being checked (for problems found after it returned)."""
        if frame is None:
            yield
            return
        self.frames.append(frame)
        try:
            yield
        finally:
            self.frames.pop()


class Conds(list):
    """The conditions found so far; each remembers the frame it came from (`frames[i]`)."""

    def __init__(self, diag: ScopedCollector):
        super().__init__()
        self.diag, self.frames = diag, []

    def append(self, item) -> None:
        super().append(item)
        self.frames.append(self.diag.frames[-1] if self.diag.frames else None)


MAX_CALL_NOTES = 4


def _fold(calls: tuple) -> tuple:
    """The call sites of a deep nesting: the innermost ones and the outermost, with a count between."""
    if len(calls) <= MAX_CALL_NOTES:
        return calls
    text, span, file, source = calls[-1]
    skipped = len(calls) - MAX_CALL_NOTES
    return (*calls[: MAX_CALL_NOTES - 1], (f"{text} (after {skipped} more nested calls)", span, file, source))


def _key(d: Diagnostic) -> tuple:
    """Diagnostics with the same key are one report."""
    if d.severity == "warning":  # one per place, whatever the shapes of each call
        return ("warning", d.code, d.span, d.file)
    return (d.severity, d.code, d.message, d.span, d.file)


_MISSING = object()


class Structure:
    """Statement walking; mixed into check.Checker, whose `_layer`, `_int`, `_bind_args`
    and diagnostics it uses."""

    # -- frames and names ----------------------------------------------------------------

    @property
    def frame(self) -> Frame:
        return self.diag.frames[-1]

    def _lookup(self, name: n.Name):
        value = self.frame.names.get(name.id, _MISSING)
        if value is _MISSING:
            choices = list(self.frame.names)
            unnamed = name.id == "x" and self.frame.block is not None  # a plan's unnamed input is `x`, a block's not
            self.diag.error("E107", f"unknown name {name.id!r}", name.span,
                            hints=[_did_you_mean(name.id, choices),
                                   "a block's input has a name only if it is given one: `input x [...]`"
                                   if unnamed else None])
            raise Skip
        return value

    def _bind(self, name: str | None, value, span: Span) -> None:
        if name is None:
            return
        self._name(name, span, "name")
        old = self.frame.names.get(name, _MISSING)
        if old is not _MISSING and isinstance(old, Tensor) != isinstance(value, Tensor):
            what = "a tensor" if isinstance(old, Tensor) else "a parameter or size"
            self.diag.error("E243", f"{name!r} is already {what} here; choose another name", span)
            raise Skip
        self.frame.names[name] = value

    def _node_name(self, base: str, target: str | None = None, span: Span | None = None) -> str:
        """A unique node name: `prefix + target` (plus repeat indices), or `prefix + base + count`.
        `span` locates the target, for a name the built module could not use."""
        f = self.frame
        if target:
            name = f.prefix + target + "".join(f"_{i}" for i in f.loop)
            if name in MODULE_ATTRS:
                self.diag.error("E202", f"name {name!r} is an attribute of torch.nn.Module; a layer cannot have it",
                                span, hints=["choose another name"])
                raise Skip
        else:
            while True:
                f.counts[base] = f.counts.get(base, 0) + 1
                name = f"{f.prefix}{base}{'_' * base[-1].isdigit()}{f.counts[base]}"  # relu6_1, not relu61
                if name not in self.taken:
                    break
        unique, k = name, 1
        while unique in self.taken:
            k += 1
            unique = f"{name}_{k}"
        self.taken.add(unique)
        return unique

    def _add_node(self, node: Node) -> Tensor:
        if len(self.nodes) >= self.max_nodes:
            self.diag.error("E007", f"the plan unrolls to more than {self.max_nodes} nodes", node.span)
            raise _Abort
        if self.frame.file != self.diag.file:
            node = replace(node, file=self.frame.file)
        self.nodes.append(node)
        return Tensor(node.id)

    def _need_current(self, span: Span) -> Tensor:
        if self.frame.current is None:
            self.diag.error("E244", "there is no tensor here to work on", span,
                            hints=["start with `input [...]`, or name a tensor on its own line first"])
            raise Skip
        return self.frame.current

    def _check_definitions(self) -> None:
        """Names of the blocks the plan can call, checked once whether or not they are called."""
        for src in {id(s): s for s in self.library.values()}.values():
            frame = Frame({}, src.namespace, src.file, src.source)
            with self.diag.located(frame):
                self._name(src.definition.name, src.definition.name_span, "block name")
                seen = set()
                for p in src.definition.params:
                    if p.name in seen:
                        self.diag.error("E201", f"parameter {p.name!r} is declared twice", p.span)
                    seen.add(p.name)
                    self._name(p.name, p.span, "parameter name")

    # -- bodies --------------------------------------------------------------------------

    def _body(self, stmts, nested: bool = False) -> None:
        self.frame.nested += nested
        try:
            for stmt in stmts:
                try:
                    self._statement(stmt)
                except Skip:
                    if isinstance(stmt, n.Input) and self.frame.block is not None:
                        raise  # the caller's tensor does not fit the block: the rest would only say E244
                    cur = self.frame.current
                    if cur is not None:
                        self.frame.current = replace(cur, tainted=True)
        finally:
            self.frame.nested -= nested

    def _statement(self, stmt) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:  # repeats and recursion multiply: bound the work, not just the depth
            self.diag.error("E007", f"the plan unrolls to more than {MAX_STEPS:,} statements", stmt.span,
                            hints=["a block that calls itself several times, or nested repeats, grow exponentially"])
            raise _Abort
        handlers = {n.Input: self._input_stmt, n.Layer: self._call_stmt, n.Ref: self._ref_stmt,
                    n.Let: self._let_stmt, n.Merge: self._merge_stmt, n.Repeat: self._repeat_stmt, n.If: self._if_stmt,
                    n.Output: self._output_stmt, n.Pass: lambda s: None}
        handlers[type(stmt)](stmt)

    def _input_stmt(self, stmt: n.Input) -> None:
        f = self.frame
        if f.nested:
            self.diag.error("E206", "an input belongs at the top level of a plan or block", stmt.span)
            raise Skip
        if f.block is not None:
            return self._block_input(stmt)
        for d in stmt.shape.dims:
            if isinstance(d, n.Ellipsis_):
                self.diag.error("E207", "`...` stands for leading dims only in a block's input pattern", d.span)
                raise Skip
        dims = self._input_dims(stmt)
        name = self._node_name("x", stmt.name or "x", stmt.span)
        tensor = self._add_node(Node(len(self.nodes), "input", name, (), tuple(dims), stmt.span))
        f.current = tensor  # first: the chain goes on even if the name is refused (no E244 on every line)
        try:
            self._bind(stmt.name or "x", tensor, stmt.span)
        except Skip:
            if stmt.name is None:
                self.diag.add_hint("an unnamed input is called `x`: rename that dim, or name the input "
                                   "(`input img [...]`)")
            raise

    def _let_stmt(self, stmt: n.Let) -> None:
        self._bind(stmt.name, self._eval(stmt.value, stmt.name), stmt.name_span)

    def _ref_stmt(self, stmt: n.Ref) -> None:
        value = self._lookup(n.Name(stmt.name, stmt.span if stmt.target is None else _tail(stmt)))
        if stmt.target is not None and not isinstance(value, Tensor):  # `a = b` of numbers
            self._bind(stmt.target, value, stmt.target_span)
            return
        if not isinstance(value, Tensor):
            self.diag.error("E240", f"{stmt.name!r} is {_what(value)}, not a tensor", stmt.span,
                            hints=["a name on its own line continues the chain from that tensor"])
            raise Skip
        self._bind(stmt.target, value, stmt.target_span or stmt.span)
        self.frame.current = value

    def _output_stmt(self, stmt: n.Output) -> None:
        tensors = []
        for name in stmt.names:
            value = self._lookup(name)
            if not isinstance(value, Tensor):
                self.diag.error("E240", f"{name.id!r} is {_what(value)}, not a tensor", name.span)
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

    def _repeat_stmt(self, stmt: n.Repeat) -> None:
        count = self._int(stmt.count, "a repeat count")
        if not count.is_Integer:
            self._undecidable(stmt.count, count, "a repeat count")
        if not 0 <= int(count) <= MAX_REPEAT:
            self.diag.error("E221", f"a repeat count must be between 0 and {MAX_REPEAT}, got {count}",
                            stmt.count.span)
            raise Skip
        f = self.frame
        saved = f.names.get(stmt.var, _MISSING) if stmt.var else _MISSING
        if stmt.var:
            self._name(stmt.var, stmt.span, "loop variable")
        for i in range(int(count)):
            if stmt.var:
                f.names[stmt.var] = sympy.Integer(i)
            f.loop += (i,)
            try:
                self._body(stmt.body, nested=True)
            finally:
                f.loop = f.loop[:-1]
        if stmt.var:
            if saved is _MISSING:
                f.names.pop(stmt.var, None)
            else:
                f.names[stmt.var] = saved

    def _if_stmt(self, stmt: n.If) -> None:
        self._body(stmt.body if self._truth(stmt.cond) else stmt.orelse, nested=True)

    # -- calls ---------------------------------------------------------------------------

    def _call_stmt(self, stmt: n.Layer) -> None:
        call = stmt.call
        inputs, rest = self._tensor_args(call)
        if len(rest) != len(call.args):
            stmt = replace(stmt, call=replace(call, args=rest))
        if call.name in MERGES:
            out = self._merge(stmt.call, self._with_current(inputs, 2, call), stmt.target, stmt.span)
            if stmt.expect is not None:
                self._assert_shape(stmt, _Named(call.name), self.nodes[out.id].shape)
        elif call.name in self.frame.namespace:
            out = self._block_call(stmt, inputs)
        else:
            out = self._layer_call(stmt, inputs)
        self._bind(stmt.target, out, stmt.target_span or stmt.span)
        self.frame.current = out

    def _tensor_args(self, call: n.Call):
        """The call's leading positional arguments that name tensors, and the other arguments."""
        tensors = []
        for i, arg in enumerate(call.args):
            value = self.frame.names.get(arg.value.id, None) if isinstance(arg.value, n.Name) else None
            if not isinstance(value, Tensor):
                for later in call.args[i:]:
                    if isinstance(later.value, n.Name) and isinstance(self.frame.names.get(later.value.id), Tensor):
                        self.diag.error("E245", f"tensor {later.value.id!r} must come before the other arguments",
                                        later.span, hints=[f"e.g. {call.name}({later.value.id}, ...)"])
                        raise Skip
                return tensors, call.args[i:]
            if arg.name is not None:
                self.diag.error("E245", "tensors are passed by position, not by keyword", arg.span)
                raise Skip
            tensors.append(value)
        return tensors, ()

    def _with_current(self, inputs: list, needed: int, call: n.Call) -> list:
        """Inputs for a call that takes `needed` tensors: the chain's value fills the first place."""
        if len(inputs) < needed:
            inputs = [self._need_current(call.span), *inputs]
        return inputs

    def _layer_call(self, stmt: n.Layer, inputs: list) -> Tensor:
        if len(inputs) > 1:
            self.diag.error("E242", f"{stmt.call.name} takes one tensor, got {len(inputs)}", stmt.call.span)
            raise Skip
        source = inputs[0] if inputs else self._need_current(stmt.call.span)
        node = self._layer(stmt, self.nodes[source.id])
        return Tensor(node.id, source.tainted)

    # -- merges --------------------------------------------------------------------------

    def _merge_stmt(self, stmt: n.Merge) -> None:
        start = self._need_current(stmt.span)
        f = self.frame
        outs = []
        for branch in stmt.branches:
            f.current = start
            self._body(branch.body, nested=True)
            self._bind(branch.name, f.current, branch.span)
            outs.append(f.current)
        if len(outs) < 2:
            self.diag.error("E333", f"{stmt.call.name} needs at least two branches, got {len(outs)}", stmt.span,
                            hints=["an empty branch (`pass`) is the identity"])
            raise Skip
        out = self._merge(stmt.call, outs, stmt.target, stmt.span)
        self._bind(stmt.target, out, stmt.target_span or stmt.span)
        f.current = out

    def _merge(self, call: n.Call, inputs: list, target: str | None, span: Span) -> Tensor:
        spec = MERGES.get(call.name)
        if spec is None:  # `name:` with branches, where name is no merge
            self.diag.error("E100", f"unknown merge {call.name!r}", call.name_span,
                            hints=[_did_you_mean(call.name, MERGES) or f"merges: {', '.join(sorted(MERGES))}"])
            raise Skip
        for arg in call.args:  # `add(skp)`: a misspelt tensor is the news, not "needs two tensors"
            if arg.name is None and isinstance(arg.value, n.Name):
                self._lookup(arg.value)
        if len(inputs) < 2:
            self.diag.error("E333", f"{call.name} needs at least two tensors, got {len(inputs)}", call.span)
            raise Skip
        args = self._merge_args(spec, call)
        shapes = self._solve_merge(call, [self.nodes[t.id].shape for t in inputs], args)
        tainted = any(t.tainted for t in inputs)
        try:
            out, conds = spec.rule(shapes, args)
        except MergeError as exc:
            if tainted:  # an earlier error made these shapes; do not report it twice
                return Tensor(inputs[0].id, True)
            hints = [exc.hint, *(f"input {i + 1} is {show_shape(s)}{self._made_at(t)}"
                                 for i, (s, t) in enumerate(zip(shapes, inputs, strict=True)))]
            self.diag.error("E330", f"{call.name}: {exc.message}", call.name_span, hints=hints)
            raise Skip from None
        name = self._node_name(call.name, target, span)
        for cond, message in conds:
            if not tainted:
                self.conds.append((cond, f"{call.name}: {message}", name, call.name_span, out))
        node = Node(len(self.nodes), call.name, name, tuple(t.id for t in inputs), tuple(out), span,
                    args=args)
        return replace(self._add_node(node), tainted=tainted)

    def _solve_merge(self, call: n.Call, shapes: list, args: dict) -> list:
        """Solve `?` unknowns so that the operands agree: `Conv2d(64, 3, padding=?)` in a residual."""
        shapes = [tuple(d.xreplace(self.solution) for d in s) for s in shapes]
        free = {x for s in shapes for d in s for x in d.free_symbols if x in self.unknowns}
        if not free or call.name == "mul" or len({len(s) for s in shapes}) > 1:
            return shapes  # nothing to solve; broadcasting has no single answer; the rule reports the ranks
        along = args["dim"] % len(shapes[0]) if "dim" in args and -len(shapes[0]) <= args["dim"] < len(shapes[0]) \
            else None
        pairs = [(s[i], shapes[0][i]) for s in shapes[1:] for i in range(len(s)) if i != along]
        try:
            found = solve(pairs, free)
        except SolveError as exc:
            self.diag.error("E321", f"{call.name}: {exc.message}", call.name_span, hints=[exc.hint])
            raise Skip from None
        self.solution.update(found)
        return [tuple(d.xreplace(found) for d in s) for s in shapes]

    def _made_at(self, t: Tensor) -> str:
        node = self.nodes[t.id]
        file = node.file or self.diag.file
        where = f"line {node.span.line}" if file == self.frame.file else f"{file}:{node.span.line}"
        return f" ({node.name}, {where})"

    def _merge_args(self, spec, call: n.Call) -> dict:
        names = [a for a, _ in spec.args]
        values = dict(spec.args)
        for i, arg in enumerate(call.args):
            name = arg.name if arg.name is not None else (names[i] if i < len(names) else None)
            if name is None or name not in values:
                hint = _did_you_mean(arg.name, names) if arg.name else None
                what = (f"has no argument {arg.name!r}" if arg.name else
                        f"takes at most {len(names)} positional argument{'s' * (len(names) != 1)} after the tensors"
                        if names else "takes only tensors, and this is not one")
                self.diag.error("E103", f"{spec.name} {what}", arg.span,
                                hints=[hint or (f"{spec.name} takes {', '.join(names)}" if names else None)])
                raise Skip
            value = self._int(arg.value, name)
            if not value.is_Integer:
                self._undecidable(arg.value, value, f"{spec.name}'s {name}")
            values[name] = int(value)
        return values

    # -- blocks --------------------------------------------------------------------------

    def _block_call(self, stmt: n.Layer, inputs: list) -> Tensor:
        call, caller = stmt.call, self.frame
        src: BlockSource = caller.namespace[call.name]
        block = src.definition
        wanted = sum(isinstance(s, n.Input) for s in block.body)
        if wanted == 0:
            self.diag.error("E210", f"block {block.name} has no input statement", call.name_span,
                            notes=[(f"block {block.name} is defined here", block.name_span, src.file, src.source)])
            raise Skip
        inputs = self._with_current(inputs, wanted, call) if len(inputs) < wanted else inputs
        if len(inputs) != wanted:
            self.diag.error("E211", f"block {block.name} takes {wanted} tensor{'s' * (wanted != 1)}, "
                            f"got {len(inputs)}", call.span)
            raise Skip
        if len(self.diag.frames) > MAX_BLOCK_DEPTH:
            self.diag.error("E260", f"blocks nest more than {MAX_BLOCK_DEPTH} deep (does {block.name} call itself "
                            "without end?)", call.name_span)
            raise Skip
        given = self._block_args(block, call)
        prefix = self._node_name(block.name.lower(), stmt.target, stmt.target_span) + "_"
        note = (f"in block {block.name}, called here", call.span, caller.file, caller.source)
        frame = Frame({}, src.namespace, src.file, src.source, prefix, (note, *caller.notes), block,
                      list(inputs))
        self.diag.frames.append(frame)
        try:
            self._block_params(block, given)
            self._body(block.body)
        finally:
            self.diag.frames.pop()
        result = frame.outputs[0] if frame.outputs else frame.current
        if result is None:
            raise Skip
        if any(t.tainted for t in inputs) or self._failed_in(frame):
            result = replace(result, tainted=True)
        if stmt.expect is not None:
            self._assert_shape(stmt, _Named(block.name), self.nodes[result.id].shape)
        return result

    def _failed_in(self, frame: Frame) -> bool:
        return frame.current is not None and frame.current.tainted

    def _block_args(self, block: n.BlockDef, call: n.Call) -> dict:
        """The call's arguments, evaluated where the call is."""
        names = [p.name for p in block.params]
        given, ok = {}, True
        for i, arg in enumerate(call.args):
            name = arg.name
            if name is None:
                if any(a.name is not None for a in call.args[:i]):
                    self.diag.error("E101", "a positional argument follows a keyword argument", arg.span)
                    ok = False
                    continue
                if i >= len(names):
                    self.diag.error("E102", f"block {block.name} takes at most {len(names)} argument"
                                    f"{'s' * (len(names) != 1)}, got {len(call.args)}", arg.span)
                    ok = False
                    continue
                name = names[i]
            if name not in names:
                self.diag.error("E103", f"block {block.name} has no parameter {name!r}", arg.span,
                                hints=[_did_you_mean(name, names)])
                ok = False
            elif name in given:
                self.diag.error("E104", f"argument {name!r} is given twice", arg.span)
                ok = False
            else:
                try:
                    given[name] = self._eval(arg.value, name)
                except Skip:
                    ok = False
        for p in block.params:
            if p.name not in given and p.default is None:
                self.diag.error("E105", f"block {block.name} needs the argument {p.name!r}", call.span,
                                hints=[f"e.g. {block.name}({p.name}=...)"])
                ok = False
        if not ok:
            raise Skip
        return given

    def _block_params(self, block: n.BlockDef, given: dict) -> None:
        for p in block.params:
            value = given[p.name] if p.name in given else self._eval(p.default, p.name)
            self.frame.names[p.name] = value

    def _block_input(self, stmt: n.Input) -> None:
        f = self.frame
        tensor = f.pending.pop(0)
        shape = self.nodes[tensor.id].shape
        self._bind_pattern(stmt.shape, shape, f.block)
        self._bind(stmt.name, tensor, stmt.span)
        f.current = tensor

    def _bind_pattern(self, pattern: n.Shape, shape: tuple, block: n.BlockDef) -> None:
        """Match the caller's input shape against `input [N, C, H, W]`: new names bind, others must agree."""
        dims = pattern.dims
        rest = [i for i, d in enumerate(dims) if isinstance(d, n.Ellipsis_)]
        if len(rest) > 1:
            self.diag.error("E207", "an input pattern has at most one `...`", dims[rest[1]].span)
            raise Skip
        if rest:
            head, tail = dims[: rest[0]], dims[rest[0] + 1:]
            fits = len(shape) >= len(head) + len(tail)
            pairs = [*zip(head, shape, strict=False), *zip(tail, shape[len(shape) - len(tail):], strict=False)]
        else:
            fits = len(shape) == len(dims)
            pairs = list(zip(dims, shape, strict=False))
        if not fits:
            want = f"{'at least ' if rest else ''}{len(dims) - len(rest)}-D"
            self.diag.error("E212", f"block {block.name} expects a {want} input, got {len(shape)}-D "
                            f"{show_shape(shape)}", pattern.span)
            raise Skip
        for d, actual in pairs:
            self._bind_dim(d, actual, shape, block)

    def _bind_dim(self, d, actual, shape, block: n.BlockDef) -> None:
        if isinstance(d, n.Name) and d.id not in self.frame.names:
            self._name(d.id, d.span, "dim name")
            self.frame.names[d.id] = actual
            return
        want = self._int(d, "an input dim")
        cond = equal_condition(want, actual)
        if cond is sympy.false:
            self.diag.error("E213", f"block {block.name} expects this dim to be {pyrepr(want)}, got "
                            f"{pyrepr(actual)} (the input is {show_shape(shape)})", d.span)
            raise Skip
        if cond is not sympy.true:
            self.conds.append((cond, f"{block.name}: the input dim {pyrepr(actual)} must be {pyrepr(want)}",
                               block.name, d.span, shape))

    # -- values and conditions -----------------------------------------------------------

    def _eval(self, expr, what: str):
        """Any argument value: a sympy int, bool, float, str, None or a tuple of them."""
        if isinstance(expr, n.Name):
            value = self._lookup(expr)
            if isinstance(value, Tensor):
                self.diag.error("E241", f"{expr.id!r} is a tensor; it cannot be {what}", expr.span)
                raise Skip
            return value
        if isinstance(expr, (n.Str, n.Const, n.Float)):
            return expr.value
        if isinstance(expr, n.Tuple):
            return tuple(self._eval(e, what) for e in expr.items)
        if isinstance(expr, n.IfExp):
            return self._eval(expr.then if self._truth(expr.cond) else expr.orelse, what)
        if isinstance(expr, (n.Compare, n.BoolOp, n.Not)):
            return self._truth(expr)
        return self._int(expr, what)

    def _lower(self, expr):
        """Syntax with parameter values put in: what a layer argument's checks read."""
        if isinstance(expr, n.Name):
            value = self.frame.names.get(expr.id, _MISSING)
            if isinstance(value, Tensor):
                self.diag.error("E241", f"{expr.id!r} is a tensor; it cannot be a layer argument", expr.span,
                                hints=["tensors come first: Layer(x, ...)"])
                raise Skip
            if value is _MISSING or isinstance(value, sympy.Basic):
                return expr
            return _literal(value, expr.span)
        if isinstance(expr, n.Tuple):
            return replace(expr, items=tuple(self._lower(e) for e in expr.items))
        if isinstance(expr, n.IfExp):
            return self._lower(expr.then if self._truth(expr.cond) else expr.orelse)
        if isinstance(expr, (n.Compare, n.BoolOp, n.Not)):
            return n.Const(self._truth(expr), expr.span)
        return expr

    def _truth(self, expr) -> bool:
        """A condition's value; structure must be decidable, so an undecided one is an error."""
        if isinstance(expr, n.BoolOp):
            left = self._truth(expr.left)
            if left == (expr.op == "or"):
                return left
            return self._truth(expr.right)
        if isinstance(expr, n.Not):
            return not self._truth(expr.operand)
        if isinstance(expr, n.Compare):
            values = [self._eval(e, "compared") for e in expr.operands]
            for i, op in enumerate(expr.ops):
                if not self._compare(values[i], op, values[i + 1], expr):
                    return False
            return True
        value = self._eval(expr, "a condition")
        if isinstance(value, sympy.Basic):  # a number is true when it is not 0
            zero = equal(value, 0)
            if zero is None:
                self._undecidable(expr, value, "a condition")
            return not zero
        return bool(value)

    def _compare(self, a, op: str, b, expr) -> bool:
        if isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic):
            same = {sympy.true: True, sympy.false: False}.get(equal_condition(a, b)) if op in ("==", "!=") else None
            verdict = {"==": lambda: same, "!=": lambda: _negate(same),
                       "<": lambda: decide_at_least(b - a, 1), "<=": lambda: decide_at_least(b - a, 0),
                       ">": lambda: decide_at_least(a - b, 1), ">=": lambda: decide_at_least(a - b, 0)}[op]()
            return self._decide(sympy.Rel(a, b, op) if verdict is None else verdict, expr)
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if all(isinstance(v, (float, sympy.Integer)) and not isinstance(v, bool) for v in (a, b)):
            return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
        self.diag.error("E231", f"cannot order {_what(a)} and {_what(b)} with {op}", expr.span)
        raise Skip

    def _decide(self, cond, expr) -> bool:
        if cond is True or cond is sympy.true:
            return True
        if cond is False or cond is sympy.false:
            return False
        self._undecidable(expr, cond, "a condition")

    def _undecidable(self, expr, value, what: str):
        names = sorted(s.name for s in to_expr(value).free_symbols)
        shown = ", ".join(names)
        why = (f"{shown} is a size without a value" if pyrepr(value) == shown
               else f"{pyrepr(value)} depends on {shown}")  # not "L depends on L"
        self.diag.error("E230", f"{what} must be known when the plan is checked, but {why}", expr.span,
                        hints=[f"give {shown} a value (`--set {names[0]}=...`), or decide on parameters and "
                               "channel counts" if names else None])
        raise Skip


class _Abort(Exception):
    """Too big to go on: stop checking."""


@dataclass(frozen=True)
class _Named:
    """What `_assert_shape` needs of a spec: its name (for a block or merge)."""

    name: str


def _negate(verdict):
    return None if verdict is None else not verdict


def _literal(value, span: Span):
    if isinstance(value, tuple):
        return n.Tuple(tuple(_literal(v, span) for v in value), span)
    if isinstance(value, sympy.Basic):
        return Value(value, span)
    if isinstance(value, float):
        return n.Float(value, span)
    if isinstance(value, str):
        return n.Str(value, span)
    return n.Const(value, span)


def _tail(stmt: n.Ref) -> Span:
    return Span(stmt.span.end_line, stmt.span.end_col - len(stmt.name), stmt.span.end_line, stmt.span.end_col)


def _what(value) -> str:
    if isinstance(value, Tensor):
        return "a tensor"
    if isinstance(value, sympy.Basic):
        return f"a number ({pyrepr(value)})"
    return f"{type(value).__name__} {value!r}"


def _did_you_mean(word: str, choices) -> str | None:
    best = suggest(word, choices)
    return f"did you mean {best}?" if best and best != word else None
