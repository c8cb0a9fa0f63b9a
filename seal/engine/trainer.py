"""The one training loop of seal: pretraining, linear probing and fine-tuning plug a `TrainingTask` into it.

The loop owns what every run needs: device and DDP set-up, gradient accumulation (``no_sync`` on non-final
micro-steps), SGD with a cosine schedule, autocast (fp16 with a grad scaler, or bf16), logging (losses are read
back from the device only at logging steps), atomic checkpoints with exact resume, and the summary table.
The task supplies the model, its samples and its loss.

Exact resume: the data order is a pure function of (seed, epoch, step) (`StepSchedule`), every sample draws its
augmentations from its own seeded generator, and a checkpoint holds model, optimiser, scheduler, scaler and RNG
states with the position in the epoch, so a resumed run continues as if it had never stopped.

Divergence: after every optimiser step one fused scalar (the step's loss terms, the gradients unless AMP's
scaler is on - it skips inf-gradient steps by design - and every weight and float buffer such as BatchNorm's
running_var, as max-abs norms) is read back; anything non-finite stops the run with `Diverged` (exit status 3)
naming the step and the first loss term or tensor at fault, before that step is checkpointed: the last good
checkpoint stays as it was, nothing is exported, and summary.json records the divergence.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from seal.core.checkpoint import load_checkpoint, prune_checkpoints, rng_state, save_checkpoint, set_rng_state
from seal.core.config import OptimConfig, TrainConfig
from seal.core.errors import DataError, Diverged, Preempted
from seal.engine.distributed import DistInfo, barrier, mean_over_ranks
from seal.engine.optimizers import build_optimizer, lr_factor
from seal.engine.preemption import StopRequest
from seal.engine.rundir import RunLogger, checkpoint_candidates, write_summary
from seal.engine.sampler import StepSchedule


class TrainingTask(Protocol):
    """What a training run plugs into `Trainer`."""

    name: str                       # pretrain | probe | finetune (progress bar, summary title)
    terms: tuple[str, ...]          # loss terms returned by `loss`; "total" first

    def trainable(self) -> torch.nn.Module:
        """The module whose parameters train (wrapped in DDP); its state dict is what checkpoints hold."""

    def param_groups(self) -> list[dict[str, Any]]:
        """SGD parameter groups, each with its unscaled "lr"."""

    def schedule(self) -> StepSchedule:
        """Which samples each micro-step of this process reads."""

    def loader(self, batches: Iterable[list[Any]]) -> Iterable[Any]:
        """Collated batches for the given lists of sample keys, in order."""

    def loss(self, model: torch.nn.Module, batch: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss terms of one micro-batch (``model`` is the possibly DDP-wrapped trainable module)."""

    def points(self, batch: Any) -> int:
        """Points in a batch, for throughput."""


@dataclass
class TrainResult:
    """What the loop did: logged losses (global mean over processes), steps, time, throughput."""

    history: dict[str, list[float]] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    epochs_completed: int = 0
    points: int = 0
    seconds: float = 0.0
    stopped_at_max_steps: bool = False
    preempted_by: str | None = None  # the signal that stopped the run early (it then continues with --resume)
    lr: float = 0.0

    @property
    def last(self) -> dict[str, float]:
        """Mean of the last 10% of the logged values of each term."""
        return {t: float(np.mean(v[-max(1, len(v) // 10):])) if v else float("nan") for t, v in self.history.items()}


class Trainer:
    """Runs a `TrainingTask` for ``optim.epochs`` epochs (or ``train.max_steps`` steps), with exact resume."""

    def __init__(self, task: TrainingTask, train: TrainConfig, optim: OptimConfig, dist: DistInfo, run_dir: Path,
                 config_yaml: str, progress: bool = True) -> None:
        self.task, self.train, self.optim, self.dist = task, train, optim, dist
        self.run_dir, self.config_yaml, self.progress = run_dir, config_yaml, progress and dist.is_main
        self.module = task.trainable().to(dist.device)
        self.model = self.module
        if dist.enabled:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.module, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
        self.sched = task.schedule()
        global_batch = self.sched.batch_size * self.sched.world * self.sched.accumulate
        scale = global_batch / optim.lr_reference_batch if optim.lr_reference_batch else 1.0
        groups = [{**g, "lr": g["lr"] * scale} for g in task.param_groups()]
        self.lr = groups[0]["lr"]
        self.optimizer = build_optimizer(groups, self.lr, optim)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(optim, self.sched.steps_per_epoch))
        on_cuda = dist.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if train.amp_dtype == "bfloat16" else torch.float16
        self.use_amp = train.amp and on_cuda
        # scaled in bf16 too: spconv and spconv-triton cast their convolutions to fp16 under any autocast, so the
        # sparse gradients are fp16 whichever dtype the rest runs in
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.epoch = self.start_step = self.global_step = 0
        self._saved_step: int | None = None  # the optimiser step of the newest checkpoint on disk, if any

    # -- checkpoints ---------------------------------------------------------------------------------------
    def resume(self, target: Path) -> Path:
        """Continue from ``target``: a checkpoint file (used as named), or a run folder, whose newest intact
        checkpoint is used (last.pt, else the newest readable step-N.pt, said loudly). Returns the file used."""
        named = target.is_file()
        candidates = [target] if named else checkpoint_candidates(target)
        if not candidates:
            raise DataError(target, "holds no checkpoint to resume from", "start the run again without --resume")
        problems = []
        for path in candidates:
            try:
                state = load_checkpoint(path, self.dist.device, kind="training")
                break
            except DataError as err:
                if named:
                    raise
                problems.append(str(err))
        else:
            raise DataError(target, f"has no intact checkpoint ({'; '.join(problems)[:300]})")
        if problems and self.dist.is_main:
            print(f"seal: warning: {problems[0]}; resuming from {path.name} instead")
        kind = state.get("kind")
        if kind and kind != self.task.name:
            raise DataError(path, f"is a {kind} checkpoint, not a {self.task.name} one",
                            f"continue it with `seal {kind} --resume {path}`")
        try:
            self.module.load_state_dict(state["model"])
        except RuntimeError as err:  # another architecture: the first line of torch's list of mismatches
            raise DataError(path, f"does not fit this {self.task.name} model ({str(err).splitlines()[0]})",
                            "resume with the run's own config.yaml") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch, self.start_step, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        if self.start_step >= self.sched.steps_per_epoch:
            self.epoch, self.start_step = self.epoch + 1, 0
        return path

    def resume_unless_finished(self, resume: Path | None) -> bool:
        """Resume when asked; True (after saying "nothing to do") when the resumed run has no step left."""
        if resume is None:
            return False
        self.resume(resume)
        if self.finished and self.dist.is_main:
            print(f"nothing to do: {self.run_dir} finished at optimiser step {self.global_step} (its outputs are "
                  "as they were; raise optim.epochs or train.max_steps to train on)")
        return self.finished

    @property
    def finished(self) -> bool:
        """Whether the run has nothing left to do (all epochs, or ``max_steps``, done)."""
        max_steps = self.train.max_steps
        return self.epoch >= self.optim.epochs or (max_steps is not None and self.global_step >= max_steps)

    def save(self, step_in_epoch: int) -> None:
        self._saved_step = self.global_step  # every rank: a divergence report names the last good checkpoint
        if not self.dist.is_main:
            return
        payload = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                   "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_state(),
                   "epoch": self.epoch, "step_in_epoch": step_in_epoch, "global_step": self.global_step,
                   "kind": self.task.name, "config": self.config_yaml}
        folder = self.run_dir / "checkpoints"
        save_checkpoint(folder / f"step-{self.global_step}.pt", payload, folder / "last.pt")
        prune_checkpoints(folder, self.train.keep_checkpoints)

    # -- the loop ------------------------------------------------------------------------------------------
    def _micro_batches(self) -> Iterator[tuple[int, int, Any]]:
        """(step in epoch, global micro index, collated batch) from the current position to the epoch's end."""
        rank = self.dist.rank if self.sched.world > 1 else 0  # a one-process schedule over this rank's own data
        micro = self.sched.micro_batches(self.epoch, rank, self.start_step)
        batches = self.task.loader([[(self.epoch, i) for i in m[2]] for m in micro])
        for (step, g, _), batch in zip(micro, batches, strict=True):
            yield step, g, batch

    def fit(self) -> TrainResult:
        """Train to the end (or ``max_steps``); checkpoints periodically, at each epoch's end and at the stop."""
        with StopRequest(self.train.stop_signals) as stop:
            return self._fit(stop)

    def _fit(self, stop: StopRequest) -> TrainResult:
        result = TrainResult(history={t: [] for t in self.task.terms}, lr=self.lr)
        logger = RunLogger(self.run_dir, enabled=self.dist.is_main)
        # the step the newest checkpoint on disk holds (a resumed run starts from it), for a divergence report
        self._saved_step = self.global_step if checkpoint_candidates(self.run_dir) else None
        start, acc, device = time.perf_counter(), self.sched.accumulate, self.dist.device
        while self.epoch < self.optim.epochs and not (result.stopped_at_max_steps or result.preempted_by):
            bar = self._bar()
            self.module.train()
            sums = {t: torch.zeros((), device=device) for t in self.task.terms}
            step_start, step_points = time.perf_counter(), 0
            for step, g, batch in self._micro_batches():
                final = (g // self.sched.world) % acc == acc - 1
                batch = batch.to(device, non_blocking=True) if hasattr(batch, "to") else batch
                generator = torch.Generator(device="cpu").manual_seed(
                    int(np.random.default_rng([self.train.seed, self.epoch, g]).integers(2**62)))
                sync = contextlib.nullcontext() if final or not self.dist.enabled else self.model.no_sync()
                with sync:
                    with torch.autocast(device_type=device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                        losses = self.task.loss(self.model, batch, generator)
                    self.scaler.scale(losses["total"] / acc).backward()
                for t in self.task.terms:
                    sums[t] += losses[t].detach().float() / acc
                step_points += self.task.points(batch)
                if not final:
                    continue
                self.scaler.step(self.optimizer)
                self.scaler.update()
                culprit = self._nonfinite(sums)  # before zero_grad: the gradients are still there to name
                step_lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                self.global_step += 1
                result.points += step_points * self.dist.world
                if culprit is not None:
                    rate = step_points * self.dist.world / max(time.perf_counter() - step_start, 1e-9)
                    self._diverged(result, logger, bar, sums, rate, culprit, step_lr)
                if self.global_step % self.train.log_every == 0 or self.global_step == 1:
                    rate = step_points * self.dist.world / max(time.perf_counter() - step_start, 1e-9)
                    self._log(result, logger, bar, sums, rate)
                if bar is not None:
                    bar.update(1)
                sums = {t: torch.zeros((), device=device) for t in self.task.terms}
                step_start, step_points = time.perf_counter(), 0
                done = step + 1
                at_max = self.train.max_steps is not None and self.global_step >= self.train.max_steps
                preempted = stop.agreed(device, self.dist.enabled)
                if (at_max or preempted or self.global_step % self.train.checkpoint_every == 0
                        or done == self.sched.steps_per_epoch):
                    self.save(done)
                if at_max or preempted:
                    result.stopped_at_max_steps = at_max
                    result.preempted_by = stop.signal_name if preempted else None
                    break
            if bar is not None:
                bar.close()
            if not (result.stopped_at_max_steps or result.preempted_by):
                self.epoch, self.start_step = self.epoch + 1, 0
        logger.close()
        result.steps, result.epochs_completed = self.global_step, self.epoch
        result.seconds = time.perf_counter() - start
        return result

    # -- divergence ------------------------------------------------------------------------------------------
    def _nonfinite(self, sums: dict[str, torch.Tensor]) -> str | None:
        """None when this step's loss terms, gradients (AMP off) and the weights and float buffers after it are all
        finite, else what went non-finite first. One fused scalar and one host read per optimiser step (plus a
        one-flag all-reduce under DDP, so every rank stops at the same step); the culprit is looked for only then."""
        weights = [t for t in (*self.module.parameters(), *self.module.buffers()) if t.is_floating_point()]
        tensors = [*weights] if self.use_amp else [*weights, *(p.grad for p in self.module.parameters()
                                                                if p.grad is not None)]
        norms = [torch.stack([v.float() for v in sums.values()]).abs().amax()]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():  # max |x|: NaN and inf propagate, large finite values do not overflow
            norms.append(torch.stack(torch._foreach_norm(group, math.inf)).amax().float())
        bad = (~torch.isfinite(torch.stack(norms).amax())).float().reshape(1)
        if self.dist.enabled:
            import torch.distributed as tdist

            tdist.all_reduce(bad, op=tdist.ReduceOp.MAX)
        if not bad.item():
            return None
        return self._culprit(sums)

    def _culprit(self, sums: dict[str, torch.Tensor]) -> str:
        """The first loss term (other than the total), gradient, parameter or buffer of this process that is not
        finite, in that order (the model's own order within each)."""
        values = {t: float(v) for t, v in sums.items()}
        terms = [t for t in self.task.terms if t != "total" and not math.isfinite(values[t])]
        if terms or not math.isfinite(values.get("total", 0.0)):
            first = terms[0] if terms else "total"
            also = f" (also {', '.join(terms[1:])})" if len(terms) > 1 else ""
            return f"loss term {first} is {values[first]}{also}"
        if not self.use_amp:
            for name, p in self.module.named_parameters():
                if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                    return f"the gradient of parameter {name} is {_nonfinite_kind(p.grad)}"
        for what, named in (("parameter", self.module.named_parameters()), ("buffer", self.module.named_buffers())):
            for name, t in named:
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    return f"{what} {name} is {_nonfinite_kind(t)} after the step"
        return "a value on another process is not finite"

    def _diverged(self, result: TrainResult, logger: RunLogger, bar, sums: dict[str, torch.Tensor], rate: float,
                  culprit: str, lr: float) -> None:
        """Stop a diverged run: log the step (metrics.csv shows it), record it in summary.json, raise `Diverged`
        on every rank; the step is never checkpointed, so the last good checkpoint stays as it was."""
        self._log(result, logger, bar, sums, rate)
        if bar is not None:
            bar.close()
        logger.close()
        step = self.global_step
        last = self.run_dir / "checkpoints" / "last.pt"
        if self._saved_step is not None and last.is_file():
            kept = f"the last good checkpoint {last} (optimiser step {self._saved_step}) is kept as it was"
        else:
            kept = f"no checkpoint was written before it (train.checkpoint_every={self.train.checkpoint_every})"
        message = (f"{self.task.name} diverged at optimiser step {step} (lr {lr:.3g}): {culprit}; nothing was "
                   f"exported and {kept}; start again with a lower optim.lr in another train.run_dir")
        if self.dist.is_main:
            write_summary(self.run_dir, {
                "run_dir": str(self.run_dir), "kind": self.task.name, "diverged": True,
                "divergence": {"step": step, "culprit": culprit, "lr": lr, "message": message},
                "last_good_checkpoint": str(last) if self._saved_step is not None and last.is_file() else None,
                "last_good_step": self._saved_step, "steps": step, "loss_first": result.first,
                "loss_at_divergence": {t: v[-1] for t, v in result.history.items() if v}})
        raise Diverged(message)

    def _bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.sched.steps_per_epoch, initial=self.start_step, unit="step", dynamic_ncols=True,
                    desc=f"{self.task.name}: epoch {self.epoch + 1}/{self.optim.epochs}", leave=False)

    def _log(self, result: TrainResult, logger: RunLogger, bar, sums: dict[str, torch.Tensor], rate: float) -> None:
        """Read the step's losses back (the only host synchronisation of a step), average over processes."""
        reduced = {t: float(mean_over_ranks(v, self.dist)) for t, v in sums.items()}
        if not result.first:
            result.first = dict(reduced)
        for t, v in reduced.items():
            result.history[t].append(v)
        logger.log(self.global_step, {**{f"loss/{t}": v for t, v in reduced.items()},
                                      "lr": self.optimizer.param_groups[0]["lr"], "throughput/points_per_s": rate})
        if bar is not None:
            bar.set_postfix(loss=f"{reduced['total']:.3f}", pts_s=f"{rate:,.0f}")


def _nonfinite_kind(t: torch.Tensor) -> str:
    """'nan', 'inf' or '-inf' (the first kind present), with how many of its values are not finite."""
    bad = ~torch.isfinite(t)
    kind = "nan" if bool(torch.isnan(t).any()) else ("inf" if bool((t == math.inf).any()) else "-inf")
    return f"{kind} ({int(bad.sum())} of {t.numel()} values not finite)"


def render_losses(result: TrainResult, title: str) -> None:
    """The summary table of a training run: each loss term at its first logged step and over the last 10%."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} ({result.steps} steps, {result.seconds:.1f} s, "
                        f"{result.points / max(result.seconds, 1e-9):,.0f} points/s)", title_justify="left")
    for column in ("loss", "first step", "last 10% of logged steps"):
        table.add_column(column, justify="left" if column == "loss" else "right")
    last = result.last
    for term in result.history:
        table.add_row(term, f"{result.first.get(term, float('nan')):.4f}", f"{last.get(term, float('nan')):.4f}")
    Console().print(table)


def stop_after_preemption(result: TrainResult, run_dir: Path, kind: str, dist: DistInfo) -> None:
    """End a run stopped by a signal: every rank raises `Preempted` (exit status 75) once the checkpoint is out."""
    barrier(dist)
    raise Preempted(f"{kind} stopped by {result.preempted_by} after optimiser step {result.steps}; checkpoint "
                    f"{run_dir / 'checkpoints' / 'last.pt'}; continue with the same command and --resume auto "
                    f"(or --resume {run_dir})")
