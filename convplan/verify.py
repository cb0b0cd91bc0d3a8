"""Build the module, run it, and compare every layer's real output shape with the plan's.

A mismatch is a bug in convplan, never in the user's plan: the report says which layer,
at which sizes, predicted what and got what.

Memory is bounded: each run's bytes are estimated from the plan before anything is allocated (the
weights, plus the most values alive at once: a run drops each value after the last layer that reads
it, `limits.run_bytes`).  A run whose estimate exceeds the budget (`memory_budget`, default
DEFAULT_BUDGET = 1 GB; `convplan verify --memory-budget 4GB`) runs on torch's `meta` device, which
checks every shape without allocating; the report says which runs were concrete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .build import (
    Peak,
    build_module,
    example_inputs,
    torch,  # as build.py imports it (without the numpy warning)
    values,
)
from .errors import PlanError
from .limits import addressable, require_addressable, run_bytes, show_bytes
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
    estimate: int = 0  # bytes the run needs by the plan: the weights and the most values alive at once
    budget: int = 0  # the most bytes a concrete run may take
    peak: int = 0  # bytes of values alive at once, measured (a concrete run)


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
            lines.append(f"{r.label:<13} {sizes} on {r.device} ({_how(r)}): {r.checked} layers and merges {status}")
            lines.extend(f"    {m}" for m in r.mismatches)
        return "\n".join(lines)


def _how(run: Run) -> str:
    if run.device != "meta":
        return f"concrete, about {show_bytes(run.estimate)}"
    if run.estimate > run.budget:
        return f"shapes only: about {show_bytes(run.estimate)}, over the {show_bytes(run.budget)} budget"
    return "shapes only"


DEFAULT_BUDGET = 10**9  # bytes a concrete run may take: weights and live values together


def verify(plan, sizes: dict[str, int] | None = None, large: bool = True, memory_budget: int | None = None) -> Report:
    """PlanError E404 where the given or the smallest sizes make a tensor too large for torch to address.
    Runs estimated above `memory_budget` bytes (default DEFAULT_BUDGET) run on `meta`."""
    sizes = dict(sizes or {})
    budget = DEFAULT_BUDGET if memory_budget is None else memory_budget
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ValueError(f"memory_budget must be a number of bytes (an int >= 0), got {memory_budget!r}")
    runs = []
    if sizes:
        base = plan.bind(**sizes)
        given = {**base.smallest_sizes(), **sizes}
        bound = plan.bind(**given)
        require_addressable(bound, given, "verify")
        runs.append(_run(bound, given, "given", budget))
        # plan parameters the user fixed (depth=2) hold for every run; only the input sizes vary
        fixed = {k: v for k, v in sizes.items() if k in plan.params}
        plan = plan.bind(**fixed) if fixed else plan
    smallest = plan.smallest_sizes()
    bound = plan.bind(**smallest)
    require_addressable(bound, smallest, "verify")
    runs.append(_run(bound, smallest, "smallest", budget))
    if large and plan.symbols:
        runs.append(_large(plan, budget))
    return Report(plan.name, runs)


def _large(plan, budget: int) -> Run:
    """The large run on `meta`, at 997 or, where a tensor would be too large for torch or a requirement bounds a
    size from above (`L <= 64`: a position table's length), a smaller odd prime."""
    sizes: dict = {}
    for start in (LARGE, *SMALLER):
        try:
            sizes = plan.smallest_sizes(start)  # positional: a size may be called start
        except PlanError:  # no sizes from `start` up meet the requirements
            continue
        bound = plan.bind(**sizes)
        if addressable(bound, sizes):
            return _run(bound, sizes, "large", budget, "meta")
    return Run("large", sizes, "meta", skipped=f"at every size from {SMALLER[-1]} up, a tensor would be too large "
                                              "for torch to address (2**63 bytes), or a requirement bounds a size")


def _run(bound, sizes: dict[str, int], label: str, budget: int, device: str | None = None) -> Run:
    """Build and run `bound` (the plan bound to `sizes`): on the CPU where its estimate is within the budget,
    else (or where the CPU has not the memory after all) on `meta`."""
    weights, live = run_bytes(bound, sizes)
    estimate = weights + live
    device = device or ("cpu" if estimate <= budget else "meta")
    try:
        return _attempt(bound, sizes, Run(label, sizes, device, estimate=estimate, budget=budget))
    except (MemoryError, RuntimeError) as exc:
        if device == "meta" or not _out_of_memory(exc):
            raise
    return _attempt(bound, sizes, Run(label, sizes, "meta", estimate=estimate, budget=budget))


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text


def _attempt(bound, sizes: dict[str, int], run: Run) -> Run:
    device = run.device
    with torch.device(device):
        module = build_module(bound).eval()
    inputs = example_inputs(bound.graph, sizes, device)
    seen, peak = {}, Peak()  # node id -> the shape torch gave; each value is dropped once nothing reads it
    try:
        with torch.no_grad():
            for node_id, value in values(module, inputs, peak):
                seen[node_id] = tuple(value.shape)
                del value
    except Exception as exc:  # torch refused what the plan accepted: that is the mismatch
        if device != "meta" and _out_of_memory(exc):
            raise
        run.mismatches.append(f"torch raised {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return run
    run.peak = peak.bytes
    for node in bound.graph.nodes:
        if node.op == "input":  # made from the predicted shape: nothing to compare
            continue
        run.checked += 1
        want = tuple(int(evaluate(d, sizes)) for d in node.shape)
        got = seen[node.id]
        if got != want:
            where = f"{node.file}:{node.line}" if node.file else f"line {node.line}"
            run.mismatches.append(f"{where} {node.name} ({node.kind or node.op}): predicted {show_shape(want)}, "
                                  f"torch gave {list(got)}")
    return run
