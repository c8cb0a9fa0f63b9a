"""Vectorised ray casting of a bundle of rays from one origin against a set of primitives and the ground.

Shared by the LiDAR and the cameras, so both sensors see exactly the same surfaces. Primitives are oriented
boxes, vertical cylinders and ellipsoids, each with a yaw about z (enough for a street scene); the ground is
the plane z = 0. Culling: rays and primitives are binned by direction (azimuth x elevation, as seen from the
origin); a ray is only tested against the primitives whose conservative angular bounds overlap its bin. Every
step is a numpy array operation over (ray, primitive) pairs; Python loops run over primitive kinds and chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX, CYLINDER, ELLIPSOID = 0, 1, 2
GROUND = -1  # ``Hits.prim`` of a ray that hit the ground plane
MISS = -2  # ``Hits.prim`` of a ray that hit nothing within range
_EPS = 1e-4


@dataclass
class Primitives:
    """Geometry and appearance of P primitives (struct of arrays, all indexed by primitive)."""

    kind: np.ndarray  # (P,) int8: BOX, CYLINDER or ELLIPSOID
    center: np.ndarray  # (P, 3) float64, world
    half: np.ndarray  # (P, 3) half extents (box); (r, r, half height) (cylinder); radii (ellipsoid)
    yaw: np.ndarray  # (P,) rotation about z of the local frame
    cls: np.ndarray  # (P,) uint16 SemanticKITTI raw id
    inst: np.ndarray  # (P,) uint16 instance id (0 = stuff)
    key: np.ndarray  # (P,) uint32 stable texture seed (the same primitive keeps it in every frame)
    colour: np.ndarray  # (P, 3) base RGB in 0..1
    pattern: np.ndarray  # (P,) int8 texture pattern (materials.PATTERN_*)

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @staticmethod
    def concat(parts: list[Primitives]) -> Primitives:
        """One set holding all primitives of ``parts`` in order."""
        names = Primitives.__dataclass_fields__
        return Primitives(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


@dataclass
class Hits:
    """Closest intersection of each ray."""

    t: np.ndarray  # (N,) distance along the (unit) ray; inf for MISS
    prim: np.ndarray  # (N,) primitive index, GROUND or MISS
    point: np.ndarray  # (N, 3) world hit point (undefined for MISS)
    local: np.ndarray  # (N, 3) hit point in the primitive's local frame (world frame for the ground)
    normal: np.ndarray  # (N, 3) world unit normal, facing the ray origin


def rotate(v: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """``v @ rot.T`` for (N, 3) vectors, written out so it never goes through (threaded) BLAS."""
    return v[:, 0:1] * rot[:, 0] + v[:, 1:2] * rot[:, 1] + v[:, 2:3] * rot[:, 2]


def _rotate_z(v: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) vectors about z by the angle whose cosine/sine are given (broadcast)."""
    out = np.empty(np.broadcast_shapes(v.shape, cos.shape + (3,)), dtype=np.float64)
    out[..., 0] = cos * v[..., 0] - sin * v[..., 1]
    out[..., 1] = sin * v[..., 0] + cos * v[..., 1]
    out[..., 2] = v[..., 2]
    return out


def _angular_bins(
    origin: np.ndarray, prims: Primitives, daz: float, del_: float, max_range: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Conservative azimuth/elevation bin ranges of every primitive, seen from ``origin``.

    Returns (a0, a_span, e0, e1, keep): the primitive covers azimuth bins a0 .. a0 + a_span (modulo the bin
    count) and elevation bins e0 .. e1; ``keep`` is False for primitives entirely beyond ``max_range``.
    """
    c, s = np.cos(prims.yaw), np.sin(prims.yaw)
    o_l = _rotate_z(origin[None, :] - prims.center, c, -s)
    hx, hy, hz = prims.half[:, 0], prims.half[:, 1], prims.half[:, 2]
    ex, ey = np.abs(o_l[:, 0]) - hx, np.abs(o_l[:, 1]) - hy
    dmin = np.hypot(np.maximum(ex, 0.0), np.maximum(ey, 0.0))
    dmax = np.hypot(np.abs(o_l[:, 0]) + hx, np.abs(o_l[:, 1]) + hy)
    inside = (ex <= 0) & (ey <= 0)
    rel_c = prims.center - origin
    az_c = np.arctan2(rel_c[:, 1], rel_c[:, 0])
    corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64)
    cx = corners[None, :, 0] * hx[:, None]
    cy = corners[None, :, 1] * hy[:, None]
    wx = c[:, None] * cx - s[:, None] * cy + rel_c[:, 0:1]
    wy = s[:, None] * cx + c[:, None] * cy + rel_c[:, 1:2]
    rel = np.mod(np.arctan2(wy, wx) - az_c[:, None] + np.pi, 2 * np.pi) - np.pi
    lo = az_c + rel.min(axis=1) - 1e-6 + np.pi
    hi = az_c + rel.max(axis=1) + 1e-6 + np.pi
    n_az = int(round(2 * np.pi / daz))
    a0 = np.floor(lo / daz).astype(np.int64)
    a_span = np.floor(hi / daz).astype(np.int64) - a0
    a_span[inside] = n_az
    a0 = np.mod(a0, n_az)
    zlo = prims.center[:, 2] - hz - origin[2]
    zhi = prims.center[:, 2] + hz - origin[2]
    el_hi = np.arctan2(zhi, np.where(zhi > 0, dmin, dmax))
    el_lo = np.arctan2(zlo, np.where(zlo < 0, dmin, dmax))
    e0 = np.floor((el_lo - 1e-6 + np.pi / 2) / del_).astype(np.int64)
    e1 = np.floor((el_hi + 1e-6 + np.pi / 2) / del_).astype(np.int64)
    d3 = np.sqrt(dmin**2 + np.maximum(zlo, 0.0) ** 2 + np.maximum(-zhi, 0.0) ** 2)
    return a0, a_span, e0, e1, d3 <= max_range


def _intersect(kind: int, o: np.ndarray, d: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Distance to the first intersection of local rays (o, d) with unit-oriented primitives of ``kind``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == BOX:  # slab test, axis by axis (reductions over a length-3 axis are slow in numpy)
            tmin = np.full(len(o), -np.inf)
            tmax = np.full(len(o), np.inf)
            for ax in range(3):
                inv = 1.0 / d[:, ax]
                t1 = (-h[:, ax] - o[:, ax]) * inv
                t2 = (h[:, ax] - o[:, ax]) * inv
                np.maximum(tmin, np.minimum(t1, t2), out=tmin)
                np.minimum(tmax, np.maximum(t1, t2), out=tmax)
            return np.where((tmax >= tmin) & (tmin > _EPS), tmin, np.inf)
        if kind == CYLINDER:
            r, hz = h[:, 0], h[:, 2]
            a = d[:, 0] ** 2 + d[:, 1] ** 2
            b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]
            cc = o[:, 0] ** 2 + o[:, 1] ** 2 - r**2
            disc = b * b - a * cc
            ts = (-b - np.sqrt(disc)) / a
            zs = o[:, 2] + ts * d[:, 2]
            side = np.where((disc >= 0) & (ts > _EPS) & (np.abs(zs) <= hz), ts, np.inf)
            tc = np.where(d[:, 2] < 0, hz - o[:, 2], -hz - o[:, 2]) / d[:, 2]
            px, py = o[:, 0] + tc * d[:, 0], o[:, 1] + tc * d[:, 1]
            cap = np.where((tc > _EPS) & (px**2 + py**2 <= r**2), tc, np.inf)
            return np.minimum(side, cap)
        # ELLIPSOID: scale to the unit sphere
        os_, ds = o / h, d / h
        a = ds[:, 0] ** 2 + ds[:, 1] ** 2 + ds[:, 2] ** 2
        b = os_[:, 0] * ds[:, 0] + os_[:, 1] * ds[:, 1] + os_[:, 2] * ds[:, 2]
        cc = os_[:, 0] ** 2 + os_[:, 1] ** 2 + os_[:, 2] ** 2 - 1.0
        disc = b * b - a * cc
        t = (-b - np.sqrt(disc)) / a
        return np.where((disc >= 0) & (t > _EPS), t, np.inf)


def _local_normal(kind: int, p: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Outward unit normal, in the local frame, at local surface points ``p`` of primitives of ``kind``."""
    n = np.zeros_like(p)
    rows = np.arange(len(p))
    if kind == BOX:
        q = np.abs(p) / h
        axis = np.where(q[:, 0] >= q[:, 1], 0, 1)
        axis = np.where(q[:, 2] > q[rows, axis], 2, axis)
        n[rows, axis] = np.sign(p[rows, axis])
    elif kind == CYLINDER:
        cap = np.abs(p[:, 2]) >= h[:, 2] - 1e-6
        n[:, :2] = p[:, :2] / h[:, :2]
        n[cap] = 0.0
        n[cap, 2] = np.sign(p[cap, 2])
    else:
        n = p / (h * h)
    return n / np.maximum(np.sqrt(np.einsum("ij,ij->i", n, n)), 1e-12)[:, None]


def cast_rays(
    origin: np.ndarray,
    dirs: np.ndarray,
    prims: Primitives,
    max_range: float,
    ground: bool = True,
    bin_deg: float = 2.0,
    chunk_pairs: int = 1_500_000,
) -> Hits:
    """Closest hit of each unit ray ``dirs`` (N, 3) from ``origin`` (3,) within ``max_range`` metres."""
    origin = np.asarray(origin, dtype=np.float64)
    n = len(dirs)
    daz = del_ = np.deg2rad(bin_deg)
    n_az, n_el = int(round(2 * np.pi / daz)), int(np.ceil(np.pi / del_)) + 1
    best = np.full(n, np.inf)
    best_prim = np.full(n, MISS, dtype=np.int64)
    if ground:
        with np.errstate(divide="ignore", invalid="ignore"):
            tg = np.where(dirs[:, 2] < 0, -origin[2] / dirs[:, 2], np.inf)
        hit = tg <= max_range
        best[hit] = tg[hit]
        best_prim[hit] = GROUND
    cos = sin = o_local = None
    if len(prims):
        a0, a_span, e0, e1, keep = _angular_bins(origin, prims, daz, del_, max_range)
        pid = np.flatnonzero(keep)
        ray_a = np.mod(np.floor((np.arctan2(dirs[:, 1], dirs[:, 0]) + np.pi) / daz).astype(np.int64), n_az)
        ray_e = np.floor((np.arcsin(np.clip(dirs[:, 2], -1, 1)) + np.pi / 2) / del_).astype(np.int64)
        cell = ray_a * n_el + ray_e
        order = np.argsort(cell, kind="stable")
        cells, starts, counts = np.unique(cell[order], return_index=True, return_counts=True)
        ca, ce = cells // n_el, cells % n_el
        cover = (np.mod(ca[:, None] - a0[None, pid], n_az) <= a_span[None, pid]) & (
            (ce[:, None] >= e0[None, pid]) & (ce[:, None] <= e1[None, pid])
        )
        ci, pj = np.nonzero(cover)
        pj = pid[pj]
        cos, sin = np.cos(prims.yaw), np.sin(prims.yaw)
        o_local = _rotate_z(origin[None, :] - prims.center, cos, -sin)
        pair_n = counts[ci]
        bounds = np.searchsorted(np.cumsum(pair_n), np.arange(chunk_pairs, pair_n.sum(), chunk_pairs))
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(ci)], strict=True):
            cnt = pair_n[lo:hi]
            rep = np.repeat(np.arange(lo, hi), cnt)
            offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            ray = order[starts[ci[rep]] + offs]
            prim = pj[rep]
            for k in (BOX, CYLINDER, ELLIPSOID):
                sel = prims.kind[prim] == k
                if not sel.any():
                    continue
                r, p = ray[sel], prim[sel]
                d_l = _rotate_z(dirs[r], cos[p], -sin[p])
                t = _intersect(k, o_local[p], d_l, prims.half[p])
                ok = t < np.minimum(best[r], max_range)
                r, p, t = r[ok], p[ok], t[ok]
                np.minimum.at(best, r, t)
                win = t <= best[r]
                best_prim[r[win]] = p[win]
    return _surfaces(origin, dirs, prims, best, best_prim, cos, sin, o_local)


def _surfaces(
    origin: np.ndarray,
    dirs: np.ndarray,
    prims: Primitives,
    t: np.ndarray,
    prim: np.ndarray,
    cos: np.ndarray | None,
    sin: np.ndarray | None,
    o_local: np.ndarray | None,
) -> Hits:
    """Hit points, local points and normals of the winning (ray, primitive) pairs."""
    t = np.where(prim == MISS, np.inf, t)
    tt = np.where(np.isfinite(t), t, 0.0)
    point = origin[None, :] + tt[:, None] * dirs
    local = point.copy()
    normal = np.zeros_like(point)
    normal[:, 2] = 1.0
    if o_local is not None:
        for k in (BOX, CYLINDER, ELLIPSOID):
            r = np.flatnonzero(prim >= 0)
            r = r[prims.kind[prim[r]] == k]
            if len(r) == 0:
                continue
            p = prim[r]
            d_l = _rotate_z(dirs[r], cos[p], -sin[p])
            local[r] = o_local[p] + t[r, None] * d_l
            normal[r] = _rotate_z(_local_normal(k, local[r], prims.half[p]), cos[p], sin[p])
    flip = np.einsum("ij,ij->i", normal, dirs) > 0
    normal[flip] *= -1.0
    return Hits(t=t, prim=prim, point=point, local=local, normal=normal)
