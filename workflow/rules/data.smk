# Data: procedural benchmark or downloaded archives -> prepared split files -> contact sheet.


rule synth:
    output:
        directory(config["synthetic"]["out"]),
    params:
        per_class=config["synthetic"]["per_class"],
        n_unseen=config["synthetic"]["unseen_per_class"],
        n_pix3d_seen=config["synthetic"].get("pix3d_seen_per_class", 0),
        dense=config["synthetic"]["dense_points"],
        seed=config["synthetic"]["seed"],
        cats=category_args(),
    input:
        code=sources("mesc3d/data/primitives.py", "mesc3d/data/shapes.py", "mesc3d/data/shapes_seen.py",
                     "mesc3d/data/shapes_furniture.py", "mesc3d/data/shapes_unseen.py", "mesc3d/data/render.py",
                     "mesc3d/data/sampling.py", "mesc3d/data/synthetic.py", "mesc3d/cli/synth.py"),
    log:
        "logs/synth.log",
    benchmark:
        "benchmarks/synth/synth.tsv"
    threads: 2
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../../environment.yml"
    shell:
        "mesc3d synth --out {output} --per-class {params.per_class} --unseen-per-class {params.n_unseen}"
        " --pix3d-seen-per-class {params.n_pix3d_seen}"
        " --dense-points {params.dense} --seed {params.seed} {params.cats} --workers {threads} > {log} 2>&1"


rule download:
    output:
        "{root}/.complete-{name}.json",
    params:
        args=lambda wc: download_args(wc.name),
    log:
        "logs/download/{root}/{name}.log",
    localrule: True
    retries: 2
    conda:
        "../../environment.yml"
    shell:
        "mesc3d download {params.args} --name {wildcards.name} --out {wildcards.root} > {log} 2>&1"


rule resolve_base_config:
    output:
        "results/configs/_base.yaml",
    params:
        cfg=lambda wc: shlex.quote(json.dumps(run_config_dict("_base"), sort_keys=True)),
    log:
        "logs/resolve_config/_base.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "mesc3d resolve-config --json {params.cfg} --out {output} > {log} 2>&1"


rule resolve_config:
    output:
        "results/configs/{exp}.yaml",
    params:
        cfg=resolve_args,
    log:
        "logs/resolve_config/{exp}.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "mesc3d resolve-config --json {params.cfg} --out {output} > {log} 2>&1"


rule prepare:
    input:
        root=data_root_input(),
        cfg="results/configs/_base.yaml",
        code=sources("mesc3d/data/shapenet.py", "mesc3d/data/pix3d.py", "mesc3d/data/sampling.py",
                     "mesc3d/data/images.py", "mesc3d/cli/prepare.py"),
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
    threads: 2
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../../environment.yml"
    shell:
        "mesc3d prepare --config {input.cfg} --out results/data --workers {threads} > {log} 2>&1"


rule contact_sheet:
    input:
        root=data_root_input(),
        code=sources("mesc3d/cli/contact_sheet.py"),
    params:
        root=lambda wc: config["base"]["data"]["root"],
    output:
        report("results/figures/contact_sheet.png", caption="../report/contact_sheet.rst", category="Data"),
    log:
        "logs/contact_sheet.log",
    conda:
        "../../environment.yml"
    shell:
        "mesc3d contact-sheet --root {params.root} --out {output} > {log} 2>&1"
