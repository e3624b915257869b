"""Point-cloud ops: nearest-neighbour squared distances (Chamfer core), FPS and kNN.

Public API:

- ``nearest_sq_dist(x (B,N,3), y (B,M,3), x_lengths=None, y_lengths=None, *, backend=None,
  index_dtype=None) -> (d_xy (B,N), idx_xy (B,N) long, d_yx (B,M), idx_yx (B,M) long)`` --
  squared distances, differentiable w.r.t. x and y; ``nearest_sq_dist_naive`` same signature.
- ``farthest_point_sample(x (B,N,3), k, *, backend=None) -> (B,k) long`` (starts at index 0);
  ``farthest_point_sample_naive``.
- ``knn(x (B,N,3), centers (B,G,3), k) -> (B,G,k) long`` sorted by distance; ``knn_naive``.
- ``chamfer_distance(pred, gt, ..., norm, batch_reduction)`` and ``fscore`` (:mod:`mesc3d.ops.chamfer`):
  the one Chamfer / F-score of the package, on top of ``nearest_sq_dist``.

This package only re-exports; the dispatching ops live in :mod:`mesc3d.ops.dispatch`.
Backends: see :mod:`mesc3d.ops.dispatch` (``backend=`` or env ``MESC3D_OPS_BACKEND`` =
``auto|torch|kdtree|triton|cuda``; ``auto`` = torch on CPU, Triton on CUDA).
"""

from __future__ import annotations

from .chamfer import chamfer_distance, fscore
from .dispatch import BackendUnavailableError, farthest_point_sample, knn, nearest_sq_dist
from .fps import farthest_point_sample_naive
from .knn import knn_naive
from .nn_dist import nearest_sq_dist_naive

__all__ = [
    "nearest_sq_dist", "nearest_sq_dist_naive", "farthest_point_sample", "farthest_point_sample_naive",
    "knn", "knn_naive", "BackendUnavailableError", "chamfer_distance", "fscore",
]
