"""Size arithmetic: max, min, ceil, floor, round, int and `/`, with Python's semantics (round half to
even, int toward zero, floats as Python computes them), float parameters for plans, and located
errors for misuse.  Python is the oracle: the same text evaluated by Python."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan import PlanError
from convplan.shapes import evaluate

EXAMPLES = settings(max_examples=300, deadline=None)


@st.composite
def exprs(draw, depth=3):
    """Plan text that is also Python text: numbers, + - * / // %, the size functions, `a if c else b`."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(st.integers(-9, 20).map(str),
                              st.sampled_from(["0.5", "1.5", "2.5", "-2.5", "0.75", "3.25", "1e3", "0.1"])))
    kind = draw(st.sampled_from(["op", "op", "f1", "f2", "neg", "if"]))
    a = draw(exprs(depth - 1))
    if kind == "if":  # `int(7.5 if c else 1.5)` was E106: a conditional's float was refused inside a number
        c, b = draw(exprs(depth - 1)), draw(exprs(depth - 1))
        return f"(({a}) if ({c}) {draw(st.sampled_from(['<', '<=', '==', '!=', '>', '>=']))} 1 else ({b}))"
    if kind == "neg":
        return f"-({a})"
    if kind == "f1":
        return f"{draw(st.sampled_from(['ceil', 'floor', 'round', 'int']))}({a})"
    b = draw(exprs(depth - 1))
    if kind == "f2":
        return f"{draw(st.sampled_from(['max', 'min']))}({a}, {b})"
    return f"({a}) {draw(st.sampled_from(['+', '-', '*', '/', '//', '%']))} ({b})"


PYTHON = {"ceil": math.ceil, "floor": math.floor, "round": round, "int": int, "max": max, "min": min}


def python_value(text: str):
    try:
        value = eval(text, {"__builtins__": {}}, PYTHON)  # noqa: S307 - the test's own generated text
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    return value if isinstance(value, int) or math.isfinite(value) else None


@given(exprs())
@EXAMPLES
def test_values_are_pythons(text):
    """A plan parameter's default is computed as Python computes it (or refused where Python raises, and
    where convplan refuses `//`/`%` of integers by a divisor below 1, which no size needs)."""
    want = python_value(text)
    try:
        got = convplan.parse(f"plan T(v={text}):\n    input [N, 2]\n    Linear(2)\n").params["v"]
    except PlanError as exc:
        assert want is None or any(d.code in ("E109", "E108") for d in exc.diagnostics), (text, want, exc)
        return
    assert want is not None, (text, got)
    got = got if isinstance(got, float) else int(got)
    assert type(got) is type(want) and (got == want), (text, got, want)


@given(st.sampled_from(["ceil", "floor", "int"]), st.integers(1, 7), st.integers(0, 5), st.integers(1, 500))
@EXAMPLES
def test_functions_of_sizes_without_values(name, q, add, c):
    """ceil/floor/int of a ratio of sizes stay exact formulas: equal to Python's at every size."""
    plan = convplan.parse(f"plan T:\n    input [N, C]\n    Linear({name}((C + {add}) / {q}) + 1)\n")
    assert evaluate(plan.output_shape[1], {"C": c}) == PYTHON[name]((c + add) / q) + 1


@given(st.integers(1, 200), st.integers(1, 9))
@EXAMPLES
def test_max_min_of_sizes(c, k):
    plan = convplan.parse(f"plan T:\n    input [N, C, L]\n    Conv1d(max({k}, C // 4), kernel_size=1)\n"
                          f"    Conv1d(min(C, {k}), kernel_size=1)\n")
    assert evaluate(plan.output_shape[1], {"C": c}) == min(c, k)
    assert evaluate(plan.total_params, {"C": c}) == max(k, c // 4) * (c + 1) + min(c, k) * (max(k, c // 4) + 1)


def test_make_divisible_as_torchvision_writes_it():
    """torchvision's _make_divisible(v, 8) for MobileNet widths, written once as a plan's arithmetic."""
    def make_divisible(v, d=8):
        new = max(d, int(v + d / 2) // d * d)
        return new + d if new < 0.9 * v else new

    for width in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
        for c in (16, 24, 32, 96, 160, 320):
            text = (f"plan M(width={width}):\n    input [N, 3, L]\n    v = {c} * width\n"
                    "    c = max(8, int(v + 8 / 2) // 8 * 8)\n    Conv1d(c + 8 if c < 0.9 * v else c, kernel_size=1)\n")
            assert convplan.parse(text).output_shape[1] == make_divisible(c * width), (width, c)


def test_float_parameters_of_a_plan_stay_constants_in_generated_code():
    text = "plan T(width=0.5, classes=3):\n    input [N, C]\n    Linear(round(64 * width))\n    Dropout(width / 2)\n" \
           "    Linear(classes)\n"
    plan = convplan.parse(text, "t.plan")
    assert plan.params["width"] == 0.5 and plan.layers[0].args["out_features"] == 32
    assert plan.layers[1].args["p"] == 0.25
    source = plan.to_source(C=4)
    assert "Fixed parameters: width = 0.5" in source and "def __init__(self, C=4, classes=3):" in source


# Values Python computes that convplan refused or got wrong; each is the layer's width, Python's the oracle.
PYTHON_CASES = [
    "int(7.5 if 2 < 3 else 1.5)",  # a conditional's float inside a number was E106
    "ceil(2.5 if 1 < 2 else 3)",
    "int(max(0.5, 2.5 if 1 < 2 else 3.5) * 2)",
    "int(-(2.5 if 1 < 2 else 3)) + 5",
    "3 if 1 / 1 == 1 else 4",  # a float equal to an integer was not (sympy's Float(1.0) != 1): silently 4
    "3 if 2 == 2.0 else 4",
    "3 if 0.5 * 4 != 2 else 4",
    "3 if -2.5 < 1 else 4",  # a negative float was E106 ("compared must be an integer, got 2.5")
]


@pytest.mark.parametrize("text", PYTHON_CASES)
def test_values_found_by_the_adversary_are_pythons(text):
    want = eval(text, {"__builtins__": {}}, PYTHON)  # noqa: S307 - the test's own text
    plan = convplan.parse(f"plan T:\n    input [N, 2]\n    Linear({text})\n")
    assert plan.layers[0].args["out_features"] == want


def test_a_block_takes_a_negative_float():
    """`B(w=-0.5)` was E106 "w must be an integer, got 0.5": a negated float was read as an integer."""
    text = "block B(w=1.0):\n    input [N, C]\n    Linear(3 if w < 0 else 4)\n    Hardtanh(min_val=w)\n" \
           "plan T:\n    input [N, 2]\n    B(w=-0.5)\n"
    plan = convplan.parse(text)
    assert plan.layers[-2].args["out_features"] == 3 and plan.layers[-1].args["min_val"] == -0.5


def test_a_float_compared_with_a_size_without_a_value_is_undecided():
    """`L == 2.0` was silently False (a Python float against a sympy symbol); as `L == 2`, it is E230."""
    with pytest.raises(PlanError) as err:
        convplan.parse("plan T:\n    input [N, L]\n    Linear(3 if L == 2.0 else 4)\n")
    assert err.value.diagnostics[0].code == "E230"


@pytest.mark.parametrize("line, code, message, hint", [
    ("Linear(C / 2)", "E106", "out_features must be an integer, got C/2", "`//` divides integers"),
    ("Linear(7 * 0.5)", "E106", "out_features must be an integer, got 3.5", "round(...), floor(...)"),
    ("Linear(sqrt(C))", "E113", "'sqrt' is not a function of sizes", None),
    ("Linear(Max(C, 2))", "E113", "'Max' is not a function of sizes", "did you mean max?"),
    ("Linear(max(C))", "E113", "max() takes at least 2 arguments, got 1", None),
    ("Linear(round(C, ndigits=1))", "E113", "round() takes no keyword arguments here", None),
    ("Linear(round(C / 2))", "E230", "round() of a ratio must be known when the plan is checked", "--set C="),
    ("Linear(C * 0.5)", "E230", "a computation with a float must be known", None),
    ("Linear(max(2, 1 / 0))", "E109", "division by zero", None),
])
def test_misuse_is_a_located_error(line, code, message, hint):
    text = f"plan T:\n    input [N, C]\n    {line}\n"
    with pytest.raises(PlanError) as err:
        convplan.parse(text)
    diag = err.value.diagnostics[0]
    assert diag.code == code and message in diag.message, diag.message
    assert diag.span.line == 3 and diag.span.col > 5
    assert hint is None or any(hint in h for h in diag.hints if h), diag.hints
