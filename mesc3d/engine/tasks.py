"""The three trainings as small tasks for ``engine.trainer.Engine``: batches -> loss, nothing else.

- ``ReconTask``    stage 2: images (+ 3DSPL priors) -> points, Chamfer loss, validation CD.
- ``Stage1Task``   stage 1 (3DSPL): cached point features + class ids -> symmetric InfoNCE.
- ``PointMAETask`` Point-MAE masked-autoencoder pretraining on GT clouds.

Every epoch order is ``runtime.epoch_order(n, seed, epoch)`` (a pure function), so a resumed run
rebuilds the batches of the remaining steps without replaying any RNG.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch

from mesc3d.engine.losses import reconstruction_loss
from mesc3d.engine.runtime import epoch_order, iterate_batches, loader_batches
from mesc3d.engine.validation import validate


def fused_if_supported(params) -> dict[str, bool]:
    """``fused=True`` (one kernel over all parameters: on the CPU ~5x faster than the per-tensor loop
    for the small preset's 13 M parameters) when every parameter is a dense float tensor on the CPU
    or a CUDA GPU, else torch's default implementation."""
    ok = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64, torch.float16,
                                                                 torch.bfloat16) and not p.is_sparse for p in params)
    return {"fused": True} if ok and params else {}


def _chunks(order: torch.Tensor, batch: int, start: int, steps: int) -> Iterator[torch.Tensor]:
    for k in range(start, steps):
        yield order[k * batch:(k + 1) * batch]


class ReconTask:
    """Stage 2.  drop_last: a trailing batch of one image would break BatchNorm (and skew the loss)."""

    def __init__(self, cfg, model, train_set, val_set, priors: torch.Tensor | None):
        self.cfg, self.model, self.train_set, self.val_set = cfg, model, train_set, val_set
        self.priors = priors
        t = cfg.train
        self.select = ("cd_l2_x1000" if t.loss == "l2" else "cd_l1_x100", "min")

    def to(self, device: torch.device) -> None:
        self.device = device
        self.priors = None if self.priors is None else self.priors.to(device)
        self.model.to(device)

    def make_optimizer(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.cfg.train.lr, betas=(0.9, 0.999), eps=1e-6,
                                weight_decay=self.cfg.train.weight_decay, **fused_if_supported(params))

    def steps_per_epoch(self, dist) -> int:
        return max(1, (len(self.train_set) // dist.world_size) // self.cfg.train.batch_size)

    def batches(self, epoch: int, start: int, dist) -> Iterator[dict[str, Any]]:
        bs, steps = self.cfg.train.batch_size, self.steps_per_epoch(dist)
        order = epoch_order(len(self.train_set), self.cfg.seed, epoch)[dist.rank::dist.world_size]
        order = order[: steps * bs][start * bs:]  # (steps * B,) full batches only, from step `start`
        return loader_batches(self.train_set, order, bs, self.cfg.seed, epoch, self.cfg.train.num_workers,
                              pin_memory=self.device.type == "cuda")

    def _prior_of(self, batch: dict[str, Any]) -> torch.Tensor | None:
        if self.priors is None:
            return None
        cls = batch["class_id"].to(self.device)
        if (cls < 0).any():
            raise ValueError("a training item has class_id -1: its category is not in data.categories")
        return self.priors[cls]

    def loss(self, net, batch: dict[str, Any], autocast) -> torch.Tensor:
        images = batch["image"].to(self.device, non_blocking=True)  # (B, 3, H, W)
        gt = batch["points"].to(self.device, non_blocking=True)  # (B, G, 3)
        with autocast():
            pred = net(images, self._prior_of(batch))  # (B, N, 3)
        return reconstruction_loss(pred.float(), gt, self.cfg.train.loss)

    def validate(self) -> dict[str, float]:
        return validate(self.model, self.val_set, self.priors, self.device, self.cfg)


class Stage1Task:
    """Stage 1: ``Stage1Model`` on cached features; selection = highest val mean diagonal cosine."""

    select = ("diag_cos", "max")

    def __init__(self, cfg, model, train_x, train_y, val_x, val_y):
        self.cfg, self.model = cfg, model
        self.train_x, self.train_y, self.val_x, self.val_y = train_x, train_y, val_x, val_y  # (S, F), (S,)
        self.batch = max(2, min(cfg.prompt.batch_size, len(train_x)))

    def to(self, device: torch.device) -> None:
        self.model.to(device)
        self.train_x, self.train_y = self.train_x.to(device), self.train_y.to(device)
        self.val_x, self.val_y = self.val_x.to(device), self.val_y.to(device)

    def make_optimizer(self):
        return torch.optim.Adam(self.model.trainable_parameters(), lr=self.cfg.prompt.lr, betas=(0.9, 0.999),
                                eps=1e-6, weight_decay=0.0)

    def steps_per_epoch(self, dist) -> int:
        return max(1, len(self.train_x) // self.batch)  # drop the last partial batch (InfoNCE needs >1)

    def batches(self, epoch: int, start: int, dist):
        order = epoch_order(len(self.train_x), self.cfg.seed, epoch).to(self.train_x.device)
        for idx in _chunks(order, self.batch, start, self.steps_per_epoch(dist)):
            yield self.train_x[idx], self.train_y[idx]

    def loss(self, net, batch, autocast) -> torch.Tensor:
        with autocast():
            return net(*batch).float()

    def after_step(self) -> None:
        self.model.clamp_temperature()

    def validate(self) -> dict[str, float]:
        val = self.model.evaluate(self.val_x, self.val_y)
        return {"diag_cos": val["diag_cos"], "top1": val["top1"], "logit_scale": float(self.model.logit_scale.detach())}

    def model_state(self) -> dict[str, torch.Tensor]:
        return self.model.trainable_state_dict()  # the frozen text tower stays out of checkpoints

    def load_model_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_trainable_state(state)


class PointMAETask:
    """Point-MAE pretraining: scale+translate augmentation, random masks (global RNG), no validation."""

    select = ("loss", "min")

    def __init__(self, cfg, model, points: torch.Tensor):
        self.cfg, self.model, self.points = cfg, model, points  # points (S, G, 3)
        S = points.shape[0]
        self.batch = max(1, min(cfg.train.batch_size, S))
        self.drop_last = S >= 2 * self.batch  # BatchNorm needs > 1 sample; keep every shape when tiny

    def to(self, device: torch.device) -> None:
        self.device = device
        self.model.to(device)

    def make_optimizer(self):
        named = list(self.model.named_parameters())
        decay = [p for n, p in named if p.ndim > 1 and "token" not in n]
        no_decay = [p for n, p in named if not (p.ndim > 1 and "token" not in n)]
        return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                  {"params": no_decay, "weight_decay": 0.0}], lr=self.cfg.train.pointmae_lr)

    def steps_per_epoch(self, dist) -> int:
        S = self.points.shape[0]
        return S // self.batch if self.drop_last else math.ceil(S / self.batch)

    def batches(self, epoch: int, start: int, dist):
        order = epoch_order(self.points.shape[0], self.cfg.seed, epoch)
        for idx in _chunks(order, self.batch, start, self.steps_per_epoch(dist)):
            yield augment(self.points[idx]).to(self.device)  # (b, G, 3)

    def loss(self, net, batch, autocast) -> torch.Tensor:
        with autocast():
            return net(batch)

    def validate(self) -> None:
        return None


def augment(points: torch.Tensor) -> torch.Tensor:
    """Point-MAE ``PointcloudScaleAndTranslate`` (global RNG): (B, N, 3) -> (B, N, 3)."""
    B = points.shape[0]
    scale = torch.empty(B, 1, 3).uniform_(2.0 / 3.0, 1.5).to(points)
    shift = torch.empty(B, 1, 3).uniform_(-0.2, 0.2).to(points)
    return points * scale + shift
