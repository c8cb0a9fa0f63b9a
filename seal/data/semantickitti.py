"""Readers of the KITTI family of layouts: SemanticKITTI sequences and KITTI object frames.

SemanticKITTI layout (and every dataset stored like it: ScribbleKITTI, SemanticPOSS, SemanticSTF, seal's
synthetic sequences ...)::

    ROOT/sequences/NN/velodyne/NNNNNN.bin   float32 x y z intensity
    ROOT/sequences/NN/labels/NNNNNN.label   uint32, semantic id in the low 16 bits, instance in the high 16
    ROOT/sequences/NN/calib.txt             P0..Pk (3x4 camera projections), Tr (3x4 LiDAR -> cam0)
    ROOT/sequences/NN/poses.txt             cam0 poses, one 3x4 per scan, in frame 0's cam0 coordinates
    ROOT/sequences/NN/image_K/NNNNNN.png    camera K, projected with P_K @ Tr
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from seal.core.calibration import decompose_projection
from seal.core.errors import DataError
from seal.core.frame import Camera, Dataset, Frame, Sequence
from seal.core.io import (
    image_size,
    point_count,
    read_image,
    read_kitti_calib,
    read_points,
    read_poses,
    read_semantickitti_labels,
    to_homogeneous,
)
from seal.core.labelmap import LabelMap, load_label_map

_IMAGE_DIR = re.compile(r"image_(\d+)$")


def is_semantickitti(root: Path) -> bool:
    return any(p.is_dir() for p in (root / "sequences").glob("*/velodyne"))


def is_kitti_object(root: Path) -> bool:
    flat = any(root.glob("*_calib.txt")) and any(root.glob("*.bin"))
    split = (root / "velodyne").is_dir() and (root / "calib").is_dir()
    return flat or split


LABEL_MAP_FILE = "label_map.yaml"


def open_semantickitti(root: Path, label_map: str | Path | None = None) -> Dataset:
    """Open every sequence (or the named ones) under ``root/sequences``.

    The label map is, in order: the one named, ``ROOT/label_map.yaml`` when the dataset carries its own (seal
    writes one next to the data it derives, e.g. corrupted copies of nuScenes), else SemanticKITTI's.
    """
    if label_map is None:
        label_map = root / LABEL_MAP_FILE if (root / LABEL_MAP_FILE).is_file() else "semantickitti"
    lmap = load_label_map(label_map)
    seq_dirs = sorted(p.parent for p in (root / "sequences").glob("*/velodyne") if p.is_dir())
    seqs = [_open_sequence(d, lmap) for d in seq_dirs]
    return Dataset(root=root, kind="semantickitti", sequences=seqs, label_map=lmap)


def _camera_rigs(calib: dict[str, np.ndarray], calib_path: Path, seq_dir: Path,
                 lidar_to_cam0: np.ndarray) -> list[tuple[str, Path, np.ndarray, np.ndarray]]:
    """(name, folder, K, lidar->camera) for every image_K folder that has a P_K in the calibration."""
    rigs = []
    for folder in sorted(seq_dir.iterdir()):
        match = _IMAGE_DIR.match(folder.name)
        if not (match and folder.is_dir()):
            continue
        key = f"P{match.group(1)}"
        if key not in calib:
            raise DataError(calib_path, f"has no {key} for the camera folder {folder.name}",
                            f"add a '{key}:' line or remove the folder")
        if calib[key].size != 12:
            raise DataError(calib_path, f"{key} has {calib[key].size} values, expected 12 (3x4)")
        K, cam0_to_cam = decompose_projection(calib[key], calib_path, key)
        rigs.append((folder.name, folder, K, cam0_to_cam @ lidar_to_cam0))
    return rigs


def _lidar_to_cam0(calib: dict[str, np.ndarray], path: Path) -> np.ndarray:
    key = "Tr" if "Tr" in calib else "Tr_velo_to_cam" if "Tr_velo_to_cam" in calib else None
    if key is None:
        raise DataError(path, "has no 'Tr:' (LiDAR -> cam0) line")
    transform = to_homogeneous(calib[key], path, key)
    if "R0_rect" in calib:
        rect = np.eye(4)
        rect[:3, :3] = calib["R0_rect"].reshape(3, 3)
        transform = rect @ transform
    return transform


def _open_sequence(seq_dir: Path, lmap: LabelMap) -> Sequence:
    scans = sorted((seq_dir / "velodyne").glob("*.bin"))
    if not scans:
        raise DataError(seq_dir / "velodyne", "holds no .bin scans")
    names = [s.stem for s in scans]
    label_dir = seq_dir / "labels"
    has_labels = label_dir.is_dir() and any(label_dir.glob("*.label"))
    calib_path = seq_dir / "calib.txt"
    rigs: list = []
    lidar_to_cam0 = np.eye(4)
    if calib_path.is_file():
        calib = read_kitti_calib(calib_path)
        lidar_to_cam0 = _lidar_to_cam0(calib, calib_path)
        rigs = _camera_rigs(calib, calib_path, seq_dir, lidar_to_cam0)
    poses_path = seq_dir / "poses.txt"
    has_poses = poses_path.is_file()
    if has_poses:
        if not calib_path.is_file():
            raise DataError(poses_path, "camera poses need calib.txt (its Tr) to become LiDAR poses")
        cam_poses = read_poses(poses_path, len(scans))
        inv_tr = np.linalg.inv(lidar_to_cam0)
        poses = inv_tr @ cam_poses @ lidar_to_cam0
    else:
        poses = np.tile(np.eye(4), (len(scans), 1, 1))
    times_path = seq_dir / "times.txt"
    times = np.loadtxt(times_path, ndmin=1) if times_path.is_file() else np.arange(len(scans)) * 0.1
    if times.shape[0] != len(scans):
        raise DataError(times_path, f"has {times.shape[0]} times but the sequence has {len(scans)} scans")

    def load(index: int) -> Frame:
        scan = scans[index]
        points = read_points(scan)
        labels = raw = instances = None
        if has_labels:
            raw, instances = read_semantickitti_labels(label_dir / f"{scan.stem}.label", len(points))
            labels = lmap.to_train(raw)
        cameras = []
        for name, folder, K, lidar_to_cam in rigs:
            image_path = folder / f"{scan.stem}.png"
            width, height = image_size(image_path)
            cameras.append(Camera(name=name, K=K, lidar_to_cam=lidar_to_cam, width=width, height=height,
                                  image_path=image_path, timestamp=float(times[index])))
        return Frame(id=f"{seq_dir.name}/{scan.stem}", points=points, pose=poses[index],
                     timestamp=float(times[index]), cameras=cameras, labels=labels, raw_labels=raw,
                     instances=instances, sequence=seq_dir.name, index=index)

    return Sequence(name=seq_dir.name, frame_names=names, load=load,
                    point_count=lambda i: point_count(scans[i]), has_labels=has_labels,
                    has_poses=has_poses, camera_names=[r[0] for r in rigs])


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
        lidar_to_cam0 = _lidar_to_cam0(calib, calib_path)
        K, cam0_to_cam2 = decompose_projection(calib["P2"], calib_path, "P2")
        image = read_image(image_path)
        camera = Camera(name="image_2", K=K, lidar_to_cam=cam0_to_cam2 @ lidar_to_cam0,
                        width=image.shape[1], height=image.shape[0], image_path=image_path)
        camera.image = image
        return Frame(id=f"{root.name}/{scan.stem}", points=read_points(scan), pose=np.eye(4),
                     timestamp=0.0, cameras=[camera], sequence=root.name, index=index)

    seq = Sequence(name=root.name, frame_names=[s.stem for s in scans], load=load,
                   point_count=lambda i: point_count(scans[i]), has_labels=False, has_poses=False,
                   camera_names=["image_2"])
    return Dataset(root=root, kind="kitti-object", sequences=[seq], label_map=load_label_map("semantickitti"),
                   notes=["KITTI object frames: single frames, no poses, no per-point labels"])


__all__ = ["open_semantickitti", "open_kitti_object", "is_semantickitti", "is_kitti_object"]
