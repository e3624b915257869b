"""``mesc3d baseline``: the retrieval and class-mean baselines, evaluated like the model.

Inputs : --kind retrieval|class_mean, --config results/configs/baseline/{exp}.yaml, --train results/data/train.npz,
         --split results/data/test.npz.
Outputs (``--out results/eval/{exp}``): per_shape.csv and per_category.csv with exactly the columns
         of ``mesc3d evaluate`` (see mesc3d.engine.evaluation), so tables treat baselines like runs.
See mesc3d.baselines for what each baseline predicts.  Rule: ``baseline`` in workflow/rules/evaluate.smk.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from mesc3d.cli._common import add_config_args
from mesc3d.engine.stage import open_stage

log = logging.getLogger("mesc3d.baseline")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mesc3d baseline", description=__doc__.splitlines()[0])
    add_config_args(p)
    p.add_argument("--kind", required=True, choices=["retrieval", "class_mean"])
    p.add_argument("--train", required=True, help="train split file (.npz): the database")
    p.add_argument("--split", required=True, help="split to evaluate (test.npz)")
    p.add_argument("--views", type=int, default=4, help="retrieval: augmented views per training shape")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    cfg = open_stage("baseline", args).cfg  # its randomness: explicit generators seeded with cfg.seed

    from mesc3d.baselines import class_medoids, nearest_neighbours, silhouette_embedding
    from mesc3d.data.dataset import ReconDataset
    from mesc3d.engine.evaluation import per_shape_frame
    from mesc3d.metrics import per_category_means
    from mesc3d.engine.runtime import iterate_batches
    from mesc3d.io import write_csv

    cats = list(cfg.data.categories)
    train_eval = ReconDataset(args.train, cfg.data, cats, train=False)
    test = ReconDataset(args.split, cfg.data, cats, train=False)
    all_train = list(range(len(train_eval)))
    gt_train = torch.stack([train_eval[i]["points"] for i in all_train])  # (S, G, 3)

    if args.kind == "class_mean":
        classes = torch.tensor([int(train_eval[i]["class_id"]) for i in all_train])
        medoid = class_medoids(gt_train, classes, seed=cfg.seed)

        def predictions():
            for batch in iterate_batches(test, list(range(len(test))), cfg.eval.batch_size):
                idx = [medoid[int(c)] for c in batch["class_id"]]
                yield batch, gt_train[idx]
    else:
        train_aug = ReconDataset(args.train, cfg.data, cats, train=True)
        keys, owners = [], []
        for batch in iterate_batches(train_eval, all_train, 64):
            keys.append(silhouette_embedding(batch["image"]))
            owners.append(batch["index"])
        for view in range(args.views):
            for batch in iterate_batches(train_aug, all_train, 64, seed=cfg.seed, epoch=view):
                keys.append(silhouette_embedding(batch["image"]))
                owners.append(batch["index"])
        database, owner = torch.cat(keys), torch.cat(owners)
        log.info("retrieval database: %d images of %d training shapes", len(database), len(all_train))

        def predictions():
            for batch in iterate_batches(test, list(range(len(test))), cfg.eval.batch_size):
                nn = nearest_neighbours(silhouette_embedding(batch["image"]), database)
                yield batch, gt_train[owner[nn]]

    per_shape, _ = per_shape_frame(predictions(), cfg, test)
    per_cat = per_category_means(per_shape, cats)
    out = Path(args.out)
    write_csv(out / "per_shape.csv", per_shape)
    write_csv(out / "per_category.csv", per_cat)
    log.info("%s baseline on %d test shapes\n%s", args.kind, len(test), per_cat.to_string(index=False))
    return 0
