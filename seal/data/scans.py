"""One reader for every layout that stores a sequence as a folder of scan files with matching label files.

SemanticKITTI and the datasets stored like it differ only in folder names, scan columns, intensity range, label
folder and whether calibration / poses ship with the scans; a `ScanLayout` states those facts and
`open_scan_sequence` turns one sequence folder into a `Sequence` of the data model::

    SEQ/<scan_dir>/NNNNNN.bin|.npy   points (float32 rows of `columns` values, or an N x >=3 .npy array)
    SEQ/<label_dir>/NNNNNN.label     uint32, semantic id in the low 16 bits (or an .npy of ids)
    SEQ/calib.txt                    P0..Pk (3x4 camera projections), Tr (3x4 LiDAR -> cam0)      [optional]
    SEQ/poses.txt                    one 3x4 pose per scan (cam0 poses in KITTI, LiDAR poses elsewhere) [optional]
    SEQ/image_K/NNNNNN.png           camera K, projected with P_K @ Tr                             [optional]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seal.core.calibration import check_camera, decompose_projection
from seal.core.errors import DataError
from seal.core.frame import Camera, Frame, Sequence
from seal.core.io import (
    image_size,
    point_count,
    read_kitti_calib,
    read_points,
    read_poses,
    read_semantickitti_labels,
    read_times,
    to_homogeneous,
)
from seal.core.labelmap import LabelMap

_IMAGE_DIR = re.compile(r"image_(\d+)$")


@dataclass(frozen=True)
class ScanLayout:
    """What one sequence folder of a SemanticKITTI-like dataset looks like."""

    scan_dir: str = "velodyne"                # folder of scans
    suffix: str = ".bin"                      # ".bin" (float32 rows) or ".npy"
    columns: int = 4                          # float32 values per point of a .bin scan (x y z intensity ...)
    label_dirs: tuple[str, ...] = ("labels",)  # label folders, first one holding labels wins
    label_suffix: str = ".label"              # ".label" (uint32) or ".npy"
    calib: bool = True                        # read calib.txt (Tr and the image_K cameras)
    poses: str = "kitti"                      # kitti: cam0 poses + Tr | lidar: LiDAR poses as they are | none


KITTI = ScanLayout()


def detect_intensity_scale(scan: Path, layout: ScanLayout) -> float:
    """1, 255 or 65535: the divisor bringing the intensity of ``scan`` (a dataset's first scan) into 0..1.

    For datasets whose documentation does not state the intensity range; it is decided once per dataset so that
    every frame is scaled alike."""
    values = _read_scan(scan, layout, 1.0)[:, 3]
    peak = float(values.max()) if values.size else 0.0
    return 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0


def _read_scan(path: Path, layout: ScanLayout, scale: float) -> np.ndarray:
    if layout.suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(path, f"is not a readable .npy point array: {err}") from err
        if data.ndim != 2 or data.shape[1] < 3:
            raise DataError(path, f"holds an array of shape {data.shape}, expected N x 3 or more (x y z [i])")
        points = np.zeros((data.shape[0], 4), np.float32)
        points[:, : min(4, data.shape[1])] = data[:, :4]
        if not np.isfinite(points[:, :3]).all():
            raise DataError(path, "has NaN or infinite coordinates")
    else:
        points = read_points(path, columns=layout.columns, keep=4)
    if scale != 1.0:
        points[:, 3] = np.clip(points[:, 3] / scale, 0.0, 1.0)
    return points


def _scan_count(path: Path, layout: ScanLayout) -> int:
    if layout.suffix == ".npy":
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    return point_count(path, columns=layout.columns)


def _read_labels(path: Path, layout: ScanLayout, num_points: int) -> tuple[np.ndarray, np.ndarray | None]:
    if layout.label_suffix != ".npy":
        return read_semantickitti_labels(path, num_points)
    if not path.is_file():
        raise DataError(path, "label file not found")
    raw = np.load(path, allow_pickle=False).reshape(-1).astype(np.int64)
    if raw.shape[0] != num_points:
        raise DataError(path, f"holds {raw.shape[0]} labels but the scan has {num_points} points")
    return raw, None


def lidar_to_cam0(calib: dict[str, np.ndarray], path: Path) -> np.ndarray:
    """The LiDAR -> cam0 transform of a KITTI calibration (Tr or Tr_velo_to_cam, rectified when R0_rect is given)."""
    key = "Tr" if "Tr" in calib else "Tr_velo_to_cam" if "Tr_velo_to_cam" in calib else None
    if key is None:
        raise DataError(path, "has no 'Tr:' (LiDAR -> cam0) line")
    transform = to_homogeneous(calib[key], path, key)
    if "R0_rect" in calib:
        rect = np.eye(4)
        rect[:3, :3] = calib["R0_rect"].reshape(3, 3)
        transform = rect @ transform
    return transform


def camera_rigs(calib: dict[str, np.ndarray], calib_path: Path, seq_dir: Path,
                lidar_to_cam: np.ndarray) -> list[tuple[str, Path, np.ndarray, np.ndarray]]:
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
        rigs.append((folder.name, folder, K, cam0_to_cam @ lidar_to_cam))
    return rigs


def _poses(seq_dir: Path, layout: ScanLayout, count: int, tr: np.ndarray, has_calib: bool) -> np.ndarray | None:
    path = seq_dir / "poses.txt"
    if layout.poses == "none" or not path.is_file():
        return None
    poses = read_poses(path, count)
    if layout.poses == "lidar":
        return poses
    if not has_calib:
        raise DataError(path, "camera poses need calib.txt (its Tr) to become LiDAR poses")
    return np.linalg.inv(tr) @ poses @ tr


def open_scan_sequence(seq_dir: Path, lmap: LabelMap, layout: ScanLayout = KITTI, name: str | None = None,
                       frames: set[str] | None = None, intensity_scale: float = 1.0) -> Sequence:
    """The scans of ``seq_dir`` (only the stems in ``frames`` when given) as a sequence called ``name``."""
    name = name or seq_dir.name
    all_scans = sorted((seq_dir / layout.scan_dir).glob(f"*{layout.suffix}"))
    keep = [i for i, s in enumerate(all_scans) if frames is None or s.stem in frames]
    if not keep:
        raise DataError(seq_dir / layout.scan_dir, f"holds no {layout.suffix} scans"
                        + (" of the listed frames" if frames is not None and all_scans else ""))
    scans = [all_scans[i] for i in keep]
    label_dir = next((seq_dir / d for d in layout.label_dirs
                      if any((seq_dir / d).glob(f"*{layout.label_suffix}"))), None)
    calib_path = seq_dir / "calib.txt"
    rigs: list = []
    tr = np.eye(4)
    has_calib = layout.calib and calib_path.is_file()
    if has_calib:
        calib = read_kitti_calib(calib_path)
        tr = lidar_to_cam0(calib, calib_path)
        rigs = camera_rigs(calib, calib_path, seq_dir, tr)
    poses = _poses(seq_dir, layout, len(all_scans), tr, has_calib)
    times_path = seq_dir / "times.txt"
    times = read_times(times_path, len(all_scans)) if times_path.is_file() else np.arange(len(all_scans)) * 0.1

    def load(index: int) -> Frame:
        scan, position = scans[index], keep[index]
        points = _read_scan(scan, layout, intensity_scale)
        labels = raw = instances = None
        if label_dir is not None:
            raw, instances = _read_labels(label_dir / f"{scan.stem}{layout.label_suffix}", layout, len(points))
            labels = lmap.to_train(raw)
        cameras = []
        for cam_name, folder, K, lidar_to_cam in rigs:
            image_path = folder / f"{scan.stem}.png"
            width, height = image_size(image_path)
            check_camera(K, width, height, calib_path, f"P{cam_name.split('_')[-1]}", image_path)
            cameras.append(Camera(name=cam_name, K=K, lidar_to_cam=lidar_to_cam, width=width, height=height,
                                  image_path=image_path, timestamp=float(times[position])))
        pose = poses[position] if poses is not None else np.eye(4)
        return Frame(id=f"{name}/{scan.stem}", points=points, pose=pose, timestamp=float(times[position]),
                     cameras=cameras, labels=labels, raw_labels=raw, instances=instances, sequence=name, index=index)

    return Sequence(name=name, frame_names=[s.stem for s in scans], load=load,
                    point_count=lambda i: _scan_count(scans[i], layout), has_labels=label_dir is not None,
                    has_poses=poses is not None, camera_names=[r[0] for r in rigs])


def first_scan(seq_dirs: list[Path], layout: ScanLayout) -> Path | None:
    """The first scan of the first sequence folder that has one (to detect the intensity range)."""
    for seq_dir in seq_dirs:
        scan = next(iter(sorted((seq_dir / layout.scan_dir).glob(f"*{layout.suffix}"))), None)
        if scan is not None:
            return scan
    return None


__all__ = ["ScanLayout", "KITTI", "open_scan_sequence", "detect_intensity_scale", "first_scan", "camera_rigs",
           "lidar_to_cam0"]
