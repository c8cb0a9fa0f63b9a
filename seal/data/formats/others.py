"""Formats with their own layouts: nuScenes, the released nuScenes-C, and the Waymo Open Dataset (v2 Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seal.core.frame import Dataset
from seal.data import splits
from seal.data.formats.base import SequenceSplitFormat


class NuScenesFormat(SequenceSplitFormat):
    name = "nuscenes"
    title = "nuScenes"
    layout = "v1.0-*/ tables, samples/, sweeps/, lidarseg/"
    needs = "v1.0-trainval tables, samples/ (+ sweeps/ for every sweep), lidarseg/ for labels"
    detection = "v1.0-*/sample_data.json"
    label_map = "nuscenes"
    split_note = "val: the devkit's 150 scenes; few-shot: packaged scene lists (every k-th training scene)"
    miou_convention = "absent-excluded"  # nuscenes-devkit eval/lidarseg: ConfusionMatrix.get_mean_iou (np.nanmean)
    robustness_baseline = "nuscenes"
    options = ("version", "sweeps")
    detector = "seal.data.nuscenes:is_nuscenes"
    reader = "seal.data.nuscenes:open_nuscenes"

    def prediction_file(self, folder: Path, frame_id: str) -> tuple[Path, np.dtype]:
        """lidarseg's own layout: ``lidarseg/<lidar sample_data token>_lidarseg.bin``, uint8 raw ids."""
        return folder / "lidarseg" / f"{frame_id.rsplit('/', 1)[1]}_lidarseg.bin", np.dtype("u1")

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        if not splits.is_official(dataset, "nuscenes"):
            return None
        return (splits.select_frames(dataset, fraction, rule_only=False, lists="nuscenes"),
                splits.val_sequences("nuscenes"))

    def open_released(self, clean: Dataset, folder: Path) -> Dataset:
        """A nuScenes-C ``<corruption>/<severity>`` folder read with ``clean``'s tables and label map."""
        from seal.data.nuscenes_c import open_nuscenes_c

        version = next((d.name for d in sorted((folder / "lidarseg").glob("v1.0-*"))), None)
        return open_nuscenes_c(folder, nuscenes_root=clean.root, version=version, label_map=clean.label_map)


class NuScenesCFormat(NuScenesFormat):
    name = "nuscenes-c"
    title = "nuScenes-C (Robo3D)"
    layout = "<corruption>/<light|moderate|heavy>/{samples/LIDAR_TOP,lidarseg/v1.0-trainval}/"
    needs = ("the Robo3D nuScenes-C release (OpenDataLab) + the clean nuScenes v1.0-trainval tables "
             "(evaluate.robustness_root with the clean nuScenes as DATA, or v1.0-trainval/ linked into the root)")
    detection = "<corruption>/<severity>/samples/LIDAR_TOP/ with Robo3D corruption names"
    split_note = "evaluation only (all keyframes of each corruption/severity)"
    miou_convention = "absent-excluded"  # nuScenes' lidarseg classes and devkit rule
    cameras = False
    options = ("version", "nuscenes_root")
    detector = "seal.data.nuscenes_c:is_nuscenes_c"
    reader = "seal.data.nuscenes_c:open_nuscenes_c"

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        return None


class WaymoFormat(SequenceSplitFormat):
    name = "waymo"
    title = "Waymo Open (v2)"
    layout = "[training|validation/]<component>/<context>.parquet (v2.0.0+ Parquet components)"
    needs = ("lidar, lidar_calibration, vehicle_pose (+ lidar_segmentation for labels, camera_image and "
             "camera_calibration for pretraining); pip install 'seal[waymo]' (pyarrow)")
    detection = "lidar/*.parquet (or training|validation|testing/lidar/*.parquet)"
    label_map = "waymo"
    split_note = "training/ vs validation/ segments; few-shot: every k-th labelled training frame"
    # waymo-open-dataset metrics/segmentation_metrics.cc SegmentationMetricsIOU::ComputeIOU
    miou_convention = "absent-as-one"
    options = ("label_map", "sweeps")
    detector = "seal.data.waymo:is_waymo"

    def open(self, root: Path, **options: Any) -> Dataset:
        from seal.data.semantickitti import resolve_label_map
        from seal.data.waymo import open_waymo

        options = self.accepted(options)
        lmap = resolve_label_map(root, options.get("label_map"), self.label_map)
        return open_waymo(root, lmap, sweeps=bool(options.get("sweeps", False)))

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        from seal.data.waymo import validation_contexts

        val = set(validation_contexts(dataset.root))
        if not val:
            return None
        train = tuple(s.name for s in dataset.sequences if s.name not in val)
        return splits.sequence_split(dataset, fraction, train, sorted(val))
