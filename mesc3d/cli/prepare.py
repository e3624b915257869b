"""``mesc3d prepare``: fixed GT point clouds and view lists per split, one ``.npz`` per split.

Usage::

    mesc3d prepare --config RUN.yaml [--set key=value ...] [--out P] [--workers W] [-v]

Inputs (from the run config): ``data.source`` (a key of ``mesc3d.registries.DATA_SOURCES``: the
reader of the layout ``data.root`` R holds -- ShapeNet (``ShapeNetV1PointCloud/``,
``ShapeNetV1Renderings/``) and optionally ``pix3d/``; Pix3D; or a folder of meshes
``R/<class>/<name>.<ext>``, rendered and sampled by ``mesc3d.data.meshes``);
``data.categories`` (seen), ``data.unseen_categories``, ``data.n_gt_points`` G, ``data.n_views`` V,
``data.train_frac`` / ``data.val_frac``.

Outputs in P (default ``data.prepared``), each written atomically, ``summary.json`` last:
- ``train.npz``, ``val.npz``, ``test.npz``: seen classes, ShapeNet split rule (per class, sorted ids,
  first 70% / next 10% / last 20%), or with ``data.source: pix3d`` the Pix3D photos of the seen
  classes (BDM split, see ``mesc3d.data.splits.read_pix3d``); ``zeroshot.npz``: every Pix3D record of the unseen classes
  (written with 0 records, and a log line, when R has no ``pix3d/``, so the file set is fixed);
  ``pix3d_test.npz``: the Tab. 2 test photos -- with ``data.source: pix3d`` the same records as
  ``test.npz``, else every Pix3D record of the seen classes (a model trained on ShapeNet never saw
  them; 0 records when there are none).  A source without Pix3D photos (``meshes``) writes both with
  0 records.  Keys: ``points`` float32 (S, G, 3) (fixed
  subset seeded by the shape id / model path, then unit ball), ``shape_ids`` str (S,),
  ``categories`` str (S,), ``images`` str (S, V) and ``masks`` str (S, V) relative to ``root``,
  ``bboxes`` float32 (S, V, 4) (NaN for ShapeNet), ``root`` str, ``source`` str.
- ``summary.json``: counts per split and category, G, V, root, source, a hash of the data config,
  and what the source reader adds (``meshes``: the meshes skipped, per reason and class).

Every model is validated first (dense points finite, all V renders present, RGBA, square, at least
``data.crop`` wide and fully decoded -- a truncated PNG stops here, naming the file; Pix3D files
present, meshes with faces and finite vertices); any problem stops the command with one line
naming the file, before anything is written.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from mesc3d.cli._common import add_config_args, setup_logging
from mesc3d.config import config_hash, load_config
from mesc3d.data.splits import empty_arrays, pix3d_test_arrays, zeroshot_arrays
from mesc3d.io import save_npz, write_json
from mesc3d.registries import DATA_SOURCES, load_reader

log = logging.getLogger("mesc3d.prepare")


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
    source = DATA_SOURCES[cfg.data.source]
    files, extra = load_reader(source.reader)(root, cfg, args.workers, out)
    if source.pix3d_photos:
        files["zeroshot"] = zeroshot_arrays(root, cfg, args.workers)
        files["pix3d_test"] = pix3d_test_arrays(root, cfg, args.workers, files)
    else:
        files["zeroshot"] = files["pix3d_test"] = empty_arrays(root, cfg, cfg.data.source)
    # everything validated and computed: now write (each file atomically, the summary last)
    for name, arrays in files.items():
        save_npz(out / f"{name}.npz", **arrays)
    summary = {
        "root": str(root), "n_gt_points": cfg.data.n_gt_points, "n_views": cfg.data.n_views,
        "data_config_hash": config_hash(cfg, ("data",)),
        "splits": {name: {"n": int(len(a["points"])), "per_category": _counts(a)} for name, a in files.items()},
    }
    if extra:
        summary["source"] = {"name": cfg.data.source, **extra}
    write_json(out / "summary.json", summary)
    n_total = sum(v["n"] for v in summary["splits"].values())
    seconds = time.monotonic() - t0
    log.info("prepared %s in %s: %d records in %.1f s (%.1f shapes/s, %d workers)",
             ", ".join(f"{k}={v['n']}" for k, v in summary["splits"].items()), out, n_total, seconds,
             n_total / max(seconds, 1e-9), args.workers)
    return 0
