"""``mesc3d tables``: paper-style result tables (CSV, booktabs LaTeX, markdown) from the result CSVs.

Usage::

    mesc3d tables --sheet config/experiments.tsv --results results --out results/tables \\
        [--categories airplane chair ...] [--require results/eval/mesc3d/per_category.csv ...]

Inputs (under ``--results``; all optional, a run without results is left out of its table):
``eval/{exp}/per_category.csv``, ``zeroshot/{exp}/per_category.csv``, ``complexity/{exp}.csv``,
``pretrain/*/retrieval.csv`` (formats: docs/design.md).  ``--sheet`` is required, and every
``--require`` file must exist (else one-line error, nothing written).

Outputs (in ``--out``; every file written atomically):
- ``table1_shapenet``, ``table3_ablation``, ``zeroshot``, ``complexity`` ``.{csv,tex,md}`` (always);
- ``table2_pix3d`` when ``eval_pix3d/{exp}/per_category.csv`` exists for a ``table2`` run;
- ``table4_encoder``, ``table5_stage1``, ``table6_injection``, ``table7_mit``, ``esm_variant``,
  ``seeds``, ``pretrain_retrieval`` ``.{csv,tex,md}`` when they have rows;
- ``tables_long.csv``: every numeric cell, tidy (``table,row,label,section,column,value``);
- ``all.tex``: standalone document ``\\input``-ing the fragments (``cd <out> && pdflatex all.tex``).
CSV tables are WIDE: ``<id>,label,section,<metric>:<method>...`` (raw floats, no bold).
``--only NAME ...`` writes just those tables (one Snakemake job per table, rule ``table``);
``--index-only`` writes just ``all.tex`` and ``tables_long.csv`` for the tables already in ``--out``
(rule ``tables``).  Without either, everything is written at once.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mesc3d.categories import check_categories
from mesc3d.errors import BadInputError
from mesc3d.io import write_csv, write_text
from mesc3d.table_render import render_all_tex, tidy_frame, write_table
from mesc3d.tables import build_all

log = logging.getLogger("mesc3d.tables")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d tables", description=__doc__.split("\n")[0])
    p.add_argument("--sheet", required=True, type=Path, help="experiments sheet (tab-separated)")
    p.add_argument("--results", default=Path("results"), type=Path, help="results root (default: results)")
    p.add_argument("--out", default=Path("results/tables"), type=Path, help="output folder")
    p.add_argument("--categories", nargs="+", default=None,
                   help="categories (rows) to show, space- or comma-separated; default: the 13 ShapeNet "
                        "classes in config order, filtered to those present in the results")
    p.add_argument("--base-loss", default="l1", choices=("l1", "l2", "l1+l2"),
                   help="train.loss of the base run config (rows without a train.loss override); for captions")
    p.add_argument("--zeroshot-run", default=None, metavar="EXP",
                   help="the run trained with the prior whose results/zeroshot/EXP/ the zeroshot table shows "
                        "(the workflow passes its config key zeroshot.with_prior); default: none")
    p.add_argument("--require", nargs="+", default=[], type=Path, metavar="CSV",
                   help="result files that must exist (missing -> error)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--only", nargs="+", default=None, metavar="TABLE",
                      help="write only these tables (e.g. table1_shapenet zeroshot); no all.tex")
    mode.add_argument("--index-only", action="store_true",
                      help="write only all.tex and tables_long.csv, for the tables whose .tex exists in --out")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for path in args.require:
        if not path.is_file():
            raise BadInputError(path, "required result CSV does not exist")
    cats = None
    if args.categories:
        cats = [c for item in args.categories for c in item.split(",") if c]
        cats = check_categories(cats, allowed=cats, where="--categories")  # duplicates; any class name
    tables = build_all(args.sheet, args.results, cats, base_loss=args.base_loss,
                       zeroshot_run=args.zeroshot_run)  # reads and validates everything first
    if args.only is not None:
        known = {t.name for t in tables}
        unknown = sorted(set(args.only) - known)
        if unknown:
            raise BadInputError(args.sheet, f"no data for tables {unknown} (buildable: {sorted(known)})")
        for t in tables:
            if t.name in args.only:
                paths = write_table(t, args.out)
                log.info("%s: %d rows -> %s", t.name, len(t.rows), ", ".join(p.name for p in paths))
        return 0
    if args.index_only:
        tables = [t for t in tables if (args.out / f"{t.name}.tex").is_file()]
    else:
        for t in tables:
            paths = write_table(t, args.out)
            log.info("%s: %d rows -> %s", t.name, len(t.rows), ", ".join(p.name for p in paths))
    write_csv(args.out / "tables_long.csv", tidy_frame(tables))
    write_text(args.out / "all.tex", render_all_tex([t.name for t in tables]))
    log.info("wrote %s", args.out / "all.tex")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
