"""`--set` on the command line: sizes that decide structure, parameters that hold for every verify
run, and sizes too large to allocate (verified on `meta` instead of crashing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize(("text", "want"), [
    ("plan P:\n    input [N, A]\n    sum(0)\n    reshape(N, 2, -1)\n    narrow(0, 1, 1)\n", {"N": 2, "A": 4}),
])
def test_smallest_sizes_where_no_single_step_helps(text, want):
    """`N >= 2, A % (2*N) == 0`: from N = 2, A = 1 neither A = 2 nor N = 3 brings the remainder closer, and the
    search stepped both for ever (A stayed below 2*N): E402 in smallest_sizes and verify."""
    plan = convplan.parse(text)
    assert [str(r) for r in plan.requires] == ["N >= 2", "A % (2*N) == 0"]
    assert plan.smallest_sizes() == want
    assert plan.verify().ok


def _requirement(cond):
    from convplan.errors import Span
    from convplan.requirements import Requirement

    return Requirement(cond, "made by the test", "layer", Span(1, 1, 1, 2))


def _fuzzed_requirements():
    """The three sets fuzzing found E402 for, whose sizes exist."""
    import sympy

    from convplan.shapes import at_least, dim, floordiv, mod

    n, a = dim("N"), dim("A")
    q = floordiv(a, n)
    return [
        [at_least(n, 2), sympy.Eq(mod(a, 2 * n), 0)],
        [sympy.Eq(mod(a, n), 0), at_least(q - floordiv(q + 1, 2), 1), sympy.Eq(mod(n, 2), 0)],
        [at_least(n, 2), sympy.Eq(mod(a, 2), 0), sympy.Eq(mod(floordiv(a, 2), n), 0)],
    ]


@pytest.mark.parametrize("conds", _fuzzed_requirements())
def test_smallest_sizes_finds_the_smallest_sizes_fuzzing_missed(conds):
    from convplan.sizesearch import smallest_sizes

    found, why, _ = smallest_sizes([_requirement(c) for c in conds], ["N", "A"], {}, 1)
    assert found == {"N": 2, "A": 4}, why


@st.composite
def requirement_sets(draw):
    """A few requirements on N, A (and B) of the shapes fuzzing met: lower bounds, residues, divisibility by a
    multiple of another size or of a quotient, a quotient's bound, a product's bound."""
    import sympy

    from convplan.shapes import at_least, dim, floordiv, mod

    names = ["N", "A", "B"][: draw(st.integers(2, 3))]
    syms = [dim(name) for name in names]
    pick = lambda: draw(st.sampled_from(syms))  # noqa: E731
    small = lambda: draw(st.integers(1, 3))  # noqa: E731
    conds = []
    for _ in range(draw(st.integers(1, 4))):
        x, y = pick(), pick()
        shape = draw(st.integers(0, 6))
        if shape == 0:
            conds.append(at_least(x, small()))
        elif shape == 1:
            m = small() + 1
            conds.append(sympy.Eq(mod(x, m), draw(st.integers(0, m - 1))))
        elif shape == 2 and x != y:
            conds.append(sympy.Eq(mod(x, small() * y), 0))
        elif shape == 3 and x != y:
            conds.append(sympy.Eq(mod(floordiv(x, small()), y), 0))
        elif shape == 4 and x != y:
            quotient = floordiv(x, y)
            conds.append(at_least(quotient - floordiv(quotient + 1, 2), small()))
        elif shape == 5 and x != y:
            conds.append(at_least(x * y, draw(st.integers(2, 12))))
        elif shape == 6:
            conds.append(sympy.Eq(mod(x, y), 0) if x != y else at_least(x, small()))
    conds = [c for c in conds if c not in (sympy.true, sympy.false)]
    return names, conds


@given(requirement_sets())
@settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 300)), deadline=None)
def test_smallest_sizes_finds_sizes_where_a_brute_force_does(case):
    """Wherever some sizes in [1, 12] meet every requirement, smallest_sizes finds sizes, and they meet them."""
    import itertools

    import sympy

    from convplan.shapes import dim, holds
    from convplan.sizesearch import smallest_sizes

    names, conds = case
    reqs = [_requirement(c) for c in conds]

    def meets(point) -> bool:
        values = {dim(k): sympy.Integer(v) for k, v in point.items()}
        return all(holds(c, values) for c in conds)

    exists = any(meets(dict(zip(names, p, strict=True))) for p in itertools.product(range(1, 13), repeat=len(names)))
    found, why, _ = smallest_sizes(reqs, names, {}, 1)
    if exists:
        assert found is not None, f"none found for {[str(r) for r in reqs]}: {why}"
    if found is not None:
        assert meets(found), (found, [str(r) for r in reqs])
