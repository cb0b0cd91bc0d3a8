"""What a `convplan check` process pays before and after it checks (benchmarks/README.md, "Session 7: the check
process"): the syntax nodes' shared methods equal the dataclass's own, and the process imports, collects and
freezes only what it should.  The process cases run in fresh interpreters: in this one pytest has loaded
everything."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convplan import cli, cost, memory
from convplan import nodes as n
from convplan.errors import Span

ROOT = Path(__file__).resolve().parent.parent

# -- the syntax nodes: @syntax is @dataclass(frozen=True) with shared __eq__, __hash__, __repr__ ------------------

NODE_CLASSES = [c for c in vars(n).values()
                if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == n.__name__]


def _declared(cls):
    """The class as it was declared before @syntax: @dataclass(frozen=True) with the same fields."""
    return dataclasses.make_dataclass(
        cls.__name__, [(f.name, f.type, dataclasses.field(default=f.default)) if f.default is not dataclasses.MISSING
                       else (f.name, f.type) for f in dataclasses.fields(cls)], frozen=True)


spans = st.builds(Span, st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))
leaves = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3), spans, st.builds(n.Num, st.integers(), spans))
values = st.one_of(leaves, st.tuples(leaves, leaves), st.lists(leaves, max_size=2).map(tuple))


def test_every_node_class_is_declared_with_syntax():
    assert len(NODE_CLASSES) >= 36
    for cls in NODE_CLASSES:
        assert cls.__eq__ is n._eq and cls.__hash__ is n._hash and cls.__repr__ is n._repr, cls
        assert cls.__dataclass_params__.frozen, cls


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NODE_CLASSES), st.data())
def test_syntax_nodes_compare_hash_and_show_as_their_dataclass(cls, data):
    names = [f.name for f in dataclasses.fields(cls)]
    args = [data.draw(values, label=name) for name in names]
    other = [data.draw(values, label=f"other {name}") for name in names]
    declared = _declared(cls)
    node, twin = cls(*args), declared(*args)
    assert repr(node) == repr(twin)
    assert hash(node) == hash(twin)
    assert node == cls(*args) and not node != cls(*args)
    assert (node == cls(*other)) == (twin == declared(*other)) == (args == other)
    assert node.__eq__(twin) is NotImplemented  # another class: never equal, as dataclasses are
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(node, names[0], 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(node, names[-1])
    assert dataclasses.replace(node) == node and type(dataclasses.replace(node)) is cls
    assert [f.name for f in dataclasses.fields(node)] == names


def test_subclasses_with_the_same_fields_are_not_equal():
    span = Span(1, 1, 1, 2)
    plan, block = n.PlanDef("P", (), (), span, span), n.BlockDef("P", (), (), span, span)
    assert plan != block and hash(plan) == hash(block)
    assert repr(plan).startswith("PlanDef(name='P', ") and repr(block).startswith("BlockDef(")
    assert n.Input(n.Shape((), span), span) == n.Input(n.Shape((), span), span, None)  # the default
    assert repr(n.Pass(span)) == f"Pass(span={span!r})" and hash(n.Pass(span)) == hash((span,))


# -- the command line's choices, written out so that a check does not import cost.py and memory.py -------------

def test_the_command_lines_choices_are_the_passes_names():
    assert cli.CONVENTIONS == tuple(sorted(cost.CONVENTIONS))
    assert cli.DTYPES == tuple(sorted(memory.DTYPE_BYTES))


# -- the process: what it imports, when the collector runs ---------------------------------------------------------

# The examples whose check builds no sum of symbols (their parameter counts are numbers, or a number plus one
# product): sympy's first Add.flatten imports sympy.tensor.tensor (~20 ms), and none of these reaches it.
WITHOUT_SUMS = ["alexnet", "cnn1d", "conv3d", "conv_length", "convnext_tiny", "inception", "mobilenet_se",
                "mobilenet_v2", "notebook_conv1d", "resnet18", "shufflenet_v2", "two_tower", "vgg11"]
NOT_FOR_A_CHECK = ["sympy.tensor.tensor", "json", "lark", "convplan.cost", "convplan.cost_fvcore",
                   "convplan.cost_ptflops", "convplan.memory"]


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_check_imports_only_what_it_needs():
    files = [f"examples/{name}.plan" for name in WITHOUT_SUMS]
    out = _python("import contextlib, io, sys\nfrom convplan.cli import main\n"
                  f"for path in {files!r}:\n"
                  "    with contextlib.redirect_stdout(io.StringIO()) as text, \\\n"
                  "            contextlib.redirect_stderr(io.StringIO()):\n"
                  "        assert main(['check', path]) == 0, path\n"
                  "    assert 'total params:' in text.getvalue(), path\n"
                  f"    print(path, sorted(m for m in {NOT_FOR_A_CHECK!r} if m in sys.modules))\n")
    assert out.splitlines() == [f"{path} []" for path in files]


def test_the_probe_sees_those_imports():
    # the test above would pass vacuously if a check could not load them: --json needs json, a sum of two
    # symbols Add.flatten (and so sympy.tensor.tensor), cost the cost pass
    out = _python("import contextlib, io, sys\nfrom convplan.cli import main\n"
                  "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
                  "    main(['check', '--json', 'examples/unet.plan'])\n"
                  "    main(['cost', 'examples/cnn1d.plan'])\n"
                  f"print(sorted(m for m in {NOT_FOR_A_CHECK!r} if m in sys.modules))\n")
    assert out.strip() == str(sorted(set(NOT_FOR_A_CHECK) - {"lark", "convplan.memory"}))


def test_importing_convplan_collects_nothing_and_leaves_the_collector_on():
    """sympy's objects are made with the collector off and left in the oldest generation: no collection
    during the import, none at once after it (the young generation is empty), the collector on again."""
    # counted from the package's first statements on (nogc imported): the interpreter's loading of
    # convplan/__init__'s code, before any of it runs, may collect, as it may for any module
    out = _python("import gc, sys\nstarts = []\n"
                  "gc.callbacks.append(lambda phase, info: starts.append(info) if phase == 'start' and "
                  "'convplan.nogc' in sys.modules else None)\n"
                  "import convplan\nyoung, middle, _ = gc.get_count()\n"
                  "print(len(starts), young < 50, middle, gc.isenabled(), gc.get_freeze_count())\n")
    assert out.split() == ["0", "True", "0", "True", "0"]


def test_importing_convplan_leaves_a_collector_turned_off_off():
    assert _python("import gc\ngc.disable()\nimport convplan\nprint(gc.isenabled())\n").strip() == "False"


@pytest.mark.parametrize("argv, frozen", [(None, True), (["check", "examples/cnn1d.plan"], False)],
                         ids=["the process's own command line", "main(argv)"])
def test_the_command_line_freezes_the_imports_before_exit_and_main_argv_does_not(argv, frozen):
    """The interpreter's collections at exit would walk sympy's ~60,000 objects: the process's own run freezes
    them (gc.freeze); a caller of main(argv), as these tests are, keeps its collector as it was."""
    out = _python("import contextlib, gc, io, sys\nfrom convplan.cli import main\n"
                  "sys.argv = ['convplan', 'check', 'examples/cnn1d.plan']\n"
                  "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
                  f"    rc = main({argv!r})\n"
                  "print(rc, gc.get_freeze_count() > 10000, gc.isenabled())\n")
    assert out.split() == ["0", str(frozen), "True"]


def test_lexers_are_compiled_when_first_met_and_one_that_does_not_compile_stops_the_fast_path():
    import copy

    from convplan import _grammar_tables as shipped
    from convplan import lalr

    t = lalr.from_data(shipped.LALR)
    assert t is not None and len(t.lexers.specs) > 30 and not any(t.lexers._compiled)  # none compiled yet
    state = next(iter(t.lexers.by_state))
    regex, keywords, _ = t.lexers[state]
    pattern, flags, words, _ = t.lexers.specs[t.lexers.by_state[state]]
    assert regex.pattern == pattern and regex.flags & flags == flags and keywords == words
    assert sum(c is not None for c in t.lexers._compiled) == 1 and t.lexers[state][0] is regex
    with pytest.raises(KeyError):
        t.lexers[10**6]  # a state without a lexer
    broken = copy.deepcopy(shipped.LALR)
    for spec in broken["specs"]:
        spec[0] = "(" + spec[0]  # a pattern this Python's re refuses: Lark parses instead
    t = lalr.from_data(broken)
    with pytest.raises(lalr.Bail):
        t.lexers[state]
