"""The trainable part of Seal pretraining: the 3D backbone F (the `BACKBONES` family ``model.backbone.name``) with
its head H_p, the 2D head H_i, and - for ScaLR only - a 3D head to the teacher's width."""

from __future__ import annotations

import torch
from torch import nn

from seal.core.batch import BackboneInput
from seal.core.config import ModelConfig
from seal.models.backbones import build_backbone
from seal.models.minkunet import ProjectionHead
from seal.models.teachers import ImageHead


class MLPHead(nn.Module):
    """ScaLR+'s distillation head (valeoai/ScaLR scalr_plus, waffleiron/segmenter.py:51-58: 1x1 conv, ReLU, 1x1
    conv, i.e. per-point linear, ReLU, linear), then L2 normalisation as every head here."""

    def __init__(self, in_channels: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.mlp(features), dim=1)


class SealStudent(nn.Module):
    """Everything that trains. The frozen image backbone is not part of it, so DDP never sees the teacher.

    ``scalr_head`` adds ``head_scalr``: a linear layer (or, with ``model.scalr_head_hidden``, ScaLR+'s MLP) from
    the backbone width to the teacher's width, then L2 normalisation, whose output regresses the teacher's
    features (L_scalr). Only runs with ``loss.scalr > 0`` have it, so the state dicts of the other objectives
    keep their layout.
    """

    def __init__(self, cfg: ModelConfig, teacher_channels: int, scalr_head: bool = False) -> None:
        super().__init__()
        self.backbone = build_backbone(cfg.backbone)
        self.head3d = ProjectionHead(self.backbone.out_channels, cfg.proj_dim)
        self.head2d = ImageHead(teacher_channels, cfg.proj_dim)
        self.head_scalr = None
        if scalr_head:
            hidden = cfg.scalr_head_hidden
            self.head_scalr = (MLPHead(self.backbone.out_channels, hidden, teacher_channels) if hidden
                               else ProjectionHead(self.backbone.out_channels, teacher_channels))

    def forward(self, inputs: BackboneInput, teacher_maps: torch.Tensor, image_size: tuple[int, int]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(voxel embeddings [M, D], pixel embeddings [I*H*W, D], ScaLR voxel embeddings [M, C] or None without
        the ScaLR head), all L2-normalised."""
        features = self.backbone(inputs)
        voxels = self.head3d(features)
        scalr = self.head_scalr(features) if self.head_scalr is not None else None
        pixels = self.head2d(teacher_maps, image_size)
        return voxels, pixels.permute(0, 2, 3, 1).reshape(-1, pixels.shape[1]), scalr
