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

Recipe (Point-MAE ``cfgs/pretrain.yaml``): AdamW (weight decay 0.05), linear warm-up from 0 over the
first 10% of the epochs then cosine decay to 0 (per step, ``engine.schedule.CosineWarmup``), scale
(U[2/3, 3/2] per axis) + translate (U[-0.2, 0.2]) augmentation, random masking; run by the shared
engine (``mesc3d.engine.tasks.PointMAETask``).  Epoch orders are a pure function of (seed, epoch),
the rest of the randomness comes from torch's RNG seeded with ``seed`` and saved in the resume
checkpoint ``ckpt/<out stem>.last.pt`` beside ``--out``: the same config and input give identical
weights on the same device, also after a kill/SIGTERM and rerun; a changed config starts over.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from mesc3d.cli._common import add_config_args
from mesc3d.config import to_dict
from mesc3d.engine.stage import loop_cfg, open_stage
from mesc3d.errors import BadInputError
from mesc3d.io import atomic_path, load_npz

log = logging.getLogger("mesc3d.pretrain_pointmae")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d pretrain-pointmae", description=__doc__.split("\n")[0])
    add_config_args(p)
    p.add_argument("--train", required=True, help="prepared split file with 'points' (S, G, 3)")
    p.add_argument("--out", required=True, help="output checkpoint (official modelnet_1k.pth layout)")
    return p


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


def pretrain(cfg, points: torch.Tensor, ckpt_path: str | Path) -> dict:
    """Run ``PointMAETask`` on the shared engine (exact resume from ``ckpt_path``) -> output dict."""
    from mesc3d.engine.tasks import PointMAETask
    from mesc3d.engine.runtime import seed_everything
    from mesc3d.engine.trainer import Engine
    from mesc3d.models.point_mae import official_state_dict
    from mesc3d.models.point_mae_pretrain import PointMAEPretrain

    seed_everything(cfg.seed)  # model initialisation
    model = PointMAEPretrain(cfg.model.point_mae, cfg.train.pointmae_mask_ratio)
    engine = Engine(cfg, PointMAETask(cfg, model, points), loop_cfg(cfg, "pretrain_pointmae"), ckpt_path, log_name="pretrain-pointmae")
    try:
        st = engine.fit()
    finally:
        engine.close()
    losses = [r["loss"] for r in st.rows if r["split"] == "train"]
    return {"base_model": official_state_dict(model.encoder_model), "epoch": st.epoch, "step": st.global_step,
            "loss": losses[-1] if losses else float("nan"), "losses": losses, "config": to_dict(cfg),
            "format": "mesc3d-pointmae-v1"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = open_stage("pretrain_pointmae", args).cfg
    pm = cfg.model.point_mae
    points = load_points(args.train, max(pm.num_group, pm.group_size))
    log.info("pretraining Point-MAE (dim %d, depth %d) on %d clouds of %d points, %d epochs",
             pm.trans_dim, pm.depth, points.shape[0], points.shape[1], cfg.train.pointmae_epochs)
    ckpt = pretrain(cfg, points, Path(args.out).parent / "ckpt" / f"{Path(args.out).stem}.last.pt")
    with atomic_path(args.out) as tmp:
        torch.save(ckpt, tmp)
    log.info("wrote %s (final loss %.6f)", args.out, ckpt["loss"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
