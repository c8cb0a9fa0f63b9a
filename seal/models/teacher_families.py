"""The built-in 2D teachers: torchvision ResNets with dilated strides (SLidR's) here, and the DINO / DINOv2 ViTs
(`seal.models.teachers_dino`, imported here so that importing this module registers every built-in).

Each name is a `TeacherSpec` registered in `TEACHERS` beside the family that builds it. A new family (DINOv3,
C-RADIO, SAM encoders, ...) is one more module like these: a `TeacherSpec` subclass and its registrations.
torchvision and timm are imported only when a teacher is built.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from seal.core.errors import ConfigError
from seal.models.teacher_weights import RESNET_PREFIXES, convert_resnet_state_dict, guess_checkpoint, strip_prefix
from seal.models.teachers import TEACHERS, TeacherSpec
from seal.models.teachers_dino import VIT_FORMATS, DinoViT, TimmViT


@dataclass(frozen=True)
class DilatedResNet(TeacherSpec):
    """A torchvision ResNet with layers 2-4 dilated instead of strided (output stride 4, as in SLidR); no classifier.

    Reads MoCo-v2 (``module.encoder_q.*``, the query encoder as main_lincls.py loads it) and torchvision files."""

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

    def identify(self, state_dict: dict[str, torch.Tensor]) -> str | None:
        what = guess_checkpoint(state_dict) if "layer4.0.conv1.weight" in strip_prefix(state_dict, RESNET_PREFIXES) \
            else None
        depth = self.arch.removeprefix("resnet")
        return what if what and f"ResNet-{depth} " in what else None

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if images.is_cuda:  # convolutions run fastest in NHWC on GPUs (the weights were moved likewise)
            images = images.contiguous(memory_format=torch.channels_last)
        return net(images)


RESNET_FORMATS = ("MoCo-v2", "torchvision")
_MOCO = "https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar"

# SLidR's images_encoder (MoCo-v2 ResNet-50, moco_v2_800ep_pretrain.pth.tar) and its deeper sibling
TEACHERS.register("resnet50", DilatedResNet(
    "resnet", "resnet50", 4, 2048, RESNET_FORMATS,
    f"MoCo-v2 ResNet-50 (facebookresearch/moco: {_MOCO}; SLidR) or torchvision ImageNet (IMAGENET1K_V1/V2)",
    licence="MIT (MoCo-v2; CC-BY-NC 4.0 until 2023-01) or BSD-3-Clause (torchvision)", input_size=224))
TEACHERS.register("resnet101", DilatedResNet(
    "resnet", "resnet101", 4, 2048, RESNET_FORMATS, "torchvision ImageNet ResNet-101 (or a MoCo-v2 checkpoint)",
    licence="BSD-3-Clause (torchvision) or MIT (MoCo-v2)", input_size=224))

__all__ = ["DilatedResNet", "DinoViT", "RESNET_FORMATS", "TimmViT", "VIT_FORMATS"]
