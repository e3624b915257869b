"""``mesc3d tables``: paper-style result tables (CSV, booktabs LaTeX, markdown) from the result CSVs.

Usage::

    mesc3d tables --results results --out results/tables --table table1=mesc3d,retrieval table3=... \\
        [--index | --index-only] [--categories airplane chair ...] [--require FILE ...]

``--table ID=RUN,RUN``: a table of ``mesc3d.table_specs.TABLES`` and the runs it takes (the workflow
passes each table's rows of the experiments sheet, or the run its config key names).  Inputs (under
``--results``; a run without results is left out of its table, its manifest is required):
``manifests/{exp}.json``, ``eval/{exp}/per_category.csv``, ``eval_pix3d/{exp}/per_category.csv``,
``zeroshot/{exp}/per_category.csv``, ``complexity/{exp}.csv``, ``pretrain/*/retrieval.csv`` (formats:
docs/design.md).  Every ``--require`` file must exist (else one-line error, nothing written).

Outputs (in ``--out``; every file written atomically):
- ``<stem>.{csv,tex,md}`` of every ``--table`` (stem: ``TableSpec.stem``); a table none of whose runs
  has results is an error, except with ``--index`` (then it is left out);
- ``--index``: also ``pretrain_retrieval`` when a retrieval CSV exists, ``tables_long.csv`` (every
  numeric cell, tidy: ``table,row,label,section,column,value``) and ``all.tex`` (standalone document
  ``\\input``-ing the fragments: ``cd <out> && pdflatex all.tex``);
- ``--index-only``: just ``tables_long.csv`` and ``all.tex`` of the ``--table`` tables (rule ``tables``).
CSV tables are WIDE: ``<id>,label,section,<metric>:<method>...`` (raw floats, no bold).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mesc3d.categories import check_categories
from mesc3d.errors import BadInputError, ConfigError
from mesc3d.io import write_csv, write_text
from mesc3d.table_render import render_all_tex, tidy_frame, write_table
from mesc3d.table_specs import TABLES, check_table_ids
from mesc3d.tables import build_pretrain_retrieval, build_tables

log = logging.getLogger("mesc3d.tables")


def parse_table_args(items: list[str]) -> dict[str, list[str]]:
    """``["table1=a,b", "zeroshot=mesc3d", "tab5="]`` -> {"table1": ["a", "b"], ...} (ids checked)."""
    out: dict[str, list[str]] = {}
    for item in items:
        tid, sep, runs = item.partition("=")
        if not sep:
            raise ConfigError(f"--table {item[:100]!r}: expected ID=RUN,RUN (table ids: {list(TABLES)})")
        try:
            check_table_ids([tid], "--table")
        except ValueError as err:
            raise ConfigError(str(err)) from None
        out[tid] = [r for r in runs.split(",") if r]
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d tables", description=__doc__.split("\n")[0])
    p.add_argument("--results", default=Path("results"), type=Path, help="results root (default: results)")
    p.add_argument("--out", default=Path("results/tables"), type=Path, help="output folder")
    p.add_argument("--table", nargs="+", action="extend", required=True, metavar="ID=RUN,RUN",
                   help="a table id of mesc3d/table_specs.py and its runs (repeatable)")
    p.add_argument("--categories", nargs="+", default=None,
                   help="categories (rows) to show, space- or comma-separated; default: the classes of the "
                        "table's runs (their manifests), filtered to those present in the results")
    p.add_argument("--require", nargs="+", default=[], type=Path, metavar="CSV",
                   help="result files that must exist (missing -> error)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--index", action="store_true",
                      help="also write all.tex and tables_long.csv (tables without results are left out)")
    mode.add_argument("--index-only", action="store_true",
                      help="write only all.tex and tables_long.csv of the --table tables")
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
    built = build_tables(args.results, parse_table_args(args.table), cats)  # reads and validates everything first
    empty = [TABLES[t].stem for t, table in built.items() if table is None]
    if empty and not (args.index or args.index_only):
        raise BadInputError(args.results, f"no run of tables {empty} has results")
    tables = [t for t in built.values() if t is not None]
    if args.index:
        tables += [t for t in (build_pretrain_retrieval(args.results),) if t is not None]
    if not args.index_only:
        for t in tables:
            paths = write_table(t, args.out)
            log.info("%s: %d rows -> %s", t.name, len(t.rows), ", ".join(p.name for p in paths))
    if args.index or args.index_only:
        write_csv(args.out / "tables_long.csv", tidy_frame(tables))
        write_text(args.out / "all.tex", render_all_tex([t.name for t in tables]))
        log.info("wrote %s", args.out / "all.tex")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
