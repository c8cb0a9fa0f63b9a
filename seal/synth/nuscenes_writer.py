"""Synthetic sequences written as an official nuScenes table set (what nuscenes-devkit and seal's reader load).

Layout (``VERSION`` = v1.0-mini)::

    ROOT/v1.0-mini/*.json                                   scene, sample, sample_data, calibrated_sensor,
                                                            ego_pose, sensor, log, map, category (32 lidarseg
                                                            categories with "index"), attribute, visibility,
                                                            instance, sample_annotation (empty), lidarseg
    ROOT/samples/LIDAR_TOP/<log>__LIDAR_TOP__<us>.pcd.bin   keyframes: float32 x y z intensity (0..255) ring
    ROOT/sweeps/LIDAR_TOP/<log>__LIDAR_TOP__<us>.pcd.bin    the other frames (no labels)
    ROOT/samples/CAM_*/<log>__CAM_*__<us>.jpg               keyframes only, JPEG quality 90
    ROOT/lidarseg/v1.0-mini/<sample_data token>_lidarseg.bin  uint8 category index per keyframe LiDAR point

Choices (the generator's content is the SemanticKITTI layout's, frame for frame, for the same seed):

- Timing: the generator's 10 Hz frames are the LiDAR sweeps; every ``KEYFRAME_EVERY``-th one (2nd, from the
  first: 5 Hz) is a keyframe (a sample), the others are sweeps. As in nuScenes (and the devkit's box
  interpolation), a sweep's sample is the next keyframe; sweeps after a scene's last keyframe take that last one.
  Real nuScenes has 20 Hz sweeps and 2 Hz samples. Cameras are rendered at keyframes only (no camera sweeps); a camera
  record shares its keyframe's timestamp and an identical ego pose (the renderer has no rolling shutter).
  Timestamps are microseconds from ``START_US``, scenes an hour apart.
- Frames: LIDAR_TOP has nuScenes' axes (x right, y forward, z up): the generator's LiDAR frame (x forward, y
  left) turned by -90 degrees about z, an exact float32 relabelling of the same points. The ego frame is x
  forward, y left, z up with its origin on the road 0.9 m behind the LiDAR; global is the scene's world.
- One log and one scene per sequence, scenes named ``synth-NN`` (not official nuScenes names, so splits go by
  ``split.train_sequences``/``val_sequences``); one map record (no raster) covering every log.
- Tokens are md5 digests of (seed, sequence, record): deterministic 32-hex strings.
- Labels: SemanticKITTI raw ids -> nuScenes categories by ``SK_TO_NUSCENES`` (moving-X as X).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy.spatial.transform import Rotation

from seal.core.atomic import write_bytes_atomic, write_text_atomic
from seal.core.labelmap import load_label_map
from seal.synth import materials as M
from seal.synth.camera import CameraSpec
from seal.synth.lidar import LidarSpec
from seal.synth.scene import LIDAR_HEIGHT

VERSION = "v1.0-mini"
KEYFRAME_EVERY = 2
LIDAR = "LIDAR_TOP"
#: Generator camera name -> nuScenes channel (the ring's yaws are nuScenes': +-55, 180, +-110 degrees).
CHANNELS: dict[str, str] = {"front": "CAM_FRONT", "front-left": "CAM_FRONT_LEFT", "front-right": "CAM_FRONT_RIGHT",
                            "back": "CAM_BACK", "back-left": "CAM_BACK_LEFT", "back-right": "CAM_BACK_RIGHT"}
#: SemanticKITTI raw id written by the generator -> nuScenes lidarseg category name.
SK_TO_NUSCENES: dict[int, str] = {
    M.CAR: "vehicle.car", M.MOVING_CAR: "vehicle.car",
    M.TRUCK: "vehicle.truck", M.MOVING_TRUCK: "vehicle.truck",
    M.PERSON: "human.pedestrian.adult", M.MOVING_PERSON: "human.pedestrian.adult",
    M.ROAD: "flat.driveable_surface",
    M.PARKING: "flat.driveable_surface",  # nuScenes: any surface a car may drive on, parking lanes included
    M.SIDEWALK: "flat.sidewalk", M.TERRAIN: "flat.terrain",
    M.BUILDING: "static.manmade", M.FENCE: "static.manmade", M.POLE: "static.manmade",
    M.TRAFFIC_SIGN: "static.manmade",
    M.VEGETATION: "static.vegetation", M.TRUNK: "static.vegetation",
}
START_US = 1_600_000_000_000_000   # 2020-09-13 12:26:40 UTC
SCENE_GAP_US = 3_600_000_000
LIDAR_IN_EGO = (0.9, 0.0, LIDAR_HEIGHT)
JPEG_QUALITY = 90
#: nuScenes LiDAR axes (x right, y forward) -> the generator's (x forward, y left): a -90 degree yaw.
SYN_FROM_NUS = np.array([[0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
VISIBILITY = [{"token": str(i + 1), "level": level, "description": f"visibility of whole object is between {text}"}
              for i, (level, text) in enumerate([("v0-40", "0 and 40%"), ("v40-60", "40 and 60%"),
                                                 ("v60-80", "60 and 80%"), ("v80-100", "80 and 100%")])]
TABLES = ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log",
          "scene", "sample", "sample_data", "sample_annotation", "map", "lidarseg")


class Generator(Protocol):
    """What the writer needs of `seal.synth.generate.SequenceGenerator`."""

    seed: int
    sequence: int
    frames: int
    rig: list[CameraSpec]
    lidar: LidarSpec

    def world_pose(self, frame: int) -> np.ndarray: ...

    def frame(self, frame: int, return_ids: bool = False, render: bool = True): ...


def token(*parts: object) -> str:
    """A deterministic 32-hex token for a record named by ``parts``."""
    return hashlib.md5("/".join(map(str, ("seal-synth", *parts))).encode()).hexdigest()


def category_indices() -> dict[str, int]:
    """nuScenes lidarseg category name -> index (the raw ids of seal's nuScenes label map)."""
    return {name: int(raw) for raw, name in load_label_map("nuscenes").raw_names.items()}


def label_lookup() -> np.ndarray:
    """uint8 table: SemanticKITTI raw id -> nuScenes category index (0 = noise for anything unlisted)."""
    index = category_indices()
    out = np.zeros(1 << 16, dtype=np.uint8)
    for sk, name in SK_TO_NUSCENES.items():
        out[sk] = index[name]
    return out


def to_nuscenes_labels(labels: np.ndarray) -> np.ndarray:
    """Per-point uint8 category indices of generator labels (semantic id | instance << 16)."""
    return label_lookup()[(np.asarray(labels) & 0xFFFF).astype(np.int64)]


def rings(points: np.ndarray, spec: LidarSpec) -> np.ndarray:
    """Beam index of each point (0 = the top beam), from its elevation (range noise keeps the direction)."""
    xyz = np.asarray(points[:, :3], dtype=np.float64)
    elevation = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    span = spec.fov_up_deg - spec.fov_down_deg
    beam = np.rint((spec.fov_up_deg - elevation) / span * max(spec.beams - 1, 0))
    return np.clip(beam, 0, spec.beams - 1)


def nuscenes_points(points: np.ndarray, spec: LidarSpec) -> np.ndarray:
    """Generator points (x fwd, y left, z, intensity 0..1) -> nuScenes rows (x right, y fwd, z, 0..255, ring)."""
    out = np.empty((len(points), 5), dtype=np.float32)
    out[:, 0] = -points[:, 1]
    out[:, 1] = points[:, 0]
    out[:, 2] = points[:, 2]
    out[:, 3] = points[:, 3] * np.float32(255.0)
    out[:, 4] = rings(points, spec)
    return out


def ego_from_lidar() -> np.ndarray:
    """4x4: the generator's LiDAR frame -> ego."""
    out = np.eye(4)
    out[:3, 3] = LIDAR_IN_EGO
    return out


def _quaternion(rotation: np.ndarray) -> list[float]:
    x, y, z, w = Rotation.from_matrix(rotation).as_quat()
    q = np.array([w, x, y, z]) * (1.0 if w >= 0 else -1.0)
    return [float(v) + 0.0 for v in q]  # + 0.0: no "-0.0" in the tables


def _pose(record_token: str, matrix: np.ndarray, **extra: object) -> dict:
    return {"token": record_token, **extra, "translation": [float(v) for v in matrix[:3, 3]],
            "rotation": _quaternion(matrix[:3, :3])}


def _jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def describe(rig: list[CameraSpec]) -> dict:
    """What `seal_synth.json` records about the nuScenes layout."""
    return {"cameras": {CHANNELS[c.name]: c.name for c in rig},
            "nuscenes": {"version": VERSION, "keyframe_every": KEYFRAME_EVERY, "lidar_axes": "x right, y forward",
                         "labels": {M.CLASS_NAMES[k]: v for k, v in sorted(SK_TO_NUSCENES.items())}}}


def _static_tables(rig: list[CameraSpec]) -> dict[str, list[dict]]:
    sensors = [{"token": token("sensor", LIDAR), "channel": LIDAR, "modality": "lidar"}]
    sensors += [{"token": token("sensor", CHANNELS[c.name]), "channel": CHANNELS[c.name], "modality": "camera"}
                for c in rig]
    categories = [{"token": token("category", name), "name": name, "description": name, "index": index}
                  for name, index in sorted(category_indices().items(), key=lambda kv: kv[1])]
    tables: dict[str, list[dict]] = {name: [] for name in TABLES}
    tables.update(sensor=sensors, category=categories, visibility=[dict(v) for v in VISIBILITY])
    return tables


def _link(rows: list[dict]) -> None:
    """Fill prev/next of records listed in time order."""
    for i, row in enumerate(rows):
        row["prev"] = rows[i - 1]["token"] if i > 0 else ""
        row["next"] = rows[i + 1]["token"] if i + 1 < len(rows) else ""


def scene_name(sequence: int) -> str:
    return f"synth-{sequence:02d}"


def write_scene(root: Path, gen: Generator, period: float, tables: dict[str, list[dict]], bar: object = None) -> None:
    """Write the files of one sequence (``period`` s between frames), skipping frames already complete, and
    append its table rows."""
    seed, seq = gen.seed, gen.sequence
    logfile = f"seal-synth-{seed}-{seq:02d}"
    start = START_US + seq * SCENE_GAP_US
    stamps = [start + int(round(t * period * 1e6)) for t in range(gen.frames)]
    keys = list(range(0, gen.frames, KEYFRAME_EVERY))
    samples = [{"token": token(seed, seq, t, "sample"), "timestamp": stamps[t],
                "scene_token": token(seed, seq, "scene")} for t in keys]
    _link(samples)
    # a sweep belongs to the next keyframe's sample (nuScenes); trailing sweeps to the last one
    sample_of = {t: samples[min(-(-t // KEYFRAME_EVERY), len(samples) - 1)]["token"] for t in range(gen.frames)}
    channels = [(LIDAR, None)] + [(CHANNELS[c.name], c) for c in gen.rig]
    ego_lidar = ego_from_lidar()
    calib = {}
    for channel, cam in channels:
        matrix = ego_lidar @ (SYN_FROM_NUS if cam is None else np.linalg.inv(cam.lidar_to_cam))
        calib[channel] = _pose(token(seed, seq, channel, "calibrated_sensor"), matrix,
                               sensor_token=token("sensor", channel))
        calib[channel]["camera_intrinsic"] = [] if cam is None else cam.K.tolist()
    lidar_rows, cam_rows, lidarseg = [], {c: [] for c, cam in channels if cam is not None}, []
    for t in range(gen.frames):
        key = t % KEYFRAME_EVERY == 0
        ego_to_global = gen.world_pose(t) @ np.linalg.inv(ego_lidar)
        frame_rows = []
        for channel, cam in channels:
            if cam is not None and not key:
                continue
            sd_token = token(seed, seq, t, channel, "sample_data")
            ep_token = token(seed, seq, t, channel, "ego_pose")
            tables["ego_pose"].append(_pose(ep_token, ego_to_global, timestamp=stamps[t]))
            folder = "samples" if key else "sweeps"
            ext = "pcd.bin" if cam is None else "jpg"
            row = {"token": sd_token, "sample_token": sample_of[t], "ego_pose_token": ep_token,
                   "calibrated_sensor_token": calib[channel]["token"], "timestamp": stamps[t],
                   "fileformat": "pcd" if cam is None else "jpg", "is_key_frame": key,
                   "height": 0 if cam is None else cam.height, "width": 0 if cam is None else cam.width,
                   "filename": f"{folder}/{channel}/{logfile}__{channel}__{stamps[t]}.{ext}"}
            (lidar_rows if cam is None else cam_rows[channel]).append(row)
            frame_rows.append(row)
        lidar_sd = frame_rows[0]
        seg_name = f"lidarseg/{VERSION}/{lidar_sd['token']}_lidarseg.bin"
        if key:
            lidarseg.append({"token": lidar_sd["token"], "sample_data_token": lidar_sd["token"],
                             "filename": seg_name})
        paths = [root / r["filename"] for r in frame_rows] + ([root / seg_name] if key else [])
        if not all(p.is_file() for p in paths):
            data = gen.frame(t, render=key)
            write_bytes_atomic(paths[0], nuscenes_points(data.points, gen.lidar).astype("<f4").tobytes())
            for path, image in zip(paths[1:len(frame_rows)], data.images, strict=True):
                write_bytes_atomic(path, _jpeg(image))
            if key:
                write_bytes_atomic(paths[-1], to_nuscenes_labels(data.labels).tobytes())
        if bar is not None:
            bar.update(1)
    for rows in (lidar_rows, *cam_rows.values()):
        _link(rows)
    date = datetime.fromtimestamp(start / 1e6, tz=timezone.utc).date().isoformat()
    tables["log"].append({"token": token(seed, seq, "log"), "logfile": logfile, "vehicle": "seal-synth",
                          "date_captured": date, "location": "synthetic"})
    tables["scene"].append({"token": token(seed, seq, "scene"), "name": scene_name(seq),
                            "description": f"seal synthetic street, seed {seed}, sequence {seq}",
                            "log_token": token(seed, seq, "log"), "nbr_samples": len(samples),
                            "first_sample_token": samples[0]["token"], "last_sample_token": samples[-1]["token"]})
    tables["sample"] += samples
    tables["calibrated_sensor"] += list(calib.values())
    tables["sample_data"] += lidar_rows + [r for rows in cam_rows.values() for r in rows]
    tables["lidarseg"] += lidarseg


def write_nuscenes(root: Path, generators: Iterable[Generator], period: float, bar: object = None) -> None:
    """One scene per generator (``period`` s between its frames) under ``root``; the tables are written last."""
    tables: dict[str, list[dict]] = {}
    seed = None
    for gen in generators:
        tables = tables or _static_tables(gen.rig)
        seed = gen.seed
        write_scene(root, gen, period, tables, bar)
    if not tables:
        raise ValueError("write_nuscenes needs at least one sequence")
    tables["map"] = [{"token": token(seed, "map"), "log_tokens": [r["token"] for r in tables["log"]],
                      "category": "semantic_prior", "filename": ""}]
    for name in TABLES:
        write_text_atomic(root / VERSION / f"{name}.json", json.dumps(tables[name], indent=0) + "\n")
