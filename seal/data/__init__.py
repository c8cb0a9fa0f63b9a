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


def open_dataset(path: str | Path, kind: str | None = None, sequences: list[str] | None = None,
                 **options) -> Dataset:
    """Open a dataset folder; ``kind`` (one of `KINDS`) is detected from the layout when omitted.

    ``sequences`` keeps only the named sequences (scenes), whatever the layout. Other options go to the
    reader: ``label_map`` (SemanticKITTI layout), ``version`` and ``sweeps`` (nuScenes).
    """
    dataset = _open(Path(path).expanduser(), kind, **options)
    if sequences is not None:
        wanted = {str(s) for s in sequences}
        kept = [s for s in dataset.sequences if s.name in wanted]
        if not kept:
            raise DataError(dataset.root, f"has none of the sequences {sorted(wanted)[:5]}",
                            f"it has {[s.name for s in dataset.sequences][:10]}")
        dataset.sequences = kept
    return dataset


def _open(root: Path, kind: str | None, **options) -> Dataset:
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


def open_configured(data, path: str | Path | None = None, kind: str | None = None) -> Dataset:
    """Open the dataset a `seal.config.DataConfig` describes (``path``/``kind`` override its fields)."""
    options = {"label_map": data.label_map, "version": data.version, "sequences": data.sequences}
    options = {k: v for k, v in options.items() if v is not None}
    if data.sweeps:
        options["sweeps"] = True
    return open_dataset(path or data.path, kind=kind or data.kind, **options)


__all__ = ["Camera", "Dataset", "Frame", "Sequence", "LabelMap", "load_label_map", "open_dataset",
           "detect_kind", "KINDS", "open_configured"]
