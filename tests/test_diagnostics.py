"""Diagnostics: golden stderr for bad plans, the Python API, the CLI, limits and injection.

Golden files: tests/golden/errors/NAME.plan is run as `convplan check tests/golden/errors/NAME.plan`
(plus the arguments of a first line `# args: ...`) from the repository root; NAME.stderr holds
the exact stderr.  Regenerate with `python -m pytest tests/test_diagnostics.py --update-goldens`
and read every changed file before committing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
from pathlib import Path

import pytest

import convplan
from convplan import cli
from convplan.errors import MAX_REPORTED, PlanError

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "errors"
CASES = sorted(p.stem for p in GOLDEN.glob("*.plan"))
DOCS = ROOT / "docs" / "errors.md"
SENTINEL = Path("/tmp/convplan-pwned")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _chdir(ROOT):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def _chdir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _args(plan: Path) -> list[str]:
    first = plan.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    return shlex.split(first[len("# args:"):]) if first.startswith("# args:") else []


# -- golden files ----------------------------------------------------------------------


def test_there_are_enough_golden_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", CASES)
def test_golden(name, update_goldens):
    plan = GOLDEN / f"{name}.plan"
    rel = plan.relative_to(ROOT).as_posix()
    code, _, err = run_cli("check", rel, *_args(plan))
    expected_file = GOLDEN / f"{name}.stderr"
    if update_goldens:
        expected_file.write_text(err, encoding="utf-8")
    assert err == expected_file.read_text(encoding="utf-8")
    errors = re.findall(r"^\S+:\d+:\d+: error\[", err, re.M)
    assert code == (1 if errors else 0), err
    assert err.strip(), "a golden case must produce a diagnostic"
    assert "Traceback" not in err


def test_no_stale_golden_outputs():
    assert sorted(p.stem for p in GOLDEN.glob("*.stderr")) == CASES


@pytest.mark.parametrize("name", CASES)
def test_golden_api_agrees_with_cli(name):
    """PlanError.diagnostics carries the same errors (code, line, column) the CLI printed."""
    plan = GOLDEN / f"{name}.plan"
    text = plan.read_text(encoding="utf-8")
    err = (GOLDEN / f"{name}.stderr").read_text(encoding="utf-8")
    printed = re.findall(r"^\S+?:(\d+):(\d+): error\[(\w+)\]", err, re.M)
    sizes = {k: int(v) for k, v in (a.split("=") for a in _args(plan)[1::2])}
    try:
        checked = convplan.parse(text, "x.plan")
        if sizes:  # as the CLI does: check the plan, then bind the sizes
            checked.bind(**sizes)
    except PlanError as exc:
        got = [(str(d.line), str(d.column), d.code) for d in exc.diagnostics if d.severity == "error"]
        assert got == printed
    else:
        assert printed == []


def test_json_carries_diagnostics():
    code, out, err = run_cli("check", "tests/golden/errors/several_errors.plan", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    codes = [d["code"] for d in data["diagnostics"]]
    assert codes == ["E100", "E103", "E301"]
    first = data["diagnostics"][0]
    assert (first["line"], first["column"], first["end_column"]) == (4, 5, 11)
    assert first["hints"] == ["did you mean Conv2d?"]
    assert "error[E100]" in err


def test_json_carries_warnings():
    code, out, _ = run_cli("check", "tests/golden/errors/warn_pool_drops.plan", "--json")
    assert code == 0
    warnings = json.loads(out)["warnings"]
    assert [w["severity"] for w in warnings] == ["warning"]


# -- the error codes are documented ----------------------------------------------------


def _codes_in_source() -> set[str]:
    codes = set()
    for path in (ROOT / "convplan").rglob("*.py"):
        codes |= set(re.findall(r"[\"']([EW]\d{3})[\"']", path.read_text(encoding="utf-8")))
    return codes


def test_every_code_is_documented_with_example_and_fix():
    docs = DOCS.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## ([EW]\d{3})\b.*?\n(.*?)(?=^## |\Z)", docs, re.M | re.S))
    missing = sorted(_codes_in_source() - set(sections))
    assert not missing, f"error codes without a section in docs/errors.md: {missing}"
    for code, body in sections.items():
        assert "```" in body, f"{code}: no example"
        assert re.search(r"\*\*Fix", body), f"{code}: no fix"


def _doc_examples():
    docs = DOCS.read_text(encoding="utf-8")
    for code, body in re.findall(r"^## ([EW]\d{3})\b.*?\n(.*?)(?=^## |\Z)", docs, re.M | re.S):
        for example in re.findall(r"```plan\n(.*?)```", body, re.S):
            yield code, example


@pytest.mark.parametrize("code, example", list(_doc_examples()), ids=lambda v: v if len(v) == 4 else "")
def test_doc_examples_produce_their_code(code, example):
    try:
        plan = convplan.parse(example, "example.plan")
    except PlanError as exc:
        got = [d.code for d in exc.diagnostics]
    else:
        got = [w.code for w in plan.warnings]
    assert code in got


def test_goldens_cover_the_codes_they_should():
    seen = set()
    for name in CASES:
        seen |= set(re.findall(r"(?:error|warning)\[(\w+)\]", (GOLDEN / f"{name}.stderr").read_text()))
    wanted = {"E001", "E004", "E005", "E006", "E010", "E013", "E014", "E015", "E016", "E017", "E100", "E101",
              "E102", "E103", "E104", "E105", "E106", "E107", "E108", "E109", "E202", "E300", "E301", "E302",
              "E310", "E320", "E321", "E322", "E400"}
    assert wanted <= seen, sorted(wanted - seen)


# -- several errors, limits ------------------------------------------------------------


def test_many_errors_are_cut_off_with_a_count():
    body = "".join(f"    Lienar{i}(3)\n" for i in range(MAX_REPORTED + 7))
    with pytest.raises(PlanError) as info:
        convplan.parse("plan Many:\n    input [N, 4]\n" + body)
    assert len(info.value.diagnostics) == MAX_REPORTED
    assert str(info.value).endswith("... and 7 more")


def test_checking_stops_after_many_errors():
    from convplan.errors import MAX_COLLECTED

    err = _refused("plan Many:\n    input [N, 4]\n" + "    Lienar(3)\n" * 5000)
    assert len(err.diagnostics) + err.extra == MAX_COLLECTED
    assert err.stopped and str(err).endswith(f"(checking stopped after {MAX_COLLECTED} errors)")


def test_solve_budget_has_its_own_error(monkeypatch):
    import convplan.solve

    text = "plan A:\n    input [N, 4, L]\n    Conv1d(4, kernel_size=5, stride=3, padding=?p) -> [N, 4, (L - 1)//3 + 1]"
    assert convplan.parse(text).unknowns == {"p": 2}  # with time, the search finds it
    monkeypatch.setattr(convplan.solve, "STEP_BUDGET", 0)
    err = _refused(text)
    assert err.diagnostics[0].code == "E323"
    assert "gave up looking for ?p" in err.diagnostics[0].message


def _refused(text: str) -> PlanError:
    with pytest.raises(PlanError) as info:
        convplan.parse(text, "x.plan")
    return info.value


def test_file_size_limit():
    err = _refused("# " + "x" * 2_000_000 + "\n")
    assert err.diagnostics[0].code == "E002"


def test_nul_byte():
    err = _refused("plan A:\n    input [N, 1, L]\n    ReLU()\0\n")
    d = err.diagnostics[0]
    assert (d.code, d.line, d.span.col) == ("E003", 3, 11)  # the caret under the NUL, not at the line's start


def test_layer_count_limit():
    from convplan.scope import MAX_LAYERS

    err = _refused("plan A:\n    input [N, 1, L]\n" + "    ReLU()\n" * (MAX_LAYERS + 1))
    assert err.diagnostics[0].code == "E007"


def test_deep_nesting_is_refused_not_recursed():
    for opener, closer in (("(", ",)"), ("-", ""), ("-(", ")")):
        text = f"plan A:\n    input [N, 1, L]\n    Conv1d({opener * 5000}1{closer * 5000}, kernel_size=3)\n"
        assert _refused(text).diagnostics[0].code == "E006"


def test_power_tower_and_long_ints_are_refused():
    # refused before the power is computed: 10**10**6 would take seconds, 10**10**9 forever
    assert _refused("plan A:\n    input [N, 1, 10**10**6]\n").diagnostics[0].code == "E111"
    assert _refused("plan A:\n    input [N, 1, 10**10**9 // 7]\n").diagnostics[0].code == "E111"
    assert _refused("plan A:\n    input [N, 1, 9**64]\n").diagnostics[0].code == "E005"
    assert _refused("plan A:\n    input [N, 1, 9**20]\n").diagnostics[0].code == "E005"  # 20 digits
    assert convplan.parse("plan A:\n    input [N, 1, 9**18]\n").output_shape[2] == 9**18  # 18 digits
    assert _refused("plan A:\n    input [N, 1, " + "9" * 5000 + "]\n").diagnostics[0].code == "E005"


def test_float_powers_without_a_real_value_are_errors_not_tracebacks():
    """Found by a hypothesis run (test_rule_fast_paths): `0 ** -0.5` raised Python's ZeroDivisionError out of
    `convplan check`; `(-1) ** 0.5` was called out of range with a complex number shown as its value."""
    head = "plan A:\n    input x [N, 4]\n    a = 0\n    Linear(x, int("
    for written, code, message in (("a ** (-0.5)", "E109", "0 ** -0.5: zero to a negative power"),
                                   ("0.0 ** -1", "E109", "0.0 ** -1: zero to a negative power"),
                                   ("(-1) ** 0.5", "E005", "(-1) ** 0.5 is a complex number")):
        err = _refused(head + written + ") + 1)\n")
        assert [d.code for d in err.diagnostics] == [code], written
        assert message in err.diagnostics[0].message
        assert err.diagnostics[0].span.line == 4


def test_products_cannot_build_huge_integers():
    text = "plan A:\n    input [N, 1, " + "*".join(["999999999999999999"] * 40) + "]\n    ReLU()\n"
    err = _refused(text)
    assert err.diagnostics[0].code == "E005"


@pytest.mark.parametrize("expr", ["2 ** (f + 999999999999)", "10 ** (f * 1000)", "(f + 2) ** 99999"])
def test_a_float_power_past_the_float_range_is_refused(expr):
    """An int raised to a float Python hands to float.__rpow__, which raises OverflowError: E005, not a traceback
    (found by test_whole_number_expressions_equal_sympys)."""
    result = convplan.analyse(f"plan P(f=0.5):\n    input [N, L]\n    if 1 == ({expr}):\n        Linear(8)\n")
    assert [d.code for d in result.diagnostics] == ["E005"]
    assert result.diagnostics[0].span.line == 3


# -- names and injection ---------------------------------------------------------------

PAYLOAD = "__import__('os').system('touch /tmp/convplan-pwned')"
SLOTS = [
    "plan {p}:\n    input [N, 1, L]\n    ReLU()\n",
    "plan A({p}=1):\n    input [N, 1, L]\n    ReLU()\n",
    "plan A:\n    input [N, {p}, L]\n    ReLU()\n",
    "plan A:\n    input [N, 1, L]\n    {p}\n",
    "plan A:\n    input [N, 1, L]\n    Conv1d({p}, kernel_size=3)\n",
    "plan A:\n    input [N, 1, L]\n    Conv1d(3, {p}=3)\n",
    "plan A:\n    input [N, 1, L]\n    Conv1d(3, kernel_size=3, padding_mode=\"{p}\")\n",
    "plan A:\n    input [N, 1, L]\n    Conv1d(3, kernel_size=3, padding=\"{p}\")\n",
    "plan A:\n    input [N, 1, L]\n    Conv1d(3, kernel_size=3, padding=?{p}) -> [N, 3, L]\n",
    "plan A:\n    input [N, 1, L]\n    ReLU() -> [N, 1, {p}]\n",
    "plan A:\n    input [N, 1, L]\n    x = ReLU()\n    {p}\n",
    "plan A:\n    input [N, 1, L]\n    {p} = ReLU()\n",
    "block {p}:\n    input [N, 1, L]\n    ReLU()\nplan A:\n    input [N, 1, L]\n    ReLU()\n",
    'import "{p}"\nplan A:\n    input [N, 1, L]\n    ReLU()\n',
    'from "x.plan" import {p}\nplan A:\n    input [N, 1, L]\n    ReLU()\n',
    "plan A:\n    input [N, 1, L]\n    repeat {p} in 3:\n        ReLU()\n",
    "plan A:\n    input [N, 1, L]\n    add:\n        branch {p}:\n            ReLU()\n"
    "        branch:\n            pass\n",
    "plan A:\n    input [N, 1, L]\n    x = ReLU()\n    output {p}\n",
    "plan A:\n    input {p} [N, 1, L]\n    ReLU()\n",
]
NAMES = ["__import__", "eval", "exec", "class", "match", "__class__", "open", "_" * 100, "lambda"]


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("payload", [PAYLOAD, *NAMES])
def test_payloads_are_refused_and_nothing_runs(slot, payload):
    SENTINEL.unlink(missing_ok=True)
    err = _refused(slot.format(p=payload.replace('"', "'") if '"' in slot else payload))
    lines = slot.count("\n") + 1
    assert all(1 <= d.line <= lines for d in err.diagnostics)
    assert not SENTINEL.exists()


@pytest.mark.parametrize("name", ["a" * 65, "sum", "print", "__x__", "None_", "type"])
def test_name_rules(name):
    text = f"plan A({name}=1):\n    input [N, 1, L]\n    ReLU()\n"
    if name == "None_":
        convplan.parse(text)  # an ordinary identifier
        return
    assert _refused(text).diagnostics[0].code == "E202"


# -- the command line ------------------------------------------------------------------


@pytest.mark.parametrize("argv, code, words", [
    (["check", "examples/cnn1d.plan", "--set", "L=-3"], 2, "between 1 and"),
    (["check", "examples/cnn1d.plan", "--set", "L=abc"], 2, "is not an integer"),
    (["check", "examples/cnn1d.plan", "--set", "L"], 2, "NAME=INT"),
    (["check", "examples/cnn1d.plan", "--set", "1L=3"], 2, "NAME=INT"),
    (["check", "examples/cnn1d.plan", "--set", "L=" + "9" * 5000], 2, "between 1 and"),
    (["check", "examples/cnn1d.plan", "--set", "Q=3"], 1, "no size or parameter named 'Q'"),
    (["check", "tests/golden/errors/does-not-exist.plan"], 1, "No such file"),
    (["check", "tests"], 1, "is a directory"),
    (["check", "tests/golden/errors/empty.plan"], 1, "no plan"),
])
def test_cli_errors_are_one_located_message(argv, code, words):
    got, out, err = run_cli(*argv)
    assert got == code
    assert words.lower() in err.lower()
    assert "Traceback" not in err
    assert out == ""


def test_cli_not_utf8(tmp_path):
    bad = tmp_path / "latin1.plan"
    bad.write_bytes(b"plan A:\n    input [N, 1, L]\n    # caf\xe9\n    ReLU()\n")
    code, _, err = run_cli("check", str(bad))
    assert code == 1
    assert f"{bad}:3:" in err and "not UTF-8" in err


# -- the suggested fixes work ----------------------------------------------------------

import itertools  # noqa: E402


def _apply_fix(line: str, hint: str) -> str | None:
    """The layer line with a hint's fix applied: `padding=2 gives ...` or `pad 3 unevenly with ZeroPad1d(...)`."""
    m = re.match(r"(\w+)=(\(.*?\)|-?\d+) gives", hint)
    if m:
        name, value = m.groups()
        return re.sub(rf"{name}=(\(.*?\)|-?\d+)", f"{name}={value}", line)
    m = re.search(r"with (ZeroPad\dd\(.*\)) before \w+, and (\w+)=(\(.*?\)|-?\d+)", hint)
    if m:
        pad, name, value = m.groups()
        indent = line[: len(line) - len(line.lstrip())]
        return f"{indent}{pad}\n" + re.sub(rf"{name}=(\(.*?\)|-?\d+)", f"{name}={value}", line)
    return None


def test_suggested_fixes_make_the_assertion_true():
    """Every `padding=2 gives ...` and `ZeroPad1d(...)` hint, applied to the plan, gives an accepted plan."""
    applied = []
    grid = itertools.product(range(1, 6), range(0, 3), range(1, 3), range(1, 3),
                             ["L", "L // 2", "(L + 1) // 2", "L - 2", "L + 2"])
    for k, p, s, d, target in grid:
        line = f"    Conv1d(4, kernel_size={k}, stride={s}, padding={p}, dilation={d}) -> [N, 4, {target}]"
        try:
            convplan.parse("plan Fix:\n    input [N, 2, L]\n" + line + "\n")
            continue
        except PlanError as exc:
            hints = [h for dg in exc.diagnostics if dg.code == "E322" for h in dg.hints]
        for hint in hints:
            fixed = _apply_fix(line, hint)
            if fixed is not None:
                convplan.parse("plan Fix:\n    input [N, 2, L]\n" + fixed + "\n")  # no PlanError
                applied.append(hint)
    assert len(applied) > 50
    assert any("ZeroPad1d" in h for h in applied) and any(h.startswith("padding=") for h in applied)


def test_an_assertion_requirement_names_its_own_layer():
    plan = convplan.parse("plan A:\n    input [N, 1, L]\n    MaxPool1d(2)\n"
                          "    Conv1d(1, kernel_size=1) -> [N, 1, (L + 1) // 2]\n")
    asserted = [r for r in plan.requires if "asserted" in r.reason]
    assert [(r.layer, r.span.line) for r in asserted] == [("conv1", 4)]


@pytest.mark.parametrize("odd", ["\f", "\v", "\x1c", "\x85", "\u2028", "\u2029"])
def test_line_breaks_other_than_newline_do_not_move_the_caret(odd):
    """str.splitlines breaks at these, the parser does not: an error after them is still shown on its own line."""
    text = f"plan A:\n    input [N, 1, L]  # a{odd}b\n    Conv1d(2, 3) Conv1d\n"
    with pytest.raises(PlanError) as info:
        convplan.parse(text, "odd.plan")
    (d,) = info.value.diagnostics
    assert (d.span.line, d.span.col) == (3, 18)
    assert "   3 |     Conv1d(2, 3) Conv1d\n" in str(info.value)
    with pytest.raises(PlanError):  # the syntax-error recovery counts lines the same way (this was an IndexError)
        convplan.parse(f"planA:#{odd}{odd}c\n", "odd.plan")


def test_a_merge_given_a_number_says_it_takes_tensors():
    base = "plan A:\n    input [N, 4, L]\n    a = ReLU()\n    b = ReLU()\n"
    (d,) = _refused(base + "    add(a, b, 3)\n").diagnostics
    assert (d.code, d.message, d.span.col) == ("E103", "add takes only tensors, and this is not one", 15)
    (d,) = _refused(base + "    cat(a, b, 1, 2)\n").diagnostics
    assert d.message == "cat takes at most 1 positional argument after the tensors" and d.hints == ("cat takes dim",)


def test_batchnorm_on_an_unbatched_input_asks_for_the_batch_dim():
    """BatchNorm1d would accept [C, H, W] but read C as the batch: the hint is the missing batch dim."""
    (d,) = _refused("plan A:\n    input [C, H, W]\n    BatchNorm2d()\n").diagnostics
    assert d.code == "E301"
    assert d.hints == ("BatchNorm2d takes batched input only: give the input a batch dim, [N, C, H, W]",)
    (d,) = _refused("plan A:\n    input [N, C, H, W, D]\n    BatchNorm2d()\n").diagnostics
    assert d.hints == ("for a 5-D input use BatchNorm3d",)
    (d,) = _refused("plan A:\n    input [N, 16, L]\n    BatchNorm2d()\n").diagnostics  # batched 1-D: the family
    assert d.hints == ("for a 3-D input use BatchNorm1d",)
