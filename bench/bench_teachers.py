"""Benchmark the frozen 2D teachers' forward (DINOv2 and DINOv3 ViT-S/B/L) at 224x416 and 448x896; prints a table.

    python bench/bench_teachers.py                                  # CPU: S and B, 2 images, fp32, median of 3
    python bench/bench_teachers.py --device cuda --images 24 --dtype bfloat16 --chunk 6 --sizes S,B,L

Each row is `seal.engine.teacher_forward.TeacherForward` (what a pretraining step runs: ``teacher.dtype``,
``teacher.chunk``, maps cast to float32) on random images with random weights (nothing is downloaded; the time
does not depend on the weights). A teacher name that is not registered (yet) in `seal.models.TEACHERS`, or that
this timm cannot build, is a row saying so instead of a failure. The ratio column is each row's time over
DINOv2 ViT-S/14 at 224x416 in the same run (the figure to compare across machines). On CUDA the peak memory
column is torch's peak allocation during the timed forwards (weights, the input images and the output included).
`bench/bench_gpu.py` (the device check) runs the same rows at 6 cameras x batch 4 = 24 images in bf16.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # seal from this checkout when it is not installed

# (label, model size, registered name): DINOv2 (patch 14) and DINOv3 (patch 16; being registered now)
TEACHER_CASES: tuple[tuple[str, str, str], ...] = (
    ("DINOv2", "S", "vit_small_patch14_dinov2"), ("DINOv2", "B", "vit_base_patch14_dinov2"),
    ("DINOv2", "L", "vit_large_patch14_dinov2"), ("DINOv3", "S", "vit_small_patch16_dinov3"),
    ("DINOv3", "B", "vit_base_patch16_dinov3"), ("DINOv3", "L", "vit_large_patch16_dinov3"),
)
SIZES: tuple[tuple[int, int], ...] = ((224, 416), (448, 896))  # crop (height, width): the paper's, then twice it
REFERENCE = ("vit_small_patch14_dinov2", (224, 416))  # the ratio column's denominator
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class TeacherTiming:
    """One measured (or skipped) row."""

    label: str
    size: str
    name: str
    crop: tuple[int, int]
    images: int
    dtype: str
    chunk: int
    ms: float | None = None          # median of the timed forwards
    runs: int = 0                    # how many were timed
    first_s: float | None = None     # the first forward (allocations, kernel selection)
    peak_gib: float | None = None    # CUDA only
    notes: str = ""

    @property
    def key(self) -> tuple[str, tuple[int, int]]:
        return self.name, self.crop


def build_teacher(name: str, device: torch.device) -> tuple[torch.nn.Module | None, str]:
    """The frozen teacher ``name`` with random weights on ``device``, or (None, why) when it cannot be built here."""
    from seal.core.errors import ConfigError
    from seal.models import TEACHERS
    from seal.models.teachers import build_image_backbone

    if name not in TEACHERS:
        return None, "not registered in seal.models.TEACHERS (yet): skipped"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random weights: the table says so
            torch.manual_seed(0)
            teacher = build_image_backbone(name, None)
    except ConfigError as err:  # e.g. a timm without the architecture
        return None, f"cannot be built here: {err}"
    teacher.to(device)
    if device.type == "cuda":
        teacher.to(memory_format=torch.channels_last)  # as PretrainTask does
    return teacher, ""


def time_teacher(teacher: torch.nn.Module, crop: tuple[int, int], images: int, dtype: torch.dtype, chunk: int,
                 device: torch.device, repeats: int, budget_s: float | None = None
                 ) -> tuple[list[float], float, float | None, tuple[int, ...]]:
    """(seconds of each timed forward, first-call s, CUDA peak GiB or None, output shape) of ``TeacherForward`` on
    random images. On CUDA the first call is a warm-up (allocations, kernel selection) and is not timed; on a CPU
    it is the first timed run. Runs stop after ``repeats``, or once another would pass ``budget_s`` (one at least)."""
    from seal.engine.teacher_forward import TeacherForward

    forward = TeacherForward(teacher, dtype, chunk)
    x = torch.rand(images, 3, *crop, generator=torch.Generator().manual_seed(0)).to(device)
    shape: tuple[int, ...] = ()

    def once() -> float:
        nonlocal shape
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = forward(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        shape = tuple(out.shape)
        del out
        return time.perf_counter() - start

    first = once()
    times = [] if device.type == "cuda" else [first]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    while len(times) < repeats and (budget_s is None or sum(times) + (times or [first])[-1] <= budget_s):
        times.append(once())
    if not times:
        times.append(once())
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return times, first, peak, shape


def teacher_timings(device: torch.device, sizes: str = "S,B", crops: tuple[tuple[int, int], ...] = SIZES,
                    images: int = 2, dtype: str = "float32", chunks: tuple[int, ...] = (0,), repeats: int = 3,
                    budget_s: float | None = None, progress: bool = True) -> list[TeacherTiming]:
    """Every (teacher of the model sizes ``sizes``, crop, chunk) row; each teacher is built once, then freed.
    ``budget_s`` bounds the timed runs of one row (see `time_teacher`)."""
    wanted = {s.strip().upper() for s in sizes.split(",") if s.strip()}
    rows: list[TeacherTiming] = []
    for label, size, name in TEACHER_CASES:
        if size not in wanted:
            continue
        teacher, why = build_teacher(name, device)
        for crop in crops:
            for chunk in chunks:
                row = TeacherTiming(label, size, name, crop, images, dtype, chunk)
                rows.append(row)
                if teacher is None:
                    row.notes = why
                    continue
                try:
                    times, row.first_s, row.peak_gib, shape = time_teacher(teacher, crop, images, DTYPES[dtype],
                                                                           chunk, device, repeats, budget_s)
                    row.ms, row.runs = statistics.median(times) * 1e3, len(times)
                    row.notes = f"maps {shape[1]}x{shape[2]}x{shape[3]}"
                except torch.OutOfMemoryError:
                    row.notes = "out of GPU memory"
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                if progress:
                    print(f"[bench] {label} ViT-{size} {crop[0]}x{crop[1]} chunk {chunk or 'all'}: "
                          f"{'-' if row.ms is None else f'{row.ms:,.1f} ms'} {row.notes}", file=sys.stderr,
                          flush=True)
        del teacher
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def ratio(row: TeacherTiming, rows: list[TeacherTiming]) -> str:
    """The row's time over the reference row's (DINOv2 ViT-S/14 at 224x416, same chunk), or "-"."""
    ref = next((r for r in rows if r.key == REFERENCE and r.chunk == row.chunk and r.ms), None)
    return "-" if ref is None or row.ms is None else f"{row.ms / ref.ms:.2f}x"


def markdown(rows: list[TeacherTiming]) -> str:
    """The rows as one markdown table."""
    lines = ["| teacher | name | input | images | precision | chunk | ms (median) | runs | images/s "
             "| vs DINOv2-S 224x416 | peak GPU mem (GiB) | notes |", "|---" * 12 + "|"]
    for r in rows:
        ms = "-" if r.ms is None else f"{r.ms:,.1f}"
        rate = "-" if r.ms is None else f"{r.images / r.ms * 1e3:,.2f}"
        peak = "-" if r.peak_gib is None else f"{r.peak_gib:.2f}"
        lines.append(f"| {r.label} ViT-{r.size} | {r.name} | {r.crop[0]}x{r.crop[1]} | {r.images} | {r.dtype} | "
                     f"{r.chunk or 'all'} | {ms} | {r.runs or '-'} | {rate} | {ratio(r, rows)} | {peak} | {r.notes} |")
    return "\n".join(lines) + "\n"


def _load() -> str:
    """The 1/5/15-minute load averages (the CPU is often shared: say how busy it was)."""
    return "/".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--sizes", default="S,B", help="model sizes, comma-separated: S, B, L")
    parser.add_argument("--images", type=int, default=2, help="images per teacher forward call")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES), help="teacher.dtype (CUDA only)")
    parser.add_argument("--chunks", default="0", help="teacher.chunk values, comma-separated (0 = all at once)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per row at most")
    parser.add_argument("--row-budget", type=float, default=40.0,
                        help="seconds of timed forwards per row: no further run once it would pass this (0 = none)")
    parser.add_argument("--crops", default="224x416,448x896", help="crops HxW, comma-separated")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    dtype = args.dtype if device.type == "cuda" else "float32"  # as the engine: reduced precision is for CUDA
    crops = tuple(tuple(int(v) for v in c.lower().split("x")) for c in args.crops.split(","))
    start = time.perf_counter()
    load_start = _load()
    chunks = tuple(int(c) for c in args.chunks.split(","))
    rows = teacher_timings(device, args.sizes, crops, args.images, dtype, chunks, args.repeats,  # type: ignore[arg-type]
                           args.row_budget or None)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    warm = "after 1 untimed warm-up" if device.type == "cuda" else "the first run included"
    print(f"# seal teacher forward on {name}: torch {torch.__version__}, median of up to {args.repeats} runs "
          f"({warm}; at most {args.row_budget:g} s of runs per row), random weights; "
          f"{time.perf_counter() - start:.0f} s in all; load average {load_start} at the start, {_load()} at the end\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
