"""Data loaders for the training loop: one loader per run, workers kept across epochs, pinned host memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from seal.core.errors import SealError


@dataclass
class _Failure:
    """A `SealError` raised while a worker built a sample, carried to the main process as data."""

    message: str


class _Guarded(torch.utils.data.Dataset):
    """The dataset, with its deliberate errors returned instead of raised: a worker process would wrap them in a
    multi-line RuntimeError, and the user should read the same one line as with ``num_workers=0``."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.dataset[key]
        except SealError as err:
            return _Failure(str(err))


class _GuardedCollate:
    def __init__(self, collate: Callable) -> None:
        self.collate = collate

    def __call__(self, samples: list[Any]) -> Any:
        failed = next((s for s in samples if isinstance(s, _Failure)), None)
        if failed is not None:
            return failed
        try:
            return self.collate(samples)
        except SealError as err:  # collation checks the samples' indices: a bad cache file, as one line too
            return _Failure(str(err))


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
    batches each, and on CUDA hand over page-locked batches so host-to-device copies do not block. A `SealError`
    raised in a worker reaches the caller as the same one-line error it gives without workers.
    """
    sampler = _Batches()
    options: dict[str, Any] = {"batch_sampler": sampler, "collate_fn": _GuardedCollate(collate),
                               "num_workers": num_workers, "pin_memory": device.type == "cuda"}
    if num_workers > 0:
        options.update(persistent_workers=True, prefetch_factor=2)
    loader = torch.utils.data.DataLoader(_Guarded(dataset), **options)

    def load(batches: Iterable[list[Any]]) -> Iterator[Any]:
        sampler.batches = list(batches)
        for batch in loader:
            if isinstance(batch, _Failure):
                raise SealError(batch.message)
            yield batch

    return load
