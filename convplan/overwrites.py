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

from .errors import Diagnostic
from .graph import Node
from .layers import REGISTRY
from .scope import State


def writes_input(node: Node) -> bool:
    return node.op == "layer" and node.args.get("inplace") is True


def _aliases(node: Node) -> bool:
    """Its output is its input's storage."""
    return node.op == "layer" and (REGISTRY[node.kind].aliases_input or writes_input(node))


def overwrite_warnings(st: State, outputs: tuple[int, ...]) -> None:
    nodes = st.nodes
    # writes_input, `inplace=True` first.  In Python: a loop over the nodes is warm (quickened) after a few of
    # them, and cost less than the same test as a chain of maps in C, where each stage fetches an attribute
    # through the type (~150 instructions a node a stage)
    writers = [node for node in nodes if node.args.get("inplace") is True and node.op == "layer"]
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
    """The ids of the nodes read more than once (by two nodes, or twice by one).  A loop, as above: it cost less
    than sorting the inputs in C and comparing each with the next."""
    once, twice = set(), set()
    for node in nodes:
        for i in node.inputs:
            if i in once:
                twice.add(i)
            else:
                once.add(i)
    return twice


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
