"""Pretraining on several datasets at once: the frame pairs of each, drawn per epoch by sampling weights.

An epoch has as many samples as all datasets have frame pairs together (N). Dataset d fills n_d of them, n_d
proportional to its weight (largest-remainder rounding, so the n_d sum to N); with the default weights (each
dataset's own pair count) every pair is drawn exactly once, as a concatenation would. A dataset drawn more often
than it has pairs cycles through a fresh permutation of its pairs, and each repeat draws new augmentations, so no
two samples of an epoch are identical. Everything is a pure function of (seed, epoch): resumes and any number of
processes see the same draws. Each dataset keeps its own caches and sensors; batches mix them freely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seal.core.batch import PairSample
from seal.core.errors import ConfigError
from seal.samples.pairs import PairSamples


@dataclass(frozen=True)
class MixPart:
    """One dataset of a mixture: its name for summaries, its samples and its sampling weight."""

    name: str
    samples: PairSamples
    weight: float


def draws_per_epoch(sizes: list[int], weights: list[float]) -> list[int]:
    """Samples of each dataset in an epoch of sum(sizes): proportional to ``weights``, largest remainder first
    (ties to the earlier dataset), every dataset with a positive weight at least once."""
    total = sum(sizes)
    share = np.asarray(weights, dtype=np.float64) / float(sum(weights)) * total
    counts = np.floor(share).astype(np.int64)
    for d in np.argsort(-(share - counts), kind="stable")[: total - int(counts.sum())]:
        counts[d] += 1
    for d in np.flatnonzero((counts == 0) & (np.asarray(weights) > 0)):  # a tiny weight still draws once
        counts[d], counts[int(np.argmax(counts))] = 1, counts[int(np.argmax(counts))] - 1
    return counts.tolist()


class MixedPairSamples(torch.utils.data.Dataset):
    """The frame pairs of several datasets as one indexable sample set (keys ``(epoch, index)`` as `PairSamples`).

    ``weights`` are relative sampling weights, one per dataset (None: each dataset's pair count, i.e. every pair
    once per epoch). ``slots(epoch)`` says which dataset, pair and repeat each of the epoch's N indices draws.
    """

    def __init__(self, parts: list[tuple[str, PairSamples]], weights: list[float] | None, seed: int) -> None:
        sizes = [len(samples) for _, samples in parts]
        if weights is None:
            weights = [float(n) for n in sizes]
        if len(weights) != len(parts):
            raise ConfigError(f"data.mix_weights has {len(weights)} value(s) for {len(parts)} dataset(s) "
                              "(data.path, then data.mix): give one weight per dataset, or [] for pair counts")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"data.mix_weights={list(weights)}: weights must be >= 0 and not all 0")
        self.parts = [MixPart(name, samples, float(w)) for (name, samples), w in zip(parts, weights, strict=True)]
        self.seed = seed
        self.counts = draws_per_epoch(sizes, list(weights))
        self.epoch = 0
        self._slots: dict[int, np.ndarray] = {}
        self.items = [(d, item) for d, part in enumerate(self.parts) for item in part.samples.items]
        self.skipped_empty = sum(part.samples.skipped_empty for part in self.parts)

    @property
    def dataset(self):
        """The first dataset (what single-dataset code paths print)."""
        return self.parts[0].samples.dataset

    def __len__(self) -> int:
        return sum(self.counts)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for part in self.parts:
            part.samples.set_epoch(epoch)

    def slots(self, epoch: int) -> np.ndarray:
        """[N, 3] int64: (dataset, pair index in it, repeat) of each index of ``epoch``."""
        if epoch not in self._slots:
            if len(self._slots) > 2:  # workers live across epochs: keep only the recent tables
                self._slots.pop(min(self._slots))
            self._slots[epoch] = self._draw(epoch)
        return self._slots[epoch]

    def _draw(self, epoch: int) -> np.ndarray:
        rows = []
        for d, (part, count) in enumerate(zip(self.parts, self.counts, strict=True)):
            size = len(part.samples)
            repeats = -(-count // size) if count else 0
            rng = np.random.default_rng([self.seed, epoch, 23, d])
            order = np.concatenate([rng.permutation(size) for _ in range(repeats)] or [np.zeros(0, np.int64)])
            k = np.arange(count)
            rows.append(np.column_stack([np.full(count, d), order[:count], k // size if size else k]))
        return np.concatenate(rows).astype(np.int64)

    def __getitem__(self, key: int | tuple[int, int]) -> PairSample:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        d, pair, repeat = (int(v) for v in self.slots(epoch)[index])
        return self.parts[d].samples[(epoch, pair, repeat)]

    def drawn(self, epoch: int, indices: np.ndarray) -> list[int]:
        """How many of ``indices`` (of ``epoch``) each dataset supplied."""
        datasets = self.slots(epoch)[np.asarray(indices, dtype=np.int64), 0]
        return np.bincount(datasets, minlength=len(self.parts)).tolist()


__all__ = ["MixedPairSamples", "MixPart", "draws_per_epoch"]
