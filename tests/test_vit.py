"""examples/vit_b_16.plan against a ViT-B/16 written here as torchvision writes it (torchvision need not be
installed): the same state_dict keys, so the same weights load into both, and the outputs agree.  The image
size is fixed by the position embedding: a wrong size is a located error in the plan and in the generated
code.  (test_modules.py checks the keys and shapes against the reference file and loads them strictly into the
built and the generated module; test_architectures.py the parameter count.)"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from test_codegen import module_class
from torch import nn

import convplan
from convplan import PlanError

PLAN = Path(__file__).resolve().parent.parent / "examples" / "vit_b_16.plan"


class EncoderBlock(nn.Module):
    def __init__(self, heads, hidden, mlp_dim):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(hidden, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp_dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp_dim, hidden),
                                 nn.Dropout(0.0))

    def forward(self, inputs):
        x = self.ln_1(inputs)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x) + inputs
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    def __init__(self, seq_length, layers, heads, hidden, mlp_dim):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, hidden).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(heads, hidden, mlp_dim)) for i in range(layers)))
        self.ln = nn.LayerNorm(hidden, eps=1e-6)

    def forward(self, x):
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """torchvision.models.vision_transformer.VisionTransformer, as vit_b_16 configures it."""

    def __init__(self, image_size=224, patch=16, layers=12, heads=12, hidden=768, mlp_dim=3072, classes=1000):
        super().__init__()
        self.image_size, self.patch, self.hidden = image_size, patch, hidden
        self.conv_proj = nn.Conv2d(3, hidden, kernel_size=patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.encoder = Encoder((image_size // patch) ** 2 + 1, layers, heads, hidden, mlp_dim)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(hidden, classes)))

    def forward(self, x):
        n, _, h, w = x.shape
        torch._assert(h == self.image_size and w == self.image_size, "wrong image size")
        x = self.conv_proj(x).reshape(n, self.hidden, -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


@pytest.fixture(scope="module")
def plan():
    return convplan.load(PLAN)


def _weights(reference: nn.Module) -> dict:
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(v.shape, generator=gen) * 0.05 for k, v in reference.state_dict().items()}


def test_keys_equal_torchvisions_layout_and_outputs_agree(plan):
    reference = VisionTransformer().eval()
    built = plan.build().eval()
    assert list(built.state_dict()) == list(reference.state_dict())  # names and order
    weights = _weights(reference)
    reference.load_state_dict(weights, strict=True)
    built.load_state_dict(weights, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = reference(x), built(x)
    assert got.shape == (2, 1000)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_the_plan_requires_the_image_size_the_position_embedding_holds(plan):
    asserted = [r for r in plan.requires if r.layer == "conv_proj" and r.reason.startswith("Conv2d: the asserted")]
    assert [(str(r.condition), r.span.line) for r in asserted] == [("Eq(FloorDiv(H, 16), 14)", 47),
                                                                    ("Eq(FloorDiv(W, 16), 14)", 47)]
    assert plan.satisfied(N=1, H=224, W=224) and plan.satisfied(N=1, H=239, W=230)  # torch's conv drops H % 16
    for h, w in ((240, 224), (224, 208), (256, 256), (112, 448)):
        assert not plan.satisfied(N=1, H=h, W=w)


@pytest.mark.parametrize("h, w", [(240, 224), (224, 200)])
def test_a_wrong_image_size_is_a_located_error(plan, h, w):
    with pytest.raises(PlanError) as info:
        plan.bind(H=h, W=w)
    (error,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert (error.code, error.span.line) == ("E401", 47)  # the conv_proj line's asserted [N, hidden, grid, grid]
    assert "H = 240" in error.message if h == 240 else f"W = {w}" in error.message


def test_generated_code_refuses_a_wrong_image_size_naming_the_line(plan):
    cls = module_class(plan.to_source())
    with torch.device("meta"):
        model = cls()
    with pytest.raises(ValueError, match=r"H // 16 == image_size // 16 \(conv_proj, vit_b_16\.plan:47\)"):
        model(torch.empty(1, 3, 240, 224, device="meta"))
    assert model(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 1000)
