import re

# Pretrained weights (config `weights`): Point-MAE modelnet_1k.pth / pretrain.pth and OpenAI's CLIP
# ViT-B/16 JIT archive, each a checksummed download.  A local rule: it runs on the submitting host
# (where the network is); every compute job loads the file as a declared input, with the hubs off.


rule download_weights:
    output:
        "{wpath}",
    log:
        "logs/download_weights/{wpath}.log",
    wildcard_constraints:
        wpath="|".join(re.escape(p) for p in WEIGHTS_BY_PATH) or "NO_WEIGHTS_CONFIGURED",
    retries: 2
    localrule: True
    conda:
        "../../environment.yml"
    params:
        args=lambda wc: weights_args(config, wc.wpath),
    shell:
        "mesc3d download {params.args} > {log} 2>&1"
