"""Pinhole cameras on a ring around the LiDAR, and a ray-casting renderer of the scene they see.

Conventions (those of the files the generator writes): camera axes x right, y down, z forward; pixel (u, v)
= (column, row) with pixel centres at integer coordinates, so a point projected with K [R | t] and rounded
lands on the pixel whose centre ray was cast. cam0 is the front camera; ``Tr`` maps LiDAR to cam0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seal.synth import materials as M
from seal.synth import texture as T
from seal.synth.lidar import surface_labels
from seal.synth.raycast import GROUND, MISS, Primitives, cast_rays, rotate
from seal.synth.road import Road

#: Camera ring in nuScenes order: (name, yaw in degrees about the LiDAR z axis, left positive).
RING: tuple[tuple[str, float], ...] = (
    ("front", 0.0),
    ("front-left", 55.0),
    ("front-right", -55.0),
    ("back", 180.0),
    ("back-left", 110.0),
    ("back-right", -110.0),
)
SUN = np.array([0.45, 0.35, 0.82]) / np.linalg.norm([0.45, 0.35, 0.82])
SKY_HORIZON = np.array([0.80, 0.86, 0.93])
SKY_ZENITH = np.array([0.33, 0.52, 0.85])
FAR = 250.0  # metres rendered by the cameras; fog fades distant surfaces into the horizon colour


@dataclass(frozen=True)
class CameraSpec:
    """One pinhole camera: image size, field of view and mounting (yaw on a 0.3 m ring below the LiDAR)."""

    name: str
    yaw_deg: float
    width: int = 480
    height: int = 270
    hfov_deg: float = 70.0
    ring_radius: float = 0.3
    drop: float = 0.1  # metres below the LiDAR

    @property
    def K(self) -> np.ndarray:
        """3x3 intrinsics (square pixels, principal point at the image centre)."""
        f = (self.width / 2) / np.tan(np.deg2rad(self.hfov_deg) / 2)
        return np.array([[f, 0.0, (self.width - 1) / 2], [0.0, f, (self.height - 1) / 2], [0.0, 0.0, 1.0]])

    @property
    def lidar_to_cam(self) -> np.ndarray:
        """4x4 rigid transform from the LiDAR frame to this camera's frame."""
        yaw = np.deg2rad(self.yaw_deg)
        fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        down = np.array([0.0, 0.0, -1.0])
        rot = np.stack([right, down, fwd])
        centre = np.array([self.ring_radius * np.cos(yaw), self.ring_radius * np.sin(yaw), -self.drop])
        out = np.eye(4)
        out[:3, :3] = rot
        out[:3, 3] = -rot @ centre
        return out


def camera_rig(count: int, width: int = 480) -> list[CameraSpec]:
    """The first ``count`` cameras of the ring (1 = front only, 6 = the nuScenes layout)."""
    if not 1 <= count <= len(RING):
        raise ValueError(f"cameras must be between 1 and {len(RING)}, got {count}")
    height = int(round(width * 9 / 16))
    return [CameraSpec(name, yaw, width, height) for name, yaw in RING[:count]]


def projection_matrices(rig: list[CameraSpec]) -> tuple[list[np.ndarray], np.ndarray]:
    """(P_i for every camera, Tr): pixel = P_i @ Tr @ [x y z 1] for a LiDAR point, cam0 = rig[0]."""
    tr = rig[0].lidar_to_cam
    tr_inv = np.linalg.inv(tr)
    return [cam.K @ (cam.lidar_to_cam @ tr_inv)[:3] for cam in rig], tr


def _shade(
    prims: Primitives,
    road: Road,
    prim: np.ndarray,
    local: np.ndarray,
    point: np.ndarray,
    normal: np.ndarray,
    labels: np.ndarray,
) -> np.ndarray:
    """Lit RGB (0..1) of surface hits: base colour x texture x Lambert term."""
    n = len(prim)
    rgb = np.empty((n, 3))
    key = np.empty(n, dtype=np.uint32)
    obj = prim >= 0
    p = prim[obj]
    rgb[obj] = prims.colour[p]
    key[obj] = prims.key[p]
    gnd = ~obj
    sem = (labels & 0xFFFF).astype(np.int64)
    for cid, col in M.GROUND_COLOUR.items():
        sel = gnd & (sem == cid)
        rgb[sel] = col
        key[sel] = 0xFFFF0000 + cid
    amp = np.where(gnd, 0.10, 0.07)
    amp[gnd & (sem == M.TERRAIN)] = 0.22
    amp[obj] = np.where(np.isin(prims.cls[p], (M.VEGETATION, M.TRUNK)), 0.30, 0.07)
    tex = local.copy()
    tex[gnd] = point[gnd]
    rgb *= (1.0 + amp * T.fbm(tex, key, 0.9))[:, None]
    if gnd.any():
        _, s, d = road.ground_class(point[gnd, 0], point[gnd, 1])
        paint = road.marking_mask(s, d) & (sem[gnd] == M.ROAD)
        rgb[np.flatnonzero(gnd)[paint]] = M.MARKING_COLOUR
    pat = np.zeros(n, dtype=np.int8)
    pat[obj] = prims.pattern[p]
    if (pat != M.PATTERN_PLAIN).any():
        yaw = np.zeros(n)
        yaw[obj] = prims.yaw[p]
        c, s_ = np.cos(yaw), np.sin(yaw)
        nlx = c * normal[:, 0] + s_ * normal[:, 1]
        u = np.where(np.abs(nlx) > 0.5, local[:, 1], local[:, 0])
        top = np.abs(normal[:, 2]) > 0.5
        half_z = np.zeros(n)
        half_z[obj] = prims.half[p, 2]
        win = (pat == M.PATTERN_WINDOWS) & T.windows(u, local[:, 2] + half_z, top)
        rgb[win] = (
            np.array([0.16, 0.20, 0.28]) * (1.0 + 0.3 * T.value_noise(local[win], key[win], 2.0))[:, None]
        )
        sl = (pat == M.PATTERN_SLATS) & ~top
        rgb[sl] *= (0.8 + 0.2 * T.slats(u[sl]))[:, None]
    lambert = 0.45 + 0.55 * np.clip(rotate(normal, SUN[None, :])[:, 0], 0.0, 1.0)
    return np.clip(rgb * lambert[:, None], 0.0, 1.0)


def render_camera(
    prims: Primitives, road: Road, lidar_pose: np.ndarray, cam: CameraSpec, return_ids: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``cam`` mounted on the LiDAR at ``lidar_pose`` (4x4, LiDAR -> world) to RGB uint8 (H, W, 3).

    With ``return_ids`` also return the per-pixel label (semantic | instance << 16, uint32; 0 for sky) and
    primitive index (int64; raycast.GROUND for the ground, raycast.MISS for the sky), for tests and pictures.
    """
    h, w = cam.height, cam.width
    v, u = np.mgrid[0:h, 0:w]
    k = cam.K
    rays_c = np.stack(
        [(u.ravel() - k[0, 2]) / k[0, 0], (v.ravel() - k[1, 2]) / k[1, 1], np.ones(h * w)], axis=1
    )
    cam_to_world = lidar_pose @ np.linalg.inv(cam.lidar_to_cam)
    dirs = rotate(rays_c, cam_to_world[:3, :3])
    dirs /= np.sqrt(np.einsum("ij,ij->i", dirs, dirs))[:, None]
    hits = cast_rays(cam_to_world[:3, 3], dirs, prims, FAR)
    img = np.empty((h * w, 3))
    sky = hits.prim == MISS
    blend = np.clip(dirs[sky, 2] * 3.0, 0.0, 1.0)[:, None]
    img[sky] = (1 - blend) * SKY_HORIZON + blend * SKY_ZENITH
    hit = np.flatnonzero(~sky)
    labels = np.zeros(h * w, dtype=np.uint32)
    labels[hit] = surface_labels(road, prims, hits.prim[hit], hits.point[hit])
    rgb = _shade(prims, road, hits.prim[hit], hits.local[hit], hits.point[hit], hits.normal[hit], labels[hit])
    fog = (1.0 - np.exp(-hits.t[hit] / 180.0))[:, None]
    img[hit] = (1 - fog) * rgb + fog * SKY_HORIZON
    out = (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8).reshape(h, w, 3)
    if return_ids:
        return out, labels.reshape(h, w), hits.prim.reshape(h, w)
    return out


__all__ = ["CameraSpec", "GROUND", "RING", "camera_rig", "projection_matrices", "render_camera"]
