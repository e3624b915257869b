"""Reconstruction metrics (spec §7) and per-category aggregation.

Conventions (exactly as MESC-3D's ``cdloss.py``; d1 = squared NN distance GT -> prediction (one per
GT point), d2 = squared NN distance prediction -> GT (one per predicted point)):

- ``chamfer_l1(pred, gt)`` (B,) = ½ (mean √d1 + mean √d2)  -- Euclidean distances, halved.
  Tables report it ×100 (column ``cd_l1_x100``; paper Tab. 1).  Also the stage-2 training loss.
- ``chamfer_l2(pred, gt)`` (B,) = mean d1 + mean d2  -- squared distances, a sum, NOT halved.
  Tables report it ×1000 (column ``cd_l2_x1000``; paper Tab. 3-8).
- ``fscore(pred, gt, threshold=0.01, squared=True)`` (B,): P = fraction of GT points whose squared
  NN distance to the prediction is < threshold; R = the same with the roles of GT and prediction
  swapped; F = 2PR/(P+R), and 0 when P = R = 0 (NaN -> 0).  The default compares SQUARED distances
  with 0.01, i.e. a Euclidean threshold of 0.1 = 10% of the unit radius (column ``fscore``).
  ``squared=False`` compares Euclidean distances with ``threshold`` instead (other papers: Euclidean
  0.01, 3DAttriFlow/VRCNet; column ``fscore_euclid`` = ``fscore_euclid(pred, gt)``).  Strict ``<``.

All metrics compare the raw prediction with the unit-ball-normalised GT, no alignment.  Inputs are
torch tensors (B, N, 3) / (B, M, 3) (numpy arrays are accepted and converted); the outputs are
differentiable (B,) tensors in the input dtype, so ``chamfer_l1`` doubles as the loss.  For exact
evaluation numbers pass float64 clouds (the NN search then runs in float64 as well) or
``backend="kdtree"`` (scipy cKDTree: exact float64 neighbours, fast on the CPU).
Ragged batches: ``pred_lengths`` / ``gt_lengths`` (B,) count the valid leading points.

Aggregation: the paper's averages are UNWEIGHTED means over the per-class values.
``per_category_means`` returns one row per class in the given (config) order and a final ``mean``
row; ``per_shape_table`` builds the per-shape CSV frame.  These need pandas but not torch.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

CD_L1_SCALE = 100.0  # cd_l1_x100
CD_L2_SCALE = 1000.0  # cd_l2_x1000
FSCORE_THRESHOLD = 0.01  # on squared distances (Euclidean 0.1)
FSCORE_EUCLID_THRESHOLD = 0.01  # on Euclidean distances (= squared 1e-4)
METRIC_COLUMNS = ("cd_l1_x100", "cd_l2_x1000", "fscore", "fscore_euclid")


def _as_tensor(a):
    import torch
    if isinstance(a, torch.Tensor):
        return a
    return torch.as_tensor(np.asarray(a))


def nn_sq_dists(pred, gt, pred_lengths=None, gt_lengths=None, backend: str | None = None):
    """(d1 (B, M) GT->pred, d2 (B, N) pred->GT, gt_mask (B, M) | None, pred_mask (B, N) | None)."""
    import torch

    from mesc3d.ops import nearest_sq_dist

    pred, gt = _as_tensor(pred), _as_tensor(gt)
    if pred.dim() != 3 or gt.dim() != 3 or pred.shape[-1] != 3 or gt.shape[-1] != 3:
        raise ValueError(f"pred must be (B, N, 3) and gt (B, M, 3); got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    if gt.dtype != pred.dtype:
        gt = gt.to(pred.dtype)
    idx_dtype = torch.float64 if pred.dtype == torch.float64 else None
    d1, _, d2, _ = nearest_sq_dist(gt, pred, gt_lengths, pred_lengths, backend=backend,
                                   index_dtype=idx_dtype)

    def mask(lengths, n):
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths, device=pred.device).long()
        return torch.arange(n, device=pred.device)[None, :] < lengths[:, None]

    return d1, d2, mask(gt_lengths, gt.shape[1]), mask(pred_lengths, pred.shape[1])


def _mean(v, m):
    """Mean over dim 1 of (B, K), restricted to mask m (B, K) when given."""
    if m is None:
        return v.mean(1)
    return (v * m).sum(1) / m.sum(1)


def _sqrt(d):
    # sqrt with a finite gradient at 0 (exact duplicates): d/dd sqrt(d) -> 0 there instead of inf*0=NaN
    import torch
    return torch.where(d > 0, d.clamp_min(1e-30).sqrt(), torch.zeros_like(d))


def chamfer_from_sq_dists(d1, d2, m1=None, m2=None):
    """(cd_l1 (B,), cd_l2 (B,)) from squared NN distances d1 (B, M), d2 (B, N)."""
    cd_l1 = 0.5 * (_mean(_sqrt(d1), m1) + _mean(_sqrt(d2), m2))
    cd_l2 = _mean(d1, m1) + _mean(d2, m2)
    return cd_l1, cd_l2


def fscore_from_sq_dists(d1, d2, threshold: float = FSCORE_THRESHOLD, squared: bool = True,
                         m1=None, m2=None):
    """F-score (B,) from squared NN distances; see module docstring for the convention."""
    import torch
    if squared:
        a, b = d1 < threshold, d2 < threshold
    else:
        a, b = d1.sqrt() < threshold, d2.sqrt() < threshold
    p = _mean(a.to(d1.dtype), m1)
    r = _mean(b.to(d2.dtype), m2)
    f = 2 * p * r / (p + r)
    return torch.nan_to_num(f, nan=0.0).detach()


def chamfer_l1(pred, gt, *, pred_lengths=None, gt_lengths=None, backend: str | None = None):
    """CD-L1 (B,) = ½(mean_gt √d(gt→pred) + mean_pred √d(pred→gt)); Euclidean; tables ×100."""
    d1, d2, m1, m2 = nn_sq_dists(pred, gt, pred_lengths, gt_lengths, backend)
    return chamfer_from_sq_dists(d1, d2, m1, m2)[0]


def chamfer_l2(pred, gt, *, pred_lengths=None, gt_lengths=None, backend: str | None = None):
    """CD-L2 (B,) = mean_gt d(gt→pred) + mean_pred d(pred→gt); squared, not halved; tables ×1000."""
    d1, d2, m1, m2 = nn_sq_dists(pred, gt, pred_lengths, gt_lengths, backend)
    return chamfer_from_sq_dists(d1, d2, m1, m2)[1]


def fscore(pred, gt, threshold: float = FSCORE_THRESHOLD, squared: bool = True, *,
           pred_lengths=None, gt_lengths=None, backend: str | None = None):
    """F-score (B,): P = frac. of GT points with squared NN distance to pred < threshold, R = same
    pred->GT, F = 2PR/(P+R), 0 when P=R=0.  ``squared=True`` (default, MESC-3D): threshold 0.01 on
    SQUARED distances (= Euclidean 0.1).  ``squared=False``: ``threshold`` on Euclidean distances."""
    d1, d2, m1, m2 = nn_sq_dists(pred, gt, pred_lengths, gt_lengths, backend)
    return fscore_from_sq_dists(d1, d2, threshold, squared, m1, m2)


def fscore_euclid(pred, gt, threshold: float = FSCORE_EUCLID_THRESHOLD, **kw):
    """F-score on EUCLIDEAN distances < threshold (default 0.01, 3DAttriFlow/VRCNet convention)."""
    return fscore(pred, gt, threshold, squared=False, **kw)


def table_metrics(pred, gt, *, pred_lengths=None, gt_lengths=None, backend: str | None = None):
    """All table columns from one NN search: dict of (B,) float64 numpy arrays with keys
    ``cd_l1_x100``, ``cd_l2_x1000``, ``fscore`` (squared < 0.01), ``fscore_euclid`` (Euclid < 0.01)."""
    import torch
    with torch.no_grad():
        d1, d2, m1, m2 = nn_sq_dists(pred, gt, pred_lengths, gt_lengths, backend)
        l1, l2 = chamfer_from_sq_dists(d1, d2, m1, m2)
        f = fscore_from_sq_dists(d1, d2, FSCORE_THRESHOLD, True, m1, m2)
        fe = fscore_from_sq_dists(d1, d2, FSCORE_EUCLID_THRESHOLD, False, m1, m2)
    to = lambda t: t.detach().double().cpu().numpy()  # noqa: E731
    return {"cd_l1_x100": to(l1) * CD_L1_SCALE, "cd_l2_x1000": to(l2) * CD_L2_SCALE,
            "fscore": to(f), "fscore_euclid": to(fe)}


def per_shape_table(shape_ids: Sequence[str], class_of_shape: Sequence[str],
                    values: Mapping[str, Sequence[float]]):
    """DataFrame ``shape_id, category, <metric columns in the order of values>`` (per_shape.csv)."""
    import pandas as pd
    S = len(shape_ids)
    if len(class_of_shape) != S:
        raise ValueError(f"class_of_shape has {len(class_of_shape)} entries, expected (S,)=({S},)")
    cols = {"shape_id": [str(s) for s in shape_ids], "category": [str(c) for c in class_of_shape]}
    for k, v in values.items():
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if v.shape != (S,):
            raise ValueError(f"values[{k!r}] must have shape (S,)=({S},), got {v.shape}")
        cols[k] = v
    return pd.DataFrame(cols)


def per_category_means(values: Mapping[str, Sequence[float]], categories: Sequence[str],
                       class_of_shape: Sequence[str], mean_label: str = "mean"):
    """Per-class means and their unweighted mean (the paper's averaging).

    values: metric name -> (S,) per-shape values; categories: class names in output (config) order;
    class_of_shape: (S,) class name of every shape.  Returns a DataFrame with columns
    ``category, n_shapes, <metric names in the order of values>``: one row per class of
    ``categories`` (a class without shapes gets n_shapes 0 and NaN values), then a row ``mean_label``
    whose values are the unweighted mean over the classes that have shapes and whose n_shapes is the
    total.  A shape whose class is not in ``categories`` raises ValueError.
    """
    import pandas as pd
    cls = np.asarray([str(c) for c in class_of_shape])
    S = cls.shape[0]
    cats = [str(c) for c in categories]
    unknown = sorted(set(cls.tolist()) - set(cats))
    if unknown:
        raise ValueError(f"shapes of classes {unknown} are not in categories {cats}")
    arrays = {}
    for k, v in values.items():
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        if v.shape != (S,):
            raise ValueError(f"values[{k!r}] must have shape (S,)=({S},), got {v.shape}")
        arrays[k] = v
    rows = []
    for c in cats:
        sel = cls == c
        n = int(sel.sum())
        row = {"category": c, "n_shapes": n}
        for k, v in arrays.items():
            row[k] = float(v[sel].mean()) if n else float("nan")
        rows.append(row)
    df = pd.DataFrame(rows, columns=["category", "n_shapes", *arrays])
    have = df["n_shapes"] > 0
    mean_row = {"category": mean_label, "n_shapes": int(df["n_shapes"].sum())}
    for k in arrays:
        mean_row[k] = float(df.loc[have, k].mean()) if have.any() else float("nan")
    return pd.concat([df, pd.DataFrame([mean_row])], ignore_index=True)
