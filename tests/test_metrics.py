"""The one Chamfer/F-score (mesc3d.ops.chamfer) and the table metrics/aggregation (mesc3d.metrics):
hand-computed cases, the squared-threshold convention, reductions, values and gradients against the
naive NN reference, per-category averaging."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mesc3d import metrics
from mesc3d.ops import chamfer_distance, fscore


def cd(norm, pred, gt, **kw):
    return chamfer_distance(pred, gt, norm=norm, batch_reduction=None, **kw)

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
    assert cd("l1", PRED, GT).item() == pytest.approx(0.3125, abs=1e-12)
    assert cd("l2", PRED, GT).item() == pytest.approx(0.51375, abs=1e-12)
    # symmetric in its arguments
    assert cd("l1", GT, PRED).item() == pytest.approx(0.3125, abs=1e-12)
    assert cd("l2", PRED.float(), GT.float()).dtype == torch.float32


def test_hand_computed_fscore_and_squared_threshold():
    assert fscore(PRED, GT).item() == pytest.approx(0.5)
    assert fscore(PRED, GT, 0.01, squared=False).item() == 0.0  # P = R = 0 -> 0, not NaN
    assert fscore(PRED, GT, threshold=0.01, squared=False).item() == 0.0
    # squared 0.01 == Euclidean 0.1
    assert fscore(PRED, GT, 0.1, squared=False).item() == pytest.approx(0.5)
    # a point at Euclidean distance 0.09 (squared 0.0081) counts; at 0.11 (squared 0.0121) not
    gt = torch.zeros(1, 1, 3, dtype=torch.float64)
    near = torch.tensor([[[0.09, 0.0, 0.0]]], dtype=torch.float64)
    far = torch.tensor([[[0.11, 0.0, 0.0]]], dtype=torch.float64)
    assert fscore(near, gt).item() == 1.0 and fscore(far, gt).item() == 0.0
    # strict '<' at the threshold itself
    at = torch.tensor([[[0.5, 0.0, 0.0]]], dtype=torch.float64)
    assert fscore(at, gt, threshold=0.25).item() == 0.0
    # P = 1, R = 1/2 -> F = 2/3 (gt fully covered, half the prediction is an outlier)
    pred = torch.tensor([[[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]]], dtype=torch.float64)
    assert fscore(pred, gt).item() == pytest.approx(2 / 3)


def test_identical_and_batched():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 64, 3, generator=g)
    assert (cd("l1", a, a) == 0).all() and (cd("l2", a, a) == 0).all()
    assert (fscore(a, a) == 1).all()
    both = torch.cat([PRED, GT], 0), torch.cat([GT, GT], 0)
    l1 = cd("l1", *both)
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
    (cd("l1", pred, gt).sum() + cd("l2", pred, gt).sum()).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_ragged_lengths_equal_unpadded():
    g = torch.Generator().manual_seed(3)
    pred, gt = torch.rand(2, 30, 3, generator=g, dtype=torch.float64), torch.rand(2, 25, 3, generator=g,
                                                                                  dtype=torch.float64)
    pl, gl = torch.tensor([30, 12]), torch.tensor([7, 25])
    got = cd("l1", pred, gt, pred_lengths=pl, gt_lengths=gl)
    f = fscore(pred, gt, 0.02, pred_lengths=pl, gt_lengths=gl)
    for b in range(2):
        sub = pred[b:b + 1, :pl[b]], gt[b:b + 1, :gl[b]]
        assert got[b].item() == pytest.approx(cd("l1", *sub).item(), abs=1e-14)
        assert f[b].item() == pytest.approx(fscore(*sub, 0.02).item(), abs=1e-14)


def test_per_category_means_unweighted():
    import pandas as pd
    per_shape = pd.DataFrame({"category": ["a", "a", "a", "b", "other"],
                              "cd_l1_x100": [1.0, 2.0, 3.0, 10.0, 99.0], "fscore": [0.5, 0.5, 0.5, 1.0, 0.0]})
    df = metrics.per_category_means(per_shape, ["b", "a", "empty"], columns=["cd_l1_x100", "fscore"])
    assert list(df.columns) == ["category", "n_shapes", "cd_l1_x100", "fscore"]
    assert list(df["category"]) == ["b", "a", "mean"]  # classes without shapes are left out
    assert list(df["n_shapes"]) == [1, 3, 4]  # shapes of unlisted classes are not counted
    assert df["cd_l1_x100"].iloc[0] == 10.0 and df["cd_l1_x100"].iloc[1] == 2.0
    assert df["cd_l1_x100"].iloc[2] == 6.0  # unweighted over classes (pooled would be 4.0)
    assert df["fscore"].iloc[2] == 0.75
    assert len(metrics.per_category_means(per_shape.iloc[:0], ["a"], ["fscore"])) == 0
    with pytest.raises(ValueError, match="lacks columns"):
        metrics.per_category_means(per_shape, ["a"])


def test_pipeline_uses_the_tested_averaging():
    import mesc3d.cli.baseline as baseline
    import mesc3d.engine.run_eval as evaluate  # run_evaluation (mesc3d evaluate, mesc3d zeroshot)
    import mesc3d.engine.evaluation as evaluation
    for mod in (baseline, evaluate):
        assert "per_category_means" in open(mod.__file__).read()
    assert not hasattr(evaluation, "per_category_frame")


@pytest.mark.parametrize("norm", ["l1", "l2", "l1+l2"])
@pytest.mark.parametrize("backend", ["torch", "kdtree"])
def test_values_and_gradients_match_naive(norm, backend):
    g = torch.Generator().manual_seed(4)
    pred0, gt0 = torch.rand(3, 40, 3, generator=g, dtype=torch.float64), torch.rand(3, 33, 3, generator=g,
                                                                                    dtype=torch.float64)
    gt0[:, :5] = pred0[:, :5]  # exact duplicates: d = 0 in both directions
    pl, gl = torch.tensor([40, 17, 9]), torch.tensor([33, 33, 6])
    for lengths in ({}, {"pred_lengths": pl, "gt_lengths": gl}):
        for red in ("mean", "sum", None):
            out = []
            for be in (backend, "naive"):
                pred, gt = pred0.clone().requires_grad_(True), gt0.clone().requires_grad_(True)
                v = chamfer_distance(pred, gt, norm=norm, batch_reduction=red, backend=be, **lengths)
                v.sum().backward()
                out.append((v.detach(), pred.grad, gt.grad))
            for a, b in zip(*out):
                assert torch.allclose(a, b, atol=1e-12, rtol=1e-10)
                assert torch.isfinite(a).all()
    f = fscore(pred0, gt0, 0.05, backend=backend)
    assert torch.allclose(f, fscore(pred0, gt0, 0.05, backend="naive"))


def test_gradcheck_against_analytic():
    g = torch.Generator().manual_seed(5)
    pred = torch.rand(2, 7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    for norm in ("l1", "l2"):
        assert torch.autograd.gradcheck(lambda a, b: chamfer_distance(a, b, norm=norm), (pred, gt))


def test_reductions_and_bad_input():
    g = torch.Generator().manual_seed(6)
    pred, gt = torch.rand(4, 16, 3, generator=g), torch.rand(4, 16, 3, generator=g)
    per = chamfer_distance(pred, gt, norm="l2", batch_reduction=None)
    assert per.shape == (4,)
    assert chamfer_distance(pred, gt, norm="l2").item() == pytest.approx(per.mean().item())
    assert chamfer_distance(pred, gt, norm="l2", batch_reduction="sum").item() == pytest.approx(per.sum().item())
    # pooled: each direction's mean over all points of the batch (Point-MAE's patch loss, unchanged)
    from mesc3d.ops import nearest_sq_dist
    d_xy, _, d_yx, _ = nearest_sq_dist(pred, gt)
    assert torch.equal(chamfer_distance(pred, gt, norm="l2", batch_reduction="pooled"), d_xy.mean() + d_yx.mean())
    with pytest.raises(ValueError, match="norm"):
        chamfer_distance(pred, gt, norm="l3")
    with pytest.raises(ValueError, match="batch_reduction"):
        chamfer_distance(pred, gt, batch_reduction="max")
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        chamfer_distance(pred[0], gt)


def test_training_loss_is_the_chamfer():
    """The stage-2 loss is chamfer_distance with the same values and gradients as its old formula."""
    from mesc3d.engine.losses import reconstruction_loss
    from mesc3d.ops import nearest_sq_dist
    g = torch.Generator().manual_seed(7)
    gt = torch.rand(2, 50, 3, generator=g)
    for kind in ("l1", "l2", "l1+l2"):
        grads = []
        for new in (True, False):
            pred = torch.rand(2, 40, 3, generator=torch.Generator().manual_seed(8)).requires_grad_(True)
            if new:
                loss = reconstruction_loss(pred, gt, kind)
            else:  # the formula used before the single Chamfer (clamped sqrt, KD-tree NN on CPU)
                d1, _, d2, _ = nearest_sq_dist(gt, pred, backend="kdtree")
                l1 = 0.5 * (d1.clamp_min(1e-12).sqrt().mean(1) + d2.clamp_min(1e-12).sqrt().mean(1))
                l2 = d1.mean(1) + d2.mean(1)
                loss = {"l1": l1, "l2": l2, "l1+l2": l1 + l2}[kind].mean()
            loss.backward()
            grads.append((loss.detach(), pred.grad))
        assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_metrics_module_is_light():
    import subprocess
    import sys
    code = ("import sys, mesc3d.metrics as m; import pandas as pd; m.per_category_means(pd.DataFrame({'category': ['a'], 'x': [1.0]}), ['a'], ['x']); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ the metric spec (mesc3d.metric_spec)
def test_metric_spec_states_the_table_conventions_once():
    """Scales, labels, formats, directions and the caption text all come from the spec; the
    caption is the published one word for word (results/reference tables carry it)."""
    from mesc3d import metric_spec as spec

    assert spec.METRIC_COLUMNS == metrics.METRIC_COLUMNS == ("cd_l1_x100", "cd_l2_x1000", "fscore", "fscore_euclid")
    assert (spec.CD_L1.scale, spec.CD_L2.scale) == (100.0, 1000.0)
    assert spec.BETTER == {"cd_l1_x100": "min", "cd_l2_x1000": "min", "fscore": "max", "fscore_euclid": "max"}
    assert spec.CONVENTION.endswith("F-score with threshold 0.01 on squared NN distances (= Euclidean 0.1, 10% of "
                                    "the unit-ball radius); Mean = unweighted mean over the categories shown.")
    assert r"\times 10^{2}$" in spec.CONVENTION_TEX and r"\times 10^{3}$" in spec.CONVENTION_TEX


def test_fscore_convention_switches_via_the_spec(monkeypatch):
    """docs/extending.md (b): the F-score on Euclidean instead of squared distances is one edit of
    metric_spec.FSCORE; table_metrics and the caption text follow it."""
    import dataclasses

    from mesc3d import metric_spec as spec

    gt = torch.zeros(1, 1, 3, dtype=torch.float64)
    pred = torch.tensor([[[0.05, 0.0, 0.0]]], dtype=torch.float64)  # distance 0.05, squared 0.0025
    assert metrics.table_metrics(pred, gt)["fscore"][0] == 1.0  # 0.0025 < 0.01 (squared)
    monkeypatch.setattr(spec, "FSCORE", dataclasses.replace(spec.FSCORE, squared=False))
    assert metrics.table_metrics(pred, gt)["fscore"][0] == 0.0  # 0.05 >= 0.01 (Euclidean)
    assert "threshold 0.01 on Euclidean NN distances (1% of the unit-ball radius)" in spec.convention()
    assert "on Euclidean NN distances (1\\% of" in spec.convention(tex=True)
