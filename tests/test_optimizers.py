"""The optimisers and schedules a run can ask for: SGD/cosine (SLidR, Seal), AdamW and ScaLR+'s reciprocal square
root with warm-up and cool-down, each against the formula written out here; ScaLR+'s MLP head."""

from __future__ import annotations

import math

import pytest
import torch

from seal.core.config import ModelConfig, OptimConfig
from seal.engine.optimizers import build_optimizer, lr_factor


def scalr_plus_factor(it: int, max_it: int, warmup_end: int, cooldown_start: int, timescale: float) -> float:
    """valeoai/ScaLR scalr_plus utils/scheduler.py LinWarmup_ReciprocalSqrt_LinCoolDown, as its text reads."""
    if it <= warmup_end:
        return it / warmup_end
    if it <= cooldown_start:
        return 1 / math.sqrt(1 + (it - warmup_end) / timescale)
    if it < max_it:
        span = max_it - cooldown_start
        return 1 / math.sqrt(1 + cooldown_start / timescale) * (span - (it - cooldown_start) - 1) / (span - 1)
    return 0.0


def test_rsqrt_is_scalr_plus_schedule_in_epochs():
    optim = OptimConfig(schedule="rsqrt", epochs=65, warmup_epochs=1.0, timescale_epochs=0.45, cooldown_epochs=2.0)
    per_epoch = 40
    factor = lr_factor(optim, per_epoch)
    total, warmup, cooldown = 65 * per_epoch, per_epoch, 63 * per_epoch
    for step in (1, 7, 40, 41, 500, cooldown, cooldown + 1, total - 2, total - 1):
        assert factor(step) == pytest.approx(scalr_plus_factor(step, total, warmup, cooldown, 0.45 * per_epoch))
    assert factor(0) > 0  # the first step trains (ScaLR+'s factor 0 at step 0 would waste it)
    assert factor(total) == 0.0


def test_cosine_with_warmup_epochs_and_steps():
    optim = OptimConfig(epochs=2, warmup_epochs=0.5)
    factor = lr_factor(optim, 10)
    assert factor(0) == pytest.approx(1 / 5) and factor(4) == pytest.approx(1.0)
    assert factor(5) == pytest.approx(1.0) and factor(20) == pytest.approx(0.0)
    assert lr_factor(OptimConfig(epochs=2, warmup_steps=2, warmup_epochs=9), 10)(1) == pytest.approx(1.0)


def test_adamw_and_sgd_are_what_they_say():
    params = [torch.nn.Parameter(torch.ones(3))]
    adamw = build_optimizer([{"params": params, "lr": 0.1}], 0.1, OptimConfig(name="adamw", weight_decay=0.03,
                                                                             betas=[0.8, 0.99]))
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["betas"] == (0.8, 0.99) and adamw.param_groups[0]["weight_decay"] == 0.03
    sgd = build_optimizer([{"params": params, "lr": 0.1}], 0.1, OptimConfig())
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["dampening"] == 0.1


def test_scalr_plus_mlp_head():
    from seal.core.config import BackboneConfig, WaffleIronConfig
    from seal.models.student import MLPHead, SealStudent

    cfg = ModelConfig(backbone=BackboneConfig(name="waffleiron", waffleiron=WaffleIronConfig(shape="tiny")),
                      scalr_head_hidden=48)
    student = SealStudent(cfg, teacher_channels=16, scalr_head=True)
    assert isinstance(student.head_scalr, MLPHead)
    assert [m.out_features for m in student.head_scalr.mlp if isinstance(m, torch.nn.Linear)] == [48, 16]
    out = student.head_scalr(torch.randn(5, student.backbone.out_channels))
    assert torch.allclose(out.norm(dim=1), torch.ones(5))
