"""What a new user meets first: the README's and docs/language.md's printed output, and the
diagnostics for mistakes a PyTorch user makes (torch's argument order, a misspelt tensor in a
merge, a forgotten `dim=1`, unquoted strings).  Each test failed before its fix."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest
import torch

import convplan
from convplan import cli
from convplan.errors import PlanError
from convplan.show import show_shape

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
LANGUAGE = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")


def run_cli(*argv: str, cwd: Path = ROOT) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def refused(text: str) -> list:
    with pytest.raises(PlanError) as info:
        convplan.parse(text, "m.plan")
    return info.value.diagnostics


def warnings(text: str, code: str) -> list:
    return [w for w in convplan.parse(text, "m.plan").warnings if w.code == code]


def block_after(doc: str, marker: str) -> str:
    """The text of the fenced block that starts with `marker` (without the fence)."""
    start = doc.index(marker)
    return doc[start: doc.index("```", start)]


# -- the documents print what the tool prints -------------------------------------------


def test_readme_check_output_is_the_real_output():
    shown = block_after(README, "$ convplan check examples/cnn1d.plan\n").split("\n", 1)[1]
    code, out, err = run_cli("check", "examples/cnn1d.plan")
    assert code == 0 and out == shown
    warning = block_after(README, "examples/cnn1d.plan:7:5: warning[W310]")
    assert err.startswith(warning)


def test_readme_error_example_is_the_real_output():
    shown = block_after(README, "$ convplan check tests/golden/errors/assert_padding.plan\n").split("\n", 1)[1]
    code, out, err = run_cli("check", "tests/golden/errors/assert_padding.plan")
    assert code == 1 and out == "" and err == shown


def test_readme_python_comments_are_what_python_prints():
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    snippet = block_after(README, "import convplan\n")
    comments = dict(re.findall(r"^(\S.*?)\s+# (.*)$", snippet, re.M))
    assert comments["plan.output_shape"].startswith(repr(plan.output_shape))
    assert comments['plan.layers[-1].args["in_features"]'].startswith(repr(plan.layers[-1].args["in_features"]))
    assert comments["[str(r) for r in plan.requires]"] == repr([str(r) for r in plan.requires])


def test_language_import_example_is_the_real_output(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.plan").write_text(
        "block Unit(c):\n    input x [N, C, L]\n    Conv1d(c, kernel_size=5)\n    add(x)\n")
    (tmp_path / "main.plan").write_text('from "lib/blocks.plan" import Unit\nplan Main:\n    input [N, 2, L]\n'
                                        "    Unit(2)\n")
    shown = block_after(LANGUAGE, "lib/blocks.plan:4:5: error[E330]")
    code, _, err = run_cli("check", "main.plan", cwd=tmp_path)
    assert code == 1 and err == shown


# -- torch's argument order -------------------------------------------------------------


def plan(layer: str, shape: str = "[N, 64, 8, 8]") -> str:
    return f"plan A:\n    input {shape}\n    {layer}\n"


@pytest.mark.parametrize("layer, arg, fix, code", [
    ("BatchNorm2d(64)", "eps=64", "BatchNorm2d()", "E112"),  # the input's channels: surely torch's order
    ("BatchNorm2d(64, affine=False)", "eps=64", "BatchNorm2d(affine=False)", "E112"),
    ("InstanceNorm2d(64)", "eps=64", "InstanceNorm2d()", "E112"),
    ("BatchNorm2d(32)", "eps=32", "BatchNorm2d()", "W320"),  # not even the input's channels: still no eps
    ("GroupNorm(8, 64)", "num_groups=8, eps=64", "GroupNorm(8)", "E112"),
    ("GroupNorm(8, 32)", "num_groups=8, eps=32", "GroupNorm(8)", "W320"),
])
def test_a_norm_layer_in_torch_order_is_flagged(layer, arg, fix, code):
    (found,) = [d for d in convplan.analyse(plan(layer)).diagnostics if d.code in ("W320", "E112")]
    assert found.code == code and f"reads as {arg}:" in found.message
    assert found.hints[-1].endswith(f"so write {fix}")


def test_the_flagged_norm_really_gets_that_eps():
    model = convplan.parse(plan("BatchNorm2d(32)")).build(N=2)
    (bn,) = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn.num_features == 64 and bn.eps == 32.0  # what the warning says happens


@pytest.mark.parametrize("layer", ["BatchNorm2d()", "BatchNorm2d(1e-3)", "BatchNorm2d(eps=1)", "GroupNorm(8)",
                                   "GroupNorm(8, 1e-5)", "Dropout(0)", "LayerNorm(8)"])
def test_a_norm_layer_in_plan_order_is_not_flagged(layer):
    assert warnings(plan(layer), "W320") == []


def test_a_refused_layer_in_torch_order_says_so():
    (d,) = refused(plan("Conv2d(64, 128, 3)", "[N, 64, 32, 32]"))  # kernel_size=128 on 32
    assert d.code == "E300"
    assert "torch's Conv2d takes in_channels first; a plan reads it from the input, so write Conv2d(128, 3)" \
        in d.hints


# -- merges -----------------------------------------------------------------------------

SKIP = "plan M:\n    input [N, 3, H, W]\n    a = Conv2d(8, kernel_size=1)\n    Conv2d({c}, kernel_size=1)\n"


@pytest.mark.parametrize("merge, name, col", [("add(aa)", "aa", 9), ("cat(b, dim=1)", "b", 9),
                                              ("mul(b)", "b", 9), ("add(a, b)", "b", 12)])
def test_a_misspelt_tensor_in_a_merge_is_an_unknown_name(merge, name, col):
    (d,) = refused(SKIP.format(c=8) + f"    {merge}\n")
    assert (d.code, d.message, d.span.line, d.span.col) == ("E107", f"unknown name {name!r}", 5, col)
    if name == "aa":
        assert list(d.hints) == ["did you mean a?"]


def test_a_blocks_unnamed_input_is_not_x():
    text = ("block B(c):\n    input [N, C, L]\n    Conv1d(c, kernel_size=3, padding=1)\n    add(x)\n"
            "plan P:\n    input [N, 2, L]\n    B(2)\n")
    (d,) = refused(text)
    assert (d.code, d.message) == ("E107", "unknown name 'x'")
    assert "`input x [...]`" in d.hints[-1]
    named = convplan.parse(text.replace("input [N, C, L]", "input x [N, C, L]"))
    assert named.output_shape == named.input_shape


def test_cat_along_the_default_dim_suggests_the_one_that_differs():
    (d,) = refused(SKIP.format(c=4) + "    cat(a)\n")
    assert d.code == "E330"
    assert d.hints[0] == "cat joins along dim=0; the tensors differ only in dim 1: cat(..., dim=1)"
    (d,) = refused(SKIP.format(c=4) + "    cat(a, dim=-1)\n")
    assert d.hints[0].startswith("cat joins along dim=-1;")
    fixed = convplan.parse(SKIP.format(c=4) + "    cat(a, dim=1)\n")
    assert str(fixed.output_shape[1]) == "12"


# -- assertions and unquoted words ---------------------------------------------------------

AUTOENCODER = """plan AE:
    input [N, 1, H, W]
    Conv2d(4, kernel_size=3, stride=2, padding=1)
    Conv2d(4, kernel_size=3, stride=2, padding=1)
    ConvTranspose2d(4, kernel_size=3, stride=2, padding=1, output_padding=1)
    ConvTranspose2d(1, kernel_size=3, stride=2, padding=1, output_padding=1) -> [N, 1, H, W]
"""


def test_an_assertion_that_holds_for_some_sizes_reads_as_divisibility():
    p = convplan.parse(AUTOENCODER)
    assert [str(r) for r in p.requires] == ["H % 4 == 0", "W % 4 == 0"]
    model = p.build(H=4, W=4)
    for h in range(1, 14):  # torch: the output has the input's height exactly when H % 4 == 0
        out = model(torch.zeros(1, 1, h, 4))
        assert (out.shape[2] == h) == p.satisfied({"N": 1, "H": h, "W": 4}), h


@pytest.mark.parametrize("arg, quoted", [("padding=same", "padding='same'"), ("bias=false", None),
                                         ("padding_mode=reflect", "padding_mode='reflect'")])
def test_an_unquoted_word_gets_a_hint(arg, quoted):
    (d,) = refused(plan(f"Conv2d(8, kernel_size=3, {arg})"))
    assert d.hints[-1] == (f"a string is written in quotes: {quoted}" if quoted else "did you mean False?")


@pytest.mark.parametrize("layer, want, fix", [
    ("Conv2d(8, kernel_size=3)", "[N, 8, H, W]", "padding=1"),
    ("Conv2d(8, kernel_size=5, padding=1)", "[N, 8, H, W]", "padding=2"),
    ("Conv2d(8, kernel_size=3)", "[N, 8, H, W - 2]", "padding=(1, 0)"),  # only H is to change
])
def test_an_assertion_fix_covers_the_whole_asserted_shape(layer, want, fix):
    (d,) = refused(plan(f"{layer} -> {want}", "[N, 3, H, W]"))
    assert d.code == "E322" and f"{fix} gives {want}" in d.hints
    fixed = f"Conv2d(8, kernel_size={layer.split('kernel_size=')[1][0]}, {fix})"
    assert show_shape(convplan.parse(plan(fixed, "[N, 3, H, W]")).output_shape) == want


@pytest.mark.parametrize("expect, code", [("[..., 8, H, W]", "E207"), ("[N, 8, 'a', W]", "E106"),
                                          ("[N, 8, H]", "E320")])
def test_a_refused_assertion_is_one_error_not_two(expect, code):
    (d,) = refused(plan(f"Conv2d(8, kernel_size=?) -> {expect}", "[N, 3, H, W]"))  # no E310 for the `?` too
    assert d.code == code


def test_an_unknown_inside_a_shape_reads_as_written():
    (d,) = refused(plan("Conv2d(8, kernel_size=?) -> [N, 8, H]", "[N, 3, H, W]"))
    assert "[N, 8, H - ?kernel_size + 1, W - ?kernel_size + 1]" in d.message
    assert d.hints == ()  # Flatten() before a Conv2d is no fix
    (d,) = refused(plan("Conv2d(8, kernel_size=3, stride=2, padding=?) -> [N, 8, H, W]", "[N, 3, H, W]"))
    assert "makes ?padding + (H + 1)//2 - 1 equal H" in d.message
