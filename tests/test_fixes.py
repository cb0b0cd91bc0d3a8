"""Hints that are concrete edits carry them (`Diagnostic.fixes`): each fix, applied to the golden plan
it was found in, removes its diagnostic, and the plan then checks (unless an independent error was
hidden behind the one fixed, which is then named here)."""

from __future__ import annotations

from pathlib import Path

import pytest

import convplan
from convplan.fixes import apply

GOLDEN = Path(__file__).parent / "golden" / "errors"

# golden plan -> the errors left after its fix: ones the first error hid, which no hint can fix
REVEALED = {
    "rank_conv2d_volume.plan": {"E300"},  # Conv3d wants 3 kernel sizes, the plan wrote 2
    "several_errors.plan": {"E100", "E103", "E106", "E301"},  # one fix at a time; eps='small' has none
    "syntax_several.plan": {"E001", "E015"},  # one syntax error fixed, the next ones reported
}


def _fixable():
    for path in sorted(GOLDEN.glob("*.plan")):
        result = convplan.analyse_file(path)
        for diag in result.diagnostics:
            for k, fix in enumerate(diag.fixes):
                yield pytest.param(path, diag, fix, id=f"{path.stem}-{diag.code}-{k}")


FIXABLE = list(_fixable())


def test_the_issue_fixes_are_there():
    kinds = {fix.hint.split()[0] for _, diag, fix in (p.values for p in FIXABLE)}
    assert {"did", "padding=2", "insert", "leave"} <= kinds
    assert len(FIXABLE) >= 20


@pytest.mark.parametrize(("path", "diag", "fix"), FIXABLE)
def test_fix_removes_its_diagnostic(path, diag, fix):
    text = path.read_text(encoding="utf-8")
    fixed = apply(text, fix.edits)
    assert fixed != text
    shift = fixed.count("\n") - text.count("\n")  # a line inserted above moves the statement down
    after = convplan.analyse(fixed, str(path))
    assert not [d for d in after.diagnostics if d.code == diag.code and d.span.line == diag.span.line + shift]
    left = {d.code for d in after.errors}
    assert left <= REVEALED.get(path.name, set()), left
    if path.name not in REVEALED:
        convplan.parse(fixed, str(path))  # what `convplan check` runs: raises if refused


def test_all_fixes_of_several_errors_together():
    path = GOLDEN / "several_errors.plan"
    text = path.read_text(encoding="utf-8")
    edits = [e for d in convplan.analyse(text).diagnostics for f in d.fixes[:1] for e in f.edits]
    after = convplan.analyse(apply(text, edits))
    assert [d.code for d in after.errors] == ["E106"]  # eps='small': no value to suggest


def test_fixes_are_in_json():
    diag = convplan.analyse_file(GOLDEN / "unknown_layer_typo.plan").diagnostics[0]
    data = diag.to_dict()
    assert data["fixes"][0]["hint"] == data["hints"][0]
    edit = data["fixes"][0]["edits"][0]
    assert (edit["line"], edit["column"], edit["text"]) == (diag.span.line, diag.span.col, "Linear")


def test_apply_removes_an_argument_and_its_comma():
    text = "plan P:\n    input [N, 4]\n    Linear(in_features=4, out_features=2)\n"
    diag = convplan.analyse(text).errors[0]
    assert apply(text, diag.fixes[0].edits).splitlines()[2] == "    Linear(out_features=2)"


def test_torch_order_in_a_block_of_another_file_reads_that_file(tmp_path):
    (tmp_path / "lib.plan").write_text("block Head:\n    input [N, F]\n    Linear(320, 10)\n", encoding="utf-8")
    main = tmp_path / "main.plan"
    main.write_text('from "lib.plan" import Head\nplan P:\n    input [N, 320]\n    Head()\n', encoding="utf-8")
    diag = convplan.analyse_file(main).errors[0]
    assert diag.file.endswith("lib.plan")
    assert diag.hints[-1].endswith("so write Linear(10)")  # the call's text in lib.plan, not main.plan's
    assert apply((tmp_path / "lib.plan").read_text(), diag.fixes[0].edits).splitlines()[2] == "    Linear(10)"
