"""3D recordings (`seal show frame --rerun`, `seal evaluate --rerun`) read back with rerun's own reader: the
entities, point counts, positions, colours, calibration, images and timelines of a synthetic sequence."""

from __future__ import annotations

import io
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from seal.cli import main
from seal.data import open_dataset

pytest.importorskip("rerun")

CAMERA = "image_2"  # the synthetic SemanticKITTI layout's front camera


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("rerun") / "synth", sequences=1, frames=3, seed=4, cameras=1,
                            image_width=160, azimuth_steps=512, progress=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """Few points, for the evaluation test: spconv's CPU convolutions dominate its time."""
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("rerun-small") / "synth", sequences=1, frames=2, seed=4,
                            cameras=1, image_width=64, beams=8, azimuth_steps=256, progress=False)


def read(path: Path) -> dict[str, list[dict]]:
    """{entity path: its rows (column -> arrow cell), in `frame` order}, from the recording store of ``path``."""
    import rerun.chunk as rc

    rows: dict[str, list[dict]] = {}
    for chunk in rc.RrdReader(path).store().stream().to_chunks():
        batch = chunk.to_record_batch()
        for i in range(chunk.num_rows):
            rows.setdefault(chunk.entity_path, []).append({n: batch.column(n)[i] for n in batch.schema.names})
    for entity in rows.values():
        entity.sort(key=lambda row: row["frame"].as_py() if "frame" in row else -1)
    return rows


def flat(cell) -> np.ndarray:
    """The values of one list cell (nested lists flattened) as a numpy array."""
    import pyarrow as pa

    values = cell.values
    while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
        values = values.flatten()
    return values.to_numpy(zero_copy_only=False)


def rgb(packed: np.ndarray) -> np.ndarray:
    """Rerun's 0xRRGGBBAA colours as N x 3 uint8."""
    packed = packed.astype(np.uint32)
    return np.stack([(packed >> 24) & 255, (packed >> 16) & 255, (packed >> 8) & 255], axis=1).astype(np.uint8)


def test_show_frame_recording_holds_the_frames(data, tmp_path, capsys):
    from PIL import Image

    from seal.viz.rerun_log import IGNORE_COLOR

    out = tmp_path / "f.rrd"
    assert main(["show", "frame", str(data), "--rerun", str(out), "--frames", "2"]) == 0
    dataset = open_dataset(data)
    frames = [dataset[0], dataset[1]]
    assert capsys.readouterr().out.strip() == f"wrote {out} (2 frames, {sum(f.num_points for f in frames)} points)"
    assert not (tmp_path / "frame.png").exists()                      # --rerun alone: the recording only
    rows = read(out)
    cam = f"/world/ego/cameras/{CAMERA}"
    assert {"/world", "/world/ego", "/world/trajectory", "/world/ego/lidar", "/world/ego/lidar/intensity",
            "/world/ego/lidar/ground_truth", cam, f"{cam}/image"} <= set(rows)
    assert "/world/ego/lidar/prediction" not in rows and "/world/ego/lidar/superpoints" not in rows  # none cached
    assert f"{cam}/superpixels" not in rows
    for entity in ("/world/ego", "/world/ego/lidar/ground_truth", "/world/ego/lidar/intensity", cam, f"{cam}/image"):
        assert [r["frame"].as_py() for r in rows[entity]] == [0, 1], entity   # two time points on `frame`
    palette = np.vstack([np.array([IGNORE_COLOR], np.uint8), dataset.label_map.colors])  # ignore, classes 1..C
    for row, frame in zip(rows["/world/ego/lidar/ground_truth"], frames, strict=True):
        positions = flat(row["Points3D:positions"]).reshape(-1, 3)
        assert positions.shape[0] == frame.num_points
        np.testing.assert_array_equal(positions, frame.xyz)
        np.testing.assert_array_equal(flat(row["Points3D:class_ids"]), frame.labels)
        np.testing.assert_array_equal(rgb(flat(row["Points3D:colors"])), palette[frame.labels])
    intensity = flat(rows["/world/ego/lidar/intensity"][0]["Points3D:colors"])
    assert intensity.shape[0] == frames[0].num_points and np.unique(intensity).size > 10  # a colour ramp
    for row, frame in zip(rows["/world/ego"], frames, strict=True):
        np.testing.assert_allclose(flat(row["Transform3D:translation"]), frame.pose[:3, 3], atol=1e-5)
        np.testing.assert_allclose(flat(row["Transform3D:mat3x3"]).reshape(3, 3).T, frame.pose[:3, :3], atol=1e-6)
    camera = frames[0].cameras[0]
    pinhole = rows[cam][0]
    np.testing.assert_allclose(flat(pinhole["Pinhole:image_from_camera"]).reshape(3, 3).T, camera.K, rtol=1e-6)
    np.testing.assert_array_equal(flat(pinhole["Pinhole:resolution"]), [camera.width, camera.height])
    cam_to_lidar = np.linalg.inv(camera.lidar_to_cam)
    np.testing.assert_allclose(flat(pinhole["Transform3D:translation"]), cam_to_lidar[:3, 3], atol=1e-6)
    blob = flat(rows[f"{cam}/image"][0]["EncodedImage:blob"]).astype(np.uint8).tobytes()
    image = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"))
    assert image.shape == camera.image.shape == (camera.height, camera.width, 3)
    assert np.abs(image.astype(int) - camera.image).mean() < 6        # JPEG, close to the pixels
    strips = [flat(r["LineStrips3D:strips"]).reshape(-1, 3) for r in rows["/world/trajectory"]]
    assert [s.shape[0] for s in strips] == [1, 2]                     # one vertex per pose logged so far
    np.testing.assert_allclose(strips[-1], [f.pose[:3, 3] for f in frames], atol=1e-5)


def test_cached_superpixels_and_superpoints_are_logged(data, tmp_path, capsys):
    from seal.superpixels import load_segments

    cache = tmp_path / "cache"
    for stage in ("superpixels", "superpoints"):
        assert main([stage, str(data), "--cache", str(cache), "--no-progress"]) == 0
    out = tmp_path / "s.rrd"
    assert main(["show", "frame", str(data), "--rerun", str(out), "--frame", "1", "--frames", "5",
                 "--cache", str(cache)]) == 0
    assert "ends after 2 of the 5 frames" in capsys.readouterr().out  # clipped at the end of the sequence
    rows = read(out)
    dataset = open_dataset(data)
    points = rows["/world/ego/lidar/superpoints"]
    assert [r["frame"].as_py() for r in points] == [1, 2]            # frame 2 starts no pair: the pair it ends
    assert [flat(r["Points3D:positions"]).size // 3 for r in points] == [dataset[1].num_points, dataset[2].num_points]
    maps = rows[f"/world/ego/cameras/{CAMERA}/superpixels"]
    camera = dataset[1].cameras[0]
    segments = load_segments(next(cache.rglob(f"000001/{CAMERA}.png")))
    assert flat(maps[0]["SegmentationImage:buffer"]).size == camera.width * camera.height * 2  # uint16 pixels
    np.testing.assert_array_equal(flat(maps[0]["SegmentationImage:buffer"]).astype(np.uint8).view("<u2"),
                                  segments.ravel())
    next(cache.rglob("superpoints/*/00/000001.npz")).unlink()      # frame 2 now has no superpoints: cleared
    assert main(["show", "frame", str(data), "--rerun", str(out), "--frame", "1", "--frames", "2",
                 "--cache", str(cache)]) == 0
    points = read(out)["/world/ego/lidar/superpoints"]
    assert [r["frame"].as_py() for r in points] == [1, 2]
    assert "Points3D:positions" in points[0] and set(points[1]) >= {"Clear:is_recursive"}
    assert "Points3D:positions" not in points[1]                      # not frame 1's segments at frame 2's pose


def test_without_the_extra_one_line_names_it(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rerun", None)                   # `import rerun` raises ImportError
    out = tmp_path / "f.rrd"
    assert main(["show", "frame", str(data), "--rerun", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'seal[viewer]'" in err[0], err
    assert not out.exists()


def test_bad_options_and_a_failed_run_leave_no_file(data, tmp_path, monkeypatch, capsys):
    from seal.viz import rerun_log

    assert main(["show", "frame", str(data), "--frames", "2"]) == 2  # --frames without --rerun
    assert "--rerun" in capsys.readouterr().err
    assert main(["show", "frame", str(data), "--rerun", str(tmp_path / "f.png")]) == 2
    assert ".rrd" in capsys.readouterr().err

    def broken(self, index, frame, prediction=None):
        raise OSError("disk gone")

    monkeypatch.setattr(rerun_log.FrameLogger, "log_frame", broken)
    with pytest.raises(OSError, match="disk gone"):
        main(["show", "frame", str(data), "--rerun", str(tmp_path / "f.rrd")])
    assert list(tmp_path.iterdir()) == []                             # neither the target nor a temporary file


@pytest.fixture
def one_thread():
    """spconv's CPU convolutions: one thread, so a busy machine does not make them crawl."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_evaluate_records_predictions_and_errors(small, tmp_path, capsys, one_thread):
    import torch

    from seal.core.config import BackboneConfig, VoxelConfig
    from seal.models.backbones import build_backbone
    from seal.models.segmentation import SegmentationModel, save_model
    from seal.viz.rerun_log import ERROR_COLORS

    dataset = open_dataset(small)
    torch.manual_seed(0)
    classes = dataset.label_map.num_classes
    model = SegmentationModel(build_backbone(BackboneConfig(stem_channels=8, planes=[8] * 8, layers=[1] * 8)), classes)
    save_model(tmp_path / "model.pt", model, {"voxel": asdict(VoxelConfig()), "label_map": "semantickitti",
                                              "class_names": list(dataset.label_map.class_names)})
    out = tmp_path / "eval.rrd"
    assert main(["evaluate", str(tmp_path / "model.pt"), str(small), "--split", "all", "--rerun", str(out),
                 "--out", str(tmp_path / "eval")]) == 0
    counts = [dataset[i].num_points for i in range(len(dataset))]
    assert f"wrote {out} ({len(dataset)} frames, {sum(counts)} points)" in capsys.readouterr().out
    rows = read(out)
    assert [r["frame"].as_py() for r in rows["/world/ego/lidar/prediction"]] == list(range(len(dataset)))
    for i, (pred_row, err_row) in enumerate(zip(rows["/world/ego/lidar/prediction"], rows["/world/ego/lidar/error"],
                                                strict=True)):
        labels = dataset[i].labels
        pred = flat(pred_row["Points3D:class_ids"]).astype(np.int64)
        assert pred.shape[0] == counts[i] and flat(err_row["Points3D:positions"]).size == 3 * counts[i]
        assert pred.min() >= 1 and pred.max() <= classes
        want = np.where((pred != labels)[:, None], ERROR_COLORS["wrong"], ERROR_COLORS["correct"])
        want[labels == 0] = ERROR_COLORS["ignored"]
        np.testing.assert_array_equal(rgb(flat(err_row["Points3D:colors"])), want)
    assert "/world/ego/lidar/ground_truth" in rows
