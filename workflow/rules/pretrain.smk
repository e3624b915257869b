# Shared pretraining steps, computed once and reused by every run that shares their settings:
# Point-MAE (masked autoencoder on the train GT clouds), the frozen-encoder feature cache, and
# stage-1 3DSPL prompts (one per distinct prompt.* setting; `default` for rows that keep the base).


rule pretrain_pointmae:
    input:
        cfg=stage_config("pretrain_pointmae", "_base"),
        train="results/data/train.npz",
        files=stage_inputs("pretrain_pointmae", "_base"),
    output:
        "results/pointmae/encoder.pt",
    log:
        "logs/pretrain_pointmae.log",
    benchmark:
        "benchmarks/pretrain_pointmae/pretrain_pointmae.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=config.get("gpus_per_job", 1),
        runtime=720,
        mem_mb=16000,
    params:
        code=code("pretrain-pointmae"),
    shell:
        "mesc3d pretrain-pointmae --config {input.cfg} --train {input.train} --out {output} > {log} 2>&1"


rule cache_features:
    input:
        cfg=stage_config("cache_features", "_base"),
        split="results/data/{split}.npz",
        encoder=encoder_ckpt(),
        files=stage_inputs("cache_features", "_base"),
    output:
        "results/features/{split}.h5",
    log:
        "logs/cache_features/{split}.log",
    benchmark:
        "benchmarks/cache_features/{split}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        runtime=120,
        mem_mb=8000,
    params:
        code=code("cache-features"),
    shell:
        "mesc3d cache-features --config {input.cfg} --split-file {input.split}"
        " --encoder-ckpt {input.encoder} --out {output} > {log} 2>&1"


rule pretrain_prompt:
    input:
        cfg=lambda wc: stage_config("pretrain_prompt", prompt_exp(wc.pkey)),
        weights=lambda wc: run_weights(prompt_exp(wc.pkey)),
        train="results/features/train.h5",
        val="results/features/val.h5",
        files=lambda wc: stage_inputs("pretrain_prompt", prompt_exp(wc.pkey)),
    output:
        prompts="results/pretrain/{pkey}/prompts.pt",
        retrieval=report("results/pretrain/{pkey}/retrieval.csv", category="Stage 1"),
    log:
        "logs/pretrain_prompt/{pkey}.log",
    benchmark:
        "benchmarks/pretrain_prompt/{pkey}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=config.get("gpus_per_job", 1),
        runtime=720,
        mem_mb=16000,
    params:
        code=code("pretrain-prompt"),
    shell:
        "mesc3d pretrain-prompt --config {input.cfg} --train-features {input.train}"
        " --val-features {input.val} --out {output.prompts} --retrieval-csv {output.retrieval} > {log} 2>&1"
