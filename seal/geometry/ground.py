"""RANSAC ground removal (docs/METHOD.md §4), vectorised over hypotheses, optionally per range sector."""

from __future__ import annotations

import numpy as np

from seal.core.config import GroundConfig

_EVAL_POINTS = 4096   # hypotheses are scored on a random subset; the winner is refit on all its inliers


def fit_plane_ransac(xyz: np.ndarray, distance: float, iterations: int, max_tilt_deg: float,
                     rng: np.random.Generator, sensor_height: float | None = None
                     ) -> tuple[np.ndarray, float] | None:
    """Best plane (unit normal n with n_z > 0, offset d: n.x + d = 0) of ``xyz`` by RANSAC, or None."""
    if xyz.shape[0] < 3:
        return None
    triplets = xyz[rng.integers(0, xyz.shape[0], size=(iterations, 3))]
    normals = np.cross(triplets[:, 1] - triplets[:, 0], triplets[:, 2] - triplets[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-9
    normals = normals[ok] / norms[ok, None]
    normals *= np.where(normals[:, 2:3] < 0, -1.0, 1.0)
    offsets = -np.einsum("ij,ij->i", normals, triplets[ok, 0])
    keep = normals[:, 2] >= np.cos(np.radians(max_tilt_deg))
    if sensor_height is not None:  # the plane must pass near the expected height below the sensor
        keep &= np.abs(offsets - sensor_height) < 1.0
    normals, offsets = normals[keep], offsets[keep]
    if normals.shape[0] == 0:
        return None
    sample = xyz[rng.choice(xyz.shape[0], min(_EVAL_POINTS, xyz.shape[0]), replace=False)]
    scores = (np.abs(sample @ normals.T + offsets) < distance).sum(axis=0)
    best = int(np.argmax(scores))
    normal, offset = normals[best], offsets[best]
    inliers = xyz[np.abs(xyz @ normal + offset) < distance]
    if inliers.shape[0] >= 3:  # least-squares refit: the normal is the direction of least variance
        centre = inliers.mean(axis=0)
        normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][-1]
        normal = normal if normal[2] > 0 else -normal
        offset = -float(normal @ centre)
    return normal, float(offset)


def ground_mask(xyz: np.ndarray, cfg: GroundConfig, seed: int = 0) -> np.ndarray:
    """Boolean mask of ground points: within ``cfg.distance`` of the RANSAC plane of their range sector.

    Only points in the lower part of the sweep propose planes (walls and crowns cannot win), and a sector
    with too few points falls back to the plane of the whole sweep.
    """
    rng = np.random.default_rng(seed)
    xyz = np.asarray(xyz, dtype=np.float64)
    mask = np.zeros(xyz.shape[0], dtype=bool)
    if xyz.shape[0] < 3:
        return mask
    low = xyz[:, 2] < np.percentile(xyz[:, 2], 60)
    fit = lambda pts: fit_plane_ransac(pts, cfg.distance, cfg.iterations, cfg.max_tilt_deg, rng,  # noqa: E731
                                       cfg.sensor_height)
    global_plane = fit(xyz[low])
    if global_plane is None:
        return mask
    rho = np.hypot(xyz[:, 0], xyz[:, 1])
    sector = np.minimum((rho / cfg.sector_range).astype(int), cfg.sectors - 1) if cfg.sectors > 1 else \
        np.zeros(xyz.shape[0], dtype=int)
    for s in range(max(cfg.sectors, 1)):
        members = sector == s
        plane = global_plane
        if cfg.sectors > 1 and (members & low).sum() >= 50:
            plane = fit(xyz[members & low]) or global_plane
        normal, offset = plane
        mask[members] = np.abs(xyz[members] @ normal + offset) < cfg.distance
    return mask
