"""Input-pipeline throughput: images/s that the stage-2 loader delivers at 224 px with 0/2/8 workers.

    python bench/data_pipeline.py --split results/data/train.npz [--config results/configs/mesc3d.yaml]
        [--workers 0 2 8] [--batches 20] [--batch-size 24]

Decoding PNG renders, crop, resize to ``data.image_size`` (224 for the paper preset) and collating
seeded items (``engine.runtime.loader_batches``, the code the training uses).  It prints one line per
worker count and the images/s one paper-preset training step consumes on an A100 (from the FLOP
count in docs/performance.md), so the verdict "can an N-core node keep the GPU busy" is one division.
"""

from __future__ import annotations

import argparse
import time

A100_DENSE_FP16_TFLOPS = 312.0  # peak; a convnet+transformer step reaches ~30-40 % of it
UTILISATION = 0.35
TRAIN_GFLOPS_PER_IMAGE = 3 * 17.5  # forward 17.5 GFLOP with the prior (docs/performance.md), x3 fwd+bwd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True)
    p.add_argument("--config", default=None)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2, 8])
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--image-size", type=int, default=224)
    args = p.parse_args()

    from mesc3d.config import load_config
    from mesc3d.data.dataset import ReconDataset
    from mesc3d.engine.runtime import loader_batches

    sets = [f"data.image_size={args.image_size}"]
    cfg = load_config(args.config, sets)
    ds = ReconDataset(args.split, cfg.data, list(cfg.data.categories), train=True)
    n = args.batches * args.batch_size
    idx = [i % len(ds) for i in range(n)]  # cycle a small split (each visit is a fresh decode)
    for w in args.workers:
        t0 = time.perf_counter()
        seen = 0
        for batch in loader_batches(ds, idx, args.batch_size, seed=0, epoch=0, num_workers=w):
            seen += batch["image"].shape[0]
        dt = time.perf_counter() - t0
        print(f"workers={w}: {seen / dt:8.1f} images/s at {args.image_size} px ({seen} images, {dt:.2f} s)")
    need = A100_DENSE_FP16_TFLOPS * UTILISATION * 1e3 / TRAIN_GFLOPS_PER_IMAGE
    print(f"paper-preset training step on an A100 consumes ~{need:.0f} images/s "
          f"({TRAIN_GFLOPS_PER_IMAGE:.1f} GFLOP/image fwd+bwd at {UTILISATION:.0%} of {A100_DENSE_FP16_TFLOPS:.0f} TFLOPS)")


if __name__ == "__main__":
    main()
