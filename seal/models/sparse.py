"""The one place seal touches a sparse-convolution engine. Nothing else imports spconv or spconv-triton.

Two engines share the spconv 2.x API, and the same state dict loads in both:
- ``spconv``: the CPU build (``pip install spconv``) or a CUDA build the user installed (``spconv-cu12x``);
- ``spconv-triton``: a pure-Python + Triton reimplementation for NVIDIA and AMD GPUs (GPU only).
Both are `EngineSpec`s in `ENGINES` (a third-party engine with the same API registers one through the entry-point
group ``seal.engines``). ``model.engine=auto`` takes spconv-triton on a GPU when it is installed, else spconv.
`select_engine` fixes the choice for the process (the run folder records it); `spconv()` returns the chosen module.

CPU notes: spconv 2.3's CPU build computes convolutions with gather-matmul-scatter. (1) Its backward pass asks
torch for the current CUDA stream before it looks at the device, which fails on a machine without a CUDA
driver: `_patch_cpu_backward` replaces that lookup, only where CUDA is unavailable, by a null stream (the CPU
path never uses it). (2) Its CPU scatter-add races between threads: `_SafeSpconvOps` replaces it with torch's
``index_add_`` (same sums; bit-identical with one thread), so multi-threaded CPU runs are correct.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

import torch

from seal.core.config import ModelConfig
from seal.core.errors import ConfigError, SealError
from seal.core.registry import Registry

_chosen: dict[str, str] = {}


@dataclass(frozen=True)
class EngineSpec:
    """A sparse-convolution engine with the spconv 2.x ``pytorch`` API, as `ENGINES` registers it.

    ``module`` is the import name (found without importing it), ``api`` imports and returns the module `spconv()`
    returns, ``install`` the hint a missing engine's error gives, ``gpu_only`` whether it refuses CPU tensors, and
    ``prepare`` what runs once after the import (spconv: the CPU patches of this module).
    """

    module: str
    api: Callable[[], ModuleType]
    install: str
    gpu_only: bool = False
    prepare: Callable[[], None] | None = None

    def installed(self) -> bool:
        """Whether the engine's package is importable here (nothing is imported)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):  # a parent package that is absent or broken
            return False

    def version(self) -> str | None:
        """The version of the distribution that ships ``module`` (spconv, spconv-cu12x, spconv-triton), if any."""
        for dist in metadata.packages_distributions().get(self.module.split(".")[0], []):
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return None

    def load(self) -> ModuleType:
        """Import the engine's API module and prepare it."""
        sp = self.api()
        if self.prepare is not None:
            self.prepare()
        return sp


ENGINES: Registry[EngineSpec] = Registry("sparse engine", "seal.engines", field=(ModelConfig, "engine"),
                                         option="model.engine", extra_choices=("auto",))


def installed_engines() -> list[str]:
    """The engines importable here (without importing them), in registration order."""
    found = []
    for name in ENGINES.names():
        try:
            if ENGINES.get(name).installed():
                found.append(name)
        except ConfigError:  # a plugin whose spec does not load is not an engine this machine can use
            continue
    return found


def select_engine(name: str = "auto", device: torch.device | str | None = None) -> str:
    """Fix this process's engine: ``auto`` = a GPU-only engine (spconv-triton) on a GPU when installed, else the
    first installed engine that runs on the device (spconv)."""
    if name not in ENGINES.choices():
        raise ConfigError(ENGINES.unknown(name))
    on_gpu = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    found = installed_engines()
    if name == "auto":
        usable = [n for n in found if on_gpu or not ENGINES.get(n).gpu_only]
        preferred = [n for n in usable if on_gpu and ENGINES.get(n).gpu_only]
        name = (preferred or usable or found or ["spconv"])[0]
    engine = ENGINES.get(name)
    if name not in found:
        raise SealError(f"model.engine={name}: the sparse engine is not installed ({engine.install})")
    if engine.gpu_only and not on_gpu:
        raise ConfigError(f"model.engine={name} runs on GPUs only: use model.engine=spconv on a CPU")
    if _chosen.get("engine") != name:
        _chosen["engine"] = name
        spconv.cache_clear()
    return name


def current_engine() -> str:
    """The engine `spconv()` returns (selected by `select_engine`, else the default choice)."""
    return _chosen.get("engine") or select_engine("auto")


@functools.lru_cache(maxsize=1)
def spconv():
    """The chosen engine's ``pytorch`` module (spconv 2.x API), imported once (spconv: with the CPU patches)."""
    name = current_engine()
    engine = ENGINES.get(name)
    try:
        return engine.load()
    except ImportError as err:
        raise SealError(f"the sparse 3D backbone needs {name}: {engine.install}") from err


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


def _patch_spconv_cpu() -> None:
    _patch_cpu_backward()
    _patch_cpu_scatter_add()


def _spconv_api() -> ModuleType:
    import spconv.pytorch

    return spconv.pytorch


def _spconv_triton_api() -> ModuleType:
    import spconv_triton.pytorch

    return spconv_triton.pytorch


ENGINES.register("spconv", EngineSpec(
    "spconv", _spconv_api, "pip install 'seal[cpu]' (spconv, CPU build) or a spconv-cuXXX build matching your "
    "CUDA", prepare=_patch_spconv_cpu))
ENGINES.register("spconv-triton", EngineSpec(
    "spconv_triton", _spconv_triton_api, "pip install 'seal[gpu]' (spconv-triton; needs a CUDA or ROCm GPU)",
    gpu_only=True))
