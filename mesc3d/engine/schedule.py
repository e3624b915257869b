"""Learning-rate schedule: linear warmup then cosine decay, as a pure function of the step.

Mirrors timm's ``CosineLRScheduler`` used by the official code (docs/design.md: warmup from ``warmup_lr``
over ``warmup_epochs``, cosine from ``lr`` down to ``lr_min`` at the last epoch), but evaluated per
optimisation step on the fractional epoch ``step / steps_per_epoch`` so tiny CPU runs decay smoothly.
Being a pure function of the step, resuming restores it exactly from the step counter alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CosineWarmup:
    lr: float
    lr_min: float
    warmup_lr: float
    warmup_epochs: float
    epochs: float
    steps_per_epoch: int

    def __post_init__(self) -> None:
        if self.steps_per_epoch < 1 or self.epochs <= 0:
            raise ValueError(f"need steps_per_epoch >= 1 and epochs > 0, got {self}")

    def lr_at(self, step: int) -> float:
        """Learning rate for optimisation step ``step`` (0-based)."""
        t = step / self.steps_per_epoch  # fractional epoch
        warm = min(self.warmup_epochs, 0.5 * self.epochs)
        if t < warm:
            return self.warmup_lr + (self.lr - self.warmup_lr) * t / warm
        span = max(self.epochs - warm, 1e-12)
        progress = min(max((t - warm) / span, 0.0), 1.0)
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1.0 + math.cos(math.pi * progress))

    def apply(self, optimizer, step: int) -> float:
        lr = self.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return dict(self.__dict__)
