"""Several processes under ``torchrun``: who this process is, the process group, and the few collectives needed.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is a single process and nothing is initialised.
CUDA runs use NCCL with one GPU per process (LOCAL_RANK); CPU runs use gloo. Rank 0 alone logs, validates and
writes checkpoints; every rank trains on its own share of each epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List

import torch
import torch.distributed as dist

from CoopSegLib.devices import canonical_device_name


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls) -> "ProcessGroup":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))

    def device(self, requested: str) -> str:
        """The device of this process: under torchrun, CUDA means the GPU numbered LOCAL_RANK."""
        if self.distributed and canonical_device_name(requested) in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def start(self, device: torch.device) -> None:
        if self.distributed and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def stop(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every process when ``flag`` is true on at least one (e.g. a stop request)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, values: List[float], device: torch.device) -> List[float]:
        """Element-wise mean of ``values`` over processes (loss logging)."""
        if not self.distributed or not values:
            return values
        tensor = torch.tensor(values, dtype=torch.float64 if device.type == "cpu" else torch.float32, device=device)
        dist.all_reduce(tensor)
        return (tensor / self.world_size).tolist()

    def gather(self, value: Any) -> List[Any]:
        """``value`` from every process, in rank order (every process gets the list)."""
        if not self.distributed:
            return [value]
        gathered: List[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]
