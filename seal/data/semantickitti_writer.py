"""Writing the SemanticKITTI layout, in one place: synthetic sequences and corrupted copies both go through it.

    ROOT/sequences/NN/velodyne/NNNNNN.bin   float32 x y z intensity
    ROOT/sequences/NN/labels/NNNNNN.label   uint32: semantic id in the low 16 bits, instance in the high 16
    ROOT/sequences/NN/image_K/NNNNNN.png    camera K
    ROOT/sequences/NN/segments_K/NNNNNN.png segment map of image_K (uint16, 16-bit PNG; synthetic data only)
    ROOT/sequences/NN/classes_K/NNNNNN.png  raw class id of every pixel of image_K (uint16; synthetic data only)
    ROOT/sequences/NN/calib.txt             P0..Pk (3x4), Tr (3x4 LiDAR -> cam0)
    ROOT/sequences/NN/poses.txt             cam0 pose of each scan in cam0 of the first (3x4 per line)
    ROOT/sequences/NN/times.txt             seconds since the first scan
Every file is written atomically, so a killed writer never leaves a half-written scan.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seal.core.atomic import write_bytes_atomic, write_text_atomic


def matrix_text(m: np.ndarray) -> str:
    """The first three rows of a matrix as 12 space-separated floats (the KITTI text format)."""
    return " ".join(f"{v:.12e}" for v in np.asarray(m, dtype=np.float64)[:3].ravel())


class SequenceWriter:
    """One sequence folder of the SemanticKITTI layout."""

    def __init__(self, root: Path, name: str) -> None:
        self.folder = Path(root) / "sequences" / name

    def scan_paths(self, stem: str, cameras: int = 0) -> list[Path]:
        """velodyne .bin, labels .label, then image_2.. .png of one scan."""
        return ([self.folder / "velodyne" / f"{stem}.bin", self.folder / "labels" / f"{stem}.label"]
                + [self.folder / f"image_{i + 2}" / f"{stem}.png" for i in range(cameras)])

    def segment_paths(self, stem: str, cameras: int) -> list[Path]:
        """segments_2.. .png of one scan: the segment map of each camera image."""
        return [self.folder / f"segments_{i + 2}" / f"{stem}.png" for i in range(cameras)]

    def class_paths(self, stem: str, cameras: int) -> list[Path]:
        """classes_2.. .png of one scan: the raw class id of every pixel of each camera image."""
        return [self.folder / f"classes_{i + 2}" / f"{stem}.png" for i in range(cameras)]

    def write_scan(self, stem: str, points: np.ndarray, labels: np.ndarray | None = None,
                   instances: np.ndarray | None = None, images: Sequence[np.ndarray] = (),
                   segments: Sequence[np.ndarray] = (), classes: Sequence[np.ndarray] = ()) -> None:
        """Points (N x 4), raw semantic ids and instance ids (packed into one uint32), camera images (uint8) and,
        if given, one segment map and one class map per image (uint16, written as 16-bit PNGs)."""
        paths = self.scan_paths(stem, len(images))
        write_bytes_atomic(paths[0], np.asarray(points, dtype="<f4").tobytes())
        if labels is not None:
            raw = np.asarray(labels).astype(np.uint32)
            if instances is not None:
                raw = (raw & 0xFFFF) | ((np.asarray(instances).astype(np.uint32) & 0xFFFF) << 16)
            write_bytes_atomic(paths[1], raw.astype("<u4").tobytes())
        for path, image in zip(paths[2:], images, strict=True):
            write_bytes_atomic(path, png_bytes(image))
        if len(segments):
            for path, seg in zip(self.segment_paths(stem, len(images)), segments, strict=True):
                write_bytes_atomic(path, png_bytes(np.asarray(seg, dtype=np.uint16)))
        if len(classes):
            for path, cls in zip(self.class_paths(stem, len(images)), classes, strict=True):
                write_bytes_atomic(path, png_bytes(np.asarray(cls, dtype=np.uint16)))

    def write_meta(self, projections: Sequence[np.ndarray], lidar_to_cam0: np.ndarray,
                   cam0_poses: Sequence[np.ndarray], times: Sequence[float]) -> None:
        """calib.txt (P0.. then Tr), poses.txt (cam0 poses, one per scan in file order) and times.txt."""
        calib = [f"P{i}: {matrix_text(p)}" for i, p in enumerate(projections)] + [f"Tr: {matrix_text(lidar_to_cam0)}"]
        write_text_atomic(self.folder / "calib.txt", "\n".join(calib) + "\n")
        write_text_atomic(self.folder / "poses.txt", "".join(matrix_text(p) + "\n" for p in cam0_poses))
        write_text_atomic(self.folder / "times.txt", "".join(f"{t:.17g}\n" for t in times))


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 image (or a uint16 map: 16-bit grayscale) as PNG (fast compression: these files are written once
    and read many times)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
