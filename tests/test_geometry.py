"""Projection against nuScenes' annotated boxes, and voxelisation round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seal.core.errors import ConfigError
from seal.core.projection import pair_points, project_to_camera
from seal.core.voxelize import quantize, voxelize
from seal.data import open_dataset


@pytest.fixture(scope="module")
def keyframe(nuscenes_root):
    ref = json.loads((nuscenes_root / "frame.json").read_text())
    return open_dataset(nuscenes_root)[0], ref


def _match(camera, boxes, cam_box):
    """The 3D box whose projected centre is the annotated 2D centre (same category, same depth)."""
    centres = np.array([b["bbox_3d"][:3] for b in boxes])
    uv, depth = project_to_camera(centres, camera.K, camera.lidar_to_cam)
    err = np.linalg.norm(uv - np.array(cam_box["center_2d"]), axis=1)
    err[(depth <= 0) | (np.abs(depth - cam_box["depth"]) > 0.05)] = np.inf
    err[[b["category"] != cam_box["category"] for b in boxes]] = np.inf
    best = int(np.argmin(err))
    return best, float(err[best])


def test_box_centres_project_onto_annotated_centres(keyframe):
    frame, ref = keyframe
    errors = []
    for camera in frame.cameras:
        for cam_box in ref["cam_boxes"][camera.name]:
            errors.append(_match(camera, ref["boxes"], cam_box)[1])
    assert len(errors) >= 50
    assert np.isfinite(errors).all()
    assert np.median(errors) < 1e-3 and max(errors) < 0.05


def _inside_box(xyz, box):
    x, y, z, dx, dy, dz, yaw = box
    c, s = np.cos(-yaw), np.sin(-yaw)
    local = (xyz[:, :2] - [x, y]) @ np.array([[c, s], [-s, c]])
    return (np.abs(local[:, 0]) <= dx / 2) & (np.abs(local[:, 1]) <= dy / 2) & (np.abs(xyz[:, 2] - z) <= dz / 2)


def test_points_in_3d_boxes_land_in_their_2d_boxes(keyframe):
    frame, ref = keyframe
    pairs = pair_points(frame.xyz, frame.cameras)
    inside_total = hits = boxes_checked = 0
    for ci, camera in enumerate(frame.cameras):
        mine = pairs.for_camera(ci)
        for cam_box in ref["cam_boxes"][camera.name]:
            best, _ = _match(camera, ref["boxes"], cam_box)
            in_box = _inside_box(frame.xyz[mine.point], ref["boxes"][best]["bbox_3d"])
            if in_box.sum() < 10:
                continue
            x1, y1, x2, y2 = cam_box["bbox"]
            u, v = mine.col[in_box] + 0.5, mine.row[in_box] + 0.5
            ok = (u >= x1 - 2) & (u <= x2 + 2) & (v >= y1 - 2) & (v <= y2 + 2)
            inside_total += int(in_box.sum())
            hits += int(ok.sum())
            boxes_checked += 1
    assert boxes_checked >= 10 and inside_total >= 300
    assert hits / inside_total > 0.97


def test_pairings_match_a_per_point_loop(keyframe):
    frame, _ = keyframe
    pairs = pair_points(frame.xyz, frame.cameras, min_depth=1.0)
    chosen = np.random.default_rng(0).choice(frame.num_points, 400, replace=False)
    expected = set()
    for i in chosen:
        for ci, cam in enumerate(frame.cameras):
            p = cam.lidar_to_cam @ np.append(frame.xyz[i].astype(np.float64), 1.0)
            if p[2] <= 1.0:
                continue
            u, v = (cam.K @ p[:3])[:2] / p[2]
            if 0 <= u < cam.width and 0 <= v < cam.height:
                expected.add((int(i), ci, int(np.floor(v)), int(np.floor(u))))
    keep = np.isin(pairs.point, chosen)
    got = set(zip(pairs.point[keep].tolist(), pairs.camera[keep].tolist(), pairs.row[keep].tolist(),
                  pairs.col[keep].tolist(), strict=True))
    assert len(expected) > 100 and got == expected
    assert (pairs.depth > 1.0).all()
    assert len(np.unique(pairs.camera)) == 6


@pytest.mark.parametrize("mode", ["cartesian", "cylindrical"])
def test_voxelization_round_trip(keyframe, mode):
    frame, _ = keyframe
    vox = voxelize(frame.xyz, voxel_size=0.1, mode=mode)
    grid = quantize(frame.xyz, 0.1, mode) - vox.origin
    np.testing.assert_array_equal(vox.coords[vox.inverse], grid)          # every point -> its own voxel
    assert len(np.unique(vox.coords, axis=0)) == vox.num_voxels           # voxels are unique
    assert vox.counts.sum() == frame.num_points and (vox.coords >= 0).all()
    np.testing.assert_array_equal(vox.inverse[vox.representative], np.arange(vox.num_voxels))
    means = vox.mean(frame.points[:, 3])
    loop = [frame.points[vox.inverse == v, 3].mean() for v in range(0, vox.num_voxels, 997)]
    np.testing.assert_allclose(means[::997], loop, rtol=1e-5)
    pairs = pair_points(frame.xyz, frame.cameras)
    np.testing.assert_array_equal(pairs.on_voxels(vox.inverse), vox.inverse[pairs.point])


def test_cylindrical_voxels_are_thin_in_range_and_angle(keyframe):
    frame, _ = keyframe
    vox = voxelize(frame.xyz, voxel_size=0.1, mode="cylindrical", angle_bin_deg=1.0)
    rho = np.hypot(frame.xyz[:, 0], frame.xyz[:, 1])
    phi = np.degrees(np.arctan2(frame.xyz[:, 1], frame.xyz[:, 0]))
    for values, width in ((rho, 0.1), (phi, 1.0), (frame.xyz[:, 2], 0.1)):
        lo = np.full(vox.num_voxels, np.inf)
        hi = np.full(vox.num_voxels, -np.inf)
        np.minimum.at(lo, vox.inverse, values)
        np.maximum.at(hi, vox.inverse, values)
        assert (hi - lo).max() < width + 1e-6


def test_voxelize_rejects_bad_options():
    xyz = np.zeros((3, 3))
    with pytest.raises(ConfigError, match="mode"):
        voxelize(xyz, mode="spherical")
    with pytest.raises(ConfigError, match="positive"):
        voxelize(xyz, voxel_size=0.0)
    assert voxelize(np.zeros((0, 3))).num_voxels == 0
