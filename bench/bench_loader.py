"""Benchmark the pretraining data pipeline of one loader worker at nuScenes scale; prints tables of medians.

    python bench/bench_loader.py [--data /tmp/seal-bench-loader] [--images png jpeg] [--repeats 7] [--no-compare]

Set-up (not timed): a synthetic sequence in the nuScenes shape (6 cameras of 1600x900, 32 beams, ~34k points per
frame), generated once under --data and reused, then the superpixel (SLIC) and superpoint stages of
`pair_samples()` with the packaged nuScenes preset. The generator writes PNG images; real nuScenes images are
JPEG (~145 KB each), which decode 4x faster, so a copy of the dataset with its images re-encoded as JPEG
(quality 90, ~115 KB) is measured too. The SemanticKITTI reader looks for NNNNNN.png and Pillow decodes by
content, so the JPEG copy keeps those names.

Timed: `PairSamples.__getitem__` over every frame pair (what one DataLoader worker does per sample) and
`collate_pairs` over batches of --batch. Each part is timed by wrapping, inside this script only, the library
functions the sample code calls: image decode (`Camera.image` -> `read_image`), superpixel read
(`load_frame_superpixels`), pairing (`pair_points`), augmentation (crops, rotation/flip, cuboid drop),
voxelisation (`voxelize` + voxel means); "frame read" is the rest (points, labels, superpoint file, image
headers, stacking).

Every measurement runs in a fresh process, like a loader worker. --compare (on by default) also runs the code
path from before the loader speed-ups (the `legacy_*` copies below, reading 16-bit superpixel maps as the cache
stored them before) in a second process, alternating repeats with the current one so that both see the same
machine load; it checks that both produce bit-identical samples and prints the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import resource
import shutil
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

CAMERAS, WIDTH, BEAMS, AZIMUTH_STEPS = 6, 1600, 32, 1160  # nuScenes: 6 x 1600x900, 32 beams, ~34k points
JPEG_QUALITY = 90
PARTS = ("image decode", "superpixel read", "pairing", "augmentation", "voxelisation", "frame read")
LEGACY_MAPS = "legacy-superpixels"  # 16-bit copies of the cached maps, as the cache stored them before


# --- the code path before the speed-ups, kept for the comparison --------------------------------------------

def legacy_read_image(path: Path, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """`seal.core.io.read_image` before: ``convert("RGB")`` even of RGB images (a full-size copy)."""
    from PIL import Image, UnidentifiedImageError

    from seal.core.errors import DataError

    if not path.is_file():
        raise DataError(path, "image file not found")
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(path, f"cannot be decoded as an image: {err}") from err
    if expect_size is not None and (array.shape[1], array.shape[0]) != tuple(expect_size):
        raise DataError(path, f"is {array.shape[1]}x{array.shape[0]} px but {expect_size[0]}x{expect_size[1]} "
                              "was expected")
    return array


def legacy_cuboid_drop(xyz: np.ndarray, rng: np.random.Generator, pair_point: np.ndarray | None = None,
                       pair_image: np.ndarray | None = None, num_images: int = 0, min_pairings: int = 1024,
                       size_range: tuple[float, float] = (0.05, 0.4), attempts: int = 5) -> np.ndarray:
    """`seal.samples.augment.cuboid_drop` before: reductions along the short axis of the Nx3 view."""
    keep_all = np.ones(xyz.shape[0], dtype=bool)
    if xyz.shape[0] == 0:
        return keep_all
    extent = xyz.max(axis=0) - xyz.min(axis=0)
    before = (np.bincount(pair_image, minlength=num_images) if pair_image is not None and num_images
              else None)
    for _ in range(attempts):
        centre = xyz[rng.integers(0, xyz.shape[0])]
        half = extent * rng.uniform(*size_range, size=3) / 2
        keep = ~np.all(np.abs(xyz - centre) <= half, axis=1)
        if before is None:
            return keep
        after = np.bincount(pair_image[keep[pair_point]], minlength=num_images)
        if np.all((after >= min_pairings) | (after >= before)):
            return keep
    return keep_all


def legacy_save_segments(path: Path, segments: np.ndarray) -> None:
    """`seal.superpixels.base.save_segments` before: always a 16-bit PNG, zlib's default level."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(segments.astype(np.uint16)).save(path, format="PNG")


def legacy_map_path(cache, frame_id: str, camera: str) -> Path:
    """Where the 16-bit copy of a cached map lives: CACHE_ROOT/legacy-superpixels/METHOD-KEY/..."""
    from seal.superpixels.stage import superpixel_path

    copies = cache.folder.parents[1] / LEGACY_MAPS / cache.folder.name
    return copies / superpixel_path(cache, frame_id, camera).relative_to(cache.folder)


def write_legacy_maps(samples) -> None:
    """16-bit copies of the cached superpixel maps of the pairs' first frames (written once)."""
    from seal.superpixels.base import load_segments
    from seal.superpixels.stage import superpixel_path

    for s, t in samples.items:
        frame = samples.dataset.sequences[s][t]
        for camera in frame.cameras:
            target = legacy_map_path(samples.superpixels, frame.id, camera.name)
            if not target.is_file():
                legacy_save_segments(target, load_segments(superpixel_path(samples.superpixels, frame.id,
                                                                           camera.name)))


# --- timing (installed in the measuring process only) -----------------------------------------------------------

class Timer:
    """Seconds per part; `wrap` times a function under a part name (calls nested in a timed call count there)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._depth = 0

    def wrap(self, part: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start
                self._depth -= 1
        return timed


def instrument(timer: Timer, legacy: bool) -> None:
    """Wrap the library functions `PairSamples.__getitem__` calls with ``timer`` (legacy: the old versions)."""
    import seal.core.io as io
    import seal.samples.pairs as pairs
    from seal.core.voxelize import Voxelization
    from seal.superpixels.base import load_segments

    read_image, load_maps = io.read_image, pairs.load_frame_superpixels
    if legacy:
        read_image = legacy_read_image
        pairs.keep_freed_memory = lambda: False  # glibc's default heap policy
        pairs.cuboid_drop = legacy_cuboid_drop

        def load_maps(cache, frame):
            return [load_segments(legacy_map_path(cache, frame.id, c.name)) for c in frame.cameras]

    io.read_image = timer.wrap("image decode", read_image)  # Camera.image imports it from seal.core.io
    pairs.load_frame_superpixels = timer.wrap("superpixel read", load_maps)
    pairs.pair_points = timer.wrap("pairing", pairs.pair_points)
    for name in ("random_resized_crop", "apply_crop_image", "apply_crop_labels", "apply_crop_pairings",
                 "cuboid_drop", "rotate_flip"):
        setattr(pairs, name, timer.wrap("augmentation", getattr(pairs, name)))
    pairs.voxelize = timer.wrap("voxelisation", pairs.voxelize)
    Voxelization.mean = timer.wrap("voxelisation", Voxelization.mean)


# --- set-up ----------------------------------------------------------------------------------------------------

def jpeg_copy(root: Path, target: Path) -> Path:
    """A copy of the synthetic dataset whose camera images are JPEG (under their .png names); made once."""
    from PIL import Image

    if (target / "done").is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(root, target, ignore=shutil.ignore_patterns("image_*"))
    for folder in root.glob("sequences/*/image_*"):
        (target / folder.relative_to(root)).mkdir(parents=True)
        for image in folder.glob("*.png"):
            with Image.open(image) as img:
                img.save(target / image.relative_to(root), format="JPEG", quality=JPEG_QUALITY)
    (target / "done").touch()
    return target


def prepare(data: Path, frames: int, images: str, progress: bool = True):
    """(config, pair samples, seconds making the data, seconds in the stages): the synthetic nuScenes-shaped
    dataset with ``images`` "png" or "jpeg" (generated once, then reused) and its samples, caches filled."""
    from seal.core.schemas import PretrainSchema
    from seal.core.settings import load_config, resolve_preset
    from seal.data import open_configured
    from seal.engine.pretrain import pair_samples
    from seal.synth import generate_dataset

    data = data / f"{frames}-frames"  # the generator refuses to change a dataset's size in place
    start = time.perf_counter()
    root = generate_dataset(data / "synth", sequences=1, frames=frames, seed=0, cameras=CAMERAS,
                            image_width=WIDTH, beams=BEAMS, azimuth_steps=AZIMUTH_STEPS, progress=progress)
    if images == "jpeg":
        root = jpeg_copy(root, data / "synth-jpeg")
    made = time.perf_counter() - start
    cfg = load_config(PretrainSchema, resolve_preset("nuscenes", ("pretrain",)),
                      [f"data.path={root}", "data.kind=semantickitti", f"cache.root={data / f'cache-{images}'}"])
    start = time.perf_counter()
    samples = pair_samples(cfg, open_configured(cfg.data), progress=progress)
    return cfg, samples, made, time.perf_counter() - start


# --- the measuring processes -------------------------------------------------------------------------------------

_worker: dict = {}


def worker_init(data: Path, frames: int, images: str, legacy: bool) -> None:
    """A process that samples like one loader worker (legacy: the old code path)."""
    _, samples, _, _ = prepare(data, frames, images, progress=False)
    timer = Timer()
    instrument(timer, legacy)
    samples[0]  # warm-up: imports, first allocations
    _worker.update(samples=samples, timer=timer)


def worker_repeat(batch: int) -> tuple[dict[str, float], list[str]]:
    """One pass over every sample and its collation: ms per sample of every part, and a digest per sample."""
    from seal.samples.pairs import collate_pairs

    samples, timer = _worker["samples"], _worker["timer"]
    timer.seconds.clear()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    out = [samples[i] for i in range(len(samples))]
    getitem = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    batches = math.ceil(len(out) / batch)
    start = time.perf_counter()
    for b in range(batches):
        collate_pairs([out[(b * batch + k) % len(out)] for k in range(batch)])
    collate = (time.perf_counter() - start) / (batches * batch)
    n = len(out)
    row = {part: 1e3 * timer.seconds.get(part, 0.0) / n for part in PARTS[:-1]}
    row["frame read"] = 1e3 * getitem / n - sum(row.values())
    row["collate"] = 1e3 * collate
    row["total"] = 1e3 * getitem / n + row["collate"]
    row["page faults"] = faults / n
    return row, [digest(s) for s in out]


def decode_alone(paths: list[Path], passes: int, legacy: bool) -> tuple[float, float]:
    """(median ms, page faults) per image of `Camera.image`'s decoder over ``paths`` in this fresh process:
    `read_image` under the heap policy `PairSamples` sets, or the old decoder under glibc's default policy."""
    import seal.core.io as io

    read = legacy_read_image if legacy else io.read_image
    if not legacy:
        io.keep_freed_memory()
    for path in paths:  # warm-up: Pillow's plugins, first allocations
        read(path)
    times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(passes):
        start = time.perf_counter()
        for path in paths:
            read(path)
        times.append((time.perf_counter() - start) / len(paths))
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return 1e3 * statistics.median(times), faults / (passes * len(paths))


def digest(pair) -> str:
    """SHA-256 of every entry of a sample (key, dtype, shape, bytes): equal digests = bit-identical samples. The
    keys are those of the dicts samples were before `PairSample` (``coords_t``...), so digests stay comparable."""
    frames = (("t", pair.frame_t), ("n", pair.frame_n))
    sample = {f"{k}_{tag}": v for tag, frame in frames for k, v in vars(frame).items()}
    sample.update({k: v for k, v in vars(pair).items() if not k.startswith("frame_")})
    h = hashlib.sha256()
    for key in sorted(sample):
        value = np.ascontiguousarray(sample[key]) if isinstance(sample[key], np.ndarray) else sample[key]
        h.update(f"{key}:{getattr(value, 'dtype', type(value))}:{getattr(value, 'shape', ())}".encode())
        h.update(value.tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return h.hexdigest()


def spawn(**kwargs) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=get_context("spawn"), **kwargs)


def measure(args: argparse.Namespace, images: str) -> dict[str, dict]:
    """Per code path ("before", "after"): the median row and the sample digests, with ``images``. The two
    processes alternate repeat by repeat, so both see the same machine load."""
    paths = ["before", "after"] if args.compare else ["after"]
    pools = {p: spawn(initializer=worker_init, initargs=(args.data, args.frames, images, p == "before"))
             for p in paths}
    rows: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
    out: dict[str, dict] = {p: {} for p in paths}
    try:
        for r in range(args.repeats):
            for p in paths if r % 2 == 0 else paths[::-1]:
                row, out[p]["digests"] = pools[p].submit(worker_repeat, args.batch).result()
                rows[p].append(row)
    finally:
        for pool in pools.values():
            pool.shutdown()
    for p in paths:
        out[p]["row"] = {k: statistics.median(r[k] for r in rows[p]) for k in rows[p][0]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/seal-bench-loader"),
                        help="where the synthetic data and stage caches live (reused when present)")
    parser.add_argument("--frames", type=int, default=5, help="frames of the synthetic sequence (pairs: one fewer)")
    parser.add_argument("--images", nargs="+", choices=("png", "jpeg"), default=["png", "jpeg"],
                        help="camera image formats to measure (png: as generated; jpeg: like real nuScenes)")
    parser.add_argument("--repeats", type=int, default=7, help="passes over every pair; the tables show medians")
    parser.add_argument("--batch", type=int, default=4, help="pairs per collated batch (batch per GPU)")
    parser.add_argument("--step-s", type=float, nargs="+", default=[0.3, 0.5],
                        help="GPU step times (s) to size the loader workers for")
    default_keyframe = Path(__file__).resolve().parents[2] / "shared/data/nuscenes-keyframe"
    parser.add_argument("--nuscenes", type=Path, default=default_keyframe,
                        help="a real nuScenes keyframe: its six JPEGs are decoded alone too, for comparison")
    parser.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the code path from before the speed-ups, in this run")
    args = parser.parse_args()
    args.data = args.data.resolve()

    from PIL import Image
    from rich.console import Console
    from rich.table import Table

    from seal.superpixels.stage import superpixel_path

    console = Console(width=120)
    results, decode_files = {}, {}
    for images in args.images:
        cfg, samples, made, staged = prepare(args.data, args.frames, images)
        if args.compare:
            write_legacy_maps(samples)
        frame = samples.dataset[0]
        cams = frame.cameras
        with Image.open(cams[0].image_path) as img, \
                Image.open(superpixel_path(samples.superpixels, frame.id, cams[0].name)) as smap:
            what = f"{img.format} {img.width}x{img.height}, ~{cams[0].image_path.stat().st_size // 1000} KB"
            map_mode = smap.mode
        console.print(f"[bold]{images}[/]: {samples.dataset.root} ({len(samples)} pairs; set-up {made:.0f} s data, "
                      f"{staged:.0f} s stages): {frame.num_points:,} points, {len(cams)} cameras ({what}), "
                      f"cached superpixel maps {map_mode}; crops {cfg.augment.crop_size[1]}x"
                      f"{cfg.augment.crop_size[0]}, voxels {cfg.voxel.size} m {cfg.voxel.mode}")
        decode_files[f"synthetic {images.upper()}"] = [c.image_path for c in cams]
        results[images] = measure(args, images)
    jpegs = sorted(args.nuscenes.glob("samples/CAM_*/*.jpg"))
    if jpegs:
        decode_files["real nuScenes JPEG"] = jpegs

    table = Table(title=f"PairSamples.__getitem__ + collate_pairs, one process: ms per sample (median of "
                        f"{args.repeats} passes over {len(samples)} pairs)")
    table.add_column("part")
    for images, res in results.items():
        for p in res:
            table.add_column(f"{images} {p}", justify="right")
        table.add_column("share", justify="right")
    for part in (*PARTS, "collate", "total", "samples/s", "page faults"):
        cells = []
        for res in results.values():
            for p in res:
                v = res[p]["row"]["total"] if part == "samples/s" else res[p]["row"][part]
                cells.append(f"{1e3 / v:.2f}" if part == "samples/s" else f"{v:,.0f}" if part == "page faults"
                             else f"{v:.1f}")
            after = res["after"]["row"]
            cells.append(f"{100 * after[part] / after['total']:.0f}%" if part in (*PARTS, "collate") else "")
        table.add_row(part, *cells, style="bold" if part in ("total", "samples/s") else None)
    console.print(table)
    for images, res in results.items():
        if "before" in res:
            old, new = res["before"]["row"]["total"], res["after"]["row"]["total"]
            same = res["before"]["digests"] == res["after"]["digests"]
            console.print(f"{images}: speed-up {old / new:.2f}x ({old:.0f} -> {new:.0f} ms per sample); "
                          f"samples bit-identical before/after: {same}")

    decode = Table(title=f"Camera.image alone (read_image) in a fresh process, per 1600x900 image (median of "
                         f"{args.repeats} passes over 6 images)")
    decode.add_column("images")
    paths = ["before", "after"] if args.compare else ["after"]
    for p in paths:
        decode.add_column(f"{p} ms", justify="right")
    for p in paths:
        decode.add_column(f"{p} page faults", justify="right")
    for kind, files in decode_files.items():
        cells = []
        for p in paths:
            with spawn() as pool:
                cells.append(pool.submit(decode_alone, files, args.repeats, p == "before").result())
        decode.add_row(kind, *(f"{ms:.1f}" for ms, _ in cells), *(f"{faults:,.0f}" for _, faults in cells))
    console.print(decode)

    for images, res in results.items():
        rate = 1e3 / res["after"]["row"]["total"]
        for step_s in args.step_s:
            console.print(f"{images}: workers per GPU at {step_s:g} s/step, batch {args.batch}: ceil({args.batch} / "
                          f"{step_s:g} / {rate:.2f}) = {math.ceil(args.batch / step_s / rate)}")


if __name__ == "__main__":
    main()
