"""Build the paper-style result tables from the result CSVs (formats: docs/design.md, "File formats").

Inputs (all optional except the experiments sheet; a run without its CSV is simply left out):
- ``config/experiments.tsv``: ``exp kind tables label [same_as] overrides`` (tab-separated);
- ``{results}/eval/{exp}/per_category.csv``: ``category,n_shapes,cd_l1_x100,cd_l2_x1000,fscore,...``
  (an ``alias`` row falls back to its ``same_as`` run's CSV);
- ``{results}/eval_pix3d/{exp}/per_category.csv``: same columns, on the Pix3D(-style) photos of the
  seen classes (``results/data/pix3d_test.npz``);
- ``{results}/zeroshot/{exp}/per_category.csv``: ``category,prior,n_shapes,cd_l1_x100,cd_l2_x1000,fscore,...``;
- ``{results}/complexity/{exp}.csv``: ``exp,prior,n_points,params_trainable,params_total,flops_per_image,latency_s,device``;
- ``{results}/pretrain/{key}/retrieval.csv``: ``split,top1,chance,n``.

Tables (``mesc3d.table_render.Table``; the Mean rows are recomputed as the unweighted mean over the
categories shown, NaN when a run lacks one of them; paper numbers from ``mesc3d.paper_numbers``):
``table1_shapenet`` (always), ``table2_pix3d`` (when a Pix3D evaluation exists), ``table3_ablation`` (always), ``table4_encoder``, ``table5_stage1``,
``table6_injection``, ``table7_mit``, ``esm_variant``, ``seeds``, ``table_teachers``, ``table_teachers_fm`` (only when at least one of the
sheet's runs for them has results), ``zeroshot`` (always), ``complexity`` (always),
``pretrain_retrieval`` (when a retrieval CSV exists).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mesc3d import paper_numbers as paper
from mesc3d.categories import PIX3D_ALL, SEEN, UNSEEN
from mesc3d.errors import BadInputError
from mesc3d.table_ids import TABLE_FILES
from mesc3d.table_render import Column, Table, latex_escape

log = logging.getLogger(__name__)

CONVENTION = (
    "Metrics: CD-L1 = ½(mean_gt min‖g-p‖ + mean_pred min‖p-g‖) ×100; CD-L2 = (mean_gt min‖g-p‖² + "
    "mean_pred min‖p-g‖²) ×1000; F-score with threshold 0.01 on squared NN distances (= Euclidean 0.1, "
    "10% of the unit-ball radius); Mean = unweighted mean over the categories shown."
)
CONVENTION_TEX = (
    r"Metrics: CD-L1 $=\frac{1}{2}(\mathrm{mean}_{g}\min_{p}\|g-p\| + \mathrm{mean}_{p}\min_{g}\|p-g\|)"
    r"\times 10^{2}$; CD-L2 $=(\mathrm{mean}_{g}\min_{p}\|g-p\|^{2} + \mathrm{mean}_{p}\min_{g}\|p-g\|^{2})"
    r"\times 10^{3}$; F-score with threshold $0.01$ on squared NN distances ($=0.1$ Euclidean, 10\% of "
    r"the unit-ball radius); Mean $=$ unweighted mean over the categories shown."
)
METRIC_LABEL = {"cd_l1_x100": "CD-L1 ×100 ↓", "cd_l2_x1000": "CD-L2 ×1000 ↓", "fscore": "F-score ↑"}
FMT = {"cd_l1_x100": "{:.2f}", "cd_l2_x1000": "{:.2f}", "fscore": "{:.3f}"}
BETTER = {"cd_l1_x100": "min", "cd_l2_x1000": "min", "fscore": "max"}
QUOTED = "quoted from the paper"
SHEET_COLUMNS = ("exp", "kind", "tables", "label")
EVAL_COLUMNS = ("category", "cd_l1_x100", "cd_l2_x1000", "fscore")
ZS_COLUMNS = ("category", "prior", "cd_l1_x100", "cd_l2_x1000", "fscore")
CX_COLUMNS = ("exp", "prior", "n_points", "params_trainable", "params_total", "flops_per_image", "latency_s", "device")
# sheet table id -> (file stem, caption head); ids and stems: mesc3d/table_ids.py
ABLATIONS = {
    "tab4": (TABLE_FILES["tab4"], "Image-encoder ablation (paper Tab. 4: ESM only, no prompt)."),
    "tab5": (TABLE_FILES["tab5"], "Stage-1 (3DSPL) strategy ablation (paper Tab. 5; our variants differ "
                              "from the paper's, whose rows are quoted for reference only)."),
    "tab6": (TABLE_FILES["tab6"], "How the text prior is injected (paper Tab. 6)."),
    "tab7": (TABLE_FILES["tab7"], "MIT heads/depth (paper Tab. 7; two check-mark columns of the paper were lost "
                           "in extraction, shown as variants a/b)."),
    "esm_variant": (TABLE_FILES["esm_variant"], "ESM wiring: the paper's 6 stages vs. the released code's 5; clamped "
                                   "selection maps. The paper has no numbers for this."),
    "seeds": (TABLE_FILES["seeds"], "Seed variation of the main model (the paper reports a single seed)."),
}


def read_csv_checked(path: str | Path, required: tuple[str, ...], numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a result CSV; unreadable, missing columns or non-numeric metrics -> ``BadInputError``."""
    try:
        df = pd.read_csv(path, dtype={"category": str, "prior": str, "exp": str, "split": str, "device": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BadInputError(path, f"not a readable CSV ({type(err).__name__}: {err})") from err
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise BadInputError(path, f"missing columns {missing}; has {list(df.columns)}")
    for col in numeric:
        if col in df.columns:
            try:
                df[col] = pd.to_numeric(df[col], errors="raise").astype(float)
            except (ValueError, TypeError) as err:
                raise BadInputError(path, f"column {col!r} is not numeric ({err})") from err
    return df


def load_sheet(path: str | Path) -> pd.DataFrame:
    """The experiments sheet, indexed by ``exp`` (a missing/invalid sheet -> ``BadInputError``)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "experiments sheet does not exist")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BadInputError(path, f"not a readable tab-separated sheet ({err})") from err
    missing = [c for c in SHEET_COLUMNS if c not in df.columns]
    if missing:
        raise BadInputError(path, f"missing columns {missing}; expected tab-separated {list(SHEET_COLUMNS)}")
    if df["exp"].duplicated().any():
        raise BadInputError(path, f"duplicate exp names {sorted(df.loc[df['exp'].duplicated(), 'exp'])}")
    for col in ("same_as", "overrides"):
        if col not in df.columns:
            df[col] = ""
    df["label"] = [lab or exp for lab, exp in zip(df["label"], df["exp"])]
    return df.set_index("exp", drop=False)


class ResultStore:
    """Finds and reads the result CSVs of the sheet's runs (cached; missing -> None)."""

    def __init__(self, sheet: pd.DataFrame, results: str | Path, zeroshot_run: str | None = None):
        self.sheet, self.results, self._cache = sheet, Path(results), {}
        self.zeroshot_run = zeroshot_run  # the workflow config's zeroshot.with_prior (not a sheet tag)

    def runs(self, table: str) -> list[str]:
        if table == "zeroshot":
            return [self.zeroshot_run] if self.zeroshot_run else []
        return [e for e, r in self.sheet.iterrows() if table in [t.strip() for t in r["tables"].split(",")]]

    def label(self, exp: str) -> str:
        return str(self.sheet.loc[exp, "label"])

    def uses_prior(self, exp: str) -> bool | None:
        """ExperimentCfg.uses_prior of the run's resolved config (results/configs/complexity/{exp}.yaml,
        which the complexity rows come from); None when that file is absent."""
        from mesc3d.config import load_config

        row = self.sheet.loc[exp]
        if row["kind"] == "alias" and row["same_as"] in self.sheet.index:
            exp = row["same_as"]
        path = self.results / "configs" / "complexity" / f"{exp}.yaml"
        return load_config(path).uses_prior if path.is_file() else None

    def _read(self, path: Path, required, numeric) -> pd.DataFrame | None:
        if path not in self._cache:
            self._cache[path] = read_csv_checked(path, required, numeric) if path.is_file() else None
        return self._cache[path]

    def eval(self, exp: str) -> pd.DataFrame | None:
        paths = [self.results / "eval" / exp / "per_category.csv"]
        same = self.sheet.loc[exp, "same_as"] if exp in self.sheet.index else ""
        if same:
            paths.append(self.results / "eval" / same / "per_category.csv")
        for p in paths:
            df = self._read(p, EVAL_COLUMNS, EVAL_COLUMNS[1:] + ("n_shapes",))
            if df is not None:
                return df
        return None

    def eval_pix3d(self, exp: str) -> pd.DataFrame | None:
        return self._read(self.results / "eval_pix3d" / exp / "per_category.csv", EVAL_COLUMNS,
                          EVAL_COLUMNS[1:] + ("n_shapes",))

    def zeroshot(self, exp: str) -> pd.DataFrame | None:
        return self._read(self.results / "zeroshot" / exp / "per_category.csv", ZS_COLUMNS,
                          ZS_COLUMNS[2:] + ("n_shapes",))

    def complexity(self, exp: str) -> pd.DataFrame | None:
        return self._read(self.results / "complexity" / f"{exp}.csv", CX_COLUMNS,
                          ("n_points", "params_trainable", "params_total", "flops_per_image", "latency_s"))

    def present(self, table: str, reader: str = "eval") -> tuple[list[str], list[str]]:
        """(runs of ``table`` with results, runs without) in sheet order."""
        runs = self.runs(table)
        have = [e for e in runs if getattr(self, reader)(e) is not None]
        return have, [e for e in runs if e not in have]


def metric_row(df: pd.DataFrame, metric: str, cats: list[str]) -> list[float]:
    """Per-category values in ``cats`` order, then their unweighted mean (NaN if any is missing)."""
    per = df[df["category"] != "mean"].drop_duplicates("category", keep="last").set_index("category")[metric]
    vals = [float(per[c]) if c in per.index else math.nan for c in cats]
    return vals + [float(np.mean(vals)) if vals and not any(math.isnan(v) for v in vals) else math.nan]


def default_categories(store: ResultStore) -> list[str]:
    """The categories present in any Table 1/3/ablation run: ShapeNet's in SEEN order, then any other
    (a dataset with its own classes, e.g. data.source meshes) in the order the results list them; all
    13 if none."""
    found: dict[str, None] = {}
    for table in ("table1", "table3", *ABLATIONS, *TEACHER_TABLES):
        for exp in store.present(table)[0]:
            found.update(dict.fromkeys(c for c in store.eval(exp)["category"] if c != "mean"))
    cats = [c for c in SEEN if c in found] + [c for c in found if c not in SEEN]
    return cats or list(SEEN)


def _missing_note(missing: list[str]) -> str:
    return f" Runs in the sheet without results yet: {', '.join(missing)}." if missing else ""


def _paper_mean(values: list[float], cats: list[str], quoted: float) -> float:
    if list(cats) == list(SEEN):
        return quoted
    return float(np.mean(values)) if values and not any(math.isnan(v) for v in values) else math.nan


def build_table1(store: ResultStore, cats: list[str]) -> Table:
    runs, missing = store.present("table1")
    columns, data = [], []  # data: one list of (len(cats)+1) values per column
    short = {"cd_l1_x100": "CD-L1×100", "fscore": "F"}
    for metric, pi in (("cd_l1_x100", 0), ("fscore", 1)):
        for exp in runs:
            columns.append(Column(f"{metric}:{exp}", (METRIC_LABEL[metric], "Our runs", store.label(exp)),
                                  FMT[metric], BETTER[metric], f"{metric}:ours", f"{short[metric]} {store.label(exp)}"))
            data.append(metric_row(store.eval(exp), metric, cats))
        for k, (key, lab) in enumerate(paper.TABLE1_METHODS.items()):
            columns.append(Column(f"{metric}:paper_{key}", (METRIC_LABEL[metric], "Quoted from the paper (Tab. 1)", lab),
                                  FMT[metric], BETTER[metric], f"{metric}:paper", f"{short[metric]} {lab} †"))
            vals = [paper.TABLE1[c][pi][k] if c in paper.TABLE1 else math.nan for c in cats]
            data.append(vals + [_paper_mean(vals, cats, paper.TABLE1_AVG[pi][k])])
    cells = [[col[i] for col in data] for i in range(len(cats) + 1)]
    head = ("Single-view reconstruction on ShapeNet, per category. 'Our runs' are measured by this repository "
            "on the configured data; the paper's columns are " + QUOTED + " (real ShapeNet, the authors' "
            "models and evaluation) and are comparable only in convention. Bold: best per row among our runs "
            "and, separately, among the quoted columns." + _missing_note(missing))
    return Table("table1_shapenet", f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}",
                 "category", "Category", cats + ["mean"], cats + ["Mean"], ["category"] * len(cats) + ["mean"],
                 columns, cells, bold_by="row", notes=["† quoted from the paper (Tab. 1)."])


def build_table2(store: ResultStore) -> Table | None:
    """Paper Tab. 2 layout: Pix3D classes shared with ShapeNet-13 as rows, CD and F per run."""
    runs, missing = store.present("table2", "eval_pix3d")
    if not runs:
        return None
    found = set().union(*(set(store.eval_pix3d(e)["category"]) for e in runs))
    cats = [c for c in PIX3D_ALL if c in SEEN and c in found]
    columns, data = [], []
    for metric in ("cd_l1_x100", "cd_l2_x1000", "fscore"):
        for exp in runs:
            columns.append(Column(f"{metric}:{exp}", (METRIC_LABEL[metric], "Our runs", store.label(exp)),
                                  FMT[metric], BETTER[metric], f"{metric}:ours"))
            data.append(metric_row(store.eval_pix3d(exp), metric, cats))
        if metric == "cd_l1_x100":
            columns.append(Column(f"{metric}:paper_mesc3d", (METRIC_LABEL[metric], "Quoted from the paper",
                                                             "MESC-3D (paper) †"), FMT[metric], BETTER[metric],
                                  f"{metric}:paper"))
            data.append([math.nan] * len(cats) + [paper.TABLE2_MEAN_CD_L1])
    cells = [[col[i] for col in data] for i in range(len(cats) + 1)]
    head = ("Single-view reconstruction on Pix3D (paper Tab. 2 layout), per category, on the Pix3D photos "
            "of the classes shared with ShapeNet-13 (bbox-square crop; GT sampled from the mesh, rotated "
            "into the ShapeNet v1 frame, unit ball).  With config/pix3d.yaml the runs are trained and tested "
            "on real Pix3D (BDM split); on the embedded default they are the ShapeNet-style-trained runs "
            "tested on procedural Pix3D-style photos.  The paper's Tab. 2 itself is not available to us: "
            "only its average, quoted from the text, is shown (†)." + _missing_note(missing))
    notes = [f"† quoted from the paper's text, not its table: \"{paper.TABLE2_QUOTE}\" Read as CD-L1 ×100 "
             "(the Tab. 1 convention); per-class values and F are not given."]
    return Table("table2_pix3d", f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}",
                 "category", "Category", cats + ["mean"], cats + ["Mean"], ["category"] * len(cats) + ["mean"],
                 columns, cells, bold_by="row", notes=notes)


LOSS_NAMES = {"l1": "CD-L1", "l2": "CD-L2", "l1+l2": "CD-L1 + CD-L2"}


def run_loss(store: ResultStore, exp: str, base_loss: str) -> str:
    """``train.loss`` of a run: its sheet override (an alias: its target's), else the base config's."""
    row = store.sheet.loc[exp]
    if row["kind"] == "alias" and row["same_as"] in store.sheet.index:
        row = store.sheet.loc[row["same_as"]]
    for item in row["overrides"].split(";"):
        key, _, value = item.partition("=")
        if key.strip() == "train.loss":
            return value.strip()
    return base_loss


def loss_note(store: ResultStore, runs: list[str], base_loss: str) -> str:
    """Caption sentence: the training loss of every row (paper: one CD loss; official train_base.py: L1+L2)."""
    by_loss: dict[str, list[str]] = {}
    for exp in runs:
        by_loss.setdefault(run_loss(store, exp, base_loss), []).append(store.label(exp))
    if not by_loss:
        return ""
    if len(by_loss) == 1:
        (loss,) = by_loss
        return f" Training loss (train.loss): {LOSS_NAMES.get(loss, loss)} for every row of ours."
    parts = [f"{LOSS_NAMES.get(k, k)} for {', '.join(v)}" for k, v in by_loss.items()]
    return " Training loss (train.loss): " + "; ".join(parts) + "."


def build_table3(store: ResultStore, cats: list[str], base_loss: str = "l1") -> Table:
    runs, missing = store.present("table3")
    columns = [Column("cd_l2_x1000:mean", (METRIC_LABEL["cd_l2_x1000"], "Avg"), "{:.2f}", "min")]
    columns += [Column(f"cd_l2_x1000:{c}", (METRIC_LABEL["cd_l2_x1000"], c), "{:.2f}", "min") for c in cats]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        vals = metric_row(store.eval(exp), "cd_l2_x1000", cats)
        rows.append(exp), labels.append(store.label(exp)), sections.append("ours")
        cells.append([vals[-1]] + vals[:-1])
    for lab, (avg, per) in paper.TABLE3.items():
        vals = [per[list(SEEN).index(c)] if c in SEEN else math.nan for c in cats]
        rows.append("paper:" + lab), labels.append(f"{lab} ({QUOTED})"), sections.append("paper")
        cells.append([_paper_mean(vals, cats, avg)] + vals)
    head = ("Ablation of the components (paper Tab. 3), CD-L2 ×1000 per category. Bold: best per column "
            "among our runs and, separately, among the rows " + QUOTED + "." + loss_note(store, runs, base_loss)
            + " The paper trains every model with its one CD loss; the official train_base.py trains the "
              "baseline and +ESM on CD-L1 + CD-L2 (set train.loss=l1+l2 in their sheet rows for that)."
            + _missing_note(missing))
    return Table("table3_ablation", f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}", "exp",
                 "Model", rows, labels, sections, columns, cells, bold_by="column")


def build_ablation(store: ResultStore, table_id: str, cats: list[str]) -> Table | None:
    """Tabs. 4-7, ESM variant, seeds: mean over categories and vessel; paper rows are vessel only."""
    name, head = ABLATIONS[table_id]
    runs, missing = store.present(table_id)
    quoted = paper.ABLATIONS.get(table_id, [])
    if not runs:
        return None
    metrics = ("cd_l2_x1000", "fscore")
    columns = [Column(f"{m}:{scope}", (title, METRIC_LABEL[m]), FMT[m], BETTER[m])
               for scope, title in (("mean", "Mean over categories"), ("vessel", "Vessel")) for m in metrics]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        df = store.eval(exp)
        means = [metric_row(df, m, cats)[-1] for m in metrics]
        vessel = [metric_row(df, m, ["vessel"])[0] for m in metrics]
        rows.append(exp), labels.append(store.label(exp)), sections.append("ours"), cells.append(means + vessel)
    if table_id == "seeds" and len(runs) >= 2:
        arr = np.array(cells, dtype=float)
        for stat, fn in (("mean", np.mean), ("std", lambda a, axis: np.std(a, axis=axis, ddof=1))):
            rows.append(f"seeds:{stat}"), labels.append(f"{stat} over {len(runs)} seeds"), sections.append("stats")
            cells.append([float(v) for v in fn(arr, axis=0)])
    for lab, cd, f in quoted:
        rows.append("paper:" + lab), labels.append(f"{lab} ({QUOTED})"), sections.append("paper")
        cells.append([math.nan, math.nan, cd, f])
    text = (f"{head} Our rows: mean over our categories and the vessel class; rows {QUOTED} are vessel only "
            f"(CD-L2 ×1000, F). Bold: best per column within our rows and within the quoted rows."
            + _missing_note(missing))
    return Table(name, f"{text} {CONVENTION}", f"{latex_escape(text)} {CONVENTION_TEX}", "exp", "Variant",
                 rows, labels, sections, columns, cells, bold_by="column", no_bold_sections=("stats",))


TEACHER_TABLES = {
    "tab_teachers": ("table_teachers", "Image encoder: agglomerated 2D teachers (EfficientNet-Lite0 with its "
                                       "real ImageNet weights, frozen) vs the paper's ResNet-18."),
    "tab_teachers_fm": ("table_teachers_fm", "Image encoder: agglomerated 2D foundation teachers "
                                             "(DINOv2, CLIP, EfficientNet-Lite0; frozen) vs the paper's ResNet-18."),
}


def build_teachers(store: ResultStore, table_id: str, cats: list[str]) -> Table | None:
    """Seen-class means (test split) and zero-shot unseen-class means (with the prior), per run."""
    name, head = TEACHER_TABLES[table_id]
    runs, missing = store.present(table_id)
    if not runs:
        return None
    metrics = ("cd_l1_x100", "cd_l2_x1000", "fscore")
    columns = [Column(f"{m}:{scope}", (title, METRIC_LABEL[m]), FMT[m], BETTER[m])
               for scope, title in (("seen", "Seen classes (mean)"), ("unseen", "Zero-shot unseen classes (mean)"))
               for m in metrics]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        seen = [metric_row(store.eval(exp), m, cats)[-1] for m in metrics]
        row = store.sheet.loc[exp]
        zs = store.zeroshot(row["same_as"] if row["kind"] == "alias" and row["same_as"] else exp)
        unseen = [math.nan] * len(metrics)
        if zs is not None:
            zs = zs[zs["prior"] == "with"]
            present = set(zs.loc[zs["category"] != "mean", "category"])
            ucats = [c for c in UNSEEN if c in present] + sorted(present - set(UNSEEN))
            unseen = [metric_row(zs, m, ucats)[-1] for m in metrics]
        rows.append(exp), labels.append(store.label(exp)), sections.append("ours"), cells.append(seen + unseen)
    text = (f"{head} Every run is the full model (ESM + 3DSPL prior); only the image encoder differs. Seen: "
            "unweighted mean over the test split's categories; unseen: the zero-shot classes, given the prior "
            "of their names. The paper has no such table. Bold: best per column." + _missing_note(missing))
    return Table(name, f"{text} {CONVENTION}", f"{latex_escape(text)} {CONVENTION_TEX}", "exp", "Image encoder",
                 rows, labels, sections, columns, cells, bold_by="column")


def build_zeroshot(store: ResultStore) -> Table:
    runs, missing = store.present("zeroshot", "zeroshot")
    columns = [Column("n_shapes", ("", "n"), "{:.0f}")]
    metrics = ("cd_l1_x100", "cd_l2_x1000", "fscore")
    columns += [Column(f"{m}:{p}", (METRIC_LABEL[m], f"{p} prior"), FMT[m], BETTER[m], m)
                for m in metrics for p in ("with", "without")]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        df = store.zeroshot(exp)
        present = set(df.loc[df["category"] != "mean", "category"])
        cats = [c for c in UNSEEN if c in present] + sorted(present - set(UNSEEN))
        by_prior = {p: df[df["prior"] == p] for p in ("with", "without")}
        n = metric_row(by_prior["with"], "n_shapes", cats) if "n_shapes" in df.columns else [math.nan] * (len(cats) + 1)
        n[-1] = float(np.nansum(n[:-1])) if cats else math.nan
        cols = [n] + [metric_row(by_prior[p], m, cats) for m in metrics for p in ("with", "without")]
        prefix = f"{exp}:" if len(runs) > 1 else ""
        lab_prefix = f"{store.label(exp)}: " if len(runs) > 1 else ""
        for i, c in enumerate(cats + ["mean"]):
            rows.append(prefix + c), labels.append(lab_prefix + (c if c != "mean" else "Mean"))
            sections.append(f"{exp}:{'mean' if c == 'mean' else 'category'}")
            cells.append([col[i] for col in cols])
    head = ("Zero-shot reconstruction of classes never seen in training (Pix3D-style photos), the same "
            "model with and without the 3DSPL text prior (the paper shows this only qualitatively, Fig. 6; "
            "no numbers are quoted). Bold: better of with/without per row and metric." + _missing_note(missing))
    return Table("zeroshot", f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}", "category",
                 "Category", rows, labels, sections, columns, cells, bold_by="row",
                 notes=[] if runs else ["No zero-shot results yet."])


def build_complexity(store: ResultStore) -> Table:
    runs, missing = store.present("complexity", "complexity")
    columns = [Column("params_trainable_m", ("", "Trainable params (M)"), "{:.2f}"),
               Column("params_total_m", ("", "Total params (M)"), "{:.2f}"),
               Column("gflops_per_image", ("", "GFLOPs / image"), "{:.2f}"),
               Column("latency_s", ("", "Latency (s / image)"), "{:.3f}"),
               Column("cd_l2_x1000_mean", ("", "Avg CD-L2 ×1000"), "{:.2f}"),
               Column("device", ("", "Device"), "{}")]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        df = store.complexity(exp)
        ev = store.eval(exp)
        n_min = df["n_points"].min()
        for _, r in df.iterrows():
            prior = str(r["prior"])
            cd = math.nan
            if ev is not None and (prior == "with") == store.uses_prior(exp) and r["n_points"] == n_min:
                cats = [c for c in SEEN if c in set(ev["category"])]
                cd = metric_row(ev, "cd_l2_x1000", cats)[-1]
            rows.append(f"{exp}:{prior}:{int(r['n_points'])}")
            labels.append(f"{store.label(exp)}, {prior} prior, {int(r['n_points'])} points")
            sections.append("ours")
            cells.append([r["params_trainable"] / 1e6, r["params_total"] / 1e6, r["flops_per_image"] / 1e9,
                          r["latency_s"], cd, str(r["device"])])
    for lab, params, secs, cd in paper.COMPLEXITY:
        rows.append("paper:" + lab), labels.append(f"{lab} ({QUOTED}, Tab. 8/9)"), sections.append("paper")
        cells.append([math.nan if params is None else params, math.nan, math.nan, secs,
                      math.nan if cd is None else cd, "paper (GPU)"])
    head = ("Model complexity (paper Tabs. 8/9): parameters, FLOPs per image and latency per image (batch 1, "
            "median after warm-up). The paper's params exclude the frozen Point-MAE and its latencies were "
            "measured on its GPU; ours on the device shown. Avg CD-L2 is the run's test-split mean, shown on "
            "the row matching the run's own prior setting." + _missing_note(missing))
    return Table("complexity", f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}", "row",
                 "Model", rows, labels, sections, columns, cells)


def build_pretrain_retrieval(results: str | Path) -> Table | None:
    files = sorted(Path(results).glob("pretrain/*/retrieval.csv"))
    if not files:
        return None
    columns = [Column("top1", ("", "Top-1"), "{:.3f}", "max"), Column("chance", ("", "Chance"), "{:.3f}"),
               Column("n", ("", "n"), "{:.0f}")]
    rows, labels, sections, cells = [], [], [], []
    for f in files:
        df = read_csv_checked(f, ("split", "top1", "chance", "n"), ("top1", "chance", "n"))
        for _, r in df.iterrows():
            rows.append(f"{f.parent.name}:{r['split']}"), labels.append(f"{f.parent.name} ({r['split']})")
            sections.append(str(r["split"])), cells.append([r["top1"], r["chance"], r["n"]])
    head = ("Stage-1 (3DSPL) sanity check: top-1 retrieval accuracy between point-cloud embeddings and the "
            "class text priors, per prompt set and split, against chance.")
    return Table("pretrain_retrieval", head, latex_escape(head), "row", "Prompt set (split)", rows, labels,
                 sections, columns, cells, bold_by="column")


def build_all(sheet_path: str | Path, results: str | Path, categories: list[str] | None = None,
              base_loss: str = "l1", zeroshot_run: str | None = None) -> list[Table]:
    """Every table that can be built, in document order (the 4 main tables always).  ``zeroshot_run``:
    the run with the prior whose zero-shot comparison the ``zeroshot`` table shows (None: no rows)."""
    store = ResultStore(load_sheet(sheet_path), results, zeroshot_run)
    cats = list(categories) if categories else default_categories(store)
    log.info("categories: %s", cats)
    tables = [build_table1(store, cats)]
    tables += [t for t in (build_table2(store),) if t is not None]
    tables.append(build_table3(store, cats, base_loss))
    tables += [t for t in (build_ablation(store, tid, cats) for tid in ABLATIONS) if t is not None]
    tables += [t for t in (build_teachers(store, tid, cats) for tid in TEACHER_TABLES) if t is not None]
    tables += [build_zeroshot(store), build_complexity(store)]
    extra = build_pretrain_retrieval(results)
    return tables + ([extra] if extra is not None else [])
