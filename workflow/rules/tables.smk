# Tables: one job per table (so an edited run rebuilds only the tables it appears in), then the
# LaTeX index all.tex; the CSV is the source of truth, LaTeX/markdown are generated from it.


rule manifest:
    # results/manifests/{exp}.json: what the tables know of a run besides its result CSVs (label, kind,
    # loss, seed, uses_prior, class lists; mesc3d.sheet.Sheet.manifest).  Its content is the param, so
    # a label edit rewrites one manifest and rebuilds only the tables that run is in.
    output:
        "results/manifests/{exp}.json",
    log:
        "logs/manifest/{exp}.log",
    wildcard_constraints:
        exp=_names(list(RUN_KINDS)),
    localrule: True
    params:
        manifest=lambda wc: SHEET.manifest_json(wc.exp),
    run:
        from mesc3d.io import write_text

        write_text(output[0], params.manifest)


rule table:
    # one job per table (mesc3d/table_specs.py): its inputs are the result files and manifests of its
    # runs, its param the run list, so an edit reruns only the tables it reaches
    input:
        lambda wc: table_inputs(wc.table),
    output:
        csv=report(
            "results/tables/{table}.csv", category="Tables", subcategory="{table}"
        ),
        tex="results/tables/{table}.tex",
        md="results/tables/{table}.md",
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(TABLE_FILES.values()),
    localrule: True
    conda:
        "../../environment.yml"
    params:
        table=lambda wc: table_arg(TABLE_IDS[wc.table]),
        code=code("tables"),
    shell:
        "mesc3d tables --results results --out results/tables --table {params.table:q} > {log} 2>&1"


rule tables:
    input:
        [f"results/tables/{TABLE_FILES[t]}.tex" for t in selected_tables()],
    output:
        tex="results/tables/all.tex",
        long="results/tables/tables_long.csv",
    log:
        "logs/tables/all.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        tables=[table_arg(t) for t in selected_tables()],
        code=code("tables"),
    shell:
        "mesc3d tables --results results --out results/tables --index-only --table {params.tables:q} > {log} 2>&1"


rule compute_cost:
    input:
        "results/tables/all.tex",
    output:
        csv=report("results/tables/compute_cost.csv", category="Tables"),
        md="results/tables/compute_cost.md",
    log:
        "logs/compute_cost.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        code=code("compute-cost"),
    shell:
        "mesc3d compute-cost --benchmarks benchmarks --out results/tables/compute_cost > {log} 2>&1"


rule curves_table:
    # results/figures/curves_{table}.png: validation CD per epoch of every trained run of one table
    # (mean and band over its seeds), from each run's results/train/{exp}/metrics.csv
    input:
        lambda wc: curve_inputs(wc.table),
    output:
        report("results/figures/curves_{table}.png", category="Training curves"),
    log:
        "logs/curves/{table}.log",
    wildcard_constraints:
        table="|".join(TABLE_FILES.values()),
    localrule: True
    params:
        runs=lambda wc: SHEET.curve_runs(TABLE_IDS[wc.table]),
        code=codedeps.fingerprint("mesc3d.viz", root=REPO),
    run:
        from mesc3d.viz import save_figure, training_curves

        save_figure(
            training_curves(params.runs, "results", title=wildcards.table),
            output[0],
        )


rule curves:
    # the training curves of every table `all` builds that has trained runs
    input:
        [
            f"results/figures/curves_{TABLE_FILES[t]}.png"
            for t in selected_tables()
            if SHEET.curve_files(t)
        ],


rule claims:
    # every claim of the paper with its effect, 95% interval and verdict (mesc3d.table_specs.CLAIMS),
    # each arm trained with `table_seeds.claims` seeds (default 3); not part of `all`
    input:
        "results/tables/claims.csv",
        "results/figures/curves_claims.png",
