"""The eight Robo3D corruptions (docs/METHOD.md §9), each a registered function with its three severities.

Registered in Robo3D's order: the weather set (fog, wet_ground, snow: physics in `seal.robustness.weather`), then
the sensor set (motion_blur, beam_missing, crosstalk, incomplete_echo, cross_sensor). Light crosstalk = 0.03 as
Robo3D's nuScenes-C; its moderate and heavy fractions are seal's choice (Robo3D does not state them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seal.core.frame import Frame
from seal.core.labelmap import LabelMap
from seal.robustness import weather
from seal.robustness.registry import CORRUPTIONS, Corrupted, CorruptionContext, severities
from seal.robustness.rings import estimate_rings
from seal.robustness.weather import FogParams, SnowParams, WeatherResult, WetGroundParams

VEHICLE_CLASSES = ("car", "truck", "bus", "other-vehicle", "construction_vehicle", "trailer", "motorcycle",
                   "bicycle")
GROUND_CLASSES = ("road", "parking", "sidewalk", "other-ground", "terrain", "driveable_surface", "other_flat")


@dataclass(frozen=True)
class BeamParams:
    """Drop ``beams`` whole beams (rings) chosen at random, then keep every ``keep_every``-th point of each remaining
    ring in storage order (2: a sparser sensor, cross_sensor); ``num_beams`` helps ring estimation (None = auto)."""

    beams: int
    keep_every: int = 1
    num_beams: int | None = None


@dataclass(frozen=True)
class MotionBlurParams:
    """Independent N(0, sigma) jitter (metres) on x, y and z of every point, as Robo3D does."""

    sigma: float


@dataclass(frozen=True)
class IncompleteEchoParams:
    """Drop the fraction ``drop`` of the points of the vehicle classes (dark paint, specular bodies)."""

    drop: float
    classes: tuple[str, ...] = VEHICLE_CLASSES


@dataclass(frozen=True)
class CrosstalkParams:
    """Perturb ``fraction`` of the points by ``scale`` * N(0, 1) on x, y, z and intensity; they become ignore."""

    fraction: float
    scale: float = 3.0


def _points(frame: Frame) -> np.ndarray:
    return np.asarray(frame.points, dtype=np.float32)


def _class_mask(frame: Frame, label_map: LabelMap, names: tuple[str, ...]) -> np.ndarray | None:
    """Points whose train class is named in ``names`` (None without labels)."""
    if frame.labels is None:
        return None
    ids = [i + 1 for i, n in enumerate(label_map.class_names) if n in names]
    return np.isin(frame.labels, ids)


def _from_weather(frame: Frame, result: WeatherResult) -> Corrupted:
    """Survivors (new intensity) and created points in one array, created points in the place of their beam."""
    kept = _points(frame)[result.keep].copy()
    kept[:, 3] = result.intensity
    points = np.concatenate([kept, result.created])
    source = np.concatenate([result.keep, result.created_from])
    created = np.concatenate([np.zeros(result.keep.size, bool), np.ones(result.created_from.size, bool)])
    order = np.argsort(source, kind="stable")
    return Corrupted(points[order], source[order], created[order])


# ---------------------------------------------------------------------------------------------- weather


@CORRUPTIONS.register("fog")
@severities(light=FogParams(0.008), moderate=FogParams(0.05), heavy=FogParams(0.2))
def fog(frame: Frame, params: FogParams, rng: np.random.Generator, context: CorruptionContext) -> Corrupted:
    """Fog: returns attenuated, far ones lost, some beams answered by the fog itself (`weather.fog`)."""
    return _from_weather(frame, weather.fog(_points(frame), params, rng))


@CORRUPTIONS.register("wet_ground")
@severities(light=WetGroundParams(0.2), moderate=WetGroundParams(1.0), heavy=WetGroundParams(1.2))
def wet_ground(frame: Frame, params: WetGroundParams, rng: np.random.Generator,
               context: CorruptionContext) -> Corrupted:
    """A water film on the ground classes (a RANSAC plane fit without labels) dims or loses their returns."""
    pts = _points(frame)
    ground = _class_mask(frame, context.label_map, GROUND_CLASSES)
    if ground is None:
        from seal.core.config import GroundConfig
        from seal.geometry.ground import ground_mask

        ground = ground_mask(pts[:, :3], GroundConfig(), seed=context.seed)
    return _from_weather(frame, weather.wet_ground(pts, ground, params))


@CORRUPTIONS.register("snow")
@severities(light=SnowParams(0.5), moderate=SnowParams(1.0), heavy=SnowParams(2.5))
def snow(frame: Frame, params: SnowParams, rng: np.random.Generator, context: CorruptionContext) -> Corrupted:
    """Snowfall: flakes in the beams occlude targets and answer some beams themselves (`weather.snow`)."""
    return _from_weather(frame, weather.snow(_points(frame), params, rng))


# ---------------------------------------------------------------------------------------------- sensor


@CORRUPTIONS.register("motion_blur")
@severities(light=MotionBlurParams(0.2), moderate=MotionBlurParams(0.25), heavy=MotionBlurParams(0.3))
def motion_blur(frame: Frame, params: MotionBlurParams, rng: np.random.Generator,
                context: CorruptionContext) -> Corrupted:
    """Gaussian jitter of every point's coordinates."""
    out = _points(frame).copy()
    out[:, :3] += rng.normal(0.0, params.sigma, (out.shape[0], 3)).astype(np.float32)
    return Corrupted.moved(out)


def _drop_beams(frame: Frame, params: BeamParams, rng: np.random.Generator) -> Corrupted:
    """Drop ``params.beams`` of the present rings (at most all but one), then thin each remaining ring."""
    rings = np.asarray(frame.rings) if frame.rings is not None else estimate_rings(frame.xyz, params.num_beams)
    present = np.unique(rings)
    order = rng.permutation(present.size)
    keep = ~np.isin(rings, present[order[:min(params.beams, max(present.size - 1, 0))]])
    if params.keep_every > 1:
        order = np.flatnonzero(keep)[np.argsort(rings[keep], kind="stable")]  # by ring, storage order within
        sorted_rings = rings[order]
        starts = np.flatnonzero(np.r_[True, sorted_rings[1:] != sorted_rings[:-1]])
        rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
        keep[:] = False
        keep[order[rank % params.keep_every == 0]] = True
    return Corrupted.keep(frame, np.flatnonzero(keep))


@CORRUPTIONS.register("beam_missing")
@severities(light=BeamParams(8), moderate=BeamParams(16), heavy=BeamParams(24))
def beam_missing(frame: Frame, params: BeamParams, rng: np.random.Generator,
                 context: CorruptionContext) -> Corrupted:
    """Whole beams lost (the dataset's rings, else rings estimated from elevation)."""
    return _drop_beams(frame, params, rng)


@CORRUPTIONS.register("crosstalk")
@severities(light=CrosstalkParams(0.03), moderate=CrosstalkParams(0.07), heavy=CrosstalkParams(0.12))
def crosstalk(frame: Frame, params: CrosstalkParams, rng: np.random.Generator,
              context: CorruptionContext) -> Corrupted:
    """Another sensor's pulses: a fraction of the points replaced by noise around them (labelled ignore)."""
    pts = _points(frame)
    n = pts.shape[0]
    noisy = np.zeros(n, dtype=bool)
    noisy[rng.permutation(n)[:int(round(params.fraction * n))]] = True
    out = pts.copy()
    noise = params.scale * rng.standard_normal((int(noisy.sum()), 4))
    out[noisy, :3] += noise[:, :3].astype(np.float32)
    out[noisy, 3] = np.clip(out[noisy, 3] + noise[:, 3], 0.0, 1.0)
    return Corrupted(out, np.arange(n), noisy)


@CORRUPTIONS.register("incomplete_echo")
@severities(light=IncompleteEchoParams(0.75), moderate=IncompleteEchoParams(0.85),
            heavy=IncompleteEchoParams(0.95), needs_labels="it drops the points of vehicle classes")
def incomplete_echo(frame: Frame, params: IncompleteEchoParams, rng: np.random.Generator,
                    context: CorruptionContext) -> Corrupted:
    """A fraction of the vehicle points lost (their class read from the labels)."""
    idx = np.flatnonzero(_class_mask(frame, context.label_map, params.classes))  # labels: checked before the call
    keep = np.ones(frame.num_points, dtype=bool)
    keep[idx[rng.permutation(idx.size)[:int(round(params.drop * idx.size))]]] = False
    return Corrupted.keep(frame, np.flatnonzero(keep))


@CORRUPTIONS.register("cross_sensor")
@severities(light=BeamParams(8, 2), moderate=BeamParams(16, 2), heavy=BeamParams(24, 2))
def cross_sensor(frame: Frame, params: BeamParams, rng: np.random.Generator,
                 context: CorruptionContext) -> Corrupted:
    """A sparser sensor: beams lost, then every other point of each remaining beam."""
    return _drop_beams(frame, params, rng)


__all__ = ["VEHICLE_CLASSES", "GROUND_CLASSES", "BeamParams", "MotionBlurParams", "IncompleteEchoParams",
           "CrosstalkParams", "fog", "wet_ground", "snow", "motion_blur", "beam_missing", "crosstalk",
           "incomplete_echo", "cross_sensor"]
