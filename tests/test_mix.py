"""Pretraining on several datasets: per-epoch draws by weight, unique augmentations, and the CLI's summary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seal.core.errors import ConfigError
from seal.samples.mix import MixedPairSamples, draws_per_epoch


class _Pairs:
    """Stands in for one dataset's `PairSamples`: records the keys it is asked for."""

    def __init__(self, size: int, name: str) -> None:
        self.items = [(0, t) for t in range(size)]
        self.skipped_empty, self.name, self.epoch = 0, name, 0
        self.dataset = None

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, key):
        return (self.name, *key)


def test_draws_follow_the_weights_and_fill_the_epoch():
    assert draws_per_epoch([6, 2], [6, 2]) == [6, 2]          # default weights: every pair once
    assert draws_per_epoch([6, 2], [1, 3]) == [2, 6]          # 8 samples split 1:3
    assert draws_per_epoch([5, 5, 5], [1, 1, 1]) == [5, 5, 5]
    counts = draws_per_epoch([10, 3, 7], [0.2, 0.5, 0.3])
    assert sum(counts) == 20 and counts == [4, 10, 6]
    assert draws_per_epoch([100, 1], [1000, 1e-6]) == [100, 1]  # a tiny positive weight still draws once


def test_slots_are_unique_draws_and_repeat_with_fresh_augmentations():
    mix = MixedPairSamples([("a", _Pairs(6, "a")), ("b", _Pairs(2, "b"))], [1, 3], seed=4)
    assert len(mix) == 8 and mix.counts == [2, 6]
    slots = mix.slots(0)
    assert slots.shape == (8, 3)
    assert np.bincount(slots[:, 0]).tolist() == [2, 6]
    b = slots[slots[:, 0] == 1]
    assert sorted(b[:, 1].tolist()) == [0, 0, 0, 1, 1, 1]             # dataset b (2 pairs) cycled 3 times
    assert len({tuple(r) for r in b[:, 1:].tolist()}) == 6            # ... each repeat a new (pair, repeat) key
    assert np.array_equal(mix.slots(0), MixedPairSamples(
        [("a", _Pairs(6, "a")), ("b", _Pairs(2, "b"))], [1, 3], seed=4).slots(0))  # a function of (seed, epoch)
    assert not np.array_equal(mix.slots(0)[:, 1], mix.slots(1)[:, 1])
    d, pair, repeat = slots[5]
    assert mix[(0, 5)] == ("ab"[d], 0, pair, repeat)                   # the part is asked for (epoch, pair, repeat)
    assert mix.drawn(0, np.arange(8)) == [2, 6]


def test_bad_weights_are_one_line():
    parts = [("a", _Pairs(3, "a")), ("b", _Pairs(3, "b"))]
    with pytest.raises(ConfigError, match=r"data.mix_weights has 3 value\(s\) for 2 dataset"):
        MixedPairSamples(parts, [1, 2, 3], 0)
    with pytest.raises(ConfigError, match="must be >= 0 and not all 0"):
        MixedPairSamples(parts, [0, 0], 0)


def test_pretrain_on_a_kitti_and_a_nuscenes_layout_dataset(tmp_path):
    from seal.cli.main import main
    from seal.synth import generate_dataset

    kitti = generate_dataset(tmp_path / "k", sequences=1, frames=3, seed=1, cameras=1, image_width=320,
                             azimuth_steps=512, progress=False)
    nusc = generate_dataset(tmp_path / "n", sequences=1, frames=3, seed=2, cameras=1, image_width=320,
                            azimuth_steps=512, layout="nuscenes", progress=False)
    run = tmp_path / "run"
    assert main(["pretrain", str(kitti), str(nusc), "--config", "tiny", "train.max_steps=2", "train.batch_size=2",
                 f"train.run_dir={run}", "data.mix_weights=[1,1]", "train.log_every=1"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    rows = {r["format"]: r for r in summary["datasets"]}
    assert set(rows) == {"semantickitti", "nuscenes"}
    assert sum(r["samples_seen"] for r in rows.values()) == 4            # 2 steps x batch 2
    pairs = [rows["semantickitti"]["pairs"], rows["nuscenes"]["pairs"]]
    assert [rows["semantickitti"]["samples_per_epoch"], rows["nuscenes"]["samples_per_epoch"]] == \
        draws_per_epoch(pairs, [1, 1])
