"""A run directory a user understands: resolved config, metrics (CSV + TensorBoard), checkpoints, summary."""

from __future__ import annotations

import atexit
import contextlib
import csv
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seal.core.atomic import remove_stale_temporaries, write_text_atomic
from seal.core.errors import ConfigError, DataError
from seal.engine import runrecord

RUN_README = """\
# seal {kind} run

- `config.yaml`        the resolved configuration (re-run with `seal {kind} --config config.yaml`)
- `metrics.csv`        one row per logged step: losses, learning rate, throughput
- `tb/`                TensorBoard scalars: `tensorboard --logdir {tb}`
- `checkpoints/`       `last.pt` (continue with `seal {kind} --resume {run}`) and the newest `step-N.pt`
{outputs}- `summary.json`       what the run did, written when it ends
- `run.json`           what the run trains on (datasets, pretrained file's sha256): `--resume` checks it
- `run.lock`           present while a process writes here (pid, host, start time)
"""
OUTPUTS = {
    "pretrain": "- `backbone.pt`        the pretrained 3D backbone as a plain state dict (+ its config), loadable\n"
                "                       with `torch.load(..., weights_only=True)` or `seal.models.export`\n",
    "probe": "- `model.pt`           backbone + classifier, for `seal evaluate`\n"
             "- `val.csv`, `val.json` per-class IoU and mIoU on the validation split\n",
}
OUTPUTS["finetune"] = OUTPUTS["probe"]


def default_run_dir(kind: str, claim: bool = False) -> Path:
    """runs/KIND-YYYYmmdd-HHMMSS; with ``claim`` the folder is created exclusively, with -2, -3, ... appended
    when a run started in the same second already took the name (so two runs never share a default folder)."""
    base = Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not claim:
        return base
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise ConfigError(f"{base}: 999 runs started in this second; give train.run_dir")


def _run_order(path: Path) -> tuple[str, int]:
    """Run folders by start time, then by the -N suffix of runs started in the same second."""
    stem, _, n = path.name.rpartition("-")
    return (stem, int(n)) if n.isdigit() and len(n) < 4 and stem.count("-") >= 2 else (path.name, 1)


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


RUN_FILES = ("config.yaml", "README.md", "metrics.csv", "summary.json", "checkpoints", "tb", "backbone.pt",
             "model.pt", "val.csv", "val.json", runrecord.RECORD)  # what a run writes: a fresh run refuses them


def prepare_run_dir(configured: str | None, kind: str, resume: Path | None, config_yaml: str, dist,
                    identity: dict[str, Any] | None = None) -> Path:
    """The run folder: the resumed one, ``train.run_dir``, or a new runs/KIND-TIME; locked by rank 0 for the
    life of the process (use `run_folder` to release it when the run ends). See `run_folder`."""
    run_dir, lock = _open_run_dir(configured, kind, resume, config_yaml, dist, identity or {})
    if lock is not None:
        atexit.register(lock.release)
    return run_dir


@contextlib.contextmanager
def run_folder(configured: str | None, kind: str, resume: Path | None, config_yaml: str, dist,
               identity: dict[str, Any] | None = None) -> Iterator[Path]:
    """The run folder, owned by this run while the block runs (rank 0 holds its `runrecord.RunLock`).

    A fresh run refuses a folder holding another run's files; a resume first checks the run's kind, every
    configuration key outside `runrecord.RESUMABLE` and ``identity`` (the datasets, the pretrained file's hash)
    against the run's record, and refuses in one line before anything in the folder changes. Only then are the
    files written: a fresh run's config.yaml, README.md and run.json; a resume rewrites config.yaml only when an
    allowed key changed, and says which. Temporary files a killed writer left behind are removed."""
    run_dir, lock = _open_run_dir(configured, kind, resume, config_yaml, dist, identity or {})
    try:
        yield run_dir
    finally:
        if lock is not None:
            lock.release()


def _open_run_dir(configured, kind, resume, config_yaml, dist, identity):
    if resume is not None:
        run_dir = run_dir_of(resume)
    elif configured:
        run_dir = Path(configured)
    else:
        run_dir = default_run_dir(kind, claim=dist.is_main)
    if not dist.is_main:
        return run_dir, None
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = runrecord.RunLock(run_dir)
    lock.acquire()
    try:
        if resume is not None:
            changes = runrecord.check_resume(run_dir, kind, config_yaml, identity)
            if changes:
                write_text_atomic(run_dir / "config.yaml", config_yaml)
                print(f"seal: --resume: {run_dir / 'config.yaml'} updated: "
                      + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in sorted(changes.items())))
        else:
            taken = [name for name in RUN_FILES if (run_dir / name).exists()]
            if taken:
                raise DataError(run_dir, f"already holds {', '.join(taken)} (another run's, or yours)",
                                f"continue that run with --resume {run_dir}, or choose another train.run_dir")
            write_run_files(run_dir, kind, config_yaml)
            runrecord.write_record(run_dir, kind, identity)
        for folder in (run_dir, run_dir / "checkpoints"):
            removed = remove_stale_temporaries(folder) if folder.is_dir() else []
            if removed:
                print(f"seal: removed {len(removed)} unfinished temporary file(s) in {folder}")
    except BaseException:
        lock.release()
        raise
    return run_dir, lock


def run_dir_of(resume: Path) -> Path:
    """The run folder a ``--resume`` target belongs to (the folder itself, or RUN for RUN/checkpoints/X.pt)."""
    return resume if resume.is_dir() else resume.parent.parent


def checkpoint_candidates(run_dir: Path) -> list[Path]:
    """The checkpoints of a run folder, best first: last.pt, then step-N.pt from the newest."""
    folder = run_dir / "checkpoints"
    steps = sorted(folder.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]) if p.stem[5:].isdigit() else -1,
                   reverse=True)
    return [p for p in [folder / "last.pt", *steps] if p.is_file()]


def latest_run(configured: str | None, kind: str, data_roots: list[str] | None = None) -> Path | None:
    """For ``--resume auto``: ``train.run_dir`` when it holds a checkpoint, else the newest runs/KIND-* that
    does and was trained on ``data_roots`` (newer runs on other data are passed over, said in one line), else
    None (nothing to resume: a fresh run starts)."""
    if configured:
        return Path(configured) if checkpoint_candidates(Path(configured)) else None
    runs = sorted((p for p in Path("runs").glob(f"{kind}-*") if checkpoint_candidates(p)), key=_run_order)
    other = []
    for run in reversed(runs):
        if data_roots is None or runrecord.same_data(run, data_roots):
            if other:
                print(f"seal: --resume auto: passed over {', '.join(map(str, other))} (trained on other data)")
            return run
        other.append(run)
    if other:
        print(f"seal: --resume auto: passed over {', '.join(map(str, other))} (trained on other data)")
    return None


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf; numpy's too) as None, so strict JSON readers take it."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if hasattr(value, "dtype") and getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()  # numpy / torch scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """summary.json as strict JSON: an undefined number (a NaN loss or mIoU) is written as null."""
    text = json.dumps(strict_json(summary), indent=2, default=str, allow_nan=False)
    write_text_atomic(run_dir / "summary.json", text + "\n")
