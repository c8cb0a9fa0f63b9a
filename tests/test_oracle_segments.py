"""Oracle segments of synthetic data: `seal synth --segments` maps and `superpixels.method=oracle` (+ degraded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import seal.cli.commands  # noqa: F401 - registers the commands
from seal.cli.main import main
from seal.core.config import OracleConfig, SuperpixelConfig
from seal.core.errors import DataError, SealError
from seal.data import open_dataset
from seal.superpixels import build_superpixelizer, finalize, load_segments
from seal.superpixels.oracle import OracleSuperpixels, merge_segments, oracle_map_path, split_segments
from seal.superpixels.stage import run_superpixels, superpixel_cache, superpixel_path
from seal.synth import generate_dataset
from seal.synth import materials as M
from seal.synth.generate import SequenceGenerator
from seal.synth.segments import THING_BASE, oracle_segments

PARAMS = dict(sequences=1, frames=3, seed=3, cameras=2, image_width=160, beams=32, azimuth_steps=720)
CARS = {M.CAR, M.MOVING_CAR}
STUFF = set(M.SYNTH_CLASS_IDS) - M.THING_IDS


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("oracle") / "ds", progress=False, segments=True, **PARAMS)


@pytest.fixture(scope="module")
def rendered() -> list[tuple[int, int, np.ndarray]]:
    """(frame, camera index, per-pixel label map) of every image, straight from the renderer."""
    gen = SequenceGenerator(PARAMS["seed"], 0, PARAMS["frames"], PARAMS["cameras"], PARAMS["image_width"],
                            PARAMS["beams"], PARAMS["azimuth_steps"])
    out = []
    for t in range(PARAMS["frames"]):
        data = gen.frame(t, return_ids=True)
        out += [(t, k, labels) for k, (labels, _) in enumerate(data.ids)]
    return out


def _map(root: Path, t: int, k: int) -> np.ndarray:
    with Image.open(root / "sequences/00" / f"segments_{k + 2}" / f"{t:06d}.png") as img:
        assert img.mode == "I;16"  # always 16-bit, whatever the largest id
        return np.asarray(img)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_maps_are_written_beside_the_images(root: Path, rendered) -> None:
    for t, k, labels in rendered:
        seg = _map(root, t, k)
        image = np.asarray(Image.open(root / "sequences/00" / f"image_{k + 2}" / f"{t:06d}.png"))
        assert seg.dtype == np.uint16 and seg.shape == image.shape[:2] == labels.shape
        np.testing.assert_array_equal(seg, oracle_segments(labels))
    assert "segments_K" in json.loads((root / "seal_synth.json").read_text())["segments"]
    assert open_dataset(root).sequences[0].camera_names == ["image_2", "image_3"]  # not read as cameras


def test_segments_are_pure_stuff_per_class_things_per_instance(root: Path, rendered) -> None:
    stuff_seen = things_seen = 0
    for t, k, labels in rendered:
        seg = _map(root, t, k)
        sem, inst = labels & 0xFFFF, labels >> 16
        assert ((seg == 0) == (labels == 0)).all()  # the sky, and only the sky, is "none"
        for sid in np.unique(seg[seg > 0]):
            classes = np.unique(sem[seg == sid])
            assert len(classes) == 1, (t, k, sid, classes)  # every segment is pure, pixel for pixel
            if sid < THING_BASE:
                assert classes[0] == sid and sid in STUFF  # stuff segment id = its raw class id
            else:
                assert classes[0] in M.THING_IDS and (inst[seg == sid] == sid - THING_BASE).all()
        for cls in np.unique(sem[sem > 0]):
            ids = np.unique(seg[sem == cls])
            if cls in STUFF:
                assert len(ids) == 1, (cls, ids)  # one segment per stuff class per image
                stuff_seen += 1
            else:
                instances = np.unique(inst[sem == cls])
                assert len(ids) == len(instances), (cls, ids, instances)  # one per instance
                things_seen += 1
    assert stuff_seen > 20 and things_seen > 2


def test_two_cars_give_two_segments(root: Path, rendered) -> None:
    best = 0
    for t, k, labels in rendered:
        sem, inst = labels & 0xFFFF, labels >> 16
        cars = np.unique(inst[np.isin(sem, list(CARS))])
        if len(cars) < 2:
            continue
        seg = _map(root, t, k)
        segments = {int(np.unique(seg[(inst == i) & np.isin(sem, list(CARS))]).item()) for i in cars}
        assert len(segments) == len(cars)  # each car its own segment, none shared
        best = max(best, len(cars))
    assert best >= 2


def test_projected_lidar_points_share_their_segments_class(root: Path) -> None:
    """> 98% of the LiDAR points that project inside a segment (away from its border, where a pixel is wider
    than the 0.3 m camera-LiDAR parallax can be resolved at 160 px) carry the segment's majority class."""
    calib = {}
    for line in (root / "sequences/00/calib.txt").read_text().splitlines():
        key, values = line.split(":", 1)
        calib[key] = np.array(values.split(), dtype=np.float64).reshape(3, 4)
    tr = np.vstack([calib["Tr"], [0, 0, 0, 1]])
    agree = total = segments = 0
    for t in range(PARAMS["frames"]):
        pts = np.fromfile(root / f"sequences/00/velodyne/{t:06d}.bin", dtype=np.float32).reshape(-1, 4)
        sem = np.fromfile(root / f"sequences/00/labels/{t:06d}.label", dtype=np.uint32) & 0xFFFF
        xyz1 = np.hstack([pts[:, :3].astype(np.float64), np.ones((len(pts), 1))])
        for k in range(PARAMS["cameras"]):
            seg = _map(root, t, k).astype(np.int64)
            pad = np.pad(seg, 1, mode="edge")
            interior = np.ones(seg.shape, dtype=bool)
            for dy in (0, 1, 2):
                for dx in (0, 1, 2):
                    interior &= pad[dy:dy + seg.shape[0], dx:dx + seg.shape[1]] == seg
            uvw = xyz1 @ (calib[f"P{k + 2}"] @ tr).T
            front = uvw[:, 2] > 1.0
            uv = np.round(uvw[front, :2] / uvw[front, 2:]).astype(np.int64)
            h, w = seg.shape
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
            uv, cls = uv[inside], sem[front][inside]
            keep = interior[uv[:, 1], uv[:, 0]] & (seg[uv[:, 1], uv[:, 0]] > 0)
            ids, cls = seg[uv[keep, 1], uv[keep, 0]], cls[keep]
            for sid in np.unique(ids):
                _, counts = np.unique(cls[ids == sid], return_counts=True)
                agree, total, segments = agree + counts.max(), total + counts.sum(), segments + 1
    assert total > 5000 and segments > 30
    assert agree / total > 0.98, agree / total


def test_generation_without_segments_is_unchanged_and_segments_can_be_added(root: Path, tmp_path: Path) -> None:
    plain = generate_dataset(tmp_path / "plain", progress=False, **PARAMS)
    files, with_maps = _files(plain), _files(root)
    assert not any("segments" in name for name in files)
    assert "segments" not in json.loads((plain / "seal_synth.json").read_text())
    extra = {name for name in with_maps if name not in files}
    assert extra and all(name.split("/")[2].startswith(("segments_", "classes_")) for name in extra)
    assert any(name.split("/")[2].startswith("classes_") for name in extra)  # the oracle teachers' class maps
    assert all(files[name] == with_maps[name] for name in files if name != "seal_synth.json")
    # the same command with --segments completes a dataset generated without them
    added = generate_dataset(shutil.copytree(plain, tmp_path / "added"), progress=False, segments=True, **PARAMS)
    assert _files(added) == with_maps
    generate_dataset(added, progress=False, **PARAMS)  # a later run without --segments keeps them, and says so
    assert _files(added) == with_maps


def test_segments_need_the_semantickitti_layout(tmp_path: Path) -> None:
    with pytest.raises(SealError, match="SemanticKITTI layout only"):
        generate_dataset(tmp_path / "n", progress=False, layout="nuscenes", segments=True, sequences=1, frames=1,
                         image_width=160, azimuth_steps=720)


def test_split_and_merge_on_a_toy_map() -> None:
    seg = np.zeros((20, 30), dtype=np.int64)
    seg[:, :10], seg[:, 10:20], seg[:10, 20:] = 1, 2, 3  # three touching blocks, a none area
    rng = np.random.default_rng(0)
    split = split_segments(seg, 1.0, rng)
    assert len(np.unique(split[split > 0])) == 6 and ((split > 0) == (seg > 0)).all()
    for sid in (1, 2, 3):  # each half stays inside its parent
        assert len(np.unique(seg[np.isin(split, np.unique(split[seg == sid]))])) == 1
    merged = merge_segments(seg, 1.0, np.random.default_rng(0))
    assert len(np.unique(merged[merged > 0])) == 1 and ((merged > 0) == (seg > 0)).all()
    assert (split_segments(seg, 0.0, rng) == seg).all() and (merge_segments(seg, 0.0, rng) == seg).all()
    lone = np.zeros((5, 5), dtype=np.int64)
    lone[1, 1], lone[3, 3] = 1, 2  # no neighbours: nothing to merge with
    assert (merge_segments(lone, 1.0, rng) == lone).all()


def test_split_and_merge_rates_move_the_segment_count_and_are_deterministic(root: Path) -> None:
    dataset = open_dataset(root)
    frame = dataset[1]
    camera = frame.cameras[0]
    context = {"frame_id": frame.id, "camera": camera.name, "image_path": camera.image_path}

    def count(method: OracleSuperpixels, ctx: dict = context) -> int:
        return int(method(camera.image, ctx).max())

    base = count(OracleSuperpixels())
    assert base == len(np.unique(_map(root, 1, 0)[_map(root, 1, 0) > 0]))
    splits = [count(OracleSuperpixels(split_rate=r)) for r in (0.2, 0.5, 1.0)]
    merges = [count(OracleSuperpixels(merge_rate=r)) for r in (0.2, 0.5, 1.0)]
    assert base < splits[0] < splits[1] < splits[2] <= 2 * base, (base, splits)
    assert base > merges[0] > merges[2] >= 1 and merges[1] >= merges[2], (base, merges)
    mixed = OracleSuperpixels(split_rate=0.5, merge_rate=0.3, seed=4)
    once = mixed(camera.image, context)
    np.testing.assert_array_equal(once, OracleSuperpixels(split_rate=0.5, merge_rate=0.3, seed=4)(camera.image,
                                                                                                   context))
    others = [OracleSuperpixels(split_rate=0.5, merge_rate=0.3, seed=s)(camera.image, context) for s in range(5, 9)]
    assert any((o != once).any() for o in others)  # the seed picks which segments change
    other_camera = mixed(camera.image, {**context, "camera": "image_3"})
    assert (other_camera != once).any()  # ... and so do the frame and the camera


def test_build_and_params_key_the_cache() -> None:
    cfg = SuperpixelConfig(method="oracle", oracle=OracleConfig(split_rate=0.25, merge_rate=0.1, seed=3))
    method = build_superpixelizer(cfg)
    assert isinstance(method, OracleSuperpixels) and "upper bound" in (OracleSuperpixels.__doc__ or "")
    assert method.params() == {"split_rate": 0.25, "merge_rate": 0.1, "seed": 3}
    assert method.name == "oracle"


def test_oracle_map_path() -> None:
    assert oracle_map_path("/d/sequences/00/image_3/000007.png") == Path("/d/sequences/00/segments_3/000007.png")
    with pytest.raises(DataError, match="seal synth --segments"):
        oracle_map_path("/d/samples/CAM_FRONT/x.jpg")


def test_seal_superpixels_oracle_runs_through_the_cached_stage(root: Path, tmp_path: Path, capsys) -> None:
    cache = tmp_path / "cache"
    argv = ["superpixels", str(root), "--method", "oracle", "--cache", str(cache), "--no-progress"]
    assert main(argv) == 0
    assert main(argv) == 0
    assert "nothing to do" in capsys.readouterr().out
    dataset = open_dataset(root)
    stage = superpixel_cache(cache, OracleSuperpixels())
    for index in range(len(dataset)):
        frame = dataset[index]
        for k, camera in enumerate(frame.cameras):
            cached = load_segments(superpixel_path(stage, frame.id, camera.name))
            oracle = _map(root, index, k).astype(np.int64)
            np.testing.assert_array_equal(cached, finalize(np.where(oracle > 0, oracle, -1)))
    assert main([*argv, "superpixels.oracle.split_rate=0.5", "superpixels.oracle.seed=2"]) == 0
    folders = sorted(p.name for p in (cache / "superpixels").iterdir())
    assert len(folders) == 2 and all(f.startswith("oracle-") for f in folders)
    params = [json.loads((cache / "superpixels" / f / "params.json").read_text())["params"] for f in folders]
    assert {"split_rate": 0.5, "merge_rate": 0.0, "seed": 2} in params


def test_missing_maps_are_one_line_naming_the_file(root: Path, tmp_path: Path, capsys) -> None:
    data = shutil.copytree(root, tmp_path / "data")
    for folder in (data / "sequences/00").glob("segments_*"):
        shutil.rmtree(folder)
    assert main(["superpixels", str(data), "--method", "oracle", "--cache", str(tmp_path / "c"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    missing = data / "sequences/00/segments_2/000000.png"
    assert len(err) == 1 and err[0].startswith("seal: error:") and str(missing) in err[0], err
    assert "seal synth --segments" in err[0]
    assert not (tmp_path / "c").exists()  # nothing was started
    generate_dataset(data, progress=False, segments=True, **PARAMS)  # adds the maps back
    missing = data / "sequences/00/segments_3/000001.png"
    missing.unlink()  # one map missing: that image fails, named, and the others are done
    report = run_superpixels(open_dataset(data), OracleSuperpixels(), tmp_path / "c2", progress=False)
    assert len(report.failed) == 1 and str(missing) in report.failed[0][1]
    assert report.done == PARAMS["frames"] * PARAMS["cameras"] - 2
