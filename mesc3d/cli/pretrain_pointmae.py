"""mesc3d pretrain-pointmae: masked-autoencoder pretraining of the Point-MAE encoder on GT clouds.

    mesc3d pretrain-pointmae --config RUN.yaml --train P/train.npz --out W/pointmae.pt [--set k=v ...]

Input  ``--train``: a prepared split file (``mesc3d prepare``); only key ``points`` float32 (S, G, 3) is read
       (G >= max(point_mae.num_group, point_mae.group_size)).
Config ``model.point_mae`` (encoder + light decoder sizes), ``train.pointmae_epochs``, ``train.pointmae_lr``,
       ``train.pointmae_mask_ratio``, ``train.batch_size``, ``train.max_steps`` (>0: stop early),
       ``train.device``, ``train.amp`` (CUDA only), ``seed``.
Output ``--out`` (atomic, ``torch.save`` of plain tensors/str/numbers/dicts; loads with weights_only=True):
       ``{"base_model": {name: tensor}`` -- the encoder in the OFFICIAL ``modelnet_1k.pth`` key layout
       (``cls_token``, ``cls_pos``, ``encoder.*``, ``pos_embed.*``, ``blocks.blocks.*``, ``norm.*``), so
       ``mesc3d.models.point_mae.load_pointmae_checkpoint`` (and the official loader) read it,
       ``"epoch"``, ``"step"``, ``"loss"`` (mean of the last epoch), ``"losses"`` (per epoch),
       ``"config"`` (resolved run config dict), ``"format": "mesc3d-pointmae-v1"``}.

Recipe (Point-MAE ``cfgs/pretrain.yaml``): AdamW (weight decay 0.05), linear warm-up over the first 10%
of the steps then cosine decay to 0 (per step), scale (U[2/3, 3/2] per axis) + translate (U[-0.2, 0.2])
augmentation, random masking.  All randomness comes from torch's RNG seeded with ``seed``: the same
config and input give identical weights on the same device.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import torch
from tqdm import tqdm

from mesc3d.cli._common import add_config_args, setup_logging
from mesc3d.config import load_config, to_dict
from mesc3d.errors import BadInputError, ConfigError
from mesc3d.io import atomic_path, load_npz

log = logging.getLogger("mesc3d.pretrain_pointmae")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d pretrain-pointmae", description=__doc__.split("\n")[0])
    add_config_args(p)
    p.add_argument("--train", required=True, help="prepared split file with 'points' (S, G, 3)")
    p.add_argument("--out", required=True, help="output checkpoint (official modelnet_1k.pth layout)")
    return p


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def load_points(path: str | Path, min_points: int) -> torch.Tensor:
    arr = load_npz(path, required=("points",))["points"]
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1:
        raise BadInputError(path, f"'points' must have shape (S, G, 3) with S >= 1, got {arr.shape}")
    if arr.shape[1] < min_points:
        raise BadInputError(path, f"'points' has G={arr.shape[1]} points per shape; Point-MAE grouping "
                            f"needs >= {min_points}")
    t = torch.from_numpy(arr.astype("float32", copy=False))
    if not torch.isfinite(t).all():
        raise BadInputError(path, "'points' contains NaN/inf")
    return t


def augment(points: torch.Tensor) -> torch.Tensor:
    """Point-MAE ``PointcloudScaleAndTranslate``: (B, N, 3) -> (B, N, 3)."""
    B = points.shape[0]
    scale = torch.empty(B, 1, 3).uniform_(2.0 / 3.0, 1.5).to(points)
    shift = torch.empty(B, 1, 3).uniform_(-0.2, 0.2).to(points)
    return points * scale + shift


def lr_factor(step: int, total: int) -> float:
    warm = max(1, total // 10)
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def pretrain(cfg, points: torch.Tensor, device: torch.device) -> dict:
    from mesc3d.models.point_mae import official_state_dict
    from mesc3d.models.point_mae_pretrain import PointMAEPretrain

    torch.manual_seed(cfg.seed)
    t = cfg.train
    model = PointMAEPretrain(cfg.model.point_mae, t.pointmae_mask_ratio).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "token" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "token" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=t.pointmae_lr)
    S = points.shape[0]
    bs = max(1, min(t.batch_size, S))
    drop_last = S >= 2 * bs  # BatchNorm needs > 1 sample; keep every shape when the set is tiny
    per_epoch = S // bs if drop_last else math.ceil(S / bs)
    total = per_epoch * t.pointmae_epochs
    if t.max_steps > 0:
        total = min(total, t.max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total))
    use_amp = t.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step, losses, epoch = 0, [], 0
    model.train()
    bar = tqdm(total=total, desc="pretrain-pointmae", unit="step", disable=None)
    while step < total:
        order = torch.randperm(S)
        running, n = 0.0, 0
        for i in range(per_epoch):
            if step >= total:
                break
            idx = order[i * bs:(i + 1) * bs]
            batch = augment(points[idx]).to(device)  # (b, G, 3)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                loss = model(batch)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            running += float(loss.detach())
            n += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / n:.5f}")
        epoch += 1
        losses.append(running / max(n, 1))
        log.info("epoch %d step %d/%d loss %.6f lr %.3g", epoch, step, total, losses[-1], sched.get_last_lr()[0])
    bar.close()
    return {"base_model": official_state_dict(model.encoder_model), "epoch": epoch, "step": step,
            "loss": losses[-1] if losses else float("nan"), "losses": losses, "config": to_dict(cfg),
            "format": "mesc3d-pointmae-v1"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    cfg = load_config(args.config, args.set)
    pm = cfg.model.point_mae
    points = load_points(args.train, max(pm.num_group, pm.group_size))
    device = _device(cfg.train.device)
    log.info("pretraining Point-MAE (dim %d, depth %d) on %d clouds of %d points, %d epochs, device %s",
             pm.trans_dim, pm.depth, points.shape[0], points.shape[1], cfg.train.pointmae_epochs, device)
    ckpt = pretrain(cfg, points, device)
    with atomic_path(args.out) as tmp:
        torch.save(ckpt, tmp)
    log.info("wrote %s (final loss %.6f)", args.out, ckpt["loss"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
