"""How fast is `convplan check` next to torch's own shape inference?

Times parse + check of generated plans, side by side with torch's meta-device forward
of the same networks (built here with torch.nn directly, not through convplan), then
the `convplan check` process against `python -c "import torch"`.  Prints a table and
PASS/FAIL per target; the exit status is 1 if a target fails.

    python benchmarks/bench.py              # everything (a minute or two)
    python benchmarks/bench.py --quick      # fewer repetitions
    python benchmarks/bench.py --profile resnet50   # cProfile of one case's parse + check

Every convplan timing is one parse + check in a FRESH interpreter (as `convplan check` runs:
no sympy or convplan caches warm), after imports and after the Lark parser is built.
Every number is CPU time (user + system; BENCH_CLOCK=wall for wall-clock time), the best of
N repetitions, for convplan and torch alike: on a shared machine wall time mostly measures the
neighbours.  All the work measured is single-threaded.  torch's meta forward is timed warm
(after one call), which favours torch.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import lark
import sympy

import convplan
from convplan import parser
from convplan.parser import parse_module
from convplan.shapes import evaluate, ops

ROOT = Path(__file__).resolve().parent.parent

# The targets (ratios are convplan time / torch time).
RESNET_RATIO = 1 / 4
DEEP_RATIO = 1 / 10
STRIDED_MS = 100.0
STRIDED_MAX_OPS = 6
LINEAR_SPREAD = 1.5  # largest / smallest marginal cost per layer over the doublings
PROCESS_RATIO = 0.35


# -- networks, described once, written as a plan and built with torch ----------------------


@dataclass(frozen=True)
class Layer:
    kind: str  # torch.nn class name
    args: tuple = ()  # positional, without the inferred in_channels / num_features / in_features
    kwargs: dict = field(default_factory=dict)

    def plan_text(self) -> str:
        parts = [str(a) for a in self.args] + [f"{k}={v}" for k, v in self.kwargs.items()]
        return f"{self.kind}({', '.join(parts)})"


@dataclass(frozen=True)
class Network:
    name: str
    layers: tuple[Layer, ...]
    in_channels: int
    sizes: dict  # concrete input sizes for torch: N, H, W

    def plan_text(self) -> str:
        body = "\n".join(f"    {layer.plan_text()}" for layer in self.layers)
        return f"plan {self.name}:\n    input [N, {self.in_channels}, H, W]\n{body}\n"

    def torch_model(self):
        """The same network with torch.nn, channels tracked by hand; parameters on the meta device."""
        import torch
        from torch import nn

        modules, channels = [], self.in_channels
        with torch.device("meta"):
            for layer in self.layers:
                cls = getattr(nn, layer.kind)
                if layer.kind in ("Conv2d", "Linear"):
                    modules.append(cls(channels, *layer.args, **layer.kwargs))
                    channels = layer.args[0]
                elif layer.kind == "BatchNorm2d":
                    modules.append(cls(channels, *layer.args, **layer.kwargs))
                else:
                    modules.append(cls(*layer.args, **layer.kwargs))
        return nn.Sequential(*modules)

    def meta_input(self):
        import torch

        s = self.sizes
        return torch.empty(s["N"], self.in_channels, s["H"], s["W"], device="meta")


def conv_bn_relu(out: int, k: int, stride: int = 1) -> list[Layer]:
    conv = Layer("Conv2d", (out, k), {"stride": stride, "padding": k // 2, "bias": False} if stride > 1
                 else {"padding": k // 2, "bias": False})
    return [conv, Layer("BatchNorm2d"), Layer("ReLU")]


def resnet50_flat() -> Network:
    """ResNet-50's convolutions in order (3 stages of bottlenecks after a stride-4 stem), without the
    residual adds and the 4 downsample convs: 49 convs, each with BN and ReLU, then pool and fc."""
    layers = [*conv_bn_relu(64, 7, stride=2), Layer("MaxPool2d", (3,), {"stride": 2, "padding": 1})]
    for stage, (blocks, width) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512))):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers += conv_bn_relu(width, 1) + conv_bn_relu(width, 3, stride) + conv_bn_relu(4 * width, 1)
    layers += [Layer("AdaptiveAvgPool2d", (1,)), Layer("Flatten"), Layer("Linear", (1000,))]
    return Network("ResNet50Flat", tuple(layers), 3, {"N": 8, "H": 224, "W": 224})


def deep_stack(depth: int = 500) -> Network:
    """Conv/BN/ReLU repeated, `depth` layers, no stride: every dim stays H, W."""
    layers = []
    while len(layers) < depth:
        layers += conv_bn_relu(32, 3)
    return Network(f"Deep{depth}", tuple(layers[:depth]), 3, {"N": 8, "H": 64, "W": 64})


def strided_stack(depth: int = 500) -> Network:
    """Conv(stride 2, padding 1)/Upsample(2) pairs: depth/2 strided layers.  Each dim alternates between
    (H + 1)//2 and 2*((H + 1)//2).  `strided_chain` below is the pure downsampling version."""
    pair = [Layer("Conv2d", (16, 3), {"stride": 2, "padding": 1}), Layer("Upsample", (), {"scale_factor": 2})]
    return Network(f"Strided{depth}", tuple((pair * (depth // 2))[:depth]), 3, {"N": 8, "H": 512, "W": 512})


def strided_chain(depth: int = 500) -> Network:
    """Conv(stride 2, padding 1)/ReLU pairs, 250 halvings: every dim is ceil(H/2**k) = (H + 2**k - 1)//2**k
    (2**250 has 76 digits; E008 allows 100)."""
    pair = [Layer("Conv2d", (16, 3), {"stride": 2, "padding": 1}), Layer("ReLU")]
    return Network(f"Chain{depth}", tuple((pair * (depth // 2))[:depth]), 3, {"N": 8, "H": 512, "W": 512})


RESNET50_PLAN = """\
block Bottleneck(planes, stride=1):
    input [N, C, H, W]
    residual:
        Conv2d(planes, kernel_size=1, bias=False)
        BatchNorm2d()
        ReLU(inplace=True)
        Conv2d(planes, kernel_size=3, stride=stride, padding=1, bias=False)
        BatchNorm2d()
        ReLU(inplace=True)
        Conv2d(planes * 4, kernel_size=1, bias=False)
        BatchNorm2d()
    shortcut:
        if stride != 1 or C != planes * 4:
            Conv2d(planes * 4, kernel_size=1, stride=stride, bias=False)
            BatchNorm2d()
    ReLU(inplace=True)

block Stage(planes, blocks, stride=1):
    input [N, C, H, W]
    repeat i in blocks:
        Bottleneck(planes, stride=stride if i == 0 else 1)

plan ResNet50(classes=1000):
    input [N, 3, H, W]
    Conv2d(64, kernel_size=7, stride=2, padding=3, bias=False)
    BatchNorm2d()
    ReLU(inplace=True)
    MaxPool2d(kernel_size=3, stride=2, padding=1)
    Stage(64, blocks=3)
    Stage(128, blocks=4, stride=2)
    Stage(256, blocks=6, stride=2)
    Stage(512, blocks=3, stride=2)
    AdaptiveAvgPool2d((1, 1))
    Flatten()
    Linear(classes)
"""


class ResNet50:
    """torchvision's resnet50 (Bottleneck blocks, 1x1 projection shortcuts): 53 convs, 25,557,032 parameters."""

    name = "ResNet50"
    sizes = {"N": 8, "H": 224, "W": 224}
    in_channels = 3

    def plan_text(self) -> str:
        return RESNET50_PLAN

    def torch_model(self):
        import torch
        from torch import nn

        class Bottleneck(nn.Module):
            def __init__(self, cin: int, planes: int, stride: int):
                super().__init__()
                out = planes * 4
                self.body = nn.Sequential(
                    nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
                    nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(planes),
                    nn.ReLU(inplace=True), nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out))
                self.shortcut = (nn.Sequential(nn.Conv2d(cin, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
                                 if stride != 1 or cin != out else nn.Identity())
                self.relu = nn.ReLU(inplace=True)

            def forward(self, x):
                return self.relu(self.body(x) + self.shortcut(x))

        with torch.device("meta"):
            layers, cin = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                           nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)], 64
            for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                for i in range(blocks):
                    layers.append(Bottleneck(cin, planes, stride if i == 0 else 1))
                    cin = planes * 4
            layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(2048, 1000)]
            return nn.Sequential(*layers)

    def meta_input(self):
        return Network.meta_input(self)


# -- timing ---------------------------------------------------------------------------

# CPU time by default: on a shared machine wall time measures the neighbours.  BENCH_CLOCK=wall for wall time.
CLOCK = time.perf_counter if os.environ.get("BENCH_CLOCK") == "wall" else time.process_time
WARM = "plan Warm:\n    input [N, 2, L]\n    Conv1d(2, 3, stride=2)\n    Flatten()\n    Linear(4)\n"
NETWORKS = {"resnet50": ResNet50, "resnet50flat": resnet50_flat, "deep": deep_stack, "strided": strided_stack,
            "chain": strided_chain}


def network(name: str, depth: int | None = None) -> Network:
    return NETWORKS[name]() if depth is None else NETWORKS[name](depth)


def child(name: str, depth: int | None) -> None:
    """Runs in a fresh interpreter: time one cold parse + check, then one cold parse alone; print JSON."""
    net = network(name, depth)
    text = net.plan_text()
    convplan.parse(WARM)  # builds Lark, and sympy imports sympy.tensor on its first Add (~0.1 s, once per process)
    cold()
    start = CLOCK()
    plan = convplan.parse(text, f"<{net.name}>")
    total_ms = (CLOCK() - start) * 1e3
    cold()
    start = CLOCK()
    parse_module(text, net.name)
    parse_ms = (CLOCK() - start) * 1e3
    out = [evaluate(d, net.sizes) for d in plan.output_shape]
    worst = max(ops(d) for node in plan.graph.nodes for d in node.shape)
    print(json.dumps({"parse_ms": parse_ms, "total_ms": total_ms, "output": out, "max_ops": worst,
                      "layers": len(plan.layers), "params": evaluate(plan.total_params, net.sizes)}))


def cold() -> None:
    """Forget what the warm-up parse left behind: sympy's cache and the parser's memo of `?rule` chains."""
    sympy.core.cache.clear_cache()
    parser._tables(parser._lark()).chains.clear()


def time_convplan(name: str, reps: int, depth: int | None = None) -> dict:
    """Best of `reps` fresh interpreters (warnings from the plan go to /dev/null)."""
    argv = [sys.executable, __file__, "--child", name] + ([str(depth)] if depth else [])
    runs = []
    for _ in range(reps):
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = dict(runs[0])
    for key in ("parse_ms", "total_ms"):
        result[key] = min(r[key] for r in runs)
    return result


def time_meta(net: Network, reps: int) -> tuple[float, tuple, int]:
    import torch

    model, x = net.torch_model(), net.meta_input()
    with torch.no_grad():
        out = tuple(model(x).shape)  # warm-up
        times = []
        for _ in range(reps):
            start = CLOCK()
            model(x)
            times.append((CLOCK() - start) * 1e3)
    return min(times), out, sum(p.numel() for p in model.parameters())


def time_process(argv: list[str], reps: int) -> float:
    """Best of `reps` runs, after one untimed run: bytecode is cached as in any installation, even where
    PYTHONDONTWRITEBYTECODE is set (it is here: every process would compile convplan, ~0.13 s)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    times = []
    for _ in range(reps):
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wall_ms, cpu_ms = (time.perf_counter() - start) * 1e3, (_children_cpu() - cpu) * 1e3
        times.append(wall_ms if os.environ.get("BENCH_CLOCK") == "wall" else cpu_ms)
    return min(times)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def convplan_command() -> list[str]:
    exe = shutil.which("convplan")
    return [exe] if exe else [sys.executable, "-m", "convplan"]


# -- report ---------------------------------------------------------------------------


def row(case: str, layers: int, parse: str, ours: float, theirs: float, target: str, ok: bool) -> list[str]:
    return [case, str(layers), parse, f"{ours:.1f}", f"{theirs:.1f}", f"{ours / theirs:.3f}", target,
            "PASS" if ok else "FAIL"]


HEAD = ["case", "layers", "parse ms", "parse+check ms", "torch ms", "ratio", "target", "result"]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.rjust(w) if c[:1].isdigit() else c.ljust(w) for c, w in zip(r, widths, strict=True))
             for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def compare(name: str, reps: int, notes: list[str]) -> tuple[dict, float, Network]:
    net = network(name)
    ours = time_convplan(name, reps)
    meta_ms, out, params = time_meta(net, reps)
    if tuple(ours["output"]) != out or ours["params"] != params:
        notes.append(f"MISMATCH {net.name}: convplan {ours['output']} ({ours['params']} params), "
                     f"torch {out} ({params} params)")
    return ours, meta_ms, net


def ratio_row(name: str, ratio: float, reps: int, notes: list[str]) -> list[str]:
    ours, meta_ms, net = compare(name, reps, notes)
    ok = ours["total_ms"] <= ratio * meta_ms
    return row(net.name, ours["layers"], f"{ours['parse_ms']:.1f}", ours["total_ms"], meta_ms,
               f"<= {ratio:.3g} x torch", ok)


def strided_row(name: str, reps: int, notes: list[str]) -> list[str]:
    """The issue's "500-layer stack with 250 strided layers", read two ways: strided convs alternating with
    upsampling (Strided500, sizes that a real input survives) or with ReLUs (Chain500, 250 halvings)."""
    ours, meta_ms, net = compare(name, reps, notes)
    notes.append(f"{net.name}: largest dim {ours['max_ops']} sympy ops (target <= {STRIDED_MAX_OPS})")
    ok = ours["total_ms"] < STRIDED_MS and ours["max_ops"] <= STRIDED_MAX_OPS
    return row(net.name, ours["layers"], f"{ours['parse_ms']:.1f}", ours["total_ms"], meta_ms,
               f"< {STRIDED_MS:g} ms, <= {STRIDED_MAX_OPS} ops/dim", ok)


def scaling(reps: int) -> tuple[list[list[str]], bool]:
    """Linear in depth: the marginal cost of a layer (the time a doubling adds, per added layer) stays
    within LINEAR_SPREAD across the doublings.  The cost per layer itself falls with depth, since the
    fixed cost of a plan is shared by more layers, so it is shown but not judged."""
    rows = [["depth", "parse+check ms", "per layer ms", "marginal ms/layer"]]
    depths, totals = (250, 500, 1000, 2000), []
    for depth in depths:
        totals.append(time_convplan("strided", reps, depth)["total_ms"])
        marginal = "" if len(totals) < 2 else f"{(totals[-1] - totals[-2]) / (depth - depths[len(totals) - 2]):.3f}"
        rows.append([str(depth), f"{totals[-1]:.1f}", f"{totals[-1] / depth:.3f}", marginal])
    marginals = [(b - a) / (db - da) for a, b, da, db in zip(totals, totals[1:], depths, depths[1:], strict=False)]
    spread = max(marginals) / min(marginals)
    rows.append(["spread", "", "", f"{spread:.2f}"])
    return rows, spread <= LINEAR_SPREAD


def process_row(reps: int) -> list[str]:
    check = time_process([*convplan_command(), "check", "examples/cnn1d.plan"], reps)
    torch_import = time_process([sys.executable, "-c", "import torch"], reps)
    return row("`convplan check examples/cnn1d.plan` process", 5, "", check, torch_import,
               f"<= {PROCESS_RATIO} x import torch", check <= PROCESS_RATIO * torch_import)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    clock = "wall-clock" if os.environ.get("BENCH_CLOCK") == "wall" else "CPU"
    return (f"{cpu}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, sympy {sympy.__version__}, lark {lark.__version__}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; times are {clock} ms, best of the repetitions")


def profile(name: str) -> None:
    text = network(name).plan_text()
    convplan.parse(WARM)
    prof = cProfile.Profile()
    prof.runcall(convplan.parse, text)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--quick", action="store_true", help="fewer repetitions")
    args.add_argument("--profile", choices=sorted(NETWORKS), help="profile one case (fresh caches) and stop")
    args.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    opts = args.parse_args()
    if opts.child:
        child(opts.child[0], int(opts.child[1]) if len(opts.child) > 1 else None)
        return 0
    if opts.profile:
        profile(opts.profile)
        return 0
    reps = 3 if opts.quick else 7
    notes: list[str] = []
    print(machine())
    rows = [HEAD, ratio_row("resnet50", RESNET_RATIO, reps, notes),
            ratio_row("resnet50flat", RESNET_RATIO, reps, notes), ratio_row("deep", DEEP_RATIO, reps, notes),
            strided_row("strided", reps, notes), strided_row("chain", reps, notes), process_row(reps)]
    print(table(rows))
    depth_rows, linear = scaling(max(3, reps // 2))
    verdict = "PASS" if linear else "FAIL"
    print(f"\nstrided stack, cost against depth (marginal cost per layer, spread <= {LINEAR_SPREAD}): {verdict}")
    print(table(depth_rows))
    for note in notes:
        print(note)
    passed = all(r[-1] == "PASS" for r in rows[1:]) and linear
    return 0 if passed and not any(n.startswith("MISMATCH") for n in notes) else 1


if __name__ == "__main__":
    sys.exit(main())
