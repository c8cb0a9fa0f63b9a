"""SynLiDAR: ``NN/{velodyne,labels}`` at the root as released (or ``sequences/NN/...`` as re-organised), sequences
00..12, with ``annotations.yaml`` at the root."""

from __future__ import annotations

from pathlib import Path

from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import children, resolve_label_map, sequences_dataset
from seal.data.formats.registry import FORMATS
from seal.data.scans import ScanLayout

SYNLIDAR = ScanLayout(calib=False, poses="none")


def _synlidar_dirs(root: Path) -> list[Path]:
    return children(root / "sequences", "velodyne") or [d for d in children(root, "velodyne") if d.name.isdigit()]


def is_synlidar(root: Path) -> bool:
    return (root / "annotations.yaml").is_file() and bool(_synlidar_dirs(root))


def open_synlidar(root: Path, label_map: str | Path | LabelMap | None = None) -> Dataset:
    lmap = resolve_label_map(root, label_map, "synlidar")
    return sequences_dataset(root, "synlidar", _synlidar_dirs(root), lmap, SYNLIDAR, scale=None)


@FORMATS.register("synlidar")
class SynLidarFormat(SequenceSplitFormat):
    name = "synlidar"
    title = "SynLiDAR"
    layout = "NN/{velodyne,labels}/ + annotations.yaml (or sequences/NN/...), sequences 00..12"
    needs = "the SynLiDAR release (full or the sub-sampled SubDataset), unpacked per sequence"
    detection = "annotations.yaml next to NN/velodyne/ (re-organised into sequences/: --kind synlidar)"
    detect_priority = 35
    label_map = "synlidar"
    split_note = "val 00 04 07, train the rest (as GIPSO; SynLiDAR defines none); few-shot: every k-th frame"
    miou_convention = "absent-as-zero"  # no official evaluator; SemanticKITTI layout, so its rule
    cameras = poses = False
    train_sequences = ("01", "02", "03", "05", "06", "08", "09", "10", "11", "12")
    val_sequences = ("00", "04", "07")
    detector = staticmethod(is_synlidar)
    reader = staticmethod(open_synlidar)


__all__ = ["SynLidarFormat", "is_synlidar", "open_synlidar"]
