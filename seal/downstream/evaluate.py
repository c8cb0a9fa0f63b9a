"""Full-resolution evaluation: voxel predictions mapped back to every point, one confusion matrix per split,
optional corruption applied on the fly (robustness), optional predictions written in the dataset's format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seal.atomic import write_bytes_atomic
from seal.data.frame import Dataset
from seal.data.labelmap import LabelMap
from seal.downstream.frames import voxel_sample
from seal.downstream.model import SegmentationModel
from seal.evaluation import ConfusionMatrix
from seal.pretrain.data import VoxelSpec


def train_to_raw(label_map: LabelMap) -> np.ndarray:
    """For writing predictions: each train id's smallest raw id (SemanticKITTI car -> 10; 0 -> 0)."""
    out = np.zeros(label_map.num_classes + 1, dtype=np.int64)
    for train_id in range(1, label_map.num_classes + 1):
        raws = np.flatnonzero(label_map.lookup == train_id)
        out[train_id] = raws[0] if raws.size else 0
    return out


@torch.no_grad()
def predict_frame(model: SegmentationModel, sample: dict, device: torch.device) -> np.ndarray:
    """Train-id prediction (1..C) for every point of a voxelised sample."""
    coords = torch.from_numpy(np.column_stack([np.zeros(len(sample["coords"]), np.int32), sample["coords"]]))
    logits = model(coords.to(device), torch.from_numpy(sample["feats"]).to(device), 1)
    return (logits.argmax(dim=1) + 1).cpu().numpy()[sample["inverse"]]


def evaluate_frames(model: SegmentationModel, dataset: Dataset, indices: list[int], voxel: VoxelSpec,
                    device: torch.device, corruption: tuple[str, str] | None = None, seed: int = 0,
                    predictions_dir: Path | None = None, progress: bool = True, desc: str = "evaluate"
                    ) -> ConfusionMatrix:
    """One confusion matrix over ``indices`` at full point resolution."""
    from tqdm import tqdm

    model.eval()
    cm = ConfusionMatrix(dataset.label_map.num_classes)
    to_raw = train_to_raw(dataset.label_map)
    for index in tqdm(indices, desc=desc, unit="frame", disable=not progress, dynamic_ncols=True, leave=False):
        frame = dataset[index]
        if corruption is not None:
            from seal.data.corruptions import corrupt_frame

            frame = corrupt_frame(frame, corruption[0], corruption[1], dataset.label_map, seed=seed)
        sample = voxel_sample(frame, voxel)
        pred = predict_frame(model, sample, device)
        if frame.labels is not None:
            cm.update(pred, frame.labels)
        if predictions_dir is not None:
            _write_prediction(predictions_dir, dataset.kind, frame.id, to_raw[pred])
    return cm


def _write_prediction(folder: Path, kind: str, frame_id: str, raw: np.ndarray) -> None:
    """SemanticKITTI ``sequences/SS/predictions/NNNNNN.label`` (uint32) or nuScenes ``<token>_lidarseg.bin``."""
    sequence, name = frame_id.rsplit("/", 1)
    if kind == "nuscenes":
        write_bytes_atomic(folder / "lidarseg" / f"{name}_lidarseg.bin", raw.astype(np.uint8).tobytes())
    else:
        write_bytes_atomic(folder / "sequences" / sequence / "predictions" / f"{name}.label",
                           raw.astype(np.uint32).tobytes())
