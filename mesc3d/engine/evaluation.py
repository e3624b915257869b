"""Per-shape and per-category test metrics (docs/design.md) for any predictor.

Per shape: CD-L1 x100, CD-L2 x1000, F-score (squared NN distance < ``eval.fscore_threshold``) and
the Euclidean-threshold F-score, computed in float64 between the prediction and the split file's
fixed GT subset (``metrics.table_metrics``, one NN search).  Per category:
``metrics.per_category_means`` (unweighted mean over classes, the paper's convention).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from mesc3d import metrics

METRICS = list(metrics.METRIC_COLUMNS)


def shape_metrics(pred: torch.Tensor, gt: torch.Tensor, cfg) -> dict[str, np.ndarray]:
    """pred (B, N, 3), gt (B, G, 3) -> dict of (B,) float64 arrays (table scales applied)."""
    return metrics.table_metrics(pred, gt, fscore_threshold=cfg.eval.fscore_threshold,
                                 fscore_euclid_threshold=cfg.eval.fscore_euclidean_threshold)


def per_shape_frame(batches: Iterable[tuple[dict, torch.Tensor]], cfg, dataset,
                    keep: Callable[[int, str], bool] | None = None):
    """Consume (batch, prediction) pairs -> (per-shape DataFrame, {index: (image, gt, pred)} kept).

    ``keep(index, category)`` selects the shapes whose arrays are returned for figures / .ply files.
    """
    rows, kept = [], {}
    for batch, pred in batches:
        vals = shape_metrics(pred, batch["points"], cfg)
        for j, idx in enumerate(batch["index"].tolist()):
            cat = str(dataset.categories_of_items[idx])
            rows.append({"shape_id": str(dataset.shape_ids[idx]), "category": cat,
                         **{k: float(v[j]) for k, v in vals.items()}})
            if keep is not None and keep(idx, cat):
                kept[idx] = (batch["image"][j].permute(1, 2, 0).numpy(), batch["points"][j].numpy(),
                             pred[j].numpy())
    return pd.DataFrame(rows, columns=["shape_id", "category", *METRICS]), kept


def first_per_category(n: int) -> Callable[[int, str], bool]:
    """A ``keep`` predicate selecting the first ``n`` shapes of every category (in index order)."""
    seen: dict[str, int] = {}

    def keep(_idx: int, cat: str) -> bool:
        seen[cat] = seen.get(cat, 0) + 1
        return seen[cat] <= n

    return keep
