"""Passes: analyses over a checked graph, as torch.fx passes are.  A pass is one function that
reads each node's shape, arguments and registry entry and writes its result into
`node.meta[<its name>]`; a new analysis is one new function here (or in a module of its own)
plus its tests.  `run_passes` runs those registered with `@graph_pass` on every checked plan."""

from __future__ import annotations

from collections.abc import Callable

import sympy

from .graph import Graph
from .layers import REGISTRY, LayerSpec
from .shapes import to_expr

_ZERO = sympy.Integer(0)
_NO_WEIGHTS = LayerSpec.count  # the registry's default count (lambda a: 0), of every kind that declares none
PASSES: list[Callable[[Graph], None]] = []  # run on every checked graph, in order


def graph_pass(fn: Callable[[Graph], None]) -> Callable[[Graph], None]:
    """Register `fn` to run on every checked graph."""
    PASSES.append(fn)
    return fn


def run_passes(graph: Graph, passes=None) -> Graph:
    """Run `passes` (default: the registered ones) over `graph`, which they annotate in place."""
    for fn in PASSES if passes is None else passes:
        fn(graph)
    return graph


@graph_pass
def params(graph: Graph) -> None:
    """meta["params"]: the number of parameters of each node, by its kind's count in the registry (0 for
    inputs and functions; a learnable tensor's elements).  A count is a function of (kind, arguments), and a
    stack repeats both: counted once.  A kind without weights (ReLU, pools: a third of a CNN's layers) keeps
    the registry's default count, 0: nothing to look up."""
    zero = _ZERO
    last: dict = {}  # id(node.given) -> (kind, arguments, count)
    for node in graph.nodes:
        op = node.op
        if op == "layer":
            count = REGISTRY[node.kind].count
            if count is _NO_WEIGHTS:
                value = zero
            else:
                # The layers of one resolution share its `given` tuple (layercall.py keeps a call's resolution):
                # the arguments of the last one with this one's, compared in C (identical values are equal
                # without a call), else counted: a count of numbers is a few Python ints and one sympy Integer,
                # no dearer than a key of the argument values' identities was (~7 K instructions).
                kind, args = node.kind, node.args
                hit = last.get(id(node.given))
                if hit is not None and hit[0] == kind and hit[1] == args:
                    value = hit[2]
                else:
                    value = to_expr(count(args))
                    last[id(node.given)] = kind, args, value
        elif op == "param":  # a learnable tensor: its elements
            value = sympy.Mul(*node.shape)
        else:
            value = zero
        node.meta["params"] = value
