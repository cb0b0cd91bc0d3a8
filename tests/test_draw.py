"""`convplan draw` and `Plan._repr_svg_`: the picture holds every node, every block call as a cluster, and
every edge labelled with the shape that flows along it; under --set those numbers are torch's."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan import cli
from convplan.show import show_shape

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.plan"))
SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(svg: str) -> dict:
    """What a reader sees in the picture: node id -> its text lines, (from, to) -> edge label, cluster labels."""
    root = ET.fromstring(svg)  # it parses, or this raises
    nodes, edges, clusters = {}, {}, []
    for g in root.iter(f"{SVG}g"):
        title = g.findtext(f"{SVG}title")
        texts = [t.text.strip() for t in g.iter(f"{SVG}text") if t.text]
        if g.get("class") == "node":
            nodes[title] = texts
        elif g.get("class") == "edge":
            a, b = title.split("->")
            edges[(a, b)] = texts[0] if texts else None
        elif g.get("class") == "cluster":
            clusters.append(texts[0])
    return {"nodes": nodes, "edges": edges, "clusters": clusters}


def block_calls(plan) -> set:
    return {prefix for node in plan.graph.nodes for prefix, _ in node.scope}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_renders_to_svg_with_every_node_edge_shape_and_block(path, tmp_path):
    out = tmp_path / "g.svg"
    assert cli.main(["draw", str(path), "-o", str(out)]) == 0
    seen = parse_svg(out.read_text())
    plan = convplan.load(path)
    graph = plan.graph
    assert len(seen["nodes"]) == len(graph.nodes) + len(graph.outputs)
    for node in graph.nodes:
        text = seen["nodes"][f"n{node.id}"]
        if node.op == "input":
            assert text == [f"input {node.name}"]
        else:  # its name in its block call's cluster (the cluster's label says which call), and its call
            assert node.name == "_".join([node.scope[-1][0], text[0]] if node.scope else [text[0]])
            assert text[1] == node.op or text[1].startswith(f"{node.kind or node.op}(")
        for source in node.inputs:  # every edge, merges' operands included, with its shape
            assert seen["edges"][(f"n{source}", f"n{node.id}")] == show_shape(graph.nodes[source].shape)
    # (one edge per source and reader: self-attention reads one tensor as query, key and value)
    assert len(seen["edges"]) == len({(i, node.id) for node in graph.nodes for i in node.inputs}) + len(graph.outputs)
    for k, out_id in enumerate(graph.outputs):
        assert seen["edges"][(f"n{out_id}", f"out{k}")] == show_shape(graph.nodes[out_id].shape)
        assert seen["nodes"][f"out{k}"] == [f"output {graph.nodes[out_id].name}"]
    assert len(seen["clusters"]) == len(block_calls(plan))


def test_blocks_are_nested_clusters_and_merges_stand_out():
    plan = convplan.load(ROOT / "examples" / "resnet18.plan")
    dot = plan.draw().source
    # layer1 = repeat ...: holds its two BasicBlocks (an nn.Sequential); each block a cluster inside it
    stage = dot.index("subgraph cluster_layer1 {")
    inner = dot.index("subgraph cluster_layer1_basicblock1 {")
    assert stage < inner < dot.index("subgraph cluster_layer2 {")
    assert re.search(r'label="basicblock1: BasicBlock"', dot) and re.search(r'label="layer1: Sequential"', dot)
    adds = [n for n in plan.graph.nodes if n.op == "add"]
    assert len(adds) == 8  # one residual per BasicBlock
    for node in adds:
        assert re.search(rf"\bn{node.id} \[[^\]]*shape=hexagon", dot)
    branchy = convplan.load(ROOT / "examples" / "inception.plan")
    cats = [n for n in branchy.graph.nodes if n.op == "cat"]
    assert cats and all(len(n.inputs) == 4 for n in cats)  # four branches meet, four edges in
    seen = parse_svg(branchy._repr_svg_())
    fan_out = [a for a, _ in seen["edges"] if sum(1 for e in seen["edges"] if e[0] == a) == 4]
    assert len(set(fan_out)) == len(cats)  # each Inception's input feeds its four branches


def _torch_shapes(bound, sizes):
    """Every node's output shape from the real module on `meta` (torch is the oracle)."""
    import torch

    from convplan.build import build_module
    from convplan.shapes import evaluate

    with torch.device("meta"):
        module = build_module(bound).eval()
        inputs = [torch.empty(*(int(evaluate(d, sizes)) for d in node.shape)) for node in bound.graph.inputs]
    seen = module.run(*inputs)
    return {i: list(t.shape) for i, t in seen.items()}


def _check_numbers_are_torchs(path, sizes):
    plan = convplan.load(path)
    sizes = {**plan.smallest_sizes(), **sizes}
    bound = plan.bind(**sizes)
    seen = parse_svg(bound._repr_svg_())
    real = _torch_shapes(bound, sizes)
    for node in bound.graph.nodes:
        for source in node.inputs:
            label = seen["edges"][(f"n{source}", f"n{node.id}")]
            assert label == str(real.get(source, [int(d) for d in bound.graph.nodes[source].shape])), (node.name, sizes)
    for k, out_id in enumerate(bound.graph.outputs):
        assert seen["edges"][(f"n{out_id}", f"out{k}")] == str(real[out_id])


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 4), h=st.integers(1, 12), w=st.integers(1, 12))
def test_edge_numbers_under_set_are_torchs_unet(n, h, w):
    _check_numbers_are_torchs(ROOT / "examples" / "unet.plan", {"N": n, "H": 16 * h, "W": 16 * w})


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(32, 300), w=st.integers(32, 300),
       path=st.sampled_from(["resnet18.plan", "inception.plan", "mobilenet_se.plan", "cnn1d.plan", "two_tower.plan"]))
def test_edge_numbers_under_set_are_torchs(n, h, w, path):
    plan = convplan.load(ROOT / "examples" / path)
    sizes = {k: v for k, v in {"N": n, "H": h, "W": w, "L": h}.items() if k in plan.symbols}
    _check_numbers_are_torchs(ROOT / "examples" / path, sizes)


def test_set_gives_numbers_and_the_title_says_which(tmp_path, capsys):
    code = cli.main(["draw", str(ROOT / "examples" / "cnn1d.plan"), "--set", "L=20", "--set", "N=3"])
    dot = capsys.readouterr().out
    assert code == 0 and dot.startswith("digraph CNN1D {")
    assert '"plan CNN1D  (cnn1d.plan)\\nL = 20, N = 3"' in dot
    assert 'label=" [3, 32, 10] "' in dot and "L//2" not in dot
    symbolic = convplan.load(ROOT / "examples" / "cnn1d.plan").draw().source
    assert 'label=" [N, 32, L//2] "' in symbolic and "requires: L >= 2" in symbolic


# -- without Graphviz, with bad outputs: a message, never a traceback -------------------------


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """A PATH with no `dot` on it."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_dot_output_needs_no_graphviz_programs_but_svg_says_how_to_get_them(tmp_path, capsys, no_dot):
    plan = ROOT / "examples" / "two_tower.plan"
    assert cli.main(["draw", str(plan), "-o", str(tmp_path / "g.dot")]) == 0
    assert (tmp_path / "g.dot").read_text().startswith("digraph TwoTower {")
    code = cli.main(["draw", str(plan), "-o", str(tmp_path / "g.svg")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "g.svg").exists()
    assert err.startswith(f"convplan: error: -o {tmp_path / 'g.svg'}: drawing SVG needs Graphviz's `dot` program, "
                          "which is not on PATH")
    assert "apt-get install graphviz" in err and "-o graph.dot" in err and "Traceback" not in err
    assert convplan.load(plan)._repr_svg_() is None  # the notebook falls back to the text repr


def test_without_the_graphviz_package_the_message_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "graphviz", None)
    code = cli.main(["draw", str(ROOT / "examples" / "cnn1d.plan"), "-o", str(tmp_path / "g.dot")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'convplan[draw]'" in err and "Traceback" not in err


def test_draw_never_writes_over_a_plan_and_wants_a_known_suffix(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "examples" / "mobilenet_se.plan", "m.plan")
    shutil.copytree(ROOT / "examples" / "lib", "lib")
    before = Path("lib/mobile_blocks.plan").read_text()
    Path("lib.svg").symlink_to("lib/mobile_blocks.plan")
    for target, said in [("m.plan", "it is the plan itself"), ("lib.svg", "a file the plan imports"),
                         ("x.PLAN", "it is a .plan file (write it to m.svg"),
                         ("m.txt", "-o m.txt: cannot tell the format from .txt"), ("m", "a name without a suffix")]:
        code = cli.main(["draw", "m.plan", "-o", target])
        err = capsys.readouterr().err
        assert code == 2 and said in err, (target, err)
    assert Path("lib/mobile_blocks.plan").read_text() == before and not Path("x.PLAN").exists()
    code = cli.main(["draw", "m.plan", "-o", "x.plan.dot"])
    assert code == 0 and Path("x.plan.dot").read_text().startswith("digraph MobileNetSE")
    code = cli.main(["draw", "m.plan", "-o", "m.dot.plan"])
    assert code == 2 and "refusing to write a drawing to m.dot.plan: it is a .plan file" in capsys.readouterr().err


def test_a_bad_plan_gets_its_located_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    bad = Path("tests/golden/errors/assert_padding.plan")
    code = cli.main(["draw", str(bad), "-o", str(tmp_path / "g.svg")])
    assert code == 1 and capsys.readouterr().err == bad.with_suffix(".stderr").read_text()
    assert not (tmp_path / "g.svg").exists()


def test_the_readme_picture_is_the_current_drawing():
    """docs/img/two_tower.svg is `convplan draw examples/two_tower.plan -o docs/img/two_tower.svg`: the same
    nodes, edges and labels as a fresh drawing (layout coordinates may differ between Graphviz versions)."""
    committed = parse_svg((ROOT / "docs" / "img" / "two_tower.svg").read_text())
    fresh = parse_svg(convplan.load(ROOT / "examples" / "two_tower.plan")._repr_svg_())
    assert committed == fresh
    assert "docs/img/two_tower.svg" in (ROOT / "README.md").read_text()



def test_a_partial_plan_draws_what_was_built_and_a_bad_path_is_a_message(tmp_path, capsys):
    """In a notebook, `convplan.analyse` of a plan with errors still shows the graph around them."""
    result = convplan.analyse((ROOT / "tests" / "golden" / "errors" / "several_errors.plan").read_text())
    assert len(result.errors) == 3 and result.plan.graph.nodes
    seen = parse_svg(result.plan._repr_svg_())
    assert {f"n{node.id}" for node in result.plan.graph.nodes} <= set(seen["nodes"])
    code = cli.main(["draw", str(ROOT / "examples" / "cnn1d.plan"), "-o", str(tmp_path / "missing" / "g.svg")])
    assert code == 2 and "cannot write" in capsys.readouterr().err
