"""`seal superpixels`: one uint16 label map per camera image, cached under a folder keyed by method + params."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seal.core.frame import Camera, Dataset, Frame
from seal.stages.cache import StageCache
from seal.stages.runner import StageReport, Task, intact_png, run_items
from seal.superpixels.base import Superpixelizer, load_segments, save_segments

STAGE = "superpixels"


def superpixel_cache(cache_root: Path, method: Superpixelizer) -> StageCache:
    return StageCache(cache_root, STAGE, method.name, method.params())


def superpixel_path(cache: StageCache, frame_id: str, camera: str) -> Path:
    """Where the map of one camera image of one frame lives inside a stage folder."""
    return cache.path(*frame_id.split("/"), f"{camera}.png")


def load_frame_superpixels(cache: StageCache, frame: Frame) -> list[np.ndarray]:
    """The cached maps of every camera of ``frame``, in camera order."""
    return [load_segments(superpixel_path(cache, frame.id, c.name)) for c in frame.cameras]


def image_context(frame: Frame, camera: Camera) -> dict[str, Any]:
    """What a method learns about the image it segments (precomputed and oracle maps are found from it)."""
    return {"frame_id": frame.id, "camera": camera.name, "image_path": camera.image_path,
            "sequence": frame.sequence, "frame_name": frame.id.split("/")[-1]}


def _frame_task(dataset: Dataset, index: int, name: str, cameras: list[str], cache: StageCache,
                method: Superpixelizer) -> Task:
    outputs = [superpixel_path(cache, name, c) for c in cameras]

    def run() -> list[int]:
        frame = dataset[index]
        counts = []
        for camera in frame.cameras:
            target = superpixel_path(cache, frame.id, camera.name)
            if target.exists():
                continue
            segments = method(camera.image, image_context(frame, camera))
            save_segments(target, segments)
            counts.append(int(segments.max()))
        return counts

    return Task(name=name, outputs=outputs, run=run, intact=intact_png)


def run_superpixels(dataset: Dataset, method: Superpixelizer, cache_root: Path, shard: tuple[int, int] = (0, 1),
                    fail_fast: bool = False, progress: bool = True) -> StageReport:
    """Compute the missing maps of this shard's frames; finished maps are skipped, failures reported."""
    cache = superpixel_cache(cache_root, method)
    tasks, first = [], None
    for seq, index in zip(dataset.sequences, dataset.sequence_starts, strict=True):
        for local in range(len(seq)):
            name = seq.frame_id(local)
            cameras = seq.cameras_of(local)
            if cameras:
                tasks.append(_frame_task(dataset, index + local, name, cameras, cache, method))
                first = index + local if first is None else first
    if first is not None and type(method).check is not Superpixelizer.check:
        frame = dataset[first]
        method.check(image_context(frame, frame.cameras[0]))
    cache.prepare()
    return run_items(STAGE, cache.folder, tasks, shard=shard, fail_fast=fail_fast, progress=progress)
