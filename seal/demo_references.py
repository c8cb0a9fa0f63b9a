"""The reference rows of `seal demo --ablation` and its teacher-quality sweep (`seal demo --sweep`).

- *3D labels (supervised), then linear probe*: the backbone fine-tuned with every training label, frozen, and
  probed as the pretrained ones are: the ceiling of a linear probe on this data and backbone.
- *the 2D teacher alone on the paired points*: each validation point that projects into a camera takes the class
  the oracle teacher's feature at its pixel names (nearest class row, the feature upsampled as the head H_i does);
  its mIoU is what a 2D model alone knows about the 3D points it sees, before any distillation. Points whose pixel
  it calls unlabelled (sky behind a thin pole's edge) are left out and counted as ``silent_percent``.
- the sweep: ScaLR and Seal pretrained with the oracle teacher at rising class confusion (and the degraded
  oracle's grid, blur and noise), probed the same way, drawn as LP mIoU against the teacher's own 2D mIoU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from seal.core.projection import pair_points
from seal.evaluation.metrics import ConfusionMatrix


def teacher_2d_miou(data: Path, sequence: str, teacher_name: str, kwargs: dict | None = None) -> dict:
    """mIoU (both conventions, %) of the oracle teacher's class at the pixel of every projected, labelled point of
    ``sequence``: the quality of the teacher on the points it can teach."""
    from seal.data import open_dataset
    from seal.engine.frame_loop import miou_convention
    from seal.models.teachers import build_image_backbone
    from seal.superpixels.oracle import read_class_map

    dataset = open_dataset(data, sequences=[sequence])
    teacher = build_image_backbone(teacher_name, None, **(kwargs or {}))
    matrix = ConfusionMatrix(dataset.label_map.num_classes, convention=miou_convention(dataset))
    silent = labelled = 0
    with torch.no_grad():
        for frame in dataset:
            pairs = pair_points(frame.xyz, frame.cameras, min_depth=1.0)
            for c, camera in enumerate(frame.cameras):
                mine = pairs.camera == c
                truth = read_class_map(camera.image_path, dataset.label_map, (camera.height, camera.width))
                maps = teacher(torch.zeros(1, 3, camera.height, camera.width), torch.from_numpy(truth)[None])
                maps = F.interpolate(maps, size=(camera.height, camera.width), mode="bilinear", align_corners=False)
                said = teacher.net.classify(maps[0].permute(1, 2, 0)).numpy()[pairs.row[mine], pairs.col[mine]]
                target = frame.labels[pairs.point[mine]].astype(np.int64)
                # a labelled point whose pixel the teacher calls sky / unlabelled (0) is one it cannot teach:
                # counted apart (``silent``), not as a prediction of some class (which would add a spurious class to
                # the absent-excluded mean)
                named = said > 0
                silent, labelled = silent + int((~named & (target > 0)).sum()), labelled + int((target > 0).sum())
                matrix.update(said[named], target[named])
    summary = matrix.miou_summary()
    out = {k: 100 * v if isinstance(v, float) else v for k, v in summary.items()}
    return {**out, "silent_percent": 100 * silent / max(labelled, 1)}


def supervised_backbone(data: Path, train: str, val: str, seed: int, epochs: int, run_dir: Path, preset: Path,
                        progress: bool) -> Path:
    """The backbone of a fine-tuning run on every label of the training sequences, as a backbone.pt."""
    from seal.core.schemas import DownstreamSchema
    from seal.core.settings import load_config
    from seal.engine.downstream import run_downstream
    from seal.models.export import export_backbone
    from seal.models.segmentation import load_model

    cfg = load_config(DownstreamSchema, preset, [
        f"data.path={data}", f"split.train_sequences={train}", f"split.val_sequences={val}", f"train.seed={seed}",
        f"optim.epochs={epochs}", "split.fraction=100", f"train.run_dir={run_dir}"])
    run = run_downstream(cfg, "finetune", progress=progress)
    model, meta = load_model(run / "model.pt")
    return export_backbone(run / "backbone.pt", model.backbone, meta["voxel"])


def sweep_chart(points: list[dict], path: Path) -> Path:
    """LP mIoU of the pretrained backbone against the teacher's own 2D mIoU, one line per objective."""
    from seal.viz.plot import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for objective in sorted({p["objective"] for p in points}):
        mine = sorted((p for p in points if p["objective"] == objective and p["teacher_miou"] is not None),
                      key=lambda p: p["teacher_miou"])
        line = ax.errorbar([p["teacher_miou"] for p in mine], [p["mean"] for p in mine],
                           yerr=[p["std"] for p in mine], marker="o", capsize=3, label=objective)
        for anchor in (p for p in points if p["objective"] == objective and p["teacher_miou"] is None):
            ax.axhline(anchor["mean"], color=line[0].get_color(), linestyle="--", linewidth=1,
                       label=f"{objective}, {anchor['label']} teacher")
        for p in mine:
            ax.annotate(p["label"], (p["teacher_miou"], p["mean"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel("teacher quality: the oracle teacher's own mIoU % on the paired validation points")
    ax.set_ylabel("linear-probe mIoU % of the 3D backbone")
    ax.set_title("what a teacher knows reaches the 3D network (synthetic data)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["supervised_backbone", "sweep_chart", "teacher_2d_miou"]
