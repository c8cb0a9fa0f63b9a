"""CUDA checks (marked ``cuda``: skipped without a GPU; bench/device_check.sh runs them on a GPU machine).

- the sparse backbone on spconv-triton (CUDA) computes what spconv's CPU build computes, from the same weights and
  input, forward and backward, in fp32 (tiny preset and Res16UNet34C), with the same state-dict layout;
- a pretraining run on CUDA takes its steps under fp16 and under bf16 autocast with finite losses;
- the Seal losses give the same values (and gradients) on CUDA as on the CPU.

Tolerances (fp32; TF32 off). Backbone: Res16UNet34C's gradients are ill-conditioned (on the CPU, fp32 against
float64 differs by ~1e-3 relative in eval mode and ~1e-2 in train mode), so each of the GPU's outputs, input
gradient and parameter gradients must be within 10x the CPU fp32 error of a float64 CPU reference (plus a floor of
1e-6..1e-4); in eval mode the outputs must also agree to ``assert_close(rtol=1e-4, atol=1e-4)``. Losses agree to
1e-5 (relative and absolute), their gradients to rtol 1e-4 / atol 1e-6. The measured errors are printed (``-s``,
or the captured output of a failure).

``SEAL_TRITON_AUTOTUNE_CONFIGS`` (default 1) keeps that many autotune candidates per spconv-triton kernel: the
tile shape changes only the order of the reductions, and first-use autotuning of every candidate for every layer
shape would take minutes. 0 keeps them all.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.cuda

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "seal" / "configs" / "pretrain_tiny.yaml"


def _random_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n_points, n_pixels, dim = 3000, 20000, 32

    def unit(n):
        return torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1)

    return {
        "points": unit(n_points), "pixels": unit(n_pixels),
        "pair_point": torch.randint(0, n_points, (5000,), generator=g),
        "pair_sp": torch.randint(-1, 120, (5000,), generator=g),
        "pixel_sp": torch.randint(-1, 120, (n_pixels,), generator=g),
        "feat_t": unit(2500), "feat_n": unit(2200),
        "seg_t": torch.randint(-1, 80, (2500,), generator=g), "seg_n": torch.randint(-1, 80, (2200,), generator=g),
    }


def _losses(x: dict[str, torch.Tensor], device: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    from seal.core.batch import PairBatch
    from seal.core.config import LossConfig
    from seal.losses.distill import point_to_segment_loss, seal_loss, temporal_loss, vfm_loss

    x = {k: v.to(device).clone().requires_grad_(v.is_floating_point()) for k, v in x.items()}
    out = {
        "vfm": vfm_loss(x["points"], x["pair_point"], x["pair_sp"], x["pixels"], x["pixel_sp"], 0.07),
        "vfm_normalized": vfm_loss(x["points"], x["pair_point"], x["pair_sp"], x["pixels"], x["pixel_sp"], 0.07,
                                   normalize_pooled=True),
        "tmp": temporal_loss(x["feat_t"], x["seg_t"], x["feat_n"], x["seg_n"], 0.07),
        "p2s": point_to_segment_loss(torch.cat([x["feat_t"], x["feat_n"]]), torch.cat([x["seg_t"], x["seg_n"]]),
                                     0.07, 1024, torch.Generator().manual_seed(3)),
    }
    # seal_loss on a PairBatch whose voxels are the points: frames t and t+n are both views of them
    n = x["points"].shape[0]
    g = torch.Generator().manual_seed(4)
    batch = PairBatch(
        coords=torch.zeros(n, 4, dtype=torch.int32), feats=torch.zeros(n, 1), xyz=torch.zeros(n, 3), batch_size=2,
        point_voxel_t=torch.randint(0, n, (2500,), generator=g).to(device),
        point_voxel_n=torch.randint(0, n, (2200,), generator=g).to(device),
        segments_t=x["seg_t"], segments_n=x["seg_n"], images=torch.zeros(1, 3, 1, 1),
        pixel_superpixel=x["pixel_sp"], pair_voxel=x["pair_point"], pair_superpixel=x["pair_sp"],
        pair_pixel=torch.zeros_like(x["pair_point"]), num_points=4700)
    total = seal_loss(x["points"], x["pixels"], batch, LossConfig(p2s_max_points=1024),
                      torch.Generator().manual_seed(5))
    out.update({f"seal_{k}": v for k, v in total.items()})
    grad_inputs = [x[k] for k in ("points", "pixels", "feat_t", "feat_n")]
    grads = torch.autograd.grad(sum(out.values()), grad_inputs)
    return ({k: v.detach().cpu() for k, v in out.items()},
            {k: g.cpu() for k, g in zip(("points", "pixels", "feat_t", "feat_n"), grads, strict=True)})


def test_losses_on_cuda_equal_the_cpu_values():
    x = _random_inputs()
    cpu, cpu_grads = _losses(x, "cpu")
    gpu, gpu_grads = _losses(x, "cuda")
    print("\n" + ", ".join(f"{k} {float(cpu[k]):.6f}/{float(gpu[k]):.6f}" for k in cpu))
    for k in cpu:
        assert gpu[k].dtype == torch.float32
        torch.testing.assert_close(gpu[k], cpu[k], rtol=1e-5, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    for k in cpu_grads:
        torch.testing.assert_close(gpu_grads[k], cpu_grads[k], rtol=1e-4, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")


def _tiny_backbone():
    from seal.core.config import BackboneConfig
    from seal.core.schemas import PretrainSchema
    from seal.core.settings import load_config

    cfg = load_config(PretrainSchema, TINY).model.backbone
    assert isinstance(cfg, BackboneConfig)
    return cfg


@pytest.fixture(autouse=True)
def _fp32_exact():
    """IEEE fp32 everywhere (no TF32), restored afterwards."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@pytest.fixture
def engines():
    """Both engines available (else skip); the process's engine choice is restored afterwards."""
    from seal.models import sparse

    found = sparse.installed_engines()
    for name in ("spconv", "spconv-triton"):
        if name not in found:
            pytest.skip(f"{name} is not installed ({sparse.ENGINES.get(name).install})")
    limit = int(os.environ.get("SEAL_TRITON_AUTOTUNE_CONFIGS", "1") or 0)
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from bench_gpu import limit_triton_autotune
    finally:
        sys.path.remove(str(REPO / "bench"))
    limit_triton_autotune(limit)
    saved = dict(sparse._chosen)
    yield sparse
    sparse._chosen.clear()
    sparse._chosen.update(saved)
    sparse.spconv.cache_clear()


def _scan_inputs(points: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Two simulated 32-beam street scans (bench/bench_gpu.py), voxelised as seal does: coords, feats, batch."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from bench_gpu import ring_scan, voxelised_batch
    finally:
        sys.path.remove(str(REPO / "bench"))
    rng = np.random.default_rng(seed)
    coords, feats, _, _ = voxelised_batch([ring_scan(rng, points) for _ in range(2)])
    return coords, feats, 2


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative L2 error of a against the reference b."""
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def _forward_backward(sparse, engine: str, device: str, model, coords, feats, batch, weights):
    sparse.select_engine(engine, device)
    threads = torch.get_num_threads()
    if device == "cpu":
        # spconv 2.3.8's CPU scatter-add shares its row pointers between threads (a data race: rows land in the
        # wrong place); one thread gives its exact result
        torch.set_num_threads(1)
    try:
        x = feats.to(device).clone().requires_grad_(True)
        out = model(sparse.sparse_tensor(x, coords.to(device), batch))
        (out * weights.to(device)).sum().backward()
    finally:
        torch.set_num_threads(threads)
    grads = {name: p.grad.detach().cpu() for name, p in model.named_parameters()}
    return out.detach().cpu(), grads, x.grad.detach().cpu()


# How close is close enough: fp32 rounding through Res16UNet34C's backward is far from negligible (its gradients
# are ill-conditioned: on the CPU, fp32 against float64 already differs by ~1e-3 in eval mode and ~1e-2 in train
# mode, where BatchNorm's batch statistics amplify rounding). So the GPU's fp32 result is held to the CPU's own
# fp32 accuracy: against a float64 CPU reference, its error may be at most FACTOR x the CPU fp32 error, plus FLOOR.
FACTOR = 10.0
FLOOR = {"out": 1e-6, "dx": 1e-5, "grads": 1e-5, "tensor": 1e-4}


def _errors(result, reference) -> dict[str, float]:
    out, grads, dx = result
    out_ref, grads_ref, dx_ref = reference
    all_grads = torch.cat([grads[n].flatten() for n in grads_ref])
    all_ref = torch.cat([g.flatten() for g in grads_ref.values()])
    return {"out": _rel(out, out_ref), "dx": _rel(dx, dx_ref), "grads": _rel(all_grads, all_ref),
            **{f"grad {n}": _rel(grads[n], grads_ref[n]) for n in grads_ref}}


def _check_parity(sparse, preset: str, mode: str) -> None:
    import copy

    from seal.core.config import BackboneConfig
    from seal.models.minkunet import MinkUNet

    cfg = _tiny_backbone() if preset == "tiny" else BackboneConfig()
    coords, feats, batch = _scan_inputs(12_000 if preset == "tiny" else 20_000)

    sparse.select_engine("spconv", "cpu")  # a model is built under the engine that runs it
    torch.manual_seed(0)
    cpu_model = MinkUNet(cfg).train(mode == "train")
    sparse.select_engine("spconv-triton", "cuda")
    gpu_model = MinkUNet(cfg).train(mode == "train")
    cpu_state, gpu_state = cpu_model.state_dict(), gpu_model.state_dict()
    assert list(cpu_state) == list(gpu_state), "the two engines name the parameters differently"
    assert {k: tuple(v.shape) for k, v in cpu_state.items()} == {k: tuple(v.shape) for k, v in gpu_state.items()}
    if mode == "eval":  # running statistics that are not the identity, so eval mode is not a trivial case
        g = torch.Generator().manual_seed(2)
        for name, value in cpu_state.items():
            if name.endswith("running_mean"):
                value.copy_(0.1 * torch.randn(value.shape, generator=g))
            elif name.endswith("running_var"):
                value.copy_(0.5 + torch.rand(value.shape, generator=g))
    gpu_model.load_state_dict(cpu_state)
    gpu_model.cuda()
    ref_model = copy.deepcopy(cpu_model).double()

    weights = torch.randn(coords.shape[0], cpu_model.out_channels, generator=torch.Generator().manual_seed(1))
    ref = _forward_backward(sparse, "spconv", "cpu", ref_model, coords, feats.double(), batch, weights.double())
    cpu = _forward_backward(sparse, "spconv", "cpu", cpu_model, coords, feats, batch, weights)
    gpu = _forward_backward(sparse, "spconv-triton", "cuda", gpu_model, coords, feats, batch, weights)
    out_cpu, out_gpu = cpu[0], gpu[0]
    assert out_gpu.dtype == torch.float32 and out_gpu.shape == out_cpu.shape
    err_cpu, err_gpu = _errors(cpu, ref), _errors(gpu, ref)
    ratio = {k: err_gpu[k] / max(err_cpu[k], 1e-30) for k in err_cpu}
    worst = max((k for k in err_gpu if k.startswith("grad ")), key=lambda k: err_gpu[k])
    print(f"\n{preset} {mode}, {coords.shape[0]:,} voxels. Error against float64 (relative L2), GPU / CPU fp32: "
          + ", ".join(f"{k} {err_gpu[k]:.2g} / {err_cpu[k]:.2g}" for k in ("out", "dx", "grads"))
          + f"; worst tensor {worst[5:]} {err_gpu[worst]:.2g} / {err_cpu[worst]:.2g}. GPU vs CPU output max |diff| "
          f"{float((out_gpu - out_cpu).abs().max()):.3g} (max |out| {float(out_cpu.abs().max()):.3g})")
    for key in err_gpu:
        # one tensor's CPU error can be small by luck: a tensor is held to the larger of its own and the overall one
        scale = err_cpu[key] if key in FLOOR else max(err_cpu[key], err_cpu["grads"])
        assert err_gpu[key] <= FACTOR * scale + FLOOR.get(key, FLOOR["tensor"]), (
            f"{key}: GPU error {err_gpu[key]:.3g} vs CPU fp32 error {err_cpu[key]:.3g} (x{ratio[key]:.1f})")
    if mode == "eval":  # a fixed chain of convolutions and affine maps: the outputs agree closely
        torch.testing.assert_close(out_gpu, out_cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_spconv_triton_on_cuda_matches_spconv_on_cpu_tiny(engines, mode):
    _check_parity(engines, "tiny", mode)


def _pretrain_cfg(root: Path, run: Path, amp_dtype: str):
    from seal.core.schemas import PretrainSchema
    from seal.core.settings import load_config

    return load_config(PretrainSchema, TINY, [
        f"data.path={root}", f"train.run_dir={run}", "train.device=cuda", "train.max_steps=2", "train.amp=true",
        f"train.amp_dtype={amp_dtype}", "train.num_workers=0", "train.log_every=1", "model.engine=spconv-triton",
        "train.batch_size=2"])


@pytest.fixture(scope="module")
def tiny_sequence(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("cuda") / "synth", sequences=1, frames=3, seed=0, cameras=1,
                            image_width=320, azimuth_steps=1024, progress=False)


@pytest.mark.parametrize("amp_dtype", ["float16", "bfloat16"])
def test_pretraining_steps_on_cuda_under_autocast(engines, tiny_sequence, tmp_path, amp_dtype):
    from seal.engine.pretrain import pretrain

    run = pretrain(_pretrain_cfg(tiny_sequence, tmp_path / "run", amp_dtype), progress=False)
    summary = json.loads((run / "summary.json").read_text())
    print(f"\n{amp_dtype}: {summary['steps']} steps in {summary['seconds']} s, first {summary['loss_first']}, "
          f"last {summary['loss_last']}")
    assert summary["steps"] == 2 and summary["stopped_at_max_steps"]
    assert summary["device"].startswith("cuda") and summary["sparse_engine"] == "spconv-triton"
    for values in (summary["loss_first"], summary["loss_last"]):
        assert set(values) == {"total", "vfm", "tmp", "p2s"}
        assert all(math.isfinite(v) for v in values.values()), values
    assert summary["loss_first"]["total"] > 0
    state = torch.load(run / "backbone.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_spconv_triton_on_cuda_matches_spconv_on_cpu_res16unet34c(engines, mode):
    _check_parity(engines, "Res16UNet34C", mode)
