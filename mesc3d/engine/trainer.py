"""Stage-2 reconstruction training with exact resume, AMP on CUDA and DDP under torchrun.

Exactness contract: with the same config and seed, a run that is interrupted (SIGTERM/SIGINT, a
Slurm preemption, a kill after the last periodic checkpoint) and restarted produces the same final
weights and metrics as an uninterrupted run, because
- the epoch order is a pure function of (seed, epoch) and each item's augmentation of
  (seed, epoch, index) (``runtime.seeded_item``), so no data RNG has to be replayed;
- the model's own randomness (dropout, drop-path) uses the global torch RNG, whose state on every
  rank is saved in the checkpoint together with model, optimiser, grad-scaler, schedule position,
  best-so-far weights and the metrics rows;
- the LR is a pure function of the global step (``schedule.CosineWarmup``).
A checkpoint from a different resolved config (hash mismatch) is set aside and training restarts
from scratch, with a log message saying so.
"""

from __future__ import annotations

import copy
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mesc3d.config import ExperimentCfg, config_hash, to_dict
from mesc3d.engine import distributed as ddp
from mesc3d.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mesc3d.engine.losses import reconstruction_loss
from mesc3d.engine.runtime import epoch_order, iterate_batches, pick_device, seed_everything
from mesc3d.engine.validation import validate

log = logging.getLogger(__name__)

METRIC_COLUMNS = ["epoch", "step", "split", "loss", "cd_l1_x100", "cd_l2_x1000", "lr", "seconds"]


class TrainingInterrupted(SystemExit):
    """Raised after the resume checkpoint is written on SIGTERM/SIGINT (exit code 128+signal)."""


@dataclass
class TrainState:
    epoch: int = 0  # current epoch (0-based)
    step_in_epoch: int = 0  # optimisation steps already done in `epoch`
    global_step: int = 0
    best_metric: float = math.inf
    best_epoch: int = -1
    best_model: dict[str, torch.Tensor] | None = None
    epoch_loss_sum: float = 0.0
    epoch_batches: int = 0
    rows: list[list[Any]] = field(default_factory=list)
    fusion_rows: list[dict[str, Any]] = field(default_factory=list)  # per epoch: teacher, sigma, weight
    elapsed: float = 0.0


class _SignalFlag:
    """Remembers SIGTERM/SIGINT instead of dying mid-step; restores the old handlers on exit."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_SignalFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread
                pass
        return self

    def _handle(self, signum, _frame) -> None:
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class Trainer:
    def __init__(self, cfg: ExperimentCfg, model: torch.nn.Module, train_set, val_set,
                 priors: torch.Tensor | None, out_dir: str | Path, stop_at_step: int | None = None):
        self.cfg = cfg
        self.dist = ddp.setup(pick_device(cfg.train.device).type)
        self.device = pick_device(cfg.train.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        seed_everything(cfg.seed + self.dist.rank)
        self.out_dir = Path(out_dir)
        self.ckpt_path = self.out_dir / "ckpt" / "last.pt"
        self.train_set, self.val_set = train_set, val_set
        self.priors = None if priors is None else priors.to(self.device)
        self.model = model.to(self.device)
        self.stop_at_step = stop_at_step
        self.amp = cfg.train.amp and self.device.type == "cuda"
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=cfg.train.lr, betas=(0.9, 0.999), eps=1e-6,
                                          weight_decay=cfg.train.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        # drop_last: a trailing batch of one image would break BatchNorm (and skew the loss)
        per_rank = len(train_set) // self.dist.world_size
        self.steps_per_epoch = max(1, per_rank // cfg.train.batch_size)
        from mesc3d.engine.schedule import CosineWarmup

        t = cfg.train
        self.schedule = CosineWarmup(t.lr, t.lr_min, t.warmup_lr, t.warmup_epochs, t.epochs, self.steps_per_epoch)
        self.hash = config_hash(cfg)
        self.net = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)

    # ------------------------------------------------------------------ checkpoints
    def _state_dict(self, st: TrainState) -> dict[str, Any]:
        rngs = ddp.all_gather_objects(self.dist, rng_state())
        return {
            "config_hash": self.hash,
            "config": to_dict(self.cfg),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": rngs,
            "world_size": self.dist.world_size,
            "epoch": st.epoch, "step_in_epoch": st.step_in_epoch, "global_step": st.global_step,
            "best_metric": st.best_metric, "best_epoch": st.best_epoch, "best_model": st.best_model,
            "epoch_loss_sum": st.epoch_loss_sum, "epoch_batches": st.epoch_batches,
            "rows": st.rows, "fusion_rows": st.fusion_rows, "elapsed": st.elapsed,
        }

    def save(self, st: TrainState) -> None:
        state = self._state_dict(st)  # collective: every rank takes part
        if self.dist.is_main:
            save_checkpoint(self.ckpt_path, state)
            log.info("checkpoint: epoch %d step %d -> %s", st.epoch, st.global_step, self.ckpt_path)
        ddp.barrier(self.dist)

    def try_resume(self) -> TrainState:
        if not self.ckpt_path.is_file():
            return TrainState()
        state = load_checkpoint(self.ckpt_path, map_location=self.device)
        if state.get("config_hash") != self.hash or state.get("world_size") != self.dist.world_size:
            if self.dist.is_main:
                aside = self.ckpt_path.with_name(f"stale-{state.get('config_hash', 'unknown')}.pt")
                self.ckpt_path.replace(aside)
                log.warning("resume checkpoint was made with a different config (hash %s, now %s) or "
                            "world size; moved it to %s and training starts from scratch",
                            state.get("config_hash"), self.hash, aside)
            ddp.barrier(self.dist)
            return TrainState()
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"][self.dist.rank])
        st = TrainState(
            epoch=state["epoch"], step_in_epoch=state["step_in_epoch"], global_step=state["global_step"],
            best_metric=state["best_metric"], best_epoch=state["best_epoch"], best_model=state["best_model"],
            epoch_loss_sum=state["epoch_loss_sum"], epoch_batches=state["epoch_batches"],
            rows=[list(r) for r in state["rows"]], elapsed=state["elapsed"],
            fusion_rows=[dict(r) for r in state.get("fusion_rows", [])],
        )
        log.info("resumed from %s at epoch %d, step %d", self.ckpt_path, st.epoch, st.global_step)
        return st

    # ------------------------------------------------------------------ loop
    def _prior_of(self, batch: dict[str, Any]) -> torch.Tensor | None:
        if self.priors is None:
            return None
        cls = batch["class_id"].to(self.device)
        if (cls < 0).any():
            raise ValueError("a training item has class_id -1: its category is not in data.categories")
        return self.priors[cls]

    def _step(self, batch: dict[str, Any], st: TrainState) -> float:
        lr = self.schedule.apply(self.optimizer, st.global_step)
        images = batch["image"].to(self.device, non_blocking=True)
        gt = batch["points"].to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            pred = self.net(images, self._prior_of(batch))
        loss = reconstruction_loss(pred.float(), gt, self.cfg.train.loss)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at step {st.global_step} (lr {lr:g})")
        return float(loss.detach())

    def fit(self) -> TrainState:
        st = self.try_resume()
        t = self.cfg.train
        last_save = time.monotonic()
        t0 = time.monotonic() - st.elapsed
        from tqdm import tqdm

        with _SignalFlag() as flag:
            while st.epoch < t.epochs and not (t.max_steps and st.global_step >= t.max_steps):
                self.net.train()
                order = epoch_order(len(self.train_set), self.cfg.seed, st.epoch)[self.dist.rank::self.dist.world_size]
                order = order[: self.steps_per_epoch * t.batch_size]  # (steps * B,) full batches only
                done = st.step_in_epoch * t.batch_size
                batches = iterate_batches(self.train_set, order[done:], t.batch_size, self.cfg.seed, st.epoch)
                bar = tqdm(batches, total=self.steps_per_epoch - st.step_in_epoch, disable=None,
                           desc=f"epoch {st.epoch + 1}/{t.epochs}", leave=False)
                for batch in bar:
                    st.epoch_loss_sum += self._step(batch, st)
                    st.epoch_batches += 1
                    st.step_in_epoch += 1
                    st.global_step += 1
                    st.elapsed = time.monotonic() - t0
                    interrupted = flag.signum is not None or st.global_step == self.stop_at_step
                    interrupted = ddp.broadcast_flag(self.dist, interrupted, self.device)
                    periodic = time.monotonic() - last_save >= t.checkpoint_minutes * 60
                    if interrupted or periodic:
                        self.save(st)
                        last_save = time.monotonic()
                    if interrupted:
                        code = 128 + (flag.signum or signal.SIGTERM)
                        log.warning("interrupted at step %d: resume checkpoint saved, exiting %d",
                                    st.global_step, code)
                        raise TrainingInterrupted(code)
                    if t.max_steps and st.global_step >= t.max_steps:
                        break
                self._end_epoch(st)
                self.save(st)
                last_save = time.monotonic()
        return st

    def _end_epoch(self, st: TrainState) -> None:
        t = self.cfg.train
        lr = self.schedule.lr_at(max(st.global_step - 1, 0))
        mean_loss = st.epoch_loss_sum / max(st.epoch_batches, 1)
        seconds = round(st.elapsed, 3)
        st.rows.append([st.epoch + 1, st.global_step, "train", mean_loss, math.nan, math.nan, lr, seconds])
        report = getattr(getattr(self.model, "image_encoder", None), "fusion_report", None)
        if callable(report):  # agglomerated image encoder: learned teacher uncertainties
            fused = report()
            st.fusion_rows += [{"epoch": st.epoch + 1, **r} for r in fused]
            log.info("epoch %d teacher fusion: %s", st.epoch + 1,
                     ", ".join(f"{r['teacher']} sigma {r['sigma']:.4f} weight {r['weight']:.4f}" for r in fused))
        last = st.epoch + 1 >= t.epochs or bool(t.max_steps and st.global_step >= t.max_steps)
        if (st.epoch + 1) % t.val_every == 0 or last:
            res = validate(self.model, self.val_set, self.priors, self.device, self.cfg)
            st.rows.append([st.epoch + 1, st.global_step, "val", res["loss"], res["cd_l1_x100"],
                            res["cd_l2_x1000"], lr, seconds])
            metric = res["cd_l2_x1000"] if t.loss == "l2" else res["cd_l1_x100"]
            if metric < st.best_metric:
                st.best_metric, st.best_epoch = metric, st.epoch + 1
                st.best_model = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            log.info("epoch %d: train loss %.5f, val CD-L1x100 %.4f CD-L2x1000 %.4f (best %.4f @ %d)",
                     st.epoch + 1, mean_loss, res["cd_l1_x100"], res["cd_l2_x1000"], st.best_metric, st.best_epoch)
        st.epoch += 1
        st.step_in_epoch = 0
        st.epoch_loss_sum, st.epoch_batches = 0.0, 0

    def final_weights(self, st: TrainState) -> dict[str, torch.Tensor]:
        return copy.deepcopy(st.best_model) if st.best_model is not None else self.model.state_dict()

    def close(self) -> None:
        ddp.teardown(self.dist)
