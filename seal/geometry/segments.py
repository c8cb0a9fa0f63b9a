"""Temporal superpoints (docs/METHOD.md §4): one joint clustering of two registered frames.

Segment ids: -1 = ignored (HDBSCAN noise, beyond ``max_range``, or ground when ``ground_mode=ignore``),
0 = ground (``ground_mode=segment``), 1..K = clusters; an id means the same object in both frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seal.core.config import SuperpointConfig
from seal.core.errors import ConfigError
from seal.core.voxelize import voxelize
from seal.geometry.ground import ground_mask

IGNORE = -1
GROUND = 0
GROUND_MODES = ("segment", "ignore")


@dataclass
class SuperpointPair:
    """Segment ids of the points of frame t and of frame t+n (same id = same segment in both)."""

    first: np.ndarray
    second: np.ndarray

    @property
    def num_segments(self) -> int:
        ids = np.concatenate([self.first, self.second])
        return int(np.unique(ids[ids > GROUND]).shape[0])


def relative_transform(pose_first: np.ndarray, pose_second: np.ndarray) -> np.ndarray:
    """The 4x4 map from frame t+n's LiDAR coordinates to frame t's (poses map LiDAR -> world)."""
    return np.linalg.inv(pose_first) @ pose_second


def cluster_pair(xyz_first: np.ndarray, xyz_second: np.ndarray, second_to_first: np.ndarray,
                 cfg: SuperpointConfig) -> SuperpointPair:
    """Ground removal per frame, then one HDBSCAN over both frames' remaining points in frame t's coordinates."""
    from sklearn.cluster import HDBSCAN

    if cfg.ground_mode not in GROUND_MODES:
        raise ConfigError(f"superpoints.ground_mode={cfg.ground_mode!r}: choose one of {', '.join(GROUND_MODES)}")
    moved = xyz_second @ second_to_first[:3, :3].T + second_to_first[:3, 3]
    labels, candidates = [], []
    for own, seed in ((xyz_first, cfg.seed), (xyz_second, cfg.seed + 1)):
        ground = ground_mask(own, cfg.ground, seed=seed)  # each frame in its own coordinates: sensor-height prior
        near = np.hypot(own[:, 0], own[:, 1]) <= cfg.max_range
        out = np.full(own.shape[0], IGNORE, dtype=np.int32)
        if cfg.ground_mode == "segment":
            out[ground & near] = GROUND
        labels.append(out)
        candidates.append(np.flatnonzero(~ground & near))
    points = np.concatenate([xyz_first[candidates[0]], moved[candidates[1]]])
    # Cluster voxel centroids (HDBSCAN's cost grows faster than linearly), then spread the ids back to points.
    if cfg.voxel > 0:
        vox = voxelize(points, voxel_size=cfg.voxel, mode="cartesian")
        centroids, inverse = vox.mean(points), vox.inverse
    else:
        centroids, inverse = points, np.arange(points.shape[0])
    if centroids.shape[0] >= max(cfg.min_cluster_size, 2):
        hdb = HDBSCAN(min_cluster_size=cfg.min_cluster_size, min_samples=cfg.min_samples,
                      cluster_selection_epsilon=cfg.cluster_selection_epsilon, copy=True)
        cluster = hdb.fit_predict(centroids)[inverse]
        ids = np.where(cluster >= 0, cluster + 1, IGNORE).astype(np.int32)
        split = candidates[0].shape[0]
        labels[0][candidates[0]] = ids[:split]
        labels[1][candidates[1]] = ids[split:]
    return SuperpointPair(first=labels[0], second=labels[1])
