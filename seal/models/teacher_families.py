"""The built-in 2D teachers: torchvision ResNets with dilated strides (SLidR's) and timm ViTs (DINO, DINOv2).

Each name is a `TeacherSpec` registered in `TEACHERS` beside the family that builds it. A new family (DINOv3,
C-RADIO, SAM encoders, ...) is one more module like this one: a `TeacherSpec` subclass and its registrations.
torchvision and timm are imported only when a teacher is built.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seal.core.errors import ConfigError
from seal.models.teacher_weights import convert_resnet_state_dict, convert_vit_state_dict
from seal.models.teachers import TEACHERS, TeacherSpec


@dataclass(frozen=True)
class DilatedResNet(TeacherSpec):
    """A torchvision ResNet with layers 2-4 dilated instead of strided (output stride 4, as in SLidR); no classifier.

    Reads MoCo-v2 and torchvision checkpoints."""

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        import torchvision.models as tvm

        if model_kwargs:
            raise ConfigError(f"teacher.backbone: {self.arch} takes no extra options, got {sorted(model_kwargs)}")
        net = getattr(tvm, self.arch)(weights=None, replace_stride_with_dilation=[True, True, True])
        body = nn.Sequential(OrderedDict(
            (k, getattr(net, k)) for k in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        ))
        return body, net.fc.in_features, self.stride

    def convert(self, state_dict: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
        return convert_resnet_state_dict(state_dict)

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if images.is_cuda:  # convolutions run fastest in NHWC on GPUs (the weights were moved likewise)
            images = images.contiguous(memory_format=torch.channels_last)
        return net(images)


@dataclass(frozen=True)
class TimmViT(TeacherSpec):
    """A timm VisionTransformer without classifier that accepts any image size (position embedding resampled);
    the feature map is its patch tokens (class and register tokens dropped). Reads DINO and DINOv2 checkpoints."""

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        import timm
        from timm.models.vision_transformer import VisionTransformer

        if not timm.is_model(self.arch):
            raise ConfigError(f"teacher.backbone: timm {timm.__version__} has no architecture {self.arch!r} "
                              "(a newer timm has it)")
        kwargs = {"num_classes": 0, "dynamic_img_size": True, **model_kwargs}
        try:
            model = timm.create_model(self.arch, pretrained=False, **kwargs)
        except TypeError as exc:  # an option this architecture does not take
            raise ConfigError(f"teacher.backbone: cannot build {self.arch!r} with options {model_kwargs}: {exc}"
                              ) from exc
        if not isinstance(model, VisionTransformer):
            raise ConfigError(f"teacher.backbone: timm model {self.arch!r} is a {type(model).__name__}, not a "
                              "VisionTransformer")
        return model, int(model.embed_dim), int(model.patch_embed.patch_size[0])

    def convert(self, state_dict: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
        return convert_vit_state_dict(state_dict, net)

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = images.shape[-2:]
        h, w = size
        patch = int(net.patch_embed.patch_size[0])
        x = F.pad(images, (0, w * patch - width, 0, h * patch - height))  # pad right/bottom with the mean
        tokens = net.forward_features(x)[:, net.num_prefix_tokens:]  # drop cls/register tokens
        return tokens.reshape(tokens.shape[0], h, w, -1).permute(0, 3, 1, 2).contiguous()


RESNET_FORMATS = ("MoCo-v2", "torchvision")
VIT_FORMATS = ("DINO", "DINOv2")

# SLidR's images_encoder (MoCo-v2 ResNet-50, moco_v2_800ep_pretrain.pth.tar) and its deeper sibling
TEACHERS.register("resnet50", DilatedResNet(
    "resnet", "resnet50", 4, 2048, RESNET_FORMATS,
    "MoCo-v2 ResNet-50 (facebookresearch/moco: moco_v2_800ep_pretrain.pth.tar; SLidR) or torchvision ImageNet"))
TEACHERS.register("resnet101", DilatedResNet(
    "resnet", "resnet101", 4, 2048, RESNET_FORMATS, "torchvision ImageNet ResNet-101 (or a MoCo-v2 checkpoint)"))
# DINO (Caron et al., ICCV 2021): ViT-S/16, ViT-B/16
TEACHERS.register("vit_small_patch16", TimmViT(
    "vit", "vit_small_patch16_224", 16, 384, VIT_FORMATS,
    "DINO ViT-S/16 (facebookresearch/dino: dino_deitsmall16_pretrain.pth)"))
TEACHERS.register("vit_base_patch16", TimmViT(
    "vit", "vit_base_patch16_224", 16, 768, VIT_FORMATS,
    "DINO ViT-B/16 (facebookresearch/dino: dino_vitbase16_pretrain.pth)"))
# DINOv2 (Oquab et al., 2023): ViT-S/14, ViT-B/14, ViT-L/14 (ScaLR distils these), then with 4 registers
# (Darcet et al., ICLR 2024)
for _size, _short, _width in (("small", "s", 384), ("base", "b", 768), ("large", "l", 1024)):
    TEACHERS.register(f"vit_{_size}_patch14_dinov2", TimmViT(
        "vit", f"vit_{_size}_patch14_dinov2", 14, _width, VIT_FORMATS,
        f"DINOv2 ViT-{_short.upper()}/14 (facebookresearch/dinov2: dinov2_vit{_short}14_pretrain.pth)"))
for _size, _short, _width in (("small", "s", 384), ("base", "b", 768), ("large", "l", 1024)):
    TEACHERS.register(f"vit_{_size}_patch14_reg4_dinov2", TimmViT(
        "vit", f"vit_{_size}_patch14_reg4_dinov2", 14, _width, VIT_FORMATS,
        f"DINOv2 ViT-{_short.upper()}/14 with registers (facebookresearch/dinov2: "
        f"dinov2_vit{_short}14_reg4_pretrain.pth)"))

__all__ = ["DilatedResNet", "TimmViT"]
