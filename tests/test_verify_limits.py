"""verify at sizes torch cannot hold: tensors past 2**63 bytes are refused before torch sees them
(E404 at the layer), the automatic large run shrinks to sizes that fit, and a CPU that runs out
of memory hands the run to `meta`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _torch_oracle import symbolic_plan
from hypothesis import given, settings
from test_properties import stacks

import convplan
from convplan import verify
from convplan.build import Peak, example_inputs, values
from convplan.cli import main
from convplan.limits import run_bytes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

torch = pytest.importorskip("torch")


def plan_of(*lines: str, params: str = ""):
    return convplan.parse(f"plan S{params}:\n" + "".join(f"    {ln}\n" for ln in lines), "s.plan")


@pytest.mark.parametrize("rank, size", [(7, 251), (13, 13)])
def test_many_dims_shrink_the_large_run(rank, size):
    """997**7 elements overflow int64 (torch: 'numel: integer multiplication overflow'); 13 dims of
    997 were a TypeError from torch's stride computation."""
    dims = ", ".join(f"D{i}" for i in range(rank))
    report = plan_of(f"input [{dims}]", "ReLU()").verify()
    assert report.ok
    large = report.runs[-1]
    assert large.label == "large" and set(large.sizes.values()) == {size}


def test_a_weight_torch_cannot_address_is_refused_at_the_layer():
    plan = plan_of("input [N, 3, H, W]", "Conv2d(999999999999999999, kernel_size=1)")
    with pytest.raises(convplan.PlanError) as info:
        plan.verify()
    (d,) = info.value.diagnostics
    assert d.code == "E404" and (d.span.line, d.span.col) == (3, 5)
    assert "the weights of conv1 (Conv2d) would hold 3,999,999,999,999,999,996 elements" in d.message


def test_huge_channels_are_verified_at_a_smaller_large_size(capsys):
    """10**13 channels at 997**3 positions was a torch error reported as 'MISMATCH: a bug in convplan'."""
    report = plan_of("input [N, 3, H, W]", "Conv2d(10000000000000, kernel_size=1)").verify()
    assert report.ok and report.runs[-1].sizes["H"] < 997


def test_given_sizes_too_large_for_torch_are_refused(tmp_path, capsys):
    path = tmp_path / "s.plan"
    path.write_text("plan S:\n    input [A, B, C, D, E, F, G]\n    ReLU()\n")
    sizes = [x for name in "ABCDEFG" for x in ("--set", f"{name}=997")]
    assert main(["verify", str(path), *sizes]) == 1
    err = capsys.readouterr().err
    assert "error[E404]: cannot verify at A=997" in err and "input of x" in err and "Traceback" not in err


def test_nothing_fits_means_the_large_run_is_skipped():
    report = plan_of("input [N, 3, H, W]", "Conv2d(10000000000000000, kernel_size=1)").verify()
    assert report.ok and report.runs[-1].skipped
    assert "large         skipped: at every size from 13 up" in str(report)


def test_a_cpu_out_of_memory_runs_on_meta(monkeypatch):
    real = verify.build_module

    def build(plan):
        if torch.empty(0).device.type == "cpu":
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return real(plan)

    monkeypatch.setattr(verify, "build_module", build)
    report = plan_of("input [N, 3, L]", "Conv1d(4, kernel_size=3)").verify()
    assert report.ok and [r.device for r in report.runs] == ["meta", "meta"]


def test_sixteen_wide_linears_run_on_meta_within_the_default_budget():
    """16 x Linear(7000) took 3.3 GB: the weights alone are over the 1 GB default, so no run allocates them."""
    plan = plan_of("input [N, 7000]", *["Linear(7000)"] * 16)
    report = plan.verify(N=1)
    weights = 16 * (7000 * 7000 + 7000) * 4
    assert report.ok and [r.device for r in report.runs] == ["meta", "meta", "meta"]
    assert all(r.estimate > weights > r.budget == verify.DEFAULT_BUDGET for r in report.runs)
    assert "on meta (shapes only: about 3.1 GB, over the 1.0 GB budget)" in str(report)


def test_the_budget_is_an_argument_and_a_flag(tmp_path, capsys):
    plan = plan_of("input [N, 3, L]", "Conv1d(4, kernel_size=3)", "ReLU()")
    assert [r.device for r in plan.verify(L=10).runs] == ["cpu", "cpu", "meta"]
    assert [r.device for r in plan.verify(L=10, memory_budget=0).runs] == ["meta", "meta", "meta"]
    with pytest.raises(ValueError, match="memory_budget must be a number of bytes"):
        plan.verify(memory_budget=-1)
    path = tmp_path / "s.plan"
    path.write_text(plan.source)
    # weights (4*3*3 + 4)*4 = 160; at the ReLU the input (36), the conv's output and the ReLU's (16 each) live
    assert main(["verify", str(path), "--memory-budget", "100B"]) == 0
    out = capsys.readouterr().out
    assert "smallest      N=1, L=3 on meta (shapes only: about 228 bytes, over the 100 bytes budget)" in out
    assert main(["verify", str(path), "--memory-budget", "1MB"]) == 0
    assert "smallest      N=1, L=3 on cpu (concrete, about 228 bytes)" in capsys.readouterr().out
    assert main(["verify", str(path), "--memory-budget", "lots"]) == 2


@pytest.mark.parametrize("flag", [["--memory-budget", "-1GB"], ["--memory-budget", "-5"], ["--memory-budget=-1GB"]])
def test_a_negative_budget_is_refused_with_the_reason(tmp_path, capsys, flag):
    """argparse took `-1GB` for an option and said only "expected one argument"."""
    path = tmp_path / "s.plan"
    path.write_text("plan P:\n    input [N, 3, L]\n    Conv1d(4, kernel_size=3)\n")
    assert main(["verify", str(path), *flag]) == 2
    err = capsys.readouterr().err
    assert "a memory budget is a number of bytes, not below zero" in err and "expected one argument" not in err
    assert main(["verify", str(path), "--memory-budget", "-x"]) == 2  # no number: still argparse's own word
    assert "expected one argument" in capsys.readouterr().err


def test_values_are_dropped_after_their_last_reader():
    """20 convolutions at 4000 x 4000 kept every output (6 GB); now the input and two outputs at most."""
    plan = plan_of("input [N, 3, H, W]", *["Conv2d(3, 1)"] * 20)
    (run, *_) = plan.verify(N=1, H=64, W=64).runs
    one = 3 * 64 * 64 * 4
    assert run.device == "cpu" and run.peak == 3 * one
    assert run.estimate == 20 * (3 * 3 + 3) * 4 + 3 * one


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.plan")), ids=lambda p: p.stem)
def test_the_estimate_is_what_a_run_holds(path):
    """The plan's estimate of the live values equals the bytes of distinct storages the run held at its peak
    (views, in-place layers and branches included), at the smallest sizes and a larger one."""
    plan = convplan.load(path)
    for sizes in _two_sizes(plan):
        bound = plan.bind(**sizes)
        module = bound.build().eval()
        weights = sum(p.numel() * p.element_size() for p in module.parameters())
        inputs = example_inputs(bound.graph, bound.sizes)
        peak = Peak()
        with torch.no_grad():
            for _ in values(module, inputs, peak):
                pass
        assert run_bytes(bound, sizes) == (weights, peak.bytes), sizes


def _two_sizes(plan) -> list[dict]:
    smallest = plan.smallest_sizes()
    larger = {k: v + 5 if k in ("H", "W", "L", "D") else v + 1 for k, v in smallest.items()}
    return [smallest] + ([larger] if plan.satisfied(larger) and larger != smallest else [])


@given(stacks())
@settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 2, deadline=None)
def test_the_estimate_is_what_a_run_holds_on_random_stacks(case):
    shape, layers = case
    found = symbolic_plan(shape, layers)
    if found is None:
        return
    plan, sizes = found
    bound = plan.bind(**sizes)
    run = verify._run(bound, sizes, "given", verify.DEFAULT_BUDGET)
    module = bound.build().eval()
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    assert run.device == "cpu" and run.estimate == weights + run.peak, f"at {sizes}:\n{plan.source}"


def test_build_at_sizes_torch_cannot_allocate_is_a_located_error():
    """`build(L=10**12)` asks torch for 128 TB of weights: E403 saying so, not the allocator's RuntimeError."""
    plan = convplan.load(EXAMPLES / "cnn1d.plan")
    with pytest.raises(convplan.PlanError) as caught:
        plan.build(L=10**12)
    (diag,) = caught.value.diagnostics
    assert diag.code == "E403" and "torch could not allocate its weights (about 128.0 TB" in diag.message
    assert plan.build(L=20)(torch.randn(1, 1, 20)).shape == (1, 2)
