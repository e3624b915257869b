"""The one training loop (stage 1, Point-MAE pretraining, stage 2): exact resume, AMP, DDP, signals.

nanoGPT-simple: a small *task* object (``mesc3d.engine.tasks``) knows its model, optimiser, batches
and loss; ``Engine`` owns everything else -- the LR schedule (``schedule.CosineWarmup``, a pure
function of the global step), mixed precision (CUDA only: bf16 autocast where the GPU has it, else
fp16 with a GradScaler), optional ``torch.compile``, DistributedDataParallel under torchrun, SIGTERM/SIGINT,
periodic (``checkpoint_minutes``) and end-of-epoch resume checkpoints, metrics rows, validation
every ``val_every`` epochs and best-weights selection.

A task provides: ``model`` (nn.Module), ``make_optimizer()``, ``steps_per_epoch(dist)``,
``batches(epoch, start, dist)`` (the batches of steps ``start..`` of ``epoch``), ``loss(net, batch,
autocast)`` (scalar), optionally ``after_step()``, ``validate() -> dict | None`` with
``select = (key, "min" | "max")``, and ``model_state()`` / ``load_model_state()`` (what the
checkpoint and best-weights keep; default the full state dict).

Exactness contract: with the same config and seed, a run that is interrupted (SIGTERM/SIGINT, a
Slurm preemption, a kill after the last periodic checkpoint) and restarted produces the same final
weights and metrics as an uninterrupted run, because
- the epoch order is a pure function of (seed, epoch) and each item's augmentation of
  (seed, epoch, index) (``runtime.seeded_item``), so no data RNG has to be replayed;
- the model's own randomness (dropout, drop-path) uses the global torch RNG, whose state on every
  rank is saved in the checkpoint together with model, optimiser, grad-scaler, schedule position,
  best-so-far weights and the metrics rows;
- the LR is a pure function of the global step (``schedule.CosineWarmup``);
- batch-level randomness of a task (Point-MAE's augmentation and masks) draws from that global RNG.
A checkpoint from a different resolved config (hash mismatch) is set aside and training restarts
from scratch, with a log message saying so.

Testing hook: ``MESC3D_SIGNAL_AT_STEP=K:TERM`` (or ``K:KILL``) makes the process send itself that
signal right after global step K (before that step's checkpoint check), so tests can kill any of the
three trainings at an exact step.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mesc3d.config import ExperimentCfg, config_hash, to_dict
from mesc3d.engine import distributed as ddp
from mesc3d.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mesc3d.engine.runtime import pick_device, seed_everything
from mesc3d.engine.schedule import CosineWarmup
from mesc3d.errors import UserFacingError, quote
from mesc3d.safe_load import nonfinite_tensors

log = logging.getLogger(__name__)

CKPT_FORMAT = "mesc3d-engine-v2"


class NonFiniteError(UserFacingError):
    """The run diverged (NaN/Inf loss, gradient or weights): one line naming run, epoch and step."""


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
    rows: list[dict[str, Any]] = field(default_factory=list)
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


@dataclass(frozen=True)
class LoopCfg:
    """The loop's knobs (stage 1 takes them from ``prompt.*``, the others from ``train.*``)."""

    lr: float
    lr_min: float
    warmup_lr: float
    warmup_epochs: float
    epochs: int
    max_steps: int = 0  # >0 stops after this many global steps
    val_every: int = 1
    checkpoint_minutes: float = 10.0
    amp: bool = False  # mixed precision, CUDA only: bf16 autocast where supported, else fp16 + grad scaling
    device: str = "auto"
    amp_dtype: str = "auto"  # auto (bf16 if the GPU supports it, else fp16) | bf16 | fp16
    compile: bool = False  # torch.compile the network (stage 2: train.compile)


def _self_signal_at() -> tuple[int, int] | None:
    spec = os.environ.get("MESC3D_SIGNAL_AT_STEP", "")
    if not spec:
        return None
    step, _, name = spec.partition(":")
    return int(step), int(getattr(signal, f"SIG{name or 'TERM'}"))


def amp_dtype(name: str, device: torch.device) -> torch.dtype:
    """Autocast dtype of mixed precision: ``auto`` = bf16 where the device computes it natively
    (CUDA compute capability >= 8: A100, H100, ...), else fp16 (with loss scaling)."""
    if name not in ("auto", "bf16", "fp16"):
        raise ValueError(f"amp dtype must be auto, bf16 or fp16, got {name!r}")
    if name == "auto":
        native = device.type != "cuda" or torch.cuda.is_bf16_supported(including_emulation=False)
        name = "bf16" if native else "fp16"
    return torch.bfloat16 if name == "bf16" else torch.float16


class Engine:
    def __init__(self, cfg: ExperimentCfg, task, loop: LoopCfg, ckpt_path: str | Path,
                 stop_at_step: int | None = None, log_name: str = "train"):
        self.cfg, self.task, self.loop = cfg, task, loop
        self.dist = ddp.setup(pick_device(loop.device).type)
        self.device = pick_device(loop.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        seed_everything(cfg.seed + self.dist.rank)
        self.ckpt_path = Path(ckpt_path)
        self.stop_at_step = stop_at_step
        self._signal_at = _self_signal_at()
        self.log_name = log_name
        self.amp = loop.amp and self.device.type == "cuda"
        self.amp_dtype = amp_dtype(loop.amp_dtype, self.device) if self.amp else torch.float32
        task.to(self.device)
        self.model = task.model
        self.optimizer = task.make_optimizer()
        # fp16 needs loss scaling (its range underflows small gradients); bf16 has float32's range
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.steps_per_epoch = max(1, int(task.steps_per_epoch(self.dist)))
        self.schedule = CosineWarmup(loop.lr, loop.lr_min, loop.warmup_lr, loop.warmup_epochs, loop.epochs,
                                     self.steps_per_epoch)
        self.hash = config_hash(cfg)
        self.net = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        if loop.compile:  # the checkpoints keep the plain module's state dict (same keys either way)
            self.net = torch.compile(self.net)

    # ------------------------------------------------------------------ task defaults
    def _model_state(self) -> dict[str, torch.Tensor]:
        get = getattr(self.task, "model_state", None)
        return get() if get else self.model.state_dict()

    def _load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        put = getattr(self.task, "load_model_state", None)
        put(state) if put else self.model.load_state_dict(state)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    # ------------------------------------------------------------------ checkpoints
    def _state_dict(self, st: TrainState) -> dict[str, Any]:
        rngs = ddp.all_gather_objects(self.dist, rng_state())
        return {
            "format": CKPT_FORMAT,
            "config_hash": self.hash,
            "config": to_dict(self.cfg),
            "model": self._model_state(),
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
        if not self._weights_finite():  # never replace the last good checkpoint with a diverged one
            self._diverged("weights", st)
        state = self._state_dict(st)  # collective: every rank takes part
        if self.dist.is_main:
            save_checkpoint(self.ckpt_path, state)
            log.info("checkpoint: epoch %d step %d -> %s", st.epoch, st.global_step, self.ckpt_path)
        ddp.barrier(self.dist)

    def _set_aside(self, why: str, tag: str) -> None:
        if self.dist.is_main and self.ckpt_path.is_file():
            aside = self.ckpt_path.with_name(f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}.pt")
            self.ckpt_path.replace(aside)
            log.warning("%s: resume checkpoint %s %s; moved it to %s and training starts from scratch",
                        self.log_name, self.ckpt_path, why, aside)
        ddp.barrier(self.dist)

    def try_resume(self) -> TrainState:
        """Continue from ``last.pt`` when it is usable; anything else is set aside (renamed, logged)."""
        if not self.ckpt_path.is_file():
            return TrainState()
        try:
            state = load_checkpoint(self.ckpt_path, map_location=self.device)
        except UserFacingError as err:  # truncated / corrupt / unsafe pickle
            self._set_aside(f"cannot be read ({quote(str(err), 300)})", "unusable")
            return TrainState()
        if not isinstance(state, dict):
            self._set_aside("is not a resume checkpoint", "unusable")
            return TrainState()
        same = (state.get("format") == CKPT_FORMAT and state.get("config_hash") == self.hash
                and state.get("world_size") == self.dist.world_size)
        if not same:
            if self.dist.is_main:
                aside = self.ckpt_path.with_name(f"stale-{state.get('config_hash', 'unknown')}.pt")
                self.ckpt_path.replace(aside)
                log.warning("%s: resume checkpoint was made with a different config (hash %s, now %s), "
                            "world size or format; moved it to %s and training starts from scratch",
                            self.log_name, state.get("config_hash"), self.hash, aside)
            ddp.barrier(self.dist)
            return TrainState()
        problem = self._resume_problem(state)
        if problem is None:
            snapshot = (copy.deepcopy(self._model_state()), copy.deepcopy(self.optimizer.state_dict()),
                        copy.deepcopy(self.scaler.state_dict()), rng_state())
            try:
                st = self._apply_resume(state)
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as err:
                model, optim, scaler, rngs = snapshot  # undo a partial load: a fresh start is a fresh start
                self._load_model_state(model)
                self.optimizer.load_state_dict(optim)
                self.scaler.load_state_dict(scaler)
                set_rng_state(rngs)
                problem = f"does not fit this run ({type(err).__name__}: {quote(str(err), 200)})"
        if problem is not None:
            self._set_aside(problem, "unusable")
            return TrainState()
        log.info("%s: resumed from %s at epoch %d, step %d", self.log_name, self.ckpt_path, st.epoch, st.global_step)
        return st

    def _resume_problem(self, state: dict[str, Any]) -> str | None:
        """Why a same-config checkpoint cannot be continued (position out of range, non-finite weights)."""
        need = ("model", "optimizer", "scaler", "rng", "epoch", "step_in_epoch", "global_step", "best_metric",
                "best_epoch", "best_model", "epoch_loss_sum", "epoch_batches", "rows", "elapsed")
        missing = [k for k in need if k not in state]
        if missing:
            return f"lacks {missing}"
        try:
            epoch, step, gstep = int(state["epoch"]), int(state["step_in_epoch"]), int(state["global_step"])
        except (TypeError, ValueError):
            return "has no valid training position"
        if not (0 <= epoch <= self.loop.epochs and 0 <= step < self.steps_per_epoch
                and 0 <= gstep <= epoch * self.steps_per_epoch + step):
            return (f"claims epoch {epoch}, step {step}, global step {gstep}, impossible for {self.loop.epochs} "
                    f"epochs of {self.steps_per_epoch} steps")
        for key in ("model", "best_model"):
            bad = nonfinite_tensors(state[key])
            if bad:
                return f"holds non-finite {key} weights ({bad[0]}, ...)"
        if not isinstance(state["rng"], (list, tuple)) or len(state["rng"]) <= self.dist.rank:
            return "has no RNG state for this rank"
        return None

    def _apply_resume(self, state: dict[str, Any]) -> TrainState:
        current = self._model_state()
        for k, v in state["model"].items():
            if k in current and isinstance(v, torch.Tensor) and v.shape != current[k].shape:
                raise ValueError(f"{k} has shape {tuple(v.shape)}, the model {tuple(current[k].shape)}")
        self._load_model_state(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"][self.dist.rank])
        return TrainState(
            epoch=state["epoch"], step_in_epoch=state["step_in_epoch"], global_step=state["global_step"],
            best_metric=state["best_metric"], best_epoch=state["best_epoch"], best_model=state["best_model"],
            epoch_loss_sum=state["epoch_loss_sum"], epoch_batches=state["epoch_batches"],
            rows=[dict(r) for r in state["rows"]], elapsed=state["elapsed"],
            fusion_rows=[dict(r) for r in state.get("fusion_rows", [])],
        )

    # ------------------------------------------------------------------ loop
    def _step(self, batch: Any, st: TrainState) -> float:
        lr = self.schedule.apply(self.optimizer, st.global_step)
        loss = self.task.loss(self.net, batch, self.autocast)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        # before the weights change: a non-finite loss, or (without fp16 loss scaling, whose scaler skips
        # such steps) a non-finite gradient, stops the run; the last resume checkpoint stays the last good one
        what = "loss" if not torch.isfinite(loss) else None
        if what is None and not self.scaler.is_enabled() and not self._grads_finite():
            what = "gradient"
        if what:
            self._diverged(what, st, lr)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        after = getattr(self.task, "after_step", None)
        if after:
            after()
        return float(loss.detach())

    def _grads_finite(self) -> bool:
        """One fused pass over the gradients: the grad scaler's own non-finite check with scale 1, so
        no gradient changes (one kernel per device and dtype instead of one reduction per tensor)."""
        groups: dict[tuple, list[torch.Tensor]] = {}
        for p in self.model.parameters():
            if p.grad is not None:
                g = p.grad.coalesce().values() if p.grad.is_sparse else p.grad
                groups.setdefault((g.device, g.dtype), []).append(g)
        for (device, _), grads in groups.items():
            found, one = torch.zeros((), device=device), torch.ones((), device=device)
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, one)
            if bool(found):
                return False
        return True

    def _weights_finite(self) -> bool:
        return all(torch.isfinite(v).all() for v in self._model_state().values()
                   if isinstance(v, torch.Tensor) and v.is_floating_point())

    def _diverged(self, what: str, st: TrainState, lr: float | None = None) -> None:
        kept = f"the last good resume checkpoint {self.ckpt_path} is kept" if self.ckpt_path.is_file() \
            else "no resume checkpoint was written"
        lr_text = f" (lr {lr:g})" if lr is not None else ""
        raise NonFiniteError(f"run {self.cfg.name} ({self.log_name}): non-finite {what} at epoch {st.epoch + 1}, "
                             f"step {st.global_step + (what != 'weights')}{lr_text}; training stopped, no model "
                             f"written, {kept}; lower the learning rate or check the inputs")

    def _done(self, st: TrainState) -> bool:
        return bool(self.loop.max_steps and st.global_step >= self.loop.max_steps)

    def fit(self) -> TrainState:
        st = self.try_resume()
        last_save = time.monotonic()
        t0 = time.monotonic() - st.elapsed
        from tqdm import tqdm

        with _SignalFlag() as flag:
            while st.epoch < self.loop.epochs and not self._done(st):
                self.model.train()
                batches = self.task.batches(st.epoch, st.step_in_epoch, self.dist)
                bar = tqdm(batches, total=self.steps_per_epoch - st.step_in_epoch, disable=None,
                           desc=f"{self.log_name} epoch {st.epoch + 1}/{self.loop.epochs}", leave=False)
                for batch in bar:
                    st.epoch_loss_sum += self._step(batch, st)
                    st.epoch_batches += 1
                    st.step_in_epoch += 1
                    st.global_step += 1
                    st.elapsed = time.monotonic() - t0
                    if self._signal_at and st.global_step == self._signal_at[0]:
                        os.kill(os.getpid(), self._signal_at[1])
                    interrupted = flag.signum is not None or st.global_step == self.stop_at_step
                    interrupted = ddp.broadcast_flag(self.dist, interrupted, self.device)
                    periodic = time.monotonic() - last_save >= self.loop.checkpoint_minutes * 60
                    if interrupted or periodic:
                        self.save(st)
                        last_save = time.monotonic()
                    if interrupted:
                        code = 128 + (flag.signum or signal.SIGTERM)
                        log.warning("%s interrupted at step %d: resume checkpoint saved, exiting %d",
                                    self.log_name, st.global_step, code)
                        raise TrainingInterrupted(code)
                    if self._done(st):
                        break
                self._end_epoch(st)
                self.save(st)
                last_save = time.monotonic()
        return st

    def _end_epoch(self, st: TrainState) -> None:
        lr = self.schedule.lr_at(max(st.global_step - 1, 0))
        mean_loss = st.epoch_loss_sum / max(st.epoch_batches, 1)
        seconds = round(st.elapsed, 3)
        st.rows.append({"epoch": st.epoch + 1, "step": st.global_step, "split": "train", "loss": mean_loss,
                        "lr": lr, "seconds": seconds})
        report = getattr(getattr(self.model, "image_encoder", None), "fusion_report", None)
        if callable(report):  # agglomerated image encoder: learned teacher uncertainties
            fused = report()
            st.fusion_rows += [{"epoch": st.epoch + 1, **r} for r in fused]
            log.info("epoch %d teacher fusion: %s", st.epoch + 1,
                     ", ".join(f"{r['teacher']} sigma {r['sigma']:.4f} weight {r['weight']:.4f}" for r in fused))
        last = st.epoch + 1 >= self.loop.epochs or self._done(st)
        res = None
        if (st.epoch + 1) % self.loop.val_every == 0 or last:
            if not self._weights_finite():
                self._diverged("weights", st)
            res = self.task.validate()
        if res is not None:
            st.rows.append({"epoch": st.epoch + 1, "step": st.global_step, "split": "val", **res, "lr": lr,
                            "seconds": seconds})
            key, mode = self.task.select
            metric = res[key] if mode == "min" else -res[key]
            if metric < st.best_metric:
                st.best_metric, st.best_epoch = metric, st.epoch + 1
                st.best_model = {k: v.detach().clone() for k, v in self._model_state().items()}
            log.info("%s epoch %d: train loss %.5f, val %s (best %s %.4f @ %d)", self.log_name, st.epoch + 1,
                     mean_loss, " ".join(f"{k} {v:.4f}" for k, v in res.items()), key,
                     st.best_metric if mode == "min" else -st.best_metric, st.best_epoch)
        else:
            log.info("%s epoch %d: train loss %.5f, lr %.3g", self.log_name, st.epoch + 1, mean_loss, lr)
        st.epoch += 1
        st.step_in_epoch = 0
        st.epoch_loss_sum, st.epoch_batches = 0.0, 0

    def final_weights(self, st: TrainState) -> dict[str, torch.Tensor]:
        """The best validated weights (as ``model_state``), else the current ones."""
        return copy.deepcopy(st.best_model) if st.best_model is not None else self._model_state()

    def best_metric(self, st: TrainState) -> float:
        """The selection metric in its own sign (``select`` mode "max" is stored negated)."""
        return st.best_metric if self.task.select[1] == "min" else -st.best_metric

    def close(self) -> None:
        ddp.teardown(self.dist)
