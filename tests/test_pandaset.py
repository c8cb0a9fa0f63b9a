"""PandaSet: the released layout (tests/pandaset_fixture.py) read into seal's Frames: world points brought into the
LiDAR frame, intensities scaled, cameras that project a known world point onto its pixel, the ScaLR label map,
the sensor choice (data.version), frames without semseg, ScaLR's split, and one-line errors on broken files."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from seal.cli import main
from seal.core.errors import ConfigError, DataError
from seal.data import detect_kind, open_dataset, require_pretraining_data
from tests.pandaset_fixture import CAMERAS, HEIGHT, MARK_PIXEL, SCALR_CLASS, WIDTH, write_pandaset

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def pandaset(tmp_path_factory):
    """Two sequences x three frames, both LiDARs, two cameras, semseg on 001 only; (root, ground truth)."""
    root = tmp_path_factory.mktemp("pandaset") / "pandaset"
    return root, write_pandaset(root)


def _train_ids(lmap, raw: np.ndarray) -> list[int]:
    names = [SCALR_CLASS[int(r)] for r in raw]
    return [0 if n == "ignore" else lmap.class_names.index(n) + 1 for n in names]


def test_detected_and_opened_as_sequences_of_pandar64_frames(pandaset):
    root, truth = pandaset
    assert detect_kind(root) == "pandaset" and detect_kind(root / "002") == "pandaset"
    ds = open_dataset(root)
    assert ds.kind == "pandaset" and ds.format.name == "pandaset" and len(ds) == 6
    assert [s.name for s in ds.sequences] == ["001", "002"]
    assert ds.sequences[0].frame_names == ["00_pandar64", "01_pandar64", "02_pandar64"]
    assert ds.sequences[0].camera_names == ["front_camera", "back_camera"]  # the devkit's names, front first
    assert open_dataset(root / "002").sequences[0].name == "002"  # one sequence folder opens on its own
    require_pretraining_data(ds)  # cameras and poses: pretraining may use it


def test_points_are_in_the_lidar_frame_of_lidar_poses(pandaset):
    root, truth = pandaset
    ds = open_dataset(root)
    for s, seq in enumerate(("001", "002")):
        for f, t in enumerate(truth[seq]):
            frame = ds.sequences[s][f]
            keep = t.sensor == 0
            world = np.c_[t.world[keep], np.ones(keep.sum())]
            expected = (np.linalg.inv(t.lidar_pose) @ world.T).T[:, :3]  # inverse of the pose as written
            assert frame.points.dtype == np.float32 and frame.points.shape == (keep.sum(), 4)
            np.testing.assert_allclose(frame.points[:, :3], expected, atol=1e-4)
            np.testing.assert_allclose(frame.pose, t.lidar_pose, atol=1e-9)
            np.testing.assert_allclose(frame.points[:, 3], t.intensity[keep] / 255.0, atol=1e-6)
            assert frame.points[:, 3].min() >= 0 and frame.points[:, 3].max() <= 1
            assert frame.timestamp == pytest.approx(1.557540e9 + 100.0 * s + 0.1 * f)
            assert frame.id == f"{seq}/{f:02d}_pandar64" and frame.sequence == seq and frame.index == f


def test_cameras_project_a_world_point_onto_the_pixel_it_was_placed_at(pandaset):
    root, truth = pandaset
    ds = open_dataset(root)
    for s, seq in enumerate(("001", "002")):
        for f, t in enumerate(truth[seq]):
            frame = ds.sequences[s][f]
            assert [c.name for c in frame.cameras] == list(CAMERAS)
            for cam in frame.cameras:
                assert (cam.width, cam.height) == (WIDTH, HEIGHT) and cam.image.shape == (HEIGHT, WIDTH, 3)
                np.testing.assert_allclose(cam.K, [[50.0, 0, 31.5], [0, 55.0, 23.0], [0, 0, 1]])
                np.testing.assert_allclose(cam.lidar_to_cam, np.linalg.inv(t.camera_poses[cam.name]) @ t.lidar_pose,
                                           atol=1e-9)
                row = t.marks[cam.name]  # the marker is a Pandar64 row, so the same row of the frame
                pixel = cam.projection @ np.append(frame.points[row, :3].astype(np.float64), 1.0)
                assert pixel[2] > 0
                np.testing.assert_allclose(pixel[:2] / pixel[2], MARK_PIXEL[cam.name], atol=2e-3)
                assert cam.timestamp == pytest.approx(frame.timestamp + 0.01)


def test_labels_go_through_the_scalr_label_map_and_unlabelled_frames_have_none(pandaset):
    root, truth = pandaset
    ds = open_dataset(root)
    assert ds.label_map.name == "pandaset" and ds.label_map.num_classes == 17
    assert ds.sequences[0].has_labels and not ds.sequences[1].has_labels and ds.has_labels
    for f, t in enumerate(truth["001"]):
        frame = ds.sequences[0][f]
        raw = t.raw[t.sensor == 0]
        assert frame.raw_labels.tolist() == raw.tolist()
        assert frame.labels.tolist() == _train_ids(ds.label_map, raw)
    for frame in ds.sequences[1]:
        assert frame.labels is None and frame.raw_labels is None and not frame.has_labels
    full = open_dataset(root, label_map="pandaset-full")
    assert full.label_map.num_classes == 42 and full.label_map.name_of(int(full[0].labels[0])) != ""


@pytest.mark.parametrize("version, keep, tag", [("pandar64", [0], "pandar64"), ("pandargt", [1], "pandargt"),
                                                ("both", [0, 1], "both")])
def test_data_version_chooses_the_lidar(pandaset, version, keep, tag):
    root, truth = pandaset
    ds = open_dataset(root, version=version)
    for s, seq in enumerate(("001", "002")):
        for f, t in enumerate(truth[seq]):
            rows = np.isin(t.sensor, keep)
            frame = ds.sequences[s][f]
            assert ds.sequences[s].point_count(f) == frame.num_points == rows.sum()
            assert frame.id == f"{seq}/{f:02d}_{tag}"  # caches and predictions of two sensors never collide
            expected = (np.linalg.inv(t.lidar_pose) @ np.c_[t.world[rows], np.ones(rows.sum())].T).T[:, :3]
            np.testing.assert_allclose(frame.points[:, :3], expected, atol=1e-4)
            if seq == "001":
                assert frame.labels.tolist() == _train_ids(ds.label_map, t.raw[rows])
    assert any(version in note for note in ds.notes)


def test_unknown_sensor_is_one_line_naming_the_option(pandaset):
    root, _ = pandaset
    with pytest.raises(ConfigError, match=r"data.version='pandar128' is not a PandaSet LiDAR; choose one of "
                                          r"pandar64, pandargt, both"):
        open_dataset(root, version="pandar128")
    with pytest.raises(ConfigError, match=r"data.sweeps does not apply to the PandaSet format"):
        open_dataset(root, sweeps=True)


def test_classes_json_rekeys_the_label_map_by_name(tmp_path):
    swapped = {7: "Car", 13: "Road", 30: "Pedestrian"}  # a sequence whose ids name other classes
    truth = write_pandaset(tmp_path / "p", sequences=("001",), frames=1, classes=swapped, seed=3)
    ds = open_dataset(tmp_path / "p")
    raw = truth["001"][0].raw[truth["001"][0].sensor == 0]
    name = {7: "car", 13: "road", 30: "pedestrian"}
    expected = [ds.label_map.class_names.index(name[r]) + 1 if r in name else 0 for r in raw.tolist()]
    assert ds[0].labels.tolist() == expected


def test_official_split_is_scalrs_latitude_split(tmp_path):
    write_pandaset(tmp_path / "p", semseg=("001", "002"), frames=2)
    ds = open_dataset(tmp_path / "p")
    assert ds.format.official_split(ds, 100) == ([0, 1], ["002"])  # 001 at 37.77 trains, 002 at 37.41 validates
    write_pandaset(tmp_path / "nogps", frames=2, gps=False)
    plain = open_dataset(tmp_path / "nogps")
    assert plain.format.official_split(plain, 100) is None  # without gps.json: the every-k-th rule


def _copy(pandaset, tmp_path):
    root, _ = pandaset
    shutil.copytree(root, tmp_path / "copy")
    return tmp_path / "copy"


def test_missing_lidar_poses_is_one_line_naming_the_file(pandaset, tmp_path, capsys):
    root = _copy(pandaset, tmp_path)
    poses = root / "002" / "lidar" / "poses.json"
    poses.unlink()
    with pytest.raises(DataError, match="PandaSet file missing") as err:
        open_dataset(root)
    assert str(poses) in str(err.value) and "\n" not in str(err.value)
    assert main(["info", str(root)]) == 2
    out = capsys.readouterr().err.strip()
    assert out.count("\n") == 0 and str(poses) in out


def test_a_scan_without_column_d_is_one_line_naming_the_file(pandaset, tmp_path):
    root = _copy(pandaset, tmp_path)
    scan = root / "001" / "lidar" / "01.pkl.gz"
    pd.read_pickle(scan).drop(columns=["d"]).to_pickle(scan)
    ds = open_dataset(root)
    ds[0]  # the other frames still load
    with pytest.raises(DataError, match=r"has no column 'd' \(columns: x, y, z, i, t\)") as err:
        ds[1]
    assert str(scan) in str(err.value) and "\n" not in str(err.value)
    assert open_dataset(root, version="both")[1].num_points == 65  # every row needs no sensor column


def test_broken_files_are_one_line_errors(pandaset, tmp_path):
    root = _copy(pandaset, tmp_path)
    (root / "001" / "lidar" / "02.pkl.gz").write_bytes(b"not a gzip")
    label = root / "001" / "annotations" / "semseg" / "00.pkl.gz"
    pd.DataFrame({"class": [7, 13]}).to_pickle(label)
    ds = open_dataset(root)
    with pytest.raises(DataError, match="is not a readable pickled DataFrame") as err:
        ds[2]
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="holds 2 labels but the scan has 65 points"):
        ds[0]
    cam_poses = root / "002" / "camera" / "front_camera" / "poses.json"
    records = json.loads(cam_poses.read_text())
    records[1]["heading"]["w"] += 1.0
    cam_poses.write_text(json.dumps(records))
    with pytest.raises(DataError, match="pose 1 has a heading that is not a unit quaternion") as err:
        open_dataset(root)
    assert str(cam_poses) in str(err.value)
    records[1]["heading"]["w"] -= 1.0
    cam_poses.write_text(json.dumps(records))
    intrinsics = root / "002" / "camera" / "back_camera" / "intrinsics.json"
    intrinsics.write_text('{"fx": 1}')
    with pytest.raises(DataError, match="needs numbers fx, fy, cx, cy") as err:
        open_dataset(root)
    assert str(intrinsics) in str(err.value)


def test_detection_needs_both_markers(tmp_path):
    lidar_only = tmp_path / "lidar_only" / "001" / "lidar"
    lidar_only.mkdir(parents=True)
    (lidar_only / "00.pkl.gz").write_bytes(b"")
    with pytest.raises(DataError, match="is not a dataset layout seal knows"):
        detect_kind(tmp_path / "lidar_only")


def test_without_pandas_the_error_names_the_extra(pandaset, monkeypatch):
    root, _ = pandaset
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(DataError, match=r"needs pandas \(pip install 'seal\[pandaset\]'\)"):
        open_dataset(root)


def test_seal_datasets_and_info_describe_it(pandaset, capsys):
    from seal.cli.datasets import dataset_rows

    root, _ = pandaset
    row = next(r for r in dataset_rows() if r.kind == "pandaset")
    assert row.title == "PandaSet" and row.classes == 17 and row.pretraining and "version" in row.needs
    assert main(["datasets"]) == 0 and "pandaset" in capsys.readouterr().out
    assert main(["info", str(root), "--label-sample", "2", "data.version=pandargt"]) == 0
    out = capsys.readouterr().out
    assert "pandaset" in out and "pandargt" in out and "front_camera" in out
