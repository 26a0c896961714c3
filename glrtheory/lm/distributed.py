"""One process or ``torchrun --nproc_per_node=N``: the process group, the device, and reductions.

Under torchrun (``WORLD_SIZE`` set) the processes join a ``torch.distributed`` group, NCCL on CUDA and
gloo on the CPU; each process drives ``cuda:LOCAL_RANK`` (or the CPU). Alone, nothing is initialized and
the reductions are identities.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from glrtheory.checks import check_device
from glrtheory.errors import GLRError


@dataclass(frozen=True)
class Dist:
    """This process' place: ``rank`` of ``world`` processes, on ``device``."""

    rank: int
    world: int
    device: torch.device

    def __post_init__(self):
        if not 0 <= self.rank < self.world:
            raise GLRError(f"rank {self.rank} of {self.world} processes: a rank must be in 0 .. world - 1 "
                           "(RANK and WORLD_SIZE, as torchrun sets them)")

    @property
    def main(self) -> bool:
        return self.rank == 0


@contextlib.contextmanager
def distributed(kind: str = "auto"):
    """Yield the ``Dist`` of this process (joining the torchrun group if there is one); leave the group
    at the end.

    Raises
    ------
    GLRError
        If torchrun starts more processes on a node than it has CUDA devices (or CPU cores, on the CPU).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = check_device(kind)
    if world == 1:
        yield Dist(0, 1, device)
        return
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if device.type == "cuda":
        have = torch.cuda.device_count()
        if local_world > have:
            raise GLRError(f"{local_world} processes per node but only {have} CUDA device(s); "
                           f"use --nproc_per_node <= {have}")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif local_world > (os.cpu_count() or 1):
        raise GLRError(f"{local_world} processes per node but only {os.cpu_count()} CPU core(s)")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                            **({"device_id": device} if device.type == "cuda" else {}))
    try:
        yield Dist(rank, world, device)
        dist.barrier()        # on a normal exit every rank finishes its collectives before the group goes away
    finally:
        dist.destroy_process_group()


def all_sum(x: torch.Tensor, d: Dist) -> torch.Tensor:
    """The sum of ``x`` over the processes (``x`` itself when alone)."""
    if d.world > 1:
        x = x.clone()
        dist.all_reduce(x)
    return x


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def broadcast_error(message: str | None, d: Dist) -> None:
    """Raise ``GLRError(message)`` on every process if any process has a message (else do nothing)."""
    if d.world == 1:
        if message:
            raise GLRError(message)
        return
    messages = [None] * d.world
    dist.all_gather_object(messages, message)
    first = next((m for m in messages if m), None)
    if first:
        raise GLRError(first)
