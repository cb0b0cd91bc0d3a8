"""Memory as exact formulas, in bytes, for every size at once.

- parameters: every weight and bias (the `params` pass), at the dtype's size;
- gradients: one per parameter (training);
- optimizer state: SGD none, SGD with momentum one buffer per parameter, Adam two;
- activations: every tensor the forward pass creates in eval mode (inputs excluded).  A layer
  whose output is its input's storage takes nothing: views and eval-mode dropout (the registry's
  `aliases_input`) and layers written with `inplace=True`.

What autograd saves for backward in training is not modelled yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy

from .graph import Graph, Node
from .shapes import value_at

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8": 1}
OPTIMIZER_BUFFERS = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}  # state tensors per parameter


@dataclass(frozen=True)
class Memory:
    """Bytes, as formulas of the plan's symbols."""

    dtype: str
    parameters: sympy.Expr
    gradients: sympy.Expr
    optimizer: dict  # optimizer name -> bytes of its state
    activations: sympy.Expr
    by_layer: dict  # node name -> bytes of the tensor it creates (0 where it aliases its input)
    # raises for sizes the plan refuses (Plan.memory passes its own check)
    check: Callable[[dict], None] | None = field(default=None, repr=False, compare=False)

    def training(self, optimizer: str = "adam") -> sympy.Expr:
        """Parameters, gradients, optimizer state and the forward activations together."""
        if optimizer not in self.optimizer:
            raise ValueError(f"unknown optimizer {optimizer!r}; the optimizers are {', '.join(self.optimizer)}")
        return self.parameters + self.gradients + self.optimizer[optimizer] + self.activations

    def at(self, expr, **sizes: int) -> int:
        """`expr` (one of the fields) at these sizes."""
        if self.check is not None:
            self.check(sizes)
        return value_at(expr, sizes, "the memory")


def creates(node: Node) -> bool:
    """Whether the node's output is a new tensor in eval mode (not a view or its input itself)."""
    if node.op == "input":
        return False
    if node.op != "layer":
        return True  # merges compute new tensors
    return not (node.spec.aliases_input or node.args.get("inplace") is True)


def memory(graph: Graph, dtype: str = "float32", check: Callable[[dict], None] | None = None) -> Memory:
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; the dtypes are {', '.join(DTYPE_BYTES)}")
    size = DTYPE_BYTES[dtype]
    params = size * sympy.Add(*(node.params for node in graph.nodes))
    by_layer = {node.name: size * sympy.Mul(*node.shape) if creates(node) else sympy.Integer(0)
                for node in graph.nodes if node.op != "input"}
    return Memory(dtype, params, params, {name: k * params for name, k in OPTIMIZER_BUFFERS.items()},
                  sympy.Add(*by_layer.values()), by_layer, check)
