"""No traceback, ever: random nesting depths, import chains, numbers of unknowns and sizes up to 10**100,
through the command line and the API.  Whatever happens is a plan, a located PlanError, or (for an API
argument no plan could explain) a TypeError/ValueError with a message; the CLI exits 0, 1 or 2."""

from __future__ import annotations

import io
import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import convplan
from convplan import cli

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
API_ERRORS = (convplan.PlanError, TypeError, ValueError)


def through_cli(text: str, *argv: str, command: str = "check") -> int:
    """`convplan <command> <file> argv...` on `text`: its exit status; no exception may escape."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.plan"
        path.write_text(text)
        return _main([command, str(path), *argv])


def _main(argv: list[str]) -> int:
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    assert "Traceback" not in err.getvalue() + out.getvalue()
    return code


def through_api(text: str, **sizes) -> None:
    result = convplan.analyse(text)
    for d in result.diagnostics:
        assert d.code and d.message and d.span.line >= 0
    try:
        convplan.parse(text, **sizes)
    except API_ERRORS as exc:
        assert str(exc)


# -- nesting ----------------------------------------------------------------------------------

OPENERS = ["if N > 0:", "residual:", "repeat i in 1:", "if L > 0:\n{pad}    ReLU()\n{pad}else:"]


@SETTINGS
@given(depth=st.integers(1, 420), kinds=st.lists(st.sampled_from(OPENERS), min_size=1, max_size=4))
@example(depth=400, kinds=["residual:"])  # past the nesting limit
def test_any_nesting_depth(depth, kinds):
    lines = ["plan P:", "    input [N, 4, L]"]
    for level, opener in zip(range(depth), itertools.cycle(kinds)):
        pad = "    " * (level + 1)
        lines.append(pad + opener.format(pad=pad))
    lines.append("    " * (depth + 1) + "ReLU()")
    text = "\n".join(lines) + "\n"
    through_api(text)
    assert through_cli(text) in (0, 1)


# -- import chains ----------------------------------------------------------------------------


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 340), style=st.sampled_from(["import", "from"]))
@example(n=330, style="from")  # past the import depth limit
def test_any_import_chain(n, style):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(n):
            if i == n - 1:
                head = ""
            elif style == "import":
                head = f'import "f{i + 1}.plan"\n'
            else:
                head = f'from "f{i + 1}.plan" import B{i + 1}\n'
            (root / f"f{i}.plan").write_text(f"{head}block B{i}():\n    input [N, C]\n    ReLU()\n")
        main = root / "main.plan"
        main.write_text('import "f0.plan"\nplan M:\n    input [N, 3]\n    B0()\n')
        try:
            assert convplan.load(main).output_shape[1] == 3
        except convplan.PlanError as exc:
            assert exc.diagnostics[0].code in ("E023", "E020") and str(exc)
        assert _main(["check", str(main)]) in (0, 1)


# -- unknowns ---------------------------------------------------------------------------------


@settings(max_examples=6, deadline=None)  # named unknowns cost time per line: few, but past 100 (E-limit) lines
@given(count=st.integers(1, 130), named=st.booleans(), assert_every=st.integers(0, 3))
@example(count=101, named=False, assert_every=0)  # past the 100 errors at which checking stops
@example(count=34, named=True, assert_every=0)  # 34 such lines make 100 errors
def test_any_number_of_unknowns(count, named, assert_every):
    if named:  # each named line costs time (the check of many named unknowns is being made linear)
        count = min(count, 40)
    lines = ["plan P:", "    input [N, 3, H, W]"]
    for i in range(count):
        call = (f"Conv2d(?c{i}, kernel_size=?k{i}, padding=?p{i})" if named else "Conv2d(?, kernel_size=1)")
        if assert_every and i % assert_every == 0:
            call += " -> [N, 8, H, W]"
        lines.append("    " + call)
    text = "\n".join(lines) + "\n"
    through_api(text)
    assert through_cli(text) in (0, 1)


# -- sizes ------------------------------------------------------------------------------------

PLAN = "plan S(classes=2):\n    input [N, C, L]\n    Conv1d(8, kernel_size=3)\n    MaxPool1d(2)\n" \
       "    Flatten()\n    Linear(classes)\n"


@SETTINGS
@example(exponent=100, sign=1, name="L", offset=0)
@given(exponent=st.integers(0, 100), sign=st.sampled_from([1, -1]), name=st.sampled_from(["N", "C", "L", "classes",
                                                                                          "Q", "filename"]),
       offset=st.integers(-2, 2))
def test_any_size_up_to_a_googol(exponent, sign, name, offset):
    value = sign * 10**exponent + offset
    sizes = {name: value}
    through_api(PLAN, **sizes)
    plan = convplan.parse(PLAN)
    for call in (plan.bind, plan.satisfied, plan.smallest_sizes, plan.verify, plan.to_source, plan.build,
                 lambda **s: plan.evaluate(plan.total_params, **{"N": 1, "C": 1, "L": 4, **s})):
        try:
            call(**sizes)
        except API_ERRORS as exc:
            assert str(exc)
    for command in ("check", "cost", "explain"):
        assert through_cli(PLAN, "--set", f"{name}={value}", command=command) in (0, 1, 2)
