"""`seal superpixels`: one uint16 label map per camera image, cached under a folder keyed by method + params."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.atomic import write_text_atomic
from seal.core.errors import DataError
from seal.core.frame import Camera, Dataset, Frame
from seal.core.io import image_size
from seal.stages.cache import StageCache
from seal.stages.runner import StageReport, Task, intact_png, run_items
from seal.superpixels.base import Superpixelizer, load_segments, save_segments

STAGE = "superpixels"


def superpixel_cache(cache_root: Path, method: Superpixelizer) -> StageCache:
    return StageCache(cache_root, STAGE, method.name, method.params())


def superpixel_path(cache: StageCache, frame_id: str, camera: str) -> Path:
    """Where the map of one camera image of one frame lives inside a stage folder."""
    return cache.path(*frame_id.split("/"), f"{camera}.png")


def input_record(target: Path) -> Path:
    """The fingerprint of the image a map was computed from, beside the map (``CAMERA.input.json``)."""
    return target.with_name(target.stem + ".input.json")


def fingerprint(image: Path, root: Path) -> dict[str, Any]:
    """A cheap fingerprint of an image file: its path (relative to the dataset), size, mtime and a hash of its
    first 4 KiB (so a copied dataset, with new mtimes, is still recognised as unchanged)."""
    stat = image.stat()
    with open(image, "rb") as handle:
        head = hashlib.sha1(handle.read(4096)).hexdigest()[:16]
    try:
        name = str(image.resolve().relative_to(root.resolve()))
    except ValueError:
        name = str(image)
    return {"image": name, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head": head}


def input_changed(target: Path, root: Path) -> bool:
    """Whether the image the map ``target`` was computed from differs now from its recorded fingerprint (maps
    without a record, from before fingerprints were kept, count as unchanged)."""
    try:
        recorded = json.loads(input_record(target).read_text())
        image = Path(recorded["image"])
        image = image if image.is_absolute() else root / image
        stat = image.stat()
    except (OSError, ValueError, KeyError, TypeError):
        return input_record(target).exists()  # a record naming an image that is gone or unreadable: redo
    if stat.st_size != recorded.get("bytes"):
        return True
    if stat.st_mtime_ns == recorded.get("mtime_ns"):
        return False
    return fingerprint(image, root)["head"] != recorded.get("head")


def check_images(frame: Frame) -> None:
    """A DataError naming the first image of ``frame`` whose size is not the one its calibration states (read from
    the header): a stage checks its first frame before starting, so a dataset whose images were all resized is one
    error, not one failure per item."""
    for camera in frame.cameras:
        if camera.image_path is not None and camera._image is None:
            width, height = image_size(camera.image_path)
            if (width, height) != (camera.width, camera.height):
                raise DataError(camera.image_path, f"is {width}x{height} px but its calibration is for "
                                                   f"{camera.width}x{camera.height} px (camera {camera.name})",
                                "use the original images, or recalibrate for the resized ones")


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
            if camera.image_path is not None:
                write_text_atomic(input_record(target), json.dumps(fingerprint(camera.image_path, dataset.root)))
            counts.append(int(segments.max()))
        return counts

    return Task(name=name, outputs=outputs, run=run, intact=intact_png,
                changed=lambda target: input_changed(target, dataset.root))


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
    if first is not None:  # the first frame's cameras, before anything is written: a systematic fault is one error
        frame = dataset[first]
        check_images(frame)
        if type(method).check is not Superpixelizer.check:
            method.check(image_context(frame, frame.cameras[0]))
    cache.prepare()
    return run_items(STAGE, cache.folder, tasks, shard=shard, fail_fast=fail_fast, progress=progress)
