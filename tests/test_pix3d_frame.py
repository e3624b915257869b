"""Pix3D records: models come out of ``prepare`` in the ShapeNet v1 frame (BDM protocol), and record
paths that leave the data root are refused by the one check every reader uses."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from mesc3d.cli.prepare import main as prepare_main
from mesc3d.data import pix3d
from mesc3d.data.sampling import normalize_unit_ball, sample_surface, seed_from_key
from mesc3d.data.shapes import make_shape, model_id, shape_rng
from mesc3d.data.synthetic import SynthCfg, build_unseen, obj_text
from mesc3d.errors import BadInputError
from mesc3d.io import load_npz
from realdata_layouts import make_pix3d_tree

# A box that is long along ShapeNet v1's x, medium along y (up), thin along z.
BOX_V1 = np.array([[x, y, z] for x in (-1.0, 1.0) for y in (-0.4, 0.4) for z in (-0.1, 0.1)])
BOX_F = np.array([(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
                  (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)])


def _bdm_v2_to_v1(p):  # BDM experiments/dataset/pix3d.py, written out independently of our constant
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    return np.stack([-z, y, x], axis=1)


def test_transform_is_bdms_rotation_and_inverts():
    p = np.random.default_rng(0).normal(size=(50, 3))
    assert np.allclose(pix3d.to_shapenet_v1(p), _bdm_v2_to_v1(p))
    assert np.allclose(pix3d.from_shapenet_v1(pix3d.to_shapenet_v1(p)), p)
    assert np.isclose(np.linalg.det(pix3d.PIX3D_TO_SHAPENET_V1), 1.0)


def _pix3d_config(tmp_path, tiny_data, root, cats):
    run = yaml.safe_load(tiny_data["config"].read_text())
    run["data"].update(source="pix3d", root=str(root), categories=list(cats), unseen_categories=["desk"])
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run))
    return path


def test_pix3d_frame_mesh_is_aligned_with_its_shapenet_frame_twin(tiny_data, tmp_path):
    root = tmp_path / "data"
    records = make_pix3d_tree(root / "pix3d", cats=("chair", "desk"), per_cat=5)
    model_rel = records[0]["model"]
    (root / "pix3d" / model_rel).write_text(obj_text(pix3d.from_shapenet_v1(BOX_V1), BOX_F))  # Pix3D frame
    stored = np.array([[float(t) for t in ln.split()[1:]] for ln in (root / "pix3d" / model_rel).read_text().splitlines()
                       if ln.startswith("v ")])
    assert np.ptp(stored, axis=0).argmax() == 2  # as stored, the long axis is Pix3D's z
    cfg = _pix3d_config(tmp_path, tiny_data, root, ["chair"])
    out = tmp_path / "prepared"
    assert prepare_main(["--config", str(cfg), "--out", str(out)]) == 0
    test = load_npz(out / "test.npz")
    gt = test["points"][0]  # (G, 3)
    g = gt.shape[0]
    # the twin: the same box written in ShapeNet v1's frame, sampled with the same seed
    twin = normalize_unit_ball(sample_surface(BOX_V1, BOX_F, g, np.random.default_rng(seed_from_key(model_rel))))
    assert np.abs(gt - twin).max() < 1e-5
    extent = np.ptp(gt, axis=0)
    assert extent.argmax() == 0 and extent.argmin() == 2  # long along x, thin along z, as in ShapeNet v1
    assert np.array_equal(load_npz(out / "pix3d_test.npz")["points"], test["points"])  # Tab. 2 test = test


def test_synthetic_pix3d_models_are_written_in_pix3ds_frame(tmp_path):
    cfg = SynthCfg(per_class=0, unseen_per_class=1, images_per_model=1, categories=("chair",),
                   unseen_categories=("desk",))
    rec = build_unseen(tmp_path, cfg, "desk", 0)[0]
    stored = np.array([[float(t) for t in ln.split()[1:]] for ln in (tmp_path / "pix3d" / rec["model"]).read_text()
                       .splitlines() if ln.startswith("v ")])
    mesh, _ = make_shape("desk", shape_rng(cfg.seed, "desk", 0))  # the ShapeNet-v1-frame original
    assert np.abs(stored - pix3d.from_shapenet_v1(mesh.vertices)).max() < 1e-5
    assert np.abs(pix3d.to_shapenet_v1(stored) - mesh.vertices).max() < 1e-5
    assert model_id(cfg.seed, "desk", 0)[:8] in rec["model"]


@pytest.mark.parametrize("field,value,why", [
    ("img", "../../outside.png", "leaves"),
    ("mask", "/etc/passwd", "must be relative"),
    ("model", "model/../../x/model.obj", "leaves"),
    ("img", "img/link.png", "resolves outside"),
])
def test_record_paths_that_leave_the_root_are_refused(tiny_data, tmp_path, field, value, why):
    root = tmp_path / "data"
    records = make_pix3d_tree(root / "pix3d", cats=("chair", "desk"), per_cat=5)
    (tmp_path / "outside.png").write_bytes((root / "pix3d" / records[0]["img"]).read_bytes())
    os.symlink(tmp_path / "outside.png", root / "pix3d" / "img" / "link.png")
    records[1][field] = value
    (root / "pix3d" / "pix3d.json").write_text(json.dumps(records))
    cfg = _pix3d_config(tmp_path, tiny_data, root, ["chair"])
    out = tmp_path / "prepared"
    with pytest.raises(BadInputError, match=why) as err:
        prepare_main(["--config", str(cfg), "--out", str(out)])
    assert "pix3d.json" in str(err.value) and field in str(err.value)
    assert not out.exists()  # nothing half-written
