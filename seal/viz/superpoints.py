"""`seal show superpoints`: both frames of a pair in frame t's coordinates, one colour per segment id."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seal.core.config import SuperpointConfig
from seal.core.errors import DataError
from seal.core.frame import Dataset
from seal.geometry.segments import GROUND, IGNORE, cluster_pair, relative_transform
from seal.superpoints.stage import load_pair, superpoint_cache, superpoint_path


def show_superpoints(dataset: Dataset, index: int, cfg: SuperpointConfig, cache_root: Path, out: Path,
                     bev_range: float = 40.0) -> Path:
    """Side-by-side bird's-eye views of frames t and t+gap; the same object has the same colour in both."""
    from seal.viz.plot import _pyplot, save_figure
    from seal.viz.superpixels import segment_palette

    plt = _pyplot()
    seq_index, t = dataset.locate(index)
    seq = dataset.sequences[seq_index]
    if t + cfg.gap >= len(seq):
        raise DataError(seq.name, f"frame {t} has no partner {cfg.gap} frames later (the sequence has {len(seq)})",
                        "pick an earlier --frame")
    first, second = seq.pair(t, cfg.gap)
    to_first = relative_transform(first.pose, second.pose)
    path = superpoint_path(superpoint_cache(cache_root, cfg), first.id)
    if path.exists():
        pair, source = load_pair(path, first.num_points, second.num_points), "cached"
    else:
        pair, source = cluster_pair(first.xyz, second.xyz, to_first, cfg), "computed now"
    palette = segment_palette(int(max(pair.first.max(), pair.second.max(), 0)) + 1, seed=3)
    fig, axes = plt.subplots(1, 2, figsize=(16, 8.4), layout="constrained")
    moved = second.xyz @ to_first[:3, :3].T + to_first[:3, 3]
    for ax, xyz, ids, frame in ((axes[0], first.xyz, pair.first, first), (axes[1], moved, pair.second, second)):
        colors = np.where((ids == IGNORE)[:, None], 0.85, palette[np.maximum(ids, 0)])
        colors[ids == GROUND] = 0.6
        order = np.argsort(ids != IGNORE, kind="stable")  # ignored points underneath
        ax.scatter(xyz[order, 0], xyz[order, 1], c=colors[order], s=1.5, linewidths=0)
        ax.set_aspect("equal")
        ax.set_xlim(-bev_range, bev_range)
        ax.set_ylim(-bev_range, bev_range)
        n = int(np.unique(ids[ids > GROUND]).shape[0])
        ax.set_title(f"{frame.id}: {n} segments (ground grey, ignored light)", fontsize=10)
        ax.set_xlabel(f"x (m, in {first.id}'s LiDAR frame)")
    fig.suptitle(f"superpoints of the pair ({first.id}, +{cfg.gap}), {pair.num_segments} segments ({source})")
    return save_figure(fig, out)
