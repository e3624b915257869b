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
from mesc3d.errors import BadInputError, ConfigError, quote
from mesc3d.safe_load import nonfinite_tensors

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
    """``model.pt`` written by ``mesc3d train`` -> (model in eval mode, its ExperimentCfg, meta).

    One line (``BadInputError``) for a file that is not a model, a config this code cannot build
    (older code, an edited config), weights that do not fit the model, or non-finite weights."""
    state = load_checkpoint(path, map_location="cpu")
    if not isinstance(state, dict):
        raise BadInputError(path, f"not a trained model file: a {type(state).__name__}, not a dict")
    for key in ("model", "config"):
        if key not in state:
            raise BadInputError(path, f"not a trained model file: missing {key!r}")
    if not isinstance(state["model"], dict) or not isinstance(state["config"], dict):
        raise BadInputError(path, "not a trained model file: 'model' and 'config' must be dicts")
    bad = nonfinite_tensors(state["model"])
    if bad:
        raise BadInputError(path, f"the model has non-finite (NaN/Inf) weights in {len(bad)} tensor(s), e.g. "
                            f"{quote(bad[0], 80)}; the run diverged: retrain it")
    try:
        cfg = from_dict(state["config"], source=str(path))
    except ConfigError as err:
        raise BadInputError(path, f"its config cannot be built by this code ({quote(str(err), 300)}); "
                            "the model is from older code or an edited config: retrain it") from None
    prior_in_dim = state.get("prior_in_dim")
    try:
        model = build_model(cfg, int(prior_in_dim) if prior_in_dim else None)
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
    except (RuntimeError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()
        raise BadInputError(path, f"weights do not fit the model its config describes "
                            f"({quote(' '.join(first[:3]), 300)}); retrain it") from None
    if missing or unexpected:
        raise BadInputError(path, f"weights do not match the model: missing {quote(missing[:5])}, "
                            f"unexpected {quote(unexpected[:5])}; the model is from older code: retrain it")
    model.to(device).eval()
    return model, cfg, state


def prompts_digest(path: str | Path) -> str:
    """SHA-256 of a ``prompts.pt`` file: ``model.pt`` records the one it was trained with."""
    from mesc3d.io import sha256_file

    return sha256_file(path)


def check_prompts(meta: dict, prompts_path: str | Path | None, model_path: str | Path) -> None:
    """Refuse a ``prompts.pt`` other than the one the model was trained with (one line)."""
    want = meta.get("prompts_sha256")
    if not prompts_path or not want:  # a model without the prior, or one trained before the hash was kept
        return
    got = prompts_digest(prompts_path)
    if got != want:
        raise BadInputError(prompts_path, f"not the prompts file {model_path} was trained with (SHA-256 "
                            f"{got[:12]}..., the model records {str(want)[:12]}...); pass that run's prompts.pt")
