"""One-command GPU check: kernels vs naive references, AMP training + resume, NCCL DDP, throughput.

    python bench/gpu_check.py [--out results/gpu_check] [--steps 5] [--batch-size 24]

On a machine with a CUDA GPU (budget: under 8 minutes) it
1. builds the CUDA C++ extension and runs it and the Triton kernels (NN search, FPS) against the
   naive references, values and gradients;
2. runs AMP training steps of the paper preset (MESC3D with the prior), checkpoints after k steps,
   resumes into a fresh model and checks the final weights are bit-identical to a straight run;
3. runs one optimiser step under a one-process NCCL process group with DistributedDataParallel;
4. measures train and eval images/s and the peak GPU memory at ``--batch-size`` (24 = the paper's);
and writes ``gpu_check.json`` + ``gpu_check.md`` under ``--out``.  It installs nothing (only what
``pip install -e ".[test]"`` brings).  Without a GPU it prints one line and exits 0.
``--allow-cpu --only kernels`` (with ``TRITON_INTERPRET=1``) runs the kernel part on the CPU: the
test suite exercises it that way.
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

CHECKS = ("kernels", "train", "ddp", "throughput")


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


def _paper_model(device):
    from mesc3d.config import from_dict
    from mesc3d.models.mesc3d import MESC3D

    cfg = from_dict({"preset": "paper", "model": {"prior_injection": "concat"}})
    torch.manual_seed(0)
    return cfg, MESC3D(cfg, prior_in_dim=512).to(device)


def _batch(cfg, b, device, seed):
    g = torch.Generator().manual_seed(seed)
    s = cfg.data.image_size
    return (torch.rand(b, 3, s, s, generator=g).to(device), torch.randn(b, 512, generator=g).to(device),
            torch.rand(b, 2048, 3, generator=g).to(device) - 0.5)


def _train_steps(cfg, model, opt, scaler, device, steps, start, b):
    from mesc3d.engine.losses import reconstruction_loss

    for k in range(start, steps):
        images, prior, gt = _batch(cfg, b, device, k)
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            pred = model(images, prior)
        loss = reconstruction_loss(pred.float(), gt)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return model


def check_train(device, report, steps=4, b=4):
    from mesc3d.engine.checkpoint import load_checkpoint, save_checkpoint

    def fresh():
        cfg, model = _paper_model(device)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        return cfg, model, opt, torch.amp.GradScaler(device.type, enabled=device.type == "cuda")

    cfg, model, opt, scaler = fresh()
    torch.manual_seed(1)
    straight = _train_steps(cfg, model, opt, scaler, device, steps, 0, b).state_dict()
    cfg, model, opt, scaler = fresh()
    torch.manual_seed(1)
    _train_steps(cfg, model, opt, scaler, device, steps // 2, 0, b)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "last.pt"
        save_checkpoint(path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
                               "cpu": torch.get_rng_state(),
                               "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else []})
        state = load_checkpoint(path)
    cfg, model, opt, scaler = fresh()
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda"])
    resumed = _train_steps(cfg, model, opt, scaler, device, steps, steps // 2, b).state_dict()
    bad = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    if bad:
        raise AssertionError(f"resumed AMP training differs from a straight run in {len(bad)} tensors, e.g. {bad[:3]}")
    report["train_amp_steps"] = steps


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


def check_throughput(device, report, b=24, iters=5):
    cfg, model = _paper_model(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _train_steps(cfg, model, opt, scaler, device, 1, 0, b)  # warm-up (kernels, autotune)
    sync()
    t0 = time.perf_counter()
    _train_steps(cfg, model, opt, scaler, device, iters, 0, b)
    sync()
    report["train_images_per_s"] = round(b * iters / (time.perf_counter() - t0), 1)
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        images, prior, _ = _batch(cfg, b, device, 0)
        model(images, prior)
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            model(images, prior)
        sync()
    report["eval_images_per_s"] = round(b * iters / (time.perf_counter() - t0), 1)
    report["batch_size"] = b
    if device.type == "cuda":
        report["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/gpu_check")
    p.add_argument("--only", nargs="+", choices=CHECKS, default=list(CHECKS))
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU (kernels under TRITON_INTERPRET=1)")
    p.add_argument("--batch-size", type=int, default=24)
    args = p.parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_check: no CUDA device (torch %s, CUDA build %s): skipped" % (torch.__version__, torch.version.cuda))
        return 0
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    report = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "cuda": torch.version.cuda, "checks": {}}
    for name in args.only:
        t0 = time.perf_counter()
        try:
            fn = {"kernels": check_kernels, "train": check_train, "ddp": check_ddp,
                  "throughput": lambda d, r: check_throughput(d, r, args.batch_size)}[name]
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
    lines += [""] + [f"- {k}: {v}" for k, v in report.items() if k not in ("checks", "device", "torch", "cuda")]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["ok"] for r in report["checks"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
