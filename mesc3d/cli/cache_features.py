"""``mesc3d cache-features``: encode every GT cloud of one split with the frozen point encoder into HDF5.

    mesc3d cache-features --config RUN.yaml --split-file P/train.npz [--encoder-ckpt W/pointmae.pt] \
        --out F/train.h5 [--batch-size 64] [--set k=v]

Inputs
- ``--split-file``: a prepared split (``mesc3d prepare``): ``points`` float32 (S, G, 3), ``shape_ids`` str (S,),
  ``categories`` str (S,).
- ``--encoder-ckpt``: Point-MAE weights (official ``modelnet_1k.pth``/``pretrain.pth`` or ours); default
  ``model.point_mae.checkpoint``; none -> a random-init encoder seeded with ``seed`` (warned).
Output (``--out``, written atomically; layout in ``mesc3d.data.feature_cache``)
- ``features`` (S, 2*trans_dim) in ``prompt.feature_dtype``, ``shape_ids`` (S,), ``class_ids`` (S,) into
  ``data.categories`` (-1 for any other class), ``categories``; attrs ``encoder``, ``checkpoint_sha256``,
  ``split_file``.
The encoder runs in eval mode under ``torch.no_grad()`` (official code ran it in train mode, docs/design.md).
Throughput (shapes/s) is logged.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from mesc3d.cli._common import add_config_args
from mesc3d.engine.stage import open_stage

log = logging.getLogger("mesc3d.cache_features")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesc3d cache-features", description=__doc__.split("\n")[0])
    add_config_args(parser)
    parser.add_argument("--split-file", required=True, help="prepared split, e.g. P/train.npz")
    parser.add_argument("--encoder-ckpt", default=None, help="Point-MAE weights (default model.point_mae.checkpoint)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", required=True, help="output HDF5, e.g. F/train.h5")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stage = open_stage("cache_features", args)
    cfg = stage.cfg

    from mesc3d.data.feature_cache import write_feature_cache
    from mesc3d.engine.point_features import build_encoder, encode_points
    from mesc3d.errors import BadInputError
    from mesc3d.io import load_npz

    split = load_npz(args.split_file, required=("points", "shape_ids", "categories"))
    points = split["points"]
    if points.ndim != 3 or points.shape[-1] != 3 or len(points) != len(split["shape_ids"]):
        raise BadInputError(args.split_file, f"points must be (S, G, 3) matching shape_ids, got {points.shape}")
    lookup = {name: i for i, name in enumerate(cfg.data.categories)}
    class_ids = np.array([lookup.get(str(c), -1) for c in split["categories"]], dtype=np.int64)
    if (class_ids < 0).any():
        log.warning("%d shapes belong to classes outside data.categories (class_id -1)", int((class_ids < 0).sum()))

    stage.seed()  # build_encoder seeds torch again with the same seed: the same stream
    encoder, name, digest = build_encoder(cfg, args.encoder_ckpt)
    t0 = time.perf_counter()
    feats = encode_points(encoder, points, args.batch_size, desc=Path(args.split_file).stem)
    dt = time.perf_counter() - t0
    log.info("encoded %d shapes (%d points each) in %.1f s: %.1f shapes/s", len(points), points.shape[1], dt,
             len(points) / max(dt, 1e-9))
    write_feature_cache(args.out, feats, [str(s) for s in split["shape_ids"]], class_ids, cfg.data.categories,
                        attrs={"encoder": name, "checkpoint_sha256": digest,
                               "split_file": str(Path(args.split_file).resolve())},
                        dtype=cfg.prompt.feature_dtype)
    log.info("wrote %s: features %s %s", args.out, feats.shape, cfg.prompt.feature_dtype)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
