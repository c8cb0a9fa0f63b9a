"""Data loaders for the training loop: one loader per run, workers kept across epochs, pinned host memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch


class _Batches(torch.utils.data.Sampler):
    """A batch sampler whose batches are replaced before each pass (keys are ``(epoch, index)``)."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make_loader(dataset: torch.utils.data.Dataset, collate: Callable, num_workers: int, device: torch.device
                ) -> Callable[[Iterable[list[Any]]], Iterable[Any]]:
    """A function that loads the given batches of sample keys, in order, with ``num_workers`` processes.

    The workers persist across epochs (the keys carry the epoch, so no worker state goes stale), prefetch two
    batches each, and on CUDA hand over page-locked batches so host-to-device copies do not block.
    """
    sampler = _Batches()
    options: dict[str, Any] = {"batch_sampler": sampler, "collate_fn": collate, "num_workers": num_workers,
                               "pin_memory": device.type == "cuda"}
    if num_workers > 0:
        options.update(persistent_workers=True, prefetch_factor=2)
    loader = torch.utils.data.DataLoader(dataset, **options)

    def load(batches: Iterable[list[Any]]) -> Iterable[Any]:
        sampler.batches = list(batches)
        return loader

    return load
