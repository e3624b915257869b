"""``mesc3d synth``: generate the procedural benchmark in the real ShapeNet/Pix3D layouts.

Usage::

    mesc3d synth --out DIR [--per-class N] [--unseen-per-class M] [--images-per-model J] [--pix3d-seen-per-class N]
                 [--seed S] [--dense-points K] [--views V] [--image-size P]
                 [--categories c1 c2 ...] [--unseen-categories u1 ...] [--workers W] [--overwrite]

Inputs: none (procedural).  Outputs under DIR (see ``mesc3d.data.synthetic``):
``ShapeNetV1PointCloud/<synset>/<id>.points.ply.npy`` float32 (K, 3);
``ShapeNetV1Renderings/<synset>/<id>/rendering/{00..V-1}.png`` (P x P RGBA) + ``rendering_metadata.txt``
+ ``renderings.txt``; ``pix3d/pix3d.json`` + ``pix3d/{img,mask}/<cat>/*.png`` +
``pix3d/model/<cat>/<name>/model.obj``; ``manifest.json`` (written last).  The directory appears
complete or not at all (built in ``DIR.partial``, then renamed).  Same arguments -> identical bytes,
whatever ``--workers``.  An existing DIR is replaced when it holds only synth output (its
layout folders and ``manifest.json``); anything else needs ``--overwrite``.  stdout: one JSON
line ``{out, tree_sha256, n_files}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from mesc3d.categories import SEEN, UNSEEN
from mesc3d.cli._common import setup_logging
from mesc3d.data.synthetic import SynthCfg, generate


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d synth", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output data root")
    p.add_argument("--per-class", type=int, default=30, help="models per seen class")
    p.add_argument("--unseen-per-class", type=int, default=8, help="models per unseen (Pix3D) class")
    p.add_argument("--pix3d-seen-per-class", type=int, default=0,
                   help="models per seen class that Pix3D also has (chair, sofa, table), in the Pix3D layout")
    p.add_argument("--images-per-model", type=int, default=2, help="Pix3D photos per unseen model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dense-points", type=int, default=10000, help="surface samples per seen model")
    p.add_argument("--views", type=int, default=24)
    p.add_argument("--image-size", type=int, default=137)
    p.add_argument("--categories", nargs="+", default=list(SEEN), help="seen classes")
    p.add_argument("--unseen-categories", nargs="*", default=list(UNSEEN), help="unseen classes")
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--overwrite", action="store_true", help="replace DIR even if it holds foreign files")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    cfg = SynthCfg(per_class=args.per_class, unseen_per_class=args.unseen_per_class,
                   pix3d_seen_per_class=args.pix3d_seen_per_class,
                   images_per_model=args.images_per_model, seed=args.seed, dense_points=args.dense_points,
                   views=args.views, image_size=args.image_size, categories=tuple(args.categories),
                   unseen_categories=tuple(args.unseen_categories))
    t0 = time.perf_counter()
    manifest = generate(args.out, cfg, workers=args.workers, overwrite=args.overwrite)
    dt = time.perf_counter() - t0
    n_seen = sum(len(v) for v in manifest["seen_model_ids"].values())
    n_shapes = n_seen + len(cfg.unseen_categories) * cfg.unseen_per_class
    logging.getLogger("mesc3d.synth").info(
        "%d shapes, %d renders, %d photos in %.1f s -> %s", n_shapes, n_seen * cfg.views,
        manifest["n_pix3d_records"], dt, args.out)
    print(json.dumps({"out": str(args.out), "tree_sha256": manifest["tree_sha256"], "n_files": manifest["n_files"]}))
    return 0
