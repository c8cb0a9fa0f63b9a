"""Pictures: what happened, to look at rather than read. Every figure is written atomically as a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seal.core.atomic import atomic_path
from seal.core.frame import Frame
from seal.core.labelmap import LabelMap
from seal.core.projection import pair_points

# nuScenes' six cameras read best as the driver sees them: front row, then back row.
_RING_ORDER = ["CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_LEFT", "CAM_BACK", "CAM_BACK_RIGHT"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: str | Path, dpi: int = 110) -> Path:
    """Write a matplotlib figure to ``out`` (PNG) atomically and close it."""
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return out


def camera_layout(frame: Frame) -> list[int]:
    """Camera indices in display order (nuScenes ring as seen from the car; otherwise as stored)."""
    names = [c.name for c in frame.cameras]
    if set(names) <= set(_RING_ORDER):
        return sorted(range(len(names)), key=lambda i: _RING_ORDER.index(names[i]))
    return list(range(len(names)))


def show_pairs(frame: Frame, out: str | Path, min_depth: float = 1.0, max_depth: float = 60.0,
               point_size: float = 1.5) -> Path:
    """The frame's camera images with the paired LiDAR points drawn on them, coloured by depth."""
    plt = _pyplot()
    if not frame.cameras:
        from seal.core.errors import DataError

        raise DataError(frame.id, "has no cameras to draw points on")
    pairs = pair_points(frame.xyz, frame.cameras, min_depth=min_depth)
    order = camera_layout(frame)
    ncols = min(3, len(order))
    nrows = int(np.ceil(len(order) / ncols))
    aspect = frame.cameras[0].height / frame.cameras[0].width
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols + 1.0, nrows * (5.5 * aspect + 0.35) + 0.4),
                             squeeze=False, layout="constrained")
    scatter = None
    for slot, ax in enumerate(axes.flat):
        ax.axis("off")
        if slot >= len(order):
            continue
        index = order[slot]
        camera = frame.cameras[index]
        mine = pairs.for_camera(index)
        ax.imshow(camera.image)
        scatter = ax.scatter(mine.col + 0.5, mine.row + 0.5, c=np.minimum(mine.depth, max_depth), s=point_size,
                             cmap="turbo", vmin=min_depth, vmax=max_depth, linewidths=0)
        ax.set_title(f"{camera.name}: {len(mine)} points", fontsize=9)
    fig.suptitle(f"{frame.id}: {frame.num_points} points, {len(pairs)} point-pixel pairings", fontsize=11)
    if scatter is not None:
        fig.colorbar(scatter, ax=axes.ravel().tolist(), shrink=0.6, label="depth (m)")
    return save_figure(fig, out)


def _label_colors(frame: Frame, label_map: LabelMap) -> np.ndarray | None:
    if frame.labels is None:
        return None
    return label_map.color_of(frame.labels) / 255.0


def show_frame(frame: Frame, out: str | Path, label_map: LabelMap, min_depth: float = 1.0,
               bev_range: float = 50.0, point_size: float = 2.0) -> Path:
    """A bird's-eye view coloured by label (by height when unlabelled) next to the cameras with the points."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    colors = _label_colors(frame, label_map)
    order = camera_layout(frame)
    ncam_cols = min(3, len(order)) if order else 0
    ncam_rows = int(np.ceil(len(order) / ncam_cols)) if order else 0
    aspect = frame.cameras[0].height / frame.cameras[0].width if order else 1.0
    fig = plt.figure(figsize=(7 + 5.0 * ncam_cols, max(7.0, ncam_rows * 5.0 * aspect + 1.5)), layout="constrained")
    grid = fig.add_gridspec(max(ncam_rows, 1), 1 + ncam_cols, width_ratios=[7] + [5] * ncam_cols)
    bev = fig.add_subplot(grid[:, 0])
    xyz = frame.xyz
    near = (np.abs(xyz[:, 0]) < bev_range) & (np.abs(xyz[:, 1]) < bev_range)
    order_z = np.argsort(xyz[near, 2])  # draw high points last so poles and crowns stay visible
    sel = np.flatnonzero(near)[order_z]
    if colors is None:
        bev.scatter(xyz[sel, 0], xyz[sel, 1], c=xyz[sel, 2], s=0.5, cmap="viridis", linewidths=0)
    else:
        bev.scatter(xyz[sel, 0], xyz[sel, 1], c=colors[sel], s=0.5, linewidths=0)
        present = np.unique(frame.labels)
        bev.legend(handles=[Patch(color=label_map.color_of(np.array([c]))[0] / 255.0,
                                  label=label_map.name_of(int(c))) for c in present],
                   loc="upper left", fontsize=7, ncol=2, framealpha=0.8)
    bev.set_aspect("equal")
    bev.set_xlim(-bev_range, bev_range)
    bev.set_ylim(-bev_range, bev_range)
    bev.set_xlabel("x forward (m)")
    bev.set_ylabel("y left (m)")
    bev.set_title(f"{frame.id}: bird's-eye view, {frame.num_points:,} points")
    if order:
        pairs = pair_points(xyz, frame.cameras, min_depth=min_depth)
        for slot, index in enumerate(order):
            ax = fig.add_subplot(grid[slot // ncam_cols, 1 + slot % ncam_cols])
            ax.axis("off")
            camera = frame.cameras[index]
            mine = pairs.for_camera(index)
            ax.imshow(camera.image)
            if colors is None:
                ax.scatter(mine.col + 0.5, mine.row + 0.5, c=mine.depth, s=point_size, cmap="turbo", linewidths=0)
            else:
                ax.scatter(mine.col + 0.5, mine.row + 0.5, c=colors[mine.point], s=point_size, linewidths=0)
            ax.set_title(f"{camera.name}: {len(mine):,} points", fontsize=9)
    return save_figure(fig, out)
