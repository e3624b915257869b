"""Benchmark of stage 1 (3DSPL): Point-MAE encode throughput and one stage-1 epoch from the HDF5 cache vs
encoding the GT clouds on the fly.

Usage:  .venv/bin/python bench/stage1.py --config RUN.yaml --split-file P/train.npz [--max-shapes 200]
        (without --split-file: random clouds of data.n_gt_points points, 13 classes)

What is timed (CPU, wall clock, after one warm-up batch):
  encode      frozen PointMAEEncoder, eval, no grad, batch 32: shapes/s
  cached      one stage-1 epoch (forward + backward + Adam step per batch of prompt.batch_size) on
              features read from an HDF5 cache written by mesc3d.data.feature_cache (read time included)
  on-the-fly  the same epoch, but every batch's features are computed by the frozen encoder first
              (what the official code does, docs/design.md)
Prints one line per measurement and the speed-up on-the-fly / cached.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--split-file", default=None)
    parser.add_argument("--max-shapes", type=int, default=200)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from mesc3d.engine.point_features import build_encoder, encode_points
    from mesc3d.config import load_config
    from mesc3d.data.feature_cache import read_feature_cache, write_feature_cache
    from mesc3d.io import load_npz
    from mesc3d.models.prompt_stage1 import Stage1Model

    cfg = load_config(args.config, args.set)
    cats = list(cfg.data.categories)
    if args.split_file:
        split = load_npz(args.split_file, required=("points", "categories"))
        points, names = split["points"][: args.max_shapes], split["categories"][: args.max_shapes]
        labels = np.array([cats.index(str(n)) for n in names])
    else:
        rng = np.random.default_rng(0)
        points = rng.normal(size=(args.max_shapes, cfg.data.n_gt_points, 3)).astype(np.float32)
        labels = np.arange(args.max_shapes) % len(cats)
    s = len(points)
    print(f"{s} shapes x {points.shape[1]} points; threads {torch.get_num_threads()}; "
          f"point_mae trans_dim {cfg.model.point_mae.trans_dim} depth {cfg.model.point_mae.depth}; "
          f"text {cfg.prompt.text_backend} n_deep {cfg.prompt.n_deep}")

    encoder, _, _ = build_encoder(cfg, None)
    encode_points(encoder, points[:8], 8, desc="warm-up")
    t0 = time.perf_counter()
    feats = encode_points(encoder, points, 32, desc="encode")
    t_enc = time.perf_counter() - t0
    print(f"encode      {s / t_enc:8.1f} shapes/s ({t_enc:.2f} s for {s})")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.h5")
        write_feature_cache(path, feats, [str(i) for i in range(s)], labels, cats, dtype=cfg.prompt.feature_dtype)
        torch.manual_seed(0)
        model = Stage1Model(cfg.prompt, cats, feats.shape[1])
        opt = torch.optim.Adam(model.trainable_parameters(), lr=cfg.prompt.lr)
        bs = max(2, min(cfg.prompt.batch_size, s))

        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            loss = model(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.clamp_temperature()

        y_all = torch.from_numpy(labels)
        step(torch.from_numpy(feats[:bs]), y_all[:bs])  # warm-up
        t0 = time.perf_counter()
        cache = read_feature_cache(path)
        x_all = torch.from_numpy(cache.features)
        for b in range(0, s - bs + 1, bs):
            step(x_all[b: b + bs], y_all[b: b + bs])
        t_cached = time.perf_counter() - t0
        t0 = time.perf_counter()
        for b in range(0, s - bs + 1, bs):
            with torch.no_grad():
                x = encoder(torch.from_numpy(points[b: b + bs]))  # (bs, F)
            step(x, y_all[b: b + bs])
        t_fly = time.perf_counter() - t0
    n_steps = max(1, s // bs)
    print(f"cached      {t_cached:8.2f} s/epoch ({n_steps} steps of {bs})")
    print(f"on-the-fly  {t_fly:8.2f} s/epoch")
    print(f"speed-up    {t_fly / t_cached:8.1f}x (stage-1 epoch, cache vs on-the-fly)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
