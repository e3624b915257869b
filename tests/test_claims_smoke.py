"""The `claims` target end to end on the smoke config, and what adding a seed reruns.

One real run of `snakemake claims` (smoke config: 3 claims with arms in the smoke sheet, 3 seeds each)
in a copy of the working tree; then a dry run with `table_seeds.claims` raised to 4 must plan exactly
the jobs of the new seed (its stage 1, trainings, evaluations, zero-shot, configs and manifests) and
the claims table and curves, and nothing of seeds 0-2.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import copy_worktree, planned, smk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def claims_run(tmp_path_factory):
    dst = copy_worktree(tmp_path_factory.mktemp("claims"))
    smk(dst, "--cores", "2", "claims", timeout=1800)
    return dst


def planned_claims(dst: Path, *extra: str) -> dict[str, set[str]]:
    return planned(dst, "claims", *extra)


def test_claims_table_from_the_smoke_run(claims_run):
    df = pd.read_csv(claims_run / "results/tables/claims.csv")
    assert {"claim", "metric", "arm_a", "arm_b", "effect", "ci_low", "ci_high", "n_seeds", "n_shapes",
            "verdict"} <= set(df.columns)
    assert set(df["claim"].str.split(":").str[0]) == {"esm_beats_baseline", "3dspl_beats_esm", "prior_helps_unseen"}
    assert (df["n_seeds"] == 3).all() and set(df["verdict"]) <= {"holds", "reversed", "inconclusive"}
    assert (df["ci_low"] <= df["effect"]).all() and (df["effect"] <= df["ci_high"]).all()
    assert (claims_run / "results/figures/curves_claims.png").stat().st_size > 0
    assert planned_claims(claims_run) == {}


def test_adding_a_seed_reruns_only_that_seeds_jobs(claims_run):
    arms = {"mesc3d", "tab3_esm", "tab3_baseline"}
    new = {f"{e}__s3" for e in arms}
    got = planned_claims(claims_run, "--config", "table_seeds={claims: 4}")
    assert got == {
        "resolve_config": {f"{s}/{e}" for s in ("train", "evaluate") for e in new}
        | {"zeroshot/mesc3d__s3", "zeroshot/tab3_esm__s3", "pretrain_prompt/_base__s3"},
        "pretrain_prompt": {"default__s3"}, "train": new, "evaluate": {f"eval/{e}" for e in new},
        "manifest": new, "zeroshot_eval": {"mesc3d__s3"}, "table": {"claims"}, "curves_table": {"claims"},
        "claims": {""}}, got
