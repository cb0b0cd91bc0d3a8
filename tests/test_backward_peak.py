"""Why `plan.memory()` has no formula for the peak of the backward pass (issue 10's third gap): the peak the
CPU allocator reaches in backward is not a function of the plan's shapes.  The same convolutions, with the
same saved tensors, parameters and gradients, peak several times higher when torch runs them without oneDNN
(slow_conv2d's backward unfolds its input into a columns buffer) than with it (oneDNN's own scratchpad): the
transient depends on the kernel torch picks and its workspace, which no shape formula knows.  What is exact
is what is alive when backward starts (`Memory.training`, tests/test_memory.py)."""

from __future__ import annotations

import json
import warnings

import torch
from torch.profiler import ProfilerActivity, profile

import convplan

PLAN = """plan P:
    input [N, 3, H, W]
    Conv2d(16, 3, padding=1)
    ReLU()
    Conv2d(32, 3, padding=1)
    ReLU()
    Conv2d(8, 5)
"""
SIZES = {"N": 2, "H": 32, "W": 32}


def _backward_peak(plan, mkldnn: bool, tmp_path) -> int:
    """The allocator's peak (torch's memory profiler, all categories) over a forward and backward."""
    module = plan.bind(**SIZES).build().train()
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings(), torch.backends.mkldnn.flags(enabled=mkldnn):
        warnings.simplefilter("ignore")
        module(x).sum().backward()  # warm: kernels' one-time state is not the step's
        module.zero_grad(set_to_none=True)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                     with_stack=True) as prof:
            module(x).sum().backward()
        path = tmp_path / f"timeline{int(mkldnn)}.json"
        prof.export_memory_timeline(str(path), device="cpu")
    _, by_time = json.loads(path.read_text())
    return max(sum(row) for row in by_time)


def test_the_backward_peak_depends_on_the_kernel_not_only_on_the_shapes(tmp_path):
    from test_memory import saved_for_backward

    plan = convplan.parse(PLAN)
    memory = plan.memory("float32")
    bound = plan.bind(**SIZES)
    saved = [saved_for_backward(bound) for _ in range(1)]
    with torch.backends.mkldnn.flags(enabled=False):
        saved.append(saved_for_backward(bound))
    assert saved == [memory.at(memory.saved, **SIZES)] * 2  # the same tensors kept either way
    with_onednn, without = _backward_peak(plan, True, tmp_path), _backward_peak(plan, False, tmp_path)
    assert without > 2 * with_onednn  # measured: 5.9 MB and 1.3 MB (torch 2.13, CPU)
