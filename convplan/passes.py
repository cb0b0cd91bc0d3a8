"""Passes: analyses over a checked graph, as torch.fx passes are.  A pass is one function that
reads each node's shape, arguments and registry entry and writes its result into
`node.meta[<its name>]`; a new analysis is one new function here (or in a module of its own)
plus its tests.  `run_passes` runs those registered with `@graph_pass` on every checked plan."""

from __future__ import annotations

from collections.abc import Callable

import sympy

from .graph import Graph
from .shapes import to_expr

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
    inputs and functions; a learnable tensor's elements).  A stage of identical blocks repeats (kind,
    arguments): counted once.  The layers of a stack share their argument objects (layercall.py keeps a
    call's resolution), so they are looked up by identity first: hashing the values (sympy integers hash in
    Python, ~12 a Conv2d) was most of this pass."""
    counted: dict = {}  # (kind, arguments) -> count
    same: dict = {}  # (kind, argument names, ids of their values) -> count; the graph keeps the values alive
    for node in graph.nodes:
        if node.op == "param":  # a learnable tensor: its elements
            node.meta["params"] = sympy.Mul(*node.shape)
            continue
        if node.op != "layer":
            node.meta["params"] = sympy.Integer(0)
            continue
        args = node.args
        ident = (node.kind, *args, *map(id, args.values()))
        value = same.get(ident)
        if value is None:
            value = same[ident] = _count(node, counted)
        node.meta["params"] = value


def _count(node, counted: dict):
    """The node's count, kept per (kind, arguments) where the values can be a key."""
    key = (node.kind, tuple(node.args.items()))
    try:
        value = counted.get(key)  # hashed once: the arguments hold sympy integers
    except TypeError:  # an argument value that cannot be a key: just count
        return to_expr(node.spec.count(node.args))
    if value is None:
        value = counted[key] = to_expr(node.spec.count(node.args))
    return value
