"""One class per block: the generated code has a class per block the plan uses (its parameters the
constructor's arguments, its `if`s Python `if`s), and it is still `Plan.build()`'s module: the same
module tree, state_dict keys and shapes, and, with build()'s weights copied, the same outputs at two
sizes, for every example and for random plans whose blocks branch on their parameters and on their
input's channels.  Where the calls of a block cannot share a class the classes say why.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
import test_properties
import torch
from _torch_oracle import layer_line
from hypothesis import assume, given
from hypothesis import strategies as st
from test_codegen import PROPERTY, RUFF, SYMBOLS, init_args, module_class, round_trip, ruff_problems

import convplan
from convplan import PlanError, cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))
GROUPED = "A class per group of calls:"  # the docstring of a class that serves some of a block's calls
VARIANTS = "A class per variant:"  # the fallback of codevariants.py: one class per call that differs
# The examples' blocks that need more than one class, and why: none.  A plan can still force several
# (each class then says why): a block that calls itself (its structure differs with every level), two
# imported files defining a block of one name, an `if` inside a numbered container that the calls decide
# differently, a repeat of several statements whose count differs between calls, or a value inside one
# branch of an `if` that no name holds (it would be an argument only some calls need).
EXPECTED_GROUPS: dict = {}


def classes_of(source: str) -> dict[str, ast.ClassDef]:
    return {c.name: c for c in ast.parse(source).body if isinstance(c, ast.ClassDef)}


def block_classes(source: str, plan: convplan.Plan) -> dict[str, list[ast.ClassDef]]:
    """Block name -> its classes (`BasicBlock`, `BasicBlock_1`, ...), the plan's class left out."""
    out: dict[str, list] = {}
    for name, cls in classes_of(source).items():
        doc = ast.get_docstring(cls) or ""
        if doc.startswith("Block "):
            out.setdefault(doc.split()[1], []).append(cls)
        elif doc.startswith("torchvision."):  # a kind torch.nn lacks, copied in (convplan/modules.py)
            continue
        else:
            assert name == plan.name.replace(" ", "_") or doc.startswith(f"Plan {plan.name}"), name
    return out


def keys_and_shapes(module: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(k, list(v.shape)) for k, v in module.state_dict().items()]


def same_as_build(plan: convplan.Plan, source: str, sizes: dict, seed: int = 0) -> None:
    """The generated module at `sizes` has build()'s tree, keys and shapes, and its outputs."""
    model = round_trip(plan, sizes, source, seed)  # build()'s weights, loaded strictly; the same outputs
    built = plan.build(**sizes)
    assert [n for n, _ in model.named_modules()] == [n for n, _ in built.named_modules()]
    layers = {n: type(m).__name__ for n, m in built.named_modules() if type(m).__module__.startswith("torch.nn")}
    assert {n: type(m).__name__ for n, m in model.named_modules() if n in layers} == layers  # the same kinds
    assert keys_and_shapes(model) == keys_and_shapes(built)


def check_classes(plan: convplan.Plan, source: str) -> dict[str, list]:
    """A class per block the plan uses, unless the block's classes say why not."""
    found = block_classes(source, plan)
    used = {m.name for m in plan.graph.blocks}
    assert set(found) == used
    for name, classes in found.items():
        if len(classes) > 1:
            assert all(GROUPED in (ast.get_docstring(c) or "") or VARIANTS in (ast.get_docstring(c) or "")
                       for c in classes), name
    return found


# -- the examples --------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_generate_build_s_module_with_a_class_per_block(path):
    plan = convplan.load(path)
    source = plan.to_source()
    found = check_classes(plan, source)
    grouped = {(path.stem, name) for name, classes in found.items() if len(classes) > 1}
    assert grouped == {k for k in EXPECTED_GROUPS if k[0] == path.stem}
    if not grouped:  # nor one class of the fallback that writes a class per variant of the graph
        assert GROUPED not in source and VARIANTS not in source
    for key in grouped:
        assert all(EXPECTED_GROUPS[key] in ast.get_docstring(c) for c in found[key[1]])
    sizes = plan.smallest_sizes()
    if path.stem == "cnn1d":
        sizes = {**sizes, "L": 20}
    same_as_build(plan, source, sizes)
    bigger = {k: v + 5 for k, v in sizes.items()}
    if plan.satisfied(bigger):
        same_as_build(plan, source, bigger, seed=1)


def test_resnet18_has_one_basicblock_class():
    plan = convplan.load(ROOT / "examples" / "resnet18.plan")
    source = plan.to_source()
    assert list(classes_of(source)) == ["BasicBlock", "ResNet18"]
    cls = module_class(source)
    block = cls().layer2[0]
    assert type(block).__name__ == "BasicBlock" and block.use_downsample and not cls().layer2[1].use_downsample
    assert list(inspect.signature(type(block)).parameters) == ["C", "planes", "stride"]
    assert init_args(type(block))["stride"] == 1 and init_args(type(block))["C"] is inspect.Parameter.empty
    # the same class builds torchvision's first block of layer2 and its second, from the arguments alone
    assert [k for k, _ in type(block)(C=64, planes=128, stride=2).state_dict().items()][-1] == \
        "downsample.1.num_batches_tracked"
    assert not any("downsample" in k for k in type(block)(C=128, planes=128).state_dict())


def test_a_block_s_input_channels_are_an_argument_its_caller_passes():
    plan = convplan.load(ROOT / "examples" / "mobilenet_se.plan")
    source = plan.to_source()
    assert "def __init__(self, C, reduction=4):" in source  # SqueezeExcite: C // reduction, as written
    assert "self.conv1 = nn.Conv2d(C, C // reduction, 1)" in source
    assert "self.squeezeexcite1 = SqueezeExcite(C=hidden)" in source  # hidden = expand * C, in __init__
    assert "        hidden = expand * C\n" in source


_PAD_BLOCK = "block B(p):\n    input [N, C, L]\n    Conv1d(C, kernel_size=3, padding=p)\n\n"


@pytest.mark.parametrize(("text", "call"), [
    (_PAD_BLOCK + "plan P:\n    input [N, 3, L]\n    B(?) -> [N, 3, L]\n", "B(C=3, p=1)"),
    ("block B(k):\n    input [N, C, L]\n    Conv1d(C, kernel_size=k)\n\n"
     "plan P:\n    input [N, 3, L]\n    B(?) -> [N, 3, L - 4]\n", "B(C=3, k=5)"),
    (_PAD_BLOCK + "plan P:\n    input [N, 3, L]\n    stage = repeat 2:\n        B(?p) -> [N, 3, L]\n",
     "B(C=3, p=1)"),
    (_PAD_BLOCK + "plan P:\n    input [N, 3, L]\n    repeat 2:\n        B(?) -> [N, 3, L]\n", "B(C=3, p=1)"),
    (_PAD_BLOCK + "block S(q):\n    input [N, C, L]\n    repeat 3:\n        B(q)\n\n"
     "plan P:\n    input [N, 3, L]\n    S(?) -> [N, 3, L]\n", "S(C=3, q=1)"),
], ids=["padding", "kernel_size", "numbered_repeat", "repeat", "through_a_block"])
def test_a_question_mark_given_to_a_block_is_written_as_its_solved_value(text, call):
    """The block call passes the solved value, as a layer's `?` is written, not the unknown's symbol (`_p`)."""
    plan = convplan.parse(text, "p.plan")
    source = plan.to_source()
    assert call in source and "=_" not in source
    same_as_build(plan, source, {"N": 2, "L": 9})


def test_codegen_without_set_gives_no_block_size_a_default(tmp_path, capsys):
    """Without --set the sizes that depend on the input are arguments without a guessed default, in
    the plan's class and in every block's; stderr says nothing about defaults chosen."""
    out = tmp_path / "m.py"
    assert cli.main(["codegen", str(ROOT / "examples" / "unet.plan"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "default" not in err
    source = out.read_text()
    assert "def __init__(self, C, width):" in source  # DoubleConv: C from its caller
    assert "def __init__(self, classes=2, width=64):" in source  # the plan's own defaults only
    namespace: dict = {}
    exec(compile(source, "m.py", "exec"), namespace)  # noqa: S102 - running generated code is the test
    with pytest.raises(TypeError, match="required positional argument: 'C'"):
        namespace["DoubleConv"](width=4)


# -- random plans: blocks that branch on their parameters and their input ------------------

CONDITIONS = ["flag", "not flag", "C != width", "stride == 1 and C == width", "width > 2", "stride != 1 or C != width"]


@st.composite
def branching_block(draw, k: int) -> str:
    """A block whose layers are all named (an `if` shifts no automatic name), with `if`s that add
    layers, a residual, a projection shortcut, or a numbered container."""
    lines = [f"block B{k}(width, stride=1, flag=False):", "    input x [N, C, L]"]
    lines.append("    conv = Conv1d(width, kernel_size=3, stride=stride, padding=1, bias=False)")
    for j in range(draw(st.integers(1, 3))):
        cond = draw(st.sampled_from(CONDITIONS))
        kind = draw(st.sampled_from(["layer", "seq", "else"]))
        lines.append(f"    if {cond}:")
        if kind == "layer":
            lines.append(f"        extra{j} = Conv1d(width, kernel_size=1)")
        elif kind == "seq":
            lines += [f"        more{j} = sequential:", "            Conv1d(width, kernel_size=1)",
                      "            ReLU()"]
        else:
            lines += [f"        bn{j} = BatchNorm1d()", "    else:", f"        act{j} = ReLU()"]
    if draw(st.booleans()):
        lines += ["    if stride == 1 and C == width:", "        add(x)"]
    else:
        lines += ["    y = ReLU()", "    residual:", "        x",
                  "        skip = Conv1d(width, kernel_size=1, stride=stride)", "        skip_bn = BatchNorm1d()",
                  "    shortcut:", "        y", "        if stride == 2:",
                  "            pool = AvgPool1d(kernel_size=1, stride=1)"]
    lines.append("    last = ReLU()")
    return "\n".join(lines) + "\n"


@st.composite
def branching_plans(draw) -> str:
    blocks = [draw(branching_block(k)) for k in range(draw(st.integers(1, 2)))]
    calls = []
    for _ in range(draw(st.integers(2, 4))):
        b = draw(st.integers(0, len(blocks) - 1))
        width = draw(st.sampled_from(["2", "3", "w", "w + 1"]))
        flag = draw(st.booleans())
        if draw(st.booleans()):
            calls += [f"r{len(calls)} = repeat i in {draw(st.integers(1, 2))}:",
                      f"    B{b}({width}, stride=2 if i == 0 else 1, flag={flag})"]
        else:
            calls.append(f"B{b}({width}, stride={draw(st.integers(1, 2))}, flag={flag})")
    body = "".join(f"    {line}\n" for line in calls)
    return "".join(blocks) + f"plan T(w=3):\n    input [N, C, L]\n{body}"


@given(branching_plans(), st.integers(0, 2**16))
@PROPERTY
def test_random_branching_blocks_are_one_class_each_and_build_s_module(text, seed):
    try:
        plan = convplan.parse(text, "t.plan")
    except PlanError:
        assume(False)
    sizes = {"N": 2, "C": 3, "L": 8}
    source = plan.to_source(**sizes)
    found = check_classes(plan, source)
    assert all(len(classes) == 1 for classes in found.values()), source  # every name is written: one class
    same_as_build(plan, source, sizes, seed)
    same_as_build(plan, source, {"N": 1, "C": 3, "L": 13}, seed + 1)
    if RUFF and seed % 4 == 0:
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source


@st.composite
def shifting_block(draw, k: int) -> str:
    """A block whose layers are unnamed, so that an `if` taking a layer of a kind shifts the automatic
    name of every later layer of that kind (`conv1d2` in one call, `conv1d1` in another)."""
    lines = [f"block S{k}(width, stride=1, flag=False):", "    input x [N, C, L]"]
    kinds = ["Conv1d(width, kernel_size=1)", "BatchNorm1d()", "ReLU()", "Conv1d(width, kernel_size=3, padding=1)"]
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            lines.append(f"    if {draw(st.sampled_from(CONDITIONS))}:")
            lines += [f"        {draw(st.sampled_from(kinds))}" for _ in range(draw(st.integers(1, 2)))]
            if draw(st.booleans()):
                lines += ["    else:", f"        {draw(st.sampled_from(kinds))}"]
        lines += [f"    {draw(st.sampled_from(kinds))}" for _ in range(draw(st.integers(1, 3)))]
    lines.append("    Conv1d(width, kernel_size=1, stride=stride)")
    if draw(st.booleans()):
        lines += ["    if stride == 1 and C == width:", "        add(x)"]
    return "\n".join(lines) + "\n"


@st.composite
def shifting_plans(draw) -> str:
    blocks = [draw(shifting_block(k)) for k in range(draw(st.integers(1, 2)))]
    calls = []
    for _ in range(draw(st.integers(2, 4))):
        b = draw(st.integers(0, len(blocks) - 1))
        width = draw(st.sampled_from(["2", "3", "w"]))
        calls.append(f"S{b}({width}, stride={draw(st.integers(1, 2))}, flag={draw(st.booleans())})")
    body = "".join(f"    {line}\n" for line in calls)
    return "".join(blocks) + f"plan T(w=3):\n    input [N, C, L]\n{body}"


@given(shifting_plans(), st.integers(0, 2**16))
@PROPERTY
def test_an_if_that_shifts_the_automatic_names_still_gives_one_class(text, seed):
    """Each branch of such an `if` takes the statements whose names it shifts: one class per block, and
    build()'s module tree, keys and outputs."""
    try:
        plan = convplan.parse(text, "t.plan")
    except PlanError:
        assume(False)
    sizes = {"N": 2, "C": 3, "L": 8}
    assume(plan.satisfied(sizes))
    source = plan.to_source(**sizes)
    found = check_classes(plan, source)
    assert all(len(classes) == 1 for classes in found.values()), source
    assert "A class per" not in source, source
    same_as_build(plan, source, sizes, seed)
    same_as_build(plan, source, {"N": 1, "C": 3, "L": 13}, seed + 1)
    if RUFF and seed % 4 == 0:
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source


def test_two_ifs_that_shift_the_names_together_nest_into_one_class():
    """Found by CI: neither `if` alone explains the names (flag shifts them for one call, width > 2 for
    another), so the first takes the second into its branches and the second then takes the rest."""
    text = ("block S0(width, flag=False):\n    input x [N, C, L]\n    if flag:\n        Conv1d(width, kernel_size=1)\n"
            "    Conv1d(width, kernel_size=1)\n    if width > 2:\n        Conv1d(width, kernel_size=1)\n"
            "    Conv1d(width, kernel_size=1)\n    Conv1d(width, kernel_size=3)\n"
            "plan T:\n    input [N, C, L]\n    S0(2)\n    S0(3)\n    S0(2, flag=True)\n")
    plan = convplan.parse(text, "t.plan")
    sizes = {"N": 2, "C": 3, "L": 8}
    source = plan.to_source(**sizes)
    assert [len(c) for c in check_classes(plan, source).values()] == [1] and "A class per" not in source, source
    assert "if not self.use_" in source  # the branch no call takes is left out, not written as `pass`
    same_as_build(plan, source, sizes)
    same_as_build(plan, source, {"N": 1, "C": 3, "L": 13}, 1)


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["2", "3", "w"]), st.integers(1, 2)), min_size=2,
                max_size=4), st.booleans(), st.booleans(), st.integers(0, 2**16))
@PROPERTY
def test_a_repeat_whose_count_differs_between_calls_is_a_loop(rows, named_index, container, seed):
    """`repeat i in n:` inside a block called with several n: one class whose __init__ adds the numbered
    submodules in a `for` and whose forward runs them in one (or, for `units = repeat ...`, builds the
    nn.Sequential in a `for`); build()'s names, keys and outputs."""
    stride = "2 if i == 0 else 1" if named_index else "1"
    text = ("block Unit(width, stride=1):\n    input x [N, C, L]\n    Conv1d(width, kernel_size=3, stride=stride, "
            "padding=1)\n    ReLU()\n"
            f"block Stage(n, width):\n    input [N, C, L]\n"
            f"    {'units = ' if container else ''}repeat {'i in ' if named_index else ''}n:\n"
            f"        Unit(width, stride={stride})\n"
            "plan T(w=4):\n    input [N, C, L]\n" + "".join(f"    Stage({n}, {w})\n" for n, w, _ in rows))
    plan = convplan.parse(text, "t.plan")
    sizes = {"N": 2, "C": 3, "L": 40}
    source = plan.to_source(**sizes)
    found = check_classes(plan, source)
    assert len(found["Stage"]) == 1 and "A class per" not in source, source
    if len({n for n, _, _ in rows}) > 1:
        assert "for i in range(n):" in source or "for _ in range(n):" in source, source  # `_`: no index used
        assert ("self.units = nn.Sequential(*units)" if container else 'getattr(self, f"unit{i + 1}")') in source
    same_as_build(plan, source, sizes, seed)
    if RUFF and seed % 4 == 0:
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source


def _init_of(cls: ast.ClassDef) -> ast.FunctionDef:
    return next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")


@pytest.mark.parametrize("example, loops", [("resnet18", {"layer1": 2, "layer2": 2, "layer3": 2, "layer4": 2}),
                                            ("shufflenet_v2", {"stage2": 4, "stage3": 8, "stage4": 4}),
                                            ("text_transformer", {"encoder": 2})])
def test_a_repeat_is_a_sequential_built_in_a_for(example, loops):
    """Each `name = repeat n:` of these plans is `name = []`, a `for` over range(n) that appends, then
    `self.name = nn.Sequential(*name)`: build()'s numbering, so its keys (torchvision's: test_modules)."""
    plan = convplan.load(ROOT / "examples" / f"{example}.plan")
    source = plan.to_source()
    init = _init_of(classes_of(source)[plan.name])
    found = {f.body[0].value.func.value.id: f.iter.args[0].value for f in ast.walk(init) if isinstance(f, ast.For)}
    assert found == loops
    for name in loops:
        assert f"self.{name} = nn.Sequential(*{name})" in source
    sizes = plan.smallest_sizes()
    built = plan.build(**sizes)
    model = round_trip(plan, sizes, source)
    assert keys_and_shapes(model) == keys_and_shapes(built)


@given(st.integers(2, 4), st.sampled_from(["2", "w", "w + 1"]), st.booleans(), st.integers(0, 2**16))
@PROPERTY
def test_a_repeat_inside_a_block_is_a_loop_where_its_iterations_are_alike(count, width, first_differs, seed):
    """A block's `units = repeat i in n:` is built in a `for` in its class's __init__: an argument the
    same in every iteration, or one value in the first and another in the rest (`stride=2 if i == 0
    else 1`, the input channels `C if i == 0 else width`); build()'s keys and outputs."""
    stride = "2 if i == 0 else 1" if first_differs else "1"
    text = ("block Unit(width, stride=1):\n    input x [N, C, L]\n"
            "    Conv1d(width, kernel_size=3, stride=stride, padding=1)\n    ReLU()\n"
            f"block Stage(width):\n    input [N, C, L]\n    units = repeat i in {count}:\n"
            f"        Unit(width, stride={stride})\n    Conv1d(width, kernel_size=1)\n"
            f"plan T(w=4):\n    input [N, C, L]\n    Stage({width})\n    Stage(3)\n")
    plan = convplan.parse(text, "t.plan")
    sizes = {"N": 2, "C": 3, "L": 40}
    source = plan.to_source(**sizes)
    found = check_classes(plan, source)
    assert len(found["Stage"]) == 1, source
    assert f"for i in range({count}):" in source and "self.units = nn.Sequential(*units)" in source, source
    same_as_build(plan, source, sizes, seed)
    if RUFF and seed % 4 == 0:
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source


UNTAKEN = ["Conv1d(width, kernel_size=1)", "BatchNorm1d()", "ReLU()", "Conv1d(width, kernel_size=3, padding=1)",
           "bn = BatchNorm1d()", "add(x)", "Conv1d(width * 2, kernel_size=1, bias=False)",
           "Conv1d(x, width, kernel_size=1)",  # a layer given a tensor by name: the block's input, C channels
           "down = sequential:\n            Conv1d(width, kernel_size=1)\n            BatchNorm1d()",
           "pair = repeat 2:\n            Conv1d(width, kernel_size=1)"]


@given(st.lists(st.sampled_from(UNTAKEN), min_size=1, max_size=3), st.booleans(), st.integers(1, 3),
       st.integers(0, 2**16))
@PROPERTY
def test_a_branch_no_call_takes_is_written_and_builds_what_a_call_taking_it_builds(branch, orelse, width, seed):
    """The plan's calls all skip the branch; the class still holds its code under the condition, and the class
    built with arguments that take it is build()'s module for a plan whose call takes it: keys, outputs."""
    assume(_untaken_branch_as_build(branch, orelse, width, seed))


def _untaken_branch_as_build(branch, orelse, width, seed) -> bool:
    """False where the branch does not fit a call that takes it."""
    lines = ["block B(width, flag=False):", "    input x [N, C, L]", "    Conv1d(width, kernel_size=3, padding=1)",
             "    if flag:", *(f"        {b}" for b in branch)]
    if orelse:
        lines += ["    else:", "        Tanh()"]
    block = "\n".join([*lines, "    Hardswish()"]) + "\n"
    skip = convplan.parse(block + f"plan T:\n    input [N, C, L]\n    B({width})\n    B({width})\n", "t.plan")
    take = block + f"plan U:\n    input [N, C, L]\n    B({width}, flag=True)\n"
    try:
        taking = convplan.parse(take, "u.plan")
    except PlanError:
        return False  # the branch does not fit (add(x) after a change of channels)
    sizes = {"N": 2, "C": width, "L": 9}
    if not taking.satisfied(sizes):
        return False
    source = skip.to_source(**sizes)
    assert "cannot write this branch" not in source, source
    assert "if self.use_" in source or "if flag:" in source, source
    namespace: dict = {}
    exec(compile(source, "t.py", "exec"), namespace)  # noqa: S102 - running generated code is the test
    torch.manual_seed(seed)
    built = taking.build(**sizes).b1
    model = namespace["B"](C=width, width=width, flag=True)
    assert [k for k, _ in model.named_modules()] == [k for k, _ in built.named_modules()]
    model.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, width, 9)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), built.eval()(x))
    if RUFF and seed % 4 == 0:
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source
    return True


UNTAKEN_PINNED = [  # the kinds of branch the generated __init__ refused before
    ["down = sequential:\n            Conv1d(width, kernel_size=1, bias=False)\n            BatchNorm1d()", "add(x)"],
    ["Conv1d(x, width, kernel_size=1)", "ReLU()"],
    ["y = Conv1d(x, width * 2, kernel_size=1)", "pair = repeat 2:\n            Conv1d(width, kernel_size=1)",
     "BatchNorm1d()"],
]


@pytest.mark.parametrize("branch", UNTAKEN_PINNED, ids=lambda b: b[0].split("(")[0].split(" =")[0])
def test_an_untaken_container_or_a_layer_given_a_tensor_is_written(branch):
    """A numbered container (`down = sequential:`, `pair = repeat 2:`) and a layer reading a tensor by name, in a
    branch none of the calls takes: the class writes them (no `raise` in __init__) and, built with arguments
    that take the branch, is build()'s module for a call that takes it."""
    assert _untaken_branch_as_build(branch, False, 3, 0)
    assert _untaken_branch_as_build(branch, True, 2, 4)


@pytest.mark.parametrize("call", ["GRUCell(x, width)", "RNNCell(x, width, nonlinearity='relu')",
                                  "y = GRUCell(x, width)"])
def test_an_untaken_layer_naming_fewer_tensors_than_it_may_take_reads_only_those(call):
    """GRUCell(x, 8) reads x alone (its hx is optional, as the walker reads it): the untaken branch's code
    calls it on x with x's channels, not on the chain's value with x as hx (it did: a module of other weights
    whose forward fed the block's input as the hidden state)."""
    block = (f"block B(width, flag=False):\n    input x [N, C]\n    Linear(width)\n    if flag:\n        {call}\n"
             "    Tanh()\n")
    skip = convplan.parse(block + "plan T:\n    input [N, C]\n    B(4)\n    B(4)\n", "t.plan")
    taking = convplan.parse(block + "plan U:\n    input [N, C]\n    B(4, flag=True)\n", "u.plan")
    sizes = {"N": 2, "C": 3}
    source = skip.to_source(**sizes)
    assert "cannot write this branch" not in source and re.search(r"out = self\.\w+\(x\)  #", source), source
    namespace: dict = {}
    exec(compile(source, "t.py", "exec"), namespace)  # noqa: S102 - running generated code is the test
    built = taking.build(**sizes).b1
    model = namespace["B"](C=3, width=4, flag=True)
    assert keys_and_shapes(model) == keys_and_shapes(built)
    model.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 3)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), built.eval()(x))


def test_mobilenet_se_s_inverted_residual_serves_a_call_no_row_makes():
    """No row of MobileNetSE has expand=1 with se=True; its class still builds that, as build() does."""
    source = convplan.load(ROOT / "examples" / "mobilenet_se.plan").to_source()
    assert "cannot write this branch" not in source
    namespace: dict = {}
    exec(compile(source, "m.py", "exec"), namespace)  # noqa: S102 - running generated code is the test
    lib = (ROOT / "examples" / "lib" / "mobile_blocks.plan").read_text(encoding="utf-8")
    plan = convplan.parse(lib + "plan P:\n    input [N, 16, H, W]\n    InvertedResidual(16, expand=1, se=True)\n",
                          "p.plan")
    built = plan.build(N=1, H=8, W=8).invertedresidual1
    model = namespace["InvertedResidual"](C=16, out=16, expand=1, se=True)
    assert keys_and_shapes(model) == keys_and_shapes(built)
    model.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), built.eval()(x))


def test_the_docs_show_the_generated_basicblock():
    docs = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    shown = docs.split("```python\nclass BasicBlock(nn.Module):", 1)[1].split("```", 1)[0]
    source = convplan.load(ROOT / "examples" / "resnet18.plan").to_source()
    assert "class BasicBlock(nn.Module):" + shown in source


@given(test_properties.stacks(), st.integers(0, 2**16))
@PROPERTY
def test_property_stacks_inside_a_block_are_one_class_and_build_s_module(case, seed):
    """tests/test_properties.py's stacks over the whole vocabulary, as a block called twice on the plan's
    input: its class takes every layer's arguments from its own (the input dims the caller passes)."""
    shape, layers = case
    names = SYMBOLS[: len(shape)]
    body = "".join(f"    {layer_line(k, a)}\n" for k, a in layers)
    text = (f"block Body():\n    input [{', '.join(names)}]\n{body}"
            f"plan T:\n    input [{', '.join(names)}]\n    a = Body(x)\n    b = Body(x)\n    output a, b\n")
    try:
        plan = convplan.parse(text, "t.plan")
    except PlanError:
        assume(False)
    sizes = dict(zip(names, shape, strict=True))
    assume(plan.satisfied(sizes))
    source = plan.to_source(**sizes)
    assert len(check_classes(plan, source)["Body"]) == 1
    same_as_build(plan, source, sizes, seed)


@pytest.mark.parametrize("cond", ["i == 0 and down", "i + 1 == n", "(i == 0) == down", "down or i == 1"])
def test_a_repeat_index_in_a_condition_with_other_terms_is_code_that_builds_as_build(cond):
    """Found by a review: a block's `if` reading the repeat index beside anything else (`if i == 0 and down:`) made
    codegen fail with a TypeError traceback: folding the index into the condition rebuilt the node with the
    parser's own `_depth` as an argument.  Folded now (`i == 0 and down` at i = 0 is `down`), and the class is
    build()'s module: keys and outputs, for calls that take each branch."""
    text = ("block Stage(c, n, down):\n    input [N, C, H, W]\n    repeat i in n:\n"
            f"        if {cond}:\n            Conv2d(c, 3, stride=2, padding=1)\n"
            "        else:\n            Conv2d(c, 3, padding=1)\n        ReLU()\n"
            "plan P:\n    input [N, 3, H, W]\n    Stage(8, 2, True)\n    Stage(16, 3, False)\n")
    plan = convplan.parse(text, "t.plan")
    sizes = {"N": 2, "H": 16, "W": 12}
    source = plan.to_source(**sizes)
    same_as_build(plan, source, sizes)
    if RUFF and cond != "(i == 0) == down":  # (`True == down` at i = 0 is lint's E712, and right)
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source
