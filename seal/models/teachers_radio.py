"""C-RADIO v3 / v4 (NVlabs/RADIO) as 2D teachers, built by timm's NaFlexViT C-RADIO definitions.

Why NaFlexViT: the released backbone keeps its position embedding on a 128x128 grid (2048 px) and, at inference,
bilinearly resizes it to a square of the larger token-grid side and keeps the top-left h x w
(``radio/vit_patch_generator.py::_get_pos_embeddings``). timm's ``naflexvit_*_radio_*`` applies exactly that rule at
every input size; the fixed-grid ``vit_*_radio_*`` resample the grid once at load and again (bicubic, antialiased)
for other sizes, which is not RADIO's rule.

The released files come in two layouts, told apart by their keys: the torch-hub ``c-radio_v*_half.pth.tar``
(``{"state_dict" | "state_dict_ema": {"base_model.*", "input_conditioner.*", "_heads.*", ...}, "args": ...}``) and
the Hugging Face ``model.safetensors`` (``radio_model.model.*``, ``radio_model.input_conditioner.*``, ...). The image
normalisation is the file's input conditioner (OpenAI-CLIP mean/std when a file has none); the features are RADIO's
patch tokens (after the cls and register rows), passed through the file's feature normaliser when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seal.core.errors import ConfigError
from seal.models.teachers import TEACHERS, FrozenImageBackbone, TeacherSpec, pad_to_stride, tokens_to_map

__all__ = ["CRadio", "RadioNet", "OPENAI_CLIP_MEAN", "OPENAI_CLIP_STD"]

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # radio/input_conditioner.py::get_default_conditioner
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RADIO_FORMATS = ("C-RADIO torch-hub .pth.tar", "C-RADIO Hugging Face model.safetensors")
RADIO_LICENCE = "NVIDIA Open Model License Agreement (June 2024)"

# (backbone prefix, input-conditioner prefix, feature-normaliser prefix) of each released layout, as in RADIO_FORMATS
_LAYOUTS = (("base_model.", "input_conditioner.", "_feature_normalizer."),
            ("radio_model.model.", "radio_model.input_conditioner.", "radio_model.feature_normalizer."))
_TIMM_KEYS = ("patch_generator.embedder.weight", "patch_generator.pos_embed", "patch_generator.cls_token.token")
_SUMMARY_ONLY = ("fc_norm.", "attn_pool.", "head.")  # layers that read only the summary token, never the patches
# (width, cls + register rows) -> release name; the rows come from timm's definitions (reg_tokens 7 / 9 + cls)
_SIZES = {(768, 8): "C-RADIOv3-B", (1024, 8): "C-RADIOv3-L", (1280, 8): "C-RADIOv3-H", (1536, 8): "C-RADIOv3-g",
          (1152, 10): "C-RADIOv4-SO400M", (1280, 10): "C-RADIOv4-H"}


class RadioNet(nn.Module):
    """A timm NaFlexViT C-RADIO backbone with the released file's input conditioner and feature normaliser.

    The conditioner (``input_mean``/``input_std``, on the 0..1 scale) becomes the teacher's image normalisation;
    the normaliser (``feature_mean``/``feature_tx``, identity unless the file has one) maps the patch tokens as
    RADIO's ``FeatureNormalizer`` does: ``(x - mean) @ tx.T``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        dim = int(model.embed_dim)
        self.register_buffer("input_mean", torch.tensor(OPENAI_CLIP_MEAN))
        self.register_buffer("input_std", torch.tensor(OPENAI_CLIP_STD))
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_tx", torch.eye(dim))
        self.normalise_features = False  # set after loading: an identity normaliser is skipped (exact, and cheaper)

    def refresh(self) -> None:
        """Decide whether the loaded feature normaliser is the identity (skipped) or not (applied)."""
        eye = torch.eye(self.feature_tx.shape[0], dtype=self.feature_tx.dtype, device=self.feature_tx.device)
        self.normalise_features = bool(self.feature_mean.any()) or not torch.equal(self.feature_tx, eye)


def _layout(sd: dict[str, torch.Tensor]) -> int | None:
    """Which of `_LAYOUTS` a checkpoint is in (by its patch-embedding key), else None."""
    for i, (backbone, _, _) in enumerate(_LAYOUTS):
        if backbone + "patch_generator.embedder.weight" in sd:
            return i
    return None


def _plain_weights(backbone: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo RADIO's DAMP parametrisation (an identity on the weights) in a training state dict; refuse spectral
    reparametrisation, whose realised weights only RADIO's own code computes."""
    if not any(".parametrizations." in k for k in backbone):
        return backbone
    if any(k.endswith("_sn_version") or ".parametrizations.weight.0." in k for k in backbone):
        raise ConfigError("teacher.weights: this C-RADIO file holds spectral-reparametrised training weights; the "
                          "released files do not. Re-save it with RADIO's enable_spectral_reparam.py (or load it "
                          "with RADIO's hubconf and save model.state_dict()).")
    return {k.replace(".parametrizations.weight.original", ".weight"): v for k, v in backbone.items()}


@dataclass(frozen=True)
class CRadio(TeacherSpec):
    """A C-RADIO v3/v4 backbone: patch tokens at stride 16, any input size (padded right/bottom to a multiple of
    16, as RADIO itself accepts only multiples of 16), RADIO's position-embedding rule at every size."""

    align_corners: bool = False  # of the position-embedding resize; timm's choice per release (see `source`)
    prefix_rows: int = 8         # cls + register tokens before the patches (timm: 8 for v3, 10 for v4)

    def create(self, model_kwargs: dict[str, Any]) -> tuple[nn.Module, int, int]:
        import timm

        if not timm.is_model(self.arch):
            raise ConfigError(f"teacher.backbone: timm {timm.__version__} has no architecture {self.arch!r} "
                              "(timm 1.0.31 and newer have the C-RADIO NaFlexViTs)")
        kwargs = {"num_classes": 0, "pos_embed_align_corners": self.align_corners, **model_kwargs}
        try:
            model = timm.create_model(self.arch, pretrained=False, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"teacher.backbone: cannot build {self.arch!r} with options {model_kwargs}: {exc}"
                              ) from exc
        return RadioNet(model), int(model.embed_dim), self.stride

    def convert(self, state_dict: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
        from timm.models.naflexvit import checkpoint_filter_fn

        layout = _layout(state_dict)
        if layout is None:  # not a C-RADIO file: the strict loader names what it is
            return state_dict, "not a C-RADIO layout"
        prefix, cond, fnorm = _LAYOUTS[layout]
        backbone = _plain_weights({k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)})
        timm_part = {k: v for k, v in backbone.items() if k in _TIMM_KEYS or k.startswith("blocks.")}
        # timm's own RADIO converter (HF key names in; cls row + register rows, zero patch bias, layer-scale names)
        out = {f"model.{k}": v for k, v in checkpoint_filter_fn(
            {f"radio_model.model.{k}": v for k, v in timm_part.items()}, net.model).items()}
        # anything else of the backbone (a final norm, a patch LayerNorm) would change the tokens: keep it so the
        # strict loader names it, unless it only reads the summary token
        out.update({f"model.{k}": v for k, v in backbone.items()
                    if k not in timm_part and not k.startswith(_SUMMARY_ONLY)})
        mean, std = state_dict.get(cond + "norm_mean"), state_dict.get(cond + "norm_std")
        out["input_mean"] = net.input_mean.new_tensor(OPENAI_CLIP_MEAN) if mean is None else mean.flatten().float()
        out["input_std"] = net.input_std.new_tensor(OPENAI_CLIP_STD) if std is None else std.flatten().float()
        dim = net.feature_tx.shape[0]
        out["feature_mean"] = state_dict.get(fnorm + "mean", torch.zeros(dim))
        out["feature_tx"] = state_dict.get(fnorm + "tx", torch.eye(dim))
        return out, RADIO_FORMATS[layout]

    def features(self, net: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        tokens = net.model.forward_features(pad_to_stride(images, size, self.stride))
        tokens = tokens[:, net.model.num_prefix_tokens:]  # drop the cls + register rows
        if net.normalise_features:
            tokens = (tokens - net.feature_mean.to(tokens.dtype)) @ net.feature_tx.to(tokens.dtype).T
        return tokens_to_map(tokens, size)

    def identify(self, state_dict: dict[str, torch.Tensor]) -> str | None:
        layout = _layout(state_dict)
        if layout is None:
            return None
        prefix = _LAYOUTS[layout][0]
        width = int(state_dict[prefix + "patch_generator.embedder.weight"].shape[0])
        rows = state_dict.get(prefix + "patch_generator.cls_token.token")
        n = None if rows is None else int(rows.shape[0])
        if (width, n) != (self.width, self.prefix_rows):  # another C-RADIO size: its own teacher answers
            return None
        return (f"{_SIZES.get((width, n), 'C-RADIO')} checkpoint ({RADIO_FORMATS[layout]}: {prefix}patch_generator, "
                f"{n} cls + register rows)")

    def build(self, name: str, weights: str | Path | None, model_kwargs: dict[str, Any],
              strict: bool = True) -> FrozenImageBackbone:
        """The shared build, then the file's input conditioner becomes the image normalisation."""
        backbone = super().build(name, weights, model_kwargs, strict)
        net = backbone.net
        backbone.mean.copy_(net.input_mean.view(1, 3, 1, 1))
        backbone.std.copy_(net.input_std.view(1, 3, 1, 1))
        net.refresh()
        return backbone


_SOURCE = ("NVlabs/RADIO {release} ({hub}; HF nvidia/{release}: model.safetensors). Architecture as timm "
           "{arch} defines it ({rows} cls + register rows; position-embedding resize align_corners={ac}: {why}). "
           "Not established from public sources: the released files' exact key list, their input-conditioner "
           "values (read from the file; CLIP defaults otherwise) and the per-teacher cls / register split.")
_AC_WHY = {True: "timm: the HF-hub code this release shipped with", False: "NVlabs/RADIO code since 2025-06"}

for _name, _arch, _width, _release, _hub, _rows, _ac in (
    ("c_radio_v3_b", "naflexvit_base_patch16_radio_v3", 768, "C-RADIOv3-B", "c-radio_v3-b_half.pth.tar", 8, True),
    ("c_radio_v3_l", "naflexvit_large_patch16_radio_v3", 1024, "C-RADIOv3-L", "c-radio-v3_l_half.pth.tar", 8, False),
    ("c_radio_v3_h", "naflexvit_huge_patch16_radio_v3", 1280, "C-RADIOv3-H", "c-radio_v3-h_half.pth.tar", 8, True),
    ("c_radio_v3_g", "naflexvit_giant_patch16_radio_v3", 1536, "C-RADIOv3-g", "c-radio_v3-g_half.pth.tar", 8, False),
    ("c_radio_v4_so400m", "naflexvit_so400m_patch16_radio_v4", 1152, "C-RADIOv4-SO400M",
     "c-radio_v4-so400m_half.pth.tar", 10, False),
    ("c_radio_v4_h", "naflexvit_huge_patch16_radio_v4", 1280, "C-RADIOv4-H", "c-radio_v4-h_half.pth.tar", 10, False),
):
    TEACHERS.register(_name, CRadio(
        "radio", _arch, 16, _width, RADIO_FORMATS,
        _SOURCE.format(release=_release, hub=_hub, arch=_arch, rows=_rows, ac=_ac, why=_AC_WHY[_ac]),
        OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, RADIO_LICENCE, align_corners=_ac, prefix_rows=_rows))
