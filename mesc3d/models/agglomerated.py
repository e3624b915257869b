"""Agglomerated image encoder: several 2D teachers fused into the MIT's image tokens.

``AgglomeratedEncoder(teachers, fusion, n_tokens T, token_dim D)``;
``forward(images (B, 3, H, W) in [0, 1]) -> (B, T, D)``.  For teacher k (``mesc3d.models.teachers``):

    g_k = teacher_k(images)                      (B, C_k)   frozen teachers: no_grad, eval mode
    Z_k = reshape(P_k LN_k(g_k))                 (B, T, D)  LN_k: LayerNorm(C_k) puts the teachers'
                                                            very different feature scales on one footing;
                                                            P_k: Linear(C_k, T*D), trainable

Fusion (``model.teacher_fusion``):

    uncertainty  Z = sum_k a_k Z_k,   a_k = (0.5 / sigma_k^2) / sum_j (0.5 / sigma_j^2)
                                          = softmax_k(-s_k),  s_k = log sigma_k^2 learned, init 0 (sigma = 1)
    mean         Z = (1/K) sum_k Z_k                    (= uncertainty at its initialisation)
    concat       Z = W [Z_1; ...; Z_K]                  W: Linear(K*D, D) per token, (B, T, K*D) -> (B, T, D)

Why this form of the CUA-O3D weights: CUA-O3D's ``AutomaticWeightedLoss`` sums
0.5/sigma_k^2 * L_k + log(1 + sigma_k^2) over one distillation loss L_k per teacher.  Here there is one
loss (the reconstruction of the fused tokens), so the teachers' precisions 0.5/sigma_k^2 weight their
token sets as an inverse-variance (heteroscedastic maximum-likelihood) average.  Normalising the weights
is what keeps that well posed: unnormalised, shrinking every sigma would scale the tokens up for free,
and the MIT's LayerNorms would make that scale meaningless; the log(1 + sigma^2) term, whose job is to
stop every sigma from growing to turn its loss off, has nothing to balance and is not used.  The learned
sigma_k (a teacher with a larger sigma contributes less) are logged per epoch (``fusion_report``).
"""

from __future__ import annotations

import torch
from torch import nn

from mesc3d.config import ENUMS, DataCfg, ModelCfg
from mesc3d.errors import ConfigError
from mesc3d.models.teachers import Teacher, build_teacher

FUSIONS = ENUMS["model.teacher_fusion"]


class AgglomeratedEncoder(nn.Module):
    def __init__(self, teachers: list[Teacher], fusion: str, n_tokens: int, token_dim: int):
        super().__init__()
        if fusion not in FUSIONS:
            raise ConfigError(f"model.teacher_fusion {fusion!r} is not one of {list(FUSIONS)}")
        if not teachers:
            raise ConfigError("model.teachers is empty: the agglomerated encoder needs at least one teacher")
        self.teachers = nn.ModuleList(teachers)
        self.names = [t.name for t in teachers]
        self.fusion, self.n_tokens, self.token_dim = fusion, n_tokens, token_dim
        self.norms = nn.ModuleList(nn.LayerNorm(t.out_dim) for t in teachers)
        self.projections = nn.ModuleList(nn.Linear(t.out_dim, n_tokens * token_dim) for t in teachers)
        K = len(teachers)
        self.log_var = nn.Parameter(torch.zeros(K)) if fusion == "uncertainty" else None  # s_k = log sigma_k^2
        self.mix = nn.Linear(K * token_dim, token_dim) if fusion == "concat" else None

    def weights(self) -> torch.Tensor:
        """Fusion weights a_k (K,), summing to 1 (uncertainty: precision-normalised; mean: 1/K)."""
        K = len(self.teachers)
        if self.log_var is None:
            return torch.full((K,), 1.0 / K, device=self.projections[0].weight.device)
        precision = 0.5 * torch.exp(-self.log_var)  # 0.5 / sigma_k^2
        return precision / precision.sum()

    def sigmas(self) -> torch.Tensor | None:
        return None if self.log_var is None else torch.exp(0.5 * self.log_var)

    def teacher_tokens(self, images: torch.Tensor) -> list[torch.Tensor]:
        B = images.shape[0]
        out = []
        for teacher, norm, proj in zip(self.teachers, self.norms, self.projections):
            g = teacher(images).float()  # (B, C_k)
            out.append(proj(norm(g)).reshape(B, self.n_tokens, self.token_dim))  # (B, T, D)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"image encoder expects images of shape (B, 3, H, W), got {tuple(images.shape)}")
        tokens = self.teacher_tokens(images)  # K x (B, T, D)
        if self.mix is not None:
            return self.mix(torch.cat(tokens, dim=-1))  # (B, T, K*D) -> (B, T, D)
        a = self.weights().to(tokens[0].dtype)  # (K,)
        return torch.einsum("k,kbtd->btd", a, torch.stack(tokens))  # (B, T, D)

    def fusion_report(self) -> list[dict]:
        """Per teacher: name, sigma (NaN unless uncertainty fusion) and fusion weight (NaN for concat)."""
        with torch.no_grad():
            sig = self.sigmas()
            w = None if self.mix is not None else self.weights()
        return [{"teacher": n, "sigma": float("nan") if sig is None else float(sig[k]),
                 "weight": float("nan") if w is None else float(w[k])} for k, n in enumerate(self.names)]


def build_agglomerated(model_cfg: ModelCfg, teachers: tuple[str, ...] | None = None) -> AgglomeratedEncoder:
    """``teachers`` None = ``model.teachers`` (image_encoder=agglomerated); one name = that teacher alone."""
    names = tuple(model_cfg.teachers) if teachers is None else teachers
    fusion = model_cfg.teacher_fusion if len(names) > 1 else "mean"
    return AgglomeratedEncoder([build_teacher(n, model_cfg) for n in names], fusion,
                               model_cfg.n_tokens, model_cfg.token_dim)


def build_encoder(model_cfg: ModelCfg, data_cfg: DataCfg, clip_weights: str = "",
                  teachers: tuple[str, ...] | None = None) -> AgglomeratedEncoder:
    """Registry builder of ``image_encoder=agglomerated`` and of the one-teacher encoders (``teachers``)."""
    return build_agglomerated(model_cfg, teachers)
