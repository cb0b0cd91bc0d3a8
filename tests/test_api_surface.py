"""The Python API as a user meets it: documented, keyword sizes everywhere, a clean namespace, readable
reprs, clear errors for arguments of the wrong type."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import convplan
from convplan.check import Requirement
from convplan.graph import Graph, Node

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("cls", [convplan.Plan, convplan.Result, Node, Graph, Requirement, convplan.Diagnostic,
                                 convplan.Span, convplan.PlanError])
def test_every_public_property_and_method_has_a_docstring(cls):
    missing = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        target = member.fget if isinstance(member, property) else member
        if (isinstance(member, property) or inspect.isfunction(member)) and not (target.__doc__ or "").strip():
            missing.append(name)
    assert not missing, f"{cls.__name__}: {missing}"
    assert (cls.__doc__ or "").strip()


def test_dir_shows_the_public_api_only():
    names = dir(convplan)
    assert "Path" not in names and "annotations" not in names
    assert set(names) == {*convplan.__all__, "__version__"}
    assert all(hasattr(convplan, n) for n in names)


def test_satisfied_and_smallest_sizes_take_keywords_like_bind():
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")  # requires L >= 2
    assert plan.satisfied(N=1, L=2) and not plan.satisfied(N=1, L=1)
    assert plan.satisfied({"N": 1, "L": 2})  # the dict form still works
    assert not plan.satisfied(N=1)  # L not given: its requirement is not known to hold
    with pytest.raises(TypeError):
        plan.satisfied(L=2.5)
    with pytest.raises(ValueError):
        plan.satisfied(L=10**30)
    assert plan.smallest_sizes() == {"N": 1, "L": 2}
    assert plan.smallest_sizes(N=8) == {"N": 8, "L": 2}
    assert plan.smallest_sizes(3, N=8) == {"N": 8, "L": 3}
    with pytest.raises(convplan.PlanError) as err:
        plan.smallest_sizes(L=1)  # as bind(L=1): E401
    assert err.value.diagnostics[0].code == "E401"
    with pytest.raises(TypeError):
        plan.smallest_sizes(N=True)


def test_a_name_the_plan_lacks_is_e400_in_satisfied_and_smallest_sizes_as_in_bind():
    """A typo (`n=8` for N) was ignored: smallest_sizes gave N = 1 as if nothing were fixed, and satisfied
    answered False as for a requirement left unmet; bind, build, evaluate and summary say E400."""
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    for call in (lambda: plan.smallest_sizes(n=8), lambda: plan.smallest_sizes(sizes={"n": 8}),
                 lambda: plan.satisfied(N=1, L=2, n=8), lambda: plan.satisfied({"N": 1, "L": 2, "n": 8})):
        with pytest.raises(convplan.PlanError) as err:
            call()
        assert err.value.diagnostics[0].code == "E400" and "'n'" in err.value.diagnostics[0].message
    assert plan.satisfied(N=1, L=2, classes=2) and plan.smallest_sizes(classes=2) == {"N": 1, "L": 2}


def test_a_bound_size_given_another_value_is_e400_as_a_name_the_plan_lacks():
    """bind(L=3) leaves only N free: build(L=5) built for L=5 and bind(L=4) re-bound, silently.  Every method
    that takes sizes now refuses another value for L (the same value again is the plan as it is)."""
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    bound = plan.bind(L=3)
    assert bound.symbols == ("N",)
    for call in (lambda: bound.build(L=5), lambda: bound.bind(L=4), lambda: bound.bind(N=2, L=4),
                 lambda: bound.verify(L=4), lambda: bound.to_source(L=4), lambda: bound.smallest_sizes(L=4),
                 lambda: bound.evaluate(bound.total_params, L=4), lambda: bound.satisfied(L=4)):
        with pytest.raises(convplan.PlanError) as err:
            call()
        (d,) = err.value.diagnostics
        assert d.code == "E400" and "size L is bound to 3 in plan CNN1D, so it cannot be" in d.message, d
    assert bound.bind(L=3).symbols == ("N",) and bound.bind(N=2, L=3).sizes == {"L": 3, "N": 2}
    assert convplan.load(ROOT / "examples" / "cnn1d.plan", classes=3).params["classes"] == 3
    with pytest.raises(convplan.PlanError, match="size classes is bound to 3"):  # a parameter bound as a size
        convplan.load(ROOT / "examples" / "cnn1d.plan", classes=3).bind(classes=4)
    assert plan.bind(classes=4).params["classes"] == 4  # the plan's own default is no binding: bind sets it


def test_node_of_a_name_the_plan_lacks_is_a_key_error_that_says_so_and_suggests_the_closest():
    """Plan.node('nope') raised a bare KeyError('nope')."""
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    assert plan.node("conv1").kind == "Conv1d"
    with pytest.raises(KeyError) as err:
        plan.node("conv")
    assert err.value.args == ("plan CNN1D has no node named 'conv'; did you mean conv1?",)
    with pytest.raises(KeyError, match="no node named 'nope'; the names are those of `convplan check`: x, conv1"):
        plan.node("nope")
    with pytest.raises(KeyError, match="no node named 3; the names are"):  # not a name at all: still a KeyError
        plan.node(3)


def test_smallest_sizes_with_a_fixed_size_meets_the_requirements_on_the_others():
    text = "plan U:\n    input [N, C, H, W]\n    Conv2d(C, kernel_size=3, padding=1, groups=C)\n    MaxPool2d(4)\n"
    plan = convplan.parse(text)
    sizes = plan.smallest_sizes(H=9)
    assert sizes["H"] == 9 and sizes["W"] >= 4 and plan.satisfied(**sizes)


def test_reprs_are_one_readable_line():
    plan = convplan.load(ROOT / "examples" / "resnet18.plan")
    conv = plan.layers[0]
    assert repr(conv) == "<Node conv1 = Conv2d(3, 64, 7, stride=2, padding=3, bias=False) -> [N, 64, (H + 1)//2, " \
                         "(W + 1)//2], line 28>"
    assert repr(plan.graph.inputs[0]) == "<Node x = input -> [N, 3, H, W], line 27>"
    add = plan.graph.merges[0]
    assert repr(add).startswith(f"<Node {add.name} = add() of #") and "\n" not in repr(plan.graph)
    assert len(repr(plan.layers)) < 200 * len(plan.layers)


@pytest.mark.parametrize("call", [convplan.analyse_file, convplan.load])
@pytest.mark.parametrize("bad", [3, None, b"x.plan", ["x.plan"]])
def test_a_path_that_is_no_path_is_a_clear_type_error(call, bad):
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got"):
        call(bad)
