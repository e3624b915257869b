"""Procedural benchmark: meshes, renders, layout, determinism, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mesc3d.categories import ALL_NAMES, SEEN
from mesc3d.data import synthetic
from mesc3d.data.pix3d import load_mesh
from mesc3d.data.render import metadata_text, parse_metadata, r2n2_cameras, r2n2_eye, render_views
from mesc3d.data.shapes import make_shape, model_id, palette, shape_rng
from mesc3d.data.synthetic import SynthCfg, generate
from mesc3d.errors import ConfigError

TINY = dict(per_class=2, unseen_per_class=1, images_per_model=2, dense_points=300,
            categories=("airplane", "chair"), unseen_categories=("bed", "tool"))


@pytest.mark.parametrize("category", ALL_NAMES)
def test_every_class_gives_finite_meshes_with_3d_bbox(category):
    extents = []
    for index in range(4):
        mesh, roles = make_shape(category, shape_rng(7, category, index))
        v = np.asarray(mesh.vertices)
        assert len(mesh.faces) > 0 and np.isfinite(v).all()
        ext = v.max(0) - v.min(0)
        assert (ext > 1e-3).all(), ext
        assert np.linalg.norm(ext) == pytest.approx(1.0)  # ShapeNet v1 frame: bbox diagonal 1
        assert np.allclose((v.max(0) + v.min(0)) / 2, 0.0, atol=1e-9)
        assert roles.shape == (len(mesh.faces),) and set(np.unique(roles)) <= {0, 1, 2}
        assert mesh.area > 0
        extents.append(np.round(ext, 6))
    assert len({tuple(e) for e in extents}) > 1, "shapes within a class should differ"


def test_shapes_and_ids_are_deterministic():
    a, _ = make_shape("chair", shape_rng(3, "chair", 5))
    b, _ = make_shape("chair", shape_rng(3, "chair", 5))
    c, _ = make_shape("chair", shape_rng(4, "chair", 5))
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.faces, b.faces)
    assert not (a.vertices.shape == c.vertices.shape and np.allclose(a.vertices, c.vertices))
    mid = model_id(0, "chair", 1)
    assert len(mid) == 32 and int(mid, 16) >= 0 and mid == model_id(0, "chair", 1) != model_id(1, "chair", 1)


@pytest.mark.parametrize("category", ALL_NAMES)
def test_renders_have_object_inside_frame_on_transparent_background(category):
    rng = shape_rng(0, category, 0)
    mesh, roles = make_shape(category, rng)
    colors = palette(rng)
    views = render_views(mesh, roles, colors, r2n2_cameras(rng, 6))  # (6, 137, 137, 4)
    assert views.shape == (6, 137, 137, 4) and views.dtype == np.uint8
    alpha = views[..., 3]
    for a in alpha:
        assert (a > 0).sum() > 30, "object visible"
        assert a[0].max() == 0 and a[-1].max() == 0 and a[:, 0].max() == 0 and a[:, -1].max() == 0
        assert (a == 0).mean() > 0.3, "mostly transparent background"
    assert set(np.unique(alpha)) <= {0, 255}
    assert (views[..., :3][alpha == 0] == 255).all()


def test_camera_convention():
    eye = r2n2_eye(0.0, 0.0, 1.0)
    assert np.allclose(eye, [1.75, 0.0, 0.0])
    eye = r2n2_eye(90.0, 30.0, 0.8)
    assert np.linalg.norm(eye) == pytest.approx(1.4)
    assert eye[1] == pytest.approx(1.4 * 0.5) and eye[2] < 0
    cams = r2n2_cameras(np.random.default_rng(0), 24)
    meta = parse_metadata(metadata_text(cams))
    assert meta.shape == (24, 5) and np.allclose(meta[:, :4], np.array(cams))
    assert (meta[:, 4] == 25).all() and (meta[:, 2] == 0).all()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "data"
    manifest = generate(out, SynthCfg(**TINY), workers=1)
    return out, manifest


def test_layout_matches_real_formats(tiny):
    out, manifest = tiny
    assert (out / "manifest.json").is_file() and not out.with_name("data.partial").exists()
    for cat in TINY["categories"]:
        ids = manifest["seen_model_ids"][cat]
        assert len(ids) == 2
        for mid in ids:
            pts = np.load(out / "ShapeNetV1PointCloud" / SEEN[cat] / f"{mid}.points.ply.npy")
            assert pts.shape == (300, 3) and pts.dtype == np.float32 and np.isfinite(pts).all()
            rdir = out / "ShapeNetV1Renderings" / SEEN[cat] / mid / "rendering"
            for v in range(24):
                with Image.open(rdir / f"{v:02d}.png") as im:
                    assert im.mode == "RGBA" and im.size == (137, 137)
            assert len(parse_metadata((rdir / "rendering_metadata.txt").read_text())) == 24
            assert (rdir / "renderings.txt").read_text().split() == [f"{v:02d}.png" for v in range(24)]
    records = json.loads((out / "pix3d" / "pix3d.json").read_text())
    assert len(records) == 2 * 1 * 2 and [r["category"] for r in records] == ["bed", "bed", "tool", "tool"]
    for rec in records:
        for key in ("img", "mask", "model", "category", "img_size", "bbox", "rot_mat", "focal_length"):
            assert key in rec
        with Image.open(out / "pix3d" / rec["img"]) as im:
            assert im.mode == "RGB" and list(im.size) == rec["img_size"]
        mask = np.asarray(Image.open(out / "pix3d" / rec["mask"])) > 0
        ys, xs = np.nonzero(mask)
        assert rec["bbox"] == [xs.min(), ys.min(), xs.max(), ys.max()]
        mesh = load_mesh(out / "pix3d" / rec["model"])
        assert len(mesh.faces) > 0
    assert records[0]["model"] == records[1]["model"], "several photos per model"


def test_same_seed_gives_identical_bytes_whatever_the_workers(tiny, tmp_path):
    out, manifest = tiny
    again = generate(tmp_path / "again", SynthCfg(**TINY), workers=2)
    assert again["tree_sha256"] == manifest["tree_sha256"]
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    for rel in files[:: max(1, len(files) // 25)]:
        assert (out / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel
    other = generate(tmp_path / "other", SynthCfg(**{**TINY, "seed": 1}), workers=1)
    assert other["tree_sha256"] != manifest["tree_sha256"]


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = synthetic.build_seen

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "build_seen", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "data", SynthCfg(**TINY), workers=1)
    assert not (tmp_path / "data").exists() and not (tmp_path / "data.partial").exists()


def test_refuses_unknown_category_and_foreign_folder(tmp_path):
    with pytest.raises(ConfigError, match="sofa_bed"):
        generate(tmp_path / "x", SynthCfg(**{**TINY, "categories": ("sofa_bed",)}))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="overwrite"):
        generate(foreign, SynthCfg(**TINY))
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_cli_writes_and_replaces_its_own_output(tmp_path, capsys):
    from mesc3d.cli import synth

    args = ["--out", str(tmp_path / "d"), "--per-class", "1", "--unseen-per-class", "1", "--images-per-model", "1",
            "--dense-points", "100", "--categories", "car", "--unseen-categories", "desk"]
    assert synth.main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert synth.main(args) == 0  # re-running over its own output is allowed
    assert json.loads(capsys.readouterr().out)["tree_sha256"] == first["tree_sha256"]
    assert Path(first["out"]).is_dir()
