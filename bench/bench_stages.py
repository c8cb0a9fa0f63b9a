"""Benchmark the superpixel and superpoint stages; prints a table of medians.

    python bench/bench_stages.py [--nuscenes ../shared/data/nuscenes-keyframe] [--repeats 3]

Superpixels: SLIC per image at full resolution and at the working widths seal offers, on the real nuScenes
images (1600x900) and on synthetic ones, plus the cost of reading a cached map (what pretraining pays).
Superpoints: ground removal and joint clustering per synthetic frame pair.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_keyframe = Path(__file__).resolve().parents[2] / "shared/data/nuscenes-keyframe"
    parser.add_argument("--nuscenes", type=Path, default=default_keyframe)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from seal.core.config import SuperpointConfig
    from seal.data import open_dataset
    from seal.geometry.ground import ground_mask
    from seal.geometry.segments import cluster_pair, relative_transform
    from seal.superpixels.base import load_segments, save_segments
    from seal.superpixels.slic import SlicSuperpixels
    from seal.synth import generate_dataset

    rows = []
    tmp = Path(tempfile.mkdtemp())
    synth = open_dataset(generate_dataset(tmp / "synth", sequences=1, frames=4, seed=0, progress=False))
    images = []
    if args.nuscenes.is_dir():
        images += [("nuScenes 1600x900", c.image) for c in open_dataset(args.nuscenes)[0].cameras[:3]]
    images += [(f"synthetic {c.width}x{c.height}", c.image) for c in synth[0].cameras]
    for label in dict.fromkeys(name for name, _ in images):
        group = [im for name, im in images if name == label]
        for width in (0, 800, 480):
            if width and width >= group[0].shape[1]:
                continue
            method = SlicSuperpixels(work_width=width)
            per = statistics.median(median_time(lambda im=im, m=method: m(im), args.repeats) for im in group)
            rows.append(("superpixels", f"SLIC, {label}", "full res" if width == 0 else f"work_width={width}",
                         per * 1e3, 1.0 / per, "image"))
        seg = SlicSuperpixels(work_width=0)(group[0])
        save_segments(tmp / "map.png", seg)
        per = median_time(lambda: load_segments(tmp / "map.png"), max(args.repeats, 10))
        rows.append(("superpixels", f"read cached map, {label}", "16-bit PNG", per * 1e3, 1.0 / per, "image"))

    cfg = SuperpointConfig()
    seq = synth.sequences[0]
    pairs = [seq.pair(t, 1) for t in range(len(seq) - 1)]
    per = statistics.median(median_time(lambda f=f: ground_mask(f.xyz, cfg.ground), args.repeats)
                            for f, _ in pairs)
    rows.append(("superpoints", f"RANSAC ground, synthetic ({pairs[0][0].num_points:,} pts)", "1 sector",
                 per * 1e3, 1.0 / per, "frame"))
    cluster_pair(pairs[0][0].xyz, pairs[0][1].xyz, np.eye(4), cfg)  # warm-up: sklearn import
    per = statistics.median(
        median_time(lambda a=a, b=b: cluster_pair(a.xyz, b.xyz, relative_transform(a.pose, b.pose), cfg),
                    args.repeats) for a, b in pairs)
    rows.append(("superpoints", "ground + joint HDBSCAN, synthetic pair", f"voxel {cfg.voxel} m", per * 1e3,
                 1.0 / per, "pair"))

    table = Table(title=f"seal stage benchmark (median of {args.repeats} repeats)", title_justify="left")
    for col, just in (("stage", "left"), ("what", "left"), ("setting", "left"), ("ms / item", "right"),
                      ("items / s", "right"), ("item", "left")):
        table.add_column(col, justify=just)
    for stage, what, setting, ms, rate, item in rows:
        table.add_row(stage, what, setting, f"{ms:.1f}", f"{rate:.2f}", item)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
