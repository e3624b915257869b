"""Glue shared by train / evaluate / zeroshot / complexity: devices, model building, priors, batches.

Models never read files: this module (called from the CLIs) loads the Point-MAE weights and the
3DSPL priors and hands tensors to the model.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterator, Sequence

import torch
import torch.utils.data

from mesc3d.errors import ConfigError

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    """``cpu`` | ``cuda`` | ``auto``.  A Slurm job that was given GPUs (``SLURM_JOB_GPUS`` /
    ``SLURM_GPUS_ON_NODE``) but sees no CUDA device fails at once instead of running days on the CPU;
    ``MESC3D_ALLOW_CPU=1`` (test clusters that advertise GPUs on CPU nodes) allows it."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available")
    granted = os.environ.get("SLURM_JOB_GPUS") or os.environ.get("SLURM_GPUS_ON_NODE")
    if (name == "auto" and granted and granted != "0" and not torch.cuda.is_available()
            and os.environ.get("MESC3D_ALLOW_CPU") != "1"):
        raise ConfigError(f"this job was given GPU(s) {granted!r} but torch {torch.__version__} sees no CUDA "
                          "device (usually a driver / CUDA-build mismatch: check nvidia-smi and "
                          "torch.version.cuda); refusing to train on the CPU (MESC3D_ALLOW_CPU=1 overrides)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and every CUDA device), numpy's and Python's global RNGs with ``seed``."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    torch.use_deterministic_algorithms(False)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = False


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


class _SeededItems(torch.utils.data.Dataset):
    """``seeded_item`` over a fixed index list: what a DataLoader worker computes is a pure function
    of (seed, epoch, index), so 0, 2 or 8 workers give the same batches."""

    def __init__(self, dataset, indices: Sequence[int], seed: int, epoch: int):
        self.dataset, self.indices, self.seed, self.epoch = dataset, [int(i) for i in indices], seed, epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict[str, Any]:
        return seeded_item(self.dataset, self.indices[k], self.seed, self.epoch)


def loader_batches(dataset, indices: Sequence[int], batch_size: int, seed: int, epoch: int,
                   num_workers: int = 0, pin_memory: bool = False, prefetch_factor: int = 4):
    """Seeded batches of ``dataset`` over ``indices`` (in order), decoded by ``num_workers`` worker
    processes (0: in this process) with pinned memory for the host-to-GPU copy; the batches are
    identical for every worker count (the item randomness does not depend on who computes it)."""
    if num_workers <= 0:
        return iterate_batches(dataset, indices, batch_size, seed, epoch)
    items = _SeededItems(dataset, indices, seed, epoch)
    return iter(torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=False, collate_fn=collate,
                                            num_workers=num_workers, pin_memory=pin_memory,
                                            prefetch_factor=prefetch_factor, drop_last=False))
