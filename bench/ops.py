"""Benchmark of the nearest-neighbour (Chamfer) op: time and peak extra memory, forward and backward.

Usage:  .venv/bin/python bench/ops.py [--sizes 24x2048,24x8192] [--big 2x30000] [--reps 3]

Semantics as MESC's cdloss: d1 = squared NN distance x->y (B, N), d2 = y->x (B, M);
loss = mean(d1) + mean(d2); backward = loss.backward() w.r.t. x and y.  float32, CPU.

Methods:
  naive      mesc3d.ops.nearest_sq_dist_naive (full (B,N,M,3) broadcast of differences)
  cdist+min  torch.cdist(x, y)**2 then .min(2) / .min(1) -- what a user would write
  ours       mesc3d.ops.nearest_sq_dist (torch path: chunked no-grad argmin + exact gather)
  ours-kdtree mesc3d.ops.nearest_sq_dist(backend="kdtree"): scipy cKDTree indices + the same gather
  pcu+gather point-cloud-utils k_nearest_neighbors(k=1) per cloud (KD-tree, numpy) + our gather;
             only if point_cloud_utils is importable (bench-only, not a dependency)
  pykeops    LazyTensor argmin + our gather; only if pykeops is importable

Every (method, size) runs in a fresh subprocess; "peak extra" is ru_maxrss after the run minus
ru_maxrss just before it (inputs already allocated), i.e. the op's own high-water mark.  Times are
the best of --reps runs (1 run for naive and cdist, which are slow and huge).  Configurations whose
full distance matrix would not fit comfortably in RAM are skipped with the estimate printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

METHODS = ("naive", "cdist+min", "ours", "ours-kdtree", "pcu+gather", "pykeops")
RAM_LIMIT_GB = 8.0  # skip naive/cdist configurations whose working set would exceed this


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _estimate_gb(method: str, B: int, N: int, M: int) -> float:
    mat = B * N * M * 4 / 1e9
    return {"naive": 5 * mat, "cdist+min": 3 * mat}.get(method, 0.0)


def _make_fn(method: str):
    import torch

    from mesc3d.ops import nearest_sq_dist, nearest_sq_dist_naive
    from mesc3d.ops.nn_dist import finish_from_indices

    if method == "naive":
        return lambda x, y: nearest_sq_dist_naive(x, y)[0::2]
    if method == "cdist+min":
        def f(x, y):
            d = torch.cdist(x, y) ** 2  # (B, N, M)
            return d.min(2).values, d.min(1).values
        return f
    if method == "ours":
        return lambda x, y: nearest_sq_dist(x, y, backend="torch")[0::2]
    if method == "ours-kdtree":
        return lambda x, y: nearest_sq_dist(x, y, backend="kdtree")[0::2]
    if method == "pcu+gather":
        import point_cloud_utils as pcu

        def f(x, y):
            xs, ys = x.detach().numpy(), y.detach().numpy()
            i1 = [pcu.k_nearest_neighbors(xs[b], ys[b], 1)[1] for b in range(x.shape[0])]
            i2 = [pcu.k_nearest_neighbors(ys[b], xs[b], 1)[1] for b in range(x.shape[0])]
            i1 = torch.as_tensor(__import__("numpy").stack(i1)).long().reshape(x.shape[0], -1)
            i2 = torch.as_tensor(__import__("numpy").stack(i2)).long().reshape(x.shape[0], -1)
            return finish_from_indices(x, y, i1, i2)[0::2]
        return f
    if method == "pykeops":
        from pykeops.torch import LazyTensor

        def f(x, y):
            xi, yj = LazyTensor(x.detach()[:, :, None, :]), LazyTensor(y.detach()[:, None, :, :])
            D = ((xi - yj) ** 2).sum(-1)
            i1 = D.argmin(dim=2).long().view(x.shape[0], -1)
            i2 = D.argmin(dim=1).long().view(x.shape[0], -1)
            return finish_from_indices(x, y, i1, i2)[0::2]
        return f
    raise ValueError(method)


def run_case(method: str, B: int, N: int, M: int, reps: int, threads: int = 0, backward: bool = True) -> dict:
    """Runs inside the subprocess: returns fwd/bwd seconds and peak extra MiB."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    if method == "pcu+gather":
        import point_cloud_utils  # noqa: F401
    if method == "pykeops":
        import pykeops  # noqa: F401
    fn = _make_fn(method)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(B, N, 3, generator=g)
    y0 = torch.rand(B, M, 3, generator=g)
    if method == "pykeops":  # compile once outside the measurement
        fn(x0[:1, :8], y0[:1, :8])
    base = _maxrss_mib()
    fwd, bwd = [], []
    for _ in range(reps):
        x = x0.clone().requires_grad_(backward)
        y = y0.clone().requires_grad_(backward)
        t0 = time.perf_counter()
        d1, d2 = fn(x, y)
        loss = d1.mean() + d2.mean()
        t1 = time.perf_counter()
        if backward:
            loss.backward()
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
        del d1, d2, loss, x, y
    return {"method": method, "B": B, "N": N, "M": M, "fwd_s": min(fwd), "bwd_s": min(bwd),
            "peak_extra_mib": _maxrss_mib() - base, "loss_ok": True}


def _available(method: str) -> bool:
    mod = {"pcu+gather": "point_cloud_utils", "pykeops": "pykeops"}.get(method)
    if mod is None:
        return True
    import importlib.util
    return importlib.util.find_spec(mod) is not None


def _spawn(method: str, B: int, N: int, M: int, reps: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--_case", json.dumps([method, B, N, M, reps, threads])]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"method": method, "B": B, "N": N, "M": M, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(r: dict) -> str:
    head = f"{r['method']:<12} B={r['B']:<3} N=M={r['N']:<6}"
    if "skipped" in r:
        return f"{head} skipped: {r['skipped']}"
    if "error" in r:
        return f"{head} ERROR {r['error']}"
    return (f"{head} fwd {r['fwd_s']:8.3f} s  bwd {r['bwd_s']:8.3f} s  fwd+bwd {r['fwd_s'] + r['bwd_s']:8.3f} s"
            f"  peak extra {r['peak_extra_mib']:8.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="24x2048,24x8192", help="comma list of BxN (N = M)")
    ap.add_argument("--big", default="2x30000", help="BxN for the memory check of our path ('' = skip)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads per case (0 = torch default)")
    ap.add_argument("--_case", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._case:
        method, B, N, M, reps, threads = json.loads(a._case)
        print(json.dumps(run_case(method, B, N, M, reps, threads)))
        return 0

    import torch
    load = os.getloadavg()[0]
    print(f"# torch {torch.__version__}, threads {a.threads or torch.get_num_threads()}, cpu count "
          f"{os.cpu_count()}, load average {load:.1f}, float32, loss = mean(d1)+mean(d2)", flush=True)
    results = []
    for size in filter(None, a.sizes.split(",")):
        B, N = map(int, size.lower().split("x"))
        for method in a.methods.split(","):
            if not _available(method):
                r = {"method": method, "B": B, "N": N, "M": N, "skipped": "not installed"}
            elif _estimate_gb(method, B, N, N) > RAM_LIMIT_GB:
                r = {"method": method, "B": B, "N": N, "M": N,
                     "skipped": f"needs ~{_estimate_gb(method, B, N, N):.0f} GB (> {RAM_LIMIT_GB:.0f} GB limit)"}
            else:
                reps = 1 if method in ("naive", "cdist+min") else a.reps
                r = _spawn(method, B, N, N, reps, a.threads)
            results.append(r)
            print(_fmt(r), flush=True)
    if a.big:
        B, N = map(int, a.big.lower().split("x"))
        r = _spawn("ours", B, N, N, 1, a.threads)
        results.append(r)
        print(_fmt(r) + f"   (full matrix alone would be {B * N * N * 4 / 2**30:.1f} GiB)", flush=True)
    by = {(r["method"], r["B"], r["N"]): r for r in results}
    for size in filter(None, a.sizes.split(",")):
        B, N = map(int, size.lower().split("x"))
        o, c = by.get(("ours", B, N)), by.get(("cdist+min", B, N))
        if o and c and "fwd_s" in o and "fwd_s" in c:
            sp = (c["fwd_s"] + c["bwd_s"]) / (o["fwd_s"] + o["bwd_s"])
            print(f"speed-up ours vs cdist+min (fwd+bwd, B={B}, N=M={N}): {sp:.1f}x; memory "
                  f"{c['peak_extra_mib']:.0f} -> {o['peak_extra_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
