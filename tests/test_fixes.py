"""Hints that are concrete edits carry them (`Diagnostic.fixes`): each fix, applied to the golden plan
it was found in, removes its diagnostic and reveals no new error; the fixes applied in turn (fix,
check again, fix) end in a plan that `convplan check` accepts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan.fixes import apply

GOLDEN = Path(__file__).parent / "golden" / "errors"


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
    before = Counter(d.code for d in convplan.analyse_file(path).errors)
    before[diag.code] -= diag.severity == "error"
    left = Counter(d.code for d in after.errors)
    assert left <= before, left  # the other errors may stay; none appears that the fixed one hid


@pytest.mark.parametrize("path", sorted({p.values[0] for p in FIXABLE}), ids=lambda p: p.stem)
def test_fixes_in_turn_end_in_a_plan_that_checks(path):
    text = path.read_text(encoding="utf-8")
    for _ in range(20):
        fixable = [d for d in convplan.analyse(text, str(path)).diagnostics if d.fixes]
        if not fixable:
            break
        text = apply(text, fixable[0].fixes[0].edits)
    convplan.parse(text, str(path))  # what `convplan check` runs: raises if refused


def test_all_fixes_of_several_errors_together():
    path = GOLDEN / "several_errors.plan"
    text = path.read_text(encoding="utf-8")
    edits = [e for d in convplan.analyse(text).diagnostics for f in d.fixes[:1] for e in f.edits]
    after = convplan.analyse(apply(text, edits))
    assert after.ok, after.errors


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


# -- a kind for another rank: its per-dim tuples rewritten so the written dims keep their meaning ------

FAMILIES = {"Conv": ("kernel_size", "stride", "padding", "dilation"), "MaxPool": ("kernel_size", "stride", "padding"),
            "AvgPool": ("kernel_size", "stride", "padding")}


@settings(max_examples=40, deadline=None)
@given(family=st.sampled_from(sorted(FAMILIES)), nd=st.sampled_from([1, 2]), extra=st.sampled_from([1, 2]),
       data=st.data())
def test_the_rank_fix_keeps_the_written_dims(family, nd, extra, data):
    """`Conv2d(4, kernel_size=(1, 2))` on a 5-D input: the fix is Conv3d with kernel_size=(1, 1, 2), and the
    last dims of its output are what torch's Conv2d makes of one slice of the input."""
    import torch

    new = nd + extra
    if new > 3:
        return
    names = FAMILIES[family]
    values = {}
    for name in names:
        low = 0 if name == "padding" else 1
        values[name] = tuple(data.draw(st.integers(low, 2 if name != "kernel_size" else 3)) for _ in range(nd))
    values["padding"] = tuple(min(p, k // 2) for p, k in zip(values["padding"], values["kernel_size"], strict=True))
    sizes = [data.draw(st.integers(8, 12)) for _ in range(new)]
    args = ", ".join(f"{k}={v}" for k, v in values.items())
    head = "4, " if family == "Conv" else ""
    text = f"plan P:\n    input [2, 3, {', '.join(map(str, sizes))}]\n    {family}{nd}d({head}{args})\n"
    [diag] = convplan.analyse(text).errors
    assert diag.code == "E301" and diag.fixes, diag
    fixed = apply(text, diag.fixes[0].edits)
    plan = convplan.parse(fixed)  # accepted
    assert plan.layers[0].kind == f"{family}{new}d"
    layer = getattr(torch.nn, f"{family}{nd}d")(*([3, 4] if family == "Conv" else []), **values)
    one = torch.zeros(2, 3, *sizes[extra:])  # the input without its extra leading dims
    assert tuple(plan.output_shape[-nd:]) == tuple(layer(one).shape[-nd:])
    assert tuple(plan.output_shape[2:2 + extra]) == tuple(sizes[:extra])  # the added dims are left as they are


def test_the_rank_fix_drops_a_dim_that_was_left_as_is():
    text = "plan P:\n    input [N, 3, L]\n    Conv3d(4, kernel_size=(1, 1, 3), stride=(1, 1, 2))\n"
    diag = convplan.analyse(text).errors[0]
    fixed = apply(text, diag.fixes[0].edits)
    assert fixed.splitlines()[2] == "    Conv1d(4, kernel_size=3, stride=2)"
    import torch

    plan = convplan.parse(fixed)
    assert plan.evaluate(plan.output_shape, N=2, L=11) == tuple(torch.nn.Conv1d(3, 4, 3, stride=2)(
        torch.zeros(2, 3, 11)).shape)
    # a dim with a real kernel cannot be dropped: the kind is named in the hint, but no edit is offered
    text = text.replace("(1, 1, 3)", "(2, 1, 3)")
    diag = convplan.analyse(text).errors[0]
    assert diag.hints and not diag.fixes
