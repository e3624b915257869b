"""Multi-GPU (or multi-process CPU) data parallelism, launched by ``torchrun``.

``torchrun --nproc_per_node=G -m mesc3d train ...`` sets RANK / WORLD_SIZE / LOCAL_RANK; ``setup``
then initialises the process group (NCCL on CUDA, gloo on CPU — the CPU path is what the tests run),
pins each rank to ``cuda:LOCAL_RANK``, and the trainer wraps the model in DistributedDataParallel.
Without those variables everything runs in one process and these helpers are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_kind: str) -> DistInfo:
    """Initialise torch.distributed from torchrun's environment variables (if present)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    if device_kind == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(info: DistInfo, obj):
    """List of ``obj`` from every rank (``[obj]`` without distribution)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_flag(info: DistInfo, flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank if any rank says True (used to stop all ranks together on SIGTERM)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
