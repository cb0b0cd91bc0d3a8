"""convplan's copies of the torchvision modules its layer kinds name (torchvision.ops': layers/torchvision.py;
the Swin Transformer's: layers/swin.py): the same state_dict and forward, so that a built plan needs torch
alone.  build() makes them; codegen copies each class's source (read as text, never imported there) into
the generated file."""

from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: in training, drops whole samples ('row') or the
    whole batch ('batch') of a residual branch with probability p, scaling the rest by
    1/(1-p); the identity in eval."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival_rate = 1.0 - self.p
        if self.mode == "row":
            size = [x.shape[0]] + [1] * (x.dim() - 1)
        else:
            size = [1] * x.dim()
        noise = torch.empty(size, dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival_rate)
        if survival_rate > 0.0:
            noise.div_(survival_rate)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class Permute(nn.Module):
    """torchvision.ops.Permute: torch.permute(x, dims) as a module."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class PatchMerging(nn.Module):
    """torchvision.models.swin_transformer.PatchMerging with its default LayerNorm:
    [..., H, W, C] -> [..., (H + 1)//2, (W + 1)//2, 2*C].  An odd H or W is padded with
    a zero row or column first; the four interleaved quarters are joined on the
    channels, normalised and projected."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W, _ = x.shape[-3:]
        x = nn.functional.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x0 = x[..., 0::2, 0::2, :]
        x1 = x[..., 1::2, 0::2, :]
        x2 = x[..., 0::2, 1::2, :]
        x3 = x[..., 1::2, 1::2, :]
        x = torch.cat([x0, x1, x2, x3], -1)
        x = self.norm(x)
        return self.reduction(x)


class ShiftedWindowAttention(nn.Module):
    """torchvision.models.swin_transformer.ShiftedWindowAttention: multi-head
    self-attention within windows of [N, H, W, C], with a learned bias per relative
    position and head.  H and W are padded at the end to multiples of the window,
    (window - H % window) % window; a shifted block rolls the map by -shift first (and
    back after), and masks out the pairs of positions that the roll brought together
    from different regions.  A dim no larger than its window is not shifted (torchvision
    writes that into the module's shift_size, so that it lasts for later inputs; this
    copy decides it per input, the same for every first call).  As in torchvision, the
    dropouts are F.dropout in training mode, in eval too."""

    def __init__(
        self,
        dim: int,
        window_size: list[int],
        shift_size: list[int],
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(window_size) != 2 or len(shift_size) != 2:
            raise ValueError("window_size and shift_size must be of length 2")
        self.window_size = list(window_size)
        self.shift_size = list(shift_size)
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads)
        )
        coords = torch.stack(
            torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
        ).flatten(1)
        relative = coords[:, :, None] - coords[:, None, :]
        relative = relative.permute(1, 2, 0).contiguous()
        relative[:, :, 0] += wh - 1
        relative[:, :, 1] += ww - 1
        relative[:, :, 0] *= 2 * ww - 1
        self.register_buffer("relative_position_index", relative.sum(-1).flatten())
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        (wh, ww), heads = self.window_size, self.num_heads
        x = nn.functional.pad(x, (0, 0, 0, (ww - W % ww) % ww, 0, (wh - H % wh) % wh))
        _, pH, pW, _ = x.shape
        sh, sw = self.shift_size
        shift = [0 if wh >= pH else sh, 0 if ww >= pW else sw]
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        windows = (pH // wh) * (pW // ww)
        x = x.view(B, pH // wh, wh, pW // ww, ww, C)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * windows, wh * ww, C)
        qkv = nn.functional.linear(x, self.qkv.weight, self.qkv.bias)
        qkv = qkv.reshape(x.size(0), x.size(1), 3, heads, C // heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * (C // heads) ** -0.5
        attn = q.matmul(k.transpose(-2, -1))
        bias = self.relative_position_bias_table[self.relative_position_index]
        bias = bias.view(wh * ww, wh * ww, -1).permute(2, 0, 1).contiguous()
        attn = attn + bias.unsqueeze(0)
        if sum(shift) > 0:
            mask = x.new_zeros((pH, pW))
            h_slices = ((0, -wh), (-wh, -shift[0]), (-shift[0], None))
            w_slices = ((0, -ww), (-ww, -shift[1]), (-shift[1], None))
            count = 0
            for h in h_slices:
                for w in w_slices:
                    mask[h[0] : h[1], w[0] : w[1]] = count
                    count += 1
            mask = mask.view(pH // wh, wh, pW // ww, ww).permute(0, 2, 1, 3)
            mask = mask.reshape(windows, wh * ww)
            mask = mask.unsqueeze(1) - mask.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attn = attn.view(x.size(0) // windows, windows, heads, x.size(1), x.size(1))
            attn = attn + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, x.size(1), x.size(1))
        attn = nn.functional.softmax(attn, dim=-1)
        attn = nn.functional.dropout(attn, p=self.attention_dropout)
        x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), C)
        x = nn.functional.linear(x, self.proj.weight, self.proj.bias)
        x = nn.functional.dropout(x, p=self.dropout)
        x = x.view(B, pH // wh, pW // ww, wh, ww, C)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, pH, pW, C)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
        return x[:, :H, :W, :].contiguous()
