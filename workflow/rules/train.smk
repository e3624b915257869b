# Stage 2: reconstruction training.  Only model.pt and metrics.csv are declared outputs; the resume
# checkpoint lives in results/train/{exp}/ckpt/ (not an output, so Snakemake never deletes it) and
# `mesc3d train` continues from it after a kill, a TIMEOUT or a preemption (profile retries).


rule train:
    input:
        cfg=stage_config("train"),
        train="results/data/train.npz",
        val="results/data/val.npz",
        encoder=encoder_ckpt(),
        prompts=lambda wc: prompts_for(wc.exp),
        files=stage_inputs("train"),
        weights=lambda wc: run_weights(wc.exp),
    output:
        model="results/train/{exp}/model.pt",
        metrics="results/train/{exp}/metrics.csv",
    log:
        "logs/train/{exp}.log",
    benchmark:
        "benchmarks/train/{exp}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        gpu=config.get("gpus_per_job", 1),
        runtime=2880,
        mem_mb=32000,
    params:
        prompts=prompts_arg,
        code=code("train"),
        # one process per GPU inside the job (DistributedDataParallel); plain `mesc3d` otherwise
        launcher=lambda wc, resources: (
            "mesc3d"
            if resources.gpu <= 1
            else f"torchrun --standalone --nnodes 1 --nproc_per_node {resources.gpu} -m mesc3d"
        ),
    shell:
        "{params.launcher} train --config {input.cfg} --train {input.train} --val {input.val}"
        " --encoder-ckpt {input.encoder} {params.prompts} --out results/train/{wildcards.exp} > {log} 2>&1"
