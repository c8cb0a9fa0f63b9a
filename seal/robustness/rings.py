"""Beam (ring) index of every point of a sweep, for the corruptions that drop beams when a dataset gives no rings."""

from __future__ import annotations

import numpy as np


def _filter(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Centred convolution with an odd kernel, same length as ``values`` (also when shorter than the kernel)."""
    return np.convolve(values, kernel, mode="full")[kernel.size // 2:kernel.size // 2 + values.size]


def estimate_rings(xyz: np.ndarray, beams: int | None = None, resolution: float = 0.01,
                   min_separation: float | None = None, min_range: float = 2.0) -> np.ndarray:
    """Beam (ring) index of each point from its elevation angle; ring 0 is the lowest beam (nuScenes' order).

    Elevations (degrees) of the points beyond ``min_range`` (near points see the beam origins' offsets) are
    histogrammed at ``resolution``; peaks of the lightly smoothed histogram at least ``min_separation`` apart are
    beam candidates, ranked by the points within half a separation. With ``beams`` the strongest ``beams``
    candidates are the beams (separation default: 3/4 of the mean beam spacing), else every candidate holding
    at least 5 % of the 90th-percentile mass and 3 points (separation default 0.2 degrees). Every point goes to
    the nearest beam. Exact on sensors whose beams share one origin (the synthetic LiDAR); on real sensors with
    per-beam offsets or a tilted spin axis it is approximate: use the dataset's rings where it has them.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    el = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    far = np.linalg.norm(xyz, axis=1) > min_range
    sample = el[far] if far.sum() >= 3 else el
    if min_separation is None:
        spread = np.percentile(sample, 99.5) - np.percentile(sample, 0.5)
        min_separation = max(0.2, 0.75 * spread / (beams - 1)) if beams and beams > 1 else 0.2
    lo = float(sample.min())
    bins = np.clip(((sample - lo) / resolution).astype(np.int64), 0, int(180.0 / resolution))
    hist = np.bincount(bins).astype(np.float64)
    smooth = _filter(hist, np.exp(-0.5 * (np.arange(-9, 10) / 3.0) ** 2))
    half = max(int(round(min_separation / resolution)), 1)
    mass = _filter(hist, np.ones(2 * (half // 2) + 1))
    suppressed = np.zeros(hist.shape[0], dtype=bool)
    peaks = []
    for b in np.flatnonzero(hist)[np.argsort(-smooth[hist > 0], kind="stable")]:
        if not suppressed[b]:
            peaks.append(b)
            suppressed[max(b - half + 1, 0):b + half] = True
    peaks = np.asarray(peaks)
    strength = mass[peaks]
    if beams is not None:
        peaks = peaks[np.argsort(-strength, kind="stable")[:beams]]
    else:
        peaks = peaks[strength >= max(3.0, 0.05 * np.percentile(strength, 90))]
    centres = np.sort(lo + (peaks + 0.5) * resolution)
    return np.searchsorted((centres[1:] + centres[:-1]) / 2.0, el).astype(np.int64)


__all__ = ["estimate_rings"]
