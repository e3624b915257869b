"""Per-shape and per-category test metrics (spec §7) for any predictor.

Per shape: CD-L1 x100, CD-L2 x1000, F-score (squared NN distance < ``eval.fscore_threshold``) and
the Euclidean-threshold F-score, computed in float64 between the prediction and the split file's
fixed GT subset.  Per category: mean over that category's shapes; the ``mean`` row is the
unweighted mean over categories (the paper's convention), not over shapes.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from mesc3d import metrics

METRICS = ["cd_l1_x100", "cd_l2_x1000", "fscore", "fscore_euclid"]


def shape_metrics(pred: torch.Tensor, gt: torch.Tensor, cfg) -> dict[str, np.ndarray]:
    """pred (B, N, 3), gt (B, G, 3) -> dict of (B,) float64 arrays (table scales applied)."""
    pred, gt = pred.double(), gt.double()
    return {
        "cd_l1_x100": 100.0 * metrics.chamfer_l1(pred, gt).numpy(),
        "cd_l2_x1000": 1000.0 * metrics.chamfer_l2(pred, gt).numpy(),
        "fscore": metrics.fscore(pred, gt, threshold=cfg.eval.fscore_threshold, squared=True).numpy(),
        "fscore_euclid": metrics.fscore(pred, gt, threshold=cfg.eval.fscore_euclidean_threshold,
                                        squared=False).numpy(),
    }


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


def per_category_frame(per_shape: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    """Rows: each category present (in ``categories`` order), then ``mean`` (unweighted over classes)."""
    rows = []
    for cat in categories:
        sub = per_shape[per_shape["category"] == cat]
        if len(sub) == 0:
            continue
        rows.append({"category": cat, "n_shapes": len(sub), **{m: float(sub[m].mean()) for m in METRICS}})
    frame = pd.DataFrame(rows, columns=["category", "n_shapes", *METRICS])
    if len(frame):
        mean = {"category": "mean", "n_shapes": int(frame["n_shapes"].sum()),
                **{m: float(frame[m].mean()) for m in METRICS}}
        frame = pd.concat([frame, pd.DataFrame([mean])], ignore_index=True)
    return frame


def first_per_category(n: int) -> Callable[[int, str], bool]:
    """A ``keep`` predicate selecting the first ``n`` shapes of every category (in index order)."""
    seen: dict[str, int] = {}

    def keep(_idx: int, cat: str) -> bool:
        seen[cat] = seen.get(cat, 0) + 1
        return seen[cat] <= n

    return keep
