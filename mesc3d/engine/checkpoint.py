"""Resume checkpoints: everything needed to continue a run bit-for-bit, written atomically.

A resume checkpoint (``<run>/ckpt/last.pt``, never a declared Snakemake output) holds the model,
optimiser, LR-schedule, AMP grad-scaler, the torch RNG states of every rank (CPU and CUDA), the
position in training (epoch, step within the epoch, global step), the best validation metric with
its weights, the metrics rows so far and the hash of the resolved config.  Loading uses
``torch.load(weights_only=True)``: only tensors and plain containers, never pickled objects.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from mesc3d.io import atomic_path
from mesc3d.safe_load import load_torch

log = logging.getLogger(__name__)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temp file + rename: a kill mid-write never corrupts ``path``."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` (or any tensors-only file).

    Raises ``BadInputError`` naming the file when it is truncated, corrupt, or contains pickled
    objects that ``weights_only=True`` refuses.
    """
    return load_torch(path, "checkpoint", map_location=map_location)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
