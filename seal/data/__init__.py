"""Datasets on disk -> the one data model (`Frame`, `Sequence`, `Dataset`)."""

from __future__ import annotations

from pathlib import Path

from seal.core.errors import DataError
from seal.core.frame import Camera, Dataset, Frame, Sequence
from seal.core.labelmap import LabelMap, load_label_map

KINDS = ("semantickitti", "nuscenes", "kitti-object")


def get_format(kind: str, root: Path | None = None):
    """The `DatasetFormat` of ``kind``; a clear error naming the choices otherwise."""
    from seal.data.formats import FORMATS

    if kind not in FORMATS:
        raise DataError(root or Path("."), f"unknown dataset kind {kind!r}", f"choose one of {', '.join(FORMATS)}")
    return FORMATS[kind]


def detect_kind(root: Path) -> str:
    """Which layout a folder holds (formats are tried in order: nuScenes, SemanticKITTI, KITTI object)."""
    from seal.data.formats import FORMATS

    for name, fmt in FORMATS.items():
        if fmt.detect(root):
            return name
    raise DataError(root, "is not a dataset layout seal knows",
                    "expected sequences/NN/velodyne/ (SemanticKITTI), v1.0-*/ tables (nuScenes), or KITTI "
                    "object frames (velodyne/ + calib/, or NNNNNN.bin + NNNNNN_calib.txt); or pass kind=")


def open_dataset(path: str | Path, kind: str | None = None, sequences: list[str] | None = None,
                 **options) -> Dataset:
    """Open a dataset folder; ``kind`` (one of `KINDS`) is detected from the layout when omitted.

    ``sequences`` keeps only the named sequences (scenes), whatever the layout. Other options go to the
    reader: ``label_map`` (SemanticKITTI layout), ``version`` and ``sweeps`` (nuScenes).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    fmt = get_format(kind or detect_kind(root), root)
    dataset = fmt.open(root, **options)
    dataset.format = fmt
    if sequences is not None:
        wanted = {str(s) for s in sequences}
        kept = [s for s in dataset.sequences if s.name in wanted]
        if not kept:
            raise DataError(dataset.root, f"has none of the sequences {sorted(wanted)[:5]}",
                            f"it has {[s.name for s in dataset.sequences][:10]}")
        dataset.sequences = kept
    return dataset


def open_configured(data, path: str | Path | None = None, kind: str | None = None) -> Dataset:
    """Open the dataset a `seal.core.config.DataConfig` describes (``path``/``kind`` override its fields)."""
    options = {"label_map": data.label_map, "version": data.version, "sequences": data.sequences}
    options = {k: v for k, v in options.items() if v is not None}
    if data.sweeps:
        options["sweeps"] = True
    return open_dataset(path or data.path, kind=kind or data.kind, **options)


__all__ = ["Camera", "Dataset", "Frame", "Sequence", "LabelMap", "load_label_map", "open_dataset",
           "detect_kind", "get_format", "KINDS", "open_configured"]
