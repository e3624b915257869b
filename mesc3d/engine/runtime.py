"""Glue shared by train / evaluate / zeroshot / complexity: devices, model building, priors, batches.

Models never read files: this module (called from the CLIs) loads the Point-MAE weights and the
3DSPL priors and hands tensors to the model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from mesc3d.config import ExperimentCfg, from_dict
from mesc3d.engine.checkpoint import load_checkpoint
from mesc3d.errors import BadInputError, ConfigError

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(False)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = False


# ------------------------------------------------------------------ priors (3DSPL)
def load_priors(path: str | Path | None) -> tuple[list[str], torch.Tensor | None]:
    """``prompts.pt`` -> (class names, priors (C, D) float32); (``[]``, None) without a file."""
    if not path:
        return [], None
    state = load_checkpoint(path)
    for key in ("class_names", "priors"):
        if key not in state:
            raise BadInputError(path, f"not a prompts file: missing {key!r} (has {sorted(state)})")
    priors = state["priors"].float()
    names = list(state["class_names"])
    if priors.ndim != 2 or priors.shape[0] != len(names):
        raise BadInputError(path, f"priors must be (len(class_names), D), got {tuple(priors.shape)}")
    if not torch.isfinite(priors).all():
        raise BadInputError(path, "priors contain NaN or Inf")
    return names, priors


def prior_table(names: Sequence[str], priors: torch.Tensor | None, categories: Sequence[str],
                source: str = "prompts") -> torch.Tensor | None:
    """Rows of ``priors`` for ``categories`` (in that order), (len(categories), D)."""
    if priors is None:
        return None
    missing = [c for c in categories if c not in names]
    if missing:
        raise ConfigError(f"{source}: no prior for categories {missing} (has {list(names)})")
    return priors[[names.index(c) for c in categories]]


# ------------------------------------------------------------------ model
def build_model(cfg: ExperimentCfg, prior_in_dim: int | None, encoder_state: dict | None = None):
    """The reconstruction model with (optionally) Point-MAE weights loaded before the sphere tokens
    are cached.  ``prior_in_dim`` is the width of the raw 3DSPL vectors (None: no prior)."""
    from mesc3d.models.mesc3d import MESC3D

    kwargs: dict[str, Any] = {}
    if prior_in_dim is not None:
        kwargs["prior_in_dim"] = int(prior_in_dim)
    if encoder_state is not None:
        kwargs["encoder_state"] = encoder_state
    return MESC3D(cfg, **kwargs)


def load_encoder_state(path: str | Path | None) -> dict | None:
    """Point-MAE encoder weights (official ``base_model`` layout or ours) as a state dict."""
    if not path:
        return None
    from mesc3d.models.point_mae import checkpoint_state_dict

    return checkpoint_state_dict(path)


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
    missing = [k for k in missing if "template" not in k]
    if missing or unexpected:
        raise BadInputError(path, f"weights do not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.to(device).eval()
    return model, cfg, state


# ------------------------------------------------------------------ batches
def seeded_item(dataset, index: int, seed: int, epoch: int) -> dict[str, Any]:
    """``dataset[index]`` with its augmentation randomness a pure function of (seed, epoch, index).

    The global RNG is forked, so the item does not depend on how many items were drawn before it,
    on the number of DataLoader workers, or on where a resumed run restarted.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed((seed * 1_000_003 + epoch * 10_007 + index) % (2**63 - 1))
        return dataset[index]


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (int, float)):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of one epoch, a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return torch.randperm(n, generator=g)


def iterate_batches(dataset, indices: Sequence[int], batch_size: int, seed: int | None = None,
                    epoch: int = 0) -> Iterator[dict[str, Any]]:
    """Batches of ``dataset`` over ``indices`` (in order); seeded items when ``seed`` is given."""
    for start in range(0, len(indices), batch_size):
        chunk = [int(i) for i in indices[start:start + batch_size]]
        if seed is None:
            yield collate([dataset[i] for i in chunk])
        else:
            yield collate([seeded_item(dataset, i, seed, epoch) for i in chunk])
