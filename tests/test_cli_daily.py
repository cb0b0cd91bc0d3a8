"""The command line in daily use: several files and globs in one call, `-` for standard input,
--strict for CI, colour on a terminal only."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from convplan import cli

ROOT = Path(__file__).resolve().parent.parent
WARNS = "plan W:\n    input [N, 1, L]\n    MaxPool1d(2)\n"  # W310 and nothing else
CLEAN = "plan C:\n    input [N, 1, 8]\n    MaxPool1d(2)\n"
BAD = "plan B:\n    input [N, 1, L]\n    Conv1d(4, kernel_size=0)\n"


def run(capsys, *argv, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def plans(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, text in (("w.plan", WARNS), ("c.plan", CLEAN), ("b.plan", BAD)):
        Path(name).write_text(text)
    return tmp_path


# -- --strict ------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["check"], ["cost"], ["explain", "--set", "L=10"], ["verify", "--set", "L=10"]])
def test_strict_fails_on_a_warning_and_only_with_one(plans, capsys, argv):
    code, out, err = run(capsys, *argv, "w.plan")
    assert code == 0 and "warning[W310]" in err and out
    code, out, err = run(capsys, *argv, "w.plan", "--strict")
    assert code == 1 and "warning[W310]" in err and "--strict: 1 warning in w.plan" in err
    assert out  # the work is still shown
    code, _, err = run(capsys, *[a.replace("L=10", "N=1") for a in argv], "c.plan", "--strict")
    assert code == 0 and "--strict" not in err


def test_strict_codegen_writes_nothing(plans, capsys):
    code, _, err = run(capsys, "codegen", "w.plan", "-o", "w.py", "--strict")
    assert code == 1 and "--strict: 1 warning" in err and not Path("w.py").exists()
    code, _, _ = run(capsys, "codegen", "w.plan", "-o", "w.py")
    assert code == 0 and Path("w.py").exists()


def test_strict_json_says_why_it_failed(plans, capsys):
    code, out, _ = run(capsys, "check", "w.plan", "--json", "--strict")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["failed"] == "--strict: 1 warning in w.plan"
    assert [w["code"] for w in data["warnings"]] == ["W310"]


# -- several files, globs, stdin ------------------------------------------------------------


def test_several_files_each_get_output_and_the_worst_exit_status(plans, capsys):
    code, out, err = run(capsys, "check", "c.plan", "b.plan", "w.plan")
    assert code == 1
    assert "plan C" in out and "plan W" in out and "plan B" not in out
    assert "b.plan:3:5: error[E300]" in err or "b.plan:3:" in err
    assert out.index("plan C") < out.index("plan W")
    code, out, _ = run(capsys, "check", "c.plan", "w.plan")
    assert code == 0 and out.count("\nplan ") + out.startswith("plan ") == 2


def test_a_quoted_glob_is_expanded_sorted_and_a_glob_matching_nothing_is_e011(plans, capsys):
    code, out, _ = run(capsys, "check", "[cw].plan")
    assert code == 0 and out.index("plan C") < out.index("plan W")
    code, _, err = run(capsys, "check", "c.plan", "nothing*.plan")
    assert code == 1 and err.startswith("nothing*.plan: error[E011]: no file matches this pattern")
    code, _, err = run(capsys, "check", "missing.plan")  # no fake 1:1 for a file that is not there
    assert code == 1 and err.startswith("missing.plan: error[E011]: no such file or directory\n")


def test_the_examples_check_in_one_call(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "check", "examples/*.plan", "--json")
    data = json.loads(out)
    names = sorted(p.name for p in (ROOT / "examples").glob("*.plan"))
    assert code == 0 and data["ok"] is True and len(data["files"]) == len(names) > 5
    assert sorted(Path(f["file"]).name for f in data["files"]) == names
    assert next(f for f in data["files"] if f["plan"] == "AlexNet")["total_params"] == 61_100_840


def test_json_for_several_files_marks_each(plans, capsys):
    code, out, _ = run(capsys, "check", "c.plan", "b.plan", "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert [(f["file"], f["ok"]) for f in data["files"]] == [("c.plan", True), ("b.plan", False)]
    assert data["files"][1]["diagnostics"][0]["line"] == 3


def test_dash_reads_standard_input_named_stdin(plans, capsys, monkeypatch):
    code, out, err = run(capsys, "check", "-", stdin=WARNS, monkeypatch=monkeypatch)
    assert code == 0 and "plan W  (<stdin>)" in out and err.startswith("<stdin>:3:5: warning[W310]")
    code, _, err = run(capsys, "check", "-", stdin=BAD, monkeypatch=monkeypatch)
    assert code == 1 and err.startswith("<stdin>:3:")
    code, out, _ = run(capsys, "codegen", "-", stdin=CLEAN, monkeypatch=monkeypatch)
    assert code == 0 and "class C(nn.Module)" in out
    code, _, err = run(capsys, "check", "-", "-", stdin=CLEAN, monkeypatch=monkeypatch)
    assert code == 2 and "twice" in err


def test_stdin_that_is_not_utf8_is_e012(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"plan P:\n    input [\xff]\n")))
    code = cli.main(["check", "-"])
    assert code == 1 and capsys.readouterr().err.startswith("<stdin>:2:12: error[E012]")  # the byte's column, not 1


def test_a_byte_that_is_not_utf8_is_located_at_its_column(tmp_path):
    """E012 said column 1 whatever the byte's place in its line (the column counts characters: é is one), and
    after a BOM it named the byte 3 before the bad one and its offset 3 short."""
    import convplan

    path = tmp_path / "p.plan"
    path.write_bytes(b"\xef\xbb\xbfplan P:\n    input [N, 3]  # \xc3\xa9\xff\n")  # a BOM, then é in UTF-8
    with pytest.raises(convplan.PlanError) as err:
        convplan.load(path)
    error = err.value.diagnostics[0]
    assert (error.span.line, error.span.col) == (2, 22)
    assert error.message == "the file is not UTF-8 text (byte 0xff at offset 33)"  # was 0x20 at 30: the BOM


def test_stdin_imports_are_relative_to_the_working_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples" / "lib", "lib")
    text = (ROOT / "examples" / "mobilenet_se.plan").read_text()
    code, out, _ = run(capsys, "check", "-", stdin=text, monkeypatch=monkeypatch)
    assert code == 0 and "(<stdin>)" in out


# -- colour ----------------------------------------------------------------------------------

RED, YELLOW = "\x1b[1;31m", "\x1b[1;33m"


def test_colour_always_paints_errors_red_warnings_yellow_and_the_carets(plans, capsys):
    _, _, err = run(capsys, "check", "b.plan", "--color=always")
    assert f"{RED}error[E300]:" in err and f"{RED}^" in err
    _, _, err = run(capsys, "check", "w.plan", "--color=always")
    assert f"{YELLOW}warning[W310]:" in err and f"{YELLOW}^" in err


@pytest.mark.parametrize("flag", ["--color=never", "--color=auto"])
def test_no_colour_when_not_asked_or_not_a_terminal(plans, capsys, flag):
    _, _, err = run(capsys, "check", "b.plan", "w.plan", flag)  # capsys' stderr is no terminal
    assert "\x1b" not in err and "error[E300]" in err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_colours_a_terminal_unless_no_color_or_dumb(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    assert cli.use_color("auto", _Tty()) is True
    assert cli.use_color("auto", io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli.use_color("auto", _Tty()) is False
    assert cli.use_color("always", io.StringIO()) is True  # asked for explicitly
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: an empty value does not count
    assert cli.use_color("auto", _Tty()) is True
    monkeypatch.setenv("TERM", "dumb")
    assert cli.use_color("auto", _Tty()) is False
    assert cli.use_color("never", _Tty()) is False


def test_colour_on_a_terminal_through_main(plans, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert cli.main(["check", "b.plan"]) == 1
    assert RED in tty.getvalue()


def test_check_with_set_shows_and_judges_the_warnings_at_those_sizes(plans, capsys):
    code, out, err = run(capsys, "check", "w.plan", "--set", "L=8", "--strict")  # L = 8: MaxPool1d(2) drops none
    assert code == 0 and "W310" not in err and "[N, 1, 4]" in out
    code, _, err = run(capsys, "check", "w.plan", "--set", "L=9", "--strict")
    assert code == 0 and "W310" not in err  # a number: the shape says what is kept, as for `input [N, 1, 9]`
    code, _, err = run(capsys, "check", "w.plan", "--strict")
    assert code == 1 and "W310" in err
