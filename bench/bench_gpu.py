"""GPU benchmark of seal (issues 10, 17): the sparse backbone, pretraining steps, SAM superpixels, the 2D teachers.

    python3 bench/bench_gpu.py --out OUT                      # on a CUDA machine (bench/device_check.sh runs it)
    python3 bench/bench_gpu.py --device cpu --quick --out OUT  # smoke test of the script on a CPU

Parts, each in its own try/except (a failure or a timeout loses that part only; results are written after each):
  sam       Segment Anything ViT-B (RANDOM weights: nothing is downloaded) automatic mask generator on one
            1600x900 image through seal's SamSuperpixels: seconds per image, and what that costs for nuScenes
            (28,130 train keyframes x 6 cameras). Random weights make SAM's quality scores meaningless, so two
            settings bound the real cost: the default thresholds (random scores: almost every mask dropped early,
            a lower bound) and thresholds 0 (every mask goes through all post-processing, an upper bound).
  backbone  Res16UNet34C forward+backward on a batch of 4 nuScenes-scale scans (~34k points each: a simulated
            32-beam ring sweep of a street, voxelised cylindrically at 0.1 m, seal's default VoxelConfig) in fp32,
            fp16 autocast and bf16 autocast: median ms, points/s, peak GPU memory, and the time of
            the first call (kernel compilation and autotuning). Under bf16 autocast spconv(-triton) still runs its
            convolutions in fp16 (its autograd functions are custom_fwd(cast_inputs=float16)): the "notes" column
            says which dtype the convolutions ran in; --bf16-weights adds a bf16-weights row (no autocast).
  pretrain  one full pretraining step (4 frame pairs, 6 cameras, 224x416 crops, default ModelConfig/LossConfig)
            with a ResNet-50 teacher and a ViT-S/16 teacher (random weights), fp16 autocast with a grad scaler as
            the trainer does, broken down into teacher forward, student forward, losses, backward, optimiser step
            (torch.cuda.synchronize between parts; the un-synchronised step time is reported as well); then
            the high-resolution step: 4 pairs x 6 cameras of 448x896 crops with a DINOv2 ViT-L/14 teacher in
            bf16, 6 images per teacher forward (teacher.dtype=bfloat16 teacher.chunk=6).
  teachers  the frozen teacher's forward alone (seal.engine.teacher_forward, as a pretraining step runs it) for
            DINOv2 and DINOv3 ViT-S/B/L at 224x416 and 448x896 crops, 6 cameras x batch 4 = 24 images, bf16,
            all 24 at once and 6 per forward: median ms, images/s, peak GPU memory (weights, inputs and outputs
            included), and the ratio to DINOv2 ViT-S at 224x416. A name not registered (yet) is a row saying so.
            bench/bench_teachers.py holds these rows (and prints them alone, e.g. on a CPU).

Writes OUT/gpu_results.md (one markdown table, printed too) and OUT/gpu_results.json. ``--budget S`` bounds the
whole run: each part gets a share of what is left (SIGALRM), so one slow part cannot starve the others.
``--autotune-configs N`` keeps only the first N autotune candidates of every spconv-triton kernel (0 = all):
first-use autotuning compiles every candidate for every layer shape, which does not fit a few-minute check;
the table says which setting was used.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # seal from this checkout when it is not installed

import gpu_waffleiron  # noqa: E402 - bench/ is on sys.path when this script runs (like bench_superpixels)

NUSCENES_TRAIN_KEYFRAMES = 28_130
NUSCENES_CAMERAS = 6
HDL32_ELEVATIONS_DEG = np.linspace(-30.67, 10.67, 32)  # nuScenes' Velodyne HDL-32E


# ---------------------------------------------------------------------------------------------------------------
# synthetic inputs
# ---------------------------------------------------------------------------------------------------------------
def ring_scan(rng: np.random.Generator, points: int = 34_000, sensor_height: float = 1.84) -> np.ndarray:
    """A simulated 32-beam LiDAR sweep of a street: N x 4 float32 (x, y, z, intensity), about ``points`` returns.

    Ground plane, two building facades (street canyon along x, uneven fronts), parked cars as boxes; range noise
    2 cm; rays hitting nothing within 70 m give no return (as the sky does).
    """
    beams = len(HDL32_ELEVATIONS_DEG)
    steps = int(math.ceil(points / beams / 0.93))
    elev = np.radians(HDL32_ELEVATIONS_DEG)[:, None].repeat(steps, 1).ravel()
    azim = np.linspace(-np.pi, np.pi, steps, endpoint=False)[None, :].repeat(beams, 0).ravel()
    azim = azim + rng.uniform(0, 2 * np.pi / steps)
    d = np.stack([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)], axis=1)
    hits = np.full(d.shape[0], np.inf)
    material = np.zeros(d.shape[0], dtype=np.int64)
    down = d[:, 2] < -1e-6
    hits[down] = sensor_height / -d[down, 2]
    left, right, height = rng.uniform(7, 14), rng.uniform(7, 14), rng.uniform(8, 25)
    front = 1.0 + 0.08 * np.sin(azim * rng.integers(3, 9) + rng.uniform(0, 6))  # facades are not flat
    side = np.where(d[:, 1] > 0, left, right) * front
    t_wall = side / np.maximum(np.abs(d[:, 1]), 1e-6)
    wall_ok = (t_wall * d[:, 2] < height - sensor_height) & (t_wall < hits)
    hits[wall_ok], material[wall_ok] = t_wall[wall_ok], 1
    for _ in range(rng.integers(6, 14)):  # cars: axis-aligned boxes on the road (slab intersection)
        cx, cy = rng.uniform(-40, 40), rng.choice([-1, 1]) * rng.uniform(2, 6)
        lo = np.array([cx - 2.2, cy - 0.9, -sensor_height])
        hi = np.array([cx + 2.2, cy + 0.9, -sensor_height + 1.5])
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = lo / d, hi / d
        t_near = np.nanmax(np.minimum(t1, t2), axis=1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=1)
        box = (t_near <= t_far) & (t_near > 0.5) & (t_near < hits)
        hits[box], material[box] = t_near[box], 2
    keep = np.isfinite(hits) & (hits < 70.0)
    r = hits[keep] + rng.normal(0, 0.02, keep.sum())
    xyz = d[keep] * r[:, None]
    base = np.array([0.15, 0.45, 0.7])[material[keep]]
    intensity = np.clip(base + rng.normal(0, 0.1, keep.sum()), 0, 1)
    scan = np.column_stack([xyz, intensity]).astype(np.float32)
    if scan.shape[0] > points:
        scan = scan[np.sort(rng.choice(scan.shape[0], points, replace=False))]
    return scan


def voxelised_batch(scans: list[np.ndarray], first_index: int = 0):
    """Sparse-tensor inputs of several scans: (coords [M, 4] int32, feats [M, 1] float32, inverses, counts)."""
    from seal.core.config import VoxelConfig
    from seal.core.voxelize import voxelize

    cfg = VoxelConfig()
    coords, feats, inverses = [], [], []
    for b, scan in enumerate(scans):
        vox = voxelize(scan[:, :3], cfg.size, cfg.mode, cfg.angle_bin_deg)
        coords.append(np.column_stack([np.full(vox.num_voxels, first_index + b, np.int32), vox.coords]))
        feats.append(vox.mean(scan[:, 3:4]).astype(np.float32))
        inverses.append(vox.inverse)
    return (torch.from_numpy(np.concatenate(coords)), torch.from_numpy(np.concatenate(feats)), inverses,
            [c.shape[0] for c in coords])


def synthetic_pair_batch(rng: np.random.Generator, pairs: int, cameras: int, crop: tuple[int, int], points: int,
                         segments_per_image: int = 150, paired_fraction: float = 0.4):
    """A PairBatch with the shapes of a real nuScenes batch (built directly: no dataset, no caches).

    Frame t+n is frame t seen 1 m further along the street (95% of its points, new noise); superpoints are 4 m
    cells of the ground-free points, shared by the two frames; superpixels are a grid of about
    ``segments_per_image`` blocks per crop; ``paired_fraction`` of frame t's points pair with a random pixel of
    one of the sample's crops (nuScenes: each point is seen by at most one or two cameras, a crop keeps part).
    """
    from seal.core.batch import PairBatch

    height, width = crop
    scans_t, scans_n, seg_t, seg_n = [], [], [], []
    seg_offset = 0
    for _ in range(pairs):
        scan = ring_scan(rng, points)
        keep = rng.random(scan.shape[0]) < 0.95
        moved = scan[keep].copy()
        moved[:, 0] -= 1.0
        moved[:, :3] += rng.normal(0, 0.01, (moved.shape[0], 3)).astype(np.float32)
        scans_t.append(scan)
        scans_n.append(moved)
        world_t, world_n = scan[:, :3], moved[:, :3] + np.array([1.0, 0, 0], np.float32)
        cells = np.concatenate([np.floor(world_t[:, :2] / 4.0), np.floor(world_n[:, :2] / 4.0)]).astype(np.int64)
        uniq, ids = np.unique(cells, axis=0, return_inverse=True)
        ground = np.concatenate([world_t[:, 2], world_n[:, 2]]) < -1.6
        ids = np.where(ground, -1, ids.reshape(-1) + seg_offset)  # ids unique within the batch, -1 = ground
        seg_offset += uniq.shape[0]
        seg_t.append(ids[: scan.shape[0]])
        seg_n.append(ids[scan.shape[0]:])
    coords_t, feats_t, inv_t, counts_t = voxelised_batch(scans_t, 0)
    coords_n, feats_n, inv_n, counts_n = voxelised_batch(scans_n, pairs)
    offsets_t = np.cumsum([0, *counts_t])[:-1]
    offsets_n = coords_t.shape[0] + np.cumsum([0, *counts_n])[:-1]
    point_voxel_t = np.concatenate([inv + o for inv, o in zip(inv_t, offsets_t, strict=True)])
    point_voxel_n = np.concatenate([inv + o for inv, o in zip(inv_n, offsets_n, strict=True)])
    rows = max(1, round(math.sqrt(segments_per_image * height / width)))
    cols = max(1, round(segments_per_image / rows))
    block = (np.arange(height)[:, None] * rows // height) * cols + (np.arange(width)[None, :] * cols // width)
    per_image = rows * cols
    images = torch.rand(pairs * cameras, 3, height, width)
    pixel_ids = (np.arange(pairs * cameras)[:, None, None] * per_image + block[None]).reshape(-1)
    pair_voxel, pair_sp, pair_pixel = [], [], []
    for b in range(pairs):
        n = scans_t[b].shape[0]
        chosen = rng.choice(n, int(n * paired_fraction), replace=False)
        image = b * cameras + rng.integers(0, cameras, chosen.shape[0])
        r, c = rng.integers(0, height, chosen.shape[0]), rng.integers(0, width, chosen.shape[0])
        pair_voxel.append(inv_t[b][chosen] + offsets_t[b])
        pair_sp.append(image * per_image + block[r, c])
        pair_pixel.append((image * height + r) * width + c)
    as_long = lambda a: torch.from_numpy(np.ascontiguousarray(a)).long()  # noqa: E731
    return PairBatch(
        coords=torch.cat([coords_t, coords_n]), feats=torch.cat([feats_t, feats_n]),
        xyz=torch.rand(coords_t.shape[0] + coords_n.shape[0], 3) * 50, batch_size=2 * pairs,
        point_voxel_t=as_long(point_voxel_t), point_voxel_n=as_long(point_voxel_n),
        segments_t=as_long(np.concatenate(seg_t)), segments_n=as_long(np.concatenate(seg_n)),
        images=images, pixel_superpixel=as_long(pixel_ids), pair_voxel=as_long(np.concatenate(pair_voxel)),
        pair_superpixel=as_long(np.concatenate(pair_sp)), pair_pixel=as_long(np.concatenate(pair_pixel)),
        num_points=int(sum(s.shape[0] for s in scans_t) + sum(s.shape[0] for s in scans_n)),
        ids=[f"synthetic-{b}" for b in range(pairs)])


def street_image(rng: np.random.Generator, height: int = 900, width: int = 1600) -> np.ndarray:
    """An RGB uint8 picture with structure (sky, road, facades, boxes), so masks have edges to follow."""
    image = np.zeros((height, width, 3), np.float32)
    rows = np.arange(height)[:, None, None] / height
    image[:] = np.where(rows < 0.45, [0.55, 0.7, 0.9], [0.35, 0.35, 0.37])
    for _ in range(40):
        top, left = rng.integers(0, height - 50), rng.integers(0, width - 50)
        h, w = rng.integers(30, height // 3), rng.integers(30, width // 4)
        image[top:top + h, left:left + w] = rng.uniform(0, 1, 3)
    image += rng.normal(0, 0.03, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# timing helpers
# ---------------------------------------------------------------------------------------------------------------
class PartTimeout(Exception):
    """A part ran past its share of the budget."""


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise PartTimeout in the main thread after ``seconds`` (None or <= 0: no limit)."""
    if not seconds or seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum, frame):
        raise PartTimeout(f"ran past its {seconds:.0f} s share of the budget")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def limit_triton_autotune(max_configs: int) -> int:
    """Keep the first ``max_configs`` autotune candidates of every spconv-triton kernel; returns how many kernels
    changed. 0, or spconv-triton / triton missing: nothing changes. Only the tile shape of each kernel is affected
    (spconv-triton: "autotuning only reorders the reduction"), never what is computed."""
    if max_configs <= 0:
        return 0
    try:
        import importlib
        import pkgutil

        import spconv_triton.pytorch._impl as impl
        from triton.runtime.autotuner import Autotuner
    except ImportError:
        return 0
    changed = 0
    for info in pkgutil.iter_modules(impl.__path__, impl.__name__ + "."):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - a module that does not import has no kernels to limit
            continue
        for obj in list(vars(module).values()):
            for _ in range(4):  # heuristics / autotune wrappers nest through .fn
                if isinstance(obj, Autotuner):
                    if len(obj.configs) > max_configs:
                        obj.configs = obj.configs[:max_configs]
                        changed += 1
                    break
                obj = getattr(obj, "fn", None)
                if obj is None:
                    break
    return changed


# ---------------------------------------------------------------------------------------------------------------
# the parts
# ---------------------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.quick = args.quick
        self.out = Path(args.out)
        self.rows: list[dict[str, Any]] = []
        self.errors: dict[str, str] = {}
        self.meta: dict[str, Any] = {}
        self.parts_seconds: dict[str, float] = {}

    # -- reporting -----------------------------------------------------------------------------------------
    def row(self, part: str, setting: str, inputs: str, ms: float | None, rate: str = "-",
            peak: float | None = None, first_s: float | None = None, notes: str = "", **extra: Any) -> None:
        self.rows.append({"part": part, "setting": setting, "input": inputs, "ms": ms, "throughput": rate,
                          "peak_gib": peak, "first_call_s": first_s, "notes": notes, **extra})
        self.write()

    def markdown(self) -> str:
        m = self.meta
        lines = [f"# seal GPU benchmark: {m.get('device_name', '?')}", "",
                 f"torch {m.get('torch')} (CUDA {m.get('cuda')}), triton {m.get('triton')}, spconv-triton "
                 f"{m.get('spconv_triton')}, sparse engine {m.get('engine')}, seal {m.get('commit')}; "
                 f"{m.get('mode')} mode, median of {m.get('repeats')}; autotune candidates kept per spconv-triton "
                 f"kernel: {m.get('autotune_configs')} ({m.get('autotune_kernels_limited')} kernels limited); "
                 f"{m.get('date')}.", "",
                 "| part | setting | input | ms (median) | throughput | peak GPU mem (GiB) | first call (s) | notes |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            ms = "-" if r["ms"] is None else f"{r['ms']:,.1f}"
            peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
            first = "-" if r["first_call_s"] is None else f"{r['first_call_s']:.1f}"
            lines.append(f"| {r['part']} | {r['setting']} | {r['input']} | {ms} | {r['throughput']} | {peak} | "
                         f"{first} | {r['notes']} |")
        for part, err in self.errors.items():
            last = (err.strip().splitlines() or ["?"])[-1].replace("|", "/")[:200]
            lines.append(f"| {part} | FAILED | - | - | - | - | - | {last} |")
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_results.md").write_text(self.markdown())
        payload = {"meta": self.meta, "rows": self.rows, "errors": self.errors, "parts_seconds": self.parts_seconds}
        (self.out / "gpu_results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")

    def collect_meta(self) -> None:
        from importlib import metadata

        def version(dist: str) -> str | None:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                return None

        name = (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
        try:
            commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, timeout=10).stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            commit = "?"
        self.meta.update(device_name=name, device=str(self.device), torch=torch.__version__, cuda=torch.version.cuda,
                         triton=version("triton"), spconv_triton=version("spconv-triton"), spconv=version("spconv"),
                         commit=commit, mode="quick" if self.quick else "full", repeats=self.repeats,
                         autotune_configs=self.args.autotune_configs or "all", python=platform.python_version(),
                         date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), budget_s=self.args.budget)
        if self.device.type == "cuda":
            props = torch.cuda.get_device_properties(self.device)
            self.meta.update(gpu_memory_gib=round(props.total_memory / 2**30, 1),
                             compute_capability=f"{props.major}.{props.minor}")

    @property
    def repeats(self) -> int:
        return self.args.repeats or (2 if self.quick else 5)

    # -- set-up --------------------------------------------------------------------------------------------
    def setup_engine(self) -> None:
        from seal.models.sparse import select_engine

        self.meta["engine"] = select_engine(self.args.engine, self.device)
        self.meta["autotune_kernels_limited"] = limit_triton_autotune(self.args.autotune_configs)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False  # torch's default; stated, not assumed
            torch.backends.cudnn.allow_tf32 = True         # torch's default for convolutions (the teachers)

    # -- (iii) SAM -------------------------------------------------------------------------------------------
    def measure(self, fn, repeats: int) -> tuple[float, float]:
        """(first call, median of ``repeats`` further calls) in seconds; with repeats 0 both are the first call."""
        first = timed(fn, self.device)
        if repeats <= 0:
            return first, first
        return first, statistics.median(timed(fn, self.device) for _ in range(repeats))

    def part_sam(self) -> None:
        try:
            from segment_anything import SamPredictor, sam_model_registry
            from segment_anything.utils.amg import mask_to_rle_pytorch, rle_to_mask
        except ImportError:
            self.row("SAM superpixels", "skipped", "-", None, notes="segment-anything is not installed")
            return
        from seal.superpixels.base import paint_masks
        from seal.superpixels.sam import SamSuperpixels

        dev = self.device
        torch.manual_seed(0)
        if self.quick and dev.type == "cpu":  # the full encoder takes ~40 s a call on 2 cores: a smoke test only
            from segment_anything.build_sam import _build_sam

            sam, arch = _build_sam(768, 2, 12, [1]), "ViT-B cut to 2 of its 12 blocks (CPU smoke test)"
        else:
            sam, arch = sam_model_registry["vit_b"](checkpoint=None), "ViT-B"
        sam = sam.to(dev).eval()
        rng = np.random.default_rng(0)
        image = street_image(rng)
        inputs = f"1 image {image.shape[1]}x{image.shape[0]}"
        repeats = 0 if self.quick else 3
        predictor = SamPredictor(sam)
        with torch.inference_mode():
            reset_peak(dev)
            first, encoder = self.measure(lambda: predictor.set_image(image), repeats)
        self.row("SAM superpixels", f"{arch} image encoder (1024x1024 input)", inputs, encoder * 1e3,
                 f"{1 / encoder:.2f} img/s", peak_gib(dev), first, "random weights: the time does not depend on them")
        points = 4 if self.quick else 32
        # thresholds 0: nothing is dropped for its (random) quality score before the full-resolution stability
        # score, thresholding and box steps, which therefore run on every one of the points^2 x 3 masks
        method = SamSuperpixels(None, model=sam, device=str(dev), points_per_side=points, pred_iou_thresh=0.0,
                                stability_score_thresh=0.0)
        segments: list[np.ndarray] = []
        reset_peak(dev)
        first, amg = self.measure(lambda: segments.append(method.segment(image)), min(repeats, 2))
        kept = int(len(np.unique(segments[-1][segments[-1] >= 0])))
        self.row("SAM superpixels", f"{arch} automatic mask generator, {points}x{points} points, thresholds 0",
                 inputs, amg * 1e3, f"{amg:.2f} s/img", peak_gib(dev), first,
                 f"random weights: {kept} masks survive (a real SAM keeps ~100-200), so the per-kept-mask work "
                 "is measured in the next row", seconds_per_image=amg)
        # what a real SAM adds per image: RLE-encode the kept masks on the device, decode them, paint the map
        height, width = image.shape[:2]
        count = 150
        yy, xx = torch.meshgrid(torch.arange(height, device=dev), torch.arange(width, device=dev), indexing="ij")
        centres = torch.tensor(rng.uniform([0, 0], [height, width], (count, 2)), dtype=torch.float32, device=dev)
        radii = torch.tensor(rng.uniform(20, 250, (count, 2)), dtype=torch.float32, device=dev)
        masks = (((yy[None] - centres[:, :1, None]) / radii[:, :1, None]) ** 2
                 + ((xx[None] - centres[:, 1:, None]) / radii[:, 1:, None]) ** 2) <= 1

        def post() -> None:
            decoded = [rle_to_mask(rle) for rle in mask_to_rle_pytorch(masks)]
            paint_masks(decoded, (height, width))

        first, post_s = self.measure(post, repeats)
        self.row("SAM superpixels", f"{count} kept masks: RLE on device, decode, seal's paint_masks", inputs,
                 post_s * 1e3, f"{post_s:.2f} s/img", None, first, "synthetic elliptic masks")
        total = amg + post_s
        images = NUSCENES_TRAIN_KEYFRAMES * NUSCENES_CAMERAS
        hours = total * images / 3600
        self.row("SAM superpixels", f"estimate: {arch} superpixels of one image ({points}x{points} points)", inputs,
                 total * 1e3, f"{total:.2f} s/img", None, None,
                 f"nuScenes {NUSCENES_TRAIN_KEYFRAMES:,} train keyframes x {NUSCENES_CAMERAS} cameras = {images:,} "
                 f"images: {hours:,.1f} GPU-hours on this device (one process)", seconds_per_image=total,
                 nuscenes_images=images, nuscenes_gpu_hours=hours)

    # -- (i) backbone ----------------------------------------------------------------------------------------
    def part_backbone(self) -> None:
        from seal.core.config import BackboneConfig
        from seal.models.minkunet import MinkUNet
        from seal.models.sparse import sparse_tensor

        dev = self.device
        batch, points = (2, 8_000) if self.quick else (4, 34_000)
        rng = np.random.default_rng(1)
        scans = [ring_scan(rng, points) for _ in range(batch)]
        coords, feats, _, _ = voxelised_batch(scans)
        coords, feats = coords.to(dev), feats.to(dev)
        n_points = sum(s.shape[0] for s in scans)
        inputs = f"{batch} scans, {n_points:,} pts / {coords.shape[0]:,} voxels"
        torch.manual_seed(0)
        model = MinkUNet(BackboneConfig()).to(dev).train()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        conv_dtype: list[torch.dtype] = []
        first_conv = model.stem[0]
        first_conv.register_forward_hook(lambda m, i, o: conv_dtype.append(o.features.dtype))
        variants: list[tuple[str, torch.dtype | None, bool]] = [("fp32", None, False)]
        if dev.type == "cuda":
            variants += [("fp16 autocast", torch.float16, False), ("bf16 autocast", torch.bfloat16, False)]
            if self.args.bf16_weights:  # compiles a third set of kernels (bf16): off by default for time
                variants.append(("bf16 weights, no autocast", torch.bfloat16, True))
        for label, dtype, cast_weights in variants:
            net, x_feats = model, feats
            if cast_weights:
                net = copy.deepcopy(model).to(dtype)
                x_feats = feats.to(dtype)

            def step(net=net, x_feats=x_feats, dtype=dtype, cast_weights=cast_weights):
                autocast = dtype is not None and not cast_weights
                with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=autocast):
                    out = net(sparse_tensor(x_feats, coords, batch))
                out.float().square().mean().backward()
                net.zero_grad(set_to_none=True)

            try:
                conv_dtype.clear()
                first = timed(step, dev)
                timed(step, dev)  # warm-up
                reset_peak(dev)
                times = [timed(step, dev) for _ in range(self.repeats)]
            except PartTimeout:
                raise
            except Exception:  # noqa: BLE001 - one precision failing must not lose the others
                self.errors[f"backbone {label}"] = traceback.format_exc()
                self.write()
                continue
            ms = statistics.median(times) * 1e3
            self.row("backbone", f"Res16UNet34C ({params:.1f} M) fwd+bwd, {label}", inputs, ms,
                     f"{n_points / ms * 1e3 / 1e6:.2f} M pts/s", peak_gib(dev), first,
                     f"sparse convs ran in {str(conv_dtype[-1]).replace('torch.', '')}" if conv_dtype else "",
                     voxels=int(coords.shape[0]), points=n_points)

    # -- (ii) pretraining step -------------------------------------------------------------------------------
    def part_pretrain(self) -> None:
        dev = self.device
        pairs, cameras, points = (1, 2, 8_000) if self.quick else (4, 6, 34_000)
        # (teacher, crop, teacher dtype, teacher.chunk): the teacher under the step's fp16 autocast as before
        # teacher.dtype existed, then the high-resolution ViT-L step (quick: a ViT-S, twice the quick crop)
        steps = [("resnet50", (56, 104) if self.quick else (224, 416), torch.float16, 0),
                 ("vit_small_patch16", (56, 104) if self.quick else (224, 416), torch.float16, 0),
                 ("vit_small_patch14_dinov2" if self.quick else "vit_large_patch14_dinov2",
                  (112, 208) if self.quick else (448, 896), torch.bfloat16, 2 if self.quick else 6)]
        batches: dict[tuple[int, int], Any] = {}
        for teacher_name, crop, teacher_dtype, chunk in steps:
            try:
                if crop not in batches:
                    batches.clear()  # one batch of images in memory at a time
                    batches[crop] = synthetic_pair_batch(np.random.default_rng(2), pairs, cameras, crop,
                                                         points).to(dev)
                batch = batches[crop]
                inputs = (f"{pairs} pairs ({batch.num_points:,} pts / {batch.coords.shape[0]:,} voxels), "
                          f"{batch.images.shape[0]} crops {crop[0]}x{crop[1]}, {batch.pair_voxel.shape[0]:,} "
                          "pairings")
                self._pretrain_step(teacher_name, batch, crop, inputs, teacher_dtype, chunk)
            except PartTimeout:
                raise
            except Exception:  # noqa: BLE001 - one teacher failing must not lose the other
                self.errors[f"pretraining step, {teacher_name} {crop[0]}x{crop[1]}"] = traceback.format_exc()
                self.write()
            if dev.type == "cuda":
                torch.cuda.empty_cache()

    def _pretrain_step(self, teacher_name: str, batch, crop: tuple[int, int], inputs: str,
                       teacher_dtype: torch.dtype = torch.float16, chunk: int = 0) -> None:
        """One optimiser step as the trainer takes it (autocast fp16 + grad scaler on CUDA; the teacher through
        `TeacherForward` in ``teacher_dtype``, ``chunk`` images at a time), timed whole and by part."""
        from seal.core.config import LossConfig, ModelConfig
        from seal.engine.teacher_forward import TeacherForward
        from seal.losses.distill import seal_loss
        from seal.models import TEACHERS
        from seal.models.student import SealStudent
        from seal.models.teachers import build_image_backbone

        dev = self.device
        on_cuda = dev.type == "cuda"
        if teacher_name not in TEACHERS:
            self.row("pretraining step", f"{teacher_name} teacher", inputs, None,
                     notes="not registered in seal.models.TEACHERS (yet): skipped")
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the teacher has random weights: the table says so
            teacher = build_image_backbone(teacher_name, None).to(dev)
        if on_cuda:
            teacher.to(memory_format=torch.channels_last)  # as PretrainTask does
        teacher_forward = TeacherForward(teacher, teacher_dtype if on_cuda else torch.float32, chunk)
        torch.manual_seed(0)
        student = SealStudent(ModelConfig(), teacher.out_channels).to(dev).train()
        optimizer = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, dampening=0.1, weight_decay=1e-4)
        scaler = torch.amp.GradScaler("cuda", enabled=on_cuda)
        loss_cfg = LossConfig()
        marks: list[tuple[str, float]] = []
        last: dict[str, float] = {}

        def mark(name: str, breakdown: bool) -> None:
            if breakdown:
                sync(dev)
                marks.append((name, time.perf_counter()))

        def step(breakdown: bool) -> None:
            mark("start", breakdown)
            with torch.autocast(dev.type, dtype=torch.float16, enabled=on_cuda):
                maps = teacher_forward(batch.images)  # float32 maps, whatever the teacher ran in
                mark("teacher forward", breakdown)
                voxels, pixels, _ = student(batch.backbone_input(), maps, crop)
                mark("student forward", breakdown)
                losses = seal_loss(voxels, pixels, batch, loss_cfg, torch.Generator().manual_seed(0))
                mark("losses", breakdown)
            scaler.scale(losses["total"]).backward()
            mark("backward", breakdown)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            mark("optimiser step", breakdown)
            if breakdown:
                last.update({k: float(v.detach()) for k, v in losses.items()})

        first = timed(lambda: step(False), dev)
        timed(lambda: step(False), dev)  # warm-up
        reset_peak(dev)
        totals = [timed(lambda: step(False), dev) for _ in range(self.repeats)]
        peak = peak_gib(dev)
        parts: dict[str, list[float]] = {}
        for _ in range(self.repeats):
            marks.clear()
            step(True)
            for (_, t0), (name, t1) in zip(marks, marks[1:], strict=False):
                parts.setdefault(name, []).append((t1 - t0) * 1e3)
        ms = statistics.median(totals) * 1e3
        breakdown = {k: statistics.median(v) for k, v in parts.items()}
        finite = all(math.isfinite(v) for v in last.values())
        precision = "fp16 autocast" if on_cuda else "fp32"
        teacher_how = (f"{str(teacher_forward.dtype).replace('torch.', '')} teacher"
                       + (f", {chunk} image{'s' if chunk > 1 else ''} per teacher forward" if chunk else ""))
        self.row("pretraining step", f"{teacher_name} teacher (random weights, {teacher_how}) + Res16UNet34C, "
                 f"{precision}", inputs,
                 ms, f"{batch.num_points / ms * 1e3 / 1e6:.2f} M pts/s", peak, first,
                 "; ".join(f"{k} {v:,.1f} ms" for k, v in breakdown.items())
                 + f" (synchronised); losses {'finite' if finite else 'NOT FINITE'}",
                 breakdown_ms=breakdown, losses=last, scaler_scale=float(scaler.get_scale()) if on_cuda else None)

    # -- (iii) teacher forward -----------------------------------------------------------------------------------
    def part_teachers(self) -> None:
        """The rows of bench/bench_teachers.py: 24 images in bf16 on CUDA (quick: 2 small images of ViT-S, fp32)."""
        if str(Path(__file__).resolve().parent) not in sys.path:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_teachers import SIZES, ratio, teacher_timings

        dev = self.device
        if self.quick:
            rows = teacher_timings(dev, "S", ((56, 104), (112, 208)), 2, "float32", (0, 1), 1, progress=False)
        else:
            dtype = "bfloat16" if dev.type == "cuda" else "float32"
            rows = teacher_timings(dev, "S,B,L", SIZES, NUSCENES_CAMERAS * 4, dtype, (0, NUSCENES_CAMERAS),
                                   min(self.repeats, 3), progress=False)
        for r in rows:
            setting = f"{r.label} ViT-{r.size} ({r.name}), {r.dtype}, " + (
                f"{r.chunk} image{'s' if r.chunk > 1 else ''} per forward" if r.chunk else "all images in one forward")
            rate = "-" if r.ms is None else f"{r.images / r.ms * 1e3:,.1f} img/s"
            times = ratio(r, rows)
            notes = r.notes + ("" if times == "-" else f"; {times} the time of DINOv2 ViT-S at 224x416")
            self.row("teacher forward", setting, f"{r.images} images {r.crop[0]}x{r.crop[1]}", r.ms, rate,
                     r.peak_gib, r.first_s, notes, teacher=r.name, runs=r.runs)

    # -- driver ----------------------------------------------------------------------------------------------
    def run(self) -> int:
        start = time.perf_counter()

        def terminated(signum, frame):  # an outer `timeout`: keep what was measured, say where it stopped
            self.errors["terminated"] = f"killed by signal {signum} after {time.perf_counter() - start:.0f} s"
            self.write()
            print(self.markdown(), flush=True)
            os._exit(124)

        signal.signal(signal.SIGTERM, terminated)
        self.collect_meta()
        try:
            self.setup_engine()
        except Exception:  # noqa: BLE001
            self.errors["sparse engine"] = traceback.format_exc()
        self.collect_meta()
        parts = {"sam": (self.part_sam, 1.0), "backbone": (self.part_backbone, 3.0),
                 "teachers": (self.part_teachers, 2.0), "pretrain": (self.part_pretrain, 3.0)}
        parts["superpixels"] = (lambda: part_superpixel_costs(self), 1.0)  # SAM vs SAM 2 (issue 17)
        parts["waffleiron"] = (lambda: gpu_waffleiron.part_waffleiron(self, sys.modules[__name__]), 2.0)  # issue 18
        chosen = [p for p in self.args.parts.split(",") if p]
        for name in chosen:
            if name not in parts:
                raise SystemExit(f"unknown part {name!r}: choose from {', '.join(parts)}")
        for i, name in enumerate(chosen):
            fn, weight = parts[name]
            limit = None
            if self.args.budget:
                left = self.args.budget - (time.perf_counter() - start)
                share = weight / sum(parts[p][1] for p in chosen[i:])
                limit = max(5.0, left * share)
            print(f"[bench] {name}: starting (limit {'none' if limit is None else f'{limit:.0f} s'})", flush=True)
            t0 = time.perf_counter()
            try:
                with time_limit(limit):
                    fn()
            except Exception:  # noqa: BLE001 - PartTimeout included: record it, go on with the next part
                self.errors[name] = traceback.format_exc()
                print(f"[bench] {name} failed:\n{self.errors[name]}", file=sys.stderr, flush=True)
            self.parts_seconds[name] = round(time.perf_counter() - t0, 1)
            print(f"[bench] {name}: done in {self.parts_seconds[name]} s", flush=True)
            self.write()
        self.meta["total_s"] = round(time.perf_counter() - start, 1)
        self.write()
        print(self.markdown())
        return 1 if self.errors else 0


def part_superpixel_costs(bench: Bench) -> None:
    """SAM ViT-B/H against SAM 2.1 Hiera-T/B+ per 1600x900 image at 16x16 and 32x32 prompts (random weights,
    default thresholds, seal's methods end to end: bench/bench_superpixels.py has the rows and the CPU table), plus
    Hiera-B+ in bfloat16 and with 6 images per encoder pass. Also writes OUT/superpixel_costs.md (relative costs)."""
    import bench_superpixels as sp  # bench/ is on sys.path when this script runs

    dev = str(bench.device)
    image, source = sp.bench_image()
    spec = "sam2-t:4" if bench.quick else sp.DEFAULT_ROWS + ",sam2-b+:32:bfloat16,sam2-b+:32:float32:6"
    reset_peak(bench.device)
    done: list[dict[str, Any]] = []

    def report(r: dict[str, Any]) -> None:
        grid = f"{r['points']}x{r['points']} prompts, {r['dtype']}" + (f", {r['batch']} per encoder pass"
                                                                        if r["batch"] else "")
        if r["seconds"] is None:
            bench.row("superpixel cost", f"{r['label']}, {grid}", source, None, notes=r.get("note", ""))
        else:
            hours = sp.nuscenes_hours(r["seconds"])
            bench.row("superpixel cost", f"{r['label']}, {grid}", f"{source} {image.shape[1]}x{image.shape[0]}",
                      r["seconds"] * 1e3, f"{r['seconds']:.2f} s/img", peak_gib(bench.device), None,
                      f"random weights, {r['masks']} masks kept; encoder {r['encoder_s'] or 0:.3f} s; nuScenes "
                      f"{sp.NUSCENES_IMAGES:,} images: {hours:,.1f} hours on this device",
                      seconds_per_image=r["seconds"], nuscenes_gpu_hours=hours)
        reset_peak(bench.device)
        done.append(r)  # the table so far: a part that times out keeps its finished rows
        bench.out.mkdir(parents=True, exist_ok=True)
        (bench.out / "superpixel_costs.md").write_text(sp.markdown(done, dev))

    sp.run_rows(spec, image, dev, 1 if bench.quick else 3, budget=0, row_limit=0, warmup=0 if bench.quick else 1,
                on_row=report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-gpu-out", help="folder for gpu_results.md / gpu_results.json")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small inputs, few repeats (a smoke test)")
    parser.add_argument("--repeats", type=int, default=0, help="timed repeats per row (default 5, quick 2)")
    parser.add_argument("--budget", type=float, default=0, help="seconds for the whole run (0 = no limit)")
    parser.add_argument("--parts", default="sam,backbone,waffleiron,teachers,pretrain",
                        help="comma-separated: sam, backbone, waffleiron, teachers, pretrain, superpixels")
    parser.add_argument("--engine", default="auto", help="model.engine: auto | spconv | spconv-triton")
    parser.add_argument("--bf16-weights", action="store_true",
                        help="also time the backbone with bf16 weights and no autocast (bf16 sparse kernels)")
    parser.add_argument("--autotune-configs", type=int,
                        default=int(os.environ.get("SEAL_TRITON_AUTOTUNE_CONFIGS", "0") or 0),
                        help="spconv-triton autotune candidates kept per kernel (0 = all; env "
                             "SEAL_TRITON_AUTOTUNE_CONFIGS)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (use --device cpu --quick for a smoke test)")
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
