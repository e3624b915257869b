"""mesc3d.metrics: hand-computed Chamfer/F-score cases, the squared-threshold convention, aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mesc3d import metrics

# Two tiny clouds computed on paper:
#   gt   = {g0=(0,0,0), g1=(0,0,0.2)},  pred = {p0=(0,0,0.05), p1=(1,0,0)}
#   d1 (gt->pred, squared)  = [0.05^2, 0.15^2] = [0.0025, 0.0225]
#   d2 (pred->gt, squared)  = [0.05^2, 1.0]    = [0.0025, 1.0]
#   CD-L1 = 1/2 ((0.05+0.15)/2 + (0.05+1)/2) = 1/2 (0.1 + 0.525) = 0.3125
#   CD-L2 = (0.0025+0.0225)/2 + (0.0025+1)/2 = 0.0125 + 0.50125 = 0.51375
#   F (squared < 0.01): P = 1/2 (g0 only), R = 1/2 (p0 only) -> F = 0.5
#   F (Euclidean < 0.01): P = R = 0 -> F = 0 (NaN -> 0)
GT = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.2]]], dtype=torch.float64)
PRED = torch.tensor([[[0.0, 0.0, 0.05], [1.0, 0.0, 0.0]]], dtype=torch.float64)


def test_hand_computed_chamfer():
    assert metrics.chamfer_l1(PRED, GT).item() == pytest.approx(0.3125, abs=1e-12)
    assert metrics.chamfer_l2(PRED, GT).item() == pytest.approx(0.51375, abs=1e-12)
    # symmetric in its arguments
    assert metrics.chamfer_l1(GT, PRED).item() == pytest.approx(0.3125, abs=1e-12)
    assert metrics.chamfer_l2(PRED.float(), GT.float()).dtype == torch.float32


def test_hand_computed_fscore_and_squared_threshold():
    assert metrics.fscore(PRED, GT).item() == pytest.approx(0.5)
    assert metrics.fscore_euclid(PRED, GT).item() == 0.0  # P = R = 0 -> 0, not NaN
    assert metrics.fscore(PRED, GT, threshold=0.01, squared=False).item() == 0.0
    # squared 0.01 == Euclidean 0.1
    assert metrics.fscore(PRED, GT, 0.1, squared=False).item() == pytest.approx(0.5)
    # a point at Euclidean distance 0.09 (squared 0.0081) counts; at 0.11 (squared 0.0121) not
    gt = torch.zeros(1, 1, 3, dtype=torch.float64)
    near = torch.tensor([[[0.09, 0.0, 0.0]]], dtype=torch.float64)
    far = torch.tensor([[[0.11, 0.0, 0.0]]], dtype=torch.float64)
    assert metrics.fscore(near, gt).item() == 1.0 and metrics.fscore(far, gt).item() == 0.0
    # strict '<' at the threshold itself
    at = torch.tensor([[[0.5, 0.0, 0.0]]], dtype=torch.float64)
    assert metrics.fscore(at, gt, threshold=0.25).item() == 0.0
    # P = 1, R = 1/2 -> F = 2/3 (gt fully covered, half the prediction is an outlier)
    pred = torch.tensor([[[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]]], dtype=torch.float64)
    assert metrics.fscore(pred, gt).item() == pytest.approx(2 / 3)


def test_identical_and_batched():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 64, 3, generator=g)
    assert (metrics.chamfer_l1(a, a) == 0).all() and (metrics.chamfer_l2(a, a) == 0).all()
    assert (metrics.fscore(a, a) == 1).all()
    both = torch.cat([PRED, GT], 0), torch.cat([GT, GT], 0)
    l1 = metrics.chamfer_l1(*both)
    assert l1.shape == (2,) and l1[0].item() == pytest.approx(0.3125) and l1[1].item() == 0


def test_against_scipy_kdtree_and_numpy_input():
    from scipy.spatial import cKDTree
    rng = np.random.default_rng(1)
    p, q = rng.normal(size=(2, 500, 3)) * 0.3, rng.normal(size=(2, 400, 3)) * 0.3
    got = metrics.table_metrics(p, q)
    for b in range(2):
        d1 = cKDTree(p[b]).query(q[b])[0]  # gt -> pred
        d2 = cKDTree(q[b]).query(p[b])[0]
        assert got["cd_l1_x100"][b] == pytest.approx(100 * 0.5 * (d1.mean() + d2.mean()), rel=1e-10)
        assert got["cd_l2_x1000"][b] == pytest.approx(1000 * ((d1 ** 2).mean() + (d2 ** 2).mean()), rel=1e-10)
        P, R = (d1 ** 2 < 0.01).mean(), (d2 ** 2 < 0.01).mean()
        assert got["fscore"][b] == pytest.approx(2 * P * R / (P + R))
        P, R = (d1 < 0.01).mean(), (d2 < 0.01).mean()
        expect = 0.0 if P + R == 0 else 2 * P * R / (P + R)
        assert got["fscore_euclid"][b] == pytest.approx(expect)
    assert list(got) == list(metrics.METRIC_COLUMNS)


def test_gradients_finite_with_duplicates():
    g = torch.Generator().manual_seed(2)
    gt = torch.rand(2, 20, 3, generator=g)
    pred = gt.clone()
    pred[:, 10:] += 0.05  # half exact duplicates: sqrt(0) must not give NaN gradients
    pred.requires_grad_(True)
    (metrics.chamfer_l1(pred, gt).sum() + metrics.chamfer_l2(pred, gt).sum()).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_ragged_lengths_equal_unpadded():
    g = torch.Generator().manual_seed(3)
    pred, gt = torch.rand(2, 30, 3, generator=g, dtype=torch.float64), torch.rand(2, 25, 3, generator=g,
                                                                                  dtype=torch.float64)
    pl, gl = torch.tensor([30, 12]), torch.tensor([7, 25])
    got = metrics.chamfer_l1(pred, gt, pred_lengths=pl, gt_lengths=gl)
    f = metrics.fscore(pred, gt, 0.02, pred_lengths=pl, gt_lengths=gl)
    for b in range(2):
        sub = pred[b:b + 1, :pl[b]], gt[b:b + 1, :gl[b]]
        assert got[b].item() == pytest.approx(metrics.chamfer_l1(*sub).item(), abs=1e-14)
        assert f[b].item() == pytest.approx(metrics.fscore(*sub, 0.02).item(), abs=1e-14)


def test_per_category_means_unweighted():
    vals = {"cd_l1_x100": [1.0, 2.0, 3.0, 10.0], "fscore": [0.5, 0.5, 0.5, 1.0]}
    df = metrics.per_category_means(vals, ["b", "a", "empty"], ["a", "a", "a", "b"])
    assert list(df.columns) == ["category", "n_shapes", "cd_l1_x100", "fscore"]
    assert list(df["category"]) == ["b", "a", "empty", "mean"]
    assert list(df["n_shapes"]) == [1, 3, 0, 4]
    assert df["cd_l1_x100"].iloc[0] == 10.0 and df["cd_l1_x100"].iloc[1] == 2.0
    assert math.isnan(df["cd_l1_x100"].iloc[2])
    assert df["cd_l1_x100"].iloc[3] == 6.0  # unweighted over classes (pooled would be 4.0)
    assert df["fscore"].iloc[3] == 0.75
    with pytest.raises(ValueError, match="not in categories"):
        metrics.per_category_means(vals, ["a"], ["a", "a", "a", "b"])
    with pytest.raises(ValueError, match=r"shape \(S,\)"):
        metrics.per_category_means({"x": [1.0]}, ["a"], ["a", "a"])
    t = metrics.per_shape_table(["s1", "s2"], ["a", "b"], {"fscore": [0.1, 0.2]})
    assert list(t.columns) == ["shape_id", "category", "fscore"] and t["fscore"].tolist() == [0.1, 0.2]


def test_metrics_module_is_light():
    import subprocess
    import sys
    code = ("import sys, mesc3d.metrics as m; m.per_category_means({'x': [1.0]}, ['a'], ['a']); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
