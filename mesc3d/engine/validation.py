"""Validation and test-time prediction: deterministic passes over a split (eval mode, no grad)."""

from __future__ import annotations

from typing import Any

import torch

from mesc3d.engine.losses import loss_backend
from mesc3d.metric_spec import CD_L1, CD_L2
from mesc3d.engine.runtime import iterate_batches
from mesc3d.ops.chamfer import chamfer_from_sq_dists, sq_dists


@torch.no_grad()
def predict(model, dataset, priors: torch.Tensor | None, device: torch.device, batch_size: int,
            seed: int = 0, use_prior: bool = True):
    """Yield (batch, prediction (B, N, 3) on CPU) over the whole dataset in index order."""
    was_training = model.training
    model.eval()
    try:
        for batch in iterate_batches(dataset, list(range(len(dataset))), batch_size, seed=seed, epoch=0):
            prior = None
            if priors is not None and use_prior:
                cls = batch["class_id"].to(device)
                if (cls < 0).any():
                    raise ValueError("an item's category has no prior (class_id -1)")
                prior = priors[cls]
            pred = model(batch["image"].to(device), prior)
            yield batch, pred.float().cpu()
    finally:
        model.train(was_training)


@torch.no_grad()
def validate(model, dataset, priors, device, cfg) -> dict[str, Any]:
    """Mean loss, CD-L1x100 and CD-L2x1000 over the split (pooled over shapes), one NN search a batch."""
    n, loss_sum, l1_sum, l2_sum = 0, 0.0, 0.0, 0.0
    for batch, pred in predict(model, dataset, priors, device, cfg.eval.batch_size, seed=cfg.seed):
        gt = batch["points"].float()
        d1, d2, _, _ = sq_dists(pred, gt, backend=loss_backend(pred.device))  # (B, G), (B, N)
        l1, l2 = chamfer_from_sq_dists(d1, d2, norm="l1"), chamfer_from_sq_dists(d1, d2, norm="l2")  # (B,)
        loss = chamfer_from_sq_dists(d1, d2, norm=cfg.train.loss)  # (B,) the training loss (a Chamfer norm)
        l1_sum, l2_sum = l1_sum + float(l1.sum()), l2_sum + float(l2.sum())
        loss_sum += float(loss.mean()) * gt.shape[0]
        n += gt.shape[0]
    n = max(n, 1)
    return {"loss": loss_sum / n, CD_L1.column: CD_L1.scale * l1_sum / n, CD_L2.column: CD_L2.scale * l2_sum / n}
