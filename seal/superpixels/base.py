"""The superpixel interface and the id rules every method obeys (docs/METHOD.md §3).

A label map is uint16, one value per pixel: ``NONE`` (0) marks pixels no segment covers (they never form a
superpixel), segments are 1..K, densely numbered. Methods return any integer map with negative values for
uncovered pixels; `finalize` applies the rules, so no method can wrap ids at 255 or collide with "none".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.atomic import atomic_path
from seal.core.config import SuperpixelConfig
from seal.core.errors import ConfigError, DataError
from seal.core.registry import Registry

NONE = 0
IN_MEMORY = "<in-memory model>"  # what the cache key says for a model handed over in memory
MAX_SEGMENTS = np.iinfo(np.uint16).max

# name -> Superpixelizer subclass; built-ins register beside their class, plugins through "seal.superpixels"
SUPERPIXELS: Registry[type[Superpixelizer]] = Registry("superpixel method", "seal.superpixels",
                                                       field=(SuperpixelConfig, "method"),
                                                       option="superpixels.method")


class Superpixelizer(ABC):
    """Turns an RGB image into a segment map. Subclasses set ``name``, implement `segment`, and build themselves
    from the superpixel config in `from_config` (a plugin method reads its own keys from ``cfg.options``)."""

    name: str = ""

    @classmethod
    def from_config(cls, cfg: SuperpixelConfig) -> Superpixelizer:
        """This method configured from ``cfg``: by default ``cls(**cfg.options)`` (a plugin's own options)."""
        return cls(**cfg.options)

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Every parameter that changes the output (it keys the cache folder)."""

    @abstractmethod
    def segment(self, image: np.ndarray, context: dict[str, Any] | None = None) -> np.ndarray:
        """An HxW integer map: equal values = one segment, negative = uncovered.

        ``context`` carries where the image came from (frame id, camera name, image path) for methods that
        need it, such as precomputed maps.
        """

    def check(self, context: dict[str, Any]) -> None:
        """Raise a SealError naming the file when this method's own inputs for the image ``context`` describes
        are absent. The stage calls it once, on the first image, when a method overrides it: inputs missing
        altogether (maps never generated) then stop the run with one line instead of one failure per image."""
        return None  # most methods need nothing but the image

    def __call__(self, image: np.ndarray, context: dict[str, Any] | None = None) -> np.ndarray:
        raw = self.segment(image, context)
        if raw.shape != image.shape[:2]:
            raise ValueError(f"{self.name} returned a {raw.shape} map for a {image.shape[:2]} image")
        return finalize(raw)


def finalize(raw: np.ndarray) -> np.ndarray:
    """Dense uint16 relabelling: negative -> NONE, every distinct non-negative value -> 1..K."""
    raw = np.asarray(raw)
    covered = raw >= 0
    out = np.zeros(raw.shape, dtype=np.uint16)
    if covered.any():
        values, dense = np.unique(raw[covered], return_inverse=True)
        if values.shape[0] > MAX_SEGMENTS:
            raise ValueError(f"{values.shape[0]} segments do not fit in uint16 ids (max {MAX_SEGMENTS})")
        out[covered] = dense.reshape(-1).astype(np.uint16) + 1
    return out


def paint_masks(masks: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Overlapping binary masks -> one segment map: larger masks painted first so smaller ones win.

    Pixels no mask covers stay -1 (uncovered), never id 0 of the largest mask (the reference's bug).
    """
    masks = [np.asarray(m, dtype=bool) for m in masks]
    out = np.full(shape, -1, dtype=np.int64)
    areas = np.array([m.sum() for m in masks])
    for rank, index in enumerate(np.argsort(-areas, kind="stable")):
        out[masks[index]] = rank
    return out


def save_segments(path: Path, segments: np.ndarray) -> None:
    """Write a uint16 label map as a PNG, atomically: 8-bit when every id fits (<= 255, as with SLIC's ~150
    segments), else 16-bit. `load_segments` returns the same uint16 map either way.

    Pretraining decodes a map for every camera of every sample, so the file is written for decoding speed: 8 bits
    (half the bytes to inflate) and zlib level 1 (inflates ~1.5x faster than level 6) read a 1600x900 SLIC map
    ~2.8x faster than a 16-bit level-6 file, for ~25 KB instead of ~20 KB on disk (bench/bench_loader.py).
    """
    from PIL import Image

    if segments.dtype != np.uint16:
        raise ValueError(f"superpixel maps are uint16, got {segments.dtype}")
    small = segments.size > 0 and int(segments.max()) <= np.iinfo(np.uint8).max
    with atomic_path(path) as tmp:
        Image.fromarray(segments.astype(np.uint8) if small else segments).save(tmp, format="PNG", compress_level=1)


LABEL_MODES = ("I;16", "I;16B", "I;16L", "L", "I", "P")  # Pillow modes of single-channel label images


def read_label_png(path: Path, what: str, hint: str | None = None) -> np.ndarray:
    """A single-channel (8/16/32-bit) PNG label map as stored: the one reader of cached, precomputed and oracle
    maps. A wrong mode, a truncated or corrupt file is a DataError naming the file, ``what`` it should be and the
    ``hint``."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode not in LABEL_MODES:
                raise DataError(path, f"is a {img.mode} image, not a single-channel {what}", hint)
            return np.asarray(img)
    except (OSError, ValueError, SyntaxError) as err:  # Pillow's errors for unreadable / truncated files
        raise DataError(path, f"is not a readable {what} ({err})", hint) from None


def load_segments(path: Path) -> np.ndarray:
    """Read a label map written by `save_segments` (or any 8/16-bit single-channel PNG) as uint16."""
    if not path.is_file():
        raise DataError(path, "superpixel map not found", "run `seal superpixels` for this dataset first")
    array = read_label_png(path, "superpixel map", "run `seal superpixels` on this dataset again: it redoes corrupt "
                                                   "files")
    if array.min() < 0 or array.max() > MAX_SEGMENTS:
        raise DataError(path, "holds ids outside 0..65535")
    return array.astype(np.uint16)


def checkpoint_key(path: Path | None) -> str:
    """A weights file as a cache key: its path, size and mtime (a replaced file gives a new key)."""
    if path is None:
        return IN_MEMORY
    stat = path.stat()
    return f"{path} ({stat.st_size} bytes, mtime {stat.st_mtime_ns})"


def load_sam_weights(model: Any, checkpoint: str | Path, device: str, family: str, option: str, suffix: str,
                     arch_key: str, arch: str, choices: str) -> None:
    """Load a SAM / SAM 2 checkpoint (a state dict, or the official ``{"model": ...}`` layout) into ``model``: an
    unreadable file is a DataError naming it, a file of another architecture one line naming ``arch_key``."""
    import torch

    try:
        state = torch.load(checkpoint, map_location=device, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise DataError(checkpoint, f"cannot be read as a {family} checkpoint ({err})",
                        f"set {option} to a {family} {suffix} weight file") from err
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # the official layout
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ConfigError(f"{option}: {checkpoint} does not fit a {family} {arch} model; set {arch_key} to the "
                          f"checkpoint's architecture ({choices}) ({str(err)[:300]})") from err

