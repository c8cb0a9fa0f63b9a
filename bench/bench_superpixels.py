"""What VFM superpixels cost per 1600x900 camera image: SAM ViT-B/H against SAM 2 Hiera-T/B+ (issue 17).

    python bench/bench_superpixels.py [--budget 600] [--row-limit 240] [--repeats 1] [--out results.json]
    python bench/bench_superpixels.py --rows sam2-t:16,sam-b:16,sam2-b+:32:bfloat16:6 --device cuda

A row is ``model:points[:dtype[:batch]]``: dtype float32 | bfloat16 (SAM 2 only, torch.autocast) and batch N > 0 (SAM 2
only) for N copies of the image through `Sam2Superpixels.batch` (one image-encoder pass for the N, seconds per image).

Every model has RANDOM weights (nothing is downloaded: the time does not depend on the values, except through
how many masks survive the quality thresholds, below). Each row times seal's own method end to end on one image
(`SamSuperpixels` / `Sam2Superpixels`: image encoder, every prompt batch through the decoder, SAM's filtering,
NMS, painting and the uint16 relabelling), after the model is built; the encoder share is timed by hooks on the
image encoder. Thresholds are each method's defaults: random quality scores drop almost every mask before the
per-kept-mask work (RLE, NMS), which a real model does for ~100-200 masks, so the rows are a lower bound on
that part (bench/bench_gpu.py's SAM part measures it on its own). Rows run cheapest first; one that exceeds
``--row-limit`` or what is left of ``--budget`` is marked "not measured": nothing is extrapolated.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # seal from this checkout when it is not installed

NUSCENES_IMAGES = 204_894  # 34,149 keyframes (train + val + test) x 6 cameras
KEYFRAME = REPO.parent / "shared" / "data" / "nuscenes-keyframe"
# name -> (family, architecture)
MODELS = {"sam-b": ("sam", "vit_b"), "sam-h": ("sam", "vit_h"), "sam2-t": ("sam2", "sam2.1_hiera_t"),
          "sam2-b+": ("sam2", "sam2.1_hiera_b+")}
LABELS = {"sam-b": "SAM ViT-B", "sam-h": "SAM ViT-H", "sam2-t": "SAM 2.1 Hiera-T", "sam2-b+": "SAM 2.1 Hiera-B+"}
DEFAULT_ROWS = "sam2-t:16,sam-b:16,sam2-b+:16,sam-h:16,sam2-t:32,sam-b:32,sam2-b+:32,sam-h:32"  # cheapest first
REFERENCES = (("sam-h", 32), ("sam-h", 16))  # the relative cost is against the first of these measured


class RowTimeout(Exception):
    """A row ran past its limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise RowTimeout in the main thread after ``seconds`` (checked between Python calls); <= 0: no limit (a
    caller with its own SIGALRM, such as bench_gpu.py, keeps its alarm)."""
    if seconds <= 0:
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise RowTimeout(f"over {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def bench_image(path: str | None = None) -> tuple[np.ndarray, str]:
    """The real nuScenes CAM_FRONT keyframe image when present (or ``path``), else a synthetic 1600x900 street."""
    from PIL import Image

    candidates = [Path(path)] if path else sorted((KEYFRAME / "samples" / "CAM_FRONT").glob("*.jpg"))
    for candidate in candidates:
        if candidate.is_file():
            with Image.open(candidate) as img:
                return np.asarray(img.convert("RGB")), f"nuScenes {candidate.name[:40]}"
    rng = np.random.default_rng(0)
    image = np.zeros((900, 1600, 3), np.float32)
    image[:] = np.where(np.arange(900)[:, None, None] < 405, [0.55, 0.7, 0.9], [0.35, 0.35, 0.37])
    for _ in range(40):
        top, left = rng.integers(0, 850), rng.integers(0, 1550)
        image[top:top + rng.integers(30, 300), left:left + rng.integers(30, 400)] = rng.uniform(0, 1, 3)
    return (np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1) * 255).astype(np.uint8), "synthetic street"


def build_model(name: str, device: str) -> Any:
    """A full-size model of ``name`` (MODELS) with random weights, in eval mode on ``device``."""
    import torch

    family, arch = MODELS[name]
    torch.manual_seed(0)
    if family == "sam":
        from segment_anything import sam_model_registry

        return sam_model_registry[arch](checkpoint=None).to(device).eval()
    from seal.superpixels.sam2 import build_sam2_model

    return build_sam2_model(arch, device=device)


def build_method(name: str, model: Any, points: int, device: str, dtype: str = "float32") -> Any:
    """seal's superpixel method around ``model`` with its default thresholds and ``points`` x ``points`` prompts."""
    if MODELS[name][0] == "sam":
        from seal.superpixels.sam import SamSuperpixels

        return SamSuperpixels(None, model=model, points_per_side=points, device=device)
    from seal.superpixels.sam2 import Sam2Superpixels

    return Sam2Superpixels(None, model=model, points_per_side=points, device=device, dtype=dtype)


def _encoder_clock(model: Any, device: str) -> tuple[list[float], Callable[[], None]]:
    """Seconds of every image-encoder forward, recorded by hooks; returns (times, remove)."""
    import torch

    encoder, times, started = model.image_encoder, [], []

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def before(module: Any, args: Any) -> None:
        sync()
        started.append(time.perf_counter())

    def after(module: Any, args: Any, output: Any) -> None:
        sync()
        times.append(time.perf_counter() - started.pop())

    handles = [encoder.register_forward_pre_hook(before), encoder.register_forward_hook(after)]
    return times, lambda: [h.remove() for h in handles]


def measure_row(name: str, model: Any, points: int, image: np.ndarray, device: str, repeats: int,
                dtype: str = "float32", batch: int = 0, warmup: int = 0) -> dict[str, Any]:
    """Median seconds per image of ``repeats`` calls (after the lazy set-up and ``warmup`` untimed calls), the
    encoder share, masks kept. ``batch`` > 0 (SAM 2): that many copies through `Sam2Superpixels.batch`."""
    method = build_method(name, model, points, device, dtype)
    method._mask_generator()  # the generator is built on first use: not part of the per-image cost
    for _ in range(warmup):
        method.batch([image] * batch) if batch else method(image)
    encoder_times, remove = _encoder_clock(model, device)
    totals, cpu, maps = [], [], []
    try:
        for _ in range(max(repeats, 1)):
            start, start_cpu = time.perf_counter(), time.process_time()
            maps = method.batch([image] * batch) if batch else [method(image)]
            totals.append((time.perf_counter() - start) / max(batch, 1))
            cpu.append((time.process_time() - start_cpu) / max(batch, 1))
    finally:
        remove()
    seconds = statistics.median(totals)
    encoder = statistics.median(encoder_times) / max(batch, 1) if encoder_times else None
    return {"model": name, "label": LABELS[name], "points": points, "dtype": dtype, "batch": batch,
            "seconds": seconds, "cpu_s": statistics.median(cpu), "encoder_s": encoder, "runs": len(totals),
            "masks": int(maps[-1].max())}


def nuscenes_hours(seconds: float) -> float:
    """Hours for all of nuScenes' camera images at ``seconds`` per image, one process on one device."""
    return seconds * NUSCENES_IMAGES / 3600


def run_rows(spec: str, image: np.ndarray, device: str, repeats: int, budget: float, row_limit: float,
             warmup: int = 0, on_row: Callable[[dict[str, Any]], None] | None = None,
             log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every row of ``spec`` that fits (each passed to ``on_row`` when done); the others come back with ``seconds``
    None and a reason. ``budget`` / ``row_limit`` 0: no limit of this function's own."""
    start, models, rows = time.perf_counter(), {}, []
    for item in spec.split(","):
        name, points, dtype, batch = (item.split(":") + ["float32", "0"])[:4]
        left = budget - (time.perf_counter() - start) if budget else row_limit
        row: dict[str, Any] = {"model": name, "label": LABELS[name], "points": int(points), "dtype": dtype,
                               "batch": int(batch), "seconds": None, "cpu_s": None, "encoder_s": None, "runs": 0,
                               "masks": None}
        if (budget or row_limit) and left < 5:
            rows.append({**row, "note": "not measured: the budget was spent"})
            log(f"[superpixels] {item}: skipped (budget spent)")
            continue
        limit = min(row_limit, left) if row_limit else left
        t0 = time.perf_counter()
        try:
            with time_limit(limit):
                if name not in models:
                    models.clear()  # one full-size model in memory at a time
                    models[name] = build_model(name, device)
                row = measure_row(name, models[name], int(points), image, device, repeats, dtype, int(batch), warmup)
        except RowTimeout as err:
            row["note"] = f"not measured: {err} (row limit incl. model build)"
        except ImportError as err:
            row["note"] = f"not measured: {err}"
        log(f"[superpixels] {item}: wall {row['seconds']} s/img, CPU {row['cpu_s']} s, encoder {row['encoder_s']} s, "
            f"{row['masks']} masks ({time.perf_counter() - t0:.0f} s with the build) {row.get('note', '')}")
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def markdown(rows: list[dict[str, Any]], device: str) -> str:
    """The cost table: seconds per image, relative to SAM ViT-H 32x32 (else ViT-H 16x16, else the first row).

    CPU: the relative cost is of process CPU time (all threads), steadier than wall time on a shared machine."""
    measured = [r for r in rows if r["seconds"] and not r["batch"] and r["dtype"] == "float32"]
    ref = next((r for key in REFERENCES for r in measured if (r["model"], r["points"]) == key), None)
    ref = ref or next(iter(measured), None)
    unit = "GPU" if device.startswith("cuda") else "CPU"
    key = "seconds" if unit == "GPU" else "cpu_s"
    against = f"{ref['label']} {ref['points']}x{ref['points']}" if ref else "-"
    lines = [f"| model | prompts | wall s / image ({unit}) | CPU s / image | encoder wall s | masks kept | relative "
             f"cost (vs {against}) | nuScenes {unit}-hours, wall ({NUSCENES_IMAGES:,} images) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        grid = f"{r['points']}x{r['points']}" + (f", {r['dtype']}" if r["dtype"] != "float32" else "")
        grid += f", encoder batch {r['batch']}" if r["batch"] else ""
        if not r["seconds"]:
            lines.append(f"| {r['label']} | {grid} | {r.get('note', 'not measured')} | - | - | - | - | - |")
            continue
        encoder = f"{r['encoder_s']:.2f}" if r["encoder_s"] is not None else "-"
        relative = f"{r[key] / ref[key]:.2f}" if ref else "-"
        lines.append(f"| {r['label']} | {grid} | {r['seconds']:.2f} | {r['cpu_s']:.2f} | {encoder} | {r['masks']} | "
                     f"{relative} | {nuscenes_hours(r['seconds']):,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"model:points,... (models: {', '.join(MODELS)})")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per row (the median is reported)")
    parser.add_argument("--warmup", type=int, default=0, help="untimed calls per row first (1 on a GPU)")
    parser.add_argument("--budget", type=float, default=600, help="seconds for all rows (0 = no limit)")
    parser.add_argument("--row-limit", type=float, default=300, help="seconds for one row, its model build included")
    parser.add_argument("--image", help="an RGB image file (default: the nuScenes keyframe's CAM_FRONT)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    image, source = bench_image(args.image)
    print(f"[superpixels] {source} {image.shape[1]}x{image.shape[0]}, {args.device}, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}, {platform.processor() or platform.machine()}", flush=True)
    meta = {"image": source, "device": args.device, "threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "torch": torch.__version__}
    done: list[dict[str, Any]] = []

    def save(row: dict[str, Any]) -> None:  # after every row: a killed run keeps what it measured
        done.append(row)
        if args.out:
            payload = {"meta": meta, "rows": done, "table": markdown(done, args.device)}
            args.out.write_text(json.dumps(payload, indent=2) + "\n")

    rows = run_rows(args.rows, image, args.device, args.repeats, args.budget, args.row_limit, args.warmup, save)
    print(markdown(rows, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
