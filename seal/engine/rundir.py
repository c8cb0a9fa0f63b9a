"""A run directory a user understands: resolved config, metrics (CSV + TensorBoard), checkpoints, summary."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from seal.core.atomic import remove_stale_temporaries, write_text_atomic

RUN_README = """\
# seal {kind} run

- `config.yaml`        the resolved configuration (re-run with `seal {kind} --config config.yaml`)
- `metrics.csv`        one row per logged step: losses, learning rate, throughput
- `tb/`                TensorBoard scalars: `tensorboard --logdir {tb}`
- `checkpoints/`       `last.pt` (continue with `seal {kind} --resume {run}`) and the newest `step-N.pt`
{outputs}- `summary.json`       what the run did, written when it ends
"""
OUTPUTS = {
    "pretrain": "- `backbone.pt`        the pretrained 3D backbone as a plain state dict (+ its config), loadable\n"
                "                       with `torch.load(..., weights_only=True)` or `seal.models.export`\n",
    "probe": "- `model.pt`           backbone + classifier, for `seal evaluate`\n"
             "- `val.csv`, `val.json` per-class IoU and mIoU on the validation split\n",
}
OUTPUTS["finetune"] = OUTPUTS["probe"]


def default_run_dir(kind: str) -> Path:
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="") as handle:
        return next(csv.reader(handle), [])


class RunLogger:
    """Writes metrics to ``metrics.csv`` and TensorBoard (rank 0 only; other ranks get a no-op logger)."""

    def __init__(self, run_dir: Path | None, enabled: bool = True) -> None:
        self.enabled = enabled and run_dir is not None
        self.run_dir = run_dir
        self.writer = None
        self._csv = None
        self._fields: list[str] | None = None
        if self.enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tb"))
            except ImportError:  # tensorboard missing: the CSV still has everything
                self.writer = None

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)
        row = {"step": step, **values}
        path = self.run_dir / "metrics.csv"
        if self._fields is None:
            new = not path.exists() or path.stat().st_size == 0
            # a resumed run keeps the header it has (a run from before a loss term was added still reads right)
            self._fields = list(row) if new else _csv_header(path) or list(row)
            self._csv = open(path, "a", newline="")  # noqa: SIM115 - kept open for the run
            self._writer = csv.DictWriter(self._csv, fieldnames=self._fields, extrasaction="ignore")
            if new:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._csv.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._csv is not None:
            self._csv.close()


def write_run_files(run_dir: Path, kind: str, config_yaml: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", config_yaml)
    write_text_atomic(run_dir / "README.md", RUN_README.format(kind=kind, tb=run_dir / "tb", run=run_dir,
                                                               outputs=OUTPUTS.get(kind, "")))


def prepare_run_dir(configured: str | None, kind: str, resume: Path | None, config_yaml: str, dist) -> Path:
    """The run folder: the resumed one, ``train.run_dir``, or runs/KIND-TIME; its files written by rank 0 (the
    config as resolved now), and temporary files a killed writer left behind removed."""
    run_dir = run_dir_of(resume) if resume is not None else Path(configured or default_run_dir(kind))
    if dist.is_main:
        write_run_files(run_dir, kind, config_yaml)
        for folder in (run_dir, run_dir / "checkpoints"):
            removed = remove_stale_temporaries(folder) if folder.is_dir() else []
            if removed:
                print(f"seal: removed {len(removed)} unfinished temporary file(s) in {folder}")
    return run_dir


def run_dir_of(resume: Path) -> Path:
    """The run folder a ``--resume`` target belongs to (the folder itself, or RUN for RUN/checkpoints/X.pt)."""
    return resume if resume.is_dir() else resume.parent.parent


def checkpoint_candidates(run_dir: Path) -> list[Path]:
    """The checkpoints of a run folder, best first: last.pt, then step-N.pt from the newest."""
    folder = run_dir / "checkpoints"
    steps = sorted(folder.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]) if p.stem[5:].isdigit() else -1,
                   reverse=True)
    return [p for p in [folder / "last.pt", *steps] if p.is_file()]


def latest_run(configured: str | None, kind: str) -> Path | None:
    """For ``--resume auto``: ``train.run_dir`` when it holds a checkpoint, else the newest runs/KIND-* that
    does (run folders are named by start time), else None (nothing to resume: a fresh run starts)."""
    if configured:
        return Path(configured) if checkpoint_candidates(Path(configured)) else None
    runs = sorted((p for p in Path("runs").glob(f"{kind}-*") if checkpoint_candidates(p)), key=lambda p: p.name)
    return runs[-1] if runs else None


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    write_text_atomic(run_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
