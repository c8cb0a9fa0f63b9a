"""Superpixel id rules (docs/METHOD.md §3) and the cached, resumable, shardable stage."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pytest

from seal.core.config import SlicConfig, SuperpixelConfig
from seal.core.errors import ConfigError
from seal.data import open_dataset
from seal.superpixels import NONE, build_superpixelizer, finalize, load_segments, paint_masks, save_segments
from seal.superpixels.stage import run_superpixels, superpixel_cache, superpixel_path


def test_finalize_is_dense_uint16_and_keeps_more_than_255_segments():
    raw = np.arange(40 * 40).reshape(40, 40) * 7 + 1000  # 1600 distinct, sparse ids
    raw[0, :5] = -1
    out = finalize(raw)
    assert out.dtype == np.uint16
    assert (out[0, :5] == NONE).all() and (out[raw >= 0] > 0).all()
    assert set(np.unique(out[out > 0])) == set(range(1, 1600 - 5 + 1))
    # same raw id <-> same output id
    assert len(set(zip(raw.ravel().tolist(), out.ravel().tolist(), strict=True))) == 1595 + 1


def test_paint_masks_smaller_wins_and_uncovered_stay_none():
    big = np.zeros((10, 10), bool)
    big[:8, :8] = True
    small = np.zeros((10, 10), bool)
    small[2:4, 2:4] = True
    out = finalize(paint_masks([small, big], (10, 10)))
    assert out[2, 2] != out[0, 0] and out[2, 2] > 0 and out[0, 0] > 0
    assert (out[8:, :] == NONE).all() and (out[:, 8:] == NONE).all()
    assert len(np.unique(out)) == 3


def test_segments_round_trip_16bit_png(tmp_path):
    seg = np.random.default_rng(0).integers(0, 5000, size=(30, 40)).astype(np.uint16)
    save_segments(tmp_path / "a.png", seg)
    np.testing.assert_array_equal(load_segments(tmp_path / "a.png"), seg)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    with pytest.raises(ValueError):
        save_segments(tmp_path / "b.png", seg.astype(np.int32))


@pytest.mark.parametrize(("top", "mode"), [(0, "L"), (255, "L"), (256, "I;16")])
def test_segments_stored_8bit_when_ids_fit_and_read_back_as_uint16(tmp_path, top, mode):
    from PIL import Image

    seg = np.random.default_rng(1).integers(0, 200, size=(30, 40)).astype(np.uint16)
    seg[0, 0] = top
    save_segments(tmp_path / "a.png", seg)
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode == mode
    back = load_segments(tmp_path / "a.png")
    assert back.dtype == np.uint16 and back.flags.writeable
    np.testing.assert_array_equal(back, seg)


def test_slic_on_real_image(nuscenes_root):
    image = open_dataset(nuscenes_root)[0].cameras[0].image
    seg = build_superpixelizer(SuperpixelConfig())(image)
    assert seg.dtype == np.uint16 and seg.shape == image.shape[:2]
    assert (seg > 0).all() and 80 <= seg.max() <= 200   # ~150 requested
    assert set(np.unique(seg)) == set(range(1, seg.max() + 1))


def test_unknown_method_names_the_option():
    with pytest.raises(ConfigError, match="superpixels.method='felzen'"):
        build_superpixelizer(SuperpixelConfig(method="felzen"))
    with pytest.raises(ConfigError, match="superpixels.sam.checkpoint"):
        build_superpixelizer(SuperpixelConfig(method="sam"))


def test_stage_on_real_keyframe_caches_and_skips(nuscenes_root, tmp_path):
    dataset = open_dataset(nuscenes_root)
    method = build_superpixelizer(SuperpixelConfig())
    first = run_superpixels(dataset, method, tmp_path, progress=False)
    assert (first.done, first.skipped, first.failed) == (6, 0, [])
    cache = superpixel_cache(tmp_path, method)
    frame = dataset[0]
    for camera in frame.cameras:
        seg = load_segments(superpixel_path(cache, frame.id, camera.name))
        assert seg.shape == (900, 1600)
    second = run_superpixels(dataset, method, tmp_path, progress=False)
    assert (second.done, second.skipped) == (0, 6)
    assert json.loads((cache.folder / "params.json").read_text())["params"]["n_segments"] == 150
    other = build_superpixelizer(SuperpixelConfig(slic=SlicConfig(n_segments=50)))  # a changed parameter: new folder
    assert superpixel_cache(tmp_path, other).folder != cache.folder


def test_two_shards_equal_one_run(synthetic_root, tmp_path):
    dataset = open_dataset(synthetic_root)
    method = build_superpixelizer(SuperpixelConfig(slic=SlicConfig(work_width=0)))
    whole = run_superpixels(dataset, method, tmp_path / "one", progress=False)
    a = run_superpixels(dataset, method, tmp_path / "two", shard=(0, 2), progress=False)
    b = run_superpixels(dataset, method, tmp_path / "two", shard=(1, 2), progress=False)
    assert whole.done == a.done + b.done == 2 * 2 * 4 and a.done == b.done
    one = superpixel_cache(tmp_path / "one", method).folder
    two = superpixel_cache(tmp_path / "two", method).folder
    files = sorted(p.relative_to(one) for p in one.rglob("*.png"))
    assert files == sorted(p.relative_to(two) for p in two.rglob("*.png"))
    assert all(filecmp.cmp(one / f, two / f, shallow=False) for f in files)


def test_failed_item_is_reported_and_the_job_goes_on(synthetic_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    broken = root / "sequences" / "00" / "image_2" / "000001.png"
    broken.write_bytes(b"not a png")
    dataset = open_dataset(root)
    method = build_superpixelizer(SuperpixelConfig(slic=SlicConfig(work_width=0)))
    report = run_superpixels(dataset, method, tmp_path / "cache", progress=False)
    assert len(report.failed) == 1 and "00/000001" in report.failed[0][0] and str(broken) in report.failed[0][1]
    assert report.done == 2 * 2 * 4 - 2  # both cameras of the broken frame are left for a re-run
    from seal.core.errors import DataError

    with pytest.raises(DataError):
        run_superpixels(dataset, method, tmp_path / "cache2", fail_fast=True, progress=False)
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_read_only_dataset_caches_under_home(tmp_path, monkeypatch):
    from seal.stages.cache import cache_root_for

    data = tmp_path / "data"
    data.mkdir()
    assert cache_root_for(data) == data / "seal_cache"
    data.chmod(0o555)                             # read-only, as shared datasets are (even for root)
    monkeypatch.setenv("SEAL_CACHE_HOME", str(tmp_path / "home"))
    try:
        root = cache_root_for(data)
        assert root.parent == tmp_path / "home" and root.name.startswith("data-")
        assert cache_root_for(data, tmp_path / "explicit") == tmp_path / "explicit"
    finally:
        data.chmod(0o755)
