"""The DINOv3 teachers (Siméoni et al., 2025): ViTs with RoPE and 4 storage tokens, and ConvNeXts, as released by
facebookresearch/dinov3 (LVD-1689M web images; ViT-L and ViT-7B also on SAT-493M satellite images).

The ViTs are timm's eva implementation (``vit_*_patch16_dinov3_qkvb``: the official S/S+/B/L/H+ files carry q/v
biases, which the plain timm variants drop). Official keys go through timm's own ``checkpoint_filter_fn`` after the
masked qkv bias is made explicit; the file's ``rope_embed.periods`` replace timm's recomputed ones, because the
official model uses the stored values. The feature map is the patch tokens after the final norm (cls and storage
tokens dropped), with RoPE computed for the actual patch grid. The ConvNeXts are timm's ``convnext_*``; their map
is the official ``x_norm_patchtokens``: the last stage (stride 32) through the final LayerNorm.

Files are told apart by their keys: the official ``.pth`` layout, the transformers ``DINOv3ViTModel`` /
``DINOv3ConvNextModel`` layout and timm's own layout are read; `identify_dinov3` names any of them.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from seal.core.errors import ConfigError
from seal.models.teachers import IMAGENET_MEAN, IMAGENET_STD, TEACHERS, TeacherSpec, pad_to_stride, tokens_to_map

__all__ = ["DINOV3_LICENCE", "SAT_MEAN", "SAT_STD", "DinoV3ConvNeXt", "DinoV3ViT", "identify_dinov3"]

SAT_MEAN = (0.430, 0.411, 0.296)  # facebookresearch/dinov3 README, "Image transforms" (SAT-493M weights)
SAT_STD = (0.213, 0.156, 0.143)
DINOV3_LICENCE = "DINOv3 License (facebookresearch/dinov3 LICENSE.md)"
FORMATS = ("DINOv3", "DINOv3 transformers", "DINOv3 timm")
LVD, SAT = "LVD-1689M", "SAT-493M"

# (embed width, gated MLP) -> (size in the paper, seal name stem); L+ is in the hub code but was never released
_VIT_SIZES = {(384, False): ("S", "small"), (384, True): ("S+", "small_plus"), (768, False): ("B", "base"),
              (1024, False): ("L", "large"), (1024, True): ("L+", "large_plus"), (1280, True): ("H+", "huge_plus"),
              (4096, True): ("7B", "7b")}
_WRAPPER_PREFIXES = ("teacher.backbone.", "module.backbone.", "backbone.", "module.")


def _strip(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop training wrappers: keep the keys under the first of `_WRAPPER_PREFIXES` that occurs (a teacher
    checkpoint also holds dino_head.* and ibot_head.*), and drop the activation-checkpoint / compile infixes."""
    for prefix in _WRAPPER_PREFIXES:
        if any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            break
    return {k.replace("_checkpoint_wrapped_module.", "").replace("_orig_mod.", ""): v for k, v in sd.items()}


# ------------------------------------------------------------------------------------------------------------------
# ViT layouts
# ------------------------------------------------------------------------------------------------------------------


def _vit_layout(sd: dict[str, torch.Tensor]) -> str | None:
    """Which DINOv3 ViT layout ``sd`` is in (one of `FORMATS`), None when it is none of them."""
    if "storage_tokens" in sd and "cls_token" in sd and "patch_embed.proj.weight" in sd:
        return "DINOv3"
    if ("embeddings.register_tokens" in sd and "embeddings.position_embeddings" not in sd
            and any(k.startswith(("layer.0.attention.", "model.layer.0.attention.")) for k in sd)):
        return "DINOv3 transformers"
    if ("reg_token" in sd and "pos_embed" not in sd and "blocks.0.gamma_1" in sd
            and "patch_embed.proj.weight" in sd):
        return "DINOv3 timm"
    return None


def _vit_from_transformers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers DINOv3ViTModel keys (``layer.N`` on the hub, ``model.layer.N`` in the module) -> the official
    ones: q/k/v joined into qkv with a zero key bias (DINOv3's bias_mask zeroes it; transformers has none)."""
    gated = any(".mlp.gate_proj." in k for k in sd)
    mlp = {"gate_proj": "w1", "up_proj": "w2", "down_proj": "w3"} if gated else {"up_proj": "fc1", "down_proj": "fc2"}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key == "embeddings.mask_token" or ".attention.k_proj." in key or ".attention.v_proj." in key:
            continue
        if ".attention.q_proj." in key:
            k = sd.get(key.replace(".q_proj.", ".k_proj."))
            value = torch.cat([value, torch.zeros_like(value) if k is None else k,
                               sd[key.replace(".q_proj.", ".v_proj.")]])
        key = {"embeddings.cls_token": "cls_token", "embeddings.register_tokens": "storage_tokens"}.get(key, key)
        key = re.sub(r"^(model\.)?layer\.(\d+)\.", r"blocks.\2.", key)
        key = re.sub(r"^embeddings\.patch_embeddings\.", "patch_embed.proj.", key)
        key = re.sub(r"\.layer_scale(\d)\.lambda1$", r".ls\1.gamma", key)
        key = key.replace(".attention.q_proj.", ".attn.qkv.").replace(".attention.o_proj.", ".attn.proj.")
        out[re.sub(r"\.mlp\.(\w+_proj)\.", lambda m: f".mlp.{mlp[m[1]]}.", key)] = value
    return out


@dataclass(frozen=True)
class _VitInfo:
    """What a DINOv3 ViT file is: its size, patch, dataset (None where the file cannot tell) and layout."""

    width: int
    gated: bool  # SwiGLU MLP (w1/w2/w3): S+, H+, 7B
    patch: int
    sat: bool | None
    layout: str = "DINOv3"

    def name(self) -> str:
        size = _VIT_SIZES.get((self.width, self.gated))
        return f"DINOv3 ViT-{size[0]}/{self.patch}" if size else f"DINOv3 ViT/{self.patch} of width {self.width}"

    def describe(self) -> str:
        """A noun phrase for "the file looks like a ...", with the keys that tell."""
        if self.layout == "DINOv3 transformers":
            return f"{self.name()} checkpoint in the transformers layout (embeddings.register_tokens, layer.N)"
        if self.layout == "DINOv3 timm":
            return f"{self.name()} checkpoint in timm's layout (reg_token, gamma_1, no pos_embed)"
        dataset = "" if self.sat is None else f" {SAT if self.sat else LVD}"
        tells = ["storage_tokens", "rope_embed.periods"] + ["mlp.w1"] * self.gated + ["local_cls_norm"] * bool(self.sat)
        return f"{self.name()}{dataset} checkpoint ({', '.join(tells)})"

    def seal_name(self) -> str | None:
        size = _VIT_SIZES.get((self.width, self.gated))
        return f"vit_{size[1]}_patch16_dinov3{'_sat' if self.sat else ''}" if size and size[0] != "L+" else None


def _vit_file(state_dict: dict[str, torch.Tensor]) -> tuple[_VitInfo, dict[str, torch.Tensor]] | None:
    """A DINOv3 ViT checkpoint's size and its weights under the official (or timm's) key names; None if it is not
    one. Only an official ViT-L file tells its dataset: the SAT-493M one keeps local_cls_norm (as both 7B do)."""
    sd = _strip(state_dict)
    layout = _vit_layout(sd)
    if layout is None:
        return None
    if layout == "DINOv3 transformers":
        sd = _vit_from_transformers(sd)
    width = int(sd["cls_token"].shape[-1])
    gated = "blocks.0.mlp.w1.weight" in sd or "blocks.0.mlp.fc1_g.weight" in sd
    sat = None
    if layout == "DINOv3" and _VIT_SIZES.get((width, gated), ("7B",))[0] not in ("7B", "L+"):
        sat = "local_cls_norm.weight" in sd
    return _VitInfo(width, gated, int(sd["patch_embed.proj.weight"].shape[-1]), sat, layout), sd


def _explicit_qkv_bias(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``qkv.bias`` by what the official forward adds, ``bias * bias_mask``; timm's eva has no key bias,
    so one that is not zero (RoPE would make it matter) is refused."""
    out = {k: v for k, v in sd.items() if not k.endswith(".bias_mask")}
    for key in [k for k in out if k.endswith("attn.qkv.bias")]:
        bias = out[key] * sd[key + "_mask"] if key + "_mask" in sd else out[key]
        if not torch.isfinite(bias).all():
            raise ConfigError(f"teacher.weights: {key}(_mask) holds NaN/inf: the checkpoint was saved from a model "
                              "whose bias_mask was never initialised")
        if bias.chunk(3)[1].abs().max() > 0:
            raise ConfigError(f"teacher.weights: {key} has a non-zero key bias, which no released DINOv3 model has "
                              "(bias_mask zeroes it) and timm's eva cannot hold")
        out[key] = bias
    return out


@dataclass(frozen=True)
class DinoV3ViT(TeacherSpec):
    """A DINOv3 ViT/16 (timm eva, RoPE, 1 cls + 4 storage tokens); the map is the normed patch tokens at stride 16.

    Reads the official ``dinov3_vit*16*_pretrain_*.pth`` files (flat, or a ``{"teacher": ...}`` training checkpoint
    with ``backbone.``/``module.`` prefixes), the transformers layout and timm's."""

    gated: bool = False  # SwiGLU MLP (S+, H+, 7B): tells S+ from S in a file
    pretraining: str = LVD  # LVD-1689M or SAT-493M: an official ViT-L file says which, and must match

    def identify(self, state_dict: dict[str, torch.Tensor]) -> str | None:
        """The file's description when it is a DINOv3 ViT of this size (and, where it tells, dataset), else None."""
        found = _vit_file(state_dict)
        if found is None:
            return None
        info = found[0]
        mine = (info.width, info.gated, info.patch) == (self.width, self.gated, self.stride)
        return info.describe() if mine and info.sat in (None, self.pretraining == SAT) else None

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        import timm
        from timm.models.eva import Eva

        if not timm.is_model(self.arch):
            raise ConfigError(f"teacher.backbone: timm {timm.__version__} has no architecture {self.arch!r} "
                              "(DINOv3 needs timm >= 1.0.20)")
        try:
            model = timm.create_model(self.arch, pretrained=False, num_classes=0, **model_kwargs)
        except TypeError as exc:
            raise ConfigError(f"teacher.backbone: cannot build {self.arch!r} with options {model_kwargs}: {exc}"
                              ) from exc
        if not isinstance(model, Eva) or model.rope is None:
            raise ConfigError(f"teacher.backbone: timm model {self.arch!r} is a {type(model).__name__} without "
                              "DINOv3's RoPE, not a DINOv3 ViT")
        return model, int(model.embed_dim), int(model.patch_embed.patch_size[0])

    def convert(self, state_dict: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
        """Official/transformers/timm keys -> timm's eva. Another size is left to the strict loader (which names
        the file); another patch size, or the other dataset's ViT-L (same keys), is refused here in one line."""
        from timm.models.eva import checkpoint_filter_fn

        found = _vit_file(state_dict)
        if found is None:  # not a DINOv3 ViT: unchanged, for the strict loader to refuse and name
            return _strip(state_dict), "unrecognised"
        info, sd = found
        patch = int(net.patch_embed.patch_size[0])
        if info.patch != patch:  # timm's filter would resample the patch embedding silently
            raise ConfigError(f"teacher.weights holds a {info.describe()}: patch {info.patch}, but this teacher "
                              f"has patch {patch}")
        if info.sat is not None and info.sat != (self.pretraining == SAT):
            raise ConfigError(f"teacher.weights holds a {info.describe()}, but this teacher is the {self.pretraining}"
                              f" one, which normalises images differently: use teacher.backbone={info.seal_name()}")
        if info.layout == "DINOv3 timm":
            return sd, info.layout
        periods = sd.get("rope_embed.periods")
        sd = _explicit_qkv_bias(sd)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a note for every block without a q bias
            out = checkpoint_filter_fn(sd, net)
        rope = net.rope
        if periods is not None and periods.shape == rope.periods.shape:  # the official model uses the stored ones
            with torch.no_grad():
                rope.periods.copy_(periods.to(rope.periods))
        return out, info.layout

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = pad_to_stride(images, size, int(net.patch_embed.patch_size[0]))
        return tokens_to_map(net.forward_features(x)[:, net.num_prefix_tokens:], size)  # cls + 4 storage dropped


# ------------------------------------------------------------------------------------------------------------------
# ConvNeXt layouts
# ------------------------------------------------------------------------------------------------------------------


def _convnext_layout(sd: dict[str, torch.Tensor]) -> str | None:
    """Which ConvNeXt layout ``sd`` is in (one of `FORMATS`), None when it is none of them."""
    if "downsample_layers.0.0.weight" in sd and "stages.0.0.dwconv.weight" in sd:
        return "DINOv3"
    if any(k in sd for k in ("stages.0.downsample_layers.0.weight", "model.stages.0.downsample_layers.0.weight")):
        return "DINOv3 transformers"
    if "stem.0.weight" in sd and "stages.0.blocks.0.conv_dw.weight" in sd:
        return "DINOv3 timm"
    return None


_CONVNEXT_FROM_HF = [(r"^(model\.)?stages\.(\d+)\.downsample_layers\.(\d+)\.", r"downsample_layers.\2.\3."),
                     (r"^(model\.)?stages\.(\d+)\.layers\.(\d+)\.", r"stages.\2.\3."), (r"^layer_norm\.", "norm."),
                     (r"\.depthwise_conv\.", ".dwconv."), (r"\.layer_norm\.", ".norm."),
                     (r"\.pointwise_conv", ".pwconv")]
# the renames of timm.models.convnext.checkpoint_filter_fn, whose reshape step looks every key up in the model (a
# KeyError for a file deeper than the model, where the strict loader should name the extra blocks instead)
_CONVNEXT_TO_TIMM = [(r"^downsample_layers\.0\.", "stem."), (r"^stages\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2."),
                     (r"^downsample_layers\.(\d+)\.(\d+)\.", r"stages.\1.downsample.\2."), (r"\.dwconv\.", ".conv_dw."),
                     (r"\.pwconv(\d)\.", r".mlp.fc\1."), (r"^norm\.", "head.norm.")]


def _rename(sd: dict[str, torch.Tensor], rules: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        for pattern, repl in rules:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


@dataclass(frozen=True)
class _ConvNeXtInfo:
    """What a ConvNeXt file is: stage widths and depths, layout, whether it is known to be DINOv3's."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    layout: str
    dinov3: bool  # the official file keeps the final norm twice (norm.*, norms.3.*); transformers' is DINOv3 only
    head: bool  # a classifier (ImageNet ConvNeXt files): not a DINOv3 backbone

    def size(self) -> str | None:
        """tiny/small/base/large from the stem width (T and S: by the blocks of stage 3, 9 or 27)."""
        return {96: "tiny" if self.depths[2] <= 9 else "small", 128: "base", 192: "large"}.get(self.widths[0])

    def describe(self) -> str:
        """A noun phrase for "the file looks like a ...", with the keys that tell."""
        size = self.size()
        name = f"ConvNeXt-{size[0].upper()}" if size else f"ConvNeXt of widths {list(self.widths)}"
        if self.layout == "DINOv3 transformers":
            return f"DINOv3 {name} checkpoint in the transformers layout (stages.N.downsample_layers, layer_norm)"
        if self.layout == "DINOv3 timm":
            return f"{name} checkpoint in timm's layout (stem, stages.N.blocks)"
        if self.dinov3:
            return f"DINOv3 {name} checkpoint (downsample_layers, stages, norms.3)"
        return f"{name} checkpoint in the facebookresearch layout (downsample_layers, stages{', head' * self.head})"


def _convnext_file(state_dict: dict[str, torch.Tensor]) -> tuple[_ConvNeXtInfo, dict[str, torch.Tensor]] | None:
    """A ConvNeXt checkpoint's size and its weights under timm's key names; None if it is not one."""
    sd = _strip(state_dict)
    layout = _convnext_layout(sd)
    if layout is None:
        return None
    dinov3 = "norms.3.weight" in sd or layout == "DINOv3 transformers"
    if layout == "DINOv3 transformers":
        sd = _rename(sd, _CONVNEXT_FROM_HF)
    if layout != "DINOv3 timm":
        sd = _rename({k: v for k, v in sd.items() if not k.startswith("norms.")}, _CONVNEXT_TO_TIMM)
    depths = tuple(len({k.split(".")[3] for k in sd if k.startswith(f"stages.{i}.blocks.")}) for i in range(4))
    widths = tuple(int(sd[f"stages.{i}.blocks.0.conv_dw.weight"].shape[0]) if depths[i] else 0 for i in range(4))
    head = any(k.startswith(("head.weight", "head.fc.")) for k in sd)
    return _ConvNeXtInfo(widths, depths, layout, dinov3, head), sd


@dataclass(frozen=True)
class DinoV3ConvNeXt(TeacherSpec):
    """A DINOv3 ConvNeXt (timm ``convnext_*``); the map is the last stage through the final LayerNorm at stride 32,
    the official ``x_norm_patchtokens``. Reads the official ``dinov3_convnext_*_pretrain_lvd1689m-*.pth``, the
    transformers layout and timm's."""

    def identify(self, state_dict: dict[str, torch.Tensor]) -> str | None:
        """The file's description when it is a ConvNeXt backbone of this size, else None."""
        found = _convnext_file(state_dict)
        if found is None or found[0].head or found[0].size() != self.arch.removeprefix("convnext_"):
            return None
        return found[0].describe()

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        import timm

        try:
            model = timm.create_model(self.arch, pretrained=False, num_classes=0, **model_kwargs)
        except TypeError as exc:
            raise ConfigError(f"teacher.backbone: cannot build {self.arch!r} with options {model_kwargs}: {exc}"
                              ) from exc
        return model, int(model.num_features), self.stride

    def convert(self, state_dict: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
        """Official/transformers/timm keys -> timm's convnext (another size: the strict loader names the file)."""
        found = _convnext_file(state_dict)
        if found is None:
            return _strip(state_dict), "unrecognised"
        return found[1], found[0].layout

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = pad_to_stride(images, size, self.stride)
        if x.is_cuda:  # convolutions run fastest in NHWC on GPUs (the weights were moved likewise)
            x = x.contiguous(memory_format=torch.channels_last)
        return net.head.norm(net.forward_features(x))


def identify_dinov3(state_dict: dict[str, torch.Tensor]) -> str | None:
    """What a checkpoint is ("DINOv3 ViT-S/16 LVD-1689M checkpoint (storage_tokens, rope_embed.periods)") when it is
    in a layout the DINOv3 teachers read, whatever its size, else None. The size comes from the embed width and, for
    S vs S+, the MLP (SwiGLU: w1/w2/w3); SAT-493M vs LVD-1689M only from an official ViT-L file."""
    found = _vit_file(state_dict) or _convnext_file(state_dict)
    return found[0].describe() if found else None


# ------------------------------------------------------------------------------------------------------------------
# Registrations: the released weights (facebookresearch/dinov3 README and dinov3/hub/backbones.py)
# ------------------------------------------------------------------------------------------------------------------

_URL = "https://dl.fbaipublicfiles.com/dinov3/dinov3_{a}/dinov3_{a}_pretrain_{d}-{h}.pth"
# seal name stem, timm arch, width, official arch, LVD-1689M hash, SAT-493M hash
_VITS = [("small", "vit_small_patch16_dinov3_qkvb", 384, "vits16", "08c60483", ""),
         ("small_plus", "vit_small_plus_patch16_dinov3_qkvb", 384, "vits16plus", "4057cbaa", ""),
         ("base", "vit_base_patch16_dinov3_qkvb", 768, "vitb16", "73cec8be", ""),
         ("large", "vit_large_patch16_dinov3_qkvb", 1024, "vitl16", "8aa4cbdd", "eadcf0ff"),
         ("huge_plus", "vit_huge_plus_patch16_dinov3_qkvb", 1280, "vith16plus", "7c1da9a5", ""),
         ("7b", "vit_7b_patch16_dinov3", 4096, "vit7b16", "a955f4ea", "a6675841")]  # 7B: no qkv bias at all
for _stem, _arch, _width, _off, _lvd, _sat in _VITS:
    _size, _gated = {n: s for s, n in _VIT_SIZES.values()}[_stem], "plus" in _stem or _stem == "7b"
    for _data, _hash, _suffix, _mean, _std in ((LVD, _lvd, "", IMAGENET_MEAN, IMAGENET_STD),
                                                (SAT, _sat, "_sat", SAT_MEAN, SAT_STD)):
        if _hash:
            TEACHERS.register(f"vit_{_stem}_patch16_dinov3{_suffix}", DinoV3ViT(
                "vit", _arch, 16, _width, FORMATS, f"DINOv3 ViT-{_size}/16, {_data} (facebookresearch/dinov3: "
                + _URL.format(a=_off, d=_data.lower().replace("-", ""), h=_hash) + ")",
                _mean, _std, DINOV3_LICENCE, gated=_gated, pretraining=_data))
for _stem, _width, _hash in (("tiny", 768, "21b726bb"), ("small", 768, "296db49d"), ("base", 1024, "801f2ba9"),
                             ("large", 1536, "61fa432d")):
    TEACHERS.register(f"convnext_{_stem}_dinov3", DinoV3ConvNeXt(
        "convnext", f"convnext_{_stem}", 32, _width, FORMATS, f"DINOv3 ConvNeXt-{_stem[0].upper()}, {LVD} "
        f"(facebookresearch/dinov3: {_URL.format(a=f'convnext_{_stem}', d='lvd1689m', h=_hash)})",
        licence=DINOV3_LICENCE))
