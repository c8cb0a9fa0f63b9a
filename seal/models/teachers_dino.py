"""DINO (v1) and DINOv2 ViT teachers: timm's VisionTransformer blocks with the official position-embedding rules.

timm holds the weights (the official key names map onto it almost one to one), but its forward resamples the
position embedding its own way (bicubic with antialiasing, by output size). `DinoViT.features` runs the official
forward instead (facebookresearch/dino and dinov2, ``vision_transformer.py::interpolate_pos_encoding``):

* DINO v1 and DINOv2 without registers: bicubic, ``scale_factor=((h + 0.1) / M, (w + 0.1) / M)``, no antialiasing
  (the "+0.1" keeps the output size from rounding down; it also shifts the sampling positions);
* DINOv2 with registers (hub ``dinov2_vit*14_reg``: ``interpolate_offset=0, interpolate_antialias=True``): bicubic
  to ``size=(h, w)`` with antialiasing;
* at the trained grid (h = w = M) the embedding is used as is. DINOv2 interpolates in float32, DINO v1 in the
  parameters' dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seal.core.errors import ConfigError
from seal.models.teacher_weights import VIT_PREFIXES, convert_vit_state_dict, strip_prefix, unchunk_blocks, vit_size
from seal.models.teachers import TEACHERS, TeacherSpec, pad_to_stride, tokens_to_map

__all__ = ["DINO_RULE", "DINOV2_REG_RULE", "DINOV2_RULE", "DinoViT", "PosEmbedRule", "TimmViT", "interpolate_pos_grid"]


@dataclass(frozen=True)
class PosEmbedRule:
    """How an official ViT resamples its position grid to another input size."""

    offset: float       # > 0: scale_factor = (n + offset) / M; 0: output size n
    antialias: bool
    float32: bool       # interpolate in float32 (DINOv2) or in the parameters' dtype (DINO v1)


DINO_RULE = PosEmbedRule(0.1, False, False)
DINOV2_RULE = PosEmbedRule(0.1, False, True)
DINOV2_REG_RULE = PosEmbedRule(0.0, True, True)
_RULES = {"dino": DINO_RULE, "dinov2": DINOV2_RULE, "dinov2_reg": DINOV2_REG_RULE}


def interpolate_pos_grid(grid: torch.Tensor, size: tuple[int, int], rule: PosEmbedRule) -> torch.Tensor:
    """A square position grid [1, M * M, D] -> [1, h * w, D] for an h x w patch grid, by the official ``rule``."""
    n, dim = grid.shape[1], grid.shape[2]
    m = int(math.sqrt(n))
    if m * m != n:
        raise ValueError(f"position embedding of {n} tokens is not a square grid")
    h, w = size
    if (h, w) == (m, m):
        return grid
    x = grid.float() if rule.float32 else grid
    x = x.reshape(1, m, m, dim).permute(0, 3, 1, 2)
    if rule.offset:
        kwargs: dict[str, Any] = {"scale_factor": ((h + rule.offset) / m, (w + rule.offset) / m)}
    else:
        kwargs = {"size": (h, w)}
    x = F.interpolate(x, mode="bicubic", antialias=rule.antialias, **kwargs)
    if tuple(x.shape[-2:]) != (h, w):
        raise RuntimeError(f"position grid resampled to {tuple(x.shape[-2:])}, wanted {(h, w)}")
    return x.permute(0, 2, 3, 1).reshape(1, h * w, dim).to(grid.dtype)


def _swiglu_hidden(dim: int) -> int:
    """DINOv2's SwiGLUFFNFused hidden width for mlp_ratio 4: (int(4 * dim * 2 / 3) + 7) // 8 * 8 (4096 for g)."""
    return (int(4 * dim * 2 / 3) + 7) // 8 * 8


@dataclass(frozen=True)
class DinoViT(TeacherSpec):
    """A DINO / DINOv2 ViT (timm VisionTransformer, no classifier) that gives the official model's patch tokens at
    any input size. ``variant``: "dino", "dinov2" or "dinov2_reg" (its position rule and the files it reads).

    The position grid is the weights file's (a 518-pixel DINOv2 file keeps its 37 x 37 grid whatever ``img_size``
    the network was built with), so the official rule always starts from the grid the model was trained with."""

    variant: str = "dino"

    @property
    def rule(self) -> PosEmbedRule:
        return _RULES[self.variant]

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        import timm
        from timm.models.vision_transformer import VisionTransformer

        if not timm.is_model(self.arch):
            raise ConfigError(f"teacher.backbone: timm {timm.__version__} has no architecture {self.arch!r} "
                              "(a newer timm has it)")
        kwargs = {"num_classes": 0, "dynamic_img_size": True, **model_kwargs}
        if "giant" in self.arch and "embed_dim" in kwargs and "mlp_ratio" not in kwargs:
            # timm packs SwiGLU as fc1 = 2 * hidden; keep DINOv2's hidden width at any test width
            kwargs["mlp_ratio"] = (2 * _swiglu_hidden(int(kwargs["embed_dim"])) + 0.5) / int(kwargs["embed_dim"])
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

    def identify(self, state_dict: dict[str, torch.Tensor]) -> str | None:
        sd = unchunk_blocks(strip_prefix(state_dict, VIT_PREFIXES))
        if "cls_token" not in sd or "patch_embed.proj.weight" not in sd or "storage_tokens" in sd:
            return None
        registers = "register_tokens" in sd or "reg_token" in sd
        dinov2 = registers or "mask_token" in sd or any(".ls1.gamma" in k for k in sd)
        variant = ("dinov2_reg" if registers else "dinov2") if dinov2 else "dino"
        swiglu = any(".mlp.w12." in k for k in sd)
        width, patch = int(sd["cls_token"].shape[-1]), int(sd["patch_embed.proj.weight"].shape[-1])
        if (variant, width, patch, swiglu) != (self.variant, self.width, self.stride, "giant" in self.arch):
            return None
        size = f"ViT-{vit_size(width)}/{patch}"
        if variant == "dino":
            return f"DINO {size} checkpoint (pos_embed of {sd['pos_embed'].shape[1]} tokens, no layer scale)"
        evidence = "register_tokens" if registers else "mask_token, ls1.gamma"
        return f"DINOv2 {size} checkpoint{' with registers' if registers else ''} ({evidence})"

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = net.patch_embed(pad_to_stride(images, size, int(net.patch_embed.patch_size[0])))
        if x.dim() == 4:  # NHWC (dynamic_img_size) -> tokens
            x = x.flatten(1, 2)
        batch, pos = x.shape[0], net.pos_embed
        prefix = [t.expand(batch, -1, -1) for t in (net.cls_token, net.reg_token) if t is not None]
        if net.no_embed_class:  # DINOv2 with registers: [cls + pos_0, registers, patches + pos]
            x = torch.cat([*prefix, x + interpolate_pos_grid(pos, size, self.rule).to(x.dtype)], dim=1)
        else:  # DINO / DINOv2: [cls, patches] + pos
            pos = torch.cat([pos[:, :1], interpolate_pos_grid(pos[:, 1:], size, self.rule)], dim=1)
            x = torch.cat([*prefix, x], dim=1) + pos.to(x.dtype)
        x = net.norm_pre(net.patch_drop(net.pos_drop(x)))
        x = net.norm(net.blocks(x))
        return tokens_to_map(x[:, net.num_prefix_tokens:], size)


TimmViT = DinoViT  # the name before issue 17

VIT_FORMATS = ("DINO", "DINOv2", "timm")  # "timm": timm's own state dict of the same network
_DINO_URL = "https://dl.fbaipublicfiles.com/dino"
_DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2"

# DINO (Caron et al., ICCV 2021): ViT-S/16, ViT-B/16, ViT-S/8, ViT-B/8
for _name, _arch, _patch, _width, _file in (
        ("vit_small_patch16", "vit_small_patch16_224", 16, 384, "dino_deitsmall16_pretrain"),
        ("vit_base_patch16", "vit_base_patch16_224", 16, 768, "dino_vitbase16_pretrain"),
        ("vit_small_patch8", "vit_small_patch8_224", 8, 384, "dino_deitsmall8_pretrain"),
        ("vit_base_patch8", "vit_base_patch8_224", 8, 768, "dino_vitbase8_pretrain")):
    TEACHERS.register(_name, DinoViT(
        "vit", _arch, _patch, _width, ("DINO", "timm"),
        f"DINO ViT-{vit_size(_width)}/{_patch} (facebookresearch/dino: {_DINO_URL}/{_file}/{_file}.pth)",
        licence="Apache-2.0", variant="dino", input_size=224))
# DINOv2 (Oquab et al., 2023): ViT-S/B/L/g /14 (ScaLR distils these), then with 4 registers (Darcet et al., 2024)
for _size, _short, _width in (("small", "s", 384), ("base", "b", 768), ("large", "l", 1024), ("giant", "g", 1536)):
    for _reg in ("", "_reg4"):
        _file = f"dinov2_vit{_short}14{_reg}_pretrain.pth"
        TEACHERS.register(f"vit_{_size}_patch14{_reg}_dinov2", DinoViT(
            "vit", f"vit_{_size}_patch14{_reg}_dinov2", 14, _width, ("DINOv2", "timm"),
            f"DINOv2 ViT-{vit_size(_width)}/14{' with registers' if _reg else ''} (facebookresearch/dinov2: "
            f"{_DINOV2_URL}/dinov2_vit{_short}14/{_file})",
            licence="Apache-2.0", variant="dinov2_reg" if _reg else "dinov2", input_size=518))
