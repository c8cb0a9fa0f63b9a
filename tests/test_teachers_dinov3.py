"""DINOv3 teachers: files in the official key layout load into timm's eva / convnext and give the official patch
features at any input size, checked against an independent implementation (transformers' DINOv3ViTModel and
DINOv3ConvNextModel); SAT-493M normalises with its own mean/std; `identify` names every released file.

The checkpoints are random tensors under the official names and shapes (dinov3/hub/backbones.py, read with
facebookresearch/dinov3 6876159): real widths, reduced depth. They are mapped into transformers by the functions
below, written from transformers' current module names (its stored convert_dinov3_vit_to_hf.py uses older ones)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from seal.core.errors import SealError
from seal.models.teachers import IMAGENET_MEAN, IMAGENET_STD, TEACHERS, build_image_backbone
from seal.models.teachers_dinov3 import SAT_MEAN, SAT_STD, identify_dinov3

RTOL = 1e-5  # max |seal - reference| / max |reference|
# width, heads, MLP hidden size, SwiGLU, q/v bias (dinov3/hub/backbones.py; 7B narrowed in the tests below)
VITS = {"S": (384, 6, 1536, False, True), "S+": (384, 6, 1536, True, True), "B": (768, 12, 3072, False, True),
        "L": (1024, 16, 4096, False, True), "H+": (1280, 20, 5120, True, True), "7B": (4096, 32, 8192, True, False)}


def official_vit(size: str, depth: int, seed: int = 0, sat: bool = False, device: str = "cpu",
                 **narrow: int) -> dict[str, torch.Tensor]:
    """A DINOv3 ViT state dict in the official layout (dinov3/models/vision_transformer.py), random values; the
    masked k third of qkv.bias is random too (the official forward multiplies it by bias_mask = 0)."""
    width, heads, hidden, gated, qkv_bias = VITS[size]
    width, heads, hidden = narrow.get("width", width), narrow.get("heads", heads), narrow.get("hidden", hidden)
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, scale: float | None = None) -> torch.Tensor:
        if device == "meta":
            return torch.empty(shape, device="meta")
        return torch.randn(shape, generator=g) * (shape[-1] ** -0.5 if scale is None else scale)

    head_dim = width // heads
    sd = {"cls_token": r(1, 1, width, scale=1.0), "storage_tokens": r(1, 4, width, scale=1.0),
          "mask_token": r(1, width, scale=1.0), "patch_embed.proj.weight": r(width, 3, 16, 16, scale=0.05),
          "patch_embed.proj.bias": r(width, scale=0.1),
          "rope_embed.periods": 100.0 ** (2 * torch.arange(head_dim // 4, dtype=torch.float32) / (head_dim // 2))}
    for i in range(depth):
        b = f"blocks.{i}."
        for norm in ("norm1", "norm2"):
            sd[b + norm + ".weight"], sd[b + norm + ".bias"] = 1 + r(width, scale=0.1), r(width, scale=0.1)
        sd[b + "attn.qkv.weight"] = r(3 * width, width)
        if qkv_bias:
            sd[b + "attn.qkv.bias"] = r(3 * width, scale=0.3)
            mask = torch.cat([torch.ones(width), torch.zeros(width), torch.ones(width)])
            sd[b + "attn.qkv.bias_mask"] = mask.to(device)
        sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"] = r(width, width), r(width, scale=0.1)
        sd[b + "ls1.gamma"], sd[b + "ls2.gamma"] = r(width, scale=0.5), r(width, scale=0.5)
        names = ("w1", "w2", "w3") if gated else ("fc1", "fc2")
        for name in names[:-1]:
            sd[f"{b}mlp.{name}.weight"], sd[f"{b}mlp.{name}.bias"] = r(hidden, width), r(hidden, scale=0.1)
        sd[f"{b}mlp.{names[-1]}.weight"], sd[f"{b}mlp.{names[-1]}.bias"] = r(width, hidden), r(width, scale=0.1)
    sd["norm.weight"], sd["norm.bias"] = 1 + r(width, scale=0.1), r(width, scale=0.1)
    if sat or size == "7B":  # untie_global_and_local_cls_norm (training only)
        sd["local_cls_norm.weight"], sd["local_cls_norm.bias"] = r(width), r(width)
    return sd


def vit_to_transformers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official DINOv3 ViT keys -> transformers 5.x DINOv3ViTModel (embeddings.*, model.layer.N.attention.q/k/v/o_proj,
    layer_scaleN.lambda1, mlp.up/down(/gate)_proj); the effective qkv bias is bias * bias_mask."""
    gated = "blocks.0.mlp.w1.weight" in sd
    mlp = {"w1": "gate_proj", "w2": "up_proj", "w3": "down_proj", "fc1": "up_proj", "fc2": "down_proj"}
    out = {"embeddings.cls_token": sd["cls_token"], "embeddings.register_tokens": sd["storage_tokens"],
           "embeddings.mask_token": sd["mask_token"].reshape(1, 1, -1), "norm.weight": sd["norm.weight"],
           "norm.bias": sd["norm.bias"], "embeddings.patch_embeddings.weight": sd["patch_embed.proj.weight"],
           "embeddings.patch_embeddings.bias": sd["patch_embed.proj.bias"]}
    for key, value in sd.items():
        m = re.match(r"blocks\.(\d+)\.(.+)$", key)
        if not m or key.endswith("bias_mask"):
            continue
        layer, rest = f"model.layer.{m[1]}.", m[2]
        if rest == "attn.qkv.weight":
            for part, w in zip("qkv", value.chunk(3), strict=True):
                out[f"{layer}attention.{part}_proj.weight"] = w
        elif rest == "attn.qkv.bias":
            q, k, v = (value * sd[key + "_mask"]).chunk(3)
            assert k.is_meta or not k.any()
            out[f"{layer}attention.q_proj.bias"], out[f"{layer}attention.v_proj.bias"] = q, v
        elif rest.startswith("attn.proj."):
            out[layer + "attention.o_proj." + rest.split(".")[-1]] = value
        elif rest.startswith(("ls1.", "ls2.")):
            out[f"{layer}layer_scale{rest[2]}.lambda1"] = value
        elif rest.startswith("mlp."):
            _, name, kind = rest.split(".")
            out[f"{layer}mlp.{mlp[name]}.{kind}"] = value
        else:
            out[layer + rest] = value
    assert gated == any("gate_proj" in k for k in out)
    return out


def transformers_vit(sd: dict[str, torch.Tensor]):
    """transformers' DINOv3ViTModel holding the official state dict ``sd`` (strict load), eval mode."""
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    width = sd["cls_token"].shape[-1]
    gated = "blocks.0.mlp.w1.weight" in sd
    heads = width // (4 * sd["rope_embed.periods"].shape[0])
    hidden = sd["blocks.0.mlp." + ("w1" if gated else "fc1") + ".weight"].shape[0]
    bias = "blocks.0.attn.qkv.bias" in sd
    cfg = DINOv3ViTConfig(patch_size=16, hidden_size=width, num_hidden_layers=len({k.split(".")[1] for k in sd
                          if k.startswith("blocks.")}), num_attention_heads=heads, intermediate_size=hidden,
                          num_register_tokens=4, use_gated_mlp=gated, hidden_act="silu" if gated else "gelu",
                          layer_norm_eps=1e-5, rope_theta=100.0, query_bias=bias, key_bias=False, value_bias=bias)
    model = DINOv3ViTModel(cfg).eval()
    model.load_state_dict(vit_to_transformers(sd), strict=True)
    with torch.no_grad():  # the official model uses the stored periods (transformers recomputes them)
        model.rope_embeddings.inv_freq.copy_(1.0 / sd["rope_embed.periods"].float())
    return model


def normalise(images: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    return (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def reference_vit(model, images: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """transformers' patch tokens (cls + 4 registers dropped) as a [B, C, H/16, W/16] map."""
    with torch.no_grad():
        tokens = model(pixel_values=normalise(images, mean, std)).last_hidden_state[:, 5:]
    h, w = images.shape[-2] // 16, images.shape[-1] // 16
    return tokens.reshape(images.shape[0], h, w, -1).permute(0, 3, 1, 2)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert out.shape == ref.shape
    return ((out - ref).abs().max() / ref.abs().max()).item()


def images(h: int, w: int, b: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def save(tmp_path: Path, sd: dict, name: str = "dinov3.pth") -> Path:
    path = tmp_path / name
    torch.save(sd, path)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Equivalence with transformers
# ----------------------------------------------------------------------------------------------------------------


def test_vit_s_matches_transformers_at_native_and_other_sizes(tmp_path):
    sd = official_vit("S", depth=2)
    teacher = build_image_backbone("vit_small_patch16_dinov3", save(tmp_path, sd), depth=2)
    assert (teacher.out_channels, teacher.stride, teacher.weights_format) == (384, 16, "DINOv3")
    ref = transformers_vit(sd)
    for h, w in ((224, 224), (224, 416), (448, 896)):
        x = images(h, w, seed=h + w)
        assert rel_err(teacher(x), reference_vit(ref, x)) < RTOL, (h, w)


@pytest.mark.parametrize("name, size, narrow", [
    ("vit_small_plus_patch16_dinov3", "S+", {}), ("vit_base_patch16_dinov3", "B", {}),
    ("vit_large_patch16_dinov3", "L", {}), ("vit_huge_plus_patch16_dinov3", "H+", {}),
    ("vit_7b_patch16_dinov3", "7B", {"width": 256, "heads": 2, "hidden": 512})])  # 7B: head dim 128, swiglu64, 3x
def test_every_vit_size_matches_transformers(name, size, narrow, tmp_path):
    sd = official_vit(size, depth=1, seed=1, **narrow)
    kwargs = {"embed_dim": narrow["width"], "num_heads": narrow["heads"]} if narrow else {}
    teacher = build_image_backbone(name, save(tmp_path, sd), depth=1, **kwargs)
    x = images(224, 416, seed=3)
    assert rel_err(teacher(x), reference_vit(transformers_vit(sd), x)) < RTOL


def test_sat_variant_normalises_with_its_own_mean_and_std(tmp_path):
    spec = TEACHERS.get("vit_large_patch16_dinov3_sat")
    assert (spec.mean, spec.std) == (SAT_MEAN, SAT_STD) == ((0.430, 0.411, 0.296), (0.213, 0.156, 0.143))
    assert (TEACHERS.get("vit_large_patch16_dinov3").mean, TEACHERS.get("vit_large_patch16_dinov3").std) == (
        IMAGENET_MEAN, IMAGENET_STD)
    sd = official_vit("L", depth=1, seed=2, sat=True)
    teacher = build_image_backbone("vit_large_patch16_dinov3_sat", save(tmp_path, sd), depth=1)
    x = images(224, 416, seed=4)
    ref = transformers_vit(sd)
    out = teacher(x)
    assert rel_err(out, reference_vit(ref, x, SAT_MEAN, SAT_STD)) < RTOL
    assert rel_err(out, reference_vit(ref, x)) > 1e-2  # ImageNet's normalisation gives other features


def test_a_sat_file_and_an_lvd_file_are_not_swapped(tmp_path):
    sat, lvd = save(tmp_path, official_vit("L", 1, sat=True), "sat.pth"), save(tmp_path, official_vit("L", 1), "l.pth")
    with pytest.raises(SealError, match="SAT-493M.*use teacher.backbone=vit_large_patch16_dinov3_sat") as err:
        build_image_backbone("vit_large_patch16_dinov3", sat, depth=1)
    assert "\n" not in str(err.value)
    with pytest.raises(SealError, match="LVD-1689M.*use teacher.backbone=vit_large_patch16_dinov3$"):
        build_image_backbone("vit_large_patch16_dinov3_sat", lvd, depth=1)


def test_stored_rope_periods_are_the_ones_used(tmp_path):
    """The official model loads rope_embed.periods from the file (timm recomputes them): bf16-rounded periods, as
    timm notes the released files hold, change the features by far more than the tolerance."""
    sd = official_vit("S", depth=1, seed=5)
    exact = build_image_backbone("vit_small_patch16_dinov3", save(tmp_path, sd, "a.pth"), depth=1)
    sd["rope_embed.periods"] = sd["rope_embed.periods"].bfloat16()
    rounded = build_image_backbone("vit_small_patch16_dinov3", save(tmp_path, sd, "b.pth"), depth=1)
    x = images(224, 416, seed=6)
    out = rounded(x)
    assert rel_err(out, reference_vit(transformers_vit(sd), x)) < RTOL
    assert rel_err(out, exact(x)) > 1e-4


def test_padding_to_the_patch_is_right_bottom_zeros_after_normalisation(tmp_path):
    sd = official_vit("S", depth=1, seed=7)
    teacher = build_image_backbone("vit_small_patch16_dinov3", save(tmp_path, sd), depth=1)
    x = images(200, 300, seed=8)
    out = teacher(x)
    assert out.shape == (1, 384, 13, 19)
    padded = torch.nn.functional.pad(normalise(x), (0, 304 - 300, 0, 208 - 200))
    with torch.no_grad():
        tokens = transformers_vit(sd)(pixel_values=padded).last_hidden_state[:, 5:]
    assert rel_err(out, tokens.reshape(1, 13, 19, -1).permute(0, 3, 1, 2)) < RTOL


# ----------------------------------------------------------------------------------------------------------------
# Layouts and wrappers
# ----------------------------------------------------------------------------------------------------------------


def test_training_checkpoints_transformers_and_timm_layouts_give_the_same_features(tmp_path):
    sd = official_vit("S+", depth=1, seed=9)
    x = images(224, 224, seed=10)
    expect = build_image_backbone("vit_small_plus_patch16_dinov3", save(tmp_path, sd), depth=1)
    heads = {"dino_head.mlp.0.weight": torch.zeros(4, 384), "ibot_head.mlp.0.weight": torch.zeros(4, 384)}
    files = {"teacher": {"teacher": {**{"backbone." + k: v for k, v in sd.items()}, **heads}},
             "module": {"model": {"module." + k: v for k, v in sd.items()}},
             "transformers": vit_to_transformers(sd),
             "hub": {re.sub(r"^model\.layer\.", "layer.", k): v for k, v in vit_to_transformers(sd).items()},
             "timm": expect.net.state_dict()}
    formats = {"teacher": "DINOv3", "module": "DINOv3", "transformers": "DINOv3 transformers",
               "hub": "DINOv3 transformers", "timm": "DINOv3 timm"}
    want = expect(x)
    for kind, content in files.items():
        teacher = build_image_backbone("vit_small_plus_patch16_dinov3", save(tmp_path, content, f"{kind}.pth"),
                                       depth=1)
        assert teacher.weights_format == formats[kind], kind
        assert rel_err(teacher(x), want) < 1e-6, kind


def test_a_file_of_another_size_fails_with_one_line_naming_it(tmp_path):
    base = save(tmp_path, official_vit("B", depth=1), "b.pth")
    with pytest.raises(SealError, match="DINOv3 ViT-B/16.*vit_base_patch16_dinov3") as err:
        build_image_backbone("vit_small_patch16_dinov3", base, depth=1)
    assert "\n" not in str(err.value)
    plus = save(tmp_path, official_vit("S+", depth=1), "splus.pth")
    with pytest.raises(SealError, match=r"DINOv3 ViT-S\+/16.*vit_small_plus_patch16_dinov3"):
        build_image_backbone("vit_small_patch16_dinov3", plus, depth=1)


# full-size key layouts of every released file (meta tensors: names and shapes only)
RELEASED = [("S", False, "vit_small_patch16_dinov3", "DINOv3 ViT-S/16 LVD-1689M"),
            ("S+", False, "vit_small_plus_patch16_dinov3", "DINOv3 ViT-S+/16 LVD-1689M"),
            ("B", False, "vit_base_patch16_dinov3", "DINOv3 ViT-B/16 LVD-1689M"),
            ("L", False, "vit_large_patch16_dinov3", "DINOv3 ViT-L/16 LVD-1689M"),
            ("L", True, "vit_large_patch16_dinov3_sat", "DINOv3 ViT-L/16 SAT-493M"),
            ("H+", False, "vit_huge_plus_patch16_dinov3", "DINOv3 ViT-H+/16 LVD-1689M"),
            ("7B", False, "vit_7b_patch16_dinov3 vit_7b_patch16_dinov3_sat", "DINOv3 ViT-7B/16 checkpoint")]
DEPTHS = {"S": 12, "S+": 12, "B": 12, "L": 24, "H+": 32, "7B": 40}


def official_convnext(size: str, depths: tuple[int, ...] | None = None, device: str = "cpu",
                      seed: int = 0) -> dict[str, torch.Tensor]:
    """A DINOv3 ConvNeXt state dict in the official layout (dinov3/models/convnext.py), random values."""
    dims = {"tiny": (96, 192, 384, 768), "small": (96, 192, 384, 768), "base": (128, 256, 512, 1024),
            "large": (192, 384, 768, 1536)}[size]
    depths = depths or ((3, 3, 9, 3) if size == "tiny" else (3, 3, 27, 3))
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, scale: float = 0.1, one: float = 0.0) -> torch.Tensor:
        if device == "meta":
            return torch.empty(shape, device="meta")
        fan = shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1) if len(shape) > 1 else 0
        return torch.randn(shape, generator=g) * (fan ** -0.5 if fan else scale) + one

    sd = {"downsample_layers.0.0.weight": r(dims[0], 3, 4, 4), "downsample_layers.0.0.bias": r(dims[0]),
          "downsample_layers.0.1.weight": r(dims[0], one=1.0), "downsample_layers.0.1.bias": r(dims[0])}
    for i in range(1, 4):
        sd |= {f"downsample_layers.{i}.0.weight": r(dims[i - 1], one=1.0), f"downsample_layers.{i}.0.bias":
               r(dims[i - 1]), f"downsample_layers.{i}.1.weight": r(dims[i], dims[i - 1], 2, 2),
               f"downsample_layers.{i}.1.bias": r(dims[i])}
    for i, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
        for j in range(depth):
            b = f"stages.{i}.{j}."
            sd |= {b + "gamma": r(dim, scale=0.5), b + "dwconv.weight": r(dim, 1, 7, 7), b + "dwconv.bias": r(dim),
                   b + "norm.weight": r(dim, one=1.0), b + "norm.bias": r(dim), b + "pwconv1.weight": r(4 * dim, dim),
                   b + "pwconv1.bias": r(4 * dim), b + "pwconv2.weight": r(dim, 4 * dim), b + "pwconv2.bias": r(dim)}
    sd["norm.weight"], sd["norm.bias"] = r(dims[-1], one=1.0), r(dims[-1])
    sd["norms.3.weight"], sd["norms.3.bias"] = sd["norm.weight"], sd["norm.bias"]  # the same module, listed twice
    return sd


def convnext_to_transformers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official ConvNeXt keys -> transformers 5.x DINOv3ConvNextModel (model.stages.N.downsample_layers / layers.M
    .{depthwise_conv, layer_norm, pointwise_conv1/2, gamma}, layer_norm)."""
    names = {"dwconv": "depthwise_conv", "norm": "layer_norm", "pwconv1": "pointwise_conv1",
             "pwconv2": "pointwise_conv2", "gamma": "gamma"}
    out = {}
    for key, value in sd.items():
        if m := re.match(r"downsample_layers\.(\d)\.(\d)\.(\w+)$", key):
            out[f"model.stages.{m[1]}.downsample_layers.{m[2]}.{m[3]}"] = value
        elif m := re.match(r"stages\.(\d)\.(\d+)\.(\w+)\.?(\w*)$", key):
            out[f"model.stages.{m[1]}.layers.{m[2]}.{names[m[3]]}" + (f".{m[4]}" if m[4] else "")] = value
        elif key.startswith("norm."):
            out["layer_norm." + key[5:]] = value
    return out


def test_identify_names_every_released_file_and_only_its_teachers_read_it():
    for size, sat, names, what in RELEASED:
        sd = official_vit(size, DEPTHS[size], sat=sat, device="meta")
        assert identify_dinov3(sd).startswith(what), size
        readers = [n for n in TEACHERS if TEACHERS.get(n).identify(sd)]
        assert readers == names.split(), (size, readers)
        assert TEACHERS.get(readers[0]).identify({"module." + k: v for k, v in sd.items()}) == identify_dinov3(sd)
    for size in ("tiny", "small", "base", "large"):
        sd = official_convnext(size, device="meta")
        assert identify_dinov3(sd) == f"DINOv3 ConvNeXt-{size[0].upper()} checkpoint (downsample_layers, stages, " \
                                      "norms.3)"
        assert [n for n in TEACHERS if TEACHERS.get(n).identify(sd)] == [f"convnext_{size}_dinov3"]
        assert identify_dinov3(convnext_to_transformers(sd)).startswith(f"DINOv3 ConvNeXt-{size[0].upper()} ")
    dinov2 = {"cls_token": torch.empty(1, 1, 384), "pos_embed": torch.empty(1, 1370, 384),
              "mask_token": torch.empty(1, 384), "patch_embed.proj.weight": torch.empty(384, 3, 14, 14),
              "blocks.0.ls1.gamma": torch.empty(384), "register_tokens": torch.empty(1, 4, 384)}
    assert identify_dinov3(dinov2) is None
    hf = vit_to_transformers(official_vit("S+", 1, device="meta"))
    assert identify_dinov3(hf) == "DINOv3 ViT-S+/16 checkpoint in the transformers layout " \
                                  "(embeddings.register_tokens, layer.N)"


def test_convnext_matches_transformers(tmp_path):
    from transformers import DINOv3ConvNextConfig, DINOv3ConvNextModel

    depths = (1, 1, 1, 1)
    sd = official_convnext("tiny", depths, seed=11)
    teacher = build_image_backbone("convnext_tiny_dinov3", save(tmp_path, sd), depths=depths)
    assert (teacher.out_channels, teacher.stride, teacher.weights_format) == (768, 32, "DINOv3")
    ref = DINOv3ConvNextModel(DINOv3ConvNextConfig(depths=list(depths), hidden_sizes=[96, 192, 384, 768])).eval()
    ref.load_state_dict(convnext_to_transformers(sd), strict=True)
    for h, w in ((224, 224), (224, 416), (448, 896)):
        x = images(h, w, seed=h)
        with torch.no_grad():
            tokens = ref(pixel_values=normalise(x)).last_hidden_state[:, 1:]  # [pooled, patches], normed
        want = tokens.reshape(1, h // 32, w // 32, -1).permute(0, 3, 1, 2)
        assert rel_err(teacher(x), want) < RTOL, (h, w)
    hf = build_image_backbone("convnext_tiny_dinov3", save(tmp_path, convnext_to_transformers(sd), "hf.pth"),
                              depths=depths)
    assert hf.weights_format == "DINOv3 transformers"
    assert rel_err(hf(x), teacher(x)) < 1e-6


# ----------------------------------------------------------------------------------------------------------------
# Pretraining with a DINOv3 teacher
# ----------------------------------------------------------------------------------------------------------------

FAST = ["augment.crop_size=[56,104]", "augment.min_pairings_per_image=32", "train.batch_size=2",
        "train.num_workers=0", "train.log_every=1", "train.deterministic=true", "train.max_steps=1"]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> Path:
    import seal.cli.commands  # noqa: F401 - registers the commands
    from seal.cli.main import main

    root = tmp_path_factory.mktemp("dinov3") / "D"
    assert main(["synth", "--out", str(root), "--sequences", "1", "--frames", "3"]) == 0
    return root


def test_seal_pretrain_runs_with_an_official_dinov3_file(synth_data, tmp_path):
    from seal.cli.main import main

    weights = save(tmp_path, official_vit("S", depth=1, seed=12))
    run = tmp_path / "run"
    # the tiny preset narrows its ViT teacher (embed 96, 3 heads): set ViT-S's own width back, one block
    argv = ["pretrain", str(synth_data), "--config", "tiny", "teacher.backbone=vit_small_patch16_dinov3",
            f"teacher.weights={weights}", "teacher.model_kwargs.embed_dim=384", "teacher.model_kwargs.num_heads=6",
            "teacher.model_kwargs.depth=1", f"train.run_dir={run}", *FAST]
    assert main(argv) == 0
    assert (run / "metrics.csv").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["teacher"] == f"vit_small_patch16_dinov3 (DINOv3 weights from {weights})"


def test_pretraining_runs_with_an_official_convnext_file(synth_data, tmp_path):
    """The same through the Python API: the tiny preset's ViT options cannot be removed from the command line."""
    from seal.core.schemas import PretrainSchema
    from seal.core.settings import load_config
    from seal.engine.pretrain import pretrain

    depths = (1, 1, 1, 1)
    weights = save(tmp_path, official_convnext("tiny", depths, seed=13))
    tiny = Path(__file__).resolve().parents[1] / "seal" / "configs" / "pretrain_tiny.yaml"
    cfg = load_config(PretrainSchema, tiny, [f"data.path={synth_data}", f"train.run_dir={tmp_path / 'run'}",
                                             "teacher.backbone=convnext_tiny_dinov3", f"teacher.weights={weights}",
                                             *FAST])
    cfg.teacher.model_kwargs = {"depths": list(depths)}
    run = pretrain(cfg, progress=False)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["teacher"] == f"convnext_tiny_dinov3 (DINOv3 weights from {weights})"
