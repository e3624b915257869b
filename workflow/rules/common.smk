# Helpers only: config validation, the experiments sheet, wildcard constraints, input functions.
import json
import shlex
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

from mesc3d.config import deep_merge, from_dict, parse_overrides

REPO = Path(workflow.basedir)

validate(config, schema="../schemas/config.schema.yaml")

EXPERIMENTS = (
    pd.read_csv(config["experiments"], sep="\t", dtype=str, keep_default_na=False)
    .set_index("exp", drop=False)
)
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


def run_config(exp):
    return from_dict(run_config_dict(exp), source=f"{config['experiments']}:{exp}")


# Validate every row once at parse time, so a bad sheet fails before any job runs.
for _exp in EXPERIMENTS.index:
    if EXPERIMENTS.loc[_exp, "kind"] == "alias":
        _target = EXPERIMENTS.loc[_exp, "same_as"]
        if _target not in EXPERIMENTS.index or EXPERIMENTS.loc[_target, "kind"] == "alias":
            raise ValueError(f"{config['experiments']}: alias {_exp!r} needs same_as = a non-alias run")
    else:
        run_config(_exp)


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
    return run_config(exp).model.prior_injection != "none"


def prompt_key(exp):
    """Stage-1 runs are shared: rows that do not touch prompt.* use the `default` prompts."""
    return exp if "prompt" in row_overrides(exp) else "default"


def prompt_config(wildcards):
    key = wildcards.pkey
    return "results/configs/_base.yaml" if key == "default" else f"results/configs/{key}.yaml"


def prompts_for(exp):
    return [f"results/pretrain/{prompt_key(exp)}/prompts.pt"] if uses_prior(exp) else []


def prompts_arg(wildcards, input):
    return f"--prompts {input.prompts}" if input.get("prompts") else ""


def resolve_args(wildcards):
    """Shell-quoted JSON of the run config: a param, so only the edited row's job reruns."""
    return shlex.quote(json.dumps(run_config_dict(wildcards.exp), sort_keys=True))


def sources(*paths):
    """Package source files the job depends on; checksum-compared, so edits trigger reruns.

    Relative to the working directory when the run happens in the repository, absolute otherwise
    (``--directory elsewhere``), so both find the files.
    """
    files = []
    for p in paths:
        path = REPO / p
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    cwd = Path.cwd().resolve()
    return [str(f.relative_to(cwd)) if f.is_relative_to(cwd) else str(f) for f in files]


def eval_target(exp):
    return f"results/eval/{exp}/per_category.csv"


# sheet table id -> file name in results/tables/
TABLE_FILES = {
    "table1": "table1_shapenet",
    "table3": "table3_ablation",
    "tab4": "table4_encoder",
    "tab5": "table5_stage1",
    "tab6": "table6_injection",
    "tab7": "table7_mit",
    "esm_variant": "esm_variant",
    "seeds": "seeds",
    "zeroshot": "zeroshot",
    "complexity": "complexity",
}
TABLE_IDS = {v: k for k, v in TABLE_FILES.items()}


def table_inputs(table):
    """The per-run result CSVs one table is built from."""
    if table == "zeroshot":
        return [f"results/zeroshot/{config['zeroshot']['with_prior']}/per_category.csv"]
    files = []
    for exp in exps(table=table):
        files.append(eval_target(exp))
        if table == "complexity" and EXPERIMENTS.loc[exp, "kind"] == "mesc3d":
            files.append(f"results/complexity/{exp}.csv")
    return files


def table_rows(table):
    """The sheet rows (all columns) a table is built from, as one string (a rerun trigger)."""
    rows = [EXPERIMENTS.loc[e] for e in exps(table=table)]
    if table == "zeroshot":
        rows = [EXPERIMENTS.loc[config["zeroshot"][k]] for k in ("with_prior", "without_prior")]
    return ";".join("|".join(str(v) for v in row.to_dict().values()) for row in rows)


def final_outputs():
    return [f"results/tables/{TABLE_FILES[t]}.csv" for t in selected_tables()] + [
        "results/tables/all.tex",
        "results/tables/compute_cost.csv",
        "results/figures/contact_sheet.png",
    ] + (["results/tables/reconstruct_masks.csv"] if config["synthetic"]["enabled"] else [])


# ------------------------------------------------------------------ data and downloads
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


ABLATION_TABLES = ["table3", "tab4", "tab5", "tab6", "tab7", "esm_variant", "seeds"]


def encoder_ckpt():
    """Point-MAE weights: the official checkpoint when base.model.point_mae.checkpoint names one
    (e.g. modelnet_1k.pth), else our masked-autoencoder pretraining (rule pretrain_pointmae)."""
    path = config["base"].get("model", {}).get("point_mae", {}).get("checkpoint", "")
    return path or "results/pointmae/encoder.pt"
