"""Samples and batches of the training loops: typed per-sample records (numpy, built in loader workers) and the
collated batches (torch) they become.

Notation: M voxels over all 2B frames of the batch (frame t of sample b is sparse batch index b, frame t+n is
B+b), N_t / N_n points of all frames t / t+n, I = B x cameras images of H x W pixels, P pairings (points of frame
t that project into an image crop). Ids < 0 mean "no segment" everywhere; superpixel ids are offset per image
and superpoint ids per sample, so every id is unique within the batch.

A sample's own sizes are lower case: V voxels and N points of one frame, C crops of h x w pixels, p pairings.
Collation checks every index of every sample (`PairSample.check`) and of the batch (`PairBatch.check`) on the
CPU, once per batch, so the losses can trust a collated batch and never read a device tensor back to check it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import Tensor

from seal.core.errors import DataError

_BUG = "seal's sampling produced it from intact caches: a bug, please report it"
_STALE_SUPERPOINTS = "the superpoint cache file of this pair is stale or corrupt: delete it, rerun `seal superpoints`"
_SUPERPIXEL_IDS = 1 << 16  # superpixel maps are cached as uint16 PNGs


def index_problem(name: str, values: np.ndarray | Tensor, bound: int | None, low: int | None = 0,
                  verb: str = "indexes") -> str | None:
    """None when every value lies in [low, bound) (a None end is open), else a sentence naming the field, the
    values' range and the bound. On numpy arrays or CPU tensors: a device tensor would cost a host sync."""
    if int(np.prod(values.shape)) == 0:
        return None
    lo, hi = int(values.min()), int(values.max())
    if (low is None or lo >= low) and (bound is None or hi < bound):
        return None
    span = f"[{'-inf' if low is None else low}, {'inf' if bound is None else bound})"
    return f"{name} {verb} outside {span}: its values span [{lo}, {hi}]"


def check_index(name: str, values: np.ndarray | Tensor, bound: int | None, low: int | None = 0) -> None:
    """Raise ValueError unless every value of the index ``values`` lies in [low, bound) (see `index_problem`)."""
    problem = index_problem(name, values, bound, low)
    if problem is not None:
        raise ValueError(problem)


def _length_problem(names: tuple[str, ...], arrays: tuple[np.ndarray | Tensor, ...]) -> str | None:
    lengths = [int(a.shape[0]) for a in arrays]
    if len(set(lengths)) <= 1:
        return None
    return " / ".join(names) + " must have one row each, got " + " / ".join(map(str, lengths))


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
class BackboneInput(_Tensors):
    """What every 3D backbone reads: M voxels (tokens) of ``batch_size`` scans. A sparse-convolution backbone uses
    ``coords``, a point-based one (WaffleIron) the voxels' mean positions ``xyz``; both return [M, C] features in
    this row order, which the losses pool and downstream heads map back to points with the inverse index."""

    coords: Tensor    # [M, 4] int32 (batch index, voxel coordinates from 0)
    feats: Tensor     # [M, 1] float32 mean intensity per voxel
    xyz: Tensor       # [M, 3] float32 mean position of each voxel's points (metres, augmented sensor frame)
    batch_size: int   # scans in the batch

    @classmethod
    def of_frame(cls, coords: np.ndarray, feats: np.ndarray, xyz: np.ndarray) -> BackboneInput:
        """One scan (batch index 0) from a sample's numpy arrays."""
        batch = np.column_stack([np.zeros(len(coords), np.int32), coords]).astype(np.int32)
        return cls(torch.from_numpy(batch), torch.from_numpy(np.ascontiguousarray(feats, np.float32)),
                   torch.from_numpy(np.ascontiguousarray(xyz, np.float32)), 1)


@dataclass
class PairFrame:
    """One augmented, voxelised frame of a pair sample (V voxels, N points), before collation."""

    coords: np.ndarray    # [V, 3] int32 voxel coordinates, each axis from 0
    feats: np.ndarray     # [V, 1] float32 mean intensity per voxel
    xyz: np.ndarray       # [V, 3] float32 mean position (metres, augmented sensor frame) of each voxel's points
    inverse: np.ndarray   # [N] int64: voxel (row of `coords`) of each point
    segments: np.ndarray  # [N] int64 superpoint id of each point (-1 none, 0 ground, 1..K; shared by t and t+n)

    def problem(self) -> tuple[str, str] | None:
        """(what is wrong, which cache or stage to blame), or None when every index is in range."""
        voxels = (_length_problem(("coords", "feats", "xyz"), (self.coords, self.feats, self.xyz))
                  or index_problem("inverse", self.inverse, self.coords.shape[0]))
        if voxels is not None:
            return voxels, _BUG
        superpoints = (_length_problem(("inverse", "segments"), (self.inverse, self.segments))
                       or index_problem("segments", self.segments, None, -1, "holds superpoint ids"))
        if superpoints is not None:
            return superpoints, _STALE_SUPERPOINTS
        return None


@dataclass
class PairSample:
    """One pretraining sample: frames t and t+gap, the C camera crops (h x w) of frame t and p pairings of frame
    t's points with crop pixels. Plain numpy, so it pickles from loader workers; `collate_pairs` batches it."""

    id: str                  # frame id of frame t
    frame_t: PairFrame       # frame t (its points are the ones paired with pixels)
    frame_n: PairFrame       # frame t+gap
    images: np.ndarray       # [C, 3, h, w] float32 crops in 0..1
    superpixels: np.ndarray  # [C, h, w] int64 superpixel id of each crop pixel (0 = none, 1..K per crop)
    pair_voxel: np.ndarray   # [p] int64: voxel (row of frame_t.coords) of each pairing
    pair_image: np.ndarray   # [p] int64: crop of each pairing
    pair_row: np.ndarray     # [p] int64: its row in the crop
    pair_col: np.ndarray     # [p] int64: its column in the crop
    truth: np.ndarray | None = None  # [C, h, w] int64 true train id of each crop pixel (oracle teachers only)

    def problem(self) -> tuple[str, str] | None:
        """(what is wrong, which cache or stage to blame), or None when every index of the sample is in range."""
        for which, frame in (("frame_t", self.frame_t), ("frame_n", self.frame_n)):
            if found := frame.problem():
                return f"{which}.{found[0]}", found[1]
        shape = self.superpixels.shape
        if len(shape) != 3 or self.images.shape != (shape[0], 3, shape[1], shape[2]):
            return f"images are {tuple(self.images.shape)} but superpixels {tuple(shape)} (crops must match)", _BUG
        crops, height, width = shape
        if self.truth is not None and self.truth.shape != shape:
            return f"truth is {tuple(self.truth.shape)} but superpixels {tuple(shape)} (crops must match)", _BUG
        superpixels = index_problem("superpixels", self.superpixels, _SUPERPIXEL_IDS, 0, "holds superpixel ids")
        if superpixels is not None:
            return superpixels, "the superpixel cache is corrupt: delete it and rerun `seal superpixels`"
        names = ("pair_voxel", "pair_image", "pair_row", "pair_col")
        arrays = (self.pair_voxel, self.pair_image, self.pair_row, self.pair_col)
        problem = _length_problem(names, arrays)
        for name, values, bound in zip(names, arrays, (self.frame_t.coords.shape[0], crops, height, width),
                                       strict=True):
            problem = problem or index_problem(name, values, bound)
        return (problem, _BUG) if problem else None

    def check(self) -> None:
        """Raise DataError naming this sample, the field, its range and the bound, unless every index is in range."""
        found = self.problem()
        if found is not None:
            raise DataError(f"sample {self.id}", found[0], found[1])


@dataclass
class PairBatch(_Tensors):
    """One collated micro-batch of frame pairs (see the module docstring for M, N_t, N_n, I, P)."""

    coords: Tensor            # [M, 4] int32 (sparse batch index, voxel coordinates)
    feats: Tensor             # [M, 1] float32 mean intensity per voxel
    xyz: Tensor               # [M, 3] float32 mean position of each voxel's points (metres, augmented frame)
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
    truth: Tensor | None = None  # [I, H, W] long true train id of every crop pixel (oracle teachers only)

    def backbone_input(self) -> BackboneInput:
        """The voxels of all 2B frames, as the backbone reads them."""
        return BackboneInput(self.coords, self.feats, self.xyz, self.batch_size)

    def check(self) -> None:
        """Raise ValueError naming the field unless every index the losses gather or scatter with is in range:
        voxel rows in [0, M), pixels in [0, I*H*W), one superpoint id per point, one superpixel id per pixel and
        per pairing. On CPU tensors (collation calls it): the losses trust a checked batch and never read back."""
        if self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"PairBatch of {self.ids}: images must be [I, 3, H, W], got {tuple(self.images.shape)}")
        voxels, pixels = int(self.coords.shape[0]), int(self.images[:, 0].numel())
        problem = (_length_problem(("coords", "feats", "xyz"), (self.coords, self.feats, self.xyz))
                   or _length_problem(("point_voxel_t", "segments_t"), (self.point_voxel_t, self.segments_t))
                   or _length_problem(("point_voxel_n", "segments_n"), (self.point_voxel_n, self.segments_n))
                   or _length_problem(("pair_voxel", "pair_superpixel", "pair_pixel"),
                                      (self.pair_voxel, self.pair_superpixel, self.pair_pixel))
                   or (None if self.pixel_superpixel.shape == (pixels,) else
                       f"pixel_superpixel has shape {tuple(self.pixel_superpixel.shape)}, the crops {pixels} pixels"))
        for name, bound in (("point_voxel_t", voxels), ("point_voxel_n", voxels), ("pair_voxel", voxels),
                            ("pair_pixel", pixels)):
            problem = problem or index_problem(name, getattr(self, name), bound)
        if problem is not None:
            raise ValueError(f"PairBatch of {self.ids or 'unnamed samples'}: {problem}")


@dataclass
class FrameSample:
    """One voxelised labelled frame (V voxels, N points), before collation; plain numpy, so it pickles."""

    coords: np.ndarray   # [V, 3] int32 voxel coordinates, each axis from 0
    feats: np.ndarray    # [V, 1] float32 mean intensity per voxel
    xyz: np.ndarray      # [V, 3] float32 mean position of each voxel's points (metres)
    inverse: np.ndarray  # [N] int64: voxel (row of `coords`) of each point
    labels: np.ndarray   # [N] int64 train ids (0 = ignore)
    id: str              # frame id

    def backbone_input(self) -> BackboneInput:
        """This frame alone (batch index 0), as the backbone reads it."""
        return BackboneInput.of_frame(self.coords, self.feats, self.xyz)

    def check(self) -> None:
        """Raise DataError naming this frame and the field unless every point maps to one of its voxels."""
        problem = (_length_problem(("coords", "feats", "xyz"), (self.coords, self.feats, self.xyz))
                   or _length_problem(("inverse", "labels"), (self.inverse, self.labels))
                   or index_problem("inverse", self.inverse, self.coords.shape[0]))
        if problem is not None:
            raise DataError(f"frame {self.id}", problem, _BUG)


@dataclass
class FrameBatch(_Tensors):
    """Labelled frames for segmentation, collated into one sparse tensor (N points, M voxels over the batch)."""

    coords: Tensor            # [M, 4] int32 (sparse batch index, voxel coordinates)
    feats: Tensor             # [M, 1] float32 mean intensity per voxel
    xyz: Tensor               # [M, 3] float32 mean position of each voxel's points (metres)
    point_voxel: Tensor       # [N] long: row of `coords` holding each point
    labels: Tensor            # [N] long train ids (0 = ignore)
    batch_size: int           # frames in the batch
    sizes: list[int] = field(default_factory=list)  # points per frame
    ids: list[str] = field(default_factory=list)  # frame ids

    def backbone_input(self) -> BackboneInput:
        """The voxels of all frames of the batch, as the backbone reads them."""
        return BackboneInput(self.coords, self.feats, self.xyz, self.batch_size)
