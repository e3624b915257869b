"""Point-MAE encoder (fine-tune ``PointTransformer`` of Pang-Yatian/Point-MAE) and its checkpoint loader.

``PointMAEEncoder(cfg: PointMAECfg)``: ``forward(points (B, N, 3)) -> (B, 2*trans_dim)``
  1. grouping: FPS picks ``num_group`` centres (start index 0), kNN takes ``group_size`` neighbours,
     each group re-expressed relative to its centre -> (B, G, S, 3);
  2. mini-PointNet patch embedding (``encoder``): Conv 3->128, BN, ReLU, Conv 128->256; max-pool;
     concat the pooled vector onto every point (512); Conv 512->512, BN, ReLU, Conv 512->trans_dim;
     max-pool -> (B, G, trans_dim);
  3. ``pos_embed`` Linear 3->128, GELU, Linear 128->trans_dim on the centres; learnable ``cls_token``
     and ``cls_pos`` prepended -> (B, 1+G, trans_dim);
  4. ``blocks``: ``depth`` pre-norm blocks (MLP ratio 4, no qkv bias, drop-path 0->drop_path), the
     positional embedding re-added before every block; ``norm`` LayerNorm;
  5. output concat(CLS, max over the G group tokens) -> (B, 2*trans_dim).

Parameter names equal the official ones, so the official files load directly:
``cls_token``, ``cls_pos``, ``encoder.first_conv.{0,1,3}.*``, ``encoder.second_conv.{0,1,3}.*``,
``pos_embed.{0,2}.*``, ``blocks.blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``.

``load_pointmae_checkpoint(encoder, path) -> LoadReport`` reads (``torch.load(weights_only=True)``)
- ``modelnet_1k.pth`` layout: ``{"base_model": {cls_token, cls_pos, encoder..., cls_head_finetune...}, ...}``;
- ``pretrain.pth`` layout: ``{"base_model": {"MAE_encoder.encoder...", "MAE_encoder.blocks...", mask_token,
  MAE_decoder..., increase_dim...}}`` (no CLS: ``cls_token``/``cls_pos`` stay at their init);
- our ``mesc3d pretrain-pointmae`` output (modelnet_1k layout) and a bare state dict;
``module.`` (DataParallel) and then ``MAE_encoder.``/``base_model.`` prefixes are stripped.  A file that
needs arbitrary unpickling (pickled Python objects) is refused with ``BadInputError``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from mesc3d.config import PointMAECfg
from mesc3d.errors import BadInputError
from mesc3d.models.layers import TransformerStack, init_trunc_normal
from mesc3d.ops import farthest_point_sample, knn
from mesc3d.safe_load import load_torch

log = logging.getLogger(__name__)


class PatchGrouper(nn.Module):
    """FPS centres + kNN neighbourhoods: (B, N, 3) -> groups (B, G, S, 3) (centred), centres (B, G, 3)."""

    def __init__(self, num_group: int, group_size: int):
        super().__init__()
        self.num_group, self.group_size = num_group, group_size

    def forward(self, xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, N, _ = xyz.shape
        if N < max(self.num_group, self.group_size):
            raise ValueError(f"Point-MAE grouping needs >= max(num_group={self.num_group}, "
                             f"group_size={self.group_size}) points per cloud, got N={N}")
        centre_idx = farthest_point_sample(xyz, self.num_group)  # (B, G)
        center = torch.gather(xyz, 1, centre_idx[..., None].expand(-1, -1, 3))  # (B, G, 3)
        idx = knn(xyz, center, self.group_size)  # (B, G, S)
        flat = idx.reshape(B, -1, 1).expand(-1, -1, 3)  # (B, G*S, 3)
        groups = torch.gather(xyz, 1, flat).reshape(B, self.num_group, self.group_size, 3)
        return groups - center[:, :, None, :], center


class MiniPointNet(nn.Module):
    """Patch embedding: (B, G, S, 3) -> (B, G, out_dim)."""

    def __init__(self, out_dim: int):
        super().__init__()
        self.out_dim = out_dim
        self.first_conv = nn.Sequential(nn.Conv1d(3, 128, 1), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
                                        nn.Conv1d(128, 256, 1))
        self.second_conv = nn.Sequential(nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                                         nn.Conv1d(512, out_dim, 1))

    def forward(self, groups: torch.Tensor) -> torch.Tensor:
        B, G, S, _ = groups.shape
        x = groups.reshape(B * G, S, 3).transpose(1, 2)  # (BG, 3, S)
        feat = self.first_conv(x)  # (BG, 256, S)
        pooled = feat.max(dim=2, keepdim=True).values  # (BG, 256, 1)
        feat = torch.cat([pooled.expand(-1, -1, S), feat], dim=1)  # (BG, 512, S)
        feat = self.second_conv(feat)  # (BG, out_dim, S)
        return feat.max(dim=2).values.reshape(B, G, self.out_dim)


def _pos_mlp(trans_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, trans_dim))


class PointMAEEncoder(nn.Module):
    """Point-MAE fine-tune encoder; ``forward(points (B, N, 3)) -> (B, 2*trans_dim)``."""

    def __init__(self, cfg: PointMAECfg):
        super().__init__()
        self.cfg = cfg
        d = cfg.trans_dim
        self.out_dim = 2 * d
        self.group_divider = PatchGrouper(cfg.num_group, cfg.group_size)
        self.encoder = MiniPointNet(d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = _pos_mlp(d)
        self.blocks = TransformerStack(d, cfg.depth, cfg.heads, drop_path=cfg.drop_path)
        self.norm = nn.LayerNorm(d)
        init_trunc_normal(self)  # official "training from scratch" init
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.cls_pos, std=0.02)

    def tokens(self, groups: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
        """Transformer over [CLS; group tokens]: (B, G, S, 3), (B, G, 3) -> (B, 1+G, trans_dim)."""
        x = self.encoder(groups)  # (B, G, d)
        B = x.shape[0]
        x = torch.cat([self.cls_token.expand(B, -1, -1).to(x.dtype), x], dim=1)  # (B, 1+G, d)
        pos = self.pos_embed(center)  # (B, G, d)
        pos = torch.cat([self.cls_pos.expand(B, -1, -1).to(pos.dtype), pos], dim=1)
        return self.norm(self.blocks(x, pos))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if points.dim() != 3 or points.shape[-1] != 3:
            raise ValueError(f"PointMAEEncoder expects points of shape (B, N, 3), got {tuple(points.shape)}")
        groups, center = self.group_divider(points)  # (B, G, S, 3), (B, G, 3)
        x = self.tokens(groups, center)  # (B, 1+G, d)
        return torch.cat([x[:, 0], x[:, 1:].max(dim=1).values], dim=-1)  # (B, 2d)


# ------------------------------------------------------------------ checkpoint loading
@dataclass
class LoadReport:
    path: str
    layout: str  # "finetune" (modelnet_1k.pth / ours) | "pretrain" (pretrain.pth) | "state_dict"
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.path}: layout={self.layout}, loaded {len(self.loaded)} tensors, "
                f"missing {self.missing or 'none'}, unexpected {len(self.unexpected)}"
                + (f" (e.g. {self.unexpected[:3]})" if self.unexpected else ""))


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def extract_encoder_state(obj: object, path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Official/ours checkpoint -> (state dict with PointMAEEncoder names, layout)."""
    if isinstance(obj, dict) and isinstance(obj.get("base_model"), dict):
        state, layout = obj["base_model"], "finetune"
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, layout = obj, "state_dict"
    else:
        keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise BadInputError(path, f"not a Point-MAE checkpoint: expected a dict with 'base_model' "
                            f"(official layout) or a state dict of tensors, got {keys}")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        key = _strip(key, "module.")
        if key.startswith("MAE_encoder."):
            layout = "pretrain"
            key = _strip(key, "MAE_encoder.")
        key = _strip(key, "base_model.")
        out[key] = value
    return out, layout


def load_pointmae_checkpoint(encoder: PointMAEEncoder, path: str | Path) -> LoadReport:
    """Load official ``modelnet_1k.pth``/``pretrain.pth`` (or ours) into ``encoder`` (non-strict).

    Missing keys (``cls_token``/``cls_pos`` for ``pretrain.pth``) keep their init; unexpected keys
    (classification head, MAE decoder) are ignored; both are listed in the report.  A shape mismatch
    (different ``trans_dim``/``encoder`` width) or a file without any encoder key is a ``BadInputError``.
    """
    state, layout = extract_encoder_state(load_torch(path), path)
    own = encoder.state_dict()
    usable = {k: v for k, v in state.items() if k in own}
    bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in usable.items()
           if v.shape != own[k].shape]
    if bad:
        raise BadInputError(path, f"Point-MAE weights do not fit the configured encoder ({bad[0]}"
                            f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}); check model.point_mae")
    if not usable:
        raise BadInputError(path, f"no Point-MAE encoder weights found (keys like {sorted(state)[:4]})")
    result = encoder.load_state_dict(usable, strict=False)
    report = LoadReport(str(path), layout, loaded=sorted(usable), missing=sorted(result.missing_keys),
                        unexpected=sorted(k for k in state if k not in own))
    log.info("Point-MAE checkpoint %s", report.summary())
    return report


def official_state_dict(encoder: PointMAEEncoder) -> dict[str, torch.Tensor]:
    """Encoder weights under the official ``modelnet_1k.pth`` names (CPU, contiguous copies)."""
    return {k: v.detach().cpu().clone().contiguous() for k, v in encoder.state_dict().items()}
