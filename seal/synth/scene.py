"""Procedural street scenes: the layout of one sequence and where everything is at a given time.

A scene is a road (see ``road.py``) lined with raised sidewalks, grass, buildings, fences, trees, poles and
signs, parked cars and trucks, cars and trucks driving in the lanes and people walking on the sidewalks. The
ego vehicle drives in a right-hand lane. All randomness comes from one generator seeded by (seed, sequence),
so a sequence is the same whichever frames are rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from seal.synth import materials as M
from seal.synth import objects as O
from seal.synth.raycast import BOX, Primitives
from seal.synth.road import Road

LIDAR_HEIGHT = 1.73
S_MIN, S_MAX = -90.0, 170.0  # extent of the scene along the road (ego drives from s = 0)


@dataclass
class Mover:
    """A dynamic object driving or walking along the road at constant speed."""

    local: Primitives  # in the object's frame
    s0: float  # arc length at time 0
    d: float  # lateral offset
    z: float  # height of its base (the curb for pedestrians)
    speed: float  # signed speed along s (m/s)


@dataclass
class Scene:
    """One sequence's world: static primitives, movers and the ego motion."""

    road: Road
    static: Primitives
    movers: list[Mover]
    ego_d: float
    ego_speed: float

    def primitives_at(self, time: float) -> Primitives:
        """All primitives (static first, then the movers) placed at ``time`` seconds."""
        parts = [self.static]
        for m in self.movers:
            s = m.s0 + m.speed * time
            x, y = self.road.to_world(s, m.d)
            yaw = float(self.road.heading(s)) + (np.pi if m.speed < 0 else 0.0)
            parts.append(O.place(m.local, float(x), float(y), m.z, yaw))
        return Primitives.concat(parts)

    def ego_pose(self, time: float) -> np.ndarray:
        """4x4 pose of the LiDAR (x forward, y left, z up) in the world at ``time``."""
        s = self.ego_speed * time
        x, y = self.road.to_world(s, self.ego_d)
        yaw = float(self.road.heading(s))
        pose = np.eye(4)
        pose[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
        pose[:3, 3] = (float(x), float(y), LIDAR_HEIGHT)
        return pose


def _random_road(rng: np.random.Generator) -> Road:
    kind = rng.choice(["straight", "curve", "cross"], p=[0.3, 0.4, 0.3])
    radius = 0.0
    if kind == "curve":
        radius = float(rng.uniform(150.0, 400.0) * rng.choice([-1.0, 1.0]))
    return Road(
        radius=radius,
        lanes_per_side=int(rng.choice([1, 2], p=[0.6, 0.4])),
        lane_width=float(rng.uniform(3.2, 3.7)),
        parking=tuple(float(rng.choice([0.0, 2.4], p=[0.4, 0.6])) for _ in range(2)),
        sidewalk=float(rng.uniform(2.2, 4.0)),
        terrain=float(rng.uniform(1.5, 6.0)),
        cross_s=float(rng.uniform(25.0, 55.0)) if kind == "cross" else None,
        cross_half_width=float(rng.uniform(4.0, 6.5)),
    )


Frame2D = Callable[[float, float], tuple[float, float, float]]  # (along, across) -> (x, y, yaw)


class _Layout:
    """Places the static content of a scene into one ``PrimBuilder``."""

    def __init__(self, rng: np.random.Generator, road: Road) -> None:
        self.rng, self.road, self.b = rng, road, O.PrimBuilder()
        self.next_inst = 1
        self.movers: list[Mover] = []
        self.building_p = float(rng.uniform(0.45, 0.9))
        self.tree_p = float(rng.uniform(0.3, 0.9))

    def in_cross(self, s: float, margin: float) -> bool:
        """Whether arc length ``s`` lies within the cross street (+ ``margin``)."""
        r = self.road
        return r.cross_s is not None and abs(s - r.cross_s) < r.cross_half_width + r.sidewalk + margin

    def overlaps_cross(self, a: float, b: float, margin: float) -> bool:
        """Whether the interval [a, b] of arc length meets the cross street (+ ``margin``)."""
        r = self.road
        if r.cross_s is None:
            return False
        w = r.cross_half_width + r.sidewalk + margin
        return b > r.cross_s - w and a < r.cross_s + w

    def main_frame(self, side: int) -> Frame2D:
        """(s, |d|) on one side of the main road -> world (x, y, yaw)."""

        def f(u: float, v: float) -> tuple[float, float, float]:
            x, y = self.road.to_world(u, side * v)
            return float(x), float(y), float(self.road.heading(u))

        return f

    def cross_frame(self, side: int) -> Frame2D:
        """(y, |x - cross_s|) on one side of the cross street -> world (x, y, yaw)."""
        cs = float(self.road.cross_s or 0.0)
        return lambda u, v: (cs + side * v, u, np.pi / 2)

    def slab_row(
        self,
        frame: Frame2D,
        u0: float,
        u1: float,
        v0: float,
        width: float,
        height: float,
        cls: int,
        colour: tuple[float, float, float],
        seg: float = 6.0,
    ) -> None:
        """A strip of boxes (sidewalk) from ``u0`` to ``u1``, from ``v0`` to ``v0 + width`` across."""
        n = max(1, int(np.ceil((u1 - u0) / seg)))
        edges = np.linspace(u0, u1, n + 1)
        for a, bb in zip(edges[:-1], edges[1:], strict=True):
            x, y, yaw = frame((a + bb) / 2, v0 + width / 2)
            self.b.add(
                BOX, (x, y, height / 2), ((bb - a) / 2 + 0.02, width / 2, height / 2), cls, colour, yaw=yaw
            )

    def building_row(
        self, frame: Frame2D, u0: float, u1: float, v0: float, skip: Callable[[float, float], bool]
    ) -> None:
        """Buildings, with fences, bushes and trees in the gaps, from ``u0`` to ``u1`` at setback ``v0``."""
        rng, u = self.rng, u0
        while u < u1:
            length = float(rng.uniform(8.0, 25.0))
            if skip(u, u + length):
                u += 3.0
                continue
            if rng.random() < self.building_p:
                depth, height = rng.uniform(8.0, 16.0), rng.uniform(5.0, 18.0)
                x, y, yaw = frame(u + length / 2, v0 + depth / 2)
                colour = M.BUILDING_PALETTE[rng.integers(len(M.BUILDING_PALETTE))] * rng.uniform(0.9, 1.05)
                self.b.add(
                    BOX,
                    (x, y, height / 2),
                    (length / 2, depth / 2, height / 2),
                    M.BUILDING,
                    np.clip(colour, 0, 1),
                    yaw=yaw,
                    pattern=M.PATTERN_WINDOWS,
                )
            else:
                length = float(rng.uniform(6.0, 16.0))
                if rng.random() < 0.6:
                    h = rng.uniform(1.0, 2.0)
                    x, y, yaw = frame(u + length / 2, v0 + 0.3)
                    colour = M.FENCE_PALETTE[rng.integers(len(M.FENCE_PALETTE))]
                    self.b.add(
                        BOX,
                        (x, y, h / 2),
                        (length / 2, 0.05, h / 2),
                        M.FENCE,
                        colour,
                        yaw=yaw,
                        pattern=M.PATTERN_SLATS,
                    )
                for k in range(int(rng.integers(1, 4))):
                    x, y, yaw = frame(u + (k + 0.5) * length / 3, v0 + rng.uniform(2.0, 6.0))
                    if rng.random() < 0.5:
                        O.tree(self.b, rng, x, y)
                    else:
                        O.bush(self.b, rng, x, y, yaw)
            u += length + float(rng.uniform(0.5, 5.0))

    def roadside(self, side: int) -> None:
        """Sidewalk, grass-strip trees, poles, signs and buildings on one side of the main road."""
        r, rng = self.road, self.rng
        kerb = r.kerb(side)
        frame = self.main_frame(side)
        spans = [(S_MIN, S_MAX)]
        if r.cross_s is not None:
            lo, hi = r.cross_s - r.cross_half_width, r.cross_s + r.cross_half_width
            spans = [(S_MIN, lo), (hi, S_MAX)]
        for a, bb in spans:
            self.slab_row(frame, a, bb, kerb, r.sidewalk, r.curb, M.SIDEWALK, M.GROUND_COLOUR[M.SIDEWALK])
        s = S_MIN + rng.uniform(0, 10)
        while s < S_MAX:  # trees on the grass strip
            if rng.random() < self.tree_p and not self.in_cross(s, 1.0) and r.terrain > 1.8:
                x, y, _ = frame(s, kerb + r.sidewalk + r.terrain / 2)
                O.tree(self.b, rng, x, y)
            s += rng.uniform(7.0, 14.0)
        s = S_MIN + rng.uniform(0, 20)
        while s < S_MAX:  # poles near the kerb
            if not self.in_cross(s, 1.0):
                x, y, _ = frame(s, kerb + 0.45)
                O.pole(self.b, rng, x, y, r.curb)
            s += rng.uniform(18.0, 35.0)
        for s in rng.uniform(-40.0, 110.0, size=int(rng.integers(2, 5))):  # signs facing the traffic
            if not self.in_cross(s, 1.0):
                x, y, yaw = frame(s, kerb + 0.3)
                O.sign(self.b, rng, x, y, r.curb, yaw + (np.pi if side < 0 else 0.0))
        setback = kerb + r.sidewalk + r.terrain + float(rng.uniform(0.0, 2.0))
        self.building_row(
            frame, S_MIN, S_MAX, setback, lambda a, b: self.overlaps_cross(a, b, r.terrain + 2.0)
        )

    def cross_street(self) -> None:
        """Sidewalks and buildings along the cross street, in its four quadrants."""
        r = self.road
        for sx in (-1, 1):
            frame = self.cross_frame(sx)
            for sy in (-1, 1):
                near = r.kerb(sy)
                u0, u1 = (near, 80.0) if sy > 0 else (-80.0, -near)
                self.slab_row(
                    frame,
                    u0,
                    u1,
                    r.cross_half_width,
                    r.sidewalk,
                    r.curb,
                    M.SIDEWALK,
                    M.GROUND_COLOUR[M.SIDEWALK],
                )
                b0 = near + r.sidewalk + r.terrain + 2.0
                v0 = r.cross_half_width + r.sidewalk + 2.0
                ua, ub = (b0, 80.0) if sy > 0 else (-80.0, -b0)
                self.building_row(frame, ua, ub, v0, lambda a, b: False)

    def parked(self, side: int) -> None:
        """Parked cars (and the odd truck) along the parking band of one side."""
        r, rng = self.road, self.rng
        width = r.parking[0 if side < 0 else 1]
        if width <= 0:
            return
        frame = self.main_frame(side)
        s = S_MIN + rng.uniform(0, 5)
        while s < S_MAX:
            pick = rng.random()
            b = O.PrimBuilder()
            inst = self.next_inst
            length = O.truck(b, rng, M.TRUCK, inst) if pick < 0.07 else O.car(b, rng, M.CAR, inst)
            sc = s + length / 2
            if pick < 0.75 and not self.in_cross(sc, length / 2 + 1.0):
                x, y, yaw = frame(sc, r.half_width + width / 2 + rng.uniform(-0.1, 0.1))
                self.b.extend(O.place(b.build(), x, y, 0.0, yaw + (np.pi if side > 0 else 0.0)))
                self.next_inst += 1
            s += length + rng.uniform(0.8, 6.0)

    def traffic(self, ego_lane: int, ego_speed: float, duration: float) -> None:
        """Cars and trucks driving in every lane; none ever comes within a car length of another (or ego)."""
        r, rng = self.road, self.rng
        times = np.linspace(0.0, duration, 8)
        for lane in [*range(1, r.lanes_per_side + 1), *range(-1, -r.lanes_per_side - 1, -1)]:
            occupied: list[tuple[np.ndarray, float]] = []
            if lane == ego_lane:
                occupied.append((ego_speed * times, 4.5))
            for _ in range(int(rng.integers(1, 5))):
                for _attempt in range(12):
                    b = O.PrimBuilder()
                    is_truck = rng.random() < 0.15
                    cls = M.MOVING_TRUCK if is_truck else M.MOVING_CAR
                    length = (O.truck if is_truck else O.car)(b, rng, cls, self.next_inst)
                    speed = rng.uniform(4.0, 12.0) * (1.0 if lane > 0 else -1.0)
                    s0 = rng.uniform(-60.0, 120.0)
                    path = s0 + speed * times
                    if all(np.abs(path - p).min() > (length + ln) / 2 + 4.0 for p, ln in occupied):
                        occupied.append((path, length))
                        self.movers.append(Mover(b.build(), s0, r.lane_center(lane), 0.0, float(speed)))
                        self.next_inst += 1
                        break

    def pedestrians(self, side: int, duration: float) -> None:
        """People walking (or standing) on one sidewalk, away from the cross street."""
        r, rng = self.road, self.rng
        kerb = r.kerb(side)
        for _ in range(int(rng.integers(3, 9))):
            walking = rng.random() < 0.7
            speed = rng.uniform(0.8, 1.6) * rng.choice([-1.0, 1.0]) if walking else 0.0
            s0 = float(rng.uniform(-40.0, 80.0))
            if self.in_cross(s0, 1.0) or self.in_cross(s0 + speed * duration, 1.0):
                continue
            b = O.PrimBuilder()
            O.person(b, rng, M.MOVING_PERSON if walking else M.PERSON, self.next_inst)
            d = side * (kerb + rng.uniform(0.9, max(1.0, r.sidewalk - 0.4)))
            self.movers.append(Mover(b.build(), s0, float(d), r.curb, float(speed)))
            self.next_inst += 1


def build_scene(seed: int, sequence: int, duration: float) -> Scene:
    """The deterministic scene of ``sequence`` for generator ``seed``, sized for ``duration`` seconds."""
    rng = np.random.default_rng([seed, sequence, 0x5EA1])
    road = _random_road(rng)
    lay = _Layout(rng, road)
    for side in (-1, 1):
        lay.roadside(side)
        lay.parked(side)
    if road.cross_s is not None:
        lay.cross_street()
    ego_lane = int(rng.integers(1, road.lanes_per_side + 1))
    ego_speed = float(rng.uniform(5.0, 10.0))
    lay.traffic(ego_lane, ego_speed, duration)
    for side in (-1, 1):
        lay.pedestrians(side, duration)
    static = lay.b.build()
    movers = []
    offset = len(static)
    for m in lay.movers:  # give every mover's primitives texture keys after the static ones
        local = m.local
        local.key = np.arange(offset, offset + len(local), dtype=np.uint32)
        offset += len(local)
        movers.append(m)
    return Scene(
        road=road, static=static, movers=movers, ego_d=road.lane_center(ego_lane), ego_speed=ego_speed
    )
