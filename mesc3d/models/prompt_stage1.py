"""Stage 1 of MESC-3D (3DSPL): align learnable class prompts with frozen point-cloud features.

    features (B, F) --point_proj (Linear F->D, learned)--> pc (B, D)        F = 2*trans_dim (768)
    class names (C)  --PromptBank (DPT, frozen tower)-->    text (C, D)      D = 512 | 384
    logits = s * norm(pc) @ norm(text[class_ids]).T         (B, B)
    loss   = ½ [CE(logits, targets) + CE(logits.T, targets.T)]   (symmetric InfoNCE, ULIP/CLIP Eq. 8)

Temperature (``prompt.temperature``):
- ``learnable`` (default, the paper's text): s = exp(logit_scale), logit_scale init ln(1/0.07), clamped
  to [0, ln 100] after every optimiser step (CLIP);
- ``fixed1``: s = 1, the official code (its logit_scale is computed but never used).

Positives (``prompt.class_aware_positives``): False = the diagonal only (official; same-class pairs
in a batch are false negatives because their prompts are identical); True = every same-class pair
is a positive and each row's loss is -log(sum of its positives' softmax mass) (multi-positive
InfoNCE).  Note: soft uniform targets over the positives would be NO change at all here, since
same-class text columns are identical; the log-sum form changes the text->point direction (a
class prompt need only be close to its class's points as a group) and lowers the floor to 0.

Only the prompt parameters, ``point_proj`` and ``logit_scale`` train.  ``telinear`` (prior -> the
reconstruction model's prior width) lives in the reconstruction model (``model.telinear_trainable``,
docs/design.md/§11.11); stage 1 outputs the RAW class priors (C, D) from ``PromptBank``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mesc3d.config import PromptCfg
from mesc3d.models.text_prompt import PromptBank
from mesc3d.models.text_towers import FrozenTower

LOGIT_SCALE_INIT = math.log(1 / 0.07)
LOGIT_SCALE_MAX = math.log(100.0)


def positive_mask(class_ids: torch.Tensor | None, batch: int, class_aware: bool) -> torch.Tensor:
    """(B, B) bool: the diagonal, or every same-class pair."""
    if not class_aware or class_ids is None:
        return torch.eye(batch, dtype=torch.bool)
    return class_ids[:, None] == class_ids[None, :]


def contrastive_loss(pc: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor | float,
                     class_ids: torch.Tensor | None = None, class_aware: bool = False) -> torch.Tensor:
    """Symmetric InfoNCE between (B, D) point and (B, D) text embeddings (normalised here).

    Per row: -log(sum over positive columns of softmax(row)); with the diagonal only this is the
    plain CE(S, diag) of the official code.
    """
    if pc.ndim != 2 or pc.shape != txt.shape:
        raise ValueError(f"contrastive_loss expects pc and txt of equal shape (B, D), got {tuple(pc.shape)} "
                         f"and {tuple(txt.shape)}")
    pc, txt = F.normalize(pc, dim=-1), F.normalize(txt, dim=-1)
    logits = scale * pc @ txt.T  # (B, B) rows = points, cols = texts
    pos = positive_mask(class_ids, pc.shape[0], class_aware).to(logits.device)  # symmetric
    neg_inf = torch.finfo(logits.dtype).min

    def one_way(lg: torch.Tensor) -> torch.Tensor:
        return (lg.logsumexp(1) - lg.masked_fill(~pos, neg_inf).logsumexp(1)).mean()

    return 0.5 * (one_way(logits) + one_way(logits.T))


def contrastive_loss_naive(pc: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor | float,
                           class_ids: torch.Tensor | None = None, class_aware: bool = False) -> torch.Tensor:
    """Loop twin of ``contrastive_loss``."""
    b = pc.shape[0]
    total = pc.new_zeros(())
    for a, c in ((pc, txt), (txt, pc)):
        for i in range(b):
            sims = torch.stack([scale * F.cosine_similarity(a[i], c[j], dim=0) for j in range(b)])  # (B,)
            pos = [j for j in range(b) if (j == i) or (class_aware and class_ids is not None
                                                        and int(class_ids[j]) == int(class_ids[i]))]
            total = total + (torch.logsumexp(sims, 0) - torch.logsumexp(sims[pos], 0)) / b
    return 0.5 * total


class Stage1Model(nn.Module):
    """PromptBank + point projection + temperature; ``forward(features, class_ids) -> loss``."""

    def __init__(self, cfg: PromptCfg, class_names: Sequence[str], feat_dim: int,
                 tower: FrozenTower | None = None):
        super().__init__()
        self.cfg = cfg
        self.bank = PromptBank(cfg, class_names, tower)
        self.point_proj = nn.Linear(feat_dim, self.bank.out_dim)  # (B, F) -> (B, D)
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT),
                                        requires_grad=cfg.temperature == "learnable")
        self.feat_dim = feat_dim

    @property
    def class_names(self) -> list[str]:
        return self.bank.class_names

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = self.bank.prompt_parameters() + list(self.point_proj.parameters())
        if self.cfg.temperature == "learnable":
            params.append(self.logit_scale)
        return params

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen tower (the tower is rebuilt from the config)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items() if ".tower." not in f".{k}"}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        result = self.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if ".tower." not in f".{k}"]
        if missing or result.unexpected_keys:
            raise KeyError(f"prompt state mismatch: missing {missing}, unexpected {result.unexpected_keys}")

    def scale(self) -> torch.Tensor:
        if self.cfg.temperature == "fixed1":
            return torch.ones((), device=self.logit_scale.device)
        return self.logit_scale.exp()

    @torch.no_grad()
    def clamp_temperature(self) -> None:
        self.logit_scale.clamp_(0.0, LOGIT_SCALE_MAX)

    def embed_points(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != self.feat_dim:
            raise ValueError(f"features must be (B, {self.feat_dim}), got {tuple(features.shape)}")
        return self.point_proj(features)  # (B, D)

    def forward(self, features: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
        """features (B, F), class_ids (B,) into ``class_names`` -> scalar loss."""
        text = self.bank()  # (C, D): every seen class encoded once per step
        pc = self.embed_points(features)  # (B, D)
        return contrastive_loss(pc, text[class_ids], self.scale(), class_ids, self.cfg.class_aware_positives)

    @torch.no_grad()
    def evaluate(self, features: torch.Tensor, class_ids: torch.Tensor, batch: int = 4096) -> dict[str, float]:
        """Mean diagonal cosine (model selection) and top-1 retrieval point -> class prompt."""
        was = self.training
        self.eval()
        text = F.normalize(self.bank(), dim=-1)  # (C, D)
        cos_sum, hits, n = 0.0, 0, features.shape[0]
        for s in range(0, n, batch):
            pc = F.normalize(self.embed_points(features[s: s + batch]), dim=-1)  # (b, D)
            sims = pc @ text.T  # (b, C)
            ids = class_ids[s: s + batch]
            cos_sum += float(sims.gather(1, ids[:, None]).sum())
            hits += int((sims.argmax(1) == ids).sum())
        self.train(was)
        return {"diag_cos": cos_sum / max(n, 1), "top1": hits / max(n, 1), "n": n,
                "chance": 1.0 / len(self.class_names)}

    @torch.no_grad()
    def priors(self, names: Sequence[str]) -> torch.Tensor:
        """Raw prior vectors (C, D) for any class names (seen or unseen), eval mode (no dropout)."""
        was = self.training
        self.eval()
        out = self.bank.encode(list(names)).float()
        self.train(was)
        return out
