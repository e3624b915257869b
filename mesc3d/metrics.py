"""Table metrics (docs/design.md) and the per-category averaging the pipeline uses.

Conventions (scales, which distance each F-score compares, labels): ``mesc3d.metric_spec``, the one
place they are stated; ``table_metrics`` applies them.

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

from mesc3d import metric_spec as spec
from mesc3d.metric_spec import (CD_L1_SCALE, CD_L2_SCALE, FSCORE_EUCLID_THRESHOLD,  # noqa: F401 (re-exported)
                                FSCORE_THRESHOLD, METRIC_COLUMNS)


def table_metrics(pred, gt, *, pred_lengths=None, gt_lengths=None, backend: str | None = None,
                  fscore_threshold: float = FSCORE_THRESHOLD,
                  fscore_euclid_threshold: float = FSCORE_EUCLID_THRESHOLD) -> dict[str, np.ndarray]:
    """Every table column from one float64 NN search: pred (B, N, 3), gt (B, M, 3) (tensors or
    arrays) -> dict of (B,) float64 arrays, one per ``metric_spec.METRIC_COLUMNS``: the Chamfer
    columns scaled, ``fscore`` with ``fscore_threshold`` and ``fscore_euclid`` with
    ``fscore_euclid_threshold``, each comparing the distances its spec names (squared or Euclidean)."""
    import torch

    from mesc3d.ops.chamfer import chamfer_from_sq_dists, fscore_from_sq_dists, sq_dists

    pred, gt = (a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a)) for a in (pred, gt))
    with torch.no_grad():
        d1, d2, m1, m2 = sq_dists(pred.double(), gt.double(), pred_lengths, gt_lengths, backend=backend,
                                  index_dtype=torch.float64)
        f, fe = spec.fscores()
        cols = {spec.CD_L1.column: spec.CD_L1.scale * chamfer_from_sq_dists(d1, d2, m1, m2, "l1"),
                spec.CD_L2.column: spec.CD_L2.scale * chamfer_from_sq_dists(d1, d2, m1, m2, "l2"),
                f.column: fscore_from_sq_dists(d1, d2, fscore_threshold, f.squared, m1, m2),
                fe.column: fscore_from_sq_dists(d1, d2, fscore_euclid_threshold, fe.squared, m1, m2)}
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
