"""One stage runner for the CLIs: logging, the resolved config, seeding, the device and the loop knobs.

A CLI that runs a pipeline stage starts with ``stage = open_stage("train", args)`` and then reads
``stage.cfg``, ``stage.device`` and ``stage.seed()``; ``loop_cfg(cfg, stage)`` gives the training
loop's knobs of the three trainings.  The stage names are those of ``mesc3d.config_slices.STAGES``.

- Logging: ``setup_logging`` (one format; ``[rank r]`` under torchrun) and torch's intra-op threads
  pinned to ``OMP_NUM_THREADS`` (Snakemake sets it to the rule's ``threads``).
- Seeding: ``runtime.seed_everything`` seeds torch (CPU and CUDA), numpy's and Python's global RNGs.
  No stage draws from numpy's or Python's global RNG (data randomness uses explicit generators), so
  seeding them changes no number; they are seeded so a new stage that does is reproducible too.
- Device: ``train.device`` where the stage's config slice holds it (the stages that honour it:
  Point-MAE pretraining, stage-2 training, complexity), ``auto`` everywhere else.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any

log = logging.getLogger(__name__)


def setup_logging(verbose: bool = False) -> None:
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank is not None and os.environ.get("WORLD_SIZE", "1") != "1" else ""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    pin_threads()


def pin_threads() -> None:
    """torch intra-op threads = ``OMP_NUM_THREADS`` (Snakemake sets it to the rule's ``threads``), so a
    job's floating-point results do not depend on how many cores the node happens to have."""
    n = os.environ.get("OMP_NUM_THREADS", "")
    if n.isdigit() and int(n) > 0:
        import torch

        torch.set_num_threads(int(n))


def device_name(cfg: Any, stage: str) -> str:
    """``cfg.train.device`` when the stage's slice holds ``train.device``, else ``"auto"``."""
    from mesc3d.config_slices import reads_allowed

    return cfg.train.device if reads_allowed(stage, "train.device") else "auto"


def loop_cfg(cfg: Any, stage: str):
    """The ``LoopCfg`` of a training stage from its config section: ``train`` (stage 2, ``train.*``),
    ``pretrain_pointmae`` (``train.pointmae_*``: Point-MAE's recipe, warm-up over the first 10% of the
    epochs, cosine to 0) or ``pretrain_prompt`` (``prompt.*``; stage 1 always runs on the CPU, no AMP)."""
    from mesc3d.engine.trainer import LoopCfg

    t = cfg.train
    if stage == "train":
        return LoopCfg(t.lr, t.lr_min, t.warmup_lr, t.warmup_epochs, t.epochs, t.max_steps, t.val_every,
                       t.checkpoint_minutes, t.amp, t.device, compile=t.compile)
    if stage == "pretrain_pointmae":
        return LoopCfg(t.pointmae_lr, 0.0, 0.0, 0.1 * t.pointmae_epochs, t.pointmae_epochs, t.max_steps, 1,
                       t.checkpoint_minutes, t.amp, t.device)
    if stage == "pretrain_prompt":
        p = cfg.prompt
        return LoopCfg(p.lr, p.lr_min, p.warmup_lr, p.warmup_epochs, p.epochs, 0, 1, t.checkpoint_minutes,
                       False, "cpu")
    raise KeyError(f"stage {stage!r} has no training loop; expected train, pretrain_pointmae or pretrain_prompt")


@dataclass
class Stage:
    """A running stage: its name, resolved config and (on first use) device."""

    name: str
    cfg: Any

    @cached_property
    def device(self):
        from mesc3d.engine.runtime import pick_device

        return pick_device(device_name(self.cfg, self.name))

    def seed(self, offset: int = 0) -> None:
        """Seed torch, numpy and random with ``seed + offset`` (call it where the stage's randomness
        starts: model initialisation, evaluation)."""
        from mesc3d.engine.runtime import seed_everything

        seed_everything(self.cfg.seed + offset)


def open_stage(name: str, args: Any, cfg: Any = None) -> Stage:
    """Logging from ``args.verbose``, then the resolved config ``args.config`` with ``args.set``
    overrides (or ``cfg`` when given) -> ``Stage``.  Bad config: ConfigError naming the key."""
    setup_logging(getattr(args, "verbose", False))
    if cfg is None:
        from mesc3d.config import load_config

        cfg = load_config(args.config, getattr(args, "set", []))
    return Stage(name, cfg)
