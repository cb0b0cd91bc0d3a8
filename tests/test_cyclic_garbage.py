"""A check leaves no cyclic garbage: what it made is freed by reference counting when the Plan or Result is dropped
(or when the check returns, for its own scaffolding), never left for the collector to find: a cycle here is
memory held until a collection and that collection's work, in every process that checks plans in a loop (an
editor, a test suite); and it is what ageing the check's objects (branch final16b, benchmarks/README.md
"Session 16") needs.

Each plan is checked once first: a lazy import or a cache filled on first use is not garbage, and the collector
starts clean.  sympy's own cycles are not convplan's (a closure that calls itself, as Basic.replace's `walk` and
solve's helpers are; polys' rings): they are left out, and only where they are all there is."""

import gc
import importlib.util
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

import convplan
from convplan.serve.document import analyse_document

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("**/*.plan"))
BAD = {  # one of each way a plan is refused
    "syntax": "plan P:\n    input [N\n",
    "binding": "plan P:\n    input [N, 3, H, W]\n    Conv2d(8, 3, nope=1)\n",
    "shape": "plan P:\n    input [N, 3]\n    Conv2d(8, 3)\n    Linear(3)\n",
    "import": 'from "no_such_file.plan" import Stem\nplan P:\n    input [N, 3, 8, 8]\n    Stem()\n',
    "unsolved": "plan P:\n    input [N, 3, 8, 8]\n    Conv2d(8, ?)\n",
    "block": "block B(c):\n    input [N, C, H, W]\n    Conv2d(c, 3, nope=1)\nplan P:\n    input [N, 3, 8, 8]\n"
             "    B(8)\n    B(8)\n",
}


def _bench_plans() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("convplan_bench", ROOT / "benchmarks" / "bench.py")
    bench = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # its dataclasses look it up
    spec.loader.exec_module(bench)
    return {case: bench.network(case).plan_text() for case in bench.CASES}


def _sympys(o) -> bool:
    """sympy's own: an object of a sympy type, a function sympy defined, or a method of either.  (By type(), not
    isinstance: that asks a weakref proxy in the garbage for the class of an object it may have lost.)"""
    if type(o) is types.MethodType:
        o = o.__self__
    if type(o) is types.FunctionType:
        return (o.__module__ or "").startswith("sympy")
    return type(o).__module__.startswith("sympy")


def _offenders(garbage: list) -> list:
    """The garbage that is convplan's: all of it but sympy's cycles (and the plain containers and cells in them)."""
    plain = (tuple, list, dict, set, frozenset, types.CellType)
    if not any(_sympys(o) for o in garbage):
        return garbage
    return [o for o in garbage if not (_sympys(o) or type(o) in plain)]


def _describe(o) -> str:
    if type(o) in (types.FunctionType, types.MethodType):
        return f"{type(o).__name__} {o.__qualname__}"
    if type(o) is types.FrameType:
        return f"frame {o.f_code.co_name}"
    return type(o).__qualname__


def assert_no_cycles(run) -> None:
    """`run()` checks a plan and drops what it returns: afterwards the collector finds nothing of convplan's."""
    run()  # lazy imports and caches filled on first use
    gc.collect()
    was = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)  # the unreachable are kept in gc.garbage for the message
    try:
        run()
        gc.collect()
        offenders = _offenders(list(gc.garbage))
    finally:
        gc.garbage.clear()
        gc.set_debug(was)
        gc.collect()
    kinds = Counter(_describe(o) for o in offenders).most_common(12)
    assert not offenders, f"{len(offenders)} objects in reference cycles left for the collector: {kinds}"


def _analyse(text: str, filename: str = "<plan>"):
    def run():
        convplan.analyse(text, filename)

    return run


def _refused_or_not(read, source):
    """`read(source)` (convplan.parse or convplan.load) as a test's step, a PlanError dropped with its traceback."""
    def run():
        try:
            read(source)
        except convplan.PlanError:
            pass  # the exception dropped, its traceback with it

    return run


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT / "examples")))
def test_an_example_checked_and_dropped(path):
    assert_no_cycles(lambda: convplan.analyse_file(path))
    assert_no_cycles(_refused_or_not(convplan.load, path))


BENCH = _bench_plans()


@pytest.mark.parametrize("case", sorted(BENCH))
def test_a_bench_network_checked_and_dropped(case):
    assert_no_cycles(_refused_or_not(convplan.parse, BENCH[case]))
    assert_no_cycles(_analyse(BENCH[case]))


@pytest.mark.parametrize("kind", BAD)
def test_a_refused_plan_checked_and_dropped(kind):
    assert_no_cycles(_analyse(BAD[kind]))
    assert_no_cycles(_refused_or_not(convplan.parse, BAD[kind]))


def _document(uri: str, text: str):
    def run():
        analyse_document(uri, text)

    return run


def test_the_language_servers_check():
    for path in [ROOT / "examples" / "mobilenet_se.plan", ROOT / "examples" / "lib" / "mobile_blocks.plan"]:
        assert_no_cycles(_document(path.as_uri(), path.read_text()))
    for text in BAD.values():
        assert_no_cycles(_document("untitled:Untitled-1", text))


def test_a_plan_kept_alone_still_calls_its_blocks():
    """Every file's namespace is held by the plan's library, and its blocks refer to it weakly: a plan kept alone
    (the rest of its parse gone) still reaches every block, its own file's and an imported file's, and checks
    again with other sizes (Plan.bind: the library checked anew)."""
    plan = convplan.load(ROOT / "examples" / "mobilenet_se.plan")
    gc.collect()
    for src in plan._checked.library.values():
        assert src.definition.name in src.namespace
    assert {Path(src.file).name for src in plan._checked.library.values()} == {"mobilenet_se.plan",
                                                                                 "mobile_blocks.plan"}
    bound = plan.bind(H=32, W=32)
    gc.collect()
    assert str(bound.output_shape) == str(convplan.load(ROOT / "examples" / "mobilenet_se.plan", H=32, W=32)
                                          .output_shape)
