"""`seal probe` and `seal finetune`: tasks of the one trainer, then evaluation on the validation split.

Probe: a frozen backbone (BatchNorm in eval) and a new linear classifier, trained on features computed once per
frame (or on the fly with ``downstream.cache_features=false``). Finetune: the whole network (separate backbone
and head learning rates), on augmented frames. Under torchrun each rank trains on its share of every global
batch and evaluates a share of the validation frames; confusion matrices are summed.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seal.core.batch import FrameBatch
from seal.core.config import VoxelConfig
from seal.core.errors import ConfigError, DataError
from seal.core.schemas import DownstreamSchema
from seal.core.settings import dump_config
from seal.data import open_configured
from seal.data.splits import split_indices
from seal.engine.distributed import DistInfo, barrier, distributed_run
from seal.engine.frame_loop import evaluate_frames
from seal.engine.loading import make_loader
from seal.engine.rundir import run_folder, write_summary
from seal.engine.runrecord import dataset_identity, pretrained_identity
from seal.engine.sampler import StepSchedule
from seal.engine.trainer import Trainer, render_losses, stop_after_preemption
from seal.evaluation.metrics import render_results, write_results
from seal.losses.segmentation import segmentation_loss
from seal.models.segmentation import SegmentationModel, build_model, check_pretrained, save_model
from seal.samples.frames import LabelledFrames, collate_frames, voxel_sample

MODES = ("probe", "finetune")


def _rank_share(indices: list, dist: DistInfo) -> list:
    """This rank's equal share (the remainder is dropped so every rank runs the same number of steps)."""
    usable = len(indices) - len(indices) % dist.world
    return indices[dist.rank:usable:dist.world]


class FrameTask:
    """Segmentation on voxelised labelled frames: fine-tuning (everything trains) or an uncached probe."""

    terms = ("total",)

    def __init__(self, mode: str, model: SegmentationModel, dataset, indices: list[int], voxel: VoxelConfig,
                 cfg: DownstreamSchema, dist: DistInfo) -> None:
        self.name, self.model, self.cfg, self.dist = mode, model, cfg, dist
        self.frames = LabelledFrames(dataset, indices, voxel, cfg.downstream.augment and mode == "finetune",
                                     cfg.train.seed)
        self._loader = make_loader(self.frames, collate_frames, cfg.train.num_workers, dist.device)

    def trainable(self) -> torch.nn.Module:
        return self.model

    def param_groups(self) -> list[dict[str, Any]]:
        optim = self.cfg.optim
        if self.name == "finetune":
            return [{"params": list(self.model.backbone.parameters()), "lr": optim.lr},
                    {"params": list(self.model.classifier.parameters()), "lr": optim.head_lr or optim.lr}]
        return [{"params": list(self.model.classifier.parameters()), "lr": optim.lr}]

    def schedule(self) -> StepSchedule:
        t = self.cfg.train
        sched = StepSchedule(len(self.frames), t.batch_size, self.dist.world, t.accumulate, t.seed, order_key=(),
                             keep_partial=True)
        if sched.steps_per_epoch == 0:
            raise ConfigError(f"{len(self.frames)} training frames cannot fill one global batch of train.batch_size "
                              f"{t.batch_size} x {self.dist.world} processes x train.accumulate {t.accumulate}")
        return sched

    def loader(self, batches):
        return self._loader(batches)

    def loss(self, model: torch.nn.Module, batch: FrameBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        logits = model(batch.backbone_input())
        return {"total": segmentation_loss(logits[batch.point_voxel], batch.labels,
                                           lovasz_weight=self.cfg.downstream.lovasz_weight)}

    def points(self, batch: FrameBatch) -> int:
        return int(batch.labels.shape[0])


class CachedProbeTask(FrameTask):
    """Linear probing on features computed once: the frozen backbone's output never changes."""

    def __init__(self, model: SegmentationModel, dataset, indices: list[int], voxel: VoxelConfig,
                 cfg: DownstreamSchema, dist: DistInfo, progress: bool) -> None:
        self.name, self.model, self.cfg, self.dist = "probe", model, cfg, dist
        own = _rank_share(indices, dist) if dist.enabled else indices
        self.feats, self.labels = _cached_features(model, dataset, own, voxel, cfg, dist.device, progress)
        self.mean = self.std = None
        if cfg.downstream.standardize_features:  # train on z-scored features; the affine map is folded in later
            self.mean, self.std = _feature_stats(self.feats, dist)
            self.feats = [(f - self.mean) / self.std for f in self.feats]

    def trainable(self) -> torch.nn.Module:
        return self.model.classifier

    def schedule(self) -> StepSchedule:
        t = self.cfg.train  # every rank holds its own share of the features: batches are per rank
        return StepSchedule(len(self.feats), t.batch_size, 1, t.accumulate, t.seed, order_key=(), keep_partial=True)

    def loader(self, batches):
        for keys in batches:
            chosen = [i for _, i in keys]
            yield (torch.cat([self.feats[i] for i in chosen]), torch.cat([self.labels[i] for i in chosen]))

    def loss(self, model, batch, generator):
        x, y = batch
        x, y = x.to(self.dist.device), y.to(self.dist.device)
        return {"total": segmentation_loss(model(x), y, lovasz_weight=self.cfg.downstream.lovasz_weight)}

    def points(self, batch) -> int:
        return int(batch[1].shape[0])

    def fold_standardization(self) -> None:
        """Make the classifier act on raw features: W' = W / std, b' = b - W' mean."""
        if self.mean is None:
            return
        head = self.model.classifier
        with torch.no_grad():
            head.weight.div_(self.std.to(head.weight.device))
            head.bias.sub_(head.weight @ self.mean.to(head.weight.device))


@torch.no_grad()
def _cached_features(model: SegmentationModel, dataset, indices, voxel, cfg, device, progress):
    from tqdm import tqdm

    rng = np.random.default_rng([cfg.train.seed, 11])
    feats, labels = [], []
    model.to(device).eval()
    for index in tqdm(indices, desc="probe: features", unit="frame", disable=not progress, leave=False):
        sample = voxel_sample(dataset[index], voxel)
        voxel_feats = model.features(sample.backbone_input().to(device))
        valid = np.flatnonzero(sample.labels > 0)
        if valid.size > cfg.downstream.max_points_per_frame:
            valid = rng.choice(valid, cfg.downstream.max_points_per_frame, replace=False)
        point_voxel = torch.from_numpy(sample.inverse[valid]).to(device)
        feats.append(voxel_feats[point_voxel].cpu())
        labels.append(torch.from_numpy(sample.labels[valid]))
    return feats, labels


def _feature_stats(feats: list[torch.Tensor], dist: DistInfo) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the cached features over every rank's frames."""
    stacked = torch.cat(feats).double()
    moments = torch.cat([stacked.sum(0), stacked.square().sum(0), torch.tensor([float(stacked.shape[0])],
                                                                                dtype=torch.float64)])
    if dist.enabled:
        import torch.distributed as tdist

        moments = moments.to(dist.device)
        tdist.all_reduce(moments)
        moments = moments.cpu()
    d = stacked.shape[1]
    count = moments[-1]
    mean = moments[:d] / count
    std = (moments[d:2 * d] / count - mean.square()).clamp_min(1e-24).sqrt()
    return mean.float(), std.float()


def run_downstream(cfg: DownstreamSchema, mode: str, progress: bool = True, resume: Path | None = None) -> Path:
    """Train (probe: the classifier only; finetune: everything) and evaluate; returns the run directory."""
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r}: choose probe or finetune")
    if not cfg.data.path:
        raise ConfigError("data.path is not set: give the dataset folder")
    with distributed_run(cfg.train, cfg.model.engine) as dist:
        return _run(cfg, mode, progress and dist.is_main, dist, resume)


def _run(cfg: DownstreamSchema, mode: str, progress: bool, dist: DistInfo, resume: Path | None) -> Path:
    dataset = open_configured(cfg.data)  # what the run trains on, recorded in run.json and checked by a resume
    identity = {"data": [dataset_identity(dataset)], "pretrained": pretrained_identity(cfg.model.pretrained)}
    _preflight(cfg, dataset, mode)  # before the run folder: a refused run leaves nothing behind
    with run_folder(cfg.train.run_dir, mode, resume, dump_config(cfg), dist, identity) as run_dir:
        return _run_in(cfg, mode, progress, dist, resume, run_dir, dataset)


def _preflight(cfg: DownstreamSchema, dataset, mode: str) -> None:
    """The refusals that need no run folder: no labels, a pretrained backbone that does not load or is not finite
    (a diverged run's), training frames without a single labelled point."""
    if not dataset.has_labels:
        raise ConfigError(f"{dataset.root} has no labels: {mode} needs a labelled dataset")
    if cfg.model.pretrained:
        check_pretrained(cfg.model.pretrained)
    train_idx, _ = split_indices(dataset, cfg.split)
    require_labelled_points(dataset, train_idx, cfg.data.label_map, mode)


def require_labelled_points(dataset, indices: list[int], label_map: str | None, mode: str) -> None:
    """Refuse training frames in which the label map leaves every point unlabelled (all their raw ids unknown to
    it), naming the label map and the raw ids found. Stops at the first frame with a labelled point: one frame read
    when the labels are right."""
    found: set[int] = set()
    for index in indices:
        frame = dataset[index]
        if frame.labels is not None and bool((frame.labels > 0).any()):
            return
        if frame.raw_labels is not None:
            found.update(int(v) for v in np.unique(frame.raw_labels)[:1000])
    lm = dataset.label_map
    default = Path(dataset.root) / "label_map.yaml"
    source = Path(label_map) if label_map else default if default.is_file() else None
    where = source or Path(dataset.root)
    name = f"label map {lm.name}" + ("" if source else " (the format's packaged map)")
    known = np.flatnonzero(lm.lookup).tolist()
    shown = ", ".join(map(str, sorted(found)[:20])) + (" ..." if len(found) > 20 else "")
    raw = f"raw ids {shown}" if found else "no raw label at all"
    raise DataError(where, f"{name} gives none of the points of the {len(indices)} {mode} training frame(s) a class: "
                           f"they hold {raw}, the map knows raw ids {', '.join(map(str, known[:20]))}"
                           f"{' ...' if len(known) > 20 else ''}",
                    "choose the label map of this data (data.label_map=FILE.yaml) or add its ids to raw_to_train")


def _run_in(cfg: DownstreamSchema, mode: str, progress: bool, dist: DistInfo, resume: Path | None, run_dir: Path,
            dataset) -> Path:
    if not dataset.has_labels:
        raise ConfigError(f"{dataset.root} has no labels: {mode} needs a labelled dataset")
    torch.manual_seed(cfg.train.seed)
    model, meta = build_model(cfg.model.pretrained, cfg.model.backbone, dataset.label_map.num_classes)
    train_idx, val_idx = split_indices(dataset, cfg.split)
    voxel = VoxelConfig(**meta.get("voxel", asdict(cfg.voxel)))
    model.to(dist.device)
    if mode == "probe":
        model.freeze_backbone()
    start = time.perf_counter()
    if mode == "probe" and cfg.downstream.cache_features:
        task: FrameTask = CachedProbeTask(model, dataset, train_idx, voxel, cfg, dist, progress)
    else:
        task = FrameTask(mode, model, dataset, train_idx, voxel, cfg, dist)
    trainer = Trainer(task, cfg.train, cfg.optim, dist, run_dir, dump_config(cfg), progress)
    if trainer.resume_unless_finished(resume):
        return run_dir
    result = trainer.fit()
    if result.preempted_by:
        stop_after_preemption(result, run_dir, mode, dist)
    if isinstance(task, CachedProbeTask):
        task.fold_standardization()
    train_seconds = time.perf_counter() - start
    empty: list[str] = []
    cm = evaluate_frames(model, dataset, val_idx[dist.rank::dist.world], voxel, dist.device, progress=progress,
                         empty=empty)
    cm.all_reduce()
    names = list(dataset.label_map.class_names)
    info = {"mode": mode, "pretrained": cfg.model.pretrained, "fraction": cfg.split.fraction, "voxel": asdict(voxel),
            "label_map": dataset.label_map.name, "class_names": names}
    if dist.is_main:
        write_results(cm, names, run_dir, "val")
        save_model(run_dir / "model.pt", model, info)
        write_summary(run_dir, {**info, "train_frames": len(train_idx), "val_frames": len(val_idx),
                                **cm.miou_summary(), "train_seconds": round(train_seconds, 1), "steps": result.steps,
                                "processes": dist.world, "sparse_engine": dist.engine, "loss_first": result.first,
                                "val_frames_skipped_empty": len(empty),
                                "loss_last": result.last})
    if progress:
        render_losses(result, f"{mode}: training")
        render_results(cm, names, title=f"{mode} ({'pretrained' if cfg.model.pretrained else 'random init'}, "
                                        f"{cfg.split.fraction}% of {len(train_idx)} frames) on val")
        print(f"model: {run_dir / 'model.pt'}")
    barrier(dist)
    return run_dir
