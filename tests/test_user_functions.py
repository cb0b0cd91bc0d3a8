"""Size functions defined in a plan file (`def make_divisible(v, divisor, min_value=None): ...`): evaluated
as Python would run the same text, usable in plans, blocks and across imports, and misuse refused with a
located error.  Python is the oracle for values; torch (a MobileNetV2 written here as torchvision writes
it) for the example that uses one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import convplan
from convplan import PlanError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SIZES = (EXAMPLES / "lib" / "sizes.plan").read_text(encoding="utf-8")
PROPERTY = settings(max_examples=150, deadline=None)


def _make_divisible(v, divisor, min_value=None):  # torchvision.models._utils, verbatim
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def channels(text: str, **sizes) -> int:
    """The out_channels of the plan's one Conv1d."""
    plan = convplan.parse(text, **sizes)
    return int(plan.layers[0].args["out_channels"])


@PROPERTY
@given(v=st.one_of(st.integers(1, 4000), st.floats(0.5, 4000, allow_nan=False)), divisor=st.integers(1, 64),
       min_value=st.one_of(st.none(), st.integers(1, 200)))
def test_make_divisible_is_torchvisions(v, divisor, min_value):
    call = f"make_divisible({v!r}, {divisor}" + ("" if min_value is None else f", min_value={min_value}") + ")"
    text = SIZES + f"plan A:\n    input [N, 3, L]\n    Conv1d({call}, kernel_size=1)\n"
    assert channels(text) == _make_divisible(v, divisor, min_value)


@PROPERTY
@given(k=st.integers(0, 12), a=st.integers(-50, 50), b=st.integers(1, 9))
def test_recursion_branches_and_names_as_python(k, a, b):
    """A recursive def, elif chains, a rebound parameter and a def calling a def: Python runs the same text."""
    source = ("def fact(k):\n    return 1 if k == 0 else k * fact(k - 1)\n"
              "def clip(a, b):\n    if a < -b:\n        a = -b\n    elif a > b:\n        a = b\n    else:\n"
              "        pass\n    return a + b + 1\n"
              "def both(k, a, b):\n    s = fact(k) % 97\n    return s + clip(a, b)\n")
    text = source + f"plan A:\n    input [N, 3, L]\n    Conv1d(both({k}, {a}, {b}), kernel_size=1)\n"
    assert channels(text) == math.factorial(k) % 97 + min(max(a, -b), b) + b + 1


def test_symbolic_sizes_stay_formulas():
    text = "def quarter(c):\n    return max(8, c // 4)\nplan A:\n    input [N, C, L]\n    Conv1d(quarter(C), 1)\n"
    assert str(convplan.parse(text).layers[0].args["out_channels"]) == "Max(8, FloorDiv(C, 4))"
    for c in (3, 32, 64, 100):
        assert channels(text, C=c) == max(8, c // 4)


def test_used_in_a_block_a_parameter_default_and_a_let(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "sizes.plan").write_text(SIZES, encoding="utf-8")
    (tmp_path / "lib" / "blocks.plan").write_text(
        'from "sizes.plan" import make_divisible\n'
        "block Widen(width):\n    input [N, C, L]\n    Conv1d(make_divisible(C * width, 8), 1)\n",
        encoding="utf-8")
    main = tmp_path / "main.plan"
    main.write_text('from "lib/blocks.plan" import Widen\nfrom "lib/sizes.plan" import make_divisible\n'
                    "plan A(width=0.5, first=make_divisible(100 * 0.5, 8)):\n    input [N, 3, L]\n"
                    "    Conv1d(first, 1)\n    c = make_divisible(3 * 37 * width, 8)\n    Conv1d(c, 1)\n"
                    "    Widen(width)\n", encoding="utf-8")
    plan = convplan.load(main)
    outs = [int(layer.args["out_channels"]) for layer in plan.layers]
    first = _make_divisible(50.0, 8)
    c = _make_divisible(3 * 37 * 0.5, 8)
    assert outs == [first, c, _make_divisible(c * 0.5, 8)]


def test_a_def_sees_its_own_files_functions_not_the_callers(tmp_path):
    (tmp_path / "a.plan").write_text("def inner(k):\n    return 2 * k\ndef outer(k):\n    return inner(k) + 1\n",
                                     encoding="utf-8")
    main = tmp_path / "main.plan"
    main.write_text('from "a.plan" import outer\nplan A:\n    input [N, 3, L]\n    Conv1d(outer(5), 1)\n',
                    encoding="utf-8")
    assert int(convplan.load(main).layers[0].args["out_channels"]) == 11
    main.write_text('from "a.plan" import outer\nplan A:\n    input [N, 3, L]\n    Conv1d(inner(5), 1)\n',
                    encoding="utf-8")
    with pytest.raises(PlanError) as info:
        convplan.load(main)
    assert info.value.diagnostics[0].code == "E113"


# -- misuse: a located error each ---------------------------------------------------------------

BAD = {
    "recursion": ("def f(k):\n    return f(k + 1)\nplan A:\n    input [N, 3, L]\n    Conv1d(f(1), 1)\n",
                  "E261", (2, 12)),
    "unknown name": ("def f(k):\n    return k * width\nplan A(width=2):\n    input [N, 3, L]\n    Conv1d(f(1), 1)\n",
                     "E107", (2, 16)),
    "too many": ("def f(k):\n    return k\nplan A:\n    input [N, 3, L]\n    Conv1d(f(1, 2), 1)\n", "E102", (5, 17)),
    "missing": ("def f(k, j):\n    return k\nplan A:\n    input [N, 3, L]\n    Conv1d(f(1), 1)\n", "E105", (5, 12)),
    "no such parameter": ("def f(k):\n    return k\nplan A:\n    input [N, 3, L]\n    Conv1d(f(q=1), 1)\n",
                          "E103", (5, 14)),
    "no return": ("def f(k):\n    if k > 2:\n        return k\nplan A:\n    input [N, 3, L]\n    Conv1d(f(1), 1)\n",
                  "E114", (1, 5)),
    "not a number": ("def f(k):\n    return 'a'\nplan A:\n    input [N, 3, L]\n    Conv1d(f(1), 1)\n", "E114", (2, 12)),
    "a statement": ("def f(k):\n    return k\nplan A:\n    input [N, 3, L]\n    f(3)\n", "E114", (5, 5)),
    "a layer inside": ("def f(k):\n    Conv1d(k)\n    return k\nplan A:\n    input [N, 3, L]\n", "E208", (2, 5)),
    "return in a plan": ("plan A:\n    input [N, 3, L]\n    return 3\n", "E209", (3, 5)),
    "a tensor argument": ("def f(k):\n    return k\nplan A:\n    input [N, 3, L]\n    Conv1d(f(x), 1)\n",
                          "E241", (5, 14)),
    "a layer's name": ("def Conv1d(k):\n    return k\nplan A:\n    input [N, 3, L]\n", "E022", (1, 5)),
    "a builtin's name": ("def max(k):\n    return k\nplan A:\n    input [N, 3, L]\n", "E202", (1, 5)),
    "a block's name": ("def B(k):\n    return k\nblock B:\n    input [N, C, L]\nplan A:\n    input [N, 3, L]\n",
                       "E022", (1, 5)),
}


@pytest.mark.parametrize("name", list(BAD))
def test_misuse_is_located(name):
    text, code, (line, col) = BAD[name]
    with pytest.raises(PlanError) as info:
        convplan.parse(text)
    d = info.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == (code, line, col), str(info.value)
    assert "Traceback" not in str(info.value)


def test_a_def_that_calls_itself_twice_a_step_runs_out_of_calls_not_time():
    """Depth alone (32) let `fib` make 2**32 calls: fib(30) took 78 s, fib(32) minutes.  The calls of one check
    are counted (functions.MAX_CALLS): past them, E261 at the call that crossed the line, in well under a second."""
    import time

    fib = "def fib(n):\n    if n <= 1:\n        return 1\n    return fib(n - 1) + fib(n - 2)\n"
    start = time.perf_counter()
    with pytest.raises(PlanError) as info:
        convplan.parse(fib + "plan A:\n    input [N, 3]\n    Linear(fib(24))\n")
    assert time.perf_counter() - start < 10
    d = info.value.diagnostics[0]
    assert d.code == "E261" and "more than 100,000 calls" in d.message and d.span.line == 4, str(info.value)
    assert convplan.parse(fib + "plan A:\n    input [N, 3]\n    Linear(fib(10))\n").output_shape[1] == 89


def test_a_def_may_return_a_size_as_it_was_given():
    """`return x` of a size was E114 "a size function returns a number, got L" (sympy's Symbol is also a Boolean)
    while `return 2 * x` passed; a condition is still refused.  Built, the layer has L channels, as torch makes."""
    torch = pytest.importorskip("torch")
    plan = convplan.parse("def same(x):\n    return x\nplan A:\n    input [N, 3, L]\n    Conv1d(same(L), 1)\n")
    assert [str(d) for d in plan.output_shape] == ["N", "L", "L"]
    assert plan.build(L=5)(torch.zeros(2, 3, 5)).shape == (2, 5, 5)
    with pytest.raises(PlanError) as info:
        convplan.parse("def big(x):\n    return x > 2\nplan A:\n    input [N, 3, L]\n    Conv1d(big(3), 1)\n")
    assert info.value.diagnostics[0].code == "E114"


def test_errors_inside_an_imported_def_are_shown_in_its_file(tmp_path):
    (tmp_path / "lib.plan").write_text("def f(k):\n    return k // 0\n", encoding="utf-8")
    main = tmp_path / "main.plan"
    main.write_text('from "lib.plan" import f\nplan A:\n    input [N, 3, L]\n    Conv1d(f(4), 1)\n', encoding="utf-8")
    with pytest.raises(PlanError) as info:
        convplan.load(main)
    d = info.value.diagnostics[0]
    assert (d.code, d.file.endswith("lib.plan"), d.span.line) == ("E109", True, 2)
    assert any("in function f, called here" in note[0] for note in d.notes)


# -- the example: MobileNetV2 at any width, against torchvision's code written here ----------------


class _ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class _InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand):
        super().__init__()
        hidden = int(round(inp * expand))
        self.use_res = stride == 1 and inp == oup
        layers = [_ConvBNReLU(inp, hidden, k=1)] if expand != 1 else []
        layers += [_ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


def _mobilenet_v2(width: float, classes: int = 1000) -> nn.Module:
    """torchvision.models.MobileNetV2's structure (torchvision is not a dependency)."""
    cin, last = _make_divisible(32 * width, 8), _make_divisible(1280 * max(1.0, width), 8)
    features = [_ConvBNReLU(3, cin, stride=2)]
    for t, c, n, s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                       [6, 320, 1, 1]]:
        out = _make_divisible(c * width, 8)
        for i in range(n):
            features.append(_InvertedResidual(cin, out, s if i == 0 else 1, t))
            cin = out
    features.append(_ConvBNReLU(cin, last, k=1))
    return nn.Sequential(*features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(last, classes))


def _plan_at(width: float) -> convplan.Plan:
    text = (EXAMPLES / "mobilenet_v2.plan").read_text(encoding="utf-8")
    text = text.replace("width=0.75)", f"width={width!r})")
    return convplan.parse(text, str(EXAMPLES / "mobilenet_v2.plan"))


def test_reference_is_torchvisions_mobilenet_v2():
    assert sum(p.numel() for p in _mobilenet_v2(1.0).parameters()) == 3_504_872  # torchvision's count


@settings(max_examples=6, deadline=None)
@given(width=st.sampled_from([0.35, 0.5, 0.75, 1.0, 1.3, 1.4]))
def test_mobilenet_v2_example_matches_torch(width):
    plan = _plan_at(width)
    reference = _mobilenet_v2(width)
    built = plan.build()
    assert [tuple(p.shape) for p in built.parameters()] == [tuple(p.shape) for p in reference.parameters()]
    assert sum(int(layer.params) for layer in plan.layers) == sum(p.numel() for p in reference.parameters())
    with torch.no_grad():
        assert tuple(built.eval()(torch.zeros(2, 3, 64, 64)).shape) == (2, 1000)


def test_mobilenet_v2_example_checks_as_written():
    plan = convplan.load(EXAMPLES / "mobilenet_v2.plan")
    assert sum(int(layer.params) for layer in plan.layers) == sum(p.numel() for p in _mobilenet_v2(0.75).parameters())
