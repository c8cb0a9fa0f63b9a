"""A tiny PandaSet in its released layout (pandaset-devkit README "Files & Folders"), written with pandas, and the
ground truth the reader must recover. Geometry here is computed by hand (``quat_to_matrix``), never by the code
under test, so the tests check the reader against an independent transform."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# pandaset-devkit README: the classes.json of a semseg sequence
CLASSES = {1: "Smoke", 2: "Exhaust", 3: "Spray or rain", 4: "Reflection", 5: "Vegetation", 6: "Ground", 7: "Road",
           8: "Lane Line Marking", 9: "Stop Line Marking", 10: "Other Road Marking", 11: "Sidewalk", 12: "Driveway",
           13: "Car", 14: "Pickup Truck", 15: "Medium-sized Truck", 16: "Semi-truck", 17: "Towed Object",
           18: "Motorcycle", 19: "Other Vehicle - Construction Vehicle", 20: "Other Vehicle - Uncommon",
           21: "Other Vehicle - Pedicab", 22: "Emergency Vehicle", 23: "Bus", 24: "Personal Mobility Device",
           25: "Motorized Scooter", 26: "Bicycle", 27: "Train", 28: "Trolley", 29: "Tram / Subway", 30: "Pedestrian",
           31: "Pedestrian with Object", 32: "Animals - Bird", 33: "Animals - Other", 34: "Pylons",
           35: "Road Barriers", 36: "Signs", 37: "Cones", 38: "Construction Signs",
           39: "Temporary Construction Barriers", 40: "Rolling Containers", 41: "Building", 42: "Other Static Object"}
# raw ids the fixture labels with, and their class in ScaLR's 17-class map (datasets/pandaset_for_scalr.py)
SCALR_CLASS = {0: "ignore", 1: "ignore", 7: "road", 8: "road-marking", 13: "car", 30: "pedestrian", 41: "manmade",
               36: "traffic-sign", 12: "driveway"}
CAMERAS = ("front_camera", "back_camera")
WIDTH, HEIGHT, FX, FY, CX, CY = 64, 48, 50.0, 55.0, 31.5, 23.0
MARK_PIXEL = {"front_camera": (40.25, 17.5), "back_camera": (10.0, 30.75)}  # where each camera's marker lands
MARK_DEPTH = 9.0
LATITUDE = {"001": 37.77, "002": 37.41}  # ScaLR's split: > 37.6 train (San Francisco), <= 37.6 val


def quat_to_matrix(w: float, x: float, y: float, z: float) -> np.ndarray:
    """The rotation of a unit quaternion, scalar first (the textbook formula, as transforms3d's quat2mat)."""
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def transform(quat: np.ndarray, position: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = quat_to_matrix(*quat)
    out[:3, 3] = position
    return out


def _pose_record(quat: np.ndarray, position: np.ndarray) -> dict:
    return {"position": dict(zip("xyz", map(float, position), strict=True)),
            "heading": dict(zip("wxyz", map(float, quat), strict=True))}


def _random_quat(rng: np.random.Generator, spread: float = 1.0) -> np.ndarray:
    q = np.array([1.0, 0.0, 0.0, 0.0]) + spread * rng.normal(size=4)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


@dataclass
class FrameTruth:
    """What frame ``NN`` of a sequence holds, in the world frame as written."""

    lidar_pose: np.ndarray                       # sensor -> world (4x4)
    camera_poses: dict[str, np.ndarray]          # camera -> world (4x4)
    world: np.ndarray                            # N x 3, every row of the file
    intensity: np.ndarray                        # N, 0..255
    sensor: np.ndarray                           # N, column d
    raw: np.ndarray | None                       # N raw class ids, None without semseg
    marks: dict[str, int] = field(default_factory=dict)  # camera -> row of its marker point


def write_pandaset(root: Path, sequences: tuple[str, ...] = ("001", "002"), frames: int = 3,
                   semseg: tuple[str, ...] = ("001",), seed: int = 0, points: tuple[int, int] = (40, 25),
                   classes: dict[int, str] | None = None, gps: bool = True) -> dict[str, list[FrameTruth]]:
    """``frames`` frames of each sequence: ``points`` = (Pandar64 rows, PandarGT rows) shuffled together (the two
    marker rows, Pandar64 points placed to land on ``MARK_PIXEL``, first), two cameras, semseg on ``semseg``."""
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(seed)
    K = np.array([[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]])
    truth: dict[str, list[FrameTruth]] = {}
    for s, seq in enumerate(sequences):
        base = root / seq
        lidar = base / "lidar"
        lidar.mkdir(parents=True)
        mounts = {name: (_random_quat(rng), rng.normal(size=3)) for name in CAMERAS}  # camera -> LiDAR, fixed
        lidar_poses, cam_poses, stamps = [], {c: [] for c in CAMERAS}, []
        truth[seq] = []
        for f in range(frames):
            quat, position = _random_quat(rng, 0.3), np.array([100.0 * s + 3.0 * f, -2.0 * f, 1.5]) + rng.normal(
                size=3)
            pose = transform(quat, position)
            lidar_poses.append(_pose_record(quat, position))
            stamp = 1.557540e9 + 100.0 * s + 0.1 * f
            stamps.append(stamp)
            cameras = {}
            for name, (mq, mt) in mounts.items():
                cam = pose @ transform(mq, mt)
                cq = _matrix_to_quat(cam[:3, :3])
                cam_poses[name].append(_pose_record(cq, cam[:3, 3]))
                cameras[name] = transform(cq, cam[:3, 3])  # the pose exactly as written (rounded by JSON floats)
            n64, ngt = points
            world = pose[:3, 3] + rng.uniform(-30, 30, size=(n64 + ngt, 3))
            sensor = np.array([0] * n64 + [1] * ngt)
            order = np.concatenate([[0, 1], 2 + rng.permutation(n64 + ngt - 2)])
            world, sensor = world[order], sensor[order]
            marks = {}
            for row, name in enumerate(CAMERAS):  # rows 0 and 1: Pandar64 points on each camera's marker pixel
                u, v = MARK_PIXEL[name]
                in_cam = MARK_DEPTH * np.linalg.solve(K, [u, v, 1.0])
                world[row] = (cameras[name] @ np.append(in_cam, 1.0))[:3]
                marks[name] = row
            intensity = rng.integers(0, 256, size=world.shape[0]).astype(np.float64)
            df = pd.DataFrame({"x": world[:, 0], "y": world[:, 1], "z": world[:, 2], "i": intensity,
                               "t": stamp + rng.uniform(0, 0.1, world.shape[0]), "d": sensor})
            df.to_pickle(lidar / f"{f:02d}.pkl.gz")
            raw = None
            if seq in semseg:
                raw = rng.choice(sorted(SCALR_CLASS), size=world.shape[0])
                (base / "annotations" / "semseg").mkdir(parents=True, exist_ok=True)
                pd.DataFrame({"class": raw}).to_pickle(base / "annotations" / "semseg" / f"{f:02d}.pkl.gz")
            truth[seq].append(FrameTruth(pose, cameras, world, intensity, sensor, raw, marks))
            for name in CAMERAS:
                folder = base / "camera" / name
                folder.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (WIDTH, HEIGHT), (20 * f, 100, 30 * s)).save(folder / f"{f:02d}.jpg")
        (lidar / "poses.json").write_text(json.dumps(lidar_poses))
        (lidar / "timestamps.json").write_text(json.dumps(stamps))
        for name in CAMERAS:
            folder = base / "camera" / name
            (folder / "intrinsics.json").write_text(json.dumps({"fx": FX, "fy": FY, "cx": CX, "cy": CY}))
            (folder / "poses.json").write_text(json.dumps(cam_poses[name]))
            (folder / "timestamps.json").write_text(json.dumps([t + 0.01 for t in stamps]))
        if seq in semseg:
            names = classes or CLASSES
            (base / "annotations" / "semseg" / "classes.json").write_text(
                json.dumps({str(k): v for k, v in names.items()}))
        if gps:
            (base / "meta").mkdir()
            (base / "meta" / "gps.json").write_text(json.dumps(
                [{"lat": LATITUDE.get(seq, 37.7), "long": -122.4, "height": 3.0, "xvel": 0.0, "yvel": 0.0}] * frames))
            (base / "meta" / "timestamps.json").write_text(json.dumps(stamps))
    return truth


def _matrix_to_quat(rot: np.ndarray) -> np.ndarray:
    """w x y z of a rotation matrix (Shepperd's method, scalar first and non-negative)."""
    w = np.sqrt(max(0.0, 1.0 + np.trace(rot))) / 2.0
    if w > 1e-3:
        q = np.array([w, (rot[2, 1] - rot[1, 2]) / (4 * w), (rot[0, 2] - rot[2, 0]) / (4 * w),
                      (rot[1, 0] - rot[0, 1]) / (4 * w)])
    else:  # near 180 degrees: from the largest diagonal term
        i = int(np.argmax(np.diag(rot)))
        j, k = (i + 1) % 3, (i + 2) % 3
        v = np.zeros(3)
        v[i] = np.sqrt(max(0.0, 1.0 + rot[i, i] - rot[j, j] - rot[k, k])) / 2.0
        v[j] = (rot[j, i] + rot[i, j]) / (4 * v[i])
        v[k] = (rot[k, i] + rot[i, k]) / (4 * v[i])
        q = np.array([(rot[k, j] - rot[j, k]) / (4 * v[i]), *v])
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


__all__ = ["write_pandaset", "FrameTruth", "quat_to_matrix", "transform", "CAMERAS", "MARK_PIXEL", "SCALR_CLASS",
           "CLASSES", "WIDTH", "HEIGHT", "LATITUDE"]
