"""scope.new_node (and the walker its Made records) make a graph Node and a statement's record, nodebuilders'
makers the syntax nodes of a layer line, without the frozen dataclass's __init__:
the same object in every respect."""

from dataclasses import FrozenInstanceError, asdict, fields
from pathlib import Path
from unittest import mock

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan import scope
from convplan.errors import Span
from convplan.graph import Node

ROOT = Path(__file__).resolve().parent.parent


def slotted(obj) -> list:
    """Each field of a Span, Node, Module or Tensor as (name, value), read from its slot (an unset one raises):
    what their makers must fill.  They hold no `__dict__`: a dict made for one is an object of its own that
    the collector walks (graph.filler)."""
    assert not hasattr(obj, "__dict__")
    return [(f.name, getattr(obj, f.name)) for f in fields(obj)]


NAMES = st.text("abcxyz_", min_size=1, max_size=6)
OPTIONAL = {  # every field new_node's callers pass (scope._placement's and the walker's), with values of its type
    "kind": NAMES, "args": st.dictionaries(NAMES, st.integers(0, 9), max_size=3),
    "given": st.lists(NAMES, max_size=3).map(tuple), "file": NAMES,
    "path": st.lists(NAMES, max_size=3).map(tuple), "owner": st.lists(NAMES, max_size=2).map(tuple),
    "written": st.lists(st.tuples(NAMES, NAMES), max_size=2).map(tuple),
    "scope": st.lists(st.tuples(NAMES, NAMES), max_size=2).map(tuple),
    "unpack": st.lists(st.integers(0, 9), max_size=2).map(tuple),
}


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**4), st.sampled_from(["input", "layer", "add", "item"]), NAMES,
       st.lists(st.integers(0, 99), max_size=3).map(tuple),
       st.lists(st.integers(1, 64).map(sympy.Integer), min_size=1, max_size=4).map(tuple),
       st.tuples(*[st.integers(1, 99)] * 4).map(lambda t: Span(*t)),
       st.fixed_dictionaries({}, optional=OPTIONAL))
def test_made_nodes_equal_built_ones(id, op, name, inputs, shape, span, fields):
    made = scope.new_node(id, op, name, inputs, shape, span, dict(fields))
    built = Node(id, op, name, inputs, shape, span, **fields)
    assert type(made) is Node and made == built
    if op in ("input", "item"):  # (a layer's or merge's repr reads the registry: a real call, not these fields)
        assert repr(made) == repr(built)
    assert slotted(made) == slotted(built) and asdict(made) == asdict(built)
    assert made.meta == {} and made.meta is not built.meta
    if "args" not in fields:  # a dict of its own, as default_factory gives
        assert made.args == {} and made.args is not scope.new_node(id, op, name, inputs, shape, span, {}).args
    with pytest.raises(FrozenInstanceError):
        made.name = "other"


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.plan")), ids=lambda p: p.stem)
def test_the_walkers_made_records_equal_built_ones(path):
    """Walker.body makes each statement's record with tuple.__new__ (one call into C, no NamedTuple __new__): every
    record of a checked plan is a Made equal to the one its fields build, `sym` None where no `?` made it."""
    trace = convplan.load(path)._checked.trace
    assert trace
    for made in trace:
        built = scope.Made(**made._asdict())
        assert type(made) is scope.Made and len(made) == len(scope.Made._fields)
        assert made == built and repr(made) == repr(built) and hash(made) == hash(built)
    with pytest.raises(AttributeError):
        trace[0].start = 1


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**6), NAMES, st.one_of(st.none(), NAMES),
       st.lists(st.tuples(*[st.integers(1, 99)] * 4).map(lambda t: Span(*t)), min_size=3, max_size=3))
def test_syntax_nodes_made_equal_built_ones(value, name, keyword, spans):
    """nodebuilders' makers of the nodes a layer line holds (Num, Name, Arg, Call, Layer), without __init__."""
    from convplan import nodebuilders as nb
    from convplan import nodes as n

    a, b, c = spans
    pairs = [(nb.new_num(value, a), n.Num(value, a)), (nb.new_arg(keyword, n.Num(value, a), b),
                                                      n.Arg(keyword, n.Num(value, a), b)),
             (nb.new_name(name, b), n.Name(name, b))]
    args = (pairs[1][1],)
    pairs.append((nb.new_call(name, args, c, a), n.Call(name, args, c, a)))
    pairs.append((nb.new_layer(pairs[3][1], None, b), n.Layer(pairs[3][1], None, b)))
    for made, built in pairs:
        assert type(made) is type(built) and made == built and repr(made) == repr(built)
        assert hash(made) == hash(built) and list(vars(made)) == list(vars(built))
        with pytest.raises(FrozenInstanceError):
            made.span = c


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6), st.booleans())
def test_made_tensors_equal_built_ones(id, tainted):
    """scope.new_tensor, the walker's handle on a node, without the dataclass's __init__."""
    made, built = scope.new_tensor(id, tainted), scope.Tensor(id, tainted)
    assert type(made) is scope.Tensor and made == built and repr(made) == repr(built) and hash(made) == hash(built)
    assert slotted(made) == slotted(built) and scope.new_tensor(id) == scope.Tensor(id)
    with pytest.raises(FrozenInstanceError):
        made.tainted = not tainted


@pytest.mark.parametrize("example", ["resnet18", "inception", "unet", "swin_t"])
def test_closed_blocks_equal_built_modules(example):
    """State.close_block copies the block's Module with its inputs, output and values set, without
    dataclasses.replace's __init__: the same objects as replace() makes, checked against a run whose
    close_block is replace() itself (comparing a module with replace() of itself could not fail)."""
    from dataclasses import replace

    import convplan
    from convplan.graph import Module

    def by_replace(self, block, inputs, output, names):
        values = tuple((k, v) for k, v in names.items() if not isinstance(v, scope.Tensor))
        self.tree[block.entry] = replace(self.tree[block.entry], inputs=inputs, output=output, values=values)

    text = open(f"examples/{example}.plan").read()
    fast = convplan.parse(text, f"{example}.plan").graph.tree
    with mock.patch.object(scope.State, "close_block", by_replace):
        built = convplan.parse(text, f"{example}.plan").graph.tree
    modules = [(m, b) for m, b in zip(fast, built, strict=True) if isinstance(m, Module) and m.kind == "block"]
    assert modules and all(m.output >= 0 and m.inputs for m, _ in modules) and any(m.values for m, _ in modules)
    for m, b in modules:
        assert type(m) is Module and m == b and repr(m) == repr(b) and hash(m) == hash(b)
        assert slotted(m) == slotted(b)
        with pytest.raises(FrozenInstanceError):
            m.output = 0
    assert fast == built


@pytest.mark.parametrize("given", [2, 3, 4])
def test_makers_come_from_the_fields(given):
    """nodebuilders._maker reads the class's fields: a class with one more field gets it (at its default), in the
    dataclass's order; a field without a default after the given ones is refused where the maker is made."""
    from dataclasses import field, fields

    from convplan import nodebuilders as nb
    from convplan import nodes as n

    @n.syntax
    class Toy:
        a: int
        b: int
        c: int = 3
        d: int = 4
        e: object = None

    values = (10, 11, 12, 13)[:given]
    made, built = nb._maker(Toy, given)(*values), Toy(*values)
    assert type(made) is Toy and made == built and list(vars(made)) == [f.name for f in fields(Toy)]
    assert repr(made) == repr(built)

    @n.syntax
    class Required:
        a: int
        b: int
        c: int
        d: int
        e: int

    with pytest.raises(TypeError):
        nb._maker(Required, given)

    @n.syntax
    class Factory:
        a: int
        b: int
        c: int = 0
        d: int = 0
        e: list = field(default_factory=list)

    with pytest.raises(TypeError):
        nb._maker(Factory, given)
