# Data: procedural benchmark or downloaded archives -> prepared split files -> contact sheet.


rule synth:
    output:
        directory(config["synthetic"]["out"]),
    log:
        "logs/synth.log",
    benchmark:
        "benchmarks/synth/synth.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        runtime=30,
        mem_mb=4000,
    params:
        per_class=config["synthetic"]["per_class"],
        n_unseen=config["synthetic"]["unseen_per_class"],
        n_pix3d_seen=config["synthetic"].get("pix3d_seen_per_class", 0),
        dense=config["synthetic"]["dense_points"],
        seed=config["synthetic"]["seed"],
        cats=category_args(),
        code=code("synth"),
    shell:
        "mesc3d synth --out {output} --per-class {params.per_class} --unseen-per-class {params.n_unseen}"
        " --pix3d-seen-per-class {params.n_pix3d_seen}"
        " --dense-points {params.dense} --seed {params.seed} {params.cats} --workers {threads} > {log} 2>&1"


rule download:
    output:
        "{root}/.complete-{name}.json",
    log:
        "logs/download/{root}/{name}.log",
    retries: 2
    localrule: True
    conda:
        "../../environment.yml"
    params:
        args=lambda wc: download_args(config, wc.name),
    shell:
        "mesc3d download {params.args} --name {wildcards.name} --out {wildcards.root} > {log} 2>&1"


rule resolve_config:
    # results/configs/{stage}/{exp}.yaml: exactly the resolved keys `stage` reads (mesc3d/config_slices.py;
    # the other keys at their defaults, unused).  Its params are those keys, so the file is rewritten,
    # and the stage reruns, exactly when one of them changes.  {exp} = _base for the shared stages.
    output:
        "results/configs/{stage}/{exp}.yaml",
    log:
        "logs/resolve_config/{stage}/{exp}.log",
    wildcard_constraints:
        stage="|".join(STAGES),
        exp="_base(?:__s[1-9][0-9]*)?|[a-z][a-z0-9_]*",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        cfg=lambda wc: shlex.quote(stage_config_json(wc.stage, wc.exp)),
    shell:
        "mesc3d resolve-config --json {params.cfg} --out {output} > {log} 2>&1"


rule prepare:
    input:
        root=data_root_input(),
        cfg=stage_config("prepare", "_base"),
    output:
        train="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
        zeroshot="results/data/zeroshot.npz",
        pix3d_test="results/data/pix3d_test.npz",
        summary="results/data/summary.json",
    log:
        "logs/prepare.log",
    benchmark:
        "benchmarks/prepare/prepare.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        runtime=60,
        mem_mb=8000,
    params:
        code=code("prepare"),
    shell:
        "mesc3d prepare --config {input.cfg} --out results/data --workers {threads} > {log} 2>&1"


rule contact_sheet:
    input:
        root=data_root_input(),
        # data.source meshes: the tiles are prepare's renders of the meshes
        renders=(
            ["results/data/summary.json"]
            if config["base"]["data"].get("source") == "meshes"
            else []
        ),
    output:
        report(
            "results/figures/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Data",
        ),
    log:
        "logs/contact_sheet.log",
    conda:
        "../../environment.yml"
    params:
        root=lambda wc: (
            "results/data/renders"
            if config["base"]["data"].get("source") == "meshes"
            else config["base"]["data"]["root"]
        ),
        code=code("contact-sheet"),
    shell:
        "mesc3d contact-sheet --root {params.root} --out {output} > {log} 2>&1"
