"""nuScenes-C (Robo3D) as released: corrupted keyframe scans and their labels, read with the clean release's tables.

The release holds, per corruption and severity, only what the corruption changed (validation keyframes)::

    NUSCENES_C/<corruption>/<light|moderate|heavy>/samples/LIDAR_TOP/<name>.pcd.bin     float32 x y z i ring
    NUSCENES_C/<corruption>/<light|moderate|heavy>/lidarseg/v1.0-trainval/<token>_lidarseg.bin   uint8

File names are those of the clean nuScenes release, so the clean ``v1.0-trainval/`` tables locate every scan in
its scene (poses, calibration, cameras); points created by a corruption carry a lidarseg index no category has
(Robo3D writes 41 for fog, 43 for crosstalk), which the label map sends to ignore. The create scripts seen
(fog, crosstalk) keep the five float32 columns; the other corruptions are assumed to as well.
"""

from __future__ import annotations

import copy
from pathlib import Path

from seal.core.config import CORRUPTIONS, SEVERITIES
from seal.core.errors import DataError
from seal.core.frame import Dataset, Sequence
from seal.core.labelmap import LabelMap, load_label_map
from seal.data.nuscenes import (
    LIDAR_CHANNEL,
    NuScenesTables,
    _lidarseg_lookup,
    _scene_sequence,
    keyframe_records,
    scenes_in_order,
)

LIDAR_DIR = Path("samples") / LIDAR_CHANNEL


def released_folders(root: Path, marker: Path) -> list[tuple[str, str, Path]]:
    """(corruption, severity, folder) of every ``root/<corruption>/<severity>/`` holding ``marker``, in the order
    of `seal.core.config.CORRUPTIONS` and `SEVERITIES`."""
    return [(c, s, root / c / s) for c in CORRUPTIONS for s in SEVERITIES if (root / c / s / marker).is_dir()]


def is_nuscenes_c(root: Path) -> bool:
    return bool(released_folders(root, LIDAR_DIR)) or (root / LIDAR_DIR).is_dir() and not any(root.glob("v1.0-*"))


def _tables_root(root: Path, nuscenes_root: str | Path | None) -> Path:
    if nuscenes_root is not None:
        return Path(nuscenes_root).expanduser()
    for candidate in (root, root.parent, root.parent.parent):
        if any((d / "sample_data.json").is_file() for d in candidate.glob("v1.0-*")):
            return candidate
    raise DataError(root, "nuScenes-C holds no tables to place its scans in scenes",
                    "give nuscenes_root=<the clean nuScenes folder> or link its v1.0-trainval/ into this folder")


def open_overlay(tables: NuScenesTables, folder: Path, lmap: LabelMap, prefix: str = "") -> list[Sequence]:
    """The scenes of ``tables`` whose keyframes ``folder`` holds, read from ``folder`` (one severity folder)."""
    view = copy.copy(tables)
    view.root = folder  # LiDAR and label files are read under the overlay, tables and calibration from the release
    label_dir = folder / "lidarseg" / tables.version
    lidar_of_sample, cams_of_sample = keyframe_records(tables, lambda sd: (folder / sd["filename"]).is_file())
    view.lidarseg = {sd["token"]: {"filename": f"lidarseg/{tables.version}/{sd['token']}_lidarseg.bin"}
                     for sd in lidar_of_sample.values() if (label_dir / f"{sd['token']}_lidarseg.bin").is_file()}
    seqs = []
    for scene, samples in scenes_in_order(tables):
        lidar = [lidar_of_sample[s["token"]] for s in samples if s["token"] in lidar_of_sample]
        if lidar:
            named = {**scene, "name": prefix + scene["name"]}
            seqs.append(_scene_sequence(view, named, lidar, cams_of_sample, lmap))
    if not seqs:
        raise DataError(folder, f"holds none of the LiDAR keyframes of {tables.folder}",
                        f"expected {LIDAR_DIR}/*.pcd.bin named as in the clean release")
    return seqs


def open_nuscenes_c(root: Path, nuscenes_root: str | Path | None = None, version: str | None = None,
                    label_map: LabelMap | None = None) -> Dataset:
    """Every corruption/severity folder under ``root`` (or ``root`` itself, one such folder) as sequences named
    ``<corruption>-<severity>-<scene>``."""
    tables = NuScenesTables(_tables_root(root, nuscenes_root), version)
    lmap = label_map or _lidarseg_lookup(tables, load_label_map("nuscenes"))
    folders = released_folders(root, LIDAR_DIR)
    if folders:
        seqs = [seq for c, s, folder in folders for seq in open_overlay(tables, folder, lmap, f"{c}-{s}-")]
    elif (root / LIDAR_DIR).is_dir():
        seqs = open_overlay(tables, root, lmap)
    else:
        raise DataError(root, "is not a nuScenes-C folder",
                        f"expected <corruption>/<severity>/{LIDAR_DIR}/ (corruptions: {', '.join(CORRUPTIONS)})")
    notes = [f"Robo3D nuScenes-C, tables of {tables.folder}"]
    return Dataset(root=root, kind="nuscenes-c", sequences=seqs, label_map=lmap, notes=notes)


__all__ = ["open_nuscenes_c", "open_overlay", "is_nuscenes_c", "released_folders"]
