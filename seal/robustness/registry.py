"""The corruption registry, and `corrupt_frame`, which applies a registered corruption to a frame by name.

A corruption is a function ``(frame, params, rng, context) -> Corrupted`` registered with its parameters at the
three severities, built-in or from a plugin alike:

    @CORRUPTIONS.register("rain")
    @severities(light=RainParams(1.0), moderate=RainParams(4.0), heavy=RainParams(10.0))
    def rain(frame: Frame, params: RainParams, rng: np.random.Generator, context: CorruptionContext) -> Corrupted:
        keep = rng.random(frame.num_points) > params.loss
        return Corrupted.keep(frame, np.flatnonzero(keep))

A plugin leaves out the ``register`` line and names the decorated object in its entry point
(``[project.entry-points."seal.corruptions"] rain = "seal_rain:rain"``); `seal corrupt --corruption rain` and
`seal evaluate --robustness` then use it (its rows are reported beside the Robo3D mCE, which has no baseline
for it).

The random stream is ``default_rng([seed, crc32(frame id), frame index, crc32(corruption name)])``: it depends on
the name, not on the corruption's place in the registry (installing a plugin changes no other corruption's draws),
and not on the severity, so severities draw the same numbers and are nested (the 8 beams light drops are among the
16 moderate drops ...). Points a corruption keeps keep their labels, raw labels, instances and rings; points it
creates (fog and snow echoes) or replaces by noise (crosstalk) get the ignore label (train id 0, raw id 0,
instance 0).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from seal.core.config import SEVERITIES, CorruptOptions
from seal.core.errors import ConfigError, SealError
from seal.core.frame import Frame
from seal.core.labelmap import LabelMap
from seal.core.registry import Registry


@dataclass(frozen=True)
class CorruptionContext:
    """What a corruption may need beside the frame: the dataset's label map (class names of the train ids) and the
    run's seed, for helpers that take an integer seed (draw random numbers from ``rng``, never from the seed)."""

    label_map: LabelMap
    seed: int = 0


@dataclass
class Corrupted:
    """What a corruption returns: the output points (M x 4, x y z intensity) and, per output point, the input point
    it comes from (``source``: its labels, instance and ring carry over) and whether it is new (``created``: an echo
    or a noise point, labelled ignore; None = none is)."""

    points: np.ndarray
    source: np.ndarray
    created: np.ndarray | None = None

    @classmethod
    def keep(cls, frame: Frame, indices: np.ndarray) -> Corrupted:
        """The input points at ``indices`` (sorted: storage order kept), unchanged."""
        indices = np.asarray(indices, dtype=np.int64)
        return cls(np.asarray(frame.points, dtype=np.float32)[indices], indices)

    @classmethod
    def moved(cls, points: np.ndarray) -> Corrupted:
        """Every input point, in order, with new values (``points``: the same number of rows as the input)."""
        return cls(points, np.arange(points.shape[0]))

    def check(self, frame: Frame, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(source, created) as arrays, after checking the shapes and indices; SealError naming ``name`` else."""
        points, source = np.asarray(self.points), np.asarray(self.source)
        created = np.zeros(source.shape, dtype=bool) if self.created is None else np.asarray(self.created, bool)
        m = points.shape[0] if points.ndim == 2 else -1
        problem = None
        if points.ndim != 2 or points.shape[1] != frame.points.shape[1]:
            problem = f"points of shape {points.shape}, expected (M, {frame.points.shape[1]})"
        elif source.shape != (m,) or created.shape != (m,):
            problem = f"{m} points but source {source.shape} and created {created.shape}"
        elif m and (not np.issubdtype(source.dtype, np.integer) or source.min() < 0
                    or source.max() >= frame.num_points):
            problem = f"source indices outside 0..{frame.num_points - 1}"
        if problem:
            raise SealError(f"{frame.id}: the corruption {name!r} returned {problem}")
        return source.astype(np.int64), created


CorruptionFn = Callable[[Frame, Any, np.random.Generator, CorruptionContext], Corrupted]


@dataclass(frozen=True)
class Corruption:
    """A registered corruption: its function and its parameters per severity (`severities` builds one)."""

    apply: CorruptionFn
    parameters: Mapping[str, Any]
    needs_labels: str | None = None  # why, when it cannot run on frames without per-point labels

    def __call__(self, frame: Frame, params: Any, rng: np.random.Generator,
                 context: CorruptionContext) -> Corrupted:
        return self.apply(frame, params, rng, context)


def severities(light: Any, moderate: Any, heavy: Any,
               needs_labels: str | None = None) -> Callable[[CorruptionFn], Corruption]:
    """Decorator: the function with its parameters at Robo3D's three severities (frozen dataclasses, so a call
    can override single fields); ``needs_labels``: the reason, for a corruption that reads per-point labels."""
    table = MappingProxyType(dict(zip(SEVERITIES, (light, moderate, heavy), strict=True)))

    def wrap(fn: CorruptionFn) -> Corruption:
        return Corruption(fn, table, needs_labels)

    return wrap


CORRUPTIONS: Registry[Corruption] = Registry("Robo3D corruption", "seal.corruptions",
                                             field=(CorruptOptions, "corruption"), option="corrupt.corruption")


def get_corruption(name: str) -> Corruption:
    """The registered corruption ``name`` (a plugin is imported now); ConfigError listing the names else."""
    value = CORRUPTIONS.get(name)
    if not isinstance(value, Corruption):
        raise ConfigError(f"the corruption {name!r} ({CORRUPTIONS.source(name)}) is a {type(value).__name__}, not "
                          "a seal.robustness.Corruption: decorate its function with "
                          "@severities(light=..., moderate=..., heavy=...)")
    return value


class _ParameterTable(Mapping[str, Mapping[str, Any]]):
    """name -> severity -> parameters of every registered corruption, read from the registry (plugins included)."""

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        if name not in CORRUPTIONS:
            raise KeyError(name)
        return get_corruption(name).parameters

    def __iter__(self) -> Iterator[str]:
        return iter(CORRUPTIONS.names())

    def __len__(self) -> int:
        return len(CORRUPTIONS)


PARAMETERS: Mapping[str, Mapping[str, Any]] = _ParameterTable()


def check_corruption(name: str, severity: str) -> None:
    """ConfigError naming the valid choices when ``name`` or ``severity`` is unknown."""
    get_corruption(name)
    if severity not in SEVERITIES:
        raise ConfigError(f"unknown severity {severity!r}; choose one of {', '.join(SEVERITIES)}")


def corruption_parameters(name: str, severity: str, overrides: Any = None) -> Any:
    """The parameters of ``name`` at ``severity``: the table's, a given parameter object, or the table's + a dict."""
    check_corruption(name, severity)
    default = get_corruption(name).parameters[severity]
    if overrides is None:
        return default
    if isinstance(overrides, Mapping):
        if not dataclasses.is_dataclass(default):
            raise ConfigError(f"{name} parameters are a {type(default).__name__}: give one, not a dict")
        known = {f.name for f in dataclasses.fields(default)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"{name} has no parameter(s) {', '.join(unknown)}; it has {', '.join(sorted(known))}")
        return dataclasses.replace(default, **overrides)
    if not isinstance(overrides, type(default)):
        raise ConfigError(f"{name} parameters must be a {type(default).__name__} or a dict of overrides")
    return overrides


def corruption_rng(frame: Frame, name: str, seed: int) -> np.random.Generator:
    """The random stream of corruption ``name`` on ``frame``: the same at every severity and whatever the
    registry's order."""
    if int(seed) < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng([int(seed), zlib.crc32(frame.id.encode()), int(frame.index),
                                  zlib.crc32(name.encode())])


def _assemble(frame: Frame, points: np.ndarray, source: np.ndarray, created: np.ndarray) -> Frame:
    """A copy of ``frame`` with ``points``; point i inherits the labels of original ``source[i]`` unless created."""
    def pick(values: np.ndarray | None) -> np.ndarray | None:
        if values is None:
            return None
        out = np.asarray(values)[source].copy()
        out[created] = 0
        return out

    rings = None if frame.rings is None else np.asarray(frame.rings)[source]
    return dataclasses.replace(frame, points=np.ascontiguousarray(points, dtype=np.float32),
                               labels=pick(frame.labels), raw_labels=pick(frame.raw_labels),
                               instances=pick(frame.instances), rings=rings, cameras=list(frame.cameras),
                               pose=np.array(frame.pose, copy=True))


def corrupt_frame_with_origin(frame: Frame, name: str, severity: str, label_map: LabelMap, seed: int = 0,
                              params: Any = None) -> tuple[Frame, np.ndarray]:
    """`corrupt_frame` plus, per output point, the index of the input point it keeps (-1: created / noise)."""
    p = corruption_parameters(name, severity, params)
    corruption = get_corruption(name)
    rng = corruption_rng(frame, name, seed)
    if corruption.needs_labels and frame.labels is None:
        raise SealError(f"{frame.id}: the corruption {name!r} needs per-point labels ({corruption.needs_labels}) "
                        "and this frame has none; use a labelled dataset")
    out = corruption(frame, p, rng, CorruptionContext(label_map, int(seed)))
    source, created = out.check(frame, name)
    return _assemble(frame, out.points, source, created), np.where(created, -1, source)


def corrupt_frame(frame: Frame, name: str, severity: str, label_map: LabelMap, seed: int = 0,
                  params: Any = None) -> Frame:
    """A corrupted copy of ``frame`` (cameras, pose, timestamp and id kept); ``params`` overrides the table."""
    return corrupt_frame_with_origin(frame, name, severity, label_map, seed, params)[0]


__all__ = ["CORRUPTIONS", "PARAMETERS", "Corruption", "CorruptionContext", "Corrupted", "severities",
           "get_corruption", "check_corruption", "corruption_parameters", "corruption_rng", "corrupt_frame",
           "corrupt_frame_with_origin"]
