"""The eight Robo3D corruptions x three severities (SPEC section 9), applied to frames or written as a dataset.

Every corruption is a pure function of (frame, parameters, random stream). The stream is
``default_rng([seed, crc32(frame id), frame index, corruption number])``: it does not depend on the severity, so
severities draw the same numbers and are nested (the 8 beams light drops are among the 16 moderate drops ...).
Points a corruption keeps keep their labels, raw labels, instances and rings; points it creates (fog and snow
echoes) or replaces by noise (crosstalk) get the ignore label (train id 0, raw id 0, instance 0). Weather lives
in `seal.data.weather`. Parameters are in `PARAMETERS` and can be overridden per call.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seal.core.atomic import write_text_atomic
from seal.core.config import CORRUPTIONS, SEVERITIES  # noqa: E402 - re-exported
from seal.core.errors import ConfigError, SealError
from seal.core.frame import Dataset, Frame
from seal.core.labelmap import LabelMap
from seal.data.semantickitti_writer import SequenceWriter
from seal.data.weather import FogParams, SnowParams, WeatherResult, WetGroundParams, fog, snow, wet_ground

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


PARAMETERS: dict[str, dict[str, Any]] = {
    "fog": {"light": FogParams(0.008), "moderate": FogParams(0.05), "heavy": FogParams(0.2)},
    "wet_ground": {"light": WetGroundParams(0.2), "moderate": WetGroundParams(1.0), "heavy": WetGroundParams(1.2)},
    "snow": {"light": SnowParams(0.5), "moderate": SnowParams(1.0), "heavy": SnowParams(2.5)},
    "motion_blur": {"light": MotionBlurParams(0.2), "moderate": MotionBlurParams(0.25),
                    "heavy": MotionBlurParams(0.3)},
    "beam_missing": {"light": BeamParams(8), "moderate": BeamParams(16), "heavy": BeamParams(24)},
    # light = 0.03 as Robo3D's nuScenes-C; moderate and heavy are seal's choice (Robo3D does not state them)
    "crosstalk": {"light": CrosstalkParams(0.03), "moderate": CrosstalkParams(0.07), "heavy": CrosstalkParams(0.12)},
    "incomplete_echo": {"light": IncompleteEchoParams(0.75), "moderate": IncompleteEchoParams(0.85),
                        "heavy": IncompleteEchoParams(0.95)},
    "cross_sensor": {"light": BeamParams(8, 2), "moderate": BeamParams(16, 2), "heavy": BeamParams(24, 2)},
}


def check_corruption(name: str, severity: str) -> None:
    """ConfigError naming the valid choices when ``name`` or ``severity`` is unknown."""
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ConfigError(f"unknown severity {severity!r}; choose one of {', '.join(SEVERITIES)}")


def corruption_parameters(name: str, severity: str, overrides: Any = None) -> Any:
    """The parameters of ``name`` at ``severity``: the table's, a given parameter object, or the table's + a dict."""
    check_corruption(name, severity)
    default = PARAMETERS[name][severity]
    if overrides is None:
        return default
    if isinstance(overrides, Mapping):
        known = {f.name for f in dataclasses.fields(default)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"{name} has no parameter(s) {', '.join(unknown)}; it has {', '.join(sorted(known))}")
        return dataclasses.replace(default, **overrides)
    if not isinstance(overrides, type(default)):
        raise ConfigError(f"{name} parameters must be a {type(default).__name__} or a dict of overrides")
    return overrides


def _filter(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Centred convolution with an odd kernel, same length as ``values`` (also when shorter than the kernel)."""
    return np.convolve(values, kernel, mode="full")[kernel.size // 2:kernel.size // 2 + values.size]


def estimate_rings(xyz: np.ndarray, beams: int | None = None, resolution: float = 0.01,
                   min_separation: float | None = None, min_range: float = 2.0) -> np.ndarray:
    """Beam (ring) index of each point from its elevation angle; ring 0 is the lowest beam (nuScenes' order).

    Elevations (degrees) of the points beyond ``min_range`` (near points see the beam origins' offsets) are
    histogrammed at ``resolution``; peaks of the lightly smoothed histogram at least ``min_separation`` apart are
    beam candidates, ranked by the points within half a separation. With ``beams`` the strongest ``beams``
    candidates are the beams (separation default: 3/4 of the mean beam spacing), else every candidate holding
    at least 5 % of the 90th-percentile mass and 3 points (separation default 0.2 degrees). Every point goes to
    the nearest beam. Exact on sensors whose beams share one origin (the synthetic LiDAR); on real sensors with
    per-beam offsets or a tilted spin axis it is approximate: use the dataset's rings where it has them.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    el = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    far = np.linalg.norm(xyz, axis=1) > min_range
    sample = el[far] if far.sum() >= 3 else el
    if min_separation is None:
        spread = np.percentile(sample, 99.5) - np.percentile(sample, 0.5)
        min_separation = max(0.2, 0.75 * spread / (beams - 1)) if beams and beams > 1 else 0.2
    lo = float(sample.min())
    bins = np.clip(((sample - lo) / resolution).astype(np.int64), 0, int(180.0 / resolution))
    hist = np.bincount(bins).astype(np.float64)
    smooth = _filter(hist, np.exp(-0.5 * (np.arange(-9, 10) / 3.0) ** 2))
    half = max(int(round(min_separation / resolution)), 1)
    mass = _filter(hist, np.ones(2 * (half // 2) + 1))
    suppressed = np.zeros(hist.shape[0], dtype=bool)
    peaks = []
    for b in np.flatnonzero(hist)[np.argsort(-smooth[hist > 0], kind="stable")]:
        if not suppressed[b]:
            peaks.append(b)
            suppressed[max(b - half + 1, 0):b + half] = True
    peaks = np.asarray(peaks)
    strength = mass[peaks]
    if beams is not None:
        peaks = peaks[np.argsort(-strength, kind="stable")[:beams]]
    else:
        peaks = peaks[strength >= max(3.0, 0.05 * np.percentile(strength, 90))]
    centres = np.sort(lo + (peaks + 0.5) * resolution)
    return np.searchsorted((centres[1:] + centres[:-1]) / 2.0, el).astype(np.int64)


def _rng(frame: Frame, name: str, seed: int) -> np.random.Generator:
    if int(seed) < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng([int(seed), zlib.crc32(frame.id.encode()), int(frame.index),
                                  CORRUPTIONS.index(name)])


def _rings(frame: Frame, num_beams: int | None) -> np.ndarray:
    return np.asarray(frame.rings) if frame.rings is not None else estimate_rings(frame.xyz, num_beams)


def _drop_rings(rings: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Mask of points whose ring survives when ``count`` of the present rings (at most all but one) are dropped."""
    present = np.unique(rings)
    order = rng.permutation(present.size)
    dropped = present[order[:min(count, max(present.size - 1, 0))]]
    return ~np.isin(rings, dropped)


def _class_mask(frame: Frame, label_map: LabelMap, names: tuple[str, ...]) -> np.ndarray | None:
    """Points whose train class is named in ``names`` (None without labels)."""
    if frame.labels is None:
        return None
    ids = [i + 1 for i, n in enumerate(label_map.class_names) if n in names]
    return np.isin(frame.labels, ids)


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


def _from_weather(frame: Frame, result: WeatherResult) -> tuple[Frame, np.ndarray]:
    kept = frame.points[result.keep].copy()
    kept[:, 3] = result.intensity
    points = np.concatenate([kept, result.created])
    source = np.concatenate([result.keep, result.created_from])
    created = np.concatenate([np.zeros(result.keep.size, bool), np.ones(result.created_from.size, bool)])
    order = np.argsort(source, kind="stable")  # created points take the place of the beam they replaced
    origin = np.where(created, -1, source)[order]
    return _assemble(frame, points[order], source[order], created[order]), origin


def corrupt_frame_with_origin(frame: Frame, name: str, severity: str, label_map: LabelMap, seed: int = 0,
                              params: Any = None) -> tuple[Frame, np.ndarray]:
    """`corrupt_frame` plus, per output point, the index of the input point it keeps (-1: created / noise)."""
    p = corruption_parameters(name, severity, params)
    rng = _rng(frame, name, seed)
    pts = np.asarray(frame.points, dtype=np.float32)
    n = pts.shape[0]
    everything = np.arange(n)
    if name == "fog":
        return _from_weather(frame, fog(pts, p, rng))
    if name == "snow":
        return _from_weather(frame, snow(pts, p, rng))
    if name == "wet_ground":
        from seal.core.config import GroundConfig
        from seal.geometry.ground import ground_mask

        ground = _class_mask(frame, label_map, GROUND_CLASSES)
        if ground is None:
            ground = ground_mask(pts[:, :3], GroundConfig(), seed=int(seed))
        return _from_weather(frame, wet_ground(pts, ground, p))
    if name == "motion_blur":
        out = pts.copy()
        out[:, :3] += rng.normal(0.0, p.sigma, (n, 3)).astype(np.float32)
        return _assemble(frame, out, everything, np.zeros(n, bool)), everything
    if name == "crosstalk":
        noisy = np.zeros(n, dtype=bool)
        noisy[rng.permutation(n)[:int(round(p.fraction * n))]] = True
        out = pts.copy()
        noise = p.scale * rng.standard_normal((int(noisy.sum()), 4))
        out[noisy, :3] += noise[:, :3].astype(np.float32)
        out[noisy, 3] = np.clip(out[noisy, 3] + noise[:, 3], 0.0, 1.0)
        return _assemble(frame, out, everything, noisy), np.where(noisy, -1, everything)
    if name == "incomplete_echo":
        vehicle = _class_mask(frame, label_map, p.classes)
        if vehicle is None:
            raise SealError(f"{frame.id}: the corruption 'incomplete_echo' needs per-point labels (it drops the "
                            "points of vehicle classes) and this frame has none; use a labelled dataset")
        idx = np.flatnonzero(vehicle)
        keep = np.ones(n, dtype=bool)
        keep[idx[rng.permutation(idx.size)[:int(round(p.drop * idx.size))]]] = False
    else:  # beam_missing, cross_sensor
        rings = _rings(frame, p.num_beams)
        keep = _drop_rings(rings, p.beams, rng)
        if p.keep_every > 1:
            order = np.flatnonzero(keep)[np.argsort(rings[keep], kind="stable")]  # by ring, storage order within
            sorted_rings = rings[order]
            starts = np.flatnonzero(np.r_[True, sorted_rings[1:] != sorted_rings[:-1]])
            rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
            keep[:] = False
            keep[order[rank % p.keep_every == 0]] = True
    idx = np.flatnonzero(keep)
    return _assemble(frame, pts[idx], idx, np.zeros(idx.size, bool)), idx


def corrupt_frame(frame: Frame, name: str, severity: str, label_map: LabelMap, seed: int = 0,
                  params: Any = None) -> Frame:
    """A corrupted copy of ``frame`` (cameras, pose, timestamp and id kept); ``params`` overrides the table."""
    return corrupt_frame_with_origin(frame, name, severity, label_map, seed, params)[0]


# ---------------------------------------------------------------------------------------------- on disk

RECORD_FILE = "seal_corruption.json"
_RECORD_KEYS = ("source", "corruption", "severity", "seed")


def _safe_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".")
    return safe or "_"


def label_map_yaml(label_map: LabelMap) -> str:
    """``label_map`` in the YAML schema of seal/data/labelmaps/*.yaml (loads back to the same lookup)."""
    size = label_map.lookup.shape[0]
    raw_to_train: dict[int, str] = {}
    for raw in range(size):
        train = int(label_map.lookup[raw])
        if train or raw in label_map.raw_names or raw in (0, size - 1):
            raw_to_train[raw] = label_map.class_names[train - 1] if train else "ignore"
    spec = {"name": label_map.name,
            "classes": [{"name": n, "color": [int(c) for c in col]}
                        for n, col in zip(label_map.class_names, label_map.colors, strict=True)],
            "raw_to_train": raw_to_train,
            "raw_names": {int(k): v for k, v in sorted(label_map.raw_names.items())}}
    return f"# label map of the source dataset, written by seal corrupt\n{yaml.safe_dump(spec, sort_keys=False)}"


def _raw_ids(frame: Frame, label_map: LabelMap) -> np.ndarray:
    """Raw ids to store: the frame's where they map to its train labels and fit 16 bits, else one that does."""
    lookup = label_map.lookup
    ignore = np.flatnonzero(lookup == 0)
    ignore_raw = int(ignore[0]) if ignore.size else int(lookup.shape[0])
    inverse = np.full(label_map.num_classes + 1, ignore_raw, dtype=np.int64)
    for c in range(1, label_map.num_classes + 1):
        ids = np.flatnonzero(lookup == c)
        inverse[c] = ids[0] if ids.size else ignore_raw
    labels = np.asarray(frame.labels, dtype=np.int64)
    raw = inverse[labels] if frame.raw_labels is None else np.asarray(frame.raw_labels, dtype=np.int64).copy()
    bad = (raw < 0) | (raw > 0xFFFF)
    bad |= label_map.to_train(np.where(bad, ignore_raw, raw)) != labels
    raw[bad] = inverse[labels[bad]]
    return raw


def _calibration(frame: Frame) -> tuple[list[np.ndarray], np.ndarray]:
    """P0..P3 and Tr from the first camera (identity-based without a usable one): the LiDAR -> cam0 transform."""
    tr, K = np.eye(4), np.eye(3)
    if frame.cameras:
        cam = frame.cameras[0]
        cand = np.asarray(cam.lidar_to_cam, dtype=np.float64)
        if cand.shape == (4, 4) and np.isfinite(cand).all() and abs(np.linalg.det(cand[:3, :3])) > 1e-6:
            tr, K = cand, np.asarray(cam.K, dtype=np.float64)
    return [K @ np.eye(3, 4)] * 4, tr


def corrupt_dataset(dataset: Dataset, name: str, severity: str, out: str | Path, seed: int = 0,
                    progress: bool = True) -> Path:
    """Write every frame of ``dataset`` corrupted, in the SemanticKITTI layout, under ``out``; returns ``out``.

    ``open_dataset(out)`` reads back the corrupted points, train labels (through ``out/label_map.yaml``, the source
    label map), instances and LiDAR poses. Images are not copied. A folder holding another corruption is refused.
    """
    check_corruption(name, severity)
    out = Path(out).expanduser()
    if name == "incomplete_echo" and not dataset.has_labels:
        raise SealError(f"{dataset.root}: the corruption 'incomplete_echo' needs per-point labels (it drops the "
                        "points of vehicle classes) and this dataset has none")
    record: dict[str, Any] = {"source": str(Path(dataset.root).resolve()), "corruption": name,
                              "severity": severity, "seed": int(seed)}
    if out.exists() and not out.is_dir():
        raise SealError(f"{out}: exists and is not a folder; choose another output folder")
    if out.is_dir() and any(out.iterdir()):
        old = None
        if (out / RECORD_FILE).is_file():
            try:
                old = json.loads((out / RECORD_FILE).read_text())
            except (OSError, ValueError):
                old = None
        if not isinstance(old, dict) or any(old.get(k) != record[k] for k in _RECORD_KEYS):
            what = f"{old.get('corruption')}:{old.get('severity')}" if isinstance(old, dict) else "other files"
            raise SealError(f"{out}: holds {what}, not {name}:{severity} of {record['source']} (seed {seed}); "
                            "choose an empty output folder or delete this one")
    folders = [_safe_name(s.name) for s in dataset.sequences]
    if len(set(folders)) != len(folders):
        raise SealError(f"{dataset.root}: sequence names collide once made safe for folder names: {folders}")
    write_text_atomic(out / RECORD_FILE, json.dumps({**record, "complete": False}, indent=2) + "\n")
    write_text_atomic(out / "label_map.yaml", label_map_yaml(dataset.label_map))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(dataset), desc=f"corrupt {name}:{severity}", unit="frame", disable=not progress)
    before = after = 0
    for seq, folder in zip(dataset.sequences, folders, strict=True):
        writer = SequenceWriter(out, folder)
        names = [_safe_name(f) for f in seq.frame_names]
        if len(set(names)) != len(names):
            raise SealError(f"{dataset.root}: frame names of sequence {seq.name} collide once made safe")
        poses, times, projections, tr = {}, {}, [], np.eye(4)
        for i, stem in enumerate(names):
            frame = seq[i]
            if i == 0:
                projections, tr = _calibration(frame)
            bad = corrupt_frame(frame, name, severity, dataset.label_map, seed)
            raw = inst = None
            if seq.has_labels or bad.labels is not None:
                if bad.labels is None:
                    bad.labels = np.zeros(bad.num_points, dtype=np.uint8)
                raw = _raw_ids(bad, dataset.label_map)
                inst = np.zeros_like(raw) if bad.instances is None else np.asarray(bad.instances)
            writer.write_scan(stem, bad.points, raw, inst)
            poses[stem], times[stem] = np.asarray(bad.pose, dtype=np.float64), float(bad.timestamp)
            before, after = before + frame.num_points, after + bad.num_points
            bar.update(1)
        order = sorted(names)  # the reader lists scans sorted by name
        inv_tr = np.linalg.inv(tr)
        writer.write_meta(projections, tr, [tr @ poses[s] @ inv_tr for s in order], [times[s] for s in order])
    bar.close()
    write_text_atomic(out / RECORD_FILE, json.dumps({**record, "complete": True, "frames": len(dataset),
                                                     "points_before": before, "points_after": after},
                                                    indent=2) + "\n")
    return out


__all__ = ["CORRUPTIONS", "SEVERITIES", "PARAMETERS", "VEHICLE_CLASSES", "GROUND_CLASSES", "BeamParams",
           "MotionBlurParams", "IncompleteEchoParams", "CrosstalkParams", "FogParams",
           "SnowParams", "WetGroundParams", "check_corruption", "corruption_parameters", "estimate_rings",
           "corrupt_frame", "corrupt_frame_with_origin", "corrupt_dataset", "label_map_yaml"]
