"""Limits torch puts on tensors: the elements a plan's tensors hold at given sizes, checked before torch
allocates anything.

torch addresses a tensor's bytes with 64-bit integers, even on the `meta` device, and its refusals of
a tensor too large are tracebacks ("numel: integer multiplication overflow", "Storage size
calculation overflowed", a TypeError past 12 dims), or an allocator error on the CPU.  `verify` and
`build` ask here first.  No torch import: this is arithmetic on the plan's formulas.
"""

from __future__ import annotations

import os

from .errors import Diagnostic, PlanError
from .shapes import evaluate

MAX_BYTES = 2**63 - 1  # what torch can address, on any device
ITEM_BYTES = 4  # float32, the dtype convplan builds and runs


def tensors(plan, sizes: dict[str, int]):
    """(node, "input" | "output" | "weights", elements) for every tensor a build and a run allocate:
    inputs, every node's output and each layer's parameters (all of them together: an upper bound
    on any one weight).  `plan` must be bound to `sizes` (structure can depend on them)."""
    for node in plan.graph.nodes:
        numel = 1
        for d in node.shape:
            numel *= int(evaluate(d, sizes))
        yield node, "input" if node.op == "input" else "output", numel
        if node.op != "input":
            yield node, "weights", int(evaluate(node.params, sizes))


def run_bytes(plan, sizes: dict[str, int]) -> tuple[int, int]:
    """(parameter bytes, the most bytes of values alive at once) of a float32 run that drops each value after
    the last node that reads it (`PlanModule.values`): the inputs for the whole run, a node's output from its
    step to its last reader's, a view or an in-place output in its source's storage (which then lives as
    long as the last of them).  `plan` must be bound to `sizes`."""
    from .memory import creates, storage_numel

    nodes = plan.graph.nodes
    steps = [n for n in nodes if n.op != "input"]
    owner: dict[int, int] = {}  # node id -> the node whose storage its output is
    for n in nodes:
        owner[n.id] = owner[n.inputs[0]] if n.inputs and not creates(n) else n.id
    last = {n.id: len(steps) for n in nodes if n.op == "input"}  # the caller holds the inputs
    for k, n in enumerate(steps):
        for i in (n.id, *n.inputs):
            last[owner[i]] = max(last.get(owner[i], k), k)
    size = {n.id: ITEM_BYTES * int(evaluate(storage_numel(n, nodes), sizes)) for n in nodes if owner[n.id] == n.id}
    freed = [0] * (len(steps) + 1)  # bytes dropped after each step
    for i, b in size.items():
        freed[last[i]] += b
    live = sum(size[n.id] for n in nodes if n.op == "input")
    peak = live
    for k, n in enumerate(steps):
        live += size.get(n.id, 0)
        peak = max(peak, live)
        live -= freed[k]
    params = sum(int(evaluate(n.params, sizes)) for n in nodes)
    return ITEM_BYTES * params, peak


def largest(plan, sizes: dict[str, int]) -> tuple:
    """The (node, what, elements) of the largest tensor."""
    return max(tensors(plan, sizes), key=lambda t: t[2])


def addressable(plan, sizes: dict[str, int]) -> bool:
    """Whether torch can hold every tensor at these sizes (on `meta` at least)."""
    return largest(plan, sizes)[2] * ITEM_BYTES <= MAX_BYTES


def require_addressable(plan, sizes: dict[str, int], doing: str) -> None:
    """PlanError E404, at the layer, where a tensor is too large for torch to address."""
    node, what, numel = largest(plan, sizes)
    if numel * ITEM_BYTES <= MAX_BYTES:
        return
    shown = ", ".join(f"{k}={v}" for k, v in sizes.items()) or "these sizes"
    message = (f"cannot {doing} at {shown}: the {what} of {node.name} ({node.kind or node.op}) would hold "
               f"{_count(numel)} elements, more than torch can address (2**63 bytes)")
    raise located(plan, "E404", message, node, ["check the sizes and channel counts this layer is given"])


def located(plan, code: str, message: str, node, hints) -> PlanError:
    """A PlanError at `node` (in the file its span is in)."""
    source = plan.source
    if node.file and node.file != plan.filename:
        source = _sources(plan).get(node.file, "")
    diag = Diagnostic(code, message, node.span, node.file or plan.filename, tuple(hints), source=source)
    return PlanError([diag], plan.source)


def _sources(plan) -> dict[str, str]:
    """file -> text of every file whose blocks the plan can reach."""
    found, todo = {}, list(plan._checked.library.values())
    while todo:
        src = todo.pop()
        if src.file not in found:
            found[src.file] = src.source
            todo.extend(src.namespace.values())
    return found


def physical_memory() -> int | None:
    """Bytes of RAM, where the system says (Linux, macOS); None elsewhere."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**21 else f"about 10**{len(str(n)) - 1}"


def show_bytes(n: int) -> str:
    for unit, size in (("EB", 10**18), ("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,} bytes"
