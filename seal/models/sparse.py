"""The one place seal touches its sparse-convolution engine (spconv 2.x). Nothing else imports spconv.

CPU note: spconv 2.3's CPU build computes convolutions with gather-matmul-scatter, but its backward pass asks
torch for the current CUDA stream before it looks at the device, which fails on a machine without a CUDA
driver. `_patch_cpu_backward` replaces that stream lookup, only where CUDA is unavailable, by a null stream; the
CPU code path never uses the stream, so gradients are exactly spconv's own. On CUDA machines nothing changes.
"""

from __future__ import annotations

import functools

import torch

from seal.errors import SealError


@functools.lru_cache(maxsize=1)
def spconv():
    """The ``spconv.pytorch`` module, imported once, with the CPU backward shim applied."""
    try:
        import spconv.pytorch as sp
    except ImportError as err:
        raise SealError("the sparse 3D backbone needs spconv: pip install spconv (CPU) or spconv-cu121 "
                        "(etc., matching your CUDA)") from err
    _patch_cpu_backward()
    return sp


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
