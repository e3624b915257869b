"""Seeds, claims and confidence intervals: mesc3d.stats against hand computations and scipy, the claims
table on synthetic per-shape CSVs (a known effect holds, a null is inconclusive, a reversed effect is
reversed), seed replicas in the sheet, and spread cells in the renderings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mesc3d import stats
from mesc3d.errors import ConfigError
from mesc3d.sheet import Sheet
from mesc3d.table_render import Column, Spread, Table, render_latex, render_markdown, write_table
from mesc3d.tables import build_tables

REPO = Path(__file__).resolve().parents[1]


def _config(name: str) -> dict:
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if name != "config":
        over = yaml.safe_load((REPO / f"config/{name}.yaml").read_text())
        for k, v in over.items():
            cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    return cfg


# ---------------------------------------------------------------------------- mesc3d.stats
def test_bootstrap_variance_matches_the_stratified_plug_in_formula():
    rng = np.random.default_rng(1)
    classes = np.repeat(["a", "b", "c"], [20, 35, 50])
    d = rng.normal(size=len(classes)) * np.where(classes == "a", 3.0, 1.0)
    boot = stats.stratified_boot(d, classes, n_boot=20000)
    # Var of the mean over C classes of within-class resample means = 1/C^2 sum_c var_c(ddof 0) / n_c
    expect = sum(np.var(d[classes == c]) / np.sum(classes == c) for c in "abc") / 9
    assert np.var(boot, ddof=1) == pytest.approx(expect, rel=0.05)
    assert boot.mean() == pytest.approx(stats.class_means(d, classes)[0], abs=0.02)


def test_bootstrap_agrees_with_scipy_on_one_class():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 60)
    e = stats.paired_difference(a[None], b[None], np.array(["x"] * 60), n_boot=20000)
    ref = scipy_stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), paired=True,
                                n_resamples=20000, method="percentile", random_state=0)
    assert math.sqrt(e.shape_part) == pytest.approx(ref.standard_error, rel=0.05)
    assert e.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.05)
    assert e.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.05)
    assert e.n_seeds == 1 and math.isnan(e.seed_part) and e.dof == math.inf


def test_seed_part_is_a_t_interval_over_seeds():
    scipy_stats = pytest.importorskip("scipy.stats")
    classes = np.repeat(["a", "b"], 10)
    per_seed = np.array([0.5, 1.1, 0.2, 0.9])  # effect of each seed, the same on every shape
    b = np.tile(np.linspace(0, 1, 20), (4, 1))
    a = b + per_seed[:, None]  # no shape-to-shape spread of the difference: V_shapes = 0
    e = stats.paired_difference(a, b, classes)
    lo, hi = scipy_stats.t.interval(0.95, 3, loc=per_seed.mean(), scale=scipy_stats.sem(per_seed))
    assert e.shape_part == pytest.approx(0.0, abs=1e-24)
    assert (e.ci_low, e.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert e.effect == pytest.approx(per_seed.mean()) and e.dof == pytest.approx(3)


def test_interval_is_deterministic_and_combines_both_parts():
    rng = np.random.default_rng(3)
    classes = np.repeat(["a", "b"], 30)
    a, b = rng.normal(size=(3, 60)), rng.normal(size=(3, 60))
    e1, e2 = stats.paired_difference(a, b, classes), stats.paired_difference(a, b, classes)
    assert e1 == e2
    half = (e1.ci_high - e1.ci_low) / 2
    assert half == pytest.approx(stats.t_quantile(0.975, e1.dof) * math.sqrt(e1.seed_part + e1.shape_part))
    assert 2 <= e1.dof  # Welch-Satterthwaite: at least the seeds' K - 1


def test_class_weights_are_the_papers():
    classes = np.array(["a"] * 90 + ["b"] * 10)
    vals = np.where(classes == "a", 1.0, 3.0)
    assert stats.class_means(vals, classes)[0] == pytest.approx(2.0)  # not the pooled 1.2


@pytest.mark.parametrize("lo,hi,better,expect", [
    (-2, -1, "min", "holds"), (1, 2, "min", "reversed"), (-1, 1, "min", "inconclusive"),
    (1, 2, "max", "holds"), (-2, -1, "max", "reversed"), (math.nan, 1, "min", "inconclusive")])
def test_verdict(lo, hi, better, expect):
    assert stats.verdict(lo, hi, better) == expect


# ---------------------------------------------------------------------------- the claims table
def _manifest(res: Path, exp: str, prior: bool = False, same_as: str = "") -> None:
    (res / "manifests").mkdir(parents=True, exist_ok=True)
    (res / "manifests" / f"{exp}.json").write_text(json.dumps({
        "exp": exp, "label": exp.upper(), "kind": "alias" if same_as else "mesc3d", "same_as": same_as,
        "loss": "l1", "seed": 0, "uses_prior": prior, "categories": ["chair", "table"],
        "unseen_categories": ["bed", "desk"]}))


def _per_shape(path: Path, cats: list[str], values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"shape_id": [f"s{i:03d}" for i in range(len(cats))], "category": cats,
                  "cd_l1_x100": values, "cd_l2_x1000": values, "fscore": 1 - values / 10,
                  "fscore_euclid": 0.5}).to_csv(path, index=False)


def synthetic_results(res: Path, seeds: int = 3) -> dict[str, list[str]]:
    """Arms base (CD 5), better (CD 4: a known effect), same (CD 5: null), worse (CD 6: reversed)."""
    rng = np.random.default_rng(0)
    cats = ["chair"] * 25 + ["table"] * 15
    shape_effect = rng.normal(0, 1.0, len(cats))  # per-shape difficulty, shared by every arm
    for k in range(seeds):
        sfx = "" if k == 0 else f"__s{k}"
        for exp, level in (("base", 5.0), ("better", 4.0), ("same", 5.0), ("worse", 6.0)):
            _manifest(res, exp + sfx)
            noise = rng.normal(0, 0.3, len(cats))
            _per_shape(res / "eval" / (exp + sfx) / "per_shape.csv", cats, level + shape_effect + noise)
        # zero-shot: the with-prior run's folder holds both arms (with: better on bed, equal on desk)
        _manifest(res, "withp" + sfx, prior=True), _manifest(res, "without" + sfx)
        zcats = ["bed"] * 12 + ["desk"] * 12
        base = 8 + rng.normal(0, 1, len(zcats))
        gain = np.where(np.array(zcats) == "bed", 2.0, 0.0)
        _per_shape(res / "zeroshot" / ("withp" + sfx) / "per_shape_with.csv", zcats,
                   base - gain + rng.normal(0, 0.2, len(zcats)))
        _per_shape(res / "zeroshot" / ("withp" + sfx) / "per_shape_without.csv", zcats,
                   base + rng.normal(0, 0.2, len(zcats)))
    return {"claims": [f"esm_beats_baseline:better:base:{seeds}", f"3dspl_beats_esm:same:base:{seeds}",
                       f"concat_after_beats_add:worse:base:{seeds}", f"prior_helps_unseen:withp:without:{seeds}"]}


def test_claims_table_verdicts_on_synthetic_csvs(tmp_path):
    res = tmp_path / "results"
    tables = build_tables(res, synthetic_results(res))
    t = tables["claims"]
    df = t.frame().set_index("claim")
    for col in ("claim", "metric", "arm_a", "arm_b", "effect", "ci_low", "ci_high", "n_seeds", "n_shapes",
                "verdict"):
        assert col in t.frame().columns
    assert df.loc["esm_beats_baseline", "verdict"] == "holds"
    assert df.loc["esm_beats_baseline", "effect"] == pytest.approx(-1.0, abs=0.2)
    assert df.loc["3dspl_beats_esm", "verdict"] == "inconclusive"
    assert df.loc["concat_after_beats_add", "verdict"] == "reversed"
    assert df.loc["prior_helps_unseen", "verdict"] == "holds"  # overall: bed gains, desk does not
    assert df.loc["prior_helps_unseen:bed", "verdict"] == "holds"
    assert df.loc["prior_helps_unseen:desk", "verdict"] == "inconclusive"
    assert df.loc["esm_beats_baseline", "n_seeds"] == 3 and df.loc["esm_beats_baseline", "n_shapes"] == 40
    assert df.loc["prior_helps_unseen:bed", "n_shapes"] == 12
    paths = write_table(t, tmp_path / "tables")
    assert [p.name for p in paths] == ["claims.csv", "claims.tex", "claims.md"]
    assert "inconclusive" in paths[2].read_text()


def test_claims_with_missing_seeds_count_only_the_seeds_with_results(tmp_path):
    res = tmp_path / "results"
    runs = synthetic_results(res, seeds=2)
    runs["claims"] = [r.replace(":2", ":3") for r in runs["claims"]]  # seed 2 not run yet
    for exp in ("base", "better", "same", "worse", "withp", "without"):
        _manifest(res, f"{exp}__s2")
    df = build_tables(res, runs)["claims"].frame().set_index("claim")
    assert df.loc["esm_beats_baseline", "n_seeds"] == 2


def test_claims_refuse_unpaired_shapes(tmp_path):
    from mesc3d.errors import BadInputError

    res = tmp_path / "results"
    runs = synthetic_results(res, seeds=1)
    f = res / "eval" / "base" / "per_shape.csv"
    df = pd.read_csv(f)
    df.loc[0, "shape_id"] = "other"
    df.to_csv(f, index=False)
    with pytest.raises(BadInputError, match="same test shapes"):
        build_tables(res, runs)


# ---------------------------------------------------------------------------- seeds in the sheet
@pytest.mark.parametrize("name", ["config", "shapenet"])
def test_claims_plan_three_seeds_per_arm(name):
    s = Sheet(REPO / "config/experiments.tsv", _config(name))
    claims = s.claims()
    assert {c.id for c, _, _ in claims} >= {"esm_beats_baseline", "3dspl_beats_esm", "concat_after_beats_add",
                                            "concat_after_beats_concat_before", "concat_after_beats_fuse_in_mit",
                                            "esm_paper6_beats_released5", "prior_helps_unseen",
                                            "fused_teachers_beat_resnet18", "uncertainty_beats_mean_fusion"}
    runs = s.seed_runs("claims")
    for _, a, b in claims:
        for arm in (a, b):
            assert [r for r in runs if r.split("__s")[0] == arm] == [arm, f"{arm}__s1", f"{arm}__s2"]
    assert ("3dspl_beats_esm", "mesc3d", "tab3_esm") in {(c.id, a, b) for c, a, b in claims}  # alias resolved
    assert s.table_arg("claims").startswith("claims=esm_beats_baseline:tab3_esm:tab3_baseline:3,")
    files = s.table_inputs("claims")
    assert "results/eval/mesc3d__s2/per_shape.csv" in files
    assert "results/zeroshot/mesc3d__s1/per_shape_without.csv" in files


def test_seed_replicas_resolve_seed_prompts_and_aliases():
    s = Sheet(REPO / "config/experiments.tsv", _config("config"))
    assert s.run_config("tab3_esm__s2").seed == 2 and s.run_config("tab3_esm").seed == 0
    assert s.run_config("mesc3d_seed1__s1").seed == 2  # a row's own seed + k
    assert s.run_config("_base__s1").seed == 1
    assert s.prompt_key("mesc3d__s1") == "default__s1" and s.prompt_key("mesc3d") == "default"
    assert s.prompt_key("tab5_shallow__s2") == "tab5_shallow__s2"
    assert s.target("tab3_esm_3dspl__s1") == "mesc3d__s1"
    m = s.manifest("tab3_esm_3dspl__s1")
    assert m["same_as"] == "mesc3d__s1" and m["seed"] == 1 and m["label"] == "+ESM+3DSPL"
    # tables without seeds: the run lists (and so the table jobs' params) are what they were
    assert s.table_arg("table3") == "table3=tab3_baseline,tab3_esm,tab3_esm_3dspl"


def test_table_seeds_config_key_is_checked(tmp_path):
    cfg = _config("config")
    s = Sheet(REPO / "config/experiments.tsv", {**cfg, "table_seeds": {"table3": 2}})
    s.check(cfg["tables"])
    assert s.table_runs("table3")[:2] == ["tab3_baseline", "tab3_baseline__s1"]
    with pytest.raises(ValueError, match="table_seeds"):
        Sheet(REPO / "config/experiments.tsv", {**cfg, "table_seeds": {"tabel3": 2}}).check(cfg["tables"])
    with pytest.raises(ConfigError, match="table_seeds.table3"):
        Sheet(REPO / "config/experiments.tsv", {**cfg, "table_seeds": {"table3": 0}}).check(cfg["tables"])


def test_replica_separator_is_reserved_in_the_sheet(tmp_path):
    sheet = tmp_path / "e.tsv"
    sheet.write_text("exp\tkind\ttables\tlabel\nrun__s1\tmesc3d\ttable1\tx\n")
    with pytest.raises(ConfigError, match="reserved for seed replicas"):
        Sheet(sheet, _config("config"))


# ---------------------------------------------------------------------------- spread cells
def _table(cells) -> Table:
    return Table("t", "cap", "cap", "exp", "Model", ["a", "b"], ["A", "B"], ["ours", "ours"],
                 [Column("cd", ("", "CD"), "{:.2f}", "min")], cells, bold_by="column")


def test_spread_cells_render_mean_std_n_everywhere():
    t = _table([[Spread.of([1.0, 1.2, 1.4])], [2.0]])
    assert "1.20 ± 0.20 (3)" in render_markdown(t) and "**1.20 ± 0.20 (3)**" in render_markdown(t)
    assert r"1.20 $\pm$ 0.20 (3)" in render_latex(t)
    df = t.frame()
    assert list(df.columns) == ["exp", "label", "section", "cd", "cd:std", "cd:n"]
    assert df["cd"].tolist()[0] == pytest.approx(1.2) and df["cd:n"].tolist()[0] == 3


def test_tables_without_seeds_have_no_spread_columns():
    df = _table([[1.0], [2.0]]).frame()
    assert list(df.columns) == ["exp", "label", "section", "cd"]
