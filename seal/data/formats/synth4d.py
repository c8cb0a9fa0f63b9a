"""Synth4D: ``{kitti_synth,nuscenes_synth}/<Town>/{velodyne,labels}/NNNNNN.npy``, one sequence per town."""

from __future__ import annotations

from pathlib import Path

from seal.core.errors import DataError
from seal.core.frame import Dataset
from seal.core.labelmap import LabelMap
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import children, resolve_label_map, sequences_dataset
from seal.data.formats.registry import FORMATS
from seal.data.scans import ScanLayout

SYNTH4D = ScanLayout(suffix=".npy", label_suffix=".npy", calib=False, poses="none")
SYNTH4D_SETS = ("kitti_synth", "nuscenes_synth")


def _synth4d_root(root: Path, version: str | None) -> Path:
    if version is not None:
        if version not in SYNTH4D_SETS or not (root / version).is_dir():
            raise DataError(root / str(version), "Synth4D set not found", f"choose one of {', '.join(SYNTH4D_SETS)}")
        return root / version
    return next((root / s for s in SYNTH4D_SETS if (root / s).is_dir()), root)


def is_synth4d(root: Path) -> bool:
    return any(any(d.glob("*.npy")) for d in _synth4d_root(root, None).glob("*/velodyne"))


def open_synth4d(root: Path, label_map: str | Path | LabelMap | None = None, version: str | None = None) -> Dataset:
    """One sequence per town of ``kitti_synth`` (HDL-64E) or ``nuscenes_synth`` (HDL-32E; ``version=``)."""
    data = _synth4d_root(root, version)
    lmap = resolve_label_map(root, label_map, "synth4d")
    dataset = sequences_dataset(root, "synth4d", children(data, "velodyne"), lmap, SYNTH4D, scale=None)
    dataset.notes.insert(0, f"set {data.name}")
    return dataset


@FORMATS.register("synth4d")
class Synth4dFormat(SequenceSplitFormat):
    name = "synth4d"
    title = "Synth4D"
    layout = "{kitti_synth,nuscenes_synth}/<Town>/{velodyne,labels,calib}/NNNNNN.npy"
    needs = "Synth4D-KITTI or Synth4D-nuScenes (data.version=nuscenes_synth picks the second)"
    detection = "<Town>/velodyne/*.npy (under kitti_synth/ or nuscenes_synth/)"
    detect_priority = 34
    label_map = "synth4d"
    split_note = "none packaged (its splits ship as pickles, not read): name split.train/val_sequences (towns)"
    miou_convention = "absent-as-zero"  # no official evaluator; SemanticKITTI-style labels, so its rule
    cameras = poses = False
    options = ("label_map", "version")
    detector = staticmethod(is_synth4d)
    reader = staticmethod(open_synth4d)


__all__ = ["Synth4dFormat", "is_synth4d", "open_synth4d"]
