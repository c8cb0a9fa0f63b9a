"""Robo3D corruptions: each one changes what it should and nothing else; datasets written to disk read back."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from seal.core.errors import ConfigError, SealError
from seal.core.frame import Dataset, Frame, Sequence
from seal.core.labelmap import load_label_map
from seal.data import open_dataset
from seal.robustness import (
    CORRUPTIONS,
    GROUND_CLASSES,
    PARAMETERS,
    SEVERITIES,
    VEHICLE_CLASSES,
    Corrupted,
    Corruption,
    CorruptionContext,
    corrupt_dataset,
    corrupt_frame,
    corrupt_frame_with_origin,
    corruption_parameters,
    corruption_rng,
    estimate_rings,
    label_map_yaml,
    severities,
)
from seal.synth.lidar import LidarSpec
from tests.conftest import SHARED_DATA  # noqa: E402

NUSCENES = SHARED_DATA / "nuscenes-keyframe"
needs_nuscenes = pytest.mark.skipif(not NUSCENES.is_dir(), reason="nuScenes keyframe fixture not present")
SPEC_BEAMS = {"light": 8, "moderate": 16, "heavy": 24}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Dataset:
    from seal.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, sequences=1, frames=2, seed=0, cameras=1, image_width=160, azimuth_steps=720,
                     progress=False)
    return open_dataset(root)


@pytest.fixture(scope="module")
def frame(synth) -> Frame:
    return synth[0]


def true_rings(xyz: np.ndarray) -> np.ndarray:
    """The synthetic beam of each point: its elevation is exactly one of the LiDAR's beam elevations (0 = top)."""
    spec = LidarSpec()
    xyz = xyz.astype(np.float64)
    el = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    beams = np.linspace(spec.fov_up_deg, spec.fov_down_deg, spec.beams)
    assert np.abs(el[:, None] - beams).min(axis=1).max() < 1e-3
    return np.abs(el[:, None] - beams).argmin(axis=1)


def names_mask(frame: Frame, label_map, names) -> np.ndarray:
    return np.isin(frame.labels, [i + 1 for i, n in enumerate(label_map.class_names) if n in names])


def assert_rows_kept(before: Frame, after: Frame, origin: np.ndarray) -> None:
    """Output points with an origin are exact copies (coordinates, intensity, labels) of their input point."""
    kept = origin >= 0
    np.testing.assert_array_equal(after.points[kept], before.points[origin[kept]])
    for field in ("labels", "raw_labels", "instances"):
        np.testing.assert_array_equal(getattr(after, field)[kept], getattr(before, field)[origin[kept]])


# ------------------------------------------------------------------------------------------ registry


def test_registry_covers_eight_corruptions_three_severities():
    from seal.evaluation import metrics as evaluation

    assert len(CORRUPTIONS) == 8 and set(CORRUPTIONS) == set(evaluation.CORRUPTIONS)
    assert SEVERITIES == ("light", "moderate", "heavy")
    assert all(set(PARAMETERS[c]) == set(SEVERITIES) for c in CORRUPTIONS)
    assert [PARAMETERS["fog"][s].beta for s in SEVERITIES] == [0.008, 0.05, 0.2]
    assert [PARAMETERS["snow"][s].rate for s in SEVERITIES] == [0.5, 1.0, 2.5]
    assert [PARAMETERS["wet_ground"][s].water_mm for s in SEVERITIES] == [0.2, 1.0, 1.2]
    assert [PARAMETERS["motion_blur"][s].sigma for s in SEVERITIES] == [0.2, 0.25, 0.3]
    assert [PARAMETERS["incomplete_echo"][s].drop for s in SEVERITIES] == [0.75, 0.85, 0.95]
    assert PARAMETERS["crosstalk"]["light"].fraction == 0.03
    with pytest.raises(ConfigError, match="beam_missing"):
        corruption_parameters("rain", "light")
    with pytest.raises(ConfigError, match="moderate"):
        corruption_parameters("fog", "extreme")
    assert corruption_parameters("fog", "light", {"beta": 0.1}).beta == 0.1
    with pytest.raises(ConfigError, match="beta"):
        corruption_parameters("fog", "light", {"alpha": 0.1})


def test_corrupted_frame_keeps_metadata(frame, synth):
    points, labels = frame.points.copy(), frame.labels.copy()
    for name in CORRUPTIONS:
        corrupt_frame(frame, name, "heavy", synth.label_map, seed=1)
    np.testing.assert_array_equal(frame.points, points)  # the input frame is never modified
    np.testing.assert_array_equal(frame.labels, labels)
    out = corrupt_frame(frame, "snow", "heavy", synth.label_map, seed=1)
    assert (out.id, out.timestamp, out.sequence, out.index) == (frame.id, frame.timestamp, frame.sequence, frame.index)
    np.testing.assert_array_equal(out.pose, frame.pose)
    assert [c.name for c in out.cameras] == [c.name for c in frame.cameras] and out.cameras[0] is frame.cameras[0]
    assert out.points.dtype == np.float32


@dataclasses.dataclass(frozen=True)
class DropParams:
    fraction: float


def _dropping() -> Corruption:
    """A corruption as a plugin writes one: drop a fraction of the points at random."""
    @severities(light=DropParams(0.1), moderate=DropParams(0.3), heavy=DropParams(0.6))
    def drop(frame: Frame, params: DropParams, rng: np.random.Generator, context: CorruptionContext) -> Corrupted:
        return Corrupted.keep(frame, np.flatnonzero(rng.random(frame.num_points) >= params.fraction))

    return drop


def test_a_corruption_registered_at_run_time_is_accepted(frame, synth, tmp_path, monkeypatch):
    monkeypatch.setattr(CORRUPTIONS, "_entries", dict(CORRUPTIONS._entries))  # undone after the test
    CORRUPTIONS.register("test_drop", _dropping())
    assert "test_drop" in CORRUPTIONS and PARAMETERS["test_drop"]["heavy"].fraction == 0.6
    kept = []
    for severity in SEVERITIES:
        out, origin = corrupt_frame_with_origin(frame, "test_drop", severity, synth.label_map, seed=3)
        assert_rows_kept(frame, out, origin)
        kept.append(set(origin.tolist()))
        fraction = PARAMETERS["test_drop"][severity].fraction
        assert abs(1 - len(origin) / frame.num_points - fraction) < 0.02
    assert kept[0] > kept[1] > kept[2]  # one stream at every severity: the drops are nested
    same = corrupt_frame(frame, "test_drop", "light", synth.label_map, seed=3, params={"fraction": 0.0})
    np.testing.assert_array_equal(same.points, frame.points)
    written = open_dataset(corrupt_dataset(synth, "test_drop", "moderate", tmp_path / "drop", seed=3, progress=False))
    assert_same_frame(written[0], corrupt_frame(synth[0], "test_drop", "moderate", synth.label_map, seed=3))

    @severities(light=DropParams(0.1), moderate=DropParams(0.3), heavy=DropParams(0.6))
    def broken(frame, params, rng, context) -> Corrupted:
        return Corrupted(frame.points, np.arange(frame.num_points - 1))

    CORRUPTIONS.register("test_broken", broken)
    with pytest.raises(SealError, match="test_broken"):
        corrupt_frame(frame, "test_broken", "light", synth.label_map)
    CORRUPTIONS.register("test_bare", lambda frame, params, rng, context: None)
    with pytest.raises(ConfigError, match="severities"):
        corrupt_frame(frame, "test_bare", "light", synth.label_map)


def test_the_stream_of_a_corruption_depends_on_its_name_not_its_place(frame, synth, monkeypatch):
    def recording(draws: list) -> Corruption:
        @severities(light=DropParams(0.1), moderate=DropParams(0.3), heavy=DropParams(0.6))
        def record(frame, params, rng, context) -> Corrupted:
            draws.append(rng.random(8))
            return Corrupted.moved(np.asarray(frame.points, dtype=np.float32))

        return record

    builtins = dict(CORRUPTIONS._entries)
    fog = corrupt_frame(frame, "fog", "light", synth.label_map, seed=4)
    runs = []
    for names in (("test_a", "test_b"), ("aaa_first", "test_b", "test_a")):  # other orders, other neighbours
        monkeypatch.setattr(CORRUPTIONS, "_entries", dict(builtins))
        draws: dict[str, list] = {}
        for name in names:
            CORRUPTIONS.register(name, recording(draws.setdefault(name, [])))
        for name in ("test_a", "test_b"):
            for severity in SEVERITIES:
                corrupt_frame(frame, name, severity, synth.label_map, seed=4)
        runs.append(draws)
        np.testing.assert_array_equal(corrupt_frame(frame, "fog", "light", synth.label_map, seed=4).points,
                                      fog.points)  # a built-in's draws do not move either
    for name in ("test_a", "test_b"):
        np.testing.assert_array_equal(np.stack(runs[0][name]), np.stack(runs[1][name]))
        assert all(np.array_equal(d, runs[0][name][0]) for d in runs[0][name])  # the same at every severity
        np.testing.assert_array_equal(runs[0][name][0], corruption_rng(frame, name, 4).random(8))
    assert not np.array_equal(runs[0]["test_a"][0], runs[0]["test_b"][0])  # each name its own stream


def test_a_registered_corruption_beyond_robo3d_is_reported_beside_the_mce():
    from seal.evaluation.metrics import ROBO3D_CORRUPTIONS, robustness_table

    results = {c: [0.7, 0.6, 0.5] for c in ROBO3D_CORRUPTIONS}
    rows = robustness_table({**results, "test_drop": [0.2, 0.2, 0.2]}, 0.75)
    assert [r["corruption"] for r in rows] == [*ROBO3D_CORRUPTIONS, "test_drop", "mean"]
    assert rows[-2]["ce"] is None and rows[-2]["rr"] is not None
    assert rows[-1] == robustness_table(results, 0.75)[-1]  # mCE, mRR and the mean over the eight only


# ------------------------------------------------------------------------------------------ beams


def test_estimate_rings_recovers_the_synthetic_beams(frame):
    truth = true_rings(frame.xyz)
    assert np.all(np.diff(truth) >= 0)  # stored beam by beam from the top beam
    est = estimate_rings(frame.xyz)
    assert np.unique(est).size == np.unique(truth).size == 32
    np.testing.assert_array_equal(est, 31 - truth)  # ring 0 is the lowest beam
    np.testing.assert_array_equal(estimate_rings(frame.xyz, beams=32), est)


@pytest.mark.parametrize("rings_given", [True, False])
def test_beam_missing_drops_whole_rings(frame, synth, rings_given):
    f = dataclasses.replace(frame, rings=31 - true_rings(frame.xyz)) if rings_given else frame
    rings = 31 - true_rings(frame.xyz)
    dropped_before: set[int] = set()
    for severity in SEVERITIES:
        out, origin = corrupt_frame_with_origin(f, "beam_missing", severity, synth.label_map, seed=0)
        survivors = set(np.unique(rings[origin]).tolist())
        dropped = set(range(32)) - survivors
        assert len(dropped) == SPEC_BEAMS[severity]
        assert dropped >= dropped_before  # severities are nested
        dropped_before = dropped
        np.testing.assert_array_equal(origin, np.flatnonzero(np.isin(rings, list(survivors))))
        assert_rows_kept(f, out, origin)
        if rings_given:
            np.testing.assert_array_equal(out.rings, rings[origin])


@needs_nuscenes
def test_beam_missing_uses_the_dataset_rings():
    nus = open_dataset(NUSCENES)
    f = nus[0]
    out = corrupt_frame(f, "beam_missing", "moderate", nus.label_map, seed=0)
    assert np.unique(out.rings).size == np.unique(f.rings).size - 16
    np.testing.assert_array_equal(out.points, f.points[np.isin(f.rings, np.unique(out.rings))])


def test_cross_sensor_removes_beams_and_halves_the_rest(frame, synth):
    rings = 31 - true_rings(frame.xyz)
    for severity in SEVERITIES:
        out, origin = corrupt_frame_with_origin(frame, "cross_sensor", severity, synth.label_map, seed=0)
        survivors = np.unique(rings[origin])
        assert survivors.size == 32 - SPEC_BEAMS[severity]
        for ring in survivors:
            members = np.flatnonzero(rings == ring)
            np.testing.assert_array_equal(origin[rings[origin] == ring], members[::2])
        remaining = np.isin(rings, survivors).sum()
        assert abs(out.num_points - remaining / 2) <= survivors.size
        assert_rows_kept(frame, out, origin)


# ------------------------------------------------------------------------------------------ point noise


def test_motion_blur_jitters_by_sigma(frame, synth):
    for severity, sigma in zip(SEVERITIES, (0.2, 0.25, 0.3), strict=True):
        out = corrupt_frame(frame, "motion_blur", severity, synth.label_map, seed=0)
        assert out.num_points == frame.num_points
        np.testing.assert_array_equal(out.labels, frame.labels)
        np.testing.assert_array_equal(out.points[:, 3], frame.points[:, 3])
        shift = (out.xyz - frame.xyz).astype(np.float64)
        assert np.all(np.abs(shift.std(axis=0) / sigma - 1) < 0.03)
        assert np.all(np.abs(shift.mean(axis=0)) < 0.02)


def test_crosstalk_perturbs_exactly_the_ignored_points(frame, synth):
    n = frame.num_points
    for severity in SEVERITIES:
        out, origin = corrupt_frame_with_origin(frame, "crosstalk", severity, synth.label_map, seed=0)
        noisy = origin < 0
        assert noisy.sum() == round(PARAMETERS["crosstalk"][severity].fraction * n)
        assert out.num_points == n
        np.testing.assert_array_equal(noisy, np.any(out.xyz != frame.xyz, axis=1))
        assert np.all(out.labels[noisy] == 0) and np.all(out.raw_labels[noisy] == 0)
        assert np.all(out.instances[noisy] == 0)
        np.testing.assert_array_equal(out.labels[~noisy], frame.labels[~noisy])
        np.testing.assert_array_equal(out.points[~noisy], frame.points[~noisy])
        assert out.points[:, 3].min() >= 0 and out.points[:, 3].max() <= 1
        moved = np.linalg.norm((out.xyz - frame.xyz)[noisy], axis=1)
        assert 3.5 < np.median(moved) < 5.5  # 3 * chi(3): median ~4.6 m


def test_incomplete_echo_drops_vehicle_points_only(frame, synth):
    vehicle = names_mask(frame, synth.label_map, VEHICLE_CLASSES)
    assert vehicle.sum() > 1000
    for severity, drop in zip(SEVERITIES, (0.75, 0.85, 0.95), strict=True):
        out, origin = corrupt_frame_with_origin(frame, "incomplete_echo", severity, synth.label_map, seed=0)
        keep_vehicle = vehicle[origin]
        np.testing.assert_array_equal(out.points[~keep_vehicle], frame.points[~vehicle])
        np.testing.assert_array_equal(out.labels[~keep_vehicle], frame.labels[~vehicle])
        assert abs(keep_vehicle.sum() / vehicle.sum() - (1 - drop)) < 1e-3
        assert_rows_kept(frame, out, origin)
    with pytest.raises(SealError, match="incomplete_echo"):
        corrupt_frame(dataclasses.replace(frame, labels=None), "incomplete_echo", "light", synth.label_map)


# ------------------------------------------------------------------------------------------ weather


@pytest.mark.parametrize("name", ["fog", "snow"])
def test_fog_and_snow_lose_points_and_create_ignored_echoes(frame, synth, name):
    rng_before = np.linalg.norm(frame.xyz, axis=1)
    survivors, created_range = [], []
    for severity in SEVERITIES:
        out, origin = corrupt_frame_with_origin(frame, name, severity, synth.label_map, seed=0)
        kept, created = origin >= 0, origin < 0
        survivors.append(int(kept.sum()))
        assert np.all(np.diff(origin[kept]) > 0)  # order kept
        np.testing.assert_array_equal(out.xyz[kept], frame.xyz[origin[kept]])
        for field in ("labels", "raw_labels", "instances"):
            np.testing.assert_array_equal(getattr(out, field)[kept], getattr(frame, field)[origin[kept]])
            assert np.all(getattr(out, field)[created] == 0)
        assert np.all(out.points[kept, 3] <= frame.points[origin[kept], 3])
        assert created.sum() > 0 and np.all((out.points[:, 3] >= 0) & (out.points[:, 3] <= 1))
        created_range.append(float(np.median(np.linalg.norm(out.xyz[created], axis=1))))
        if name == "snow":
            assert np.linalg.norm(out.xyz[created], axis=1).max() <= PARAMETERS["snow"][severity].max_flake_range
        if severity == "heavy" and name == "fog":
            assert np.median(rng_before[origin[kept]]) < 0.8 * np.median(rng_before)
    assert survivors[0] > survivors[1] > survivors[2]
    assert survivors[0] < frame.num_points
    if name == "fog":
        assert created_range[2] < created_range[1]  # denser fog echoes come from closer


def test_fog_loses_far_points_first(frame, synth):
    out, origin = corrupt_frame_with_origin(frame, "fog", "moderate", synth.label_map, seed=0)
    lost = np.setdiff1d(np.arange(frame.num_points), origin[origin >= 0])
    r = np.linalg.norm(frame.xyz, axis=1)
    assert np.median(r[lost]) > 2 * np.median(r)


def test_wet_ground_changes_only_ground(frame, synth):
    ground = names_mask(frame, synth.label_map, GROUND_CLASSES)
    lost_counts, mean_ratio = [], []
    for severity in SEVERITIES:
        out, origin = corrupt_frame_with_origin(frame, "wet_ground", severity, synth.label_map, seed=0)
        assert np.all(origin >= 0)
        on_ground = ground[origin]
        np.testing.assert_array_equal(out.points[~on_ground], frame.points[~ground])
        np.testing.assert_array_equal(out.labels, frame.labels[origin])
        np.testing.assert_array_equal(out.xyz, frame.xyz[origin])
        before = frame.points[origin[on_ground], 3]
        after = out.points[on_ground, 3]
        assert np.all(after[before > 0] < before[before > 0])
        lost = np.setdiff1d(np.flatnonzero(ground), origin)
        assert lost.size > 0
        # the removed returns are the weak ones: dimmer and farther than the ground points that stay
        r = np.linalg.norm(frame.xyz, axis=1)
        assert np.median(frame.points[lost, 3] / r[lost] ** 2) < np.percentile(before / r[origin[on_ground]] ** 2, 5)
        lost_counts.append(lost.size)
        mean_ratio.append(float(after.sum() / before.sum()))
    assert lost_counts[0] < lost_counts[1] < lost_counts[2]
    assert mean_ratio[0] > mean_ratio[1] > mean_ratio[2]


def test_wet_ground_without_labels_uses_a_plane_fit(frame, synth):
    from seal.core.config import GroundConfig
    from seal.geometry.ground import ground_mask

    bare = dataclasses.replace(frame, labels=None, raw_labels=None, instances=None)
    out, origin = corrupt_frame_with_origin(bare, "wet_ground", "heavy", synth.label_map, seed=0)
    ground = ground_mask(frame.xyz, GroundConfig(), seed=0)
    assert ground.mean() > 0.2 and out.labels is None
    np.testing.assert_array_equal(out.points[~ground[origin]], frame.points[~ground])
    assert np.all(out.points[ground[origin], 3] <= frame.points[origin[ground[origin]], 3])


# ------------------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_deterministic_by_seed(frame, synth, name):
    a = corrupt_frame(frame, name, "moderate", synth.label_map, seed=5)
    b = corrupt_frame(frame, name, "moderate", synth.label_map, seed=5)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.labels, b.labels)
    if name != "wet_ground":  # the only corruption without randomness
        c = corrupt_frame(frame, name, "moderate", synth.label_map, seed=6)
        assert a.points.shape != c.points.shape or not np.array_equal(a.points, c.points)
    other = corrupt_frame(synth[1], name, "moderate", synth.label_map, seed=5)
    assert other.id != a.id


# ------------------------------------------------------------------------------------------ on disk


def assert_same_frame(written: Frame, expected: Frame) -> None:
    assert written.id == expected.id
    np.testing.assert_array_equal(written.points, expected.points)
    np.testing.assert_allclose(written.pose, expected.pose, atol=1e-6)
    assert written.timestamp == pytest.approx(expected.timestamp, abs=1e-6)
    if expected.labels is None:
        assert written.labels is None
    else:
        np.testing.assert_array_equal(written.labels, expected.labels)
        np.testing.assert_array_equal(written.instances, expected.instances)


def test_corrupt_dataset_round_trip_synthetic(synth, tmp_path):
    out = corrupt_dataset(synth, "snow", "heavy", tmp_path / "snow", seed=2, progress=False)
    back = open_dataset(out)
    assert back.label_map.class_names == synth.label_map.class_names and len(back) == len(synth)
    for i in range(len(synth)):
        expected = corrupt_frame(synth[i], "snow", "heavy", synth.label_map, seed=2)
        assert_same_frame(back[i], expected)
        np.testing.assert_array_equal(back[i].raw_labels, expected.raw_labels)
    record = json.loads((out / "seal_corruption.json").read_text())
    assert (record["corruption"], record["severity"], record["seed"], record["complete"]) == ("snow", "heavy", 2, True)
    assert record["source"] == str(synth.root.resolve())
    assert not list(out.rglob("*.png")) and not list(out.rglob("*.tmp*"))
    corrupt_dataset(synth, "snow", "heavy", out, seed=2, progress=False)  # same corruption: rewritten in place
    with pytest.raises(SealError, match="snow:heavy"):
        corrupt_dataset(synth, "fog", "heavy", out, seed=2, progress=False)
    with pytest.raises(ConfigError, match="cross_sensor"):
        corrupt_dataset(synth, "hail", "heavy", tmp_path / "hail", progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SealError, match="empty output folder"):
        corrupt_dataset(synth, "fog", "light", tmp_path / "busy", progress=False)


def labelled_copy(dataset: Dataset, raw_names: bool) -> Dataset:
    """``dataset`` with random lidarseg-like labels (raw ids, or train ids only) on every frame."""
    lmap = dataset.label_map
    seqs = []
    for seq in dataset.sequences:
        def load(i: int, seq: Sequence = seq) -> Frame:
            f = seq[i]
            raw = np.random.default_rng(i).integers(0, lmap.lookup.shape[0], f.num_points)
            inst = np.random.default_rng(i + 1).integers(0, 5, f.num_points)
            return dataclasses.replace(f, labels=lmap.to_train(raw), raw_labels=raw if raw_names else None,
                                       instances=inst)
        seqs.append(Sequence(seq.name, seq.frame_names, load, seq.point_count, True, True, seq.camera_names))
    return Dataset(root=dataset.root, kind=dataset.kind, sequences=seqs, label_map=lmap)


@needs_nuscenes
@pytest.mark.parametrize("raw_names", [True, False])
def test_corrupt_dataset_round_trip_nuscenes(tmp_path, raw_names):
    nus = labelled_copy(open_dataset(NUSCENES), raw_names)
    out = corrupt_dataset(nus, "fog", "moderate", tmp_path / "fog", seed=0, progress=False)
    back = open_dataset(out)
    assert back.kind == "semantickitti" and back.label_map.name == "nuscenes"
    expected = corrupt_frame(nus[0], "fog", "moderate", nus.label_map, seed=0)
    assert np.any(expected.labels > 0) and np.any(expected.labels == 0)
    assert_same_frame(back[0], expected)


@needs_nuscenes
def test_corrupt_dataset_unlabelled_nuscenes(tmp_path):
    nus = open_dataset(NUSCENES)
    out = corrupt_dataset(nus, "beam_missing", "heavy", tmp_path / "bm", seed=0, progress=False)
    expected = corrupt_frame(nus[0], "beam_missing", "heavy", nus.label_map, seed=0)
    assert_same_frame(open_dataset(out)[0], expected)
    with pytest.raises(SealError, match="incomplete_echo"):
        corrupt_dataset(nus, "incomplete_echo", "light", tmp_path / "ie", progress=False)


@pytest.mark.parametrize("name", ["semantickitti", "nuscenes"])
def test_label_map_yaml_round_trip(tmp_path, name):
    lmap = load_label_map(name)
    path = tmp_path / "label_map.yaml"
    path.write_text(label_map_yaml(lmap))
    back = load_label_map(path)
    assert back.class_names == lmap.class_names and back.raw_names == lmap.raw_names
    np.testing.assert_array_equal(back.colors, lmap.colors)
    np.testing.assert_array_equal(back.lookup, lmap.lookup)
