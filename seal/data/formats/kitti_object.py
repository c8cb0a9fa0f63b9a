"""KITTI object frames: flat ``NNNNNN.bin/.png/_calib.txt`` triples, or ``velodyne/ image_2/ calib/`` folders.

Single frames with no poses and no per-point labels; one sequence named after the folder. Detected last: its
markers (a velodyne/ folder, .bin files) are the loosest of all formats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seal.core.calibration import decompose_projection
from seal.core.errors import DataError
from seal.core.frame import Camera, Dataset, Frame, Sequence
from seal.core.io import point_count, read_image, read_kitti_calib, read_points
from seal.core.labelmap import load_label_map
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.registry import FORMATS
from seal.data.scans import lidar_to_cam0


def is_kitti_object(root: Path) -> bool:
    flat = any(root.glob("*_calib.txt")) and any(root.glob("*.bin"))
    split = (root / "velodyne").is_dir() and (root / "calib").is_dir()
    return flat or split


def open_kitti_object(root: Path) -> Dataset:
    """Every frame of ``root`` (camera image_2, projected with P2 @ Tr) as one sequence."""
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


@FORMATS.register("kitti-object")
class KittiObjectFormat(SequenceSplitFormat):
    name = "kitti-object"
    title = "KITTI object"
    layout = "velodyne/ + calib/ + image_2/, or NNNNNN.bin/.png/_calib.txt"
    needs = "KITTI object velodyne + calib + image_2 (no per-point labels)"
    detection = "velodyne/ + calib/, or NNNNNN.bin + NNNNNN_calib.txt"
    detect_priority = 90
    label_map = "semantickitti"
    split_note = "none (single unlabelled frames)"
    miou_convention = "absent-as-zero"  # no labels; the SemanticKITTI label map, so its rule
    poses = False
    options = ()
    detector = staticmethod(is_kitti_object)
    reader = staticmethod(open_kitti_object)


__all__ = ["KittiObjectFormat", "is_kitti_object", "open_kitti_object"]
