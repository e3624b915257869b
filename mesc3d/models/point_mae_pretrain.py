"""Point-MAE masked-autoencoder objective (Pang-Yatian/Point-MAE ``Point_MAE``), for ``mesc3d pretrain-pointmae``.

``PointMAEPretrain(cfg: PointMAECfg, mask_ratio)``; ``forward(points (B, N, 3)) -> loss`` (scalar):
  1. group the cloud into G patches (FPS + kNN, centred), embed every patch with the encoder's
     mini-PointNet -> (B, G, d);
  2. mask ``int(mask_ratio * G)`` random patches per cloud (torch RNG: seeded runs are exact);
  3. encode the visible tokens with the encoder's ``pos_embed``/``blocks``/``norm`` (no CLS, as the
     official ``MaskTransformer``) -> (B, V, d);
  4. light decoder: append a learnable ``mask_token`` for every masked patch, add ``decoder_pos_embed``
     of all centres, ``decoder_depth`` pre-norm blocks, LayerNorm on the masked tokens -> (B, M, d);
  5. ``increase_dim`` Conv1d d -> 3*S predicts every masked patch (S points, centred) -> (B*M, S, 3);
  6. loss = Chamfer-L2 (mean squared NN distance both ways, summed; ``mesc3d.ops.chamfer_distance``)
     between predicted and true masked patches, averaged over patches.

The encoder part is a full ``PointMAEEncoder`` (attribute ``encoder_model``), so after pretraining
``official_state_dict(model.encoder_model)`` writes the ``modelnet_1k.pth`` key layout (its CLS token is
untouched by pretraining, exactly like the official ``pretrain.pth`` -> fine-tune path).
"""

from __future__ import annotations

import torch
from torch import nn

from mesc3d.config import PointMAECfg
from mesc3d.models.layers import TransformerStack, init_trunc_normal
from mesc3d.models.point_mae import PointMAEEncoder, _pos_mlp
from mesc3d.ops import chamfer_distance


def random_patch_mask(batch: int, groups: int, n_mask: int, device: torch.device) -> torch.Tensor:
    """(B, G) bool, exactly ``n_mask`` True per row, positions uniform (torch global RNG)."""
    order = torch.rand(batch, groups, device=device).argsort(dim=1)  # (B, G)
    mask = torch.zeros(batch, groups, dtype=torch.bool, device=device)
    return mask.scatter_(1, order[:, :n_mask], True)


class PointMAEPretrain(nn.Module):
    def __init__(self, cfg: PointMAECfg, mask_ratio: float = 0.6):
        super().__init__()
        n_mask = int(mask_ratio * cfg.num_group)
        if not 0 < n_mask < cfg.num_group:
            raise ValueError(f"mask_ratio {mask_ratio} must mask between 1 and num_group-1 "
                             f"(= {cfg.num_group - 1}) patches, gives {n_mask}")
        self.cfg, self.mask_ratio, self.n_mask = cfg, mask_ratio, n_mask
        d = cfg.trans_dim
        self.encoder_model = PointMAEEncoder(cfg)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.decoder_pos_embed = _pos_mlp(d)
        self.decoder = TransformerStack(d, cfg.decoder_depth, cfg.decoder_heads, drop_path=cfg.drop_path)
        self.decoder_norm = nn.LayerNorm(d)
        self.increase_dim = nn.Conv1d(d, 3 * cfg.group_size, 1)
        init_trunc_normal(self.decoder_pos_embed)
        for m in list(self.decoder.modules()) + [self.decoder_norm]:  # official decoder: xavier init
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, points: torch.Tensor, return_parts: bool = False):
        if points.dim() != 3 or points.shape[-1] != 3:
            raise ValueError(f"PointMAEPretrain expects points of shape (B, N, 3), got {tuple(points.shape)}")
        enc = self.encoder_model
        groups, center = enc.group_divider(points)  # (B, G, S, 3), (B, G, 3)
        B, G, S, _ = groups.shape
        mask = random_patch_mask(B, G, self.n_mask, points.device)  # (B, G)
        M, V = self.n_mask, G - self.n_mask
        tokens = enc.encoder(groups)  # (B, G, d)
        d = tokens.shape[-1]
        x_vis = tokens[~mask].reshape(B, V, d)
        c_vis, c_mask = center[~mask].reshape(B, V, 3), center[mask].reshape(B, M, 3)
        x_vis = enc.norm(enc.blocks(x_vis, enc.pos_embed(c_vis)))  # (B, V, d)
        pos_full = torch.cat([self.decoder_pos_embed(c_vis), self.decoder_pos_embed(c_mask)], dim=1)
        x_full = torch.cat([x_vis, self.mask_token.expand(B, M, -1).to(x_vis.dtype)], dim=1)  # (B, G, d)
        x_rec = self.decoder_norm(self.decoder(x_full, pos_full)[:, -M:])  # (B, M, d)
        pred = self.increase_dim(x_rec.transpose(1, 2)).transpose(1, 2).reshape(B * M, S, 3)
        gt = groups[mask].reshape(B * M, S, 3)
        loss = chamfer_distance(pred.float(), gt.float(), norm="l2", batch_reduction="pooled")  # (B*M) patches
        if return_parts:
            return loss, {"pred": pred, "gt": gt, "mask": mask}
        return loss

