"""The optimiser and learning-rate schedule a run asks for (``optim.name``, ``optim.schedule``).

- ``sgd`` (SLidR's, Seal's): momentum, dampening and L2 weight decay; ``adamw`` (ScaLR's): decoupled weight decay,
  ``optim.betas``.
- ``cosine``: linear warm-up, then cosine decay to 0 at the last step (SLidR, Seal).
- ``rsqrt``: ScaLR+'s LinWarmup_ReciprocalSqrt_LinCoolDown (valeoai/ScaLR branch scalr_plus,
  utils/scheduler.py:36-66): linear warm-up to 1 over w steps; then 1 / sqrt(1 + (s - w) / T) up to the cool-down
  start c; then a linear ramp from 1 / sqrt(1 + c / T) (their formula: c, not c - w) down to 0 at the last step.
Warm-up, timescale and cool-down are given in epochs (``warmup_epochs``, ``timescale_epochs``, ``cooldown_epochs``)
or, for the warm-up, in steps (``warmup_steps`` wins when set).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from seal.core.config import OptimConfig


def cosine(step: int, total: int, warmup: int = 0) -> float:
    """The lr factor at ``step``: linear warm-up, then cosine decay to 0 at ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def reciprocal_sqrt(step: int, total: int, warmup: int, timescale: float, cooldown_start: int) -> float:
    """ScaLR+'s factor at ``step`` (see the module docstring)."""
    if warmup and step <= warmup:
        return step / warmup if step else 1.0 / warmup  # step 0 trains too: never a zero learning rate
    if step <= cooldown_start:
        return 1.0 / math.sqrt(1.0 + (step - warmup) / timescale)
    if step < total:
        span = total - cooldown_start
        base = 1.0 / math.sqrt(1.0 + cooldown_start / timescale)
        return base * (span - (step - cooldown_start) - 1) / max(1, span - 1)
    return 0.0


def build_optimizer(groups: list[dict[str, Any]], lr: float, optim: OptimConfig) -> torch.optim.Optimizer:
    """``optim.name`` over the parameter groups (each with its scaled "lr")."""
    if optim.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=optim.momentum, dampening=optim.dampening,
                           weight_decay=optim.weight_decay)


def lr_factor(optim: OptimConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The schedule's factor per optimiser step, for a run of ``optim.epochs`` epochs."""
    total = steps_per_epoch * optim.epochs
    warmup = optim.warmup_steps or round(optim.warmup_epochs * steps_per_epoch)
    if optim.schedule == "rsqrt":
        timescale = max(1e-9, optim.timescale_epochs * steps_per_epoch)
        cooldown = max(warmup, total - round(optim.cooldown_epochs * steps_per_epoch))
        return lambda s: reciprocal_sqrt(s, total, warmup, timescale, cooldown)
    return lambda s: cosine(s, total, warmup)


__all__ = ["build_optimizer", "cosine", "lr_factor", "reciprocal_sqrt"]
