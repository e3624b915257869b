"""Throughput of the procedural benchmark generator (shapes/s, renders/s) on a small run.

Usage: ``python bench/data.py [--per-class 4] [--unseen-per-class 2] [--workers 1]``

Prints (1) a per-stage CPU breakdown for single shapes (mesh building, 24-view render, PNG encoding,
dense sampling) and (2) the end-to-end wall time of ``mesc3d.data.synthetic.generate`` into a
temporary folder, as shapes/s and renders/s.  Wall numbers depend on what else runs on the machine:
the CPU seconds are printed beside them.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from mesc3d.categories import SEEN, UNSEEN
from mesc3d.data.render import r2n2_cameras, render_photo, render_views
from mesc3d.data.sampling import sample_surface
from mesc3d.data.shapes import make_shape, palette, shape_rng
from mesc3d.data.synthetic import SynthCfg, generate, png_bytes


def cpu_seconds() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def stages(n_per_class: int) -> None:
    t = {"mesh": 0.0, "render24": 0.0, "png24": 0.0, "sample10k": 0.0, "pix3d_photo": 0.0}
    n = 0
    for cat in list(SEEN) + list(UNSEEN):
        for i in range(n_per_class):
            t0 = time.perf_counter()
            rng = shape_rng(0, cat, i)
            mesh, roles = make_shape(cat, rng)
            colors = palette(rng)
            cams = r2n2_cameras(rng)
            t1 = time.perf_counter()
            views = render_views(mesh, roles, colors, cams)
            t2 = time.perf_counter()
            for v in views:
                png_bytes(v, "RGBA")
            t3 = time.perf_counter()
            sample_surface(mesh.vertices, mesh.faces, 10000, rng)
            t4 = time.perf_counter()
            render_photo(mesh, roles, colors, rng)
            t5 = time.perf_counter()
            for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                t[k] += dt
            n += 1
    print(f"per-shape stages over {n} shapes (ms, wall, 1 process): "
          + ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in t.items()))
    print(f"render-only throughput: {24 * n / t['render24']:.0f} renders/s (137x137, 1 process)")


def end_to_end(per_class: int, unseen: int, workers: int) -> None:
    cfg = SynthCfg(per_class=per_class, unseen_per_class=unseen)
    with tempfile.TemporaryDirectory() as tmp:
        c0, t0 = cpu_seconds(), time.perf_counter()
        generate(Path(tmp) / "bench", cfg, workers=workers)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    n_seen = per_class * len(SEEN)
    n_shapes = n_seen + unseen * len(UNSEEN)
    n_images = n_seen * cfg.views + unseen * len(UNSEEN) * cfg.images_per_model
    print(f"generate: {n_shapes} shapes, {n_images} images, workers={workers}: wall {wall:.1f} s, "
          f"CPU {cpu:.1f} s -> {n_shapes / wall:.2f} shapes/s, {n_images / wall:.0f} renders/s "
          f"(CPU-bound rate {n_shapes / cpu:.2f} shapes/CPU-s)")
    per_default = (30 * len(SEEN) + 8 * len(UNSEEN)) / (n_shapes / cpu)
    print(f"estimate for the default (30/seen, 8/unseen class): {per_default:.0f} CPU-s, "
          f"~{per_default / 2:.0f} s wall on 2 free cores")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-class", type=int, default=4)
    p.add_argument("--unseen-per-class", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    np.seterr(all="ignore")
    stages(max(1, args.per_class // 2))
    end_to_end(args.per_class, args.unseen_per_class, args.workers)


if __name__ == "__main__":
    main()
