"""Benchmark the sparse 3D backbone and a Seal pretraining step; prints a table of medians.

    python bench/bench_backbone.py [--repeats 5] [--warmup 1] [--device cpu|cuda] [--only WaffleIron]

Backbone rows: forward+backward of MinkUNet (Res16UNet34C and the tiny preset) on a ~30k-voxel scan, with the
FLOPs the sparse convolutions did (2 x Cin x Cout per input-output pair, backward counted as 2x forward) and the
dense GEMM GFLOP/s of the same machine measured in the same run: their ratio is the figure we track.
WaffleIron rows (tiny and WI-48-256; WI-48-384 and WI-48-768 on CUDA only): forward+backward on the same voxels
(one token per voxel, neighbour lists and grids included), and their time over the Res16UNet34C row of this run;
on CPU the WI-48 shapes run with activation checkpointing (their activations would take ~12 GB).
``--only`` keeps the rows whose name holds one of its comma-separated words (``--only WaffleIron``: the WaffleIron
rows and their Res16UNet34C reference; the GEMM reference always runs).
Pretraining rows: one optimiser step (teacher + student + the three losses) on a batch of synthetic frame pairs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats: int, device: torch.device, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    seconds = timed(lambda: a @ b, repeats, device)
    return 2 * n**3 / seconds / 1e9


def conv_flops(model: torch.nn.Module, x) -> int:
    """Forward FLOPs of every sparse convolution: 2 * Cin * Cout * (active input-output pairs)."""
    from seal.models.sparse import spconv

    sp = spconv()
    counts = []

    def hook(module, inputs, output):
        key = module.indice_key
        pairs = None
        data = output.indice_dict.get(key) if key else None
        if data is not None and hasattr(data, "indice_pair_num"):
            pairs = int(data.indice_pair_num.sum())
        if pairs is None or module.kernel_size == (1, 1, 1) or module.kernel_size == [1, 1, 1]:
            pairs = int(output.features.shape[0]) if module.kernel_size in ((1, 1, 1), [1, 1, 1]) else pairs
        counts.append(2 * module.in_channels * module.out_channels * (pairs or 0))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (sp.SubMConv3d, sp.SparseConv3d, sp.SparseInverseConv3d))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return sum(counts)


def backbone_rows(device: torch.device, repeats: int, only: list[str], warmup: int = 1) -> list[tuple]:
    from seal.core.batch import BackboneInput
    from seal.core.config import BackboneConfig, WaffleIronConfig
    from seal.core.voxelize import voxelize
    from seal.data import open_dataset
    from seal.models.minkunet import MinkUNet
    from seal.models.sparse import sparse_tensor
    from seal.models.waffleiron import WaffleIron
    from seal.synth import generate_dataset

    presets = {"Res16UNet34C": BackboneConfig(),
               "tiny preset": BackboneConfig(stem_channels=16, planes=[16, 32, 48, 64, 48, 32, 32, 32], layers=[1] * 8)}
    shapes = ["tiny", "WI-48-256"] + (["WI-48-384", "WI-48-768"] if device.type == "cuda" else [])
    shapes = [shape for shape in shapes if wanted(f"backbone fwd+bwd, WaffleIron {shape}", only)]
    presets = {name: cfg for name, cfg in presets.items()  # Res16UNet34C: the WaffleIron rows' reference
               if wanted(f"backbone fwd+bwd, {name}", only) or (shapes and name == "Res16UNet34C")}
    rows: list[tuple] = []
    if not presets and not shapes:
        return rows
    tmp = Path(tempfile.mkdtemp())
    frame = open_dataset(generate_dataset(tmp / "s", sequences=1, frames=1, seed=0, azimuth_steps=3072,
                                          progress=False))[0]
    vox = voxelize(frame.xyz, 0.1, "cylindrical")
    coords = torch.from_numpy(np.column_stack([np.zeros(vox.num_voxels, np.int32), vox.coords])).to(device)
    feats = torch.from_numpy(vox.mean(frame.points[:, 3:4]).astype(np.float32)).to(device)
    for name, cfg in presets.items():
        torch.manual_seed(0)
        model = MinkUNet(cfg).to(device)

        def step(model=model):
            out = model(sparse_tensor(feats, coords, 1))
            out.square().mean().backward()

        seconds = timed(step, repeats, device, warmup)
        flops = 3 * conv_flops(model, sparse_tensor(feats, coords, 1))
        rows.append((f"backbone fwd+bwd, {name}", f"{frame.num_points:,} pts / {vox.num_voxels:,} voxels",
                     seconds, frame.num_points / seconds, flops / seconds / 1e9))
    xyz = torch.from_numpy(vox.mean(frame.xyz).astype(np.float32)).to(device)
    inputs = BackboneInput(coords, feats, xyz, 1)
    for shape in shapes:
        low_memory = device.type == "cpu" and shape != "tiny"  # ~12 GB of activations otherwise
        name = f"backbone fwd+bwd, WaffleIron {shape}" + (" (checkpointing)" if low_memory else "")
        torch.manual_seed(0)
        wi = WaffleIronConfig(shape=shape, checkpointing=low_memory)
        model = WaffleIron(BackboneConfig(name="waffleiron", waffleiron=wi)).to(device)

        def wi_step(model=model):
            model(inputs).square().mean().backward()

        seconds = timed(wi_step, repeats, device, warmup)
        rows.append((name, f"{frame.num_points:,} pts / {vox.num_voxels:,} tokens", seconds,
                     frame.num_points / seconds, None))
        del model
    return rows


def wanted(name: str, only: list[str]) -> bool:
    """Whether a row runs under ``--only`` (no words: every row)."""
    return not only or any(word.lower() in name.lower() for word in only)


def pretrain_rows(device: torch.device, repeats: int, only: list[str], warmup: int = 1) -> list[tuple]:
    names = ("tiny preset", "paper model (Res16UNet34C, ResNet-50)")
    if not any(wanted(f"pretraining step, {name}", only) for name in names):
        return []
    import warnings

    from seal.core.schemas import PretrainSchema as PretrainConfig
    from seal.core.settings import load_config
    from seal.data import open_dataset
    from seal.engine.distributed import DistInfo
    from seal.engine.pretrain import PretrainTask, pair_samples
    from seal.samples.pairs import collate_pairs
    from seal.synth import generate_dataset

    tmp = Path(tempfile.mkdtemp())
    data = generate_dataset(tmp / "s", sequences=1, frames=5, seed=1, cameras=1, progress=False)
    tiny = Path(__file__).resolve().parents[1] / "seal" / "configs" / "pretrain_tiny.yaml"
    rows = []
    for name, path, batch in ((names[0], tiny, 2), (names[1], None, 2)):
        if not wanted(f"pretraining step, {name}", only):
            continue
        cfg = load_config(PretrainConfig, path, [f"data.path={data}"])
        samples = pair_samples(cfg, open_dataset(data))
        b = collate_pairs([samples[i] for i in range(batch)]).to(device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            task = PretrainTask(cfg, samples, DistInfo(device=device))
        student = task.student.to(device)
        optim = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)

        def step(student=student, task=task, b=b, optim=optim):
            losses = task.loss(student, b, torch.Generator().manual_seed(0))
            optim.zero_grad()
            losses["total"].backward()
            optim.step()

        seconds = timed(step, max(1, repeats // 2), device, warmup)
        crop = "x".join(str(v) for v in cfg.augment.crop_size)
        rows.append((f"pretraining step, {name}", f"{batch} pairs, {b.images.shape[0]} images {crop}",
                     seconds, b.num_points / seconds, None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", default="", help="comma-separated words: run only the rows whose name holds one")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before the timed ones (0: a smoke run)")
    args = parser.parse_args()
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    device = torch.device(args.device)
    from rich.console import Console
    from rich.table import Table

    gemm = gemm_gflops(device)
    rows = (backbone_rows(device, args.repeats, only, args.warmup)
            + pretrain_rows(device, args.repeats, only, args.warmup))
    reference = next((r[2] for r in rows if r[0].endswith("Res16UNet34C")), None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    table = Table(title=f"seal backbone benchmark on {name} (median of {args.repeats}); dense GEMM {gemm:,.1f} GFLOP/s",
                  title_justify="left")
    for col in ("what", "input", "ms", "points/s", "sparse-conv GFLOP/s", "of GEMM peak", "x Res16UNet34C"):
        table.add_column(col, justify="left" if col in ("what", "input") else "right")
    for what, inp, seconds, rate, gflops in rows:
        ratio = f"{seconds / reference:.2f}" if reference and what.startswith("backbone") else "-"
        table.add_row(what, inp, f"{seconds * 1e3:,.0f}", f"{rate:,.0f}", "-" if gflops is None else f"{gflops:,.1f}",
                      "-" if gflops is None else f"{100 * gflops / gemm:.1f}%", ratio)
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
