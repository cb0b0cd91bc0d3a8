"""Shape graph -> a real torch.nn.Module.  With verify.py, the only place that imports torch."""

from __future__ import annotations

import sympy
import torch
from torch import nn

from .errors import Diagnostic, PlanError
from .graph import Graph, Node


class PlanModule(nn.Module):
    """Runs the graph's nodes in order; each layer is a submodule named as in the plan's table."""

    def __init__(self, graph: Graph, name: str):
        super().__init__()
        self.plan_name = name
        self._steps = [(node.id, node.name, node.inputs) for node in graph.layers]
        self._input_ids = [node.id for node in graph.inputs]
        self._output_ids = list(graph.outputs)
        for node in graph.layers:
            self.add_module(node.name, make_layer(node))

    def forward(self, *inputs: torch.Tensor):
        values = dict(zip(self._input_ids, inputs))
        for node_id, name, sources in self._steps:
            values[node_id] = getattr(self, name)(*(values[i] for i in sources))
        outputs = [values[i] for i in self._output_ids]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


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
