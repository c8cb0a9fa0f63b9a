"""Precomputed superpixels: integer label maps made elsewhere (e.g. the SEEM / X-Decoder / OpenSeeD maps the Seal
authors distribute), one PNG or NPY file per image, found by a path pattern.

The pattern is relative to ``folder``, without extension, and may use ``{sequence}``, ``{camera}``,
``{frame_name}``, ``{frame_id}`` and ``{image_stem}`` (the stem of the image file: the nuScenes convention, where
maps are named after the camera image, e.g. ``pattern="{image_stem}"``). ``.png`` is tried first, then ``.npy``.
PNGs are read at their own bit depth, so 16-bit maps keep ids above 255.

Every value is a segment by default (``none_value=None``); producers that mark uncovered pixels with a value
(often 0) set ``none_value`` to it and those pixels become uncovered. Negative values are uncovered either way.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.config import PrecomputedConfig, SuperpixelConfig
from seal.core.errors import ConfigError, DataError
from seal.superpixels.base import SUPERPIXELS, Superpixelizer, read_label_png

EXTENSIONS = (".png", ".npy")
PLACEHOLDERS = ("sequence", "camera", "frame_name", "frame_id", "image_stem")


def _read_map(path: Path) -> np.ndarray:
    """An integer label map from a PNG (8/16/32-bit, single channel) or an NPY file."""
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(path, f"cannot be read as a NumPy array ({err})") from err
    else:
        array = read_label_png(path, "label map", "save label maps as 8/16-bit grayscale PNGs or .npy arrays")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(path, f"holds a {array.ndim}-d array of shape {array.shape}, not an HxW label map")
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(path, f"holds {array.dtype} values, not integer segment ids",
                        "store label maps as integer arrays")
    return array.astype(np.int64)


_D = PrecomputedConfig()  # the one place the defaults are written


@SUPERPIXELS.register("precomputed")
class PrecomputedSuperpixels(Superpixelizer):
    """Reads one label map per image from ``folder`` following ``pattern`` (see the module docstring)."""

    name = "precomputed"

    @classmethod
    def from_config(cls, cfg: SuperpixelConfig) -> PrecomputedSuperpixels:
        if not cfg.precomputed.folder:
            raise ConfigError("superpixels.method=precomputed needs superpixels.precomputed.folder=FOLDER")
        return cls(**asdict(cfg.precomputed))

    def __init__(self, folder: str | Path, pattern: str = _D.pattern, none_value: int | None = _D.none_value) -> None:
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise ConfigError(f"superpixels.precomputed.folder: {self.folder} is not a folder; point it at the "
                              "folder holding the precomputed label maps")
        try:
            pattern.format(**dict.fromkeys(PLACEHOLDERS, "x"))
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(f"superpixels.precomputed.pattern {pattern!r} is not valid ({err}); use the "
                              f"placeholders {', '.join('{' + p + '}' for p in PLACEHOLDERS)}") from err
        self.pattern = pattern
        self.none_value = None if none_value is None else int(none_value)

    def params(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "pattern": self.pattern, "none_value": self.none_value}

    def path_for(self, context: dict[str, Any] | None) -> Path:
        """The map file for the image ``context`` describes (the .png if present, else the .npy)."""
        context = dict(context or {})
        image_path = context.get("image_path")
        if image_path is not None:
            context.setdefault("image_stem", Path(image_path).stem)
        try:
            stem = self.pattern.format(**context)
        except KeyError as err:
            raise ConfigError(f"superpixels.precomputed.pattern {self.pattern!r} uses {{{err.args[0]}}}, which is "
                              f"unknown for frame {context.get('frame_id')!r} (image_stem needs the image's path)"
                              ) from err
        base = self.folder / stem
        candidates = [base.with_name(base.name + ext) for ext in EXTENSIONS]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise DataError(candidates[0], f"no precomputed superpixel map (nor {candidates[1].name})",
                        f"superpixels.precomputed.pattern is {self.pattern!r} under {self.folder}; fix the "
                        "pattern or produce the maps first")

    def segment(self, image: np.ndarray, context: dict[str, Any] | None = None) -> np.ndarray:
        path = self.path_for(context)
        labels = _read_map(path)
        if labels.shape != image.shape[:2]:
            raise DataError(path, f"is a {labels.shape[0]}x{labels.shape[1]} (HxW) map but the image is "
                            f"{image.shape[0]}x{image.shape[1]}", "maps must have the image's own resolution")
        if self.none_value is not None:
            labels = np.where(labels == self.none_value, -1, labels)
        return np.where(labels < 0, -1, labels)
