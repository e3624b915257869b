"""Split-file arrays of the ShapeNet-layout and Pix3D sources (the readers of ``mesc3d prepare``).

Every reader returns ``{split: arrays}``; the arrays of one split are the keys of a prepared split
file (``mesc3d.data.dataset.KEYS``): ``points`` float32 (S, G, 3) (fixed subset seeded by the shape
id / model path, then unit ball), ``shape_ids`` str (S,), ``categories`` str (S,), ``images`` str
(S, V) and ``masks`` str (S, V) relative to ``root``, ``bboxes`` float32 (S, V, 4) (NaN for renders),
``root`` str, ``source`` str.  Readers validate everything (a bad file stops them with one line
naming it) and write nothing; ``mesc3d prepare`` writes the files.

- ``read_shapenet``: ShapeNet split rule (per class, sorted ids, first 70% / next 10% / last 20%);
- ``read_pix3d``: train/val/test from the Pix3D photos of the seen classes (BDM protocol);
- ``zeroshot_arrays`` / ``pix3d_test_arrays``: the Pix3D records of the unseen / seen classes;
- ``layout_arrays``: the R2N2-layout arrays of ``(category, folder, model_id)`` items (shared with
  ``mesc3d.data.meshes``, whose renders use the class name as folder).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mesc3d.data import pix3d, shapenet
from mesc3d.data.sampling import gt_points
from mesc3d.errors import BadInputError

log = logging.getLogger("mesc3d.prepare")


def _layout_item(item: tuple, root: str, n_gt: int, n_views: int, min_side: int) -> tuple[np.ndarray, list[str]]:
    cat, folder, mid = item
    rels = shapenet.check_model_views(root, folder, mid, n_views, min_side)  # every render fully decoded
    path = shapenet.points_path(root, folder, mid)
    return gt_points(shapenet.read_points(path), n_gt, key=mid, where=str(path)), rels


def _pix3d_gt(model_rel: str, root: str, n_gt: int) -> np.ndarray:
    """GT of one Pix3D model (``model_rel`` relative to R, already checked by ``pix3d.record_path``)."""
    return pix3d.mesh_gt_points(Path(root) / model_rel, n_gt, key=model_rel[len(pix3d.PIX3D_DIR) + 1:])


def map_items(fn, items: list, workers: int, desc: str) -> list:
    """``[fn(x) for x in items]``, on ``workers`` forked processes when > 1, with a progress bar."""
    bar = dict(total=len(items), desc=desc, unit="shape", disable=None)
    if workers > 1 and len(items) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            return list(tqdm(pool.imap(fn, items, chunksize=8), **bar))
    return [fn(x) for x in tqdm(items, **bar)]


def layout_arrays(root: Path, items: list[tuple], cfg, workers: int, desc: str, source: str) -> dict:
    """Split arrays of R2N2-layout models ``[(category, folder, model_id), ...]`` under ``root``."""
    d = cfg.data
    fn = partial(_layout_item, root=str(root), n_gt=d.n_gt_points, n_views=d.n_views, min_side=d.crop)
    res = map_items(fn, items, workers, desc)
    s = len(items)
    return {
        "points": np.stack([r[0] for r in res]) if s else np.zeros((0, d.n_gt_points, 3), np.float32),
        "shape_ids": np.array([it[2] for it in items], dtype=str),
        "categories": np.array([it[0] for it in items], dtype=str),
        "images": np.array([r[1] for r in res], dtype=str).reshape(s, d.n_views),
        "masks": np.full((s, d.n_views), "", dtype=str),
        "bboxes": np.full((s, d.n_views, 4), np.nan, dtype=np.float32),
        "root": np.array(str(root)), "source": np.array(source),
    }


def read_shapenet(root: Path, cfg, workers: int, out: Path | None = None) -> tuple[dict[str, dict], dict]:
    """``data.source: shapenet | synthetic``: the ShapeNet layout of ``data.categories``."""
    d = cfg.data
    splits = shapenet.scan(root, list(d.categories), d.train_frac, d.val_frac)
    return {split: layout_arrays(root, items, cfg, workers, f"prepare {split}", "shapenet")
            for split, items in splits.items()}, {}


def _pix3d_arrays(root: Path, records: list[dict], cfg, workers: int, desc: str) -> dict:
    """Split-file arrays of Pix3D records (one image per record; GT shared by the model's images)."""
    d = cfg.data
    for rec in records:
        pix3d.check_record_files(root, rec)
    rel = {f: [pix3d.record_relpath(root, r, f) for r in records] for f in ("img", "mask", "model")}
    models = sorted(set(rel["model"]))
    gts = dict(zip(models, map_items(partial(_pix3d_gt, root=str(root), n_gt=d.n_gt_points), models, workers, desc)))
    s = len(records)
    return {
        "points": np.stack([gts[m] for m in rel["model"]]) if s else np.zeros((0, d.n_gt_points, 3), np.float32),
        "shape_ids": np.array([Path(r["img"]).stem for r in records], dtype=str),
        "categories": np.array([r["category"] for r in records], dtype=str),
        "images": np.array(rel["img"], dtype=str).reshape(s, 1),
        "masks": np.array(rel["mask"], dtype=str).reshape(s, 1),
        "bboxes": np.array([[r["bbox"]] for r in records], dtype=np.float32).reshape(s, 1, 4),
        "root": np.array(str(root)), "source": np.array("pix3d"),
    }


def empty_arrays(root: Path, cfg, source: str) -> dict:
    """A split with 0 records (the file set of ``mesc3d prepare`` is fixed)."""
    return _pix3d_arrays(root, [], cfg, 1, "") | {"source": np.array(source)}


def read_pix3d(root: Path, cfg, workers: int, out: Path | None = None) -> tuple[dict[str, dict], dict]:
    """``data.source: pix3d`` — train/val/test from the Pix3D photos of ``data.categories``.

    BDM protocol (mlpc-ucsd/BDM): per category, in pix3d.json order, the first
    ``pix3d_train_frac`` (80%) of the records train and the rest test.  BDM has no validation set;
    ours is the last eighth of each category's training part (so 70/10/20 overall), used only for
    model selection.
    """
    d = cfg.data
    if not (root / pix3d.PIX3D_DIR).is_dir():
        raise BadInputError(root / pix3d.PIX3D_DIR, "data.source is pix3d but this folder does not exist")
    records = pix3d.select(pix3d.read_records(root), d.categories)
    parts = pix3d.bdm_split(records, d.pix3d_train_frac)
    train, val = [], []
    for cat in d.categories:
        recs = [r for r in parts["train"] if r["category"] == cat]
        n_val = len(recs) // 8
        train += recs[: len(recs) - n_val]
        val += recs[len(recs) - n_val:]
    splits = {"train": train, "val": val, "test": parts["test"]}
    return {name: _pix3d_arrays(root, recs, cfg, workers, f"prepare {name}") for name, recs in splits.items()}, {}


def zeroshot_arrays(root: Path, cfg, workers: int) -> dict:
    d = cfg.data
    if not (root / pix3d.PIX3D_DIR).is_dir():
        log.info("no %s: zeroshot.npz is written EMPTY (0 records)", root / pix3d.PIX3D_DIR)
        records = []
    else:
        records = pix3d.select(pix3d.read_records(root), d.unseen_categories)
    for cat in d.unseen_categories if records else ():
        if not any(r["category"] == cat for r in records):
            log.warning("pix3d.json has no record of unseen class %r", cat)
    return _pix3d_arrays(root, records, cfg, workers, "prepare zeroshot")


def pix3d_test_arrays(root: Path, cfg, workers: int, files: dict) -> dict:
    if cfg.data.source == "pix3d":
        return files["test"]
    if not (root / pix3d.PIX3D_DIR).is_dir():
        records = []
    else:
        records = pix3d.select(pix3d.read_records(root), cfg.data.categories)
    return _pix3d_arrays(root, records, cfg, workers, "prepare pix3d_test")
