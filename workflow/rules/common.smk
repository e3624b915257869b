# Helpers only: config validation, the experiments sheet, wildcard constraints, input functions.
import json
import shlex
import sys
from functools import lru_cache
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO))  # the DAG is built with the package of the repository it lives in

from mesc3d import codedeps
from mesc3d.config import coerce_to_schema, deep_merge, from_dict, parse_overrides
from mesc3d.config_slices import STAGES, stage_dict, stage_files
from mesc3d.errors import UserFacingError
from mesc3d.table_ids import ABLATION_TABLES, TABLE_FILES, TABLE_IDS, check_table_ids
from mesc3d.tables import TEACHER_TABLES, load_sheet

# `--config` gives nested numbers/booleans as strings ('3', 'false'): read them as the schema's types
import yaml as _yaml

coerce_to_schema(config, _yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text()))
validate(config, schema="../schemas/config.schema.yaml")

# one reader for the sheet (missing columns, duplicate names -> one-line error naming the file)
def fail(err):
    """Bad workflow input: one line naming the file/key/row, before any job runs (no traceback)."""
    print(f"mesc3d workflow: error: {err}", file=sys.stderr)
    sys.exit(1)


try:
    EXPERIMENTS = load_sheet(config["experiments"])
except UserFacingError as err:
    fail(err)
for _, _row in EXPERIMENTS.iterrows():
    validate(_row.to_dict(), schema="../schemas/experiments.schema.yaml")

SPLITS = ["train", "val", "test"]


def row_overrides(exp):
    """The sheet row's overrides as a nested dict (data.* and model.point_mae.* are shared: refused)."""
    items = [s for s in EXPERIMENTS.loc[exp, "overrides"].split(";") if s.strip()]
    for item in items:
        if item.startswith("data.") or item.startswith("model.point_mae."):
            raise ValueError(
                f"{config['experiments']}: row {exp!r} overrides {item.split('=')[0]!r}; data and "
                "Point-MAE settings are shared by every run: change them in the workflow config"
            )
    return parse_overrides(items)


def run_config_dict(exp):
    """Resolved run config (as a dict) of one sheet row: base + row overrides + name."""
    if exp == "_base":
        return deep_merge(config["base"], {"name": "_base"})
    return deep_merge(deep_merge(config["base"], row_overrides(exp)), {"name": exp})


@lru_cache(maxsize=None)
def run_config(exp):
    return from_dict(run_config_dict(exp), source=f"{config['experiments']}:{exp}")


# Validate every row once at parse time, so a bad sheet fails before any job runs.
def _check_rows():
    for exp in EXPERIMENTS.index:
        if EXPERIMENTS.loc[exp, "kind"] == "alias":
            target = EXPERIMENTS.loc[exp, "same_as"]
            if target not in EXPERIMENTS.index or EXPERIMENTS.loc[target, "kind"] == "alias":
                raise ValueError(f"{config['experiments']}: alias {exp!r} needs same_as = a non-alias run")
        else:
            run_config(exp)
    check_table_ids(config.get("tables", []), "config key `tables`")
    for exp, row in EXPERIMENTS.iterrows():
        check_table_ids([t for t in row["tables"].split(",") if t], f"{config['experiments']}: row {exp!r}")
    for key in ("with_prior", "without_prior"):
        exp = config["zeroshot"][key]
        if exp not in EXPERIMENTS.index or EXPERIMENTS.loc[exp, "kind"] != "mesc3d":
            raise ValueError(f"zeroshot.{key}: {exp!r} is not a kind=mesc3d row of {config['experiments']}")
        if run_config(exp).uses_prior != (key == "with_prior"):
            raise ValueError(f"zeroshot.{key}: run {exp!r} {'does not use' if key == 'with_prior' else 'uses'} "
                             "the text prior (model.prior_injection)")
    # the zero-shot pair has one source, the config key `zeroshot`; the sheet does not name it
    tagged = [e for e, r in EXPERIMENTS.iterrows() if "zeroshot" in r["tables"].split(",")]
    if tagged:
        raise ValueError(f"{config['experiments']}: rows {tagged} list table zeroshot; its runs are the config "
                         "key zeroshot.with_prior / zeroshot.without_prior, remove `zeroshot` from the row")


try:
    _check_rows()
except (UserFacingError, ValueError) as err:
    fail(err)


def exps(kind=None, table=None):
    """Run names of a kind and/or appearing in a table, in sheet order."""
    out = []
    for exp, row in EXPERIMENTS.iterrows():
        if kind is not None and row["kind"] not in ([kind] if isinstance(kind, str) else kind):
            continue
        if table is not None and table not in row["tables"].split(","):
            continue
        out.append(exp)
    return out


def selected_tables():
    return list(config.get("tables", []))


def uses_prior(exp):
    return run_config(exp).uses_prior


def prompt_key(exp):
    """Stage-1 runs are shared: rows that do not touch prompt.* use the `default` prompts."""
    return exp if "prompt" in row_overrides(exp) else "default"


def prompt_exp(pkey):
    """The run whose prompt.* settings a stage-1 key stands for (`default` = the base)."""
    return "_base" if pkey == "default" else pkey


def prompts_for(exp):
    return [f"results/pretrain/{prompt_key(exp)}/prompts.pt"] if uses_prior(exp) else []


def prompts_arg(wildcards, input):
    return f"--prompts {input.prompts}" if input.get("prompts") else ""


def stage_config(stage, exp=None):
    """The config file a stage job reads: results/configs/{stage}/{exp}.yaml (rule resolve_config).
    `exp` is a run name, "_base" for the shared stages, or None for the rule's {exp} wildcard."""
    return f"results/configs/{stage}/{exp or '{exp}'}.yaml"


def stage_config_json(stage, exp):
    """JSON of the resolved keys `stage` reads for run `exp` (mesc3d.config_slices.STAGES)."""
    return json.dumps(stage_dict(run_config(exp), stage), sort_keys=True)


def stage_inputs(stage, exp=None):
    """Files the stage loads because its config names them (path keys: weights, checkpoints)."""
    if exp is not None:
        return stage_files(run_config(exp), stage)
    return lambda wc: stage_files(run_config(wc.exp), stage)


def code(command):
    """Rerun trigger (a param): fingerprint of what `mesc3d <command>` imports inside the repository,
    hashed over the AST without docstrings (mesc3d.codedeps): comments and docstrings plan nothing."""
    return codedeps.fingerprint(f"mesc3d.cli.{command.replace('-', '_')}", root=REPO)


def eval_target(exp):
    return f"results/eval/{exp}/per_category.csv"




def table_inputs(table):
    """The per-run result CSVs one table is built from."""
    if table == "zeroshot":
        return [f"results/zeroshot/{config['zeroshot']['with_prior']}/per_category.csv"]
    if table == "table2":
        return [f"results/eval_pix3d/{exp}/per_category.csv" for exp in exps(kind="mesc3d", table=table)]
    files = []
    for exp in exps(table=table):
        files.append(eval_target(exp))
        if table == "complexity" and EXPERIMENTS.loc[exp, "kind"] == "mesc3d":
            files.append(f"results/complexity/{exp}.csv")
            files.append(stage_config("complexity", exp))  # the table reads uses_prior from it
        if table in TEACHER_TABLES:  # seen classes and the zero-shot unseen classes, per run
            row = EXPERIMENTS.loc[exp]
            files.append(f"results/zeroshot/{row['same_as'] if row['kind'] == 'alias' else exp}/per_category.csv")
    return files


def table_rows(table):
    """The sheet rows (all columns) a table is built from, as one string (a rerun trigger)."""
    runs = [config["zeroshot"]["with_prior"]] if table == "zeroshot" else exps(table=table)
    rows = [EXPERIMENTS.loc[e] for e in runs]
    return ";".join("|".join(str(v) for v in row.to_dict().values()) for row in rows)


def final_outputs():
    return [f"results/tables/{TABLE_FILES[t]}.csv" for t in selected_tables()] + [
        "results/tables/all.tex",
        "results/tables/compute_cost.csv",
        "results/figures/contact_sheet.png",
    ] + (["results/tables/reconstruct_masks.csv"] if config["synthetic"]["enabled"] else [])


# ------------------------------------------------------------------ data and downloads
def pix3d_eval_split():
    """Tab. 2 test photos: the Pix3D test split itself (data.source pix3d), else the Pix3D(-style)
    photos of the seen classes that prepare writes beside the ShapeNet splits."""
    if config["base"]["data"].get("source") == "pix3d":
        return "results/data/test.npz"
    return "results/data/pix3d_test.npz"


def data_root_input():
    if config["synthetic"]["enabled"]:
        return config["synthetic"]["out"]
    return [f"{d['out']}/.complete-{name}.json" for name, d in config["downloads"].items()]


def category_args():
    """Generate only the classes the runs use (all 13 + 4 unless base.data narrows them)."""
    data = config["base"]["data"]
    args = []
    if data.get("categories"):
        args += ["--categories", *data["categories"]]
    if data.get("unseen_categories"):
        args += ["--unseen-categories", *data["unseen_categories"]]
    return " ".join(args)


def download_args(name):
    d = config["downloads"][name]
    args = []
    if d.get("local_archive"):
        args += ["--local-archive", d["local_archive"]]
    for url in [d.get("url")] + list(d.get("alternates") or []):
        if url:
            args += ["--url", url]
    args += ["--sha256", d.get("sha256") or "null"]
    if d.get("size"):
        args += ["--size", str(d["size"])]
    if not d.get("sha256"):
        args += ["--lock", d.get("lock") or "config/checksums.lock.json"]
    if d.get("top_dir"):
        args += ["--top-dir", d["top_dir"]]
    return " ".join(shlex.quote(a) for a in args)


# ------------------------------------------------------------------ run selection
def _names(kind):
    return "|".join(exps(kind=kind)) or "NO_SUCH_RUN"


def encoder_ckpt():
    """Point-MAE weights: the official checkpoint when base.model.point_mae.checkpoint names one
    (e.g. modelnet_1k.pth), else our masked-autoencoder pretraining (rule pretrain_pointmae)."""
    path = config["base"].get("model", {}).get("point_mae", {}).get("checkpoint", "")
    return path or "results/pointmae/encoder.pt"


# ------------------------------------------------------------------ pretrained weights files
# config `weights`: name -> {url, sha256, size, local_file, out, lock}; rule download_weights (local)
# fetches `out`.  Rules that load weights declare the files as inputs (run_weights), so a missing file
# is fetched where the network is, never from a compute job (jobs run with the hubs switched off).
WEIGHTS_BY_PATH = {w["out"]: name for name, w in (config.get("weights") or {}).items()}


def weights_args(path):
    name = WEIGHTS_BY_PATH[path]
    w = config["weights"][name]
    args = ["--name", name, "--no-extract", "--force", "--archive", path, "--out", str(Path(path).parent)]
    if w.get("local_file"):
        args += ["--local-archive", w["local_file"]]
    args += ["--url", w["url"], "--sha256", w.get("sha256") or "null"]
    if w.get("size"):
        args += ["--size", str(w["size"])]
    args += ["--kind", w.get("kind") or "auto"]  # trusted only once it loads as what it claims to be
    if not w.get("sha256"):
        args += ["--lock", w.get("lock") or "config/checksums.lock.json"]
    return " ".join(shlex.quote(a) for a in args)


def _weights_file(value):
    """A weights setting that names a file ("" and open_clip tags such as `openai` are not files)."""
    return bool(value) and (value in WEIGHTS_BY_PATH or len(Path(value).parts) > 1
                            or value.endswith((".pt", ".pth", ".bin")))


def run_weights(exp):
    """Local weights files one run's jobs load: the CLIP file of its text tower and Tab. 4 image tower."""
    cfg = run_config(exp)
    files = []
    if cfg.prompt.text_backend == "open_clip" and _weights_file(cfg.prompt.pretrained):
        files.append(cfg.prompt.pretrained)
    if cfg.model.image_encoder.startswith("clip_"):
        clip = cfg.model.image_weights or cfg.prompt.pretrained
        if _weights_file(clip) and clip not in files:
            files.append(clip)
    return files
