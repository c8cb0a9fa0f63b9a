"""Datasets on disk -> the one data model (`Frame`, `Sequence`, `Dataset`)."""

from __future__ import annotations

from pathlib import Path

from seal.data.frame import Camera, Dataset, Frame, Sequence
from seal.data.labelmap import LabelMap, load_label_map
from seal.errors import DataError

KINDS = ("semantickitti", "nuscenes", "kitti-object")


def detect_kind(root: Path) -> str:
    """Which layout a folder holds; a clear error if none."""
    from seal.data.nuscenes import is_nuscenes
    from seal.data.semantickitti import is_kitti_object, is_semantickitti

    if is_nuscenes(root):
        return "nuscenes"
    if is_semantickitti(root):
        return "semantickitti"
    if is_kitti_object(root):
        return "kitti-object"
    raise DataError(root, "is not a dataset layout seal knows",
                    "expected sequences/NN/velodyne/ (SemanticKITTI), v1.0-*/ tables (nuScenes), or KITTI "
                    "object frames (velodyne/ + calib/, or NNNNNN.bin + NNNNNN_calib.txt); or pass kind=")


def open_dataset(path: str | Path, kind: str | None = None, **options) -> Dataset:
    """Open a dataset folder; ``kind`` (one of `KINDS`) is detected from the layout when omitted.

    Options go to the reader: ``label_map`` and ``sequences`` (SemanticKITTI layout), ``version`` and
    ``sweeps`` (nuScenes).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    kind = kind or detect_kind(root)
    if kind == "semantickitti":
        from seal.data.semantickitti import open_semantickitti

        return open_semantickitti(root, **options)
    if kind == "nuscenes":
        from seal.data.nuscenes import open_nuscenes

        return open_nuscenes(root, **options)
    if kind == "kitti-object":
        from seal.data.semantickitti import open_kitti_object

        return open_kitti_object(root, **options)
    raise DataError(root, f"unknown dataset kind {kind!r}", f"choose one of {', '.join(KINDS)}")


__all__ = ["Camera", "Dataset", "Frame", "Sequence", "LabelMap", "load_label_map", "open_dataset",
           "detect_kind", "KINDS"]
