"""Transformer building blocks shared by Point-MAE and MIT (plain PyTorch, no timm).

Names of sub-modules follow the official code so checkpoints map one to one:

- ``DropPath``  stochastic depth, per sample (identity in eval mode or with p = 0);
- ``Mlp``       ``fc1`` -> GELU -> dropout -> ``fc2`` -> dropout (timm ``Mlp`` layout);
- ``SelfAttention``  ``qkv`` (one Linear dim -> 3*dim) + ``proj`` (Point-MAE/MIT ``Attention``);
- ``CrossAttention`` separate ``q``, ``k``, ``v`` Linear (dim -> dim) + ``proj`` (MESC ``CrossAttention``);
- ``EncoderBlock``   pre-norm ``x + DropPath(attn(norm1 x))``, ``x + DropPath(mlp(norm2 x))`` (Point-MAE ``Block``).

Attention is written out explicitly (softmax(q k^T * head_dim^-0.5) v), so CPU and GPU give the
same maths and autocast picks the dtypes (no hard-coded dtype/device anywhere).
"""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth: zero a whole residual branch per sample with probability ``p``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)  # (B, 1, 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, dim)
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, drop: nn.Dropout) -> torch.Tensor:
    """q (B, h, Tq, d), k/v (B, h, Tk, d) -> (B, h, Tq, d); scale d^-0.5."""
    attn = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)  # (B, h, Tq, Tk)
    attn = drop(attn.softmax(dim=-1))
    return attn @ v


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape  # (B, T, C)
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        out = _attend(qkv[0], qkv[1], qkv[2], self.attn_drop)  # (B, h, T, d)
        out = out.transpose(1, 2).reshape(B, T, C)
        return self.proj_drop(self.proj(out))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        B, Tq, C = q.shape  # queries (B, Tq, C)
        Tk = kv.shape[1]  # keys/values (B, Tk, C)
        h, d = self.heads, C // self.heads
        qh = self.q(q).view(B, Tq, h, d).transpose(1, 2)  # (B, h, Tq, d)
        kh = self.k(kv).view(B, Tk, h, d).transpose(1, 2)  # (B, h, Tk, d)
        vh = self.v(kv).view(B, Tk, h, d).transpose(1, 2)
        out = _attend(qh, kh, vh, self.attn_drop).transpose(1, 2).reshape(B, Tq, C)
        return self.proj_drop(self.proj(out))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block (Point-MAE ``Block``): self-attention then MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 drop: float = 0.0, attn_drop: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.attn = SelfAttention(dim, heads, qkv_bias=False, attn_drop=attn_drop, proj_drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, dim)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TransformerStack(nn.Module):
    """``blocks`` of ``EncoderBlock``; the positional embedding is re-added before every block."""

    def __init__(self, dim: int, depth: int, heads: int, drop_path: float = 0.0, mlp_ratio: float = 4.0):
        super().__init__()
        rates = torch.linspace(0, drop_path, depth).tolist() if depth > 0 else []  # 0 -> drop_path
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio, r) for r in rates)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:  # (B, T, dim) each
        for block in self.blocks:
            x = block(x + pos)
        return x


def init_trunc_normal(module: nn.Module, std: float = 0.02) -> None:
    """Point-MAE init: Linear/Conv1d weights trunc-normal(std), biases 0, LayerNorm (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
