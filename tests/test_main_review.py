"""Findings of trying the merged main as a new user (review of issues 13 and 14): each test failed before its fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from convplan import cli

ROOT = Path(__file__).resolve().parent.parent
CNN1D = str(ROOT / "examples" / "cnn1d.plan")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command, starts", [("codegen", "from torch import fx, nn"), ("draw", "digraph")])
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


def test_the_language_server_answers_nothing_about_a_document_it_cannot_read(tmp_path):
    # a request about a file that is neither open nor readable was an internal error with a Python traceback
    from _lsp_client import Client

    binary = tmp_path / "binary.plan"
    binary.write_bytes(b"\xff\xfe\x00plan")
    c = Client()
    try:
        for path in (tmp_path / "missing.plan", binary):
            assert c.at("textDocument/hover", path, 0, 0) is None
            assert c.at("textDocument/definition", path, 0, 0) == []
            assert c.request("textDocument/documentSymbol", {"textDocument": {"uri": path.as_uri()}}) == []
        assert c.request("textDocument/hover", {"textDocument": {"uri": "untitled:Untitled-1"},
                                                "position": {"line": 0, "character": 0}}) is None
        good = c.open(tmp_path / "good.plan", "plan P:\n    input [N, 3]\n    Linear(4)\n")
        assert good == []  # the server is still there and answers
        assert "Traceback" not in c.server_stderr()
    finally:
        c.shutdown()


def test_importing_a_directory_says_so(tmp_path):
    # it said "no such file (/the/dir)" of a directory that is there
    import convplan

    (tmp_path / "lib").mkdir()
    text = 'from "lib" import B\nplan P:\n    input [N, 3]\n    B()\n'
    error, call = convplan.analyse(text, str(tmp_path / "p.plan")).errors
    assert (error.code, error.message) == ("E023", "cannot import lib: is a directory")
    assert (error.span.line, error.span.col) == (1, 6)
    assert (call.code, call.span.line) == ("E100", 4)  # the rest is checked: B is unknown, and why


def test_completion_at_the_margin_offers_what_starts_a_file(tmp_path):
    # at the start of an empty file it offered layer kinds and `residual:`, which cannot stand there, and no `plan`
    from _lsp_client import Client

    path = tmp_path / "new.plan"
    body = "plan P:\n    input [N, 3]\n    Linear(4)\n"
    c = Client()
    try:
        c.open(path, "")
        for text, line, col in [("", 0, 0), ("pl", 0, 2), ("# sizes: H=8\n", 1, 0), (body + "\n", 3, 0)]:
            c.change(path, text)
            items = c.at("textDocument/completion", path, line, col)["items"]
            assert {i["label"] for i in items} == {"plan", "block", "from", "import"}, text
        c.change(path, body + "    \n")  # indented: a statement of the body, as before
        items = {i["label"] for i in c.at("textDocument/completion", path, 3, 4)["items"]}
        assert {"Conv2d", "residual:", "input"} <= items and "plan" not in items
    finally:
        c.shutdown()


def test_hover_on_a_blocks_input_line_says_input_not_0_nodes():
    # a block's `input [N, C, H, W]` makes no node: each call was listed as "0 nodes → [shape]"
    from _lsp_client import Client

    path = ROOT / "examples" / "mobilenet_se.plan"
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines) if text.strip().startswith("input [N, C"))
    c = Client()
    try:
        c.open(path)
        text = c.at("textDocument/hover", path, line, lines[line].index("input") + 1)["contents"]["value"]
    finally:
        c.shutdown()
    calls = [row for row in text.splitlines() if row.startswith("- ")]
    assert calls and "0 nodes" not in text
    assert all(row.startswith("- input → `[N, ") for row in calls), text


def test_the_readmes_explain_example_is_what_its_command_prints(capsys):
    # the README printed [1, 1, 10] -> [1, 32, 6] under a command (`--set L=10`) that prints [N, 1, 10]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"\(`convplan (explain [^`]+)`\):\n\n```\n(.*?)```", readme, re.S)
    assert command, "the README's explain example names its command"
    argv = [str(ROOT / a) if a.endswith(".plan") else a for a in command.group(1).split()]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    shown = [line for line in command.group(2).splitlines() if line]
    printed = out.splitlines()
    start = printed.index(shown[0])
    assert printed[start: start + len(shown)] == shown


@pytest.mark.parametrize("argv", [("check", ""), ("verify", CNN1D, ""), ("codegen", CNN1D, "-o", ""),
                                  ("draw", CNN1D, "-o", "")])
def test_an_empty_file_name_is_named_as_such(capsys, argv):
    # an empty name became Path("") == ".": "-o .: cannot tell the format", ".: error[E011]: is a directory"
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert "an empty file name" in err and " ." not in err and ".:" not in err, err


def test_a_missing_import_from_standard_input_says_where_it_was_looked_for(tmp_path, capsys, monkeypatch):
    # `convplan check - < examples/mobilenet_se.plan` looked for lib/ in the current directory and did not say why
    import io

    monkeypatch.chdir(tmp_path)
    text = (ROOT / "examples" / "mobilenet_se.plan").read_text(encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, _, err = run(capsys, "check", "--color=never", "-")
    assert code == 1
    assert f"no such file ({tmp_path / 'lib' / 'mobile_blocks.plan'})" in err
    assert "hint: the imports of <stdin> are found from the current directory" in err


def test_an_import_of_the_empty_path_says_so(tmp_path):
    # it was "cannot import : is a directory": the empty path resolved to the importing file's folder
    import convplan

    text = 'from "" import B\nplan P:\n    input [N, 3]\n    B()\n'
    first = convplan.analyse(text, str(tmp_path / "p.plan")).errors[0]
    assert (first.code, first.span.line, first.span.col) == ("E023", 1, 6)
    assert first.message == "cannot import an empty path: name the file"


def test_an_import_that_is_not_utf8_is_reported_at_the_import(tmp_path):
    # it was "bin.plan:1:1: error[E012]: the file is not UTF-8 text", naming neither the importing file nor its line
    import convplan

    (tmp_path / "bin.plan").write_bytes(b"\xff\xfe\x00block")
    text = 'plan P:\n    input [N, 3]\n    Linear(4)\nfrom "bin.plan" import B\n'
    [error] = convplan.analyse(text, str(tmp_path / "p.plan")).errors
    assert (error.code, error.file, error.span.line, error.span.col) == ("E023", str(tmp_path / "p.plan"), 4, 6)
    assert error.message == "cannot import bin.plan: the file is not UTF-8 text (byte 0xff at offset 0)"


def test_holds_is_no_where_any_part_of_an_or_divides_by_zero():
    # hypothesis found it (tests/test_shapes.py): `k >= 0 or 0 == 0//k` at k = 0 held, short-circuited before the
    # division; the substitution (and so `holds`' contract) divides by zero, which is a no
    import sympy

    from convplan import shapes

    k = sympy.Symbol("k", integer=True)
    cond = sympy.Or(k >= 0, sympy.Eq(0, shapes.FloorDiv(0, k), evaluate=False))
    assert shapes.holds(cond, {k: sympy.Integer(0)}) is False
    assert shapes.holds(cond, {k: sympy.Integer(3)}) is True
