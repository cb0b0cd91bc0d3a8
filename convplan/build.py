"""Shape graph -> a real torch.nn.Module.  With verify.py, the only place that imports torch."""

from __future__ import annotations

import warnings

import sympy

with warnings.catch_warnings():
    # torch's CPU wheel runs without numpy but warns on import; convplan never gives torch a numpy array
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch
from torch import nn

from .errors import Diagnostic, PlanError
from .graph import Graph, Node
from .merges import MERGES


class PlanModule(nn.Module):
    """Runs the graph's nodes in order; each layer is a submodule named as in the plan's table,
    each merge a torch function.  Several inputs are positional; several outputs a tuple."""

    def __init__(self, graph: Graph, name: str):
        super().__init__()
        self.plan_name = name
        self._steps = [(node.id, node.op, node.name, node.inputs, dict(node.args))
                       for node in graph.nodes if node.op != "input"]
        self._input_ids = [node.id for node in graph.inputs]
        self._output_ids = list(graph.outputs)
        self._names = {node.id: node.name for node in graph.nodes}
        for node in graph.layers:
            self.add_module(node.name, make_layer(node))

    def forward(self, *inputs: torch.Tensor):
        values = self.run(*inputs)
        outputs = [values[i] for i in self._output_ids]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def run(self, *inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        """Every node's value, by node id (verify compares each one's shape)."""
        if len(inputs) != len(self._input_ids):
            raise TypeError(f"{self.plan_name} takes {len(self._input_ids)} input tensor(s), got {len(inputs)}")
        values = dict(zip(self._input_ids, inputs, strict=True))
        for node_id, op, name, sources, args in self._steps:
            operands = [values[i] for i in sources]
            if op == "layer":
                values[node_id] = getattr(self, name)(*operands)
            else:
                values[node_id] = MERGES[op].compute(torch, operands, args)
        return values


class Peak:
    """The most bytes of distinct storages alive at once during `values` (measured where tensors have storage)."""

    bytes: int = 0


def values(module: PlanModule, inputs, peak: Peak | None = None):
    """(node id, value) of every node in order, each value dropped once the last node that reads it has
    run: only the live values take memory (verify compares shapes as they come).  `peak` records the most
    bytes alive at once, the inputs included.  A function, not a method: a layer may be called `values`."""
    peak = peak if peak is not None else Peak()
    steps = module._steps
    last = {i: k for k, step in enumerate(steps) for i in step[3]}
    live = dict(zip(module._input_ids, inputs, strict=True))
    yield from live.items()
    peak.bytes = _storage_bytes(inputs)
    for k, (node_id, op, name, sources, args) in enumerate(steps):
        operands = [live[i] for i in sources]
        value = getattr(module, name)(*operands) if op == "layer" else MERGES[op].compute(torch, operands, args)
        peak.bytes = max(peak.bytes, _storage_bytes([*inputs, *live.values(), value]))
        del operands
        for i in set(sources):
            if last[i] == k:
                del live[i]
        if node_id in last:
            live[node_id] = value
        yield node_id, value
        del value


def _storage_bytes(tensors) -> int:
    if tensors and tensors[0].device.type == "meta":
        return 0
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


def make_layer(node: Node) -> nn.Module:
    """`torch.nn.<kind>(**arguments)`, every argument concrete."""
    spec = node.spec
    kwargs = {name: concrete(node.args[name]) for name in spec.torch_order() if name in node.given}
    return getattr(nn, spec.name)(**kwargs)


def concrete(value):
    """sympy integers -> int, recursively; anything symbolic left is a bug of the caller."""
    if isinstance(value, tuple):
        return tuple(concrete(v) for v in value)
    if isinstance(value, sympy.Basic):
        if not value.is_Integer:
            raise ValueError(f"not a concrete size: {value}")
        return int(value)
    return value


def build_module(plan) -> PlanModule:
    missing = sorted({s.name for node in plan.layers for v in node.args.values() for s in _symbols(v)})
    if missing:
        message = (f"building {plan.name} needs a value for {', '.join(missing)}: the layers' weights depend on it; "
                   f"pass {', '.join(f'{m}=...' for m in missing)}")
        raise PlanError([Diagnostic("E403", message, plan.definition.name_span, plan.filename)], plan.source)
    return PlanModule(plan.graph, plan.name)


def _symbols(value):
    if isinstance(value, tuple):
        return {s for v in value for s in _symbols(v)}
    return value.free_symbols if isinstance(value, sympy.Basic) else set()
