"""The 2D network G of Seal: a frozen pretrained image backbone and the trainable head H_i on top of it.

The backbone and the head are separate modules on purpose: the training loop wraps only the head (with the 3D
network) in DDP, so the frozen teacher never enters gradient synchronisation. The backbone cannot train: its
parameters do not require gradients, it stays in eval mode whatever `.train()` is called with (BatchNorm statistics
never move), and its forward runs under `torch.no_grad()`.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seal.core.errors import ConfigError
from seal.models.teacher_weights import (
    convert_resnet_state_dict,
    convert_vit_state_dict,
    load_weights_into,
    read_checkpoint,
)

__all__ = [
    "FrozenImageBackbone",
    "ImageHead",
    "ImageTeacher",
    "RandomTeacherWarning",
    "SUPPORTED_BACKBONES",
    "build_image_backbone",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# seal name -> timm architecture (DINO ViT-S/16, ViT-B/16; DINOv2 ViT-S/14, ViT-B/14).
_VIT_ARCHS = {
    "vit_small_patch16": "vit_small_patch16_224",
    "vit_base_patch16": "vit_base_patch16_224",
    "vit_small_patch14_dinov2": "vit_small_patch14_dinov2",
    "vit_base_patch14_dinov2": "vit_base_patch14_dinov2",
}
_RESNET_ARCHS = ("resnet50", "resnet101")
SUPPORTED_BACKBONES: tuple[str, ...] = (*_RESNET_ARCHS, *_VIT_ARCHS)


class RandomTeacherWarning(UserWarning):
    """The image teacher has random weights: distilling it teaches the 3D network nothing useful."""


def _dilated_resnet(name: str) -> tuple[nn.Module, int]:
    """torchvision ResNet with layers 2-4 dilated instead of strided (output stride 4, as in SLidR); no classifier."""
    import torchvision.models as tvm

    net = getattr(tvm, name)(weights=None, replace_stride_with_dilation=[True, True, True])
    body = nn.Sequential(OrderedDict(
        (k, getattr(net, k)) for k in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    ))
    return body, net.fc.in_features


def _timm_vit(arch: str, model_kwargs: dict[str, Any]) -> nn.Module:
    """A timm VisionTransformer without classifier that accepts any image size (position embedding resampled)."""
    import timm
    from timm.models.vision_transformer import VisionTransformer

    if not timm.is_model(arch):
        raise ConfigError(
            f"teacher.backbone: unknown image backbone {arch!r}; supported: {', '.join(SUPPORTED_BACKBONES)} "
            "(or the name of another timm VisionTransformer)"
        )
    entry = timm.models.model_entrypoint(arch)
    if entry.__module__ != VisionTransformer.__module__:
        raise ConfigError(
            f"teacher.backbone: timm model {arch!r} (from {entry.__module__}) is not a VisionTransformer; supported: "
            f"{', '.join(SUPPORTED_BACKBONES)} (or another timm VisionTransformer such as a DINOv2 *_reg4 model)"
        )
    kwargs = {"num_classes": 0, "dynamic_img_size": True, **model_kwargs}
    try:
        model = timm.create_model(arch, pretrained=False, **kwargs)
    except TypeError as exc:  # an option this architecture does not take
        raise ConfigError(f"teacher.backbone: cannot build {arch!r} with options {model_kwargs}: {exc}") from exc
    assert isinstance(model, VisionTransformer)
    return model


class FrozenImageBackbone(nn.Module):
    """A frozen pretrained image backbone: images [B, 3, H, W] in 0..1 -> dense features [B, C, H/s, W/s].

    Attributes: `out_channels`, `stride` (s), `pretrained` (False for random weights), `description`
    (one line for run summaries), `name`, `weights` (path or None), `weights_format`.
    """

    def __init__(self, name: str, net: nn.Module, kind: str, out_channels: int, stride: int) -> None:
        super().__init__()
        self.name = name
        self.net = net
        self.kind = kind  # "resnet" or "vit"
        self.out_channels = out_channels
        self.stride = stride
        self.pretrained = False
        self.weights: Path | None = None
        self.weights_format: str | None = None
        self.description = f"{name} (RANDOM INIT — no weights file given)"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> FrozenImageBackbone:
        """Always stay in eval mode: the teacher's BatchNorm statistics and dropout never change."""
        return super().train(False)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Feature-map size for an input image of height x width."""
        return math.ceil(height / self.stride), math.ceil(width / self.stride)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalise, run the frozen network without autograd, return a [B, C, h, w] feature map."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"image teacher expects images [B, 3, H, W] in 0..1, got shape {list(images.shape)}")
        with torch.no_grad():  # not inference_mode: the maps feed the trainable head H_i, which saves them
            x = (images.to(self.mean.dtype) - self.mean) / self.std
            if self.kind == "resnet":
                if x.is_cuda:  # convolutions run fastest in NHWC on GPUs (the weights were moved likewise)
                    x = x.contiguous(memory_format=torch.channels_last)
                return self.net(x)
            height, width = x.shape[-2:]
            h, w = self.output_size(height, width)
            x = F.pad(x, (0, w * self.stride - width, 0, h * self.stride - height))  # pad right/bottom with mean
            tokens = self.net.forward_features(x)[:, self.net.num_prefix_tokens:]  # drop cls/register tokens
            return tokens.reshape(tokens.shape[0], h, w, -1).permute(0, 3, 1, 2).contiguous()


def build_image_backbone(
    name: str, weights: str | Path | None, *, strict: bool = True, **model_kwargs: Any
) -> FrozenImageBackbone:
    """Build the frozen image teacher `name` and load its weights from the local file `weights`.

    The file format (MoCo-v2, torchvision, DINO plain or training checkpoint, DINOv2) is detected from its keys.
    `weights=None` gives random weights and a loud RandomTeacherWarning. `model_kwargs` go to timm (e.g.
    depth/embed_dim/num_heads for tiny test models). Nothing is ever downloaded.
    """
    if name in _RESNET_ARCHS:
        if model_kwargs:
            raise ConfigError(f"teacher.backbone: {name} takes no extra options, got {sorted(model_kwargs)}")
        net, channels = _dilated_resnet(name)
        backbone = FrozenImageBackbone(name, net, "resnet", channels, stride=4)
    else:
        net = _timm_vit(_VIT_ARCHS.get(name, name), model_kwargs)
        backbone = FrozenImageBackbone(name, net, "vit", int(net.embed_dim), stride=int(net.patch_embed.patch_size[0]))
    if weights is None:
        warnings.warn(
            f"image teacher {name} has RANDOM weights (teacher.weights is not set): distillation will not transfer "
            "any pretrained knowledge. Set teacher.weights to a local checkpoint file for real pretraining.",
            RandomTeacherWarning,
            stacklevel=2,
        )
        return backbone
    path = Path(weights).expanduser()
    sd = read_checkpoint(path)
    if backbone.kind == "resnet":
        sd, fmt = convert_resnet_state_dict(sd)
    else:
        sd, fmt = convert_vit_state_dict(sd, net)
    load_weights_into(net, sd, path, name, strict)
    backbone.requires_grad_(False)
    backbone.pretrained, backbone.weights, backbone.weights_format = True, path, fmt
    backbone.description = f"{name} ({fmt} weights from {path})"
    return backbone


class ImageHead(nn.Module):
    """The trainable head H_i: 1x1 conv to `out_dim`, bilinear upsampling to the image size, L2 normalisation."""

    def __init__(self, in_channels: int, out_dim: int = 64) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_dim, kernel_size=1)
        self.out_dim = out_dim

    def forward(self, feature_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """[B, C, h, w] features -> [B, out_dim, H, W] unit-norm pixel embeddings, (H, W) = `size`."""
        x = self.proj(feature_map)
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        return F.normalize(x, p=2, dim=1)


class ImageTeacher(nn.Module):
    """Convenience pair of a frozen backbone and its trainable head (the training loop may use the parts)."""

    def __init__(self, backbone: FrozenImageBackbone, out_dim: int = 64) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = ImageHead(backbone.out_channels, out_dim)

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """The only parameters to optimise (and to put in DDP)."""
        return self.head.parameters()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in 0..1 -> pixel embeddings [B, out_dim, H, W]."""
        return self.head(self.backbone(images), (images.shape[-2], images.shape[-1]))
