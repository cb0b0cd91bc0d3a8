"""Stage 1: see the model.  One real run records what every submodule is called with; then torch.fx traces
each module of a user class on its own (one it cannot trace is read from a run by hooks: hooks.py), its
layers and the user-class modules it calls kept as leaves
(`call_module` nodes), plain nn.Sequential containers traced through (their children become numbered
calls), and `ShapeProp` gives every value's shape at the example input.  Each traced module becomes a
`Body` of `Op`s (mapping.py names the layer kinds and merges); what does not map is a located `Problem`."""

from __future__ import annotations

import inspect
import os
import traceback
from collections import defaultdict

import torch
import torch.fx as fx
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx._symbolic_trace import PH
from torch.fx.passes.shape_prop import TensorMetadata, _extract_tensor_metadata

from ..codechecks import CHECKS
from .hooks import read_by_hooks
from .ir import Body, ImportFailure, Op, Problem
from .mapping import (
    ALIASES,
    BROADCASTS,
    FUNCTIONS,
    RESHAPES,
    Unmapped,
    bind,
    check_inferred,
    check_rebuilt,
    function_args,
    layer_spec,
    module_args,
    reshape_kind,
)

_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_DIR = os.path.dirname(os.path.dirname(__file__))


class _Tracer(fx.Tracer):
    """Every submodule is a leaf but a plain nn.Sequential, whose forward is a chain of its children."""

    def __init__(self, locate: bool):
        super().__init__()
        self.record_stack_traces = locate

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) is not nn.Sequential


def class_key(module: nn.Module) -> str:
    """What makes two submodules instances of one block: their class (convplan's own modules: the block)."""
    plan_name = getattr(module, "plan_name", None)
    if type(module).__module__ == "convplan.build" and isinstance(plan_name, str):
        return plan_name
    return type(module).__name__


def trace_model(model: nn.Module, inputs: tuple) -> dict[str, Body]:
    """The bodies of the model and of every user-class submodule it calls, by qualified name; ImportFailure
    listing every problem found."""
    problems: list[Problem] = []
    calls, outputs = _record_calls(model, inputs)
    modules = dict(model.named_modules(remove_duplicate=False))
    _shared(model, problems)
    bodies: dict[str, Body] = {}
    direct: set[str] = set()  # weights read directly in a forward: reported there, not again as lost
    todo = [""]
    while todo:
        qualname = todo.pop(0)
        module = modules[qualname]
        body = _trace_one(qualname, module, calls[qualname][1], problems, outputs, direct)
        if body is None:
            continue
        bodies[qualname] = body
        todo.extend(op.instance for op in body.ops if op.what == "block")
    _coverage(model, bodies, calls, problems, direct)
    if problems:
        raise ImportFailure(problems)
    return bodies


def _record_calls(model: nn.Module, inputs: tuple) -> dict:
    """qualified name -> (number of calls, the first call's positional arguments), and the first outputs of the
    modules that are no layer kind, from one run in eval mode without gradients (the model's training flags are
    put back after)."""
    calls: dict = defaultdict(lambda: [0, ()])
    outputs: dict = {}  # qualified name -> the first call's output, for modules that are no layer kind
    names = {id(m): q for q, m in model.named_modules()}
    hooks = []

    def hook(module, args, output):
        outputs.setdefault(names[id(module)], output)

    def pre_hook(module, args):
        entry = calls[names[id(module)]]
        if entry[0] == 0:
            entry[1] = args
        entry[0] += 1

    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        hooks = [m.register_forward_pre_hook(pre_hook) for m in model.modules()]
        hooks += [m.register_forward_hook(hook) for m in model.modules() if layer_spec(m) is None]
        with torch.no_grad():
            model(*inputs)
    except Exception as exc:  # the model itself fails on the example input: nothing to trace
        raise ImportFailure([Problem("", type(model).__name__, f"the model fails on the example input: "
                                     f"{type(exc).__name__}: {exc}", source=_user_line(exc))],
                            "cannot import the model: it does not run on the example input") from None
    finally:
        for h in hooks:
            h.remove()
        for m, flag in flags.items():
            m.train(flag)
    return calls, outputs


def _shared(model: nn.Module, problems: list) -> None:
    """A module registered under two names is one set of weights in two places: a plan makes one per name."""
    seen: dict = {}
    for q, m in model.named_modules(remove_duplicate=False):
        if id(m) in seen and (any(True for _ in m.parameters(recurse=True)) or layer_spec(m) is None):
            problems.append(Problem(q, type(m).__name__, f"is the same module as {seen[id(m)] or '<model>'}: "
                                    "shared weights cannot be planned"))
        seen.setdefault(id(m), q)


def _trace_one(qualname: str, module: nn.Module, args: tuple, problems: list, known: dict, direct: set) -> Body | None:
    """The module's body.  fx records the Python line of each node only when asked, and that costs more than
    the trace (torch symbolises every stack): a module with a problem is traced again to say where it is."""
    found: list[Problem] = []
    try:
        body = _trace(qualname, module, args, found, False, known, direct)
    except _Untraceable as exc:  # read from a run by hooks where torch.export says the run stands for it
        body, unread = read_by_hooks(qualname, class_key(module), module, args, exc.problem)
        problems.extend(unread or ([exc.problem] if body is None else []))
        if body is None:  # its submodules' weights are reported here, not again as lost
            direct |= {".".join(filter(None, [qualname, q])) for q, _ in module.named_modules() if q}
        return body
    if any(p.node for p in found):
        found = []
        body = _trace(qualname, module, args, found, True, known, direct)
    problems.extend(found)
    return body


def _trace(qualname: str, module: nn.Module, args: tuple, problems: list, locate: bool, known: dict,
           direct: set) -> Body | None:
    cls = class_key(module)
    try:
        graph = _Tracer(locate).trace(module, concrete_args=_concrete(module, args))
        gm = fx.GraphModule(module, graph)
    except Exception as exc:  # fx refuses control flow on tensors, and so on: the user's line says where
        raise _Untraceable(Problem(qualname, cls, _why(exc), source=_user_line(exc))) from None
    prefix = f"{qualname}." if qualname else ""
    outputs = {t: known[prefix + t] for t in (str(n.target) for n in graph.nodes if n.op == "call_module")
               if prefix + t in known}
    try:
        _Shapes(gm, outputs, fake=True).run(*args)
    except Exception:  # an op fake tensors do not support: run it for real
        try:
            _Shapes(gm, outputs, fake=False).run(*args)
        except Exception as exc:
            problems.append(Problem(qualname, cls, f"running its traced graph failed: {type(exc).__name__}: "
                                    f"{str(exc).strip()[:200]}", source=_user_line(exc)))
            return None
    converter = _Converter(qualname, cls, gm, problems)
    body = converter.body()
    direct |= converter.direct
    return body


class _Shapes(fx.Interpreter):
    """Every node's shape (node.meta["tensor_meta"], as fx's ShapeProp): layers and functions run on fake
    tensors (no arithmetic), a user-class submodule gives the output it gave in the real run (it is traced
    on its own: running it here would run an `if` fx refuses)."""

    def __init__(self, gm: fx.GraphModule, outputs: dict, fake: bool):
        super().__init__(gm)
        self.outputs = outputs
        self.mode = FakeTensorMode(allow_non_fake_inputs=True) if fake else None

    def run(self, *args):
        flags = {m: m.training for m in self.module.modules()}
        self.module.eval()
        try:
            with torch.no_grad():
                if self.mode is None:
                    return super().run(*args)
                with self.mode:
                    return super().run(*(self.mode.from_tensor(a) for a in args))
        finally:
            for m, flag in flags.items():
                m.train(flag)

    def run_node(self, n: fx.Node):
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            n.meta["tensor_meta"] = _extract_tensor_metadata(result)
        return result

    def call_module(self, target, args, kwargs):
        if target in self.outputs:
            out = self.outputs[target]
            return self.mode.from_tensor(out) if self.mode is not None and isinstance(out, torch.Tensor) else out
        return super().call_module(target, args, kwargs)


def _concrete(module: nn.Module, args: tuple):
    """fx's concrete_args: a forward(*inputs) gets one placeholder per tensor it was called with; parameters
    it was not called with keep their defaults."""
    sig = inspect.signature(type(module).forward)
    params = list(sig.parameters.values())[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return tuple(PH for _ in args)
    rest = {p.name: p.default for p in params[len(args):] if p.default is not p.empty}
    return rest or None


def _why(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "control flow" in text:
        return ("its forward decides on a tensor's value (data-dependent control flow), which fx cannot "
                "trace and a plan cannot say: " + text)
    return f"torch.fx cannot trace its forward: {type(exc).__name__}: {text}"


def _user_line(exc: BaseException) -> str:
    """`file.py:42` of the innermost frame outside torch and convplan: the user's line that failed."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(_TORCH_DIR) and not f.filename.startswith(_OWN_DIR)]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _node_line(node: fx.Node) -> str:
    """`file.py:42` of the user's line that made an fx node (from its recorded stack trace)."""
    lines = [ln.strip() for ln in (node.stack_trace or "").splitlines() if ln.strip().startswith('File "')]
    for ln in lines:
        path = ln.split('"')[1]
        if not path.startswith(_TORCH_DIR) and not path.startswith(_OWN_DIR):
            line = ln.split(", line ")[1].split(",")[0] if ", line " in ln else "?"
            return f"{path}:{line}"
    return ""


_FAILED = object()  # a value whose node was reported: what uses it is not reported again
_SIZES = object()  # a value that is not a tensor (x.size(0), x.shape): fine where a reshape reads it


class _Converter:
    """One traced module's fx graph -> a Body."""

    def __init__(self, qualname: str, cls: str, gm: fx.GraphModule, problems: list):
        self.qualname, self.cls, self.gm, self.problems = qualname, cls, gm, problems
        self.ops: list[Op] = []
        self.values: dict = {}  # fx node -> op id, _FAILED or _SIZES
        self.direct: set[str] = set()  # parameters and buffers read directly (reported where they are read)

    def body(self) -> Body | None:
        outputs: tuple = ()
        names = []
        for node in self.gm.graph.nodes:
            if node.op == "output":
                outputs = self._outputs(node)
                continue
            try:
                self.values[node] = self._convert(node)
            except Unmapped as exc:
                self.values[node] = _FAILED
                if node.op == "call_module":  # its weights are reported here, not again as lost
                    self.direct.add(f"{self.qualname}.{node.target}" if self.qualname else str(node.target))
                self.problems.append(Problem(self.qualname, self.cls, str(exc), node.name, _node_line(node)))
            if node.op == "placeholder":
                names.append(node.name)
        # with a problem in its outputs the body is still kept: its layers' weights are accounted for
        return Body(self.qualname, self.cls, self.ops, outputs or (), tuple(names))

    def _outputs(self, node: fx.Node):
        value = node.args[0]
        items = value if isinstance(value, (tuple, list)) else (value,)
        ids = []
        for item in items:
            got = self.values.get(item, _FAILED) if isinstance(item, fx.Node) else _FAILED
            if got is _FAILED or got is _SIZES:
                if got is _SIZES or not isinstance(item, fx.Node):
                    self.problems.append(Problem(self.qualname, self.cls, "returns something other than a tensor "
                                                 "or a tuple of tensors", node.name))
                return None
            ids.append(got)
        return tuple(ids)

    def _add(self, what: str, kind: str, node: fx.Node, inputs, **fields) -> int:
        op = Op(len(self.ops), what, kind, tuple(inputs), _shape(node), name=node.name, **fields)
        self.ops.append(op)
        return op.id

    def _convert(self, node: fx.Node):
        if not _is_tensor(node):
            return self._non_tensor(node)
        if node.op == "placeholder":
            return self._add("input", "", node, ())
        if node.op == "get_attr":
            self.direct.add(f"{self.qualname}.{node.target}" if self.qualname else str(node.target))
            raise Unmapped(f"reads self.{node.target} directly: a plan holds weights only in its layers")
        if node.op == "call_module":
            return self._module(node)
        return self._function(node)

    def _non_tensor(self, node: fx.Node):
        if node.op == "call_function" and getattr(node.target, "__name__", "") == CHECKS and not node.users:
            return _SIZES  # generated code's input checks (codechecks.py): nothing for a plan to hold
        if node.op == "call_method" and node.target == "size" or node.op == "call_function" and \
                getattr(node.target, "__name__", "") in ("getattr", "getitem"):
            if all(self.values.get(a) is not _FAILED for a in node.all_input_nodes):
                return _SIZES
            return _FAILED
        if any(self.values.get(a) is _FAILED for a in node.all_input_nodes):
            return _FAILED
        raise Unmapped(f"{_what(node)} does not give a tensor: a plan's values are tensors")

    def _tensors(self, nodes) -> list[int]:
        out = []
        for a in nodes:
            got = self.values.get(a, _FAILED)
            if got is _FAILED:
                raise _Skip
            if got is _SIZES:
                raise Unmapped("an argument computed from a tensor's sizes has no counterpart in a plan")
            out.append(got)
        return out

    def _module(self, node: fx.Node) -> int:
        target = str(node.target)
        module = self.gm.get_submodule(target)
        path = tuple(target.split("."))
        try:
            inputs = self._tensors(node.args)
        except _Skip:
            return _FAILED
        if node.kwargs:
            raise Unmapped(f"self.{target} is called with keyword arguments ({', '.join(node.kwargs)})")
        spec = layer_spec(module)
        if spec is not None:
            args = module_args(module, spec)
            check_inferred(module, spec, args, [_shape(a) for a in node.args], target)
            check_rebuilt(module, spec, args)
            return self._add("layer", spec.name, node, inputs, path=path, args=args)
        if type(module).__module__.startswith("torch."):
            raise Unmapped(f"self.{target} is a {type(module).__name__}, which is not a layer kind convplan knows "
                           "(the list: docs/layers.md)")
        instance = f"{self.qualname}.{target}" if self.qualname else target
        return self._add("block", class_key(module), node, inputs, path=path, instance=instance)

    def _function(self, node: fx.Node) -> int:
        target = node.target
        if node.op == "call_method" and (target in ALIASES or target in BROADCASTS and all(
                getattr(FUNCTIONS.get(user.target), "kind", "") == "mul" for user in node.users)):
            return self.values.get(node.args[0], _FAILED)  # mul broadcasts by itself
        try:
            if node.op == "call_method" and target in RESHAPES:
                return self._reshape(node)
            fn = FUNCTIONS.get(target)
            if fn is None:
                raise Unmapped("not a layer kind or merge convplan knows (the kinds: docs/layers.md)")
            if fn.merge:
                return self._merge(fn, node)
            inputs = self._tensors(node.args[:1])
            bound = bind(fn, tuple(node.args[1:]), dict(node.kwargs))
            if any(isinstance(v, fx.Node) for v in bound.values()):
                raise Unmapped("an argument is computed while running: a plan's arguments are fixed")
            return self._add("layer", fn.kind, node, inputs, args=function_args(fn, bound))
        except _Skip:
            return _FAILED
        except Unmapped as exc:
            raise Unmapped(f"{_what(node)}: {exc}") from None

    def _merge(self, fn, node: fx.Node) -> int:
        if fn.kind == "cat":
            tensors, rest = node.args[0], node.args[1:]
            if not isinstance(tensors, (list, tuple)):
                raise Unmapped("concatenates something other than a list of tensors")
            bound = bind(fn, tuple(rest), dict(node.kwargs))
            inputs = self._tensors(tensors)
            dim = bound["dim"]
            rank = len(_shape(node))
            if not isinstance(dim, int):
                raise Unmapped("dim is computed while running")
            return self._add("merge", "cat", node, inputs, args={"dim": dim + rank if dim < 0 else dim})
        tensors, rest = node.args[:2], node.args[2:]
        bound = bind(fn, tuple(rest), dict(node.kwargs))
        if not all(isinstance(t, fx.Node) and _is_tensor(t) for t in tensors) or len(tensors) != 2:
            raise Unmapped(f"{fn.kind} of a tensor and a number: a plan's merges join tensors")
        del bound
        inputs = self._tensors(tensors)
        shapes = [_shape(t) for t in tensors]
        if fn.kind == "add" and shapes[0] != shapes[1]:
            raise Unmapped(f"adds tensors of shapes {list(shapes[0])} and {list(shapes[1])}: a plan's add needs "
                           "equal shapes (no broadcasting)")
        return self._add("merge", fn.kind, node, inputs)

    def _reshape(self, node: fx.Node) -> int:
        inputs = self._tensors(node.args[:1])
        args = node.args[1:]
        if len(args) == 1 and isinstance(args[0], (tuple, list)):
            args = tuple(args[0])
        for a in args:
            if isinstance(a, fx.Node) and self.values.get(a) is not _SIZES:
                raise Unmapped("a size computed from something other than the tensor's sizes")
        kind, full = reshape_kind(_shape(node.args[0]), _shape(node), tuple(args))
        from ..layers import REGISTRY

        spec = REGISTRY[kind]
        return self._add("layer", kind, node, inputs, args={a.name: full.get(a.name, a.default) for a in spec.args})


class _Untraceable(Exception):
    """torch.fx cannot trace the module's forward: `problem` says why and where."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


class _Skip(Exception):
    """An operand's node was already reported."""


def _is_tensor(node) -> bool:
    return isinstance(node, fx.Node) and isinstance(node.meta.get("tensor_meta"), TensorMetadata)


def _shape(node: fx.Node) -> tuple[int, ...]:
    return tuple(int(d) for d in node.meta["tensor_meta"].shape)


def _what(node: fx.Node) -> str:
    target = node.target
    if node.op == "call_method":
        return f"the method .{target}()"
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", "") or ""
    prefix = {"torch.nn.functional": "F.", "torch": "torch.", "_operator": "operator.", "operator": "operator."} \
        .get(module, f"{module}." if module and module != "builtins" else "")
    return f"{prefix}{name}()"


def _in_layer(owner: str, layers: set) -> bool:
    """A layer owns its submodules' weights too (a Transformer layer's attention and norms)."""
    parts = owner.split(".")
    return any(".".join(parts[:k]) in layers for k in range(len(parts), 0, -1))


def _coverage(model: nn.Module, bodies: dict, calls: dict, problems: list, direct: set) -> None:
    """Every weight of the model must belong to a layer some body calls, once: else the plan would lose it."""
    called: dict[str, int] = {}
    layers: set[str] = set()
    for body in bodies.values():
        for op in body.ops:
            if op.what in ("layer", "block") and op.path:
                q = ".".join(filter(None, [body.qualname, *op.path]))
                called[q] = called.get(q, 0) + 1
                if op.what == "layer":
                    layers.add(q)
    modules = dict(model.named_modules())
    for q, count in called.items():
        m = modules.get(q)
        if count > 1 and m is not None and any(True for _ in m.parameters()):
            problems.append(Problem(q, type(m).__name__, f"is called {count} times: a plan makes a module per call, "
                                    "so shared weights cannot be planned"))
    for key in model.state_dict():
        owner = key.rpartition(".")[0]
        if key in direct or _in_layer(owner, direct):
            continue
        if not _in_layer(owner, layers):
            if any(p.module and (owner == p.module or owner.startswith(p.module + ".")) for p in problems):
                continue  # inside a module already reported
            m = modules.get(owner)
            what = "is never called in forward" if calls.get(owner, [0])[0] == 0 else "is not a layer of a traced body"
            problems.append(Problem(owner, type(m).__name__ if m is not None else "?",
                                    f"holds {key!r} but {what}: the plan would lose its weights"))
