"""Configuration of `seal probe`, `seal finetune` and `seal evaluate`."""

from __future__ import annotations

from dataclasses import dataclass, field

from seal.config import SealConfig
from seal.models.minkunet import BackboneConfig


@dataclass
class SplitConfig:
    """Which frames train and which evaluate. Official lists apply to nuScenes / SemanticKITTI; any other
    dataset names its sequences here (few-shot fractions then take every k-th of their sorted frames)."""

    fraction: int = 100                               # 1 | 5 | 10 | 25 | 100 (% of the labelled training set)
    train_sequences: list[str] | None = None
    val_sequences: list[str] | None = None


@dataclass
class DownstreamOptim:
    """SPEC section 8: probe 100 epochs, batch 16, lr 0.05; finetune lr 0.02 backbone / 2.0 head."""

    epochs: int = 100
    batch_size: int = 16
    lr: float = 0.05                 # the head (probe) / the backbone (finetune)
    head_lr: float = 2.0             # finetune only
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lovasz_weight: float = 1.0       # loss = CE + w * Lovász-softmax (ignore label 0)


@dataclass
class DownstreamTrain:
    seed: int = 0
    device: str = "auto"
    run_dir: str | None = None
    num_workers: int = 2
    augment: bool = True             # rotation + flips (finetune; a probe on cached features does not augment)
    cache_features: bool = True      # probe: run the frozen backbone once per frame, train the head on cached
    max_points_per_frame: int = 20000  # probe feature cache: points sampled per training frame
    standardize_features: bool = False  # probe diagnostic: z-score features first (not the paper protocol)
    eval_every: int = 0              # epochs between evaluations on the val split (0 = only at the end)


@dataclass
class DownstreamConfig(SealConfig):
    """Everything the downstream commands read."""

    pretrained: str | None = None    # backbone.pt of `seal pretrain` (null = random initialisation)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)  # used when pretrained is null
    split: SplitConfig = field(default_factory=SplitConfig)
    optim: DownstreamOptim = field(default_factory=DownstreamOptim)
    train: DownstreamTrain = field(default_factory=DownstreamTrain)
