"""Builders of the scene's objects (cars, trucks, people, trees, poles, signs) as primitives in a local frame.

An object's local frame has x forward, y left, z up, with its origin on the ground under its centre; the
scene places it with a pose (x, y, z, yaw). Things get an instance id, shared by all their primitives.
"""

from __future__ import annotations

import numpy as np

from seal.synth import materials as M
from seal.synth.raycast import BOX, CYLINDER, ELLIPSOID, Primitives


class PrimBuilder:
    """Accumulates primitives one by one and packs them into a ``Primitives`` set."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def add(
        self,
        kind: int,
        center: tuple[float, float, float],
        half: tuple[float, float, float],
        cls: int,
        colour: tuple[float, float, float] | np.ndarray,
        yaw: float = 0.0,
        inst: int = 0,
        pattern: int = M.PATTERN_PLAIN,
    ) -> None:
        """Append one primitive (``center`` and ``yaw`` in the frame this builder describes)."""
        self._rows.append((kind, center, half, yaw, cls, inst, tuple(np.asarray(colour, float)), pattern))

    def extend(self, prims: Primitives) -> None:
        """Append every primitive of an already built set."""
        for i in range(len(prims)):
            self._rows.append(
                (
                    int(prims.kind[i]),
                    tuple(prims.center[i]),
                    tuple(prims.half[i]),
                    float(prims.yaw[i]),
                    int(prims.cls[i]),
                    int(prims.inst[i]),
                    tuple(prims.colour[i]),
                    int(prims.pattern[i]),
                )
            )

    def build(self, key_offset: int = 0) -> Primitives:
        """Pack the primitives; texture keys are ``key_offset`` + their order of insertion."""
        n = len(self._rows)
        cols = list(zip(*self._rows, strict=True)) if n else [()] * 8
        return Primitives(
            kind=np.array(cols[0], dtype=np.int8),
            center=np.array(cols[1], dtype=np.float64).reshape(n, 3),
            half=np.array(cols[2], dtype=np.float64).reshape(n, 3),
            yaw=np.array(cols[3], dtype=np.float64),
            cls=np.array(cols[4], dtype=np.uint16),
            inst=np.array(cols[5], dtype=np.uint16),
            key=(np.arange(n, dtype=np.uint32) + np.uint32(key_offset)).astype(np.uint32),
            colour=np.array(cols[6], dtype=np.float64).reshape(n, 3),
            pattern=np.array(cols[7], dtype=np.int8),
        )


def place(prims: Primitives, x: float, y: float, z: float, yaw: float) -> Primitives:
    """A copy of local primitives moved to the pose (x, y, z, yaw) (rotation about z, then translation)."""
    c, s = np.cos(yaw), np.sin(yaw)
    center = prims.center.copy()
    center[:, 0] = c * prims.center[:, 0] - s * prims.center[:, 1] + x
    center[:, 1] = s * prims.center[:, 0] + c * prims.center[:, 1] + y
    center[:, 2] += z
    return Primitives(
        kind=prims.kind,
        center=center,
        half=prims.half,
        yaw=prims.yaw + yaw,
        cls=prims.cls,
        inst=prims.inst,
        key=prims.key,
        colour=prims.colour,
        pattern=prims.pattern,
    )


def car(b: PrimBuilder, rng: np.random.Generator, cls: int, inst: int) -> float:
    """A passenger car (body, glass cabin, four wheels); returns its length."""
    length, width = rng.uniform(3.9, 4.8), rng.uniform(1.70, 1.90)
    paint = M.VEHICLE_PALETTE[rng.integers(len(M.VEHICLE_PALETTE))] * rng.uniform(0.85, 1.1)
    b.add(BOX, (0.0, 0.0, 0.62), (length / 2, width / 2, 0.34), cls, paint, inst=inst)
    roof = rng.uniform(1.40, 1.55)
    b.add(
        BOX,
        (-0.08 * length, 0.0, (0.96 + roof) / 2),
        (0.29 * length, 0.46 * width, (roof - 0.96) / 2),
        cls,
        M.GLASS_COLOUR,
        inst=inst,
    )
    for fx in (-0.32, 0.32):
        for sy in (-1, 1):
            b.add(
                ELLIPSOID,
                (fx * length, sy * (width / 2 - 0.1), 0.32),
                (0.32, 0.11, 0.32),
                cls,
                (0.05, 0.05, 0.05),
                inst=inst,
            )
    return length


def truck(b: PrimBuilder, rng: np.random.Generator, cls: int, inst: int) -> float:
    """A box truck (cab + cargo box + wheels); returns its length."""
    cargo, width = rng.uniform(5.0, 7.5), rng.uniform(2.35, 2.55)
    length = cargo + 2.5
    paint = M.VEHICLE_PALETTE[rng.integers(len(M.VEHICLE_PALETTE))]
    top = rng.uniform(3.2, 3.8)
    b.add(BOX, (length / 2 - 1.1, 0.0, 1.7), (1.1, width / 2 - 0.05, 1.25), cls, paint, inst=inst)
    b.add(
        BOX,
        (length / 2 - 2.5 - cargo / 2, 0.0, (0.95 + top) / 2),
        (cargo / 2, width / 2, (top - 0.95) / 2),
        cls,
        (0.85, 0.85, 0.82),
        inst=inst,
        pattern=M.PATTERN_SLATS,
    )
    for fx in (length / 2 - 1.2, -length / 2 + 1.3, -length / 2 + 2.5):
        for sy in (-1, 1):
            b.add(
                ELLIPSOID,
                (fx, sy * (width / 2 - 0.15), 0.48),
                (0.48, 0.15, 0.48),
                cls,
                (0.05, 0.05, 0.05),
                inst=inst,
            )
    return length


def person(b: PrimBuilder, rng: np.random.Generator, cls: int, inst: int) -> None:
    """A pedestrian (legs, torso, head)."""
    height = rng.uniform(1.6, 1.9)
    legs = 0.47 * height
    top = height - 0.24
    cloth = M.CLOTHES_PALETTE[rng.integers(len(M.CLOTHES_PALETTE))]
    b.add(CYLINDER, (0.0, 0.0, legs / 2), (0.15, 0.15, legs / 2), cls, cloth * 0.6, inst=inst)
    b.add(CYLINDER, (0.0, 0.0, (legs + top) / 2), (0.21, 0.21, (top - legs) / 2), cls, cloth, inst=inst)
    b.add(ELLIPSOID, (0.0, 0.0, height - 0.12), (0.10, 0.10, 0.12), cls, M.SKIN_COLOUR, inst=inst)


def tree(b: PrimBuilder, rng: np.random.Generator, x: float, y: float, z: float = 0.0) -> None:
    """A tree: a trunk cylinder under an ellipsoid crown."""
    trunk_h, r = rng.uniform(2.0, 3.5), rng.uniform(0.12, 0.28)
    crown = (rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0))
    b.add(CYLINDER, (x, y, z + trunk_h / 2 + 0.3), (r, r, trunk_h / 2 + 0.3), M.TRUNK, M.BARK_COLOUR)
    leaf = np.clip(np.asarray(M.FOLIAGE_COLOUR) * rng.uniform(0.75, 1.3, 3), 0, 1)
    b.add(
        ELLIPSOID, (x, y, z + trunk_h + 0.6 * crown[2]), crown, M.VEGETATION, leaf, yaw=rng.uniform(0, np.pi)
    )


def bush(b: PrimBuilder, rng: np.random.Generator, x: float, y: float, yaw: float) -> None:
    """A low hedge-like bush."""
    half = (rng.uniform(0.8, 2.5), rng.uniform(0.5, 1.0), rng.uniform(0.4, 0.9))
    leaf = np.clip(np.asarray(M.FOLIAGE_COLOUR) * rng.uniform(0.7, 1.2, 3), 0, 1)
    b.add(ELLIPSOID, (x, y, half[2] * 0.8), half, M.VEGETATION, leaf, yaw=yaw)


def pole(b: PrimBuilder, rng: np.random.Generator, x: float, y: float, z: float) -> None:
    """A street-light or utility pole."""
    h, r = rng.uniform(5.0, 8.0), rng.uniform(0.08, 0.13)
    b.add(CYLINDER, (x, y, z + h / 2), (r, r, h / 2), M.POLE, M.POLE_COLOUR)


def sign(b: PrimBuilder, rng: np.random.Generator, x: float, y: float, z: float, yaw: float) -> None:
    """A traffic sign: a thin post carrying a plate that faces along ``yaw``."""
    h = rng.uniform(2.2, 2.8)
    size = rng.uniform(0.30, 0.42)
    b.add(CYLINDER, (x, y, z + h / 2), (0.04, 0.04, h / 2), M.POLE, M.POLE_COLOUR)
    plate = M.SIGN_PALETTE[rng.integers(len(M.SIGN_PALETTE))]
    off = 0.06
    b.add(
        BOX,
        (x + off * np.cos(yaw), y + off * np.sin(yaw), z + h + size - 0.1),
        (0.02, size, size),
        M.TRAFFIC_SIGN,
        plate,
        yaw=yaw,
    )
