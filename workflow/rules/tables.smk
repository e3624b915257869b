# Tables (CSV is the source of truth; LaTeX/markdown generated from it) and the compute-cost table.


rule tables:
    input:
        table_inputs(),
        sheet=config["experiments"],
        code=sources("mesc3d/tables.py", "mesc3d/table_render.py", "mesc3d/paper_numbers.py", "mesc3d/cli/tables.py"),
    output:
        table1=report("results/tables/table1_shapenet.csv", category="Tables"),
        table3=report("results/tables/table3_ablation.csv", category="Tables"),
        zeroshot=report("results/tables/zeroshot.csv", category="Tables"),
        complexity=report("results/tables/complexity.csv", category="Tables"),
        tex="results/tables/all.tex",
    log:
        "logs/tables.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "mesc3d tables --sheet {input.sheet} --results results --out results/tables > {log} 2>&1"


rule compute_cost:
    input:
        "results/tables/all.tex",
        code=sources("mesc3d/cli/compute_cost.py"),
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
