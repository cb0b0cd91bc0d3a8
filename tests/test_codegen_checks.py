"""The generated forward checks its input before torch sees it: the rank, each fixed dim, each
size the weights were built for, a size named twice, and the plan's requirements on the input's
sizes (lower bounds, divisibility).  A broken one is a ValueError that names the requirement and
the plan line, where torch would fail deep inside ("max_pool1d() Invalid computed output size").
Without `--set`, a size the weights depend on is a constructor argument without a default.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from test_codegen import PROPERTY, RUFF, init_args, module_class, ruff_problems

import convplan
from convplan import cli
from convplan.shapes import evaluate

ROOT = Path(__file__).resolve().parent.parent


def generated(name: str, **sizes):
    plan = convplan.load(ROOT / "examples" / f"{name}.plan")
    return plan, module_class(plan.to_source(**sizes))


def refusal(model, *xs) -> str:
    with pytest.raises(ValueError) as err, torch.no_grad():
        model(*xs)
    return str(err.value)


def test_sizes_the_weights_need_have_no_guessed_default():
    _, cls = generated("cnn1d")
    assert init_args(cls) == {"L": init_args(cls)["L"], "classes": 2}
    assert init_args(cls)["L"] is inspect_empty()
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'L'"):
        cls()
    _, chosen = generated("cnn1d", L=20)
    assert init_args(chosen) == {"L": 20, "classes": 2}  # what --set gave


def inspect_empty():
    import inspect

    return inspect.Parameter.empty


def test_cli_codegen_without_set_keeps_the_size_an_argument(tmp_path, capsys):
    out = tmp_path / "m.py"
    assert cli.main(["codegen", str(ROOT / "examples" / "cnn1d.plan"), "-o", str(out)]) == 0
    assert "def __init__(self, L, classes=2):" in out.read_text()


def test_rank_fixed_dim_and_built_size():
    _, cls = generated("cnn1d")
    model = cls(L=20).eval()
    assert tuple(model(torch.randn(3, 1, 20)).shape) == (3, 2)
    assert refusal(model, torch.randn(1, 20)) == "CNN1D expects x to be 3-D [N, 1, L] (cnn1d.plan:4), got [1, 20]"
    assert refusal(model, torch.randn(3, 2, 20)) == "CNN1D expects x to be 3-D [N, 1, L] (cnn1d.plan:4), got [3, 2, 20]"
    # the case: built for one length, given another (torch: a matmul shape error)
    assert refusal(model, torch.randn(3, 1, 21)) == ("CNN1D requires x.shape[2] == L (input x, cnn1d.plan:4), "
                                                     "got [3, 1, 21], L=20")


def test_lower_bound():
    _, cls = generated("vgg11")
    with torch.device("meta"):
        model = cls(classes=3)
    message = refusal(model, torch.randn(1, 3, 31, 40, device="meta"))
    assert message == "VGG11 requires H >= 32 (features_maxpool5, vgg11.plan:14), got H=31"
    assert tuple(model(torch.randn(1, 3, 32, 40, device="meta")).shape) == (1, 3)


def test_divisibility():
    _, cls = generated("unet")
    model = cls(classes=2, width=2).eval()
    assert refusal(model, torch.randn(1, 3, 24, 32)) == "UNet requires H % 16 == 0 (up1_cat1, unet.plan:22), got H=24"
    assert refusal(model, torch.randn(1, 3, 32, 40)) == "UNet requires W % 16 == 0 (up1_cat1, unet.plan:22), got W=40"
    assert tuple(model(torch.randn(1, 3, 32, 48)).shape) == (1, 2, 32, 48)


def test_a_size_shared_by_two_inputs():
    _, cls = generated("two_tower")
    model = cls().eval()
    q, v = torch.randn(4, 40), torch.randn(4, 24)
    assert [tuple(t.shape) for t in model(q, v)] == [(4, 1), (4, 10)]
    assert refusal(model, q, torch.randn(5, 24)) == ("TwoTower requires item.shape[0] == N (input item, "
                                                     "two_tower.plan:14), got [5, 24], N=4")
    assert refusal(model, q, torch.randn(4, 23)) == ("TwoTower expects item to be 2-D [N, 24] (two_tower.plan:14), "
                                                     "got [4, 23]")


# -- the checks agree with the plan's requirements, whatever the sizes ------------------------

PLANS = {
    "pools": ("plan Pools(k=2):\n    input [N, C, L]\n    Conv1d(4, kernel_size=3)\n"
              "    MaxPool1d(kernel_size=k)\n    MaxPool1d(kernel_size=3, stride=2)\n"),
    "halves": ("block Down(w):\n    input [N, C, L]\n    Conv1d(w, kernel_size=3, padding=1)\n"
               "    MaxPool1d(kernel_size=2)\nplan Halves:\n    input [N, 2, L]\n    skip = Down(4)\n"
               "    Down(4)\n    Upsample(scale_factor=2)\n    cat(skip, dim=1)\n"),
    "strided": ("plan S:\n    input [N, 3, H, W]\n    Conv2d(8, kernel_size=5, stride=3)\n"
                "    AvgPool2d(kernel_size=2)\n"),
}


@given(st.sampled_from(sorted(PLANS)), st.lists(st.integers(1, 40), min_size=4, max_size=4))
@PROPERTY
def test_generated_checks_refuse_exactly_what_the_plan_refuses(name, values):
    """Random input sizes: the generated forward raises ValueError exactly where the plan's requirements
    fail, and where they hold, torch runs it and gives the plan's shape."""
    plan = convplan.parse(PLANS[name], f"{name}.plan")
    sizes = dict(zip(plan.symbols, values, strict=False))
    cls = module_class(plan.to_source())
    model = cls(**{k: v for k, v in sizes.items() if k in init_args(cls)}).eval()  # built for these channels
    x = torch.randn(*(int(evaluate(d, sizes)) for d in plan.graph.inputs[0].shape))
    with torch.no_grad():
        try:
            out = model(x)
        except ValueError as exc:
            assert not plan.satisfied(sizes), exc
            assert re.search(rf"\({name}\.plan:\d+\)|, {name}\.plan:\d+\)", str(exc)), exc
            event("refused")
            return
    event("ran")
    assert plan.satisfied(sizes), sizes
    assert list(out.shape) == [int(d) for d in plan.bind(**sizes).graph.nodes[plan.graph.outputs[0]].shape]


@pytest.mark.skipif(RUFF is None, reason="ruff is not on PATH")
def test_checked_sources_are_ruff_clean():
    for text in PLANS.values():
        source = convplan.parse(text, "p.plan").to_source()
        assert not ruff_problems(source), ruff_problems(source) + source


@pytest.mark.parametrize("name", ["two_tower", "conv_length", "unet", "cnn1d", "resnet18"])
def test_generated_code_traces_with_fx_and_imports_back_to_the_same_shapes(name):
    """forward's input checks are one call of a function that records itself in an fx trace: fx traces the
    generated module (an `if` on a size would stop it) and the traced module still checks, `convplan import`
    reads it back, and the plan it writes gives the original's output shapes and parameter count at two sizes;
    eager mode still raises the located error."""
    from test_codegen import inputs_for

    plan = convplan.load(ROOT / "examples" / f"{name}.plan")
    source = plan.to_source()
    assert "\ndef check_inputs(" in source and "        if x.dim()" not in source and "@fx.wrap" not in source
    cls = module_class(source)
    base = plan.smallest_sizes(N=2)
    model = cls(**{k: base.get(k, default) for k, default in init_args(cls).items()}).eval()
    traced = torch.fx.symbolic_trace(model)
    assert [n.target.__name__ for n in traced.graph.nodes if n.op == "call_function"][:1] == ["check_inputs"]
    wrong = torch.randn(*[2] * (inputs_for(plan, base, 0)[0].dim() + 1))
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects"):
        traced(wrong, *inputs_for(plan, base, 0)[1:])
    xs = inputs_for(plan, base, 0)
    back = convplan.parse(convplan.from_module(model, xs[0] if len(xs) == 1 else tuple(xs)))
    weights = sum(p.numel() for p in model.parameters())
    for sizes in (base, {k: v + 5 if k in ("H", "W") else v + 1 for k, v in base.items()}):
        if not plan.satisfied(sizes) or any(k in init_args(cls) and sizes[k] != base[k] for k in sizes):
            continue
        shapes = [tuple(t.shape) for t in inputs_for(plan, sizes, 0)]
        values = {d.name: shape[i] for node, shape in zip(back.graph.inputs, shapes, strict=True)
                  for i, d in enumerate(node.shape) if getattr(d, "is_Symbol", False)}
        got = [tuple(int(evaluate(d, values)) for d in back.graph.nodes[i].shape) for i in back.graph.outputs]
        want = [tuple(int(evaluate(d, sizes)) for d in plan.graph.nodes[i].shape) for i in plan.graph.outputs]
        assert got == want, (sizes, back.source)
        assert sum(p.numel() for p in back.bind(**values).build().parameters()) == weights
    bad = torch.randn(*[2] * (xs[0].dim() + 1))
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects .* to be {xs[0].dim()}-D"):
        model(bad, *xs[1:])


def test_running_generated_code_leaves_nothing_behind_in_torch_fx():
    """fx.wrap registered each executed module's globals in a table torch never clears (~10 MB per 500 loads):
    the generated checks record themselves instead, so running generated code adds nothing there, and the
    module's class is freed with its namespace."""
    import gc
    import weakref

    from torch.fx import _symbolic_trace

    source = convplan.load(ROOT / "examples" / "cnn1d.plan").to_source()
    table = len(_symbolic_trace._wrapped_fns_to_patch)
    gone = []
    for _ in range(20):
        gone.append(weakref.ref(module_class(source)))
    gc.collect()
    assert len(_symbolic_trace._wrapped_fns_to_patch) == table
    assert [ref for ref in gone if ref() is not None] == []
