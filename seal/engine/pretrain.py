"""`seal pretrain`: Seal pretraining as a task of the one trainer (one process, or DDP through torchrun).

The objective is the weighted sum of `seal.losses.family` (Seal by default; PPKT, SLidR, ScaLR or any mix by the
``loss.*`` weights, e.g. ``--objective ppkt``)."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seal.core.batch import PairBatch
from seal.core.errors import ConfigError
from seal.core.schemas import PretrainSchema
from seal.core.settings import dump_config
from seal.data import open_configured, require_pretraining_data
from seal.engine.distributed import DistInfo, barrier, distributed_run
from seal.engine.loading import make_loader
from seal.engine.rundir import run_folder, write_summary
from seal.engine.runrecord import dataset_identity, pretrained_identity
from seal.engine.sampler import StepSchedule
from seal.engine.teacher_forward import TeacherForward, check_crop_size, crop_note
from seal.engine.trainer import Trainer, TrainResult, render_losses, stop_after_preemption
from seal.losses.family import TERMS, distillation_loss
from seal.models.export import export_backbone
from seal.models.student import SealStudent
from seal.samples.mix import MixedPairSamples
from seal.samples.pairs import PairSamples, collate_pairs
from seal.stages.cache import cache_root_for
from seal.superpixels import build_superpixelizer
from seal.superpixels.stage import run_superpixels, superpixel_cache
from seal.superpoints.stage import run_superpoints, superpoint_cache


def pair_samples(cfg: PretrainSchema, dataset, info: DistInfo | None = None, progress: bool = False,
                 cache: str | None | bool = True) -> PairSamples:
    """The frame-pair samples of one dataset; missing superpixels and superpoints are computed first (split across
    ranks, then a barrier), so every sample can be read from the caches. A dataset without cameras or poses (a
    format for downstream only) is refused first, and so is an absurd ``augment.crop_size``. ``cache`` True takes
    ``cache.root``; None the dataset's default cache folder (the datasets of a mixture beyond ``data.path``)."""
    check_crop_size(cfg.augment)
    require_pretraining_data(dataset)
    info = info or DistInfo()
    cache_root = cache_root_for(dataset.root, cfg.cache.root if cache is True else cache or None)
    method = build_superpixelizer(cfg.superpixels)
    shard = (info.rank, info.world)
    failed = run_superpixels(dataset, method, cache_root, shard=shard, progress=progress).failed
    failed += run_superpoints(dataset, cfg.superpoints, cache_root, shard=shard, progress=progress).failed
    barrier(info)
    if failed:
        raise ConfigError(f"{len(failed)} cache items failed, first: {failed[0][0]}: {failed[0][1]}")
    samples = PairSamples(dataset, superpixel_cache(cache_root, method), superpoint_cache(cache_root, cfg.superpoints),
                          cfg.superpoints.gap, cfg.augment, cfg.voxel, cfg.projection.min_depth, cfg.train.seed,
                          truth=teacher_reads_truth(cfg.teacher.backbone))
    if samples.skipped_empty and info.is_main:
        print(f"seal: skipped {samples.skipped_empty} frame pair(s) with an empty scan")
    if info.is_main:  # crops larger than the images are upscaled: said once, from the first pair's cameras
        s, t = samples.items[0]
        note = crop_note(cfg.augment, {(c.height, c.width) for c in dataset.sequences[s][t].cameras})
        if note:
            print(note)
    return samples


def teacher_reads_truth(name: str) -> bool:
    """Whether ``teacher.backbone`` is an oracle control, which reads the crops' true class maps."""
    from seal.models.teachers import TEACHERS

    return name in TEACHERS and bool(getattr(TEACHERS.get(name), "needs_truth", False))


def run_samples(cfg: PretrainSchema, info: DistInfo | None = None, progress: bool = False
                ) -> PairSamples | MixedPairSamples:
    """The run's samples: those of ``data.path``, or, with ``data.mix``, of every dataset, drawn by
    ``data.mix_weights``. Each dataset is opened, checked and cached on its own, so a mixture may join any formats
    with cameras and poses (different sensors, cameras, image sizes)."""
    check_mixture(cfg)
    first = pair_samples(cfg, open_configured(cfg.data), info, progress)
    if not cfg.data.mix:
        return first
    parts = [(_dataset_name(first.dataset, cfg.data.version), first)]
    seen = {(first.dataset.root.resolve(), first.dataset.kind, cfg.data.version)}
    for entry in cfg.data.mix:
        path, options = mix_entry(entry)
        data = replace(cfg.data, path=path, kind=options.get("kind"), version=options.get("version"),
                       sequences=None, mix=[], mix_weights=[])
        samples = pair_samples(cfg, open_configured(data), info, progress, cache=None)
        key = (samples.dataset.root.resolve(), samples.dataset.kind, data.version)
        if key in seen:
            raise ConfigError(f"data.mix entry {entry!r} names a dataset already in the mixture: give each once "
                              "and weight it with data.mix_weights")
        seen.add(key)
        parts.append((_dataset_name(samples.dataset, data.version), samples))
    return MixedPairSamples(parts, list(cfg.data.mix_weights) or None, cfg.train.seed)


def check_mixture(cfg: PretrainSchema) -> None:
    """One line for a mixture that cannot be right, before anything is opened or computed."""
    data = cfg.data
    if data.mix_weights and not data.mix:
        raise ConfigError(f"data.mix_weights={data.mix_weights} without data.mix: name the other datasets "
                          "(seal pretrain D1 D2 ...) or drop the weights")
    if data.mix_weights and len(data.mix_weights) != 1 + len(data.mix):
        raise ConfigError(f"data.mix_weights has {len(data.mix_weights)} value(s) for {1 + len(data.mix)} "
                          "dataset(s) (data.path, then data.mix): give one weight per dataset, or [] for pair counts")
    for entry in data.mix:
        mix_entry(entry)


def mix_entry(entry: str) -> tuple[str, dict[str, str]]:
    """``PATH`` or ``PATH::key=value,...`` (keys ``kind`` and ``version``): one dataset of a mixture with its own
    format or version, e.g. ``/data/pandaset::version=pandargt`` beside ``/data/pandaset`` (Pandar64)."""
    path, _, spec = entry.partition("::")
    options = {}
    for item in filter(None, spec.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in ("kind", "version") or not value:
            raise ConfigError(f"data.mix entry {entry!r}: after '::' give kind=NAME and/or version=NAME "
                              "(e.g. /data/pandaset::version=pandargt)")
        options[key] = value
    return path, options


def _dataset_name(dataset, version: str | None) -> str:
    return f"{dataset.root.name} ({dataset.kind}{', ' + version if version else ''})"  # "NAME (KIND[, VERSION])"


class PretrainTask:
    """The distillation objective (Seal, PPKT, SLidR, ScaLR, by weights): the student (3D backbone + heads) against
    the frozen 2D teacher, on frame pairs."""

    name = "pretrain"
    terms = TERMS

    def __init__(self, cfg: PretrainSchema, samples: PairSamples | MixedPairSamples, dist: DistInfo) -> None:
        from seal.models.teachers import build_image_backbone

        self.cfg, self.samples, self.dist = cfg, samples, dist
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        self.teacher = build_image_backbone(cfg.teacher.backbone, cfg.teacher.weights, **cfg.teacher.model_kwargs)
        self.teacher.to(dist.device)
        if dist.device.type == "cuda":
            self.teacher.to(memory_format=torch.channels_last)
        self.teacher_forward = TeacherForward.from_config(self.teacher, cfg.teacher, dist.device, say=dist.is_main)
        self.student = SealStudent(cfg.model, self.teacher.out_channels, scalr_head=cfg.loss.scalr > 0)
        self._loader = make_loader(samples, collate_pairs, cfg.train.num_workers, dist.device)

    def trainable(self) -> torch.nn.Module:
        return self.student

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.student.parameters()), "lr": self.cfg.optim.lr}]

    def schedule(self) -> StepSchedule:
        t = self.cfg.train
        sched = StepSchedule(len(self.samples), t.batch_size, self.dist.world, t.accumulate, t.seed)
        if sched.steps_per_epoch == 0:
            raise ConfigError(f"{len(self.samples)} frame pairs cannot fill one step of train.batch_size "
                              f"{t.batch_size} x {self.dist.world} processes x train.accumulate {t.accumulate}: "
                              "lower train.batch_size")
        return sched

    def loader(self, batches):
        return self._loader(batches)

    def loss(self, model: torch.nn.Module, batch: PairBatch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Forward the frozen teacher (no grad) and the student; every term of the family and their weighted sum."""
        teacher_maps = self.teacher_forward(batch.images, batch.truth)  # float32, teacher.chunk images at a time
        voxels, pixels, scalr_voxels = model(batch.backbone_input(), teacher_maps,
                                             (batch.images.shape[-2], batch.images.shape[-1]))
        return distillation_loss(voxels, pixels, batch, self.cfg.loss, generator, scalr_voxels=scalr_voxels,
                                 teacher_maps=teacher_maps)

    def points(self, batch: PairBatch) -> int:
        return batch.num_points


def pretrain(cfg: PretrainSchema, resume: Path | None = None, progress: bool = True) -> Path:
    """Run (or continue) a pretraining run; returns its run directory."""
    if not cfg.data.path:
        raise ConfigError("data.path is not set: give the dataset folder (seal pretrain DATASET or data.path=...)")
    check_crop_size(cfg.augment)  # before a run folder is made
    check_mixture(cfg)
    with distributed_run(cfg.train, cfg.model.engine) as dist, \
            run_folder(cfg.train.run_dir, "pretrain", resume, dump_config(cfg), dist, _identity(cfg)) as run_dir:
        samples = run_samples(cfg, dist, progress=progress and dist.is_main)
        task = PretrainTask(cfg, samples, dist)
        trainer = Trainer(task, cfg.train, cfg.optim, dist, run_dir, dump_config(cfg), progress)
        if trainer.resume_unless_finished(resume):
            return run_dir
        if dist.is_main and progress:
            _announce(cfg, task, trainer, run_dir)
        result = trainer.fit()
        if result.preempted_by:
            stop_after_preemption(result, run_dir, "pretrain", dist)
        barrier(dist)
        if dist.is_main:
            export_backbone(run_dir / "backbone.pt", task.student.backbone, asdict(cfg.voxel),
                            {"proj_head": {k: v.cpu() for k, v in task.student.head3d.state_dict().items()}})
            write_summary(run_dir, _summary(cfg, task, trainer, result, run_dir, dist))
            if progress:
                render_losses(result, "pretraining summary")
                if isinstance(task.samples, MixedPairSamples):
                    _render_mixture(_mixture_summary(task.samples, trainer, result.steps))
                if not task.teacher.pretrained:
                    print(f"note: the 2D teacher was {task.teacher.description}")
                print(f"backbone: {run_dir}/backbone.pt")
    return run_dir


def _identity(cfg: PretrainSchema) -> dict[str, Any]:
    """What the run trains on, as run.json records it and a resume checks it (every dataset of a mixture, and the
    teacher's weights file by its sha256)."""
    datasets = [open_configured(cfg.data)]
    for entry in cfg.data.mix:
        path, options = mix_entry(entry)
        datasets.append(open_configured(replace(cfg.data, path=path, kind=options.get("kind"),
                                                version=options.get("version"), sequences=None, mix=[],
                                                mix_weights=[])))
    return {"data": [dataset_identity(d) for d in datasets], "teacher": pretrained_identity(cfg.teacher.weights)}


def _announce(cfg: PretrainSchema, task: PretrainTask, trainer: Trainer, run_dir: Path) -> None:
    from rich.console import Console

    console = Console()
    params = sum(p.numel() for p in task.student.backbone.parameters())
    console.print(f"[bold]seal pretrain[/bold] -> {run_dir}")
    samples = task.samples
    if isinstance(samples, MixedPairSamples):
        for part, count in zip(samples.parts, samples.counts, strict=True):
            console.print(f"  data: {part.samples.dataset.root} {part.name.split(' ', 1)[1]}: "
                          f"{len(part.samples)} frame pairs, weight {part.weight:g}, {count} samples per epoch")
    else:
        console.print(f"  data: {samples.dataset.root} ({len(samples)} frame pairs)")
    console.print(f"  {len(samples)} samples per epoch (gap {cfg.superpoints.gap}); "
                  f"{trainer.sched.steps_per_epoch} steps/epoch x {cfg.optim.epochs} epochs; {trainer.dist.world} "
                  f"process(es) on {trainer.dist.device} ({trainer.dist.engine}); effective lr {trainer.lr:.4g}")
    console.print(f"  3D backbone: {task.student.backbone.describe()}, {params / 1e6:.2f} M parameters")
    style = "bold red" if not task.teacher.pretrained else "green"
    console.print(f"  2D teacher: [{style}]{task.teacher.description}[/{style}]")
    if trainer.global_step:
        console.print(f"  resuming at optimiser step {trainer.global_step}")


def _summary(cfg: PretrainSchema, task: PretrainTask, trainer: Trainer, result: TrainResult, run_dir: Path,
             dist: DistInfo) -> dict:
    out = {"run_dir": str(run_dir), "steps": result.steps, "epochs_completed": result.epochs_completed,
            "stopped_at_max_steps": result.stopped_at_max_steps, "seconds": round(result.seconds, 1),
            "points_per_second": round(result.points / max(result.seconds, 1e-9)), "device": str(dist.device),
            "processes": dist.world, "sparse_engine": dist.engine, "teacher": task.teacher.description,
            "teacher_pretrained": task.teacher.pretrained, "loss_first": result.first, "loss_last": result.last,
            "pairs": len(task.samples), "pairs_skipped_empty_scan": task.samples.skipped_empty,
            "loss_weights": asdict(cfg.loss)}
    if isinstance(task.samples, MixedPairSamples):
        out["datasets"] = _mixture_summary(task.samples, trainer, result.steps)
    return out


def _render_mixture(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="datasets of the mixture", title_justify="left")
    for column in ("dataset", "folder", "frame pairs", "weight", "samples/epoch", "samples seen"):
        table.add_column(column, justify="left" if column in ("dataset", "folder") else "right")
    for r in rows:
        table.add_row(r["dataset"], r["root"], str(r["pairs"]), f"{r['weight']:g}", str(r["samples_per_epoch"]),
                      str(r["samples_seen"]))
    Console().print(table)


def _mixture_summary(samples: MixedPairSamples, trainer: Trainer, steps: int) -> list[dict]:
    """Per dataset of a mixture: what it is, its pairs and weight, and the samples the run's steps drew from it
    (exactly, from the step schedule: every rank's micro-batches of every step taken)."""
    sched = trainer.sched
    per_step = sched.batch_size * sched.world * sched.accumulate
    seen = np.zeros(len(samples.parts), np.int64)
    epoch = 0
    while steps > 0 and sched.steps_per_epoch:
        taken = min(steps, sched.steps_per_epoch)
        seen += samples.drawn(epoch, sched.order(epoch)[: taken * per_step])
        steps, epoch = steps - taken, epoch + 1
    return [{"dataset": p.name, "root": str(p.samples.dataset.root), "format": p.samples.dataset.kind,
             "pairs": len(p.samples),
             "weight": p.weight, "samples_per_epoch": count, "samples_seen": int(n)}
            for p, count, n in zip(samples.parts, samples.counts, seen, strict=True)]
