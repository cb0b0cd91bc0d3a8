"""`--set` on the command line: sizes that decide structure, parameters that hold for every verify
run, and sizes too large to allocate (verified on `meta` instead of crashing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import convplan
from convplan.cli import main

BRANCHY = """\
plan C(w=8):
    input [N, 3, H, W]
    if H > 7:
        Conv2d(w, kernel_size=3, stride=2)
    else:
        Conv2d(w, kernel_size=1)
    Flatten()
    Linear(10)
"""


def write(tmp_path, text: str, name: str = "p.plan"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_set_decides_a_structural_if(tmp_path, capsys):
    path = write(tmp_path, BRANCHY)
    assert main(["check", path]) == 1  # H decides the structure: refused while H is free
    assert "E230" in capsys.readouterr().err
    assert main(["check", path, "--set", "H=10", "--set", "W=9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["output"] == ["N", 10]
    assert out["layers"][0]["call"].startswith("Conv2d(3, 8, 3, stride=2")
    assert main(["verify", path, "--set", "H=4", "--set", "W=4"]) == 0  # the other branch, built and run
    out = capsys.readouterr().out
    assert "given         N=1, H=4, W=4 on cpu (concrete, about " in out and "): 3 layers" in out


def test_verify_keeps_fixed_parameters_in_every_run(tmp_path):
    text = "plan D(depth=3):\n    input [N, 4, L]\n    repeat depth:\n        Conv1d(4, kernel_size=3, padding=1)\n"
    plan = convplan.parse(text, "d.plan")
    report = plan.verify(depth=2)
    assert [r.checked for r in report.runs] == [2, 2, 2]  # not 3 in the smallest and large runs


def test_verify_runs_sizes_too_large_for_memory_on_meta(tmp_path, capsys):
    path = write(tmp_path, "plan P:\n    input [N, 3, L]\n    Flatten()\n    Linear(99999999999999)\n")
    assert main(["verify", path]) == 0
    out = capsys.readouterr().out
    assert "smallest" in out and "on meta" in out


def test_a_size_given_twice_is_a_usage_error(capsys):
    assert main(["check", "examples/cnn1d.plan", "--set", "L=3", "--set", "L=4"]) == 2
    assert "given twice" in capsys.readouterr().err


def test_binding_a_non_positive_size_names_it_first():
    import pytest

    with pytest.raises(convplan.PlanError) as caught:
        convplan.load("examples/unet.plan").bind(H=0)
    (diag,) = caught.value.diagnostics
    assert diag.code == "E205" and "H must be positive" in diag.message


def test_a_size_fixed_by_a_requirement_is_verified_at_that_size(tmp_path, capsys):
    """`Unflatten(1, (4, 2))` on [N, C, L] requires C == 8: the large run keeps C = 8 (it found no sizes)."""
    path = write(tmp_path, "plan B:\n    input [N, C, L]\n    Unflatten(1, (4, 2))\n")
    plan = convplan.load(path)
    assert [str(r) for r in plan.requires] == ["C == 8"]  # not `8 == C`
    assert plan.smallest_sizes(start=997) == {"N": 997, "C": 8, "L": 997}
    assert main(["verify", str(path)]) == 0
    assert "large         N=997, C=8, L=997 on meta" in capsys.readouterr().out


def test_an_asserted_size_reads_as_that_size():
    plan = convplan.parse("plan B:\n    input [N, C, L]\n    Conv1d(4, kernel_size=3) -> [N, 4, 1]\n")
    assert "L == 3" in [str(r) for r in plan.requires]  # not `L - 2 == 1`


def test_a_symbolic_stride_that_could_be_zero_does_not_crash_the_warning_example():
    """W310's example size (`e.g. D = 4`) skips sizes where the symbolic stride D - 3 would be 0 (was a
    ZeroDivisionError traceback); so do the size search and bind."""
    text = "plan A:\n    input [N, C, D]\n    AvgPool1d(kernel_size=1, stride=D - 3)\n    AvgPool1d(kernel_size=3)\n"
    plan = convplan.parse(text)
    assert any("e.g. D = 4" in w.message for w in plan.warnings)
    assert plan.smallest_sizes()["D"] == 4 and not plan.satisfied({"N": 1, "C": 1, "D": 3})


PINNED = "plan P:\n    input [N, C, D]\n    ReLU() -> [{}, {}, {}]\n    Flatten()\n    InstanceNorm1d()\n"


def test_smallest_sizes_steps_past_a_product_of_pinned_sizes():
    """`-> [1, C, 1]` pins N and D to 1 and InstanceNorm1d on the flattened [N, C*D] needs C*D >= 2: the search
    stepped every size of `C*D >= 2` up, D with it, broke `D == 1` and never came back (E402).  The sizes
    found run in torch."""
    plan = convplan.parse(PINNED.format(1, "C", 1))
    assert [str(r) for r in plan.requires] == ["N == 1", "D == 1", "C*D >= 2"]
    sizes = plan.smallest_sizes()
    assert sizes == {"N": 1, "C": 2, "D": 1} and plan.satisfied(sizes)
    assert plan.verify(**sizes).ok


def test_smallest_sizes_says_what_holds_a_requirement_no_size_can_meet():
    import pytest

    plan = convplan.parse(PINNED.format(1, 1, 1))
    with pytest.raises(convplan.PlanError) as caught:
        plan.smallest_sizes()
    (diag,) = caught.value.diagnostics
    assert diag.code == "E402" and diag.span.line == 5  # at the layer that needs it, not at the plan's name
    assert "C*D >= 2 cannot hold with C = 1 (C == 1 is required at line 3" in diag.message
    assert "D = 1 (D == 1 is required at line 3" in diag.message and "InstanceNorm" in diag.message
    with pytest.raises(convplan.PlanError, match=r"C = 1 \(given\) and D = 1 \(D == 1 is required"):
        convplan.parse(PINNED.format(1, "C", 1)).smallest_sizes(C=1)


def _smallest_or_none(plan, names, box: int):
    """Every point of [1, box]**len(names) that meets the plan's requirements, smallest sum first."""
    import itertools

    points = [dict(zip(names, p, strict=True)) for p in itertools.product(range(1, box + 1), repeat=len(names))]
    return [p for p in sorted(points, key=lambda p: sum(p.values())) if plan.satisfied(p)]


def test_smallest_sizes_finds_sizes_wherever_some_exist():
    """Every way of pinning N, C and D to 1, 2 or leaving them free: sizes are found exactly where a brute
    force over [1, 4]**3 finds some, they meet the requirements, and none is larger than it needs to be
    (each one less breaks a requirement, or is below 1)."""
    import itertools

    import pytest

    for pins in itertools.product(["1", "2", None], repeat=3):
        dims = [p or name for p, name in zip(pins, "NCD", strict=True)]
        plan = convplan.parse(PINNED.format(*dims))
        valid = _smallest_or_none(plan, ["N", "C", "D"], 4)
        if not valid:
            with pytest.raises(convplan.PlanError, match="E402"):
                plan.smallest_sizes()
            continue
        sizes = plan.smallest_sizes()
        assert plan.satisfied(sizes), (pins, sizes)
        for name in sizes:
            if sizes[name] > 1:
                assert not plan.satisfied({**sizes, name: sizes[name] - 1}), (pins, sizes, name)


@pytest.mark.parametrize(("value", "shown"), [("3.5", "'3.5' is not an integer"), ("1e3", "'1e3' is not an integer"),
                                              ("abc", "'abc' is not an integer"), ("", "'' is not an integer"),
                                              ("\u0663", "is not an integer (digits 0-9)"),  # Arabic-Indic 3
                                              ("0", "between 1 and"), ("-4", "between 1 and")])
def test_set_takes_whole_numbers_only(value, shown, capsys):
    """A float, a word or another script's digits is one clear line and exit 2, never a traceback (int() took
    '\u0663' as 3)."""
    assert main(["check", "examples/cnn1d.plan", "--set", f"L={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convplan: error: --set L: ") and shown in err and "Traceback" not in err


def test_set_applies_to_every_file_given(tmp_path, capsys):
    """With several files each --set is given to each of them (documented in --help and the README): the
    plan with an L takes it, the plan without one says so (E400), and the run fails."""
    one = write(tmp_path, "plan A:\n    input [N, 3, L]\n    Conv1d(4, kernel_size=3)\n", "a.plan")
    two = write(tmp_path, "plan B:\n    input [N, 3, H, W]\n    Conv2d(4, kernel_size=3)\n", "b.plan")
    assert main(["check", one, two, "--set", "L=10"]) == 1
    out, err = capsys.readouterr()
    assert "[N, 4, 8]" in out and "b.plan:1:6: error[E400]: there is no size or parameter named 'L' in plan B" in err
    assert main(["check", one, two, "--set", "L=10", "--set", "H=5"]) == 1
    err = capsys.readouterr().err
    assert "named 'H' in plan A" in err and "named 'L' in plan B" in err
    assert main(["check", "--help"]) == 0
    assert "each --set applies to every file" in " ".join(capsys.readouterr().out.split())
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert "every `--set NAME=INT` applies to every file" in readme
