"""``mesc3d prepare``: fixed GT point clouds and view lists per split, one ``.npz`` per split.

Usage::

    mesc3d prepare --config RUN.yaml [--set key=value ...] [--out P] [--workers W] [-v]

Inputs (from the run config): ``data.root`` R holding the ShapeNet layout
(``ShapeNetV1PointCloud/``, ``ShapeNetV1Renderings/``) and optionally ``pix3d/``;
``data.categories`` (seen), ``data.unseen_categories``, ``data.n_gt_points`` G, ``data.n_views`` V,
``data.train_frac`` / ``data.val_frac``.

Outputs in P (default ``data.prepared``), each written atomically, ``summary.json`` last:
- ``train.npz``, ``val.npz``, ``test.npz``: seen classes, ShapeNet split rule (per class, sorted ids,
  first 70% / next 10% / last 20%), or with ``data.source: pix3d`` the Pix3D photos of the seen
  classes (BDM split, see ``prepare_pix3d_seen``); ``zeroshot.npz``: every Pix3D record of the unseen classes
  (written with 0 records, and a log line, when R has no ``pix3d/``, so the file set is fixed);
  ``pix3d_test.npz``: the Tab. 2 test photos -- with ``data.source: pix3d`` the same records as
  ``test.npz``, else every Pix3D record of the seen classes (a model trained on ShapeNet never saw
  them; 0 records when there are none).  Keys: ``points`` float32 (S, G, 3) (fixed
  subset seeded by the shape id / model path, then unit ball), ``shape_ids`` str (S,),
  ``categories`` str (S,), ``images`` str (S, V) and ``masks`` str (S, V) relative to ``root``,
  ``bboxes`` float32 (S, V, 4) (NaN for ShapeNet), ``root`` str, ``source`` str.
- ``summary.json``: counts per split and category, G, V, root, a hash of the data config.

Every model is validated first (dense points finite, all V renders present, RGBA, square, at least
``data.crop`` wide and fully decoded -- a truncated PNG stops here, naming the file; Pix3D files
present, meshes with faces and finite vertices); any problem stops the command with one line
naming the file, before anything is written.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mesc3d.cli._common import add_config_args, setup_logging
from mesc3d.config import config_hash, load_config
from mesc3d.data import pix3d, shapenet
from mesc3d.data.sampling import gt_points
from mesc3d.errors import BadInputError
from mesc3d.io import save_npz, write_json

log = logging.getLogger("mesc3d.prepare")


def _shapenet_item(item: tuple, root: str, n_gt: int, n_views: int, min_side: int) -> tuple[np.ndarray, list[str]]:
    cat, synset, mid = item
    rels = shapenet.check_model_views(root, synset, mid, n_views, min_side)  # every render fully decoded
    path = shapenet.points_path(root, synset, mid)
    return gt_points(shapenet.read_points(path), n_gt, key=mid, where=str(path)), rels


def _pix3d_gt(model_rel: str, root: str, n_gt: int) -> np.ndarray:
    """GT of one Pix3D model (``model_rel`` relative to R, already checked by ``pix3d.record_path``)."""
    return pix3d.mesh_gt_points(Path(root) / model_rel, n_gt, key=model_rel[len(pix3d.PIX3D_DIR) + 1:])


def _map(fn, items: list, workers: int, desc: str) -> list:
    bar = dict(total=len(items), desc=desc, unit="shape", disable=None)
    if workers > 1 and len(items) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            return list(tqdm(pool.imap(fn, items, chunksize=8), **bar))
    return [fn(x) for x in tqdm(items, **bar)]


def prepare_shapenet(root: Path, cfg, workers: int) -> dict[str, dict]:
    d = cfg.data
    splits = shapenet.scan(root, list(d.categories), d.train_frac, d.val_frac)
    out = {}
    for split, items in splits.items():
        fn = partial(_shapenet_item, root=str(root), n_gt=d.n_gt_points, n_views=d.n_views, min_side=d.crop)
        res = _map(fn, items, workers, f"prepare {split}")
        s = len(items)
        out[split] = {
            "points": np.stack([r[0] for r in res]) if s else np.zeros((0, d.n_gt_points, 3), np.float32),
            "shape_ids": np.array([it[2] for it in items], dtype=str),
            "categories": np.array([it[0] for it in items], dtype=str),
            "images": np.array([r[1] for r in res], dtype=str).reshape(s, d.n_views),
            "masks": np.full((s, d.n_views), "", dtype=str),
            "bboxes": np.full((s, d.n_views, 4), np.nan, dtype=np.float32),
            "root": np.array(str(root)), "source": np.array("shapenet"),
        }
    return out


def _pix3d_arrays(root: Path, records: list[dict], cfg, workers: int, desc: str) -> dict:
    """Split-file arrays of Pix3D records (one image per record; GT shared by the model's images)."""
    d = cfg.data
    for rec in records:
        pix3d.check_record_files(root, rec)
    rel = {f: [pix3d.record_relpath(root, r, f) for r in records] for f in ("img", "mask", "model")}
    models = sorted(set(rel["model"]))
    gts = dict(zip(models, _map(partial(_pix3d_gt, root=str(root), n_gt=d.n_gt_points), models, workers, desc)))
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


def prepare_pix3d_seen(root: Path, cfg, workers: int) -> dict[str, dict]:
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
    return {name: _pix3d_arrays(root, recs, cfg, workers, f"prepare {name}") for name, recs in splits.items()}


def prepare_zeroshot(root: Path, cfg, workers: int) -> dict:
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


def prepare_pix3d_test(root: Path, cfg, workers: int, files: dict) -> dict:
    if cfg.data.source == "pix3d":
        return files["test"]
    if not (root / pix3d.PIX3D_DIR).is_dir():
        records = []
    else:
        records = pix3d.select(pix3d.read_records(root), cfg.data.categories)
    return _pix3d_arrays(root, records, cfg, workers, "prepare pix3d_test")


def _counts(arrays: dict) -> dict[str, int]:
    cats, n = np.unique(arrays["categories"], return_counts=True)
    return {str(c): int(k) for c, k in zip(cats, n)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mesc3d prepare", description=__doc__.split("\n")[0])
    add_config_args(p)
    p.add_argument("--out", default=None, help="output folder (default: data.prepared)")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    cfg = load_config(args.config, args.set)
    t0 = time.monotonic()
    root = Path(cfg.data.root).absolute()
    out = Path(args.out or cfg.data.prepared)
    if cfg.data.source == "pix3d":
        files = prepare_pix3d_seen(root, cfg, args.workers)
    else:
        files = prepare_shapenet(root, cfg, args.workers)
    files["zeroshot"] = prepare_zeroshot(root, cfg, args.workers)
    files["pix3d_test"] = prepare_pix3d_test(root, cfg, args.workers, files)
    # everything validated and computed: now write (each file atomically, the summary last)
    for name, arrays in files.items():
        save_npz(out / f"{name}.npz", **arrays)
    summary = {
        "root": str(root), "n_gt_points": cfg.data.n_gt_points, "n_views": cfg.data.n_views,
        "data_config_hash": config_hash(cfg, ("data",)),
        "splits": {name: {"n": int(len(a["points"])), "per_category": _counts(a)} for name, a in files.items()},
    }
    write_json(out / "summary.json", summary)
    n_total = sum(v["n"] for v in summary["splits"].values())
    seconds = time.monotonic() - t0
    log.info("prepared %s in %s: %d records in %.1f s (%.1f shapes/s, %d workers)",
             ", ".join(f"{k}={v['n']}" for k, v in summary["splits"].items()), out, n_total, seconds,
             n_total / max(seconds, 1e-9), args.workers)
    return 0
