# MESC-3D (CVPR 2025) as one DAG.  Single entry point; rules live in workflow/rules/*.smk.
#   snakemake --cores 2                      everything on the embedded default (config/config.yaml)
#   snakemake --configfile config/smoke.yaml every rule once, in a few minutes (tests, CI)
#   snakemake --profile slurm all            on a Slurm cluster (see docs/cluster.md)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# No job but a download touches the network: every job's shell runs with the model hubs switched
# off, so a missing weights file is a clear error, never a download from a compute node.
shell.prefix(
    "set -euo pipefail; export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1; "
)


wildcard_constraints:
    exp="[a-z][a-z0-9_]*",
    pkey="[a-z][a-z0-9_]*",
    split="train|val|test",


include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/reconstruct.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


rule main_table:
    input:
        "results/tables/table1_shapenet.csv",


rule ablations:
    input:
        [
            f"results/tables/{TABLE_FILES[t]}.csv"
            for t in selected_tables()
            if t in ABLATION_TABLES
        ],


rule zeroshot:
    input:
        "results/tables/zeroshot.csv",


rule complexity:
    input:
        "results/tables/complexity.csv",
