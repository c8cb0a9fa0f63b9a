"""Label maps (docs/METHOD.md §1 merges) and the typed config."""

from __future__ import annotations

import numpy as np
import pytest

from seal.core.errors import ConfigError, DataError
from seal.core.schemas import PretrainSchema as SealConfig
from seal.core.settings import load_config
from seal.data import load_label_map

KITTI_19 = ["car", "bicycle", "motorcycle", "truck", "other-vehicle", "person", "bicyclist", "motorcyclist",
            "road", "parking", "sidewalk", "other-ground", "building", "fence", "vegetation", "trunk", "terrain",
            "pole", "traffic-sign"]
NUSC_16 = ["barrier", "bicycle", "bus", "car", "construction_vehicle", "motorcycle", "pedestrian", "traffic_cone",
           "trailer", "truck", "driveable_surface", "other_flat", "sidewalk", "terrain", "manmade", "vegetation"]


def test_semantickitti_map_merges_moving_classes():
    lm = load_label_map("semantickitti")
    assert list(lm.class_names) == KITTI_19
    tid = {n: i + 1 for i, n in enumerate(KITTI_19)}
    cases = {252: "car", 253: "bicyclist", 254: "person", 255: "motorcyclist", 256: "other-vehicle",
             257: "other-vehicle", 259: "other-vehicle", 258: "truck", 60: "road", 10: "car", 81: "traffic-sign"}
    raw = np.array(list(cases))
    np.testing.assert_array_equal(lm.to_train(raw), [tid[cases[r]] for r in raw])
    np.testing.assert_array_equal(lm.to_train(np.array([0, 1, 52, 99, 1234, 65535])), 0)
    assert lm.colors.shape == (19, 3) and lm.color_of(np.array([0]))[0].tolist() == [0, 0, 0]


def test_nuscenes_map_has_16_classes():
    lm = load_label_map("nuscenes")
    assert list(lm.class_names) == NUSC_16
    assert lm.to_train(np.array([17]))[0] == NUSC_16.index("car") + 1
    assert lm.to_train(np.array([0, 31, 29]))[0] == 0


def test_custom_label_map_file_and_errors(tmp_path):
    path = tmp_path / "poss.yaml"
    path.write_text("name: poss\nclasses:\n  - {name: person, color: [1, 2, 3]}\n"
                    "raw_to_train:\n  4: person\n  5: ignore\n")
    lm = load_label_map(path)
    np.testing.assert_array_equal(lm.to_train(np.array([4, 5, 6])), [1, 0, 0])
    path.write_text("name: bad\nclasses:\n  - {name: person, color: [1, 2, 3]}\nraw_to_train:\n  4: people\n")
    with pytest.raises(DataError, match="unknown class 'people'"):
        load_label_map(path)
    with pytest.raises(DataError, match="no packaged label map"):
        load_label_map("waymo-nope")


def test_config_overrides_and_unknown_keys(tmp_path):
    cfg = load_config(SealConfig, overrides=["voxel.size=0.05", "projection.min_depth=2"])
    assert cfg.voxel.size == 0.05 and cfg.projection.min_depth == 2.0 and cfg.voxel.mode == "cylindrical"
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("voxel:\n  mode: cartesian\n")
    assert load_config(SealConfig, yaml_file, ["voxel.size=0.2"]).voxel.mode == "cartesian"
    with pytest.raises(ConfigError, match="voxel.sise"):
        load_config(SealConfig, overrides=["voxel.sise=1"])
    with pytest.raises(ConfigError, match="voxel.size"):
        load_config(SealConfig, overrides=["voxel.size=big"])
    yaml_file.write_text("voxels:\n  size: 1\n")
    with pytest.raises(ConfigError, match="voxels"):
        load_config(SealConfig, yaml_file)
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(SealConfig, overrides=["voxel.size"])
