"""ESM (Effective Semantic Mining) pieces, as coded in the official models (docs/design.md).

``SelectionMap(channels C, n_points N, std, clamp)``: a learnable point-selection map M (C, N), init
N(0, std) (std 0.01), raw (no sigmoid).  ``forward(feat (B, C, 1) | (B, C, N)) -> S = M ⊙ F (B, C, N)``;
``conv(conv1x1, feat (B, C, 1))`` = ``conv1x1(S)`` computed as (W ⊙ F^T) @ M without forming S (what
the decoders use: ~25 % faster forward + backward on the CPU, no (B, C, N) tensor and its gradient).
With ``clamp=True`` (ablation: the paper's "[0, 1]" text) the map used in the product is clamp(M, 0, 1)
with a straight-through gradient, so entries pushed outside [0, 1] can still come back.

``AdaptivePointNorm(out_channels C_i, style_channels C)``: a 1x1 Conv1d C -> 2*C_i on the selection
S gives gamma, beta (B, C_i, N); conv weight init N(0, 1), bias gamma-part 1, beta-part 0;
``forward(h (B, C_i, N), s (B, C, N)) -> gamma * h + beta`` (the official InstanceNorm output is
discarded, so there is none here); ``forward_map(h, feat (B, C, 1), selection)`` = ``forward(h,
selection(feat))`` through ``SelectionMap.conv``.
"""

from __future__ import annotations

import torch
from torch import nn


class SelectionMap(nn.Module):
    def __init__(self, channels: int, n_points: int, std: float = 0.01, clamp: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, n_points))  # (C, N)
        nn.init.normal_(self.weight, mean=0.0, std=std)
        self.clamp = clamp

    def effective(self) -> torch.Tensor:
        """The map multiplied into the features, (C, N)."""
        m = self.weight
        if self.clamp:
            m = m + (m.clamp(0.0, 1.0) - m).detach()  # value clamped, gradient straight through
        return m

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        C, N = self.weight.shape
        if feat.dim() != 3 or feat.shape[1] != C or feat.shape[2] not in (1, N):
            raise ValueError(f"SelectionMap expects features (B, {C}, 1) or (B, {C}, {N}), got {tuple(feat.shape)}")
        return feat * self.effective()  # (B, C, N)

    def conv(self, conv: nn.Conv1d, feat: torch.Tensor) -> torch.Tensor:
        """``conv(self(feat))`` for a 1x1 ``conv`` (C -> O) and a global feature (B, C, 1), without
        forming S = M ⊙ F (B, C, N): (W ⊙ F^T) @ M is one (B·O, C) x (C, N) matrix product forward and
        backward, and S and its gradient never exist.  (B, O, N)."""
        C, N = self.weight.shape
        if feat.dim() != 3 or feat.shape[1] != C or feat.shape[2] != 1:
            raise ValueError(f"SelectionMap.conv expects a global feature (B, {C}, 1), got {tuple(feat.shape)}")
        if conv.kernel_size != (1,) or conv.groups != 1 or conv.in_channels != C:
            raise ValueError(f"SelectionMap.conv needs a 1x1 Conv1d from {C} channels, got {conv}")
        w = conv.weight[:, :, 0]  # (O, C)
        out = torch.matmul(w[None] * feat.transpose(1, 2), self.effective())  # (B, O, C) @ (C, N) -> (B, O, N)
        return out if conv.bias is None else out + conv.bias[:, None]

    def extra_repr(self) -> str:
        return f"channels={self.weight.shape[0]}, n_points={self.weight.shape[1]}, clamp={self.clamp}"


class AdaptivePointNorm(nn.Module):
    def __init__(self, out_channels: int, style_channels: int):
        super().__init__()
        self.out_channels = out_channels
        self.style = nn.Conv1d(style_channels, 2 * out_channels, 1)
        with torch.no_grad():
            self.style.weight.normal_()  # std 1, as the official code
            self.style.bias.zero_()
            self.style.bias[:out_channels] = 1.0  # gamma starts at 1, beta at 0

    def forward(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if h.dim() != 3 or h.shape[1] != self.out_channels:
            raise ValueError(f"AdaptivePointNorm expects h of shape (B, {self.out_channels}, N), got {tuple(h.shape)}")
        gamma, beta = self.style(s).chunk(2, dim=1)  # (B, C_i, N) each
        return gamma * h + beta

    def forward_map(self, h: torch.Tensor, feat: torch.Tensor, selection: SelectionMap) -> torch.Tensor:
        """``forward(h, selection(feat))`` for a global feature (B, C, 1) without forming the selection
        (``SelectionMap.conv``): the same maths in another summation order."""
        if h.dim() != 3 or h.shape[1] != self.out_channels:
            raise ValueError(f"AdaptivePointNorm expects h of shape (B, {self.out_channels}, N), got {tuple(h.shape)}")
        gamma, beta = selection.conv(self.style, feat).chunk(2, dim=1)  # (B, C_i, N) each
        return gamma * h + beta


def conv_bn_lrelu(c_in: int, c_out: int) -> nn.Sequential:
    """Official decoder conv: 1x1 Conv1d (no bias) + BatchNorm1d + LeakyReLU(0.2)."""
    return nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out), nn.LeakyReLU(0.2))
