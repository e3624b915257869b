"""Evaluate one model on one split and write its result files (``mesc3d evaluate`` and ``mesc3d zeroshot``).

``run_evaluation(model, cfg, dataset, priors, out, device, ...)`` writes under ``out``:
``per_shape{tag}.csv``, ``per_category{tag}.csv`` (``mesc3d.engine.evaluation``) and, with
``write_samples``, ``samples{tag}.png`` and ``samples/<category>_<shape_id>{tag}.ply``.
"""

from __future__ import annotations

from pathlib import Path

from mesc3d.errors import ConfigError, quote


def run_evaluation(model, cfg, dataset, priors, out: Path, device, use_prior: bool = True,
                   categories=None, write_samples: bool = True, tag: str = ""):
    """Evaluate ``model`` on ``dataset`` and write the CSVs/figure under ``out``; returns per-category."""
    from mesc3d.engine.evaluation import first_per_category, per_shape_frame
    from mesc3d.metrics import per_category_means
    from mesc3d.engine.validation import predict
    from mesc3d.io import write_csv, write_ply
    from mesc3d.viz import plot_triplet_grid, save_figure

    keep_n = max(cfg.eval.n_ply, cfg.eval.n_figure)
    batches = predict(model, dataset, priors, device, cfg.eval.batch_size, seed=cfg.seed, use_prior=use_prior)
    per_shape, kept = per_shape_frame(batches, cfg, dataset, keep=first_per_category(keep_n))
    per_cat = per_category_means(per_shape, categories or list(cfg.data.categories))
    write_csv(out / f"per_shape{tag}.csv", per_shape)
    write_csv(out / f"per_category{tag}.csv", per_cat)
    if write_samples:
        rows, counts = [], {}
        for idx in sorted(kept):
            image, gt, pred = kept[idx]
            cat = str(dataset.categories_of_items[idx])
            counts[cat] = counts.get(cat, 0) + 1
            if counts[cat] <= cfg.eval.n_ply:
                write_ply(out / "samples" / f"{cat}_{dataset.shape_ids[idx]}{tag}.ply", pred)
            if counts[cat] <= cfg.eval.n_figure:
                rows.append((image, gt, pred, f"{cat} {dataset.shape_ids[idx][:8]}"))
        save_figure(plot_triplet_grid(rows), out / f"samples{tag}.png")
    return per_cat


def check_classes(dataset, model_path) -> None:
    """Every shape of the split must be of a class the model was evaluated for (one line otherwise)."""
    outside = sorted(set(dataset.categories_of_items[dataset.class_ids < 0].tolist()))
    if outside:
        raise ConfigError(f"{dataset.path}: holds classes {quote(outside)} outside the run's classes "
                          f"{quote(dataset.categories)} (model {model_path}); use the split prepared for this run")
