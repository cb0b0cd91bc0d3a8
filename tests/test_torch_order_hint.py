"""The torch-order hint ("torch's Linear takes in_features first ...") belongs to a value of the wrong kind
refused at the argument itself, never to a size function that fails inside (issue 13: the Binder added it to
the function's own error)."""

from __future__ import annotations

import pytest

import convplan

FAILING = {
    "division by zero": ("def half(c):\n    return c / 0\n", "half(32)", "E109"),
    "too many arguments": ("def half(c):\n    return c // 2\n", "half(32, 3)", "E102"),
    "no return": ("def half(c):\n    d = c // 2\n", "half(32)", "E114"),
}
CALLS = ["Linear({}, 10)", "Conv2d({}, 16, 3)", "BatchNorm2d({}, 0.1)", "GroupNorm(2, {}, 1e-5)"]
INPUTS = {"Linear": "[N, 8]", "Conv2d": "[N, 3, 8, 8]", "BatchNorm2d": "[N, 4, 8, 8]", "GroupNorm": "[N, 4, 8, 8]"}


def _diagnostics(define: str, call: str) -> list:
    kind = call.split("(")[0]
    text = f"{define}\nplan P:\n    input {INPUTS[kind]}\n    {call}\n"
    return convplan.analyse(text).diagnostics


def _order_hints(d) -> list[str]:
    return [h for h in d.hints if h.startswith("torch's ")]


@pytest.mark.parametrize("failure", sorted(FAILING))
@pytest.mark.parametrize("call", CALLS)
def test_a_failing_size_function_gets_no_torch_order_hint(failure, call):
    define, value, code = FAILING[failure]
    diags = _diagnostics(define, call.format(value))
    own = [d for d in diags if d.code == code]
    assert own, [(d.code, d.message) for d in diags]
    assert not any(_order_hints(d) for d in own), [(d.code, d.hints) for d in own]


def test_a_value_of_the_wrong_kind_in_torchs_order_keeps_the_hint():
    """Linear(half(32), 10): the function fails (no hint there) and 10 is refused as bias (the hint, with the
    fix that drops in_features)."""
    define, value, _ = FAILING["division by zero"]
    diags = _diagnostics(define, f"Linear({value}, 10)")
    (bias,) = [d for d in diags if d.code == "E106"]
    assert _order_hints(bias) == ["torch's Linear takes in_features first; a plan reads it from the input, so write "
                                  "Linear(10)"]
    (plain,) = [d for d in _diagnostics("", "Linear(32, 10)") if d.code == "E106"]
    assert _order_hints(plain) == ["torch's Linear takes in_features first; a plan reads it from the input, so "
                                   "write Linear(10)"]


def test_a_working_size_function_in_torchs_order_is_still_hinted():
    """The function's value refused as the wrong kind at the argument: the hint stays (the call is torch's)."""
    diags = _diagnostics("def two(c):\n    return c * 2\n", "Linear(8, two(0.5))")
    (bias,) = [d for d in diags if d.code == "E106"]
    assert _order_hints(bias)
