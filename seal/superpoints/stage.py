"""`seal superpoints`: segment ids for every frame pair (t, t+gap), one .npz per pair, cached and shardable."""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from seal.core.atomic import atomic_path
from seal.core.config import SuperpointConfig
from seal.core.errors import ConfigError, DataError
from seal.core.frame import Dataset, Sequence
from seal.geometry.segments import SuperpointPair, cluster_pair, relative_transform
from seal.stages.cache import StageCache
from seal.stages.runner import StageReport, Task, intact_zip, run_items

STAGE = "superpoints"


def superpoint_cache(cache_root: Path, cfg: SuperpointConfig) -> StageCache:
    return StageCache(cache_root, STAGE, "hdbscan", asdict(cfg))


def superpoint_path(cache: StageCache, frame_id: str) -> Path:
    """The file of the pair that starts at ``frame_id``."""
    *folders, name = frame_id.split("/")
    return cache.path(*folders, f"{name}.npz")


def save_pair(path: Path, pair: SuperpointPair, first_id: str, second_id: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, first=pair.first, second=pair.second, first_id=first_id, second_id=second_id)


def load_pair(path: Path, first_points: int | None = None, second_points: int | None = None) -> SuperpointPair:
    """Read a cached pair, checked against the point counts of the frames it belongs to."""
    if not path.is_file():
        raise DataError(path, "superpoint file not found", "run `seal superpoints` for this dataset first")
    try:
        with np.load(path) as data:
            pair = SuperpointPair(first=data["first"], second=data["second"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(path, f"is not a readable superpoint file ({type(err).__name__}: {err})".split("\n")[0],
                        "run `seal superpoints` on this dataset again: it redoes corrupt files") from None
    for ids, count, which in ((pair.first, first_points, "first"), (pair.second, second_points, "second")):
        if count is not None and ids.shape[0] != count:
            raise DataError(path, f"holds {ids.shape[0]} ids for the {which} frame, which has {count} points",
                            "the dataset changed since the cache was built; delete this file")
    return pair


def frame_pairs(sequence: Sequence, gap: int) -> list[int]:
    """Start indices t of the pairs (t, t+gap) of a sequence whose two scans both hold points (an empty scan,
    a dropped LiDAR packet, has nothing to cluster or contrast; `empty_pairs` counts what is left out)."""
    return [t for t in range(max(len(sequence) - gap, 0))
            if sequence.point_count(t) > 0 and sequence.point_count(t + gap) > 0]


def empty_pairs(sequence: Sequence, gap: int) -> int:
    """How many pairs (t, t+gap) of a sequence `frame_pairs` leaves out because a scan is empty."""
    return max(len(sequence) - gap, 0) - len(frame_pairs(sequence, gap))


def run_superpoints(dataset: Dataset, cfg: SuperpointConfig, cache_root: Path, shard: tuple[int, int] = (0, 1),
                    fail_fast: bool = False, progress: bool = True) -> StageReport:
    """Compute the missing pairs of this shard; sequences without poses cannot be paired and are reported."""
    if cfg.gap < 1:
        raise ConfigError(f"superpoints.gap={cfg.gap}: the gap between paired frames must be >= 1")
    cache = superpoint_cache(cache_root, cfg)
    cache.prepare()
    tasks = []
    unposed = [s.name for s in dataset.sequences if not s.has_poses]
    empty = 0
    for seq in dataset.sequences:
        if not seq.has_poses:
            continue
        empty += empty_pairs(seq, cfg.gap)
        for t in frame_pairs(seq, cfg.gap):
            tasks.append(_pair_task(seq, t, cfg, cache))
    report = run_items(STAGE, cache.folder, tasks, shard=shard, fail_fast=fail_fast, progress=progress)
    if empty:
        report.skip("frame pairs with an empty scan", empty)
    if unposed:
        report.skip("sequences without ego poses (their frames cannot be paired in time)", len(unposed))
    return report


def _pair_task(seq: Sequence, t: int, cfg: SuperpointConfig, cache: StageCache) -> Task:
    target = superpoint_path(cache, seq.frame_id(t))

    def run() -> list[int]:
        first, second = seq.pair(t, cfg.gap)
        pair = cluster_pair(first.xyz, second.xyz, relative_transform(first.pose, second.pose), cfg)
        save_pair(target, pair, first.id, second.id)
        return [pair.num_segments]

    return Task(name=f"{seq.frame_id(t)} + {cfg.gap}", outputs=[target], run=run, intact=intact_zip)
