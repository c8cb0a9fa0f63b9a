"""Pictures of results: predictions against ground truth (bird's-eye view and camera), and the paper's
Figure-1-style feature-similarity map (cosine similarity of every point's feature to one query point)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seal.core.config import VoxelConfig
from seal.core.frame import Frame
from seal.core.labelmap import LabelMap
from seal.core.projection import pair_points
from seal.models.backbones import SparseBackbone
from seal.models.segmentation import SegmentationModel, predict_frame
from seal.samples.frames import voxel_sample


def _bev(ax, xyz: np.ndarray, colors: np.ndarray, title: str, extent: float) -> None:
    near = np.flatnonzero((np.abs(xyz[:, 0]) < extent) & (np.abs(xyz[:, 1]) < extent))
    near = near[np.argsort(xyz[near, 2])]
    ax.scatter(xyz[near, 0], xyz[near, 1], c=colors[near], s=0.8, linewidths=0)
    ax.set_aspect("equal")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _on_camera(ax, frame: Frame, colors: np.ndarray, title: str) -> None:
    camera = frame.cameras[0]
    pairs = pair_points(frame.xyz, [camera])
    ax.imshow(camera.image)
    ax.scatter(pairs.col + 0.5, pairs.row + 0.5, c=colors[pairs.point], s=3, linewidths=0)
    ax.set_title(title, fontsize=10)
    ax.axis("off")


def show_predictions(model: SegmentationModel, frame: Frame, label_map: LabelMap, voxel: VoxelConfig, out: Path,
                     device: torch.device | str = "cpu", extent: float = 40.0) -> Path:
    """Ground truth | prediction | errors in bird's-eye view, and ground truth / prediction on the first camera."""
    from matplotlib.patches import Patch

    from seal.viz.plot import _pyplot, save_figure

    plt = _pyplot()
    pred = predict_frame(model, voxel_sample(frame, voxel), torch.device(device))
    gt = frame.labels if frame.labels is not None else np.zeros(frame.num_points, np.int64)
    gt_c, pred_c = label_map.color_of(gt) / 255.0, label_map.color_of(pred) / 255.0
    wrong = (pred != gt) & (gt > 0)
    err_c = np.where(wrong[:, None], [0.85, 0.1, 0.1], [0.75, 0.75, 0.75])
    err_c[gt == 0] = [1.0, 1.0, 1.0]
    rows = 2 if frame.cameras else 1
    fig = plt.figure(figsize=(18, 6.3 + 3.8 * (rows - 1)), layout="constrained")
    grid = fig.add_gridspec(rows, 3, height_ratios=[6.3, 3.8][:rows])
    valid = gt > 0
    accuracy = float((pred[valid] == gt[valid]).mean()) if valid.any() else float("nan")
    _bev(fig.add_subplot(grid[0, 0]), frame.xyz, gt_c, "ground truth", extent)
    _bev(fig.add_subplot(grid[0, 1]), frame.xyz, pred_c, "prediction", extent)
    _bev(fig.add_subplot(grid[0, 2]), frame.xyz, err_c, f"errors in red (point accuracy {100 * accuracy:.1f}%)",
         extent)
    if frame.cameras:
        _on_camera(fig.add_subplot(grid[1, 0:1]), frame, gt_c, "ground truth on the camera")
        _on_camera(fig.add_subplot(grid[1, 1:2]), frame, pred_c, "prediction on the camera")
        legend_ax = fig.add_subplot(grid[1, 2])
        legend_ax.axis("off")
        present = np.unique(np.concatenate([gt[gt > 0], pred]))
        legend_ax.legend(handles=[Patch(color=label_map.color_of(np.array([c]))[0] / 255.0,
                                        label=label_map.name_of(int(c))) for c in present],
                         loc="center", ncol=2, fontsize=10, title="classes")
    fig.suptitle(f"{frame.id}: predictions vs ground truth")
    return save_figure(fig, out)


@torch.no_grad()
def point_features(backbone: SparseBackbone, frame: Frame, voxel: VoxelConfig, device: torch.device | str = "cpu"
                   ) -> np.ndarray:
    """L2-normalised backbone features of every point (voxel features mapped back)."""
    backbone.eval()
    sample = voxel_sample(frame, voxel)
    feats = backbone(sample.backbone_input().to(device))
    feats = torch.nn.functional.normalize(feats, dim=1).cpu().numpy()
    return feats[sample.inverse]


def show_similarity(backbones: dict[str, SparseBackbone], frame: Frame, voxel: VoxelConfig, out: Path, query: int,
                    extent: float = 40.0) -> Path:
    """For each backbone, the cosine similarity of every point's feature to the query point's (a star)."""
    from seal.viz.plot import _pyplot, save_figure

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(backbones), figsize=(6.5 * len(backbones), 6.6), layout="constrained",
                             squeeze=False)
    for ax, (name, backbone) in zip(axes[0], backbones.items(), strict=True):
        feats = point_features(backbone, frame, voxel)
        sim = feats @ feats[query]
        # post-ReLU features make every cosine >= 0: stretch each panel's range so structure stays visible
        low = float(np.percentile(sim, 2))
        order = np.argsort(sim)
        near = order[(np.abs(frame.xyz[order, 0]) < extent) & (np.abs(frame.xyz[order, 1]) < extent)]
        ax.scatter(frame.xyz[near, 0], frame.xyz[near, 1], c=(sim[near] - low) / max(1.0 - low, 1e-6),
                   cmap="magma", vmin=0, vmax=1, s=0.8, linewidths=0)
        ax.scatter([frame.xyz[query, 0]], [frame.xyz[query, 1]], marker="*", s=300, c="cyan", edgecolors="black")
        ax.set_aspect("equal")
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_title(f"{name} (similarity {low:.2f} .. 1)", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(cmap="magma"), ax=axes[0].tolist(), shrink=0.8,
                 label="cosine similarity to the query point (each panel: its 2nd percentile .. 1)")
    fig.suptitle(f"{frame.id}: feature similarity to one query point")
    return save_figure(fig, out)
