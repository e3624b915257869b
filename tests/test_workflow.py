"""The Snakemake DAG: lint, the named targets' plans, the smoke run end to end (rerun semantics:
tests/test_invalidation.py)."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_smk(cwd, *args, timeout=900, check=True):
    res = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({res.returncode}):\n"
                             f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


@functools.lru_cache(maxsize=None)
def plan(cwd, *args) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would execute (parsed once per session: the tests
    that plan the same target of the repository share one dry run)."""
    out = run_smk(cwd, "-n", *args).stdout
    jobs, rule = [], None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if m:
            if rule is not None:
                jobs.append((rule, ""))
            rule = m.group(1)
            continue
        m = re.match(r"^wildcards: (.*)$", line.strip())
        if m and rule is not None:
            jobs.append((rule, m.group(1)))
            rule = None
        elif line.startswith("[") and rule is not None:
            jobs.append((rule, ""))
            rule = None
    if rule is not None:
        jobs.append((rule, ""))
    return jobs


def sheet(path="config/experiments.tsv"):
    return pd.read_csv(REPO / path, sep="\t", dtype=str, keep_default_na=False)


def test_lint_is_clean():
    res = run_smk(REPO, "--lint", check=False, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def test_named_targets_plan_the_expected_jobs():
    rows = sheet()
    trainable = set(rows[rows.kind == "mesc3d"].exp)
    import yaml

    tables = yaml.safe_load((REPO / "config/config.yaml").read_text())["tables"]
    in_all = {e for e in trainable if set(rows.set_index("exp").loc[e, "tables"].split(",")) & set(tables)}
    counts = Counter(rule for rule, _ in plan(REPO, "all"))
    # one evaluate rule: the test split of every run, and the Pix3D photos of the table2 runs
    assert counts["train"] == len(in_all) and counts["evaluate"] == len(in_all) + ("table2" in tables)
    assert counts["synth"] == counts["prepare"] == counts["pretrain_pointmae"] == 1  # shared steps, once
    assert counts["cache_features"] == 2  # train + val features
    # one stage-1 run shared by every row that keeps the base prompt settings (+ one per tab5 row)
    assert counts["pretrain_prompt"] == 1 + ("tab5" in tables) * len(rows[rows.tables.str.contains("tab5")
                                                                         & (rows.kind == "mesc3d")])
    assert counts["baseline"] == 2 and counts["tables"] == 1 and counts["compute_cost"] == 1
    assert counts["table"] == len(tables)  # one job per table
    assert "tab4_clip_frozen" not in {w for _, w in plan(REPO, "all")}  # tab4 not in the default

    abl = plan(REPO, "ablations")
    trained = {w.split("=")[1] for r, w in abl if r == "train"}
    assert {"tab6_add", "esm_released5", "tab3_baseline", "mesc3d_seed1"} <= trained
    every = ["table1", "table3", "tab4", "tab5", "tab6", "tab7", "esm_variant", "seeds", "zeroshot", "complexity",
             "tab_teachers"]
    full = plan(REPO, "ablations", "--config", f"tables=[{','.join(every)}]")
    trained = {w.split("=")[1] for r, w in full if r == "train"}
    fm_only = set(rows[rows.tables == "tab_teachers_fm"].exp)  # need local DINOv2/CLIP teacher folders
    assert trained == trainable - fm_only  # every other ablation row of the sheet is a target
    # tab_teachers_fm with its teacher keys empty stops at DAG construction, naming the key
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--config", "tables=[tab_teachers_fm]"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "dinov2_s14_weights is empty" in res.stderr, res.stderr[-2000:]
    assert Counter(r for r, _ in full)["pretrain_prompt"] == 4  # default + the three stage-1 ablations
    teach = plan(REPO, "results/tables/table_teachers.csv")  # one --config tables=[...] away, not in `all`
    assert {w.split("=")[1] for r, w in teach if r == "train"} == {"mesc3d", "tab3_esm", "teach_effnet",
                                                                   "teach_agg_unc", "teach_agg_mean"}
    assert Counter(r for r, _ in teach)["zeroshot_eval"] == 4  # every run's unseen classes
    assert not {w for _, w in plan(REPO, "all")} & {"exp=teach_effnet"}
    zs = Counter(r for r, _ in plan(REPO, "zeroshot"))
    assert zs["zeroshot_eval"] == 1 and zs["train"] == 2  # with and without the prior
    one = Counter(r for r, _ in plan(REPO, "results/eval/tab6_add/per_category.csv"))
    assert one["train"] == 1 and one["evaluate"] == 1 and one["table"] == 0
    main = Counter(r for r, _ in plan(REPO, "main_table"))
    assert main["table"] == 1 and main["zeroshot_eval"] == 0 and main["train"] == 2  # mesc3d + tab3_baseline


def test_real_data_overlay_plans_downloads():
    jobs = Counter(r for r, _ in plan(REPO, "--configfile", "config/shapenet.yaml"))
    assert jobs["download"] == 3 and jobs["prepare"] == 1 and jobs["synth"] == 0


@pytest.fixture(scope="module")
def smoke_copy(smoke_run):
    return smoke_run  # tests/conftest.py: one smoke run per session


@pytest.mark.slow
def test_smoke_run_produces_every_table(smoke_copy):
    dst, res = smoke_copy
    for name in ("table1_shapenet", "table3_ablation", "zeroshot", "complexity"):
        for ext in ("csv", "tex", "md"):
            assert (dst / "results" / "tables" / f"{name}.{ext}").is_file(), name
    assert (dst / "results/tables/all.tex").is_file() and (dst / "results/tables/compute_cost.csv").is_file()
    assert (dst / "results/figures/contact_sheet.png").is_file()
    per_cat = pd.read_csv(dst / "results/eval/mesc3d/per_category.csv")
    assert list(per_cat.category) == ["airplane", "chair", "table", "mean"]
    zs = pd.read_csv(dst / "results/zeroshot/mesc3d/per_category.csv")
    assert set(zs.prior) == {"with", "without"}
    # every rule of the workflow ran at least once
    done = Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", res.stdout + res.stderr))
    rules = {"synth", "prepare", "resolve_config", "contact_sheet", "pretrain_pointmae",
             "cache_features", "pretrain_prompt", "train", "evaluate", "baseline", "alias", "zeroshot_eval",
             "complexity_run", "table", "tables", "compute_cost"}
    assert rules <= set(done), rules - set(done)
    assert plan(dst, "--configfile", "config/smoke.yaml") == []  # nothing left to do

# What each edit reruns (sheet rows, config keys, code): tests/test_invalidation.py
