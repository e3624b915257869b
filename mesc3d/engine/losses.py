"""Stage-2 reconstruction loss (docs/design.md): CD-L1 by default, CD-L2, or their sum.

It is :func:`mesc3d.ops.chamfer_distance` (batch mean).  On the CPU the NN indices come from the
exact float64 KD-tree (several times faster there than the chunked matmul); on a GPU from the
default backend.  The gradient flows through the exact gather of the neighbours.  Under autocast
(bf16/fp16 training on a GPU) the loss runs with autocast off on float32 predictions: a half-precision
search picks wrong neighbours and a half-precision √d of small distances loses the signal.
"""

from __future__ import annotations

import torch

from mesc3d.ops import chamfer_distance
from mesc3d.registries import LOSSES


def loss_backend(device: torch.device) -> str | None:
    """NN-search backend of the training loss and validation on ``device``."""
    return "kdtree" if device.type == "cpu" else None


def reconstruction_loss(pred: torch.Tensor, gt: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Scalar batch-mean loss for pred (B, N, 3), gt (B, G, 3).  ``kind``: l1 | l2 | l1+l2."""
    _check(kind)
    with torch.autocast(pred.device.type, enabled=False):  # the search and the gather in float32 (or wider)
        if pred.dtype in (torch.float16, torch.bfloat16):
            pred = pred.float()
        return chamfer_distance(pred, gt, norm=kind, backend=loss_backend(pred.device))


def _check(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; expected one of {', '.join(LOSSES)} (mesc3d.registries.LOSSES)")
