# Shared pretraining steps, computed once and reused by every run that shares their settings:
# Point-MAE (masked autoencoder on the train GT clouds), the frozen-encoder feature cache, and
# stage-1 3DSPL prompts (one per distinct prompt.* setting; `default` for rows that keep the base).


rule pretrain_pointmae:
    input:
        cfg="results/configs/_base.yaml",
        train="results/data/train.npz",
        code=sources("mesc3d/models/point_mae.py", "mesc3d/models/point_mae_pretrain.py",
                     "mesc3d/models/layers.py", "mesc3d/ops", "mesc3d/cli/pretrain_pointmae.py"),
    output:
        "results/pointmae/encoder.pt",
    log:
        "logs/pretrain_pointmae.log",
    benchmark:
        "benchmarks/pretrain_pointmae/pretrain_pointmae.tsv"
    threads: 2
    resources:
        gpu=config.get("gpus_per_job", 1),
        runtime=720,
        mem_mb=16000,
    conda:
        "../../environment.yml"
    shell:
        "mesc3d pretrain-pointmae --config {input.cfg} --train {input.train} --out {output} > {log} 2>&1"


rule cache_features:
    input:
        cfg="results/configs/_base.yaml",
        split="results/data/{split}.npz",
        encoder=encoder_ckpt(),
        code=sources("mesc3d/models/point_mae.py", "mesc3d/models/layers.py", "mesc3d/ops",
                     "mesc3d/cli/cache_features.py",
                     "mesc3d/data/feature_cache.py"),
    output:
        "results/features/{split}.h5",
    log:
        "logs/cache_features/{split}.log",
    benchmark:
        "benchmarks/cache_features/{split}.tsv"
    threads: 2
    resources:
        runtime=120,
        mem_mb=8000,
    conda:
        "../../environment.yml"
    shell:
        "mesc3d cache-features --config {input.cfg} --split-file {input.split}"
        " --encoder-ckpt {input.encoder} --out {output} > {log} 2>&1"


rule pretrain_prompt:
    input:
        cfg=prompt_config,
        weights=lambda wc: run_weights("_base" if wc.pkey == "default" else wc.pkey),
        train="results/features/train.h5",
        val="results/features/val.h5",
        code=sources("mesc3d/models/text_prompt.py", "mesc3d/models/text_towers.py",
                     "mesc3d/models/prompt_stage1.py", "mesc3d/data/feature_cache.py",
                     "mesc3d/cli/pretrain_prompt.py"),
    output:
        prompts="results/pretrain/{pkey}/prompts.pt",
        retrieval=report("results/pretrain/{pkey}/retrieval.csv", category="Stage 1"),
    log:
        "logs/pretrain_prompt/{pkey}.log",
    benchmark:
        "benchmarks/pretrain_prompt/{pkey}.tsv"
    threads: 2
    resources:
        gpu=config.get("gpus_per_job", 1),
        runtime=720,
        mem_mb=16000,
    conda:
        "../../environment.yml"
    shell:
        "mesc3d pretrain-prompt --config {input.cfg} --train-features {input.train}"
        " --val-features {input.val} --out {output.prompts} --retrieval-csv {output.retrieval} > {log} 2>&1"
