"""The packaged few-shot split files follow their rules, and `select_frames` applies them (or the rule) to datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from seal.core.errors import ConfigError, DataError
from seal.core.frame import Dataset, Sequence
from seal.core.labelmap import load_label_map
from seal.data.splits import (
    SEMANTICKITTI_TRAIN_FRAMES,
    is_official,
    load_split,
    select_frames,
    semantickitti_train_frames,
    train_sequences,
    val_sequences,
)

STEPS = {1: 100, 5: 20, 10: 10, 25: 4, 100: 1}


def test_nuscenes_lists() -> None:
    train, val = train_sequences("nuscenes"), val_sequences("nuscenes")
    assert len(train) == len(set(train)) == 700 and len(val) == len(set(val)) == 150
    assert not set(train) & set(val)
    assert train == sorted(train) and train[0] == "scene-0001"  # nuscenes-devkit: sorted(set(detect + track))
    assert all(name.startswith("scene-") and len(name) == 10 for name in train + val)


@pytest.mark.parametrize("fraction,size", [(1, 7), (5, 35), (10, 70), (25, 175), (100, 700)])
def test_nuscenes_fraction_is_every_kth_scene(fraction: int, size: int) -> None:
    split = load_split("nuscenes", fraction)
    assert len(split) == size
    assert split == train_sequences("nuscenes")[:: STEPS[fraction]]


def test_semantickitti_lists() -> None:
    frames = semantickitti_train_frames()
    assert len(frames) == sum(SEMANTICKITTI_TRAIN_FRAMES.values()) == 19130
    one = load_split("semantickitti", 1)
    assert len(one) == 192
    assert one[:3] == ["00/000000", "00/000100", "00/000200"]
    assert one[45:47] == ["00/004500", "01/000059"]  # 00 has 4541 frames: the count runs on into 01
    assert one == frames[::100]
    for fraction, size in [(5, 957), (10, 1913), (25, 4783), (100, 19130)]:
        split = load_split("semantickitti", fraction)
        assert len(split) == size and split == frames[:: STEPS[fraction]]
    assert not any(f.startswith("08/") for f in frames)
    assert val_sequences("semantickitti") == ["08"]


def test_bad_fraction_and_kind() -> None:
    with pytest.raises(ConfigError, match=r"--fraction.*1, 5, 10, 25, 100"):
        load_split("nuscenes", 50)
    with pytest.raises(ConfigError, match="--fraction"):
        load_split("semantickitti", "one")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="waymo"):
        load_split("waymo", 1)


def test_split_files_ship_with_the_package() -> None:
    folder = Path(__file__).resolve().parents[1] / "seal" / "data" / "splits"
    names = {p.name for p in folder.glob("*.txt")}
    assert {"nuscenes_train.txt", "nuscenes_val.txt", "semantickitti_train_1.txt"} <= names
    for p in folder.glob("*.txt"):
        text = p.read_text()
        assert text.endswith("\n") and "\r" not in text and "\n\n" not in text


# ----------------------------------------------------------------------------------------------- select_frames


def fake_dataset(kind: str, sequences: dict[str, list[str]]) -> Dataset:
    """A Dataset whose frames are never loaded: only names and counts matter to split selection."""
    def make(name: str, frames: list[str]) -> Sequence:
        return Sequence(name, frames, load=lambda i: None, point_count=lambda i: 0, has_labels=True,  # type: ignore
                        has_poses=True, camera_names=[])

    seqs = [make(name, frames) for name, frames in sequences.items()]
    return Dataset(root=Path("/fake"), kind=kind, sequences=seqs, label_map=load_label_map(kind))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from seal.data import open_dataset
    from seal.synth import generate_dataset

    root = generate_dataset(tmp_path_factory.mktemp("splits") / "ds", sequences=2, frames=10, seed=0, cameras=1,
                            image_width=160, azimuth_steps=720, progress=False)
    return open_dataset(root)


def test_select_frames_rule_on_synthetic(synthetic) -> None:
    assert synthetic.kind == "semantickitti" and len(synthetic) == 20
    assert not is_official(synthetic)  # names 00/01 but not the official frame counts
    assert select_frames(synthetic, 25) == [0, 4, 8, 12, 16]
    assert select_frames(synthetic, 10) == [0, 10]
    assert select_frames(synthetic, 5) == [0] and select_frames(synthetic, 1) == [0]
    assert select_frames(synthetic, 100) == list(range(20))
    # forcing the official list instead: seq 01 entries continue the count of 00's 4541 frames
    assert select_frames(synthetic, 25, rule_only=False) == [0, 4, 8, 13, 17]
    with pytest.raises(ConfigError, match="--fraction"):
        select_frames(synthetic, 3)


def test_select_frames_official_semantickitti() -> None:
    ds = fake_dataset("semantickitti", {"04": [f"{i:06d}" for i in range(271)], "08": ["000000", "000001"]})
    assert is_official(ds)
    # 04 starts at global position 11104 of the sorted training list: 1% picks 04/000096 and 04/000196
    assert select_frames(ds, 1) == [96, 196]
    assert select_frames(ds, 100) == list(range(271))  # 08 (validation) is never selected
    ids = [ds.sequences[0].frame_id(i) for i in select_frames(ds, 25)]
    assert set(ids) <= set(load_split("semantickitti", 25)) and len(ids) == 68


def test_select_frames_nuscenes() -> None:
    train = train_sequences("nuscenes")
    ds = fake_dataset("nuscenes", {train[30]: ["a", "b"], train[0]: ["c"], train[40]: ["d", "e", "f"]})
    assert is_official(ds)
    assert select_frames(ds, 5) == [2, 3, 4, 5]  # train[0] and train[40]; train[30] is not in 5% (k = 20)...
    assert select_frames(ds, 10) == [0, 1, 2, 3, 4, 5]  # ...but it is in 10% (k = 10)
    lonely = fake_dataset("nuscenes", {train[1]: ["a"]})
    with pytest.raises(DataError, match="rule_only"):
        select_frames(lonely, 1)
    assert select_frames(lonely, 1, rule_only=True) == [0]
    other = fake_dataset("nuscenes", {"site-b": ["a"], "site-a": ["b", "c"], "site-c": ["d"], "site-d": ["e"],
                                      "site-e": ["f"]})
    assert not is_official(other)
    assert select_frames(other, 25) == [1, 2, 5]  # the rule by scene-name order: site-a and site-e


def test_select_frames_real_fixtures(nuscenes_root, semantickitti_tiny) -> None:
    from seal.data import open_dataset

    kitti = open_dataset(semantickitti_tiny)
    assert select_frames(kitti, 1) == [0]
    nus = open_dataset(nuscenes_root)
    names = [s.name for s in nus.sequences]
    assert set(names) <= set(train_sequences("nuscenes")) | set(val_sequences("nuscenes"))
    assert names == ["scene-0553"] and is_official(nus)  # a v1.0-mini scene that belongs to the official val
    with pytest.raises(DataError, match="no frame"):
        select_frames(nus, 100)  # so no training split selects it...
    assert select_frames(nus, 1, rule_only=True) == [0]  # ...unless the rule alone is asked for
