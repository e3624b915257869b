# Tables: one job per table (so an edited run rebuilds only the tables it appears in), then the
# LaTeX index all.tex; the CSV is the source of truth, LaTeX/markdown are generated from it.


rule table:
    input:
        lambda wc: table_inputs(TABLE_IDS[wc.table]),
        # the sheet's rows of this table are a param (below), so editing another row does not
        # rebuild this table; the file itself only needs to exist
        sheet=ancient(config["experiments"]),
    output:
        csv=report("results/tables/{table}.csv", category="Tables", subcategory="{table}"),
        tex="results/tables/{table}.tex",
        md="results/tables/{table}.md",
    params:
        rows=lambda wc: table_rows(TABLE_IDS[wc.table]),
        # the zero-shot run only matters to the zeroshot table (an edit to it rebuilds no other table)
        zeroshot=lambda wc: config["zeroshot"]["with_prior"] if TABLE_IDS[wc.table] == "zeroshot" else "",
        code=code("tables"),
        base_loss=run_config("_base").train.loss,
    wildcard_constraints:
        table="|".join(TABLE_FILES.values()),
    log:
        "logs/tables/{table}.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "mesc3d tables --sheet {input.sheet} --results results --out results/tables --only {wildcards.table}"
        " --base-loss '{params.base_loss}' --zeroshot-run '{params.zeroshot}'"
        " > {log} 2>&1"


rule tables:
    input:
        [f"results/tables/{TABLE_FILES[t]}.tex" for t in selected_tables()],
        sheet=ancient(config["experiments"]),
    params:
        code=code("tables"),
        base_loss=run_config("_base").train.loss,
        zeroshot=config["zeroshot"]["with_prior"],
    output:
        tex="results/tables/all.tex",
        long="results/tables/tables_long.csv",
    log:
        "logs/tables/all.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "mesc3d tables --sheet {input.sheet} --results results --out results/tables --index-only"
        " --base-loss '{params.base_loss}' --zeroshot-run '{params.zeroshot}' > {log} 2>&1"


rule compute_cost:
    input:
        "results/tables/all.tex",
    params:
        code=code("compute-cost"),
    output:
        csv=report("results/tables/compute_cost.csv", category="Tables"),
        md="results/tables/compute_cost.md",
    log:
        "logs/compute_cost.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "mesc3d compute-cost --benchmarks benchmarks --out results/tables/compute_cost > {log} 2>&1"
