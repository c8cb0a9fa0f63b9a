"""The trainable part of Seal pretraining (3D backbone + H_p + H_i) and the loss of one micro-batch."""

from __future__ import annotations

import torch
from torch import nn

from seal.losses import SealLossWeights, seal_loss
from seal.models.minkunet import MinkUNet, ProjectionHead
from seal.models.sparse import sparse_tensor
from seal.models.teachers import ImageHead
from seal.pretrain.config import PretrainConfig


class SealStudent(nn.Module):
    """Everything that trains: the sparse backbone F with its head H_p, and the 2D head H_i.

    The frozen image backbone is not part of it, so DDP never sees (or synchronises) the teacher.
    """

    def __init__(self, cfg: PretrainConfig, teacher_channels: int) -> None:
        super().__init__()
        self.backbone = MinkUNet(cfg.model.backbone)
        self.head3d = ProjectionHead(self.backbone.out_channels, cfg.model.proj_dim)
        self.head2d = ImageHead(teacher_channels, cfg.model.proj_dim)

    def forward(self, coords: torch.Tensor, feats: torch.Tensor, batch_size: int, teacher_maps: torch.Tensor,
                image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(voxel embeddings [M, D], pixel embeddings [I, D, H, W]), both L2-normalised."""
        voxels = self.head3d(self.backbone(sparse_tensor(feats, coords, batch_size)))
        pixels = self.head2d(teacher_maps, image_size)
        return voxels, pixels


def batch_to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def compute_losses(student: nn.Module, teacher: nn.Module, batch: dict, cfg: PretrainConfig,
                   generator: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Forward the teacher (no grad) and the student on a collated batch; return total and each term."""
    images = batch["images"]
    teacher_maps = teacher(images)
    voxels, pixels = student(batch["coords"], batch["feats"], batch["batch_size"], teacher_maps,
                             (images.shape[-2], images.shape[-1]))
    pixel_features = pixels.permute(0, 2, 3, 1).reshape(-1, pixels.shape[1])
    weights = SealLossWeights(vfm=cfg.loss.vfm, tmp=cfg.loss.tmp, p2s=cfg.loss.p2s, tau=cfg.loss.tau)
    return seal_loss(voxels, batch["pair_voxel"], batch["pair_superpixel"], pixel_features,
                     batch["pixel_superpixel"], features_t=voxels[batch["point_voxel_t"]],
                     segments_t=batch["segments_t"], features_n=voxels[batch["point_voxel_n"]],
                     segments_n=batch["segments_n"], weights=weights, max_points=cfg.loss.p2s_max_points,
                     generator=generator, normalize_pooled=cfg.loss.normalize_pooled)
