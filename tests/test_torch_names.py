"""torch.nn, enumerated: every Module class is a layer kind or listed, with its reason, as not yet
supported or as no layer of a plan; and what `convplan check` says of a name torch has and convplan
does not (from lists kept without torch, compared here with the installed torch)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from torch import nn

import convplan
from convplan import PlanError, torch_names
from convplan.layers import REGISTRY
from convplan.torch_names import NOT_LAYERS, NOT_YET

MODULES = {name for name, cls in vars(nn).items() if inspect.isclass(cls) and issubclass(cls, nn.Module)}


def test_every_torch_nn_module_is_a_kind_or_listed_with_its_reason():
    listed = set(NOT_YET) | set(NOT_LAYERS)
    missing = sorted(MODULES - set(REGISTRY) - listed)
    assert not missing, f"torch.nn classes neither supported nor listed in convplan/torch_names.py: {missing}"
    assert not set(NOT_YET) & set(NOT_LAYERS)
    assert not listed & set(REGISTRY), "supported kinds still listed as missing"
    assert listed <= MODULES, f"listed but not in torch.nn: {sorted(listed - MODULES)}"
    ours = {k for k, spec in REGISTRY.items() if spec.module == "torch.nn"}  # the rest: torchvision.ops' kinds
    assert ours <= MODULES, f"kinds that are not torch.nn classes: {sorted(ours - MODULES)}"
    assert all(reason.strip() for reason in (*NOT_YET.values(), *NOT_LAYERS.values()))


def test_the_lists_say_what_they_are():
    """Losses are losses, abstract classes abstract, a Lazy module names the kind to write instead, and
    every 'several inputs or outputs' class does take or return more than one tensor."""
    for name, reason in NOT_LAYERS.items():
        cls = getattr(nn, name)
        if name.startswith("Lazy"):
            assert name[4:] in REGISTRY and f"write {name[4:]}" in reason
        elif reason == torch_names.LOSS:
            assert issubclass(cls, nn.modules.loss._Loss)
    several = {"RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "MultiheadAttention", "Bilinear",
               "TransformerDecoderLayer", "EmbeddingBag", "Transformer", "TransformerDecoder", "CosineSimilarity",
               "PairwiseDistance", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"}  # several inputs or outputs: kinds now
    assert several <= set(REGISTRY)
    for name in several:
        forward = inspect.signature(getattr(nn, name).forward)
        inputs = [p for p in forward.parameters.values() if p.name != "self"]
        returns = str(forward.return_annotation)
        assert len(inputs) > 1 or "tuple" in returns.lower() or "Tuple" in returns, (name, forward)
    assert not NOT_YET  # nothing left of torch.nn: every class is a kind or no layer of a plan


@pytest.mark.skipif(torch.__version__.split("+")[0] != torch_names.TORCH_VERSION,
                    reason="the lists were generated from another torch version")
def test_generated_names_are_the_installed_torchs():
    """`python -m convplan.torch_names` regenerates convplan/_torch_names.py; it must be current."""
    path = Path(torch_names.__file__).with_name("_torch_names.py")
    assert path.read_text(encoding="utf-8") == torch_names._generate()
    for name in ("permute", "mean", "reshape", "chunk", "matmul", "softmax"):
        assert callable(getattr(torch.Tensor, name)) and name in torch_names.METHODS


def _error(line: str):
    text = f"plan T:\n    input [N, C, H, W]\n    {line}\n"
    with pytest.raises(PlanError) as err:
        convplan.parse(text)
    (diag,) = err.value.diagnostics
    return diag


@pytest.mark.parametrize("line, message, hint", [
    ("CrossEntropyLoss()", "torch.nn.CrossEntropyLoss is not a layer of a plan: a loss", None),
    ("MSELoss()", "torch.nn.MSELoss is not a layer of a plan: a loss", None),
    ("Sequential()", "torch.nn.Sequential is not a layer of a plan: a container", None),
    ("LazyConv2d(8, 3)", "torch.nn.LazyConv2d is not a layer of a plan", "did you mean Conv2d?"),
    ("roll(1)", "'roll' is a tensor operation (torch.roll, Tensor.roll) that convplan does not have yet", None),
    ("squeeze(1)", "'squeeze' is a tensor operation", "select(dim, 0)"),
    ("max(dim=1)", "'max' is a tensor operation (torch.max, Tensor.max)", "amax(dim=(2, 3))"),
    ("max_pool2d(2)", "'max_pool2d' is a tensor operation", "the layer MaxPool2d does this"),
    ("interpolate(scale_factor=2)", "(torch.nn.functional.interpolate)", "Upsample("),
    ("Conv2D(8, 3)", "unknown layer 'Conv2D'", "did you mean Conv2d?"),
    ("Frobnicate(8)", "unknown layer 'Frobnicate'", None),
])
def test_a_name_torch_has_is_named(line, message, hint):
    diag = _error(line)
    assert diag.code == "E100" and message in diag.message, diag.message
    assert diag.span.col == 5
    hints = [h for h in diag.hints if h]
    assert (hint is None and not hints) or any(hint in h for h in hints), hints


def test_a_class_not_supported_yet_says_why(monkeypatch):
    """NOT_YET is empty in torch 2.13; a class a later torch adds is listed there with its reason until it is a
    kind, and a plan that uses it is told so (with the kind of a similar name)."""
    monkeypatch.setitem(NOT_YET, "MaxPool4d", "torch 9 added it; its rule is not written yet")
    diag = _error("MaxPool4d(2)")
    assert diag.code == "E100" and diag.message.endswith(
        "torch.nn.MaxPool4d is not supported yet: torch 9 added it; its rule is not written yet"), diag.message
    assert any("did you mean MaxPool" in h for h in diag.hints if h), diag.hints
    assert torch_names.torch_kind("MaxPool4d") == "torch.nn.MaxPool4d"


def test_naming_torch_does_not_import_it():
    from test_no_torch import assert_no_torch

    assert_no_torch("import convplan\n"
                    "try:\n    convplan.parse('plan T:\\n    input [N, C]\\n    TripletMarginLoss(3)\\n"
                    "    roll(1)\\n')\n"
                    "except convplan.PlanError as e:\n    assert 'torch.nn.TripletMarginLoss' in str(e), str(e)\n"
                    "else:\n    raise AssertionError('accepted')")
