"""`seal show superpixels`: segments tinted over each camera image with their boundaries drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seal.core.config import SuperpixelConfig
from seal.core.frame import Dataset
from seal.superpixels import NONE, build_superpixelizer, load_segments
from seal.superpixels.stage import superpixel_cache, superpixel_path


def segment_palette(count: int, seed: int = 0) -> np.ndarray:
    """Distinct-enough random colours for ids 0..count (id 0 = NONE is black)."""
    colors = np.random.default_rng(seed).uniform(0.15, 1.0, size=(count + 1, 3))
    colors[NONE] = 0.0
    return colors


def overlay(image: np.ndarray, segments: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """The image with segments tinted and boundaries in white; uncovered pixels darkened."""
    from skimage.segmentation import find_boundaries

    tinted = segment_palette(int(segments.max()))[segments]
    out = (1 - alpha) * image / 255.0 + alpha * tinted
    out[segments == NONE] = image[segments == NONE] / 255.0 * 0.35
    out[find_boundaries(segments, mode="inner")] = 1.0
    return np.clip(out, 0, 1)


def show_superpixels(dataset: Dataset, index: int, cfg: SuperpixelConfig, cache_root: Path, out: Path) -> Path:
    """One panel per camera: cached maps when present, otherwise computed now (and not cached)."""
    from seal.viz.plot import _pyplot, camera_layout, save_figure

    plt = _pyplot()
    method = build_superpixelizer(cfg)
    cache = superpixel_cache(cache_root, method)
    frame = dataset[index]
    order = camera_layout(frame)
    if not order:
        from seal.core.errors import DataError

        raise DataError(frame.id, "has no cameras, so no superpixels")
    ncols = min(3, len(order))
    nrows = int(np.ceil(len(order) / ncols))
    aspect = frame.cameras[0].height / frame.cameras[0].width
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, nrows * (5.5 * aspect + 0.35) + 0.4),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for slot, cam_index in enumerate(order):
        camera = frame.cameras[cam_index]
        path = superpixel_path(cache, frame.id, camera.name)
        if path.exists():
            segments, source = load_segments(path), "cached"
        else:
            context = {"frame_id": frame.id, "camera": camera.name, "image_path": camera.image_path,
                       "sequence": frame.sequence, "frame_name": frame.id.split("/")[-1]}
            segments, source = method(camera.image, context), "computed now"
        ax = axes.flat[slot]
        ax.imshow(overlay(camera.image, segments))
        uncovered = float((segments == NONE).mean())
        ax.set_title(f"{camera.name}: {int(segments.max())} segments, {100 * uncovered:.0f}% uncovered ({source})",
                     fontsize=9)
    fig.suptitle(f"{frame.id}: {method.name} superpixels {method.params()}", fontsize=10)
    return save_figure(fig, out)
