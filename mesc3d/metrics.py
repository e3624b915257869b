"""Table metrics (docs/design.md) and the per-category averaging the pipeline uses.

Conventions (exactly as MESC-3D's ``cdloss.py``; d1 = squared NN distance GT -> prediction (one per
GT point), d2 = squared NN distance prediction -> GT (one per predicted point)):

- CD-L1 (B,) = ½ (mean √d1 + mean √d2)  -- Euclidean distances, halved.
  Tables report it ×100 (column ``cd_l1_x100``; paper Tab. 1).  Also the stage-2 training loss.
- CD-L2 (B,) = mean d1 + mean d2  -- squared distances, a sum, NOT halved.
  Tables report it ×1000 (column ``cd_l2_x1000``; paper Tab. 3-8).
- F-score (threshold=0.01, squared=True) (B,): P = fraction of GT points whose squared
  NN distance to the prediction is < threshold; R = the same with the roles of GT and prediction
  swapped; F = 2PR/(P+R), and 0 when P = R = 0 (NaN -> 0).  The default compares SQUARED distances
  with 0.01, i.e. a Euclidean threshold of 0.1 = 10% of the unit radius (column ``fscore``).
  ``squared=False`` compares Euclidean distances with ``threshold`` instead (other papers: Euclidean
  0.01, 3DAttriFlow/VRCNet; column ``fscore_euclid``).  Strict ``<``.

The distances themselves are :func:`mesc3d.ops.chamfer_distance` / :func:`mesc3d.ops.fscore`
(the one implementation); ``table_metrics`` computes every column from one NN search, in float64.
All metrics compare the raw prediction with the unit-ball-normalised GT, no alignment.
Ragged batches: ``pred_lengths`` / ``gt_lengths`` (B,) count the valid leading points.

Aggregation: the paper's averages are UNWEIGHTED means over the per-class values.
``per_category_means`` (what evaluate, zeroshot and the baselines write) needs pandas, not torch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

CD_L1_SCALE = 100.0  # cd_l1_x100
CD_L2_SCALE = 1000.0  # cd_l2_x1000
FSCORE_THRESHOLD = 0.01  # on squared distances (Euclidean 0.1)
FSCORE_EUCLID_THRESHOLD = 0.01  # on Euclidean distances (= squared 1e-4)
METRIC_COLUMNS = ("cd_l1_x100", "cd_l2_x1000", "fscore", "fscore_euclid")


def table_metrics(pred, gt, *, pred_lengths=None, gt_lengths=None, backend: str | None = None,
                  fscore_threshold: float = FSCORE_THRESHOLD,
                  fscore_euclid_threshold: float = FSCORE_EUCLID_THRESHOLD) -> dict[str, np.ndarray]:
    """Every table column from one float64 NN search: pred (B, N, 3), gt (B, M, 3) (tensors or
    arrays) -> dict of (B,) float64 arrays ``cd_l1_x100``, ``cd_l2_x1000``, ``fscore`` (squared
    distance < ``fscore_threshold``), ``fscore_euclid`` (Euclidean < ``fscore_euclid_threshold``)."""
    import torch

    from mesc3d.ops.chamfer import chamfer_from_sq_dists, fscore_from_sq_dists, sq_dists

    pred, gt = (a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a)) for a in (pred, gt))
    with torch.no_grad():
        d1, d2, m1, m2 = sq_dists(pred.double(), gt.double(), pred_lengths, gt_lengths, backend=backend,
                                  index_dtype=torch.float64)
        cols = {"cd_l1_x100": CD_L1_SCALE * chamfer_from_sq_dists(d1, d2, m1, m2, "l1"),
                "cd_l2_x1000": CD_L2_SCALE * chamfer_from_sq_dists(d1, d2, m1, m2, "l2"),
                "fscore": fscore_from_sq_dists(d1, d2, fscore_threshold, True, m1, m2),
                "fscore_euclid": fscore_from_sq_dists(d1, d2, fscore_euclid_threshold, False, m1, m2)}
    return {k: v.cpu().numpy() for k, v in cols.items()}


def per_category_means(per_shape, categories: Sequence[str], columns: Sequence[str] = METRIC_COLUMNS):
    """Per-class means and their unweighted mean (the paper's averaging).

    per_shape: DataFrame with a ``category`` column and the metric ``columns`` (one row a shape);
    categories: class names in output (config) order.  Returns ``category, n_shapes, *columns``: one
    row per class of ``categories`` that has shapes (in that order), then ``mean``: the unweighted
    mean over those classes, n_shapes the total.  Shapes of classes not in ``categories`` are not
    counted; an empty frame gives an empty table.
    """
    import pandas as pd

    missing = [c for c in ("category", *columns) if c not in per_shape.columns]
    if missing:
        raise ValueError(f"per-shape frame lacks columns {missing}; expected category, {', '.join(columns)}")
    rows = []
    for cat in categories:
        sub = per_shape[per_shape["category"] == cat]
        if len(sub):
            rows.append({"category": cat, "n_shapes": len(sub), **{m: float(sub[m].mean()) for m in columns}})
    frame = pd.DataFrame(rows, columns=["category", "n_shapes", *columns])
    if len(frame):
        mean = {"category": "mean", "n_shapes": int(frame["n_shapes"].sum()),
                **{m: float(frame[m].mean()) for m in columns}}
        frame = pd.concat([frame, pd.DataFrame([mean])], ignore_index=True)
    return frame
