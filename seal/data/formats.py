"""The dataset formats seal reads, each behind the `DatasetFormat` interface of the data model.

A format knows how to detect and open its layout, where predictions go in its own format, which few-shot
split is official for it, and which Robo3D baseline its robustness numbers compare against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seal.core.frame import Dataset, DatasetFormat
from seal.data import splits


def _frame_offsets(dataset: Dataset) -> list[int]:
    offsets, start = [], 0
    for seq in dataset.sequences:
        offsets.append(start)
        start += len(seq)
    return offsets


class SemanticKittiFormat(DatasetFormat):
    name = "semantickitti"
    layout = "sequences/NN/{velodyne,labels,image_K}/, calib.txt, poses.txt"
    label_map = "semantickitti"
    robustness_baseline = "semantickitti"

    def detect(self, root: Path) -> bool:
        from seal.data.semantickitti import is_semantickitti

        return is_semantickitti(root)

    def open(self, root: Path, **options: Any) -> Dataset:
        from seal.data.semantickitti import open_semantickitti

        return open_semantickitti(root, **options)

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        if not splits.is_official(dataset):
            return None
        return splits.select_frames(dataset, fraction, rule_only=False), splits.val_sequences(self.name)

    def rule_split(self, dataset: Dataset, fraction: int) -> list[int]:
        return splits.select_frames(dataset, fraction, rule_only=True)


class NuScenesFormat(DatasetFormat):
    name = "nuscenes"
    layout = "v1.0-*/ tables, samples/, sweeps/, lidarseg/"
    label_map = "nuscenes"
    robustness_baseline = "nuscenes"

    def detect(self, root: Path) -> bool:
        from seal.data.nuscenes import is_nuscenes

        return is_nuscenes(root)

    def open(self, root: Path, **options: Any) -> Dataset:
        from seal.data.nuscenes import open_nuscenes

        return open_nuscenes(root, **options)

    def prediction_file(self, folder: Path, frame_id: str) -> tuple[Path, np.dtype]:
        """lidarseg's own layout: ``lidarseg/<lidar sample_data token>_lidarseg.bin``, uint8 raw ids."""
        return folder / "lidarseg" / f"{frame_id.rsplit('/', 1)[1]}_lidarseg.bin", np.dtype("u1")

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        if not splits.is_official(dataset):
            return None
        return splits.select_frames(dataset, fraction, rule_only=False), splits.val_sequences(self.name)

    def rule_split(self, dataset: Dataset, fraction: int) -> list[int]:
        return splits.select_frames(dataset, fraction, rule_only=True)


class KittiObjectFormat(DatasetFormat):
    name = "kitti-object"
    layout = "velodyne/ + calib/ + image_2/, or NNNNNN.bin/.png/_calib.txt"
    label_map = "semantickitti"
    poses = False

    def detect(self, root: Path) -> bool:
        from seal.data.semantickitti import is_kitti_object

        return is_kitti_object(root)

    def open(self, root: Path, **options: Any) -> Dataset:
        from seal.data.semantickitti import open_kitti_object

        return open_kitti_object(root, **options)

    def rule_split(self, dataset: Dataset, fraction: int) -> list[int]:
        return splits.select_frames(dataset, fraction, rule_only=True)


FORMATS: dict[str, DatasetFormat] = {f.name: f for f in (NuScenesFormat(), SemanticKittiFormat(),
                                                          KittiObjectFormat())}
