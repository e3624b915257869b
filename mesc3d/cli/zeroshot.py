"""``mesc3d zeroshot``: reconstruction of the unseen classes with vs without the 3DSPL prior.

The paper's Fig. 6 comparison: the model trained with the prior on the seen classes only,
given the prior of an *unseen* class name (encoded by the stage-1 prompt without retraining),
versus the same architecture trained without the prior (``zeroshot.without_prior`` in the workflow
config, the Tab. 3 "+ESM" run).  Images and GT come from the Pix3D layout (``zeroshot.npz``).

Inputs : --config/--model/--prompts of the run with the prior; --config-without/--model-without of
         the run without it; --split results/data/zeroshot.npz.
Outputs (``--out results/zeroshot/{exp}``):
  per_category.csv  category,prior,n_shapes,cd_l1_x100,cd_l2_x1000,fscore,fscore_euclid
                    (prior in {with, without}; per class, then `mean` per prior)
  per_shape_with.csv, per_shape_without.csv, samples_with.png, samples_without.png, samples.png
Rule: ``zeroshot_eval`` in workflow/rules/evaluate.smk.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import pandas as pd

from mesc3d.cli._common import add_config_args
from mesc3d.config import load_config
from mesc3d.engine.stage import open_stage
from mesc3d.errors import ConfigError

log = logging.getLogger("mesc3d.zeroshot")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mesc3d zeroshot", description=__doc__.splitlines()[0])
    add_config_args(p)
    p.add_argument("--model", required=True, help="model.pt trained WITH the prior")
    p.add_argument("--prompts", required=True, help="prompts.pt (priors of seen and unseen names)")
    p.add_argument("--config-without", required=True, help="run config of the model without prior")
    p.add_argument("--model-without", required=True, help="model.pt trained WITHOUT the prior")
    p.add_argument("--split", required=True, help="zeroshot.npz (unseen classes, Pix3D layout)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    stage = open_stage("zeroshot", args)

    from mesc3d.data.dataset import ReconDataset
    from mesc3d.data.priors import prior_table
    from mesc3d.engine.model_io import check_prompts, load_trained
    from mesc3d.engine.run_eval import check_classes, run_evaluation
    from mesc3d.io import write_csv

    cfg, device = stage.cfg, stage.device
    cfg_wo = load_config(args.config_without)
    if not cfg.uses_prior:
        raise ConfigError(f"{args.config}: the 'with prior' run has model.prior_injection=none")
    if cfg_wo.uses_prior:
        raise ConfigError(f"{args.config_without}: the 'without prior' run uses a prior")
    unseen = list(cfg.data.unseen_categories)
    dataset = ReconDataset(args.split, cfg.data, unseen, train=False)
    check_classes(dataset, args.model)
    table = prior_table(args.prompts, unseen).to(device)  # (U, D), row = class id
    out = Path(args.out)

    from mesc3d.config_slices import check_same_run

    model, trained, meta = load_trained(args.model, device)
    check_prompts(meta, args.prompts, args.model)
    model_wo, trained_wo, _ = load_trained(args.model_without, device)
    check_same_run(trained, cfg, args.model, "zeroshot")  # before any output is written
    check_same_run(trained_wo, cfg_wo, args.model_without, "zeroshot")
    frames = []
    stage.seed()  # as evaluate (the evaluation draws no random number: seeded per item, eval mode)
    frames.append(run_evaluation(model, cfg, dataset, table, out, device, categories=unseen, tag="_with")
                  .assign(prior="with"))
    frames.append(run_evaluation(model_wo, cfg_wo, dataset, None, out, device, categories=unseen,
                                 tag="_without").assign(prior="without"))
    per_cat = pd.concat(frames, ignore_index=True)
    cols = ["category", "prior", "n_shapes", "cd_l1_x100", "cd_l2_x1000", "fscore", "fscore_euclid"]
    write_csv(out / "per_category.csv", per_cat[cols])
    # the combined figure target: the with-prior grid (the without-prior one sits beside it)
    from mesc3d.io import atomic_path

    with atomic_path(out / "samples.png") as tmp:
        shutil.copyfile(out / "samples_with.png", tmp)
    log.info("zero-shot on %s\n%s", unseen, per_cat[cols].to_string(index=False))
    return 0
