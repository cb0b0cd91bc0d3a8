"""MaxUnpool1d/2d/3d, CosineSimilarity and PairwiseDistance against real torch, with random arguments and
sizes: a plan names MaxPool's (output, indices) with return_indices=True and unpools them; two tensors are
compared.  Both accept or both refuse; where both accept, every output's shape agrees, at concrete sizes and
with every size a symbol (a dim of 1 that broadcasts stays a written 1: a symbol may be any size)."""

from __future__ import annotations

import math
import os
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_codegen import module_class, round_trip
from test_sequence_layers import fvcore_count
from torch import nn

import convplan
from convplan import PlanError
from convplan.shapes import evaluate

EXAMPLES = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 120)), deadline=None)


def dims(shape, symbolic: bool, sizes: dict, tag: str) -> str:
    out = []
    for k, d in enumerate(shape):
        if symbolic and d != 1:
            sizes[f"{tag}{k}"] = d
            out.append(f"{tag}{k}")
        else:
            out.append(str(d))
    return "[" + ", ".join(out) + "]"


def agree(text: str, sizes: dict, run, names: list[str]):
    """`run()` gives torch's output shapes (or raises: torch refuses); the plan gives them at `sizes`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = [tuple(t.shape) for t in run()]
        if any(0 in s or s == () for s in want):
            want = None  # an empty tensor or a 0-d one: a plan refuses it
    except RuntimeError:  # "invalid max index": an unpool's indices past its output, which the data decides
        want = None  # (the unpool tests give the worst data: each window's maximum at its last position)
    except (ValueError, IndexError):
        want = None
    try:
        plan = convplan.parse(text)
    except PlanError as exc:
        assert want is None, f"convplan refused what torch accepts ({want}):\n{text}{exc}"
        return None
    if want is None:
        broken = [r for r in plan.requires if not evaluate(r.condition, sizes)]
        assert broken, f"convplan accepted what torch refuses:\n{text}"
        return None
    nodes = {n.name: n for n in plan.graph.nodes}
    got = [tuple(int(evaluate(d, sizes)) for d in nodes[name].shape) for name in names]
    assert got == want, f"convplan says {got}, torch gives {want}:\n{text}"
    return plan


def worst(shape) -> torch.Tensor:
    """Increasing values: each pool window's maximum at its last position, the largest index it can give (an
    unpool fails on these wherever it fails on any data)."""
    return torch.arange(float(math.prod(shape))).reshape(shape)


@st.composite
def unpool_case(draw):
    nd = draw(st.integers(1, 3))
    batched = draw(st.booleans())
    shape = (*((draw(st.integers(1, 2)),) if batched else ()), draw(st.integers(1, 3)),
             *(draw(st.integers(1, 9)) for _ in range(nd)))
    k = draw(st.integers(1, 4))
    pool = {"kernel_size": k, "stride": draw(st.sampled_from([None, 1, 2, 3])), "padding": draw(st.integers(0, 2)),
            "ceil_mode": draw(st.booleans())}
    unpool = dict(pool) if draw(st.integers(0, 3)) else {
        "kernel_size": draw(st.integers(1, 4)), "stride": draw(st.sampled_from([None, 1, 2])),
        "padding": draw(st.integers(0, 2))}
    unpool.pop("ceil_mode", None)
    return nd, shape, pool, unpool


@given(unpool_case())
@EXAMPLES
def test_max_unpool(case):
    nd, shape, pool, unpool = case
    x = worst(shape)
    for symbolic in (False, True):
        sizes: dict = {}
        args = lambda a: ", ".join(f"{k}={v!r}" for k, v in a.items())  # noqa: E731
        text = (f"plan T:\n    input x {dims(shape, symbolic, sizes, 'D')}\n"
                f"    y, idx = MaxPool{nd}d({args(pool)}, return_indices=True)\n"
                f"    out = MaxUnpool{nd}d(y, idx, {args(unpool)})\n")

        def run():
            y, idx = getattr(nn, f"MaxPool{nd}d")(**pool, return_indices=True)(x)
            return y, idx, getattr(nn, f"MaxUnpool{nd}d")(**unpool)(y, idx)

        # No round trip through generated code here: whether torch's unpool accepts the indices depends on the
        # input's values (a pool with ceil_mode or padding can pick a position past the unpool's default size:
        # "Found an invalid max index"); the worst data, here, fails wherever any does, and convplan refuses that
        agree(text, sizes, run, ["y", "idx", "out"])


@given(unpool_case(), st.lists(st.integers(-3, 3), min_size=3, max_size=3), st.booleans(), st.booleans())
@EXAMPLES
def test_max_unpool_output_size(case, offsets, whole, symbolic):
    """output_size, which torch's forward takes: the default size plus an offset per dim (strictly within a
    stride: accepted; else refused, by both), as nd sizes or as the whole shape (torch ignores its first two)."""
    nd, shape, pool, unpool = case
    x = worst(shape)
    try:
        y, idx = getattr(nn, f"MaxPool{nd}d")(**pool, return_indices=True)(x)
    except RuntimeError:
        return  # the pool refuses: test_max_unpool's
    stride = unpool["stride"] or unpool["kernel_size"]
    default = [(d - 1) * stride + unpool["kernel_size"] - 2 * unpool["padding"] for d in y.shape[-nd:]]
    size = tuple(d + o for d, o in zip(default, offsets, strict=False))
    size = (*y.shape[:2], *size) if whole and y.dim() == nd + 2 else size
    sizes: dict = {}
    args = ", ".join(f"{k}={v!r}" for k, v in unpool.items())
    text = (f"plan T:\n    input x {dims(shape, symbolic, sizes, 'D')}\n"
            f"    y, idx = MaxPool{nd}d({', '.join(f'{k}={v!r}' for k, v in pool.items())}, return_indices=True)\n"
            f"    out = MaxUnpool{nd}d(y, idx, {args}, output_size={size!r})\n")
    agree(text, sizes, lambda: (y, idx, getattr(nn, f"MaxUnpool{nd}d")(**unpool)(y, idx, output_size=size)),
          ["y", "idx", "out"])


def test_max_unpool_output_size_refused_where_torch_refuses_it():
    """A tuple of another length, and a size a stride or more from the default (torch's ValueError)."""
    base = "plan T:\n    input x [N, 3, 8]\n    y, idx = MaxPool1d(2, return_indices=True)\n"
    for call, message in [("MaxUnpool1d(y, idx, 2, output_size=(8, 8))",
                           "output_size must be a tuple of 1 sizes (or 3, the input's shape"),
                          ("MaxUnpool1d(y, idx, 2, output_size=(10,))",
                           "output_size[0] (10) must be strictly between 6 and 10: within a stride (2) of the "
                           "default size 8")]:
        with pytest.raises(PlanError) as info:
            convplan.parse(base + f"    out = {call}\n")
        (d,) = info.value.diagnostics
        assert message in d.message and (d.span.line, d.code) == (4, "E300"), d.message


def test_max_unpool_output_size_builds_and_generates_code_for_every_size():
    """output_size=(H, W), the pool's input size: build() and the generated code read H and W when forward runs
    (not constructor arguments), so one module inverts the pool at even and odd sizes alike."""
    plan = convplan.parse("plan Inverse:\n    input [N, 3, H, W]\n    y, idx = MaxPool2d(2, return_indices=True)\n"
                          "    Conv2d(3, 3, padding=1)\n    MaxUnpool2d(idx, 2, output_size=(H, W))\n")
    assert plan.requires and all("output_size" not in r.reason for r in plan.requires)  # within a stride: always
    built = plan.build().eval()
    source = plan.to_source()
    assert "output_size=(H, W)" in source and "def __init__(self):" in source, source
    generated = module_class(source)().eval()
    generated.load_state_dict(built.state_dict(), strict=True)
    for h, w in ((10, 12), (11, 13), (2, 3)):
        x = torch.randn(2, 3, h, w)
        with torch.no_grad():
            out = built(x)
            assert out.shape == (2, 3, h, w) and torch.equal(generated(x), out)
    round_trip(plan, {"N": 2, "H": 9, "W": 7})


def test_verify_passes_unpool_s_output_size_as_torch_s_forward_takes_it():
    """verify runs the layers one by one (build.values), not through forward: output_size still goes in."""
    plan = convplan.parse("plan Inverse:\n    input [N, 3, H, W]\n    y, idx = MaxPool2d(2, return_indices=True)\n"
                          "    MaxUnpool2d(idx, 2, output_size=(H, W))\n")
    report = plan.verify(N=2, H=9, W=7)
    assert report.ok, report


def test_unpool_needs_the_pools_indices_with_a_located_error():
    text = ("plan T:\n    input x [N, 3, 8, 8]\n    y, idx = MaxPool2d(2, return_indices=True)\n"
            "    z = Conv2d(y, 3, 3)\n    MaxUnpool2d(idx, 2)\n")
    with pytest.raises(PlanError) as info:
        convplan.parse(text)
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line) == ("E300", 5)
    assert "the indices must have the input's shape (N, 3, 2, 2)" in d.message and "got (N, 3, 4, 4)" in d.message


def test_unpool_builds_and_generates_code_that_inverts_the_pool():
    plan = convplan.parse("plan SegNetish:\n    input [N, 3, H, W]\n    y, idx = MaxPool2d(2, return_indices=True)\n"
                          "    Conv2d(3, 3, padding=1)\n    MaxUnpool2d(idx, 2)\n")
    built = plan.build().eval()
    generated = module_class(plan.to_source())().eval()
    generated.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 3, 10, 12)
    with torch.no_grad():
        out = built(x)
        assert out.shape == (2, 3, 10, 12) and torch.equal(generated(x), out)
        assert (out != 0).sum() <= 2 * 3 * 5 * 6  # one value per pooled window, zeros elsewhere


def _broadcastable(draw, shape):
    """Another shape: the same, with dims turned 1 or dropped from the front, now and then one that differs."""
    other = [1 if draw(st.integers(0, 3)) == 0 else d for d in shape]
    other = other[draw(st.integers(0, len(other) - 1)):] if draw(st.integers(0, 3)) == 0 else other
    if draw(st.integers(0, 6)) == 0:
        k = draw(st.integers(0, len(other) - 1))
        other[k] = other[k] + 1
    return tuple(other)


@st.composite
def distance_case(draw):
    kind = draw(st.sampled_from(["CosineSimilarity", "PairwiseDistance"]))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    first, second = (shape, _broadcastable(draw, shape)) if draw(st.booleans()) else (_broadcastable(draw, shape),
                                                                                      shape)
    if kind == "CosineSimilarity":
        args = {"dim": draw(st.integers(-4, 3)), "eps": draw(st.sampled_from([1e-8, 1e-3]))}
    else:
        args = {"p": draw(st.sampled_from([1.0, 2.0, 3.5])), "keepdim": draw(st.booleans())}
    return kind, first, second, args


@given(distance_case())
@EXAMPLES
def test_distances(case):
    kind, first, second, args = case
    a, b = torch.randn(*first), torch.randn(*second)
    module = getattr(nn, kind)(**args)
    for symbolic in (False, True):
        sizes: dict = {}
        call = ", ".join(["a", "b", *(f"{k}={v!r}" for k, v in args.items())])
        text = (f"plan T:\n    input a {dims(first, symbolic, sizes, 'A')}\n"
                f"    input b {dims(second, symbolic, sizes, 'B')}\n    out = {kind}({call})\n")
        plan = agree(text, sizes, lambda: [module(a, b)], ["out"])
        if plan is not None and not symbolic:
            round_trip(plan, {})  # the generated code computes what build() does
            cost = plan.cost("fvcore")
            assert (cost.at(**sizes), cost.skipped_ops) == fvcore_count(module, [a, b]), text


@st.composite
def unpool_after_pool_case(draw):
    """A max pool that returns indices (MaxPool with any arguments, FractionalMaxPool, AdaptiveMaxPool) and an
    unpool of them, with the pool's arguments or others, now and then with an output_size."""
    nd = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), *(draw(st.integers(1, 10 if nd < 3 else 6)) for _ in range(nd)))
    kind = draw(st.sampled_from(["MaxPool"] * 4 + ["AdaptiveMaxPool"] + (["FractionalMaxPool"] if nd > 1 else [])))
    k = draw(st.integers(1, 4))
    if kind == "MaxPool":
        pool = {"kernel_size": k, "stride": draw(st.sampled_from([None, 1, 2, 3])),
                "padding": draw(st.integers(0, k // 2)), "dilation": draw(st.sampled_from([1, 1, 1, 2])),
                "ceil_mode": draw(st.booleans())}
    elif kind == "AdaptiveMaxPool":
        pool = {"output_size": draw(st.integers(1, 4))}
    else:
        pool = {"kernel_size": k, "output_size": draw(st.integers(1, 4))}
    unpool = {"kernel_size": pool.get("kernel_size", k), "stride": pool.get("stride"),
              "padding": pool.get("padding", 0)}
    if draw(st.integers(0, 3)) == 0:
        unpool = {"kernel_size": draw(st.integers(1, 4)), "stride": draw(st.sampled_from([None, 1, 2])),
                  "padding": draw(st.integers(0, 1))}
    offsets = draw(st.lists(st.integers(-2, 2), min_size=nd, max_size=nd)) if draw(st.integers(0, 2)) == 0 else None
    return nd, shape, kind, pool, unpool, offsets


def _unpool_runs(nd, shape, kind, pool, unpool, size) -> bool | None:
    """Whether torch unpools the pool's indices of the worst data, increasing values (each window's maximum at its
    last position): True, False ("Found an invalid max index"), or None where torch refuses the shapes."""
    x = worst(shape)
    try:
        y, idx = getattr(nn, f"{kind}{nd}d")(**pool, return_indices=True)(x)
        if 0 in y.shape:
            return None
        if 0 in getattr(nn, f"MaxUnpool{nd}d")(**unpool)(y, idx, output_size=size).shape:
            return None  # an empty tensor: a plan refuses it
    except RuntimeError as exc:
        if "invalid max index" in str(exc):
            return False
        return None
    except ValueError:
        return None
    return True


@given(unpool_after_pool_case())
@EXAMPLES
def test_max_unpool_requires_the_indices_to_fit(case):
    """torch's unpool fails at run time on an index past its output ("Found an invalid max index": the indices are
    positions in the pool's input, h*W + w): convplan requires exactly the sizes where no data can make one (worst
    data: increasing values).  Where a dilated window is cut short at the input's end convplan's reach is an upper
    bound, so there it may only refuse more."""
    nd, shape, kind, pool, unpool, offsets = case
    sizes = {f"D{k}": d for k, d in enumerate(shape)}
    names = ", ".join(sizes)
    size = None
    call = ", ".join(f"{k}={v!r}" for k, v in unpool.items())
    if offsets is not None:  # the pooled input's size, moved a little: a symbolic output_size
        size = tuple(d + o for d, o in zip(shape[1:], offsets, strict=True))
        call += ", output_size=(" + ", ".join(f"D{k + 1} + {o}" for k, o in enumerate(offsets)) + ",)"
    text = (f"plan T:\n    input x [{names}]\n"
            f"    y, idx = {kind}{nd}d({', '.join(f'{k}={v!r}' for k, v in pool.items())}, return_indices=True)\n"
            f"    out = MaxUnpool{nd}d(y, idx, {call})\n")
    runs = _unpool_runs(nd, shape, kind, pool, unpool, size)
    try:
        plan = convplan.parse(text)
    except PlanError as exc:
        assert runs is not True or pool.get("dilation", 1) > 1, f"convplan refused what torch runs:\n{text}{exc}"
        return
    ok = plan.satisfied(**sizes)
    if runs is None:
        assert not ok, f"convplan accepted shapes torch refuses:\n{text}at {sizes}"
    elif pool.get("dilation", 1) > 1:
        assert runs or not ok, f"convplan accepted what torch fails on:\n{text}at {sizes}"
    else:
        assert ok == runs, f"torch {'runs' if runs else 'fails'}, convplan says {ok}:\n{text}at {sizes}: " \
            + ", ".join(map(str, plan.requires))


@pytest.mark.parametrize(("pool", "unpool", "torch_args", "sizes"), [
    ("MaxPool2d(2, stride=2, return_indices=True)", "MaxUnpool2d(y, idx, 2, stride=2",
     ("MaxPool", {"kernel_size": 2, "stride": 2}, {"kernel_size": 2, "stride": 2}), [(3, 3), (4, 5)]),
    ("MaxPool2d(3, stride=2, return_indices=True)", "MaxUnpool2d(y, idx, 3, stride=2",
     ("MaxPool", {"kernel_size": 3, "stride": 2}, {"kernel_size": 3, "stride": 2}), [(9, 4), (8, 8)]),
    ("FractionalMaxPool2d(2, output_size=(3, 4), return_indices=True)", "MaxUnpool2d(y, idx, 2",
     ("FractionalMaxPool", {"kernel_size": 2, "output_size": (3, 4)}, {"kernel_size": 2}), [(11, 13)]),
    ("MaxPool1d(3, stride=2, padding=1, return_indices=True)", "MaxUnpool1d(y, idx, 3, stride=2, padding=1",
     ("MaxPool", {"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 3, "stride": 2, "padding": 1}),
     [(6,)]),
])
def test_max_unpool_refuses_the_sizes_torch_fails_at_and_says_what_to_write(pool, unpool, torch_args, sizes):
    """The reviewer's cases (and a padded 1-d one): the plan requires what torch needs and says to write
    output_size=(...); with it the plan has no such requirement, and build() runs where the data puts each maximum
    last."""
    dims = ["N", "C", "L"] if len(sizes[0]) == 1 else ["N", "C", "H", "W"]
    spatial = ", ".join(dims[2:]) + ("," if len(dims) == 3 else "")
    head = f"plan P:\n    input [{', '.join(dims)}]\n    y, idx = {pool}\n"
    plan = convplan.parse(head + f"    {unpool})\n")
    (req,) = [r for r in plan.requires if "indices are positions" in r.reason]
    assert f"write output_size=({spatial})" in req.reason, req.reason
    kind, pooled, unpooled = torch_args
    for rest in sizes:
        assert not plan.satisfied(**dict(zip(dims, (1, 2, *rest), strict=True)))
        assert _unpool_runs(len(rest), (2, *rest), kind, pooled, unpooled, None) is False
    fixed = convplan.parse(head + f"    {unpool}, output_size=({spatial}))\n")
    assert not [r for r in fixed.requires if "indices are positions" in r.reason], fixed.requires
    for rest in sizes:
        at = dict(zip(dims, (1, 2, *rest), strict=True))
        if fixed.satisfied(**at):
            x = torch.arange(float(math.prod((1, 2, *rest)))).reshape(1, 2, *rest)
            with torch.no_grad():
                assert fixed.build(**at)(x).shape == x.shape


def test_unpools_alike_but_for_where_their_indices_came_from_are_checked_each():
    """The rule caches key a call by its input shapes; an unpool's check reads where its indices were made too:
    two unpools of [1, 2, 2, 2], from pools of [.., 4, 4] and of [.., 4, 5], are not one result."""
    text = ("plan T:\n    input x [1, 2, 4, 4]\n    input z [1, 2, 4, 5]\n"
            "    y, i = MaxPool2d(x, 2, return_indices=True)\n    a = MaxUnpool2d(y, i, 2)\n"
            "    y2, i2 = MaxPool2d(z, 2, return_indices=True)\n    b = MaxUnpool2d(y2, i2, 2)\n")
    with pytest.raises(PlanError) as info:
        convplan.parse(text)
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line) == ("E300", 7) and "up to 18" in d.message, d.message
