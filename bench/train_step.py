"""Images/s of one stage-2 training step, with a per-phase breakdown; optionally side by side with
another checkout.

    python bench/train_step.py [--preset small] [--batch-size 8] [--threads 1] [--device cpu]
                               [--steps 12] [--warmup 3] [--set key=value ...]
    python bench/train_step.py --against /path/to/other/checkout --rounds 4 ...

One step is what the training loop does per batch: data (the next seeded batch of an in-memory
dataset through the task's own batch iterator) -> forward (the model, under the loop's autocast)
-> loss (the stage-2 reconstruction loss, NN search included) -> backward -> optimiser (the
optimiser step; zero_grad, the finite checks, the LR schedule and the scaler are "other").  The step
itself is the checkout's own ``Engine._step`` with the ``ReconTask`` of that checkout, so a change
of the loop, the task, the loss or the optimiser shows up here; the phases are timed by wrapping
the network call, ``mesc3d.engine.tasks.reconstruction_loss``, ``torch.Tensor.backward`` and the
optimiser's ``step`` (on CUDA with a synchronize around each).

``--against DIR`` measures the same thing with the code of another checkout (``PYTHONPATH=DIR``),
in alternating subprocesses (this, other, other, this, ...: ``--rounds`` pairs), and prints the
ratio of the medians: on a shared machine only a ratio measured in one run means anything.  The
worker uses only APIs present in both trees (``from_dict``, ``parse_overrides``, ``MESC3D``,
``ReconTask``, ``Engine``, ``LoopCfg`` built from ``cfg.train``); the load average is printed before
and after.  ``--json FILE`` writes every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("data", "forward", "loss", "backward", "optimiser", "other")


# ------------------------------------------------------------------ the measurement (one process)
def _loop_cfg(cfg):
    """The train stage's loop knobs in either tree (newer trees: ``engine.stage.loop_cfg``)."""
    try:
        from mesc3d.engine.stage import loop_cfg

        return loop_cfg(cfg, "train")
    except ImportError:  # older trees built it in the CLI from cfg.train
        from mesc3d.engine.trainer import LoopCfg

        t = cfg.train
        return LoopCfg(t.lr, t.lr_min, t.warmup_lr, t.warmup_epochs, t.epochs, t.max_steps, t.val_every,
                       t.checkpoint_minutes, t.amp, t.device)


class _Items:
    """In-memory stand-in for ``ReconDataset``: image (3, S, S), points (G, 3), class_id."""

    def __init__(self, n: int, size: int, n_points: int, n_classes: int):
        import torch

        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, size, size, generator=g)  # (n, 3, S, S)
        self.points = torch.rand(n, n_points, 3, generator=g) - 0.5  # (n, G, 3)
        self.classes = torch.arange(n) % n_classes

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        import torch

        flip = bool(torch.rand(()) < 0.5)  # a random augmentation, seeded per item by the loop
        img = self.images[i].flip(-1) if flip else self.images[i]
        return {"image": img.clone(), "points": self.points[i].clone(), "class_id": int(self.classes[i])}


def measure(preset: str, batch: int, threads: int, device: str, steps: int, warmup: int,
            overrides: list[str], prior_dim: int = 512) -> dict:
    import torch

    torch.set_num_threads(threads)
    import mesc3d
    from mesc3d.config import deep_merge, from_dict, parse_overrides
    from mesc3d.engine import tasks as tasks_mod
    from mesc3d.engine.trainer import Engine, TrainState
    from mesc3d.models.mesc3d import MESC3D

    base = {"preset": preset, "prompt": {"text_backend": "minilm"},
            "train": {"batch_size": batch, "device": device, "epochs": 1000, "warmup_epochs": 0}}
    cfg = from_dict(deep_merge(base, parse_overrides(overrides)), source="bench")
    torch.manual_seed(0)
    model = MESC3D(cfg, prior_in_dim=prior_dim)
    n_classes = len(cfg.data.categories)
    items = _Items(batch * (steps + warmup), cfg.data.image_size, cfg.data.n_gt_points, n_classes)
    priors = torch.randn(n_classes, prior_dim, generator=torch.Generator().manual_seed(1))
    task = tasks_mod.ReconTask(cfg, model, items, items, priors)
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(cfg, task, _loop_cfg(cfg), Path(tmp) / "last.pt")
    dev = engine.device
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    spent = dict.fromkeys(PHASES, 0.0)
    on = [False]

    def timed(name, fn):
        def wrapper(*a, **k):
            if not on[0]:
                return fn(*a, **k)
            sync()
            t0 = time.perf_counter()
            out = fn(*a, **k)
            sync()
            spent[name] += time.perf_counter() - t0
            return out
        return wrapper

    engine.net = timed("forward", engine.net)
    tasks_mod.reconstruction_loss = timed("loss", tasks_mod.reconstruction_loss)
    torch.Tensor.backward = timed("backward", torch.Tensor.backward)
    engine.optimizer.step = timed("optimiser", engine.optimizer.step)

    st = TrainState()
    batches = iter(task.batches(0, 0, engine.dist))
    total, losses = 0.0, []
    for k in range(warmup + steps):
        on[0] = k >= warmup
        sync()
        t0 = time.perf_counter()
        b = next(batches)
        t1 = time.perf_counter()
        losses.append(engine._step(b, st))
        sync()
        t2 = time.perf_counter()
        st.global_step += 1
        if on[0]:
            spent["data"] += t1 - t0
            total += t2 - t0
    spent["other"] = max(0.0, total - sum(v for k, v in spent.items() if k != "other"))
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"images_per_s": batch * steps / total, "step_s": total / steps,
            "phases_s": {k: v / steps for k, v in spent.items()}, "trainable_params": n_train,
            "final_loss": losses[-1], "mesc3d": str(Path(mesc3d.__file__).resolve().parents[1]),
            "device": str(dev), "threads": torch.get_num_threads(), "preset": preset, "batch_size": batch}


# ------------------------------------------------------------------ the driver
def _revision(tree: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=20).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _run_worker(tree: Path, args, extra: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--preset", args.preset,
           "--batch-size", str(args.batch_size), "--threads", str(args.threads), "--device", args.device,
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    for s in args.set + extra:
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(tree), env=env)
    if res.returncode != 0:
        raise SystemExit(f"train_step: worker for {tree} failed (exit {res.returncode}): {res.stderr[-600:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if Path(out["mesc3d"]) != tree.resolve():
        raise SystemExit(f"train_step: worker for {tree} imported mesc3d from {out['mesc3d']}")
    return out


def _row(label: str, r: dict) -> str:
    ph = r["phases_s"]
    parts = " ".join(f"{k} {1000 * ph[k]:.0f}" for k in PHASES)
    return f"{label:<12} {r['images_per_s']:8.2f} img/s  step {1000 * r['step_s']:.0f} ms  ({parts} ms)"


def _median_phases(runs: list[dict]) -> dict:
    return {k: statistics.median(r["phases_s"][k] for r in runs) for k in PHASES}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--set", action="append", default=[], help="config override key=value (both trees)")
    p.add_argument("--set-this", action="append", default=[],
                   help="config override for this tree only (try a preset change against the other tree's)")
    p.add_argument("--against", type=Path, help="another checkout to compare with (alternating subprocesses)")
    p.add_argument("--rounds", type=int, default=3, help="pairs of alternating runs with --against")
    p.add_argument("--json", type=Path, help="write all measurements here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.preset, args.batch_size, args.threads, args.device, args.steps, args.warmup,
                                 args.set)))
        return 0
    load0 = os.getloadavg()
    here = REPO
    trees = [("this", here)] + ([("against", args.against.resolve())] if args.against else [])
    runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
    rounds = args.rounds if args.against else 1
    print(f"train_step: preset {args.preset}, batch {args.batch_size}, {args.threads} thread(s), {args.device}, "
          f"{args.steps} timed steps after {args.warmup}; load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    for name, tree in trees:
        print(f"  {name}: {tree} ({_revision(tree)})")
    for r in range(rounds):
        order = trees if r % 2 == 0 else trees[::-1]
        for name, tree in order:
            res = _run_worker(tree, args, args.set_this if name == "this" else [])
            runs[name].append(res)
            print(_row(f"{name}[{r}]", res), flush=True)
    load1 = os.getloadavg()
    summary = {"load_before": load0, "load_after": load1, "args": {k: str(v) for k, v in vars(args).items()},
               "runs": runs}
    print("median:")
    for name, _ in trees:
        ips = statistics.median(x["images_per_s"] for x in runs[name])
        med = _median_phases(runs[name])
        share = " ".join(f"{k} {100 * v / sum(med.values()):.0f}%" for k, v in med.items())
        print(f"  {name:<8} {ips:8.2f} img/s, {runs[name][0]['trainable_params'] / 1e6:.2f} M trainable ({share})")
        summary[f"{name}_images_per_s"] = ips
    if args.against:
        ratio = summary["this_images_per_s"] / summary["against_images_per_s"]
        pairs = [a["images_per_s"] / b["images_per_s"] for a, b in zip(runs["this"], runs["against"])]
        summary["ratio"], summary["pair_ratios"] = ratio, pairs
        print(f"ratio this/against: {ratio:.2f}x (per round: {', '.join(f'{x:.2f}' for x in pairs)})")
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
