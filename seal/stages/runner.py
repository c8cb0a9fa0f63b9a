"""Run a stage over its items: skip finished ones, write atomically, report failures, summarise."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from seal.core.errors import SealError

Item = TypeVar("Item")


SKIP_CACHED = "already in the cache"


@dataclass
class StageReport:
    """What a stage run did: items done, skipped (counted by reason), failed (name, reason); ``segments`` holds
    the segment count of every item it computed. Only failures fail a command."""

    stage: str
    folder: Path
    done: int = 0
    skipped_by: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    repaired: int = 0              # finished outputs found corrupt (e.g. truncated) and computed again
    changed: int = 0               # finished outputs whose input changed since (an image replaced) and redone
    segments: list[int] = field(default_factory=list)
    seconds: float = 0.0
    shard: tuple[int, int] = (0, 1)

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by.values())

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` items that need no work, for ``reason`` (a short category, e.g. `SKIP_CACHED`)."""
        self.skipped_by[reason] = self.skipped_by.get(reason, 0) + count

    @property
    def items_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_segments(self) -> float:
        return sum(self.segments) / len(self.segments) if self.segments else 0.0

    def render(self) -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{self.stage} (shard {self.shard[0]}/{self.shard[1]}) -> {self.folder}",
                      title_justify="left")
        for col in ("done", "skipped", "failed", "items/s", "mean segments/item", "seconds"):
            table.add_column(col, justify="right")
        table.add_row(str(self.done), str(self.skipped), str(len(self.failed)), f"{self.items_per_second:.2f}",
                      f"{self.mean_segments:.1f}", f"{self.seconds:.1f}")
        console = Console()
        console.print(table)
        if self.done == 0 and not self.failed and self.skipped_by.get(SKIP_CACHED, 0) == self.skipped > 0:
            console.print(f"nothing to do: all {self.skipped} items were already in the cache")
        else:
            for reason, count in self.skipped_by.items():
                console.print(f"skipped {count}: {reason}")
        if self.changed:
            console.print(f"redone {self.changed} cached file(s) whose input changed since they were computed")
        if self.repaired:
            console.print(f"redone {self.repaired} cached file(s) that were corrupt (truncated or unreadable)")
        for name, reason in self.failed[:20]:
            console.print(f"[red]failed[/red] {name}: {reason}")


@dataclass
class Task(Generic[Item]):
    """One unit of work: a name for reports, its output files, and the function that produces them."""

    name: str
    outputs: list[Path]
    run: Callable[[], list[int]]
    intact: Callable[[Path], bool] | None = None  # a cheap check of a finished output (None: existing is enough)
    changed: Callable[[Path], bool] | None = None  # whether a finished output's input changed since it was made


def run_items(stage: str, folder: Path, tasks: Sequence[Task], shard: tuple[int, int] = (0, 1),
              fail_fast: bool = False, progress: bool = True) -> StageReport:
    """Run the tasks of this shard (every n-th, offset i) that have missing outputs.

    A task's ``run`` writes its outputs atomically and returns one segment count per output it wrote.
    Failures are recorded (name and reason) and the run goes on, unless ``fail_fast``.
    """
    index, count = shard
    mine = [t for k, t in enumerate(tasks) if k % count == index]
    report = StageReport(stage=stage, folder=folder, shard=shard)
    todo = []
    for task in mine:
        broken = [p for p in task.outputs if p.exists() and task.intact is not None and not task.intact(p)]
        for path in broken:  # truncated or otherwise unreadable: redo it
            path.unlink()
        report.repaired += len(broken)
        stale = [p for p in task.outputs if p.exists() and task.changed is not None and task.changed(p)]
        for path in stale:  # computed from an input that has changed since (an image replaced in place)
            path.unlink()
        report.changed += len(stale)
        if all(p.exists() for p in task.outputs):
            report.skip(SKIP_CACHED, len(task.outputs))
        else:
            todo.append(task)
    start = time.perf_counter()
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=stage, unit="item", dynamic_ncols=True)
    for task in todo:
        try:
            counts = task.run()
            report.done += len(counts)
            report.segments += counts
        except (SealError, ValueError, RuntimeError, OSError) as err:
            if fail_fast:
                raise
            report.failed.append((task.name, f"{type(err).__name__}: {err}"))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=len(report.failed))
    if bar is not None:
        bar.close()
    report.seconds = time.perf_counter() - start
    return report


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the last chunk of every complete PNG file


def intact_png(path: Path) -> bool:
    """A PNG that was written to the end (a truncated file lacks its IEND chunk); reads 12 bytes."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            if handle.tell() < 8 + 12:
                return False
            handle.seek(-12, 2)
            return handle.read() == PNG_END
    except OSError:
        return False


def intact_zip(path: Path) -> bool:
    """An .npz (zip) whose central directory at the end is readable (a truncated file's is not)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
