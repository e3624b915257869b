"""One-command GPU check: kernels vs naive references, AMP training + resume, NCCL DDP, throughput.

    python bench/gpu_check.py [--out results/gpu_check] [--steps 5] [--batch-size 24]

On a machine with a CUDA GPU (budget: under 8 minutes) it
1. builds the CUDA C++ extension and runs it and the Triton kernels (NN search, FPS) against the
   naive references, values and gradients;
2. runs mixed-precision training steps of the paper preset (MESC3D with the prior) in the training
   loop's precision (bf16 where the GPU supports it, else fp16 + GradScaler), checkpoints after k
   steps, resumes into a fresh model and checks the final weights are bit-identical to a straight run;
3. runs one optimiser step under a one-process NCCL process group with DistributedDataParallel;
4. measures train and eval images/s and the peak GPU memory at ``--batch-size`` (24 = the paper's);
5. measures train images/s and peak GPU memory of {fp32, fp16 + GradScaler, bf16} x {eager,
   ``torch.compile``} (``--variants``), fused Adam, the loss in float32 outside autocast;
and writes ``gpu_check.json`` + ``gpu_check.md`` under ``--out``.  It installs nothing (only what
``pip install -e ".[test]"`` brings).  Without a GPU it prints one line and exits 0.
``--allow-cpu --only kernels`` (with ``TRITON_INTERPRET=1``) runs the kernel part on the CPU, and
``--allow-cpu --only train variants --preset small`` the resume check (CPU autocast, bf16) and the
variant runner: the test suite exercises them that way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHECKS = ("kernels", "train", "ddp", "throughput", "variants")


def _close(a, b, what):
    if not torch.allclose(a.double(), b.double(), atol=1e-5, rtol=1e-4):
        raise AssertionError(f"{what}: max abs diff {float((a.double() - b.double()).abs().max()):.3g}")


def check_kernels(device, report):
    from mesc3d import ops

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 300, 3, generator=g).to(device)
    y = torch.rand(2, 257, 3, generator=g).to(device)
    ref = ops.nearest_sq_dist_naive(x, y)
    backends = ["triton"] + (["cuda"] if device.type == "cuda" else [])
    for be in backends:
        t0 = time.perf_counter()
        out = ops.nearest_sq_dist(x, y, backend=be)
        for k in (0, 2):
            _close(out[k], ref[k], f"{be} nn distances")
        xs, ys = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        (ops.nearest_sq_dist(xs, ys, backend=be)[0].sum() + ops.nearest_sq_dist(xs, ys, backend=be)[2].sum()).backward()
        xr, yr = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        (ops.nearest_sq_dist_naive(xr, yr)[0].sum() + ops.nearest_sq_dist_naive(xr, yr)[2].sum()).backward()
        _close(xs.grad, xr.grad, f"{be} grad x")
        _close(ys.grad, yr.grad, f"{be} grad y")
        fps = ops.farthest_point_sample(x, 32, backend=be)
        if not torch.equal(fps.cpu(), ops.farthest_point_sample_naive(x, 32).cpu()):
            raise AssertionError(f"{be} FPS differs from the naive reference")
        report[f"kernels_{be}_seconds"] = round(time.perf_counter() - t0, 3)


PRECISIONS = ("fp32", "fp16", "bf16")  # fp16 = autocast + GradScaler; bf16 = autocast, no scaler
VARIANTS = tuple(f"{p}:{m}" for p in PRECISIONS for m in ("eager", "compiled"))


def _paper_model(device, preset="paper"):
    from mesc3d.config import from_dict
    from mesc3d.models.mesc3d import MESC3D

    cfg = from_dict({"preset": preset, "model": {"prior_injection": "concat_after_mit"}})
    torch.manual_seed(0)
    return cfg, MESC3D(cfg, prior_in_dim=512).to(device)


def _optimizer(model):
    """Stage 2's optimiser: Adam, fused (one kernel) where torch supports it (``ReconTask``)."""
    from mesc3d.engine.tasks import fused_if_supported

    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=1e-4, eps=1e-6, **fused_if_supported(params))


def _batch(cfg, b, device, seed):
    g = torch.Generator().manual_seed(seed)
    s = cfg.data.image_size
    return (torch.rand(b, 3, s, s, generator=g).to(device), torch.randn(b, 512, generator=g).to(device),
            torch.rand(b, cfg.data.n_gt_points, 3, generator=g).to(device) - 0.5)


def _amp(precision, device):
    """(autocast dtype or None, grad scaler) of a precision; bf16 runs without loss scaling."""
    dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    return dtype, torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def _train_steps(cfg, net, opt, scaler, device, steps, start, b, dtype=None):
    """Stage-2 steps on seeded random batches: forward under autocast ``dtype``, the loss in float32."""
    from mesc3d.engine.losses import reconstruction_loss

    for k in range(start, steps):
        images, prior, gt = _batch(cfg, b, device, k)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            pred = net(images, prior)
        loss = reconstruction_loss(pred.float(), gt)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return net


def default_precision(device) -> str:
    """What the training loop uses with ``train.amp``: bf16 where supported, else fp16 (fp32 on the CPU)."""
    from mesc3d.engine.trainer import amp_dtype

    if device.type != "cuda":
        return "bf16"  # CPU autocast: bf16 (the test path)
    return "bf16" if amp_dtype("auto", device) == torch.bfloat16 else "fp16"


def check_train(device, report, steps=4, b=4, preset="paper", precision=None):
    """Exact resume under mixed precision: k steps, checkpoint, fresh model + resume == a straight run."""
    from mesc3d.engine.checkpoint import load_checkpoint, save_checkpoint

    precision = precision or default_precision(device)

    def fresh():
        cfg, model = _paper_model(device, preset)
        dtype, scaler = _amp(precision, device)
        return cfg, model, _optimizer(model), scaler, dtype

    cfg, model, opt, scaler, dtype = fresh()
    torch.manual_seed(1)
    straight = _train_steps(cfg, model, opt, scaler, device, steps, 0, b, dtype).state_dict()
    cfg, model, opt, scaler, dtype = fresh()
    torch.manual_seed(1)
    _train_steps(cfg, model, opt, scaler, device, steps // 2, 0, b, dtype)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "last.pt"
        save_checkpoint(path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
                               "cpu": torch.get_rng_state(),
                               "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else []})
        state = load_checkpoint(path)
    cfg, model, opt, scaler, dtype = fresh()
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda"])
    resumed = _train_steps(cfg, model, opt, scaler, device, steps, steps // 2, b, dtype).state_dict()
    bad = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    if bad:
        raise AssertionError(f"resumed {precision} training differs from a straight run in {len(bad)} tensors, "
                             f"e.g. {bad[:3]}")
    report["train_resume_precision"] = precision
    report["train_resume_steps"] = steps


def measure_variant(device, variant, b=24, iters=5, preset="paper") -> dict:
    """Train images/s and peak GPU memory of one ``precision:eager|compiled`` variant."""
    precision, mode = variant.split(":")
    cfg, model = _paper_model(device, preset)
    net = torch.compile(model) if mode == "compiled" else model
    opt = _optimizer(model)
    dtype, scaler = _amp(precision, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    _train_steps(cfg, net, opt, scaler, device, 2, 0, b, dtype)  # warm-up: kernels, autotune, compilation
    sync()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    _train_steps(cfg, net, opt, scaler, device, iters, 0, b, dtype)
    sync()
    row = {"variant": variant, "images_per_s": round(b * iters / (time.perf_counter() - t0), 1),
           "warmup_s": round(warm, 1), "batch_size": b}
    if device.type == "cuda":
        row["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def check_variants(device, report, b=24, preset="paper", variants=VARIANTS, iters=5):
    """{fp32, fp16 + scaler, bf16} x {eager, compiled}: one row each (a failing variant is reported)."""
    rows = []
    for v in variants:
        try:
            rows.append(measure_variant(device, v, b, iters, preset))
        except Exception as err:  # e.g. bf16 on a pre-Ampere GPU, compile without a compiler
            rows.append({"variant": v, "error": f"{type(err).__name__}: {str(err)[:200]}"})
    report["variants"] = rows
    failed = [r["variant"] for r in rows if "error" in r]
    if failed:
        raise AssertionError(f"variants failed: {failed}")


def check_ddp(device, report):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, rank=0, world_size=1)
    try:
        cfg, model = _paper_model(device)
        net = DistributedDataParallel(model, device_ids=[device.index or 0] if device.type == "cuda" else None,
                                      find_unused_parameters=True)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        images, prior, gt = _batch(cfg, 2, device, 0)
        from mesc3d.engine.losses import reconstruction_loss

        loss = reconstruction_loss(net(images, prior).float(), gt)
        loss.backward()
        opt.step()
        report["ddp_backend"] = backend
    finally:
        dist.destroy_process_group()


def check_throughput(device, report, b=24, iters=5, preset="paper"):
    """Train (the loop's default precision) and eval images/s and the peak memory at batch ``b``."""
    precision = default_precision(device)
    row = measure_variant(device, f"{precision}:eager", b, iters, preset)
    report["train_images_per_s"], report["train_precision"] = row["images_per_s"], precision
    cfg, model = _paper_model(device, preset)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    dtype, _ = _amp(precision, device)
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
        images, prior, _ = _batch(cfg, b, device, 0)
        model(images, prior)
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            model(images, prior)
        sync()
    report["eval_images_per_s"] = round(b * iters / (time.perf_counter() - t0), 1)
    report["batch_size"] = b
    if "peak_gpu_memory_gib" in row:
        report["peak_gpu_memory_gib"] = row["peak_gpu_memory_gib"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/gpu_check")
    p.add_argument("--only", nargs="+", choices=CHECKS, default=list(CHECKS))
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU (kernels under TRITON_INTERPRET=1)")
    p.add_argument("--batch-size", type=int, default=24)
    p.add_argument("--preset", default="paper", help="model preset of train/throughput/variants (tests: small)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma list of precision:mode (precision fp32|fp16|bf16, mode eager|compiled)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per throughput measurement")
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        p.error(f"--variants: {bad} not in {list(VARIANTS)}")
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_check: no CUDA device (torch %s, CUDA build %s): skipped" % (torch.__version__, torch.version.cuda))
        return 0
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    report = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "cuda": torch.version.cuda, "checks": {}}
    for name in args.only:
        t0 = time.perf_counter()
        try:
            fn = {"kernels": check_kernels, "train": lambda d, r: check_train(d, r, preset=args.preset),
                  "ddp": check_ddp,
                  "throughput": lambda d, r: check_throughput(d, r, args.batch_size, args.steps, args.preset),
                  "variants": lambda d, r: check_variants(d, r, args.batch_size, args.preset, variants,
                                                          args.steps)}[name]
            fn(device, report)
            report["checks"][name] = {"ok": True, "seconds": round(time.perf_counter() - t0, 2)}
        except Exception as err:  # report every failure, keep checking the rest
            report["checks"][name] = {"ok": False, "seconds": round(time.perf_counter() - t0, 2),
                                      "error": f"{type(err).__name__}: {err}",
                                      "trace": traceback.format_exc(limit=4)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    lines = [f"# GPU check: {report['device']} (torch {report['torch']}, CUDA {report['cuda']})", "",
             "| check | ok | seconds | error |", "| --- | --- | --- | --- |"]
    for name, r in report["checks"].items():
        lines.append(f"| {name} | {'yes' if r['ok'] else 'NO'} | {r['seconds']} | {r.get('error', '')} |")
    if report.get("variants"):
        lines += ["", f"Train step, {args.preset} preset, batch {args.batch_size} (images/s, peak GPU memory):", "",
                  "| precision | mode | images/s | peak GiB | warm-up s | error |", "| --- | --- | --- | --- | --- | --- |"]
        for r in report["variants"]:
            prec, mode = r["variant"].split(":")
            lines.append(f"| {prec}{' + scaler' if prec == 'fp16' else ''} | {mode} | {r.get('images_per_s', '')} | "
                         f"{r.get('peak_gpu_memory_gib', '')} | {r.get('warmup_s', '')} | {r.get('error', '')} |")
    lines += [""] + [f"- {k}: {v}" for k, v in report.items()
                     if k not in ("checks", "device", "torch", "cuda", "variants")]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["ok"] for r in report["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
