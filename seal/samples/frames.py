"""Labelled frames for segmentation: voxelised samples and batching (the train/val split is `seal.data.splits`)."""

from __future__ import annotations

import numpy as np
import torch

from seal.core.batch import FrameBatch, FrameSample
from seal.core.config import VoxelConfig
from seal.core.frame import Dataset, Frame
from seal.core.voxelize import voxelize
from seal.samples.augment import rotate_flip


def voxel_sample(frame: Frame, voxel: VoxelConfig, rng: np.random.Generator | None = None) -> FrameSample:
    """Voxelised frame (augmented when ``rng`` is given) with its full-resolution labels and inverse index."""
    xyz = frame.xyz if rng is None else rotate_flip(frame.xyz, rng)
    vox = voxelize(xyz, voxel.size, voxel.mode, voxel.angle_bin_deg)
    labels = frame.labels if frame.labels is not None else np.zeros(frame.num_points, np.uint8)
    return FrameSample(coords=vox.coords, feats=vox.mean(frame.points[:, 3:4]).astype(np.float32),
                       xyz=vox.mean(xyz).astype(np.float32), inverse=vox.inverse, labels=labels.astype(np.int64),
                       id=frame.id)


class LabelledFrames(torch.utils.data.Dataset):
    """The frames at ``indices`` as voxelised samples; augmentation is seeded by (seed, epoch, index)."""

    def __init__(self, dataset: Dataset, indices: list[int], voxel: VoxelConfig, augment: bool, seed: int) -> None:
        self.dataset, self.indices, self.voxel, self.augment, self.seed = dataset, indices, voxel, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: int | tuple[int, int]) -> FrameSample:
        """Frame ``i`` of the current epoch, or of ``epoch`` when the key is ``(epoch, i)``."""
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        rng = np.random.default_rng([self.seed, epoch, i]) if self.augment else None
        return voxel_sample(self.dataset[self.indices[i]], self.voxel, rng)


def collate_frames(samples: list[FrameSample]) -> FrameBatch:
    """One sparse batch; ``point_voxel`` maps every point of every frame to its row of the batch's voxels (each
    sample's indices are checked first, on the CPU: `FrameSample.check`)."""
    coords, feats, xyz, point_voxel, labels, sizes = [], [], [], [], [], []
    offset = 0
    for b, s in enumerate(samples):
        s.check()
        coords.append(np.column_stack([np.full(s.coords.shape[0], b, np.int32), s.coords]))
        feats.append(s.feats)
        xyz.append(s.xyz)
        point_voxel.append(s.inverse + offset)
        labels.append(s.labels)
        sizes.append(s.inverse.shape[0])
        offset += s.coords.shape[0]
    return FrameBatch(coords=torch.from_numpy(np.concatenate(coords)), feats=torch.from_numpy(np.concatenate(feats)),
                      xyz=torch.from_numpy(np.concatenate(xyz)),
                      point_voxel=torch.from_numpy(np.concatenate(point_voxel)),
                      labels=torch.from_numpy(np.concatenate(labels)), sizes=sizes, batch_size=len(samples),
                      ids=[s.id for s in samples])
