"""Reader of the Pix3D layout (real Pix3D and the synthetic unseen classes).

``R/pix3d/pix3d.json`` is a list of records; the fields used here are ``img``, ``mask``, ``model``
(paths relative to ``R/pix3d``), ``category``, ``img_size`` [w, h] and ``bbox`` [x0, y0, x1, y1].
GT point clouds come from the record's ``model.obj``: area-weighted surface samples (generator seeded
from the model path, so every image of one model shares one GT cloud), then the unit ball.

BDM protocol split (``bdm_split``): per category, in json order, first 80% train, last 20% test.
Frame: Pix3D's models are stored in another orientation than ShapeNet v1's canonical one (the
frame our networks predict in).  Like the BDM protocol (mlpc-ucsd/BDM,
``experiments/dataset/pix3d.py``, the step it calls "shapenet v2 -> v1"), every Pix3D mesh is
rotated into the ShapeNet v1 frame by ``PIX3D_TO_SHAPENET_V1`` (a 90° turn about the up axis y:
x' = -z, y' = y, z' = x) before its GT is sampled (docs/design.md, "Pix3D frame").

Record paths (``img``, ``mask``, ``model``) must stay inside ``R/pix3d``: ``record_path`` is the one
check, used by every reader of a record file.
"""

from __future__ import annotations

import json
import os
import logging
import math
from pathlib import Path

import numpy as np
import trimesh

from mesc3d.categories import PIX3D_ALL, UNSEEN
from mesc3d.data.sampling import normalize_unit_ball, sample_surface, seed_from_key
from mesc3d.errors import BadInputError, quote

log = logging.getLogger(__name__)
PIX3D_DIR = "pix3d"
REQUIRED = ("img", "mask", "model", "category", "img_size", "bbox")
KNOWN = tuple(dict.fromkeys(PIX3D_ALL + UNSEEN))


# p_shapenet_v1 = PIX3D_TO_SHAPENET_V1 @ p_pix3d (rows: x' = -z, y' = y, z' = x); orthonormal, det +1
PIX3D_TO_SHAPENET_V1 = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def to_shapenet_v1(points: np.ndarray) -> np.ndarray:
    """(N, 3) points in Pix3D's model frame -> ShapeNet v1's frame."""
    return np.asarray(points) @ PIX3D_TO_SHAPENET_V1.T


def from_shapenet_v1(points: np.ndarray) -> np.ndarray:
    """(N, 3) points in ShapeNet v1's frame -> Pix3D's model frame (inverse of ``to_shapenet_v1``)."""
    return np.asarray(points) @ PIX3D_TO_SHAPENET_V1


def json_path(root: str | Path) -> Path:
    return Path(root) / PIX3D_DIR / "pix3d.json"


def read_records(root: str | Path) -> list[dict]:
    """All records of ``pix3d.json``, validated (fields present, known category, sane bbox)."""
    path = json_path(root)
    if not path.is_file():
        raise BadInputError(path, "pix3d.json does not exist")
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BadInputError(path, f"not valid JSON ({err})") from err
    if not isinstance(records, list):
        raise BadInputError(path, "top level must be a list of records")
    for i, rec in enumerate(records):
        missing = [k for k in REQUIRED if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise BadInputError(path, f"record {i} lacks fields {missing}")
        if rec["category"] not in KNOWN:
            raise BadInputError(path, f"record {i} ({rec['img']}): unknown category {quote(rec['category'], 80)}")
        bbox = rec["bbox"]
        numbers = isinstance(bbox, list) and len(bbox) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
        if not numbers or not bbox[2] >= bbox[0] or not bbox[3] >= bbox[1]:
            raise BadInputError(path, f"record {i} ({quote(rec['img'], 80)}): bbox {quote(bbox, 120)} is not four "
                                "numbers [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1")
    return records


def select(records: list[dict], categories) -> list[dict]:
    """Records of ``categories``, in json order."""
    keep = set(categories)
    return [r for r in records if r["category"] in keep]


def bdm_split(records: list[dict], train_frac: float = 0.8) -> dict[str, list[dict]]:
    """BDM protocol: per category, json order, first ``train_frac`` train, the rest test."""
    out: dict[str, list[dict]] = {"train": [], "test": []}
    by_cat: dict[str, list[dict]] = {}
    for r in records:
        by_cat.setdefault(r["category"], []).append(r)
    for recs in by_cat.values():
        cut = int(math.floor(len(recs) * train_frac + 1e-9))
        out["train"] += recs[:cut]
        out["test"] += recs[cut:]
    return out


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Load an OBJ (all groups merged, no processing) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "mesh file does not exist")
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as err:
        raise BadInputError(path, f"not a readable mesh ({type(err).__name__}: {err})") from err
    faces = getattr(mesh, "faces", None)
    if not isinstance(mesh, trimesh.Trimesh) or faces is None or len(faces) == 0:
        raise BadInputError(path, "mesh has no faces")
    if not np.isfinite(np.asarray(mesh.vertices)).all():
        raise BadInputError(path, "mesh has non-finite vertex coordinates")
    return mesh


def mesh_gt_points(path: str | Path, k: int, key: str) -> np.ndarray:
    """GT of a mesh: ``k`` area-weighted samples (seeded by ``key``) -> unit ball, float32 (k, 3)."""
    mesh = load_mesh(path)
    rng = np.random.default_rng(seed_from_key(key))
    vertices = to_shapenet_v1(mesh.vertices)  # (V, 3) Pix3D frame -> ShapeNet v1 frame
    pts = sample_surface(vertices, mesh.faces, k, rng, where=str(path))
    return normalize_unit_ball(pts)


def record_path(root: str | Path, rec: dict, field: str) -> Path:
    """``R/pix3d/<rec[field]>``, refused (``BadInputError``) unless it stays inside ``R/pix3d``.

    Absolute paths, drive letters, ``..`` that climbs out and symlinks that resolve outside are all
    refused: the one check of a record path, used by ``prepare`` for every file it reads or lists.
    """
    base = Path(root) / PIX3D_DIR
    rel = str(rec[field]).replace("\\", "/")
    where = json_path(root)
    if not rel or rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        raise BadInputError(where, f"record {rec.get('img')!r}: {field} path {rel!r} must be relative to {base}")
    norm = os.path.normpath(rel)
    if norm == ".." or norm.startswith("../"):
        raise BadInputError(where, f"record {rec.get('img')!r}: {field} path {rel!r} leaves {base}")
    path = base / norm
    real_base = os.path.realpath(base)
    if os.path.exists(path) and not os.path.realpath(path).startswith(real_base + os.sep):
        raise BadInputError(where, f"record {rec.get('img')!r}: {field} path {rel!r} resolves outside {base}")
    return path


def record_relpath(root: str | Path, rec: dict, field: str) -> str:
    """The checked path of ``rec[field]`` relative to the data root R (as stored in split files)."""
    return record_path(root, rec, field).relative_to(Path(root)).as_posix()


def check_record_files(root: str | Path, rec: dict) -> None:
    for field in ("img", "mask", "model"):
        p = record_path(root, rec, field)
        if not p.is_file():
            raise BadInputError(p, f"missing {field} file of Pix3D record {rec['img']}")
