"""Building the reconstruction model and loading a trained ``model.pt``.

Kept apart from ``engine.runtime`` (devices, seeds, batches) so that the stages that never build the
reconstruction model (Point-MAE pretraining, stage 1, baselines) do not import it: their code
fingerprint (``mesc3d.codedeps``) then does not change when the model's code does.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from mesc3d.config import ExperimentCfg, from_dict
from mesc3d.engine.checkpoint import load_checkpoint
from mesc3d.errors import BadInputError

log = logging.getLogger(__name__)


def build_model(cfg: ExperimentCfg, prior_in_dim: int | None, encoder_ckpt: str | Path | None = None):
    """The reconstruction model; Point-MAE weights (official layout or ours) are loaded before the
    sphere-template tokens are cached.  ``prior_in_dim`` is the width of the raw 3DSPL vectors."""
    from mesc3d.models.mesc3d import MESC3D

    model = MESC3D(cfg, prior_in_dim=int(prior_in_dim or 512))
    path = encoder_ckpt or cfg.model.point_mae.checkpoint
    if path:
        report = model.load_point_encoder(path)
        log.info("Point-MAE weights from %s: %s", path, report)
    return model


def load_trained(path: str | Path, device: torch.device | str = "cpu"):
    """``model.pt`` written by ``mesc3d train`` -> (model in eval mode, its ExperimentCfg, meta)."""
    state = load_checkpoint(path, map_location="cpu")
    for key in ("model", "config"):
        if key not in state:
            raise BadInputError(path, f"not a trained model file: missing {key!r}")
    cfg = from_dict(state["config"], source=str(path))
    prior_in_dim = state.get("prior_in_dim")
    model = build_model(cfg, int(prior_in_dim) if prior_in_dim else None)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise BadInputError(path, f"weights do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.to(device).eval()
    return model, cfg, state
