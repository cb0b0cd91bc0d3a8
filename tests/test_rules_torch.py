"""Rule by rule against real torch 2.13: generators that stay near what torch accepts, so each rule's
branches (padding modes, groups, ceil_mode, None entries, align_corners, ...) are reached on both sides
of torch's limits.  test_layers_torch.py draws freely over the arguments and mostly lands on refusals;
these draw the arguments torch takes, with a few near misses.  Same oracle (see _torch_oracle)."""

from __future__ import annotations

import os
import warnings

import pytest
import test_layers_torch
import torch
from _torch_oracle import (
    SYMBOLS,
    Sym,
    check_both,
    check_concrete,
    check_symbolic,
    convplan_parse,
    torch_layer,
    torch_run,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from test_layers_torch import mostly, shapes, sized, some

import convplan
from convplan import PlanError

EXAMPLES = settings(max_examples=int(os.environ.get("CONVPLAN_EXAMPLES", 150)), deadline=None)  # ~10 s on 2 cores
MODES = ("zeros", "reflect", "replicate", "circular")


def with_dim(shape, i, size):
    return shape[:i] + (size,) + shape[i + 1 :]


# -- convolutions ----------------------------------------------------------------------


@st.composite
def conv_mode_case(draw):
    """Conv with every padding_mode: reflect pads must stay below the size, circular ones at most the size;
    a non-zeros mode feeds the padding to F.pad as written (a tuple of m pads the last m dims, at most 3,
    negative values crop)."""
    nd = draw(st.sampled_from([1, 2, 3]))
    entry = mostly(st.integers(0, 3), -1, -2)
    padding = draw(st.one_of(
        entry,
        st.sampled_from(["same", "valid"]),
        sized(entry, nd, [nd] * 4 + [1, nd + 1]),
        st.just((0,) + (1,) * nd),  # pads the channels by 0: torch accepts it
    ))
    args = {"out_channels": draw(st.integers(1, 3)), "kernel_size": draw(sized(st.integers(1, 4), nd, [nd])),
            "padding": padding, "padding_mode": draw(st.sampled_from(MODES[1:] + MODES[:1]))}
    dilation = sized(st.integers(1, 2), nd, [nd, nd, 1])  # a 1-tuple: see REGRESSIONS
    stride = mostly(st.integers(1, 2), (2,) * nd)
    args.update(draw(some({"stride": stride, "dilation": dilation, "bias": st.booleans()})))
    shape = draw(shapes([nd + 1, nd + 2, nd + 2], hi={1: 8, 2: 5, 3: 4}[nd]))
    return with_dim(shape, len(shape) - nd - 1, draw(st.integers(1, 3))), [(f"Conv{nd}d", args)]


@given(conv_mode_case())
@EXAMPLES
def test_conv_padding_modes(case):
    check_both(*case)


@st.composite
def conv_groups_case(draw):
    """Grouped (transposed) convolutions, dilation and output_padding, with channels that usually fit."""
    nd = draw(st.sampled_from([1, 2, 3]))
    transposed = draw(st.booleans())
    g = draw(mostly(st.sampled_from([1, 2, 3, 4]), 0))
    out = max(g, 1) * draw(st.integers(1, 2)) + draw(mostly(st.just(0), 1))
    args = {"out_channels": out, "kernel_size": draw(sized(st.integers(1, 3), nd, [nd])), "groups": g}
    stride, dilation = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    args["stride"] = draw(st.sampled_from([stride, (stride,) * nd]))
    args["dilation"] = draw(st.sampled_from([dilation, (dilation,) * nd]))
    options = {"padding": st.integers(0, 2), "bias": st.booleans()}
    if transposed:  # output_padding must stay below stride or dilation: drawn up to that limit
        options["output_padding"] = sized(st.integers(0, max(stride, dilation)), nd, [nd])
        options["padding"] = mostly(options["padding"], "same", "valid")
        options["padding_mode"] = mostly(st.just("zeros"), "reflect", "circular")
    args.update(draw(some(options)))
    shape = draw(shapes([nd + 1, nd + 2, nd + 2], hi={1: 7, 2: 5, 3: 4}[nd]))
    channels = max(g, 1) * draw(st.integers(1, 2)) + draw(mostly(st.just(0), 1))
    kind = f"ConvTranspose{nd}d" if transposed else f"Conv{nd}d"
    return with_dim(shape, len(shape) - nd - 1, channels), [(kind, args)]


@given(conv_groups_case())
@EXAMPLES
def test_conv_groups_dilation_output_padding(case):
    check_both(*case)


# -- pooling ---------------------------------------------------------------------------


@st.composite
def pool_valid_case(draw):
    """Pools with padding up to half the kernel: ceil_mode's "last window starts inside" rule, dilation,
    stride=None, divisor_override, and AvgPool3d's raw-size check."""
    nd = draw(st.sampled_from([1, 2, 3]))
    kind = draw(st.sampled_from(["Max", "Avg"])) + f"Pool{nd}d"
    k = draw(st.integers(1, 4))
    args = {"kernel_size": draw(mostly(st.just(k), (k,) * nd, (k,)))}
    options = {"stride": st.one_of(st.none(), st.integers(1, 4), sized(st.integers(1, 3), nd, [nd])),
               "padding": mostly(st.integers(0, k // 2), k // 2 + 1), "ceil_mode": st.booleans()}
    if kind.startswith("Max"):
        options["dilation"] = st.integers(1, 3)
    else:
        options["count_include_pad"] = st.booleans()
        if nd > 1:
            options["divisor_override"] = st.sampled_from([None, 1, 3, -2, 0])
    args.update(draw(some(options)))
    return draw(shapes([nd + 1, nd + 2], hi={1: 10, 2: 7, 3: 5}[nd])), [(kind, args)]


@given(pool_valid_case())
@EXAMPLES
def test_pool_windows(case):
    check_both(*case)


@st.composite
def chain_stack_case(draw):
    """Stacks of convs and pools with whole arguments: past the first layer every spatial dim is a chain
    `(x + low)//big + c`, whose arithmetic, requirements and tails shapes.affine works out in Python ints;
    an Upsample by a whole factor makes it `k*((x + low)//big) + c` (a multiple the next layers divide or not)."""
    nd = draw(st.sampled_from([1, 2]))
    layers = []
    for _ in range(draw(st.integers(2, 4))):
        k = draw(st.integers(1, 4))
        if draw(st.integers(0, 4)) == 0:
            layers.append(("Upsample", {"scale_factor": draw(st.sampled_from([2, 3, 4, 2.0]))}))
        elif draw(st.booleans()):
            args = {"out_channels": 2, "kernel_size": k, "stride": draw(st.integers(1, 3)),
                    "padding": draw(st.integers(0, 2)), "dilation": draw(st.integers(1, 2))}
            layers.append((f"Conv{nd}d", args))
        else:
            kind = draw(st.sampled_from(["Max", "Avg"]))
            args = {"kernel_size": k, "stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, k // 2)),
                    "ceil_mode": draw(st.booleans())}
            layers.append((f"{kind}Pool{nd}d", args))
    return draw(shapes([nd + 2], lo=1, hi={1: 40, 2: 16}[nd])), layers


@given(chain_stack_case())
@EXAMPLES
def test_conv_pool_chains(case):
    check_both(*case)


@st.composite
def adaptive_none_case(draw):
    """Adaptive pools: None entries keep a dim (not in 1d); a tuple needs a dim more than nd; other ranks
    pass only through torch's mean() shortcut for an all-1 output."""
    nd = draw(st.sampled_from([1, 2, 3]))
    kind = f"Adaptive{draw(st.sampled_from(['Avg', 'Max']))}Pool{nd}d"
    entry = st.one_of(st.none(), st.integers(1, 4))
    size = draw(st.one_of(st.integers(1, 4), st.just(1), st.tuples(*[entry] * nd), st.just((1,) * nd)))
    return draw(shapes([nd + 1, nd + 2, nd + 2, nd, nd + 3], hi=5)), [(kind, {"output_size": size})]


@given(adaptive_none_case())
@EXAMPLES
def test_adaptive_pool_none_entries_and_ranks(case):
    check_both(*case)


# -- normalisation ---------------------------------------------------------------------


@st.composite
def norm_valid_case(draw):
    """Norms on the ranks they take, with sizes near the 'more than one value' limits; LayerNorm with
    normalized_shape as an int, a tuple of the last dims, or one that does not match."""
    kind = draw(st.sampled_from(["BatchNorm", "InstanceNorm", "GroupNorm", "LayerNorm"]))
    nd = draw(st.sampled_from([1, 2, 3]))
    ranks = {"BatchNorm": [nd + 2] + ([2] if nd == 1 else []), "InstanceNorm": [nd + 1, nd + 2]}
    shape = draw(shapes(ranks.get(kind, [1, 2, 3, 4, 5]), hi=3))
    if kind == "GroupNorm":
        if len(shape) < 2:
            shape = (1, *shape)
        g = draw(mostly(st.integers(1, 3), 0))
        shape = with_dim(shape, 1, max(g, 1) * draw(st.integers(1, 2)) + draw(mostly(st.just(0), 1)))
        return shape, [(kind, {"num_groups": g, **draw(some({"affine": st.booleans()}))})]
    if kind == "LayerNorm":
        k = draw(st.integers(1, len(shape)))
        tail = tuple(shape[-k:])
        norm = draw(mostly(st.sampled_from([tail, shape[-1]]), tail[:-1] + (tail[-1] + 1,), (1,) + tuple(shape)))
        return shape, [(kind, {"normalized_shape": norm, **draw(some({"elementwise_affine": st.booleans()}))})]
    if draw(st.booleans()):  # one value per channel (per instance), or just two: where torch's check sits
        keep = 1 if kind == "BatchNorm" else len(shape) - nd - 1
        two = draw(st.integers(-1, len(shape) - 1))
        shape = tuple(c if i == keep else 2 if i == two else 1 for i, c in enumerate(shape))
    args = draw(some({"affine": st.booleans(), "track_running_stats": st.booleans()}))
    return shape, [(f"{kind}{nd}d", args)]


@given(norm_valid_case())
@EXAMPLES
def test_norm_ranks_and_limits(case):
    check_both(*case)


# -- padding ---------------------------------------------------------------------------


@st.composite
def pad_valid_case(draw):
    """Padding layers with pads around the input size: reflection below it, constant crops that fit or
    not; len(padding) picks the dims (and, for reflect/replicate, the kernel and the ranks)."""
    nd = draw(st.sampled_from([1, 2, 3]))
    kind = draw(st.sampled_from(["Reflection", "Replication", "Zero", "Constant"])) + f"Pad{nd}d"
    m = draw(mostly(st.just(nd), 1, 2, 3))
    shape = draw(shapes([m + 1, m + 2, m + 2, m], hi=5))
    entry = mostly(st.integers(-1, max(shape)), -3, -2)
    pads = st.tuples(*[entry] * (2 * m))
    padding = draw(st.one_of(pads, entry) if m == nd else pads)  # an int pads all nd dims
    return shape, [(kind, {"padding": padding, **({"value": 1.5} if kind.startswith("Constant") else {})})]


@given(pad_valid_case())
@EXAMPLES
def test_pad_around_the_size(case):
    check_both(*case)


# -- upsampling ------------------------------------------------------------------------

RANK_OF_MODE = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


@st.composite
def upsample_mode_case(draw):
    """Upsample with the mode that fits the rank (usually), size or scale_factor as an int/float or a tuple,
    align_corners and recompute_scale_factor."""
    rank = draw(st.sampled_from([3, 4, 5]))
    fits = [m for m, r in RANK_OF_MODE.items() if r == rank] + ["nearest", "nearest-exact", "area"]
    mode = draw(mostly(st.sampled_from(fits), *RANK_OF_MODE))
    nd = rank - 2
    args = {}
    if draw(st.booleans()):
        args["size"] = draw(sized(st.integers(1, 7), nd, [nd] * 4 + [1]))
    else:
        scales = mostly(st.sampled_from([2.0, 1.5, 3.0, 1.0, 0.5, 0.75, 1 / 3]), 0.0, -2.0)
        args["scale_factor"] = draw(st.one_of(scales, sized(scales, nd, [nd] * 4 + [1])))
    args["mode"] = mode
    options = {"align_corners": st.booleans(), "recompute_scale_factor": st.booleans()}
    args.update(draw(some(options)) if mode in RANK_OF_MODE or draw(mostly(st.just(False), True)) else {})
    return draw(shapes([rank], hi=6)), [("Upsample", args)]


@given(upsample_mode_case())
@EXAMPLES
def test_upsample_modes(case):
    check_both(*case)


# -- reshaping, dropout, softmax -------------------------------------------------------


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def reshape_valid_case(draw):
    """Flatten/Unflatten/PixelShuffle/PixelUnshuffle with sizes that usually divide; Softmax dims; Dropout
    of each kind on each rank."""
    kind = draw(st.sampled_from(["Flatten", "Unflatten", "PixelShuffle", "PixelUnshuffle", "Softmax", "Dropout"]))
    shape = draw(shapes([1, 2, 3, 4, 5], hi=6))
    r = len(shape)
    if kind == "Flatten":
        return shape, [(kind, draw(some({"start_dim": st.integers(-r, r - 1), "end_dim": st.integers(-r, r - 1)})))]
    if kind == "Unflatten":
        i = draw(st.integers(-r, r - 1))
        d = draw(st.sampled_from(_divisors(shape[i])))
        sizes = draw(mostly(st.sampled_from([(d, shape[i] // d), (-1, d), (d, -1), (shape[i],), (1, -1, 1)]),
                            (-1, -1), (0, -1), (-2, d), (d + 1, -1)))
        return shape, [(kind, {"dim": i, "unflattened_size": sizes})]
    if kind.startswith("Pixel"):
        f = draw(mostly(st.integers(1, 3), 0, -1))
        shape = draw(shapes([3, 4, 5], hi=3))
        if kind == "PixelShuffle":
            shape = with_dim(shape, -3, max(f, 1) ** 2 * draw(st.integers(1, 2)) + draw(mostly(st.just(0), 1)))
            return shape, [(kind, {"upscale_factor": f})]
        for i in (-2, -1):
            shape = with_dim(shape, len(shape) + i, max(f, 1) * draw(st.integers(1, 2)) + draw(mostly(st.just(0), 1)))
        return shape, [(kind, {"downscale_factor": f})]
    if kind == "Softmax":
        dim = draw(st.one_of(st.none(), st.integers(-r - 1, r)))
        return shape, [(draw(st.sampled_from(["Softmax", "LogSoftmax"])), {"dim": dim})]
    return shape, [(draw(st.sampled_from(["Dropout1d", "Dropout2d", "Dropout3d"])), {})]


@given(reshape_valid_case())
@EXAMPLES
def test_reshape_divisibility(case):
    check_both(*case)


# -- training-only failures ---------------------------------------------------------


@st.composite
def train_case(draw):
    kind = draw(st.sampled_from(["Dropout1d", "Dropout2d", "Dropout3d", "Dropout", "AlphaDropout",
                                 "FeatureAlphaDropout", "SyncBatchNorm"]))
    return draw(st.one_of(norm_valid_case(), st.tuples(shapes([1, 2, 3, 4, 5, 6], hi=3), st.just([(kind, {})]))))


def torch_complains_in_training(shape, kind, args) -> bool:
    """torch, in training mode, raises or warns (eval mode accepted it: convplan planned it)."""
    with warnings.catch_warnings(record=True) as seen, torch.no_grad():
        warnings.simplefilter("always")
        try:
            torch_layer(kind, args, shape).train()(torch.randn(*shape))
        except (RuntimeError, ValueError):
            return True
    return bool(seen)


@given(train_case())
@EXAMPLES
def test_training_only_trouble_is_a_warning(case):
    """W300 exactly where torch accepts the layer in eval mode but raises or warns in training
    (BatchNorm/InstanceNorm with running stats on one value, Dropout2d/3d on ranks they deprecate)."""
    shape, layers = case
    plan = check_concrete(shape, layers)
    if plan is not None:
        warned = "W300" in [w.code for w in plan.warnings]
        assert warned == torch_complains_in_training(shape, *layers[0]), f"{shape} {layers}: {plan.warnings}"


# -- one case per rule branch: every run reaches each branch, whatever hypothesis draws ---


def conv(nd, **args):
    return (f"Conv{nd}d", {"out_channels": 1, "kernel_size": 1, **args})


BRANCHES = [  # (input shape, layer, does torch run it?)
    ((1, 2, 5, 5), conv(2, padding=(1,), padding_mode="reflect"), False),  # 2 pads need a 2-D or 3-D input
    ((2, 5, 5), conv(2, padding=(1,), padding_mode="reflect"), True),  # ... then pad W only
    ((1, 2, 3, 3), conv(2, padding=(0, 1, 1), padding_mode="circular"), True),  # 0 pads the channels
    ((1, 2, 3, 3), conv(2, padding=(1, 1, 1), padding_mode="replicate"), False),  # ... 1 changes them
    ((1, 2, 5), conv(1, padding=-2, padding_mode="reflect"), True),  # negative pads crop
    ((1, 2, 5), conv(1, padding=-3, padding_mode="circular"), False),  # ... down to nothing
    ((1, 2, 5), conv(1, padding=5, padding_mode="circular"), True),  # circular: pad <= size
    ((1, 2, 5), conv(1, padding=6, padding_mode="circular"), False),
    ((1, 2, 5), conv(1, padding=5, padding_mode="reflect"), False),  # reflect: pad < size
    ((1, 2, 5), conv(1, padding=6, padding_mode="replicate"), True),  # replicate: no limit
    ((1, 2, 2), conv(1, kernel_size=4, padding="same", padding_mode="reflect"), False),  # same: right pad 2
    ((1, 2, 3), conv(1, kernel_size=4, padding="same", padding_mode="reflect"), True),
    ((1, 2, 5), ("ConvTranspose1d", {"out_channels": 1, "kernel_size": 3, "padding": "same"}), False),
    ((1, 2, 5), ("ConvTranspose1d", {"out_channels": 1, "kernel_size": 3, "padding_mode": "reflect"}), False),
    ((1, 2, 5), ("ConvTranspose1d", {"out_channels": 1, "kernel_size": 3, "stride": 3, "output_padding": 2}), True),
    ((1, 2, 5), ("ConvTranspose1d", {"out_channels": 1, "kernel_size": 3, "dilation": 3, "output_padding": 2}), True),
    ((1, 2, 5), ("AdaptiveMaxPool1d", {"output_size": 2, "return_indices": True}), False),  # returns a tuple
    ((1, 2, 5), ("AdaptiveAvgPool1d", {"output_size": (None,)}), False),
    ((1, 2, 5, 4), ("AdaptiveAvgPool2d", {"output_size": (None, 2)}), True),
    ((5, 4), ("AdaptiveAvgPool2d", {"output_size": (1, 1)}), False),  # a tuple needs a 3-D input
    ((5, 4), ("AdaptiveAvgPool2d", {"output_size": 1}), True),  # ... an int goes through mean()
    ((1, 1, 2, 5, 4), ("AdaptiveAvgPool2d", {"output_size": 1}), True),
    ((1, 1, 2, 5, 4), ("AdaptiveAvgPool2d", {"output_size": 2}), False),
    ((2, 6), ("Unflatten", {"dim": 1, "unflattened_size": (-1, -1)}), False),
    ((2, 6), ("Unflatten", {"dim": -1, "unflattened_size": (2, -1, 1)}), True),
    ((1, 2, 4, 4), ("Upsample", {"size": (2,)}), False),  # one size per spatial dim
    ((1, 2, 4, 4), ("Upsample", {"scale_factor": (2.0,)}), False),
    ((1, 2, 4), ("Upsample", {"size": 3, "recompute_scale_factor": True}), False),
    ((1, 2, 4), ("Upsample", {"scale_factor": -0.5}), False),
    ((1, 2, 4), ("Upsample", {"scale_factor": 0.0}), False),  # torch turns 0 into None: neither is given
    ((1, 2, 4), ("Upsample", {"scale_factor": 1.5, "mode": "nearest", "align_corners": False}), False),
    ((1, 2, 4, 4), ("Upsample", {"scale_factor": 1.5, "mode": "bicubic", "align_corners": True}), True),
    ((1, 2, 4, 4), ("AvgPool2d", {"kernel_size": 2, "divisor_override": 0}), False),
    ((1, 2, 4, 4), ("AvgPool2d", {"kernel_size": 2, "divisor_override": -3}), True),
    ((1, 1, 2, 4, 4), ("AvgPool3d", {"kernel_size": 3, "padding": 1, "ceil_mode": True}), False),  # raw D >= k
    ((1, 4, 2, 2), ("PixelShuffle", {"upscale_factor": 2}), True),
    ((1, 4, 2, 3), ("PixelUnshuffle", {"downscale_factor": 2}), False),
    ((2, 3), ("LayerNorm", {"normalized_shape": (2, 3)}), True),
    ((2, 3), ("LayerNorm", {"normalized_shape": (3, 3)}), False),
    ((2, 3, 4), ("Flatten", {"start_dim": -1, "end_dim": 1}), False),
    ((2, 3, 4), ("Flatten", {"start_dim": 0, "end_dim": -1}), True),
]


@pytest.mark.parametrize("shape, layer, runs", BRANCHES)
def test_rule_branch(shape, layer, runs):
    assert (torch_run(shape, [layer])[0] is not None) == runs  # the case is what it claims
    check_both(shape, [layer])


# -- regressions: disagreements with torch these tests found ---------------------------

REGRESSIONS = [  # (input shape, layers, does torch run it?)
    # F.pad's reflect/replicate/circular pad at most 3 dims: a 4-value Conv3d padding was accepted
    *[((1, 2, 3, 3, 3), [conv(3, padding=(0, 1, 1, 1), padding_mode=mode)], False) for mode in MODES[1:]],
    # padding='same' + a non-zeros mode sizes F.pad by the dilation as written: (1,) pads H only
    ((1, 2, 9, 9), [conv(2, kernel_size=3, padding="same", padding_mode="reflect", dilation=(1,))], True),
    ((2, 9, 9), [conv(2, kernel_size=(3, 2), padding="same", padding_mode="circular", dilation=(2,))], True),
    ((1, 2, 9, 3), [conv(2, kernel_size=3, padding="same", padding_mode="replicate", dilation=(2,))], False),
]


@pytest.mark.parametrize("shape, layers, runs", REGRESSIONS)
def test_regressions(shape, layers, runs):
    assert (torch_run(shape, layers)[0] is not None) == runs  # the case is what it claims
    check_both(shape, layers)


SYMBOLIC_REGRESSIONS = [
    # padding='same' with a stride written in symbols was refused for all sizes; torch runs it where it is 1
    ((1, 2, 4), [("Conv1d", {"out_channels": 2, "kernel_size": 3, "padding": "same", "stride": Sym(1, "N")})], True),
    ((2, 2, 4), [("Conv1d", {"out_channels": 2, "kernel_size": 3, "padding": "same", "stride": Sym(2, "N")})], False),
    ((1, 2, 5), [("Conv1d", {"out_channels": 2, "kernel_size": 3, "padding": "same", "padding_mode": "reflect",
                             "stride": Sym(1, "D - 4")})], True),
]


@pytest.mark.parametrize("shape, layers, runs", SYMBOLIC_REGRESSIONS)
def test_symbolic_regressions(shape, layers, runs):
    assert (torch_run(shape, layers)[0] is not None) == runs
    check_symbolic(shape, layers)


# -- symbolic arguments ----------------------------------------------------------------

DIM_INDEX = {"dim", "start_dim", "end_dim"}  # plans write dim indices as numbers


def spellings(v: int, name: str, s: int) -> list[str]:
    """Expressions of the size symbol `name` (= s at the tested sizes) that equal v there."""
    out = [name if v == s else f"{name} + {v - s}" if v > s else f"{name} - {s - v}"]
    out += [f"{v // s} * {name}"] if v > s and v % s == 0 else []
    out += [f"{name} // {q}" for q in range(2, s + 1) if s // q == v][:1]
    out += [f"{name} % {m}" for m in range(2, s + 2) if s % m == v][:1]
    return out


@st.composite
def symbolic_args(draw, case):
    """(shape, layers, keep): `case` with some input dims written as numbers (the indices in `keep`, as in
    [N, 3, H, W]) and some int arguments written as expressions of the other dims' symbols (see Sym)."""
    shape, layers = draw(case)
    names = SYMBOLS[: len(shape)]
    keep = frozenset(i for i in range(len(shape)) if not draw(st.integers(0, 2)))
    free = [i for i in range(len(shape)) if i not in keep]

    def maybe(v, key):
        if isinstance(v, tuple):
            return tuple(maybe(x, key) for x in v)
        if type(v) is not int or key in DIM_INDEX or (key == "unflattened_size" and v == -1) or not free:
            return v  # -1 in unflattened_size is a hole, not a size
        if not draw(st.integers(0, 2)):
            i = draw(st.sampled_from(free))
            return Sym(v, draw(st.sampled_from(spellings(v, names[i], shape[i]))))
        return v

    return shape, [(kind, {k: maybe(v, k) for k, v in args.items()}) for kind, args in layers], keep


ALL_CASES = st.one_of(conv_mode_case(), conv_groups_case(), pool_valid_case(), adaptive_none_case(),
                      norm_valid_case(), pad_valid_case(), upsample_mode_case(), reshape_valid_case())


@given(symbolic_args(ALL_CASES))
@settings(EXAMPLES, max_examples=2 * EXAMPLES.max_examples)
def test_symbolic_arguments(case):
    """Arguments written in the input's symbols (groups=C, kernel_size=L - 2, padding=W % 2), some input
    dims numbers: the plan's output at the sizes is torch's, its requirements hold exactly when torch runs it."""
    check_symbolic(*case)


MORE_CASES = st.one_of(test_layers_torch.more_pointwise_case(), test_layers_torch.more_norm_case(),
                       test_layers_torch.fold_case(), test_layers_torch.lp_pool_case(),
                       test_layers_torch.circular_pad_case(), test_layers_torch.upsampling_case())


@given(symbolic_args(MORE_CASES))
@EXAMPLES
def test_symbolic_arguments_of_the_rest_of_torch_nn(case):
    """The same for the kinds added for issue 11 (num_parameters=C, groups=C // 2, output_size=(H, W), ...)."""
    check_symbolic(*case)


# -- embeddings: integer indices in, a vector per index out ------------------------------------------


@st.composite
def embedding_case(draw):
    """Embedding on any rank, EmbeddingBag on bags of equal length (2-D), with padding_idx near its limits,
    max_norm and the modes; the oracle feeds indices below num_embeddings."""
    bag = draw(st.booleans())
    n = draw(st.integers(1, 12))
    args = {"num_embeddings": n, "embedding_dim": draw(mostly(st.integers(1, 6), 0))}
    options = {"padding_idx": st.one_of(st.none(), st.integers(-n - 1, n)), "max_norm": st.sampled_from([None, 1.0]),
               "scale_grad_by_freq": st.booleans(), "sparse": st.booleans()}
    if bag:
        options.update(mode=st.sampled_from(["sum", "mean", "max"]), include_last_offset=st.booleans())
    args.update(draw(some(options)))
    shape = draw(shapes([2] if bag else [1, 2, 3, 4], hi=6))
    return shape, [("EmbeddingBag" if bag else "Embedding", args)]


@given(embedding_case())
@EXAMPLES
def test_embeddings(case):
    """torch on concrete and symbolic sizes; where torch runs, verify (which feeds indices in range) agrees."""
    check_both(*case)
    shape, layers = case
    if torch_run(shape, layers)[0] is not None:
        plan = convplan_parse(SYMBOLS[: len(shape)], layers)
        report = plan.verify(**dict(zip(SYMBOLS, shape, strict=False)))
        assert report.ok and report.runs[0].device == "cpu", str(report)


def test_embedding_reads_a_plan_input_only():
    with pytest.raises(PlanError) as info:
        convplan.parse("plan A:\n    input x [N, L]\n    Linear(8)\n    Embedding(100, 16)\n")
    d = info.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E305", 4, 5)
