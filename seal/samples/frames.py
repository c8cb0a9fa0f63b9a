"""Labelled frames for segmentation: the train/val split of a dataset, voxelised samples, batching."""

from __future__ import annotations

import numpy as np
import torch

from seal.core.batch import FrameBatch
from seal.core.config import SplitConfig, VoxelConfig
from seal.core.errors import ConfigError
from seal.core.frame import Dataset, Frame
from seal.core.voxelize import voxelize
from seal.samples.augment import rotate_flip


def _offsets(dataset: Dataset) -> dict[str, int]:
    out, start = {}, 0
    for seq in dataset.sequences:
        out[seq.name] = start
        start += len(seq)
    return out


def split_indices(dataset: Dataset, split: SplitConfig) -> tuple[list[int], list[int]]:
    """(train frame indices of the few-shot fraction, val frame indices) of ``dataset``: the official lists of
    its format when they apply and no sequences are named, else the named sequences and the every-k-th rule."""
    offsets = _offsets(dataset)
    names = [s.name for s in dataset.sequences]
    official = None
    if split.train_sequences is None and dataset.format is not None:
        official = dataset.format.official_split(dataset, split.fraction)
    if official is not None:
        train, val_names = official
        val_names = split.val_sequences or val_names
    else:
        if split.train_sequences is None or split.val_sequences is None:
            raise ConfigError(f"{dataset.root} has no official split: set split.train_sequences and "
                              f"split.val_sequences (its sequences are {names[:10]})")
        missing = [s for s in split.train_sequences + split.val_sequences if s not in offsets]
        if missing:
            raise ConfigError(f"split sequences {missing} are not in {dataset.root} (it has {names[:10]})")
        view = Dataset(root=dataset.root, kind=dataset.kind, label_map=dataset.label_map, format=dataset.format,
                       sequences=[s for s in dataset.sequences if s.name in split.train_sequences])
        view_offsets = _offsets(view)
        back = {view_offsets[s.name] + i: offsets[s.name] + i for s in view.sequences for i in range(len(s))}
        rule = dataset.format.rule_split if dataset.format is not None else _every_kth_frame
        train = [back[i] for i in rule(view, split.fraction)]
        val_names = split.val_sequences
    val = [offsets[s.name] + i for s in dataset.sequences if s.name in set(val_names) for i in range(len(s))]
    if not val:
        raise ConfigError(f"the validation sequences {list(val_names)[:5]} are not in {dataset.root}")
    return train, val


def _every_kth_frame(dataset: Dataset, fraction: int) -> list[int]:
    """The default rule for a dataset built in memory (no format): every k-th frame id in sorted order."""
    from seal.data.splits import split_step

    ids = sorted((seq.frame_id(i), _offsets(dataset)[seq.name] + i) for seq in dataset.sequences
                 for i in range(len(seq)))
    return sorted(index for _, index in ids[::split_step(fraction)])


def voxel_sample(frame: Frame, voxel: VoxelConfig, rng: np.random.Generator | None = None) -> dict:
    """Voxelised frame (augmented when ``rng`` is given) with its full-resolution labels and inverse index."""
    xyz = frame.xyz if rng is None else rotate_flip(frame.xyz, rng)
    vox = voxelize(xyz, voxel.size, voxel.mode, voxel.angle_bin_deg)
    labels = frame.labels if frame.labels is not None else np.zeros(frame.num_points, np.uint8)
    return {"coords": vox.coords, "feats": vox.mean(frame.points[:, 3:4]).astype(np.float32),
            "inverse": vox.inverse, "labels": labels.astype(np.int64), "id": frame.id}


class LabelledFrames(torch.utils.data.Dataset):
    """The frames at ``indices`` as voxelised samples; augmentation is seeded by (seed, epoch, index)."""

    def __init__(self, dataset: Dataset, indices: list[int], voxel: VoxelConfig, augment: bool, seed: int) -> None:
        self.dataset, self.indices, self.voxel, self.augment, self.seed = dataset, indices, voxel, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """Frame ``i`` of the current epoch, or of ``epoch`` when the key is ``(epoch, i)``."""
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        rng = np.random.default_rng([self.seed, epoch, i]) if self.augment else None
        return voxel_sample(self.dataset[self.indices[i]], self.voxel, rng)


def collate_frames(samples: list[dict]) -> FrameBatch:
    """One sparse batch; ``point_voxel`` maps every point of every frame to its row of the batch's voxels."""
    coords, feats, point_voxel, labels, sizes = [], [], [], [], []
    offset = 0
    for b, s in enumerate(samples):
        coords.append(np.column_stack([np.full(s["coords"].shape[0], b, np.int32), s["coords"]]))
        feats.append(s["feats"])
        point_voxel.append(s["inverse"] + offset)
        labels.append(s["labels"])
        sizes.append(s["inverse"].shape[0])
        offset += s["coords"].shape[0]
    return FrameBatch(coords=torch.from_numpy(np.concatenate(coords)), feats=torch.from_numpy(np.concatenate(feats)),
                      point_voxel=torch.from_numpy(np.concatenate(point_voxel)),
                      labels=torch.from_numpy(np.concatenate(labels)), sizes=sizes, batch_size=len(samples),
                      ids=[s["id"] for s in samples])
