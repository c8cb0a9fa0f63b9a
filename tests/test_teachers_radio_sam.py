"""C-RADIO, SAM and SAM 2 teachers: files in each official layout (random values, official key names and shapes,
reduced depth) load strictly, and the features equal an independent implementation of the official model at the
native size and at the crop sizes seal feeds (224x416, 448x896), with the stated position-embedding rule."""

from __future__ import annotations

import argparse
import warnings

import pytest
import torch
import torch.nn.functional as F

from seal.core.errors import ConfigError, DataError
from seal.models import TEACHERS, build_image_backbone
from seal.models.teachers_radio import OPENAI_CLIP_MEAN

CROPS = ((224, 416), (448, 896))


def close(out: torch.Tensor, ref: torch.Tensor, rel: float = 1e-5) -> None:
    """Equal to `rel` of the reference's largest magnitude (float32 reductions differ in order only)."""
    assert out.shape == ref.shape
    err = (out - ref).abs().max().item() / ref.abs().max().item()
    assert err <= rel, f"relative error {err:.2e}"


def randomise(sd: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Random values for every float tensor (norm weights near 1), so no part of the network is inert."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in sd.items():
        if not v.is_floating_point():
            out[k] = v.clone()
        elif ("norm" in k or k.endswith(("neck.1.weight", "neck.3.weight"))) and k.endswith("weight"):
            out[k] = 1 + 0.1 * torch.randn(v.shape, generator=g)
        else:
            out[k] = 0.2 * torch.randn(v.shape, generator=g)
    return out


def images(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def load(name: str, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_image_backbone(name, path, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# C-RADIO: the released backbone is a timm VisionTransformer whose patch_embed / cls_token / pos_embed RADIO's
# enable_cpe replaced by a ViTPatchGenerator; below, that generator re-implemented from NVlabs/RADIO's source
# ----------------------------------------------------------------------------------------------------------------

TINY_RADIO = {"depth": 2, "embed_dim": 32, "num_heads": 2}
RADIO = {  # name: (cls + register rows, layer scale, align_corners, mlp_ratio) as the timm definitions have them
    "c_radio_v3_b": (8, 1e-5, True, 4.0),
    "c_radio_v4_so400m": (10, None, False, 4304 / 1152),
}


def radio_backbone(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A C-RADIO backbone state dict under RADIO's own key names (what follows ``base_model.``)."""
    from timm.models.vision_transformer import VisionTransformer

    rows, ls, _, mlp = RADIO[name]
    dim = TINY_RADIO["embed_dim"]
    vit = VisionTransformer(embed_dim=dim, depth=2, num_heads=2, mlp_ratio=mlp, init_values=ls, num_classes=0)
    sd = {f"blocks.{k}": v for k, v in vit.blocks.state_dict().items()}
    sd["patch_generator.embedder.weight"] = torch.zeros(dim, 3 * 16 * 16)  # Linear, no bias, (c, yy, xx)
    sd["patch_generator.pos_embed"] = torch.zeros(1, 128 * 128, dim)
    sd["patch_generator.cls_token.token"] = torch.zeros(rows, dim)
    return randomise(sd, seed)


def radio_reference(name: str, backbone: dict[str, torch.Tensor], mean, std, x: torch.Tensor,
                    normaliser: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """RADIOModel.forward -> patch features, from radio/{input_conditioner,vit_patch_generator,radio_model}.py."""
    from timm.models.vision_transformer import VisionTransformer

    rows, ls, align, mlp = RADIO[name]
    dim = TINY_RADIO["embed_dim"]
    vit = VisionTransformer(embed_dim=dim, depth=2, num_heads=2, mlp_ratio=mlp, init_values=ls, num_classes=0)
    vit.blocks.load_state_dict({k[7:]: v for k, v in backbone.items() if k.startswith("blocks.")}, strict=True)
    x = (x - torch.as_tensor(mean).view(1, 3, 1, 1)) / torch.as_tensor(std).view(1, 3, 1, 1)
    b, _, height, width = x.shape
    py, px = height // 16, width // 16
    patches = x.reshape(b, 3, py, 16, px, 16).permute(0, 2, 4, 1, 3, 5).reshape(b, py * px, 3 * 16 * 16)
    tokens = patches @ backbone["patch_generator.embedder.weight"].T
    grid = backbone["patch_generator.pos_embed"].reshape(1, 128, 128, dim).permute(0, 3, 1, 2)
    if (py, px) != (128, 128):  # _get_pos_embeddings, eval CPE: square of the larger side, top-left window
        side = max(py, px)
        grid = F.interpolate(grid.float(), size=(side, side), align_corners=align, mode="bilinear")[..., :py, :px]
    tokens = tokens + grid.flatten(2).permute(0, 2, 1)
    tokens = torch.cat([backbone["patch_generator.cls_token.token"].expand(b, -1, -1), tokens], dim=1)
    with torch.no_grad():
        feats = vit.blocks(tokens)[:, rows:]  # model.norm is Identity; _extract_final skips cls + registers
    if normaliser is not None:
        feats = (feats - normaliser[0]) @ normaliser[1].T
    return feats.reshape(b, py, px, dim).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def radio_files(tmp_path_factory):
    """c_radio_v3_b in the torch-hub layout (EMA and plain weights, args) and c_radio_v4_so400m as HF safetensors
    (with a feature normaliser); both with an input conditioner that is not CLIP's."""
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("radio")
    mean, std = torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.25, 0.3])
    ema, plain = radio_backbone("c_radio_v3_b", 1), radio_backbone("c_radio_v3_b", 2)

    def hub(sd):
        return {**{f"base_model.{k}": v for k, v in sd.items()}, "input_conditioner.norm_mean": mean.view(3, 1, 1),
                "input_conditioner.norm_std": std.view(3, 1, 1), "_heads.0.weight": torch.zeros(4, 32),
                "_feature_projections.0.weight": torch.zeros(4, 32)}

    args = argparse.Namespace(model="vit_base_patch16_224", teachers=[{"name": "siglip2-g"}, {"name": "dino_v2"}],
                              cpe_max_size=2048, register_multiple=8, dtype=torch.bfloat16)
    torch.save({"state_dict": hub(plain), "state_dict_ema": hub(ema), "args": args}, root / "c-radio_v3-b_half.pth.tar")
    so = radio_backbone("c_radio_v4_so400m", 3)
    g = torch.Generator().manual_seed(4)
    fnorm = (0.1 * torch.randn(32, generator=g), torch.eye(32) + 0.1 * torch.randn(32, 32, generator=g))
    save_file({**{f"radio_model.model.{k}": v.contiguous() for k, v in so.items()},
               "radio_model.input_conditioner.norm_mean": mean.view(3, 1, 1),
               "radio_model.input_conditioner.norm_std": std.view(3, 1, 1),
               "radio_model.summary_idxs": torch.tensor([0, 1, 2]),
               "radio_model.feature_normalizer.mean": fnorm[0], "radio_model.feature_normalizer.tx": fnorm[1]},
              str(root / "model.safetensors"))
    return {"hub": root / "c-radio_v3-b_half.pth.tar", "hf": root / "model.safetensors", "ema": ema, "so400m": so,
            "mean": mean, "std": std, "fnorm": fnorm}


def test_radio_torch_hub_file_is_radio_at_every_size(radio_files) -> None:
    teacher = load("c_radio_v3_b", radio_files["hub"], **TINY_RADIO)
    assert teacher.pretrained and teacher.weights_format == "C-RADIO torch-hub .pth.tar"
    assert (teacher.stride, teacher.out_channels, teacher.kind) == (16, 32, "radio")
    torch.testing.assert_close(teacher.mean.flatten(), radio_files["mean"])  # the file's input conditioner
    for h, w in ((512, 512), *CROPS):  # 512: RADIO's preferred resolution
        x = images(h, w)
        close(teacher(x), radio_reference("c_radio_v3_b", radio_files["ema"], radio_files["mean"],
                                          radio_files["std"], x))


def test_radio_hf_safetensors_with_feature_normaliser(radio_files) -> None:
    from safetensors.torch import load_file
    from timm import create_model
    from timm.models.naflexvit import checkpoint_filter_fn

    teacher = load("c_radio_v4_so400m", radio_files["hf"], **TINY_RADIO)
    assert teacher.weights_format == "C-RADIO Hugging Face model.safetensors" and teacher.net.normalise_features
    timm_radio = create_model("naflexvit_so400m_patch16_radio_v4", pretrained=False, num_classes=0, **TINY_RADIO)
    timm_radio.load_state_dict(checkpoint_filter_fn(load_file(radio_files["hf"]), timm_radio), strict=True)
    mean, std, fnorm = radio_files["mean"], radio_files["std"], radio_files["fnorm"]
    for h, w in CROPS:
        x = images(h, w, seed=1)
        ref = radio_reference("c_radio_v4_so400m", radio_files["so400m"], mean, std, x, fnorm)
        close(teacher(x), ref)
        with torch.no_grad():  # timm's own RADIO model and converter agree too
            tokens = timm_radio.forward_features((x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))[:, 10:]
        close((tokens - fnorm[0]) @ fnorm[1].T, ref.flatten(2).transpose(1, 2))


def test_radio_pads_other_sizes_and_refuses_other_sizes_and_families(radio_files) -> None:
    teacher = load("c_radio_v3_b", radio_files["hub"], **TINY_RADIO)
    x = images(200, 300)
    padded = radio_files["mean"].view(1, 3, 1, 1).repeat(1, 1, 208, 304)  # the conditioner's mean: 0 once normalised
    padded[..., :200, :300] = x
    ref = radio_reference("c_radio_v3_b", radio_files["ema"], radio_files["mean"], radio_files["std"], padded)
    close(teacher(x), ref)
    with pytest.raises(DataError) as err:  # a v4 file (10 prefix rows) given to a v3 teacher
        load("c_radio_v3_b", radio_files["hf"], **TINY_RADIO)
    assert "\n" not in str(err.value) and "reg_token" in str(err.value)
    spec = TEACHERS.get("c_radio_v3_b")  # RADIO's DAMP (an identity parametrisation) undone; spectral refused
    net, _, _ = spec.create(TINY_RADIO)
    hub = {f"base_model.{k}": v for k, v in radio_files["ema"].items()}
    damp = {k.replace(".weight", ".parametrizations.weight.original") if k.endswith("qkv.weight") else k: v
            for k, v in hub.items()}
    assert damp != hub and spec.convert(damp, net)[0].keys() == spec.convert(hub, net)[0].keys()
    no_conditioner = spec.convert(hub, net)[0]["input_mean"]  # OpenAI-CLIP's, RADIO's default conditioner
    torch.testing.assert_close(no_conditioner, torch.tensor(OPENAI_CLIP_MEAN))
    assert spec.mean == OPENAI_CLIP_MEAN
    with pytest.raises(ConfigError, match="spectral"):
        spec.convert({**damp, "base_model.blocks.0.attn.qkv.parametrizations.weight.0._sn_version": torch.ones(1)}, net)
    full = {"base_model.patch_generator.embedder.weight": torch.zeros(1280, 768),
            "base_model.patch_generator.cls_token.token": torch.zeros(10, 1280)}
    assert TEACHERS.get("c_radio_v4_h").identify(full).startswith("C-RADIOv4-H checkpoint (C-RADIO torch-hub")
    assert TEACHERS.get("c_radio_v3_h").identify(full) is None
    assert TEACHERS.get("sam_vit_h").identify(full) is None


# ----------------------------------------------------------------------------------------------------------------
# SAM: segment_anything's own builder and loader are the reference
# ----------------------------------------------------------------------------------------------------------------

TINY_SAM = {"depth": 2, "embed_dim": 32, "num_heads": 2, "global_attn_indexes": (1,)}


def official_sam(embed_dim: int = 32, checkpoint=None):
    from segment_anything.build_sam import _build_sam

    return _build_sam(encoder_embed_dim=embed_dim, encoder_depth=2, encoder_num_heads=2,
                      encoder_global_attn_indexes=[1], checkpoint=checkpoint)


@pytest.fixture(scope="module")
def sam_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sam") / "sam_vit_b_01ec64.pth"
    torch.save(randomise(official_sam().state_dict(), 5), path)  # a flat state dict, as the releases are
    return path


def test_sam_matches_segment_anything_at_1024_and_the_vitdet_rule_elsewhere(sam_file) -> None:
    teacher = load("sam_vit_b", sam_file, **TINY_SAM)
    assert (teacher.weights_format, teacher.out_channels, teacher.stride) == ("SAM", 256, 16)
    sam = official_sam(checkpoint=str(sam_file))  # segment_anything's strict load of the same file
    x = images(1024, 1024, seed=2)
    with torch.no_grad():
        ref = sam.image_encoder(sam.preprocess(x * 255))  # SAM's own normalisation and pad (none at 1024)
    close(teacher(x), ref)
    encoder = sam.image_encoder
    native = encoder.pos_embed.data.clone()
    for h, w in CROPS:  # detectron2 ViTDet get_abs_pos: bicubic, align_corners=False, to the token grid
        grid = F.interpolate(native.permute(0, 3, 1, 2), size=(h // 16, w // 16), mode="bicubic",
                             align_corners=False).permute(0, 2, 3, 1)
        encoder.pos_embed = torch.nn.Parameter(grid)
        x = images(h, w, seed=3)
        with torch.no_grad():
            ref = encoder((x * 255 - sam.pixel_mean) / sam.pixel_std)
        close(teacher(x), ref)


def test_sam_of_another_size_is_one_line(sam_file, tmp_path) -> None:
    wider = tmp_path / "sam_wider.pth"
    torch.save(randomise(official_sam(embed_dim=48).state_dict(), 6), wider)
    with pytest.raises(DataError) as err:
        load("sam_vit_b", wider, **TINY_SAM)
    assert "\n" not in str(err.value) and "wrong shape" in str(err.value)
    full = {"image_encoder.patch_embed.proj.weight": torch.zeros(1024, 3, 16, 16),
            "image_encoder.neck.0.weight": torch.zeros(256, 1024, 1, 1)}
    assert TEACHERS.get("sam_vit_l").identify(full) == ("SAM ViT-L/16 checkpoint (image_encoder.patch_embed, "
                                                        "image_encoder.neck)")
    assert TEACHERS.get("sam_vit_b").identify(full) is None and TEACHERS.get("c_radio_v3_l").identify(full) is None


# ----------------------------------------------------------------------------------------------------------------
# SAM 2: sam2's own hydra config, builder and strict loader are the reference
# ----------------------------------------------------------------------------------------------------------------

TINY_HIERA = {"embed_dim": 8, "num_heads": 1, "stages": (1, 1, 2, 1), "global_att_blocks": (3,)}
HYDRA_TINY = ["++model.image_encoder.trunk.embed_dim=8", "++model.image_encoder.trunk.num_heads=1",
              "++model.image_encoder.trunk.stages=[1,1,2,1]", "++model.image_encoder.trunk.global_att_blocks=[3]",
              "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]"]


@pytest.fixture(scope="module")
def sam2_official(tmp_path_factory):
    pytest.importorskip("sam2", reason="sam2 is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sam2.build_sam import build_sam2

        config = "configs/sam2.1/sam2.1_hiera_t.yaml"
        model = build_sam2(config, None, device="cpu", hydra_overrides_extra=HYDRA_TINY)
        path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
        torch.save({"model": randomise(model.state_dict(), 7)}, path)
        model = build_sam2(config, str(path), device="cpu", hydra_overrides_extra=HYDRA_TINY)  # strict load
    return model, path


def test_sam2_is_the_official_image_encoder_at_every_size(sam2_official) -> None:
    model, path = sam2_official
    teacher = load("sam2_hiera_tiny", path, **TINY_HIERA)
    assert (teacher.weights_format, teacher.out_channels, teacher.stride) == ("SAM 2.1", 256, 16)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1)
    for h, w in ((1024, 1024), CROPS[0]):  # the same official forward at 448x896 (any multiple of 32)
        x = images(h, w, seed=4)
        with torch.no_grad():
            ref = model.image_encoder((x - mean) / std)["vision_features"]  # what SAM2Base.forward_image reads
        close(teacher(x), ref)
    x = images(200, 300, seed=5)  # padded to multiples of 32 (Hiera's window embedding), map cropped to 13x19
    with torch.no_grad():
        ref = model.image_encoder(F.pad((x - mean) / std, (0, 20, 0, 24)))["vision_features"][:, :, :13, :19]
    close(teacher(x), ref)


def test_sam2_of_another_size_is_one_line(sam2_official) -> None:
    _, path = sam2_official
    with pytest.raises(DataError) as err:
        load("sam2_hiera_tiny", path, **{**TINY_HIERA, "embed_dim": 16})
    assert "\n" not in str(err.value) and "wrong shape" in str(err.value)
    full = {"image_encoder.trunk.pos_embed": torch.zeros(1, 144, 7, 7), "no_obj_embed_spatial": torch.zeros(1, 64),
            **{f"image_encoder.trunk.blocks.{i}.norm1.weight": torch.zeros(1) for i in range(48)}}
    assert TEACHERS.get("sam2_hiera_large").identify(full).startswith("SAM 2.1 Hiera-L checkpoint")
    assert TEACHERS.get("sam2_hiera_tiny").identify(full) is None and TEACHERS.get("sam_vit_l").identify(full) is None
