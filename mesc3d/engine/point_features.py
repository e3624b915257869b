"""The frozen point encoder of stage 1: build it from a Point-MAE checkpoint and encode GT clouds.

``build_encoder(cfg, ckpt) -> (encoder, name, checkpoint sha256)`` and
``encode_points(encoder, points (S, G, 3), batch_size) -> (S, F)`` are used by
``mesc3d cache-features`` and ``bench/stage1.py``.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("mesc3d.cache_features")


def build_encoder(cfg, ckpt: str | None):
    """Frozen Point-MAE encoder in eval mode + (name, checkpoint sha256)."""
    import torch

    from mesc3d.io import sha256_file
    from mesc3d.models.point_mae import PointMAEEncoder, load_pointmae_checkpoint

    torch.manual_seed(cfg.seed)
    encoder = PointMAEEncoder(cfg.model.point_mae)
    path = ckpt if ckpt is not None else cfg.model.point_mae.checkpoint
    digest = ""
    if path:
        load_pointmae_checkpoint(encoder, path)
        digest = sha256_file(path)
    else:
        log.warning("no Point-MAE checkpoint given: features come from a random-init encoder (seed %d)", cfg.seed)
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder, "pointmae", digest


def encode_points(encoder, points: np.ndarray, batch_size: int, desc: str = "encode") -> np.ndarray:
    """(S, G, 3) float32 -> (S, F) float32 features, batched, no grad, with a progress bar."""
    import torch
    from tqdm import tqdm

    out = np.zeros((len(points), encoder.out_dim), dtype=np.float32)
    with torch.no_grad():
        for s in tqdm(range(0, len(points), batch_size), desc=desc, disable=None, unit="batch"):
            chunk = torch.from_numpy(np.ascontiguousarray(points[s: s + batch_size], dtype=np.float32))
            out[s: s + len(chunk)] = encoder(chunk).numpy()  # (b, F)
    return out
