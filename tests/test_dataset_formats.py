"""Every dataset layout of the Seal paper, written tiny in tmp_path with the release's own folder and file names
and formats, read back through `seal.data.open_dataset` (detected and/or kind=), `seal info`, the label maps,
the official splits and the released Robo3D sets in `seal evaluate --robustness`."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from seal.cli.main import main
from seal.core.config import SEVERITIES
from seal.core.errors import ConfigError, DataError
from seal.data import detect_kind, get_format, open_dataset, require_pretraining_data
from seal.data.formats import FORMATS
from seal.evaluation.metrics import CORRUPTIONS

LABELMAPS = Path(__file__).resolve().parents[1] / "seal" / "data" / "labelmaps"


def scan(path: Path, n: int, seed: int, columns: int = 4, intensity: float = 1.0) -> np.ndarray:
    """A float32 scan of ``n`` points (x y z intensity [extra columns]) written to ``path``; returns it."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-20, 20, size=(n, columns)).astype(np.float32)
    pts[:, 3] = rng.uniform(0, intensity, n)
    path.parent.mkdir(parents=True, exist_ok=True)
    pts.tofile(path)
    return pts


def labels(path: Path, raw: list[int] | np.ndarray, instance: int = 0, dtype: str = "<u4") -> np.ndarray:
    raw = np.asarray(raw, np.uint32)
    path.parent.mkdir(parents=True, exist_ok=True)
    (raw | np.uint32(instance << 16)).astype(dtype).tofile(path)
    return raw


def train_ids(dataset, names: list[str]) -> list[int]:
    return [0 if n == "ignore" else dataset.label_map.class_names.index(n) + 1 for n in names]


def info(path: Path, kind: str) -> int:
    return main(["info", str(path), "--kind", kind, "--label-sample", "2"])


# ------------------------------------------------------------------------------------------- SemanticKITTI family


def test_scribblekitti_scribbles_train_dense_labels_validate(tmp_path):
    root = tmp_path / "scribblekitti"
    scan(root / "sequences/00/velodyne/000000.bin", 5, 0)
    labels(root / "sequences/00/scribbles/000000.label", [0, 10, 0, 40, 252], instance=3)
    labels(root / "sequences/00/labels/000000.label", [40] * 5)  # dense labels next to scribbles are not used
    scan(root / "sequences/08/velodyne/000000.bin", 3, 1)
    labels(root / "sequences/08/labels/000000.label", [48, 50, 99])
    assert detect_kind(root) == "scribblekitti"
    ds = open_dataset(root)
    assert ds.kind == "scribblekitti" and ds.label_map.num_classes == 19
    assert ds[0].labels.tolist() == train_ids(ds, ["ignore", "car", "ignore", "road", "car"])
    assert ds[1].labels.tolist() == train_ids(ds, ["sidewalk", "building", "ignore"])
    assert open_dataset(root, kind="semantickitti")[0].labels.tolist() == train_ids(ds, ["road"] * 5)
    assert info(root, "scribblekitti") == 0


def test_semanticposs_needs_kind_and_scales_intensity(tmp_path):
    root = tmp_path / "semanticposs"
    for seq in ("00", "01", "02", "03", "04", "05"):
        scan(root / f"sequences/{seq}/velodyne/000000.bin", 6, int(seq), intensity=200.0)
        labels(root / f"sequences/{seq}/labels/000000.label", [0, 4, 5, 11, 21, 22])
    assert detect_kind(root) == "semantickitti"  # the SemanticKITTI layout, no marker: --kind semanticposs
    ds = open_dataset(root, kind="semanticposs")
    assert ds.label_map.num_classes == 13 and not ds.sequences[0].has_poses and not ds.sequences[0].camera_names
    frame = ds[0]
    assert frame.labels.tolist() == train_ids(ds, ["ignore", "person", "person", "traffic-sign", "bike", "ground"])
    assert 0.0 <= frame.points[:, 3].min() and frame.points[:, 3].max() <= 1.0
    raw = np.fromfile(root / "sequences/00/velodyne/000000.bin", np.float32).reshape(-1, 4)
    np.testing.assert_allclose(frame.points[:, 3], raw[:, 3] / 255.0, rtol=1e-6)
    train, val = ds.format.official_split(ds, 100)
    assert train == [0, 1, 2, 4, 5] and val == ["03"]
    assert ds.format.official_split(ds, 25)[0] == [0, 5]  # every 4th of 00 01 02 04 05's sorted frame ids
    assert info(root, "semanticposs") == 0


def test_semanticstf_split_folders_five_columns(tmp_path):
    root = tmp_path / "SemanticSTF"
    pts = scan(root / "train/velodyne/000000.bin", 4, 0, columns=5, intensity=255.0)
    labels(root / "train/labels/000000.label", [0, 1, 19, 20], dtype="<i4")
    scan(root / "val/velodyne/000001.bin", 3, 1, columns=5, intensity=255.0)
    labels(root / "val/labels/000001.label", [9, 9, 17], dtype="<i4")
    (root / "semanticstf.yaml").write_text("name: semanticstf\n")
    assert detect_kind(root) == "semanticstf"
    ds = open_dataset(root)
    assert [s.name for s in ds.sequences] == ["train", "val"] and ds[0].points.shape == (4, 4)
    np.testing.assert_allclose(ds[0].points[:, :3], pts[:, :3])
    np.testing.assert_allclose(ds[0].points[:, 3], pts[:, 3] / 255.0, rtol=1e-6)
    assert ds[0].labels.tolist() == train_ids(ds, ["ignore", "car", "traffic-sign", "ignore"])
    assert ds[1].labels.tolist() == train_ids(ds, ["road", "road", "terrain"])
    assert ds.format.official_split(ds, 100) == ([0], ["val"])
    assert info(root, "semanticstf") == 0


@pytest.mark.parametrize("nested", [False, True])
def test_synlidar_release_layout(tmp_path, nested):
    root = tmp_path / "SynLiDAR"
    base = root / "sequences" if nested else root
    for seq in ("00", "01"):
        scan(base / f"{seq}/velodyne/000000.bin", 5, int(seq))
        labels(base / f"{seq}/labels/000000.label", [0, 2, 13, 25, 32])
    (root / "annotations.yaml").write_text("labels: {0: unlabeled}\n")
    assert detect_kind(root) == "synlidar"
    ds = open_dataset(root)
    assert ds[0].labels.tolist() == train_ids(ds, ["ignore", "truck", "person", "ignore", "ignore"])
    assert ds.format.official_split(ds, 100) == ([1], ["00"])  # val 00 04 07, train the rest (those present)
    assert info(root, "synlidar") == 0


def test_rellis3d_sequences_poses_and_split_lists(tmp_path):
    root = tmp_path / "rellis"
    seq = root / "Rellis-3D" / "00000"
    for i in range(3):
        scan(seq / f"os1_cloud_node_kitti_bin/{i:06d}.bin", 4, i, intensity=3000.0)
        labels(seq / f"os1_cloud_node_semantickitti_label_id/{i:06d}.label", [0, 3, 17, 10])
    poses = np.tile(np.eye(4)[:3].reshape(1, 12), (3, 1))
    poses[:, 3] = [0.0, 1.0, 2.0]  # x translation
    np.savetxt(seq / "poses.txt", poses)
    line = "00000/os1_cloud_node_kitti_bin/{0:06d}.bin 00000/os1_cloud_node_semantickitti_label_id/{0:06d}.label\n"
    (root / "pt_train.lst").write_text(line.format(0) + line.format(2))
    (root / "pt_val.lst").write_text(line.format(1))
    assert detect_kind(root) == "rellis3d"
    ds = open_dataset(root)
    assert [s.name for s in ds.sequences] == ["00000-train", "00000-val"]
    assert ds.sequences[0].frame_names == ["000000", "000002"] and ds.sequences[0].has_poses
    np.testing.assert_allclose(ds[1].pose[:3, 3], [2.0, 0.0, 0.0])  # the third scan's pose, not the second
    assert ds[0].labels.tolist() == train_ids(ds, ["ignore", "grass", "person", "ignore"])
    assert ds[0].points[:, 3].max() <= 1.0 and "65535" in " ".join(ds.notes)
    assert ds.format.official_split(ds, 100) == ([0, 1], ["00000-val"])
    (root / "pt_train.lst").unlink(), (root / "pt_val.lst").unlink()
    assert [s.name for s in open_dataset(root).sequences] == ["00000"]
    assert info(root, "rellis3d") == 0


def test_daps3d_clouds_folder(tmp_path):
    root = tmp_path / "daps-1"
    for seq in ("00", "08"):
        scan(root / f"data/{seq}/clouds/000000.bin", 6, int(seq))
        labels(root / f"data/{seq}/labels/000000.label", [0, 10, 254, 72, 50, 52])
    (root / "params.yml").write_text("sensor: {}\n")
    assert detect_kind(root) == "daps3d"
    ds = open_dataset(root)
    assert ds[0].labels.tolist() == train_ids(ds, ["ignore", "vehicle", "human", "surface", "obstacle", "ignore"])
    assert ds.format.official_split(ds, 100) == ([0], ["08"])
    assert info(root, "daps3d") == 0


def test_synth4d_npy_towns(tmp_path):
    root = tmp_path / "Synth4D"
    town = root / "kitti_synth" / "Town03"
    town.joinpath("velodyne").mkdir(parents=True)
    points = np.random.default_rng(0).uniform(0, 1, (5, 4)).astype(np.float32)
    np.save(town / "velodyne" / "000000.npy", points)
    town.joinpath("labels").mkdir()
    np.save(town / "labels" / "000000.npy", np.array([0, 10, 4, 6, 22], np.int32))
    town.joinpath("calib").mkdir()
    np.save(town / "calib" / "000000.npy", np.eye(4))
    assert detect_kind(root) == "synth4d"
    ds = open_dataset(root)
    assert ds.sequences[0].name == "Town03" and ds.sequences[0].point_count(0) == 5
    np.testing.assert_allclose(ds[0].points, points)
    assert ds[0].labels.tolist() == train_ids(ds, ["ignore", "vehicle", "pedestrian", "road", "terrain"])
    with pytest.raises(DataError, match="nuscenes_synth"):
        open_dataset(root, version="nuscenes_synth")
    assert info(root, "synth4d") == 0


def test_semantickitti_c_release(tmp_path):
    root = tmp_path / "SemanticKITTI-C"
    for severity in SEVERITIES:
        scan(root / f"fog/{severity}/velodyne/000000.bin", 4, 0)
        labels(root / f"fog/{severity}/labels/000000.label", [40, 10, 99, 0])
    assert detect_kind(root) == "semantickitti-c"
    ds = open_dataset(root)
    assert [s.name for s in ds.sequences] == [f"fog-{s}" for s in SEVERITIES]
    assert ds[0].labels.tolist() == train_ids(ds, ["road", "car", "ignore", "ignore"])
    single = open_dataset(root / "fog" / "heavy", kind="semantickitti-c")
    assert single.sequences[0].name == "fog-heavy" and len(single) == 1
    assert info(root, "semantickitti-c") == 0


def test_nuscenes_c_reads_the_release_with_clean_tables(tmp_path, nuscenes_root):
    clean = tmp_path / "nuscenes"
    clean.mkdir()
    (clean / "v1.0-mini").symlink_to(nuscenes_root / "v1.0-mini")
    (clean / "samples").symlink_to(nuscenes_root / "samples")
    sd = next(r for r in json.loads((nuscenes_root / "v1.0-mini" / "sample_data.json").read_text())
              if "LIDAR_TOP" in r["filename"])
    raw = np.fromfile(nuscenes_root / sd["filename"], np.float32).reshape(-1, 5)[:100].copy()
    raw[:, :3] += 0.5  # "corrupted": fewer points, moved
    release = tmp_path / "nuScenes-C"
    folder = release / "snow" / "light"
    (folder / sd["filename"]).parent.mkdir(parents=True)
    raw.tofile(folder / sd["filename"])
    seg = np.full(100, 43, np.uint8)  # Robo3D's id for points a corruption created: no category -> ignore
    (folder / "lidarseg" / "v1.0-mini").mkdir(parents=True)
    seg.tofile(folder / "lidarseg" / "v1.0-mini" / f"{sd['token']}_lidarseg.bin")
    assert detect_kind(release) == "nuscenes-c"
    with pytest.raises(DataError, match="nuscenes_root"):
        open_dataset(release)
    ds = open_dataset(release, nuscenes_root=clean)
    frame = ds[0]
    assert ds.sequences[0].name.startswith("snow-light-") and frame.points.shape == (100, 4)
    np.testing.assert_allclose(frame.points[:, :3], raw[:, :3])
    assert (frame.labels == 0).all() and frame.raw_labels.tolist() == [43] * 100
    released = get_format("nuscenes").open_released(open_dataset(clean), folder)
    np.testing.assert_allclose(released[0].points[:, :3], raw[:, :3])
    (release / "v1.0-mini").symlink_to(nuscenes_root / "v1.0-mini")  # the tables linked into the release
    assert info(release, "nuscenes-c") == 0


# ------------------------------------------------------------------------------------------------------- Waymo


def _waymo(root: Path, ctx: str = "seg_0001") -> dict:
    """A v2 segment of two frames (100, 200 us; 100 labelled) in the component files and columns the v2 package
    writes; returns what the reader must find."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from PIL import Image

    def write(component: str, columns: dict) -> None:
        (root / component).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), root / component / f"{ctx}.parquet")

    key = "key.segment_context_name"
    r1 = np.zeros((2, 2, 4), np.float32)
    r1[..., 0] = [[5, 0], [7, 9]]
    r1[..., 1] = [[0.5, 0], [2.0, 0.1]]
    r2 = np.zeros((2, 2, 4), np.float32)
    r2[0, 1, 0] = 4.0
    ri = "[LiDARComponent].range_image_return"
    write("lidar", {key: [ctx] * 3, "key.frame_timestamp_micros": pa.array([100, 100, 200], pa.int64()),
                    "key.laser_name": pa.array([1, 2, 1], pa.int8()),
                    f"{ri}1.values": [r1.ravel().tolist(), [1.0] * 16, r1.ravel().tolist()],
                    f"{ri}1.shape": [[2, 2, 4]] * 3, f"{ri}2.values": [r2.ravel().tolist()] * 3,
                    f"{ri}2.shape": [[2, 2, 4]] * 3})
    yaw = np.array([[0.0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]])  # 90 deg about z, t = (1, 2, 3)
    c = "[LiDARCalibrationComponent]"
    write("lidar_calibration", {key: [ctx] * 2, "key.laser_name": pa.array([1, 2], pa.int8()),
                                f"{c}.extrinsic.transform": [yaw.ravel().tolist(), np.eye(4).ravel().tolist()],
                                f"{c}.beam_inclination.min": [-0.1, -0.1], f"{c}.beam_inclination.max": [0.2, 0.2],
                                f"{c}.beam_inclination.values": [[-0.1, 0.2], None]})
    pose = np.eye(4)
    pose[:3, 3] = [100.0, 0.0, 0.0]
    write("vehicle_pose", {key: [ctx] * 2, "key.frame_timestamp_micros": pa.array([100, 200], pa.int64()),
                           "[VehiclePoseComponent].world_from_vehicle.transform": [pose.ravel().tolist()] * 2})
    seg1, seg2 = np.zeros((2, 2, 2), np.int32), np.zeros((2, 2, 2), np.int32)
    seg1[..., 1] = [[1, 0], [18, 22]]
    seg2[0, 1] = [4, 7]
    s = "[LiDARSegmentationLabelComponent].range_image_return"
    write("lidar_segmentation", {key: [ctx], "key.frame_timestamp_micros": pa.array([100], pa.int64()),
                                 "key.laser_name": pa.array([1], pa.int8()), f"{s}1.values": [seg1.ravel().tolist()],
                                 f"{s}1.shape": [[2, 2, 2]], f"{s}2.values": [seg2.ravel().tolist()],
                                 f"{s}2.shape": [[2, 2, 2]]})
    cc = "[CameraCalibrationComponent]"
    write("camera_calibration", {key: [ctx], "key.camera_name": pa.array([1], pa.int8()),
                                 **{f"{cc}.intrinsic.{k}": [v] for k, v in (("f_u", 100.0), ("f_v", 100.0),
                                                                              ("c_u", 16.0), ("c_v", 8.0))},
                                 f"{cc}.extrinsic.transform": [np.eye(4).ravel().tolist()],
                                 f"{cc}.width": pa.array([32], pa.int32()), f"{cc}.height": pa.array([16], pa.int32())})
    jpeg = io.BytesIO()
    Image.new("RGB", (32, 16), (200, 10, 10)).save(jpeg, format="JPEG")
    ci = "[CameraImageComponent]"
    write("camera_image", {key: [ctx] * 2, "key.frame_timestamp_micros": pa.array([100, 200], pa.int64()),
                           "key.camera_name": pa.array([1, 1], pa.int8()), f"{ci}.image": [jpeg.getvalue()] * 2,
                           f"{ci}.pose.transform": [pose.ravel().tolist()] * 2, f"{ci}.pose_timestamp": [1e-4, 2e-4]})
    c1, s1, c2, s2 = np.cos(0.1), np.sin(0.1), np.cos(0.2), np.sin(0.2)
    xyz = [[1, 2 + 5 * c2, 3 + 5 * s2], [1, 2 + 7 * c1, 3 - 7 * s1], [1, 2 - 9 * c1, 3 - 9 * s1],
           [1, 2 - 4 * c2, 3 + 4 * s2]]  # columns are fixed in the vehicle frame: col 0 looks +y, col 1 -y
    return {"xyz": np.array(xyz), "intensity": np.tanh([0.5, 2.0, 0.1, 0.0]), "pose": pose,
            "labels": ["car", "road", "sidewalk", "pedestrian"]}


def test_waymo_v2_parquet_segment(tmp_path):
    root = tmp_path / "waymo_open_dataset_v_2_0_1"
    truth = _waymo(root / "validation")
    _waymo(root / "training", "seg_train")
    assert detect_kind(root) == "waymo" and detect_kind(root / "training") == "waymo"
    ds = open_dataset(root)
    assert [s.name for s in ds.sequences] == ["seg_train", "seg_0001"]
    assert ds.sequences[1].frame_names == ["100"] and len(open_dataset(root, sweeps=True)) == 4
    assert ds.format.official_split(ds, 100) == ([0], ["seg_0001"])
    frame = ds[1]
    np.testing.assert_allclose(frame.points[:, :3], truth["xyz"], atol=1e-5)
    np.testing.assert_allclose(frame.points[:, 3], truth["intensity"], atol=1e-6)
    assert frame.rings.tolist() == [0, 1, 1, 0] and frame.labels.tolist() == train_ids(ds, truth["labels"])
    np.testing.assert_allclose(frame.pose, truth["pose"])
    (camera,) = frame.cameras
    pixel = camera.projection @ np.array([10.0, 1.0, 0.0, 1.0])  # 10 m ahead, 1 m left of the camera
    np.testing.assert_allclose(pixel[:2] / pixel[2], [6.0, 8.0], atol=1e-9)
    assert camera.name == "FRONT" and camera.image.shape == (16, 32, 3)
    require_pretraining_data(ds)  # cameras and poses: pretraining may use it
    assert info(root, "waymo") == 0


def test_waymo_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "lidar").mkdir()
    (tmp_path / "lidar" / "seg.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"seal\[waymo\]"):
        open_dataset(tmp_path)


# ----------------------------------------------------------------------------- label maps, listing, pretraining

DOCUMENTED_RAW_IDS = {  # the raw ids each dataset's documentation lists (see the comment atop each YAML)
    "semanticposs": [0, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 21, 22],
    "semanticstf": list(range(21)),
    "rellis3d": [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 17, 18, 19, 23, 27, 31, 33, 34],
    "synlidar": list(range(33)),
    "synth4d": list(range(23)),
    "waymo": list(range(23)),
    "daps3d": [0, 1, 10, 11, 13, 15, 16, 18, 20, 30, 31, 32, 40, 44, 48, 49, 50, 51, 52, 60, 70, 71, 72, 80, 81, 99,
               252, 253, 254, 255, 256, 257, 258, 259],
}
DOCUMENTED_RAW_IDS["scribblekitti"] = DOCUMENTED_RAW_IDS["daps3d"]  # SemanticKITTI's ids
CLASSES = {"semanticposs": 13, "semanticstf": 19, "rellis3d": 14, "synlidar": 19, "synth4d": 7, "waymo": 22,
           "daps3d": 4, "scribblekitti": 19}


@pytest.mark.parametrize("name", sorted(DOCUMENTED_RAW_IDS))
def test_label_map_sends_every_documented_raw_id_somewhere(name):
    spec = yaml.safe_load((LABELMAPS / f"{name}.yaml").read_text())
    classes = {c["name"] for c in spec["classes"]}
    mapped = {int(k): v for k, v in spec["raw_to_train"].items()}
    assert len(classes) == CLASSES[name] and spec["name"] == name
    assert set(DOCUMENTED_RAW_IDS[name]) <= set(mapped)
    assert {int(k) for k in spec["raw_names"]} <= set(mapped)
    assert set(mapped.values()) - {"ignore"} == classes  # every class is reachable, every target is a class


def test_datasets_lists_the_eleven_and_every_format(capsys):
    from seal.cli.datasets import dataset_rows
    from seal.data import KINDS

    rows = dataset_rows()
    titles = " ".join(r.title for r in rows)
    for name in ("nuScenes", "SemanticKITTI", "Waymo Open", "ScribbleKITTI", "RELLIS-3D", "SemanticPOSS",
                 "SemanticSTF", "SynLiDAR", "DAPS-3D", "Synth4D", "nuScenes-C", "SemanticKITTI-C"):
        assert name in titles
    assert [r.kind for r in rows] == list(FORMATS) == list(KINDS)
    assert all(r.layout and r.needs and r.splits and r.classes > 0 for r in rows)
    assert main(["datasets"]) == 0 and "downstream only" in capsys.readouterr().out


def test_pretraining_refuses_downstream_only_formats(tmp_path, capsys):
    root = tmp_path / "poss"
    for seq in ("00", "01"):
        for i in range(2):
            scan(root / f"sequences/{seq}/velodyne/{i:06d}.bin", 8, i)
    with pytest.raises(DataError, match="SemanticPOSS .*downstream only"):
        require_pretraining_data(open_dataset(root, kind="semanticposs"))
    with pytest.raises(DataError, match="SemanticKITTI.*downstream only"):  # the layout allows it, this copy lacks
        require_pretraining_data(open_dataset(root))
    with pytest.raises(ConfigError, match="data.version does not apply to the SemanticPOSS"):
        open_dataset(root, kind="semanticposs", version="v1")
    assert main(["pretrain", str(root), "--config", "tiny", "data.kind=semanticposs",
                 f"train.run_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert "downstream only" in err and "semanticposs" in err


# ------------------------------------------------------------------------------------------ released Robo3D sets


def test_robustness_evaluates_a_released_semantickitti_c(tmp_path, request):
    import torch

    from seal.core.config import BackboneConfig, EvaluateOptions, VoxelConfig
    from seal.engine.evaluation import robustness
    from seal.models.segmentation import build_model

    assert EvaluateOptions().robustness_root is None
    clean_root, release = tmp_path / "kitti", tmp_path / "SemanticKITTI-C"
    for i in range(2):
        scan(clean_root / f"sequences/08/velodyne/{i:06d}.bin", 90, i)
        labels(clean_root / f"sequences/08/labels/{i:06d}.label", np.tile([40, 10, 50], 30))
    clean = open_dataset(clean_root)
    for corruption in ("fog", "snow"):
        for severity in SEVERITIES:
            shutil.copytree(clean_root / "sequences" / "08", release / corruption / severity)
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: threads only add contention for a model this small
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    model, _ = build_model(None, BackboneConfig(stem_channels=8, planes=[8] * 8, layers=[1] * 8), 19)
    rows = robustness(model, clean, [0, 1], VoxelConfig(), torch.device("cpu"), 0.5, None, tmp_path / "out",
                      released=release, progress=False)
    assert [r["corruption"] for r in rows] == ["fog", "snow", "mean"]  # the release holds two corruptions
    assert all(r[s] is not None for r in rows[:2] for s in SEVERITIES)
    assert (tmp_path / "out" / "robustness.json").is_file() and CORRUPTIONS[0] == "fog"
    shutil.rmtree(release / "snow" / "heavy")
    with pytest.raises(DataError, match="2 of the 3 severities of snow"):
        robustness(model, clean, [0], VoxelConfig(), torch.device("cpu"), 0.5, None, tmp_path / "out",
                   released=release, progress=False)
    poss = open_dataset(clean_root, kind="semanticposs")
    with pytest.raises(DataError, match="no released corrupted sets"):
        poss.format.open_released(poss, release / "fog" / "light")
