"""Point-cloud ops: nearest-neighbour squared distances (Chamfer core), FPS and kNN.

Public API (contracts.md):

- ``nearest_sq_dist(x (B,N,3), y (B,M,3), x_lengths=None, y_lengths=None, *, backend=None,
  index_dtype=None) -> (d_xy (B,N), idx_xy (B,N) long, d_yx (B,M), idx_yx (B,M) long)`` --
  squared distances, differentiable w.r.t. x and y; ``nearest_sq_dist_naive`` same signature.
- ``farthest_point_sample(x (B,N,3), k, *, backend=None) -> (B,k) long`` (starts at index 0);
  ``farthest_point_sample_naive``.
- ``knn(x (B,N,3), centers (B,G,3), k) -> (B,G,k) long`` sorted by distance; ``knn_naive``.
- ``chamfer_distance(pred, gt, ..., norm, batch_reduction)`` and ``fscore`` (:mod:`mesc3d.ops.chamfer`):
  the one Chamfer / F-score of the package, on top of ``nearest_sq_dist``.

Backends: see :mod:`mesc3d.ops.dispatch` (``backend=`` or env ``MESC3D_OPS_BACKEND`` =
``auto|torch|kdtree|triton|cuda``; ``auto`` = torch on CPU, Triton on CUDA).
"""

from __future__ import annotations

import torch

from .chamfer import chamfer_distance, fscore
from .dispatch import BackendUnavailableError, resolve
from .fps import farthest_point_sample_naive, farthest_point_sample_torch
from .knn import knn_naive, knn_torch
from .nn_dist import (finish_from_indices, nearest_indices_kdtree, nearest_sq_dist_naive,
                      nearest_sq_dist_torch, validate_pair)

__all__ = [
    "nearest_sq_dist", "nearest_sq_dist_naive", "farthest_point_sample", "farthest_point_sample_naive",
    "knn", "knn_naive", "BackendUnavailableError", "chamfer_distance", "fscore",
]


def nearest_sq_dist(x: torch.Tensor, y: torch.Tensor, x_lengths=None, y_lengths=None, *,
                    backend: str | None = None, index_dtype: torch.dtype | None = None):
    """Nearest-neighbour squared distances in both directions (see :mod:`mesc3d.ops.nn_dist`).

    x (B, N, D), y (B, M, D) -> d_xy (B, N), idx_xy (B, N) long, d_yx (B, M), idx_yx (B, M) long.
    Padded positions (ragged ``*_lengths``) get distance 0 and index -1.  ``index_dtype=torch.float64``
    makes the neighbour search robust to near-ties (torch path).
    """
    which = resolve(x, backend)
    if which == "torch":
        return nearest_sq_dist_torch(x, y, x_lengths, y_lengths, index_dtype=index_dtype)
    x_lengths, y_lengths = validate_pair(x, y, x_lengths, y_lengths)
    if which == "kdtree":
        idx_xy, idx_yx = nearest_indices_kdtree(x, y, x_lengths, y_lengths)
    elif which == "triton":
        from .dispatch import load_triton_kernels
        idx_xy, idx_yx = load_triton_kernels().nn_indices(x, y, x_lengths, y_lengths)
    else:
        from .dispatch import load_cuda_extension
        ext = load_cuda_extension()
        idx_xy, idx_yx = ext.nn_indices(x, y, x_lengths, y_lengths)
    return finish_from_indices(x, y, idx_xy, idx_yx, x_lengths, y_lengths)


def farthest_point_sample(x: torch.Tensor, k: int, *, backend: str | None = None) -> torch.Tensor:
    """FPS indices (B, k) long, starting at index 0 (see :mod:`mesc3d.ops.fps`)."""
    which = resolve(x, backend)
    if which in ("torch", "kdtree"):
        return farthest_point_sample_torch(x, k)
    from .fps import validate_fps
    validate_fps(x, k)
    if which == "triton":
        from .dispatch import load_triton_kernels
        return load_triton_kernels().fps(x, k)
    from .dispatch import load_cuda_extension
    return load_cuda_extension().fps(x, k)


def knn(x: torch.Tensor, centers: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, G, k) long of the k nearest points of x to each centre, sorted by distance."""
    return knn_torch(x, centers, k)
