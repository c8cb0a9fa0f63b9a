"""The per-frame evaluation loop: voxel predictions mapped back to every point, one confusion matrix per split,
optional corruption applied on the fly (robustness), optional predictions written in the dataset's format.
`seal evaluate` itself (clean, robustness, released sets) is `seal.engine.evaluation`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from seal.core.config import VoxelConfig
from seal.core.errors import ConfigError
from seal.core.frame import Dataset, Frame
from seal.core.labelmap import LabelMap
from seal.evaluation.metrics import DEFAULT_CONVENTION, ConfusionMatrix
from seal.models.segmentation import SegmentationModel, predict_frame
from seal.samples.frames import voxel_sample


def train_to_raw(label_map: LabelMap) -> np.ndarray:
    """For writing predictions: each train id's smallest raw id (SemanticKITTI car -> 10; 0 -> 0)."""
    out = np.zeros(label_map.num_classes + 1, dtype=np.int64)
    for train_id in range(1, label_map.num_classes + 1):
        raws = np.flatnonzero(label_map.lookup == train_id)
        out[train_id] = raws[0] if raws.size else 0
    return out


def miou_convention(dataset: Dataset) -> str:
    """The mIoU convention of the dataset's benchmark (its format's), or seal's default for in-memory data."""
    return dataset.format.miou_convention if dataset.format is not None else DEFAULT_CONVENTION


def evaluate_frames(model: SegmentationModel, dataset: Dataset, indices: list[int], voxel: VoxelConfig,
                    device: torch.device, corruption: tuple[str, str] | None = None, seed: int = 0,
                    predictions_dir: Path | None = None, progress: bool = True, desc: str = "evaluate",
                    empty: list[str] | None = None,
                    on_frame: Callable[[int, Frame, np.ndarray], None] | None = None) -> ConfusionMatrix:
    """One confusion matrix over ``indices`` at full point resolution, its mIoU by the dataset format's
    convention (`miou_convention`). Frames without points (a dropped scan, or all points removed by a
    corruption) are skipped, their ids appended to ``empty`` when it is given; their prediction file, if asked
    for, is written empty so every frame still has one. ``on_frame(index, frame, prediction)`` sees every
    evaluated frame with its train-id prediction (`seal evaluate --rerun` records them)."""
    from tqdm import tqdm

    model.eval()
    cm = ConfusionMatrix(dataset.label_map.num_classes, convention=miou_convention(dataset))
    to_raw = train_to_raw(dataset.label_map)
    for index in tqdm(indices, desc=desc, unit="frame", disable=not progress, dynamic_ncols=True, leave=False):
        frame = dataset[index]
        if corruption is not None:
            from seal.robustness import corrupt_frame

            frame = corrupt_frame(frame, corruption[0], corruption[1], dataset.label_map, seed=seed)
        if frame.num_points == 0:
            if empty is not None:
                empty.append(frame.id)
            pred = np.zeros(0, dtype=np.int64)
        else:
            pred = predict_frame(model, voxel_sample(frame, voxel), device)
        if frame.labels is not None and pred.size:
            cm.update(pred, frame.labels)
        if predictions_dir is not None:
            if dataset.format is None:
                raise ConfigError(f"{dataset.root}: a dataset built in memory has no format to write predictions in")
            dataset.format.write_prediction(predictions_dir, frame.id, to_raw[pred])
        if on_frame is not None:
            on_frame(index, frame, pred)
    return cm
