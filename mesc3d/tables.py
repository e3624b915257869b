"""Build the paper-style result tables from the result CSVs (formats: docs/design.md, "File formats").

Which tables exist, which runs each takes and which files of them it reads: ``mesc3d.table_specs``.
Inputs, under ``{results}`` (a run without its CSV is simply left out; its manifest is required):
- ``{results}/manifests/{exp}.json``: label, kind, same_as, loss, seed, uses_prior, categories,
  unseen_categories of the run (written by the workflow's ``manifest`` rule from the sheet and config);
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
from mesc3d.categories import PIX3D_ALL, SEEN
from mesc3d.errors import BadInputError
from mesc3d.metric_spec import BETTER, CONVENTION, CONVENTION_TEX, FMT, METRIC_LABEL
from mesc3d.registries import LOSSES, RUN_KINDS
from mesc3d.table_specs import CLAIMS, MANIFEST, TABLES, TableSpec, replica, split_replica
from mesc3d.table_render import Column, Spread, Table, latex_escape

log = logging.getLogger(__name__)

QUOTED = "quoted from the paper"
EVAL_COLUMNS = ("category", "cd_l1_x100", "cd_l2_x1000", "fscore")
ZS_COLUMNS = ("category", "prior", "cd_l1_x100", "cd_l2_x1000", "fscore")
SHAPE_COLUMNS = ("shape_id", "category", "cd_l1_x100", "cd_l2_x1000", "fscore")
CX_COLUMNS = ("exp", "prior", "n_points", "params_trainable", "params_total", "flops_per_image", "latency_s", "device")
MANIFEST_KEYS = ("exp", "label", "kind", "same_as", "loss", "seed", "uses_prior", "categories", "unseen_categories")


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


def read_manifest(path: str | Path) -> dict:
    """A run manifest (results/manifests/{exp}.json); missing, unreadable or incomplete -> BadInputError."""
    import json

    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "run manifest does not exist (the workflow's `manifest` rule writes it)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadInputError(path, f"not a JSON run manifest ({type(err).__name__}: {str(err)[:200]})") from None
    missing = [k for k in MANIFEST_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise BadInputError(path, f"run manifest lacks keys {missing}")
    if data["kind"] not in RUN_KINDS:
        raise BadInputError(path, f"unknown run kind {str(data['kind'])[:100]!r}; known: {list(RUN_KINDS)}")
    return data


class ResultStore:
    """Finds and reads the result CSVs and manifests of the tables' runs (cached; missing CSV -> None)."""

    def __init__(self, results: str | Path, table_runs: dict[str, list[str]]):
        self.results, self.table_runs, self._cache = Path(results), dict(table_runs), {}
        self._manifests: dict[str, dict] = {}

    def runs(self, table: str) -> list[str]:
        """The table's runs (seed 0; the seed replicas ``{exp}__s{k}`` of its list are in ``seeds``)."""
        return [e for e in self.table_runs.get(table, []) if split_replica(e)[1] == 0]

    def seeds(self, table: str, exp: str) -> list[str]:
        """``exp`` and its seed replicas in the table's run list (just ``[exp]`` without seeds)."""
        return [e for e in self.table_runs.get(table, []) if split_replica(e)[0] == exp]

    def metric(self, table: str, reader: str, exp: str, metric: str, cats: list[str], prior: str | None = None):
        """``metric_row`` of one run of a table: floats, or ``Spread`` cells over its seeds when the table
        has several (per seed: the per-category values and their unweighted mean; seeds without
        results are left out, n says how many count)."""
        def row(name: str):
            df = getattr(self, reader)(name)
            if df is None:
                return None
            return metric_row(df if prior is None else df[df["prior"] == prior], metric, cats)

        names = self.seeds(table, exp)
        if len(names) <= 1:
            return row(exp)
        rows = [r for r in (row(n) for n in names) if r is not None]
        return [Spread.of(col) for col in zip(*rows)]

    def per_shape(self, path: Path, metric: str) -> pd.DataFrame | None:
        return self._read(path, SHAPE_COLUMNS[:2] + (metric,), (metric,))

    def manifest(self, exp: str) -> dict:
        if exp not in self._manifests:
            self._manifests[exp] = read_manifest(self.results / MANIFEST.format(exp=exp))
        return self._manifests[exp]

    def label(self, exp: str) -> str:
        return str(self.manifest(exp)["label"])

    def target(self, exp: str) -> str:
        """The run whose results an alias reuses (itself for other kinds)."""
        m = self.manifest(exp)
        return m["same_as"] if RUN_KINDS[m["kind"]].needs_same_as and m["same_as"] else exp

    def uses_prior(self, exp: str) -> bool:
        """ExperimentCfg.uses_prior of the run (an alias: of its same_as run), from its manifest."""
        return bool(self.manifest(exp)["uses_prior"])

    def categories(self, runs: list[str], key: str = "categories") -> list[str]:
        """The runs' class lists (config order), merged in run order."""
        out: list[str] = []
        for exp in runs:
            out += [c for c in self.manifest(exp)[key] if c not in out]
        return out

    def _read(self, path: Path, required, numeric) -> pd.DataFrame | None:
        if path not in self._cache:
            self._cache[path] = read_csv_checked(path, required, numeric) if path.is_file() else None
        return self._cache[path]

    def eval(self, exp: str) -> pd.DataFrame | None:
        paths = [self.results / "eval" / exp / "per_category.csv"]
        if self.target(exp) != exp:
            paths.append(self.results / "eval" / self.target(exp) / "per_category.csv")
        for p in paths:
            df = self._read(p, EVAL_COLUMNS, EVAL_COLUMNS[1:] + ("n_shapes",))
            if df is not None:
                return df
        return None

    def eval_pix3d(self, exp: str) -> pd.DataFrame | None:
        return self._read(self.results / "eval_pix3d" / self.target(exp) / "per_category.csv", EVAL_COLUMNS,
                          EVAL_COLUMNS[1:] + ("n_shapes",))

    def zeroshot(self, exp: str) -> pd.DataFrame | None:
        return self._read(self.results / "zeroshot" / self.target(exp) / "per_category.csv", ZS_COLUMNS,
                          ZS_COLUMNS[2:] + ("n_shapes",))

    def complexity(self, exp: str) -> pd.DataFrame | None:
        return self._read(self.results / "complexity" / f"{self.target(exp)}.csv", CX_COLUMNS,
                          ("n_points", "params_trainable", "params_total", "flops_per_image", "latency_s"))

    def present(self, table: str, reader: str = "eval") -> tuple[list[str], list[str]]:
        """(runs of ``table`` with results, runs without) in the table's run order."""
        runs = self.runs(table)
        have = [e for e in runs if getattr(self, reader)(e) is not None]
        return have, [e for e in runs if e not in have]


def metric_row(df: pd.DataFrame, metric: str, cats: list[str]) -> list[float]:
    """Per-category values in ``cats`` order, then their unweighted mean (NaN if any is missing)."""
    per = df[df["category"] != "mean"].drop_duplicates("category", keep="last").set_index("category")[metric]
    vals = [float(per[c]) if c in per.index else math.nan for c in cats]
    return vals + [float(np.mean(vals)) if vals and not any(math.isnan(v) for v in vals) else math.nan]


def default_categories(store: ResultStore, table: str) -> list[str]:
    """The table's runs' classes (config order), filtered to those present in their results; the paper's
    13 classes only for a table without runs."""
    runs = store.present(table)[0]
    found: set[str] = set()
    for exp in runs:
        found |= set(store.eval(exp)["category"])
    cats = [c for c in store.categories(runs) if c in found]
    return cats or store.categories(store.runs(table)) or list(SEEN)


def _missing_note(missing: list[str]) -> str:
    return f" Runs in the sheet without results yet: {', '.join(missing)}." if missing else ""


def _paper_mean(values: list[float], cats: list[str], quoted: float) -> float:
    if list(cats) == list(SEEN):
        return quoted
    return float(np.mean(values)) if values and not any(math.isnan(v) for v in values) else math.nan


def build_table1(store: ResultStore, spec: TableSpec, cats: list[str]) -> Table:
    runs, missing = store.present(spec.id)
    columns, data = [], []  # data: one list of (len(cats)+1) values per column
    short = {"cd_l1_x100": "CD-L1×100", "fscore": "F"}
    for metric, pi in (("cd_l1_x100", 0), ("fscore", 1)):
        for exp in runs:
            columns.append(Column(f"{metric}:{exp}", (METRIC_LABEL[metric], "Our runs", store.label(exp)),
                                  FMT[metric], BETTER[metric], f"{metric}:ours", f"{short[metric]} {store.label(exp)}"))
            data.append(store.metric(spec.id, "eval", exp, metric, cats))
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
    return Table(spec.stem, f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}",
                 "category", "Category", cats + ["mean"], cats + ["Mean"], ["category"] * len(cats) + ["mean"],
                 columns, cells, bold_by="row", notes=["† quoted from the paper (Tab. 1)."])


def build_table2(store: ResultStore, spec: TableSpec, cats: list[str]) -> Table | None:
    """Paper Tab. 2 layout: the Pix3D classes among the runs' seen classes as rows, CD and F per run."""
    runs, missing = store.present(spec.id, "eval_pix3d")
    if not runs:
        return None
    found = set().union(*(set(store.eval_pix3d(e)["category"]) for e in runs))
    seen = store.categories(runs)
    cats = [c for c in PIX3D_ALL if c in seen and c in found]
    columns, data = [], []
    for metric in ("cd_l1_x100", "cd_l2_x1000", "fscore"):
        for exp in runs:
            columns.append(Column(f"{metric}:{exp}", (METRIC_LABEL[metric], "Our runs", store.label(exp)),
                                  FMT[metric], BETTER[metric], f"{metric}:ours"))
            data.append(store.metric(spec.id, "eval_pix3d", exp, metric, cats))
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
    return Table(spec.stem, f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}",
                 "category", "Category", cats + ["mean"], cats + ["Mean"], ["category"] * len(cats) + ["mean"],
                 columns, cells, bold_by="row", notes=notes)


def loss_note(store: ResultStore, runs: list[str]) -> str:
    """Caption sentence: the training loss of every row (paper: one CD loss; official train_base.py: L1+L2)."""
    by_loss: dict[str, list[str]] = {}
    for exp in runs:
        by_loss.setdefault(str(store.manifest(exp)["loss"]), []).append(store.label(exp))
    if not by_loss:
        return ""
    if len(by_loss) == 1:
        (loss,) = by_loss
        return f" Training loss (train.loss): {LOSSES.get(loss, loss)} for every row of ours."
    parts = [f"{LOSSES.get(k, k)} for {', '.join(v)}" for k, v in by_loss.items()]
    return " Training loss (train.loss): " + "; ".join(parts) + "."


def build_table3(store: ResultStore, spec: TableSpec, cats: list[str]) -> Table:
    runs, missing = store.present(spec.id)
    columns = [Column("cd_l2_x1000:mean", (METRIC_LABEL["cd_l2_x1000"], "Avg"), "{:.2f}", "min")]
    columns += [Column(f"cd_l2_x1000:{c}", (METRIC_LABEL["cd_l2_x1000"], c), "{:.2f}", "min") for c in cats]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        vals = store.metric(spec.id, "eval", exp, "cd_l2_x1000", cats)
        rows.append(exp), labels.append(store.label(exp)), sections.append("ours")
        cells.append([vals[-1]] + vals[:-1])
    for lab, (avg, per) in paper.TABLE3.items():
        vals = [per[list(SEEN).index(c)] if c in SEEN else math.nan for c in cats]
        rows.append("paper:" + lab), labels.append(f"{lab} ({QUOTED})"), sections.append("paper")
        cells.append([_paper_mean(vals, cats, avg)] + vals)
    head = ("Ablation of the components (paper Tab. 3), CD-L2 ×1000 per category. Bold: best per column "
            "among our runs and, separately, among the rows " + QUOTED + "." + loss_note(store, runs)
            + " The paper trains every model with its one CD loss; the official train_base.py trains the "
              "baseline and +ESM on CD-L1 + CD-L2 (set train.loss=l1+l2 in their sheet rows for that)."
            + _missing_note(missing))
    return Table(spec.stem, f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}", "exp",
                 "Model", rows, labels, sections, columns, cells, bold_by="column")


def build_ablation(store: ResultStore, spec: TableSpec, cats: list[str]) -> Table | None:
    """Tabs. 4-7, ESM variant, seeds: mean over categories and vessel; paper rows are vessel only."""
    table_id, name, head = spec.id, spec.stem, spec.caption
    runs, missing = store.present(table_id)
    quoted = paper.ABLATIONS.get(table_id, [])
    if not runs:
        return None
    metrics = ("cd_l2_x1000", "fscore")
    columns = [Column(f"{m}:{scope}", (title, METRIC_LABEL[m]), FMT[m], BETTER[m])
               for scope, title in (("mean", "Mean over categories"), ("vessel", "Vessel")) for m in metrics]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        means = [store.metric(table_id, "eval", exp, m, cats)[-1] for m in metrics]
        vessel = [store.metric(table_id, "eval", exp, m, ["vessel"])[0] for m in metrics]
        rows.append(exp), labels.append(store.label(exp)), sections.append("ours"), cells.append(means + vessel)
    if table_id == "seeds" and len(runs) >= 2:
        arr = np.array([[c.mean if isinstance(c, Spread) else c for c in line] for line in cells], dtype=float)
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


def build_teachers(store: ResultStore, spec: TableSpec, cats: list[str]) -> Table | None:
    """Seen-class means (test split) and zero-shot unseen-class means (with the prior), per run."""
    table_id, name, head = spec.id, spec.stem, spec.caption
    runs, missing = store.present(table_id)
    if not runs:
        return None
    metrics = ("cd_l1_x100", "cd_l2_x1000", "fscore")
    columns = [Column(f"{m}:{scope}", (title, METRIC_LABEL[m]), FMT[m], BETTER[m])
               for scope, title in (("seen", "Seen classes (mean)"), ("unseen", "Zero-shot unseen classes (mean)"))
               for m in metrics]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        seen = [store.metric(table_id, "eval", exp, m, cats)[-1] for m in metrics]
        zs = store.zeroshot(exp)
        unseen = [math.nan] * len(metrics)
        if zs is not None:
            zs = zs[zs["prior"] == "with"]
            present = set(zs.loc[zs["category"] != "mean", "category"])
            order = store.categories([exp], "unseen_categories")
            ucats = [c for c in order if c in present] + sorted(present - set(order))
            unseen = [store.metric(table_id, "zeroshot", exp, m, ucats, prior="with")[-1] for m in metrics]
        rows.append(exp), labels.append(store.label(exp)), sections.append("ours"), cells.append(seen + unseen)
    text = (f"{head} Every run is the full model (ESM + 3DSPL prior); only the image encoder differs. Seen: "
            "unweighted mean over the test split's categories; unseen: the zero-shot classes, given the prior "
            "of their names. The paper has no such table. Bold: best per column." + _missing_note(missing))
    return Table(name, f"{text} {CONVENTION}", f"{latex_escape(text)} {CONVENTION_TEX}", "exp", "Image encoder",
                 rows, labels, sections, columns, cells, bold_by="column")


def build_zeroshot(store: ResultStore, spec: TableSpec, cats: list[str]) -> Table:
    runs, missing = store.present(spec.id, "zeroshot")
    columns = [Column("n_shapes", ("", "n"), "{:.0f}")]
    metrics = ("cd_l1_x100", "cd_l2_x1000", "fscore")
    columns += [Column(f"{m}:{p}", (METRIC_LABEL[m], f"{p} prior"), FMT[m], BETTER[m], m)
                for m in metrics for p in ("with", "without")]
    rows, labels, sections, cells = [], [], [], []
    for exp in runs:
        df = store.zeroshot(exp)
        present = set(df.loc[df["category"] != "mean", "category"])
        order = store.categories([exp], "unseen_categories")
        cats = [c for c in order if c in present] + sorted(present - set(order))
        by_prior = {p: df[df["prior"] == p] for p in ("with", "without")}
        n = metric_row(by_prior["with"], "n_shapes", cats) if "n_shapes" in df.columns else [math.nan] * (len(cats) + 1)
        n[-1] = float(np.nansum(n[:-1])) if cats else math.nan
        cols = [n] + [store.metric(spec.id, "zeroshot", exp, m, cats, prior=p) for m in metrics
                      for p in ("with", "without")]
        prefix = f"{exp}:" if len(runs) > 1 else ""
        lab_prefix = f"{store.label(exp)}: " if len(runs) > 1 else ""
        for i, c in enumerate(cats + ["mean"]):
            rows.append(prefix + c), labels.append(lab_prefix + (c if c != "mean" else "Mean"))
            sections.append(f"{exp}:{'mean' if c == 'mean' else 'category'}")
            cells.append([col[i] for col in cols])
    head = ("Zero-shot reconstruction of classes never seen in training (Pix3D-style photos), the same "
            "model with and without the 3DSPL text prior (the paper shows this only qualitatively, Fig. 6; "
            "no numbers are quoted). Bold: better of with/without per row and metric." + _missing_note(missing))
    return Table(spec.stem, f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}", "category",
                 "Category", rows, labels, sections, columns, cells, bold_by="row",
                 notes=[] if runs else ["No zero-shot results yet."])


def build_complexity(store: ResultStore, spec: TableSpec, cats: list[str]) -> Table:
    runs, missing = store.present(spec.id, "complexity")
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
                run_cats = [c for c in store.categories([exp]) if c in set(ev["category"])]
                cd = metric_row(ev, "cd_l2_x1000", run_cats)[-1]
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
    return Table(spec.stem, f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}", "row",
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


def _claim_arms(store: ResultStore, claim, a: str, b: str, k: int) -> tuple[Path, Path]:
    """Per-shape result files of seed k of both arms of a claim (the arms: runs with results of their
    own, aliases already resolved by the workflow)."""
    ra, rb = replica(a, k), replica(b, k)
    if claim.source == "zeroshot":  # the with-prior run's folder holds both (seed k vs seed k)
        folder = store.results / "zeroshot" / ra
        return folder / "per_shape_with.csv", folder / "per_shape_without.csv"
    return store.results / "eval" / ra / "per_shape.csv", store.results / "eval" / rb / "per_shape.csv"


def claim_rows(store: ResultStore, item: str) -> list[tuple[str, str, list]]:
    """One ``claims`` run-list item ``CLAIM:RUN_A:RUN_B:N_SEEDS`` -> [(row key, label, cells)], the
    overall row first, then one per class for a ``per_class`` claim."""
    from mesc3d import stats

    try:
        cid, a, b, n = item.split(":")
        claim, n = {c.id: c for c in CLAIMS}[cid], int(n)
    except (ValueError, KeyError):
        raise BadInputError("--table claims", f"item {item[:100]!r} is not CLAIM:RUN_A:RUN_B:N_SEEDS "
                                              f"(claims: {[c.id for c in CLAIMS]})") from None
    pairs = []  # per seed with results in both arms: (A frame, B frame)
    for k in range(n):
        pa, pb = _claim_arms(store, claim, a, b, k)
        fa, fb = store.per_shape(pa, claim.metric), store.per_shape(pb, claim.metric)
        if fa is None or fb is None:
            continue
        if list(fa["shape_id"]) != list(fb["shape_id"]) or list(fa["category"]) != list(fb["category"]):
            raise BadInputError(pb, f"not the same test shapes (in the same order) as {pa}: a paired "
                                    "comparison needs both arms evaluated on one split")
        if pairs and list(fa["shape_id"]) != list(pairs[0][0]["shape_id"]):
            raise BadInputError(pa, "seeds evaluated on different test shapes")
        pairs.append((fa, fb))
    label_a, label_b = store.label(a), store.label(b)
    if claim.source == "zeroshot":
        label_a, label_b = f"{label_a}, with prior", f"{label_b}, without prior"
    cats = sorted(set(pairs[0][0]["category"])) if pairs else []
    scopes = [("all", cats)] + ([(c, [c]) for c in cats] if claim.per_class else [])
    out = []
    for scope, keep in scopes:
        if pairs:
            mask = pairs[0][0]["category"].isin(keep).to_numpy()
            A = np.stack([fa[claim.metric].to_numpy()[mask] for fa, _ in pairs])  # (K, S)
            B = np.stack([fb[claim.metric].to_numpy()[mask] for _, fb in pairs])
            e = stats.paired_difference(A, B, pairs[0][0]["category"].to_numpy()[mask])
            nums = [e.mean_a, e.mean_b, e.effect, e.ci_low, e.ci_high, e.n_seeds, e.n_shapes]
            verdict = stats.verdict(e.ci_low, e.ci_high, BETTER[claim.metric])
        else:
            nums, verdict = [math.nan] * 5 + [0, 0], "no results"
        key = cid if scope == "all" else f"{cid}:{scope}"
        label = claim.text if scope == "all" else f"{claim.text}: {scope}"
        cells = [claim.metric, "all classes" if scope == "all" else scope, a, b, label_a, label_b, *nums, verdict]
        out.append((key, label, cells))
    return out


def build_claims(store: ResultStore, spec: TableSpec, cats: list[str]) -> Table | None:
    """One row per claim (and per class of a per-class claim): effect of arm A over arm B, its 95%
    interval (mesc3d.stats) and the verdict."""
    from mesc3d import stats

    fmt = "{:.3f}"
    columns = [Column("metric", ("", "Metric"), "{}"), Column("scope", ("", "Classes"), "{}"),
               Column("arm_a", ("", "Arm A"), "{}"), Column("arm_b", ("", "Arm B"), "{}"),
               Column("label_a", ("", "Arm A (label)"), "{}"), Column("label_b", ("", "Arm B (label)"), "{}"),
               Column("mean_a", ("", "A"), fmt), Column("mean_b", ("", "B"), fmt),
               Column("effect", ("", "A - B"), fmt), Column("ci_low", ("", "95% low"), fmt),
               Column("ci_high", ("", "95% high"), fmt), Column("n_seeds", ("", "Seeds"), "{:.0f}"),
               Column("n_shapes", ("", "Shapes"), "{:.0f}"), Column("verdict", ("", "Verdict"), "{}")]
    rows, labels, sections, cells = [], [], [], []
    for item in store.table_runs.get(spec.id, []):
        for key, label, line in claim_rows(store, item):
            rows.append(key), labels.append(label), sections.append("claims"), cells.append(line)
    if not any(line[-1] != "no results" for line in cells):
        return None
    head = (f"{spec.caption} Metric columns are the metric's table scale; A and B are the arms' class means "
            f"averaged over the seeds. Verdict: holds = the interval excludes 0 on the side where A is better "
            f"(lower CD, higher F), reversed = on the other side, inconclusive = it contains 0. Bootstrap: "
            f"{stats.N_BOOT} within-class resamples of the test shapes, generator seed {stats.BOOT_SEED}.")
    return Table(spec.stem, f"{head} {CONVENTION}", f"{latex_escape(head)} {CONVENTION_TEX}", "claim", "Claim",
                 rows, labels, sections, columns, cells)


# TableSpec.builder -> function(store, spec, categories) -> Table | None (None: no run has results)
BUILDERS = {"table1": build_table1, "table2": build_table2, "table3": build_table3, "ablation": build_ablation,
            "teachers": build_teachers, "zeroshot": build_zeroshot, "complexity": build_complexity,
            "claims": build_claims}


def build_tables(results: str | Path, table_runs: dict[str, list[str]],
                 categories: list[str] | None = None) -> dict[str, Table | None]:
    """The tables ``table_runs`` names (id -> its runs), in document order (mesc3d.table_specs.TABLES):
    id -> Table, or None when the table cannot be built (an optional table none of whose runs has
    results).  ``categories``: the seen classes to show (default: the table's runs' classes)."""
    store = ResultStore(results, table_runs)
    out: dict[str, Table | None] = {}
    for tid, spec in TABLES.items():
        if tid in table_runs:
            cats = list(categories or []) if spec.runs == "claims" else (
                list(categories) if categories else default_categories(store, tid))
            log.info("%s: runs %s, categories %s", tid, store.runs(tid), cats)
            out[tid] = BUILDERS[spec.builder](store, spec, cats)
    return out
