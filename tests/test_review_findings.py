"""Regressions for bugs found in review: each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import convplan
from convplan import cli

ROOT = Path(__file__).resolve().parent.parent


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cost_compare_prints_formulas_when_sizes_are_free(capsys):
    # `--compare` without --set crashed with a SympifyError: the rows were formatted twice
    code, out, err = _cli(capsys, "cost", str(ROOT / "examples" / "cnn1d.plan"), "--compare")
    assert code == 0, err
    assert "Conv1d     192*L*N       96*L*N" in out and "Linear     128*N*(L//2)  64*N*(L//2)" in out
    code, out, err = _cli(capsys, "cost", str(ROOT / "examples" / "two_tower.plan"), "--compare", "--set", "N=2")
    assert code == 0 and "89,856" in out, err
