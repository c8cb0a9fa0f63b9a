"""Benchmark of the synthetic dataset generator: frames per second, end to end and per stage.

Usage: python bench/bench_synth.py [--frames 5] [--repeats 3] [--cameras 1 6]

End to end = ``generate_dataset`` into an empty temporary folder (scene, LiDAR, cameras, PNG + binary
writing), one sequence of ``--frames`` frames; the table reports the median over ``--repeats`` runs. The
stage columns time one frame's LiDAR scan and one camera render (median over the frames).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from seal.synth import generate_dataset
from seal.synth.camera import render_camera
from seal.synth.generate import FRAME_PERIOD, SequenceGenerator
from seal.synth.lidar import scan


def end_to_end(cameras: int, frames: int, repeats: int) -> list[float]:
    """Frames per second of ``generate_dataset`` for each repeat."""
    out = []
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate_dataset(
                Path(tmp) / "ds", sequences=1, frames=frames, seed=r, cameras=cameras, progress=False
            )
            out.append(frames / (time.perf_counter() - t0))
    return out


def stages(cameras: int, frames: int) -> tuple[float, float, int]:
    """Median milliseconds of one LiDAR scan and of one camera render, and the median point count."""
    gen = SequenceGenerator(0, 0, frames, cameras=cameras)
    lidar_ms, cam_ms, npts = [], [], []
    for t in range(frames):
        prims = gen.scene.primitives_at(t * FRAME_PERIOD)
        pose = gen.scene.ego_pose(t * FRAME_PERIOD)
        t0 = time.perf_counter()
        pts, _ = scan(prims, gen.scene.road, pose, gen.lidar, np.random.default_rng(t))
        lidar_ms.append(1e3 * (time.perf_counter() - t0))
        npts.append(len(pts))
        for cam in gen.rig:
            t0 = time.perf_counter()
            render_camera(prims, gen.scene.road, pose, cam)
            cam_ms.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(lidar_ms)), float(np.median(cam_ms)), int(np.median(npts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 6])
    args = parser.parse_args()
    print(
        f"seal synth benchmark: 1 sequence x {args.frames} frames, median of {args.repeats} repeats, "
        "480x270 images, 32 beams x 1440 steps"
    )
    print("| cameras | frames/s | s/frame | LiDAR scan ms | render ms/camera | points/frame |")
    print("|---|---|---|---|---|---|")
    for cams in args.cameras:
        fps = float(np.median(end_to_end(cams, args.frames, args.repeats)))
        lidar_ms, cam_ms, npts = stages(cams, args.frames)
        print(f"| {cams} | {fps:.2f} | {1 / fps:.3f} | {lidar_ms:.0f} | {cam_ms:.0f} | {npts} |")


if __name__ == "__main__":
    main()
