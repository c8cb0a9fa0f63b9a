"""The pretraining batch: B frame pairs (t, t+n) collated into one sparse tensor, their images and segment ids.

Notation: M voxels over all 2B frames of the batch (frame t of sample b is sparse batch index b, frame t+n is
B+b), N_t / N_n points of all frames t / t+n, I = B x cameras images of H x W pixels, P pairings (points of frame
t that project into an image crop). Ids < 0 mean "no segment" everywhere; superpixel ids are offset per image
and superpoint ids per sample, so every id is unique within the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor


class _Tensors:
    """`to` and `pin_memory` for a dataclass of tensors and plain values."""

    def _map(self, fn):
        values = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        return type(self)(**{k: fn(v) if isinstance(v, Tensor) else v for k, v in values.items()})

    def to(self, device: torch.device | str, non_blocking: bool = True):
        """The same batch with every tensor on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self):
        """Page-locked copies, so host-to-GPU copies overlap compute (the DataLoader's pin_memory calls this)."""
        return self._map(lambda t: t.pin_memory())


@dataclass
class PairBatch(_Tensors):
    """One collated micro-batch of frame pairs (see the module docstring for M, N_t, N_n, I, P)."""

    coords: Tensor            # [M, 4] int32 (sparse batch index, voxel coordinates)
    feats: Tensor             # [M, 1] float32 mean intensity per voxel
    batch_size: int           # 2B: sparse batch entries (frames t, then frames t+n)
    point_voxel_t: Tensor     # [N_t] long: row of `coords` holding each point of the frames t
    point_voxel_n: Tensor     # [N_n] long: the same for the frames t+n
    segments_t: Tensor        # [N_t] long: superpoint id of each point of the frames t (shared with t+n)
    segments_n: Tensor        # [N_n] long: superpoint id of each point of the frames t+n
    images: Tensor            # [I, 3, H, W] float32 image crops in 0..1
    pixel_superpixel: Tensor  # [I*H*W] long: superpixel id of every pixel of every crop
    pair_voxel: Tensor        # [P] long: voxel (row of `coords`) of each pairing
    pair_superpixel: Tensor   # [P] long: superpixel id under each pairing
    pair_pixel: Tensor        # [P] long: flat index (image * H * W + row * W + col) of each pairing's pixel
    num_points: int           # N_t + N_n, for throughput
    ids: list[str] = field(default_factory=list)  # frame id of each sample's frame t




@dataclass
class FrameBatch(_Tensors):
    """Labelled frames for segmentation, collated into one sparse tensor (N points, M voxels over the batch)."""

    coords: Tensor            # [M, 4] int32 (sparse batch index, voxel coordinates)
    feats: Tensor             # [M, 1] float32 mean intensity per voxel
    point_voxel: Tensor       # [N] long: row of `coords` holding each point
    labels: Tensor            # [N] long train ids (0 = ignore)
    batch_size: int           # frames in the batch
    sizes: list[int] = field(default_factory=list)  # points per frame
    ids: list[str] = field(default_factory=list)  # frame ids


