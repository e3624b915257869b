"""Farthest point sampling (FPS) for Point-MAE grouping.

``farthest_point_sample(x (B, N, D), k) -> idx (B, k) long``: start at index 0, then repeatedly take
the point whose squared distance to the already chosen set is largest (ties: lowest index, as
``torch.argmax``).  Deterministic; no randomness.  If all remaining points coincide with chosen
ones (distance 0 everywhere, e.g. duplicate-only clouds) the index 0 is repeated, like the CUDA
reference implementations do.

The fast torch path runs the k iterations vectorised over the batch (O(k*B*N) work, O(B*N)
memory); ``farthest_point_sample_naive`` loops over clouds and iterations in plain Python.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def validate_fps(x: Tensor, k: int) -> None:
    if not isinstance(x, Tensor) or x.dim() != 3 or not x.dtype.is_floating_point:
        raise ValueError(f"x must be a floating tensor of shape (B, N, D); got "
                         f"{getattr(x, 'shape', type(x))}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > x.shape[1]:
        raise ValueError(f"k must be an int in [1, N={x.shape[1]}], got {k!r}")


def farthest_point_sample_naive(x: Tensor, k: int) -> Tensor:
    """Reference FPS: Python loops, one cloud and one new point at a time.  (B, k) long."""
    validate_fps(x, k)
    B, N, _ = x.shape
    out = torch.zeros(B, k, dtype=torch.long, device=x.device)
    for b in range(B):
        pts = x[b].detach()  # (N, D)
        mind = torch.full((N,), float("inf"), dtype=pts.dtype, device=pts.device)
        cur = 0
        for i in range(k):
            out[b, i] = cur
            diff = pts - pts[cur]
            mind = torch.minimum(mind, (diff * diff).sum(-1))
            cur = int(torch.argmax(mind))
    return out


@torch.no_grad()
def farthest_point_sample_torch(x: Tensor, k: int) -> Tensor:
    """Vectorised-over-batch FPS.  (B, k) long, identical to the naive twin."""
    validate_fps(x, k)
    B, N, D = x.shape
    pts = x.detach()
    out = torch.zeros(B, k, dtype=torch.long, device=x.device)
    mind = torch.full((B, N), float("inf"), dtype=pts.dtype, device=x.device)
    cur = torch.zeros(B, dtype=torch.long, device=x.device)
    ar = torch.arange(B, device=x.device)
    for i in range(1, k):
        c = pts[ar, cur]  # (B, D)
        diff = pts - c[:, None, :]  # (B, N, D)
        torch.minimum(mind, (diff * diff).sum(-1), out=mind)
        cur = mind.argmax(1)  # (B,)
        out[:, i] = cur
    return out
