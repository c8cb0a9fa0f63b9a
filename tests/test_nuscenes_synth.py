"""`seal synth --layout nuscenes` end to end: the table set, the reader (keyframes, sweeps, lidarseg, several
scenes), agreement with the SemanticKITTI layout of the same seed, ego poses, camera pairings, the devkit when
installed, and superpoints -> pretrain -> probe -> evaluate writing lidarseg predictions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.spatial import cKDTree

from seal.cli import main
from seal.core.projection import pair_points, project_to_camera
from seal.data import open_dataset
from seal.synth import generate_dataset
from seal.synth.camera import RING
from seal.synth.nuscenes_writer import CHANNELS, SYN_FROM_NUS, VERSION

PARAMS = dict(sequences=2, frames=5, seed=11, image_width=320, azimuth_steps=720, progress=False)
KEYS = [0, 2, 4]  # keyframes of a 5-frame scene (every other frame); 1 and 3 are sweeps
SCENES = ["synth-00", "synth-01"]
#: SemanticKITTI class -> nuScenes lidarseg class, as the writer maps raw categories.
CLASSES = {"car": "car", "truck": "truck", "person": "pedestrian", "road": "driveable_surface",
           "parking": "driveable_surface", "sidewalk": "sidewalk", "terrain": "terrain", "building": "manmade",
           "fence": "manmade", "pole": "manmade", "traffic-sign": "manmade", "vegetation": "vegetation",
           "trunk": "vegetation"}
STATIC = {"manmade", "vegetation"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def nus(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("nus") / "nus", layout="nuscenes", **PARAMS)


@pytest.fixture(scope="module")
def sk(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("sk") / "sk", cameras=6, **PARAMS)


def _tables(root: Path) -> dict[str, list[dict]]:
    return {p.stem: json.loads(p.read_text()) for p in (root / VERSION).glob("*.json")}


def _names(dataset, labels: np.ndarray) -> np.ndarray:
    return np.array(["ignore", *dataset.label_map.class_names])[labels]


def test_table_set(nus):
    t = _tables(nus)
    counts = {name: len(rows) for name, rows in t.items()}
    assert counts == {"scene": 2, "sample": 6, "sample_data": 2 * (5 + 3 * 6), "ego_pose": 2 * (5 + 3 * 6),
                      "calibrated_sensor": 14, "sensor": 7, "log": 2, "map": 1, "category": 32, "lidarseg": 6,
                      "attribute": 0, "instance": 0, "sample_annotation": 0, "visibility": 4}
    assert sorted(r["index"] for r in t["category"]) == list(range(32))
    assert {r["channel"] for r in t["sensor"]} == {"LIDAR_TOP", *CHANNELS.values()}
    for name in ("scene", "sample", "sample_data", "ego_pose", "calibrated_sensor", "sensor", "log", "lidarseg"):
        assert all(HEX32.match(r["token"]) for r in t[name]), name
    sd = {r["token"]: r for r in t["sample_data"]}
    for r in t["ego_pose"] + t["calibrated_sensor"]:
        assert abs(np.linalg.norm(r["rotation"]) - 1) < 1e-9 and len(r["translation"]) == 3
    for r in t["sample_data"]:
        assert (nus / r["filename"]).is_file() and isinstance(r["timestamp"], int)
        assert r["filename"].startswith("samples/" if r["is_key_frame"] else "sweeps/")
        for link in ("prev", "next"):
            assert r[link] == "" or sd[r[link]]["timestamp"] != r["timestamp"]
        if r["next"]:
            assert sd[r["next"]]["prev"] == r["token"]
    lidar = sorted((r for r in t["sample_data"] if "LIDAR_TOP" in r["filename"]), key=lambda r: r["timestamp"])
    for scene in range(2):
        stamps = [r["timestamp"] for r in lidar[5 * scene:5 * scene + 5]]
        assert np.diff(stamps).tolist() == [100_000] * 4          # microseconds: 10 Hz sweeps
        assert [r["is_key_frame"] for r in lidar[5 * scene:5 * scene + 5]] == [True, False, True, False, True]
    samples = {r["token"]: r for r in t["sample"]}
    for r in lidar:                                                # a sweep's sample is the next keyframe
        assert samples[r["sample_token"]]["timestamp"] - r["timestamp"] == (0 if r["is_key_frame"] else 100_000)
        n = (nus / r["filename"]).stat().st_size
        assert n % 20 == 0                                         # 5 float32 per point
        pts = np.fromfile(nus / r["filename"], dtype=np.float32).reshape(-1, 5)
        assert 0 <= pts[:, 3].min() and pts[:, 3].max() <= 255 and pts[:, 3].max() > 1
        assert set(np.unique(pts[:, 4]).tolist()) <= set(range(32))
    for r in t["lidarseg"]:
        assert r["token"] == r["sample_data_token"] and sd[r["token"]]["is_key_frame"]
        assert r["filename"] == f"lidarseg/{VERSION}/{r['token']}_lidarseg.bin"
        assert (nus / r["filename"]).stat().st_size * 20 == (nus / sd[r["token"]]["filename"]).stat().st_size
    cams = [r for r in t["sample_data"] if r["fileformat"] == "jpg"]
    assert len(cams) == 36 and all(r["is_key_frame"] for r in cams)
    assert Image.open(nus / cams[0]["filename"]).format == "JPEG"
    assert Image.open(nus / cams[0]["filename"]).size == (320, 180)
    meta = json.loads((nus / "seal_synth.json").read_text())
    assert meta["layout"] == "nuscenes" and meta["params"]["cameras"] == 6
    assert not list(nus.rglob("*.tmp*"))


def test_reader_keyframes_and_sweeps(nus):
    t = _tables(nus)
    lidar = {r["token"]: r for r in t["sample_data"] if "LIDAR_TOP" in r["filename"]}
    keys = open_dataset(nus)
    assert keys.kind == "nuscenes" and [s.name for s in keys.sequences] == SCENES
    assert [len(s) for s in keys.sequences] == [3, 3] and keys.has_labels
    for seq in keys.sequences:
        records = [lidar[name] for name in seq.frame_names]          # frames are named by sample_data token
        assert all(r["is_key_frame"] for r in records)
        assert np.diff([r["timestamp"] for r in records]).tolist() == [200_000, 200_000]
        frame = seq[1]
        assert [c.name for c in frame.cameras] == ["CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK",
                                                   "CAM_BACK_LEFT", "CAM_BACK_RIGHT"]
        assert frame.labels is not None and (frame.labels > 0).all() and frame.rings is not None
        assert frame.cameras[0].image.shape == (180, 320, 3)
    sweeps = open_dataset(nus, sweeps=True)
    assert [s.name for s in sweeps.sequences] == SCENES and [len(s) for s in sweeps.sequences] == [5, 5]
    for seq, kseq in zip(sweeps.sequences, keys.sequences, strict=True):
        frames = [seq[i] for i in range(5)]
        assert np.allclose(np.diff([f.timestamp for f in frames]), 0.1)
        assert [lidar[n]["is_key_frame"] for n in seq.frame_names] == [True, False, True, False, True]
        assert [seq.frame_names[i] for i in KEYS] == kseq.frame_names   # the same ids in both modes
        assert [len(f.cameras) for f in frames] == [6, 0, 6, 0, 6]
        assert [f.labels is not None for f in frames] == [True, False, True, False, True]


def test_same_points_poses_and_labels_as_semantickitti(nus, sk):
    n_all, k_all, n_keys = open_dataset(nus, sweeps=True), open_dataset(sk), open_dataset(nus)
    to_nus = np.linalg.inv(SYN_FROM_NUS)
    for n_seq, k_seq, key_seq in zip(n_all.sequences, k_all.sequences, n_keys.sequences, strict=True):
        n0, k0 = n_seq[0].pose, k_seq[0].pose
        for t in range(5):
            fn, fk = n_seq[t], k_seq[t]
            # nuScenes LIDAR_TOP: x right, y forward; the generator's x forward, y left: an exact relabelling
            np.testing.assert_array_equal(fn.points[:, :3], np.c_[-fk.points[:, 1], fk.points[:, 0], fk.points[:, 2]])
            np.testing.assert_allclose(fn.points[:, 3], fk.points[:, 3], atol=1e-6)
            rel_n, rel_k = np.linalg.inv(n0) @ fn.pose, np.linalg.inv(k0) @ fk.pose
            np.testing.assert_allclose(rel_n, to_nus @ rel_k @ SYN_FROM_NUS, atol=1e-6)
            assert abs((fn.timestamp - n_seq[0].timestamp) - (fk.timestamp - k_seq[0].timestamp)) < 1e-6
        for i, t in enumerate(KEYS):
            fn, fk = key_seq[i], k_seq[t]
            sk_names = _names(k_all, fk.labels)
            assert "ignore" not in sk_names
            expected = np.vectorize(CLASSES.get)(sk_names)
            np.testing.assert_array_equal(_names(n_keys, fn.labels), expected)


def test_cameras_pair_as_in_semantickitti(nus, sk):
    fn, fk = open_dataset(nus)[1], open_dataset(sk)[2]               # frame 2 of scene synth-00 / sequence 00
    sk_cams = {CHANNELS[RING[int(c.name.split("_")[1]) - 2][0]]: c for c in fk.cameras}
    xyz_n, xyz_k = fn.points[:, :3], fk.points[:, :3]
    pn, pk = pair_points(xyz_n, fn.cameras), pair_points(xyz_k, list(sk_cams[c.name] for c in fn.cameras))
    assert len(np.unique(pn.point)) > 0.6 * fn.num_points          # six cameras around: most points pair
    for i, cam in enumerate(fn.cameras):
        a, b = pn.for_camera(i), pk.for_camera(i)
        np.testing.assert_array_equal(a.point, b.point)
        assert (a.row == b.row).mean() > 0.999 and (a.col == b.col).mean() > 0.999
        uv_n, _ = project_to_camera(xyz_n[a.point], cam.K, cam.lidar_to_cam)
        uv_k, _ = project_to_camera(xyz_k[a.point], sk_cams[cam.name].K, sk_cams[cam.name].lidar_to_cam)
        assert np.abs(uv_n - uv_k).max() < 1e-6
        jpeg, png = cam.image.astype(float), sk_cams[cam.name].image.astype(float)
        assert np.abs(jpeg - png).mean() < 3.0                      # the same picture, JPEG quality 90


def _point_to_plane(ref: np.ndarray, query: np.ndarray, k: int = 8) -> np.ndarray:
    _, idx = cKDTree(ref).query(query, k=k)
    nb = ref[idx]
    normal = np.linalg.svd(nb - nb.mean(axis=1, keepdims=True), full_matrices=False)[2][:, -1]
    return np.abs(((query - nb.mean(axis=1)) * normal).sum(axis=1))


def _transform(m: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    return xyz.astype(np.float64) @ m[:3, :3].T + m[:3, 3]


def test_ego_poses_chain_static_structure(nus, sk):
    """Keyframe pairs (lidarseg labels) and sweep pairs (the SemanticKITTI labels of the same points) align their
    static surfaces through lidar -> ego -> global poses; without them they do not."""
    keys, sweeps, k_all = open_dataset(nus), open_dataset(nus, sweeps=True), open_dataset(sk)
    cases = [(keys.sequences[s], i, i + 1, None) for s in range(2) for i in range(2)]
    cases += [(sweeps.sequences[s], t, t + 1, k_all.sequences[s]) for s in range(2) for t in (0, 1)]
    for seq, a, b, labelled in cases:
        fa, fb = seq[a], seq[b]
        if labelled is None:
            sa, sb = (np.isin(_names(keys, f.labels), list(STATIC)) for f in (fa, fb))
        else:
            sa, sb = (np.isin(_names(k_all, labelled[t].labels), ["building", "fence", "vegetation", "trunk",
                                                                  "pole", "traffic-sign"]) for t in (a, b))
        ref, query = fa.points[sa, :3].astype(np.float64), fb.points[sb, :3]
        query = query[np.linalg.norm(query, axis=1) < 30.0]
        rel = np.linalg.inv(fa.pose) @ fb.pose
        dist = _point_to_plane(ref, _transform(rel, query))
        assert np.median(dist) < 0.05 and np.percentile(dist, 75) < 0.06, (seq.name, a, b)
        assert np.percentile(_point_to_plane(ref, _transform(np.eye(4), query)), 75) > 0.2


def test_devkit_loads_tables_and_projects_like_seal(nus):
    nuscenes = pytest.importorskip("nuscenes.nuscenes")
    nusc = nuscenes.NuScenes(VERSION, str(nus), verbose=False)
    assert [s["name"] for s in nusc.scene] == SCENES and len(nusc.sample) == 6 and len(nusc.lidarseg) == 6
    frame = open_dataset(nus)[1]
    sample = nusc.get("sample", nusc.get("sample_data", frame.id.split("/")[1])["sample_token"])
    assert sample["data"]["LIDAR_TOP"] == frame.id.split("/")[1] and len(sample["data"]) == 7
    cam_index = [c.name for c in frame.cameras].index("CAM_FRONT_LEFT")
    cam = frame.cameras[cam_index]
    pts, depth, _ = nusc.explorer.map_pointcloud_to_image(sample["data"]["LIDAR_TOP"],
                                                          sample["data"]["CAM_FRONT_LEFT"])
    uv, z = project_to_camera(frame.points[:, :3], cam.K, cam.lidar_to_cam)
    keep = (z > 1.0) & (uv[:, 0] > 1) & (uv[:, 0] < cam.width - 1) & (uv[:, 1] > 1) & (uv[:, 1] < cam.height - 1)
    assert keep.sum() == pts.shape[1] > 500
    assert np.abs(uv[keep] - pts[:2].T).max() < 1e-3
    np.testing.assert_allclose(z[keep], depth, atol=1e-4)
    pairs = pair_points(frame.points[:, :3], [cam])
    inside = np.isin(pairs.point, np.flatnonzero(keep))
    np.testing.assert_array_equal(pairs.col[inside], np.floor(pts[0]).astype(int))
    np.testing.assert_array_equal(pairs.row[inside], np.floor(pts[1]).astype(int))
    labels = np.fromfile(nus / nusc.get("lidarseg", sample["data"]["LIDAR_TOP"])["filename"], dtype=np.uint8)
    names = np.array([nusc.lidarseg_idx2name_mapping[i] for i in range(32)])[labels]
    expected = {"vehicle.car": "car", "flat.driveable_surface": "driveable_surface", "static.manmade": "manmade"}
    for raw, ours in expected.items():
        np.testing.assert_array_equal(names == raw, _names(open_dataset(nus), frame.labels) == ours)
    from nuscenes.utils.data_classes import LidarPointCloud

    swept, times = LidarPointCloud.from_file_multisweep(nusc, sample, "LIDAR_TOP", "LIDAR_TOP", nsweeps=2)
    assert np.unique(np.round(times, 3)).tolist() == [0.0, 0.1]    # the keyframe and the sweep before it


def test_superpoints_pretrain_probe_evaluate(nus, tmp_path):
    from seal.core.config import SuperpointConfig
    from seal.superpoints.stage import load_pair, run_superpoints, superpoint_cache, superpoint_path

    dataset = open_dataset(nus)
    cfg = SuperpointConfig(gap=1, min_cluster_size=20)
    report = run_superpoints(dataset, cfg, tmp_path / "cache", progress=False)
    assert report.done == 4 and not report.failed
    seq = dataset.sequences[0]
    first, second = seq.pair(0, 1)
    pair = load_pair(superpoint_path(superpoint_cache(tmp_path / "cache", cfg), first.id), first.num_points,
                     second.num_points)
    shared = np.intersect1d(pair.first[pair.first > 0], pair.second[pair.second > 0])
    assert len(shared) > 5                     # segments that span both keyframes: the poses put them together
    pure = []
    for sid in shared:                         # one segment is one class in both frames
        la, lb = np.bincount(first.labels[pair.first == sid]), np.bincount(second.labels[pair.second == sid])
        pure.append(la.argmax() == lb.argmax())
    assert np.mean(pure) > 0.9

    run, probe, preds = tmp_path / "pretrain", tmp_path / "probe", tmp_path / "preds"
    fast = ["train.batch_size=2", "train.num_workers=0", "augment.crop_size=[56,104]",
            "augment.min_pairings_per_image=32", f"cache.root={tmp_path / 'cache2'}"]
    assert main(["pretrain", str(nus), "--config", "tiny", "train.max_steps=3", f"train.run_dir={run}",
                 *fast]) == 0
    assert (run / "backbone.pt").is_file()
    split = ['split.train_sequences=["synth-00"]', 'split.val_sequences=["synth-01"]']
    assert main(["probe", str(nus), "--config", "tiny", "--pretrained", str(run / "backbone.pt"),
                 f"train.run_dir={probe}", "optim.epochs=1", "train.batch_size=2", *split]) == 0
    assert main(["evaluate", str(probe / "model.pt"), str(nus), "--save-predictions", str(preds),
                 "--out", str(tmp_path / "eval")]) == 0
    files = sorted((preds / "lidarseg").glob("*_lidarseg.bin"))
    val = dataset.sequences[1]
    assert sorted(f.name for f in files) == sorted(f"{name}_lidarseg.bin" for name in val.frame_names)
    valid = np.flatnonzero(dataset.label_map.lookup > 0)   # raw nuScenes indices of the 16 classes
    for i, name in enumerate(val.frame_names):
        raw = np.fromfile(preds / "lidarseg" / f"{name}_lidarseg.bin", dtype=np.uint8)
        assert raw.shape[0] == val.point_count(i) and np.isin(raw, valid).all()


def test_cli_resume_and_refusal(tmp_path, capsys):
    from seal.core.errors import SealError

    assert main(["synth", "--layout", "nuscenes", "--out", str(tmp_path / "cli"), "--sequences", "1",
                 "--frames", "2"]) == 0
    ds = open_dataset(tmp_path / "cli", sweeps=True)
    assert ds.kind == "nuscenes" and [len(s) for s in ds.sequences] == [2] and len(ds[0].cameras) == 6
    small = dict(sequences=1, frames=3, seed=3, image_width=64, beams=8, azimuth_steps=256, progress=False)
    out = generate_dataset(tmp_path / "ds", layout="nuscenes", **small)
    before = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    for path in (*out.glob("sweeps/LIDAR_TOP/*"), *out.glob("samples/CAM_BACK/*"), out / VERSION / "sample.json"):
        path.unlink()
    generate_dataset(out, layout="nuscenes", **small)
    assert {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    with pytest.raises(SealError, match="layout: nuscenes -> semantickitti"):
        generate_dataset(out, **{**small, "cameras": 6})
