"""Point decoders: global feature F (B, C) -> point cloud (B, N, 3) (docs/design.md row 3).

``build_decoder(model_cfg, in_dim) -> nn.Module`` picks one by flag:

- ``paper6`` (``use_esm`` and ``esm_variant: paper6``; the official BaseModel wiring, the paper's six
  stages).  widths w1..wK (paper: 512 256 128 64 32), K+1 selection maps of shape (C, N):
      s1 = M1 ⊙ F;  x1 = APN1(conv1(s1), s1)
      x_k = APN_k(conv_k(x_{k-1}), M_k ⊙ F)                    k = 2..K
      out = APN_{K+1}(tanh(tail(x_K)), M_{K+1} ⊙ F)            (last stage modulates xyz: unbounded)
- ``released5`` (official ProModel wiring).  widths (paper: 1024 768 512 256 128 | 64 32):
      x1 = APN1(conv1(F), M1 ⊙ F);  x_k = APN_k(conv_k(x_{k-1}), M_k ⊙ F) for the first 5 widths,
      then plain convs for the rest, out = tanh(tail(x))       (output in [-1, 1])
- ``plain`` (``use_esm: false``, Tab. 3 baseline "MIT + 3D decoder").  Without selection maps every
  point would get the same feature, so the baseline folds a fixed sphere: x = [F ; sphere xyz]
  (C+3, N) -> the paper6 conv stack -> tanh(tail) (our choice; the paper does not describe it).

conv = 1x1 Conv1d (no bias) + BN + LeakyReLU(0.2); tail = 1x1 Conv1d (no bias) -> 3; APN =
``AdaptivePointNorm``.  Default widths (``model.decoder_widths: []``) are the paper's, scaled by
fused_dim/768 (``n_tokens*token_dim``) and rounded to multiples of 8, so the paper preset gets them exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mesc3d.config import ModelCfg
from mesc3d.errors import ConfigError
from mesc3d.models.esm import AdaptivePointNorm, SelectionMap, conv_bn_lrelu

PAPER_WIDTHS: dict[str, tuple[int, ...]] = {
    "paper6": (512, 256, 128, 64, 32),
    "released5": (1024, 768, 512, 256, 128, 64, 32),
    "plain": (512, 256, 128, 64, 32),
}
RELEASED_ESM_STAGES = 5


def fibonacci_sphere(n: int, radius: float = 0.5) -> torch.Tensor:
    """(n, 3) float32 near-uniform points on a sphere, re-centred, max norm = ``radius``."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    phi = torch.acos(1.0 - 2.0 * i / n)  # polar angle
    theta = math.pi * (1.0 + 5.0 ** 0.5) * i  # golden-angle azimuth
    pts = torch.stack([torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], 1)
    pts = pts - pts.mean(dim=0, keepdim=True)
    pts = pts * (radius / pts.norm(dim=1).max())
    return pts.float()


def decoder_kind(model_cfg: ModelCfg) -> str:
    return model_cfg.esm_variant if model_cfg.use_esm else "plain"


def resolve_widths(model_cfg: ModelCfg) -> tuple[int, ...]:
    """Explicit ``model.decoder_widths`` or the variant's paper widths scaled to the fused width."""
    if model_cfg.decoder_widths:
        widths = tuple(model_cfg.decoder_widths)
    else:
        scale = model_cfg.n_tokens * model_cfg.token_dim / 768.0
        widths = tuple(max(8, 8 * round(w * scale / 8)) for w in PAPER_WIDTHS[decoder_kind(model_cfg)])
    if not widths or min(widths) < 1:
        raise ConfigError(f"model.decoder_widths must be positive integers, got {list(widths)}")
    return widths


class ESMDecoderPaper6(nn.Module):
    def __init__(self, in_dim: int, widths: tuple[int, ...], n_points: int, map_std: float = 0.01,
                 clamp: bool = False):
        super().__init__()
        self.in_dim, self.n_points = in_dim, n_points
        chans = (in_dim,) + tuple(widths)
        self.maps = nn.ModuleList(SelectionMap(in_dim, n_points, map_std, clamp) for _ in range(len(widths) + 1))
        self.convs = nn.ModuleList(conv_bn_lrelu(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.adains = nn.ModuleList([AdaptivePointNorm(w, in_dim) for w in widths] + [AdaptivePointNorm(3, in_dim)])
        self.tail = nn.Conv1d(widths[-1], 3, 1, bias=False)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        f = _check_feat(feat, self.in_dim)  # (B, C, 1)
        # s_k = M_k ⊙ F is never formed: conv(s_k) = (W ⊙ F^T) @ M_k (SelectionMap.conv)
        conv0, bn_act0 = self.convs[0][0], self.convs[0][1:]
        x = self.adains[0].forward_map(bn_act0(self.maps[0].conv(conv0, f)), f, self.maps[0])  # (B, w1, N)
        for k in range(1, len(self.convs)):
            x = self.adains[k].forward_map(self.convs[k](x), f, self.maps[k])  # (B, w_k, N)
        out = torch.tanh(self.tail(x))  # (B, 3, N)
        out = self.adains[-1].forward_map(out, f, self.maps[-1])  # 6th stage modulates xyz
        return out.transpose(1, 2).contiguous()  # (B, N, 3)


class ESMDecoderReleased5(nn.Module):
    def __init__(self, in_dim: int, widths: tuple[int, ...], n_points: int, map_std: float = 0.01,
                 clamp: bool = False):
        super().__init__()
        self.in_dim, self.n_points = in_dim, n_points
        n_esm = min(RELEASED_ESM_STAGES, len(widths))
        chans = (in_dim,) + tuple(widths)
        self.convs = nn.ModuleList(conv_bn_lrelu(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.maps = nn.ModuleList(SelectionMap(in_dim, n_points, map_std, clamp) for _ in range(n_esm))
        self.adains = nn.ModuleList(AdaptivePointNorm(w, in_dim) for w in widths[:n_esm])
        self.tail = nn.Conv1d(widths[-1], 3, 1, bias=False)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        f = _check_feat(feat, self.in_dim)  # (B, C, 1)
        x = f.expand(-1, -1, self.n_points)  # (B, C, N): conv1 sees the unmasked feature
        for k, conv in enumerate(self.convs):
            x = conv(x)  # (B, w_k, N)
            if k < len(self.maps):
                x = self.adains[k].forward_map(x, f, self.maps[k])  # = adains[k](x, M_k ⊙ F)
        return torch.tanh(self.tail(x)).transpose(1, 2).contiguous()  # (B, N, 3)


class PlainDecoder(nn.Module):
    def __init__(self, in_dim: int, widths: tuple[int, ...], n_points: int):
        super().__init__()
        self.in_dim, self.n_points = in_dim, n_points
        chans = (in_dim + 3,) + tuple(widths)
        self.convs = nn.Sequential(*(conv_bn_lrelu(chans[i], chans[i + 1]) for i in range(len(widths))))
        self.tail = nn.Conv1d(widths[-1], 3, 1, bias=False)
        self.register_buffer("sphere", fibonacci_sphere(n_points).t().contiguous(), persistent=False)  # (3, N)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        f = _check_feat(feat, self.in_dim)  # (B, C, 1)
        B = f.shape[0]
        xyz = self.sphere.to(f.dtype)[None].expand(B, -1, -1)  # (B, 3, N)
        x = torch.cat([f.expand(-1, -1, self.n_points), xyz], dim=1)  # (B, C+3, N)
        return torch.tanh(self.tail(self.convs(x))).transpose(1, 2).contiguous()  # (B, N, 3)


def _check_feat(feat: torch.Tensor, in_dim: int) -> torch.Tensor:
    if feat.dim() != 2 or feat.shape[1] != in_dim:
        raise ValueError(f"decoder expects a global feature of shape (B, {in_dim}), got {tuple(feat.shape)}")
    return feat[:, :, None]


def build_decoder(model_cfg: ModelCfg, in_dim: int) -> nn.Module:
    """Decoder for ``in_dim``-wide global features producing ``model.n_points`` points."""
    kind, widths, n = decoder_kind(model_cfg), resolve_widths(model_cfg), model_cfg.n_points
    if kind == "paper6":
        return ESMDecoderPaper6(in_dim, widths, n, model_cfg.esm_map_std, model_cfg.esm_clamp)
    if kind == "released5":
        return ESMDecoderReleased5(in_dim, widths, n, model_cfg.esm_map_std, model_cfg.esm_clamp)
    return PlainDecoder(in_dim, widths, n)
