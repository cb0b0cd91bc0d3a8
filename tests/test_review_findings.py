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
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}  # flopcounter fvcore macs ptflops
    assert rows["Conv1d"] == ["192*L*N", "96*L*N", "96*L*N", "128*L"]
    assert rows["Linear"] == ["128*N*(L//2)", "64*N*(L//2)", "64*N*(L//2)", "64*(L//2)", "+", "2"]
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


def test_evaluate_takes_a_shape_and_refuses_what_is_no_formula():
    # a shape gave "the value depends on : give "; a string raised sympy's SympifyError
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    assert plan.evaluate(plan.layers[2].shape, N=2, L=9) == (2, 32, 4)
    with pytest.raises(TypeError, match="formula"):
        plan.evaluate("L", L=3)


@pytest.mark.parametrize("value, error", [(2.5, TypeError), ("4", TypeError), (True, TypeError), (10**30, ValueError)])
def test_evaluate_and_at_validate_sizes_as_parse_does(value, error):
    # a float or str failed inside int() with Python's message, True counted as 1, 10**30 was evaluated
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    for call in (lambda: plan.evaluate(plan.total_params, L=value), lambda: plan.cost().at(N=1, L=value),
                 lambda: plan.memory().at(plan.memory().activations, N=1, L=value)):
        with pytest.raises(error):
            call()


def test_counts_at_sizes_the_plan_refuses_are_errors():
    # cost().at(N=1, L=1) gave 96 for a CNN1D that cannot run at L=1 (MaxPool1d needs L >= 2); L=0 gave numbers
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    memory = plan.memory()
    for call in (lambda: plan.cost().at(N=1, L=1), lambda: memory.at(memory.activations, N=1, L=1),
                 lambda: plan.evaluate(plan.total_params, L=1)):
        with pytest.raises(convplan.PlanError, match="E401"):
            call()
    with pytest.raises(convplan.PlanError, match="E205"):
        plan.evaluate(plan.total_params, L=0)


def test_at_refuses_names_that_do_not_change_the_formula():
    # at(classes=3) counted with classes=2 and at(Q=3) ignored Q, silently
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    with pytest.raises(ValueError, match=r"classes is 2 .*plan.bind\(classes=3\)"):
        plan.cost().at(N=1, L=4, classes=3)
    with pytest.raises(convplan.PlanError, match="E400"):
        plan.evaluate(plan.total_params, L=4, Q=3)
    assert plan.cost().at(N=1, L=4, classes=2) == plan.cost().at(N=1, L=4)
    bound = plan.bind(N=2)
    assert bound.cost().at(N=2, L=4) == bound.cost().at(L=4) == plan.cost().at(N=2, L=4)


def test_too_many_positional_arguments_is_one_error():
    # each argument past the last was a copy of the same E102 (and of cat's E103)
    cases = (("Conv1d(4, 3, 1, 0, 1, 1, True, 'zeros', None, None, 1)", "E102"), ("cat(x, x, 1, 2, 3)", "E103"))
    for line, code in cases:
        result = convplan.analyse(f"plan A:\n    input [N, 4, L]\n    {line}\n")
        assert [d.code for d in result.errors] == [code], result.errors
    result = convplan.analyse("plan A:\n    input [N, 4, L]\n    Conv1d(4, 3, 1, 0, 1, 1, True, 'zeros', None, None, "
                              "groups=1)\n")
    assert "got 10" in result.errors[0].message  # the positional ones, not the keywords


def test_norm_momentum_none_is_torchs_cumulative_average():
    # refused with "momentum must be an integer, got None"; torch takes momentum=None
    import torch

    plan = convplan.parse("plan A:\n    input [N, 4, L]\n    BatchNorm1d(momentum=None)\n")
    assert plan.build(N=2, L=5).bn1.momentum is None
    assert "nn.BatchNorm1d(4, momentum=None)" in plan.to_source(N=2, L=5)
    assert isinstance(torch.nn.BatchNorm1d(4, momentum=None), torch.nn.Module)


def test_a_float_argument_asks_for_a_number_not_an_integer():
    result = convplan.analyse("plan A:\n    input [N, 4, L]\n    BatchNorm1d(momentum='a')\n")
    assert [d.message for d in result.errors] == ["momentum must be a number, got the string 'a'"]


def test_an_unknown_as_a_merge_option_and_a_zero_scale_say_so():
    import convplan as cp

    result = cp.analyse("plan A:\n    input [N, 4]\n    a = ReLU()\n    cat(a, a, dim=?)\n")
    assert [(d.code, d.message) for d in result.errors] == [
        ("E311", "a `?` unknown can stand only for a layer argument, not cat's dim")]
    result = cp.analyse("plan A:\n    input [N, 4, L]\n    Upsample(scale_factor=0.0)\n")
    assert "scale_factor must be positive" in result.errors[0].message


def test_a_lower_bound_past_an_upper_bound_is_e303():
    """An Upsample's scale rule holds up to L = 65536 (`L <= 65536`); one that shrinks by 1e-5 needs
    L >= 100000: `convplan check` printed both and passed, and only verify found no sizes (E402)."""
    text = "plan A:\n    input [N, 3, L]\n    Upsample(scale_factor=1e-5)\n"
    [error] = convplan.analyse(text).errors
    assert (error.code, error.span.line) == ("E303", 3)
    assert error.message == "these requirements contradict each other: L >= 100000, L <= 65536"
    both = "plan A:\n    input [N, 3, L]\n    Conv1d(4, kernel_size=70000)\n    Upsample(scale_factor=0.3)\n"
    assert [str(r) for r in convplan.parse(both).requires] == ["L >= 70003", "L <= 135535"]  # they meet
