"""Temporal superpoints on synthetic sequences: ground apart from objects, ids shared across the two frames."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest

from seal.core.config import GroundConfig, SuperpointConfig
from seal.data import open_dataset
from seal.geometry.ground import ground_mask
from seal.geometry.segments import GROUND, IGNORE, cluster_pair, relative_transform
from seal.superpoints.stage import load_pair, run_superpoints, superpoint_cache, superpoint_path

GROUND_CLASSES = ("road", "parking", "sidewalk", "terrain", "other-ground")


@pytest.fixture(scope="module")
def pair(synthetic_root):
    dataset = open_dataset(synthetic_root)
    first, second = dataset.sequences[0].pair(0, 1)
    result = cluster_pair(first.xyz, second.xyz, relative_transform(first.pose, second.pose), SuperpointConfig())
    ground_ids = [dataset.label_map.class_names.index(n) + 1 for n in GROUND_CLASSES]
    return first, second, result, ground_ids


def test_ransac_recovers_a_known_plane():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-30, 30, size=(5000, 2))
    tilt = np.tan(np.radians(3.0))
    floor = np.column_stack([xy, -1.8 + tilt * xy[:, 0] + rng.normal(0, 0.02, 5000)])
    boxes = rng.uniform([-20, -20, -1.0], [20, 20, 2.0], size=(2000, 3))   # clutter well above the floor
    mask = ground_mask(np.vstack([floor, boxes]), GroundConfig(distance=0.15, iterations=200))
    assert mask[:5000].mean() > 0.99 and mask[5000:].mean() < 0.02


def test_ground_is_separated_from_objects(pair):
    first, _, result, ground_ids = pair
    is_ground_class = np.isin(first.labels, ground_ids)
    ground_segment = result.first == GROUND
    assert is_ground_class[ground_segment].mean() > 0.95          # what we call ground is ground
    assert ground_segment[is_ground_class].mean() > 0.9            # and most ground is found
    objects = first.instances > 0
    assert (result.first[objects] == GROUND).mean() < 0.05         # cars and people stay out of it


def _majority_segment(ids):
    ids = ids[ids > GROUND]
    return int(np.bincount(ids).argmax()) if ids.size else None


def test_static_and_moving_objects_share_ids_across_frames(pair):
    first, second, result, _ = pair
    checked = {"static": 0, "moving": 0}
    for inst in np.unique(first.instances[first.instances > 0]):
        a, b = first.instances == inst, second.instances == inst
        if a.sum() < 40 or b.sum() < 40:
            continue
        seg_a, seg_b = _majority_segment(result.first[a]), _majority_segment(result.second[b])
        assert seg_a is not None and seg_a == seg_b, f"instance {inst} split across frames"
        assert (result.first[a] == seg_a).mean() > 0.8 and (result.second[b] == seg_b).mean() > 0.8
        moving = bool((first.raw_labels[a] >= 252).any())
        checked["moving" if moving else "static"] += 1
    assert checked["static"] >= 2 and checked["moving"] >= 1, checked


def test_segments_do_not_mix_objects(pair):
    first, _, result, _ = pair
    things = first.instances > 0
    pure = total = 0
    for seg in np.unique(result.first[things & (result.first > GROUND)]):
        members = first.instances[(result.first == seg) & things]
        pure += np.bincount(members).max()
        total += members.size
    assert total > 500 and pure / total > 0.9   # object points sit in segments of their own object


def test_ignore_mode_and_range(pair, synthetic_root):
    first, second, _, ground_ids = pair
    cfg = SuperpointConfig(ground_mode="ignore", max_range=20.0)
    result = cluster_pair(first.xyz, second.xyz, relative_transform(first.pose, second.pose), cfg)
    assert not (result.first == GROUND).any() and not (result.second == GROUND).any()
    assert (result.first[np.isin(first.labels, ground_ids)] == IGNORE).mean() > 0.9
    far = np.hypot(first.xyz[:, 0], first.xyz[:, 1]) > 20.0
    assert (result.first[far] == IGNORE).all()


def test_stage_caches_skips_and_shards(synthetic_root, tmp_path):
    dataset = open_dataset(synthetic_root)
    cfg = SuperpointConfig()
    whole = run_superpoints(dataset, cfg, tmp_path / "one", progress=False)
    assert whole.done == 2 * 3 and not whole.failed and whole.mean_segments > 5
    again = run_superpoints(dataset, cfg, tmp_path / "one", progress=False)
    assert (again.done, again.skipped) == (0, 6)
    a = run_superpoints(dataset, cfg, tmp_path / "two", shard=(0, 2), progress=False)
    b = run_superpoints(dataset, cfg, tmp_path / "two", shard=(1, 2), progress=False)
    assert (a.done, b.done) == (3, 3)
    one, two = superpoint_cache(tmp_path / "one", cfg), superpoint_cache(tmp_path / "two", cfg)
    first = dataset.sequences[1][2]
    path = superpoint_path(one, first.id)
    assert filecmp.cmp(path, superpoint_path(two, first.id), shallow=False)
    loaded = load_pair(path, first.num_points, dataset.sequences[1][3].num_points)
    assert loaded.first.dtype == np.int32
    assert superpoint_cache(tmp_path, SuperpointConfig(gap=2)).folder != one.folder
