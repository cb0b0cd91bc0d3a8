"""Calls copied from torch (E112, W320), the missing Flatten (W340) and W310 past a large kernel, each
checked against what torch builds and reads."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_warnings import unread_tail

import convplan


def codes(text: str) -> dict[str, list[str]]:
    result = convplan.analyse(text)
    out: dict[str, list[str]] = {}
    for d in result.diagnostics:
        out.setdefault(d.code, []).append(d.message)
    return out


def plan(shape: str, *layers: str) -> str:
    return "plan P:\n    input " + shape + "\n" + "".join(f"    {layer}\n" for layer in layers)


# -- E112 / W320: torch's order ---------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(nd=st.sampled_from([1, 2, 3]), channels=st.integers(1, 96), value=st.integers(1, 96))
def test_a_norm_in_torchs_order_is_an_error_exactly_when_eps_is_the_channel_count(nd, channels, value):
    shape = "[N, C" + ", H" * nd + "]"
    found = codes(plan(shape.replace("C", str(channels)), f"BatchNorm{nd}d({value})"))
    if value == channels:
        assert "E112" in found and "W320" not in found, found
        assert f"{value} is the input's num_features" in found["E112"][0]
    else:  # eps=value may be odd but is not surely torch's order: a warning
        assert "W320" in found and "E112" not in found, found


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_the_fix_of_e112_builds_what_torch_builds_from_the_copied_call(nd):
    text = plan("[N, 32" + ", 8" * nd + "]", f"BatchNorm{nd}d(32, 0.1)")
    with pytest.raises(convplan.PlanError) as err:
        convplan.parse(text)
    (diag,) = err.value.diagnostics
    assert diag.code == "E112" and f"write BatchNorm{nd}d(0.1)" in diag.hints[0]
    fixed = convplan.parse(text.replace(f"BatchNorm{nd}d(32, 0.1)", f"BatchNorm{nd}d(0.1)")).build(N=2)
    theirs = getattr(torch.nn, f"BatchNorm{nd}d")(32, 0.1)  # the call as it was copied, in torch
    ours = next(m for m in fixed.modules() if type(m) is type(theirs))
    assert (ours.num_features, ours.eps, ours.momentum) == (theirs.num_features, theirs.eps, theirs.momentum)


def test_groupnorm_in_torchs_order():
    found = codes(plan("[N, 64, 8, 8]", "GroupNorm(8, 64)"))
    assert "E112" in found and "64 is the input's num_channels" in found["E112"][0]
    found = codes(plan("[N, 64, 8, 8]", "GroupNorm(8, 32)"))  # eps=32 but 32 is not the channel count
    assert "W320" in found and "E112" not in found
    assert codes(plan("[N, 64, 8, 8]", "GroupNorm(8, 1e-3)")) == {}


def test_a_conv_in_torchs_order_stays_a_warning_as_it_is_a_valid_layer():
    """`Conv2d(3, 32, 3)` on 3 channels reads out_channels=3, kernel_size=32, stride=3: torch builds and runs
    that layer, so it may be meant (docs/errors.md, W320)."""
    text = plan("[N, 3, H, W]", "Conv2d(3, 32, 3)")
    found = codes(text)
    assert "W320" in found and not [c for c in found if c.startswith("E")]
    module = convplan.parse(text).build(N=1, H=40, W=40)
    conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.shape == torch.nn.Conv2d(3, 3, 32, 3).weight.shape


# -- W340: Linear on a conv/pool output ---------------------------------------------------------

PRODUCERS = {1: ["Conv1d(4, 3)", "MaxPool1d(2)", "AvgPool1d(2)", "AdaptiveAvgPool1d(1)"],
             2: ["Conv2d(4, 3)", "MaxPool2d(2)", "AvgPool2d(2)", "AdaptiveAvgPool2d(1)", "ZeroPad2d(1)"],
             3: ["Conv3d(4, 3)", "MaxPool3d(2)", "AdaptiveMaxPool3d(2)"]}


@settings(max_examples=30, deadline=None)
@given(nd=st.sampled_from([1, 2, 3]), data=st.data(), between=st.sampled_from(["", "ReLU()", "BatchNorm{nd}d()"]),
       size=st.integers(6, 9), out=st.integers(1, 12))
def test_linear_after_a_conv_or_pool_warns_and_the_hint_fixes_it(nd, data, between, size, out):
    producer = data.draw(st.sampled_from(PRODUCERS[nd]))
    layers = [producer] + ([between.format(nd=nd)] if between else [])
    text = plan("[N, 3" + f", {size}" * nd + "]", *layers, f"Linear({out})")
    checked = convplan.parse(text)
    (warning,) = [w for w in checked.warnings if w.code == "W340"]
    assert warning.hints[0].startswith("insert Flatten() before Linear")
    model = checked.build(N=2)
    x = torch.randn(2, 3, *[size] * nd)
    got = tuple(model(x).shape)  # torch mixes the last dim alone: the rank stays, as the plan says
    assert len(got) == nd + 2 and got == tuple(int(d) for d in checked.bind(N=2).output_shape)
    fixed = convplan.parse(text.replace(f"    Linear({out})", f"    Flatten()\n    Linear({out})"))
    assert not [w for w in fixed.warnings if w.code == "W340"]
    assert tuple(fixed.build(N=2)(x).shape) == (2, out) == tuple(int(d) for d in fixed.bind(N=2).output_shape)


@pytest.mark.parametrize("layers", [("Flatten()", "Linear(10)"),
                                    ("Linear(16)", "ReLU()", "Linear(10)"),  # [N, T, C] as in a transformer
                                    ("Linear(10)",)])
def test_no_w340_where_the_last_dim_is_features(layers):
    assert "W340" not in codes(plan("[N, T, 32]", *layers))
    assert "W340" not in codes(plan("[N, 3, 16, 16]", "Conv2d(8, 3)", "Flatten()", *layers[-1:]))


# -- W310 past a large kernel and after a strided conv -----------------------------------------


def w310(text: str) -> list[str]:
    return [w.message for w in convplan.parse(text).warnings if w.code == "W310"]


def test_w310_fires_for_a_kernel_past_the_old_search_window():
    (message,) = w310(plan("[N, 2, L]", "Conv1d(4, kernel_size=80, stride=16)"))
    example = int(message.split("(e.g. L = ")[1].split(")")[0])
    assert example >= 80 and unread_tail(torch.nn.Conv1d(2, 4, 80, stride=16), example) > 0


@settings(max_examples=25, deadline=None)
@given(k=st.integers(20, 100), s=st.integers(2, 20), k2=st.integers(1, 4), s2=st.integers(1, 4))
def test_w310_of_a_large_conv_and_the_pool_after_it_match_torch(k, s, k2, s2):
    if s2 > k2:
        return  # a stride past the window skips samples by design (no W310)
    # AvgPool: autograd reaches every input of a window (MaxPool's only the largest)
    conv, pool = f"Conv1d(2, kernel_size={k}, stride={s})", f"AvgPool1d({k2}, stride={s2})"
    checked = convplan.parse(plan("[N, 2, L]", conv, pool))
    warned = {w.span.line: w.message for w in checked.warnings if w.code == "W310"}
    low = checked.smallest_sizes()["L"]
    lengths = range(low, low + 2 * s * s2 + 2 * s + 4)
    t_conv = torch.nn.Conv1d(2, 2, k, stride=s)
    assert any(unread_tail(t_conv, n) for n in lengths) == (3 in warned), (conv, warned)
    t_pool = torch.nn.AvgPool1d(k2, stride=s2)
    inner = {t_conv(torch.zeros(1, 2, n)).shape[-1] for n in lengths}  # the pool's input lengths
    assert any(unread_tail(t_pool, m) for m in inner) == (4 in warned), (conv, pool, warned)


@pytest.mark.parametrize("depth", [1, 4, 8])
def test_w310_of_a_pool_after_a_deep_strided_chain_has_an_example_torch_confirms(depth):
    """After 8 stride-2 convs the pool reads (L + 255)//256, constant over the 256 sizes from its bound."""
    convs = ["Conv1d(2, 3, stride=2, padding=1)"] * depth
    checked = convplan.parse(plan("[N, 2, L]", *convs, "AvgPool1d(4)"))
    (message,) = [w.message for w in checked.warnings if w.code == "W310" and w.span.line == depth + 3]
    example = int(message.split("(e.g. L = ")[1].split(")")[0])
    chain = torch.nn.Sequential(*[torch.nn.Conv1d(2, 2, 3, stride=2, padding=1) for _ in range(depth)])
    inner = chain(torch.zeros(1, 2, example)).shape[-1]
    assert checked.satisfied(N=1, L=example) and unread_tail(torch.nn.AvgPool1d(4), inner) > 0
