"""A spinning multi-beam LiDAR (HDL-32E-like by default) that scans a scene by ray casting.

Each return carries x y z in the LiDAR frame (x forward, y left, z up), an intensity from the surface's
albedo and incidence angle, and the SemanticKITTI label of the surface. Range noise and random dropouts make
the sweep look measured rather than rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seal.synth import materials as M
from seal.synth.raycast import GROUND, MISS, Primitives, cast_rays, rotate
from seal.synth.road import Road


@dataclass(frozen=True)
class LidarSpec:
    """Beam layout and measurement model of the simulated LiDAR."""

    beams: int = 32
    azimuth_steps: int = 1440
    fov_up_deg: float = 10.0
    fov_down_deg: float = -30.0
    max_range: float = 70.0
    range_noise: float = 0.02  # metres (standard deviation)
    dropout: float = 0.03  # fraction of returns lost
    intensity_noise: float = 0.02

    def directions(self) -> np.ndarray:
        """(beams * azimuth_steps, 3) unit ray directions in the LiDAR frame, beam by beam."""
        el = np.deg2rad(np.linspace(self.fov_up_deg, self.fov_down_deg, self.beams))
        az = 2 * np.pi * np.arange(self.azimuth_steps) / self.azimuth_steps
        el, az = np.meshgrid(el, az, indexing="ij")
        return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(
            -1, 3
        )


def surface_labels(road: Road, prims: Primitives, prim: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Semantic id | instance id << 16 of hit surfaces (ground classes from the road cross-section)."""
    labels = np.zeros(len(prim), dtype=np.uint32)
    obj = prim >= 0
    labels[obj] = prims.cls[prim[obj]].astype(np.uint32) | (prims.inst[prim[obj]].astype(np.uint32) << 16)
    ground = prim == GROUND
    labels[ground] = road.ground_class(point[ground, 0], point[ground, 1])[0]
    return labels


def scan(
    prims: Primitives, road: Road, pose: np.ndarray, spec: LidarSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One sweep from the LiDAR at ``pose`` (4x4, LiDAR -> world).

    Returns (points float32 (N, 4): x y z intensity in the LiDAR frame, labels uint32 (N,)). Rays that hit
    nothing within range, and dropped-out returns, produce no point.
    """
    dirs_l = spec.directions()
    dirs_w = rotate(dirs_l, pose[:3, :3])
    hits = cast_rays(pose[:3, 3], dirs_w, prims, spec.max_range)
    keep = (hits.prim != MISS) & (rng.random(len(dirs_l)) >= spec.dropout)
    idx = np.flatnonzero(keep)
    prim, point, normal = hits.prim[idx], hits.point[idx], hits.normal[idx]
    labels = surface_labels(road, prims, prim, point)
    sem = (labels & 0xFFFF).astype(np.int64)
    albedo = M.albedo_lookup(sem)
    ground = prim == GROUND
    if ground.any():
        _, s, d = road.ground_class(point[ground, 0], point[ground, 1])
        paint = road.marking_mask(s, d) & (sem[ground] == M.ROAD)
        albedo[np.flatnonzero(ground)[paint]] = M.MARKING_ALBEDO
    cos_inc = np.abs(np.einsum("ij,ij->i", normal, dirs_w[idx]))
    rng_noise = rng.normal(0.0, spec.range_noise, len(idx))
    r = np.clip(hits.t[idx] + rng_noise, 0.5, None)
    intensity = albedo * (0.3 + 0.7 * cos_inc) + rng.normal(0.0, spec.intensity_noise, len(idx))
    out = np.empty((len(idx), 4), dtype=np.float32)
    out[:, :3] = dirs_l[idx] * r[:, None]
    out[:, 3] = np.clip(intensity, 0.0, 1.0)
    return out, labels
