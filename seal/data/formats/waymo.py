"""Waymo Open Dataset v2 (v2.0.0 and later), format and reader: Apache Parquet components, one file per component
and segment::

    ROOT/[training|validation|testing/]<component>/<context_name>.parquet

Components read (column names as the ``waymo-open-dataset`` v2 package writes them, e.g.
``[LiDARComponent].range_image_return1.values``; keys ``key.segment_context_name``, ``key.frame_timestamp_micros``,
``key.laser_name``, ``key.camera_name``):

- ``lidar`` (required): range images of the TOP LiDAR, both returns, stored *uncompressed* in v2 as a flat float32
  list + shape [H, W, 4] (range, intensity, elongation, in-no-label-zone). They become points exactly as the
  package's ``convert_range_image_to_point_cloud`` does without per-pixel poses: row inclinations (given, else
  uniform between min and max) reversed, column azimuths ``((W - c - 0.5) / W * 2 - 1) pi - atan2(E10, E00)``, then
  the extrinsic E (LiDAR -> vehicle); pixels with range <= 0 are dropped, rows give ``rings``. Points are in the
  vehicle frame, which plays the part of the LiDAR frame here. Intensity is squashed to 0..1 with tanh.
- ``lidar_calibration`` (required), ``vehicle_pose`` (required: frame poses, vehicle -> world).
- ``lidar_segmentation`` (optional): [H, W, 2] (instance, semantic class) per return, TOP LiDAR only, on the
  labelled frames; the 23 types of segmentation.proto (TYPE_UNDEFINED = 0 is ignored).
- ``camera_image`` + ``camera_calibration`` (optional): five JPEG cameras, pinhole K from f_u f_v c_u c_v (the lens
  distortion k1 k2 p1 p2 k3 is not applied), extrinsic camera -> vehicle, camera axes x forward / y left / z up,
  chained through the world frame with the image's own vehicle pose.

Not read: the four short-range LiDARs, ``lidar_pose`` (per-pixel rolling-shutter poses of the TOP LiDAR: points
keep the vehicle frame at the frame timestamp), ``lidar_camera_projection``, boxes. v1 ``.tfrecord`` files are not
supported. pyarrow is an optional dependency: ``pip install 'seal[waymo]'``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.errors import DataError
from seal.core.frame import Camera, Dataset, Frame, Sequence
from seal.core.labelmap import LabelMap
from seal.data import splits
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.kitti_layout import resolve_label_map
from seal.data.formats.registry import FORMATS

SPLITS = ("training", "validation", "testing")
TOP = 1
CAMERA_NAMES = {1: "FRONT", 2: "FRONT_LEFT", 3: "FRONT_RIGHT", 4: "SIDE_LEFT", 5: "SIDE_RIGHT"}
TS, LASER, CAMERA = "key.frame_timestamp_micros", "key.laser_name", "key.camera_name"
# Waymo camera axes (x forward, y left, z up) -> seal's (x right, y down, z forward): u_n = -y/x, v_n = -z/x
WAYMO_TO_CAM = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def parquet(path: Path):
    """``pyarrow.parquet``, or a one-line error naming the extra that brings it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(path, "reading the Waymo Open Dataset (v2 Parquet) needs pyarrow",
                        "pip install 'seal[waymo]'") from None
    return pq


def split_dirs(root: Path) -> list[Path]:
    """The folders holding a ``lidar/`` component: ``root`` itself, or its split folders."""
    if (root / "lidar").is_dir():
        return [root]
    return [root / s for s in SPLITS if (root / s / "lidar").is_dir()]


def is_waymo(root: Path) -> bool:
    return any(any(d.glob("lidar/*.parquet")) for d in split_dirs(root))


def _read(path: Path, columns: list[str], filters: list | None = None) -> dict[str, list]:
    pq = parquet(path)
    try:
        table = pq.read_table(path, columns=columns, filters=filters)
    except (OSError, ValueError, KeyError) as err:  # pyarrow raises ArrowInvalid (a ValueError) for bad columns
        raise DataError(path, f"is not a readable Waymo v2 component: {err}") from err
    return table.to_pydict()


def _matrix(values, path: Path, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.size != 16:
        raise DataError(path, f"{what} has {array.size} values, expected 16 (a row-major 4x4 transform)")
    return array.reshape(4, 4)


@dataclass
class _Lidar:
    extrinsic: np.ndarray                # LiDAR -> vehicle
    inclination: np.ndarray | None       # per-beam inclinations (radians, ascending), when non-uniform
    lo: float = 0.0                      # uniform inclinations: min and max
    hi: float = 0.0

    def rows(self, height: int) -> np.ndarray:
        """The inclination of every range-image row, row 0 first (the beams reversed, as the package does)."""
        if self.inclination is None:
            incl = (0.5 + np.arange(height)) / height * (self.hi - self.lo) + self.lo
        else:
            incl = self.inclination
        return np.asarray(incl, np.float64)[::-1].copy()


def range_image_points(values, shape, lidar: _Lidar, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N x 4 points x y z intensity in the vehicle frame, N rings, the H*W mask of kept pixels) of a range image."""
    height, width, channels = (int(v) for v in shape)
    image = np.asarray(values, dtype=np.float32)
    if image.size != height * width * channels or channels < 2:
        raise DataError(path, f"range image of {image.size} values does not match its shape {list(shape)}")
    image = image.reshape(height, width, channels)
    inclination = lidar.rows(height)
    if inclination.shape[0] != height:
        raise DataError(path, f"the calibration has {inclination.shape[0]} beam inclinations for a range "
                              f"image of {height} rows")
    extrinsic = lidar.extrinsic
    az_correction = np.arctan2(extrinsic[1, 0], extrinsic[0, 0])
    ratios = (np.arange(width, 0, -1, dtype=np.float64) - 0.5) / width
    azimuth = (ratios * 2.0 - 1.0) * np.pi - az_correction
    rng = image[..., 0].astype(np.float64)
    cos_incl = np.cos(inclination)[:, None]
    xyz = np.stack([np.cos(azimuth)[None, :] * cos_incl * rng, np.sin(azimuth)[None, :] * cos_incl * rng,
                    np.sin(inclination)[:, None] * rng], axis=-1)
    mask = rng > 0
    local = xyz[mask]
    vehicle = local @ extrinsic[:3, :3].T + extrinsic[:3, 3]
    intensity = np.clip(np.tanh(image[..., 1][mask].astype(np.float64)), 0.0, 1.0)
    points = np.concatenate([vehicle, intensity[:, None]], axis=1).astype(np.float32)
    rings = np.nonzero(mask)[0].astype(np.int64)
    return points, rings, mask.reshape(-1)


class _Context:
    """One segment: its component files and the per-segment tables (calibration, poses), read on first use."""

    def __init__(self, split_dir: Path, name: str) -> None:
        self.dir, self.name = split_dir, name
        self._lidar: _Lidar | None = None
        self._poses: dict[int, np.ndarray] | None = None
        self._cameras: dict[int, tuple[np.ndarray, np.ndarray, int, int]] | None = None

    def file(self, component: str) -> Path:
        return self.dir / component / f"{self.name}.parquet"

    def has(self, component: str) -> bool:
        return self.file(component).is_file()

    def timestamps(self, component: str, key_filter: tuple[str, int] | None = (LASER, TOP)) -> list[int]:
        path = self.file(component)
        columns = [TS] + ([key_filter[0]] if key_filter else [])
        table = _read(path, columns)
        keep = [ts for i, ts in enumerate(table[TS]) if not key_filter or table[key_filter[0]][i] == key_filter[1]]
        return sorted(set(keep))

    def lidar(self) -> _Lidar:
        if self._lidar is None:
            path = self.file("lidar_calibration")
            p = "[LiDARCalibrationComponent]"
            table = _read(path, [LASER, f"{p}.extrinsic.transform", f"{p}.beam_inclination.min",
                                 f"{p}.beam_inclination.max", f"{p}.beam_inclination.values"])
            if TOP not in table[LASER]:
                raise DataError(path, "has no calibration of the TOP LiDAR (laser_name 1)")
            row = table[LASER].index(TOP)
            values = table[f"{p}.beam_inclination.values"][row]
            self._lidar = _Lidar(_matrix(table[f"{p}.extrinsic.transform"][row], path, "extrinsic"),
                                 np.asarray(values, np.float64) if values else None,
                                 float(table[f"{p}.beam_inclination.min"][row] or 0.0),
                                 float(table[f"{p}.beam_inclination.max"][row] or 0.0))
        return self._lidar

    def poses(self) -> dict[int, np.ndarray]:
        if self._poses is None:
            path = self.file("vehicle_pose")
            column = "[VehiclePoseComponent].world_from_vehicle.transform"
            table = _read(path, [TS, column])
            self._poses = {ts: _matrix(m, path, column) for ts, m in zip(table[TS], table[column], strict=True)}
        return self._poses

    def cameras(self) -> dict[int, tuple[np.ndarray, np.ndarray, int, int]]:
        """{camera id: (K, camera -> vehicle, width, height)} from camera_calibration."""
        if self._cameras is None:
            self._cameras = {}
            if self.has("camera_calibration"):
                path, p = self.file("camera_calibration"), "[CameraCalibrationComponent]"
                names = ["f_u", "f_v", "c_u", "c_v"]
                table = _read(path, [CAMERA, *(f"{p}.intrinsic.{n}" for n in names), f"{p}.extrinsic.transform",
                                     f"{p}.width", f"{p}.height"])
                for i, cam in enumerate(table[CAMERA]):
                    fu, fv, cu, cv = (float(table[f"{p}.intrinsic.{n}"][i]) for n in names)
                    K = np.array([[fu, 0.0, cu], [0.0, fv, cv], [0.0, 0.0, 1.0]])
                    self._cameras[int(cam)] = (K, _matrix(table[f"{p}.extrinsic.transform"][i], path,
                                                          "camera extrinsic"),
                                               int(table[f"{p}.width"][i]), int(table[f"{p}.height"][i]))
        return self._cameras


class _JpegCamera(Camera):
    """A camera whose image is a JPEG held in memory (Waymo stores images inside the parquet rows)."""

    jpeg: bytes = b""

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            from PIL import Image

            with Image.open(io.BytesIO(self.jpeg)) as img:
                self._image = np.asarray(img.convert("RGB"))
        return self._image

    @image.setter
    def image(self, value: np.ndarray) -> None:
        self._image = value


def _load(ctx: _Context, ts: int, lmap: LabelMap, index: int, with_cameras: bool) -> Frame:
    path = ctx.file("lidar")
    p = "[LiDARComponent]"
    cols = [f"{p}.range_image_return{r}.{f}" for r in (1, 2) for f in ("values", "shape")]
    row = _read(path, cols, [(TS, "==", ts), (LASER, "==", TOP)])
    if not row[cols[0]]:
        raise DataError(path, f"has no TOP LiDAR range image at timestamp {ts}")
    lidar = ctx.lidar()
    points, rings, masks = [], [], []
    for r in (1, 2):
        values, shape = row[f"{p}.range_image_return{r}.values"][0], row[f"{p}.range_image_return{r}.shape"][0]
        if values is None or shape is None:
            continue
        pts, ring, mask = range_image_points(values, shape, lidar, path)
        points.append(pts)
        rings.append(ring)
        masks.append((r, mask))
    pose = ctx.poses().get(ts)
    if pose is None:
        raise DataError(ctx.file("vehicle_pose"), f"has no vehicle pose at timestamp {ts}")
    frame = Frame(id=f"{ctx.name}/{ts}", points=np.concatenate(points), pose=pose, timestamp=ts * 1e-6,
                  rings=np.concatenate(rings), sequence=ctx.name, index=index)
    if ctx.has("lidar_segmentation"):
        _add_labels(frame, ctx, ts, masks, lmap)
    if with_cameras:
        frame.cameras = _frame_cameras(ctx, ts, pose)
    return frame


def _add_labels(frame: Frame, ctx: _Context, ts: int, masks: list[tuple[int, np.ndarray]], lmap: LabelMap) -> None:
    path, p = ctx.file("lidar_segmentation"), "[LiDARSegmentationLabelComponent]"
    cols = [f"{p}.range_image_return{r}.{f}" for r, _ in masks for f in ("values", "shape")]
    row = _read(path, cols, [(TS, "==", ts), (LASER, "==", TOP)])
    if not row[cols[0]]:
        return  # an unlabelled frame
    raw, instances = [], []
    for r, mask in masks:
        values, shape = row[f"{p}.range_image_return{r}.values"][0], row[f"{p}.range_image_return{r}.shape"][0]
        labels = np.asarray(values, np.int64).reshape(-1, int(shape[2]) if shape else 2)
        if labels.shape[0] != mask.shape[0]:
            raise DataError(path, f"return {r} at {ts} labels {labels.shape[0]} pixels, the range image has "
                                  f"{mask.shape[0]}")
        raw.append(labels[mask, 1])
        instances.append(labels[mask, 0])
    frame.raw_labels, frame.instances = np.concatenate(raw), np.concatenate(instances)
    frame.labels = lmap.to_train(frame.raw_labels)


def _frame_cameras(ctx: _Context, ts: int, frame_pose: np.ndarray) -> list[Camera]:
    calib = ctx.cameras()
    if not calib or not ctx.has("camera_image"):
        return []
    path, p = ctx.file("camera_image"), "[CameraImageComponent]"
    row = _read(path, [CAMERA, f"{p}.image", f"{p}.pose.transform", f"{p}.pose_timestamp"], [(TS, "==", ts)])
    cameras = []
    for i, cam in enumerate(row[CAMERA]):
        if int(cam) not in calib:
            continue
        K, cam_to_vehicle, width, height = calib[int(cam)]
        vehicle_to_cam = WAYMO_TO_CAM @ np.linalg.inv(cam_to_vehicle)
        cam_pose = row[f"{p}.pose.transform"][i]
        if cam_pose is not None:  # the vehicle moved between the LiDAR frame and the exposure
            vehicle_to_cam = vehicle_to_cam @ np.linalg.inv(_matrix(cam_pose, path, "image pose")) @ frame_pose
        stamp = row[f"{p}.pose_timestamp"][i]
        camera = _JpegCamera(name=CAMERA_NAMES.get(int(cam), f"CAMERA_{cam}"), K=K, lidar_to_cam=vehicle_to_cam,
                             width=width, height=height, timestamp=float(stamp) if stamp is not None else ts * 1e-6)
        camera.jpeg = row[f"{p}.image"][i]
        cameras.append(camera)
    return sorted(cameras, key=lambda c: list(CAMERA_NAMES.values()).index(c.name) if c.name in
                  CAMERA_NAMES.values() else 99)


def _sequence(ctx: _Context, lmap: LabelMap, sweeps: bool) -> Sequence:
    stamps = ctx.timestamps("lidar")
    labelled = set(ctx.timestamps("lidar_segmentation")) if ctx.has("lidar_segmentation") else set()
    if labelled and not sweeps:
        stamps = [ts for ts in stamps if ts in labelled]
    with_cameras = bool(ctx.cameras()) and ctx.has("camera_image")
    camera_names = [CAMERA_NAMES.get(c, f"CAMERA_{c}") for c in sorted(ctx.cameras())] if with_cameras else []
    counts: dict[int, int] = {}

    def load(index: int) -> Frame:
        frame = _load(ctx, stamps[index], lmap, index, with_cameras)
        counts[index] = frame.num_points
        return frame

    def point_count(index: int) -> int:  # range images hold no count: a frame is read once to count its points
        if index not in counts:
            counts[index] = _load(ctx, stamps[index], lmap, index, False).num_points
        return counts[index]

    return Sequence(name=ctx.name, frame_names=[str(ts) for ts in stamps], load=load, point_count=point_count,
                    has_labels=bool(labelled), has_poses=True, camera_names=camera_names)


def open_waymo(root: Path, label_map: LabelMap, sweeps: bool = False) -> Dataset:
    """Every segment under ``root`` as a sequence; its labelled frames only, or every frame with ``sweeps=True``
    (always every frame of a segment without ``lidar_segmentation``)."""
    dirs = split_dirs(root)
    contexts = [_Context(d, p.stem) for d in dirs for p in sorted((d / "lidar").glob("*.parquet"))]
    if not contexts:
        raise DataError(root, "holds no lidar/<context>.parquet of the Waymo Open Dataset v2")
    parquet(root)
    for ctx in contexts:
        for component in ("lidar_calibration", "vehicle_pose"):
            if not ctx.has(component):
                raise DataError(ctx.file(component), "Waymo v2 component missing",
                                "download lidar, lidar_calibration and vehicle_pose for every segment")
    seqs = [_sequence(ctx, label_map, sweeps) for ctx in contexts]
    notes = ["Waymo Open v2, TOP LiDAR (both returns)", "all frames" if sweeps else "labelled frames"]
    return Dataset(root=root, kind="waymo", sequences=seqs, label_map=label_map, notes=notes)


def validation_contexts(root: Path) -> list[str]:
    """Segment names under ``root/validation`` (the official validation split)."""
    return sorted(p.stem for p in (root / "validation" / "lidar").glob("*.parquet"))


@FORMATS.register("waymo")
class WaymoFormat(SequenceSplitFormat):
    name = "waymo"
    title = "Waymo Open (v2)"
    layout = "[training|validation/]<component>/<context>.parquet (v2.0.0+ Parquet components)"
    needs = ("lidar, lidar_calibration, vehicle_pose (+ lidar_segmentation for labels, camera_image and "
             "camera_calibration for pretraining); pip install 'seal[waymo]' (pyarrow)")
    detection = "lidar/*.parquet (or training|validation|testing/lidar/*.parquet)"
    detect_priority = 11
    label_map = "waymo"
    split_note = "training/ vs validation/ segments; few-shot: every k-th labelled training frame"
    # waymo-open-dataset metrics/segmentation_metrics.cc SegmentationMetricsIOU::ComputeIOU
    miou_convention = "absent-as-one"
    options = ("label_map", "sweeps")
    detector = staticmethod(is_waymo)

    def open(self, root: Path, **options: Any) -> Dataset:
        options = self.accepted(options)
        lmap = resolve_label_map(root, options.get("label_map"), self.label_map)
        return open_waymo(root, lmap, sweeps=bool(options.get("sweeps", False)))

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        val = set(validation_contexts(dataset.root))
        if not val:
            return None
        train = tuple(s.name for s in dataset.sequences if s.name not in val)
        return splits.sequence_split(dataset, fraction, train, sorted(val))


__all__ = ["WaymoFormat", "open_waymo", "is_waymo", "range_image_points", "validation_contexts", "split_dirs",
           "parquet"]
