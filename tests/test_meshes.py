"""data.source meshes: a folder ROOT/<class>/<mesh> of any trimesh format -> prepared splits, and
through the workflow to table1 (config/meshes.yaml); the data-sources registry behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh
import yaml
from conftest import copy_worktree

from mesc3d.config import ENUMS, from_dict
from mesc3d.errors import BadInputError, ConfigError
from mesc3d.registries import DATA_SOURCES, load_reader

REPO = Path(__file__).resolve().parents[1]


def _write_obj(path: Path, v: np.ndarray, f: np.ndarray) -> None:
    text = "".join(f"v {a} {b} {c}\n" for a, b, c in v) + "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in f)
    path.write_text(text)


def mesh_folder(root: Path, classes=("boxes", "spheres"), per_class: int = 4, bad: bool = True) -> Path:
    """``per_class`` good meshes per class in rotating formats (obj ply off stl glb), plus, with ``bad``,
    one file of each bad kind in the first class and a non-mesh file that must be ignored."""
    exts = ("obj", "ply", "off", "stl", "glb")
    for k, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            m = (trimesh.creation.box(extents=(1.0, 1.0 + 0.3 * i, 2.0)) if k % 2 == 0
                 else trimesh.creation.icosphere(subdivisions=2, radius=1.0 + 0.1 * i))
            m.export(root / cls / f"m{i}.{exts[(i + k) % len(exts)]}")
    if bad:
        first = root / classes[0]
        (first / "garbage.stl").write_bytes(b"\x00\xff not a mesh \x12" * 8)  # unreadable
        (first / "nothing.ply").write_bytes(b"")  # empty
        (first / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")  # degenerate (zero area)
        box = trimesh.creation.box()
        v = np.array(box.vertices)
        v[0, 1] = np.nan
        _write_obj(first / "nan.obj", v, np.array(box.faces))  # non-finite vertex
        (first / "readme.txt").write_text("not a mesh suffix: ignored")
    return root


def _cfg(root_dir: Path, **data):
    return from_dict({"data": {"source": "meshes", "root": str(root_dir), "n_gt_points": 64} | data})


def test_registry_is_the_source_enum_and_names_importable_readers():
    assert ENUMS["data.source"] == tuple(DATA_SOURCES)
    assert {"synthetic", "shapenet", "pix3d", "meshes"} <= set(DATA_SOURCES)
    for spec in DATA_SOURCES.values():
        assert callable(load_reader(spec.reader))


def test_prepare_code_fingerprint_covers_the_registry_readers():
    from mesc3d import codedeps

    assert {"mesc3d.data.meshes", "mesc3d.data.splits", "mesc3d.data.render"} <= set(codedeps.closure("mesc3d.cli.prepare"))
    assert "mesc3d.data.meshes" not in codedeps.closure("mesc3d.cli.train")


def test_folder_classes_come_from_the_subfolders(tmp_path):
    for name in ("mugs", "Chair_2", ".hidden"):
        (tmp_path / name).mkdir()
    (tmp_path / "file.obj").write_text("")
    cfg = _cfg(tmp_path)
    assert cfg.data.categories == ("Chair_2", "mugs")  # sorted, hidden folders and files left out
    assert cfg.data.unseen_categories == ()  # meshes has no zero-shot classes
    assert _cfg(tmp_path, categories=["mugs"]).data.categories == ("mugs",)  # a listed subset wins


@pytest.mark.parametrize("data, needle", [
    ({"categories": ["bad name"]}, "bad name"),
    ({"categories": ["mean"]}, "mean"),
    ({"categories": ["a", "a"]}, "duplicate"),
    ({"unseen_categories": ["bed"]}, "unseen"),
    ({"root": "/nonexistent/meshes"}, "data.root"),
])
def test_bad_class_settings_are_one_line(tmp_path, data, needle):
    (tmp_path / "a").mkdir()
    with pytest.raises(ConfigError, match=needle) as err:
        _cfg(tmp_path, **data)
    assert "\n" not in str(err.value)


def test_shapenet_sources_keep_their_closed_vocabulary():
    with pytest.raises(ConfigError, match="spaceship"):
        from_dict({"data": {"source": "shapenet", "categories": ["chair", "spaceship"]}})


def test_prepare_renders_samples_and_skips_bad_meshes(tmp_path, one_thread):
    from mesc3d.cli.prepare import main as prepare_main

    root = mesh_folder(tmp_path / "meshes")
    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump({"data": {"source": "meshes", "root": str(root), "n_gt_points": 64}}))
    out = tmp_path / "prep"
    assert prepare_main(["--config", str(run), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    src = summary["source"]
    assert src["skipped"] == {"unreadable": 1, "empty": 1, "non_finite": 1, "degenerate": 1}
    assert sorted(s["file"] for s in src["skipped_files"]) == [
        "boxes/flat.obj", "boxes/garbage.stl", "boxes/nan.obj", "boxes/nothing.ply"]
    assert src["usable"] == {"boxes": 4, "spheres": 4}
    assert {k: v["n"] for k, v in summary["splits"].items()} == {
        "train": 4, "val": 2, "test": 2, "zeroshot": 0, "pix3d_test": 0}
    train = np.load(out / "train.npz")
    assert train["points"].shape == (4, 64, 3) and str(train["source"]) == "meshes"
    pts = train["points"].astype(np.float64)
    assert np.allclose(pts.mean(axis=1), 0, atol=1e-5)  # GT centred ...
    assert np.allclose(np.linalg.norm(pts, axis=2).max(axis=1), 1, atol=1e-5)  # ... in the unit ball
    assert train["images"].shape == (4, 24)
    first = Path(str(train["root"])) / str(train["images"][0, 0])
    with __import__("PIL.Image").Image.open(first) as im:
        assert (im.mode, im.size) == ("RGBA", (137, 137))
    # the dataset reads them like ShapeNet renders
    from mesc3d.data.dataset import ReconDataset

    cfg = _cfg(root, image_size=32)
    item = ReconDataset(out / "test.npz", cfg.data, list(cfg.data.categories), train=False)[0]
    assert item["image"].shape == (3, 32, 32) and int(item["class_id"]) in (0, 1)
    # the contact sheet finds the classes in the renders (no ShapeNet synsets)
    from mesc3d.cli.contact_sheet import main as sheet_main

    assert sheet_main(["--root", str(out / "renders"), "--out", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 0
    # deterministic: a second prepare writes the same arrays
    out2 = tmp_path / "prep2"
    assert prepare_main(["--config", str(run), "--out", str(out2)]) == 0
    again = np.load(out2 / "train.npz")
    assert np.array_equal(again["points"], train["points"])
    assert (out2 / "renders" / str(train["images"][0, 0])).read_bytes() == first.read_bytes()


def test_a_class_with_too_few_usable_meshes_stops_prepare(tmp_path, one_thread):
    root = mesh_folder(tmp_path / "meshes", per_class=2)  # boxes: 2 good + 4 bad
    cfg = _cfg(root)
    out = tmp_path / "prep"
    with pytest.raises(BadInputError, match=r"'boxes' has 2 usable meshes of 6 mesh files \(4 skipped\)") as err:
        load_reader(DATA_SOURCES["meshes"].reader)(root, cfg, 1, out)
    assert "\n" not in str(err.value)
    assert not (out / "renders").exists()  # stopped before rendering anything


def test_a_listed_class_without_a_folder_is_one_line(tmp_path):
    root = mesh_folder(tmp_path / "meshes", bad=False)
    cfg = _cfg(root, categories=["boxes", "cones"])
    with pytest.raises(BadInputError, match="'cones'"):
        load_reader(DATA_SOURCES["meshes"].reader)(root, cfg, 1, tmp_path / "prep")


@pytest.mark.slow
def test_meshes_config_runs_main_table_end_to_end(tmp_path):
    """`snakemake --configfile config/meshes.yaml --config 'meshes={root: DIR}' main_table` on 2 classes
    x 4 meshes (+ bad files): trains, evaluates and writes table1 with the folder's classes."""
    work = copy_worktree(tmp_path / "repo")
    root = mesh_folder(tmp_path / "my meshes" / "ROOT", classes=("mugs", "boxes"))
    env = {**os.environ, "PYTHONPATH": str(work), "OMP_NUM_THREADS": "1"}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "snakemake", "--configfile", "config/meshes.yaml", "--config",
                          f"meshes={{root: '{root}'}}", "--cores", "2", "main_table"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    seconds = time.monotonic() - t0
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    print(f"meshes main_table: {seconds:.0f} s")
    table = (work / "results/tables/table1_shapenet.csv").read_text().splitlines()
    rows = [line.split(",")[0] for line in table[1:]]
    assert rows == ["mugs", "boxes", "mean"] or rows == ["boxes", "mugs", "mean"], table
    assert rows[:2] == ["boxes", "mugs"]  # the subfolders, sorted
    summary = json.loads((work / "results/data/summary.json").read_text())
    assert sum(summary["source"]["skipped"].values()) == 4
    ev = (work / "results/eval/mesc3d/per_category.csv").read_text()
    assert "boxes" in ev and "mugs" in ev
