"""SemanticKITTI: sequences of velodyne scans with per-point labels, calibration, poses and camera images.

Its layout (seal's synthetic sequences and corrupted copies use it too; the datasets stored *like* it, each in its
own release layout, have their own formats over the same `seal.data.scans` reader)::

    ROOT/sequences/NN/velodyne/NNNNNN.bin   float32 x y z intensity
    ROOT/sequences/NN/labels/NNNNNN.label   uint32, semantic id in the low 16 bits, instance in the high 16
    ROOT/sequences/NN/calib.txt             P0..Pk (3x4 camera projections), Tr (3x4 LiDAR -> cam0)
    ROOT/sequences/NN/poses.txt             cam0 poses, one 3x4 per scan, in frame 0's cam0 coordinates
    ROOT/sequences/NN/image_K/NNNNNN.png    camera K, projected with P_K @ Tr
"""

from __future__ import annotations

from pathlib import Path

from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap
from seal.data import splits
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import open_sequences
from seal.data.formats.registry import FORMATS
from seal.data.formats.semantickitti_c import open_semantickitti_c


def is_semantickitti(root: Path) -> bool:
    return any(p.is_dir() for p in (root / "sequences").glob("*/velodyne"))


def open_semantickitti(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    """Every sequence under ``root/sequences`` (label map: the one named, ``ROOT/label_map.yaml``, or the packaged
    SemanticKITTI map)."""
    return open_sequences(root, label_map)


@FORMATS.register("semantickitti")
class SemanticKittiFormat(SequenceSplitFormat):
    name = "semantickitti"
    title = "SemanticKITTI"
    layout = "sequences/NN/{velodyne,labels,image_K}/, calib.txt, poses.txt"
    needs = ("KITTI odometry velodyne + calib (+ color images and poses for pretraining), SemanticKITTI labels "
             "(data.label_map or ROOT/label_map.yaml for other maps)")
    detection = "sequences/NN/velodyne/ (after every family member that has a marker of its own)"
    detect_priority = 80
    label_map = "semantickitti"
    split_note = "val 08; few-shot: packaged frame lists (every k-th of the 19,130 training frames)"
    miou_convention = "absent-as-zero"  # semantic-kitti-api evaluate_semantics.py: np_ioueval.iouEval.getIoU
    robustness_baseline = "semantickitti"
    detector = staticmethod(is_semantickitti)
    reader = staticmethod(open_semantickitti)

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        return splits.listed_split(dataset, fraction, "semantickitti")

    def open_released(self, clean: Dataset, folder: Path) -> Dataset:
        """A SemanticKITTI-C ``<corruption>/<severity>`` folder (velodyne/ + labels/), with ``clean``'s label map."""
        return open_semantickitti_c(folder, label_map=clean.label_map)


__all__ = ["SemanticKittiFormat", "is_semantickitti", "open_semantickitti"]
