"""The one Chamfer distance and F-score of the package (loss, validation, metrics, baselines, Point-MAE).

Conventions (MESC-3D's ``cdloss.py``; d1 = squared NN distance GT -> prediction, one per GT point,
d2 = squared NN distance prediction -> GT, one per predicted point):

- ``norm="l1"``: CD-L1 = ½ (mean √d1 + mean √d2) -- Euclidean, halved (tables ×100, the loss);
- ``norm="l2"``: CD-L2 = mean d1 + mean d2 -- squared, a sum, NOT halved (tables ×1000);
- ``norm="l1+l2"``: their sum (a loss option);
- F-score: P = fraction of GT points with d1 < threshold, R = fraction of predicted points with
  d2 < threshold, F = 2PR/(P+R), 0 when P = R = 0.  ``squared=False`` compares Euclidean
  distances √d with ``threshold`` instead.  Strict ``<``.

Like pytorch3d's ``chamfer_distance`` there is one public function with reductions
(``batch_reduction``: ``"mean"`` -> scalar, ``"sum"`` -> scalar, ``None`` -> (B,), ``"pooled"`` ->
scalar with each direction's mean taken over all points of the batch at once, Point-MAE's patch
loss: equal to ``"mean"`` for equal-size clouds up to float rounding); ragged batches
pass ``pred_lengths`` / ``gt_lengths`` (B,).  The NN search is :func:`mesc3d.ops.nearest_sq_dist`
(``backend=`` as there) or, with ``backend="naive"``, its naive twin -- the reference the tests
compare values and gradients with.  √ has the exact value (0 at 0) but no gradient below 1e-12, so
coinciding points never give NaN gradients.
"""

from __future__ import annotations

import torch

from mesc3d.registries import LOSSES

from .dispatch import nearest_sq_dist
from .nn_dist import nearest_sq_dist_naive

_EPS = 1e-12
NORMS = tuple(LOSSES)  # the training-loss names are the Chamfer norms


def _search(pred: torch.Tensor, gt: torch.Tensor, pred_lengths, gt_lengths, backend, index_dtype):
    if pred.dim() != 3 or gt.dim() != 3 or pred.shape[-1] != 3 or gt.shape[-1] != 3:
        raise ValueError(f"pred must be (B, N, 3) and gt (B, M, 3); got {tuple(pred.shape)} and {tuple(gt.shape)}")
    if gt.dtype != pred.dtype:
        gt = gt.to(pred.dtype)
    if backend == "naive":
        return nearest_sq_dist_naive(gt, pred, gt_lengths, pred_lengths)
    return nearest_sq_dist(gt, pred, gt_lengths, pred_lengths, backend=backend, index_dtype=index_dtype)


def sq_dists(pred, gt, pred_lengths=None, gt_lengths=None, *, backend: str | None = None,
             index_dtype: torch.dtype | None = None):
    """(d1 (B, M) GT->pred, d2 (B, N) pred->GT, gt_mask (B, M) | None, pred_mask (B, N) | None)."""
    d1, _, d2, _ = _search(pred, gt, pred_lengths, gt_lengths, backend, index_dtype)

    def mask(lengths, n):
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths, device=pred.device).long()
        return torch.arange(n, device=pred.device)[None, :] < lengths[:, None]

    return d1, d2, mask(gt_lengths, gt.shape[1]), mask(pred_lengths, pred.shape[1])


def _mean(v: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
    """Mean over dim 1 of (B, K), restricted to mask m (B, K) when given."""
    return v.mean(1) if m is None else (v * m).sum(1) / m.sum(1)


def _sqrt(d: torch.Tensor) -> torch.Tensor:
    """√d with its exact value; gradient of clamp_min(1e-12).sqrt() above 1e-12 and 0 below."""
    return torch.where(d > _EPS, d.clamp_min(_EPS).sqrt(), d.detach().clamp_min(0).sqrt())


def chamfer_from_sq_dists(d1, d2, m1=None, m2=None, norm: str = "l1") -> torch.Tensor:
    """Per-cloud Chamfer (B,) of the given ``norm`` from squared NN distances d1 (B, M), d2 (B, N)."""
    if norm not in NORMS:
        raise ValueError(f"unknown Chamfer norm {norm!r}; expected one of {NORMS}")
    l1 = 0.5 * (_mean(_sqrt(d1), m1) + _mean(_sqrt(d2), m2)) if norm != "l2" else None
    l2 = _mean(d1, m1) + _mean(d2, m2) if norm != "l1" else None
    return l1 if l2 is None else l2 if l1 is None else l1 + l2


def fscore_from_sq_dists(d1, d2, threshold: float, squared: bool = True, m1=None, m2=None) -> torch.Tensor:
    """F-score (B,) from squared NN distances (no gradient); see the module docstring."""
    a, b = (d1 < threshold, d2 < threshold) if squared else (d1.sqrt() < threshold, d2.sqrt() < threshold)
    p, r = _mean(a.to(d1.dtype), m1), _mean(b.to(d2.dtype), m2)
    return torch.nan_to_num(2 * p * r / (p + r), nan=0.0).detach()


def _reduce(v: torch.Tensor, batch_reduction: str | None) -> torch.Tensor:
    if batch_reduction is None:
        return v
    if batch_reduction == "mean":
        return v.mean()
    if batch_reduction == "sum":
        return v.sum()
    raise ValueError(f"batch_reduction must be 'mean', 'sum' or None, got {batch_reduction!r}")


def chamfer_distance(pred, gt, pred_lengths=None, gt_lengths=None, *, norm: str = "l1",
                     batch_reduction: str | None = "mean", backend: str | None = None,
                     index_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Chamfer distance between pred (B, N, 3) and gt (B, M, 3), differentiable in both.

    ``norm`` ``l1`` | ``l2`` | ``l1+l2``; ``batch_reduction`` ``mean`` | ``sum`` -> scalar, None -> (B,).
    """
    d1, d2, m1, m2 = sq_dists(pred, gt, pred_lengths, gt_lengths, backend=backend, index_dtype=index_dtype)
    if batch_reduction == "pooled":
        if m1 is not None or m2 is not None:
            raise ValueError("batch_reduction='pooled' takes equal-size clouds (no *_lengths)")
        return chamfer_from_sq_dists(d1.reshape(1, -1), d2.reshape(1, -1), norm=norm)[0]
    return _reduce(chamfer_from_sq_dists(d1, d2, m1, m2, norm), batch_reduction)


def fscore(pred, gt, threshold: float = 0.01, squared: bool = True, pred_lengths=None, gt_lengths=None, *,
           batch_reduction: str | None = None, backend: str | None = None,
           index_dtype: torch.dtype | None = None) -> torch.Tensor:
    """F-score between pred (B, N, 3) and gt (B, M, 3); (B,) unless ``batch_reduction`` is given."""
    d1, d2, m1, m2 = sq_dists(pred, gt, pred_lengths, gt_lengths, backend=backend, index_dtype=index_dtype)
    return _reduce(fscore_from_sq_dists(d1, d2, threshold, squared, m1, m2), batch_reduction)
