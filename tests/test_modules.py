"""The built module's tree reads like the plan: a submodule per block call, an nn.Sequential per
`name = repeat ...:` / `name = sequential:`, the plan's names as attribute names.  The examples
have torchvision's state_dict keys and shapes (tests/data/torchvision_state_dicts.json, measured
from torchvision 0.28.0 with torch 2.13.0), so its weights load with strict=True; the generated
code has the same tree.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_codegen import RUFF, module_class, round_trip, ruff_problems
from torch import nn

import convplan
from convplan import PlanError
from convplan.build import BlockModule
from convplan.verify import verify

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = json.loads((Path(__file__).resolve().parent / "data" / "torchvision_state_dicts.json").read_text())
PRETRAINED = {"resnet18": "resnet18", "vgg11": "vgg11", "alexnet": "alexnet",  # example -> torchvision model
              "convnext_tiny": "convnext_tiny", "shufflenet_v2": "shufflenet_v2_x1_0", "vit_b_16": "vit_b_16",
              "swin_t": "swin_t"}
IMAGE = {"vit_b_16": 224}  # its position embedding fixes the image size; the others take a small one
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                          HealthCheck.too_slow])


def load(name: str) -> convplan.Plan:
    return convplan.load(ROOT / "examples" / f"{name}.plan")


def keys_and_shapes(module: nn.Module) -> list[tuple[str, list[int]]]:
    return [(k, list(v.shape)) for k, v in module.state_dict().items()]


def build_on_meta(plan: convplan.Plan, **sizes) -> nn.Module:
    with torch.device("meta"):  # VGG has 133M weights: the keys and shapes are what is compared
        return plan.build(**sizes)


# -- pretrained weights --------------------------------------------------------------------


@pytest.mark.parametrize("example", sorted(PRETRAINED))
def test_state_dict_is_torchvisions(example):
    ref = REFERENCE["models"][PRETRAINED[example]]
    module = build_on_meta(load(example))
    assert keys_and_shapes(module) == [(k, list(s)) for k, s in ref["state_dict"]]  # same order too
    assert sum(p.numel() for p in module.parameters()) == ref["params"]


@pytest.mark.parametrize("example", sorted(PRETRAINED))
def test_torchvision_weights_load_strictly(example):
    """A state dict of random tensors with torchvision's keys and shapes loads with strict=True, into the
    built module and into the generated code's, and both compute the same thing with them."""
    ref = REFERENCE["models"][PRETRAINED[example]]
    gen = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(s, generator=gen) * 0.05 for k, s in ref["state_dict"]}
    for k, s in ref["state_dict"]:
        if k.endswith("num_batches_tracked"):
            weights[k] = torch.randint(0, 5, s, generator=gen)
        elif k.endswith("running_var"):  # a variance: positive
            weights[k] = torch.rand(s, generator=gen) + 0.5
        elif k.endswith("relative_position_index"):  # Swin's rows of its bias table: int64, in range
            weights[k] = torch.randint(0, dict(ref["state_dict"])[k[: -len("index")] + "bias_table"][0], s,
                                       generator=gen)
    plan = load(example)
    built = plan.build()
    built.load_state_dict(weights, strict=True)
    cls = module_class(plan.to_source())
    with torch.device("meta"):
        generated = cls()
    generated.load_state_dict(weights, strict=True, assign=True)
    side = IMAGE.get(example, 64)
    x = torch.randn(1, 3, side, side, generator=gen)
    with torch.no_grad():
        want = built.eval()(x)
        assert torch.equal(generated.eval()(x), want)
    assert list(want.shape) == [1, 1000]
    assert torch.equal(built.state_dict()[ref["state_dict"][0][0]], weights[ref["state_dict"][0][0]])


def test_resnet18_tree_reads_like_the_plan():
    module = build_on_meta(load("resnet18"))
    assert [name for name, _ in module.named_children()] == [
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten1", "fc"]
    assert isinstance(module.layer1, nn.Sequential) and len(module.layer1) == 2
    block = module.layer2[0]
    assert isinstance(block, BlockModule) and block.plan_name == "BasicBlock"
    assert [n for n, _ in block.named_children()] == ["conv1", "bn1", "relu", "conv2", "bn2", "downsample", "relu1"]
    assert isinstance(block.downsample, nn.Sequential) and isinstance(block.downsample[0], nn.Conv2d)
    assert not hasattr(module.layer2[1], "downsample")  # the shortcut is the identity there


def test_a_block_module_runs_on_its_own():
    """A block call's module is a real module: layer2[0] alone gives what the plan says."""
    module = load("resnet18").build().eval()
    x = torch.randn(2, 64, 9, 9)
    with torch.no_grad():
        out = module.layer2[0](x)
        assert tuple(out.shape) == (2, 128, 5, 5)
        assert torch.equal(module.layer1(x), module.layer1[1](module.layer1[0](x)))


def test_verify_checks_every_node_through_the_tree():
    plan = load("resnet18")
    report = verify(plan, {"N": 1, "H": 32, "W": 32}, large=False)
    assert report.ok and report.runs[0].checked == len(plan.graph.layers) + len(plan.graph.merges)
    module = plan.build(N=1, H=32, W=32).eval()
    with torch.no_grad():
        trace = module.run(torch.randn(1, 3, 32, 32))  # every value, from inside the blocks too
    assert set(trace) >= {n.id for n in plan.graph.nodes}


def test_verify_reports_a_wrong_prediction_inside_a_block(monkeypatch):
    """A mismatch deep in the tree is found: the trace comes from the nested modules' own forwards."""
    plan = load("resnet18")
    bound = plan.bind(N=1, H=64, W=64)
    module = bound.build().eval()
    last = module.layer4[1].relu1  # [1, 512, 2, 2]; the average pool after it takes any size
    monkeypatch.setattr(last, "forward", lambda x: x[..., :1, :1])
    monkeypatch.setattr(importlib.import_module("convplan.verify"), "build_module", lambda _plan: module)
    report = verify(bound, large=False)
    assert not report.ok and report.runs[0].mismatches == [
        "line 21 layer4_basicblock2_relu1 (ReLU): predicted [1, 512, 2, 2], torch gave [1, 512, 1, 1]"]


# -- the syntax ----------------------------------------------------------------------------


def test_numbered_containers_and_names():
    plan = convplan.parse(
        "block Unit(width):\n"
        "    input [N, C, L]\n"
        "    conv = Conv1d(width, kernel_size=3, padding=1)\n"
        "    ReLU()\n"
        "plan P:\n"
        "    input [N, 2, L]\n"
        "    stem = sequential:\n"
        "        Conv1d(4, kernel_size=1)\n"
        "        skip = ReLU()\n"
        "    body = repeat i in 3:\n"
        "        Unit(4 + i)\n"
        "    repeat 2:\n"
        "        Unit(7)\n"
        "    head = Unit(3)\n"
        "    add(head)\n", "p.plan")
    module = plan.build()
    names = [n for n, _ in module.named_modules()]
    assert names == ["", "stem", "stem.0", "stem.1", "body", "body.0", "body.0.conv", "body.0.relu1",
                     "body.1", "body.1.conv", "body.1.relu1", "body.2", "body.2.conv", "body.2.relu1",
                     "unit1", "unit1.conv", "unit1.relu1", "unit2", "unit2.conv", "unit2.relu1",
                     "head", "head.conv", "head.relu1"]
    assert module.body[2].conv.out_channels == 6
    x = torch.randn(2, 2, 5)
    assert tuple(module(x).shape) == (2, 3, 5)


def test_numbered_container_name_is_the_tensor_after_it():
    plan = convplan.parse("plan P:\n    input [N, 2]\n    a = sequential:\n        Linear(3)\n        ReLU()\n"
                          "    Linear(3)\n    add(a)\n", "p.plan")
    module = plan.build().eval()
    x = torch.randn(4, 2)
    with torch.no_grad():
        a = module.a(x)
        assert torch.equal(module(x), module.linear1(a) + a)


def test_a_submodule_named_like_a_module_attribute_is_refused():
    for text in ("plan P:\n    input [N, 2]\n    train = sequential:\n        Linear(3)\n",
                 "block B:\n    input [N, C]\n    eval = Linear(3)\nplan P:\n    input [N, 3]\n    B()\n"):
        with pytest.raises(PlanError) as err:
            convplan.parse(text, "p.plan")
        assert err.value.diagnostics[0].code == "E202"


def test_a_sequential_without_its_colon_says_so():
    with pytest.raises(PlanError) as err:
        convplan.parse("plan P:\n    input [N, 2]\n    a = sequential\n", "p.plan")
    d = err.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E001", 3, 19) and "expected ':'" in d.message


# -- random trees: build, verify and the generated code agree -------------------------------

UNITS = (
    "block Unit(width, k=3):\n"
    "    input [N, C, L]\n"
    "    conv = Conv1d(width, kernel_size=k, padding=k // 2)\n"
    "    bn = BatchNorm1d()\n"
    "    ReLU()\n"
    "block Res(width):\n"
    "    input [N, C, L]\n"
    "    residual:\n"
    "        Conv1d(width, kernel_size=3, padding=1)\n"
    "        BatchNorm1d()\n"
    "    shortcut:\n"
    "        if C != width:\n"
    "            proj = sequential:\n"
    "                Conv1d(width, kernel_size=1)\n"
    "                BatchNorm1d()\n"
    "    ReLU()\n"
    "block Pair(width):\n"
    "    input [N, C, L]\n"
    "    first = Unit(width, k=1)\n"
    "    Res(width)\n"
)


@st.composite
def statements(draw, depth: int = 0) -> list[str]:
    lines = []
    for k in range(draw(st.integers(1, 3))):
        width = draw(st.sampled_from(["2", "3", "w", "w + 1"]))
        name = draw(st.sampled_from(["", f"n{depth}{k} = "]))
        kinds = ["layer", "unit", "res", "pair"] + (["repeat", "named", "seq"] if depth < 2 else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "layer":
            lines.append(name + draw(st.sampled_from([f"Conv1d({width}, kernel_size=3, padding=1)", "ReLU()",
                                                       "BatchNorm1d()"])))
        elif kind in ("unit", "res", "pair"):
            lines.append(name + f"{kind.title()}({width})")
        else:
            head = {"repeat": f"repeat {draw(st.integers(1, 2))}:",
                    "named": f"r{depth}{k} = repeat i in {draw(st.integers(1, 3))}:",
                    "seq": f"s{depth}{k} = sequential:"}[kind]
            lines.append(head)
            lines += ["    " + line for line in draw(statements(depth + 1))]
    return lines


@given(statements(), st.integers(1, 4), st.integers(0, 2**16))
@PROPERTY
def test_random_trees_build_verify_and_generate_the_same_module(lines, w, seed):
    text = UNITS + f"plan T(w={w}):\n    input [N, C, L]\n" + "".join(f"    {line}\n" for line in lines)
    try:
        plan = convplan.parse(text, "t.plan")
    except PlanError:
        assume(False)
    sizes = {"N": 2, "C": 3, "L": 5}
    report = verify(plan, sizes, large=False)
    assert report.ok, str(report)
    built = plan.build(**sizes)
    # every layer sits where its node says, and nothing else holds weights
    for node in plan.graph.layers:
        assert type(built.get_submodule(".".join(node.module_path))).__name__ == node.kind
    source = plan.to_source(**sizes)
    model = round_trip(plan, sizes, source, seed)  # strict load of build()'s state_dict, same outputs
    assert [n for n, _ in model.named_modules()] == [n for n, _ in built.named_modules()]
    assert keys_and_shapes(model) == keys_and_shapes(built)
    if RUFF and seed % 4 == 0:
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source


def test_generated_resnet_has_a_class_per_block_with_its_parameters():
    import ast

    source = load("resnet18").to_source()
    classes = {c.name: c for c in ast.parse(source).body if isinstance(c, ast.ClassDef)}
    assert list(classes) == ["BasicBlock", "ResNet18"]  # one class, with and without the downsample

    def params(name):
        init = next(f for f in classes[name].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
        return [a.arg for a in init.args.args[1:]]

    assert params("BasicBlock") == ["C", "planes", "stride"]  # C: the caller's channels
    assert "layer2.append(\n                BasicBlock(\n                    C=64 if i == 0 else 128, planes=128, " \
        "stride=2 if i == 0 else 1" in source and "self.layer2 = nn.Sequential(*layer2)" in source  # a loop
    assert "self.conv1 = nn.Conv2d(C, planes, 3, stride=stride, padding=1, bias=False)" in source
    assert "self.use_downsample = stride != 1 or C != planes\n        if self.use_downsample:" in source
    assert "x = self.layer1(x)" in source and "x = self.downsample(x)" in source  # chains called at once


def test_a_block_called_at_two_depths_is_one_class():
    source = load("unet").to_source()
    assert source.count("class DoubleConv") == 1 and "self.doubleconv1 = DoubleConv(C=C, width=width)" in source
