"""Build the module, run it, and compare every layer's real output shape with the plan's.

A mismatch is a bug in convplan, never in the user's plan: the report says which layer,
at which sizes, predicted what and got what.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .build import build_module, torch  # torch as build.py imports it (without the numpy warning)
from .shapes import evaluate
from .show import show_shape

LARGE = 997  # an odd prime: floors and ceilings of large sizes do not line up by chance


@dataclass
class Run:
    label: str  # "given", "smallest", "large (meta)"
    sizes: dict[str, int]
    device: str
    checked: int = 0  # nodes compared: layers and merges
    mismatches: list[str] = field(default_factory=list)


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
            sizes = ", ".join(f"{k}={v}" for k, v in r.sizes.items()) or "no free sizes"
            status = "ok" if not r.mismatches else f"{len(r.mismatches)} MISMATCH(ES)"
            lines.append(f"{r.label:<13} {sizes} on {r.device}: {r.checked} layers and merges {status}")
            lines.extend(f"    {m}" for m in r.mismatches)
        return "\n".join(lines)


def verify(plan, sizes: dict[str, int] | None = None, large: bool = True) -> Report:
    sizes = dict(sizes or {})
    runs = []
    if sizes:
        base = plan.bind(**sizes)
        given = {**base.smallest_sizes(), **sizes}
        runs.append(_run(plan, given, "given", _device(base, given)))
        # plan parameters the user fixed (depth=2) hold for every run; only the input sizes vary
        fixed = {k: v for k, v in sizes.items() if k in plan.params}
        plan = plan.bind(**fixed) if fixed else plan
    smallest = plan.smallest_sizes()
    runs.append(_run(plan, smallest, "smallest", _device(plan.bind(**smallest), smallest)))
    if large and plan.symbols:
        runs.append(_run(plan, plan.smallest_sizes(start=LARGE), "large", "meta"))
    return Report(plan.name, runs)


CPU_ELEMENTS = 50_000_000  # beyond this many elements in a weight or activation, run on `meta` (shapes only)


def _device(plan, sizes: dict[str, int]) -> str:
    """cpu, unless a tensor at these sizes would be too large to allocate: then meta, which checks shapes."""
    biggest = 0
    for node in (*plan.graph.inputs, *plan.layers):
        numel = 1
        for d in node.shape:
            numel *= int(evaluate(d, sizes))
        biggest = max(biggest, numel, int(evaluate(node.params, sizes)))
    return "cpu" if biggest <= CPU_ELEMENTS else "meta"


def _run(plan, sizes: dict[str, int], label: str, device: str) -> Run:
    run = Run(label, sizes, device)
    bound = plan.bind(**sizes)
    with torch.device(device):
        module = build_module(bound).eval()
    inputs = [torch.randn(*(int(evaluate(d, sizes)) for d in node.shape), device=device)
              for node in bound.graph.inputs]
    try:
        with torch.no_grad():
            seen = module.run(*inputs)
    except Exception as exc:  # torch refused what the plan accepted: that is the mismatch
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
