"""Readers on the real fixtures and on a SemanticKITTI sequence written by the test with known geometry."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from seal.core.errors import DataError
from seal.core.io import keep_freed_memory, read_image, read_kitti_calib
from seal.data import open_dataset


def test_nuscenes_keyframe_loads_through_official_layout(nuscenes_root):
    ds = open_dataset(nuscenes_root)
    assert ds.kind == "nuscenes" and len(ds) == 1 and len(ds.sequences) == 1
    frame = ds[0]
    ref = json.loads((nuscenes_root / "frame.json").read_text())
    raw = np.fromfile(nuscenes_root / ref["lidar_path"], dtype=np.float32).reshape(-1, 5)
    assert frame.points.shape == (34688, 4) and frame.points.dtype == np.float32
    np.testing.assert_array_equal(frame.points[:, :3], raw[:, :3])
    np.testing.assert_allclose(frame.points[:, 3], raw[:, 3] / 255.0, rtol=1e-6)
    assert 0.0 <= frame.points[:, 3].min() and frame.points[:, 3].max() <= 1.0
    np.testing.assert_array_equal(frame.rings, raw[:, 4].astype(int))
    names = [c.name for c in frame.cameras]
    assert sorted(names) == sorted(ref["cameras"])
    for camera in frame.cameras:
        cam_ref = ref["cameras"][camera.name]
        np.testing.assert_allclose(camera.K, cam_ref["cam2img"], atol=1e-9)
        np.testing.assert_allclose(camera.lidar_to_cam, cam_ref["lidar2cam"], atol=1e-5)
        assert (camera.width, camera.height) == (cam_ref["width"], cam_ref["height"])
        assert camera.image.shape == (900, 1600, 3)
    pose = np.array(ref["ego2global"]) @ np.array(ref["lidar2ego"])
    np.testing.assert_allclose(frame.pose, pose, atol=1e-5)
    assert frame.labels is None and abs(frame.timestamp - ref["timestamp"]) < 1e-6


def test_nuscenes_lidarseg_maps_by_category_name(nuscenes_root, tmp_path):
    root = tmp_path / "nusc"
    shutil.copytree(nuscenes_root / "v1.0-mini", root / "v1.0-mini")
    (root / "samples").symlink_to(nuscenes_root / "samples")
    # A release whose category indices differ from the usual order: the reader must match by name.
    cats = [{"token": "a", "name": "vehicle.car", "index": 3}, {"token": "b", "name": "flat.sidewalk", "index": 7},
            {"token": "c", "name": "noise", "index": 0}, {"token": "d", "name": "static.vegetation", "index": 1}]
    (root / "v1.0-mini" / "category.json").write_text(json.dumps(cats))
    sd = next(r for r in json.loads((root / "v1.0-mini" / "sample_data.json").read_text())
              if "LIDAR_TOP" in r["filename"])
    n = 34688
    raw = np.random.default_rng(0).choice([0, 1, 3, 7], size=n).astype(np.uint8)
    (root / "lidarseg" / "v1.0-mini").mkdir(parents=True)
    raw.tofile(root / "lidarseg" / "v1.0-mini" / f"{sd['token']}_lidarseg.bin")
    (root / "v1.0-mini" / "lidarseg.json").write_text(json.dumps(
        [{"token": "x", "sample_data_token": sd["token"],
          "filename": f"lidarseg/v1.0-mini/{sd['token']}_lidarseg.bin"}]))
    ds = open_dataset(root)
    frame = ds[0]
    names = ds.label_map.class_names
    expected = {0: 0, 1: names.index("vegetation") + 1, 3: names.index("car") + 1, 7: names.index("sidewalk") + 1}
    np.testing.assert_array_equal(frame.labels, np.vectorize(expected.get)(raw))
    assert ds.has_labels and ds.label_map.num_classes == 16


def test_semantickitti_tiny_labels_map_to_train_ids(semantickitti_tiny):
    ds = open_dataset(semantickitti_tiny)
    assert ds.kind == "semantickitti"
    frame = ds[0]
    raw = np.fromfile(semantickitti_tiny / "sequences/00/labels/000000.label", dtype=np.uint32)
    np.testing.assert_array_equal(frame.raw_labels, raw & 0xFFFF)
    np.testing.assert_array_equal(frame.instances, raw >> 16)
    names = ds.label_map.class_names
    expected = {0: 0, 50: names.index("building") + 1, 52: 0, 70: names.index("vegetation") + 1,
                71: names.index("trunk") + 1, 80: names.index("pole") + 1}
    assert set(np.unique(frame.raw_labels)) <= set(expected)
    assert 52 in frame.raw_labels
    np.testing.assert_array_equal(frame.labels, [expected[r] for r in frame.raw_labels])
    assert frame.cameras == [] and not ds.sequences[0].has_poses


def test_kitti_object_frame_projection_matches_kitti_formula(kitti_frame):
    ds = open_dataset(kitti_frame)
    assert ds.kind == "kitti-object"
    frame = ds[0]
    calib = read_kitti_calib(kitti_frame / "000008_calib.txt")
    rect = np.eye(4)
    rect[:3, :3] = calib["R0_rect"].reshape(3, 3)
    tr = np.eye(4)
    tr[:3] = calib["Tr_velo_to_cam"].reshape(3, 4)
    reference = calib["P2"].reshape(3, 4) @ rect @ tr
    camera = frame.cameras[0]
    np.testing.assert_allclose(camera.projection, reference, rtol=1e-9, atol=1e-6)
    assert camera.image.shape == (375, 1242, 3)


def _rot(axis: str, deg: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler(axis, deg, degrees=True).as_matrix()


def write_sequence(root, n_frames=3, rotated_camera_deg=60.0, rng=None):
    """A SemanticKITTI sequence with a front camera (P2) and a rotated one (P3); returns the truth."""
    rng = rng or np.random.default_rng(1)
    seq = root / "sequences" / "00"
    for sub in ("velodyne", "labels", "image_2", "image_3"):
        (seq / sub).mkdir(parents=True)
    tr = np.eye(4)
    tr[:3, :3] = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]]) @ _rot("z", 2.0)  # LiDAR -> camera axes
    tr[:3, 3] = [0.05, -0.1, -0.3]
    K = np.array([[400.0, 0, 240], [0, 400.0, 135], [0, 0, 1]])
    cam3 = np.eye(4)
    cam3[:3, :3] = _rot("y", rotated_camera_deg)
    cam3[:3, 3] = [0.2, 0.0, 0.1]
    P = {0: K @ np.eye(4)[:3], 1: K @ np.eye(4)[:3], 2: K @ np.eye(4)[:3], 3: K @ cam3[:3]}
    lines = [f"P{i}: " + " ".join(f"{v:.12e}" for v in P[i].ravel()) for i in range(4)]
    lines.append("Tr: " + " ".join(f"{v:.12e}" for v in tr[:3].ravel()))
    (seq / "calib.txt").write_text("\n".join(lines) + "\n")
    lidar_poses = []
    for t in range(n_frames):
        pose = np.eye(4)
        pose[:3, :3] = _rot("z", 5.0 * t)
        pose[:3, 3] = [2.0 * t, 0.3 * t, 0.0]
        lidar_poses.append(pose)
    cam_poses = [tr @ p @ np.linalg.inv(tr) for p in lidar_poses]
    (seq / "poses.txt").write_text("\n".join(" ".join(f"{v:.12e}" for v in p[:3].ravel()) for p in cam_poses))
    for t in range(n_frames):
        pts = rng.normal(size=(100, 4)).astype(np.float32)
        pts.tofile(seq / "velodyne" / f"{t:06d}.bin")
        labels = rng.choice([10, 40, 252], size=100).astype(np.uint32) | (np.uint32(7) << 16)
        labels.tofile(seq / "labels" / f"{t:06d}.label")
        for cam in ("image_2", "image_3"):
            Image.fromarray(np.zeros((270, 480, 3), np.uint8)).save(seq / cam / f"{t:06d}.png")
    return {"tr": tr, "K": K, "cam3": cam3, "lidar_poses": lidar_poses, "seq": seq}


def test_semantickitti_geometry_poses_and_rotated_camera(tmp_path):
    truth = write_sequence(tmp_path)
    ds = open_dataset(tmp_path)
    seq = ds.sequences[0]
    assert seq.has_poses and seq.camera_names == ["image_2", "image_3"] and len(seq) == 3
    first, second = seq.pair(0, gap=2)
    np.testing.assert_allclose(second.pose, truth["lidar_poses"][2], atol=1e-9)
    front, rotated = first.cameras
    np.testing.assert_allclose(front.K, truth["K"], atol=1e-9)
    np.testing.assert_allclose(front.lidar_to_cam, truth["tr"], atol=1e-9)
    np.testing.assert_allclose(rotated.K, truth["K"], atol=1e-9)
    np.testing.assert_allclose(rotated.lidar_to_cam, truth["cam3"] @ truth["tr"], atol=1e-9)
    names = ds.label_map.class_names
    assert set(np.unique(first.labels)) == {names.index("car") + 1, names.index("road") + 1}  # 252 -> car
    assert (first.instances == 7).all()


def test_unposed_sequence_refuses_temporal_pairs(semantickitti_tiny):
    with pytest.raises(DataError, match="no ego poses"):
        open_dataset(semantickitti_tiny).sequences[0].pair(0)


def test_read_image_gives_pillow_rgb_pixels_for_every_mode(tmp_path, nuscenes_root, kitti_frame):
    """RGB files skip the conversion copy; every file still reads as exactly Pillow's RGB pixels."""
    rng = np.random.default_rng(0)
    files = [next((nuscenes_root / "samples").glob("CAM_FRONT/*.jpg")), kitti_frame / "000008.png"]
    for mode, channels in (("L", 1), ("RGBA", 4), ("RGB", 3)):
        pixels = rng.integers(0, 256, size=(12, 20, channels), dtype=np.uint8).squeeze()
        files.append(tmp_path / f"{mode}.png")
        Image.fromarray(pixels).save(files[-1])  # L, RGBA, RGB from the shape
    files.append(tmp_path / "P.png")
    with Image.open(files[-2]) as img:
        img.convert("P").save(files[-1])
    for path in files:
        with Image.open(path) as img:
            expected = np.asarray(img.convert("RGB"))
        got = read_image(path, expect_size=(expected.shape[1], expected.shape[0]))
        assert got.dtype == np.uint8 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_keep_freed_memory_is_asked_once_per_process():
    first = keep_freed_memory()
    assert isinstance(first, bool) and keep_freed_memory() is first
