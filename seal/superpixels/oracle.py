"""Oracle superpixels (synthetic data only): the segments a *perfect* semantic VFM would give, read from the maps
`seal synth --segments` writes beside the images. An upper bound on what a vision foundation model could give.

The maps (``sequences/NN/segments_K/NNNNNN.png`` beside ``image_K/``, 16-bit) follow the panoptic convention:
one segment per stuff class per image (road, sidewalk, building, vegetation, pole, ...), one per thing instance
(car, truck, person), 0 (none) for the sky; see `seal.synth.segments`.

A degraded oracle sweeps between perfect and SLIC-like segments: ``split_rate`` of the segments are cut in two
along a random line through their centroid (over-segmentation, as SLIC), then ``merge_rate`` of the segments are
merged with a random adjacent segment (under-segmentation). The choices are seeded by ``seed`` and the frame and
camera, so a map is the same on every run and every machine.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.config import OracleConfig, SuperpixelConfig
from seal.core.errors import ConfigError, DataError
from seal.superpixels.base import SUPERPIXELS, Superpixelizer, read_label_png

_IMAGE_DIR = re.compile(r"image_(\d+)$")
_HINT = ("superpixels.method=oracle reads the oracle segment maps of synthetic data: generate the dataset with "
         "`seal synth --segments`, or re-run the same `seal synth` command with --segments to add them")

_D = OracleConfig()  # the one place the defaults are written


def oracle_map_path(image_path: str | Path) -> Path:
    """Where the oracle map of a camera image lives: ``.../image_K/NAME.png`` -> ``.../segments_K/NAME.png``."""
    image_path = Path(image_path)
    match = _IMAGE_DIR.match(image_path.parent.name)
    if match is None:
        raise DataError(image_path, "is not in an image_K folder of the SemanticKITTI layout, where oracle segment "
                        "maps are stored (segments_K beside image_K)", _HINT)
    return image_path.parent.parent / f"segments_{match.group(1)}" / f"{image_path.stem}.png"


def read_oracle_map(path: Path) -> np.ndarray:
    """An oracle map as int64 (0 = none); a missing or unreadable file is a DataError naming it."""
    if not path.is_file():
        raise DataError(path, "no oracle segment map", _HINT)
    return read_label_png(path, "oracle segment map", _HINT).astype(np.int64)


def class_map_path(image_path: str | Path) -> Path:
    """Where the true class map of a camera image lives: ``.../image_K/NAME.png`` -> ``.../classes_K/NAME.png``."""
    segments = oracle_map_path(image_path)
    return segments.parent.parent / segments.parent.name.replace("segments_", "classes_") / segments.name


def read_class_map(image_path: str | Path, label_map: Any, shape: tuple[int, int]) -> np.ndarray:
    """The train id (``label_map``'s) of every pixel of a camera image, int64 [H, W]: what the oracle teachers
    read. A missing, unreadable or wrongly sized map is a DataError naming the file."""
    path = class_map_path(image_path)
    if not path.is_file():
        raise DataError(path, "no true class map (teacher.backbone=oracle* reads them)", _HINT)
    raw = read_label_png(path, "class map", _HINT)
    if raw.shape != tuple(shape):
        raise DataError(path, f"class map is {raw.shape[1]}x{raw.shape[0]}, its image {shape[1]}x{shape[0]}", _HINT)
    return np.asarray(label_map.to_train(raw.astype(np.int64)), dtype=np.int64)


def split_segments(seg: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Cut round(rate x K) random segments of ``seg`` (0 = none) in two along a random line through each one's
    centroid; the new halves get fresh ids. Returns a new map."""
    out = np.array(seg, dtype=np.int64)
    ids = np.unique(out[out > 0])
    count = int(round(rate * len(ids)))
    if count == 0:
        return out
    chosen = np.sort(rng.choice(ids, size=count, replace=False))
    angles = rng.uniform(0.0, np.pi, size=count)
    flat, width = out.reshape(-1), out.shape[1]
    next_id = int(out.max()) + 1
    for sid, angle in zip(chosen, angles, strict=True):
        idx = np.flatnonzero(flat == sid)
        rows, cols = np.divmod(idx, width)
        side = (cols - cols.mean()) * np.cos(angle) + (rows - rows.mean()) * np.sin(angle) > 0
        if side.any() and not side.all():
            flat[idx[side]] = next_id
            next_id += 1
    return out


def merge_segments(seg: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Merge round(rate x K) random segments of ``seg`` (0 = none) each with a random 4-adjacent segment (merges
    chain: a segment merged into one that is itself merged ends up in one segment with both). Returns a new map."""
    out = np.array(seg, dtype=np.int64)
    ids = np.unique(out[out > 0])
    count = int(round(rate * len(ids)))
    if count == 0:
        return out
    chosen = np.sort(rng.choice(ids, size=count, replace=False))
    picks = rng.random(count)
    a = np.concatenate([out[:, :-1].ravel(), out[:-1, :].ravel()])
    b = np.concatenate([out[:, 1:].ravel(), out[1:, :].ravel()])
    keep = (a != b) & (a > 0) & (b > 0)
    pairs = np.unique(np.sort(np.stack([a[keep], b[keep]], axis=1), axis=1), axis=0)
    parent = np.arange(int(out.max()) + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for sid, pick in zip(chosen, picks, strict=True):
        neighbours = np.unique(np.concatenate([pairs[pairs[:, 0] == sid, 1], pairs[pairs[:, 1] == sid, 0]]))
        if len(neighbours) == 0:
            continue
        other = int(neighbours[min(int(pick * len(neighbours)), len(neighbours) - 1)])
        ra, rb = root(int(sid)), root(other)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(len(parent))])
    return roots[out]


@SUPERPIXELS.register("oracle")
class OracleSuperpixels(Superpixelizer):
    """The oracle segment maps of synthetic data (`seal synth --segments`): an upper bound on what a perfect VFM
    could give, optionally degraded by seeded random splits and merges (see the module docstring)."""

    name = "oracle"

    @classmethod
    def from_config(cls, cfg: SuperpixelConfig) -> OracleSuperpixels:
        return cls(**asdict(cfg.oracle))

    def __init__(self, split_rate: float = _D.split_rate, merge_rate: float = _D.merge_rate,
                 seed: int = _D.seed) -> None:
        self.split_rate, self.merge_rate, self.seed = float(split_rate), float(merge_rate), int(seed)

    def params(self) -> dict[str, Any]:
        return {"split_rate": self.split_rate, "merge_rate": self.merge_rate, "seed": self.seed}

    def check(self, context: dict[str, Any]) -> None:
        path = self._path(context)
        if not path.is_file():
            raise DataError(path, "no oracle segment map", _HINT)

    def _path(self, context: dict[str, Any] | None) -> Path:
        image_path = (context or {}).get("image_path")
        if image_path is None:
            raise ConfigError(f"superpixels.method=oracle needs the image's path to find its oracle map, and camera "
                              f"{(context or {}).get('camera')!r} of frame {(context or {}).get('frame_id')!r} has "
                              "no image file")
        return oracle_map_path(image_path)

    def rng(self, context: dict[str, Any] | None) -> np.random.Generator:
        """The generator of one image's splits and merges: seeded by ``seed``, the frame id and the camera."""
        context = context or {}
        keys = [zlib.crc32(str(context.get(k, "")).encode()) for k in ("frame_id", "camera")]
        return np.random.default_rng([self.seed, *keys])

    def segment(self, image: np.ndarray, context: dict[str, Any] | None = None) -> np.ndarray:
        path = self._path(context)
        seg = read_oracle_map(path)
        if seg.shape != image.shape[:2]:
            raise DataError(path, f"is a {seg.shape[0]}x{seg.shape[1]} (HxW) map but the image is "
                            f"{image.shape[0]}x{image.shape[1]}", "the map must have the image's own resolution")
        if self.split_rate > 0 or self.merge_rate > 0:
            rng = self.rng(context)
            seg = split_segments(seg, self.split_rate, rng)
            seg = merge_segments(seg, self.merge_rate, rng)
        return np.where(seg > 0, seg, -1)


__all__ = ["OracleSuperpixels", "merge_segments", "oracle_map_path", "read_oracle_map", "split_segments"]
