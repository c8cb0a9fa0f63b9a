"""Point -> pixel pairings (docs/METHOD.md §2): every point into every camera, kept when in front and in image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seal.core.frame import Camera

DEFAULT_MIN_DEPTH = 1.0


@dataclass
class Pairings:
    """Flat arrays, one entry per (point, camera) pair: a point may pair with several cameras."""

    point: np.ndarray   # int64 index into the frame's points
    camera: np.ndarray  # int64 index into the frame's cameras
    row: np.ndarray     # int64 pixel row (v)
    col: np.ndarray     # int64 pixel column (u)
    depth: np.ndarray   # float32 depth along the camera's optical axis, metres

    def __len__(self) -> int:
        return int(self.point.shape[0])

    def for_camera(self, index: int) -> Pairings:
        keep = self.camera == index
        return Pairings(*(a[keep] for a in (self.point, self.camera, self.row, self.col, self.depth)))

    def on_voxels(self, inverse: np.ndarray) -> np.ndarray:
        """The voxel of each pairing's point, given a voxelisation's point -> voxel inverse index."""
        return inverse[self.point]


def project_to_camera(xyz: np.ndarray, K: np.ndarray, lidar_to_cam: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel (u, v) as an Nx2 array and the depth (N,) of LiDAR points in one camera (no culling)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    cam = xyz @ lidar_to_cam[:3, :3].T + lidar_to_cam[:3, 3]
    depth = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        pix = cam @ np.asarray(K, dtype=np.float64).T
        uv = pix[:, :2] / pix[:, 2:3]
    return uv, depth


def pair_points(xyz: np.ndarray, cameras: Sequence[Camera],
                min_depth: float = DEFAULT_MIN_DEPTH) -> Pairings:
    """Pairings of points with every camera where depth > ``min_depth`` and the pixel lies in the image."""
    parts = []
    for index, camera in enumerate(cameras):
        uv, depth = project_to_camera(xyz, camera.K, camera.lidar_to_cam)
        col, row = np.floor(uv[:, 0]), np.floor(uv[:, 1])
        keep = ((depth > min_depth) & (col >= 0) & (col < camera.width) & (row >= 0) & (row < camera.height))
        idx = np.flatnonzero(keep)
        parts.append((idx, np.full(idx.shape, index, dtype=np.int64), row[idx].astype(np.int64),
                      col[idx].astype(np.int64), depth[idx].astype(np.float32)))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Pairings(empty, empty.copy(), empty.copy(), empty.copy(), np.zeros(0, np.float32))
    return Pairings(*(np.concatenate(column) for column in zip(*parts, strict=True)))
