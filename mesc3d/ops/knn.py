"""k nearest neighbours of group centres (Point-MAE grouping).

``knn(x (B, N, D), centers (B, G, D), k) -> idx (B, G, k) long`` -- for every centre the indices of
its k nearest points of x, sorted by increasing squared Euclidean distance.  Exact difference-form
distances; among exactly tied distances the fast path may order/choose differently from the naive
twin (which uses a stable sort, i.e. lowest index first), the distances are the same.

Fast path: chunks of centres (memory-bounded, at most ``max_block`` distance elements at a time)
and ``torch.topk``.  ``knn_naive``: full broadcast, stable sort.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

DEFAULT_MAX_BLOCK = 1 << 22


def validate_knn(x: Tensor, centers: Tensor, k: int) -> None:
    if not (isinstance(x, Tensor) and isinstance(centers, Tensor)) or x.dim() != 3 or centers.dim() != 3:
        raise ValueError(f"x must be (B, N, D) and centers (B, G, D); got {getattr(x, 'shape', x)} and "
                         f"{getattr(centers, 'shape', centers)}")
    if x.shape[0] != centers.shape[0] or x.shape[2] != centers.shape[2]:
        raise ValueError(f"x (B, N, D) and centers (B, G, D) must agree in B and D; got {tuple(x.shape)} "
                         f"and {tuple(centers.shape)}")
    if x.dtype != centers.dtype or not x.dtype.is_floating_point:
        raise TypeError(f"x and centers must share one floating dtype; got {x.dtype}, {centers.dtype}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > x.shape[1]:
        raise ValueError(f"k must be an int in [1, N={x.shape[1]}], got {k!r}")


def _sq_dist_block(c: Tensor, x: Tensor) -> Tensor:
    diff = c[:, :, None, :] - x[:, None, :, :]  # (B, g, N, D)
    return (diff * diff).sum(-1)  # (B, g, N)


def knn_naive(x: Tensor, centers: Tensor, k: int) -> Tensor:
    """Reference kNN: full (B, G, N) distances, stable sort, first k.  (B, G, k) long."""
    validate_knn(x, centers, k)
    d = _sq_dist_block(centers.detach(), x.detach())
    return torch.sort(d, dim=2, stable=True).indices[:, :, :k]


@torch.no_grad()
def knn_torch(x: Tensor, centers: Tensor, k: int, max_block: int = DEFAULT_MAX_BLOCK) -> Tensor:
    """Chunked top-k kNN.  (B, G, k) long, sorted by distance."""
    validate_knn(x, centers, k)
    B, N, D = x.shape
    G = centers.shape[1]
    xd, cd = x.detach(), centers.detach()
    g = max(1, min(G, max_block // max(1, B * N * D)))
    out = torch.empty(B, G, k, dtype=torch.long, device=x.device)
    for s in range(0, G, g):
        e = min(G, s + g)
        d = _sq_dist_block(cd[:, s:e], xd)  # (B, g, N)
        out[:, s:e] = d.topk(k, dim=2, largest=False, sorted=True).indices
    return out
