"""MIT fusion: interlaced cross-attention between image tokens and point tokens (docs/design.md).

``InterlacedBlock`` (MESC ``SkipCrossAttention`` = MIT ``SkipClsDecoderBlock`` without class tokens),
pre-norm, three residual sub-layers with DropPath:
    q <- q + DropPath(SelfAttn(norm1 q))
    q <- q + DropPath(CrossAttn(norm_q q, norm_v kv))      (separate q/k/v Linear, no bias)
    q <- q + DropPath(MLP(norm2 q))

``MIT.forward(img (B, Ti, D), pc (B, Tp, D), extra (B, Te, D) | None) -> img (B, Ti, D)``:
block i even: the point tokens query the image tokens; block i odd: the image tokens query the
(updated) point tokens; only the image stream is returned.  ``extra`` tokens (the text prior in the
``fuse_in_mit`` injection, Tab. 6 "three-modal fusion") are appended to the keys/values of every
cross-attention and are never updated themselves.
"""

from __future__ import annotations

import torch
from torch import nn

from mesc3d.models.layers import CrossAttention, DropPath, Mlp, SelfAttention


class InterlacedBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = SelfAttention(dim, heads, qkv_bias=False, attn_drop=attn_drop, proj_drop=drop)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_v = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads, qkv_bias=False, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        # q (B, Tq, D) queries; kv (B, Tk, D) keys/values
        q = q + self.drop_path(self.self_attn(self.norm1(q)))
        q = q + self.drop_path(self.attn(self.norm_q(q), self.norm_v(kv)))
        return q + self.drop_path(self.mlp(self.norm2(q)))


class MIT(nn.Module):
    """Interlaced fusion; dims/heads/depth/dropouts from ``ModelCfg`` (paper: 32, 8, 4, 0.2/0.2/0.2)."""

    def __init__(self, dim: int, heads: int, depth: int, mlp_ratio: float = 2.0, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"MIT token_dim {dim} must be divisible by mit_heads {heads}")
        self.dim = dim
        # the official code uses the same drop-path rate in every block (no linear schedule)
        self.blocks = nn.ModuleList(InterlacedBlock(dim, heads, mlp_ratio, drop, attn_drop, drop_path)
                                    for _ in range(depth))

    def forward(self, img: torch.Tensor, pc: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        for name, t in (("img", img), ("pc", pc), ("extra", extra)):
            if t is not None and (t.dim() != 3 or t.shape[-1] != self.dim or t.shape[0] != img.shape[0]):
                raise ValueError(f"MIT expects {name} tokens of shape (B={img.shape[0]}, T, {self.dim}), "
                                 f"got {tuple(t.shape)}")
        pc = pc.to(img.dtype)
        for i, block in enumerate(self.blocks):
            if i % 2 == 0:  # point tokens query the image tokens
                kv = img if extra is None else torch.cat([img, extra.to(img.dtype)], dim=1)
                pc = block(pc, kv)
            else:  # image tokens query the point tokens
                kv = pc if extra is None else torch.cat([pc, extra.to(pc.dtype)], dim=1)
                img = block(img, kv)
        return img  # (B, Ti, D)
