"""``mesc3d compute-cost``: per-rule compute cost from Snakemake ``benchmark:`` files.

Usage::

    mesc3d compute-cost --benchmarks benchmarks --out results/tables/compute_cost

Input: every ``<benchmarks>/<rule>/<wildcards>.tsv`` (also deeper: ``<rule>/<a>/<b>.tsv``), as written
by Snakemake 9 (tab-separated header ``s h:m:s max_rss max_vms max_uss max_pss io_in io_out
mean_load cpu_time`` [+ the extended columns], one line per repeat; memory in MB, times in seconds,
``NA`` when the job was too short to be sampled).  A file directly under ``<benchmarks>`` counts
as rule = its stem.  A file without the ``s`` column -> one-line error naming it.

Output: ``<out>.csv`` and ``<out>.md`` (written atomically), one row per rule (sorted by total
seconds, descending) then a ``TOTAL`` row, columns ``rule, jobs, repeats, total_s, mean_s, max_s,
max_rss_mb, cpu_time_s`` (``max_rss_mb`` empty when never sampled).
Snakemake rule: ``compute_cost`` in workflow/rules/tables.smk.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import pandas as pd

from mesc3d.errors import BadInputError
from mesc3d.io import write_csv, write_text

log = logging.getLogger("mesc3d.compute_cost")
COLUMNS = ["rule", "jobs", "repeats", "total_s", "mean_s", "max_s", "max_rss_mb", "cpu_time_s"]


def read_benchmark(path: Path) -> pd.DataFrame:
    """One benchmark TSV -> DataFrame with numeric ``s``, ``max_rss``, ``cpu_time`` (NA -> NaN)."""
    try:
        df = pd.read_csv(path, sep="\t", na_values=["NA", "-"], dtype={"h:m:s": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BadInputError(path, f"not a Snakemake benchmark TSV ({type(err).__name__}: {err})") from err
    if "s" not in df.columns:
        raise BadInputError(path, f"missing column 's'; has {list(df.columns)}")
    for col in ("s", "max_rss", "cpu_time"):
        if col not in df.columns:
            df[col] = math.nan
        df[col] = pd.to_numeric(df[col], errors="coerce")
    if df["s"].isna().any():
        raise BadInputError(path, "column 's' (wall seconds) has non-numeric values")
    return df


def aggregate(bench_dir: str | Path) -> pd.DataFrame:
    """Per-rule totals over every ``*.tsv`` below ``bench_dir`` (empty frame when there are none)."""
    root = Path(bench_dir)
    recs = []
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root)
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        df = read_benchmark(path)
        recs.append((rule, len(df), df["s"].sum(), df["s"].max(), df["max_rss"].max(), df["cpu_time"].sum(min_count=1)))
    raw = pd.DataFrame(recs, columns=["rule", "repeats", "s", "max_s", "rss", "cpu"])
    rows = []
    for rule, g in raw.groupby("rule", sort=True):
        rows.append([rule, len(g), int(g["repeats"].sum()), g["s"].sum(), g["s"].sum() / g["repeats"].sum(),
                     g["max_s"].max(), g["rss"].max(), g["cpu"].sum(min_count=1)])
    out = pd.DataFrame(rows, columns=COLUMNS)
    out = out.sort_values(["total_s", "rule"], ascending=[False, True], kind="stable").reset_index(drop=True)
    if len(out):
        total = ["TOTAL", out["jobs"].sum(), out["repeats"].sum(), out["total_s"].sum(),
                 out["total_s"].sum() / out["repeats"].sum(), out["max_s"].max(), out["max_rss_mb"].max(),
                 out["cpu_time_s"].sum(min_count=1)]
        out = pd.concat([out, pd.DataFrame([total], columns=COLUMNS)], ignore_index=True)
    return out


def _fmt(v: object, spec: str) -> str:
    return "–" if isinstance(v, float) and math.isnan(v) else format(v, spec)


def to_markdown(df: pd.DataFrame, bench_dir: str) -> str:
    """Plain pipe table with a caption line."""
    head = ["rule", "jobs", "repeats", "total (s)", "mean (s)", "max (s)", "max RSS (MB)", "CPU time (s)"]
    lines = [f"**compute_cost.** Per-rule cost summed over the Snakemake benchmark files in `{bench_dir}` "
             "(wall seconds; max RSS = largest resident set of any job; CPU time = user+system summed).",
             "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in df.itertuples(index=False):
        name = f"**{r.rule}**" if r.rule == "TOTAL" else r.rule
        lines.append("| " + " | ".join([name, str(r.jobs), str(r.repeats), _fmt(r.total_s, ".1f"),
                                         _fmt(r.mean_s, ".1f"), _fmt(r.max_s, ".1f"),
                                         _fmt(r.max_rss_mb, ".0f"), _fmt(r.cpu_time_s, ".1f")]) + " |")
    if df.empty:
        lines.append("| (no benchmark files) |" + " |" * (len(head) - 1))
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d compute-cost", description=__doc__.split("\n")[0])
    p.add_argument("--benchmarks", default=Path("benchmarks"), type=Path, help="Snakemake benchmark folder")
    p.add_argument("--out", default=Path("results/tables/compute_cost"), type=Path,
                   help="output stem: writes <out>.csv and <out>.md")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.benchmarks.is_dir():
        raise BadInputError(args.benchmarks, "benchmark folder does not exist")
    df = aggregate(args.benchmarks)
    out = Path(str(args.out).removesuffix(".csv").removesuffix(".md"))
    write_csv(out.with_name(out.name + ".csv"), df)
    write_text(out.with_name(out.name + ".md"), to_markdown(df, str(args.benchmarks)))
    log.info("%d rules, %d jobs -> %s.{csv,md}", max(len(df) - 1, 0), int(df["jobs"].iloc[-1]) if len(df) else 0, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
