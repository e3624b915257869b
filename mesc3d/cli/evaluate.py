"""``mesc3d evaluate``: test-split metrics of a trained model (view 00, fixed GT subsets).

Inputs : --config results/configs/evaluate/{exp}.yaml, --model results/train/{exp}/model.pt,
         --split results/data/test.npz, --prompts results/pretrain/{key}/prompts.pt (if the model
         uses the 3DSPL prior).
Outputs (``--out results/eval/{exp}``):
  per_shape.csv     shape_id,category,cd_l1_x100,cd_l2_x1000,fscore,fscore_euclid
  per_category.csv  category,n_shapes,cd_l1_x100,cd_l2_x1000,fscore,fscore_euclid (+ `mean` row:
                    unweighted mean over categories)
  samples.png       input image | GT | prediction for the first shapes of each category
  samples/<category>_<shape_id>.ply   a few predictions (``eval.n_ply`` per category)
Deterministic: two runs give byte-identical CSVs.  Rule: ``evaluate`` in workflow/rules/evaluate.smk.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mesc3d.cli._common import add_config_args
from mesc3d.engine.stage import open_stage
from mesc3d.errors import ConfigError

log = logging.getLogger("mesc3d.evaluate")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d evaluate", description=__doc__.splitlines()[0])
    add_config_args(p)
    p.add_argument("--model", required=True, help="model.pt from mesc3d train")
    p.add_argument("--split", required=True, help="split file to evaluate (test.npz)")
    p.add_argument("--prompts", default=None, help="prompts.pt (3DSPL priors)")
    p.add_argument("--out", required=True, help="output directory")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stage = open_stage("evaluate", args)
    from mesc3d.data.dataset import ReconDataset
    from mesc3d.data.priors import prior_table
    from mesc3d.engine.model_io import check_prompts, load_trained
    from mesc3d.engine.run_eval import check_classes, run_evaluation
    from mesc3d.config_slices import check_same_run

    cfg, device = stage.cfg, stage.device
    model, trained_cfg, meta = load_trained(args.model, device)
    check_same_run(trained_cfg, cfg, args.model)  # a result is labelled by the model that made it
    categories = list(cfg.data.categories)
    dataset = ReconDataset(args.split, cfg.data, categories, train=False)
    check_classes(dataset, args.model)
    table = None
    if cfg.uses_prior:
        if not args.prompts:
            raise ConfigError(f"model.prior_injection={cfg.model.prior_injection!r} needs --prompts")
        check_prompts(meta, args.prompts, args.model)
        table = prior_table(args.prompts, categories).to(device)
    stage.seed()
    per_cat = run_evaluation(model, cfg, dataset, table, Path(args.out), device)
    log.info("%s: %d test shapes\n%s", cfg.name, len(dataset), per_cat.to_string(index=False))
    return 0
