"""SemanticKITTI raw class ids used by the synthetic scenes, and how each class looks to the sensors.

One table, so the LiDAR (albedo -> intensity) and the cameras (base colour) always agree on what a class is.
"""

from __future__ import annotations

import numpy as np

# SemanticKITTI raw ids (the low 16 bits of a .label entry).
CAR = 10
TRUCK = 18
PERSON = 30
ROAD = 40
PARKING = 44
SIDEWALK = 48
BUILDING = 50
FENCE = 51
VEGETATION = 70
TRUNK = 71
TERRAIN = 72
POLE = 80
TRAFFIC_SIGN = 81
MOVING_CAR = 252
MOVING_PERSON = 254
MOVING_TRUCK = 258

CLASS_NAMES: dict[int, str] = {
    CAR: "car",
    TRUCK: "truck",
    PERSON: "person",
    ROAD: "road",
    PARKING: "parking",
    SIDEWALK: "sidewalk",
    BUILDING: "building",
    FENCE: "fence",
    VEGETATION: "vegetation",
    TRUNK: "trunk",
    TERRAIN: "terrain",
    POLE: "pole",
    TRAFFIC_SIGN: "traffic-sign",
    MOVING_CAR: "moving-car",
    MOVING_PERSON: "moving-person",
    MOVING_TRUCK: "moving-truck",
}
#: Every semantic id the generator can write.
SYNTH_CLASS_IDS: tuple[int, ...] = tuple(sorted(CLASS_NAMES))
#: Classes whose objects carry an instance id (the "things").
THING_IDS: frozenset[int] = frozenset({CAR, TRUCK, PERSON, MOVING_CAR, MOVING_PERSON, MOVING_TRUCK})
GROUND_IDS: frozenset[int] = frozenset({ROAD, PARKING, SIDEWALK, TERRAIN})
#: Moving variant of each static thing class.
MOVING: dict[int, int] = {CAR: MOVING_CAR, TRUCK: MOVING_TRUCK, PERSON: MOVING_PERSON}

#: LiDAR reflectivity of each class (0..1), before the incidence-angle term.
ALBEDO: dict[int, float] = {
    ROAD: 0.12,
    PARKING: 0.16,
    SIDEWALK: 0.28,
    TERRAIN: 0.32,
    BUILDING: 0.40,
    FENCE: 0.35,
    VEGETATION: 0.45,
    TRUNK: 0.30,
    POLE: 0.50,
    TRAFFIC_SIGN: 0.95,
    CAR: 0.38,
    TRUCK: 0.40,
    PERSON: 0.28,
    MOVING_CAR: 0.38,
    MOVING_TRUCK: 0.40,
    MOVING_PERSON: 0.28,
}
#: Reflectivity of painted lane markings (a part of the road class).
MARKING_ALBEDO = 0.75

#: Base RGB colour (0..1) of the ground classes; objects draw theirs from the palettes below.
GROUND_COLOUR: dict[int, tuple[float, float, float]] = {
    ROAD: (0.30, 0.30, 0.32),
    PARKING: (0.38, 0.37, 0.40),
    SIDEWALK: (0.62, 0.60, 0.56),
    TERRAIN: (0.40, 0.48, 0.22),
}
MARKING_COLOUR = (0.92, 0.92, 0.86)
BUILDING_PALETTE = np.array(
    [
        (0.78, 0.70, 0.58),
        (0.62, 0.32, 0.24),
        (0.70, 0.70, 0.70),
        (0.85, 0.83, 0.78),
        (0.55, 0.50, 0.45),
        (0.80, 0.62, 0.45),
    ]
)
VEHICLE_PALETTE = np.array(
    [
        (0.75, 0.05, 0.05),
        (0.05, 0.15, 0.55),
        (0.90, 0.90, 0.90),
        (0.08, 0.08, 0.08),
        (0.55, 0.55, 0.58),
        (0.85, 0.70, 0.10),
        (0.10, 0.40, 0.20),
    ]
)
CLOTHES_PALETTE = np.array(
    [
        (0.15, 0.15, 0.35),
        (0.60, 0.10, 0.10),
        (0.20, 0.20, 0.20),
        (0.85, 0.75, 0.30),
        (0.30, 0.50, 0.70),
    ]
)
GLASS_COLOUR = (0.12, 0.15, 0.20)
SKIN_COLOUR = (0.80, 0.62, 0.50)
FOLIAGE_COLOUR = (0.20, 0.42, 0.14)
BARK_COLOUR = (0.33, 0.24, 0.15)
POLE_COLOUR = (0.52, 0.53, 0.55)
SIGN_PALETTE = np.array([(0.10, 0.30, 0.80), (0.85, 0.10, 0.10), (0.95, 0.80, 0.10)])
FENCE_PALETTE = np.array([(0.55, 0.42, 0.30), (0.45, 0.47, 0.48)])

# Texture patterns a primitive can carry (besides value noise).
PATTERN_PLAIN = 0
PATTERN_WINDOWS = 1
PATTERN_SLATS = 2


def albedo_lookup(classes: np.ndarray) -> np.ndarray:
    """LiDAR albedo of each entry of an array of raw class ids."""
    table = np.zeros(max(ALBEDO) + 1, dtype=np.float64)
    for cid, val in ALBEDO.items():
        table[cid] = val
    return table[classes]
