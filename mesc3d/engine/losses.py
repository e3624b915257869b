"""Stage-2 reconstruction losses (spec §4): CD-L1 by default, CD-L2, or their sum.

Both are built on ``mesc3d.ops.nearest_sq_dist`` (NN indices without grad — a KD-tree on CPU, the
chunked/Triton search on GPU — then an exact differentiable gather).  CD-L1 takes the square root of squared NN distances; the clamp keeps the gradient finite
where a predicted point coincides with a GT point (d = 0), which the official CUDA loss ignores.
"""

from __future__ import annotations

import torch

from mesc3d.ops import nearest_sq_dist

_EPS = 1e-12


def chamfer_terms(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared NN distances gt->pred (B, G) and pred->gt (B, N) for pred (B, N, 3), gt (B, G, 3)."""
    if pred.ndim != 3 or pred.shape[-1] != 3 or gt.ndim != 3 or gt.shape[-1] != 3:
        raise ValueError(f"expected pred (B, N, 3) and gt (B, G, 3), got {tuple(pred.shape)} and {tuple(gt.shape)}")
    # CPU: exact float64 KD-tree search (several times faster than the chunked matmul); GPU: auto
    backend = "kdtree" if pred.device.type == "cpu" else None
    d_gt, _, d_pred, _ = nearest_sq_dist(gt, pred, backend=backend)
    return d_gt, d_pred


def reconstruction_loss(pred: torch.Tensor, gt: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Scalar batch-mean loss.  ``l1``: ½(mean √d1 + mean √d2); ``l2``: mean d1 + mean d2."""
    d1, d2 = chamfer_terms(pred, gt)
    l1 = 0.5 * (d1.clamp_min(_EPS).sqrt().mean(1) + d2.clamp_min(_EPS).sqrt().mean(1))
    l2 = d1.mean(1) + d2.mean(1)
    if kind == "l1":
        return l1.mean()
    if kind == "l2":
        return l2.mean()
    if kind == "l1+l2":
        return (l1 + l2).mean()
    raise ValueError(f"unknown loss {kind!r}; expected l1, l2 or l1+l2")
