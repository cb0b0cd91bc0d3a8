"""How fast does a warm `convplan lsp` answer?  The issue's targets: diagnostics for a 200-layer plan
within 50 ms of an edit, hover within 10 ms.

Starts the server as an editor does (stdio, tests/_lsp_client.py), opens a generated 200-layer plan (one
whose shapes stay the same, one where every layer makes a new shape and a requirement),
warms it up, then times, as the client sees them (wall clock, round trip over the pipes):

- edit -> diagnostics: a didChange that changes one layer's channels (so the check really reruns),
  until its publishDiagnostics arrives;
- hover: a hover request on a layer line of the analysed text, until its answer arrives (the first hover
  after an edit also computes the MACs of every layer; it is reported apart);
- inlay hints for the whole file;
- and the server's own CPU time per edit (from /proc, Linux): what the edit costs without the wait for a
  core that a loaded machine adds to the wall times;
- a burst: 10 changes sent at once (typing faster than the checks), until the diagnostics of the last one
  arrive, and how many checks the server ran for the 10 (it checks a change only if no newer one came).

    python benchmarks/lsp_latency.py [--edits 40] [--hovers 200]

Prints median, 90th percentile and worst per operation, with the machine's load average (the numbers
are wall time: on a shared machine they include waiting for a core).  Exit status 1 if a median misses
its target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _lsp_client import Client  # noqa: E402

TARGETS_MS = {"edit -> diagnostics": 50.0, "hover": 10.0}


def stack(channels: int = 32) -> str:
    """200 layers: 66 x (Conv2d, BatchNorm2d, ReLU), Flatten, Linear; the shapes stay [N, 32, H, W]."""
    lines = ["plan Deep200(classes=10):", "    input [N, 3, H, W]"]
    for i in range(66):
        width = channels if i == 33 else 32
        lines += [f"    Conv2d({width}, kernel_size=3, padding=1)", "    BatchNorm2d()", "    ReLU()"]
    lines += ["    Flatten()", "    Linear(classes)"]
    return "\n".join(lines) + "\n"


def shrinking(channels: int = 32) -> str:
    """200 layers: 100 x (Conv1d without padding, ReLU): every shape is new (L - 2, L - 4, ...), and each
    layer adds a requirement."""
    lines = ["plan Shrink200:", "    input [N, 3, L]"]
    for i in range(100):
        lines += [f"    Conv1d({channels if i == 50 else 32}, kernel_size=3)", "    ReLU()"]
    return "\n".join(lines) + "\n"


PLANS = {"same shapes": stack, "every shape new": shrinking}


def cpu_ms(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far, in ms (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(plan_text, edits: int, hovers: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"edit -> diagnostics": [], "hover": [], "first hover after an edit": [],
                                     "inlay hints (whole file)": []}  # wall ms, as the client waits
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deep200.plan"
        path.write_text(plan_text(), encoding="utf-8")
        client = Client()
        try:
            client.open(path)
            uri = path.resolve().as_uri()
            layer_line = 2 + 3 * 40  # a layer's line, 0-based
            for k in range(edits + 5):  # the first 5 warm the server up (imports, caches)
                count = client.published.get(uri, 0)
                sent = time.perf_counter()
                client.change(path, plan_text(33 + k), version=k + 2)  # a new width each time
                client.wait_published(uri, count)
                if k >= 5:
                    times["edit -> diagnostics"].append((client.arrival[uri] - sent) * 1000)
                start = time.perf_counter()
                answer = client.at("textDocument/hover", path, layer_line, 6)
                if k >= 5:
                    times["first hover after an edit"].append((time.perf_counter() - start) * 1000)
                assert answer and "output" in answer["contents"]["value"], answer
            before = cpu_ms(client.proc.pid)
            for k in range(edits):  # the same edits again, for the server's CPU time alone (no hover between)
                client.change(path, plan_text(200 + k), version=1000 + k)
            if before is not None:
                times["edit (server CPU ms)"] = [(cpu_ms(client.proc.pid) - before) / edits]
            burst = times["burst of 10 edits -> last diagnostics"] = []
            checks = []
            for k in range(max(edits // 4, 5)):  # typing: 10 changes sent at once, then wait for the last one's
                count, first = client.published.get(uri, 0), 2000 + 10 * k
                for v in range(first, first + 10):
                    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": v},
                                                             "contentChanges": [{"text": plan_text(v % 90 + 1)}]})
                sent = time.perf_counter()
                with client.cond:
                    assert client.cond.wait_for(lambda: client.versions.get(uri) == first + 9, 60)  # noqa: B023
                burst.append((client.arrival[uri] - sent) * 1000)
                checks.append(client.published[uri] - count)
            times["checks per burst of 10"] = checks
            for k in range(hovers):
                start = time.perf_counter()
                answer = client.at("textDocument/hover", path, 2 + (k * 7) % 198, 5)
                times["hover"].append((time.perf_counter() - start) * 1000)
                assert answer is not None
            for _ in range(20):
                start = time.perf_counter()
                hints = client.request("textDocument/inlayHint", {"textDocument": {"uri": uri}, "range": {
                    "start": {"line": 0, "character": 0}, "end": {"line": 300, "character": 0}}})
                times["inlay hints (whole file)"].append((time.perf_counter() - start) * 1000)
                assert len(hints) == 201  # the input and 200 layers
        finally:
            client.shutdown()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--hovers", type=int, default=200)
    args = parser.parse_args()
    failed = False
    for name, plan_text in PLANS.items():
        load = os.getloadavg()
        times = run(plan_text, args.edits, args.hovers)
        print(f"convplan lsp, 200-layer plan ({name}); {os.cpu_count()} cores, load average {load[0]:.1f} "
              f"{load[1]:.1f} {load[2]:.1f} before, {os.getloadavg()[0]:.1f} after (wall ms)")
        print(f"{'operation':<38}{'n':>5}{'median':>9}{'p90':>9}{'worst':>9}  target")
        for op, values in times.items():
            median = statistics.median(values)
            target = TARGETS_MS.get(op)
            verdict = "" if target is None else f"< {target:g} ms median: {'PASS' if median < target else 'FAIL'}"
            failed |= target is not None and median >= target
            print(f"{op:<38}{len(values):>5}{median:>9.1f}{percentile(values, 0.9):>9.1f}{max(values):>9.1f}  "
                  f"{verdict}".rstrip())
        print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
