"""Build the module, run it, and compare every layer's real output shape with the plan's.

A mismatch is a bug in convplan, never in the user's plan: the report says which layer,
at which sizes, predicted what and got what.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .build import build_module
from .graph import show_shape
from .shapes import evaluate

LARGE = 997  # an odd prime: floors and ceilings of large sizes do not line up by chance


@dataclass
class Run:
    label: str  # "given", "smallest", "large (meta)"
    sizes: dict[str, int]
    device: str
    checked: int = 0  # layers compared
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
            lines.append(f"{r.label:<13} {sizes} on {r.device}: {r.checked} layers {status}")
            lines.extend(f"    {m}" for m in r.mismatches)
        return "\n".join(lines)


def verify(plan, sizes: dict[str, int] | None = None, large: bool = True) -> Report:
    sizes = dict(sizes or {})
    runs = []
    if sizes:
        base = plan.bind(**sizes)
        runs.append(_run(plan, {**base.smallest_sizes(), **sizes}, "given", "cpu"))
    smallest = plan.smallest_sizes()
    runs.append(_run(plan, smallest, "smallest", "cpu"))
    if large and plan.symbols:
        runs.append(_run(plan, plan.smallest_sizes(start=LARGE), "large", "meta"))
    return Report(plan.name, runs)


def _run(plan, sizes: dict[str, int], label: str, device: str) -> Run:
    run = Run(label, sizes, device)
    bound = plan.bind(**sizes)
    with torch.device(device):
        module = build_module(bound).eval()
    seen: dict[str, tuple] = {}
    for node in bound.layers:
        sub = getattr(module, node.name)
        sub.register_forward_hook(lambda m, i, out, name=node.name: seen.__setitem__(name, tuple(out.shape)))
    x = torch.randn(*(int(evaluate(d, sizes)) for d in bound.input_shape), device=device)
    try:
        with torch.no_grad():
            module(x)
    except Exception as exc:  # torch refused what the plan accepted: that is the mismatch
        run.mismatches.append(f"torch raised {type(exc).__name__}: {str(exc).splitlines()[0]}")
    for node in bound.layers:
        if node.name not in seen:
            continue
        run.checked += 1
        want = tuple(int(evaluate(d, sizes)) for d in node.shape)
        if seen[node.name] != want:
            run.mismatches.append(f"line {node.line} {node.name} ({node.kind}): predicted {show_shape(want)}, "
                                  f"torch gave {list(seen[node.name])}")
    return run
