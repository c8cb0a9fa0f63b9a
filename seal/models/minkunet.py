"""Sparse MinkUNet (the Res16UNet34C layout of docs/METHOD.md §5) on the engine of `seal.models.sparse`.

Encoder: a stem, then four stages that halve the resolution (2x2x2 strided conv) and apply residual basic
blocks; decoder: four stages that double it back (the exact inverse of the matching strided conv, so the
coordinates line up), concatenate the skip connection and apply basic blocks. Widths and depths come from
`BackboneConfig`; the default is Res16UNet34C (planes 32,64,128,256,256,128,96,96, layers 2,3,4,6,2,2,2,2).
"""

from __future__ import annotations

import torch
from torch import nn

from seal.core.batch import BackboneInput
from seal.core.config import BackboneConfig
from seal.models.backbones import BACKBONES, BackboneSpec, SparseBackbone
from seal.models.sparse import sparse_tensor, spconv, with_features


class BasicBlock(nn.Module):
    """Two 3x3x3 submanifold convolutions with batch norm and a residual connection."""

    def __init__(self, inplanes: int, planes: int, key: str, bn_momentum: float) -> None:
        super().__init__()
        sp = spconv()
        self.conv1 = sp.SubMConv3d(inplanes, planes, 3, bias=False, indice_key=key)
        self.bn1 = nn.BatchNorm1d(planes, momentum=bn_momentum)
        self.conv2 = sp.SubMConv3d(planes, planes, 3, bias=False, indice_key=key)
        self.bn2 = nn.BatchNorm1d(planes, momentum=bn_momentum)
        self.project = None
        if inplanes != planes:
            self.project = sp.SparseSequential(sp.SubMConv3d(inplanes, planes, 1, bias=False, indice_key=key + "_1x1"),
                                               nn.BatchNorm1d(planes, momentum=bn_momentum))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.conv1(x)
        out = with_features(out, self.relu(self.bn1(out.features)))
        out = self.conv2(out)
        out = with_features(out, self.bn2(out.features))
        shortcut = self.project(x).features if self.project is not None else x.features
        return with_features(out, self.relu(out.features + shortcut))


class BlockStack(nn.Module):
    """``count`` basic blocks in a row (a plain module: spconv's SparseSequential would hand them features)."""

    def __init__(self, inplanes: int, planes: int, count: int, key: str, bn_momentum: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(BasicBlock(inplanes if i == 0 else planes, planes, key, bn_momentum)
                                    for i in range(count))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def _conv_bn_relu(conv: nn.Module, channels: int, bn_momentum: float) -> nn.Module:
    return spconv().SparseSequential(conv, nn.BatchNorm1d(channels, momentum=bn_momentum), nn.ReLU(inplace=True))


class MinkUNet(SparseBackbone):
    """Sparse U-Net returning per-voxel features (``out_channels`` = last decoder width)."""

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__()
        cfg = config or BackboneConfig()
        if len(cfg.planes) != 8 or len(cfg.layers) != 8:
            raise ValueError("backbone.planes and backbone.layers need 8 entries (4 encoder + 4 decoder stages)")
        self.config = cfg
        sp = spconv()
        m = cfg.bn_momentum
        self.stem = _conv_bn_relu(sp.SubMConv3d(cfg.in_channels, cfg.stem_channels, cfg.stem_kernel, bias=False,
                                                indice_key="stem"), cfg.stem_channels, m)
        self.down = nn.ModuleList()
        self.enc = nn.ModuleList()
        channels = [cfg.stem_channels]
        inplanes = cfg.stem_channels
        for level in range(4):
            self.down.append(_conv_bn_relu(sp.SparseConv3d(inplanes, inplanes, 2, stride=2, bias=False,
                                                           indice_key=f"down{level}"), inplanes, m))
            self.enc.append(BlockStack(inplanes, cfg.planes[level], cfg.layers[level], f"subm{level + 1}", m))
            inplanes = cfg.planes[level]
            channels.append(inplanes)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for stage in range(4):
            level = 3 - stage                                   # undoes down[level]
            width = cfg.planes[4 + stage]
            self.up.append(_conv_bn_relu(sp.SparseInverseConv3d(inplanes, width, 2, bias=False,
                                                                indice_key=f"down{level}"), width, m))
            skip = channels[level]
            self.dec.append(BlockStack(width + skip, width, cfg.layers[4 + stage], f"subm{level}" if level else "stem",
                                    m))
            inplanes = width
        self.out_channels = inplanes

    def forward(self, inputs: BackboneInput | object) -> torch.Tensor:
        """Voxels in (a `BackboneInput`, or a sparse tensor of the engine), per-voxel features [M, out_channels]
        out, in the order of the input voxels."""
        x = inputs
        if isinstance(inputs, BackboneInput):
            x = sparse_tensor(inputs.feats, inputs.coords, inputs.batch_size)
        x = self.stem(x)
        skips = [x]
        for down, enc in zip(self.down, self.enc, strict=True):
            x = enc(down(x))
            skips.append(x)
        for stage, (up, dec) in enumerate(zip(self.up, self.dec, strict=True)):
            x = up(x)
            skip = skips[3 - stage]
            x = dec(with_features(x, torch.cat([x.features, skip.features], dim=1)))
        return x.features

    def describe(self) -> str:
        return f"MinkUNet planes {self.config.planes}"


BACKBONES.register("minkunet", BackboneSpec(MinkUNet, "sparse MinkUNet (Res16UNet34C by default)",
                                            "docs/METHOD.md §5; SLidR's Res16UNet34C (MinkowskiEngine layout)"))


class ProjectionHead(nn.Module):
    """H_p: a 1x1 convolution (a linear map per voxel) to ``out_dim`` channels, then L2 normalisation."""

    def __init__(self, in_channels: int, out_dim: int = 64) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.linear(features), dim=1)
