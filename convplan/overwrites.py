"""W350: a layer written with `inplace=True` that overwrites a tensor another node also reads.

In a residual whose body starts with `ReLU(inplace=True)`, the shortcut (or the add, for an identity
shortcut) reads the block's input after the ReLU has overwritten it: torch gives no error and a different
result.  A reader that runs before the in-place layer gets the right values, but if it saved the tensor for
its backward (a conv does), training fails ("modified by an inplace operation").  Either way the plan does
not compute what it says, so every such reader is reported.

A tensor's storage is followed through the layers that alias their input (`LayerSpec.aliases_input`: Flatten,
Identity, eval-mode Dropout) and through other in-place layers.
"""

from __future__ import annotations

from itertools import chain, compress, islice, repeat
from operator import attrgetter, eq, is_

from .errors import Diagnostic
from .graph import Node
from .layers import REGISTRY
from .scope import State

_INPUTS = attrgetter("inputs")
_ARGS = attrgetter("args")


def writes_input(node: Node) -> bool:
    return node.op == "layer" and node.args.get("inplace") is True


def _aliases(node: Node) -> bool:
    """Its output is its input's storage."""
    return node.op == "layer" and (REGISTRY[node.kind].aliases_input or writes_input(node))


def overwrite_warnings(st: State, outputs: tuple[int, ...]) -> None:
    nodes = st.nodes
    # writes_input, the nodes picked in C (a Python test per node was ~1 K instructions): `inplace=True` first
    flagged = compress(nodes, map(is_, map(dict.get, map(_ARGS, nodes), repeat("inplace")), repeat(True)))
    writers = [node for node in flagged if node.op == "layer"]
    if not writers:  # no inplace layer (most plans): no readers to map
        return
    shared = _read_twice(nodes)
    readers: dict[int, list[Node]] = {}  # made only for a writer whose input has other readers
    sources = None
    seen = set()
    for node in writers:
        root = node.inputs[0]
        if root not in shared and root not in outputs:
            made = nodes[root]  # _aliases, written out: it runs for every writer
            if made.op != "layer" or not (REGISTRY[made.kind].aliases_input or made.args.get("inplace") is True):
                continue  # `ReLU(inplace=True)` after a conv or a norm: its input's only reader, as most are
        if (node.file, node.span) in seen:
            continue
        if not readers:
            for reader in nodes:
                for i in reader.inputs:
                    readers.setdefault(i, []).append(reader)
            sources = {src.file: src.source for src in st.library.values()}
        others = _other_readers(node, nodes, readers, outputs)
        if others:
            seen.add((node.file, node.span))
            st.diag.diags.append(_warning(node, nodes[root], others, st, sources))


def _read_twice(nodes) -> set[int]:
    """The ids of the nodes read more than once (by two nodes, or twice by one), found in C: the inputs sorted,
    each against the next (they come nearly in order).  A Counter of them cost twice as much (its Python
    `update`, a dict entry per node)."""
    ids = sorted(chain.from_iterable(map(_INPUTS, nodes)))
    return set(compress(ids, map(eq, ids, islice(ids, 1, None))))


def _other_readers(node: Node, nodes, readers: dict, outputs) -> list[str]:
    """The nodes (and outputs) that read the storage `node` overwrites, other than through `node`."""
    root = nodes[node.inputs[0]]
    while _aliases(root) and root.inputs:  # back to the layer that made the storage
        root = nodes[root.inputs[0]]
    found, stack, visited = [], [root], set()
    while stack:  # every alias of the storage, except `node` and what comes out of it
        holder = stack.pop()
        if holder.id in visited:
            continue
        visited.add(holder.id)
        if holder.id in outputs:
            found.append(f"the output {holder.name}")
        for reader in readers.get(holder.id, ()):
            if reader.id == node.id:
                continue
            if _aliases(reader) and reader.inputs[0] == holder.id:
                stack.append(reader)
            else:
                found.append(reader.name)
    return found


def _warning(node: Node, overwritten: Node, others: list[str], st: State, sources: dict) -> Diagnostic:
    after = [n for n in others if not n.startswith("the output ") and _index(st, n) > node.id]
    before = [n for n in others if n not in after]
    parts = []
    if after:
        parts.append(f"{', '.join(after)} then read{'s' * (len(after) == 1)} {node.name}'s result instead "
                     "(no error, a different output)")
    if before:
        parts.append(f"{', '.join(before)} read{'s' * (len(before) == 1)} it before, and training fails if "
                     "it was saved for the backward pass")
    message = (f"{node.kind}(inplace=True) overwrites {overwritten.name}'s output, which other nodes read: "
               + "; ".join(parts))
    hints = (f"write {node.kind}() without inplace=True here, or move it where nothing else reads its input",)
    file = node.file or st.diag.file
    return Diagnostic("W350", message, node.span, file, hints, "warning",
                      source=sources.get(node.file) if node.file else None)


def _index(st: State, name: str) -> int:
    return next(n.id for n in st.nodes if n.name == name)
