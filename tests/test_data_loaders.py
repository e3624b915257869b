"""Loaders shared by real and synthetic data: splits, views, GT normalisation, fixed subsets, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from mesc3d.categories import SEEN
from mesc3d.cli import prepare
from mesc3d.config import load_config
from mesc3d.data import images as im
from mesc3d.data.dataset import ReconDataset
from mesc3d.data.pix3d import bdm_split
from mesc3d.data.sampling import (
    fixed_subset, gt_points, normalize_unit_ball, normalize_unit_ball_naive, sample_surface, sample_surface_naive,
)
from mesc3d.data.shapenet import split_ids
from mesc3d.data.synthetic import SynthCfg, generate
from mesc3d.errors import BadInputError, ConfigError

SEEN_CATS = ["airplane", "chair", "table"]
UNSEEN_CATS = ["bed", "tool"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("loaders") / "data"
    generate(root, SynthCfg(per_class=4, unseen_per_class=2, images_per_model=1, dense_points=600,
                            categories=tuple(SEEN_CATS), unseen_categories=tuple(UNSEEN_CATS)))
    return root


def run_config(tmp: Path, root: Path, **data) -> Path:
    cfg = {"preset": "small", "data": {"root": str(root), "prepared": str(tmp / "prep"), "categories": SEEN_CATS,
                                       "unseen_categories": UNSEEN_CATS, "n_gt_points": 256, **data}}
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def prepared(data_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prep")
    cfg_path = run_config(tmp, data_root)
    assert prepare.main(["--config", str(cfg_path)]) == 0
    return tmp / "prep", load_config(cfg_path)


def test_split_rule_sizes_and_order():
    ids = [f"{i:032x}" for i in range(30)][::-1]
    s = split_ids(ids, 0.7, 0.1)
    assert [len(s[k]) for k in ("train", "val", "test")] == [21, 3, 6]
    assert s["train"] + s["val"] + s["test"] == sorted(ids)
    s = split_ids(ids[:10], 0.7, 0.1)
    assert [len(s[k]) for k in ("train", "val", "test")] == [7, 1, 2]


def test_bdm_split_keeps_json_order_per_category():
    recs = [{"category": c, "img": f"{c}{i}"} for i in range(10) for c in ("bed", "desk")]
    s = bdm_split(recs, 0.8)
    assert [r["img"] for r in s["train"] if r["category"] == "bed"] == [f"bed{i}" for i in range(8)]
    assert [r["img"] for r in s["test"] if r["category"] == "desk"] == ["desk8", "desk9"]


def test_unit_ball_normalisation():
    pts = np.random.default_rng(0).normal(3.0, 2.0, (500, 3))
    n = normalize_unit_ball(pts)
    assert np.allclose(n.mean(0), 0.0, atol=1e-6)
    assert np.linalg.norm(n, axis=1).max() == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(n, normalize_unit_ball_naive(pts), atol=1e-6)


def test_area_weighted_sampling():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [13, 0, 0], [10, 1, 0]], dtype=float)
    f = np.array([[0, 1, 2], [3, 4, 5]])  # areas 0.5 and 1.5
    for fn, n in ((sample_surface, 20000), (sample_surface_naive, 2000)):
        p = fn(v, f, n, np.random.default_rng(1))
        frac = (p[:, 0] >= 10).mean()
        assert frac == pytest.approx(0.75, abs=0.04), fn.__name__
        assert np.isfinite(p).all() and np.allclose(p[:, 2], 0)


def test_fixed_subset_is_seeded_by_the_key():
    dense = np.random.default_rng(0).normal(size=(1000, 3))
    a, b = gt_points(dense, 64, "abc"), gt_points(dense.copy(), 64, "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, gt_points(dense, 64, "abd"))
    few = fixed_subset(dense[:10], 64, "k")  # fewer dense points than requested: with replacement
    assert few.shape == (64, 3)
    with pytest.raises(BadInputError, match="fewer"):
        fixed_subset(dense[:10], 64, "k", allow_replace=False)


def test_prepare_outputs(prepared):
    prep, cfg = prepared
    summary = json.loads((prep / "summary.json").read_text())
    # 4 per class: floor(2.8)=2 train, floor(3.2)-2=1 val, 1 test
    assert {k: v["n"] for k, v in summary["splits"].items()} == {"train": 6, "val": 3, "test": 3, "zeroshot": 4,
                                                                   "pix3d_test": 0}
    for split, n in (("train", 6), ("val", 3), ("test", 3)):
        d = np.load(prep / f"{split}.npz")
        assert d["points"].shape == (n, 256, 3) and d["points"].dtype == np.float32
        assert d["images"].shape == (n, 24) and d["bboxes"].shape == (n, 24, 4) and np.isnan(d["bboxes"]).all()
        assert str(d["source"]) == "shapenet"
        norms = np.linalg.norm(d["points"], axis=-1)
        assert np.allclose(norms.max(1), 1.0, atol=1e-6)
        assert np.allclose(d["points"].mean(1), 0.0, atol=1e-5)
        for cat in SEEN_CATS:
            ids = d["shape_ids"][d["categories"] == cat]
            assert list(ids) == sorted(ids)
    z = np.load(prep / "zeroshot.npz")
    assert z["images"].shape == (4, 1) and z["points"].shape == (4, 256, 3) and str(z["source"]) == "pix3d"
    assert set(z["categories"]) == set(UNSEEN_CATS) and not np.isnan(z["bboxes"]).any()
    ids_all = [np.load(prep / f"{s}.npz")["shape_ids"] for s in ("train", "val", "test")]
    assert len(set(np.concatenate(ids_all))) == 12


def test_fixed_evaluation_subset_is_identical_across_runs(prepared, data_root, tmp_path):
    prep, _ = prepared
    assert prepare.main(["--config", str(run_config(tmp_path, data_root)), "--workers", "2"]) == 0
    for split in ("test", "zeroshot"):
        a, b = np.load(prep / f"{split}.npz"), np.load(tmp_path / "prep" / f"{split}.npz")
        assert np.array_equal(a["points"], b["points"]) and np.array_equal(a["shape_ids"], b["shape_ids"])


def test_without_pix3d_zeroshot_is_empty(data_root, tmp_path):
    root = _copy(data_root, tmp_path)
    shutil.rmtree(root / "pix3d")
    assert prepare.main(["--config", str(run_config(tmp_path, root))]) == 0
    z = np.load(tmp_path / "prep" / "zeroshot.npz")
    assert z["points"].shape == (0, 256, 3) and z["images"].shape == (0, 1) and z["bboxes"].shape == (0, 1, 4)
    assert json.loads((tmp_path / "prep" / "summary.json").read_text())["splits"]["zeroshot"]["n"] == 0


def test_dataset_view_rules_and_rng(prepared):
    prep, cfg = prepared
    seen_views = set()
    real = im.load_rgba

    def spy(path):
        seen_views.add(int(Path(path).stem))
        return real(path)

    train = ReconDataset(prep / "train.npz", cfg.data, SEEN_CATS, train=True)
    im.load_rgba, saved = spy, im.load_rgba
    try:
        torch.manual_seed(0)
        for _ in range(40):
            item = train[0]
        assert seen_views and seen_views <= set(range(1, 24)) and len(seen_views) > 5
        seen_views.clear()
        test = ReconDataset(prep / "test.npz", cfg.data, SEEN_CATS, train=False)
        for i in range(len(test)):
            item = test[i]
        assert seen_views == {0}
    finally:
        im.load_rgba = saved
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["points"].shape == (256, 3) and item["class_id"].dtype == torch.int64
    assert torch.equal(test[0]["image"], test[0]["image"])  # eval is deterministic
    torch.manual_seed(3)
    a = train[1]["image"]
    torch.manual_seed(3)
    assert torch.equal(a, train[1]["image"])  # randomness only from torch's global RNG
    assert list(train.categories_of_items) and len(train.shape_ids) == len(train) == 6
    assert [int(train[i]["class_id"]) for i in range(len(train))] == [SEEN_CATS.index(c) for c in
                                                                      train.categories_of_items]


def test_pix3d_dataset_crops_the_bbox(prepared):
    prep, cfg = prepared
    zs = ReconDataset(prep / "zeroshot.npz", cfg.data, SEEN_CATS, train=False)
    item = zs[0]
    assert item["image"].shape == (3, 64, 64) and int(item["class_id"]) == -1
    masked_cfg = load_config(None, ["data.use_mask=true"]).data
    masked = ReconDataset(prep / "zeroshot.npz", masked_cfg, list(SEEN) + UNSEEN_CATS, train=False)
    assert int(masked[0]["class_id"]) == 13
    img = np.zeros((10, 20, 3), np.uint8)
    out = im.square_crop(img, [15, 2, 25, 6])  # 10 wide, 4 high: square rows -1..8, cols 15..24
    assert out.shape == (10, 10, 3) and (out[:, -5:] == 255).all() and (out[0] == 255).all()
    assert (out[1:, :5] == 0).all()


# ------------------------------------------------------------------ bad input (issue #2 item 7)
def _copy(data_root: Path, tmp: Path) -> Path:
    root = tmp / "data"
    shutil.copytree(data_root, root)
    return root


def _first_render_dir(root: Path) -> Path:
    return sorted((root / "ShapeNetV1Renderings" / SEEN["chair"]).iterdir())[0] / "rendering"


def _assert_fails_cleanly(tmp: Path, root: Path, match: str, exc=BadInputError):
    cfg_path = run_config(tmp, root)
    with pytest.raises(exc, match=match):
        prepare.main(["--config", str(cfg_path)])
    assert not (tmp / "prep").exists() or not any((tmp / "prep").iterdir()), "no partial output"


@pytest.mark.parametrize("mode", ["L", "P", "RGB"])
def test_non_rgba_render_is_refused(data_root, tmp_path, mode):
    root = _copy(data_root, tmp_path)
    png = _first_render_dir(root) / "07.png"
    Image.open(png).convert(mode).save(png)
    _assert_fails_cleanly(tmp_path, root, f"07.png: renders must be RGBA PNGs, got mode '{mode}'")
    with pytest.raises(BadInputError, match="RGBA"):
        im.load_rgba(png)


def test_missing_rendering_is_refused(data_root, tmp_path):
    root = _copy(data_root, tmp_path)
    (_first_render_dir(root) / "05.png").unlink()
    _assert_fails_cleanly(tmp_path, root, "05.png: missing rendering")


def _first_model(root: Path) -> Path:
    rec = json.loads((root / "pix3d" / "pix3d.json").read_text())[0]
    return root / "pix3d" / rec["model"]


def test_mesh_without_faces_is_refused(data_root, tmp_path):
    root = _copy(data_root, tmp_path)
    obj = _first_model(root)
    obj.write_text("".join(line + "\n" for line in obj.read_text().splitlines() if line.startswith("v ")))
    _assert_fails_cleanly(tmp_path, root, "model.obj: mesh has no faces")


def test_mesh_with_nonfinite_vertices_is_refused(data_root, tmp_path):
    root = _copy(data_root, tmp_path)
    obj = _first_model(root)
    lines = obj.read_text().splitlines()
    lines[0] = "v nan 0.0 inf"
    obj.write_text("\n".join(lines) + "\n")
    _assert_fails_cleanly(tmp_path, root, "model.obj: mesh has non-finite vertex coordinates")


def test_unknown_category_is_refused(data_root, tmp_path):
    cfg_path = run_config(tmp_path, data_root, categories=["airplane", "spaceship"])
    with pytest.raises(ConfigError, match="spaceship"):
        prepare.main(["--config", str(cfg_path)])
    root = _copy(data_root, tmp_path)
    js = root / "pix3d" / "pix3d.json"
    recs = json.loads(js.read_text())
    recs[1]["category"] = "spaceship"
    js.write_text(json.dumps(recs))
    _assert_fails_cleanly(tmp_path, root, "pix3d.json: record 1 .*unknown category 'spaceship'")


def test_dispatcher_reports_one_line(data_root, tmp_path, capsys):
    from mesc3d.cli import main

    root = _copy(data_root, tmp_path)
    (_first_render_dir(root) / "00.png").unlink()
    assert main(["prepare", "--config", str(run_config(tmp_path, root))]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("mesc3d prepare: error: ") and err.endswith("00.png: missing rendering")
