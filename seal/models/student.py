"""The trainable part of Seal pretraining: the 3D backbone F with its head H_p, and the 2D head H_i."""

from __future__ import annotations

import torch
from torch import nn

from seal.core.config import ModelConfig
from seal.models.minkunet import MinkUNet, ProjectionHead
from seal.models.sparse import sparse_tensor
from seal.models.teachers import ImageHead


class SealStudent(nn.Module):
    """Everything that trains. The frozen image backbone is not part of it, so DDP never sees the teacher."""

    def __init__(self, cfg: ModelConfig, teacher_channels: int) -> None:
        super().__init__()
        self.backbone = MinkUNet(cfg.backbone)
        self.head3d = ProjectionHead(self.backbone.out_channels, cfg.proj_dim)
        self.head2d = ImageHead(teacher_channels, cfg.proj_dim)

    def forward(self, coords: torch.Tensor, feats: torch.Tensor, batch_size: int, teacher_maps: torch.Tensor,
                image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(voxel embeddings [M, D], pixel embeddings [I*H*W, D]), both L2-normalised."""
        voxels = self.head3d(self.backbone(sparse_tensor(feats, coords, batch_size)))
        pixels = self.head2d(teacher_maps, image_size)
        return voxels, pixels.permute(0, 2, 3, 1).reshape(-1, pixels.shape[1])
