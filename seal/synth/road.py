"""Road geometry: a straight or circular-arc centreline, its cross-section, and an optional cross street.

Everything in a scene is placed in road coordinates (s = arc length along the centreline, d = signed lateral
offset, positive to the left) and mapped to the world (x forward at s = 0, y left, z up, ground at z = 0).
The ground is one plane whose class (road / parking / sidewalk / terrain) is read from this cross-section, so
the LiDAR labels and the camera colours come from the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seal.synth import materials as M


@dataclass(frozen=True)
class Road:
    """A two-way road. ``radius`` = 0 means straight; > 0 curves left, < 0 curves right."""

    radius: float = 0.0
    lanes_per_side: int = 1
    lane_width: float = 3.5
    parking: tuple[float, float] = (0.0, 0.0)  # parking band width on the right (d<0) and left (d>0) sides
    sidewalk: float = 3.0
    curb: float = 0.12  # sidewalk height above the road
    terrain: float = 4.0  # grass strip between sidewalk and buildings
    cross_s: float | None = None  # arc length of a perpendicular cross street (straight roads only)
    cross_half_width: float = 5.0

    @property
    def half_width(self) -> float:
        """Distance from the centreline to the road edge (driving lanes only)."""
        return self.lanes_per_side * self.lane_width

    def kerb(self, side: int) -> float:
        """|d| at which the sidewalk starts on ``side`` (-1 right, +1 left)."""
        return self.half_width + self.parking[0 if side < 0 else 1]

    def to_world(self, s: np.ndarray | float, d: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """World (x, y) of road coordinates (s, d)."""
        s = np.asarray(s, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        if self.radius == 0.0:
            return s + 0.0 * d, d + 0.0 * s
        th = s / self.radius
        return (self.radius - d) * np.sin(th), self.radius - (self.radius - d) * np.cos(th)

    def heading(self, s: np.ndarray | float) -> np.ndarray:
        """Yaw (radians, about z) of the centreline direction at arc length s."""
        s = np.asarray(s, dtype=np.float64)
        return s / self.radius if self.radius != 0.0 else np.zeros_like(s)

    def to_road(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Road coordinates (s, d) of world points (exact for both straight and arc roads)."""
        if self.radius == 0.0:
            return x, y
        r = self.radius
        dx, dy = x, y - r  # relative to the arc centre (0, r)
        rho = np.hypot(dx, dy)
        th = np.arctan2(dx, -dy) if r > 0 else np.arctan2(-dx, dy)
        return th * r, (abs(r) - rho) * np.sign(r)

    def ground_class(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Class of the ground at world (x, y), plus the road coordinates (s, d) used for markings."""
        s, d = self.to_road(x, y)
        ad = np.abs(d)
        kerb = np.where(d < 0, self.kerb(-1), self.kerb(1))
        cls = np.full(x.shape, M.TERRAIN, dtype=np.uint16)
        cls[ad < kerb + self.sidewalk] = M.SIDEWALK
        if self.cross_s is not None:
            a = np.abs(s - self.cross_s)
            cls[(a < self.cross_half_width + self.sidewalk) & (ad >= kerb)] = M.SIDEWALK
        cls[ad < kerb] = M.PARKING
        cls[ad < self.half_width] = M.ROAD
        if self.cross_s is not None:
            cls[np.abs(s - self.cross_s) < self.cross_half_width] = M.ROAD
        return cls, s, d

    def marking_mask(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """True where the road carries white paint: dashed lane lines and solid edge lines."""
        hw = self.half_width
        lines = np.arange(-self.lanes_per_side, self.lanes_per_side + 1) * self.lane_width
        dist = np.min(np.abs(d[..., None] - lines), axis=-1)
        dashed = (np.mod(s, 9.0) < 3.0) & (dist < 0.08) & (np.abs(d) < hw - 0.5)
        edge = np.abs(np.abs(d) - (hw - 0.25)) < 0.08
        mask = dashed | edge
        if self.cross_s is not None:
            mask &= np.abs(s - self.cross_s) > self.cross_half_width + 1.0
        return mask

    def lane_center(self, lane: int) -> float:
        """d of lane ``lane`` (1, 2, ... to the right of the centreline, -1, -2, ... to the left)."""
        sign = -1.0 if lane > 0 else 1.0
        return sign * (abs(lane) - 0.5) * self.lane_width
