"""`seal pretrain`: the Seal pretraining loop (one process, or DDP through torchrun; CPU or GPU).

Exact resume: the data order is a pure function of (seed, epoch, step) (`StepSchedule`), every sample draws its
augmentations from its own seeded generator, and the checkpoint holds model, optimiser, scheduler, scaler and RNG
states with the position in the epoch, so a resumed run continues as if it had never stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from seal.config import dump_config, load_config
from seal.data import open_configured
from seal.engine.checkpoint import load_checkpoint, prune_checkpoints, rng_state, save_checkpoint, set_rng_state
from seal.engine.distributed import DistInfo, barrier, init_distributed, mean_over_ranks, shutdown
from seal.engine.rundir import RunLogger, default_run_dir, write_run_files, write_summary
from seal.engine.sampler import StepSchedule
from seal.errors import ConfigError
from seal.models.export import export_backbone
from seal.pretrain.config import PretrainConfig
from seal.pretrain.data import PairSamples, VoxelSpec, collate_pairs
from seal.pretrain.model import SealStudent, batch_to, compute_losses
from seal.stages.cache import cache_root_for
from seal.superpixels import build_superpixelizer
from seal.superpixels.stage import run_superpixels, superpixel_cache
from seal.superpoints.stage import run_superpoints, superpoint_cache

TERMS = ("total", "vfm", "tmp", "p2s")


def resolve_config(config_path: Path | None, overrides: list[str], resume: Path | None) -> PretrainConfig:
    """The run's config: a resumed run starts from its own config.yaml, then the given overrides."""
    if resume is not None:
        run_dir = resume if resume.is_dir() else resume.parent.parent
        return load_config(PretrainConfig, run_dir / "config.yaml", overrides)
    return load_config(PretrainConfig, config_path, overrides)


def pair_samples(cfg: PretrainConfig, dataset, info: DistInfo | None = None, progress: bool = False
                 ) -> PairSamples:
    """The run's frame-pair samples; missing superpixels and superpoints are computed first (split across ranks,
    then a barrier), so every sample can be read from the caches."""
    info = info or DistInfo()
    cache_root = cache_root_for(dataset.root, cfg.cache.root)
    method = build_superpixelizer(cfg.superpixels)
    shard = (info.rank, info.world)
    sp_report = run_superpixels(dataset, method, cache_root, shard=shard, progress=progress)
    st_report = run_superpoints(dataset, cfg.superpoints, cache_root, shard=shard, progress=progress)
    barrier(info)
    failed = sp_report.failed + [f for f in st_report.failed if "no ego poses" not in f[1]]
    if failed:
        raise ConfigError(f"{len(failed)} cache items failed, first: {failed[0][0]}: {failed[0][1]}")
    return PairSamples(dataset, superpixel_cache(cache_root, method), superpoint_cache(cache_root, cfg.superpoints),
                       cfg.superpoints.gap, cfg.augment, VoxelSpec(**asdict(cfg.voxel)), cfg.projection.min_depth,
                       cfg.train.seed)


def _cosine(step: int, total: int, warmup: int) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def pretrain(cfg: PretrainConfig, resume: Path | None = None) -> Path:
    """Run (or continue) a pretraining run; returns its run directory."""
    info = init_distributed(cfg.train.device)
    threads = torch.get_num_threads()
    if cfg.train.deterministic and info.device.type == "cpu":
        torch.set_num_threads(1)  # spconv's CPU scatter sums in thread order: bitwise repeatable only on one thread
    try:
        return _pretrain(cfg, resume, info)
    finally:
        torch.set_num_threads(threads)
        shutdown(info)


def _pretrain(cfg: PretrainConfig, resume: Path | None, info: DistInfo) -> Path:
    from seal.models.teachers import build_image_backbone

    if not cfg.data.path:
        raise ConfigError("data.path is not set: give the dataset folder (seal pretrain DATASET or data.path=...)")
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    run_dir = Path(resume if resume is None or resume.is_dir() else resume.parent.parent) if resume else Path(
        cfg.train.run_dir or default_run_dir("pretrain"))
    if info.is_main:
        write_run_files(run_dir, "pretrain", dump_config(cfg))
    samples = pair_samples(cfg, open_configured(cfg.data), info, progress=info.is_main)
    schedule = StepSchedule(len(samples), cfg.train.batch_size, info.world, cfg.train.accumulate, cfg.train.seed)
    if schedule.steps_per_epoch == 0:
        raise ConfigError(f"{len(samples)} frame pairs cannot fill one step of batch_size {cfg.train.batch_size} x "
                          f"{info.world} processes x accumulate {cfg.train.accumulate}: lower train.batch_size")

    torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
    teacher = build_image_backbone(cfg.teacher.backbone, cfg.teacher.weights, **cfg.teacher.model_kwargs)
    teacher.to(info.device)
    student = SealStudent(cfg, teacher.out_channels).to(info.device)
    model = student
    if info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            student, device_ids=[info.local_rank] if info.device.type == "cuda" else None)
    global_batch = cfg.train.batch_size * info.world * cfg.train.accumulate
    lr = cfg.optim.lr * global_batch / cfg.optim.lr_reference_batch
    optimizer = torch.optim.SGD(student.parameters(), lr=lr, momentum=cfg.optim.momentum,
                                dampening=cfg.optim.dampening, weight_decay=cfg.optim.weight_decay)
    total_steps = schedule.steps_per_epoch * cfg.optim.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _cosine(s, total_steps, cfg.optim.warmup_steps))
    use_amp = cfg.train.amp and info.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    epoch, start_step, global_step = 0, 0, 0
    if resume is not None:
        ckpt_path = resume if resume.is_file() else run_dir / "checkpoints" / "last.pt"
        state = load_checkpoint(ckpt_path, info.device)
        student.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        epoch, start_step, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        if start_step >= schedule.steps_per_epoch:
            epoch, start_step = epoch + 1, 0

    logger = RunLogger(run_dir, enabled=info.is_main)
    if info.is_main:
        _announce(cfg, teacher, student, samples, schedule, info, lr, run_dir, global_step)
    history: dict[str, list[float]] = {t: [] for t in TERMS}
    first_losses: dict[str, float] | None = None
    start_time = time.perf_counter()
    points_seen = 0
    stop = False

    def save(step_in_epoch: int, current_epoch: int) -> None:
        if not info.is_main:
            return
        payload = {"model": student.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": rng_state(),
                   "epoch": current_epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
                   "config": dump_config(cfg)}
        folder = run_dir / "checkpoints"
        save_checkpoint(folder / f"step-{global_step}.pt", payload)
        save_checkpoint(folder / "last.pt", payload)
        prune_checkpoints(folder, cfg.train.keep_checkpoints)

    while epoch < cfg.optim.epochs and not stop:
        samples.set_epoch(epoch)
        micro = schedule.micro_batches(epoch, info.rank, start_step)
        loader = torch.utils.data.DataLoader(samples, batch_sampler=[m[2] for m in micro], collate_fn=collate_pairs,
                                             num_workers=cfg.train.num_workers)
        bar = None
        if info.is_main:
            from tqdm import tqdm

            bar = tqdm(total=schedule.steps_per_epoch, initial=start_step, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
                       unit="step", dynamic_ncols=True)
        student.train()
        step_losses = {t: 0.0 for t in TERMS}
        step_start = time.perf_counter()
        step_points = 0
        for (step, g, _), batch in zip(micro, loader, strict=True):
            micro_index = (g // info.world) % cfg.train.accumulate
            batch = batch_to(batch, info.device)
            generator = torch.Generator(device="cpu").manual_seed(
                int(np.random.default_rng([cfg.train.seed, epoch, g]).integers(2**62)))
            with torch.autocast(device_type=info.device.type, dtype=torch.float16, enabled=use_amp):
                losses = compute_losses(model, teacher, batch, cfg, generator)
            scaler.scale(losses["total"] / cfg.train.accumulate).backward()
            for t in TERMS:
                step_losses[t] += float(losses[t].detach()) / cfg.train.accumulate
            step_points += batch["num_points"]
            if micro_index != cfg.train.accumulate - 1:
                continue
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            global_step += 1
            reduced = {t: float(mean_over_ranks(torch.tensor(v), info)) for t, v in step_losses.items()}
            elapsed = time.perf_counter() - step_start
            rate = step_points * info.world / max(elapsed, 1e-9)
            points_seen += step_points * info.world
            first_losses = first_losses or dict(reduced)
            for t in TERMS:
                history[t].append(reduced[t])
            if info.is_main:
                bar.update(1)
                bar.set_postfix(loss=f"{reduced['total']:.3f}", pts_s=f"{rate:,.0f}")
                if global_step % cfg.train.log_every == 0 or global_step == 1:
                    logger.log(global_step, {**{f"loss/{t}": v for t, v in reduced.items()},
                                             "lr": optimizer.param_groups[0]["lr"], "throughput/points_per_s": rate})
            step_losses = {t: 0.0 for t in TERMS}
            step_start, step_points = time.perf_counter(), 0
            done_in_epoch = step + 1
            if global_step % cfg.train.checkpoint_every == 0 or done_in_epoch == schedule.steps_per_epoch:
                save(done_in_epoch, epoch)
            if cfg.train.max_steps is not None and global_step >= cfg.train.max_steps:
                save(done_in_epoch, epoch)
                stop = True
                break
        if bar is not None:
            bar.close()
        if not stop:
            epoch, start_step = epoch + 1, 0
    logger.close()
    barrier(info)
    if info.is_main:
        export_backbone(run_dir / "backbone.pt", student.backbone, asdict(cfg.voxel),
                        {"proj_head": {k: v.cpu() for k, v in student.head3d.state_dict().items()}})
        summary = _summary(cfg, teacher, history, first_losses, global_step, epoch, points_seen,
                           time.perf_counter() - start_time, stop, run_dir)
        write_summary(run_dir, summary)
        _render_summary(summary)
    return run_dir


def _announce(cfg, teacher, student, samples, schedule, info, lr, run_dir, global_step) -> None:
    from rich.console import Console

    console = Console()
    params = sum(p.numel() for p in student.backbone.parameters())
    console.print(f"[bold]seal pretrain[/bold] -> {run_dir}")
    console.print(f"  data: {samples.dataset.root} ({len(samples)} frame pairs, gap {cfg.superpoints.gap}); "
                  f"{schedule.steps_per_epoch} steps/epoch x {cfg.optim.epochs} epochs; {info.world} process(es) "
                  f"on {info.device}; effective lr {lr:.4g}")
    console.print(f"  3D backbone: MinkUNet planes {cfg.model.backbone.planes}, {params / 1e6:.2f} M parameters")
    style = "bold red" if not teacher.pretrained else "green"
    console.print(f"  2D teacher: [{style}]{teacher.description}[/{style}]")
    if global_step:
        console.print(f"  resuming at optimiser step {global_step}")


def _summary(cfg, teacher, history, first, steps, epoch, points, seconds, stopped_early, run_dir) -> dict:
    tail = {t: float(np.mean(v[-max(1, len(v) // 10):])) if v else float("nan") for t, v in history.items()}
    return {"run_dir": str(run_dir), "steps": steps, "epochs_completed": epoch, "stopped_at_max_steps": stopped_early,
            "seconds": round(seconds, 1), "points_per_second": round(points / max(seconds, 1e-9)),
            "teacher": teacher.description, "teacher_pretrained": teacher.pretrained,
            "loss_first": first or {}, "loss_last": tail, "loss_weights": asdict(cfg.loss)}


def _render_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"pretraining summary ({summary['steps']} steps, {summary['seconds']} s, "
                        f"{summary['points_per_second']:,} points/s)", title_justify="left")
    table.add_column("loss")
    table.add_column("first step", justify="right")
    table.add_column("last 10% of steps", justify="right")
    for term in TERMS:
        table.add_row(term, f"{summary['loss_first'].get(term, float('nan')):.4f}",
                      f"{summary['loss_last'].get(term, float('nan')):.4f}")
    console = Console()
    console.print(table)
    if not summary["teacher_pretrained"]:
        console.print(f"[bold red]note:[/bold red] the 2D teacher was {summary['teacher']}")
    console.print(f"backbone: {summary['run_dir']}/backbone.pt")
