"""Build the module, run it, and compare every layer's real output shape with the plan's.

A mismatch is a bug in convplan, never in the user's plan: the report says which layer,
at which sizes, predicted what and got what.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .build import build_module, torch  # torch as build.py imports it (without the numpy warning)
from .limits import addressable, require_addressable, tensors
from .shapes import evaluate
from .show import show_shape

LARGE = 997  # an odd prime: floors and ceilings of large sizes do not line up by chance
SMALLER = (251, 61, 13)  # odd primes too, for the large run where 997 would make a tensor torch cannot address


@dataclass
class Run:
    label: str  # "given", "smallest", "large (meta)"
    sizes: dict[str, int]
    device: str
    checked: int = 0  # nodes compared: layers and merges
    mismatches: list[str] = field(default_factory=list)
    skipped: str = ""  # why the run did not happen (nothing at these sizes fits in what torch can address)


@dataclass
class Report:
    plan: str
    runs: list[Run]

    @property
    def ok(self) -> bool:
        return all(not r.mismatches for r in self.runs)

    def __str__(self) -> str:
        lines = []
        for r in self.runs:
            if r.skipped:
                lines.append(f"{r.label:<13} skipped: {r.skipped}")
                continue
            sizes = ", ".join(f"{k}={v}" for k, v in r.sizes.items()) or "no free sizes"
            status = "ok" if not r.mismatches else f"{len(r.mismatches)} MISMATCH(ES)"
            lines.append(f"{r.label:<13} {sizes} on {r.device}: {r.checked} layers and merges {status}")
            lines.extend(f"    {m}" for m in r.mismatches)
        return "\n".join(lines)


def verify(plan, sizes: dict[str, int] | None = None, large: bool = True) -> Report:
    """PlanError E404 where the given or the smallest sizes make a tensor too large for torch to address."""
    sizes = dict(sizes or {})
    runs = []
    if sizes:
        base = plan.bind(**sizes)
        given = {**base.smallest_sizes(), **sizes}
        bound = plan.bind(**given)
        require_addressable(bound, given, "verify")
        runs.append(_run(bound, given, "given", _device(bound, given)))
        # plan parameters the user fixed (depth=2) hold for every run; only the input sizes vary
        fixed = {k: v for k, v in sizes.items() if k in plan.params}
        plan = plan.bind(**fixed) if fixed else plan
    smallest = plan.smallest_sizes()
    bound = plan.bind(**smallest)
    require_addressable(bound, smallest, "verify")
    runs.append(_run(bound, smallest, "smallest", _device(bound, smallest)))
    if large and plan.symbols:
        runs.append(_large(plan))
    return Report(plan.name, runs)


def _large(plan) -> Run:
    """The large run on `meta`, at 997 or, where a tensor would be too large for torch, a smaller odd prime."""
    for start in (LARGE, *SMALLER):
        sizes = plan.smallest_sizes(start=start)
        bound = plan.bind(**sizes)
        if addressable(bound, sizes):
            return _run(bound, sizes, "large", "meta")
    return Run("large", sizes, "meta", skipped=f"at every size from {SMALLER[-1]} up, a tensor would be too large "
                                              "for torch to address (2**63 bytes)")


CPU_ELEMENTS = 50_000_000  # beyond this many elements in a weight or activation, run on `meta` (shapes only)
CPU_TOTAL = 250_000_000  # or beyond this many in all of them together (1 GB of float32): a run keeps every output


def _device(plan, sizes: dict[str, int]) -> str:
    """cpu, unless the tensors at these sizes would be too large to allocate: then meta, which checks shapes."""
    counts = [numel for _, _, numel in tensors(plan, sizes)]
    return "cpu" if max(counts) <= CPU_ELEMENTS and sum(counts) <= CPU_TOTAL else "meta"


def _run(bound, sizes: dict[str, int], label: str, device: str) -> Run:
    """Build and run `bound` (the plan bound to `sizes`) on `device`; on `meta` where the CPU has not the memory."""
    try:
        return _attempt(bound, sizes, label, device)
    except (MemoryError, RuntimeError) as exc:
        if device == "meta" or not _out_of_memory(exc):
            raise
    return _attempt(bound, sizes, label, "meta")


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text


def _attempt(bound, sizes: dict[str, int], label: str, device: str) -> Run:
    run = Run(label, sizes, device)
    with torch.device(device):
        module = build_module(bound).eval()
    inputs = [torch.randn(*(int(evaluate(d, sizes)) for d in node.shape), device=device)
              for node in bound.graph.inputs]
    try:
        with torch.no_grad():
            seen = module.run(*inputs)
    except Exception as exc:  # torch refused what the plan accepted: that is the mismatch
        if device != "meta" and _out_of_memory(exc):
            raise
        run.mismatches.append(f"torch raised {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return run
    for node in bound.graph.nodes:
        if node.op == "input":  # made from the predicted shape: nothing to compare
            continue
        run.checked += 1
        want = tuple(int(evaluate(d, sizes)) for d in node.shape)
        got = tuple(seen[node.id].shape)
        if got != want:
            where = f"{node.file}:{node.line}" if node.file else f"line {node.line}"
            run.mismatches.append(f"{where} {node.name} ({node.kind or node.op}): predicted {show_shape(want)}, "
                                  f"torch gave {list(got)}")
    return run
