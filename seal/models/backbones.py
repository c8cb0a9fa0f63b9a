"""3D backbones by name: `BACKBONES` maps ``model.backbone.name`` to a `BackboneSpec`, and `build_backbone` is the
one place a backbone is built (pretraining, downstream models, exported files).

A backbone family is one module: a `SparseBackbone` subclass (a `BackboneInput` in - voxel coordinates, mean
intensities and mean positions of the voxels of a batch of scans -, per-voxel features out) and a
`BackboneSpec` registered beside it (``BACKBONES.register("minkunet", BackboneSpec(...))``); a third-party family
registers its spec through the entry-point group ``seal.backbones``. Importing `seal.models` registers the
built-ins (MinkUNet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from seal.core.batch import BackboneInput
from seal.core.config import BackboneConfig
from seal.core.errors import ConfigError
from seal.core.registry import Registry


class SparseBackbone(nn.Module):
    """What every 3D backbone is: ``forward(BackboneInput) -> [M, out_channels]`` features in the order of the input
    voxels, the `BackboneConfig` it was built from (``config``, stored in exported files), ``out_channels``.
    Sparse-convolution families read the voxel coordinates, point-based ones the voxels' mean positions."""

    config: BackboneConfig
    out_channels: int

    def forward(self, inputs: BackboneInput) -> torch.Tensor:  # pragma: no cover - every family overrides it
        raise NotImplementedError

    def describe(self) -> str:
        """One line for run summaries (the family and its shape)."""
        return f"{type(self).__name__} ({self.config.name})"

    def export_config(self) -> dict:
        """The config that rebuilds this backbone (what `seal.models.export` stores)."""
        return asdict(self.config)


@dataclass(frozen=True)
class BackboneSpec:
    """A registered 3D backbone family.

    ``network`` builds the backbone from a `BackboneConfig` (the class itself, usually); ``title`` and ``source``
    are what listings print (the family and the paper or code its layout follows).
    """

    network: Callable[[BackboneConfig], SparseBackbone]
    title: str
    source: str = ""

    def build(self, config: BackboneConfig) -> SparseBackbone:
        """A randomly initialised backbone of this family shaped by ``config``."""
        model = self.network(config)
        if not isinstance(getattr(model, "out_channels", None), int):
            raise ConfigError(f"model.backbone.name={config.name}: {self.title} built a {type(model).__name__} "
                              "without an integer out_channels")
        return model


BACKBONES: Registry[BackboneSpec] = Registry("3D backbone", "seal.backbones", field=(BackboneConfig, "name"),
                                             option="model.backbone.name")


def build_backbone(config: BackboneConfig) -> SparseBackbone:
    """The backbone ``config.name`` names, shaped by ``config``; one line listing the families otherwise."""
    return BACKBONES.get(config.name).build(config)


__all__ = ["BACKBONES", "BackboneSpec", "SparseBackbone", "build_backbone"]
