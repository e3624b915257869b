"""MESC-3D: image -> point cloud, one configurable network (docs/design.md).

``MESC3D(cfg: ExperimentCfg, prior_in_dim=512)``;
``forward(images (B, 3, H, H), prior (B, prior_in_dim) | None) -> points (B, n_points, 3)``.

    img tokens  = image_encoder(images)                                (B, T, D)   T*D = fused width
    pc tokens   = cached Point-MAE tokens of the sphere template        (B, Tp, D)  Tp = 2*trans_dim / D
    p           = telinear(prior)                                       (B, P)      P = prior_dim ("add": T*D)
    F_fused     = MIT(img, pc [, prior tokens]).flatten                 (B, T*D [+ P])
    F           = by ``model.prior_injection``:
                  concat_after_mit  [F_fused ; p]      (default, the paper's final model)
                  add               F_fused + p        (Tab. 6)
                  concat_before_mit p as P/D extra image tokens before MIT, all kept (Tab. 6)
                  fuse_in_mit       p as P/D extra key/value tokens in every MIT cross-attention (Tab. 6)
                  none              F_fused            (no prior: Tab. 3 rows 1-2, Tab. 8 "w/o")
    points      = decoder(F)                                            (B, N, 3)  (see decoder.py)

The sphere template (Fibonacci, ``point_mae.template_points`` points, radius 0.5) is the same for every
sample, so its Point-MAE tokens are computed ONCE, in eval mode under no_grad, and kept in the
persistent buffer ``template_tokens`` (1, Tp, D); ``refresh_template_tokens()`` recomputes it (done by
``load_point_encoder``).  The Point-MAE encoder is frozen and stays in eval mode under ``model.train()``
(the official code ran it in train mode every step, docs/design.md).  ``prior=None`` with a prior mode
means "no prior": the prior feature p is zeros.  Models never read data files; the engine
(``mesc3d.engine.model_io.build_model``) loads the Point-MAE checkpoint, if any.
"""

from __future__ import annotations


import torch
from torch import nn

from mesc3d.config import ENUMS, ExperimentCfg
from mesc3d.errors import ConfigError
from mesc3d.models.decoder import build_decoder, fibonacci_sphere
from mesc3d.models.image_encoder import build_image_encoder
from mesc3d.models.mit import MIT
from mesc3d.models.point_mae import LoadReport, PointMAEEncoder, load_pointmae_checkpoint


PRIOR_MODES = ENUMS["model.prior_injection"]  # one list of the modes: mesc3d.config


def count_parameters(module: nn.Module | None, trainable_only: bool = False) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class MESC3D(nn.Module):
    def __init__(self, cfg: ExperimentCfg, prior_in_dim: int = 512):
        super().__init__()
        m = cfg.model
        if m.prior_injection not in PRIOR_MODES:
            raise ConfigError(f"model.prior_injection {m.prior_injection!r} is not one of {list(PRIOR_MODES)}")
        T, D = m.n_tokens, m.token_dim
        self.cfg, self.prior_injection, self.prior_in_dim = cfg, m.prior_injection, int(prior_in_dim)
        self.token_dim, self.fused_dim, self.n_points = D, T * D, m.n_points
        pm = m.point_mae
        if (2 * pm.trans_dim) % D:
            raise ConfigError(f"Point-MAE output 2*trans_dim={2 * pm.trans_dim} must be divisible by "
                              f"model.token_dim={D} to form point tokens")

        # the clip_* encoders start from the run's CLIP weights (prompt.pretrained) when image_weights is empty
        clip_weights = cfg.prompt.pretrained if m.image_encoder.startswith("clip_") else ""
        self.image_encoder = build_image_encoder(m, cfg.data, clip_weights)  # (B, 3, H, H) -> (B, T, D)
        self.point_encoder = PointMAEEncoder(pm).requires_grad_(False).eval()  # frozen
        self.register_buffer("template", fibonacci_sphere(pm.template_points, 0.5), persistent=False)  # (P, 3)
        self.register_buffer("template_tokens", self.compute_template_tokens())  # (1, Tp, D)
        self.mit = MIT(D, m.mit_heads, m.mit_depth, m.mit_mlp_ratio, m.mit_drop, m.mit_attn_drop, m.mit_drop_path)

        mode = self.prior_injection
        self.prior_width = 0 if mode == "none" else (self.fused_dim if mode == "add" else m.prior_dim)
        if mode in ("concat_before_mit", "fuse_in_mit") and self.prior_width % D:
            raise ConfigError(f"model.prior_dim {m.prior_dim} must be divisible by model.token_dim {D} "
                              f"for prior_injection={mode}")
        self.telinear = nn.Linear(self.prior_in_dim, self.prior_width) if self.prior_width else None
        if self.telinear is not None:
            self.telinear.requires_grad_(m.telinear_trainable)
        extra = self.prior_width if mode in ("concat_after_mit", "concat_before_mit") else 0
        self.decoder_in_dim = self.fused_dim + extra
        self.decoder = build_decoder(m, self.decoder_in_dim)  # (B, C) -> (B, N, 3)

    # ------------------------------------------------------------ frozen point branch
    @torch.no_grad()
    def compute_template_tokens(self) -> torch.Tensor:
        """Fresh eval-mode Point-MAE tokens of the sphere template, (1, Tp, D) float32."""
        was_training = self.point_encoder.training
        self.point_encoder.eval()
        device = self.template.device
        with torch.autocast(device_type=device.type, enabled=False):
            vec = self.point_encoder(self.template[None].float())  # (1, 2*trans_dim)
        self.point_encoder.train(was_training)
        return vec.reshape(1, -1, self.token_dim).float()

    def refresh_template_tokens(self) -> None:
        self.template_tokens.copy_(self.compute_template_tokens())

    def load_point_encoder(self, path) -> LoadReport:
        """Load Point-MAE weights (official or ours) and recompute the cached template tokens."""
        report = load_pointmae_checkpoint(self.point_encoder, path)
        self.refresh_template_tokens()
        return report

    def train(self, mode: bool = True):
        super().train(mode)
        self.point_encoder.eval()  # frozen: BN statistics and drop-path never change
        return self

    # ------------------------------------------------------------ forward
    def prior_feature(self, prior: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor | None:
        """telinear(prior) (B, prior_width); zeros when ``prior`` is None; None in mode ``none``."""
        if self.telinear is None:
            return None
        if prior is None:
            return like.new_zeros(batch, self.prior_width)
        if prior.dim() != 2 or prior.shape != (batch, self.prior_in_dim):
            raise ValueError(f"prior must have shape (B={batch}, prior_in_dim={self.prior_in_dim}), "
                             f"got {tuple(prior.shape)}")
        return self.telinear(prior)

    def fuse(self, images: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Global decoder input F (B, decoder_in_dim)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        B, D = images.shape[0], self.token_dim
        img = self.image_encoder(images)  # (B, T, D)
        pc = self.template_tokens.expand(B, -1, -1)  # (B, Tp, D)
        p = self.prior_feature(prior, B, img)  # (B, P) | None
        mode = self.prior_injection
        if mode == "concat_before_mit":
            img = torch.cat([img, p.reshape(B, -1, D).to(img.dtype)], dim=1)  # (B, T + P/D, D)
        extra = p.reshape(B, -1, D) if mode == "fuse_in_mit" else None
        fused = self.mit(img, pc, extra).reshape(B, -1)  # (B, T*D [+ P])
        if mode == "concat_after_mit":
            return torch.cat([fused, p.to(fused.dtype)], dim=1)  # (B, T*D + P)
        if mode == "add":
            return fused + p
        return fused

    def forward(self, images: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.fuse(images, prior))  # (B, N, 3)

    # ------------------------------------------------------------ parameters
    def trainable_parameters(self, with_prior: bool = True) -> list[nn.Parameter]:
        """Parameters the optimiser should update; ``with_prior=False`` leaves out telinear."""
        return [p for name, p in self.named_parameters()
                if p.requires_grad and (with_prior or not name.startswith("telinear."))]

    def parameter_counts(self) -> dict[str, int]:
        """Trainable / frozen / total counts, overall and per part."""
        parts = {"image_encoder": self.image_encoder, "point_encoder": self.point_encoder, "mit": self.mit,
                 "telinear": self.telinear, "decoder": self.decoder}
        out = {f"{k}_trainable": count_parameters(v, True) for k, v in parts.items()}
        out.update({f"{k}_total": count_parameters(v) for k, v in parts.items()})
        out["trainable"] = count_parameters(self, True)
        out["trainable_without_telinear"] = sum(p.numel() for p in self.trainable_parameters(False))
        out["total"] = count_parameters(self)
        out["frozen"] = out["total"] - out["trainable"]
        return out
