"""MESC-3D network modules (one concept per file; see each module's docstring).

- ``point_mae``          Point-MAE encoder + official/ours checkpoint loader
- ``point_mae_pretrain`` masked-autoencoder objective for ``mesc3d pretrain-pointmae``
- ``image_encoder``      ResNet-18 / CLIP image tokens, plug-in registry
- ``mit``                interlaced image/point cross-attention fusion
- ``esm``, ``decoder``   selection maps, adaptive point norm, staged decoders
- ``mesc3d``             the assembled model ``MESC3D``
- ``layers``             shared transformer blocks
- ``text_towers``        frozen text towers: open_clip ViT-B-16 (paper) and all-MiniLM-L6-v2 (offline)
- ``text_prompt``        3DSPL prompt learner + deep prompt tuning (``PromptBank``)
- ``prompt_stage1``      stage-1 contrastive model and loss (``Stage1Model``)

Imports are lazy (``from mesc3d.models.mesc3d import MESC3D``) so importing the package is cheap.
"""
