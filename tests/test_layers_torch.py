"""Every layer kind against real torch 2.13 (CPU, eval mode): random arguments, valid or not,
random input sizes.  convplan must accept exactly what torch runs, with torch's output shape,
both for concrete sizes and for symbolic ones evaluated at those sizes (see _torch_oracle)."""

from __future__ import annotations

import os

import pytest
import torch
from _torch_oracle import SYMBOLS, Sym, check_both, check_concrete, plan_text, torch_layer, torch_run
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan
from convplan import PlanError
from convplan.shapes import evaluate

# CONVPLAN_EXAMPLES=2000 for a deeper hunt; the default keeps the file near 20 s on 2 cores.
EXAMPLES = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 150)), deadline=None)

small = st.integers(1, 4)
dims = st.integers(1, 9)


@st.composite
def shapes(draw, ranks, lo=1, hi=9):
    """Small sizes, with plenty of 1s and 2s: that is where torch's edge cases live."""
    rank = draw(st.sampled_from(ranks))
    size = st.one_of(st.integers(lo, hi), st.sampled_from([1, 1, 2]))
    return tuple(draw(size) for _ in range(rank))


def mostly(good, *bad):
    """Usually a value from `good`, now and then one of the `bad` ones (values torch refuses).  The bad
    branch hangs off a middle value: hypothesis favours the ends of a range."""
    return st.integers(0, 9).flatmap(lambda i: st.sampled_from(bad) if i == 5 and bad else good)


def sized(values, nd, lengths=None):
    """An int from `values`, or a tuple of them (usually of length nd, sometimes not)."""
    lengths = lengths or [nd] * 6 + [1, nd + 1]
    return st.one_of(values, st.sampled_from(lengths).flatmap(lambda n: st.tuples(*[values] * n)))


@st.composite
def some(draw, options: dict):
    """A random subset of the optional arguments, in torch's order."""
    return {k: draw(v) for k, v in options.items() if draw(st.booleans())}


def near_ranks(nd):
    return [nd + 1, nd + 2, nd + 2, nd + 2, nd + 2, nd, nd + 3]


# -- convolutions ----------------------------------------------------------------------


@st.composite
def conv_case(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    kind = draw(st.sampled_from(["Conv", "ConvTranspose"])) + f"{nd}d"
    groups = draw(mostly(st.sampled_from([1, 1, 1, 2, 3]), 0, -1))
    args = {
        "out_channels": draw(mostly(st.sampled_from([1, 2, 3, 4, 6]), 0)),
        "kernel_size": draw(sized(mostly(st.integers(1, 4), 0), nd, [nd] * 6 + [1, nd + 1])),
    }
    pads = mostly(st.integers(0, 2), -1)
    if kind.startswith("Conv") and not kind.startswith("ConvT"):
        pads = st.one_of(pads, st.sampled_from(["same", "valid"]))
    options = {
        "stride": sized(mostly(st.integers(1, 3), 0), nd),
        "padding": st.one_of(pads, sized(mostly(st.integers(0, 2), -1), nd)),
        "dilation": sized(mostly(st.integers(1, 2), 0), nd),
        "groups": st.just(groups),
        "bias": st.booleans(),
        "padding_mode": mostly(st.just("zeros"), "reflect", "replicate", "circular"),
    }
    if kind.startswith("ConvT"):
        options["output_padding"] = sized(mostly(st.integers(0, 1), -1, 2), nd)
    args.update(draw(some(options)))
    shape = draw(shapes(near_ranks(nd), hi={1: 12, 2: 8, 3: 6}[nd]))
    if len(shape) > nd and draw(mostly(st.just(True), False)):  # usually make the channels fit the groups
        ch = len(shape) - nd - 1
        shape = shape[:ch] + (max(groups, 1) * draw(small),) + shape[ch + 1 :]
    return shape, [(kind, args)]


@given(conv_case())
@EXAMPLES
def test_conv(case):
    check_both(*case)


# -- pooling ---------------------------------------------------------------------------


@st.composite
def pool_case(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    kind = draw(st.sampled_from(["Max", "Avg"])) + f"Pool{nd}d"
    args = {"kernel_size": draw(sized(mostly(st.integers(1, 4), 0, -1), nd))}
    options = {
        "stride": st.one_of(st.none(), sized(mostly(st.integers(1, 5), 0, -1), nd)),
        "padding": sized(mostly(st.integers(0, 2), -1), nd),
        "ceil_mode": st.booleans(),
    }
    if kind.startswith("Max"):
        options["dilation"] = sized(mostly(st.integers(1, 2), 0), nd)
        options["return_indices"] = mostly(st.just(False), True)
    else:
        options["count_include_pad"] = st.booleans()
        if nd > 1:
            options["divisor_override"] = mostly(st.sampled_from([None, 1, 2, -1]), 0)
    args.update(draw(some(options)))
    return draw(shapes(near_ranks(nd), hi={1: 10, 2: 7, 3: 5}[nd])), [(kind, args)]


@given(pool_case())
@EXAMPLES
def test_pool(case):
    check_both(*case)


@st.composite
def adaptive_case(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    kind = f"Adaptive{draw(st.sampled_from(['Avg', 'Max']))}Pool{nd}d"
    entry = mostly(st.integers(1, 6), 0, -1, None) if nd > 1 else mostly(st.integers(1, 6), 0, -1)
    args = {"output_size": draw(mostly(sized(entry, nd), None))}
    if kind.startswith("AdaptiveMax") and draw(st.booleans()):
        args["return_indices"] = draw(mostly(st.just(False), True))
    return draw(shapes(near_ranks(nd), hi=7)), [(kind, args)]


@given(adaptive_case())
@EXAMPLES
def test_adaptive_pool(case):
    check_both(*case)


# -- normalisation ---------------------------------------------------------------------


@st.composite
def norm_case(draw):
    kind = draw(st.sampled_from(["BatchNorm", "InstanceNorm", "GroupNorm", "LayerNorm"]))
    shape = draw(shapes([1, 2, 3, 4, 5, 6], hi=3))
    if kind == "GroupNorm":
        args = {"num_groups": draw(st.sampled_from([1, 2, 3, 4, 0, -1]))}
        args.update(draw(some({"eps": st.just(1e-3), "affine": st.booleans()})))
    elif kind == "LayerNorm":
        tail = shape[len(shape) - draw(st.integers(0, len(shape))) :]
        norm = st.one_of(st.just(tail), st.just(tail[-1:] or (2,)), st.integers(0, 3), st.tuples(small, small))
        args = draw(some({"normalized_shape": norm, "elementwise_affine": st.booleans(), "bias": st.booleans()}))
    else:
        kind += f"{draw(st.sampled_from([1, 2, 3]))}d"
        args = draw(some({"eps": st.just(1e-3), "affine": st.booleans(), "track_running_stats": st.booleans()}))
    return shape, [(kind, args)]


@given(norm_case())
@EXAMPLES
def test_norm(case):
    check_both(*case)


# -- element-wise, dropout, softmax ----------------------------------------------------

ELEMENTWISE = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "Sigmoid",
               "Tanh", "Identity"]


@st.composite
def pointwise_case(draw):
    kind = draw(st.sampled_from([*ELEMENTWISE, "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "Softmax",
                                 "LogSoftmax"]))
    shape = draw(shapes([1, 2, 3, 4, 5, 6], hi=3))
    args = {}
    if kind.startswith("Dropout"):
        args = draw(some({"p": st.sampled_from([0.0, 0.5, 1.0, 1.5, -0.25])}))
    elif kind.endswith("Softmax"):
        args = draw(some({"dim": st.one_of(st.none(), st.integers(-7, 6))}))
    elif kind == "LeakyReLU":
        args = draw(some({"negative_slope": st.sampled_from([0.2, -1.0])}))
    elif kind == "GELU":
        args = draw(some({"approximate": st.sampled_from(["none", "tanh"])}))
    return shape, [(kind, args)]


@given(pointwise_case())
@EXAMPLES
def test_pointwise(case):
    check_both(*case)


# -- reshaping -------------------------------------------------------------------------


@st.composite
def reshape_case(draw):
    kind = draw(st.sampled_from(["Flatten", "Unflatten", "Linear", "PixelShuffle", "PixelUnshuffle"]))
    shape = draw(shapes([1, 2, 3, 4, 5], hi=6))
    index = st.integers(-6, 5)
    if kind == "Flatten":
        args = draw(some({"start_dim": index, "end_dim": index}))
    elif kind == "Unflatten":
        entry = st.sampled_from([1, 2, 3, 4, 6, -1, -1, 0, -2])
        sizes = st.one_of(st.lists(entry, min_size=1, max_size=3).map(tuple), entry)
        args = {"dim": draw(index), "unflattened_size": draw(sizes)}
    elif kind == "Linear":
        args = {"out_features": draw(st.integers(0, 5))}
        args.update(draw(some({"bias": st.booleans()})))
    else:
        name = "upscale_factor" if kind == "PixelShuffle" else "downscale_factor"
        args = {name: draw(st.integers(-1, 3))}
    return shape, [(kind, args)]


@given(reshape_case())
@EXAMPLES
def test_reshape(case):
    check_both(*case)


# -- padding ---------------------------------------------------------------------------


@st.composite
def pad_case(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    kind = draw(st.sampled_from(["Zero", "Constant", "Reflection", "Replication"])) + f"Pad{nd}d"
    entry = st.integers(-3, 4)
    pads = st.one_of(entry, st.sampled_from([2 * nd, 2 * nd, 2, 4, 6, 3]).flatmap(lambda n: st.tuples(*[entry] * n)))
    args = {"padding": draw(pads)}
    if kind.startswith("Constant"):
        args["value"] = 0.5
    return draw(shapes([nd, nd + 1, nd + 2, nd + 2, nd + 3, 1], hi=6)), [(kind, args)]


@given(pad_case())
@EXAMPLES
def test_pad(case):
    check_both(*case)


# -- upsampling ------------------------------------------------------------------------

MODES = ["nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact"]


@st.composite
def upsample_case(draw):
    shape = draw(shapes([3, 4, 5, 2], hi=6))
    nd = max(len(shape) - 2, 1)
    args = {}
    if draw(st.booleans()):
        args["size"] = draw(sized(st.integers(0, 9), nd))
    if draw(st.booleans()) or not args:
        scales = st.sampled_from([0.5, 1.5, 2.0, 0.29, 1.1, 2.5, 3.0, 0.1, 1.0, 1 / 3])
        args["scale_factor"] = draw(st.one_of(scales, sized(scales, nd)))
    args.update(draw(some({"mode": st.sampled_from(MODES), "align_corners": st.booleans()})))
    return shape, [("Upsample", args)]


@given(upsample_case())
@EXAMPLES
def test_upsample(case):
    check_both(*case)


# -- hand-picked edge cases (expected values come from torch, in the test) ---------------


def torch_shape(shape, layers):
    out, why = torch_run(shape, layers)
    assert out is not None, why
    return out


def torch_refuses(shape, layers):
    out, _ = torch_run(shape, layers)
    return out is None


EDGE_ACCEPT = [
    # ceil_mode: the last window must start inside the input (7 -> 3, not 4)
    ((1, 1, 7), [("MaxPool1d", {"kernel_size": 2, "stride": 3, "ceil_mode": True})]),
    ((1, 1, 6), [("AvgPool1d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True})]),
    ((1, 1, 5, 5), [("MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True, "dilation": 2})]),
    # dilation
    ((2, 3, 17), [("Conv1d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "dilation": 2, "padding": 1})]),
    # padding='same' with an even kernel: asymmetric padding, same length
    ((1, 2, 6), [("Conv1d", {"out_channels": 3, "kernel_size": 4, "padding": "same"})]),
    ((1, 2, 5, 4), [("Conv2d", {"out_channels": 3, "kernel_size": (2, 3), "padding": "same", "dilation": (3, 1)})]),
    ((1, 2, 5), [("Conv1d", {"out_channels": 3, "kernel_size": 4, "padding": "same", "padding_mode": "reflect"})]),
    ((1, 2, 5), [("Conv1d", {"out_channels": 3, "kernel_size": 4, "padding": "valid"})]),
    # output_padding below stride or dilation
    ((1, 2, 5), [("ConvTranspose1d", {"out_channels": 3, "kernel_size": 3, "stride": 2, "output_padding": 1})]),
    ((1, 2, 5), [("ConvTranspose1d", {"out_channels": 3, "kernel_size": 3, "dilation": 2, "output_padding": 1})]),
    # groups
    ((1, 4, 5), [("Conv1d", {"out_channels": 6, "kernel_size": 3, "groups": 2})]),
    # unbatched inputs
    ((3, 10), [("Conv1d", {"out_channels": 2, "kernel_size": 3})]),
    ((3, 6, 6), [("MaxPool2d", {"kernel_size": 2})]),
    # BatchNorm1d on (N, C); Linear on the last dim of any rank
    ((4, 3), [("BatchNorm1d", {})]),
    ((2, 3, 4, 5), [("Linear", {"out_features": 7})]),
    ((7,), [("Linear", {"out_features": 2})]),
    # Flatten start/end
    ((2, 3, 4, 5), [("Flatten", {"start_dim": 1, "end_dim": 2})]),
    ((2, 3, 4, 5), [("Flatten", {"start_dim": -3, "end_dim": -1})]),
    # Upsample: int(float64(L) * scale)
    ((1, 1, 100), [("Upsample", {"scale_factor": 0.29})]),
    ((1, 1, 10), [("Upsample", {"scale_factor": 1.1})]),
    ((1, 1, 3), [("Upsample", {"scale_factor": 2.5})]),
    # pooling padding at exactly half the kernel
    ((1, 1, 5), [("MaxPool1d", {"kernel_size": 4, "padding": 2})]),
    # GroupNorm / InstanceNorm with just 2 values
    ((1, 4, 2), [("GroupNorm", {"num_groups": 4})]),
    ((1, 3, 1, 2), [("InstanceNorm2d", {})]),
    ((1, 4, 1, 1), [("BatchNorm2d", {})]),  # only training needs > 1 value per channel
    ((1, 8, 3, 3), [("PixelShuffle", {"upscale_factor": 2})]),
    ((1, 2, 4, 6), [("PixelUnshuffle", {"downscale_factor": 2})]),
    ((2, 12), [("Unflatten", {"dim": 1, "unflattened_size": (3, -1)})]),
    ((2, 3, 5), [("ReflectionPad1d", {"padding": (4, 1)})]),
]

EDGE_REFUSE = [
    ((1, 2, 5), [("Conv1d", {"out_channels": 1, "kernel_size": (2, 1)})]),  # torch builds it, dies at forward
    ((1, 1, 5), [("MaxPool1d", {"kernel_size": 3, "padding": 2})]),  # padding > kernel//2
    ((1, 1, 9), [("MaxPool1d", {"kernel_size": 3, "padding": 2, "dilation": 2})]),  # the UNdilated kernel counts
    ((1, 1, 2, 4, 4), [("AvgPool3d", {"kernel_size": 3, "padding": 1})]),  # raw L >= k
    ((1, 3, 1, 1), [("InstanceNorm2d", {})]),  # needs H*W >= 2, in eval too
    ((1, 4, 1), [("GroupNorm", {"num_groups": 4})]),  # needs N*C/G*L >= 2, in eval too
    ((1, 2, 5), [("Conv1d", {"out_channels": 1, "kernel_size": 3, "stride": 2, "padding": "same"})]),
    ((1, 2, 5), [("ConvTranspose1d", {"out_channels": 1, "kernel_size": 3, "stride": 2, "output_padding": 2})]),
    ((1, 3, 5), [("Conv1d", {"out_channels": 2, "kernel_size": 3, "groups": 2})]),
    ((2, 5, 5, 5), [("Dropout1d", {})]),  # 2-D or 3-D only
    ((2, 3), [("Softmax", {"dim": 2})]),
    ((2, 3), [("LayerNorm", {"normalized_shape": (2, 3, 4)})]),
    ((2, 3), [("LayerNorm", {"normalized_shape": 4})]),
    ((2, 6), [("Unflatten", {"dim": 1, "unflattened_size": (4, -1)})]),
    ((2, 6), [("Unflatten", {"dim": 1, "unflattened_size": 6})]),  # torch wants a tuple
    ((1, 6, 3, 3), [("PixelShuffle", {"upscale_factor": 2})]),
    ((1, 2, 5, 4), [("PixelUnshuffle", {"downscale_factor": 2})]),
    ((2, 3, 5), [("ReflectionPad1d", {"padding": (5, 1)})]),
    ((2, 3, 5), [("ZeroPad2d", {"padding": (1, 1, 1)})]),  # odd length
    ((2, 3, 5, 5), [("ReflectionPad1d", {"padding": 1})]),  # 1-d reflect on a 4-D input
    ((1, 1, 7), [("Upsample", {"scale_factor": 2.0, "mode": "bilinear"})]),
    ((1, 1, 3, 3), [("Upsample", {"scale_factor": 0.2})]),  # output 0
    ((1, 2, 5), [("Linear", {"out_features": 0})]),  # torch: an empty tensor; convplan refuses empty dims
    ((1, 2, 5), [("AdaptiveAvgPool1d", {"output_size": 0})]),  # likewise
]


@pytest.mark.parametrize("shape, layers", EDGE_ACCEPT)
def test_edge_accepted(shape, layers):
    torch_shape(shape, layers)  # the case is what it claims: torch runs it
    check_both(shape, layers)


@pytest.mark.parametrize("shape, layers", EDGE_REFUSE)
def test_edge_refused(shape, layers):
    assert torch_refuses(shape, layers)
    assert check_concrete(shape, layers) is None
    check_both(shape, layers)


def test_kernel_tuple_of_wrong_length_is_refused_at_kernel_size():
    """torch builds Conv1d(2, 1, kernel_size=(2, 1)) and only fails in forward; convplan refuses the plan."""
    layers = [("Conv1d", {"out_channels": 1, "kernel_size": (2, 1)})]
    assert torch_refuses((1, 2, 5), layers)
    text = plan_text((1, 2, 5), layers)
    with pytest.raises(PlanError) as err:
        convplan.parse(text)
    diag = err.value.diagnostics[0]
    assert "kernel_size" in diag.message and "1 value" in diag.message
    assert text.splitlines()[diag.span.line - 1][diag.span.col - 1 :].startswith("kernel_size=(2, 1)")


@pytest.mark.parametrize("scale, exact", [(0.5, True), (2.0, True), (2.5, True), (1 / 3, False), (0.1, False),
                                          (1.1, False), (0.3, False)])
def test_upsample_symbolic_scale_agrees_with_torch(scale, exact):
    """torch sizes an upsample as int(float64(L) * scale); the symbolic rule must give the same for every L
    (dyadic scales exactly; the others are checked up to 65536 and carry that bound as a requirement)."""
    plan = convplan.parse(plan_text(("N", "C", "L"), [("Upsample", {"scale_factor": scale})]))
    bounds = [str(r) for r in plan.requires if "65536" in str(r)]
    assert bounds == ([] if exact else ["L <= 65536"])
    for size in [*range(1, 150), 999, 4099, 65535, 65536]:
        want, _ = torch_run((1, 1, size), [("Upsample", {"scale_factor": scale})])
        got = evaluate(plan.output_shape[2], {"L": size})
        assert (got, plan.satisfied({"N": 1, "C": 1, "L": size})) == ((want[2], True) if want else (got, False))


@pytest.mark.parametrize("scale", [0.29, 0.7, 1.15])
def test_upsample_scale_without_a_floor_rule(scale):
    """For these scales float64 rounding follows no floor(L*p/q) (100 * 0.29 -> 28 but 200 * 0.29 -> 58):
    symbolic sizes are refused with a clear message, concrete ones are exact."""
    layers = [("Upsample", {"scale_factor": scale})]
    with pytest.raises(PlanError, match="follows no floor"):
        convplan.parse(plan_text(("N", "C", "L"), layers))
    for size in (100, 200, 300, 999):
        assert evaluate(check_concrete((1, 1, size), layers).output_shape[2], {}) == torch_shape((1, 1, size),
                                                                                                 layers)[2]


@pytest.mark.parametrize("kind, args", [("BatchNorm2d", {}), ("InstanceNorm2d", {"track_running_stats": True})])
def test_training_only_failures_are_warnings(kind, args):
    """One value per channel: torch fails only in training (with running stats), so convplan warns."""
    shape = (1, 4, 1, 1)
    plan = check_concrete(shape, [(kind, args)])  # accepted, like torch in eval mode
    assert [w.code for w in plan.warnings] == ["W300"]
    module = torch_layer(kind, args, shape).train()
    with pytest.raises(ValueError, match="Expected more than 1"):
        module(torch.randn(*shape))
    assert not convplan.parse(plan_text((2, 4, 1, 2), [(kind, args)])).warnings
    # symbolic: N*H*W == 1 only at 1x1 maps, too rare to warn about on every BatchNorm; a batch of one is not
    assert not convplan.parse(plan_text(("N", "C", "H", "W"), [(kind, args)])).warnings
    batch = convplan.parse(plan_text(("N", "C"), [("BatchNorm1d", {})]))
    assert [w.code for w in batch.warnings] == ["W300"] and "when N == 1" in batch.warnings[0].message


# -- the rest of torch.nn's one-tensor modules -------------------------------------------

MORE_ELEMENTWISE = ["CELU", "SELU", "Hardtanh", "RReLU", "Softplus", "Threshold", "Hardshrink", "Softshrink",
                    "LogSigmoid", "Softsign", "Tanhshrink", "AlphaDropout", "FeatureAlphaDropout"]
FLOATS = st.sampled_from([0.0, 0.5, -0.5, 1.0, 2.0, -1.0])


@st.composite
def more_pointwise_case(draw):
    """Activations with their float limits (Hardtanh's max > min, Softshrink's lambd >= 0, RReLU's lower <=
    upper, CELU's alpha != 0), PReLU's slopes (1 or one per channel), GLU's even dim, Softmin, Softmax2d."""
    kind = draw(st.sampled_from([*MORE_ELEMENTWISE, "PReLU", "GLU", "Softmin", "Softmax2d"]))
    shape = draw(shapes([1, 2, 3, 4, 5], hi=4))
    floats = {"CELU": ["alpha"], "Hardtanh": ["min_val", "max_val"], "RReLU": ["lower", "upper"],
              "Softplus": ["beta", "threshold"], "Hardshrink": ["lambd"], "Softshrink": ["lambd"],
              "AlphaDropout": ["p"], "FeatureAlphaDropout": ["p"]}
    args = draw(some({name: FLOATS for name in floats.get(kind, [])}))
    if kind == "Threshold":
        args = {"threshold": draw(FLOATS), "value": draw(st.sampled_from([0.0, 20.0, -1.5]))}
    elif kind == "PReLU":
        channels = shape[1] if len(shape) > 1 else 1
        args = draw(some({"num_parameters": mostly(st.sampled_from([1, channels]), 0, 2, 3)}))
    elif kind in ("GLU", "Softmin"):
        args = draw(some({"dim": st.integers(-6, 5)}))
    if kind == "GLU" and draw(st.booleans()):  # usually an even dim to halve
        i = args.get("dim", -1)
        if -len(shape) <= i < len(shape):
            shape = shape[: i % len(shape)] + (2 * draw(small),) + shape[i % len(shape) + 1 :]
    return shape, [(kind, args)]


@given(more_pointwise_case())
@EXAMPLES
def test_more_pointwise(case):
    check_both(*case)


@st.composite
def more_norm_case(draw):
    """RMSNorm (as LayerNorm, no bias), LocalResponseNorm (3-D and up), CrossMapLRN2d (4-D), SyncBatchNorm
    (BatchNorm on one process, any rank from 2)."""
    kind = draw(st.sampled_from(["RMSNorm", "LocalResponseNorm", "CrossMapLRN2d", "SyncBatchNorm"]))
    shape = draw(shapes([1, 2, 3, 4, 5, 6], hi=3))
    if kind == "RMSNorm":
        tail = shape[len(shape) - draw(st.integers(1, len(shape))) :]
        norm = st.one_of(st.just(tail), st.just(tail[-1:]), st.integers(1, 3), st.tuples(small, small))
        args = draw(some({"normalized_shape": norm, "eps": st.sampled_from([None, 1e-3]),
                          "elementwise_affine": st.booleans()}))
    elif kind == "SyncBatchNorm":
        args = draw(some({"eps": st.just(1e-3), "affine": st.booleans(), "track_running_stats": st.booleans()}))
    else:
        args = {"size": draw(mostly(st.integers(1, 6), 0, -1))}
        args.update(draw(some({"alpha": st.just(1e-3), "beta": st.just(0.5), "k": st.just(2.0)})))
    return shape, [(kind, args)]


@given(more_norm_case())
@EXAMPLES
def test_more_norms(case):
    check_both(*case)


@st.composite
def fold_case(draw):
    """Unfold (3-D/4-D, blocks at least 1 per dim) and Fold (the last dim must be the number of blocks, the
    one before divisible by the kernel's size), usually with sizes that fit; ChannelShuffle's groups."""
    kind = draw(st.sampled_from(["Unfold", "Fold", "ChannelShuffle"]))
    if kind == "ChannelShuffle":
        g = draw(mostly(st.integers(1, 3), 0, -1))
        shape = draw(shapes([2, 3, 4, 5], hi=4))
        if len(shape) > 1 and draw(st.booleans()):
            shape = shape[:1] + (max(g, 1) * draw(small),) + shape[2:]
        return shape, [(kind, {"groups": g})]
    pair = lambda values: sized(values, 2, [2, 2, 2, 1])  # noqa: E731
    args = {"kernel_size": draw(pair(mostly(st.integers(1, 3), 0)))}
    args.update(draw(some({"dilation": pair(mostly(st.integers(1, 2), 0)),
                           "padding": pair(mostly(st.integers(0, 1), -1)),
                           "stride": pair(mostly(st.integers(1, 2), 0))})))
    if kind == "Unfold":
        return draw(shapes([3, 4, 4, 2, 5], hi=6)), [(kind, args)]
    size = draw(pair(mostly(st.integers(1, 6), 0)))
    blocks, window = 1, 1
    for i in range(2):  # what torch will count, so that the input usually fits
        k, d, p, s, x = (_entry(args.get(n, v), i) for n, v in (("kernel_size", 1), ("dilation", 1), ("padding", 0),
                                                                 ("stride", 1), ("output_size", size)))
        blocks *= max((x + 2 * p - d * (k - 1) - 1) // max(s, 1) + 1, 0)
        window *= k
    last = draw(mostly(st.just(max(blocks, 1)), blocks + 1, 1))
    lead = draw(st.sampled_from([(), (2,)]))
    channels = max(window, 1) * draw(small) + draw(mostly(st.just(0), 1))
    return (*lead, channels, last), [(kind, {"output_size": size, **args})]


def _entry(value, i):
    return value if isinstance(value, int) else value[min(i, len(value) - 1)]


@given(fold_case())
@EXAMPLES
def test_fold_unfold_shuffle(case):
    check_both(*case)


@st.composite
def lp_pool_case(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    args = {"norm_type": draw(mostly(st.sampled_from([1.0, 2.0, 3.0]), 0.0, -1.0)),
            "kernel_size": draw(sized(mostly(st.integers(1, 4), 0), nd))}
    args.update(draw(some({"stride": st.one_of(st.none(), sized(mostly(st.integers(1, 3), 0), nd)),
                           "ceil_mode": st.booleans()})))
    return draw(shapes(near_ranks(nd), hi={1: 9, 2: 7, 3: 5}[nd])), [(f"LPPool{nd}d", args)]


@given(lp_pool_case())
@EXAMPLES
def test_lp_pool(case):
    check_both(*case)


@st.composite
def fractional_case(draw):
    """FractionalMaxPool2d/3d: a kernel, and output_size (usually one that fits: output + kernel - 1 <= input in
    2d, < input in 3d; ints, or the input's dims less a few: symbolic arguments) or output_ratio (0.7 among them:
    a float64 rounding that no floor(x*p/q) follows), now and then both, neither, a ratio outside (0, 1), tuples
    of the wrong length; return_indices in a chain is refused by both (torch returns a tuple)."""
    nd = draw(st.sampled_from([2, 3]))
    ranks = [nd + 1, nd + 2, nd + 2, nd + 2, nd + 2, nd + 1, nd, nd + 3]
    size = mostly(st.integers(3, {2: 12, 3: 8}[nd]), 1, 2)  # windows need room: few 1s and 2s here
    shape = draw(st.sampled_from(ranks).flatmap(lambda r: st.tuples(*[size] * r)))
    kernel = draw(mostly(sized(st.sampled_from([1, 2, 2, 3]), nd, [nd] * 10 + [1, nd + 1]), 0, -1, (2, -1, 2)[:nd]))
    args = {"kernel_size": kernel}
    how = draw(mostly(st.sampled_from(["size", "ratio"]), "both", "neither"))
    dims = shape[-nd:] if len(shape) >= nd else (4,) * nd
    ks = kernel if isinstance(kernel, tuple) and len(kernel) == nd else (_entry(kernel, 0),) * nd
    if how in ("size", "both"):
        fits = [x - max(k, 1) + (1 if nd == 2 else 0) for x, k in zip(dims, ks, strict=True)]
        entry = [mostly(st.integers(1, max(f, 1)), f + 1, 0, -1) for f in fits]
        if draw(st.booleans()) and len(shape) >= nd:  # `H - 2`: an argument written with the input's sizes
            entry = [st.integers(1, 3).map(lambda j, i=i, x=x: Sym(x - j, f"{SYMBOLS[i]} - {j}"))
                     for i, x in zip(range(len(shape) - nd, len(shape)), dims, strict=True)]
        args["output_size"] = draw(mostly(st.one_of(entry[0], st.tuples(*entry)), (2,) * (nd + 1), (2,) * (nd - 1)))
    if how in ("ratio", "both"):
        ratio = st.sampled_from([0.5, 0.25, 0.75, 0.6, 0.9, 0.3, 0.7])
        args["output_ratio"] = draw(mostly(sized(ratio, nd, [nd] * 10 + [1, nd + 1]), 0.0, 1.0, 1.5, -0.5))
    if draw(st.integers(0, 19)) == 0:
        args["return_indices"] = True
    return shape, [(f"FractionalMaxPool{nd}d", args)]


@given(fractional_case())
@EXAMPLES
def test_fractional_max_pool(case):
    check_both(*case)


@st.composite
def circular_pad_case(draw):
    nd = draw(st.sampled_from([1, 2, 3]))
    entry = st.integers(-3, 5)
    pads = st.one_of(entry, st.sampled_from([2 * nd, 2 * nd, 2, 4, 6, 3]).flatmap(lambda n: st.tuples(*[entry] * n)))
    return draw(shapes([nd, nd + 1, nd + 2, nd + 2, nd + 3], hi=5)), [(f"CircularPad{nd}d", {"padding": draw(pads)})]


@given(circular_pad_case())
@EXAMPLES
def test_circular_pad(case):
    check_both(*case)


@st.composite
def upsampling_case(draw):
    kind = draw(st.sampled_from(["UpsamplingNearest2d", "UpsamplingBilinear2d"]))
    shape = draw(shapes([4, 4, 3, 5, 2], hi=5))
    nd = max(len(shape) - 2, 1)
    if draw(st.booleans()):
        args = {"size": draw(sized(mostly(st.integers(1, 7), 0), nd))}
    else:
        scales = mostly(st.sampled_from([2.0, 1.5, 0.5, 3.0, 1.0]), 0.0, -1.0)
        args = {"scale_factor": draw(st.one_of(scales, sized(scales, nd)))}
    return shape, [(kind, args)]


@given(upsampling_case())
@EXAMPLES
def test_upsampling_classes(case):
    check_both(*case)
