"""bench_gpu.py's WaffleIron part (issue 18): what the ScaLR+ backbone costs on one GPU at nuScenes scale.

Rows: forward + backward of WaffleIron WI-48-768 (ScaLR+'s), WI-48-384 and WI-48-256 on a batch of 4 synthetic
32-beam scans of ~34k points each (nuScenes keyframes; voxelised at 0.1 m as seal pretrains), in float32 and under
bf16 autocast, with activation checkpointing for WI-48-768 as well; median step time and peak memory. The MinkUNet
row of the backbone part is measured on the same scans, so the two are comparable in one run.
"""

from __future__ import annotations

import statistics
import traceback
from typing import Any

import numpy as np
import torch


def part_waffleiron(bench: Any, tools: Any) -> None:
    """Append the WaffleIron rows to ``bench`` (a bench_gpu.Bench); ``tools`` is the running bench_gpu module (its
    scan generator, timers and PartTimeout: the very class its budget raises)."""
    PartTimeout, peak_gib, reset_peak, timed = tools.PartTimeout, tools.peak_gib, tools.reset_peak, tools.timed
    from seal.core.batch import BackboneInput
    from seal.core.config import BackboneConfig, WaffleIronConfig
    from seal.models.waffleiron import WaffleIron

    dev = bench.device
    batch, points = (2, 8_000) if bench.quick else (4, 34_000)
    rng = np.random.default_rng(1)
    scans = [tools.ring_scan(rng, points) for _ in range(batch)]
    coords, feats, inverses, _ = tools.voxelised_batch(scans)
    xyz = torch.from_numpy(np.concatenate([_voxel_means(s[:, :3], inv) for s, inv in zip(scans, inverses,
                                                                                         strict=True)]))
    inputs = BackboneInput(coords, feats, xyz, batch).to(dev)
    n_points = sum(s.shape[0] for s in scans)
    described = f"{batch} scans, {n_points:,} pts / {coords.shape[0]:,} tokens"
    shapes = [("tiny", False)] if bench.quick else [("WI-48-256", False), ("WI-48-384", False),
                                                     ("WI-48-768", False), ("WI-48-768", True)]
    for shape, checkpointing in shapes:
        torch.manual_seed(0)
        model = WaffleIron(BackboneConfig(name="waffleiron", in_channels=1, waffleiron=WaffleIronConfig(
            shape=shape, checkpointing=checkpointing))).to(dev).train()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        variants = [("fp32", None)] + ([("bf16 autocast", torch.bfloat16)] if dev.type == "cuda" else [])
        for label, dtype in variants:

            def step(model=model, dtype=dtype):
                with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    out = model(inputs)
                out.float().square().mean().backward()
                model.zero_grad(set_to_none=True)

            name = f"WaffleIron {shape}{' + checkpointing' if checkpointing else ''} ({params:.1f} M) fwd+bwd, {label}"
            try:
                first = timed(step, dev)
                timed(step, dev)  # warm-up
                reset_peak(dev)
                times = [timed(step, dev) for _ in range(bench.repeats)]
            except PartTimeout:
                raise
            except Exception:  # noqa: BLE001 - one shape running out of memory must not lose the others
                bench.errors[name] = traceback.format_exc()
                bench.write()
                continue
            ms = statistics.median(times) * 1e3
            bench.row("waffleiron", name, described, ms, f"{n_points / ms * 1e3 / 1e6:.2f} M pts/s", peak_gib(dev),
                      first, "ScaLR+ trains WI-48-768 with batch 4 per GPU" if shape == "WI-48-768" else "",
                      tokens=int(coords.shape[0]), points=n_points)
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def _voxel_means(xyz: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Mean position of each voxel's points (what seal's samples give a point-based backbone)."""
    counts = np.bincount(inverse).astype(np.float64)
    return np.stack([np.bincount(inverse, xyz[:, a]) / counts for a in range(3)], axis=1).astype(np.float32)
