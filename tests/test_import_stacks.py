"""`convplan.from_module` of the Transformer stacks (nn.TransformerEncoder, nn.TransformerDecoder, nn.Transformer):
their arguments are read from their layer modules, and what a plan cannot say is a located problem.

torch is the oracle: random configurations round-trip (module -> plan text -> check -> build, the model's
state dict loaded with strict=True) to identical outputs at three sizes, and the built stack is torch's own
module again, submodule by submodule (class and extra_repr)."""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_import import cli, round_trip
from torch import nn

import convplan
from convplan.importer import ImportFailure


class Stack(nn.Module):
    """One stack of one or two tensors, called as a user model calls it."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, *tensors):
        return self.body(*tensors)


def _layer_kw(draw, heads):
    return dict(d_model=heads * draw(st.integers(1, 3)), nhead=heads, dim_feedforward=draw(st.integers(1, 12)),
                dropout=draw(st.sampled_from([0.1, 0.0, 0.3])), activation=draw(st.sampled_from(["relu", "gelu"])),
                layer_norm_eps=draw(st.sampled_from([1e-5, 1e-6])), batch_first=draw(st.booleans()),
                norm_first=draw(st.booleans()), bias=draw(st.booleans()))


@st.composite
def stacks(draw):
    """(kind, the module, the number of tensors it takes, batch_first, d_model) of a random configuration."""
    kind = draw(st.sampled_from(["TransformerEncoder", "TransformerDecoder", "Transformer"]))
    kw = _layer_kw(draw, draw(st.sampled_from([1, 2, 3])))
    with _quiet():
        if kind == "Transformer":
            module = nn.Transformer(num_encoder_layers=draw(st.integers(1, 3)),
                                    num_decoder_layers=draw(st.integers(1, 3)), **kw)
            return kind, module, 2, kw["batch_first"], kw["d_model"]
        norm = nn.LayerNorm(kw["d_model"], eps=kw["layer_norm_eps"], bias=kw["bias"]) if draw(st.booleans()) else None
        if kind == "TransformerEncoder":
            own = dict(enable_nested_tensor=draw(st.booleans()), mask_check=draw(st.booleans()))
            module = nn.TransformerEncoder(nn.TransformerEncoderLayer(**kw), draw(st.integers(1, 3)), norm, **own)
            return kind, module, 1, kw["batch_first"], kw["d_model"]
        module = nn.TransformerDecoder(nn.TransformerDecoderLayer(**kw), draw(st.integers(1, 3)), norm)
        return kind, module, 2, kw["batch_first"], kw["d_model"]


@contextlib.contextmanager
def _quiet():
    """torch warns where a stack's enable_nested_tensor cannot be used: the models here are made so on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _sizes(count, batch_first, d):
    def one(n, length):
        return (n, length, d) if batch_first else (length, n, d)

    pairs = [(2, 5, 3), (1, 7, 7), (3, 2, 4)]
    return [tuple(one(n, s) for s in (s1, s2)[:count]) for n, s1, s2 in pairs]


def _reprs(module: nn.Module) -> dict:
    return {q: (type(m).__name__, m.extra_repr()) for q, m in module.named_modules()}


@settings(max_examples=15, deadline=None)
@given(case=stacks())
def test_random_stacks_round_trip_to_torchs_own_module(case):
    """Every argument of a random stack (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
    batch_first, norm_first, bias, the layer counts, the final norm, enable_nested_tensor, mask_check) comes
    back: the built stack is the model's module again (each submodule's class and extra_repr, the state dict's
    shapes), and with the model's weights it computes the same outputs at three sizes."""
    kind, module, count, batch_first, d = case
    model = Stack(module)
    sizes = _sizes(count, batch_first, d)
    text, built = round_trip(model, tuple(torch.randn(*s) for s in sizes[0]), sizes)
    assert f"{kind}(" in text
    (ours,) = [m for m in built.modules() if type(m) is type(module)]
    assert _reprs(ours) == _reprs(module)
    for attr in ("enable_nested_tensor", "use_nested_tensor", "mask_check", "num_layers"):
        assert getattr(ours, attr, None) == getattr(module, attr, None), attr


def test_an_encoder_with_torchs_defaults_writes_only_nhead_and_num_layers():
    module = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 3)
    text, _ = round_trip(Stack(module), torch.randn(5, 2, 8), [((5, 2, 8),), ((7, 1, 8),), ((2, 3, 8),)])
    assert "body = TransformerEncoder(2, num_layers=3)\n" in text, text


def test_a_transformer_writes_its_layer_counts():
    module = nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=16)
    text, _ = round_trip(Stack(module), (torch.randn(5, 2, 8), torch.randn(3, 2, 8)),
                         [((5, 2, 8), (3, 2, 8)), ((4, 1, 8), (6, 1, 8)), ((2, 3, 8), (2, 3, 8))])
    assert "num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=16" in text, text


def _encoder(norm=None, layers=2):
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), layers, norm,
                                 enable_nested_tensor=False)


def _decoder(norm=None):
    return nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), 2, norm)


class Tanh(nn.TransformerEncoderLayer):
    """A subclass: its forward may differ from torch's layer, which a plan's stack repeats."""


class MyDecoder(nn.TransformerDecoder):
    """A subclass as nn.Transformer's custom_decoder."""


def _changed(make, change):
    module = make()
    change(module)
    return module


REFUSED = [
    # a custom activation callable
    (lambda: _changed(_encoder, lambda m: [setattr(layer, "activation", torch.tanh) for layer in m.layers]),
     "its activation is tanh: a plan's TransformerEncoderLayer takes activation='relu' or 'gelu'"),
    (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, activation=torch.tanh, batch_first=True), 2,
                                   enable_nested_tensor=False),
     "its activation is tanh"),
    # layers that differ from each other
    (lambda: _changed(_encoder, lambda m: setattr(m.layers[1].norm2, "eps", 1e-3)),
     "its layers.1.norm2.eps is 0.001 where torch makes 1e-05 (its layers differ: a plan's stack repeats one layer"),
    (lambda: _changed(_decoder, lambda m: m.layers.__setitem__(1, nn.TransformerDecoderLayer(8, 2, 32,
                                                                                          batch_first=True))),
     "its layers.1.linear1.out_features is 32 where torch makes 16 (its layers differ"),
    # a final norm that is not the LayerNorm a plan makes
    (lambda: _encoder(nn.RMSNorm(8)), "norm is a RMSNorm: a plan's TransformerEncoder takes norm=True, a LayerNorm"),
    (lambda: _decoder(nn.LayerNorm(8, eps=1e-3)),
     "its norm.eps is 0.001 where torch makes 1e-05 (a plan's norm=True is LayerNorm(d_model, eps=layer_norm_eps"),
    (lambda: _decoder(nn.LayerNorm(8, elementwise_affine=False)),
     "its norm.elementwise_affine is False where torch makes True"),
    # a layer of another class
    (lambda: nn.TransformerEncoder(Tanh(8, 2, 16, batch_first=True), 2, enable_nested_tensor=False),
     "layers[0] is a Tanh: a plan's TransformerEncoder repeats torch's TransformerEncoderLayer"),
    # nn.Transformer with a custom encoder, or changed after construction
    (lambda: nn.Transformer(8, 2, 1, 1, 16, batch_first=True, custom_encoder=_encoder()),
     "its encoder.enable_nested_tensor is False where torch makes True (a plan's Transformer makes its encoder as "
     "nn.Transformer does, not a custom_encoder)"),
    (lambda: nn.Transformer(8, 2, 1, 1, 16, batch_first=True, custom_decoder=MyDecoder(
        nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), 1, nn.LayerNorm(8))),
     "its decoder is a MyDecoder (custom_decoder): a plan's Transformer makes torch's TransformerDecoder"),
    (lambda: _changed(lambda: nn.Transformer(8, 2, 1, 2, 16, batch_first=True),
                      lambda m: setattr(m.decoder.layers[1].dropout, "p", 0.5)),
     "its decoder.layers.1.dropout.p is 0.5 where torch makes 0.1 (its layers differ"),
]


@pytest.mark.parametrize(("make", "message"), REFUSED)
def test_a_stack_a_plan_cannot_say_is_a_located_problem(make, message):
    with _quiet():
        module = make()
    model = Stack(module).eval()
    tensors = (torch.randn(2, 5, 8),) if isinstance(module, nn.TransformerEncoder) else \
        (torch.randn(2, 5, 8), torch.randn(2, 3, 8))
    with pytest.raises(ImportFailure) as info:
        convplan.from_module(model, tensors)
    (problem,) = info.value.problems
    assert problem.module == "" and problem.node == "body" and message in problem.message, info.value.render()


def test_a_transformer_whose_custom_encoder_is_the_one_it_would_make_imports():
    """custom_encoder=torch's own stack of the same layers: the module is the one a plan makes, so it imports."""
    module = nn.Transformer(8, 2, 2, 1, 16, batch_first=True,
                            custom_encoder=nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True),
                                                                 2, nn.LayerNorm(8), enable_nested_tensor=True))
    sizes = [((2, 5, 8), (2, 3, 8)), ((1, 4, 8), (1, 6, 8)), ((3, 2, 8), (3, 2, 8))]
    text, _ = round_trip(Stack(module), tuple(torch.randn(*s) for s in sizes[0]), sizes)
    assert "Transformer(" in text


def test_the_command_line_reports_a_stack_it_cannot_read_without_a_traceback(capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "import", "_import_models:TanhEncoder", "--input", "2,5,8",
                         "--color", "never")
    assert code == 1 and not out and "Traceback" not in err
    assert "<model> (TanhEncoder), node encoder" in err and "its activation is tanh" in err, err
