"""verify at sizes torch cannot hold: tensors past 2**63 bytes are refused before torch sees them
(E404 at the layer), the automatic large run shrinks to sizes that fit, and a CPU that runs out
of memory hands the run to `meta`."""

from __future__ import annotations

import pytest

import convplan
from convplan import verify
from convplan.cli import main

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


def test_a_run_keeps_every_output_so_their_total_decides_the_device(monkeypatch):
    monkeypatch.setattr(verify, "CPU_TOTAL", 100)
    report = plan_of("input [N, 3, L]", *["ReLU()"] * 6).verify(L=10)
    assert [r.device for r in report.runs][:1] == ["meta"]  # 7 tensors of 30 elements: 210 > 100
