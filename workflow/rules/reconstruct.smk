# In-the-wild reconstruction on the Pix3D-style photos of the unseen classes (mesc3d reconstruct,
# grounding box -> GrabCut mask, text = the class name) with the zero-shot model: a contact sheet of
# photo / mask / crop / cloud and the mask IoU against the photos' true masks.  The grounding head
# (where is the text's class in a photo) is trained first, on procedural renders composited over
# scikit-image's tune photos; it depends only on its own code (mesc3d.engine.grounding_train and what
# that imports), not on the config or the reconstruction model.
RECON_EXP = config["zeroshot"]["with_prior"]


rule grounding_head:
    output:
        "results/grounding/head.pt",
    log:
        "logs/grounding_head.log",
    benchmark:
        "benchmarks/reconstruct/grounding_head.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        runtime=30,
        mem_mb=6000,
    params:
        code=codedeps.fingerprint("mesc3d.engine.grounding_train", root=REPO),
    shell:
        "OMP_NUM_THREADS=1 mesc3d reconstruct --train-grounding-head {output} > {log} 2>&1"


rule reconstruct_unseen:
    input:
        root=data_root_input(),
        model=f"results/train/{RECON_EXP}/model.pt",
        prompts=prompts_for(RECON_EXP),
        head="results/grounding/head.pt",
    output:
        csv=report("results/tables/reconstruct_masks.csv", category="Reconstruction"),
        md="results/tables/reconstruct_masks.md",
        sheet=report(
            "results/figures/reconstruct_unseen.png", category="Reconstruction"
        ),
    log:
        "logs/reconstruct_unseen.log",
    benchmark:
        "benchmarks/reconstruct/unseen.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        runtime=30,
        mem_mb=6000,
    params:
        root=lambda wc: config["base"]["data"]["root"],
        cats=" ".join(
            config["base"]["data"].get("unseen_categories")
            or ["bed", "bookcase", "desk", "tool"]
        ),
        prompts=prompts_arg,
        code=code("reconstruct"),
    shell:
        "mesc3d reconstruct --pix3d-root {params.root} --categories {params.cats} --model {input.model}"
        " {params.prompts} --grounding-head {input.head} --table results/tables/reconstruct_masks"
        " --sheet {output.sheet} > {log} 2>&1"
