"""The block calls' fast paths give what the paths they skip give."""

from unittest import mock

from hypothesis import example, given, settings
from hypothesis import strategies as st

import convplan
from convplan import blockcall


def _same_check(a, b) -> None:
    """Two checks of one plan agree: diagnostics, nodes field by field, requirements and the module tree."""
    assert [(d.code, d.message, d.span, d.hints, d.notes, d.fixes) for d in a.diagnostics] == \
        [(d.code, d.message, d.span, d.hints, d.notes, d.fixes) for d in b.diagnostics]
    assert (a.plan is None) == (b.plan is None)
    if a.plan is None:
        return
    assert a.plan.graph.nodes == b.plan.graph.nodes
    assert a.plan.graph.tree == b.plan.graph.tree
    assert [str(r) for r in a.plan.requires] == [str(r) for r in b.plan.requires]


# -- a block's `input [N, C, H, W]` of new names binds them at once (BlockCalls.input) ---------------------------
# Random input patterns (new names, a name given twice, a parameter's name, numbers, expressions, `...`) called on
# random shapes, twice (the second call meets names check_name accepted): the same as matching the pattern dim by
# dim, every time.

PATTERN_DIMS = ["N", "C", "H", "W", "L", "k", "3", "k * 2", "...", "x", "def"]
PLAN_DIMS = ["N", "3", "8", "4", "L"]


def _input_plan(pattern, before, shapes) -> str:
    lets = "    m = 2\n" if before else ""
    calls = "".join(f"    B(x{i})\n" for i in range(len(shapes)))
    inputs = "".join(f"    input x{i} [{', '.join(shape)}]\n" for i, shape in enumerate(shapes))
    return (f"block B(k=4):\n{lets}    input [{', '.join(pattern)}]\n    ReLU()\n\n"
            f"plan P:\n{inputs}{calls}")


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(PATTERN_DIMS), min_size=1, max_size=5), st.booleans(),
       st.lists(st.lists(st.sampled_from(PLAN_DIMS), min_size=1, max_size=5), min_size=1, max_size=3))
@example(["N", "C", "H", "W"], False, [["N", "3", "8", "8"], ["N", "4", "8", "8"]])
@example(["N", "C", "C"], True, [["N", "3", "3"], ["N", "3", "4"]])
@example(["N", "k"], False, [["N", "4"], ["N", "3"]])
@example(["N", "def"], False, [["N", "4"], ["N", "4"]])
def test_input_patterns_bound_at_once_equal_binding_each_dim(pattern, before, shapes):
    text = _input_plan(pattern, before, shapes)
    fast = convplan.analyse(text)
    with mock.patch.object(blockcall, "_fresh_names", lambda pattern: None):
        each = convplan.analyse(text)
    _same_check(fast, each)
