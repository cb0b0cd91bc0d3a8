"""Regressions for bugs found in review: each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

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


PARTIAL = "plan A:\n    input [2, 3]\n    Linear(4)\n    Conv2d(3, 3)\n    Linear(5)\n"


def test_a_partial_plan_does_not_build():
    # build() of a plan from analyse() silently left the failing Conv2d out of the module
    plan = convplan.analyse(PARTIAL).plan
    assert not plan.complete
    with pytest.raises(convplan.PlanError, match="E301"):
        plan.build()


def test_a_partial_plan_without_input_has_no_shapes_and_serialises():
    # input_shape, output_shape and to_dict() raised IndexError
    plan = convplan.analyse("plan A:\n    Conv1d(4, kernel_size=3)\n").plan
    assert plan.input_shape is None and plan.output_shape is None
    data = plan.to_dict()
    assert data["input"] is None and data["output"] is None and data["layers"] == []


def test_training_with_an_unknown_optimizer_is_a_plain_value_error():
    memory = convplan.load(ROOT / "examples" / "cnn1d.plan").memory()
    with pytest.raises(ValueError, match="optimizers are sgd, sgd_momentum, adam, adamw"):
        memory.training("rmsprop")
