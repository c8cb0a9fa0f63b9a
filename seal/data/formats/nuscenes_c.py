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

import numpy as np

from seal.core.errors import DataError
from seal.core.frame import Dataset, Sequence
from seal.core.labelmap import LabelMap, load_label_map
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.nuscenes import (
    LIDAR_CHANNEL,
    NuScenesFormat,
    NuScenesTables,
    keyframe_records,
    lidarseg_lookup,
    scene_sequence,
    scenes_in_order,
)
from seal.data.formats.registry import FORMATS
from seal.data.formats.robo3d import ROBO3D_CORRUPTIONS, released_folders

LIDAR_DIR = Path("samples") / LIDAR_CHANNEL


def is_nuscenes_c(root: Path) -> bool:
    return bool(released_folders(root, LIDAR_DIR)) or (root / LIDAR_DIR).is_dir() and not any(root.glob("v1.0-*"))


def _tables_root(root: Path, nuscenes_root: str | Path | None) -> Path:
    if nuscenes_root is not None:
        return Path(nuscenes_root).expanduser()
    for candidate in (root, root.parent, root.parent.parent):
        if any((d / "sample_data.json").is_file() for d in candidate.glob("v1.0-*")):
            return candidate
    if any(root.glob("samples/CAM_*")) or (root / "sweeps").is_dir():  # a clean release, not a corruption folder
        raise DataError(root, "looks like a nuScenes release (samples/, sweeps/) without its tables: no "
                              "v1.0-*/sample_data.json", "extract the metadata (v1.0-trainval_meta.tgz or v1.0-mini) "
                        "into this folder, so that v1.0-trainval/*.json sits beside samples/")
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
            seqs.append(scene_sequence(view, named, lidar, cams_of_sample, lmap))
    if not seqs:
        raise DataError(folder, f"holds none of the LiDAR keyframes of {tables.folder}",
                        f"expected {LIDAR_DIR}/*.pcd.bin named as in the clean release")
    return seqs


def open_nuscenes_c(root: Path, nuscenes_root: str | Path | None = None, version: str | None = None,
                    label_map: LabelMap | None = None) -> Dataset:
    """Every corruption/severity folder under ``root`` (or ``root`` itself, one such folder) as sequences named
    ``<corruption>-<severity>-<scene>``."""
    tables = NuScenesTables(_tables_root(root, nuscenes_root), version)
    lmap = label_map or lidarseg_lookup(tables, load_label_map("nuscenes"))
    folders = released_folders(root, LIDAR_DIR)
    if folders:
        seqs = [seq for c, s, folder in folders for seq in open_overlay(tables, folder, lmap, f"{c}-{s}-")]
    elif (root / LIDAR_DIR).is_dir():
        seqs = open_overlay(tables, root, lmap)
    else:
        raise DataError(root, "is not a nuScenes-C folder",
                        f"expected <corruption>/<severity>/{LIDAR_DIR}/ (corruptions: {', '.join(ROBO3D_CORRUPTIONS)})")
    notes = [f"Robo3D nuScenes-C, tables of {tables.folder}"]
    return Dataset(root=root, kind="nuscenes-c", sequences=seqs, label_map=lmap, notes=notes)


@FORMATS.register("nuscenes-c")
class NuScenesCFormat(SequenceSplitFormat):
    """nuScenes-C; it shares nuScenes' tables, label map, prediction layout and baseline (by composition: an
    evaluation set has no few-shot split of its own)."""

    name = "nuscenes-c"
    title = "nuScenes-C (Robo3D)"
    layout = "<corruption>/<light|moderate|heavy>/{samples/LIDAR_TOP,lidarseg/v1.0-trainval}/"
    needs = ("the Robo3D nuScenes-C release (OpenDataLab) + the clean nuScenes v1.0-trainval tables "
             "(evaluate.robustness_root with the clean nuScenes as DATA, or v1.0-trainval/ linked into the root)")
    detection = "<corruption>/<severity>/samples/LIDAR_TOP/ with Robo3D corruption names"
    detect_priority = 21
    label_map = "nuscenes"
    split_note = "evaluation only (all keyframes of each corruption/severity)"
    miou_convention = "absent-excluded"  # nuScenes' lidarseg classes and devkit rule
    robustness_baseline = "nuscenes"
    cameras = False
    options = ("version", "nuscenes_root")
    detector = staticmethod(is_nuscenes_c)
    reader = staticmethod(open_nuscenes_c)

    def __init__(self) -> None:
        self.nuscenes = NuScenesFormat()

    def prediction_file(self, folder: Path, frame_id: str) -> tuple[Path, np.dtype]:
        return self.nuscenes.prediction_file(folder, frame_id)

    def open_released(self, clean: Dataset, folder: Path) -> Dataset:
        """One ``<corruption>/<severity>`` folder of nuScenes-C, read with ``clean``'s tables and label map."""
        version = next((d.name for d in sorted((folder / "lidarseg").glob("v1.0-*"))), None)
        return open_nuscenes_c(folder, nuscenes_root=clean.root, version=version, label_map=clean.label_map)


__all__ = ["NuScenesCFormat", "is_nuscenes_c", "open_nuscenes_c", "open_overlay"]
