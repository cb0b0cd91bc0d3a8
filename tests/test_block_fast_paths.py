"""The block calls' fast paths give what the paths they skip give."""

from dataclasses import FrozenInstanceError
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_nodes_fast import slotted

import convplan
from convplan import blockcall, scope
from convplan import nodes as n
from convplan.graph import Module
from convplan.scope import Container


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


# -- a submodule's Module made without the frozen dataclass's __init__ (State.open_module) ----------------------
# Against a run whose open_module builds Module(...) itself: every entry of the tree equal, with its fields in the
# dataclass's order, block calls and numbered containers, in the plan's file and in an imported one.

def _open_by_init(self, kind, name, span, block=None, names=None):
    path, owner = self.place(name, span)
    file = self.frame.file if self.frame.file != self.diag.file else ""
    names = tuple(s.name or "x" for s in block.body if isinstance(s, n.Input)) if block else ()
    self.tree.append(Module(path, kind, span, owner, block.name if block else "", file=file,
                            start=len(self.nodes), prefix=name + "_", input_names=names))
    return Container(path, numbered=kind == "seq", entry=len(self.tree) - 1)


@pytest.mark.parametrize("example", ["resnet18", "inception", "unet", "swin_t", "mobilenet_se", "convnext_tiny"])
def test_modules_opened_equal_built_modules(example):
    text = open(f"examples/{example}.plan").read()
    fast = convplan.parse(text, f"examples/{example}.plan").graph.tree
    with mock.patch.object(scope.State, "open_module", _open_by_init):
        built = convplan.parse(text, f"examples/{example}.plan").graph.tree
    modules = [(m, b) for m, b in zip(fast, built, strict=True) if isinstance(m, Module)]
    assert modules and fast == built
    for m, b in modules:
        assert type(m) is Module and repr(m) == repr(b) and hash(m) == hash(b) and slotted(m) == slotted(b)
        with pytest.raises(FrozenInstanceError):
            m.start = 0


def test_modules_opened_in_an_imported_file_equal_built_modules(tmp_path):
    (tmp_path / "lib.plan").write_text("block Inner():\n    input [N, C]\n    ReLU()\n\n"
                                       "block Outer():\n    input [N, C]\n    Inner()\n"
                                       "    s = repeat 2:\n        Inner()\n")
    main = tmp_path / "main.plan"
    main.write_text('from "lib.plan" import Outer\n\nplan P:\n    input [N, 4]\n    Outer()\n    o = Outer()\n')
    fast = convplan.parse(main.read_text(), str(main)).graph.tree
    with mock.patch.object(scope.State, "open_module", _open_by_init):
        built = convplan.parse(main.read_text(), str(main)).graph.tree
    assert fast == built and [slotted(m) for m in fast if isinstance(m, Module)] == \
        [slotted(m) for m in built if isinstance(m, Module)]
    assert any(m.file for m in fast if isinstance(m, Module))  # made in lib.plan's frames


# -- a block call site's arguments matched to the parameters once (Binder.block) -----------------------------
# Random calls (by position, by keyword, too many, unknown or repeated keywords, a positional one after a keyword)
# of a block, each call site walked several times (a repeat) with other values: diagnostics, nodes and each call's
# values agree with matching every call anew.

CALL_ARGS = ["4", "w=4", "k=3", "w=i + 1", "k=1 if i == 0 else 3", "b=True", "2", "z=1", "w=2", "i"]


def _matched_plan(calls) -> str:
    lines = "".join(f"        B({', '.join(args)})\n" for args in calls)
    return ("block B(w, k=1, b=False):\n    input [N, C, L]\n    Conv1d(w, kernel_size=k, padding=k // 2, bias=b)\n\n"
            f"plan P:\n    input [N, 2, 16]\n    repeat i in 3:\n{lines}")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.sampled_from(CALL_ARGS), max_size=4), min_size=1, max_size=3))
@example([["4", "k=1 if i == 0 else 3"], ["w=i + 1", "b=True"]])
@example([["w=4", "2"], ["4", "w=2"]])
def test_block_arguments_matched_once_equal_matching_each_call(calls):
    from convplan import arguments

    text = _matched_plan(calls)
    once = convplan.analyse(text)
    with mock.patch.object(arguments.Binder, "matched", property(lambda self: {}, lambda self, v: None),
                           create=True):
        each = convplan.analyse(text)
    _same_check(once, each)


# -- a plain layer statement's site read once a check (Walker._site) ----------------------------------------------
# Random lines (literal and named arguments, a name that holds a tensor, an unknown kind, a merge, a block), in a
# block called several times and in the plan: the same check as when every statement takes the general path
# (`_any_call`), diagnostics, nodes, requirements, tree and trace alike.

SITE_LINES = ["Linear(8)", "ReLU()", "Bilinear(a, 5)", "Linear(k)", "y = Linear(k)", "Linear(a)", "Lnear(4)",
              "add(a)", "Linear(k, bias=b)", "Identity()", "Linear((4, 4))", "Flatten()"]


def _site_plan(lines, calls) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    uses = "".join(f"    B(k={k})\n" for k in calls)
    return (f"block B(k=8, b=True):\n    input [N, C]\n    a = Linear(8)\n{body}\n"
            f"plan P:\n    input [N, 8]\n    k = 8\n    b = False\n    a = Linear(8)\n{body}{uses}")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(SITE_LINES), min_size=1, max_size=6), st.lists(st.sampled_from([4, 8]), max_size=3))
@example(["Bilinear(a, 5)", "Linear(k)"], [8, 4, 8])
@example(["Linear(a)", "y = Linear(k)"], [4, 4])
def test_layer_sites_read_once_equal_the_general_path(lines, calls):
    from convplan import walker

    text = _site_plan(lines, calls)
    fast = convplan.analyse(text)
    general = walker.Walker._site

    def no_scan(self, stmt, namespace):  # kept so, as `_call` reads it again
        site = general(self, stmt, namespace)
        site = self.sites[id(stmt)] = (*site[:2], None, *site[3:])
        return site

    with mock.patch.object(walker.Walker, "_site", no_scan):
        slow = convplan.analyse(text)
    _same_check(fast, slow)
    if fast.plan is not None:
        assert fast.plan._checked.trace == slow.plan._checked.trace


# -- a block's merge met again on the very shapes it merged before is not worked out again (Walker.merged) ------
# Random blocks of merges (cat along a channel, the batch, a dim past the rank; add, mul, stack; an option read
# from a parameter; a `?` an assertion solves) called on random shapes, some repeatedly (the same shape objects
# again): the same check as working out every merge.

MERGE_LINES = ["cat(dim=1):\n        branch:\n            Conv2d(4, 1)\n        branch:\n            Conv2d(c, 1)",
               "cat(dim=0):\n        branch:\n            pass\n        branch:\n            ReLU()",
               "cat(dim=5):\n        branch:\n            pass\n        branch:\n            pass",
               "cat(dim=d):\n        branch:\n            pass\n        branch:\n            ReLU()",
               "add:\n        branch:\n            Conv2d(c, 3, padding=1)\n        branch:\n            pass",
               "mul:\n        branch:\n            AdaptiveAvgPool2d(1)\n        branch:\n            pass",
               "stack(dim=1):\n        branch:\n            pass\n        branch:\n            ReLU()",
               "Conv2d(c, kernel_size=?k, padding=1) -> [N, c, H, W]", "y = ReLU()", "cat(x, y, dim=1)",
               "add(x, y)", "Conv2d(c, 1)",
               "add:\n        branch:\n            Conv2d(?, 1)\n        branch:\n            pass"]
MERGE_CALLS = ["M(8, 1)", "M(8, 1)", "M(a, 8, 1)", "M(a, 8, 1)", "M(a, 8, 0)", "M(a, 4, 1)", "MaxPool2d(2)",
               "Conv2d(8, 1)"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(MERGE_LINES), min_size=1, max_size=5),
       st.lists(st.sampled_from(MERGE_CALLS), min_size=1, max_size=6))
@example(["cat(dim=1):\n        branch:\n            Conv2d(4, 1)\n        branch:\n            Conv2d(c, 1)"],
         ["M(a, 8, 1)", "M(a, 8, 1)", "M(a, 4, 1)", "M(a, 8, 1)"])
@example(["cat(dim=d):\n        branch:\n            pass\n        branch:\n            ReLU()"],
         ["M(a, 8, 1)", "M(a, 8, 0)"])
@example(["Conv2d(c, kernel_size=?k, padding=1) -> [N, c, H, W]", "y = ReLU()", "add(x, y)"],
         ["M(a, 8, 1)", "M(a, 8, 1)"])
def test_merges_met_again_equal_working_each_out(lines, calls):
    from convplan import walker

    body = "".join(f"    {line}\n" for line in lines)
    text = (f"block M(c, d):\n    input x [N, C, H, W]\n{body}\n"
            "plan P:\n    input a [N, 8, H, W]\n" + "".join(f"    {c}\n" for c in calls))
    kept = convplan.analyse(text)
    init = walker.Walker.__init__

    def forgetful(self, st):  # every merge worked out: nothing found in `merged`
        init(self, st)
        self.merged = _Forgetful()

    with mock.patch.object(walker.Walker, "__init__", forgetful):
        each = convplan.analyse(text)
    _same_check(kept, each)


class _Forgetful(dict):
    def __setitem__(self, key, value) -> None:
        pass
