"""Read the stage-1 output ``prompts.pt`` and turn it into per-class prior tables for stage 2.

File contract (written by ``mesc3d pretrain-prompt``; plain tensors/str/dict, ``weights_only=True``):
    {"prompt_state": {name: tensor}, "config": dict, "class_names": [seen..., unseen...],
     "priors": float32 (C, D), "prior_dim": D}

Models never read files: the training / evaluation CLIs call ``load_priors`` / ``prior_table`` here
and hand the (n_classes, D) tensor to the model, which looks rows up by class id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from mesc3d.errors import BadInputError
from mesc3d.safe_load import load_torch

REQUIRED = ("prompt_state", "config", "class_names", "priors", "prior_dim")


def read_prompts_file(path: str | Path) -> dict:
    """The whole ``prompts.pt`` dict, validated; unreadable / inconsistent -> ``BadInputError``."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "prompts file does not exist (run `mesc3d pretrain-prompt`)")
    obj = load_torch(path, "prompts file")
    if not isinstance(obj, dict):
        raise BadInputError(path, f"expected a dict, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise BadInputError(path, f"prompts file lacks keys {missing}")
    priors, names = obj["priors"], list(obj["class_names"])
    if not isinstance(priors, torch.Tensor) or priors.ndim != 2 or priors.shape[0] != len(names):
        shape = tuple(priors.shape) if isinstance(priors, torch.Tensor) else type(priors).__name__
        raise BadInputError(path, f"priors must be (len(class_names)={len(names)}, D), got {shape}")
    if int(obj["prior_dim"]) != priors.shape[1]:
        raise BadInputError(path, f"prior_dim {obj['prior_dim']} != priors width {priors.shape[1]}")
    if not torch.isfinite(priors).all():
        raise BadInputError(path, "priors contain NaN or Inf")
    return obj


def load_priors(path: str | Path) -> tuple[list[str], torch.Tensor]:
    """``prompts.pt`` -> (class_names, priors float32 (C, D)) for every class name it encoded."""
    obj = read_prompts_file(path)
    return list(obj["class_names"]), obj["priors"].float()


def prior_table(path: str | Path, categories: Sequence[str]) -> torch.Tensor:
    """Priors re-ordered to ``categories`` (e.g. cfg.data.categories, or the unseen classes) -> (n, D).

    Row i is the prior of ``categories[i]``, so a dataset's ``class_id`` indexes it directly.
    """
    names, priors = load_priors(path)
    index = {n: i for i, n in enumerate(names)}
    missing = [c for c in categories if c not in index]
    if missing:
        raise BadInputError(path, f"no prior for classes {missing}; the file has {names}")
    return priors[[index[c] for c in categories]].clone()  # (n, D)
