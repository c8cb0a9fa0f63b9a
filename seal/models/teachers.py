"""The 2D network G of Seal: a frozen pretrained image backbone and the trainable head H_i on top of it.

``teacher.backbone`` names a `TeacherSpec` in `TEACHERS`: the built-ins register in their family modules
(`seal.models.teacher_families`: dilated torchvision ResNets; `seal.models.teachers_dino`: DINO / DINOv2 ViTs; the
other ``teachers_*`` modules) when `seal.models` is imported; a plugin registers its own through the entry-point
group ``seal.teachers``. The shared rules every family follows live here: the padding rule (`pad_to_stride`), the
token-to-map layout (`tokens_to_map`) and what the strict loader says about a file that does not fit
(`identify_checkpoint`, `explain_checkpoint`).

The backbone and the head are separate modules on purpose: the training loop wraps only the head (with the 3D
network) in DDP, so the frozen teacher never enters gradient synchronisation. The backbone cannot train: its
parameters do not require gradients, it stays in eval mode whatever `.train()` is called with (BatchNorm statistics
never move), and its forward runs under `torch.no_grad()`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seal.core.config import TeacherConfig
from seal.core.errors import ConfigError, DataError, SealError
from seal.core.registry import Registry
from seal.models.teacher_weights import checkpoint_width, guess_checkpoint, load_weights_into, read_checkpoint

__all__ = [
    "FrozenImageBackbone",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageHead",
    "ImageTeacher",
    "RandomTeacherWarning",
    "TEACHERS",
    "TeacherSpec",
    "build_image_backbone",
    "explain_checkpoint",
    "identify_checkpoint",
    "pad_to_stride",
    "tokens_to_map",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomTeacherWarning(UserWarning):
    """The image teacher has random weights: distilling it teaches the 3D network nothing useful."""


@dataclass(frozen=True)
class TeacherSpec:
    """What a 2D teacher name stands for: the network, the weight files it reads, how its feature map is read.

    A family (torchvision ResNets, timm ViTs, ...) subclasses this and implements three methods: `create` (the
    network with random weights), `convert` (a checkpoint's weights -> the network's key names) and `features`
    (normalised images -> the dense feature map). `build` is shared: it wraps the network in a
    `FrozenImageBackbone` and loads the weights file. A plugin registers an instance through the entry-point group
    ``seal.teachers`` (``myvit = "my_pkg:MY_SPEC"``); any object with this `build` works.
    """

    family: str                    # how the features are read, e.g. "resnet", "vit" (FrozenImageBackbone.kind)
    arch: str                      # the torchvision / timm architecture it builds
    stride: int                    # output stride of the feature map (a ViT's patch size)
    width: int                     # channels of the feature map at the published size
    formats: tuple[str, ...]       # the weight-file formats `convert` reads (told apart by their keys)
    source: str = ""               # the published weights the name is meant for (paper, repository, file name)
    mean: tuple[float, float, float] = IMAGENET_MEAN  # image normalisation the weights were trained with
    std: tuple[float, float, float] = IMAGENET_STD
    licence: str = ""              # licence of the official weights (what `seal teachers` shows)
    input_size: int | None = None  # side of the square images the official weights were trained at (None: unstated)

    def identify(self, state_dict: dict[str, torch.Tensor]) -> str | None:
        """What a checkpoint is when this teacher reads it (its family, size and variant), else None.

        ``state_dict`` is the file's flat weights as `read_checkpoint` gives them (wrappers such as ``teacher``,
        ``model``, ``state_dict`` removed; prefixes such as ``module.`` still there). The answer is a noun phrase
        that fits after "the file looks like a", with the keys that tell, e.g. "DINOv2 ViT-S/14 checkpoint
        (mask_token, ls1.gamma)". `identify_checkpoint` asks every registered teacher when a file does not fit
        the one it was given to, and suggests the names that answer (narrowed by ``width`` when several do)."""
        return None

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        """The network with random weights, its output channels and stride (``model_kwargs`` may narrow it)."""
        raise NotImplementedError

    def convert(self, state_dict: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
        """A checkpoint's weights under ``net``'s key names, and the format they were in (one of ``formats``)."""
        raise NotImplementedError

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Normalised images [B, 3, H, W] -> features [B, C, h, w], (h, w) = ``size`` = ceil((H, W) / stride).

        The features are the official model's (the published code's forward, including its rule for resampling
        position embeddings to the input size) on the image padded by `pad_to_stride`: sides that are not a
        multiple of the stride get zeros on the right and bottom after normalisation (the mean colour) up to
        (h * stride, w * stride); nothing is cropped or resized. A ViT's map is its patch tokens after the final
        norm with the class / register / storage tokens dropped (`tokens_to_map`)."""
        raise NotImplementedError

    def build(self, name: str, weights: str | Path | None, model_kwargs: dict[str, Any],
              strict: bool = True) -> FrozenImageBackbone:
        """The frozen teacher ``name`` with the weights of the local file ``weights`` (None: random, loudly)."""
        net, channels, stride = self.create(model_kwargs)
        backbone = FrozenImageBackbone(name, net, self, channels, stride)
        if weights is None:
            warnings.warn(
                f"image teacher {name} has RANDOM weights (teacher.weights is not set): distillation will not "
                "transfer any pretrained knowledge. Set teacher.weights to a local checkpoint file for real "
                "pretraining.",
                RandomTeacherWarning,
                stacklevel=3,
            )
            return backbone
        path = Path(weights).expanduser()
        raw = read_checkpoint(path)
        try:
            sd, fmt = self.convert(raw, net)
        except SealError:
            raise
        except Exception as exc:  # a foreign layout can break a family's converter: say what the file is
            what = explain_checkpoint(raw, name, model_kwargs) or f"{type(exc).__name__}: {exc}"
            raise DataError(path, f"cannot be read as teacher.backbone={name}: {what}") from exc
        load_weights_into(net, sd, path, name, strict, explain=lambda: explain_checkpoint(raw, name, model_kwargs))
        backbone.requires_grad_(False)
        backbone.pretrained, backbone.weights, backbone.weights_format = True, path, fmt
        backbone.description = f"{name} ({fmt} weights from {path})"
        return backbone


# seal name -> TeacherSpec; built-ins register in seal.models.teacher_families, plugins through "seal.teachers"
TEACHERS: Registry[TeacherSpec] = Registry("2D teacher", "seal.teachers", field=(TeacherConfig, "backbone"),
                                           option="teacher.backbone")


def identify_checkpoint(state_dict: dict[str, torch.Tensor]) -> tuple[str | None, tuple[str, ...]]:
    """What a checkpoint is and which registered teachers read it: (description, names).

    Every registered spec's `identify` is asked; when several answer, those whose ``width`` is the file's
    embedding width are kept. When none answers, `guess_checkpoint` names the kind of network from the keys
    alone (SAM, DINOv3, C-RADIO, DINOv2, DINO, ResNet) and no name is suggested.
    """
    found: list[tuple[str, Any, str]] = []
    for name in TEACHERS.names():
        try:
            spec = TEACHERS.get(name)
            what = spec.identify(state_dict) if callable(getattr(spec, "identify", None)) else None
        except Exception:  # a broken plugin must not hide the real error
            continue
        if what:
            found.append((name, spec, what))
    if len(found) > 1:
        width = checkpoint_width(state_dict)
        same = [f for f in found if getattr(f[1], "width", None) == width]
        found = same or found
    if found:
        return found[0][2], tuple(name for name, _, _ in found)
    return guess_checkpoint(state_dict), ()


def explain_checkpoint(state_dict: dict[str, torch.Tensor], name: str, model_kwargs: dict[str, Any] | None = None
                       ) -> str:
    """The clause the strict loader adds when a file does not fit teacher ``name``: "the file looks like a DINOv3
    ViT-S/16 checkpoint (storage_tokens, rope_embed.periods); use teacher.backbone=vit_small_patch16_dinov3"
    ("" when nothing recognises the file)."""
    what, names = identify_checkpoint(state_dict)
    if not what:
        return ""
    text = f"the file looks like a {what}"
    others = [n for n in names if n != name]
    if name in names:
        if model_kwargs:
            options = ", ".join(f"{k}={v}" for k, v in sorted(model_kwargs.items()))
            return text + f", which {name} reads: check the model options ({options})"
        return text + f", which {name} reads, but not all of its tensors are there"
    if others:
        return text + "; use teacher.backbone=" + " or ".join(others)
    return text + "; no registered teacher reads it"


def pad_to_stride(images: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """Pad normalised images on the right and bottom with zeros (the mean colour) to ``size`` * ``stride``:
    the one padding rule of every teacher family (see `TeacherSpec.features`)."""
    height, width = images.shape[-2:]
    return F.pad(images, (0, size[1] * stride - width, 0, size[0] * stride - height))


def tokens_to_map(tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Patch tokens [B, h * w, C] in row-major order -> a feature map [B, C, h, w]."""
    return tokens.reshape(tokens.shape[0], size[0], size[1], -1).permute(0, 3, 1, 2).contiguous()


class FrozenImageBackbone(nn.Module):
    """A frozen pretrained image backbone: images [B, 3, H, W] in 0..1 -> dense features [B, C, H/s, W/s].

    Attributes: `out_channels`, `stride` (s), `pretrained` (False for random weights), `description`
    (one line for run summaries), `name`, `spec` (its `TeacherSpec`), `weights` (path or None), `weights_format`.
    """

    def __init__(self, name: str, net: nn.Module, spec: TeacherSpec, out_channels: int, stride: int) -> None:
        super().__init__()
        self.name = name
        self.net = net
        self.spec = spec
        self.kind = spec.family
        self.out_channels = out_channels
        self.stride = stride
        self.pretrained = False
        self.weights: Path | None = None
        self.weights_format: str | None = None
        self.description = f"{name} (RANDOM INIT — no weights file given)"
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> FrozenImageBackbone:
        """Always stay in eval mode: the teacher's BatchNorm statistics and dropout never change."""
        return super().train(False)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Feature-map size for an input image of height x width."""
        return math.ceil(height / self.stride), math.ceil(width / self.stride)

    @property
    def needs_truth(self) -> bool:
        """Whether this teacher reads the true class maps of the crops (the oracle controls), not the pixels."""
        return bool(getattr(self.spec, "needs_truth", False))

    def forward(self, images: torch.Tensor, truth: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise, run the frozen network without autograd, return a [B, C, h, w] feature map. ``truth``
        ([B, H, W] train ids of the crops' pixels) is read by the oracle controls only."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"image teacher expects images [B, 3, H, W] in 0..1, got shape {list(images.shape)}")
        with torch.no_grad():  # not inference_mode: the maps feed the trainable head H_i, which saves them
            size = self.output_size(*images.shape[-2:])
            if self.needs_truth:
                if truth is None or truth.shape != (images.shape[0], *images.shape[-2:]):
                    raise ConfigError(f"teacher.backbone={self.name} needs the true class map of every crop (the "
                                      "samples carry them from synthetic data made with `seal synth --segments`)")
                return self.spec.truth_features(self.net, truth, size)
            x = (images.to(self.mean.dtype) - self.mean) / self.std
            return self.spec.features(self.net, x, size)


def build_image_backbone(
    name: str, weights: str | Path | None, *, strict: bool = True, **model_kwargs: Any
) -> FrozenImageBackbone:
    """Build the frozen image teacher `name` (a `TEACHERS` name) and load its weights from the local file `weights`.

    The file format (MoCo-v2, torchvision, DINO / DINOv2 release file or training checkpoint) is detected from its
    keys; a file of another family or size fails with one line saying what it looks like.
    `weights=None` gives random weights and a loud RandomTeacherWarning. `model_kwargs` go to timm (e.g.
    depth/embed_dim/num_heads for tiny test models). Nothing is ever downloaded.
    """
    if name not in TEACHERS:
        raise ConfigError(f"{TEACHERS.unknown(name)} (another timm VisionTransformer or family is a TeacherSpec "
                          "registered through the entry-point group seal.teachers)")
    spec = TEACHERS.get(name)
    if not callable(getattr(spec, "build", None)):
        raise ConfigError(f"teacher.backbone={name}: {TEACHERS.source(name)} registered a {type(spec).__name__}, "
                          "not a TeacherSpec (no build method)")
    return spec.build(name, weights, model_kwargs, strict)


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
