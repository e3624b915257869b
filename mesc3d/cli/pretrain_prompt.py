"""``mesc3d pretrain-prompt``: stage 1 (3DSPL) — contrastive training of the class prompts on cached features.

    mesc3d pretrain-prompt --config RUN.yaml --train-features F/train.h5 --val-features F/val.h5 \
        --out PR/prompts.pt [--retrieval-csv PR/retrieval.csv] [--set k=v]

Inputs: two feature caches written by ``mesc3d cache-features`` (``features`` (S, F), ``class_ids``,
``categories``); rows whose class is not in ``data.categories`` are ignored.
Training (``prompt.*``): Adam (betas 0.9/0.999, eps 1e-6, no weight decay), lr ``prompt.lr`` with a
per-step cosine schedule and linear warmup (``warmup_epochs`` from ``warmup_lr``, down to ``lr_min``;
``engine.schedule.CosineWarmup``), ``epochs`` x shuffled batches of ``batch_size``; symmetric InfoNCE
(``mesc3d.models.prompt_stage1``), run by the shared engine (``mesc3d.engine.trainer``).
Model selection: the epoch with the highest mean diagonal cosine(point, own-class prompt) on val.
Resume: ``ckpt/<out stem>.last.pt`` beside ``--out`` (not an output); rerunning the same command after
a kill or SIGTERM continues exactly; a changed config starts over and says so.
Outputs (atomic):
- ``--out`` prompts.pt = torch.save of plain objects (load with ``torch.load(weights_only=True)``):
  ``{"prompt_state": trainable tensors (prompts, point_proj, logit_scale), "config": resolved config dict,
  "class_names": data.categories + data.unseen_categories, "priors": float32 (C, D) (eval mode, no dropout),
  "prior_dim": D, "best_epoch": int, "history": [per-epoch dicts]}``;
- ``--retrieval-csv``: ``split,top1,chance,n`` for train and val (best model; point feature -> the
  nearest seen-class prompt, top-1; chance = 1 / n_seen_classes).
Seeded by ``seed``: equal inputs and config give identical outputs.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from mesc3d.cli._common import add_config_args
from mesc3d.config import to_dict
from mesc3d.engine.stage import open_stage

log = logging.getLogger("mesc3d.pretrain_prompt")


def load_split(path: str, categories: list[str]):
    """Cached features of the configured classes -> (features float32 tensor (S, F), class_ids (S,))."""
    import torch

    from mesc3d.data.feature_cache import read_feature_cache, remap_class_ids
    from mesc3d.errors import BadInputError

    cache = read_feature_cache(path)
    ids = remap_class_ids(cache, categories, path)
    keep = ids >= 0
    if not keep.any():
        raise BadInputError(path, f"no shapes of the configured classes {categories}")
    return torch.from_numpy(cache.features[keep]), torch.from_numpy(ids[keep])


def train_stage1(cfg, train_x, train_y, val_x, val_y, ckpt_path, tower=None):
    """Train a ``Stage1Model`` on the engine; returns (model with the best state loaded, best_epoch
    (0-based), history (per-epoch dicts)).  Resumes exactly from ``ckpt_path``."""
    from mesc3d.engine.tasks import Stage1Task
    from mesc3d.engine.runtime import seed_everything
    from mesc3d.engine.stage import loop_cfg
    from mesc3d.engine.trainer import Engine
    from mesc3d.models.prompt_stage1 import Stage1Model

    seed_everything(cfg.seed)  # model initialisation
    model = Stage1Model(cfg.prompt, list(cfg.data.categories), train_x.shape[1], tower=tower)
    log.info("stage 1: %s, %d trainable parameters, %d train / %d val shapes, feature dim %d",
             model.bank.extra_repr(), sum(x.numel() for x in model.trainable_parameters()), len(train_x),
             len(val_x), train_x.shape[1])
    engine = Engine(cfg, Stage1Task(cfg, model, train_x, train_y, val_x, val_y), loop_cfg(cfg, "pretrain_prompt"),
                    ckpt_path, log_name="stage 1")
    try:
        st = engine.fit()
    finally:
        engine.close()
    model.load_trainable_state(engine.final_weights(st))
    train_rows = {r["epoch"]: r for r in st.rows if r["split"] == "train"}
    history = [{"epoch": r["epoch"] - 1, "lr": r["lr"], "loss": train_rows[r["epoch"]]["loss"],
                "val_diag_cos": r["diag_cos"], "val_top1": r["top1"], "logit_scale": r["logit_scale"],
                "seconds": r["seconds"]} for r in st.rows if r["split"] == "val"]
    return model, st.best_epoch - 1, history


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesc3d pretrain-prompt", description=__doc__.split("\n")[0])
    add_config_args(parser)
    parser.add_argument("--train-features", required=True, help="F/train.h5 from cache-features")
    parser.add_argument("--val-features", required=True, help="F/val.h5 from cache-features")
    parser.add_argument("--out", required=True, help="PR/prompts.pt")
    parser.add_argument("--retrieval-csv", default=None, help="PR/retrieval.csv (split,top1,chance,n)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = open_stage("pretrain_prompt", args).cfg

    import pandas as pd
    import torch

    from mesc3d.io import atomic_path, write_csv

    seen = list(cfg.data.categories)
    train_x, train_y = load_split(args.train_features, seen)
    val_x, val_y = load_split(args.val_features, seen)
    if train_x.shape[1] != val_x.shape[1]:
        from mesc3d.errors import BadInputError

        raise BadInputError(args.val_features, f"feature width {val_x.shape[1]} != train {train_x.shape[1]}")
    t0 = time.perf_counter()
    ckpt = Path(args.out).parent / "ckpt" / f"{Path(args.out).stem}.last.pt"
    model, best_epoch, history = train_stage1(cfg, train_x, train_y, val_x, val_y, ckpt)
    minutes = (time.perf_counter() - t0) / 60
    names = seen + [n for n in cfg.data.unseen_categories if n not in seen]
    priors = model.priors(names).contiguous()  # (C, D)
    rows = []
    for split, (x, y) in (("train", (train_x, train_y)), ("val", (val_x, val_y))):
        ev = model.evaluate(x, y)
        rows.append({"split": split, "top1": ev["top1"], "chance": ev["chance"], "n": ev["n"]})
        log.info("retrieval %s: top-1 %.3f (chance %.3f, n=%d)", split, ev["top1"], ev["chance"], ev["n"])
    payload = {"prompt_state": model.trainable_state_dict(), "config": to_dict(cfg), "class_names": names,
               "priors": priors.float(), "prior_dim": int(priors.shape[1]), "best_epoch": int(best_epoch),
               "history": history}
    with atomic_path(args.out) as tmp:
        torch.save(payload, tmp)
    if args.retrieval_csv:
        write_csv(args.retrieval_csv, pd.DataFrame(rows, columns=["split", "top1", "chance", "n"]))
    val_row = rows[1]
    print(f"stage-1 retrieval val top-1 {val_row['top1']:.3f} (chance {val_row['chance']:.3f}, n={val_row['n']}); "
          f"best epoch {best_epoch + 1}/{cfg.prompt.epochs}; {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
