"""What a `convplan check` process pays before and after it checks (benchmarks/README.md, "Session 7: the check
process"): the syntax nodes' shared methods equal the dataclass's own, and the process imports, collects and
freezes only what it should.  The process cases run in fresh interpreters: in this one pytest has loaded
everything."""

from __future__ import annotations

import dataclasses
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
