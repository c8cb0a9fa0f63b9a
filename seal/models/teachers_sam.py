"""SAM (segment-anything) and SAM 2 (sam2) image encoders as 2D teachers: the official modules, built without
their prompt encoders and mask decoders, reading the ``image_encoder.*`` weights of the released checkpoints.

SAM: segment_anything's ``ImageEncoderViT`` (ViT-B/L/H, patch 16, windowed attention with relative positions, a
256-channel neck). The features are the neck's output, the image embedding SAM's mask decoder reads (256 channels
at stride 16), not the trunk's last block. SAM's own image path resizes the longest side to 1024 and pads to
1024x1024, where the absolute position embedding is its 64x64 grid as is; seal feeds crops of any size at stride 16
instead, so the 64x64 grid is resized to the token grid (h, w) with ViTDet's ``get_abs_pos`` rule (bicubic,
align_corners=False, no antialiasing: detectron2/modeling/backbone/utils.py, the code SAM's encoder comes from) -
the rule the encoder's own relative-position code follows at other sizes (``get_rel_pos`` stretches each axis
likewise). At 1024x1024 the grid is used unchanged, so the output is the official encoder's. Inputs are padded
right/bottom with zeros after normalisation to a multiple of 16 (SAM pads the same way).

SAM 2: sam2's ``ImageEncoder`` (Hiera trunk + FPN neck, scalp 1) with the configs of
``sam2/configs/sam2.1/sam2.1_hiera_*.yaml`` (the SAM 2 configs' image encoders are the same). The features are its
``vision_features``: the stride-16 FPN level (256 channels, the stride-32 level added top-down), without the
``no_mem_embed`` the image predictor adds for its decoder. Hiera interpolates its own position embedding to any
input whose sides are multiples of 32 (its windowed embedding tiles in 8x8 at stride 4): such inputs (224x416,
448x896, 1024x1024) go through the official forward as they are. Other inputs are padded right/bottom with zeros
after normalisation to a multiple of 32, not 16, and the map is cropped to ceil((H, W) / 16) - the one exception to
`pad_to_stride`, because Hiera cannot run on the smaller padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn

import torch
import torch.nn.functional as F
from torch import nn

from seal.core.errors import ConfigError
from seal.models.teachers import IMAGENET_MEAN, IMAGENET_STD, TEACHERS, TeacherSpec, pad_to_stride

__all__ = ["SamEncoder", "Sam2Encoder", "SAM_MEAN", "SAM_STD", "resize_sam_pos_embed"]

# segment_anything/build_sam.py: pixel_mean / pixel_std on the 0..255 scale, here on 0..1
SAM_MEAN = (123.675 / 255, 116.28 / 255, 103.53 / 255)
SAM_STD = (58.395 / 255, 57.12 / 255, 57.375 / 255)
SAM_FORMATS = ("SAM", "SAM image encoder")
SAM2_FORMATS = ("SAM 2.1", "SAM 2")
APACHE = "Apache-2.0"
_SAM_SIZES = {768: "ViT-B", 1024: "ViT-L", 1280: "ViT-H"}
_SAM2_SIZES = {(96, 12): "Hiera-T", (96, 16): "Hiera-S", (112, 24): "Hiera-B+", (144, 48): "Hiera-L"}


def resize_sam_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """SAM's absolute position embedding [1, 64, 64, C] for a (h, w) token grid: unchanged at 64x64, else
    ViTDet's ``get_abs_pos`` (bicubic, align_corners=False, no antialiasing) in float32."""
    if tuple(pos_embed.shape[1:3]) == tuple(grid):
        return pos_embed
    resized = F.interpolate(pos_embed.permute(0, 3, 1, 2).float(), size=tuple(grid), mode="bicubic",
                            align_corners=False)
    return resized.permute(0, 2, 3, 1).to(pos_embed.dtype)


def _need(module: str, extra: str) -> NoReturn:
    raise ConfigError(f"teacher.backbone: this teacher needs the {module!r} package, which is not installed "
                      f"({extra})")


@dataclass(frozen=True)
class SamEncoder(TeacherSpec):
    """A segment-anything image encoder (``depth``/``embed_dim``/``num_heads``/``global_attn_indexes`` narrow
    it; a shorter depth keeps the official global blocks below it, else makes its last block global)."""

    depth: int = 12
    embed_dim: int = 768
    num_heads: int = 12
    global_attn: tuple[int, ...] = (2, 5, 8, 11)

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        try:
            from segment_anything.modeling import ImageEncoderViT
        except ImportError:
            _need("segment_anything", "pip install 'seal[sam]'")
        unknown = set(model_kwargs) - {"depth", "embed_dim", "num_heads", "global_attn_indexes"}
        if unknown:
            raise ConfigError(f"teacher.backbone: {self.arch} takes depth, embed_dim, num_heads and "
                              f"global_attn_indexes, got {sorted(unknown)}")
        depth = int(model_kwargs.get("depth", self.depth))
        glob = model_kwargs.get("global_attn_indexes", tuple(i for i in self.global_attn if i < depth) or (depth - 1,))
        # segment_anything/build_sam.py::_build_sam, the image encoder's arguments
        net = ImageEncoderViT(
            depth=depth, embed_dim=int(model_kwargs.get("embed_dim", self.embed_dim)), img_size=1024, mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), num_heads=int(model_kwargs.get("num_heads", self.num_heads)),
            patch_size=16, qkv_bias=True, use_rel_pos=True, global_attn_indexes=tuple(glob), window_size=14,
            out_chans=256)
        return net, 256, self.stride

    def convert(self, state_dict: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
        if any(k.startswith("image_encoder.") for k in state_dict):  # a whole SAM: drop prompt encoder, decoder
            n = len("image_encoder.")
            return {k[n:]: v for k, v in state_dict.items() if k.startswith("image_encoder.")}, SAM_FORMATS[0]
        return state_dict, SAM_FORMATS[1]

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        # ImageEncoderViT.forward with the position embedding resized to the grid (identical at 64x64)
        x = net.patch_embed(pad_to_stride(images, size, self.stride))
        x = x + resize_sam_pos_embed(net.pos_embed, size).to(x.dtype)
        for blk in net.blocks:
            x = blk(x)
        return net.neck(x.permute(0, 3, 1, 2))

    def identify(self, state_dict: dict[str, torch.Tensor]) -> str | None:
        for prefix in ("image_encoder.", ""):
            w = state_dict.get(prefix + "patch_embed.proj.weight")
            if w is not None and prefix + "neck.0.weight" in state_dict and (
                    prefix or "blocks.0.attn.rel_pos_h" in state_dict):
                if int(w.shape[0]) != self.embed_dim:  # another SAM size: its own teacher answers
                    return None
                kind, keys = ("", "image_encoder.patch_embed, image_encoder.neck") if prefix else (
                    " image-encoder", "patch_embed, neck, blocks.0.attn.rel_pos_h")
                return f"SAM {_SAM_SIZES.get(self.embed_dim, 'ViT')}/16{kind} checkpoint ({keys})"
        return None


def _hiera_blocks(state_dict: dict[str, torch.Tensor]) -> int:
    prefix = "image_encoder.trunk.blocks."
    return 1 + max((int(k[len(prefix):].split(".")[0]) for k in state_dict if k.startswith(prefix)), default=-1)


@dataclass(frozen=True)
class Sam2Encoder(TeacherSpec):
    """A SAM 2 image encoder: Hiera trunk with the official config ``hiera`` (model_kwargs override any Hiera
    argument, e.g. ``stages``/``embed_dim`` for a tiny test model) and the 256-channel FPN neck."""

    hiera: tuple[tuple[str, Any], ...] = ()

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        try:
            from sam2.modeling.backbones.hieradet import Hiera
            from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
            from sam2.modeling.position_encoding import PositionEmbeddingSine
        except ImportError:
            _need("sam2", "pip install hydra-core iopath, then SAM2_BUILD_CUDA=0 pip install --no-deps "
                  "--no-build-isolation sam2")
        try:
            trunk = Hiera(**{**dict(self.hiera), **model_kwargs})
        except TypeError as exc:
            raise ConfigError(f"teacher.backbone: cannot build {self.arch} with options {model_kwargs}: {exc}"
                              ) from exc
        # sam2/configs/sam2.1/sam2.1_hiera_*.yaml: model.image_encoder.neck and scalp
        neck = FpnNeck(position_encoding=PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None,
                                                               temperature=10000),
                       d_model=256, backbone_channel_list=list(trunk.channel_list), fpn_top_down_levels=[2, 3],
                       fpn_interp_model="nearest")
        return ImageEncoder(trunk=trunk, neck=neck, scalp=1), 256, self.stride

    def convert(self, state_dict: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
        fmt = SAM2_FORMATS[0] if "no_obj_embed_spatial" in state_dict else SAM2_FORMATS[1]
        n = len("image_encoder.")
        if any(k.startswith("image_encoder.") for k in state_dict):  # drop memory, prompt encoder and decoder
            state_dict = {k[n:]: v for k, v in state_dict.items() if k.startswith("image_encoder.")}
        return state_dict, fmt

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        height, width = images.shape[-2:]
        h, w = size
        x = F.pad(images, (0, -width % 32, 0, -height % 32))
        return net(x)["vision_features"][:, :, :h, :w]

    def identify(self, state_dict: dict[str, torch.Tensor]) -> str | None:
        pos = state_dict.get("image_encoder.trunk.pos_embed")
        if pos is None:
            return None
        hiera = dict(self.hiera)
        own = (int(hiera.get("embed_dim", 96)), sum(hiera.get("stages", (2, 3, 16, 3))))
        key = (int(pos.shape[1]), _hiera_blocks(state_dict))
        if key != own:  # another Hiera size: its own teacher answers
            return None
        version = SAM2_FORMATS[0] if "no_obj_embed_spatial" in state_dict else SAM2_FORMATS[1]
        return f"{version} {_SAM2_SIZES.get(key, 'Hiera')} checkpoint (image_encoder.trunk, image_encoder.neck)"


for _size, _width, _depth, _heads, _glob, _file in (
    ("b", 768, 12, 12, (2, 5, 8, 11), "sam_vit_b_01ec64.pth"),
    ("l", 1024, 24, 16, (5, 11, 17, 23), "sam_vit_l_0b3195.pth"),
    ("h", 1280, 32, 16, (7, 15, 23, 31), "sam_vit_h_4b8939.pth"),
):
    TEACHERS.register(f"sam_vit_{_size}", SamEncoder(
        "sam", f"segment_anything ImageEncoderViT vit_{_size}", 16, 256, SAM_FORMATS,
        f"SAM ViT-{_size.upper()} image encoder (facebookresearch/segment-anything: {_file}); neck output; position "
        "embedding resized to the token grid with ViTDet's get_abs_pos rule at sizes other than 1024x1024",
        SAM_MEAN, SAM_STD, APACHE, 1024, depth=_depth, embed_dim=_width, num_heads=_heads, global_attn=_glob))

_HIERA = {  # sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml: model.image_encoder.trunk
    "tiny": {"embed_dim": 96, "num_heads": 1, "stages": (1, 2, 7, 2), "global_att_blocks": (5, 7, 9),
             "window_pos_embed_bkg_spatial_size": (7, 7)},
    "small": {"embed_dim": 96, "num_heads": 1, "stages": (1, 2, 11, 2), "global_att_blocks": (7, 10, 13),
              "window_pos_embed_bkg_spatial_size": (7, 7)},
    "base_plus": {"embed_dim": 112, "num_heads": 2},
    "large": {"embed_dim": 144, "num_heads": 2, "stages": (2, 6, 36, 4), "global_att_blocks": (23, 33, 43),
              "window_pos_embed_bkg_spatial_size": (7, 7), "window_spec": (8, 4, 16, 8)},
}
for _size, _short in (("tiny", "T"), ("small", "S"), ("base_plus", "B+"), ("large", "L")):
    TEACHERS.register(f"sam2_hiera_{_size}", Sam2Encoder(
        "sam2", f"sam2 ImageEncoder (Hiera-{_short})", 16, 256, SAM2_FORMATS,
        f"SAM 2.1 / SAM 2 Hiera-{_short} image encoder (facebookresearch/sam2: sam2.1_hiera_{_size}.pt or "
        f"sam2_hiera_{_size}.pt); stride-16 FPN level (vision_features)",
        IMAGENET_MEAN, IMAGENET_STD, APACHE, 1024, hiera=tuple(_HIERA[_size].items())))
