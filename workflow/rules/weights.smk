import re

# Pretrained weights (config `weights`): Point-MAE modelnet_1k.pth / pretrain.pth and OpenAI's CLIP
# ViT-B/16 JIT archive, each a checksummed download.  A local rule: it runs on the submitting host
# (where the network is); every compute job loads the file as a declared input, with the hubs off.


rule download_weights:
    output:
        "{wpath}",
    wildcard_constraints:
        wpath="|".join(re.escape(p) for p in WEIGHTS_BY_PATH) or "NO_WEIGHTS_CONFIGURED",
    params:
        args=lambda wc: weights_args(config, wc.wpath),
    log:
        "logs/download_weights/{wpath}.log",
    localrule: True
    retries: 2
    conda:
        "../../environment.yml"
    shell:
        "mesc3d download {params.args} > {log} 2>&1"
