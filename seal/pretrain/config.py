"""The configuration of a `seal pretrain` run (on top of the shared data/stage configuration)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seal.config import SealConfig
from seal.models.minkunet import BackboneConfig
from seal.pretrain.data import AugmentConfig


@dataclass
class ModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    proj_dim: int = 64             # H_p and H_i output width


@dataclass
class TeacherConfig:
    """The frozen 2D network G; ``weights`` is a local file (MoCo-v2, DINO, DINOv2 formats)."""

    backbone: str = "resnet50"     # resnet50 | resnet101 | vit_small_patch16 | vit_small_patch14_dinov2 | ...
    weights: str | None = None     # null = random init (said loudly; fine for tests, never for real runs)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # timm options, e.g. a small ViT for CPU demos


@dataclass
class LossConfig:
    """Weights and temperature of L = w_vfm L_vfm + w_tmp L_tmp + w_p2s L_p2s (SPEC section 6)."""

    vfm: float = 1.0
    tmp: float = 1.0
    p2s: float = 1.0
    tau: float = 0.07
    p2s_max_points: int = 8192     # points sampled per step for L_p2s (bounds the points x segments logits)
    normalize_pooled: bool = False


@dataclass
class OptimConfig:
    """SGD + cosine (SPEC section 7). The effective lr is lr * global_batch / lr_reference_batch."""

    lr: float = 0.5
    lr_reference_batch: int = 16
    momentum: float = 0.9
    dampening: float = 0.1
    weight_decay: float = 1e-4
    epochs: int = 50
    warmup_steps: int = 0


@dataclass
class TrainConfig:
    batch_size: int = 4            # per process
    accumulate: int = 1            # micro-batches per optimiser step
    num_workers: int = 2
    amp: bool = True               # mixed precision on CUDA (ignored on CPU)
    seed: int = 0
    deterministic: bool = False    # bitwise-repeatable runs (on CPU: single-threaded, slower)
    device: str = "auto"           # auto | cpu | cuda
    run_dir: str | None = None     # default runs/pretrain-<time>
    log_every: int = 10
    checkpoint_every: int = 200    # optimiser steps; a checkpoint is also written at each epoch end
    keep_checkpoints: int = 2
    max_steps: int | None = None   # stop (with a checkpoint) after this many optimiser steps in total


@dataclass
class PretrainConfig(SealConfig):
    """Everything `seal pretrain` reads: data, stages, model, teacher, losses, augmentation, optimiser."""

    model: ModelConfig = field(default_factory=ModelConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
