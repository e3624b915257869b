"""Grounding on real photos: composited scenes, the head, score maps, and a test-sized benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mesc3d.data import composite as cp
from mesc3d.models import grounding as gr
from mesc3d.models import grounding_head as gh


def test_composite_scene_truth_is_consistent():
    from scipy.ndimage import binary_dilation

    bg = cp.photo("coffee")
    n_covered = 0
    for k in range(5):
        img, mask, box = cp.make_scene("airplane", bg, cp.BENCH_SHAPE_SEED, k, occlude_p=0.0)
        assert img.shape == bg.shape and mask.shape == bg.shape[:2] and mask.any()
        assert gr.mask_box(mask) == box
        side = max(box[2] - box[0], box[3] - box[1]) / min(bg.shape[:2])
        assert 0.1 - 0.01 <= side <= 0.5 + 0.01  # the object's longer side: 10-50 % of the photo side
        changed = np.abs(img.astype(int) - bg.astype(int)).sum(2) > 0
        far = changed & ~binary_dilation(mask, iterations=3)
        assert far.sum() <= 0.03 * mask.sum()  # outside the mask: anti-aliased edges, faint thin parts
        _, covered, cbox = cp.make_scene("airplane", bg, cp.BENCH_SHAPE_SEED, k, occlude_p=1.0)
        assert not (covered & ~mask).any() and gr.mask_box(covered) == cbox  # same place, part covered
        n_covered += int(covered.sum() < mask.sum())
    assert n_covered >= 3


def test_held_out_and_tune_photos_are_disjoint():
    assert not set(cp.HELD_OUT_PHOTOS) & set(cp.TUNE_PHOTOS)
    assert {"coffee", "chelsea", "astronaut", "rocket"} <= set(cp.HELD_OUT_PHOTOS)
    assert cp.TRAIN_SHAPE_SEED != cp.BENCH_SHAPE_SEED and 0 not in (cp.TRAIN_SHAPE_SEED, cp.BENCH_SHAPE_SEED)


def test_every_photo_loads_offline_as_rgb():
    for name in cp.PHOTOS:  # scikit-image's, matplotlib's and scikit-learn's: all ship in the packages
        img = cp.photo(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8 and max(img.shape[:2]) <= 640, name


def test_box_iou_and_score_box():
    assert gr.box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert gr.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    score = np.zeros((100, 120))
    score[10:30, 20:60] = 1.0  # the strongest region
    score[60:95, 70:110] = 0.6  # weaker, below half of the peak after scaling below
    assert gh.score_box(score * np.where(score < 1, 0.8, 1.0), 0.5, pad=0.0) == (20, 10, 60, 30)
    assert gh.score_box(np.zeros((8, 8))) is None
    thin = np.zeros((40, 100))
    thin[18:22, 10:90] = 0.55  # a rifle-like object: weak along its length ...
    thin[18:22, 40:50] = 1.0  # ... strongest in one place
    thin[5:8, 5:8] = 0.7  # a separate weaker blob above the grow threshold
    assert gh.score_box(thin, 0.6, pad=0.0) == (40, 18, 50, 22)
    assert gh.score_box(thin, 0.6, pad=0.0, grow=0.5) == (10, 18, 90, 22)


def test_reported_box_is_the_masks_unless_grabcut_kept_a_fragment():
    from mesc3d.engine.ground import Grounder

    g = Grounder.__new__(Grounder)  # no networks: the box is given
    g.box = lambda rgb, text: ((10, 10, 90, 30), "head", [])
    rgb = np.zeros((40, 100, 3), np.uint8)

    def masker(x0, x1):
        def m(_rgb, _box):
            out = np.zeros((40, 100), bool)
            out[12:28, x0:x1] = True
            return out
        return m

    assert g.ground(rgb, "rifle", masker(12, 85))[1] == (12, 12, 85, 28)  # most of the box: the mask's
    assert g.ground(rgb, "rifle", masker(40, 50))[1] == (10, 10, 90, 30)  # one piece: the box


def test_head_fits_and_round_trips(tmp_path):
    from mesc3d.engine.grounding_train import cell_labels, fit_head, read_head, save_head

    mask = np.zeros((64, 64), bool)
    mask[:32, :32] = True
    lab = cell_labels(mask, (4, 4), 2)
    assert lab[0, 0] == 3 and lab[3, 3] == 0
    torch.manual_seed(0)
    x = torch.randn(4, gh.PYRAMID_DIM, 4, 4).half()
    y = torch.stack([lab] * 4)
    head = fit_head(x, y, steps=30, batch=4)
    save_head(head, tmp_path / "h.pt")
    again = read_head(tmp_path / "h.pt")
    assert again.classes == head.classes and len(head.classes) == 17
    assert torch.equal(again(x[:1].float()), head(x[:1].float()))
    (tmp_path / "bad.pt").write_text("nope")
    from mesc3d.errors import BadInputError

    with pytest.raises(BadInputError, match="not a (readable )?grounding head"):
        read_head(tmp_path / "bad.pt")


@pytest.fixture(scope="module")
def small_head(tmp_path_factory):
    """A head trained like the real one, on fewer scenes and steps (test-sized)."""
    from mesc3d.engine.grounding_train import save_head, train_head
    from mesc3d.models.effnet_lite0 import load_effnet_lite0

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("ghead") / "head.pt"
    save_head(train_head(load_effnet_lite0(), per_class=8, steps=200, members=2), path)
    return path


@pytest.mark.slow
def test_small_benchmark_on_held_out_photos(small_head, tmp_path, monkeypatch):
    """Test-sized grounding benchmark: one scene per class on the held-out photos."""
    import sys
    from pathlib import Path

    monkeypatch.setenv("MESC3D_CACHE", str(tmp_path / "cache"))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from grounding import evaluate, summary

    from mesc3d.engine.ground import Grounder

    grounder = Grounder(head_path=small_head)
    per = summary(evaluate(grounder, cp.benchmark_scenes(1)))
    mean = per[per["category"] == "mean"].iloc[0]
    assert mean["n"] == 17
    assert mean["box_iou"] > 0.4 and mean["hit50"] > 0.5, per.to_string()


def test_head_ensemble_averages_its_members_probabilities(tmp_path):
    from mesc3d.engine.grounding_train import read_head, save_head
    from mesc3d.errors import BadInputError

    torch.manual_seed(0)
    a, b = gh.GroundingHead(["x", "y"], width=8), gh.GroundingHead(["x", "y"], width=8)
    both = gh.GroundingHead.ensemble([a, b])
    pyr = torch.randn(2, gh.PYRAMID_DIM, 3, 5)  # (B, D, h, w)
    want = (a(pyr).softmax(1) + b(pyr).softmax(1)) / 2
    assert torch.allclose(both(pyr).softmax(1), want, atol=1e-6)
    assert torch.equal(a(pyr), a.members[0](pyr))  # one member: its own logits
    save_head(both, tmp_path / "h.pt")
    again = read_head(tmp_path / "h.pt")
    assert len(again.members) == 2 and torch.equal(again(pyr), both(pyr))
    with pytest.raises(ValueError, match="cannot be averaged"):
        gh.GroundingHead.ensemble([a, gh.GroundingHead(["x", "z"], width=8)])
    with torch.no_grad():
        b.members[0][0].weight[0, 0] = float("nan")
    save_head(gh.GroundingHead.ensemble([a, b]), tmp_path / "nan.pt")
    with pytest.raises(BadInputError, match="non-finite weights"):
        read_head(tmp_path / "nan.pt")


def test_multiscale_head_score_averages_the_maps_of_each_photo_size():
    """The photo-wide map: the mean of the head's maps at each longer side of MAP_SIDES (the 512-px
    pyramid reused), at photo size; the side 512 alone is plain ``head_score`` on that pyramid."""
    from mesc3d.models.effnet_lite0 import load_effnet_lite0

    torch.manual_seed(0)
    net, head = load_effnet_lite0().eval(), gh.GroundingHead(["x", "y"], width=8).eval()
    rgb = cp.photo("coffee")[::4, ::4].copy()  # (100, 150, 3)
    pyr, _, _ = gh.pyramid(net, gh.network_input(rgb))
    hw = rgb.shape[:2]
    one = gh.multiscale_head_score(net, head, rgb, pyr, 1, sides=(gh.GRID_SIDE,))
    assert one.shape == hw and np.array_equal(one, gh.head_score(head, pyr, 1, hw))
    big = gh.head_score(head, gh.pyramid(net, gh.network_input(rgb, 256))[0], 1, hw)
    both = gh.multiscale_head_score(net, head, rgb, pyr, 1, sides=(gh.GRID_SIDE, 256))
    assert np.allclose(both, (one + big) / 2, atol=1e-6) and not np.allclose(both, one)
    assert all(s % 32 == 0 for s in gh.MAP_SIDES)


def test_cell_loss_mines_the_hardest_background_cells():
    from torch.nn import functional as F

    from mesc3d.engine import grounding_train as gt

    y = torch.zeros(1, 2, 4, dtype=torch.long)  # 8 background cells ...
    y[0, 0, 0] = 3  # ... but one object cell
    y[0, 1, 3] = -100  # and one ignored
    logits = torch.zeros(1, 18, 2, 4)
    logits[0, 5, 1, 1] = 4.0  # one background cell scored confidently as a class: the hard one
    ce = F.cross_entropy(logits, y, ignore_index=-100, reduction="none")[0]
    bg = ce[y[0] == 0]
    k = max(1, int(gt.HARD_BG_SHARE * bg.numel()))  # 6 background cells -> the hardest 1
    want = (ce[0, 0] + gt.BG_WEIGHT * bg.sum() + gt.HARD_BG_EXTRA * bg.topk(k).values.sum()) / 7
    assert torch.allclose(gt.cell_loss(logits, y), want)
    assert float(bg.topk(k).values[0]) == pytest.approx(float(ce[1, 1]))
    # the hard cell weighs BG_WEIGHT + HARD_BG_EXTRA, an easy one BG_WEIGHT
    g = torch.autograd.grad(gt.cell_loss(logits.requires_grad_(), y), logits)[0]
    assert float(g[0, 5, 1, 1]) > 3 * float(g[0, 5, 1, 2].abs()) > 0
    assert torch.isfinite(gt.cell_loss(logits, torch.full_like(y, -100)))  # nothing labelled: 0, not NaN


def test_second_look_refines_on_a_window_centred_on_the_first_box(monkeypatch):
    """Candidates -> zoomed windows (the one peaking highest wins) -> one more window around the box
    found there, whose map gives the box."""
    from mesc3d.engine.ground import Grounder

    g = Grounder.__new__(Grounder)  # no networks: the zoomed maps are given
    g.net = g.head = None
    g.threshold, g.pad, g.grow = 0.6, 0.0, None
    score = np.zeros((200, 300))
    score[20:40, 30:50] = 1.0  # the strongest region (a look-alike)
    score[120:150, 200:240] = 0.8  # the object
    calls = []

    def zoom_scores(net, head, rgb, wins, class_index):
        calls.append(list(wins))
        maps = []
        for left, top, side in wins:
            m = np.zeros((side, side))
            if left <= 220 < left + side and top <= 135 < top + side:  # windows that see the object
                m[135 - top - 10:135 - top + 10, 220 - left - 12:220 - left + 12] = 2.0 if len(calls) > 1 else 1.5
            elif len(calls) == 1:
                m[:5, :5] = 1.0
            maps.append(m)
        return maps

    monkeypatch.setattr(gh, "zoom_scores", zoom_scores)
    box = g.second_look(np.zeros((200, 300, 3), np.uint8), score, 4)
    assert len(calls) == 2 and len(calls[0]) == 2 and len(calls[1]) == 1
    left, top, side = calls[1][0]
    assert left <= 208 and left + side >= 232 and top <= 125 and top + side >= 145  # centred on the object
    assert box == (208, 125, 232, 145)
