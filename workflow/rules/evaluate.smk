# Evaluation on the test split (view 00, fixed GT subsets) and the Pix3D photos, baselines, aliases,
# zero-shot and complexity.  Each per-run result path is a target of its own:
#   results/eval/{exp}/per_category.csv, results/eval_pix3d/{exp}/per_category.csv


rule evaluate:
    # one rule for every evaluation set: results/eval/ (the test split) and results/eval_pix3d/ (Tab. 2)
    input:
        cfg=stage_config("evaluate"),
        weights=lambda wc: run_weights(wc.exp),
        model="results/train/{exp}/model.pt",
        split=lambda wc: eval_split(wc.evalset),
        prompts=lambda wc: prompts_for(wc.exp),
        files=stage_inputs("evaluate"),
    output:
        per_category=report(
            "results/{evalset}/{exp}/per_category.csv",
            category="Evaluation",
            subcategory="{evalset}/{exp}",
        ),
        per_shape="results/{evalset}/{exp}/per_shape.csv",
        figure=report(
            "results/{evalset}/{exp}/samples.png",
            category="Evaluation",
            subcategory="{evalset}/{exp}",
        ),
    log:
        "logs/evaluate/{evalset}/{exp}.log",
    benchmark:
        "benchmarks/evaluate/{evalset}/{exp}.tsv"
    wildcard_constraints:
        evalset="|".join(EVAL_SETS),
        exp=_names(kinds_where(rule="evaluate")),
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        runtime=120,
        mem_mb=8000,
    params:
        prompts=prompts_arg,
        code=code("evaluate"),
    shell:
        "mesc3d evaluate --config {input.cfg} --model {input.model} {params.prompts}"
        " --split {input.split} --out results/{wildcards.evalset}/{wildcards.exp} > {log} 2>&1"


rule baseline:
    input:
        cfg=stage_config("baseline"),
        train="results/data/train.npz",
        split="results/data/test.npz",
    output:
        per_category="results/eval/{exp}/per_category.csv",
        per_shape="results/eval/{exp}/per_shape.csv",
    log:
        "logs/baseline/{exp}.log",
    benchmark:
        "benchmarks/baseline/{exp}.tsv"
    wildcard_constraints:
        exp=_names(kinds_where(rule="baseline")),
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    params:
        kind=lambda wc: RUN_KINDS[SHEET.kind(wc.exp)].baseline,
        code=code("baseline"),
    shell:
        "mesc3d baseline --kind {params.kind} --config {input.cfg} --train {input.train}"
        " --split {input.split} --out results/eval/{wildcards.exp} > {log} 2>&1"


rule alias:
    input:
        lambda wc: f"results/eval/{SHEET.target(wc.exp)}/per_category.csv",
    output:
        "results/eval/{exp}/per_category.csv",
    log:
        "logs/alias/{exp}.log",
    wildcard_constraints:
        exp=_names(kinds_where(rule="alias")),
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "cp {input} {output} 2> {log}"


rule zeroshot_eval:
    input:
        cfg=stage_config("zeroshot"),
        weights=lambda wc: run_weights(wc.exp),
        model="results/train/{exp}/model.pt",
        prompts=lambda wc: prompts_for(wc.exp),
        cfg_without=lambda wc: stage_config("zeroshot", zeroshot_without(wc.exp)),
        model_without=lambda wc: f"results/train/{zeroshot_without(wc.exp)}/model.pt",
        split="results/data/zeroshot.npz",
        files=lambda wc: stage_inputs("zeroshot", wc.exp)
        + stage_inputs("zeroshot", zeroshot_without(wc.exp)),
    output:
        per_category=report(
            "results/zeroshot/{exp}/per_category.csv", category="Zero-shot"
        ),
        per_shape_with="results/zeroshot/{exp}/per_shape_with.csv",
        per_shape_without="results/zeroshot/{exp}/per_shape_without.csv",
        figure=report("results/zeroshot/{exp}/samples.png", category="Zero-shot"),
    log:
        "logs/zeroshot/{exp}.log",
    benchmark:
        "benchmarks/zeroshot/{exp}.tsv"
    wildcard_constraints:
        exp=_names(kinds_where(trains=True)),
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    params:
        code=code("zeroshot"),
    shell:
        "mesc3d zeroshot --config {input.cfg} --model {input.model} --prompts {input.prompts}"
        " --config-without {input.cfg_without} --model-without {input.model_without}"
        " --split {input.split} --out results/zeroshot/{wildcards.exp} > {log} 2>&1"


rule complexity_run:
    input:
        cfg=stage_config("complexity"),
        files=stage_inputs("complexity"),
        weights=lambda wc: run_weights(wc.exp),
    output:
        "results/complexity/{exp}.csv",
    log:
        "logs/complexity/{exp}.log",
    benchmark:
        "benchmarks/complexity/{exp}.tsv"
    wildcard_constraints:
        exp=_names(kinds_where(trains=True)),
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    params:
        code=code("complexity"),
    shell:
        "mesc3d complexity --config {input.cfg} --out {output} > {log} 2>&1"
