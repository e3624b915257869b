"""Grounding benchmark on real photos: does ``mesc3d reconstruct --text X`` box and mask X?

Usage: ``python bench/grounding.py [--per-class 6] [--photos held-out|tune] [--threads 2]
[--head HEAD.pt] [--out results/bench/grounding]``

Scenes: each of the 17 classes' procedural renders (shape seed ``BENCH_SHAPE_SEED``, shapes the
grounding head never saw) pasted onto the real photos that ship with scikit-image, one photo after
the other, at a random place with the object's longer side 10-50 % of the photo's shorter side,
30 % of them partly covered by the photo's own content (true box and mask = the visible part).
The text is the class name.  ``--photos held-out`` (default: coffee, chelsea, astronaut, rocket,
retina, camera) is what is reported; ``--photos tune`` uses the photos the head was trained and
its constants chosen on.

Prints per class and overall: mean box IoU, mean mask IoU (GrabCut from the box), the share of
photos with box IoU >= 0.5, seconds per photo (grounding only: EfficientNet-Lite0 passes at 1024
and 512 px, the head, the contrastive CAM, the zoomed looks, GrabCut; models loaded once, not
timed), and the load average; writes
``OUT.csv`` (per scene) and ``OUT.md`` (per class) when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def evaluate(grounder, scenes) -> list[dict]:
    from mesc3d.engine.reconstruct import mask_iou
    from mesc3d.models.grounding import box_iou

    rows = []
    for s in scenes:
        t, c = time.perf_counter(), time.process_time()
        mask, box, source, _ = grounder.ground(s["image"], s["category"])
        sec, cpu = time.perf_counter() - t, time.process_time() - c
        rows.append({"category": s["category"], "photo": s["photo"], "box_iou": box_iou(box, s["box"]),
                     "mask_iou": mask_iou(mask, s["mask"]), "source": source, "seconds": sec, "cpu_seconds": cpu,
                     "size": max(s["box"][2] - s["box"][0], s["box"][3] - s["box"][1])
                     / min(s["image"].shape[:2])})
    return rows


def summary(rows) -> "object":
    import pandas as pd

    df = pd.DataFrame(rows)
    df["hit"] = df["box_iou"] >= 0.5
    per = df.groupby("category", sort=False).agg(n=("box_iou", "size"), box_iou=("box_iou", "mean"),
                                                  mask_iou=("mask_iou", "mean"), hit50=("hit", "mean"),
                                                  seconds=("seconds", "mean")).reset_index()
    mean = {"category": "mean", "n": len(df), "box_iou": df["box_iou"].mean(), "mask_iou": df["mask_iou"].mean(),
            "hit50": df["hit"].mean(), "seconds": df["seconds"].mean()}
    return pd.concat([per, pd.DataFrame([mean])], ignore_index=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=6)
    p.add_argument("--photos", choices=["held-out", "tune"], default="held-out")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--head", default=None, help="grounding head file (default: the cached one)")
    p.add_argument("--out", default=None, help="write OUT.csv (per scene) and OUT.md (per class)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    import cv2

    cv2.setNumThreads(args.threads)
    from mesc3d.data import composite as cp
    from mesc3d.engine.ground import Grounder

    photos = cp.HELD_OUT_PHOTOS if args.photos == "held-out" else cp.TUNE_PHOTOS
    scenes = cp.benchmark_scenes(args.per_class, photos)
    t0 = time.perf_counter()
    grounder = Grounder(head_path=args.head)
    print(f"load: {time.perf_counter() - t0:.2f} s")
    grounder.ground(scenes[0]["image"], scenes[0]["category"])  # warm-up, not counted
    load0 = os.getloadavg()
    rows = evaluate(grounder, scenes)
    load1 = os.getloadavg()
    per = summary(rows)
    md = ["| class | n | box IoU | mask IoU | box IoU >= 0.5 | s/photo |", "|---|---:|---:|---:|---:|---:|"]
    md += [f"| {r.category} | {r.n} | {r.box_iou:.3f} | {r.mask_iou:.3f} | {100 * r.hit50:.0f} % | {r.seconds:.2f} |"
           for r in per.itertuples(index=False)]
    print("\n".join(md))
    cpu = float(np.mean([r["cpu_seconds"] for r in rows]))
    print(f"photos: {args.photos} ({', '.join(photos)}); {args.threads} threads; {cpu:.2f} CPU s/photo; "
          f"load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    if args.out:
        import pandas as pd

        from mesc3d.io import write_csv, write_text

        write_csv(f"{args.out}.csv", pd.DataFrame(rows))
        write_text(f"{args.out}.md", "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
