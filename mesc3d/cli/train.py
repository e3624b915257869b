"""``mesc3d train``: stage-2 reconstruction training (exact resume, AMP on CUDA, DDP via torchrun).

Inputs
  --config results/configs/{exp}.yaml    resolved run config (``--set`` overrides allowed)
  --train / --val results/data/{train,val}.npz   prepared split files (see mesc3d.data.dataset)
  --encoder-ckpt results/pointmae/encoder.pt      Point-MAE weights for the frozen sphere tokens
  --prompts results/pretrain/{key}/prompts.pt     3DSPL priors (required unless prior_injection=none)
Outputs (``--out results/train/{exp}``; the only declared Snakemake outputs)
  model.pt     {"model": best weights, "config": resolved config, "prior_in_dim", "class_names",
               "best_epoch", "best_metric", "config_hash",
               "prompts_sha256" (SHA-256 of --prompts; evaluate/zeroshot/reconstruct refuse other prompts)} — loads with torch.load(weights_only=True)
  metrics.csv  epoch,step,split,loss,cd_l1_x100,cd_l2_x1000,lr,seconds
  teacher_fusion.csv  epoch,teacher,sigma,weight (only for image_encoder=agglomerated/teachers)
Side files (not outputs): ckpt/last.pt (resume state; rerunning the same command continues from
it, a different config restarts from scratch), train.log is the rule's log.
Multi-GPU: ``torchrun --nproc_per_node=4 -m mesc3d train ...`` (rank 0 writes files).
Rule: ``train`` in workflow/rules/train.smk.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

from mesc3d.cli._common import add_config_args
from mesc3d.config import config_hash, to_dict
from mesc3d.engine.stage import loop_cfg, open_stage
from mesc3d.errors import ConfigError
from mesc3d.io import atomic_path, write_csv

log = logging.getLogger("mesc3d.train")

METRIC_COLUMNS = ["epoch", "step", "split", "loss", "cd_l1_x100", "cd_l2_x1000", "lr", "seconds"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d train", description=__doc__.splitlines()[0])
    add_config_args(p)
    p.add_argument("--train", required=True, help="train split file (.npz)")
    p.add_argument("--val", required=True, help="val split file (.npz)")
    p.add_argument("--encoder-ckpt", default=None, help="Point-MAE weights (official or ours)")
    p.add_argument("--prompts", default=None, help="prompts.pt from stage 1 (3DSPL priors)")
    p.add_argument("--out", required=True, help="run directory (model.pt, metrics.csv, ckpt/)")
    p.add_argument("--stop-at-step", type=int, default=None,
                   help="testing: behave as if SIGTERM arrived after this global step")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stage = open_stage("train", args)
    cfg = stage.cfg
    from mesc3d.data.dataset import ReconDataset
    from mesc3d.data.priors import prior_table
    from mesc3d.engine.model_io import build_model, prompts_digest
    from mesc3d.engine.tasks import ReconTask
    from mesc3d.engine.trainer import Engine

    categories = list(cfg.data.categories)
    train_set = ReconDataset(args.train, cfg.data, categories, train=True)
    val_set = ReconDataset(args.val, cfg.data, categories, train=False)
    table = None
    if cfg.uses_prior:
        if not args.prompts:
            raise ConfigError(f"model.prior_injection={cfg.model.prior_injection!r} needs --prompts")
        table = prior_table(args.prompts, categories)  # (C, D), row = class id
    stage.seed()  # model initialisation is part of "same config and seed -> same result"
    model = build_model(cfg, None if table is None else table.shape[1], args.encoder_ckpt)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("run %s (config %s): %d train / %d val shapes, %.3fM trainable parameters",
             cfg.name, config_hash(cfg), len(train_set), len(val_set), n_train / 1e6)

    trainer = Engine(cfg, ReconTask(cfg, model, train_set, val_set, table), loop_cfg(cfg, "train"), Path(args.out) / "ckpt" / "last.pt",
                     stop_at_step=args.stop_at_step)
    try:
        state = trainer.fit()
        if trainer.dist.is_main:
            out = Path(args.out)
            final = {
                "model": trainer.final_weights(state),
                "config": to_dict(cfg),
                "config_hash": config_hash(cfg),
                "prior_in_dim": 0 if table is None else int(table.shape[1]),
                "class_names": categories,
                "best_epoch": state.best_epoch,
                "best_metric": trainer.best_metric(state),
                "global_step": state.global_step,
                "prompts_sha256": prompts_digest(args.prompts) if table is not None else "",
            }
            with atomic_path(out / "model.pt") as tmp:
                torch.save(final, tmp)
            if state.fusion_rows:  # image_encoder=agglomerated: sigma and weight per teacher and epoch
                write_csv(out / "teacher_fusion.csv", pd.DataFrame(
                    state.fusion_rows, columns=["epoch", "teacher", "sigma", "weight"]))
            write_csv(out / "metrics.csv", pd.DataFrame(state.rows, columns=METRIC_COLUMNS))
            log.info("done: best val metric %.4f at epoch %d -> %s", trainer.best_metric(state), state.best_epoch, out)
    finally:
        trainer.close()
    return 0
