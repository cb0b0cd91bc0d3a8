"""`convplan explain`: the notebook's cells as golden files (read line by line when written), and the worked
numbers checked against the shapes convplan computes (themselves checked against torch elsewhere)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from _torch_oracle import symbolic_plan
from hypothesis import given, settings
from test_properties import stacks

from convplan import cli
from convplan.explain import explain

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "explain"
CELLS = {  # golden name -> (plan, --set)
    "conv_length_L10": ("examples/conv_length.plan", ["N=1", "L=10"]),
    "notebook_conv1d": ("examples/notebook_conv1d.plan", []),
    "cnn1d_L20": ("examples/cnn1d.plan", ["L=20"]),
    "cnn1d_symbolic": ("examples/cnn1d.plan", []),
}


@pytest.mark.parametrize("name", CELLS)
def test_notebook_cells_read_like_worked_examples(name, capsys, update_goldens, monkeypatch):
    monkeypatch.chdir(ROOT)
    path, sets = CELLS[name]
    code = cli.main(["explain", path, *(a for s in sets for a in ("--set", s))])
    out = capsys.readouterr().out
    assert code == 0
    golden = GOLDEN / f"{name}.txt"
    if update_goldens:
        golden.write_text(out)
    assert out == golden.read_text()


def test_the_notebook_length_is_6_not_6_5(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    cli.main(["explain", "examples/conv_length.plan", "--set", "N=1", "--set", "L=10"])
    assert "= (10 + 4 - 2 - 1)//2 + 1 = 11//2 + 1 = 5 + 1 = 6" in capsys.readouterr().out


FINAL = re.compile(r"^  dim (\d+): .*\n\s+= .* = (-?\d+)$", re.M)


@given(stacks())
@settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 200)) // 2, deadline=None)
def test_worked_numbers_equal_the_shapes(case):
    found = symbolic_plan(*case)
    if found is None:
        return
    plan, sizes = found
    bound = plan.bind(**sizes)
    for node in bound.graph.nodes[1:]:
        text = explain(plan, sizes, (node.name,))
        for dim, value in FINAL.findall(text):
            assert int(value) == int(node.shape[int(dim)]), text


def test_only_the_name_lookup_is_an_unknown_layer(capsys, monkeypatch):
    """A KeyError from inside the explanation is a bug to show, not "--layer conv1: no node of that name"."""
    monkeypatch.chdir(ROOT)
    assert cli.main(["explain", "examples/cnn1d.plan", "--layer", "nosuch"]) == 2
    assert "has no node of that name" in capsys.readouterr().err

    def broken(*args):
        raise KeyError("stride")

    monkeypatch.setattr("convplan.explain._node", broken)
    with pytest.raises(KeyError, match="stride"):
        cli.main(["explain", "examples/cnn1d.plan", "--layer", "conv1"])
    assert "has no node of that name" not in capsys.readouterr().err


def test_each_layer_given_is_explained_in_order(capsys, monkeypatch):
    """`--layer a --layer b` explained only b, without a word (found by review7): each is explained now, in the
    order given, and a misspelt one is still an error naming it."""
    monkeypatch.chdir(ROOT)
    assert cli.main(["explain", "examples/cnn1d.plan", "--layer", "maxpool1", "--layer", "conv1"]) == 0
    text = capsys.readouterr().out
    assert 0 <= text.index("maxpool1 = MaxPool1d") < text.index("conv1 = Conv1d"), text
    assert text.count("plan CNN1D  (examples/cnn1d.plan)") == 1, text  # the header once, not once a layer
    assert cli.main(["explain", "examples/cnn1d.plan", "--layer", "conv1", "--layer", "nosuch"]) == 2
    assert "--layer nosuch: plan CNN1D has no node of that name" in capsys.readouterr().err
    assert cli.main(["explain", "examples/cnn1d.plan", "--layer", "conv"]) == 2
    assert "--layer conv: plan CNN1D has no node of that name; did you mean conv1?" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.plan")), ids=lambda p: p.stem)
def test_every_example_explains_each_node(path, capsys, monkeypatch):
    """Every node of every example gets its line, a learnable tensor (made from no input) included: the
    explanation once indexed a node's first input, and a `Parameter(...)` has none (a traceback)."""
    import convplan

    monkeypatch.chdir(ROOT)
    assert cli.main(["explain", str(path.relative_to(ROOT))]) == 0
    out = capsys.readouterr().out
    for node in convplan.load(path).graph.nodes:
        assert f"\n{node.name}" in out, node.name
    if "Parameter(" in path.read_text(encoding="utf-8"):
        assert re.search(r"\n\w+ = Parameter\(.*: \[[^\]]*\]$", out, re.M)
