"""Pretraining samples: a frame pair (t, t+gap) with its images, superpixels, superpoints and pairings.

Every random choice of a sample comes from a Generator seeded by (seed, epoch, index), so a sample is the same
whichever worker or process builds it, and a resumed run sees exactly the data it would have seen.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from seal.core.batch import PairBatch, PairFrame, PairSample
from seal.core.config import AugmentConfig, VoxelConfig
from seal.core.errors import DataError
from seal.core.frame import Dataset, Frame
from seal.core.io import keep_freed_memory
from seal.core.projection import pair_points
from seal.core.voxelize import voxelize
from seal.samples.augment import (
    apply_crop_image,
    apply_crop_labels,
    apply_crop_pairings,
    cuboid_drop,
    random_resized_crop,
    rotate_flip,
)
from seal.stages.cache import StageCache
from seal.superpixels.oracle import read_class_map
from seal.superpixels.stage import load_frame_superpixels
from seal.superpoints.stage import empty_pairs, frame_pairs, load_pair, superpoint_path


class PairSamples(torch.utils.data.Dataset):
    """Indexable frame pairs of the posed sequences of a dataset, read from the stage caches."""

    def __init__(self, dataset: Dataset, superpixels: StageCache, superpoints: StageCache, gap: int,
                 augment: AugmentConfig, voxel: VoxelConfig, min_depth: float = 1.0, seed: int = 0,
                 truth: bool = False) -> None:
        self.dataset, self.superpixels, self.superpoints = dataset, superpixels, superpoints
        self.truth = truth  # carry each crop's true class map (an oracle teacher reads them)
        self.gap, self.augment, self.voxel, self.min_depth, self.seed = gap, augment, voxel, min_depth, seed
        self.epoch = 0
        posed = [(s, seq) for s, seq in enumerate(dataset.sequences) if seq.has_poses]
        self.items = [(s, t) for s, seq in posed for t in frame_pairs(seq, gap)]
        self.skipped_empty = sum(empty_pairs(seq, gap) for _, seq in posed)  # pairs with an empty scan
        if not self.items:
            raise DataError(dataset.root, f"has no frame pairs (t, t+{gap}) in sequences with poses",
                            "pretraining needs sequences of at least gap+1 frames with ego poses")

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int, epoch: int | None = None, repeat: int = 0) -> np.random.Generator:
        key = [self.seed, self.epoch if epoch is None else epoch, index] + ([repeat] if repeat else [])
        return np.random.default_rng(key)

    def __getitem__(self, key: int | tuple[int, ...]) -> PairSample:
        """Sample ``index`` of the current epoch, or of ``epoch`` when the key is ``(epoch, index)`` (so loader
        workers that live across epochs draw the right augmentations); ``(epoch, index, repeat)`` draws the
        ``repeat``-th fresh augmentation of the same pair (a mixture oversampling a small dataset)."""
        keep_freed_memory()  # a sample frees ~20 image-sized buffers: keep them for the next one (see there)
        epoch, index, repeat = (*key, 0)[:3] if isinstance(key, tuple) else (self.epoch, key, 0)
        s, t = self.items[index]
        seq = self.dataset.sequences[s]
        first, second = seq.pair(t, self.gap)
        pair = load_pair(superpoint_path(self.superpoints, first.id), first.num_points, second.num_points)
        rng = self.rng(index, epoch, repeat)
        crops = self._camera_part(first, rng)
        keep_t = None
        if self.augment.cuboid_drop:
            keep_t = cuboid_drop(first.xyz, rng, crops.point, crops.image, len(crops.images),
                                 self.augment.min_pairings_per_image)
        frame_t = _points_part(first, pair.first, keep_t, rng, self.augment, self.voxel)
        point, image, row, col = crops.point, crops.image, crops.row, crops.col
        if keep_t is not None:  # pairings refer to kept points only, renumbered
            renumber = np.cumsum(keep_t) - 1
            mask = keep_t[point]
            point, image, row, col = renumber[point[mask]], image[mask], row[mask], col[mask]
        keep_n = cuboid_drop(second.xyz, rng) if self.augment.cuboid_drop else None
        frame_n = _points_part(second, pair.second, keep_n, rng, self.augment, self.voxel)
        return PairSample(id=first.id, frame_t=frame_t, frame_n=frame_n, images=crops.images,
                          superpixels=crops.superpixels, pair_voxel=frame_t.inverse[point], pair_image=image,
                          pair_row=row, pair_col=col, truth=crops.truth)

    def _camera_part(self, frame: Frame, rng: np.random.Generator) -> _Crops:
        """Cropped images and superpixel maps, and the pairings of frame t's points with them."""
        maps = load_frame_superpixels(self.superpixels, frame)
        pairs = pair_points(frame.xyz, frame.cameras, min_depth=self.min_depth)
        aug = self.augment
        images, labels, points, cams, rows, cols, truths = [], [], [], [], [], [], []
        for index, (camera, segments) in enumerate(zip(frame.cameras, maps, strict=True)):
            if segments.shape != (camera.height, camera.width):
                raise DataError(f"{self.superpixels.folder}/{frame.id}/{camera.name}.png",
                                f"superpixel map is {segments.shape[1]}x{segments.shape[0]}, image is "
                                f"{camera.width}x{camera.height}", "delete the stale cache folder and rerun")
            crop = random_resized_crop(camera.height, camera.width, tuple(aug.crop_size), rng,
                                       tuple(aug.crop_scale), tuple(aug.crop_ratio), aug.crop_attempts, aug.hflip)
            images.append(apply_crop_image(camera.image, crop))
            labels.append(apply_crop_labels(segments, crop).astype(np.int64))
            if self.truth:  # the same crop, flip and nearest-pixel resize as the superpixel map
                truth = read_class_map(camera.image_path, self.dataset.label_map, (camera.height, camera.width))
                truths.append(apply_crop_labels(truth, crop).astype(np.int64))
            mine = pairs.camera == index
            keep, row, col = apply_crop_pairings(pairs.row[mine], pairs.col[mine], crop)
            points.append(pairs.point[mine][keep])
            cams.append(np.full(row.shape[0], index, dtype=np.int64))
            rows.append(row)
            cols.append(col)
        if not images:
            raise DataError(frame.id, "has no cameras: pretraining needs images for L_vfm")
        return _Crops(np.stack(images), np.stack(labels), np.concatenate(points), np.concatenate(cams),
                      np.concatenate(rows), np.concatenate(cols), np.stack(truths) if truths else None)


class _Crops(NamedTuple):
    """The camera part of a sample: crops, their superpixel maps and the pairings (point, crop, row, col)."""

    images: np.ndarray
    superpixels: np.ndarray
    point: np.ndarray
    image: np.ndarray
    row: np.ndarray
    col: np.ndarray
    truth: np.ndarray | None = None


def _points_part(frame: Frame, segments: np.ndarray, keep: np.ndarray | None, rng: np.random.Generator,
                 aug: AugmentConfig, voxel: VoxelConfig) -> PairFrame:
    """Augmented, voxelised points of one frame with per-point superpoint ids."""
    points = frame.points if keep is None else frame.points[keep]
    segments = segments if keep is None else segments[keep]
    xyz = rotate_flip(points[:, :3], rng, aug.rotate, aug.flip)
    vox = voxelize(xyz, voxel.size, voxel.mode, voxel.angle_bin_deg)
    return PairFrame(coords=vox.coords, feats=vox.mean(points[:, 3:4]).astype(np.float32),
                     xyz=vox.mean(xyz).astype(np.float32), inverse=vox.inverse,
                     segments=segments.astype(np.int64))


def collate_pairs(samples: list[PairSample]) -> PairBatch:
    """Batch samples: one sparse tensor holding every frame t (batch b) and t+gap (batch B+b); pairings, voxel
    indices, superpixel ids and superpoint ids offset per sample by the true counts (never a fixed constant).

    Every sample's indices are checked first and the batch's after (`PairSample.check`, `PairBatch.check`), here
    on the CPU, so the losses trust the batch: a bad cache file is a DataError naming the sample and the field."""
    for s in samples:
        s.check()
    B = len(samples)
    coords, feats, xyz = [], [], []
    voxel_offset = 0
    offsets = {}
    for tag, base in (("t", 0), ("n", B)):
        for b, s in enumerate(samples):
            frame = s.frame_t if tag == "t" else s.frame_n
            c = frame.coords
            coords.append(np.column_stack([np.full(c.shape[0], base + b, dtype=np.int32), c]))
            feats.append(frame.feats)
            xyz.append(frame.xyz)
            offsets[(tag, b)] = voxel_offset
            voxel_offset += c.shape[0]
    coords_all, feats_all = torch.from_numpy(np.concatenate(coords)), torch.from_numpy(np.concatenate(feats))
    point_voxel = {}
    for tag in ("t", "n"):
        point_voxel[tag] = torch.from_numpy(np.concatenate(
            [(s.frame_t if tag == "t" else s.frame_n).inverse + offsets[(tag, b)] for b, s in enumerate(samples)]))
    # superpoints: ids >= 0 shared by the two frames of a sample, offset by that sample's true id count
    seg_t, seg_n, seg_offset = [], [], 0
    for s in samples:
        a, n = s.frame_t.segments, s.frame_n.segments
        seg_t.append(np.where(a >= 0, a + seg_offset, -1))
        seg_n.append(np.where(n >= 0, n + seg_offset, -1))
        seg_offset += int(max(a.max(initial=-1), n.max(initial=-1))) + 1
    # superpixels: per image, id k > 0 -> offset + k - 1; 0 (no segment) -> -1; offset grows by the image's max
    images, pixel_ids, pair_voxel, pair_sp, pair_pixel = [], [], [], [], []
    sp_offset = image_offset = 0
    for b, s in enumerate(samples):
        for i in range(s.images.shape[0]):
            m = s.superpixels[i]
            height, width = m.shape
            images.append(s.images[i])
            pixel_ids.append(np.where(m > 0, m - 1 + sp_offset, -1).ravel())
            sel = s.pair_image == i
            ids = m[s.pair_row[sel], s.pair_col[sel]]
            pair_sp.append(np.where(ids > 0, ids - 1 + sp_offset, -1))
            pair_voxel.append(s.pair_voxel[sel] + offsets[("t", b)])
            pair_pixel.append((image_offset + i) * height * width + s.pair_row[sel].astype(np.int64) * width
                              + s.pair_col[sel])
            sp_offset += int(m.max())
        image_offset += s.images.shape[0]
    batch = PairBatch(
        coords=coords_all, feats=feats_all, xyz=torch.from_numpy(np.concatenate(xyz)), batch_size=2 * B,
        ids=[s.id for s in samples],
        point_voxel_t=point_voxel["t"], point_voxel_n=point_voxel["n"],
        segments_t=torch.from_numpy(np.concatenate(seg_t)), segments_n=torch.from_numpy(np.concatenate(seg_n)),
        images=torch.from_numpy(np.stack(images)), pixel_superpixel=torch.from_numpy(np.concatenate(pixel_ids)),
        pair_voxel=torch.from_numpy(np.concatenate(pair_voxel)),
        pair_superpixel=torch.from_numpy(np.concatenate(pair_sp)),
        pair_pixel=torch.from_numpy(np.concatenate(pair_pixel).astype(np.int64)),
        truth=(torch.from_numpy(np.concatenate([s.truth for s in samples]))
               if all(s.truth is not None for s in samples) else None),
        num_points=int(sum(s.frame_t.inverse.shape[0] + s.frame_n.inverse.shape[0] for s in samples)))
    batch.check()
    return batch
