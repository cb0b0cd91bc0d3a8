"""Findings of trying the merged main as a new user (review of issues 13 and 14): each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from convplan import cli

ROOT = Path(__file__).resolve().parent.parent
CNN1D = str(ROOT / "examples" / "cnn1d.plan")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command, starts", [("codegen", "from torch import nn"), ("draw", "digraph")])
def test_output_dash_is_standard_output(command, starts, capsys, tmp_path, monkeypatch):
    # `-` is standard input for every command, so `-o -` is standard output (it wrote a file named `-`)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, command, CNN1D, "-o", "-")
    assert code == 0, err
    assert starts in out, out[:200]
    code, default, _ = run(capsys, command, CNN1D)
    assert out == default
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("bad_lines, shown", [(1, "1 error)"), (2, "2 errors)")])
def test_a_partial_plan_counts_its_errors_in_words(bad_lines, shown):
    import convplan

    text = "plan P:\n    input [N, 3, H, W]\n    Conv2d(8, 3)\n" + "    Frob()\n" * bad_lines
    plan = convplan.analyse(text).plan
    assert len(plan.errors) == bad_lines
    assert repr(plan).endswith(f"(partial: {shown}>")
