# Wildcard -> path functions only: the experiments sheet, run configs, table inputs and download
# arguments are mesc3d.sheet / mesc3d.table_specs (unit-tested without Snakemake: tests/test_sheet.py).
import json
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

REPO = Path(workflow.basedir)
sys.path.insert(
    0, str(REPO)
)  # the DAG is built with the package of the repository it lives in

from mesc3d import codedeps
from mesc3d.config_slices import STAGES, stage_dict, stage_files
from mesc3d.errors import UserFacingError
from mesc3d.registries import RUN_KINDS, kinds_where
from mesc3d.sheet import (
    Sheet,
    download_args,
    normalise_config,
    weights_args,
    weights_by_path,
)
from mesc3d.table_specs import (
    ABLATION_TABLES,
    SEED_SEP,
    TABLE_FILES,
    TABLE_IDS,
    TABLES,
    replica,
    split_replica,
)

# nested `--config` strings as the schema's types; with data.source meshes, meshes.root is the data root
normalise_config(config)
validate(config, schema="../schemas/config.schema.yaml")


def fail(err):
    """Bad workflow input: one line naming the file/key/row, before any job runs (no traceback)."""
    print(f"mesc3d workflow: error: {err}", file=sys.stderr)
    sys.exit(1)


try:  # the sheet, every row's run config, table ids and the zero-shot pair, before any job is planned
    SHEET = Sheet(config["experiments"], config)
    SHEET.check(config.get("tables", []))
except (UserFacingError, ValueError) as err:
    fail(err)

run_config = SHEET.run_config
uses_prior = SHEET.uses_prior
prompt_key = SHEET.prompt_key
EVAL_SETS = (
    "eval",
    "eval_pix3d",
)  # results/{evalset}/{exp}/: the test split, the Pix3D photos (Tab. 2)


def _names(kinds):
    """Wildcard constraint: the runs of `kinds` and their seed replicas ({exp}__s{k}, k >= 1)."""
    return f"(?:{SHEET.names(kinds)})(?:{SEED_SEP}[1-9][0-9]*)?"


def selected_tables():
    return list(config.get("tables", []))


def prompt_exp(pkey):
    """The run whose prompt.* settings a stage-1 key stands for (`default` = the base; a seed replica
    `default__s{k}` = the base with seed + k)."""
    key, k = split_replica(pkey)
    return replica("_base", k) if key == "default" else pkey


def zeroshot_without(exp):
    """The run without the prior that zero-shot run `exp` is compared with: seed k with seed k."""
    return replica(config["zeroshot"]["without_prior"], split_replica(exp)[1])


def prompts_for(exp):
    return [f"results/pretrain/{prompt_key(exp)}/prompts.pt"] if uses_prior(exp) else []


def prompts_arg(wildcards, input):
    return f"--prompts {input.prompts}" if input.get("prompts") else ""


def stage_config(stage, exp=None):
    """The config file a stage job reads: results/configs/{stage}/{exp}.yaml (rule resolve_config).
    `exp` is a run name, "_base" for the shared stages, or None for the rule's {exp} wildcard.
    """
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
    hashed over the AST without docstrings (mesc3d.codedeps): comments and docstrings plan nothing.
    """
    return codedeps.fingerprint(f"mesc3d.cli.{command.replace('-', '_')}", root=REPO)


def table_inputs(stem):
    """The result files and run manifests one table (file stem) is built from (mesc3d.table_specs)."""
    return SHEET.table_inputs(TABLE_IDS[stem])


def curve_inputs(stem):
    """The training logs (metrics.csv) of every trained run and seed of one table (file stem)."""
    return SHEET.curve_files(TABLE_IDS[stem])


def table_arg(table):
    """`mesc3d tables --table` value of one table id: ID=run,run (the table's run list)."""
    return SHEET.table_arg(table)


def final_outputs():
    return (
        [f"results/tables/{TABLE_FILES[t]}.csv" for t in selected_tables()]
        + [
            "results/tables/all.tex",
            "results/tables/compute_cost.csv",
            "results/figures/contact_sheet.png",
        ]
        + (
            ["results/tables/reconstruct_masks.csv"]
            if config["synthetic"]["enabled"]
            else []
        )
    )


# ------------------------------------------------------------------ data and downloads
def eval_split(evalset):
    """Test photos of an evaluation set: `eval` the test split; `eval_pix3d` (Tab. 2) the Pix3D test split
    itself (data.source pix3d), else the Pix3D(-style) photos of the seen classes prepare writes.
    """
    if evalset == "eval" or config["base"]["data"].get("source") == "pix3d":
        return "results/data/test.npz"
    return "results/data/pix3d_test.npz"


def data_root_input():
    if (
        config["base"]["data"].get("source") == "meshes"
    ):  # every mesh file: one added/edited/removed reruns prepare
        from mesc3d.data.meshes import class_files

        data = run_config("_base").data
        try:
            return [
                str(p)
                for files in class_files(data.root, data.categories).values()
                for p in files
            ]
        except UserFacingError as err:
            fail(err)
    if config["synthetic"]["enabled"]:
        return config["synthetic"]["out"]
    return [
        f"{d['out']}/.complete-{name}.json" for name, d in config["downloads"].items()
    ]


def category_args():
    """Generate only the classes the runs use (all 13 + 4 unless base.data narrows them)."""
    data = config["base"]["data"]
    args = []
    if data.get("categories"):
        args += ["--categories", *data["categories"]]
    if data.get("unseen_categories"):
        args += ["--unseen-categories", *data["unseen_categories"]]
    return " ".join(args)


# ------------------------------------------------------------------ run selection
def encoder_ckpt():
    """Point-MAE weights: the official checkpoint when base.model.point_mae.checkpoint names one
    (e.g. modelnet_1k.pth), else our masked-autoencoder pretraining (rule pretrain_pointmae).
    """
    path = config["base"].get("model", {}).get("point_mae", {}).get("checkpoint", "")
    return path or "results/pointmae/encoder.pt"


# ------------------------------------------------------------------ pretrained weights files
# config `weights`: name -> {url, sha256, size, local_file, out, lock}; rule download_weights (local)
# fetches `out`.  Rules that load weights declare the files as inputs (run_weights), so a missing file
# is fetched where the network is, never from a compute job (jobs run with the hubs switched off).
WEIGHTS_BY_PATH = weights_by_path(config)


def run_weights(exp):
    """Local weights files one run's jobs load (declared inputs: rule download_weights fetches them)."""
    return SHEET.run_weights(exp)
