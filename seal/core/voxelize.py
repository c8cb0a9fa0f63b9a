"""Cartesian and cylindrical voxelisation with the inverse index that maps voxel results back to points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seal.core.errors import ConfigError

MODES = ("cartesian", "cylindrical")


@dataclass
class Voxelization:
    """Unique voxels of a point cloud.

    ``coords`` (M x 3, int32, each axis starting at 0) are the sparse-tensor coordinates; ``inverse`` (N,)
    gives each point's voxel, so ``voxel_values[inverse]`` brings any per-voxel result back to full
    resolution; ``representative`` (M,) is one point index per voxel (its first point).
    """

    coords: np.ndarray
    inverse: np.ndarray
    representative: np.ndarray
    counts: np.ndarray
    origin: np.ndarray

    @property
    def num_voxels(self) -> int:
        return int(self.coords.shape[0])

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Per-voxel mean of per-point values (N x C or N,)."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.reshape(values.shape[0], -1)
        sums = np.zeros((self.num_voxels, flat.shape[1]))
        np.add.at(sums, self.inverse, flat)
        return (sums / self.counts[:, None]).reshape((self.num_voxels,) + values.shape[1:])


def quantize(xyz: np.ndarray, voxel_size: float = 0.1, mode: str = "cartesian",
             angle_bin_deg: float = 1.0) -> np.ndarray:
    """Integer grid coordinates of points: (x, y, z)/size, or (rho/size, phi/bin, z/size) when cylindrical."""
    if mode not in MODES:
        raise ConfigError(f"voxel mode {mode!r} is unknown: choose one of {', '.join(MODES)}")
    if voxel_size <= 0 or angle_bin_deg <= 0:
        raise ConfigError("voxel size and angle bin must be positive")
    xyz = np.asarray(xyz, dtype=np.float64)
    if mode == "cartesian":
        scaled = xyz / voxel_size
    else:
        rho = np.hypot(xyz[:, 0], xyz[:, 1])
        phi = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) + 180.0
        scaled = np.stack([rho / voxel_size, phi / angle_bin_deg, xyz[:, 2] / voxel_size], axis=1)
    return np.floor(scaled).astype(np.int64)


def voxelize(xyz: np.ndarray, voxel_size: float = 0.1, mode: str = "cartesian",
             angle_bin_deg: float = 1.0) -> Voxelization:
    """Unique voxels of points, in order of first occurrence, with the point -> voxel inverse index."""
    grid = quantize(xyz, voxel_size, mode, angle_bin_deg)
    if grid.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Voxelization(np.zeros((0, 3), np.int32), empty, empty.copy(), empty.copy(), np.zeros(3, np.int64))
    origin = grid.min(axis=0)
    grid -= origin
    extent = grid.max(axis=0) + 1
    if np.prod(extent.astype(np.float64)) >= 2.0**62:
        raise ConfigError(f"the point cloud spans {extent.tolist()} voxels: the voxel size is far too small")
    keys = np.ravel_multi_index(grid.T, extent)
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first, kind="stable")  # voxels in order of their first point: stable, deterministic
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return Voxelization(coords=grid[first[order]].astype(np.int32), inverse=rank[inverse.reshape(-1)],
                        representative=first[order], counts=counts[order], origin=origin)
