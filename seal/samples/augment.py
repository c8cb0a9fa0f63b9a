"""Augmentations of docs/METHOD.md §7, each driven by an explicit numpy Generator (reproducible, resumable).

3D: rotation about z, random flips of x and y, random cuboid drop that keeps >= N pairings per image.
2D: random resized crop (bounded attempts: the reference's loop can spin forever) and horizontal flip, applied
to the image, its superpixel map and the pairings together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Crop:
    """A crop box (top, left, height, width) of the source image resized to ``out`` (height, width)."""

    top: int
    left: int
    height: int
    width: int
    out: tuple[int, int]
    flip: bool = False


def rotate_flip(xyz: np.ndarray, rng: np.random.Generator, rotate: bool = True, flip: bool = True) -> np.ndarray:
    """Points rotated by a uniform angle about z and mirrored in x and/or y with probability 1/2 each."""
    out = np.array(xyz, dtype=np.float32, copy=True)
    if rotate:
        theta = rng.uniform(0.0, 2.0 * np.pi)
        c, s = np.cos(theta), np.sin(theta)
        x, y = out[:, 0].copy(), out[:, 1].copy()
        out[:, 0], out[:, 1] = c * x - s * y, s * x + c * y
    if flip:
        if rng.random() < 0.5:
            out[:, 0] = -out[:, 0]
        if rng.random() < 0.5:
            out[:, 1] = -out[:, 1]
    return out


def cuboid_drop(xyz: np.ndarray, rng: np.random.Generator, pair_point: np.ndarray | None = None,
                pair_image: np.ndarray | None = None, num_images: int = 0, min_pairings: int = 1024,
                size_range: tuple[float, float] = (0.05, 0.4), attempts: int = 5) -> np.ndarray:
    """Keep-mask of the points outside a random cuboid centred on a random point.

    The cuboid's side is a random fraction of the cloud's extent per axis. A cuboid that would leave an image
    with fewer than ``min_pairings`` paired points is rejected (another is tried, up to ``attempts``); if none
    fits, nothing is dropped.
    """
    keep_all = np.ones(xyz.shape[0], dtype=bool)
    if xyz.shape[0] == 0:
        return keep_all
    # one contiguous array per axis: reductions along the short axis of an Nx3 (often strided) view are ~40x
    # slower; the element-wise arithmetic, hence the result, is the same
    axes = np.ascontiguousarray(xyz.T)
    extent = axes.max(axis=1) - axes.min(axis=1)
    before = (np.bincount(pair_image, minlength=num_images) if pair_image is not None and num_images
              else None)
    for _ in range(attempts):
        centre = xyz[rng.integers(0, xyz.shape[0])]
        half = extent * rng.uniform(*size_range, size=3) / 2
        inside = np.abs(axes[0] - centre[0]) <= half[0]
        for axis in range(1, axes.shape[0]):
            inside &= np.abs(axes[axis] - centre[axis]) <= half[axis]
        keep = ~inside
        if before is None:
            return keep
        after = np.bincount(pair_image[keep[pair_point]], minlength=num_images)
        if np.all((after >= min_pairings) | (after >= before)):
            return keep
    return keep_all


def random_resized_crop(height: int, width: int, out: tuple[int, int], rng: np.random.Generator,
                        scale: tuple[float, float] = (0.3, 1.0), ratio: tuple[float, float] = (14 / 9, 17 / 9),
                        attempts: int = 10, hflip: bool = True) -> Crop:
    """A crop of area fraction in ``scale`` and aspect (w/h) in ``ratio``, tried ``attempts`` times at most;
    then the largest centred crop of the clamped aspect (never an endless loop)."""
    area = height * width
    log_ratio = np.log(ratio)
    flip = bool(hflip and rng.random() < 0.5)
    for _ in range(attempts):
        target = area * rng.uniform(*scale)
        aspect = float(np.exp(rng.uniform(*log_ratio)))
        w = int(round(np.sqrt(target * aspect)))
        h = int(round(np.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return Crop(top, left, h, w, out, flip)
    aspect = float(np.clip(width / height, *ratio))
    w, h = (width, int(round(width / aspect))) if width / height <= aspect else (int(round(height * aspect)), height)
    w, h = min(w, width), min(h, height)
    return Crop((height - h) // 2, (width - w) // 2, h, w, out, flip)


def apply_crop_image(image: np.ndarray, crop: Crop) -> np.ndarray:
    """Crop and bilinearly resize an HxWx3 uint8 image; returns float32 3xhxw in 0..1."""
    from PIL import Image

    patch = image[crop.top:crop.top + crop.height, crop.left:crop.left + crop.width]
    resized = np.asarray(Image.fromarray(patch).resize((crop.out[1], crop.out[0]), Image.BILINEAR))
    if crop.flip:
        resized = resized[:, ::-1]
    return np.ascontiguousarray(resized.transpose(2, 0, 1), dtype=np.float32) / 255.0


def apply_crop_labels(labels: np.ndarray, crop: Crop) -> np.ndarray:
    """Crop and nearest-neighbour resize an integer map (superpixels) exactly like the image."""
    rows, cols = _source_pixels(crop)
    out = labels[rows[:, None], cols[None, :]]
    return out[:, ::-1].copy() if crop.flip else out


def _source_pixels(crop: Crop) -> tuple[np.ndarray, np.ndarray]:
    out_h, out_w = crop.out
    rows = crop.top + np.minimum(((np.arange(out_h) + 0.5) * crop.height / out_h).astype(int), crop.height - 1)
    cols = crop.left + np.minimum(((np.arange(out_w) + 0.5) * crop.width / out_w).astype(int), crop.width - 1)
    return rows, cols


def apply_crop_pairings(row: np.ndarray, col: np.ndarray, crop: Crop) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keep mask, new row, new col) of pixel pairings under a crop: pairings outside the box are dropped."""
    keep = ((row >= crop.top) & (row < crop.top + crop.height) & (col >= crop.left)
            & (col < crop.left + crop.width))
    out_h, out_w = crop.out
    new_row = np.minimum(((row[keep] - crop.top + 0.5) * out_h / crop.height).astype(np.int64), out_h - 1)
    new_col = np.minimum(((col[keep] - crop.left + 0.5) * out_w / crop.width).astype(np.int64), out_w - 1)
    if crop.flip:
        new_col = out_w - 1 - new_col
    return keep, new_row, new_col
