"""nuScenes, format and reader, over the official table layout (``v1.0-*/*.json``, ``samples/``, ``sweeps/``,
``lidarseg/``).

It reads the JSON tables directly rather than through nuscenes-devkit: the tables are plain JSON and the devkit
drags in OpenCV, Shapely and pycocotools for the few joins a reader needs. A scene becomes a `Sequence` whose
frames are its keyframes (samples, 2 Hz) with their six cameras, or, with ``sweeps=True``, every LiDAR sweep
(20 Hz; cameras only on keyframes). Each camera gets the full chain
lidar -> ego (lidar time) -> global -> ego (camera time) -> camera. Every frame is named by its LiDAR sample_data
token (keyframes and sweeps alike), the token lidarseg files and predictions are named by.

The tables, keyframe records and scene sequences serve the nuScenes-C format too (`seal.data.formats.nuscenes_c`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from seal.core.calibration import check_camera
from seal.core.errors import DataError
from seal.core.frame import Camera, Dataset, Frame, Sequence
from seal.core.io import check_rigid, point_count, read_points
from seal.core.labelmap import LabelMap, load_label_map
from seal.data import splits
from seal.data.formats.base import SequenceSplitFormat
from seal.data.formats.registry import FORMATS, format_of

LIDAR_CHANNEL = "LIDAR_TOP"
_TABLES = ("scene", "sample", "sample_data", "calibrated_sensor", "ego_pose", "sensor")

# The fields the reader uses, per table, as the devkit writes them: str (a token or a name; "" ends a chain),
# int / number / bool, "vec3" / "quat" (3 or 4 numbers), "intrinsic" (a 3x3 matrix, or [] for a non-camera).
_FIELDS: dict[str, dict[str, str]] = {
    "scene": {"token": "str", "name": "str", "first_sample_token": "str"},
    "sample": {"token": "str", "scene_token": "str", "next": "str", "timestamp": "int"},
    "sample_data": {"token": "str", "sample_token": "str", "ego_pose_token": "str", "calibrated_sensor_token": "str",
                    "filename": "str", "is_key_frame": "bool", "next": "str", "timestamp": "int",
                    "width": "int", "height": "int"},
    "calibrated_sensor": {"token": "str", "sensor_token": "str", "translation": "vec3", "rotation": "quat",
                          "camera_intrinsic": "intrinsic"},
    "ego_pose": {"token": "str", "translation": "vec3", "rotation": "quat"},
    "sensor": {"token": "str", "channel": "str"},
    "lidarseg": {"token": "str", "sample_data_token": "str", "filename": "str"},
    "category": {"token": "str", "name": "str"},
}


def _numbers(value, count: int) -> bool:
    return (isinstance(value, list) and len(value) == count
            and all(isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in value))


def _field_ok(kind: str, value) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("vec3", "quat"):
        return _numbers(value, 3 if kind == "vec3" else 4)
    if kind == "intrinsic":
        return value == [] or isinstance(value, list) and len(value) == 3 and all(_numbers(r, 3) for r in value)
    raise AssertionError(kind)


_KIND_TEXT = {"str": "a string", "bool": "true or false", "int": "an integer", "vec3": "3 finite numbers",
              "quat": "4 finite numbers (w x y z)", "intrinsic": "a 3x3 matrix of numbers (or [] for a LiDAR)"}


def check_table(rows, name: str, path: Path) -> list[dict]:
    """``rows`` of table ``name`` as the devkit writes them: a list of records, each with the fields the reader
    uses, of the right types, and unique tokens; a DataError naming the file, the field and the record otherwise."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError(path, f"is not a nuScenes table (expected a JSON list of records, got "
                              f"{type(rows).__name__}{' items' if isinstance(rows, list) else ''})")
    for key, kind in _FIELDS.get(name, {}).items():
        missing = [i for i, r in enumerate(rows) if key not in r]
        if missing and len(missing) == len(rows):
            raise DataError(path, f"no record has the field {key!r}: not the table the nuScenes devkit writes",
                            "re-extract the metadata (e.g. v1.0-trainval_meta.tgz)")
        if missing:
            i = missing[0]
            raise DataError(path, f"record {i} (token {rows[i].get('token', '?')}) has no field {key!r}"
                                  + (f" ({len(missing)} records lack it)" if len(missing) > 1 else ""),
                            "the table is damaged; re-extract the metadata")
        wrong = next((i for i, r in enumerate(rows) if not _field_ok(kind, r[key])), None)
        if wrong is not None:
            raise DataError(path, f"record {wrong} (token {rows[wrong].get('token', '?')}): {key} is "
                                  f"{rows[wrong][key]!r:.60}, expected {_KIND_TEXT[kind]}",
                            "the table is damaged; re-extract the metadata")
    if "token" in _FIELDS.get(name, {}):
        seen: set[str] = set()
        for i, r in enumerate(rows):
            if r["token"] in seen:
                raise DataError(path, f"record {i}: token {r['token']} appears twice", "the table is damaged")
            seen.add(r["token"])
    for i, r in enumerate(rows):
        if "rotation" in _FIELDS.get(name, {}) and not np.isclose(np.linalg.norm(r["rotation"]), 1.0, atol=1e-3):
            raise DataError(path, f"record {i} (token {r['token']}) has a rotation that is not a unit quaternion "
                                  f"({r['rotation']})", "the table is damaged; re-extract the metadata")
        if name == "sample_data" and (r["width"] < 0 or r["height"] < 0):
            raise DataError(path, f"record {i} (token {r['token']}) has a negative image size")
    return rows


def is_nuscenes(root: Path) -> bool:
    return any((d / "sample_data.json").is_file() for d in root.glob("v1.0-*"))


def _transform(record: dict, path: Path) -> np.ndarray:
    """4x4 matrix of a nuScenes pose record (quaternion w x y z + translation)."""
    w, x, y, z = record["rotation"]
    if not np.isclose(np.linalg.norm([w, x, y, z]), 1.0, atol=1e-3):
        raise DataError(path, f"record {record['token']} has a rotation that is not a unit quaternion")
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat([x, y, z, w]).as_matrix()
    out[:3, 3] = record["translation"]
    check_rigid(out, path, f"record {record['token']}")
    return out


class NuScenesTables:
    """The JSON tables of one nuScenes version, indexed by token."""

    def __init__(self, root: Path, version: str | None = None) -> None:
        versions = sorted(d.name for d in root.glob("v1.0-*") if (d / "sample_data.json").is_file())
        if version is None:
            if not versions:
                raise DataError(root, "has no v1.0-*/ folder with nuScenes tables")
            version = next((v for v in ("v1.0-trainval", "v1.0-mini", "v1.0-test") if v in versions),
                           versions[0])
        self.root, self.version, self.folder = root, version, root / version
        if not self.folder.is_dir():
            raise DataError(self.folder, "version folder not found", f"available: {', '.join(versions)}")
        self.tables = {name: self._load(name) for name in _TABLES}
        self.index = {name: {r["token"]: r for r in rows} for name, rows in self.tables.items()}
        self.lidarseg = {r["sample_data_token"]: r for r in self._load("lidarseg", required=False)}
        self.categories = self._load("category", required=False)

    def _load(self, name: str, required: bool = True) -> list[dict]:
        path = self.folder / f"{name}.json"
        if not path.is_file():
            if required:
                raise DataError(path, "nuScenes table missing")
            return []
        try:
            rows = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(path, f"is not valid JSON: {err}") from err
        return check_table(rows, name, path)

    def get(self, table: str, token: str) -> dict:
        try:
            return self.index[table][token]
        except KeyError:
            raise DataError(self.folder / f"{table}.json", f"has no record with token {token}") from None

    def channel(self, sample_data: dict) -> str:
        sensor = self.get("calibrated_sensor", sample_data["calibrated_sensor_token"])["sensor_token"]
        return self.get("sensor", sensor)["channel"]

    def sensor_to_global(self, sample_data: dict) -> np.ndarray:
        """sensor -> global at the record's own timestamp (calibrated_sensor then ego_pose)."""
        table = self.folder
        calib = _transform(self.get("calibrated_sensor", sample_data["calibrated_sensor_token"]),
                           table / "calibrated_sensor.json")
        ego = _transform(self.get("ego_pose", sample_data["ego_pose_token"]), table / "ego_pose.json")
        return ego @ calib


def lidarseg_lookup(tables: NuScenesTables, lmap: LabelMap) -> LabelMap:
    """The label map re-keyed by this release's category indices (matched by category name)."""
    by_name = {name: raw for raw, name in lmap.raw_names.items()}
    pairs = [(c["index"], by_name[c["name"]]) for c in tables.categories
             if "index" in c and c["name"] in by_name]
    if not pairs:
        return lmap
    return lmap.rekeyed(pairs)


def keyframe_records(tables: NuScenesTables, has_scan=None) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Keyframe sample_data records by sample token: the LiDAR one (kept only where ``has_scan(record)`` holds,
    when given) and the cameras."""
    lidar_of_sample: dict[str, dict] = {}
    cams_of_sample: dict[str, list[dict]] = {}
    for sd in tables.tables["sample_data"]:
        if not sd["is_key_frame"]:
            continue
        channel = tables.channel(sd)
        if channel == LIDAR_CHANNEL and (has_scan is None or has_scan(sd)):
            lidar_of_sample[sd["sample_token"]] = sd
        elif channel.startswith("CAM_"):
            cams_of_sample.setdefault(sd["sample_token"], []).append(sd)
    return lidar_of_sample, cams_of_sample


def scenes_in_order(tables: NuScenesTables) -> list[tuple[dict, list[dict]]]:
    """Every scene (sorted by name) with its samples in time order (following the ``next`` links)."""
    out = []
    for scene in sorted(tables.tables["scene"], key=lambda s: s["name"]):
        samples, token, seen = [], scene["first_sample_token"], set()
        while token:
            if token in seen:
                raise DataError(tables.folder / "sample.json", f"the samples of scene {scene['name']} link in a "
                                f"loop (record {token} comes twice)", "the table is damaged; re-extract it")
            seen.add(token)
            sample = tables.get("sample", token)
            samples.append(sample)
            token = sample["next"]
        out.append((scene, samples))
    return out


def open_nuscenes(root: Path, version: str | None = None, sweeps: bool = False) -> Dataset:
    """Open every scene of a nuScenes release as a sequence of keyframes (or of all sweeps)."""
    tables = NuScenesTables(root, version)
    if sweeps and not (root / "sweeps").is_dir():
        raise DataError(root / "sweeps", "not found: data.sweeps=true reads every LiDAR sweep from sweeps/",
                        "download and extract the sweeps into this folder, or drop data.sweeps=true (keyframes only)")
    lmap = lidarseg_lookup(tables, load_label_map("nuscenes"))
    lidar_of_sample, cams_of_sample = keyframe_records(tables)
    seqs = []
    for scene, samples in scenes_in_order(tables):
        lidar = [lidar_of_sample[s["token"]] for s in samples if s["token"] in lidar_of_sample]
        if sweeps and lidar:
            lidar = _sweep_chain(tables, lidar[0], scene["token"])
        seqs.append(scene_sequence(tables, scene, lidar, cams_of_sample, lmap))
    return Dataset(root=root, kind="nuscenes", sequences=seqs, label_map=lmap,
                   notes=[f"version {tables.version}", "keyframes" if not sweeps else "all LiDAR sweeps"])


def _sweep_chain(tables: NuScenesTables, first: dict, scene_token: str) -> list[dict]:
    """The LiDAR sample_data chain from ``first`` on, up to the scene's end (a chain never crosses scenes)."""
    chain, record, seen = [], first, set()
    while record is not None:
        if record["token"] in seen:
            raise DataError(tables.folder / "sample_data.json", f"the sweeps of record {first['token']} link in a "
                            f"loop (record {record['token']} comes twice)", "the table is damaged; re-extract it")
        seen.add(record["token"])
        sample = tables.index["sample"].get(record["sample_token"])
        if sample is not None and sample["scene_token"] != scene_token:
            break
        chain.append(record)
        if record["next"] and record["next"] not in tables.index["sample_data"]:
            raise DataError(tables.folder / "sample_data.json",
                            f"record {record['token']} links to a missing next record {record['next']}")
        record = tables.index["sample_data"].get(record["next"]) if record["next"] else None
    return chain


def scene_sequence(tables: NuScenesTables, scene: dict, lidar: list[dict],
                    cams_of_sample: dict[str, list[dict]], lmap: LabelMap) -> Sequence:
    root = tables.root
    channel_order = ["CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT",
                     "CAM_BACK_RIGHT"]
    camera_names = sorted({tables.channel(c) for s in lidar for c in cams_of_sample.get(s["sample_token"], [])},
                          key=lambda n: (channel_order.index(n) if n in channel_order else 99, n))

    # named by the LiDAR sample_data token: what lidarseg labels and predictions (lidarseg/<token>_lidarseg.bin) use
    names = [sd["token"] for sd in lidar]

    def load(index: int) -> Frame:
        sd = lidar[index]
        path = root / sd["filename"]
        points = read_points(path, columns=5, keep=5)
        lidar_to_global = tables.sensor_to_global(sd)
        cameras = []
        if sd["is_key_frame"]:
            for cam in cams_of_sample.get(sd["sample_token"], []):
                cam_to_global = tables.sensor_to_global(cam)
                calib = tables.get("calibrated_sensor", cam["calibrated_sensor_token"])
                K = check_camera(calib["camera_intrinsic"], int(cam["width"]), int(cam["height"]),
                                 tables.folder / "calibrated_sensor.json",
                                 f"camera_intrinsic of record {calib['token']}",
                                 tables.folder / "sample_data.json")
                cameras.append(Camera(name=tables.channel(cam), K=K,
                                      lidar_to_cam=np.linalg.inv(cam_to_global) @ lidar_to_global,
                                      width=int(cam["width"]), height=int(cam["height"]),
                                      image_path=root / cam["filename"], timestamp=cam["timestamp"] * 1e-6))
            cameras.sort(key=lambda c: camera_names.index(c.name))
        labels = raw = None
        seg = tables.lidarseg.get(sd["token"])
        if seg is not None:
            seg_path = root / seg["filename"]
            if not seg_path.is_file():
                raise DataError(seg_path, "lidarseg label file not found")
            raw = np.fromfile(seg_path, dtype=np.uint8).astype(np.int64)
            if raw.shape[0] != points.shape[0]:
                raise DataError(seg_path, f"holds {raw.shape[0]} labels but the scan has {points.shape[0]} points")
            labels = lmap.to_train(raw)
        xyzi = np.ascontiguousarray(points[:, :4])
        xyzi[:, 3] /= 255.0  # nuScenes intensity is 0..255; the data model uses 0..1
        return Frame(id=f"{scene['name']}/{names[index]}",
                     points=xyzi, pose=lidar_to_global, timestamp=sd["timestamp"] * 1e-6, cameras=cameras,
                     labels=labels, raw_labels=raw, rings=points[:, 4].astype(np.int64),
                     sequence=scene["name"], index=index)

    has_labels = any(sd["token"] in tables.lidarseg for sd in lidar)
    return Sequence(name=scene["name"], frame_names=names, load=load,
                    point_count=lambda i: point_count(root / lidar[i]["filename"], columns=5),
                    has_labels=has_labels, has_poses=True, camera_names=camera_names,
                    frame_cameras=lambda i: camera_names if lidar[i]["is_key_frame"] else [])


@FORMATS.register("nuscenes")
class NuScenesFormat(SequenceSplitFormat):
    name = "nuscenes"
    title = "nuScenes"
    layout = "v1.0-*/ tables, samples/, sweeps/, lidarseg/"
    needs = "v1.0-trainval tables, samples/ (+ sweeps/ for every sweep), lidarseg/ for labels"
    detection = "v1.0-*/sample_data.json"
    detect_priority = 10
    label_map = "nuscenes"
    split_note = "val: the devkit's 150 scenes; few-shot: packaged scene lists (every k-th training scene)"
    miou_convention = "absent-excluded"  # nuscenes-devkit eval/lidarseg: ConfusionMatrix.get_mean_iou (np.nanmean)
    robustness_baseline = "nuscenes"
    options = ("version", "sweeps")
    detector = staticmethod(is_nuscenes)
    reader = staticmethod(open_nuscenes)

    def prediction_file(self, folder: Path, frame_id: str) -> tuple[Path, np.dtype]:
        """lidarseg's own layout: ``lidarseg/<lidar sample_data token>_lidarseg.bin``, uint8 raw ids."""
        return folder / "lidarseg" / f"{frame_id.rsplit('/', 1)[1]}_lidarseg.bin", np.dtype("u1")

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        return splits.listed_split(dataset, fraction, "nuscenes")

    def open_released(self, clean: Dataset, folder: Path) -> Dataset:
        """A nuScenes-C ``<corruption>/<severity>`` folder read with ``clean``'s tables and label map, by the
        nuScenes-C format (looked up in the registry, as its module builds on this one)."""
        return format_of("nuscenes-c").open_released(clean, folder)


__all__ = ["NuScenesFormat", "NuScenesTables", "is_nuscenes", "open_nuscenes", "keyframe_records", "scenes_in_order",
           "scene_sequence", "lidarseg_lookup", "LIDAR_CHANNEL"]
