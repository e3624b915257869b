"""Exact invalidation: after a finished smoke run, each edit plans exactly the jobs that depend on it.

One real smoke run (with MESC3D_RECORD_CONFIG_READS, so every stage's config reads are recorded),
then dry runs: each edit of issue #12's table is applied to a copy of the repository, the planned
jobs (rule -> wildcard values) are compared with the exact expected set, the edit is reverted and
nothing may be planned.  README "Reruns after a change" states the same table.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SMOKE, planned, smk  # noqa: F401 - shared with test_claims_smoke

MESC = {"mesc3d", "tab3_baseline", "tab3_esm", "tab5_shallow"}  # kind mesc3d rows of the smoke sheet
BASELINES = {"retrieval", "class_mean"}
TABLES = {"table1_shapenet", "table2_pix3d", "table3_ablation", "table5_stage1", "zeroshot", "complexity"}
INDEX = {"tables": {""}, "compute_cost": {""}, "all": {""}}  # all.tex, cost table, the target rule
WITH_PRIOR = {"mesc3d", "tab5_shallow"}  # tab3_* run without the text prior
RECON = {"reconstruct_unseen": {""}}  # in-the-wild reconstruction with the main model (its model.pt)


@pytest.fixture(scope="module")
def done(smoke_run):
    """The smoke DAG run to completion (tests/conftest.py); nothing left to plan."""
    dst, _ = smoke_run
    assert planned(dst) == {}
    return dst


class Edit:
    """Replace text in a file of the copy for the duration of a `with` block."""

    def __init__(self, dst: Path, rel: str, old: str, new: str):
        self.path, self.old, self.new = dst / rel, old, new

    def __enter__(self):
        self.original = self.path.read_text()
        assert self.original.count(self.old) == 1, (self.path, self.old)
        self.path.write_text(self.original.replace(self.old, self.new))

    def __exit__(self, *exc):
        self.path.write_text(self.original)


def check(dst, rel, old, new, expected):
    with Edit(dst, rel, old, new):
        got = planned(dst)
    assert got == expected, {"unexpected": {r: w - expected.get(r, set()) for r, w in got.items()},
                             "missing": {r: w - got.get(r, set()) for r, w in expected.items()}}
    assert planned(dst) == {}  # reverted: nothing of the finished run is planned


def eval_chain(exps: set[str], tables=TABLES) -> dict[str, set[str]]:
    """Evaluations of `exps` and everything after them (alias, zero-shot, tables)."""
    # one evaluate rule for both evaluation sets ({evalset}/{exp}; it was evaluate + evaluate_pix3d)
    out = {"evaluate": {f"eval/{e}" for e in exps & MESC}, "table": set(tables), **INDEX}
    if exps & BASELINES:
        out["baseline"] = exps & BASELINES
    if "mesc3d" in exps:
        out["alias"] = {"tab3_esm_3dspl"}
        out["zeroshot_eval"] = {"mesc3d"}
        out["evaluate"].add("eval_pix3d/mesc3d")  # Tab. 2 (smoke: the main model on the Pix3D-style photos)
    return {k: v for k, v in out.items() if v}


def configs(stages: str, exps=MESC) -> set[str]:
    """resolve_config jobs ("stage/exp") of the per-run `stages` for `exps` (skipping absent pairs)."""
    have = {"train": MESC, "evaluate": MESC, "baseline": BASELINES, "zeroshot": {"mesc3d", "tab3_esm"},
            "complexity": {"mesc3d"}}
    return {f"{s}/{e}" for s in stages.split() for e in set(exps) & have[s]}


@pytest.mark.slow
def test_eval_key_reruns_evaluations_and_tables_only(done):
    check(done, "config/smoke.yaml", "    n_ply: 1", "    n_ply: 1\n    fscore_threshold: 0.02",
          {"resolve_config": configs("evaluate zeroshot baseline", MESC | BASELINES),
           **eval_chain(MESC | BASELINES)})


@pytest.mark.slow
def test_comment_and_docstring_edits_plan_nothing(done):
    check(done, "mesc3d/models/esm.py", '"""ESM (Effective', '"""A docstring edit. ESM (Effective', {})
    check(done, "mesc3d/models/esm.py", "import torch\n", "import torch  # a comment\n", {})
    check(done, "mesc3d/data/dataset.py", "import torch\n", "# a comment\nimport torch\n", {})


@pytest.mark.slow
def test_preset_value_reruns_the_stages_that_read_it(done):
    # model.mit_drop of the small preset: read by training, evaluation, zero-shot, complexity; not by
    # data preparation, Point-MAE, stage 1 or the baselines
    check(done, "mesc3d/config.py", '"mit_drop": 0.0,', '"mit_drop": 0.05,',
          {"resolve_config": configs("train evaluate zeroshot complexity"), "train": MESC,
           "complexity_run": {"mesc3d"}, **RECON, **eval_chain(MESC)})


@pytest.mark.slow
def test_dataclass_default_reruns_the_stages_that_read_it(done):
    # eval.n_figure (not set by the smoke config): evaluations and zero-shot draw that many rows
    check(done, "mesc3d/config.py", "    n_figure: int = 1", "    n_figure: int = 2",
          {"resolve_config": configs("evaluate zeroshot"), **eval_chain(MESC)})


@pytest.mark.slow
def test_prompt_key_reruns_stage1_and_the_runs_with_the_prior(done):
    # tab5_shallow overrides prompt.n_deep (unchanged there); tab3_* do not use the prior
    check(done, "config/smoke.yaml", "    n_deep: 2", "    n_deep: 3",
          {"resolve_config": {"pretrain_prompt/_base"} | configs("train evaluate zeroshot complexity", {"mesc3d"}),
           "pretrain_prompt": {"default"}, "train": {"mesc3d"}, "complexity_run": {"mesc3d"},
           **RECON, **eval_chain({"mesc3d"})})


@pytest.mark.slow
def test_real_code_changes_rerun_their_dependents(done):
    # the ESM decoder: every stage that builds the model (not the data, Point-MAE, stage 1 or baselines)
    check(done, "mesc3d/models/esm.py", "import torch\n", "import torch\n\n_UNUSED = 1\n",
          {"train": MESC, "complexity_run": {"mesc3d"}, **RECON, **eval_chain(MESC)})
    # how per-category means are computed: every evaluation, baselines included, not the trainings
    check(done, "mesc3d/engine/evaluation.py", "import torch\n", "import torch\n\n_UNUSED = 1\n",
          eval_chain(MESC | BASELINES))
    # the dataset: trainings, every evaluation and the in-the-wild reconstruction; not data preparation
    check(done, "mesc3d/data/dataset.py", "import torch\n", "import torch\n\n_UNUSED = 1\n",
          {"train": MESC, **RECON, **eval_chain(MESC | BASELINES)})


@pytest.mark.slow
def test_sheet_row_overrides_and_label(done):
    exp = "tab5_shallow"
    check(done, "config/smoke_experiments.tsv", "prompt.n_deep=0", "prompt.n_deep=1",
          {"resolve_config": {f"pretrain_prompt/{exp}", f"train/{exp}", f"evaluate/{exp}"},
           "pretrain_prompt": {exp}, "train": {exp}, "evaluate": {f"eval/{exp}"}, "table": {"table5_stage1"},
           **INDEX})
    # a label lives in the run's manifest (results/manifests/{exp}.json, what the tables read): its
    # one manifest is rewritten and only the tables of that run are rebuilt
    check(done, "config/smoke_experiments.tsv", "\t+ESM\t", "\t+ESM (renamed)\t",
          {"manifest": {"tab3_esm"}, "table": {"table3_ablation"}, **INDEX})


def accept(dst):
    """Keep the results after a config edit: write the new stage configs, mark the rest up to date."""
    smk(dst, "--cores", "1", "--until", "resolve_config")
    smk(dst, "--touch", "--cores", "1")
    assert planned(dst) == {}


@pytest.mark.slow
def test_files_a_run_loads_are_inputs(done):
    """A weights file named by the config is an input: replacing it reruns the runs that load it."""
    cfg = done / "config/smoke.yaml"
    original = cfg.read_text()
    weights = done / "weights/encoder.pt"
    weights.parent.mkdir(exist_ok=True)
    shutil.copy2(done / "results/pointmae/encoder.pt", weights)
    data = yaml.safe_load(original)
    data["base"]["model"]["point_mae"]["checkpoint"] = "weights/encoder.pt"
    try:
        cfg.write_text(yaml.safe_dump(data))
        accept(done)  # the results were made with these weights
        weights.write_bytes(weights.read_bytes() + b"\0")  # new contents, newer file
        got = planned(done)
    finally:
        cfg.write_text(original)
        accept(done)
    assert got == {"cache_features": {"train", "val"}, "pretrain_prompt": {"default", "tab5_shallow"},
                   "train": MESC, "complexity_run": {"mesc3d"}, **RECON, **eval_chain(MESC)}, got


@pytest.mark.slow
def test_no_stage_reads_a_key_outside_its_slice(done):
    from mesc3d.config import load_config
    from mesc3d.config_slices import reads_allowed, stage_slice

    records = [json.loads(p.read_text()) for p in sorted((done / "reads").glob("*.json"))]
    seen = set()
    for rec in records:
        argv = rec["argv"]
        if Path(argv[0]).name != "mesc3d":
            continue  # only the stage jobs (the `mesc3d` console script)
        command = argv[1].replace("-", "_")
        if command in ("resolve_config", "tables", "compute_cost", "synth", "contact_sheet", "reconstruct"):
            continue  # no stage slice: resolve-config writes every key; reconstruct reads the model's own
            # stored config; the others take no run config
        seen.add(command)
        cfgs = [argv[i + 1] for i, a in enumerate(argv) if a in ("--config", "--config-without")]
        allowed = set()
        for path in cfgs:
            allowed |= set(stage_slice(load_config(done / path), command))
        outside = [k for k in rec["keys"] if k not in allowed and not any(a.startswith(k + ".") for a in allowed)]
        assert not outside, f"{' '.join(argv[1:3])} reads {outside} outside its slice (mesc3d/config_slices.py)"
        assert all(reads_allowed(command, k) for k in rec["keys"])
    assert seen >= {"prepare", "pretrain_pointmae", "cache_features", "pretrain_prompt", "train", "evaluate",
                    "zeroshot", "baseline", "complexity"}, seen
