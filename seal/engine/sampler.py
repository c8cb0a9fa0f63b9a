"""Which samples each process sees at each step: a pure function of (seed, epoch, step), so resuming and
changing the number of processes (with accumulation to match) replay exactly the same micro-batches."""

from __future__ import annotations

import numpy as np


class StepSchedule:
    """Micro-batch ``a`` of optimiser step ``s`` on rank ``r`` is global micro-batch ``(s * A + a) * W + r``
    of the epoch's permutation; a single process with A = W reproduces a W-process run step for step.

    ``order_key`` salts the permutation's seed (pretraining and the downstream commands use different ones);
    ``keep_partial`` keeps a last, smaller batch when one process without accumulation runs (else the remainder
    is dropped so every rank runs the same number of steps).
    """

    def __init__(self, num_samples: int, batch_size: int, world: int, accumulate: int, seed: int,
                 order_key: tuple[int, ...] = (7,), keep_partial: bool = False) -> None:
        self.num_samples, self.batch_size, self.world, self.accumulate, self.seed = (
            num_samples, batch_size, world, accumulate, seed)
        self.order_key = order_key
        per_step = batch_size * world * accumulate
        partial = keep_partial and world == 1 and accumulate == 1
        self.steps_per_epoch = -(-num_samples // per_step) if partial else num_samples // per_step

    def order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch, *self.order_key]).permutation(self.num_samples)

    def micro_index(self, step: int, micro: int, rank: int) -> int:
        return (step * self.accumulate + micro) * self.world + rank

    def micro_batches(self, epoch: int, rank: int, start_step: int = 0) -> list[tuple[int, int, list[int]]]:
        """(step, global micro index, sample indices) for this rank from ``start_step`` to the epoch's end."""
        order = self.order(epoch)
        out = []
        for step in range(start_step, self.steps_per_epoch):
            for micro in range(self.accumulate):
                g = self.micro_index(step, micro, rank)
                out.append((step, g, order[g * self.batch_size:(g + 1) * self.batch_size].tolist()))
        return out
