"""What every part of the check stage shares: the frames (the plan, or one block call, being
checked), the diagnostics located in them, and `State`, the graph built so far.

The parts (values.py, arguments.py, layercall.py, assertions.py, walker.py,
requirements.py) each hold the one `State` and call each other; none inherits from another.
"""

from __future__ import annotations

import builtins
import keyword
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from . import nodes as n
from .errors import Collector, Diagnostic, Span
from .fillers import filler
from .graph import Module, Node
from .unknowns import Unknowns

MAX_LAYERS = 10_000  # nodes a plan may unroll to
MAX_NAME = 64
BUILTIN_NAMES = frozenset(dir(builtins))

# Attributes of torch.nn.Module (torch 2.x) and of build.PlanModule: a layer named so could not be its
# submodule.  Kept here as text because checking never imports torch; a test compares it with torch.
MODULE_ATTRS = frozenset("""
T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
_forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
_forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name _input_ids
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _names _non_persistent_buffers_set _output_ids
_parameters _register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _steps _trace _version _wrapped_call_impl
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


class Abort(Exception):
    """Too big to go on: stop checking (what was built so far is kept)."""


@dataclass(frozen=True, slots=True)
class Tensor:
    id: int  # its graph node
    tainted: bool = False  # made after a statement failed: merges do not check it again


_TensorFiller = filler(Tensor)


def new_tensor(id: int, tainted: bool = False, _new=object.__new__) -> Tensor:
    """`Tensor(id, tainted)` without the frozen dataclass's __init__ (two object.__setattr__ calls), as the
    walker makes one or two per node.  The same object in every respect (tests/test_nodes_fast.py)."""
    tensor = _new(_TensorFiller)
    tensor.id = id
    tensor.tainted = tainted
    tensor.__class__ = Tensor
    return tensor


@dataclass(frozen=True)
class Value:
    """An already-evaluated integer standing where syntax is expected (a block parameter's value)."""

    value: object
    span: Span


@dataclass
class BlockSource:
    """A block definition with the file it was written in; `namespace` holds the blocks that file sees."""

    definition: n.BlockDef
    file: str
    source: str
    path: object = None  # the file, resolved (None for text that is no file): codegen never writes over it
    # weakref to `namespace`: that holds this block, and the plan's library holds it (Namespace.files), so a
    # strong reference would make a cycle of every file's blocks, garbage for the collector with its plan
    space: object = field(default=None, repr=False, compare=False)

    @property
    def namespace(self) -> Namespace:
        return self.space()

    @namespace.setter
    def namespace(self, space: Namespace) -> None:
        self.space = weakref.ref(space)


class Namespace(dict):
    """Block name -> BlockSource: the blocks one file sees.  An import that failed brings nothing, so the
    rest of the file is still checked; `failed` says which names it should have brought (name -> (the
    import's path, its span)), `broken` which imports of every block of a file failed (path, span); the
    file's callers of those names are told why they are unknown.  `errors`: every import problem found
    (the root namespace of a plan holds those of every file it imports)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failed: dict[str, tuple] = {}
        self.broken: list[tuple] = []
        self.errors: tuple[Diagnostic, ...] = ()
        self.files: tuple[Namespace, ...] = ()  # every file's namespace, kept: their blocks refer to them weakly

    def copy(self) -> Namespace:
        other = Namespace(self)
        other.failed, other.broken, other.errors = dict(self.failed), list(self.broken), self.errors
        other.files = (self, *self.files)  # this one's own blocks refer to it
        return other


@dataclass
class Container:
    """A submodule being filled: the plan, a block call, or a numbered `name = repeat`/`sequential`."""

    path: tuple[str, ...]
    numbered: bool = False
    size: int = 0  # children numbered so far
    entry: int = -1  # its place in State.tree
    # the scope of a node made while it is the innermost container (State._scope_here), once worked out: the
    # frames and containers around it stay the same while it is (they are opened and closed as a stack)
    scope: tuple | None = field(default=None, repr=False, compare=False)


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
    containers: list = field(default_factory=lambda: [Container(())])  # the frame's module first, innermost last


MAX_CALL_NOTES = 4


class ScopedCollector(Collector):
    """A Collector that locates each diagnostic in the frame being checked: its file, and
    the call sites of the blocks it is in (as notes).  Identical reports (one block called
    many times) are kept once."""

    def __init__(self, source: str, file: str):
        super().__init__(source, file)
        self.frames: list[Frame] = []
        self._seen: set = set()  # _key of every diagnostic added
        self.reports = 0  # errors and warnings reported so far, those kept once included: "did this report?"

    def error(self, code, message, span, hints=(), notes=(), fixes=()) -> Diagnostic:
        return self._add(code, message, span, hints, notes, "error", fixes)

    def warn(self, code, message, span, hints=(), fixes=()) -> Diagnostic:
        return self._add(code, message, span, hints, (), "warning", fixes)

    def _add(self, code, message, span, hints, notes, severity, fixes=()) -> Diagnostic:
        frame = self.frames[-1] if self.frames else None
        file = frame.file if frame else self.file
        text = frame.source if frame and file != self.file else None
        notes = tuple(notes) + _fold(frame.notes if frame else ())
        d = Diagnostic(code, message, span, file, tuple(h for h in hints if h), severity, notes, text,
                       tuple(f for f in fixes if f))
        self.reports += 1
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


class Conds(list):
    """The conditions found so far, each (cond, message, node name, span, shape); `frames[i]` is the
    frame condition i came from, for locating a problem found once they are all known."""

    def __init__(self, diag: ScopedCollector):
        super().__init__()
        self.diag, self.frames = diag, []

    def append(self, item) -> None:
        list.append(self, item)  # not super(): one a condition found
        frames = self.diag.frames
        self.frames.append(frames[-1] if frames else None)

    def extend(self, items: list) -> None:
        """`append` of each of `items`, found in one frame (a layer's conditions)."""
        list.extend(self, items)
        frames = self.diag.frames
        self.frames.extend([frames[-1] if frames else None] * len(items))


def _flatten(shapes) -> list:
    """The shapes of several outputs, nested as torch nests them, in order."""
    return [leaf for item in shapes for leaf in (_flatten(item) if _nested(item) else [item])]


def _nested(item) -> bool:
    return type(item).__name__ == "Several"  # ops.Several: a tuple of outputs, not a shape


def _nest(shapes, ids) -> tuple:
    return tuple(_nest(item, ids) if _nested(item) else next(ids) for item in shapes)


_GOOD_NAMES: set = set()  # names check_name accepted (its verdict depends on the name alone): a block's
MAX_GOOD_NAMES = 4096  # names are checked again at every call of it, and a repeat's at every pass


def checked_names(names: tuple[str, ...]) -> bool:
    """Whether check_name accepted each of `names` before (then it would say nothing again)."""
    return _GOOD_NAMES.issuperset(names)


def check_name(diag: Collector, name: str, span: Span, what: str) -> bool:
    """False (and an E202) for a name that could clash with Python in generated code."""
    if name in _GOOD_NAMES:
        return True
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
        diag.error("E202", f"{what} {name!r} {problem}", span, hints=["choose another name"])
        return False
    if len(_GOOD_NAMES) < MAX_GOOD_NAMES:
        _GOOD_NAMES.add(name)
    return True


class Made(NamedTuple):
    """What one statement made (the nodes `start` to `end`, its value the node `result`), or which unknown a
    `?` is (`sym`), at a place in a file: editors show a line's shape and a `?`'s value from these.  A named
    tuple, not a dataclass: the walker makes one per statement, in one call into C (`new_made`)."""

    file: str
    span: Span
    start: int = 0
    end: int = 0
    result: int | None = None
    sym: object = None



_NodeFiller = filler(Node)
_ModuleFiller = filler(Module)


def new_node(id: int, op: str, name: str, inputs: tuple, shape: tuple, span: Span, fields: dict,
             _new=object.__new__) -> Node:
    """`Node(id, op, name, inputs, shape, span, **fields)` without the frozen dataclass's __init__ (an
    object.__setattr__ for each of its 16 fields: three times the time), as the walker makes one per layer.
    The same object in every respect: equal, same fields, same repr (tests/test_nodes_fast.py)."""
    node = _new(_NodeFiller)
    node.id = id
    node.op = op
    node.name = name
    node.inputs = inputs
    node.shape = shape
    node.span = span
    _node_defaults(node)
    for key, value in fields.items():
        setattr(node, key, value)
    node.__class__ = Node
    return node


def _node_defaults(node) -> None:
    """Node's fields after the first six at their defaults, on a `_NodeFiller` (`args` and `meta` new dicts)."""
    node.kind = ""
    node.args = {}
    node.given = ()
    node.file = ""
    node.path = ()
    node.owner = ()
    node.written = ()
    node.meta = {}
    node.scope = ()
    node.unpack = ()


_new_object = object.__new__


class State:
    """One check of one plan: the diagnostics, the nodes made so far, the names taken, the sizes and
    parameters, the `?` unknowns and the conditions found.  Every part of the check stage reads and
    writes it; what is in it when checking stops (at an error too) is the partial result."""

    def __init__(self, source: str, filename: str, sizes: dict | None, library: dict | None):
        self.diag = ScopedCollector(source, filename)
        self.sizes = dict(sizes or {})
        self.library = library.copy() if isinstance(library, Namespace) else Namespace(library or {})
        self.nodes: list[Node] = []
        self.taken: set[str] = set()  # node names
        self.env: dict = {}  # plan parameter -> sympy value
        self.symbols: list[str] = []  # free size names, in order of appearance
        self.unknowns = Unknowns()
        self.conds = Conds(self.diag)
        self.tails: list = []  # (W310 warning, kind, [(condition, message)]): worded once requirements are known
        self.steps = 0  # statements run so far (walker.MAX_STEPS)
        self.trace: list[Made] = []  # per statement run and `?` met, in order
        self.max_nodes = MAX_LAYERS
        self.tree: list = []  # graph.Graph.tree, as it is made
        self.strided: set[int] = set()  # nodes whose output may not be contiguous (torch's view refuses them)
        self.reordered: set[int] = set()  # of those, the ones whose strides a permute may have reordered

    def layout(self, made: list[int], inputs: list[int], aliases: bool, strides: bool = False,
               reorders: bool = False, contiguous: bool = False) -> None:
        """Follow memory layout (for `view`), conservatively: a view (`aliases`) keeps its input's, a slice or
        broadcast (`strides`) leaves gaps, a permute (`reorders`) reorders the strides; a new tensor computed
        from a reordered one keeps that order (torch's elementwise kernels, convolutions, cat do), from a
        sliced one it is contiguous.  `contiguous`: always contiguous (contiguous(), a layer kind whose `layout` is
        CONTIGUOUS)."""
        if contiguous:
            return
        # most plans have no view, slice or permute: both sets stay empty, and a layer's check skips the scans
        reordered = reorders or bool(self.reordered) and any(i in self.reordered for i in inputs)
        strided = reordered or (aliases and (strides or bool(self.strided) and any(i in self.strided
                                                                                  for i in inputs[:1])))
        if strided:
            self.strided.update(made)
        if reordered:
            self.reordered.update(made)

    def place(self, name: str, span: Span) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """A new submodule's path (named as in the plan, or numbered in a numbered container) and its
        owner, the block call (or plan) whose forward runs it.  `name` is its node name."""
        f = self.diag.frames[-1]  # self.frame: this runs for every layer
        inner = f.containers[-1]
        if inner.numbered:
            attr = str(inner.size)
            inner.size += 1
        else:
            attr = name[len(f.prefix):] if name.startswith(f.prefix) else name
            if attr in MODULE_ATTRS:
                self.diag.error("E202", f"name {attr!r} is an attribute of torch.nn.Module; a submodule cannot "
                                "have it", span, hints=["choose another name"])
                raise Skip
        return (*inner.path, attr), f.containers[0].path

    def open_module(self, kind: str, name: str, span: Span, block: n.BlockDef | None = None,
                    names: tuple[str, ...] = ()) -> Container:
        """A block call's or numbered container's submodule, placed in the tree now (its output later).
        `names`: a block's inputs' names (BlockCalls reads them once a definition)."""
        path, owner = self.place(name, span)
        file = self.diag.frames[-1].file  # self.frame's
        # Module(path, kind, span, owner, name, file=, start=, prefix=, input_names=) without the frozen
        # dataclass's __init__ (an object.__setattr__ a field): one a block call
        module = _new_object(_ModuleFiller)
        module.path = path
        module.kind = kind
        module.span = span
        module.owner = owner
        module.name = block.name if block else ""
        module.inputs = ()
        module.output = -1
        module.file = file if file != self.diag.file else ""
        module.start = len(self.nodes)
        module.prefix = name + "_"
        module.input_names = names
        module.values = ()
        module.__class__ = Module
        self.tree.append(module)
        return Container(path, numbered=kind == "seq", entry=len(self.tree) - 1)

    def close_block(self, block: Container, inputs: tuple[int, ...], output: int, names: dict) -> None:
        values = tuple([(k, v) for k, v in names.items() if not isinstance(v, Tensor)])
        module = self.tree[block.entry]  # a copy with three fields changed, as dataclasses.replace makes it (a
        done = _new_object(_ModuleFiller)  # replace() runs __init__: an object.__setattr__ a field, ~2 % of a ResNet)
        done.path = module.path
        done.kind = module.kind
        done.span = module.span
        done.owner = module.owner
        done.name = module.name
        done.inputs = inputs
        done.output = output
        done.file = module.file
        done.start = module.start
        done.prefix = module.prefix
        done.input_names = module.input_names
        done.values = values
        done.__class__ = Module
        self.tree[block.entry] = done

    @property
    def frame(self) -> Frame:
        return self.diag.frames[-1]

    def node_name(self, base: str, target: str | None = None, span: Span | None = None) -> str:
        """A unique node name: `prefix + target` (plus repeat indices), or `prefix + base + count`.
        `span` locates the target, for a name the built module could not use."""
        f = self.diag.frames[-1]  # self.frame: this runs for every node
        if target:
            name = f.prefix + target + "".join(f"_{i}" for i in f.loop)
            if name in MODULE_ATTRS:
                self.diag.error("E202", f"name {name!r} is an attribute of torch.nn.Module; a layer cannot have it",
                                span, hints=["choose another name"])
                raise Skip
        else:
            counts, taken = f.counts, self.taken
            while True:
                count = counts[base] = counts.get(base, 0) + 1
                name = f"{f.prefix}{base}{'_' * base[-1].isdigit()}{count}"  # relu6_1, not relu61
                if name not in taken:
                    taken.add(name)
                    return name
        unique, k = name, 1
        while unique in self.taken:
            k += 1
            unique = f"{name}_{k}"
        self.taken.add(unique)
        return unique

    def _scope(self):
        """The block calls and numbered containers a node made now is inside, outermost first: (node-name
        prefix, block name or "Sequential"), as drawings group them."""
        for f in self.diag.frames:
            for c in f.containers if f.block is not None else f.containers[1:]:
                module = self.tree[c.entry]
                yield module.prefix.removesuffix("_"), module.name or "Sequential"

    def add_node(self, node: Node) -> Tensor:
        """`node`, placed where the walker is (see new_node)."""
        return self._append(replace(node, **self._placement(node.op, node.name, node.span)))

    def new_node(self, op: str, name: str, inputs: tuple[int, ...], shape: tuple, span: Span, **fields) -> Tensor:
        """A new node (`graph.Node`'s fields), placed where the walker is: its scope, file, submodule path and
        owner are read from the frames.  Built once: a second construction (dataclasses.replace) was ~10 % of
        checking a stack of layers."""
        self._place(fields, op, name, span)
        return self._append(new_node(len(self.nodes), op, name, inputs, shape, span, fields))

    def make_layer(self, name: str, inputs: tuple[int, ...], shape: tuple, span: Span, kind: str, args: dict,
                   given: tuple, written: tuple) -> Node:
        """A layer's node, placed where the walker is, given itself (what a layer call returns): `new_node` and
        `_place` (and `place`) written out in one frame, as this runs for every layer (~8 % of checking a stack).
        The same node as `new_node("layer", ...)` makes (tests/test_nodes_fast.py)."""
        nodes = self.nodes
        at = len(nodes)  # its id
        if at >= self.max_nodes:
            self.diag.error("E007", f"the plan unrolls to more than {self.max_nodes} nodes", span)
            raise Abort
        frames = self.diag.frames
        frame = frames[-1]  # self.frame, read once
        containers = frame.containers
        node = _new_object(_NodeFiller)
        inner = containers[-1]
        scope = inner.scope  # _scope_here's, read here: every layer of a body reads it (the plan's own: ())
        if scope is None:
            scope = self._scope_here(frames, frame, containers)
        node.scope = scope
        node.file = frame.file if frame.file != self.diag.file else ""
        # `place`, written out
        if inner.numbered:
            attr = str(inner.size)
            inner.size += 1
        else:
            prefix = frame.prefix
            attr = name[len(prefix):] if name.startswith(prefix) else name
            if attr in MODULE_ATTRS:
                self.diag.error("E202", f"name {attr!r} is an attribute of torch.nn.Module; a submodule cannot "
                                "have it", span, hints=["choose another name"])
                raise Skip
        node.path = (*inner.path, attr)
        node.owner = containers[0].path
        self.tree.append(at)
        node.id = at
        node.op = "layer"
        node.name = name
        node.inputs = inputs
        node.shape = shape
        node.span = span
        node.kind = kind
        node.args = args
        node.given = given
        node.written = written
        node.meta = {}
        node.unpack = ()
        node.__class__ = Node
        nodes.append(node)
        return node

    def _placement(self, op: str, name: str, span: Span) -> dict:
        """The fields of a node made now that say where it is: scope, file, path and owner."""
        fields: dict = {}
        self._place(fields, op, name, span)
        return fields

    def _place(self, fields: dict, op: str, name: str, span: Span) -> None:
        """`_placement`'s fields, written into `fields` (one dict a node, not two)."""
        if len(self.nodes) >= self.max_nodes:
            self.diag.error("E007", f"the plan unrolls to more than {self.max_nodes} nodes", span)
            raise Abort
        frames = self.diag.frames
        frame = frames[-1]  # self.frame, read once: this runs for every node
        containers = frame.containers
        if len(frames) > 1 or frame.block is not None or len(containers) > 1:  # else _scope() gives none
            scope = self._scope_here(frames, frame, containers)
            if scope:
                fields["scope"] = scope
        if frame.file != self.diag.file:
            fields["file"] = frame.file
        if op == "layer":
            fields["path"], fields["owner"] = self.place(name, span)
            self.tree.append(len(self.nodes))
        else:  # a function, an item of several outputs, or a parameter (its path is set by add_param)
            fields["owner"] = containers[0].path

    def _scope_here(self, frames: list, frame: Frame, containers: list) -> tuple:
        """`tuple(self._scope())`, kept on the innermost container: every node made while it is innermost has the
        same (a block's body, a repeat's).  Containers and frames are opened and closed as a stack, so the ones
        around it cannot change while it is innermost."""
        top = containers[-1]
        scope = top.scope
        if scope is None:
            scope = top.scope = tuple(self._scope())
        return scope

    def _append(self, node: Node) -> Tensor:
        self.nodes.append(node)
        return new_tensor(node.id)

    def add_several(self, node: Node, shapes: tuple, names: list[tuple[str, Span]]) -> list[Tensor]:
        """A call with several outputs (`shapes`, nested as torch nests them): `node` gives the first, an
        "item" node each of the others, named `names` (after the first).  Returns a Tensor per output."""
        flat = _flatten(shapes)
        ids = iter(range(len(self.nodes), len(self.nodes) + len(flat)))
        unpack = _nest(shapes, ids)
        first = self.add_node(replace(node, shape=tuple(flat[0]), unpack=unpack))
        out = [first]
        for k, (shape, (name, span)) in enumerate(zip(flat[1:], names, strict=True), 1):
            item = Node(len(self.nodes), "item", self.node_name("item", name, span), (first.id,), tuple(shape),
                        span, kind=node.kind or node.op, args={"index": k})
            out.append(self.add_node(item))
        return out

    def add_param(self, node: Node, span: Span) -> Tensor:
        """A learnable tensor: an nn.Parameter of the module being filled, named as the plan names it."""
        inner = self.frame.containers[-1]
        if inner.numbered:
            self.diag.error("E248", "a Parameter cannot be part of a numbered container (an nn.Sequential holds "
                            "modules only)", span, hints=["declare it before the `sequential:` or `repeat`"])
            raise Skip
        attr = node.name[len(self.frame.prefix):] if node.name.startswith(self.frame.prefix) else node.name
        if attr in MODULE_ATTRS:
            self.diag.error("E202", f"name {attr!r} is an attribute of torch.nn.Module; a parameter cannot "
                            "have it", span, hints=["choose another name"])
            raise Skip
        return self.add_node(replace(node, path=(*inner.path, attr)))

    def made_at(self, t: Tensor) -> str:
        """` (conv1, line 4)`: where a tensor was made, for a message about it."""
        node = self.nodes[t.id]
        file = node.file or self.diag.file
        where = f"line {node.span.line}" if file == self.frame.file else f"{file}:{node.span.line}"
        return f" ({node.name}, {where})"
