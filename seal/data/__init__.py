"""Datasets on disk -> the one data model (`Frame`, `Sequence`, `Dataset`)."""

from __future__ import annotations

from pathlib import Path

from seal.core.errors import DataError
from seal.core.frame import Camera, Dataset, DatasetFormat, Frame, Sequence
from seal.core.labelmap import LabelMap, load_label_map


def __getattr__(name: str):
    if name == "KINDS":  # every dataset kind: the built-ins, then plugins, each sorted (`FORMATS.names()`)
        from seal.data.formats import FORMATS

        return FORMATS.names()
    raise AttributeError(f"module 'seal.data' has no attribute {name!r}")


def get_format(kind: str) -> DatasetFormat:
    """The `DatasetFormat` of ``kind`` (one object per kind, a plugin's imported on first use); a ConfigError
    naming ``data.kind`` / ``--kind`` and the known kinds otherwise."""
    from seal.data.formats import format_of

    return format_of(kind)


def detect_kind(root: Path) -> str:
    """Which layout a folder holds: formats are tried by their ``detect_priority`` (markers of their own first,
    plain SemanticKITTI and KITTI object last), plugins included; see `seal.data.formats.detection_order`."""
    from seal.data.formats import detection_order

    formats, broken = detection_order()
    for fmt in formats:
        if fmt.detect(root):
            return fmt.name
    hint = ("expected e.g. sequences/NN/velodyne/ (SemanticKITTI), v1.0-*/ tables (nuScenes), "
            "lidar/*.parquet (Waymo v2) or KITTI object frames; `seal datasets` lists every layout; or pass kind=")
    if broken:
        hint += "; not tried: " + "; ".join(str(err) for err in broken)
    raise DataError(root, "is not a dataset layout seal knows", hint)


def require_pretraining_data(dataset: Dataset) -> None:
    """A DataError unless ``dataset`` can be pretrained on: its format carries cameras and poses, and at least one
    of its sequences has both (Seal pairs LiDAR points with images and frames across time)."""
    fmt = dataset.format
    name = f"{fmt.title or fmt.name} (--kind {fmt.name})" if fmt is not None else f"{dataset.kind} (in memory)"
    missing = [what for what, has in (("camera images", fmt is None or fmt.cameras),
                                      ("ego poses", fmt is None or fmt.poses)) if not has]
    if missing:
        raise DataError(dataset.root, f"the {name} format carries no {' and no '.join(missing)}: it is for "
                                      "downstream only (probe, finetune, evaluate), pretraining needs both",
                        "`seal datasets` lists which datasets have cameras and poses")
    if not any(s.camera_names and s.has_poses for s in dataset.sequences):
        raise DataError(dataset.root, f"no sequence of this {name} dataset has both camera images and ego poses: "
                                      "as it is on disk it is for downstream only; pretraining needs both",
                        "add the image folders with their calibration and the poses")


def open_dataset(path: str | Path, kind: str | None = None, sequences: list[str] | None = None,
                 **options) -> Dataset:
    """Open a dataset folder; ``kind`` (one of `KINDS`) is detected from the layout when omitted.

    ``sequences`` keeps only the named sequences (scenes), whatever the layout. Other options go to the
    reader, which refuses those it does not take: ``label_map`` (SemanticKITTI-like layouts, Waymo), ``version``
    (nuScenes version folder, Synth4D set), ``sweeps`` (nuScenes: every sweep; Waymo: every frame, not only the
    labelled ones), ``nuscenes_root`` (nuScenes-C: the clean release whose tables place its scans).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(root, "dataset folder not found")
    fmt = get_format(kind or detect_kind(root))
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
           "detect_kind", "get_format", "KINDS", "open_configured", "require_pretraining_data"]
