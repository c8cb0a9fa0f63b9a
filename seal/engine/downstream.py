"""`seal probe` and `seal finetune`: train a segmentation head (and, fine-tuning, the backbone) on a labelled
split, then evaluate on the validation split. One process, or DDP through torchrun (each rank trains on its
share of every global batch and evaluates a share of the validation frames; confusion matrices are summed)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from seal.config import dump_config
from seal.data import open_configured
from seal.downstream.config import DownstreamConfig
from seal.downstream.evaluate import evaluate_frames
from seal.downstream.frames import LabelledFrames, collate_frames, split_indices, voxel_sample
from seal.downstream.model import SegmentationModel, build_model, save_model
from seal.downstream_losses import segmentation_loss
from seal.engine.distributed import DistInfo, barrier, init_distributed, shutdown
from seal.engine.rundir import RunLogger, default_run_dir, write_run_files, write_summary
from seal.errors import ConfigError
from seal.evaluation import render_results, write_results
from seal.pretrain.data import VoxelSpec

MODES = ("probe", "finetune")


def run_downstream(cfg: DownstreamConfig, mode: str, progress: bool = True) -> Path:
    """Train (probe: the classifier only; finetune: everything) and evaluate; returns the run directory."""
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r}: choose probe or finetune")
    if not cfg.data.path:
        raise ConfigError("data.path is not set: give the dataset folder")
    dist = init_distributed(cfg.train.device)
    try:
        return _run(cfg, mode, progress and dist.is_main, dist)
    finally:
        shutdown(dist)


def _run(cfg: DownstreamConfig, mode: str, progress: bool, dist: DistInfo) -> Path:
    device = dist.device
    run_dir = Path(cfg.train.run_dir or default_run_dir(mode))
    if dist.is_main:
        write_run_files(run_dir, mode, dump_config(cfg))
    dataset = open_configured(cfg.data)
    if not dataset.has_labels:
        raise ConfigError(f"{dataset.root} has no labels: {mode} needs a labelled dataset")
    train_idx, val_idx = split_indices(dataset, cfg.split)
    torch.manual_seed(cfg.train.seed)
    model, meta = build_model(cfg.pretrained, cfg.backbone, dataset.label_map.num_classes)
    voxel = VoxelSpec(**meta.get("voxel", asdict(cfg.voxel)))
    model.to(device)
    logger = RunLogger(run_dir, enabled=dist.is_main)
    start = time.perf_counter()
    if mode == "probe":
        model.freeze_backbone()
    if mode == "probe" and cfg.train.cache_features:
        _train_probe_cached(model, dataset, train_idx, voxel, cfg, dist, logger, progress)
    else:
        _train_loop(model, dataset, train_idx, voxel, cfg, mode, dist, logger, progress)
    train_seconds = time.perf_counter() - start
    cm = evaluate_frames(model, dataset, val_idx[dist.rank::dist.world], voxel, device, progress=progress)
    cm.all_reduce()
    names = list(dataset.label_map.class_names)
    info = {"mode": mode, "pretrained": cfg.pretrained, "fraction": cfg.split.fraction, "voxel": asdict(voxel),
            "label_map": dataset.label_map.name, "class_names": names}
    if dist.is_main:
        write_results(cm, names, run_dir, "val")
        save_model(run_dir / "model.pt", model, info)
        summary = {**info, "train_frames": len(train_idx), "val_frames": len(val_idx), "miou": cm.miou(),
                   "train_seconds": round(train_seconds, 1), "processes": dist.world}
        write_summary(run_dir, summary)
    logger.close()
    if progress:
        render_results(cm, names, title=f"{mode} ({'pretrained' if cfg.pretrained else 'random init'}, "
                                        f"{cfg.split.fraction}% of {len(train_idx)} frames) on val")
        print(f"model: {run_dir / 'model.pt'}")
    barrier(dist)
    return run_dir


def _ddp(module: torch.nn.Module, dist: DistInfo) -> torch.nn.Module:
    if not dist.enabled:
        return module
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)


def _rank_share(indices: list, dist: DistInfo) -> list:
    """This rank's equal share (the remainder is dropped so every rank runs the same number of steps)."""
    usable = len(indices) - len(indices) % dist.world
    return indices[dist.rank:usable:dist.world]


def _cosine(step: int, total: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, total))))


def _sgd_step(loss: torch.Tensor, optim, sched, step: int, bar, logger: RunLogger) -> int:
    """One optimiser + scheduler step; progress and metrics; returns the new step count."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()
    sched.step()
    bar.update(1)
    bar.set_postfix(loss=f"{loss.item():.3f}")
    logger.log(step + 1, {"loss/train": loss.item(), "lr": optim.param_groups[0]["lr"]})
    return step + 1


@torch.no_grad()
def _cached_features(model: SegmentationModel, dataset, indices, voxel, cfg, device, progress):
    from tqdm import tqdm

    rng = np.random.default_rng([cfg.train.seed, 11])
    feats, labels = [], []
    model.eval()
    for index in tqdm(indices, desc="probe: features", unit="frame", disable=not progress, leave=False):
        sample = voxel_sample(dataset[index], voxel)
        coords = torch.from_numpy(np.column_stack([np.zeros(len(sample["coords"]), np.int32), sample["coords"]]))
        voxel_feats = model.features(coords.to(device), torch.from_numpy(sample["feats"]).to(device), 1)
        valid = np.flatnonzero(sample["labels"] > 0)
        if valid.size > cfg.train.max_points_per_frame:
            valid = rng.choice(valid, cfg.train.max_points_per_frame, replace=False)
        point_voxel = torch.from_numpy(sample["inverse"][valid]).to(device)
        feats.append(voxel_feats[point_voxel].cpu())
        labels.append(torch.from_numpy(sample["labels"][valid]))
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


def _train_probe_cached(model, dataset, indices, voxel, cfg, dist, logger, progress) -> None:
    """Linear probing on features computed once (the frozen backbone's output never changes)."""
    from tqdm import tqdm

    device = dist.device
    feats, labels = _cached_features(model, dataset, _rank_share(indices, dist) if dist.enabled else indices,
                                     voxel, cfg, device, progress)
    head = model.classifier
    mean, std = None, None
    if cfg.train.standardize_features:  # train on z-scored features, then fold the affine map into the head
        mean, std = _feature_stats(feats, dist)
        feats = [(f - mean) / std for f in feats]
    train_head = _ddp(head, dist)
    optim = torch.optim.SGD(head.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                            weight_decay=cfg.optim.weight_decay)
    batches = max(1, math.ceil(len(feats) / cfg.optim.batch_size))
    total = batches * cfg.optim.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: _cosine(s, total))
    step = 0
    bar = tqdm(total=total, desc="probe: train", unit="step", disable=not progress, dynamic_ncols=True, leave=False)
    for epoch in range(cfg.optim.epochs):
        order = np.random.default_rng([cfg.train.seed, epoch]).permutation(len(feats))
        for b in range(batches):
            chosen = order[b * cfg.optim.batch_size:(b + 1) * cfg.optim.batch_size]
            x = torch.cat([feats[i] for i in chosen]).to(device)
            y = torch.cat([labels[i] for i in chosen]).to(device)
            loss = segmentation_loss(train_head(x), y, lovasz_weight=cfg.optim.lovasz_weight)
            step = _sgd_step(loss, optim, sched, step, bar, logger)
    bar.close()
    if mean is not None:
        with torch.no_grad():
            head.weight.div_(std.to(device))
            head.bias.sub_(head.weight @ mean.to(device))


def _train_loop(model, dataset, indices, voxel, cfg, mode, dist, logger, progress) -> None:
    """Epochs over augmented voxelised frames; the loss is taken on every point (voxel logits mapped back)."""
    from tqdm import tqdm

    device = dist.device
    frames = LabelledFrames(dataset, indices, voxel, cfg.train.augment, cfg.train.seed)
    if mode == "finetune":
        groups = [{"params": model.backbone.parameters(), "lr": cfg.optim.lr},
                  {"params": model.classifier.parameters(), "lr": cfg.optim.head_lr}]
    else:
        groups = [{"params": model.classifier.parameters(), "lr": cfg.optim.lr}]
    optim = torch.optim.SGD(groups, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay)
    bs, world = cfg.optim.batch_size, dist.world
    batches = max(1, math.ceil(len(frames) / bs)) if world == 1 else len(frames) // (bs * world)
    if batches == 0:
        raise ConfigError(f"{len(frames)} training frames cannot fill one global batch of {bs} x {world} processes")
    total = batches * cfg.optim.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: _cosine(s, total))
    train_model = _ddp(model, dist)
    bar = tqdm(total=total, desc=f"{mode}: train", unit="step", disable=not progress, dynamic_ncols=True)
    step = 0
    for epoch in range(cfg.optim.epochs):
        frames.epoch = epoch
        order = np.random.default_rng([cfg.train.seed, epoch]).permutation(len(frames)).tolist()
        batch_lists = [order[(b * world + dist.rank) * bs:(b * world + dist.rank + 1) * bs] for b in range(batches)]
        loader = torch.utils.data.DataLoader(frames, batch_sampler=batch_lists, collate_fn=collate_frames,
                                             num_workers=cfg.train.num_workers)
        model.train()
        for batch in loader:
            logits = train_model(batch["coords"].to(device), batch["feats"].to(device), batch["batch_size"])
            loss = segmentation_loss(logits[batch["point_voxel"].to(device)], batch["labels"].to(device),
                                     lovasz_weight=cfg.optim.lovasz_weight)
            step = _sgd_step(loss, optim, sched, step, bar, logger)
    bar.close()
