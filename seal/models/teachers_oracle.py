"""Oracle teachers: CONTROLS for synthetic data, never foundation models. Their feature at every pixel encodes the
pixel's true class, read from the renderer's class maps (`seal synth --segments` writes ``classes_K/``).

Every number seal printed before these existed distilled a randomly initialised ViT, so nothing showed that what a
teacher knows reaches the 3D network, and a misaligned feature path (a flip, a crop offset, a half-patch shift)
would have looked the same. An oracle is a teacher of known quality: its class maps are cropped, flipped and
resized with exactly the same crop as the image they stand for (they travel beside the superpixel maps, nearest
rule), and its features go through the same teacher forward, head H_i, upsampling and pairing as a real teacher's.

Feature of a pixel: row ``train id`` of a fixed table of unit vectors (``width`` wide, seeded by ``seed``; id 0,
the sky / unlabelled, has its own row). Quality knobs (``teacher.model_kwargs``), applied in this order:

- ``confusion`` (0..1): in each image, each class present is replaced, with this probability, by another class
  (uniform over 1..``classes``): whole regions mislabelled, as a VFM confuses a class, not pixel noise;
- ``blur`` (pixels): Gaussian blur (sigma) of the feature map: soft class boundaries;
- ``patch`` (pixels): the map is averaged over patch x patch cells, a ViT's token grid (stride = ``patch``;
  1 keeps full resolution); sides that are not a multiple are padded as every teacher is (`pad_to_stride`);
- ``noise``: Gaussian noise of this norm relative to the unit features, per token.

Random choices are seeded by ``seed`` and the content of each image's class map, so a teacher is a pure function
of its input: runs, resumes and any number of processes see the same features.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seal.core.errors import ConfigError
from seal.models.teachers import TEACHERS, FrozenImageBackbone, TeacherSpec, pad_to_stride

KNOBS = {"width": 384, "classes": 19, "patch": 1, "confusion": 0.0, "blur": 0.0, "noise": 0.0, "seed": 0}
DEGRADED = {"patch": 16, "confusion": 0.2, "blur": 2.0, "noise": 0.5}  # oracle_degraded's defaults


class OracleNet(nn.Module):
    """The oracle's state: the class table and its knobs (no trainable or loadable weights)."""

    def __init__(self, width: int, classes: int, patch: int, confusion: float, blur: float, noise: float,
                 seed: int) -> None:
        super().__init__()
        table = torch.randn(256, width, generator=torch.Generator().manual_seed(int(seed)))
        self.register_buffer("table", F.normalize(table, dim=1), persistent=False)
        self.classes, self.patch, self.confusion, self.blur, self.noise, self.seed = (
            classes, patch, confusion, blur, noise, int(seed))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Nearest class row (0..``classes``) of features [..., C]: what the oracle's feature says a pixel is."""
        rows = self.table[: self.classes + 1]
        return (F.normalize(features, dim=-1) @ rows.T).argmax(dim=-1)


@dataclass(frozen=True)
class OracleTeacher(TeacherSpec):
    """A control teacher that reads the true classes of the pixels (synthetic data only)."""

    defaults: tuple[tuple[str, Any], ...] = ()
    needs_truth: bool = True

    def knobs(self, model_kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(model_kwargs) - set(KNOBS))
        if unknown:
            raise ConfigError(f"teacher.model_kwargs: {', '.join(unknown)} is not a knob of the oracle teachers "
                              f"(they take {', '.join(KNOBS)})")
        out = {**KNOBS, **dict(self.defaults), **model_kwargs}
        checks = {"width": out["width"] >= 1, "classes": 1 <= out["classes"] <= 255, "patch": out["patch"] >= 1,
                  "confusion": 0 <= out["confusion"] <= 1, "blur": out["blur"] >= 0, "noise": out["noise"] >= 0}
        bad = next((k for k, ok in checks.items() if not ok), None)
        if bad:
            raise ConfigError(f"teacher.model_kwargs.{bad}={out[bad]}: out of range for the oracle teacher "
                              "(width >= 1, classes 1..255, patch >= 1, confusion 0..1, blur >= 0, noise >= 0)")
        return out

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        k = self.knobs(model_kwargs)
        net = OracleNet(int(k["width"]), int(k["classes"]), int(k["patch"]), float(k["confusion"]),
                        float(k["blur"]), float(k["noise"]), int(k["seed"]))
        return net, int(k["width"]), int(k["patch"])

    def build(self, name: str, weights: str | Path | None, model_kwargs: dict[str, Any],
              strict: bool = True) -> FrozenImageBackbone:
        if weights is not None:
            raise ConfigError(f"teacher.weights={weights}: teacher.backbone={name} is a control built from the "
                              "renderer's true classes and reads no weights file; drop teacher.weights")
        net, channels, stride = self.create(model_kwargs)
        backbone = FrozenImageBackbone(name, net, self, channels, stride)
        k = self.knobs(model_kwargs)
        quality = ", ".join(f"{key} {k[key]:g}" for key in ("patch", "confusion", "blur", "noise"))
        backbone.description = f"{name} (CONTROL: true classes of the synthetic renders, {quality}; not a VFM)"
        return backbone

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        raise ConfigError("the oracle teachers read the true class maps, not the images: the samples must carry "
                          "them (pretraining does so when teacher.backbone is an oracle)")

    def truth_features(self, net: OracleNet, truth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Class maps [B, H, W] (train ids) -> features [B, C, h, w], (h, w) = ``size`` = ceil((H, W) / patch)."""
        truth = truth.long().clamp(0, 255)
        seeds = [zlib.crc32(np.ascontiguousarray(t.cpu().numpy(), np.int64).tobytes()) ^ net.seed for t in truth]
        if net.confusion > 0:
            truth = torch.stack([_confuse(t, net.confusion, net.classes, s) for t, s in zip(truth, seeds,
                                                                                            strict=True)])
        x = net.table[truth].permute(0, 3, 1, 2)  # [B, C, H, W]
        if net.blur > 0:
            radius = max(1, math.ceil(3 * net.blur))
            kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
                                       / net.blur) ** 2)
            kernel = (kernel / kernel.sum()).to(x.dtype)
            channels = x.shape[1]
            x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
            x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
            x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
        if net.patch > 1:
            x = F.avg_pool2d(pad_to_stride(x, size, net.patch), net.patch)
        if net.noise > 0:
            noise = torch.stack([torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(s + 1))
                                 for s in seeds]).to(x.device, x.dtype)
            x = x + noise * (net.noise / math.sqrt(x.shape[1]))
        return x.float().contiguous()


def _confuse(truth: torch.Tensor, rate: float, classes: int, seed: int) -> torch.Tensor:
    """One image's class map with each present class swapped, with probability ``rate``, for another class."""
    rng = np.random.default_rng([seed, 5])
    present = torch.unique(truth).tolist()
    lut = torch.arange(256, device=truth.device)
    for c in present:
        if c > 0 and rng.random() < rate:
            others = [k for k in range(1, classes + 1) if k != c]
            lut[c] = int(rng.choice(others)) if others else c
    return lut[truth]


_CONTROL = "seal (a control: the renderer's true classes; synthetic data with `seal synth --segments` only)"
TEACHERS.register("oracle", OracleTeacher(
    "oracle", "OracleNet (true classes, full resolution)", 1, KNOBS["width"], ("none: reads no weights",),
    _CONTROL, licence="-"))
TEACHERS.register("oracle_degraded", OracleTeacher(
    "oracle", "OracleNet (true classes, 16-px grid, 20% confusion, blur 2, noise 0.5)", 16, KNOBS["width"],
    ("none: reads no weights",), _CONTROL, licence="-", defaults=tuple(DEGRADED.items())))

__all__ = ["DEGRADED", "KNOBS", "OracleNet", "OracleTeacher"]
