"""PandaSet (Hesai / Scale AI), format and reader, over the released layout, one folder per sequence::

    ROOT/<seq>/lidar/{00..79}.pkl.gz, poses.json, timestamps.json
    ROOT/<seq>/camera/<name>_camera/{00..79}.jpg, intrinsics.json, poses.json, timestamps.json
    ROOT/<seq>/annotations/semseg/{00..79}.pkl.gz, classes.json     (some sequences only)
    ROOT/<seq>/meta/gps.json, timestamps.json

Facts, with where they come from (github.com/scaleapi/pandaset-devkit, python/pandaset/ unless said otherwise):

- The layout above: README.md "Files & Folders"; ``DataSet`` takes every sub-folder of ROOT as a sequence
  (dataset.py), ``Sensor`` globs ``*.pkl.gz`` / ``*.jpg`` sorted and reads ``poses.json``, ``timestamps.json``
  as lists with one entry per frame (sensors.py). ROOT may also be one sequence folder here.
- A LiDAR frame is a pickled, gzipped pandas DataFrame (``pd.read_pickle``, sensors.py ``Lidar``) with columns
  ``x y z`` (metres, **world** frame), ``i`` (intensity 0..255), ``t`` (per-point time, s), ``d`` (sensor id:
  0 = Pandar64, the 360 deg mechanical LiDAR; 1 = PandarGT, the forward-facing solid-state one; ``set_sensor``).
- Poses (lidar and every camera): ``{"position": {x, y, z}, "heading": {w, x, y, z}}``, the sensor's pose in the
  world, the quaternion scalar first (geometry.py ``_heading_position_to_mat``: transforms3d ``quat2mat([w, x, y,
  z])``). ``lidar_points_to_ego`` applies its inverse to world points; the tutorial pointcloud_world_to_ego uses
  the one lidar pose for the points of both sensors, and so does ScaLR+ (valeoai/ScaLR, scalr_plus,
  datasets/pandaset_for_scalr.py). So seal's LiDAR frame is that of ``lidar/poses.json`` for either sensor (the
  PandarGT has no pose of its own in the release), and ``Frame.pose`` is that pose. Its axes are x right, y
  forward, z up (OpenPCDet pcdet/datasets/pandaset/pandaset_dataset.py, which also divides ``i`` by 255), as
  nuScenes' LIDAR_TOP; where its origin sits on the car is not documented (devkit issues #67, #71). Timestamps
  are float seconds.
- Cameras: ``intrinsics.json`` holds ``fx fy cx cy`` (no skew, sensors.py ``Intrinsics``); geometry.py
  ``projection`` maps world points with the inverse camera pose, keeps z > 0 and applies K alone, so the camera
  axes are x right / y down / z forward (seal's) and no distortion is applied. seal's ``lidar_to_cam`` is
  ``inv(camera pose) @ lidar pose`` of the same frame index.
- Semantic labels: ``annotations/semseg/NN.pkl.gz``, a DataFrame with one column ``class`` whose rows follow the
  LiDAR DataFrame's (both sensors; annotations.py ``SemanticSegmentation``); ``classes.json`` maps id -> name
  (ids 1..42, README.md). Only some sequences have it (README.md; ``DataSet.sequences(with_semseg=True)``):
  frames of the others have ``labels=None``. Raw 0 is ignored (ScaLR: "Noise").

The sensor is chosen with ``data.version`` (as Synth4D picks its sensor's recording): ``pandar64`` (default),
``pandargt`` or ``both`` (every point of the file). Frame names carry it (``002/00_pandargt``), so the caches and
predictions of one sensor never stand in for another's. Intensity is divided by 255, as nuScenes' is. The official
split is ScaLR's: labelled sequences whose first ``meta/gps.json`` latitude is above 37.6 train, the others are
validation. The pickles need pandas (``pip install 'seal[pandaset]'``) and, being pickles, run code when read:
open only a PandaSet copy you trust.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from seal.core.errors import ConfigError, DataError
from seal.core.frame import Camera, Dataset, Frame, Sequence
from seal.core.io import check_rigid, image_size
from seal.core.labelmap import LabelMap
from seal.data import splits
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import resolve_label_map
from seal.data.formats.registry import FORMATS

SENSORS: dict[str, int | None] = {"pandar64": 0, "pandargt": 1, "both": None}  # data.version -> column d
DEFAULT_SENSOR = "pandar64"
CAMERA_ORDER = ("front_camera", "front_left_camera", "front_right_camera", "left_camera", "right_camera",
                "back_camera")
SCAN_SUFFIX = ".pkl.gz"
VAL_LATITUDE = 37.6  # ScaLR (datasets/pandaset_for_scalr.py): val = lat <= 37.6 (27 scenes), train above (49)


def pandas_module(path: Path):
    """``pandas``, or a one-line error naming the extra that brings it."""
    try:
        import pandas as pd
    except ImportError:
        raise DataError(path, "reading PandaSet (pickled pandas DataFrames) needs pandas",
                        "pip install 'seal[pandaset]'") from None
    return pd


def _is_sequence(folder: Path) -> bool:
    return (folder / "lidar" / f"00{SCAN_SUFFIX}").is_file() and (folder / "camera").is_dir()


def sequence_dirs(root: Path) -> list[Path]:
    """The sequence folders: ``root`` itself when it is one, else its sub-folders that are, sorted by name."""
    if _is_sequence(root):
        return [root]
    return sorted(d for d in root.iterdir() if d.is_dir() and _is_sequence(d)) if root.is_dir() else []


def is_pandaset(root: Path) -> bool:
    return bool(sequence_dirs(root))


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(path, "PandaSet file missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(path, f"is not valid JSON: {err}") from err


def pose_matrix(record: Any, path: Path, index: int) -> np.ndarray:
    """The 4x4 sensor -> world transform of one pose record (position + heading quaternion w x y z)."""
    try:
        h, p = record["heading"], record["position"]
        quat = np.array([h["x"], h["y"], h["z"], h["w"]], np.float64)  # scipy wants the scalar last
        position = np.array([p["x"], p["y"], p["z"]], np.float64)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(path, f"pose {index} is not {{position: {{x, y, z}}, heading: {{w, x, y, z}}}} of numbers "
                              f"({type(err).__name__}: {err})") from None
    if not np.isclose(np.linalg.norm(quat), 1.0, atol=1e-3):
        raise DataError(path, f"pose {index} has a heading that is not a unit quaternion")
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat(quat).as_matrix()
    out[:3, 3] = position
    check_rigid(out, path, f"pose {index}")
    return out


def read_poses(path: Path) -> np.ndarray:
    """Every pose of a ``poses.json`` as an N x 4 x 4 array (parsed at once: a sequence has 7 files of 80)."""
    records = read_json(path)
    if not isinstance(records, list):
        raise DataError(path, "is not a list of per-frame poses")
    try:
        quat = np.array([[r["heading"][k] for k in "xyzw"] for r in records], np.float64).reshape(-1, 4)
        position = np.array([[r["position"][k] for k in "xyz"] for r in records], np.float64).reshape(-1, 3)
        bad = ~(np.isclose(np.linalg.norm(quat, axis=1), 1.0, atol=1e-3) & np.isfinite(position).all(axis=1))
    except (KeyError, TypeError, ValueError):
        quat, bad = None, np.ones(len(records), bool)
    for index in np.flatnonzero(bad):
        pose_matrix(records[index], path, int(index))  # raises the first bad record's own one-line error
    if quat is None:
        raise DataError(path, "holds pose records that are not {position, heading} of numbers")
    out = np.tile(np.eye(4), (len(records), 1, 1))
    if len(records):
        out[:, :3, :3] = Rotation.from_quat(quat).as_matrix()
        out[:, :3, 3] = position
    return out


def read_timestamps(path: Path) -> list[float]:
    stamps = read_json(path)
    if not isinstance(stamps, list) or not all(isinstance(s, (int, float)) for s in stamps):
        raise DataError(path, "is not a list of per-frame timestamps (seconds)")
    return [float(s) for s in stamps]


def read_table(path: Path, columns: tuple[str, ...]) -> Any:
    """The DataFrame of one ``.pkl.gz`` file, checked to hold ``columns``."""
    pd = pandas_module(path)
    if not path.is_file():
        raise DataError(path, "PandaSet file missing")
    try:
        table = pd.read_pickle(path)
    except Exception as err:  # noqa: BLE001 - gzip, pickle and pandas raise anything on a broken file
        raise DataError(path, f"is not a readable pickled DataFrame ({type(err).__name__}: {err})"
                        .split("\n")[0]) from None
    if not isinstance(table, pd.DataFrame):
        raise DataError(path, f"holds a {type(table).__name__}, not a pandas DataFrame")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(path, f"has no column {', '.join(map(repr, missing))} (columns: "
                              f"{', '.join(map(str, table.columns))})")
    return table


@dataclass
class _Camera:
    """One camera folder of a sequence: K, per-frame poses and timestamps, image size (read on first use)."""

    folder: Path
    K: np.ndarray
    poses: np.ndarray
    stamps: list[float] | None
    size: tuple[int, int] | None = None

    @classmethod
    def read(cls, folder: Path) -> _Camera:
        intr = read_json(folder / "intrinsics.json")
        try:
            fx, fy, cx, cy = (float(intr[k]) for k in ("fx", "fy", "cx", "cy"))
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(folder / "intrinsics.json", f"needs numbers fx, fy, cx, cy ({err})") from None
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        stamps = read_timestamps(folder / "timestamps.json") if (folder / "timestamps.json").is_file() else None
        return cls(folder, K, read_poses(folder / "poses.json"), stamps)

    def image(self, index: int) -> Path:
        return self.folder / f"{index:02d}.jpg"


@dataclass
class _Sequence:
    """One sequence folder: its scans, lidar poses and timestamps, cameras and (optional) semseg."""

    folder: Path
    sensor: str
    label_map: LabelMap
    scans: list[Path] = field(default_factory=list)
    poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4)))
    stamps: list[float] = field(default_factory=list)
    cameras: dict[str, _Camera] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lidar = self.folder / "lidar"
        self.scans = sorted(lidar.glob(f"*{SCAN_SUFFIX}"), key=lambda p: (len(p.name), p.name))
        for scan in self.scans:
            if not scan.name[: -len(SCAN_SUFFIX)].isdigit():
                raise DataError(scan, "is not named NN.pkl.gz (the frame number)")
        self.poses = read_poses(lidar / "poses.json")
        self.stamps = read_timestamps(lidar / "timestamps.json")
        last = self.number(len(self.scans) - 1)
        for path, entries in ((lidar / "poses.json", self.poses), (lidar / "timestamps.json", self.stamps)):
            if last >= len(entries):
                raise DataError(path, f"has {len(entries)} entries but the scans go up to {last:02d}{SCAN_SUFFIX}")
        folders = [d for d in (self.folder / "camera").iterdir() if d.is_dir()]
        for d in sorted(folders, key=lambda d: (CAMERA_ORDER.index(d.name) if d.name in CAMERA_ORDER else 99, d.name)):
            self.cameras[d.name] = _Camera.read(d)
        self.label_map = classes_lookup(self.semseg / "classes.json", self.label_map)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def semseg(self) -> Path:
        return self.folder / "annotations" / "semseg"

    @property
    def has_labels(self) -> bool:
        return self.semseg.is_dir() and any(self.semseg.glob(f"*{SCAN_SUFFIX}"))

    def number(self, index: int) -> int:
        return int(self.scans[index].name[: -len(SCAN_SUFFIX)])

    def frame_name(self, index: int) -> str:
        return f"{self.number(index):02d}_{self.sensor}"

    def frame_cameras(self, index: int) -> list[str]:
        return [n for n, cam in self.cameras.items() if cam.image(self.number(index)).is_file()]

    def points(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(N x 4 world x y z intensity of the chosen sensor, the row mask it keeps, None when every row)."""
        scan, sensor_id = self.scans[index], SENSORS[self.sensor]
        table = read_table(scan, ("x", "y", "z", "i") + (("d",) if sensor_id is not None else ()))
        xyzi = table[["x", "y", "z", "i"]].to_numpy(dtype=np.float64)
        if sensor_id is None:
            return xyzi, None
        mask = table["d"].to_numpy() == sensor_id
        return xyzi[mask], mask

    def load(self, index: int, with_cameras: bool = True) -> Frame:
        number = self.number(index)
        world, mask = self.points(index)
        pose = self.poses[number].copy()  # the frame's own, so nothing downstream edits the sequence's
        rot, trans = pose[:3, :3], pose[:3, 3]
        points = np.empty((world.shape[0], 4), np.float32)
        points[:, :3] = (world[:, :3] - trans) @ rot  # inv(pose) on row vectors: R^T (p - t)
        points[:, 3] = np.clip(world[:, 3] / 255.0, 0.0, 1.0)  # PandaSet intensity is 0..255; the model uses 0..1
        self.counts[index] = points.shape[0]
        frame = Frame(id=f"{self.name}/{self.frame_name(index)}", points=points, pose=pose,
                      timestamp=self.stamps[number], sequence=self.name, index=index)
        label_file = self.semseg / self.scans[index].name
        if label_file.is_file():
            frame.raw_labels = self.labels(label_file, mask, world.shape[0])
            frame.labels = self.label_map.to_train(frame.raw_labels)
        if with_cameras:
            frame.cameras = [self.camera(name, number, pose) for name in self.frame_cameras(index)]
        return frame

    def labels(self, path: Path, mask: np.ndarray | None, count: int) -> np.ndarray:
        """Raw class ids of the kept rows (the semseg rows follow the scan's rows, both sensors)."""
        table = read_table(path, ("class",))
        try:
            raw = table["class"].to_numpy().astype(np.int64)  # stored as ints, documented as numeric strings
        except (TypeError, ValueError) as err:
            raise DataError(path, f"column 'class' holds values that are not class ids ({err})") from None
        rows = mask.shape[0] if mask is not None else count
        if raw.shape[0] != rows:
            raise DataError(path, f"holds {raw.shape[0]} labels but the scan has {rows} points")
        return raw[mask] if mask is not None else raw

    def camera(self, name: str, number: int, lidar_pose: np.ndarray) -> Camera:
        cam = self.cameras[name]
        path = cam.folder / "poses.json"
        if number >= len(cam.poses):
            raise DataError(path, f"has {len(cam.poses)} poses, frame {number:02d} needs one")
        image = cam.image(number)
        if cam.size is None:
            cam.size = image_size(image)
        stamp = cam.stamps[number] if cam.stamps is not None and number < len(cam.stamps) else self.stamps[number]
        return Camera(name=name, K=cam.K.copy(), lidar_to_cam=np.linalg.inv(cam.poses[number]) @ lidar_pose,
                      width=cam.size[0], height=cam.size[1], image_path=image, timestamp=stamp)

    def point_count(self, index: int) -> int:  # a pickle holds no count: the scan is read once to count it
        if index not in self.counts:
            self.counts[index] = self.points(index)[0].shape[0]
        return self.counts[index]

    def sequence(self) -> Sequence:
        return Sequence(name=self.name, frame_names=[self.frame_name(i) for i in range(len(self.scans))],
                        load=self.load, point_count=self.point_count, has_labels=self.has_labels, has_poses=True,
                        camera_names=list(self.cameras), frame_cameras=self.frame_cameras)


def classes_lookup(path: Path, lmap: LabelMap) -> LabelMap:
    """``lmap`` re-keyed by the ids a sequence's ``classes.json`` gives its class names (matched by name, as the
    nuScenes reader does with category.json); ``lmap`` itself when the file is absent or agrees with it."""
    if not path.is_file():
        return lmap
    classes = read_json(path)
    if not isinstance(classes, dict):
        raise DataError(path, "is not a {class id: class name} object")
    by_name = {name: raw for raw, name in lmap.raw_names.items()}
    try:
        pairs = [(int(k), by_name[v]) for k, v in classes.items() if v in by_name]
    except ValueError:
        raise DataError(path, "has a class id that is not a number") from None
    if not pairs or all(i == raw for i, raw in pairs):
        return lmap
    return lmap.rekeyed(pairs)


def open_pandaset(root: Path, label_map: str | Path | LabelMap | None = None, version: str | None = None) -> Dataset:
    """Every sequence under ``root`` (or ``root`` itself, one sequence), the points of the sensor ``version``
    names (pandar64 | pandargt | both; default pandar64) in the LiDAR frame of ``lidar/poses.json``."""
    sensor = version or DEFAULT_SENSOR
    if sensor not in SENSORS:
        raise ConfigError(f"data.version={sensor!r} is not a PandaSet LiDAR; choose one of {', '.join(SENSORS)} "
                          "(pandar64: the 360 deg Pandar64, pandargt: the forward PandarGT, both: every point)")
    dirs = sequence_dirs(root)
    if not dirs:
        raise DataError(root, f"holds no PandaSet sequence (<seq>/lidar/00{SCAN_SUFFIX} and <seq>/camera/)")
    pandas_module(root)
    lmap = resolve_label_map(root, label_map, "pandaset")
    seqs = [_Sequence(d, sensor, lmap).sequence() for d in dirs]
    notes = [f"LiDAR {sensor} (data.version={'|'.join(SENSORS)})", "points in the frame of lidar/poses.json"]
    return Dataset(root=root, kind="pandaset", sequences=seqs, label_map=lmap, notes=notes)


def first_latitude(folder: Path) -> float | None:
    """The latitude of a sequence's first ``meta/gps.json`` record (what ScaLR splits by), None without one."""
    path = folder / "meta" / "gps.json"
    if not path.is_file():
        return None
    records = read_json(path)
    try:
        return float(records[0]["lat"])
    except (IndexError, KeyError, TypeError, ValueError):
        raise DataError(path, "has no first record with a number 'lat'") from None


@FORMATS.register("pandaset")
class PandaSetFormat(SequenceSplitFormat):
    name = "pandaset"
    title = "PandaSet"
    layout = ("<seq>/lidar/NN.pkl.gz (world-frame DataFrames x y z i t d) + poses.json, "
              "camera/<name>/NN.jpg + intrinsics.json + poses.json, annotations/semseg/NN.pkl.gz")
    needs = ("the sequence folders as released (semseg on some sequences only); pip install 'seal[pandaset]' "
             "(pandas); data.version=pandar64 (default) | pandargt | both picks the LiDAR")
    detection = "<seq>/lidar/00.pkl.gz and <seq>/camera/"
    detect_priority = 12
    label_map = "pandaset"
    split_note = ("ScaLR's: labelled sequences with meta/gps.json latitude > 37.6 train, <= 37.6 val; "
                  "few-shot: every k-th training frame")
    miou_convention = "absent-excluded"  # no official benchmark; ScaLR utils/finetuner.py: np.nanmean of the IoUs
    options = ("label_map", "version")
    detector = staticmethod(is_pandaset)
    reader = staticmethod(open_pandaset)

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        labelled = [s.name for s in dataset.sequences if s.has_labels]
        folders = {d.name: d for d in sequence_dirs(dataset.root)}
        lats = {name: first_latitude(folders[name]) for name in labelled if name in folders}
        if not lats or any(lat is None for lat in lats.values()):
            return None
        train = tuple(n for n, lat in lats.items() if lat is not None and lat > VAL_LATITUDE)
        val = [n for n, lat in lats.items() if lat is not None and lat <= VAL_LATITUDE]
        return splits.sequence_split(dataset, fraction, train, val)


__all__ = ["PandaSetFormat", "open_pandaset", "is_pandaset", "sequence_dirs", "pose_matrix", "classes_lookup",
           "pandas_module", "SENSORS"]
