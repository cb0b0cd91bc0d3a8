"""FractionalMaxPool2d/3d beyond their shapes (tests/test_layers_torch.py: test_fractional_max_pool draws them
against torch): the indices as a second output, the generated code against build() under one seed (the windows'
places are drawn on every call), the importer, what autograd saves, the cost conventions, the errors."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_codegen import module_class, round_trip
from test_memory import saved_for_backward, unpacked
from torch import nn

import convplan
from convplan import PlanError
from convplan.shapes import evaluate

SEQUENCE = """plan Fractional:
    input [N, C, H, W]
    y, idx = FractionalMaxPool2d((2, 3), output_ratio=(0.5, 0.75), return_indices=True)
    z = MaxUnpool2d(y, idx, 2)
    FractionalMaxPool2d(2, output_size=(H // 3, 4))
"""


def _error(line: str, shape: str = "[N, C, H, W]"):
    with pytest.raises(PlanError) as info:
        convplan.parse(f"plan T:\n    input {shape}\n    {line}\n")
    (diag,) = info.value.diagnostics
    return diag


def test_indices_are_a_second_output_and_the_plan_builds():
    plan = convplan.parse(SEQUENCE)
    nodes = {n.name: n for n in plan.graph.nodes}
    sizes = {"N": 2, "C": 3, "H": 12, "W": 9}
    assert [tuple(evaluate(d, sizes) for d in nodes[k].shape) for k in ("y", "idx")] == [(2, 3, 6, 6)] * 2
    x = torch.randn(2, 3, 12, 9)
    torch.manual_seed(1)
    y, idx = nn.FractionalMaxPool2d((2, 3), output_ratio=(0.5, 0.75), return_indices=True)(x)
    assert torch.equal(x.flatten(2).gather(2, idx.flatten(2)).view_as(y), y)  # the indices point at the maxima
    built = plan.build(**sizes).eval()
    with torch.no_grad():
        assert tuple(built(x).shape) == (2, 3, 4, 4)


@given(st.integers(0, 2**16), st.integers(6, 20), st.integers(7, 20))
@settings(max_examples=15, deadline=None)
def test_generated_code_is_build_under_one_seed(seed, h, w):
    """The windows are random on every call: the generated module and build()'s draw the same ones from the
    same seed (test_codegen.round_trip seeds each), and another seed gives other windows."""
    plan = convplan.parse(SEQUENCE)
    sizes = {"N": 2, "C": 3, "H": h, "W": w}
    if not plan.satisfied(sizes):
        assert h // 3 + 1 > (w * 3 // 4) or h < 6
        return
    round_trip(plan, sizes, seed=seed)


def test_its_windows_are_random_in_eval_mode_too():
    built = convplan.parse(SEQUENCE.split("    z =")[0] + "    output y\n").build(N=1, C=4, H=16, W=16).eval()
    x = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        outs = [built(x) for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_the_generated_source_writes_torchs_arguments():
    source = convplan.parse(SEQUENCE).to_source()
    wrapped = "nn.FractionalMaxPool2d(\n            (2, 3), output_ratio=(0.5, 0.75), return_indices=True\n"
    assert wrapped in source, source
    assert "nn.FractionalMaxPool2d(2, output_size=(H // 3, 4))" in source, source
    assert module_class(source)(H=12) is not None


class Pooled(nn.Module):
    def __init__(self, pool: nn.Module):
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 1) if isinstance(pool, nn.FractionalMaxPool3d) else nn.Conv2d(2, 4, 1)
        self.pool = pool

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x)))


@pytest.mark.parametrize("pool, shape", [
    (nn.FractionalMaxPool2d(3, output_ratio=0.5), (2, 2, 12, 10)),
    (nn.FractionalMaxPool2d((2, 3), output_size=(5, 4)), (1, 2, 9, 11)),
    (nn.FractionalMaxPool3d(2, output_ratio=(0.5, 0.5, 0.25)), (1, 2, 6, 8, 12)),
])
def test_a_traced_model_imports_it(pool, shape):
    model = Pooled(pool).eval()
    text = convplan.from_module(model, torch.randn(*shape))
    kind = type(pool).__name__
    assert f"{kind}(" in text, text
    built = convplan.parse(text, "<imported>").build()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.manual_seed(3)
        want = model(x)
        torch.manual_seed(3)
        got = built.eval()(x)
    assert torch.equal(want, got), text


@pytest.mark.parametrize("text, sizes", [
    ("FractionalMaxPool2d(2, output_ratio=0.5)", {"N": 2, "C": 3, "H": 10, "W": 13}),
    ("y, idx = FractionalMaxPool2d(3, output_size=(4, 5), return_indices=True)", {"N": 3, "C": 2, "H": 9, "W": 8}),
    ("FractionalMaxPool3d((2, 1, 3), output_ratio=0.5)", {"N": 2, "C": 2, "D": 5, "H": 6, "W": 8}),
])
def test_autograd_saves_its_input_and_the_indices(text, sizes):
    shape = "[N, C, D, H, W]" if "3d" in text else "[N, C, H, W]"
    plan = convplan.parse(f"plan T:\n    input {shape}\n    Conv{'3' if '3d' in text else '2'}d(4, 1)\n    {text}\n")
    memory = plan.memory("float32")
    assert memory.unmodelled == ()
    assert memory.at(memory.saved, **sizes) == saved_for_backward(plan.bind(**sizes))


def test_costs_count_nothing_for_it():
    """FlopCounterMode has no formula for it (0); fvcore skips it and the torch.rand that draws its windows;
    ptflops neither hooks the module nor patches its function (measured: tests/test_cost_fvcore.py's
    ONE_TENSOR_KINDS compares both tools on it)."""
    plan = convplan.parse("plan T:\n    input [N, C, H, W]\n    FractionalMaxPool2d(2, output_ratio=0.5)\n")
    sizes = {"N": 2, "C": 3, "H": 10, "W": 12}
    for convention in ("macs", "flopcounter", "fvcore", "ptflops"):
        assert plan.cost(convention).at(**sizes) == 0
    assert plan.cost("fvcore").skipped_ops == {"aten::rand", "aten::fractional_max_pool2d"}
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        plan.build(**sizes)(torch.randn(2, 3, 10, 12))
    assert counter.get_total_flops() == 0


def test_its_receptive_field_is_not_modelled():
    plan = convplan.parse("plan T:\n    input [N, C, H, W]\n    FractionalMaxPool2d(2, output_ratio=0.5)\n")
    assert plan.receptive_field()["fractionalmaxpool1"] == (None, None)  # random windows: no exact field


@pytest.mark.parametrize("line, message, arg", [
    ("FractionalMaxPool2d(2)", "give exactly one of output_size and output_ratio, got neither", None),
    ("FractionalMaxPool2d(2, output_size=3, output_ratio=0.5)", "got both", "output_ratio=0.5"),
    ("FractionalMaxPool2d(2, output_ratio=1.0)", "output_ratio must be between 0 and 1 (exclusive), got 1.0",
     "output_ratio=1.0"),
    ("FractionalMaxPool2d(2, output_ratio=(0.5,))", "output_ratio must be an int or a tuple of 2 values", None),
    ("FractionalMaxPool2d(0, output_size=2)", "kernel_size must be positive, got 0", "0"),
    ("FractionalMaxPool2d((2, 2, 2), output_size=2)", "kernel_size must be an int or a tuple of 2 values", None),
    ("FractionalMaxPool2d(2, output_size=(2, None))", "output_size must be ints", None),
    ("FractionalMaxPool2d(3, output_size=(8, 2))", "the output size (8) and the kernel (3) need an input of at "
     "least 10, got 9 (torch checks output + kernel - 1 <= input)", "output_size=(8, 2)"),
])
def test_bad_arguments_are_located_errors(line, message, arg):
    diag = _error(line, "[N, C, 9, 9]")
    assert diag.code == "E300" and message in diag.message, diag.message
    if arg is not None:
        assert line[diag.span.col - 5: diag.span.end_col - 5] == arg, (diag.span, line)


def test_3d_needs_one_more_than_2d():
    """torch's fractional_max_pool3d compares output + kernel - 1 < input, its 2d kernel <=: a 3-D output of
    the input's size less the kernel plus one is refused by both."""
    x = torch.randn(1, 1, 5, 5, 5)
    with pytest.raises(RuntimeError, match="too large relative to input"):
        nn.FractionalMaxPool3d(2, output_size=4)(x)
    assert nn.FractionalMaxPool2d(2, output_size=4)(x[0]).shape == (1, 5, 4, 4)
    assert "need an input of at least 6, got 5" in _error("FractionalMaxPool3d(2, output_size=4)",
                                                          "[N, C, 5, 5, 5]").message
    plan = convplan.parse("plan T:\n    input [N, C, D, H, W]\n    FractionalMaxPool3d(2, output_size=4)\n")
    assert plan.satisfied({"N": 1, "C": 1, "D": 6, "H": 6, "W": 6})
    assert not plan.satisfied({"N": 1, "C": 1, "D": 5, "H": 6, "W": 6})


def test_more_than_three_3d_ratios_read_three_as_torch_does():
    """Pinned from a drawn example: torch's FractionalMaxPool3d checks and uses output_ratio[:3] and no length,
    so four ratios run; the plan takes the first three and warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = nn.FractionalMaxPool3d(1, output_ratio=(0.5, 0.5, 0.5, 0.5))(torch.randn(3, 3, 3, 3))
    assert out.shape == (3, 1, 1, 1)
    plan = convplan.parse("plan T:\n    input [3, 3, 3, 3]\n    FractionalMaxPool3d(kernel_size=1, "
                          "output_ratio=(0.5, 0.5, 0.5, 0.5))\n")
    assert tuple(plan.output_shape) == (3, 1, 1, 1)
    assert any("first 3 values of output_ratio" in w.message for w in plan.warnings)


@pytest.mark.parametrize(("text", "shape", "samples"), [
    ("FractionalMaxPool2d(2, output_ratio=0.5)", (2, 3, 10, 13), (2, 3, 2)),
    ("FractionalMaxPool3d(2, output_size=2)", (2, 2, 5, 6, 7), (2, 2, 3)),
    ("FractionalMaxPool2d(2, output_size=3)", (3, 7, 7), (1, 3, 2)),  # unbatched: one sample row
])
def test_the_window_samples_it_draws_are_neither_saved_nor_an_activation(text, shape, samples):
    """Each call draws torch.rand(N, C, nd) (in the input's dtype) for its windows' places: a transient of the
    call, freed when it returns, so the activations (the tensors layers output) and what autograd saves (the
    input and the int64 indices, as for MaxPool) leave it out, as torch does; fvcore lists aten::rand as
    skipped, FlopCounterMode and ptflops see no operation in it."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Draws(TorchDispatchMode):
        found: list = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is torch.ops.aten.rand.default:
                self.found.append((tuple(out.shape), out.dtype))
            return out

    names = "NCDHW"[-len(shape):] if len(shape) == 5 else "NCHW"[-len(shape):]
    plan = convplan.parse(f"plan T:\n    input [{', '.join(names)}]\n    Linear({shape[-1]})\n    {text}\n")
    sizes = dict(zip(names, shape, strict=True))
    module = plan.bind(**sizes).build()
    saved = []
    with Draws() as draws, torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append((tuple(t.shape), t.dtype)), unpacked):  # packs None: test_memory.unpacked
        module(torch.randn(*shape))
    assert draws.found == [(samples, torch.float32)]
    assert samples not in [s for s, _ in saved]
    memory = plan.memory("float32")
    out = plan.graph.nodes[-1].shape
    want = 4 * math.prod(shape) + 8 * math.prod(int(evaluate(d, sizes)) for d in out)  # its input, the indices
    assert memory.at(memory.saved_by_layer[plan.graph.nodes[-1].name], **sizes) == want
    assert memory.at(memory.by_layer[plan.graph.nodes[-1].name], **sizes) == 4 * math.prod(
        int(evaluate(d, sizes)) for d in out)  # its output only
