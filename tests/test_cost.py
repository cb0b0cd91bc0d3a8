"""Cost formulas against their oracles: `cost("flopcounter")` equals torch's FlopCounterMode on the
built module, at several sizes and batch sizes, for every example plan and for random stacks; "macs"
is half of it for the kinds both count, and lists the rest."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
from _torch_oracle import plain, symbolic_plan
from hypothesis import given, settings
from test_properties import sequential, stacks
from torch.utils.flop_counter import FlopCounterMode

import convplan
from convplan.build import example_inputs
from convplan.shapes import evaluate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))
IMAGE_SIZES = (224, 193, 288, 320)
SMALL_SIZES = (7, 16, 33, 64)
SPATIAL = ("H", "W", "D", "L", "T")  # the sizes that scale: image sides, a sequence's length (T: frames)
SETTINGS = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 2, deadline=None)


def flop_counter(module, inputs) -> int:
    with warnings.catch_warnings(), torch.no_grad(), FlopCounterMode(display=False) as counter:
        warnings.simplefilter("ignore")
        module.eval()(*inputs)
    return counter.get_total_flops()


def _size_sets(plan) -> list[dict]:
    """Sizes to measure at: each spatial size (H, W, D, L) at every one of IMAGE_SIZES (at least its
    smallest valid size), at batch 1 and 8; only sizes that meet the plan's requirements; the SMALL_SIZES
    too where fewer than 4 sets remain (a text model's max_len)."""
    base = plan.smallest_sizes()
    found = []
    for scale in IMAGE_SIZES + SMALL_SIZES:
        if scale in SMALL_SIZES and len(found) >= 4:  # a plan that bounds its sizes (max_len): smaller ones
            break
        for batch in (1, 8):
            sizes = {k: max(v, scale) if k in SPATIAL else batch if k == "N" else v
                     for k, v in base.items()}
            if plan.satisfied(sizes) and sizes not in found:
                found.append(sizes)
    for step in (1, 15):  # a plan whose sizes are pinned near its smallest (ViT: H//16 == 14): just above it
        for batch in (1, 8):
            sizes = {k: v + step if k in SPATIAL else batch if k == "N" else v for k, v in base.items()}
            if len(found) < 4 and plan.satisfied(sizes) and sizes not in found:
                found.append(sizes)
    return found or [base]


def _device(plan, sizes) -> str:
    """Where to build a plan for FlopCounterMode: the CPU, whose kernels the convention describes (fused LSTM
    and attention kernels count nothing there); the meta device, which allocates no weights, for a plan over
    50 M parameters (VGG-11 has 133 M) and without the kinds whose count depends on the device."""
    device_bound = {"LSTM", "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer",
                    "TransformerEncoder", "TransformerDecoder", "Transformer"}
    big = plan.evaluate(plan.total_params, **sizes) > 50_000_000
    return "meta" if big and not device_bound & {n.kind for n in plan.layers} else "cpu"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_flopcounter_convention_equals_flop_counter_mode_on_examples(path):
    plan = convplan.load(path)
    cost = plan.cost("flopcounter")
    measured = 0
    for sizes in _size_sets(plan):
        bound = plan.bind(**sizes)
        device = _device(plan, sizes)
        with torch.device(device):
            module = bound.build()
        inputs = example_inputs(bound.graph, sizes, device=device)  # indices where an Embedding reads them
        assert cost.at(**sizes) == flop_counter(module, inputs), sizes
        measured += 1
    spatial = set(SPATIAL) & set(plan.symbols)
    assert measured >= (4 if spatial else 1)  # U-Net: H % 16 == 0 leaves 224, 288, 320 (193 fails)


def test_resnet18_at_224_is_the_known_count():
    plan = convplan.load(ROOT / "examples" / "resnet18.plan")
    assert plan.cost("macs").at(N=1, H=224, W=224) == 1_814_073_344  # torchvision's resnet18: 1.81 GMACs
    assert plan.cost("flopcounter").at(N=1, H=224, W=224) == 2 * 1_814_073_344
    assert plan.cost("macs").uncounted == ("BatchNorm2d", "ReLU", "MaxPool2d", "add", "AdaptiveAvgPool2d",
                                           "Flatten")


def test_by_layer_is_in_plan_order_and_sums_to_the_total():
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    cost = plan.cost("macs")
    assert list(cost.by_layer) == ["conv1", "linear1"]
    assert cost.total == sum(cost.by_layer.values())
    assert cost.at(N=3, L=20) == 3 * (32 * 20 * 3) + 3 * 320 * 2
    assert "not counted: ReLU, MaxPool1d, Flatten" in str(cost)


def test_cost_errors_are_plain():
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    with pytest.raises(ValueError, match="conventions are flopcounter, fvcore, macs"):
        plan.cost("flops")
    with pytest.raises(ValueError, match="depends on L, N"):
        plan.cost().at()


@given(stacks())
@SETTINGS
def test_flopcounter_convention_on_random_stacks(case):
    shape, layers = case
    found = symbolic_plan(shape, layers)
    if found is None:  # torch refuses it, or a documented symbolic limit: nothing to count
        return
    plan, sizes = found
    want = flop_counter(sequential(shape, plain(layers)), [torch.randn(*shape)])
    got = evaluate(plan.cost("flopcounter").total, sizes)
    assert got == want, f"at {sizes}:\n{plan.source}"
    assert 2 * evaluate(plan.cost("macs").total, sizes) == want


def _cli(capsys, *argv):
    from convplan import cli

    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cost_command_prints_formulas_and_numbers(capsys):
    code, out, _ = _cli(capsys, "cost", "examples/cnn1d.plan")
    assert code == 0 and "conv1    Conv1d  96*L*N" in out and "total: 96*L*N + 64*N*(L//2)" in out
    assert "not counted: ReLU, MaxPool1d, Flatten" in out
    code, out, _ = _cli(capsys, "cost", "examples/resnet18.plan", "--set", "N=1", "--set", "H=224", "--set", "W=224",
                        "--convention", "flopcounter")
    assert code == 0 and "total: 3,628,146,688" in out


def test_cost_compare_attributes_every_difference_to_a_kind(capsys):
    import json

    argv = ["cost", "examples/unet.plan", "--compare", "--set", "N=2", "--set", "H=64", "--set", "W=96", "--json"]
    code, out, _ = _cli(capsys, *argv)
    rows = json.loads(out)["by_kind"]
    plan = convplan.load(ROOT / "examples" / "unet.plan")
    totals = {c: plan.cost(c).at(N=2, H=64, W=96) for c in ("macs", "flopcounter")}
    for c, total in totals.items():
        assert sum(r[c] or 0 for r in rows) == total  # nothing left over
    rounding = {"int() of the sum"}  # ptflops truncates its total
    assert {r["kind"] for r in rows if r["macs"] is None} - rounding == set(plan.cost("macs").uncounted)
    code, out, _ = _cli(capsys, *argv[:-1])
    assert code == 0 and "ConvTranspose2d" in out and "not counted" in out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_differences_between_conventions_add_up_to_the_totals_difference(path):
    from itertools import permutations

    plan = convplan.load(path)
    comparison = plan.compare_costs()
    sizes = _size_sets(plan)[-1]
    for a, b in permutations(comparison.costs, 2):
        by_kind = comparison.difference(a, b)
        gap = comparison.totals[a] - comparison.totals[b]
        assert sum(by_kind.values()) - gap == 0, (a, b)  # as formulas, nothing left over
        assert sum(plan.evaluate(d, **sizes) for d in by_kind.values()) == \
            plan.cost(a).at(**sizes) - plan.cost(b).at(**sizes)
        assert set(by_kind) <= set(comparison.by_kind)


def test_compare_costs_takes_one_name_as_one_convention():
    """`plan.compare_costs("macs")` iterated the string: "unknown cost convention 'm'"."""
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    assert tuple(plan.compare_costs("fvcore").costs) == ("fvcore",)
    assert tuple(plan.compare_costs(["macs", "fvcore"]).costs) == ("macs", "fvcore")


def test_compare_names_what_fvcore_adds_to_the_macs(capsys):
    import json

    argv = ["cost", "examples/resnet18.plan", "--compare", "--set", "N=1", "--set", "H=224", "--set", "W=224"]
    code, out, _ = _cli(capsys, *argv)
    assert code == 0 and "fvcore - macs: BatchNorm2d +4,967,424, AdaptiveAvgPool2d +25,088" in out
    assert "flopcounter - macs: Conv2d +1,813,561,344, Linear +512,000" in out
    code, out, _ = _cli(capsys, *argv, "--json")
    found = json.loads(out)
    for pair, by_kind in found["differences"].items():
        a, b = pair.split(" - ")
        assert sum(by_kind.values()) == found["totals"][a] - found["totals"][b]
    code, out, _ = _cli(capsys, "cost", "examples/resnet18.plan", "--convention", "fvcore")
    assert "skipped with a warning by the tool: MaxPool2d (aten::max_pool2d), add (aten::add)" in out
