"""Readers of the KITTI family of layouts: SemanticKITTI sequences and KITTI object frames.

SemanticKITTI layout (seal's synthetic sequences and corrupted copies use it too; the datasets stored *like* it,
each in its own release layout, are read by `seal.data.family` through the same `seal.data.scans` reader)::

    ROOT/sequences/NN/velodyne/NNNNNN.bin   float32 x y z intensity
    ROOT/sequences/NN/labels/NNNNNN.label   uint32, semantic id in the low 16 bits, instance in the high 16
    ROOT/sequences/NN/calib.txt             P0..Pk (3x4 camera projections), Tr (3x4 LiDAR -> cam0)
    ROOT/sequences/NN/poses.txt             cam0 poses, one 3x4 per scan, in frame 0's cam0 coordinates
    ROOT/sequences/NN/image_K/NNNNNN.png    camera K, projected with P_K @ Tr
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seal.core.calibration import decompose_projection
from seal.core.errors import DataError
from seal.core.frame import Camera, Dataset, Frame, Sequence
from seal.core.io import point_count, read_image, read_kitti_calib, read_points
from seal.core.labelmap import LabelMap, load_label_map
from seal.data.scans import KITTI, ScanLayout, lidar_to_cam0, open_scan_sequence


def is_semantickitti(root: Path) -> bool:
    return any(p.is_dir() for p in (root / "sequences").glob("*/velodyne"))


def is_kitti_object(root: Path) -> bool:
    flat = any(root.glob("*_calib.txt")) and any(root.glob("*.bin"))
    split = (root / "velodyne").is_dir() and (root / "calib").is_dir()
    return flat or split


LABEL_MAP_FILE = "label_map.yaml"


def resolve_label_map(root: Path, label_map: str | Path | LabelMap | None, default: str) -> LabelMap:
    """The label map named (a packaged name, a YAML path or a loaded map), else ``ROOT/label_map.yaml`` when the
    dataset carries its own (seal writes one next to the data it derives), else the packaged ``default``."""
    if isinstance(label_map, LabelMap):
        return label_map
    if label_map is None:
        label_map = root / LABEL_MAP_FILE if (root / LABEL_MAP_FILE).is_file() else default
    return load_label_map(label_map)


def open_semantickitti(root: Path, label_map: str | Path | LabelMap | None = None, layout: ScanLayout = KITTI,
                       kind: str = "semantickitti", default_map: str = "semantickitti") -> Dataset:
    """Open every sequence under ``root/sequences`` (label map: see `resolve_label_map`)."""
    lmap = resolve_label_map(root, label_map, default_map)
    seq_dirs = sorted(p.parent for p in (root / "sequences").glob(f"*/{layout.scan_dir}") if p.is_dir())
    seqs = [open_scan_sequence(d, lmap, layout) for d in seq_dirs]
    return Dataset(root=root, kind=kind, sequences=seqs, label_map=lmap)


def open_kitti_object(root: Path) -> Dataset:
    """KITTI object frames: flat ``NNNNNN.bin/.png/_calib.txt`` triples, or velodyne/ image_2/ calib/ folders.

    Single frames with no poses and no per-point labels; one sequence named after the folder.
    """
    split = (root / "velodyne").is_dir()
    scans = sorted((root / "velodyne").glob("*.bin") if split else root.glob("*.bin"))
    if not scans:
        raise DataError(root, "holds no .bin scans")

    def files(scan: Path) -> tuple[Path, Path]:
        if split:
            return root / "calib" / f"{scan.stem}.txt", root / "image_2" / f"{scan.stem}.png"
        return root / f"{scan.stem}_calib.txt", root / f"{scan.stem}.png"

    def load(index: int) -> Frame:
        scan = scans[index]
        calib_path, image_path = files(scan)
        calib = read_kitti_calib(calib_path)
        if "P2" not in calib:
            raise DataError(calib_path, "has no P2 (left colour camera) line")
        tr = lidar_to_cam0(calib, calib_path)
        K, cam0_to_cam2 = decompose_projection(calib["P2"], calib_path, "P2")
        image = read_image(image_path)
        camera = Camera(name="image_2", K=K, lidar_to_cam=cam0_to_cam2 @ tr,
                        width=image.shape[1], height=image.shape[0], image_path=image_path)
        camera.image = image
        return Frame(id=f"{root.name}/{scan.stem}", points=read_points(scan), pose=np.eye(4),
                     timestamp=0.0, cameras=[camera], sequence=root.name, index=index)

    seq = Sequence(name=root.name, frame_names=[s.stem for s in scans], load=load,
                   point_count=lambda i: point_count(scans[i]), has_labels=False, has_poses=False,
                   camera_names=["image_2"])
    return Dataset(root=root, kind="kitti-object", sequences=[seq], label_map=load_label_map("semantickitti"),
                   notes=["KITTI object frames: single frames, no poses, no per-point labels"])


__all__ = ["open_semantickitti", "open_kitti_object", "is_semantickitti", "is_kitti_object", "resolve_label_map"]
