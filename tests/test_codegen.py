"""Code generation: every plan becomes one standalone PyTorch module.

The round trip is the contract: exec the generated source, instantiate the class at the
plan's sizes, load the state_dict of `Plan.build()`'s module with strict=True, and get
identical outputs on the same random input.  Goldens under tests/golden/codegen/ hold the
generated source of every example (rewrite with `pytest --update-goldens`, then read the diff).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import linecache
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sympy
import test_layers_torch
import test_properties
import torch
from _torch_oracle import layer_line
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import convplan
from convplan import PlanError, cli
from convplan.build import example_inputs, make_tree
from convplan.codegen import Model, write
from convplan.errors import Span
from convplan.graph import Graph, Node
from convplan.layers import REGISTRY, REQUIRED
from convplan.pysource import Brackets, Namespace, Ops, Pre, Printer, flat, float_literal, layout, str_literal
from convplan.shapes import dim, evaluate, floordiv, mod

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))
GOLDEN = Path(__file__).resolve().parent / "golden" / "codegen"
GOLDEN_SIZES = {"cnn1d": {"L": 20}}  # defaults written into the goldens; else the smallest valid sizes
RUFF = shutil.which("ruff")
RUFF_RULES = "E,F,W,I,B,UP,A"  # pycodestyle, pyflakes, isort, bugbear, pyupgrade, builtins shadowing
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                          HealthCheck.too_slow])
_counter = itertools.count()


# -- helpers -------------------------------------------------------------------------------


def load_source(source: str) -> dict:
    """Run generated source as a module would run, under a fake file name that tracebacks can show."""
    filename = f"<convplan-generated-{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "convplan_generated"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - running generated code is the test
    return namespace


def module_class(source: str) -> type:
    """The plan's class: the last one (a class per block comes before it)."""
    classes = [v for v in load_source(source).values()
               if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == "convplan_generated"]
    assert classes and len(classes) == source.count("\nclass "), classes
    return classes[-1]


def init_args(cls: type) -> dict:
    """The generated constructor's arguments with their defaults."""
    params = list(inspect.signature(cls).parameters.values())
    return {p.name: p.default for p in params}


def inputs_for(plan: convplan.Plan, sizes: dict, seed: int) -> list[torch.Tensor]:
    """build.example_inputs (indices in range where an Embedding reads an input), seeded."""
    torch.manual_seed(seed)
    return example_inputs(plan.graph, sizes)


def same_outputs(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(same_outputs, a, b))
    # NaN where both have it (LPPool's odd norm_type on negative values): equal, bit for bit elsewhere
    return torch.equal(a, b) or (a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))


def round_trip(plan: convplan.Plan, sizes: dict, source: str | None = None, seed: int = 0) -> nn.Module:
    """Instantiate the generated class at `sizes`, load Plan.build()'s weights strictly, compare outputs."""
    source = plan.to_source() if source is None else source
    cls = module_class(source)
    with torch.device("meta"):  # no weight init (VGG has 130M weights): load_state_dict assigns them
        model = cls(**{k: sizes.get(k, default) for k, default in init_args(cls).items()})
    reference = plan.build(**sizes)
    model.load_state_dict(reference.state_dict(), strict=True, assign=True)  # still checks keys and shapes
    model.eval(), reference.eval()
    xs = inputs_for(plan, sizes, seed)
    with torch.no_grad():  # seeded alike: FractionalMaxPool draws its windows' places on every call
        torch.manual_seed(seed)
        want = reference(*xs)
        torch.manual_seed(seed)
        got = model(*xs)
    assert same_outputs(got, want), f"outputs differ at {sizes}:\n{source}"
    return model


def ruff_problems(source: str) -> str:
    """What `ruff format --check` and `ruff check` (no project config: a user's fresh project) say."""
    fmt = subprocess.run([RUFF, "format", "--isolated", "-"], input=source, capture_output=True, text=True)
    if fmt.returncode != 0:
        return fmt.stderr
    if fmt.stdout != source:
        return "ruff format would change it:\n" + "".join(_diff(source, fmt.stdout))
    lint = subprocess.run([RUFF, "check", "--isolated", "--select", RUFF_RULES, "--stdin-filename", "gen.py", "-"],
                          input=source, capture_output=True, text=True)
    return "" if lint.returncode == 0 else lint.stdout + lint.stderr


def _diff(a: str, b: str):
    import difflib

    return difflib.unified_diff(a.splitlines(True), b.splitlines(True), "generated", "formatted")


# -- the examples --------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_golden(path, update_goldens):
    source = convplan.load(path).to_source(**GOLDEN_SIZES.get(path.stem, {}))
    golden = GOLDEN / f"{path.stem}.py"
    if update_goldens:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(source, encoding="utf-8")
    assert golden.exists(), f"no golden for {path.name}: run pytest --update-goldens and review {golden}"
    assert source == golden.read_text(encoding="utf-8"), f"generated source of {path.name} changed"
    imported = {alias.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"torch"}, imported


def test_every_golden_has_its_example():
    stale = sorted({p.stem for p in GOLDEN.glob("*.py")} - {p.stem for p in EXAMPLES})
    assert not stale, f"goldens without an example: {stale}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_round_trip(path):
    plan = convplan.load(path)
    sizes = {**plan.smallest_sizes(), **GOLDEN_SIZES.get(path.stem, {})}
    source = plan.to_source(**GOLDEN_SIZES.get(path.stem, {}))
    round_trip(plan, sizes, source)
    bigger = {k: v + 3 for k, v in sizes.items()}  # one class serves every size the plan allows
    if plan.satisfied(bigger):
        round_trip(plan, bigger, source, seed=1)


@pytest.mark.skipif(RUFF is None, reason="ruff is not on PATH")
def test_goldens_pass_ruff():
    files = [str(p) for p in sorted(GOLDEN.glob("*.py"))]
    assert files
    fmt = subprocess.run([RUFF, "format", "--isolated", "--check", *files], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run([RUFF, "check", "--isolated", "--select", RUFF_RULES, *files], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_cnn1d_keeps_sizes_symbolic():
    source = convplan.load(ROOT / "examples" / "cnn1d.plan").to_source(L=20)
    assert "class CNN1D(nn.Module):" in source
    assert "def __init__(self, L=20, classes=2):" in source
    assert "self.linear1 = nn.Linear(32 * (L // 2), classes)" in source
    assert "x = self.maxpool1(x)  # [N, 32, L//2]  cnn1d.plan:7" in source
    assert "convplan" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))


def test_cnn1d_checks_its_requirements():
    cls = module_class(convplan.load(ROOT / "examples" / "cnn1d.plan").to_source(L=20))
    assert cls().linear1.in_features == 320
    assert cls(L=9, classes=5).linear1.weight.shape == (5, 128)
    with pytest.raises(ValueError, match=r"requires L >= 2 \(maxpool1, cnn1d.plan:7\), got L=1"):
        cls(L=1)
    with pytest.raises(ValueError, match=r"requires classes >= 1, got classes=0"):
        cls(classes=0)


def test_generation_is_deterministic_across_processes():
    plan_path = ROOT / "examples" / "cnn1d.plan"
    here = convplan.load(plan_path).to_source(L=20)
    assert convplan.load(plan_path).to_source(L=20) == here
    code = f"import convplan; print(convplan.load({str(plan_path)!r}).to_source(L=20), end='')"
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout == here


# -- parameters ------------------------------------------------------------------------------


PARAMS_PLAN = """\
plan Widths(width=8, k=3, slope=2, pad=0):
    input [N, C, L]
    Conv1d(width, kernel_size=k, padding=k // 2)
    LeakyReLU(slope)
    Conv1d(width * 2, kernel_size=3, padding=pad)
    Flatten()
    Linear(4)
"""


def test_parameters_stay_symbolic_where_they_can():
    plan = convplan.parse(PARAMS_PLAN, "widths.plan")
    source = plan.to_source(C=3, L=10)
    # slope is a float argument and pad is 0 (symbols are positive): both stay constants
    assert "def __init__(self, C=3, L=10, width=8, k=3):" in source
    assert "self.conv1 = nn.Conv1d(C, width, k, padding=k // 2)" in source
    assert "self.leakyrelu1 = nn.LeakyReLU(negative_slope=2.0)" in source
    assert "Fixed parameters: slope = 2, pad = 0" in source
    round_trip(plan, {"N": 2, "C": 3, "L": 10}, source)
    cls = module_class(source)
    for sizes in ({"C": 2, "L": 7, "width": 4, "k": 5}, {"C": 1, "L": 12, "width": 3, "k": 1}):
        model = cls(**sizes)
        reference = plan.build(**sizes)
        model.load_state_dict(reference.state_dict(), strict=True)
        x = torch.randn(2, sizes["C"], sizes["L"])
        assert torch.equal(model.eval()(x), reference.eval()(x))
    with pytest.raises(ValueError, match="requires"):
        cls(L=1)


def test_unsafe_names_are_renamed():
    text = "plan torch(nn=4):\n    input [N, self, out]\n    Conv1d(nn, kernel_size=1)\n    Flatten()\n    Linear(2)\n"
    plan = convplan.parse(text, "odd.plan")
    source = plan.to_source()
    assert "class torch_1(nn.Module):" in source
    assert "Renamed for Python: torch -> torch_1, self -> self_1, nn -> nn_1." in source  # the docstring says so
    assert "def __init__(self, self_1, out, nn_1=4):" in source  # sizes without --set: no guessed default
    assert "self.conv1 = nn.Conv1d(self_1, nn_1, 1)" in source
    assert "def forward(self, x):" in source
    cls = module_class(source)
    model = cls(self_1=3, out=5, nn_1=2)
    reference = convplan.parse(text, "odd.plan", **{"self": 3, "out": 5, "nn": 2}).build()  # Plan.build(self=) clashes
    model.load_state_dict(reference.state_dict(), strict=True)
    xs = torch.randn(2, 3, 5)
    assert torch.equal(model.eval()(xs), reference.eval()(xs))
    if RUFF:
        assert not ruff_problems(source), ruff_problems(source)


# -- random plans --------------------------------------------------------------------------

SYMBOLS = ("N", "C", "D", "H", "W", "V")
SINGLE_LAYER_CASES = [getattr(test_layers_torch, n) for n in sorted(dir(test_layers_torch)) if n.endswith("_case")]


def round_trip_symbolic(case, seed):
    """The stack with every input dim a symbol, generated at the case's sizes, round-tripped there."""
    shape, layers = case
    names = SYMBOLS[: len(shape)]
    text = f"plan T:\n    input [{', '.join(names)}]\n" + "".join(f"    {layer_line(k, a)}\n" for k, a in layers)
    try:
        plan = convplan.parse(text, "t.plan")
    except PlanError:
        assume(False)
    sizes = dict(zip(names, shape, strict=True))
    assume(plan.satisfied(sizes))
    round_trip(plan, sizes, plan.to_source(**sizes), seed)


@given(st.one_of(*(case() for case in SINGLE_LAYER_CASES)), st.integers(0, 2**16))
@PROPERTY
def test_round_trip_every_layer_kind(case, seed):
    """Each layer kind with random (valid or not) arguments (tests/test_layers_torch.py's cases)."""
    round_trip_symbolic(case, seed)


@given(test_properties.stacks(), st.integers(0, 2**16))
@PROPERTY
def test_round_trip_property_stacks(case, seed):
    """Deep stacks over the whole vocabulary (tests/test_properties.py's generator)."""
    round_trip_symbolic(case, seed)


@st.composite
def stacks(draw):
    """A plan text with parameters, 1-D or 2-D input, and a chain of layers; maybe invalid."""
    nd = draw(st.sampled_from([1, 2]))
    params = {"width": draw(st.integers(1, 6)), "k": draw(st.integers(1, 4))}
    spatial = ["L"] if nd == 1 else ["H", "W"]
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        lines.append(draw(_layer(nd)))
    if draw(st.booleans()):
        lines += ["Flatten()", f"Linear({draw(st.sampled_from(['width', '3', 'width + 1']))})"]
    head = ", ".join(f"{k}={v}" for k, v in params.items())
    body = "".join(f"    {line}\n" for line in lines)
    return f"plan Stack({head}):\n    input [N, C, {', '.join(spatial)}]\n{body}"


def _layer(nd: int):
    d = f"{nd}d"
    conv = st.builds(lambda out, k, s, p, b: f"Conv{d}({out}, kernel_size={k}, stride={s}, padding={p}, bias={b})",
                     st.sampled_from(["width", "4", "2 * width"]), st.sampled_from(["k", "1", "3"]),
                     st.integers(1, 2), st.sampled_from(["0", "1", "k // 2", "'same'"]), st.booleans())
    deconv = st.builds(lambda out, s: f"ConvTranspose{d}({out}, kernel_size=2, stride={s})",
                       st.sampled_from(["width", "3"]), st.integers(1, 2))
    pool = st.builds(lambda kind, k, ceil: f"{kind}Pool{d}(kernel_size={k}, ceil_mode={ceil})",
                     st.sampled_from(["Max", "Avg"]), st.integers(1, 3), st.booleans())
    simple = st.sampled_from([f"BatchNorm{d}()", "ReLU()", "GELU(approximate='tanh')", "LeakyReLU(0.1)", "Dropout(0.2)",
                              f"AdaptiveAvgPool{d}(2)", f"InstanceNorm{d}(affine=True)", "GroupNorm(1)",
                              f"ZeroPad{d}(1)", "Upsample(scale_factor=2, mode='nearest')", "Tanh()"])
    return st.one_of(conv, deconv, pool, simple)


@given(stacks(), st.integers(0, 5), st.integers(0, 2**16))
@PROPERTY
def test_round_trip_random_stacks(text, grow, seed):
    try:
        plan = convplan.parse(text, "stack.plan")
        sizes = {k: v + grow for k, v in plan.smallest_sizes().items()}
    except PlanError:
        assume(False)
    assume(plan.satisfied(sizes))
    source = plan.to_source(**sizes)
    round_trip(plan, sizes, source, seed)
    if RUFF and seed % 4 == 0:  # ruff costs a process; a quarter of the cases is plenty
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source


# -- graphs with merges: generated over the graph, checked against an interpreter -------------


def _span(i: int) -> Span:
    return Span(i + 1, 1, i + 1, 2)


def _layer_node(i: int, kind: str, name: str, src: int, width: int, out: int | None = None) -> Node:
    if kind == "Linear":
        args = {"in_features": sympy.Integer(width), "out_features": sympy.Integer(out), "bias": True}
        return Node(i, "layer", name, (src,), (2, out), _span(i), kind, args, ("in_features", "out_features"))
    return Node(i, "layer", name, (src,), (2, width), _span(i), kind, {}, ())


@st.composite
def merge_graphs(draw):
    """A random DAG of inputs, layers and merges; every value is [2, width]."""
    n_inputs = draw(st.integers(1, 2))
    nodes = [Node(i, "input", "xy"[i], (), (2, 3), _span(i)) for i in range(n_inputs)]
    widths = [3] * n_inputs
    counts = {}
    for i in range(n_inputs, n_inputs + draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["layer", "layer", "add", "mul", "cat"]))
        first = draw(st.integers(max(0, i - 3), i - 1)) if draw(st.booleans()) else draw(st.integers(0, i - 1))
        if op == "layer":
            kind = draw(st.sampled_from(["Linear", "Tanh", "ReLU"]))
            short = REGISTRY[kind].short
            counts[short] = counts.get(short, 0) + 1
            out = draw(st.integers(2, 4)) if kind == "Linear" else None
            nodes.append(_layer_node(i, kind, f"{short}{counts[short]}", first, widths[first], out))
            widths.append(out or widths[first])
            continue
        same = [j for j in range(i) if widths[j] == widths[first]]
        others = draw(st.lists(st.sampled_from(same), min_size=1, max_size=2))
        ins = (first, *others)
        if op == "cat":
            nodes.append(Node(i, "cat", f"cat{i}", ins, (2, widths[first] * len(ins)), _span(i), args={"dim": -1}))
            widths.append(widths[first] * len(ins))
        else:
            nodes.append(Node(i, op, f"{op}{i}", ins, (2, widths[first]), _span(i)))
            widths.append(widths[first])
    last = len(nodes) - 1
    outputs = [last] + ([draw(st.integers(0, last - 1))] if draw(st.booleans()) else [])
    return Graph(tuple(nodes), tuple(dict.fromkeys(outputs)))


def interpret(graph: Graph, modules: nn.Module, xs):
    """The graph's meaning, computed node by node (the reference for generated forwards)."""
    values = dict(zip((n.id for n in graph.inputs), xs, strict=True))
    for node in graph.nodes:
        ins = [values[i] for i in node.inputs]
        if node.op == "layer":
            values[node.id] = getattr(modules, node.name)(*ins)
        elif node.op == "add":
            values[node.id] = sum(ins[1:], ins[0])
        elif node.op == "mul":
            values[node.id] = ins[0] * ins[1] if len(ins) == 2 else ins[0] * ins[1] * ins[2]
        elif node.op == "cat":
            values[node.id] = torch.cat(ins, dim=node.args["dim"])
    out = [values[i] for i in graph.outputs]
    return out[0] if len(out) == 1 else tuple(out)


@given(merge_graphs(), st.integers(0, 2**16))
@PROPERTY
def test_merge_graphs_generate_correct_forwards(graph, seed):
    source = write(Model("Dag", "dag.plan", graph, ()))
    model = module_class(source)()
    reference = make_tree(graph, "Dag")  # same submodules, same names
    model.load_state_dict(reference.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(2, 3, generator=gen) for _ in graph.inputs]
    with torch.no_grad():
        assert same_outputs(model(*xs), interpret(graph, reference, xs)), source
    if RUFF and seed % 4 == 0:
        assert not ruff_problems(source), ruff_problems(source) + "\n" + source


def forward_of(source: str) -> list[str]:
    """The plan class's forward, less its input checks (tests/test_codegen_checks.py tests those)."""
    lines = source.splitlines()
    start = lines.index("    def forward(self, x):") if "    def forward(self, x):" in lines else None
    start = start if start is not None else next(i for i, s in enumerate(lines) if "def forward(" in s)
    plan_class = [c for c in ast.parse(source).body if isinstance(c, ast.ClassDef)][-1]
    forward = next(f for f in plan_class.body if isinstance(f, ast.FunctionDef) and f.name == "forward")
    checks = {i for stmt in forward.body if isinstance(stmt, ast.If) and isinstance(stmt.body[0], ast.Raise)
              or isinstance(stmt, ast.Expr) and ast.unparse(stmt).startswith("check_inputs(")
              for i in range(stmt.lineno - 1, stmt.end_lineno)}
    return [s.strip() for i, s in enumerate(lines[start:], start) if i not in checks]


def test_residual_forward_reads_like_handwritten_code():
    nodes = [
        Node(0, "input", "x", (), (2, 3), _span(0)),
        _layer_node(1, "Linear", "linear1", 0, 3, 3),
        _layer_node(2, "ReLU", "relu1", 1, 3),
        _layer_node(3, "Linear", "linear2", 2, 3, 3),
        Node(4, "add", "add1", (3, 0), (2, 3), _span(4)),
        _layer_node(5, "ReLU", "relu2", 4, 3),
    ]
    source = write(Model("Residual", "res.plan", Graph(tuple(nodes), (5,)), ()))
    assert forward_of(source) == [
        "def forward(self, x):",
        "# x: [2, 3]  res.plan:1",
        "out = self.linear1(x)  # [2, 3]  res.plan:2",
        "out = self.relu1(out)  # [2, 3]  res.plan:3",
        "out = self.linear2(out)  # [2, 3]  res.plan:4",
        "out = out + x  # [2, 3]  res.plan:5",
        "out = self.relu2(out)  # [2, 3]  res.plan:6",
        "return out",
    ]
    if RUFF:
        assert not ruff_problems(source), ruff_problems(source)


def test_branches_and_outputs_get_their_own_names():
    nodes = [
        Node(0, "input", "x", (), (2, 3), _span(0)),
        Node(1, "input", "y", (), (2, 3), _span(1)),
        _layer_node(2, "Tanh", "tanh1", 0, 3),
        _layer_node(3, "ReLU", "relu1", 1, 3),
        Node(4, "cat", "cat1", (2, 3), (2, 6), _span(4), args={"dim": 1}),
        Node(5, "mul", "mul1", (2, 2), (2, 3), _span(5)),
    ]
    source = write(Model("Two", "two.plan", Graph(tuple(nodes), (4, 5)), ()))
    assert forward_of(source) == [
        "def forward(self, x, y):",
        "# x: [2, 3]  two.plan:1",
        "# y: [2, 3]  two.plan:2",
        "tanh1 = self.tanh1(x)  # [2, 3]  two.plan:3",
        "y = self.relu1(y)  # [2, 3]  two.plan:4",  # read once, by the next line: a chain
        "cat1 = torch.cat([tanh1, y], dim=1)  # [2, 6]  two.plan:5",
        "mul1 = tanh1 * tanh1  # [2, 3]  two.plan:6",
        "return cat1, mul1",
    ]
    assert "import torch\n" in source


def test_unknown_op_is_a_plan_error():
    nodes = (Node(0, "input", "x", (), (2, 3), _span(0)), Node(1, "frobnicate", "f1", (0,), (2, 3), _span(1)))
    with pytest.raises(PlanError, match=r"E600.*no code for the operation 'frobnicate'"):
        write(Model("Bad", "bad.plan", Graph(nodes, (1,)), (), filename="bad.plan"))


# -- layer arguments match torch's signatures ------------------------------------------------


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_positional_arguments_follow_torch_signature(kind):
    """Generated calls pass the leading required arguments by position: their order must be torch's."""
    spec = REGISTRY[kind]
    required = {a.name for a in spec.args if a.default is REQUIRED} | {spec.inferred}
    order = spec.torch_order()
    leading = list(itertools.takewhile(lambda n: n in required, order))
    if spec.module == "torch.nn":
        cls = getattr(nn, spec.name)
    else:  # torchvision's kinds: convplan's copy, whose signature is torchvision's
        from convplan import modules

        cls = getattr(modules, spec.name)
    skip = ("self",)
    if spec.compose is not None:  # torch's stack(layer(d_model, nhead, ...), num_layers): those by position
        assert list(inspect.signature(getattr(nn, f"{kind}Layer")).parameters)[:2] == ["d_model", "nhead"]
        assert list(inspect.signature(cls).parameters)[1] == "num_layers"
        return
    if spec.name in ("RNN", "LSTM", "GRU"):  # their __init__ is (*args, **kwargs), passed on to RNNBase's after `mode`
        cls, skip = nn.RNNBase, ("self", "mode")
    torch_params = [p for p in inspect.signature(cls).parameters if p not in skip]
    assert torch_params[: len(leading)] == leading


# -- printing ------------------------------------------------------------------------------

L, H = dim("L"), dim("H")


@st.composite
def int_exprs(draw, depth=3):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([L, H, sympy.Integer(draw(st.integers(-5, 9)))]))
    a, b = draw(int_exprs(depth - 1)), draw(int_exprs(depth - 1))
    op = draw(st.sampled_from(["+", "-", "*", "//", "%", "neg", "pow", "max"]))
    k = draw(st.integers(1, 5))
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "//": lambda: floordiv(a, k),
            "%": lambda: mod(a, k), "neg": lambda: -a, "pow": lambda: a**2, "max": lambda: sympy.Max(a, b)}[op]()


@given(int_exprs(), st.integers(1, 40), st.integers(1, 40))
@settings(max_examples=200, deadline=None)
def test_printed_expressions_evaluate_like_sympy(e, lv, hv):
    text = Printer({"L": "L", "H": "H"})(e)
    value = eval(compile(text, "<expr>", "eval"), {"max": max}, {"L": lv, "H": hv})  # noqa: S307 - our printer's output
    assert value == evaluate(e, {"L": lv, "H": hv}), text


@pytest.mark.skipif(RUFF is None, reason="ruff is not on PATH")
def test_printed_expressions_are_ruff_formatted():
    rng = random.Random(7)
    exprs = [_random_expr(rng, 3) for _ in range(300)]
    source = "".join(f"v{i} = {Printer({'L': 'L', 'H': 'H'})(e)}\n" for i, e in enumerate(exprs))
    fmt = subprocess.run([RUFF, "format", "--isolated", "-"], input=source, capture_output=True, text=True)
    assert fmt.stdout == source, "".join(_diff(source, fmt.stdout))


@pytest.mark.skipif(RUFF is None, reason="ruff is not on PATH")
@pytest.mark.parametrize("width", [32, 40, 60])
def test_layout_splits_long_lines_as_ruff_does(width):
    """Assignments, calls with (keyword) arguments and conditions, at narrow widths."""
    rng = random.Random(width)
    p = Printer({"L": "L", "H": "H"})
    lines = []
    for i in range(150):
        e, f = _random_expr(rng, 4), _random_expr(rng, 3)
        lines += layout(f"v{i} = ", p.doc(e), "", 0, width)
        conv = Brackets("nn.Conv2d", (p.doc(f), "3", Pre("padding=", p.doc(e))))
        lines += layout(f"self.layer{i} = ", conv, "", 0, width)
        lines += layout("if ", p.negation(sympy.Ge(e, f, evaluate=False)), ":", 0, width) + ["    pass"]
        lines += layout(f"out{i} = ", Ops((f"a{i}", f"b{i}", "c"), ("+", "+")), "", 0, width)
    source = "\n".join(lines) + "\n"
    fmt = subprocess.run([RUFF, "format", "--isolated", "--line-length", str(width), "-"], input=source,
                         capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stderr
    assert fmt.stdout == source, "".join(_diff(source, fmt.stdout))


@given(int_exprs())
@settings(max_examples=200, deadline=None)
def test_expression_docs_read_like_the_flat_text(e):
    p = Printer({"L": "L", "H": "H"})
    assert flat(p.doc(e)) == p(e)


def _random_expr(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.25:
        return rng.choice([L, H, sympy.Integer(rng.randint(-5, 9))])
    a, b, k = _random_expr(rng, depth - 1), _random_expr(rng, depth - 1), rng.randint(1, 5)
    return rng.choice([lambda: a + b, lambda: a - b, lambda: a * b, lambda: floordiv(a, k), lambda: mod(a, k),
                       lambda: -a, lambda: a**2, lambda: sympy.Max(a, b)])()


def test_conditions_print_and_negate():
    p = Printer({"L": "L", "H": "H"})
    cond = sympy.Eq(mod(L, 2), 0, evaluate=False)
    assert p(cond) == "L % 2 == 0"
    assert flat(p.negation(cond)) == "L % 2 != 0"
    assert flat(p.negation(sympy.Ge(L, 2))) == "L < 2"
    assert flat(p.negation(sympy.And(sympy.Ge(L, 2), sympy.Ge(H, 3)))) == "not (H >= 3 and L >= 2)"
    with pytest.raises(ValueError, match="integer"):
        p(L / 2)


@given(st.text(max_size=20))
def test_string_literals_round_trip(s):
    lit = str_literal(s)
    assert ast.literal_eval(lit) == s
    assert lit.startswith('"') or s.count('"') > s.count("'")


def test_float_literals():
    assert [float_literal(v) for v in (1e-05, 0.5, -2.0)] == ["1e-05", "0.5", "-2.0"]
    for v in (float("inf"), float("-inf")):
        assert eval(float_literal(v)) == v  # noqa: S307 - our literal printer's output
    assert float_literal(float("nan")) == 'float("nan")'


def test_namespace_makes_legal_unique_names():
    ns = Namespace(["self"])
    bases = ["x", "x", "if", "list", "__init__", "self", "9lives", "a-b", "é", "_", "match", "__L"]
    got = [ns.create(n) for n in bases]
    assert got == ["x", "x_1", "if_1", "list_1", "_init__", "self_1", "_9lives", "a_b", "v", "v_1", "match_1", "_L"]
    assert len(set(got)) == len(got) and all(g.isidentifier() for g in got)


# -- the command line ----------------------------------------------------------------------


CNN1D = str(ROOT / "examples" / "cnn1d.plan")


def test_cli_codegen_writes_a_module(tmp_path, capsys):
    assert cli.main(["codegen", CNN1D, "--set", "L=20"]) == 0
    printed = capsys.readouterr().out
    assert printed == convplan.load(CNN1D).to_source(L=20)
    out = tmp_path / "cnn.py"
    assert cli.main(["codegen", CNN1D, "-o", str(out), "--set", "L=20"]) == 0
    assert out.read_text() == printed


def test_cli_codegen_refuses_bad_sizes(capsys):
    assert cli.main(["codegen", CNN1D, "--set", "L=1"]) == 1
    assert "E401" in capsys.readouterr().err
    assert cli.main(["codegen", CNN1D, "--set", "Q=3"]) == 1
    assert "E400" in capsys.readouterr().err


def test_cli_codegen_does_not_import_torch():
    code = ("import sys, convplan.cli\nrc = convplan.cli.main(['codegen', 'examples/cnn1d.plan'])\n"
            "assert rc == 0\nassert not [m for m in sys.modules if m.split('.')[0] == 'torch']\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
