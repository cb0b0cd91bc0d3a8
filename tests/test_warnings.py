"""W310: the warning for a strided window that stops short of the input's end, checked against
what torch really reads (an input position is read if some output depends on it)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import convplan


def w310(text: str) -> list[str]:
    return [w.message for w in convplan.parse(text).warnings if w.code == "W310"]


def plan(layer: str, shape: str = "[N, 2, L]") -> str:
    return f"plan P:\n    input {shape}\n    {layer}\n"


def unread_tail(layer: torch.nn.Module, length: int) -> int:
    """How many trailing positions of a length-`length` input no output depends on (by autograd)."""
    x = torch.randn(1, 2, length, requires_grad=True)
    layer(x).sum().backward()
    read = (x.grad.abs().sum(dim=(0, 1)) != 0).tolist()
    return len(read) - (max(i for i, r in enumerate(read) if r) + 1)


def test_pool_that_does_not_divide_warns_with_an_example():
    (message,) = w310(plan("MaxPool1d(2)"))
    assert "L % 2" in message and "L = 3" in message


@pytest.mark.parametrize("layer", ["Conv1d(4, kernel_size=7, stride=2, padding=3)",  # ResNet's stem
                                   "Conv1d(4, kernel_size=3, stride=2, padding=1)",
                                   "Conv1d(4, kernel_size=1, stride=2)",  # skips by design
                                   "MaxPool1d(3, stride=2, padding=1)",
                                   "MaxPool1d(2, ceil_mode=True)"])
def test_no_warning_where_padding_or_design_covers_the_tail(layer):
    assert w310(plan(layer)) == []


def test_requirements_that_rule_the_sizes_out_silence_it():
    unet = convplan.load("examples/unet.plan")
    assert not [w for w in unet.warnings if w.code == "W310"]
    assert "H % 16 == 0" in [str(r) for r in unet.requires]


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 2))
def test_warning_matches_what_torch_leaves_unread(k, s, p):
    if 2 * p > k or s > k:
        return  # torch refuses the padding; a stride past the window skips samples by design (no W310)
    layer = f"AvgPool1d({k}, stride={s}, padding={p}, count_include_pad=False)"
    warned = w310(plan(layer))
    torch_layer = torch.nn.AvgPool1d(k, stride=s, padding=p, count_include_pad=False)
    lost = {length: unread_tail(torch_layer, length) for length in range(k, k + 3 * s + 3)}
    assert any(lost.values()) == bool(warned), (layer, lost, warned)
    if warned:  # the example size really loses positions
        example = int(warned[0].split("(e.g. L = ")[1].split(")")[0])
        assert unread_tail(torch_layer, example) > 0
    concrete = convplan.parse(plan(layer, "[N, 2, 11]"))
    assert not [w for w in concrete.warnings if w.code == "W310"]  # concrete sizes: nothing to warn about


def w320(text: str) -> list[str]:
    return [w.message for w in convplan.parse(text).warnings if w.code == "W320"]


def test_torch_order_is_flagged_where_the_plan_would_read_it_shifted():
    (message,) = w320(plan("Conv1d(2, 32, 3)"))
    assert "out_channels=2, kernel_size=32, stride=3" in message


@pytest.mark.parametrize("layer", ["Conv1d(2, 3)",  # out_channels equal to in_channels: fine
                                   "Conv1d(32, 3, 2)",  # a stride, and 32 is not the input's channels
                                   "Conv1d(2, kernel_size=3, stride=2)"])
def test_plan_order_is_not_flagged(layer):
    assert w320(plan(layer)) == []



def test_a_batch_dim_read_as_channels_warns():
    import convplan

    plan = convplan.parse("plan A:\n    input [N, 28, 28]\n    Conv2d(16, kernel_size=3)\n")
    (w,) = [w for w in plan.warnings if w.code == "W330"]
    assert "reads its in_channels from N" in w.message and "[N, 1, 28, 28]" in w.hints[0]
    quiet = convplan.parse("plan A:\n    input [N, 1, 28, 28]\n    Conv2d(16, kernel_size=3)\n    Flatten()\n"
                           "    Linear(10)\n")
    assert not [w for w in quiet.warnings if w.code == "W330"]  # in_features depends on sizes, not the batch
