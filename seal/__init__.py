"""seal: LiDAR segmentation pretrained by distilling vision foundation models (Seal, NeurIPS 2023).

The names below import lazily (``import seal`` stays light): ``seal.load_backbone(PATH)`` reads a `seal export`
folder, a ``backbone.pt`` or a released ScaLR / ScaLR+ checkpoint; ``seal.point_features`` gives a frame's
per-point features from it."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {"load_backbone": "seal.models.export", "load_model": "seal.models.segmentation",
         "open_dataset": "seal.data", "point_features": "seal.viz.predictions", "VoxelConfig": "seal.core.config"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seal' has no attribute {name!r}")


__all__ = ["VoxelConfig", "__version__", "load_backbone", "load_model", "open_dataset", "point_features"]
