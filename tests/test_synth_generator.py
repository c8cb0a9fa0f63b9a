"""The synthetic dataset generator: layout, determinism, labels, camera/LiDAR consistency, motion, poses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.linalg import rq
from scipy.spatial import cKDTree

from seal.core.errors import SealError
from seal.synth import generate_dataset
from seal.synth.generate import SequenceGenerator

PARAMS = dict(sequences=2, frames=3, seed=7, cameras=2, image_width=192, beams=32, azimuth_steps=900)
KNOWN_IDS = {10, 18, 30, 40, 44, 48, 50, 51, 70, 71, 72, 80, 81, 252, 254, 258}
THINGS = {10, 18, 30, 252, 254, 258}
MOVING = {252, 254, 258}
STATIC_NON_GROUND = {50, 51, 70, 71, 80, 81}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synth") / "ds", progress=False, **PARAMS)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read_frame(root: Path, seq: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    d = root / "sequences" / f"{seq:02d}"
    pts = np.fromfile(d / "velodyne" / f"{t:06d}.bin", dtype=np.float32).reshape(-1, 4)
    lab = np.fromfile(d / "labels" / f"{t:06d}.label", dtype=np.uint32)
    return pts, lab


def _calib(root: Path, seq: int) -> dict[str, np.ndarray]:
    out = {}
    for line in (root / "sequences" / f"{seq:02d}" / "calib.txt").read_text().splitlines():
        key, vals = line.split(":", 1)
        out[key] = np.array(vals.split(), dtype=np.float64).reshape(3, 4)
    return out


def _lidar_poses(root: Path, seq: int) -> list[np.ndarray]:
    """LiDAR(t) -> LiDAR(0) from poses.txt and Tr, the SemanticKITTI way: inv(Tr) @ pose @ Tr."""
    tr = np.eye(4)
    tr[:3] = _calib(root, seq)["Tr"]
    poses = np.loadtxt(root / "sequences" / f"{seq:02d}" / "poses.txt").reshape(-1, 3, 4)
    out = []
    for p in poses:
        p4 = np.eye(4)
        p4[:3] = p
        out.append(np.linalg.inv(tr) @ p4 @ tr)
    return out


def _transform(pose: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    return xyz @ pose[:3, :3].T + pose[:3, 3]


def test_layout(root: Path) -> None:
    assert (root / "seal_synth.json").is_file()
    for seq in range(PARAMS["sequences"]):
        d = root / "sequences" / f"{seq:02d}"
        for folder in ("velodyne", "labels", "image_2", "image_3"):
            assert len(list((d / folder).iterdir())) == PARAMS["frames"], folder
        assert not (d / "image_4").exists()
        calib = _calib(root, seq)
        assert set(calib) == {"P0", "P1", "P2", "P3", "Tr"}
        np.testing.assert_allclose(calib["P0"], calib["P2"])
        k0 = calib["P2"][:, :3]
        for name in ("P2", "P3"):  # P = K [R | t]: an RQ decomposition gives back the shared K and a rotation
            k, r = rq(calib[name][:, :3])
            signs = np.diag(np.sign(np.diag(k)))
            k, r = k @ signs, signs @ r
            np.testing.assert_allclose(k, k0, atol=1e-6)
            np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
            assert np.linalg.det(r) > 0
        assert len(np.loadtxt(d / "poses.txt").reshape(-1, 12)) == PARAMS["frames"]
        np.testing.assert_allclose(np.loadtxt(d / "times.txt"), [0.0, 0.1, 0.2])
        img = np.asarray(Image.open(d / "image_2" / "000000.png"))
        assert img.shape == (108, 192, 3) and img.dtype == np.uint8
        assert img.std() > 20  # structure, not a flat colour
    assert not list(root.rglob("*.tmp"))


def test_deterministic_by_seed(root: Path, tmp_path: Path) -> None:
    again = generate_dataset(tmp_path / "again", progress=False, **PARAMS)
    assert _files(root) == _files(again)
    other = generate_dataset(
        tmp_path / "other", progress=False, **{**PARAMS, "seed": 8, "sequences": 1, "frames": 1}
    )
    for name in ("velodyne/000000.bin", "labels/000000.label", "image_2/000000.png", "calib.txt"):
        same = (root / "sequences/00" / name).read_bytes() == (other / "sequences/00" / name).read_bytes()
        assert same == (name == "calib.txt"), name  # only the camera rig is shared by every seed


def test_points_and_labels(root: Path) -> None:
    for seq in range(PARAMS["sequences"]):
        for t in range(PARAMS["frames"]):
            d = root / "sequences" / f"{seq:02d}"
            n_bin = (d / "velodyne" / f"{t:06d}.bin").stat().st_size
            n_lab = (d / "labels" / f"{t:06d}.label").stat().st_size
            assert n_bin % 16 == 0 and n_lab == n_bin // 4
            pts, lab = _read_frame(root, seq, t)
            assert len(pts) > 0.8 * 32 * 900 * 0.5  # most downward rays return
            assert np.isfinite(pts).all()
            assert pts[:, 3].min() >= 0.0 and pts[:, 3].max() <= 1.0
            assert np.linalg.norm(pts[:, :3], axis=1).max() < 70.5
            sem, inst = lab & 0xFFFF, lab >> 16
            assert set(np.unique(sem).tolist()) <= KNOWN_IDS
            things = np.isin(sem, list(THINGS))
            assert (inst[things] > 0).all() and (inst[~things] == 0).all()
            road = sem == 40  # flat road 1.73 m under the sensor
            assert abs(np.median(pts[road, 2]) + 1.73) < 0.03


def test_camera_sees_what_lidar_sees(root: Path) -> None:
    gen = SequenceGenerator(
        PARAMS["seed"],
        0,
        PARAMS["frames"],
        PARAMS["cameras"],
        PARAMS["image_width"],
        PARAMS["beams"],
        PARAMS["azimuth_steps"],
    )
    t = 1
    data = gen.frame(t, return_ids=True)
    pts, lab = _read_frame(root, 0, t)
    np.testing.assert_array_equal(data.points, pts)
    calib = _calib(root, 0)
    tr = np.vstack([calib["Tr"], [0, 0, 0, 1]])
    xyz1 = np.hstack([pts[:, :3].astype(np.float64), np.ones((len(pts), 1))])
    for cam in range(PARAMS["cameras"]):
        png = np.asarray(Image.open(root / "sequences/00" / f"image_{cam + 2}" / f"{t:06d}.png"))
        np.testing.assert_array_equal(png, data.images[cam])
        uvw = xyz1 @ (calib[f"P{cam + 2}"] @ tr).T
        front = uvw[:, 2] > 1.0
        uv = np.round(uvw[front, :2] / uvw[front, 2:]).astype(np.int64)
        h, w = png.shape[:2]
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        assert inside.sum() > 1000
        pix_lab = data.ids[cam][0][uv[inside, 1], uv[inside, 0]]
        agree = (pix_lab & 0xFFFF) == (lab[front][inside] & 0xFFFF)
        assert agree.mean() > 0.9, (cam, agree.mean())
    # the label map is the truth the image was shaded from: sky pixels are the sky colour's blue-ish
    sky = data.ids[0][0] == 0
    assert sky.any() and (data.images[0][sky][:, 2] > data.images[0][sky][:, 0]).all()


def test_dynamic_objects_move(root: Path) -> None:
    moved, checked = [], 0
    for seq in range(PARAMS["sequences"]):
        poses = _lidar_poses(root, seq)
        (p0, l0), (p2, l2) = _read_frame(root, seq, 0), _read_frame(root, seq, 2)
        w0, w2 = _transform(poses[0], p0[:, :3]), _transform(poses[2], p2[:, :3])
        for inst in np.intersect1d(np.unique(l0 >> 16), np.unique(l2 >> 16)):
            if inst == 0:
                continue
            a, b = (l0 >> 16) == inst, (l2 >> 16) == inst
            assert len(np.unique(l0[a] & 0xFFFF)) == 1 and np.array_equal(np.unique(l0[a]), np.unique(l2[b]))
            if a.sum() < 30 or b.sum() < 30:
                continue
            shift = np.linalg.norm(w0[a].mean(0)[:2] - w2[b].mean(0)[:2])
            if int(l0[a][0] & 0xFFFF) in (252, 258):
                moved.append(shift)
            checked += 1
    assert checked > 0 and len(moved) > 0
    assert np.median(moved) > 0.5  # cars drive at 4-12 m/s: 0.8-2.4 m in 0.2 s


def _point_to_plane(ref: np.ndarray, query: np.ndarray, k: int = 8) -> np.ndarray:
    """Distance of each query point to the plane fitted to its k nearest reference points."""
    _, idx = cKDTree(ref).query(query, k=k)
    nb = ref[idx]
    centred = nb - nb.mean(axis=1, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    normal = vt[:, -1]
    return np.abs(((query - nb.mean(axis=1)) * normal).sum(axis=1))


def test_poses_chain_static_surfaces(root: Path) -> None:
    for seq in range(PARAMS["sequences"]):
        poses = _lidar_poses(root, seq)
        tr = np.eye(4)
        tr[:3] = _calib(root, seq)["Tr"]
        for t in range(PARAMS["frames"] - 1):
            (pa, la), (pb, lb) = _read_frame(root, seq, t), _read_frame(root, seq, t + 1)
            sa, sb = (
                np.isin(la & 0xFFFF, list(STATIC_NON_GROUND)),
                np.isin(lb & 0xFFFF, list(STATIC_NON_GROUND)),
            )
            rel = np.linalg.inv(poses[t]) @ poses[t + 1]  # LiDAR(t+1) -> LiDAR(t)
            ref, query = pa[sa, :3].astype(np.float64), pb[sb, :3].astype(np.float64)
            query = query[np.linalg.norm(query, axis=1) < 30.0]
            dist = _point_to_plane(ref, _transform(rel, query))
            assert np.median(dist) < 0.05 and np.percentile(dist, 75) < 0.06, (seq, t)
            # the check tells wrong poses apart: no motion compensation, or the camera-frame motion
            for wrong in (np.eye(4), tr @ rel @ np.linalg.inv(tr)):
                assert np.percentile(_point_to_plane(ref, _transform(wrong, query)), 75) > 0.2
            road = _transform(rel, pb[(lb & 0xFFFF) == 40, :3].astype(np.float64))
            assert abs(np.median(road[:, 2]) + 1.73) < 0.03


def test_refuses_foreign_or_different_folder(root: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SealError, match="not a seal synthetic dataset"):
        generate_dataset(foreign, progress=False, sequences=1, frames=1)
    with pytest.raises(SealError, match="seed: 7 -> 9"):
        generate_dataset(root, progress=False, **{**PARAMS, "seed": 9})


def test_resumes_same_dataset(tmp_path: Path) -> None:
    small = dict(sequences=1, frames=2, seed=3, cameras=1, image_width=64, beams=8, azimuth_steps=256)
    out = generate_dataset(tmp_path / "ds", progress=False, **small)
    before = _files(out)
    (out / "sequences/00/velodyne/000001.bin").unlink()
    (out / "sequences/00/image_2/000000.png").unlink()
    generate_dataset(out, progress=False, **small)
    assert _files(out) == before
    with pytest.raises(SealError, match="cameras"):
        generate_dataset(tmp_path / "bad", progress=False, cameras=7)
