"""The one list of result tables: sheet id -> file stem in results/tables/ (and whether it is an ablation).

Adding a table is one entry here (plus its builder in ``mesc3d.tables``): the workflow
(``workflow/rules/common.smk``: ``all``/``ablations`` targets, per-table rules, config ``tables`` and
sheet ``tables`` validation) and ``mesc3d.tables`` read this mapping.  Ids are what the experiments
sheet's ``tables`` column and the workflow config's ``tables`` list use.
"""

from __future__ import annotations

# id -> (file stem, is an ablation table: built by the `ablations` target)
TABLES: dict[str, tuple[str, bool]] = {
    "table1": ("table1_shapenet", False),
    "table2": ("table2_pix3d", False),
    "table3": ("table3_ablation", True),
    "tab4": ("table4_encoder", True),
    "tab5": ("table5_stage1", True),
    "tab6": ("table6_injection", True),
    "tab7": ("table7_mit", True),
    "esm_variant": ("esm_variant", True),
    "seeds": ("seeds", True),
    "zeroshot": ("zeroshot", False),
    "complexity": ("complexity", False),
    "tab_teachers": ("table_teachers", True),
    "tab_teachers_fm": ("table_teachers_fm", True),
}
TABLE_FILES: dict[str, str] = {tid: stem for tid, (stem, _) in TABLES.items()}
TABLE_IDS: dict[str, str] = {stem: tid for tid, stem in TABLE_FILES.items()}
ABLATION_TABLES: tuple[str, ...] = tuple(tid for tid, (_, abl) in TABLES.items() if abl)


def check_table_ids(ids, where: str) -> None:
    """Unknown table ids -> ValueError naming them, the place and the known ids."""
    unknown = [t for t in ids if t not in TABLES]
    if unknown:
        raise ValueError(f"{where}: unknown table ids {unknown}; known: {list(TABLES)} (mesc3d/table_ids.py)")
