"""The table registry: one ``TableSpec`` per result table, the single source of what a table is.

A spec says which runs a table takes (the experiments-sheet rows that list its id in their ``tables``
column, or the runs a workflow config key names, e.g. ``zeroshot.with_prior``), which result files of
those runs it reads (``RESULT_FILES``), which builder of ``mesc3d.tables`` makes it and its caption.
The workflow's per-table inputs and targets (``workflow/rules/common.smk``), ``mesc3d tables``,
``all.tex`` (document order = the order below) and the table list of docs/extending.md come from it.

Every run a table takes also contributes its manifest, ``results/manifests/{exp}.json`` (label, kind,
loss, seed, uses_prior, class lists), written by the workflow's ``manifest`` rule: tables read result
CSVs and manifests, never run configs or the sheet.  Adding a table built like an existing one is one
entry here (plus the sheet rows that list it and, to build it by default, the config's ``tables``).

This module is a leaf: plain data, importable from the workflow and from every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

# result file kind -> path under the results root ({exp}: the run, or for an alias its same_as run,
# except `eval`, which the alias rule copies to the alias's own folder) and the run kinds that have it
# (mesc3d.registries.RUN_KINDS: "trained" = kinds with a trained model)
RESULT_FILES: dict[str, tuple[str, str]] = {
    "eval": ("eval/{exp}/per_category.csv", "all"),
    "eval_pix3d": ("eval_pix3d/{exp}/per_category.csv", "trained"),
    "zeroshot": ("zeroshot/{exp}/per_category.csv", "trained"),
    "complexity": ("complexity/{exp}.csv", "trained"),
    # per-shape results (the claims' paired bootstrap): the target run's files, for every kind that has them
    "eval_shapes": ("eval/{exp}/per_shape.csv", "target"),
    "zeroshot_shapes": ("zeroshot/{exp}/per_shape_with.csv", "trained"),
    "zeroshot_shapes_without": ("zeroshot/{exp}/per_shape_without.csv", "trained"),
    "train_curve": ("train/{exp}/metrics.csv", "trained"),
}
MANIFEST = "manifests/{exp}.json"  # one per run, under the results root


@dataclass(frozen=True)
class TableSpec:
    id: str  # what the sheet's `tables` column and the config's `tables` list name
    stem: str  # file stem in results/tables/ ({stem}.csv, .tex, .md)
    builder: str  # name of the builder in mesc3d.tables.BUILDERS
    reads: tuple[str, ...] = ("eval",)  # RESULT_FILES kinds read for each run
    caption: str = ""  # caption head (builders add the data-dependent sentences and the conventions)
    runs: str = "sheet"  # "sheet" (rows listing `id`) or a config key naming one run ("zeroshot.with_prior")
    ablation: bool = False  # built by the `ablations` target
    seeds: int = 1  # seeds per run (config `table_seeds` overrides); > 1: cells show mean ± std (n)


TABLES: dict[str, TableSpec] = {s.id: s for s in (
    TableSpec("table1", "table1_shapenet", "table1"),
    TableSpec("table2", "table2_pix3d", "table2", reads=("eval_pix3d",)),
    TableSpec("table3", "table3_ablation", "table3", ablation=True),
    TableSpec("tab4", "table4_encoder", "ablation", ablation=True,
              caption="Image-encoder ablation (paper Tab. 4: ESM only, no prompt)."),
    TableSpec("tab5", "table5_stage1", "ablation", ablation=True,
              caption="Stage-1 (3DSPL) strategy ablation (paper Tab. 5; our variants differ from the "
                      "paper's, whose rows are quoted for reference only)."),
    TableSpec("tab6", "table6_injection", "ablation", ablation=True,
              caption="How the text prior is injected (paper Tab. 6)."),
    TableSpec("tab7", "table7_mit", "ablation", ablation=True,
              caption="MIT heads/depth (paper Tab. 7; two check-mark columns of the paper were lost in "
                      "extraction, shown as variants a/b)."),
    TableSpec("esm_variant", "esm_variant", "ablation", ablation=True,
              caption="ESM wiring: the paper's 6 stages vs. the released code's 5; clamped selection maps. "
                      "The paper has no numbers for this."),
    TableSpec("seeds", "seeds", "ablation", ablation=True,
              caption="Seed variation of the main model (the paper reports a single seed)."),
    TableSpec("tab_teachers", "table_teachers", "teachers", reads=("eval", "zeroshot"), ablation=True,
              caption="Image encoder: agglomerated 2D teachers (EfficientNet-Lite0 with its real ImageNet "
                      "weights, frozen) vs the paper's ResNet-18."),
    TableSpec("tab_teachers_fm", "table_teachers_fm", "teachers", reads=("eval", "zeroshot"), ablation=True,
              caption="Image encoder: agglomerated 2D foundation teachers (DINOv2, CLIP, EfficientNet-Lite0; "
                      "frozen) vs the paper's ResNet-18."),
    TableSpec("zeroshot", "zeroshot", "zeroshot", reads=("zeroshot",), runs="zeroshot.with_prior"),
    TableSpec("complexity", "complexity", "complexity", reads=("eval", "complexity")),
    TableSpec("claims", "claims", "claims", reads=("eval_shapes",), runs="claims", seeds=3,
              caption="Claims of the paper, tested on our runs: effect = arm A minus arm B of the unweighted "
                      "class mean, with a 95% interval combining a paired, class-stratified bootstrap over the "
                      "test shapes and the seed-to-seed spread (docs/design.md, \"Seeds and claims\")."),
)}
TABLE_FILES: dict[str, str] = {tid: s.stem for tid, s in TABLES.items()}
TABLE_IDS: dict[str, str] = {s.stem: tid for tid, s in TABLES.items()}
ABLATION_TABLES: tuple[str, ...] = tuple(tid for tid, s in TABLES.items() if s.ablation)
SHEET_TABLES: tuple[str, ...] = tuple(tid for tid, s in TABLES.items() if s.runs == "sheet")


# ------------------------------------------------------------------ claims (the `claims` table)
@dataclass(frozen=True)
class Claim:
    """One claim of the paper: arm A beats arm B on ``metric`` (better = mesc3d.metric_spec.BETTER).

    ``arm_a``/``arm_b``: experiments-sheet rows (an alias stands for its same_as run).  ``source``:
    ``eval`` compares the two runs' test-split per-shape results; ``zeroshot`` compares the zero-shot
    run (config ``zeroshot.with_prior``) with the prior against the run without it
    (``zeroshot.without_prior``) on the unseen classes (the arms are then those config keys).
    ``per_class``: one more row per class (the zero-shot classes: "overall and per unseen class").
    A claim whose arms are not rows of the sheet is left out of the table.
    """

    id: str
    text: str
    arm_a: str
    arm_b: str
    metric: str = "cd_l2_x1000"
    source: str = "eval"
    per_class: bool = False


CLAIMS: tuple[Claim, ...] = (
    Claim("esm_beats_baseline", "ESM beats the baseline (Tab. 3)", "tab3_esm", "tab3_baseline"),
    Claim("3dspl_beats_esm", "3DSPL beats ESM alone (Tab. 3)", "tab3_esm_3dspl", "tab3_esm"),
    Claim("concat_after_beats_add", "Concat after MIT beats MIT-then-add (Tab. 6)", "tab3_esm_3dspl", "tab6_add"),
    Claim("concat_after_beats_concat_before", "Concat after MIT beats concat before MIT (Tab. 6)",
          "tab3_esm_3dspl", "tab6_concat_before"),
    Claim("concat_after_beats_fuse_in_mit", "Concat after MIT beats fusion inside MIT (Tab. 6)",
          "tab3_esm_3dspl", "tab6_fuse_in_mit"),
    Claim("esm_paper6_beats_released5", "The paper's 6-stage ESM beats the released 5-stage wiring",
          "tab3_esm_3dspl", "esm_released5"),
    Claim("prior_helps_unseen", "The prior helps unseen classes (Fig. 6)", "zeroshot.with_prior",
          "zeroshot.without_prior", source="zeroshot", per_class=True),
    Claim("fused_teachers_beat_resnet18", "Fused teachers beat ResNet-18 alone", "teach_agg_unc", "teach_resnet18"),
    Claim("uncertainty_beats_mean_fusion", "Uncertainty weighting beats the mean of the teachers",
          "teach_agg_unc", "teach_agg_mean"),
)
CLAIM_SOURCES = ("eval", "zeroshot")
SEED_SEP = "__s"  # run name of seed replica k >= 1: {exp}__s{k} (seed = the row's seed + k)


def replica(exp: str, k: int) -> str:
    """Name of seed replica ``k`` of run ``exp`` (``k = 0``: the run itself)."""
    return exp if k == 0 else f"{exp}{SEED_SEP}{k}"


def split_replica(name: str) -> tuple[str, int]:
    """``"tab3_esm__s2"`` -> ``("tab3_esm", 2)``; a sheet row -> ``(name, 0)``."""
    base, sep, k = name.rpartition(SEED_SEP)
    return (base, int(k)) if sep and k.isdigit() and int(k) > 0 else (name, 0)


def check_table_ids(ids, where: str, allowed=None) -> None:
    """Unknown table ids -> ValueError naming them, the place and the known ids."""
    allowed = TABLES if allowed is None else allowed
    unknown = [t for t in ids if t not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown table ids {unknown}; known: {list(allowed)} (mesc3d/table_specs.py)")


def result_path(kind: str, exp: str) -> str:
    """Path of one result file of one run, relative to the results root."""
    return RESULT_FILES[kind][0].format(exp=exp)
