# Data: procedural benchmark or downloaded archives -> prepared split files -> contact sheet.


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


rule synth:
    output:
        directory(config["synthetic"]["out"]),
    params:
        per_class=config["synthetic"]["per_class"],
        n_unseen=config["synthetic"]["unseen_per_class"],
        dense=config["synthetic"]["dense_points"],
        seed=config["synthetic"]["seed"],
        cats=category_args(),
    input:
        code=sources("mesc3d/data", "mesc3d/cli/synth.py"),
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
        code=sources("mesc3d/data", "mesc3d/cli/prepare.py"),
    output:
        train="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
        zeroshot="results/data/zeroshot.npz",
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
    output:
        report("results/figures/contact_sheet.png", caption="../report/contact_sheet.rst", category="Data"),
    log:
        "logs/contact_sheet.log",
    conda:
        "../../environment.yml"
    shell:
        "mesc3d contact-sheet --root {config[base][data][root]} --out {output} > {log} 2>&1"
