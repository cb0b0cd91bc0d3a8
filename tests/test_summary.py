"""`convplan summary` and `Plan.summary`: the table against the built module (every submodule a row, its
parameter and buffer counts and its output shape from a forward hook, as torchinfo finds them), against the
other analyses' own numbers (cost, memory, receptive field, whose own tests hold them to torch), and a golden
output for one example, read line by line when written."""

from __future__ import annotations

import json
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

import convplan
from convplan import cli
from convplan.build import BlockModule, example_inputs
from convplan.graph import Module
from convplan.summary import bytes_, count, scaled

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))


GOLDEN = ROOT / "tests" / "golden" / "summary"


def _leaves(unpack: tuple) -> list[int]:
    return [x for item in unpack for x in (_leaves(item) if isinstance(item, tuple) else (item,))]


def _sizes(plan, step: int = 0) -> dict:
    base = plan.smallest_sizes()
    sizes = {k: v + step if k in ("H", "W", "L", "D") else 2 if k == "N" else v for k, v in base.items()}
    return sizes if plan.satisfied(sizes) else base


def _shapes(out) -> tuple:
    """A tensor's shape; a call's several outputs: their shapes, nested as torch's tuple."""
    if out is None:  # MultiheadAttention's weights where need_weights=False (inside TransformerEncoderLayer)
        return None
    return tuple(out.shape) if isinstance(out, torch.Tensor) else tuple(_shapes(o) for o in out)


def _hooked(bound):
    """(module, the output shapes of every submodule called, by dotted path, every node's value by id, the
    bytes of the distinct storages the forward makes) of one eval run."""
    module = bound.build().eval()
    shapes = {}

    def hook(path):
        def record(sub, args, out):
            shapes[path] = _shapes(out)  # returns None: the output stays as it is
        return record

    for path, sub in module.named_modules():
        if path:
            sub.register_forward_hook(hook(path))
    inputs = example_inputs(bound.graph, bound.sizes)  # indices where an Embedding reads them
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        module(*inputs)  # the forward: it calls each layer and block, and indexes each numbered container
        values = module.run(*inputs)  # every node's value
    given = {t.untyped_storage().data_ptr() for t in [*inputs, *module.parameters()]}
    created = {v.untyped_storage().data_ptr(): v.untyped_storage().nbytes() for value in values.values()
               for v in _tensors(value) if v.untyped_storage().data_ptr() not in given}
    return module, shapes, values, sum(created.values())


def _tree(module) -> set[str]:
    """Every submodule's path down to the layers: a layer's own submodules (TransformerEncoderLayer's
    self_attn, linear1, ...) are torch's, inside the layer's row."""
    containers = {name for name, sub in module.named_modules() if isinstance(sub, (BlockModule, torch.nn.Sequential))}
    return {name for name, _ in module.named_modules() if name and name.rpartition(".")[0] in containers}


def _tensors(value) -> list:
    return [value] if isinstance(value, torch.Tensor) else [t for v in value for t in _tensors(v)]


def _last_made(plan, path: str) -> int:
    """The id of the last node a numbered container's statements made (its prefix names them)."""
    [container] = [m for m in plan.graph.tree if isinstance(m, Module) and ".".join(m.path) == path]
    return max(n.id for n in plan.graph.nodes if n.name.startswith(container.prefix) and n.op != "item")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_submodule_is_a_row_with_the_module_counts_and_shapes(path):
    plan = convplan.load(path)
    for step in (0, 5):
        _check_against_the_module(plan, _sizes(plan, step))


# Every new kind of row at once: functions in numbered containers (one ends with a permute), a learnable tensor
# in a block, a layer of several tensors and several outputs (MultiheadAttention), a function with several
# outputs (chunk), a container that ends with LSTM (what calling it would give: the whole tuple), and one that
# ends with a block whose output is not the last tensor it makes.
MIXED = """
block Early:
    input [N, L, E]
    a = Linear(E)
    Linear(2 * E)
    output a

block Attend(heads):
    input x [N, L, E]
    gain = Parameter((E,), init='ones')
    out, w = MultiheadAttention(x, x, x, heads, batch_first=True)
    out
    mul(gain)

plan Mixed(hidden=16):
    input x [N, L, 8]
    enc = sequential:
        Linear(hidden)
        permute(0, 2, 1)
        Conv1d(hidden, 3, padding=1)
        permute(0, 2, 1)
    att = repeat 2:
        Attend(4)
    a, b = chunk(2, dim=2)
    rnn = sequential:
        Linear(hidden)
        frames, (h, c) = LSTM(8, batch_first=True)
    cat(frames, b, dim=2)
    tail = sequential:
        Linear(hidden)
        Early()
    Linear(3)
"""


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 3), length=st.integers(1, 12))
def test_every_new_kind_of_row_against_the_module(n, length):
    _check_against_the_module(convplan.parse(MIXED), {"N": n, "L": length})


def test_several_outputs_show_every_shape():
    table = convplan.parse(MIXED).summary(N=2, L=5)
    rows = {r.path or r.name: r for r in table.rows}
    assert rows["rnn.1"].output == ((2, 5, 8), ((1, 2, 8), (1, 2, 8))) == rows["rnn"].output
    assert rows["att.0.out"].output == ((2, 5, 16), (2, 5, 5))  # named by its first target, `out`
    assert rows["enc"].output == (2, 5, 16)  # its last statement, the permute back: not its Conv1d's [2, 16, 5]
    assert rows["tail"].output == (2, 5, 16) and rows["tail.1.linear1"].output == (2, 5, 32)  # Early gives `a`
    lines = str(table).splitlines()
    assert any(line.split()[:2] == ["1", "LSTM"] and "[2, 5, 8], ([1, 2, 8], [1, 2, 8])" in line for line in lines)
    assert any(line.split()[:2] == ["a", "chunk"] and "[2, 5, 8], [2, 5, 8]" in line for line in lines)
    [lstm] = [r for r in table.to_dict()["rows"] if r["path"] == "rnn.1"]
    assert lstm["output"] == [[2, 5, 8], [[1, 2, 8], [1, 2, 8]]]


def _check_against_the_module(plan, sizes: dict) -> None:
    """The summary at `sizes` against the built module: a row per submodule with its parameter and buffer counts
    and the shapes its forward hook sees, every row's shapes the forward's values, the activations the distinct
    storages the forward makes."""
    table = plan.summary(**sizes)
    bound = plan.bind(**sizes)
    module, shapes, values, created = _hooked(bound)
    rows = {r.path: r for r in table.rows if r.path}
    assert set(rows) == _tree(module)  # the module tree, all of it down to the layers
    for name, row in rows.items():
        sub = module.get_submodule(name)
        assert row.params == sum(p.numel() for p in sub.parameters()), name
        assert row.buffers == sum(b.numel() for b in sub.buffers()), name
        called = name
        while called not in shapes:  # a numbered container: the forward indexes it, calling its last module
            assert isinstance(module.get_submodule(called), torch.nn.Sequential), name
            called = f"{called}.{len(module.get_submodule(called)) - 1}"
        last = bound.graph.nodes[_last_made(bound, name)] if called != name else None
        where = tuple(called.split("."))
        if last is None or (last.module_path if last.op == "layer" else last.owner)[:len(where)] == where:
            assert row.output == shapes[called], (name, sizes)  # the container ends with that module
        else:  # a container that ends with a function (`permute`): its value in the forward
            assert row.output == _shapes(values[last.id]), (name, sizes)
    nodes = {n.name: n for n in bound.graph.nodes}
    for row in table.rows:  # every row: the value the forward computes (all of a call's outputs)
        node = nodes[row.node]
        assert row.output == (_nest(node.unpack, values) if node.unpack else _shapes(values[node.id])), row.name
    total = table.totals
    assert total["params"] == sum(p.numel() for p in module.parameters())
    assert total["buffers"] == sum(b.numel() for b in module.buffers())
    assert total["activations"] == created  # the distinct storages: a view makes none




def _nest(unpack: tuple, values: dict) -> tuple:
    return tuple(_nest(i, values) if isinstance(i, tuple) else _shapes(values[i]) for i in unpack)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_rows_add_up_to_the_other_analyses(path):
    """Symbolic: each node's row is the node's cost, bytes and field; the totals are the analyses' totals; a
    submodule's row is the sum of the rows inside it."""
    plan = convplan.load(path)
    table = plan.summary()
    cost, memory, fields = plan.cost(), plan.memory(), plan.receptive_field()
    items = {i for node in plan.graph.nodes for i in _leaves(node.unpack)[1:]}
    for node in plan.graph.nodes:
        if node.id in items:  # one of several outputs: in the row of its call
            assert not [r for r in table.rows if r.node == node.name]
            continue
        path = ".".join(node.path) if node.op == "layer" else ""
        [row] = [r for r in table.rows if r.node == node.name and r.path == path]
        assert row.cost == cost.by_layer.get(node.name)
        made = [node.id, *_leaves(node.unpack)[1:]]
        assert row.activations == sum(memory.by_layer.get(plan.graph.nodes[i].name, 0) for i in made)
        assert row.field == (() if node.op == "param" else fields[node.name])  # a weight reads no position
        assert row.params == node.params
    assert sympy.expand(table.totals["cost"] - cost.total) == 0
    assert sympy.expand(table.totals["activations"] - memory.activations) == 0
    assert sympy.expand(table.totals["params"] - plan.total_params) == 0
    for k, row in enumerate(table.rows):  # a submodule: the sums of the rows one level inside it
        if not row.path or row.path == ".".join(plan.node(row.node).path):  # a node's own row
            continue
        inside = []
        for later in table.rows[k + 1:]:
            if later.depth <= row.depth:
                break
            if later.depth == row.depth + 1:
                inside.append(later)
        assert sympy.expand(row.params - sum(r.params for r in inside)) == 0, row.path
        counted = [r.cost for r in inside if r.cost is not None]
        assert row.cost is None if not counted else sympy.expand(row.cost - sum(counted)) == 0, row.path


@pytest.mark.parametrize("size", [64, 97])
def test_the_flopcounter_column_is_what_flop_counter_mode_counts(size):
    plan = convplan.load(ROOT / "examples" / "resnet18.plan")
    table = plan.summary(convention="flopcounter", N=2, H=size, W=size)
    module = plan.build(N=2, H=size, W=size).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.randn(2, 3, size, size))
    assert table.totals["cost"] == counter.get_total_flops()
    per_module = counter.get_flop_counts()
    checked = 0
    for row in table.rows:
        if row.path and not isinstance(module.get_submodule(row.path), torch.nn.Sequential):  # indexed, not called
            counted = per_module.get(f"{type(module).__name__}.{row.path}", {})
            assert (row.cost or 0) == sum(counted.values()), row.path
            checked += row.cost is not None
    assert checked == 20 + 8 + 1  # the 20 convolutions (3 in downsamples), the 8 blocks, the Linear


def test_numbers_read_with_separators_and_units():
    assert count(sympy.Integer(11689512)) == "11,689,512"
    assert scaled(sympy.Integer(1814073344)) == "1.81 G"
    assert scaled(sympy.Integer(999)) == "999"
    assert scaled(sympy.Integer(5120)) == "5.12 K"
    assert bytes_(sympy.Integer(3211264)) == "3.21 MB"
    assert bytes_(sympy.Integer(16)) == "16 B"
    n = sympy.Symbol("N", integer=True, positive=True)
    assert scaled(4 * n) == "4*N" and count(4 * n) == "4*N"


def test_golden_resnet18_at_224(capsys, update_goldens, monkeypatch):
    """Reviewed line by line: conv1 9408 * 112 * 112 = 118,013,952 MACs, 64 * 112 * 112 * 4 = 3,211,264 bytes;
    each BatchNorm 2C + 1 buffers; the fields 7, 11, 19, ..., 435 (ResNet-18's published one); 11,689,512
    params and 1,814,073,344 MACs as torchvision's."""
    monkeypatch.chdir(ROOT)
    code = cli.main(["summary", "examples/resnet18.plan", "--set", "N=1", "--set", "H=224", "--set", "W=224"])
    out = capsys.readouterr().out
    assert code == 0
    golden = GOLDEN / "resnet18_224.txt"
    if update_goldens:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(out)
    assert out == golden.read_text()


def test_json_has_numbers_as_numbers_and_formulas_as_text(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["summary", "examples/cnn1d.plan", "--json"]) == 0
    symbolic = json.loads(capsys.readouterr().out)
    assert cli.main(["summary", "examples/cnn1d.plan", "--json", "--set", "N=2", "--set", "L=20",
                     "--convention", "fvcore"]) == 0
    numeric = json.loads(capsys.readouterr().out)
    conv = next(r for r in symbolic["rows"] if r["kind"] == "Conv1d")
    assert conv["output"] == ["N", 32, "L"] and conv["params"] == 128 and conv["macs"] == "96*L*N"
    assert conv["receptive_field"] == [{"size": 3, "jump": 1, "start": -1}]
    assert symbolic["totals"]["params"] == "64*(L//2) + 130" and numeric["totals"]["params"] == 770
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    assert numeric["totals"]["fvcore"] == plan.cost("fvcore").at(N=2, L=20)
    memory = plan.memory()
    assert numeric["totals"]["activations"] == memory.at(memory.activations, N=2, L=20)
    assert all(isinstance(r["activations"], int) for r in numeric["rows"])
    assert numeric["sizes"] == {"N": 2, "L": 20} and numeric["convention"] == "fvcore"


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.cell = [], False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.cell = True

    def handle_endtag(self, tag):
        self.cell = self.cell and tag not in ("td", "th")

    def handle_data(self, data):
        if self.cell:
            self.rows[-1][-1] += data


def test_html_shows_the_same_cells_and_a_plan_shows_it_in_a_notebook():
    plan = convplan.load(ROOT / "examples" / "inception.plan")
    table = plan.summary(N=1, H=96, W=96)
    seen = _Cells()
    seen.feed(table._repr_html_())
    assert [tuple(r) for r in seen.rows] == table.cells()
    shown = plan._repr_html_()
    assert shown.startswith(plan.summary()._repr_html_())
    if plan._repr_svg_() is not None:  # Graphviz installed: the drawing goes with it, folded
        assert "<details><summary>graph</summary><svg" in shown
    assert str(table).splitlines()[0].startswith("plan MiniGoogLeNet at N=1, H=96, W=96  (")
    partial = convplan.analyse("plan P:\n    input [N, 3, L]\n    Conv1d(4, 5)\n    Nope()\n").plan
    assert partial._repr_html_() is None  # a partial plan: the notebook shows its SVG or text


def test_block_rows_sum_what_they_hold_and_name_merges_within_the_block():
    plan = convplan.load(ROOT / "examples" / "resnet18.plan")
    rows = plan.summary(N=1, H=64, W=64).rows
    block = next(r for r in rows if r.path == "layer2.0")
    assert block.kind == "BasicBlock" and block.depth == 1
    after = rows[rows.index(block) + 1:]
    inside = after[:next(k for k, r in enumerate(after) if r.depth <= block.depth)]
    names = [r.name for r in inside if r.depth == 2]
    assert names == ["conv1", "bn1", "relu", "conv2", "bn2", "downsample", "add1", "relu1"]
    assert block.field == next(r for r in rows if r.path == "layer2.0.relu1").field


def test_the_total_is_the_conventions_own_total():
    """ptflops rounds its sum (`int()` of it): the table's total is the convention's, every convention."""
    from convplan.cost import CONVENTIONS

    plan = convplan.parse("plan P:\n    input x [N, 8]\n    flatten(0)\n    Linear(3)\n")  # ptflops: (24N + 3)/N
    for convention in CONVENTIONS:
        for n in (1, 2, 4):
            table = plan.summary(convention=convention, N=n)
            assert table.totals["cost"] == plan.cost(convention).at(N=n), convention
    assert plan.summary(convention="ptflops", N=2).totals["cost"] == 25  # int(51 / 2)


def test_sizes_named_like_an_argument_are_given_in_a_mapping(tmp_path, capsys):
    """A symbol may be called `convention`, `dtype`, `start`, `memory_budget` or `sizes`: such a size is given in
    `sizes=` and the method's own argument positionally; a keyword that could mean either is refused."""
    plan = convplan.parse("plan P:\n    input [N, dtype, convention]\n    Conv1d(4, 3)\n")
    sizes = {"N": 2, "dtype": 3, "convention": 10}
    table = plan.summary("fvcore", "float16", sizes=sizes)
    assert table.convention == "fvcore" and table.dtype == "float16" and table.sizes == sizes
    module = plan.build(**sizes)
    assert table.totals["params"] == sum(p.numel() for p in module.parameters()) == 4 * 3 * 3 + 4
    assert table.totals["activations"] == 2 * 2 * 4 * 8  # float16: the conv's [2, 4, 8]
    assert table.rows == plan.bind(**sizes).summary("fvcore", "float16").rows
    for keyword in ({"dtype": 3}, {"convention": "macs"}):
        with pytest.raises(TypeError, match=r"could mean either.*plan.summary\('macs', 'float32', sizes="):
            plan.summary(**keyword)
    with pytest.raises(TypeError, match="mapping of size names"):
        plan.summary(sizes=3)
    with pytest.raises(TypeError, match="given twice"):
        plan.summary(sizes={"N": 1}, N=2)
    other = convplan.parse("plan P:\n    input [N, 2, L]\n    Conv1d(4, 3)\n")  # no collision: keywords as before
    assert other.summary(convention="fvcore", dtype="float16", N=1, L=5).totals == \
        other.summary("fvcore", "float16", sizes={"N": 1, "L": 5}).totals
    called = convplan.parse("plan P:\n    input [N, 2, sizes]\n    Conv1d(4, 3)\n")
    assert called.summary(sizes={"N": 1, "sizes": 5}).rows[-1].output == (1, 4, 3)
    with pytest.raises(TypeError, match="has a size called 'sizes'"):
        called.summary(sizes=5)

    named = convplan.parse("plan P:\n    input [N, start, memory_budget]\n    Conv1d(4, 3)\n")
    assert named.smallest_sizes(2, sizes={"start": 5}) == {"N": 2, "start": 5, "memory_budget": 3}
    with pytest.raises(TypeError, match="could mean either"):
        named.smallest_sizes(start=2)
    with pytest.raises(TypeError, match="could mean either"):
        named.verify(memory_budget=0)
    report = named.verify(0, sizes={"N": 1, "start": 2, "memory_budget": 5})
    assert report.runs[0].sizes == {"N": 1, "start": 2, "memory_budget": 5} and report.runs[0].device == "meta"
    assert convplan.parse("plan P:\n    input [N, 2, L]\n    Conv1d(4, 3)\n").smallest_sizes(start=4)["L"] == 4

    expr = convplan.parse("plan P:\n    input [N, 2, expr]\n    Conv1d(4, 3)\n").memory()
    assert expr.at(expr.activations, N=1, expr=5) == 4 * 4 * 3

    path = tmp_path / "named.plan"
    path.write_text("plan P:\n    input [N, dtype, convention]\n    Conv1d(4, 3)\n", encoding="utf-8")
    assert cli.main(["summary", str(path), "--json", "--dtype", "float16", "--set", "N=2", "--set", "dtype=3",
                     "--set", "convention=10"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["dtype"] == "float16" and shown["totals"]["params"] == 40 and shown["totals"]["activations"] == 128
