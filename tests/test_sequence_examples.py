"""The sequence examples against torch modules written here as a torch user would: examples/speech_lstm.plan
(a Conv1d front end, a permute, a bidirectional LSTM, a Linear per frame) and examples/text_transformer.plan
(token and position embeddings, nn.TransformerEncoder, the mean over tokens, a Linear).  Parameter shapes
and counts equal, outputs of equal shape at several sizes, built modules verified."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import convplan
from convplan.build import example_inputs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class SpeechLSTM(nn.Module):
    def __init__(self, mels=80, channels=256, hidden=256, layers=2, classes=29):
        super().__init__()
        self.front = nn.Sequential(
            nn.Conv1d(mels, channels, 5, stride=2, padding=2), nn.BatchNorm1d(channels), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, padding=1), nn.BatchNorm1d(channels), nn.ReLU())
        self.lstm = nn.LSTM(channels, hidden, num_layers=layers, batch_first=True, bidirectional=True, dropout=0.1)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        frames, _ = self.lstm(self.front(x).permute(0, 2, 1))
        return self.head(frames)


class TextTransformer(nn.Module):
    def __init__(self, vocab=10000, d=128, heads=4, layers=2, max_len=64, classes=4):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d))
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=4 * d, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, tokens):
        x = self.tok(tokens) + self.pos[:, : tokens.shape[1]]
        return self.head(self.encoder(x).mean(dim=1))


def shapes(module: nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in module.parameters())


@pytest.mark.parametrize("name, reference", [("speech_lstm", SpeechLSTM), ("text_transformer", TextTransformer)])
def test_parameters_equal_torch(name, reference):
    plan = convplan.load(EXAMPLES / f"{name}.plan")
    torch_module = reference()
    built = plan.build(**{"N": 1, "L": 8} if "L" in plan.symbols else {})  # narrow, expand: concrete sizes
    assert int(plan.total_params) == sum(p.numel() for p in torch_module.parameters())
    assert shapes(built) == shapes(torch_module)
    assert plan.verify().ok


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 3), t=st.integers(1, 40))
def test_speech_output_is_torchs(n, t):
    plan = convplan.load(EXAMPLES / "speech_lstm.plan")
    want = tuple(SpeechLSTM().eval()(torch.randn(n, 80, t)).shape)
    assert tuple(int(d) for d in plan.bind(N=n, T=t).output_shape) == want == (n, (t - 1) // 2 + 1, 29)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 3), length=st.integers(1, 64))
def test_text_output_is_torchs(n, length):
    plan = convplan.load(EXAMPLES / "text_transformer.plan")
    built = plan.build(N=n, L=length).eval()
    tokens = example_inputs(plan.graph, {"N": n, "L": length})[0]
    assert tokens.dtype == torch.int64 and int(tokens.max()) < 10000
    with torch.no_grad():
        got = built(tokens)
        want = TextTransformer().eval()(tokens)
    assert tuple(got.shape) == tuple(want.shape) == (n, 4)


def test_text_longer_than_the_position_table_is_refused():
    plan = convplan.load(EXAMPLES / "text_transformer.plan")
    assert [str(r.condition) for r in plan.requires] == ["L <= 64"]
    with pytest.raises(convplan.PlanError) as info:
        plan.bind(L=65)
    assert info.value.diagnostics[0].code == "E401"
