"""The one place seal touches a sparse-convolution engine. Nothing else imports spconv or spconv-triton.

Two engines share the spconv 2.x API, and the same state dict loads in both:
- ``spconv``: the CPU build (``pip install spconv``) or a CUDA build the user installed (``spconv-cu12x``);
- ``spconv-triton``: a pure-Python + Triton reimplementation for NVIDIA and AMD GPUs (GPU only).
``model.engine=auto`` takes spconv-triton on a GPU when it is installed, else spconv. `select_engine` fixes the
choice for the process (the run folder records it); `spconv()` returns the chosen module.

CPU notes: spconv 2.3's CPU build computes convolutions with gather-matmul-scatter. (1) Its backward pass asks
torch for the current CUDA stream before it looks at the device, which fails on a machine without a CUDA
driver: `_patch_cpu_backward` replaces that lookup, only where CUDA is unavailable, by a null stream (the CPU
path never uses it). (2) Its CPU scatter-add races between threads: `_SafeSpconvOps` replaces it with torch's
``index_add_`` (same sums; bit-identical with one thread), so multi-threaded CPU runs are correct.
"""

from __future__ import annotations

import functools
import importlib.util

import torch

from seal.core.config import SPARSE_ENGINES
from seal.core.errors import ConfigError, SealError

_chosen: dict[str, str] = {}
INSTALL = {"spconv": "pip install 'seal[cpu]' (spconv, CPU build) or a spconv-cuXXX build matching your CUDA",
           "spconv-triton": "pip install 'seal[gpu]' (spconv-triton; needs a CUDA or ROCm GPU)"}


def installed_engines() -> list[str]:
    """The engines importable here (without importing them)."""
    found = []
    if importlib.util.find_spec("spconv") is not None:
        found.append("spconv")
    if importlib.util.find_spec("spconv_triton") is not None:
        found.append("spconv-triton")
    return found


def select_engine(name: str = "auto", device: torch.device | str | None = None) -> str:
    """Fix this process's engine: ``auto`` = spconv-triton on a GPU when installed, else spconv."""
    if name not in SPARSE_ENGINES:
        raise ConfigError(f"model.engine={name!r} is unknown: choose one of {', '.join(SPARSE_ENGINES)}")
    on_gpu = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    found = installed_engines()
    if name == "auto":
        name = "spconv-triton" if on_gpu and "spconv-triton" in found else "spconv"
        if name not in found and found:
            name = found[0]
    if name not in found:
        raise SealError(f"model.engine={name}: the sparse engine is not installed ({INSTALL[name]})")
    if name == "spconv-triton" and not on_gpu:
        raise ConfigError("model.engine=spconv-triton runs on GPUs only: use model.engine=spconv on a CPU")
    if _chosen.get("engine") != name:
        _chosen["engine"] = name
        spconv.cache_clear()
    return name


def current_engine() -> str:
    """The engine `spconv()` returns (selected by `select_engine`, else the default choice)."""
    return _chosen.get("engine") or select_engine("auto")


@functools.lru_cache(maxsize=1)
def spconv():
    """The chosen engine's ``pytorch`` module (spconv 2.x API), imported once, with the CPU backward shim."""
    engine = current_engine()
    if engine == "spconv-triton":
        import spconv_triton.pytorch as sp

        return sp
    try:
        import spconv.pytorch as sp
    except ImportError as err:
        raise SealError(f"the sparse 3D backbone needs spconv: {INSTALL['spconv']}") from err
    _patch_cpu_backward()
    _patch_cpu_scatter_add()
    return sp


class _SafeSpconvOps:
    """spconv's compiled ops with a race-free CPU scatter-add (every other op delegates to the real class).

    spconv 2.3.8's ``scatter_add_cpu`` shares its row pointers between the threads of its parallel loop, so with
    more than one torch thread rows are added to the wrong outputs (Res16UNet34C outputs differ from a
    one-thread run by ~1% of their scale). Within one kernel offset the output rows are distinct, so torch's
    ``index_add_`` computes the same sum, race-free; with one thread it is bit-identical to spconv's loop.
    """

    _seal_safe = True

    def __init__(self, real: type) -> None:
        self._real = real

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    @staticmethod
    def scatter_add_cpu(out, inp, inds) -> None:
        count = inds.dim(0)
        if count:
            torch.from_numpy(out.numpy_view()).index_add_(
                0, torch.from_numpy(inds.numpy_view()).long(), torch.from_numpy(inp.numpy_view())[:count])


def _patch_cpu_scatter_add() -> None:
    import spconv.pytorch.ops as ops

    if not getattr(ops.SpconvOps, "_seal_safe", False):
        ops.SpconvOps = _SafeSpconvOps(ops.SpconvOps)


def _patch_cpu_backward() -> None:
    if torch.cuda.is_available():
        return
    import spconv.pytorch.cppcore as cppcore
    import spconv.pytorch.hash as sp_hash
    import spconv.pytorch.ops as ops

    def null_stream() -> int:
        return 0

    for module in (cppcore, ops, sp_hash):
        if hasattr(module, "get_current_stream"):
            module.get_current_stream = null_stream


def sparse_tensor(features: torch.Tensor, coords: torch.Tensor, batch_size: int,
                  spatial_shape: list[int] | None = None):
    """A sparse tensor from voxel features [M, C] and int coords [M, 4] = (batch, x, y, z), coords >= 0."""
    sp = spconv()
    if spatial_shape is None:
        extent = (coords[:, 1:].max(dim=0).values + 1).tolist() if coords.shape[0] else [1, 1, 1]
        # a multiple of 16 (at least 16) per axis: four 2x2x2 stride-2 levels never shrink an axis to zero,
        # even for a scan that is flat or nearly empty (e.g. after a heavy corruption)
        spatial_shape = [max(16, -(-int(e) // 16) * 16) for e in extent]
    return sp.SparseConvTensor(features, coords.int(), spatial_shape, batch_size)


def with_features(x, features: torch.Tensor):
    """The same sparse tensor (same coordinates) carrying new features."""
    return x.replace_feature(features)
