"""Process-group set-up for torchrun (gloo on CPU, nccl on GPU) and the few collectives the loops use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seal.core.config import TrainConfig


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    engine: str = "spconv"        # the sparse engine this process runs

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Read torchrun's environment; start the process group when there is more than one process."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dev = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def mean_over_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of a scalar over all processes (itself when single-process)."""
    if not info.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world


def shutdown(info: DistInfo, wait: bool = False) -> None:
    """Leave the process group. With ``wait`` (a run that ended normally on every rank) the ranks leave together:
    rank 0 writes the run's outputs after the last collective, and a rank tearing down gloo while its peer is
    still connected can abort at exit ("terminate called without an active exception", seen once in ~20
    two-process test runs). Never after an error: the other ranks may be blocked elsewhere, and a barrier would
    turn their failure into a hang."""
    if info.enabled and dist.is_initialized():
        try:
            if wait:
                dist.barrier()
        finally:
            dist.destroy_process_group()


@contextlib.contextmanager
def distributed_run(train: TrainConfig, engine: str = "auto") -> Iterator[DistInfo]:
    """Process group, device, sparse engine and determinism settings for one run; undone when it ends."""
    from seal.models.sparse import select_engine

    info = init_distributed(train.device)
    info.engine = select_engine(engine, info.device)
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    if train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if info.device.type == "cpu":
            torch.set_num_threads(1)  # spconv's CPU scatter sums in thread order: bitwise repeatable on one thread
    ended = False
    try:
        yield info
        ended = True
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        shutdown(info, wait=ended)
