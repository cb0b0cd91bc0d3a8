"""Do convplan's budgets cost less than one FlopCounterMode run?  (issue 10)

On ResNet-50 (bench.py's plan, torchvision's network): the analyses of a freshly parsed plan, first call
each, as formulas of N, H, W (cost under every convention, memory with what autograd saves, receptive
fields), then their values at N=1, H=W=224, and the summary table; against torch's FlopCounterMode over
one forward of the built module at the same size (the first run, and the best of the next ones), its
count checked against convplan's "flopcounter" formula.  CPU time (user + system) for both, torch on one
thread (BENCH_CLOCK=wall: wall-clock time); the best of --reps fresh runs of the analyses.

    python benchmarks/budgets.py            # 3 repetitions
    python benchmarks/budgets.py --reps 5

Prints a table and PASS/FAIL; the exit status is 1 if the analyses are not faster or a count disagrees.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SIZES = {"N": 1, "H": 224, "W": 224}
CONVENTIONS = ("macs", "flopcounter", "fvcore", "ptflops")


def clock() -> float:
    return time.perf_counter() if os.environ.get("BENCH_CLOCK") == "wall" else time.process_time()


def analyses() -> dict:
    """One fresh interpreter's timings (seconds) of the analyses, first calls each, and their values."""
    sys.path.insert(0, str(ROOT))
    from bench import RESNET50_PLAN

    import convplan

    t = clock()
    plan = convplan.parse(RESNET50_PLAN)
    times = {"parse + check": clock() - t}
    t = clock()
    costs = {c: plan.cost(c) for c in CONVENTIONS}
    times["cost, 4 conventions"] = clock() - t
    t = clock()
    memory = plan.memory("float32")
    times["memory (saved for backward too)"] = clock() - t
    t = clock()
    plan.receptive_field()
    times["receptive field"] = clock() - t
    t = clock()
    values = {c: cost.at(**SIZES) for c, cost in costs.items()}
    values["training"] = memory.at(memory.training("adam"), **SIZES)
    values["saved"] = memory.at(memory.saved, **SIZES)
    times["values at N=1, H=W=224"] = clock() - t
    t = clock()
    str(plan.summary(**SIZES))
    times["summary table at 224 (re-check bound)"] = clock() - t
    return {"times": times, "values": values}


def flop_counter(reps: int) -> dict:
    """FlopCounterMode over the built module's forward: the first run and the best of `reps` more."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(ROOT))
    from bench import RESNET50_PLAN

    import convplan

    torch.set_num_threads(1)
    module = convplan.parse(RESNET50_PLAN).build(**SIZES).eval()
    x = torch.randn(SIZES["N"], 3, SIZES["H"], SIZES["W"])
    runs, flops = [], None
    for _ in range(reps + 1):
        t = clock()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(x)
        runs.append(clock() - t)
        flops = counter.get_total_flops()
    return {"first": runs[0], "best": min(runs[1:]), "flops": flops}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", choices=("analyses", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(analyses() if args.child == "analyses" else flop_counter(args.reps)))
        return 0
    runs = [_child("analyses") for _ in range(args.reps)]
    torch_run = _child("torch", args.reps)
    best = {k: min(r["times"][k] for r in runs) for k in runs[0]["times"]}
    values = runs[0]["values"]
    analysed = sum(v for k, v in best.items() if not k.startswith(("parse", "summary")))
    rows = [(k, f"{1000 * v:9.1f}") for k, v in best.items()]
    rows += [("the analyses (cost, memory, field, values)", f"{1000 * analysed:9.1f}"),
             ("FlopCounterMode, first run", f"{1000 * torch_run['first']:9.1f}"),
             ("FlopCounterMode, best run", f"{1000 * torch_run['best']:9.1f}")]
    width = max(len(k) for k, _ in rows)
    print(f"ResNet-50 at N=1, H=W=224, {'wall' if os.environ.get('BENCH_CLOCK') == 'wall' else 'CPU'} ms, "
          f"best of {args.reps}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print("  values: " + ", ".join(f"{k} {v:,}" for k, v in values.items()))
    agree = values["flopcounter"] == torch_run["flops"]
    faster = analysed < torch_run["best"]
    print(f"{'PASS' if agree else 'FAIL'}: flopcounter formula {values['flopcounter']:,} vs FlopCounterMode "
          f"{torch_run['flops']:,}")
    print(f"{'PASS' if faster else 'FAIL'}: the analyses take {analysed / torch_run['best']:.3f} of a "
          f"FlopCounterMode run ({torch_run['best'] / analysed:.1f}x faster)")
    return 0 if agree and faster else 1


def _child(which: str, reps: int = 0) -> dict:
    """A fresh interpreter: no convplan or sympy cache warm from an earlier run."""
    cmd = [sys.executable, __file__, "--child", which, "--reps", str(reps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(
        ROOT.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
