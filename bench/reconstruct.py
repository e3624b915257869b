"""Time per photo of ``mesc3d reconstruct`` (grounding box -> GrabCut -> crop -> cloud) on 2 CPU threads.

Usage: ``python bench/reconstruct.py --model results/train/mesc3d/model.pt
[--prompts results/pretrain/default/prompts.pt] [--pix3d-root resources/synthetic] [--n 16]``

Loads the pipeline once (printed separately: model, EfficientNet-Lite0, MiniLM + the ImageNet-name
table), then runs the procedural Pix3D-style photos of the unseen classes (text = class name) and
scikit-image's coffee / chelsea / astronaut, and prints the mean seconds per photo per stage (mask =
text match + grounding maps + GrabCut; model = crop + prior + forward), wall and CPU.  One warm-up photo is
not counted.  Wall numbers depend on what else runs on the machine: the CPU seconds are printed too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--prompts", default=None)
    p.add_argument("--pix3d-root", default="resources/synthetic")
    p.add_argument("--n", type=int, default=16, help="procedural photos to time")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    from mesc3d.categories import UNSEEN
    from mesc3d.data import pix3d
    from mesc3d.engine.photo import load_photo
    from mesc3d.engine.reconstruct import Reconstructor

    t0, c0 = time.perf_counter(), time.process_time()
    rec = Reconstructor(args.model, args.prompts)
    print(f"load: {time.perf_counter() - t0:.2f} s wall, {time.process_time() - c0:.2f} s CPU")
    photos = []
    root = Path(args.pix3d_root)
    if pix3d.json_path(root).is_file():
        recs = pix3d.select(pix3d.read_records(root), UNSEEN)
        step = max(1, len(recs) // max(args.n, 1))
        photos += [(load_photo(root / pix3d.PIX3D_DIR / r["img"])[0], r["category"]) for r in recs[::step][: args.n]]
    from skimage import data

    photos += [(data.coffee(), "coffee mug"), (data.chelsea(), "cat"), (data.astronaut(), "astronaut")]
    rec.run(*photos[0])  # warm-up (first-call allocations, prompt encoder for new names)
    rows = []
    for rgb, text in photos:
        c = time.process_time()
        res = rec.run(rgb, text)
        rows.append({**res.timings, "cpu_s": time.process_time() - c, "pixels": rgb.shape[0] * rgb.shape[1]})
    for name, part in (("procedural", rows[:-3]), ("skimage", rows[-3:])):
        if not part:
            continue
        mean = {k: float(np.mean([r[k] for r in part])) for k in ("mask_s", "model_s", "total_s", "cpu_s")}
        print(f"{name}: {len(part)} photos (mean {np.mean([r['pixels'] for r in part]) / 1e3:.0f} kpx), "
              f"{mean['total_s']:.3f} s/photo wall (mask {mean['mask_s']:.3f}, model {mean['model_s']:.3f}), "
              f"{mean['cpu_s']:.3f} s/photo CPU, {args.threads} threads")
    print(json.dumps({"s_per_photo": round(float(np.mean([r["total_s"] for r in rows])), 4)}))


if __name__ == "__main__":
    main()
