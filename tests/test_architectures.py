"""Real networks as plans: blocks, repeats, residuals, branches, several inputs/outputs and imports.

The parameter counts are torchvision's (torchvision itself is not installed: the numbers
are the oracle).  Each is checked twice: the plan's symbolic count, and sum(p.numel()) of
the module convplan builds.  Big nets are built on the meta device; ResNet-18 and the
U-Net also run a real forward on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
import torch

import convplan
from convplan import PlanError
from convplan.shapes import dim, evaluate, floordiv, pyrepr
from convplan.verify import verify

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
N, H, W = dim("N"), dim("H"), dim("W")


def load(name: str, **sizes) -> convplan.Plan:
    return convplan.load(EXAMPLES / name, **sizes)


def meta_count(plan: convplan.Plan) -> int:
    with torch.device("meta"):
        module = plan.build()
    return sum(p.numel() for p in module.parameters())


def refusal(text: str, filename: str = "<plan>", **sizes):
    with pytest.raises(PlanError) as info:
        convplan.parse(text, filename, **sizes)
    return info.value


def names(plan) -> list[str]:
    return [node.name for node in plan.graph.nodes]


# -- the torchvision networks ---------------------------------------------------------------


@pytest.mark.parametrize("name, count", [("resnet18.plan", 11_689_512), ("vgg11.plan", 132_863_336),
                                         ("alexnet.plan", 61_100_840), ("convnext_tiny.plan", 28_589_128),
                                         ("shufflenet_v2.plan", 2_278_604), ("vit_b_16.plan", 86_567_656),
                                         ("swin_t.plan", 28_288_354)])
def test_torchvision_parameter_counts(name, count):
    plan = load(name)
    assert plan.total_params == count  # symbolic: no size enters any weight
    assert meta_count(plan) == count
    assert plan.output_shape == (N, 1000)


def test_resnet18_runs_on_the_cpu_at_224():
    plan = load("resnet18.plan")
    module = plan.build().eval()
    with torch.no_grad():
        out = module(torch.randn(1, 3, 224, 224))
    assert tuple(out.shape) == (1, 1000)
    assert sum(p.numel() for p in module.parameters()) == 11_689_512
    bound = plan.bind(N=1, H=224, W=224)
    assert [pyrepr(d) for d in bound.graph.nodes[-1].shape] == ["1", "1000"]
    report = verify(plan, {"N": 1, "H": 224, "W": 224}, large=False)
    assert report.ok, str(report)
    # 4 + 8*6 + 3*2 + 3 layers and 8 adds, each compared with torch
    assert report.runs[0].checked == len(plan.graph.layers) + len(plan.graph.merges) == 69


def test_resnet18_structure():
    plan = load("resnet18.plan")
    graph = plan.graph
    adds = graph.merges
    assert len(adds) == 8 and all(m.op == "add" for m in adds)  # one per BasicBlock
    projections = [n for n in graph.layers if n.kind == "Conv2d" and n.args["kernel_size"] == 1]
    assert len(projections) == 3  # only where stride or width change: layer2..4's first block
    assert len(graph.layers) + len(adds) == 69
    assert "layer1_basicblock1_conv1" in names(plan) and "fc" in names(plan)
    assert len(set(names(plan))) == len(names(plan))
    assert all(name.isidentifier() for name in names(plan))
    # the shortcut of a strided block is the projection, the other operand the residual branch
    first = next(m for m in adds if m.name == "layer2_basicblock1_add1")
    operands = [graph.nodes[i].name for i in first.inputs]
    assert operands == ["layer2_basicblock1_bn2", "layer2_basicblock1_downsample_bn1"]
    assert first.shape == (N, 128, floordiv(H + 7, 8), floordiv(W + 7, 8))


def test_resnet18_strided_blocks_agree_for_every_size():
    # the residual and the projection both give (x - 1)//2 + 1: proven, no requirement
    plan = load("resnet18.plan")
    assert [str(r) for r in plan.requires] == []
    for h in (1, 2, 3, 31, 32, 33, 224):
        assert plan.satisfied({"N": 1, "H": h, "W": h})


def test_vgg11_and_alexnet_stay_small_in_the_plan():
    vgg = load("vgg11.plan")
    assert [str(r) for r in vgg.requires] == ["H >= 32", "W >= 32"]
    classifier = [n for n in vgg.layers if n.kind == "Linear"]
    assert [int(n.args["in_features"]) for n in classifier] == [25088, 4096, 4096]
    alex = load("alexnet.plan")
    assert [int(n.args["in_features"]) for n in alex.layers if n.kind == "Linear"] == [9216, 4096, 4096]


# -- U-Net: requirements derived from the merges -------------------------------------------------


def test_unet_derives_divisibility_by_16():
    plan = load("unet.plan")
    shown = [str(r) for r in plan.requires]
    assert "H % 16 == 0" in shown and "W % 16 == 0" in shown
    assert not any("//" in s and "==" in s for s in shown)  # the weaker per-level ones are folded in
    assert "H >= 16" in shown
    assert plan.output_shape == (N, 2, H, W)
    assert plan.smallest_sizes() == {"N": 1, "H": 16, "W": 16}
    with pytest.raises(PlanError) as info:
        plan.bind(H=24)
    assert "H % 16 == 0" in str(info.value)


def test_unet_runs_on_the_cpu():
    plan = load("unet.plan", width=4)
    module = plan.build().eval()
    with torch.no_grad():
        out = module(torch.randn(2, 3, 32, 48))
    assert tuple(out.shape) == (2, 2, 32, 48)
    assert sum(p.numel() for p in module.parameters()) == evaluate(plan.total_params, {})
    assert plan.verify(N=1, H=32, W=48).ok


def test_unet_concatenations_join_skip_and_upsampled():
    plan = load("unet.plan", width=8)
    cats = plan.graph.merges
    assert [m.op for m in cats] == ["cat"] * 4 and all(m.args == {"dim": 1} for m in cats)
    skips = [plan.graph.nodes[m.inputs[0]].name for m in cats]
    assert skips == ["enc4_relu2", "enc3_relu2", "enc2_relu2", "enc1_relu2"]
    assert [m.shape[1] for m in cats] == [128, 64, 32, 16]


def test_unet_torch_agrees_where_the_requirement_fails():
    # H = 24 breaks H % 16 == 0; torch.cat refuses the same size
    plan = load("unet.plan", width=2)
    module = plan.bind(H=32, W=32).build()
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        module(torch.randn(1, 3, 24, 32))


# -- Inception: parallel branches ---------------------------------------------------------


def test_inception_concatenates_branches_on_channels():
    plan = load("inception.plan")
    cats = plan.graph.merges
    assert [len(m.inputs) for m in cats] == [4, 4, 4]
    assert [m.shape[1] for m in cats] == [256, 480, 512]  # the paper's Table 1
    assert plan.output_shape == (N, 1000)
    assert meta_count(plan) == plan.total_params
    assert plan.verify(N=1, H=64, W=64).ok


# -- several inputs and outputs, imports ------------------------------------------------------


def test_two_tower_has_two_inputs_and_two_outputs():
    plan = load("two_tower.plan")
    assert [n.name for n in plan.graph.inputs] == ["query", "item"]
    assert [plan.graph.nodes[i].name for i in plan.graph.outputs] == ["score", "intent"]
    assert [plan.graph.nodes[i].shape for i in plan.graph.outputs] == [(N, 1), (N, 10)]
    module = plan.build()
    score, intent = module(torch.randn(3, 40), torch.randn(3, 24))
    assert tuple(score.shape) == (3, 1) and tuple(intent.shape) == (3, 10)
    assert plan.verify(N=3).ok


def test_imported_blocks_keep_their_file():
    plan = load("mobilenet_se.plan")
    lib = str(EXAMPLES / "lib" / "mobile_blocks.plan")
    from_lib = [n for n in plan.graph.nodes if n.file == lib]
    assert from_lib and all(n.name.startswith("bottlenecks") for n in from_lib)
    gates = [m for m in plan.graph.merges if m.op == "mul"]
    assert len(gates) == 5  # SE in the se=True rows only
    adds = [m for m in plan.graph.merges if m.op == "add"]
    assert len(adds) == 1 + 1 + 2 + 1  # the residual only where shapes agree
    assert meta_count(plan) == plan.total_params
    assert plan.verify(N=2, H=32, W=32).ok


# -- code generation: the generated module is the same network ---------------------------------------


def generated_class(plan: convplan.Plan, **sizes):
    source = plan.to_source(**sizes)
    namespace: dict = {}
    exec(compile(source, f"<generated {plan.name}>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    return namespace[plan.name]


@pytest.mark.parametrize("name", ["resnet18.plan", "vgg11.plan", "alexnet.plan", "unet.plan", "inception.plan",
                                  "two_tower.plan", "mobilenet_se.plan"])
def test_generated_code_has_the_same_parameters(name):
    plan = load(name)
    with torch.device("meta"):
        module = generated_class(plan)()
    assert sum(p.numel() for p in module.parameters()) == evaluate(plan.total_params, {}) == meta_count(plan)


def test_generated_code_runs_the_merges():
    unet = load("unet.plan", width=4)
    module = generated_class(unet, H=32, W=32)().eval()
    with torch.no_grad():
        assert tuple(module(torch.randn(1, 3, 32, 64)).shape) == (1, 2, 32, 64)
    towers = load("two_tower.plan")
    score, intent = generated_class(towers)()(torch.randn(2, 40), torch.randn(2, 24))
    assert (tuple(score.shape), tuple(intent.shape)) == ((2, 1), (2, 10))
    resnet = load("resnet18.plan")
    built, generated = resnet.build().eval(), generated_class(resnet)().eval()
    generated.load_state_dict(built.state_dict())  # same names, same shapes
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(built(x), generated(x), atol=1e-5)


# -- the language: small plans ------------------------------------------------------------------


def test_branch_names_and_references_span_layers():
    plan = convplan.parse(
        "plan P:\n"
        "    input [N, 8, L]\n"
        "    a = Conv1d(8, kernel_size=3, padding=1)\n"
        "    ReLU()\n"
        "    b = Conv1d(8, kernel_size=3, padding=1)\n"
        "    a\n"
        "    Conv1d(4, kernel_size=1)\n"
        "    cat(b, dim=1)\n"
    )
    # `a` on its own line restarts the chain there; cat(b) joins that chain's value (4 channels) with b (8)
    last = plan.graph.nodes[-1]
    assert last.op == "cat" and plan.output_shape == (N, 12, dim("L"))
    assert [plan.graph.nodes[i].name for i in last.inputs] == ["conv1", "b"]  # auto-names count unnamed layers
    assert plan.graph.nodes[plan.graph.nodes[last.inputs[0]].inputs[0]].name == "a"
    err = refusal("plan P:\n    input [N, 8, L]\n    a = ReLU()\n    Conv1d(4, 1)\n    cat(a, dim=1)\n    add(a)\n")
    assert err.diagnostics[0].code == "E330"
    assert "[N, 12, L]" in str(err) and "[N, 8, L]" in str(err)


def test_merge_error_inside_a_block_points_at_the_block_and_the_call():
    text = (
        "block Bad(width):\n"
        "    input x [N, C, H, W]\n"
        "    Conv2d(width, kernel_size=3, padding=1)\n"
        "    add(x)\n"
        "plan P:\n"
        "    input [N, 3, H, W]\n"
        "    Conv2d(16, kernel_size=1)\n"
        "    Bad(16)\n"
        "    Bad(32)\n"
    )
    err = refusal(text, "net.plan")
    assert len(err.diagnostics) == 1  # Bad(16) is fine; Bad(32) is not
    d = err.diagnostics[0]
    assert (d.code, d.line, d.column) == ("E330", 4, 5)
    assert "[N, 32, H, W]" in d.message and "[N, 16, H, W]" in d.message
    assert d.notes[0][1].line == 9  # the call site
    shown = str(err)
    assert "net.plan:4:5: error[E330]: add:" in shown
    assert "note: in block Bad, called here (net.plan:9:5)" in shown
    assert "   9 |     Bad(32)" in shown


def test_symbolic_merge_that_can_never_agree_is_refused_with_both_shapes():
    err = refusal("plan P:\n    input [N, 4, L]\n    a = ReLU()\n    MaxPool1d(2)\n    add(a)\n")
    d = err.diagnostics[0]
    assert d.code == "E330"
    assert "[N, 4, L//2]" in str(err) and "[N, 4, L]" in str(err)


def test_merge_requirement_derived_and_checked_against_torch():
    text = "plan P:\n    input [N, 2, L]\n    a = ReLU()\n    MaxPool1d(2)\n    Upsample(scale_factor=2)\n    add(a)\n"
    plan = convplan.parse(text)
    assert [str(r) for r in plan.requires] == ["L >= 2", "L % 2 == 0"]
    add = torch.nn.Sequential(torch.nn.MaxPool1d(2), torch.nn.Upsample(scale_factor=2))
    for length in range(2, 12):
        x = torch.randn(1, 2, length)
        agree = add(x).shape == x.shape
        assert agree == plan.satisfied({"N": 1, "L": length})


def test_cat_along_other_dims_and_negative_dims():
    plan = convplan.parse("plan P:\n    input [N, C, L]\n    a = ReLU()\n    cat(a, a, dim=-1)\n")
    assert plan.output_shape == (N, dim("C"), 2 * dim("L"))  # both tensors given: the chain's value is not used
    err = refusal("plan P:\n    input [N, C, L]\n    a = ReLU()\n    cat(a, dim=3)\n")
    assert "dim=3 is out of range for 3-D tensors" in str(err)


def test_mul_broadcasts_like_torch():
    text = (
        "plan SE:\n"
        "    input x [N, 8, H, W]\n"
        "    AdaptiveAvgPool2d(1)\n"
        "    Conv2d(8, kernel_size=1)\n"
        "    Sigmoid()\n"
        "    mul(x)\n"
    )
    plan = convplan.parse(text)
    assert plan.output_shape == (N, 8, H, W)
    gate = torch.randn(2, 8, 1, 1)
    assert tuple((gate * torch.randn(2, 8, 5, 7)).shape) == (2, 8, 5, 7)
    err = refusal(text.replace("Conv2d(8", "Conv2d(4"))
    assert err.diagnostics[0].code == "E330" and "dim 1" in str(err)


def test_unknowns_are_solved_by_merges_and_assertions_check_merges_and_blocks():
    text = (
        "block Res(k, d=1):\n"
        "    input [N, C, H, W]\n"
        "    residual:\n"
        "        Conv2d(C, kernel_size=k, padding=?, dilation=d)\n"
        "        ReLU()\n"
        "plan P:\n"
        "    input [N, 8, H, W]\n"
        "    Res(3) -> [N, 8, H, W]\n"
        "    Res(5, d=2)\n"
        "    a = ReLU()\n"
        "    cat(a, dim=1) -> [N, 16, H, W]\n"
    )
    plan = convplan.parse(text)
    assert plan.unknowns == {"padding": 1, "padding_2": 4}  # the padding that keeps H: what the add needs
    assert [n.args["padding"] for n in plan.layers if n.kind == "Conv2d"] == [1, 4]
    for k, d, h in ((3, 1, 9), (5, 2, 12)):
        conv = torch.nn.Conv2d(8, 8, k, padding=plan.unknowns["padding" if d == 1 else "padding_2"], dilation=d)
        assert tuple(conv(torch.randn(1, 8, h, h)).shape) == (1, 8, h, h)
    assert plan.verify(N=1, H=9, W=9).ok
    err = refusal(text.replace("-> [N, 16, H, W]", "-> [N, 12, H, W]"))
    assert err.diagnostics[0].code == "E322" and err.diagnostics[0].line == 11
    err = refusal(text.replace("Res(3) -> [N, 8, H, W]", "Res(3) -> [N, 8, H]"))
    assert err.diagnostics[0].code == "E320" and err.diagnostics[0].line == 8


def test_conditions_on_parameters_and_input_shapes():
    text = (
        "block Maybe(out):\n"
        "    input [N, C, L]\n"
        "    if C == out:\n"
        "        ReLU()\n"
        "    elif C < out and not out > 100:\n"
        "        Conv1d(out, kernel_size=1)\n"
        "    else:\n"
        "        Conv1d(out, kernel_size=3)\n"
        "plan P:\n"
        "    input [N, 4, L]\n"
        "    Maybe(4)\n"
        "    Maybe(8)\n"
        "    Maybe(200)\n"
    )
    plan = convplan.parse(text)
    assert [n.kind for n in plan.layers] == ["ReLU", "Conv1d", "Conv1d"]
    assert [n.args.get("kernel_size") for n in plan.layers] == [None, 1, 3]


def test_undecidable_structure_is_refused():
    err = refusal("block B:\n    input [N, C, L]\n    if L > 8:\n        ReLU()\nplan P:\n    input [N, 2, L]\n"
                  "    B()\n")
    d = err.diagnostics[0]
    assert d.code == "E230" and d.line == 3 and "depends on L" in d.message
    assert any("--set L=" in h for h in d.hints)
    plan = convplan.parse("block B:\n    input [N, C, L]\n    if L > 8:\n        ReLU()\nplan P:\n    input [N, 2, L]\n"
                          "    B()\n", L=9)
    assert [n.kind for n in plan.layers] == ["ReLU"]
    err = refusal("plan P:\n    input [N, 2, L]\n    repeat L:\n        ReLU()\n")
    assert err.diagnostics[0].code == "E230"


def test_repeat_index_and_nested_blocks():
    text = (
        "block Unit(width, stride=1):\n"
        "    input [N, C, L]\n"
        "    Conv1d(width, kernel_size=3, stride=stride, padding=1)\n"
        "block Stage(width, n):\n"
        "    input [N, C, L]\n"
        "    repeat i in n:\n"
        "        Unit(width * (i + 1), stride=2 if i == 0 else 1)\n"
        "plan P:\n"
        "    input [N, 3, L]\n"
        "    s = Stage(4, n=3)\n"
        "    Stage(2, 2)\n"
    )
    plan = convplan.parse(text)
    assert [int(n.args["out_channels"]) for n in plan.layers] == [4, 8, 12, 2, 4]
    assert [n.args["stride"] for n in plan.layers] == [2, 1, 1, 2, 1]
    assert names(plan)[1:4] == ["s_unit1_conv1", "s_unit2_conv1", "s_unit3_conv1"]
    assert names(plan)[4] == "stage1_unit1_conv1"


def test_repeat_named_tensors_get_the_index():
    plan = convplan.parse("plan P:\n    input [N, 2, L]\n    repeat i in 3:\n        r = ReLU()\n    r\n")
    assert names(plan) == ["x", "r_0", "r_1", "r_2"]
    assert plan.graph.outputs == (3,)


def test_recursion_has_a_limit():
    text = "block Deep(n):\n    input [N, C]\n    if n > 0:\n        Deep(n - 1)\n    ReLU()\nplan P:\n" \
           "    input [N, 2]\n    Deep(3)\n"
    assert len(convplan.parse(text).layers) == 4
    err = refusal(text.replace("n - 1", "n"))
    assert err.diagnostics[0].code == "E260"


def test_exponential_unrolling_is_stopped_with_a_short_report():
    text = ("block B(n=0):\n    input [N, C]\n    if n < 30:\n        B(n + 1)\n        B(n + 1)\n"
            "plan P:\n    input [N, 2]\n    B()\n")
    err = refusal(text)
    d = err.diagnostics[0]
    assert d.code == "E007" and "unrolls to more than" in d.message
    assert len(d.notes) == 4 and "(after 26 more nested calls)" in d.notes[-1][0] and d.notes[-1][1].line == 8
    err = refusal("plan P:\n    input [N, 2]\n    repeat 10000:\n        repeat 10000:\n            pass\n")
    assert err.diagnostics[0].code == "E007"


def test_block_input_pattern_checks_rank_and_values():
    err = refusal("block B:\n    input [N, C, H, W]\n    ReLU()\nplan P:\n    input [N, 2, L]\n    B()\n",
                  "p.plan")
    d = err.diagnostics[0]
    assert d.code == "E212" and d.line == 2 and "4-D input, got 3-D [N, 2, L]" in d.message
    assert d.notes[0][1].line == 6
    err = refusal("block B:\n    input [N, 3, L]\n    ReLU()\nplan P:\n    input [N, 2, L]\n    B()\n")
    assert err.diagnostics[0].code == "E213" and "expects this dim to be 3, got 2" in str(err)
    plan = convplan.parse("block B:\n    input [..., L]\n    Linear(L)\nplan P:\n    input [N, 2, L]\n    B()\n")
    assert plan.output_shape == (N, 2, dim("L"))


def test_block_arguments_are_checked_like_layers():
    base = "block B(width, k=3):\n    input [N, C, L]\n    Conv1d(width, kernel_size=k)\nplan P:\n    input [N, 2, L]\n"
    assert refusal(base + "    B()\n").diagnostics[0].code == "E105"
    err = refusal(base + "    B(4, kk=1)\n")
    assert err.diagnostics[0].code == "E103" and "did you mean k?" in str(err)
    assert refusal(base + "    B(4, width=3)\n").diagnostics[0].code == "E104"
    err = refusal(base + "    Bb(4)\n")
    assert err.diagnostics[0].code == "E100" and "did you mean B?" in str(err)


def test_tensors_come_first_in_a_call():
    err = refusal("plan P:\n    input [N, 2, L]\n    a = ReLU()\n    cat(dim=1, a)\n")
    assert err.diagnostics  # a syntax error: a positional after a keyword
    err = refusal("plan P:\n    input [N, 2, L]\n    a = ReLU()\n    Conv1d(4, a)\n")
    assert err.diagnostics[0].code == "E245"


def test_failed_statement_does_not_cascade_into_the_merge():
    err = refusal("plan P:\n    input [N, 2, L]\n    a = ReLU()\n    Conv1dd(4, kernel_size=3)\n    add(a)\n")
    assert [d.code for d in err.diagnostics] == ["E100"]  # not also an E330 at the add


# -- imports --------------------------------------------------------------------------------------


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_import_errors_are_located(tmp_path):
    write(tmp_path, "lib/blocks.plan", "block Unit(width):\n    input [N, C, L]\n    Conv1d(width, kernel_size=5)\n")
    main = write(tmp_path, "main.plan",
                 'from "lib/blocks.plan" import Unit\nplan P:\n    input [N, 2, L]\n    Unit(4, kernel=1)\n')
    with pytest.raises(PlanError) as info:
        convplan.load(main)
    assert info.value.diagnostics[0].code == "E103"
    main.write_text('from "lib/blocks.plan" import Unt\nplan P:\n    input [N, 2, L]\n    Unt(4)\n')
    with pytest.raises(PlanError) as info:
        convplan.load(main)
    d = info.value.diagnostics[0]
    assert (d.code, d.line, d.file) == ("E021", 1, str(main)) and "did you mean Unit?" in str(info.value)
    main.write_text('import "nowhere.plan"\nplan P:\n    input [N, 2, L]\n')
    with pytest.raises(PlanError) as info:
        convplan.load(main)
    assert info.value.diagnostics[0].code == "E023"


def test_error_in_an_imported_block_shows_that_file(tmp_path):
    lib = write(tmp_path, "blocks.plan",
                "block Unit(width):\n    input x [N, C, L]\n    Conv1d(width, kernel_size=5)\n    add(x)\n")
    main = write(tmp_path, "main.plan", 'import "blocks.plan"\nplan P:\n    input [N, 2, L]\n    Unit(2)\n')
    with pytest.raises(PlanError) as info:
        convplan.load(main)
    d = info.value.diagnostics[0]
    assert (d.code, d.file, d.line) == ("E330", str(lib), 4)  # named as the import wrote it
    shown = str(info.value)
    assert "   4 |     add(x)" in shown  # the line from blocks.plan, not main.plan
    assert f"called here ({main}:4:5)" in shown and "   4 |     Unit(2)" in shown


def test_import_cycles_are_refused(tmp_path):
    write(tmp_path, "a.plan", 'import "b.plan"\nblock A:\n    input [N]\n    ReLU()\n')
    write(tmp_path, "b.plan", 'import "a.plan"\nblock B:\n    input [N]\n    ReLU()\n')
    main = write(tmp_path, "main.plan", 'import "a.plan"\nplan P:\n    input [N]\n    A()\n')
    with pytest.raises(PlanError) as info:
        convplan.load(main)
    d = info.value.diagnostics[0]
    assert d.code == "E020" and "a.plan -> b.plan -> a.plan" in d.message
    assert d.file.endswith("b.plan") and d.line == 1


def test_imports_resolve_in_their_own_file(tmp_path):
    # Outer (in mid.plan) calls Inner, which only mid.plan imports
    write(tmp_path, "deep/inner.plan", "block Inner:\n    input [N, C]\n    Linear(3)\n")
    write(tmp_path, "deep/mid.plan", 'from "inner.plan" import Inner\nblock Outer:\n    input [N, C]\n    Inner()\n')
    main = write(tmp_path, "main.plan", 'from "deep/mid.plan" import Outer\nplan P:\n    input [N, 5]\n    Outer()\n')
    plan = convplan.load(main)
    assert plan.output_shape == (N, 3)
    main.write_text('from "deep/mid.plan" import Outer\nplan P:\n    input [N, 5]\n    Inner()\n')
    with pytest.raises(PlanError):
        convplan.load(main)


def test_blocks_cannot_shadow_layers_or_merges():
    err = refusal("block ReLU:\n    input [N]\n    Tanh()\nplan P:\n    input [N]\n    ReLU()\n")
    assert err.diagnostics[0].code == "E022"
    err = refusal("block cat:\n    input [N]\n    Tanh()\nplan P:\n    input [N]\n    cat()\n")
    assert err.diagnostics[0].code == "E022"


def test_merge_nodes_follow_the_graph_contract():
    plan = load("inception.plan")
    for node in plan.graph.merges:
        assert node.op in ("add", "mul", "cat")
        assert all(i < node.id for i in node.inputs)
        assert node.params == 0
        if node.op == "cat":
            assert set(node.args) == {"dim"} and isinstance(node.args["dim"], int)
    assert sympy.Integer(meta_count(plan)) == plan.total_params


# -- property: random residual and branch structures against torch ----------------------------------
#
# A random chain of convs, pools, residuals (identity or projection shortcut), parallel
# branches concatenated on channels and squeeze-and-excitation gates is written as a plan
# and, separately, run as hand-built torch modules at one sampled length.  If convplan
# refuses the plan outright, torch must fail at that length; if it accepts, torch must
# succeed exactly when the plan's requirements hold there, with the same output shape and
# parameter count.  (add is strict in convplan by design: where torch would broadcast a
# size-1 dim, the hand-built add refuses too.)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

BLOCKS = ("block Gate:\n    input x [N, C, L]\n    AdaptiveAvgPool1d(1)\n    Conv1d(C, kernel_size=1)\n"
          "    Sigmoid()\n    mul(x)\n"
          "block Keep(k, s=1, p=0):\n    input [N, C, L]\n    Conv1d(C, kernel_size=k, stride=s, padding=p)\n")

widths = st.one_of(st.integers(1, 5), st.just("keep"))  # "keep": as many channels as the input (block Keep)
convs = st.tuples(st.just("conv"), widths, st.integers(1, 4), st.integers(1, 2), st.integers(0, 2))
pools = st.tuples(st.just("pool"), st.integers(1, 3), st.integers(1, 2))
simple = st.one_of(convs, pools)
chains = st.lists(simple, min_size=0, max_size=2)
residuals = st.tuples(st.just("res"), st.lists(simple, min_size=1, max_size=2),
                      st.one_of(st.none(), st.tuples(widths, st.integers(1, 2))))
branch_sets = st.tuples(st.just("cat"), st.lists(chains, min_size=2, max_size=3))
gates = st.just(("gate",))
units = st.lists(st.one_of(simple, residuals, residuals, branch_sets, gates), min_size=1, max_size=4)


def emit(unit, pad: str) -> list[str]:
    kind = unit[0]
    if kind == "conv":
        _, out, k, s, p = unit
        if out == "keep":
            return [f"{pad}Keep({k}, s={s}, p={p})"]
        return [f"{pad}Conv1d({out}, kernel_size={k}, stride={s}, padding={p})"]
    if kind == "pool":
        return [f"{pad}MaxPool1d(kernel_size={unit[1]}, stride={unit[2]})"]
    if kind == "gate":
        return [f"{pad}Gate()"]
    if kind == "res":
        lines = [f"{pad}residual:", *(line for u in unit[1] for line in emit(u, pad + "    "))]
        if unit[2] is not None:
            lines += [f"{pad}shortcut:", *emit(("conv", unit[2][0], 1, unit[2][1], 0), pad + "    ")]
        return lines
    lines = [f"{pad}cat(dim=1):"]
    for chain in unit[1]:
        body = [line for u in chain for line in emit(u, pad + "        ")] or [f"{pad}        pass"]
        lines += [f"{pad}    branch:", *body]
    return lines


def plan_text(c: int, chain) -> str:
    body = [line for u in chain for line in emit(u, "    ")]
    return BLOCKS + "plan R:\n" + f"    input [N, {c}, L]\n" + "\n".join(body) + "\n"


class Reference:
    """The same structure as hand-built torch modules; counts their parameters."""

    def __init__(self):
        self.params = 0

    def module(self, m: nn.Module) -> nn.Module:
        self.params += sum(p.numel() for p in m.parameters())
        return m

    def run(self, chain, x):
        for unit in chain:
            x = self.unit(unit, x)
        return x

    def unit(self, unit, x):
        kind = unit[0]
        if kind == "conv":
            _, out, k, s, p = unit
            out = x.shape[1] if out == "keep" else out
            return self.module(nn.Conv1d(x.shape[1], out, k, stride=s, padding=p))(x)
        if kind == "pool":
            return nn.MaxPool1d(unit[1], stride=unit[2])(x)
        if kind == "gate":
            g = self.module(nn.Conv1d(x.shape[1], x.shape[1], 1))(nn.AdaptiveAvgPool1d(1)(x))
            return torch.sigmoid(g) * x
        if kind == "res":
            body = self.run(unit[1], x)
            short = x if unit[2] is None else self.unit(("conv", unit[2][0], 1, unit[2][1], 0), x)
            if body.shape[2] != short.shape[2]:  # the lengths are symbols in the plan: a symbol stretches nothing
                raise ValueError(f"lengths {body.shape[2]} vs {short.shape[2]}: the plan requires them equal")
            return body + short  # the channels are numbers in the plan: a 1 stretches, as torch's + does
        return torch.cat([self.run(chain, x) for chain in unit[1]], dim=1)


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 4), chain=units, n=st.integers(1, 2), length=st.integers(1, 24))
def test_random_residual_and_branch_structures_match_torch(c, chain, n, length):
    text = plan_text(c, chain)
    ref = Reference()
    try:
        with torch.no_grad():
            want = tuple(ref.run(chain, torch.randn(n, c, length)).shape)
    except (RuntimeError, ValueError):
        want = None
    try:
        plan = convplan.parse(text)
    except PlanError as exc:
        assert want is None, f"convplan refused what torch runs at L={length} ({want}):\n{text}\n{exc}"
        return
    sizes = {"N": n, "L": length}
    if not plan.satisfied(sizes):
        assert want is None, f"a requirement fails at L={length} but torch gives {want}:\n{text}\n" + \
            "\n".join(str(r) for r in plan.requires)
        return
    assert want is not None, f"convplan accepts L={length} but torch fails:\n{text}"
    got = tuple(evaluate(d, sizes) for d in plan.output_shape)
    assert got == want, text
    assert evaluate(plan.total_params, sizes) == ref.params, text
    module = plan.build()
    with torch.no_grad():
        assert tuple(module(torch.randn(n, c, length)).shape) == want


# -- deciding comparisons: what `if` relies on ---------------------------------------------------

floor_terms = st.tuples(st.integers(-3, 3), st.integers(-4, 4), st.integers(1, 5))  # c * ((H + a) // b)


@settings(max_examples=200, deadline=None)
@given(terms=st.lists(floor_terms, min_size=1, max_size=3), slope=st.integers(-2, 2), k=st.integers(-6, 6))
def test_decide_at_least_is_never_wrong(terms, slope, k):
    from convplan.shapes import decide_at_least

    e = slope * H + sum(c * floordiv(H + a, b) for c, a, b in terms)
    verdict = decide_at_least(e, k)
    if verdict is None:
        return
    for h in range(1, 120):
        value = slope * h + sum(c * ((h + a) // b) for c, a, b in terms)
        assert (value >= k) == verdict, (pyrepr(e), k, h)


@settings(max_examples=80, deadline=None)
@given(left=st.lists(floor_terms, min_size=1, max_size=2), right=st.lists(floor_terms, min_size=1, max_size=2),
       slope=st.integers(-1, 1))
def test_merge_conditions_hold_exactly_when_the_dims_agree(left, right, slope):
    from convplan.shapes import combine_residues, equal_condition

    def expr(terms):
        return sum(c * floordiv(H + a, b) for c, a, b in terms)

    def value(terms, h):
        return sum(c * ((h + a) // b) for c, a, b in terms)

    cond = equal_condition(slope * H + expr(left), expr(right))
    joined = combine_residues([cond, equal_condition(expr(left), expr(right))])
    for h in range(1, 150):
        same = slope * h + value(left, h) == value(right, h)
        assert bool(cond.xreplace({H: h})) == same, (pyrepr(cond), h)
        for both, _ in joined:
            if both is not None:
                want = same and value(left, h) == value(right, h)
                assert bool(both.xreplace({H: h})) == want, (pyrepr(both), h)


# -- the command line and the API show the structure ----------------------------------------------


def test_cli_table_shows_merges_outputs_and_imported_lines(capsys):
    from convplan import cli

    assert cli.main(["check", str(EXAMPLES / "two_tower.plan")]) == 0
    out = capsys.readouterr().out
    assert "mul(q_linear2, v_linear2)" in out
    assert "outputs: score [N, 1], intent [N, 10]" in out
    assert cli.main(["check", str(EXAMPLES / "mobilenet_se.plan")]) == 0
    out = capsys.readouterr().out
    assert "mobile_blocks.plan:24  bottlenecks1_invertedresidual1_conv1" in out
    assert cli.main(["check", "--json", str(EXAMPLES / "unet.plan")]) == 0
    data = __import__("json").loads(capsys.readouterr().out)
    assert data["inputs"] == {"x": ["N", 3, "H", "W"]}  # numbers as JSON numbers
    assert [m["inputs"] for m in data["merges"]][0] == ["enc4_relu2", "up1_up"]
    assert {"condition": "H % 16 == 0"}.items() <= next(r for r in data["requires"] if "%" in r["condition"]).items()


def test_plan_api_lists_inputs_and_outputs():
    plan = load("two_tower.plan")
    assert plan.input_shapes == {"query": (N, 40), "item": (N, 24)}
    assert plan.output_shapes == {"score": (N, 1), "intent": (N, 10)}
    assert plan.output_shape == (N, 1)  # the first output, as before


def test_names_the_built_module_needs_are_refused():
    from convplan.build import make_tree
    from convplan.scope import MODULE_ATTRS

    graph = convplan.parse("plan P:\n    input [N, 3]\n    ReLU()\n").graph
    module_attrs = {a for a in dir(make_tree(graph, "P")) if not a.startswith("__")} - {"relu1"}
    assert module_attrs <= MODULE_ATTRS  # a torch upgrade that adds attributes shows up here
    for name in ("forward", "training", "to", "run", "state_dict"):
        err = refusal(f"plan P:\n    input [N, 3]\n    {name} = Linear(3)\n")
        assert err.diagnostics[0].code == "E202" and name in err.diagnostics[0].message
    # inside a block the name is an attribute of the block's own module (b1.forward): refused there too
    err = refusal("block B:\n    input [N, C]\n    forward = Linear(3)\nplan P:\n    input [N, 3]\n    B()\n")
    assert err.diagnostics[0].code == "E202" and "'forward'" in err.diagnostics[0].message
    assert err.diagnostics[0].span.line == 3
