"""The features seal distils are the official models' (issue 17): checkpoints in the official key layouts (random
values, official names and shapes) load through `build_image_backbone` and give the patch tokens of an independent
implementation at the native size, at 224x416 (padded to 224x420 for /14) and at 448x896, to 1e-5 relative.

* DINOv2 (with and without registers): transformers' `Dinov2Model` / `Dinov2WithRegistersModel`, the weights
  mapped by transformers' own conversion (the renames of ``convert_dinov2[_with_registers]_to_hf.py``, then
  ``from_pretrained``, whose checkpoint conversion mapping turns those names into the installed ones). transformers
  5.x resamples the registers model's position embedding as the official hub model does (size, antialias), but the
  plain model by output size without the official +0.1 offset; that model gets the official rule, transcribed
  from facebookresearch/dinov2 ``interpolate_pos_encoding``.
* DINO v1: a direct transcription of facebookresearch/dino ``vision_transformer.py`` (interpolate_pos_encoding,
  Block, Attention).
* MoCo-v2 ResNet-50: torchvision's resnet50 loaded as moco ``main_lincls.py`` loads it.
"""

from __future__ import annotations

import argparse
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from seal.core.errors import DataError
from seal.models.teachers import IMAGENET_MEAN, IMAGENET_STD, TEACHERS, build_image_backbone

SIZES = {"native": None, "224x416": (224, 416), "448x896": (448, 896)}
TOL = 1e-5


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def official_vit(dim: int, depth: int, patch: int, grid: int, *, dinov2: bool, registers: int = 0,
                 swiglu: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """A release file's state dict: dinov2_vit*14[_reg4]_pretrain.pth / dino_*_pretrain.pth names and shapes."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape: int, s: float = 1.0, mean: float = 0.0) -> torch.Tensor:
        return mean + s * torch.randn(*shape, generator=gen)

    sd = {"cls_token": r(1, 1, dim, s=0.5), "pos_embed": r(1, 1 + grid * grid, dim, s=0.5),
          "patch_embed.proj.weight": r(dim, 3, patch, patch, s=(3 * patch * patch) ** -0.5),
          "patch_embed.proj.bias": r(dim, s=0.1)}
    if dinov2:
        sd["mask_token"] = torch.zeros(1, dim)
    if registers:
        sd["register_tokens"] = r(1, registers, dim, s=0.5)
    hidden = (int(4 * dim * 2 / 3) + 7) // 8 * 8
    for i in range(depth):
        b = f"blocks.{i}."
        sd.update({b + "norm1.weight": r(dim, s=0.1, mean=1), b + "norm1.bias": r(dim, s=0.1),
                   b + "attn.qkv.weight": r(3 * dim, dim, s=dim ** -0.5), b + "attn.qkv.bias": r(3 * dim, s=0.1),
                   b + "attn.proj.weight": r(dim, dim, s=dim ** -0.5), b + "attn.proj.bias": r(dim, s=0.1),
                   b + "norm2.weight": r(dim, s=0.1, mean=1), b + "norm2.bias": r(dim, s=0.1)})
        if swiglu:  # SwiGLUFFNFused: w12 packs [x1 | x2], out = w3(silu(x1) * x2)
            sd.update({b + "mlp.w12.weight": r(2 * hidden, dim, s=dim ** -0.5), b + "mlp.w12.bias": r(2 * hidden, s=.1),
                       b + "mlp.w3.weight": r(dim, hidden, s=hidden ** -0.5), b + "mlp.w3.bias": r(dim, s=0.1)})
        else:
            sd.update({b + "mlp.fc1.weight": r(4 * dim, dim, s=dim ** -0.5), b + "mlp.fc1.bias": r(4 * dim, s=0.1),
                       b + "mlp.fc2.weight": r(dim, 4 * dim, s=(4 * dim) ** -0.5), b + "mlp.fc2.bias": r(dim, s=.1)})
        if dinov2:  # the hub builds with init_values=1.0: LayerScale after attention and MLP
            sd.update({b + "ls1.gamma": r(dim, s=0.5, mean=1), b + "ls2.gamma": r(dim, s=0.5, mean=1)})
    sd.update({"norm.weight": r(dim, s=0.1, mean=1), "norm.bias": r(dim, s=0.1)})
    return sd


def normalise_and_pad(images: torch.Tensor, patch: int) -> torch.Tensor:
    """What the official model is given: ImageNet-normalised, padded right/bottom with zeros to the patch."""
    x = (images - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % patch, 0, -h % patch))


def dino_v1_reference(sd: dict[str, torch.Tensor], x: torch.Tensor, heads: int) -> torch.Tensor:
    """facebookresearch/dino VisionTransformer.get_intermediate_layers(x, 1)[0][:, 1:] on an official state dict."""
    B, _, w, h = x.shape  # the official names: w is the height
    p, dim = sd["patch_embed.proj.weight"].shape[-1], sd["cls_token"].shape[-1]
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=p).flatten(2).transpose(1, 2)
    t = torch.cat((sd["cls_token"].expand(B, -1, -1), t), dim=1)
    npatch, N = t.shape[1] - 1, sd["pos_embed"].shape[1] - 1  # interpolate_pos_encoding, L174-194
    if npatch == N and w == h:
        pos = sd["pos_embed"]
    else:
        w0, h0 = w // p + 0.1, h // p + 0.1
        grid = sd["pos_embed"][:, 1:].reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), mode="bicubic")
        assert int(w0) == grid.shape[-2] and int(h0) == grid.shape[-1]
        pos = torch.cat((sd["pos_embed"][:, :1], grid.permute(0, 2, 3, 1).view(1, -1, dim)), dim=1)
    t = t + pos
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(depth):
        g = {k[len(f"blocks.{i}."):]: v for k, v in sd.items() if k.startswith(f"blocks.{i}.")}
        y = F.layer_norm(t, (dim,), g["norm1.weight"], g["norm1.bias"], eps=1e-6)
        n = y.shape[1]
        qkv = F.linear(y, g["attn.qkv.weight"], g["attn.qkv.bias"]).reshape(B, n, 3, heads, dim // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * (dim // heads) ** -0.5).softmax(dim=-1)
        t = t + F.linear((attn @ v).transpose(1, 2).reshape(B, n, dim), g["attn.proj.weight"], g["attn.proj.bias"])
        y = F.layer_norm(t, (dim,), g["norm2.weight"], g["norm2.bias"], eps=1e-6)
        t = t + F.linear(F.gelu(F.linear(y, g["mlp.fc1.weight"], g["mlp.fc1.bias"])), g["mlp.fc2.weight"],
                         g["mlp.fc2.bias"])
    return F.layer_norm(t, (dim,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)[:, 1:]


def official_dinov2_rule(embeddings_module, offset: float, antialias: bool):
    """dinov2 DinoVisionTransformer.interpolate_pos_encoding (L180-212), in transformers' (embeddings, h, w) call."""
    def interpolate(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        pos_embed_param = embeddings_module.position_embeddings
        previous_dtype, npatch, N = x.dtype, x.shape[1] - 1, pos_embed_param.shape[1] - 1
        if npatch == N and width == height:
            return pos_embed_param
        pos_embed = pos_embed_param.float()
        class_pos_embed, patch_pos_embed, dim = pos_embed[:, 0], pos_embed[:, 1:], x.shape[-1]
        w0, h0 = height // 14, width // 14
        M = int(math.sqrt(N))
        kwargs = {"scale_factor": ((w0 + offset) / M, (h0 + offset) / M)} if offset else {"size": (w0, h0)}
        patch_pos_embed = F.interpolate(patch_pos_embed.reshape(1, M, M, dim).permute(0, 3, 1, 2), mode="bicubic",
                                        antialias=antialias, **kwargs)
        assert (w0, h0) == patch_pos_embed.shape[-2:]
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1).to(previous_dtype)
    return interpolate


def transformers_dinov2(sd: dict[str, torch.Tensor], heads: int, folder, *, registers: bool, swiglu: bool):
    """transformers' DINOv2 with the official weights converted the way its conversion scripts do."""
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import save_file

    dim = sd["cls_token"].shape[-1]
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    config_class = transformers.Dinov2WithRegistersConfig if registers else transformers.Dinov2Config
    config = config_class(image_size=518, patch_size=14, hidden_size=dim, num_hidden_layers=depth,
                          num_attention_heads=heads, use_swiglu_ffn=swiglu)
    renames = {"cls_token": "embeddings.cls_token", "mask_token": "embeddings.mask_token",  # create_rename_keys
               "pos_embed": "embeddings.position_embeddings", "register_tokens": "embeddings.register_tokens",
               "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
               "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
               "norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias"}
    out = {}
    for key, value in sd.items():
        if key in renames:
            out[renames[key]] = value
            continue
        i, rest = key.split(".")[1], ".".join(key.split(".")[2:])
        b = f"encoder.layer.{i}."
        if rest.startswith("attn.qkv."):  # read_in_q_k_v: query, key, value thirds
            kind = rest.rsplit(".", 1)[1]
            for j, name in enumerate(("query", "key", "value")):
                out[f"{b}attention.attention.{name}.{kind}"] = value[j * dim:(j + 1) * dim]
            continue
        rest = {"ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1"}.get(rest, rest)
        rest = rest.replace("attn.proj.", "attention.output.dense.")
        out[b + rest.replace("w12", "weights_in").replace("w3", "weights_out")] = value
    config.save_pretrained(folder)
    save_file({k: v.clone().contiguous() for k, v in out.items()}, str(folder / "model.safetensors"))
    model_class = transformers.Dinov2WithRegistersModel if registers else transformers.Dinov2Model
    model, info = model_class.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    return model.eval()


def hf_patch_map(model, x: torch.Tensor, prefix: int) -> torch.Tensor:
    with torch.no_grad():
        tokens = model(pixel_values=x).last_hidden_state[:, prefix:]
    return tokens.reshape(1, x.shape[-2] // 14, x.shape[-1] // 14, -1).permute(0, 3, 1, 2)


# name, width, heads, depth, registers, swiglu: the real ViT-S/14 shapes at depth 1, and a narrow giant (SwiGLU)
DINOV2 = {"vit_small_patch14_dinov2": (384, 6, 1, 0, False), "vit_small_patch14_reg4_dinov2": (384, 6, 1, 4, False),
          "vit_giant_patch14_dinov2": (48, 2, 1, 0, True), "vit_giant_patch14_reg4_dinov2": (48, 2, 1, 4, True)}


@pytest.fixture(scope="module")
def dinov2_pairs(tmp_path_factory):
    """(seal teacher, transformers model with the official position rule) per DINOv2 name."""
    pairs = {}
    for name, (dim, heads, depth, registers, swiglu) in DINOV2.items():
        sd = official_vit(dim, depth, 14, 37, dinov2=True, registers=registers, swiglu=swiglu, seed=len(pairs))
        folder = tmp_path_factory.mktemp(name)
        torch.save(sd, folder / "release.pth")
        kwargs = {"depth": depth, "embed_dim": dim, "num_heads": heads}
        seal_model = build_image_backbone(name, folder / "release.pth", **kwargs)
        hf = transformers_dinov2(sd, heads, folder, registers=bool(registers), swiglu=swiglu)
        if not registers:  # transformers' own rule has no +0.1 offset: give it the official one
            hf.embeddings.interpolate_pos_encoding = official_dinov2_rule(hf.embeddings, 0.1, False)
        pairs[name] = (seal_model, hf)
    return pairs


@pytest.mark.parametrize("name,size", [(n, s) for n in DINOV2 for s in SIZES
                                       if not ("giant" in n and "reg4" in n and s == "448x896")])  # (time)
def test_dinov2_patch_tokens_are_the_official_models(dinov2_pairs, name: str, size: str) -> None:
    seal_model, hf = dinov2_pairs[name]
    h, w = SIZES[size] or (518, 518)
    images = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h + w))
    ours = seal_model(images)
    x = normalise_and_pad(images, 14)
    prefix = 5 if "reg4" in name else 1
    ref = hf_patch_map(hf, x, prefix)
    assert ours.shape == ref.shape == (1, DINOV2[name][0], -(-h // 14), -(-w // 14))
    assert rel(ours, ref) < TOL, (name, size, rel(ours, ref))
    if "reg4" not in name and size == "224x416":  # transformers' own rule (size, no offset) is not the official one
        official = hf.embeddings.__dict__.pop("interpolate_pos_encoding")
        try:
            assert rel(hf_patch_map(hf, x, prefix), ref) > 1e-3
        finally:
            hf.embeddings.interpolate_pos_encoding = official


@pytest.mark.parametrize("name,patch", [("vit_small_patch16", 16), ("vit_small_patch8", 8)])
def test_dino_v1_patch_tokens_are_the_official_models(tmp_path, name: str, patch: int) -> None:
    dim, heads, depth = 32, 2 if patch == 16 else 1, 1  # one head at /8: 6272 tokens at 448x896
    sd = official_vit(dim, depth, patch, 224 // patch, dinov2=False, seed=patch)
    # main_dino.py training checkpoint: the teacher's backbone (+ DINO head), the student DDP-wrapped
    ckpt = {"teacher": {**{f"backbone.{k}": v for k, v in sd.items()}, "head.mlp.0.weight": torch.randn(8, dim)},
            "student": {f"module.backbone.{k}": torch.zeros_like(v) for k, v in sd.items()},
            "epoch": 100, "args": argparse.Namespace(arch="vit_small")}
    torch.save(sd, tmp_path / "release.pth")
    torch.save(ckpt, tmp_path / "checkpoint.pth")
    kwargs = {"depth": depth, "embed_dim": dim, "num_heads": heads}
    released = build_image_backbone(name, tmp_path / "release.pth", **kwargs)
    trained = build_image_backbone(name, tmp_path / "checkpoint.pth", **kwargs)
    assert released.weights_format == trained.weights_format == "DINO"
    for size, hw in SIZES.items():
        h, w = hw or (224, 224)
        images = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        ours = released(images)
        with torch.no_grad():
            ref = dino_v1_reference(sd, normalise_and_pad(images, patch), heads)
        ref = ref.reshape(1, h // patch, w // patch, dim).permute(0, 3, 1, 2)
        assert rel(ours, ref) < TOL, (name, size, rel(ours, ref))
        if size == "224x416":
            assert torch.equal(trained(images), ours)


def test_dinov2_training_checkpoint_layouts_load_the_teacher(tmp_path) -> None:
    """train.py's eval teacher_checkpoint.pth (block_chunks=4 keys, heads), an fvcore {'model': ...} checkpoint
    and a DDP ``module.`` file give the release file's features."""
    dim, depth = 32, 4
    sd = official_vit(dim, depth, 14, 4, dinov2=True, registers=4, seed=7)
    chunked = {(f"blocks.{int(k.split('.')[1])}.{k[len('blocks.'):]}" if k.startswith("blocks.") else k): v
               for k, v in sd.items()}  # chunk c holds blocks c * depth / 4 ...: blocks.<c>.<i>.*, here c = i
    files = {"release.pth": sd,
             "teacher_checkpoint.pth": {"teacher": {**{f"backbone.{k}": v for k, v in chunked.items()},
                                                    "dino_head.mlp.0.weight": torch.randn(8, dim),
                                                    "ibot_head.mlp.0.weight": torch.randn(8, dim)}},
             "model_final.pth": {"model": {**{f"student.backbone.{k}": torch.zeros_like(v) for k, v in sd.items()},
                                           **{f"teacher.backbone.{k}": v for k, v in chunked.items()}},
                                 "iteration": 10},
             "ddp.pth": {"state_dict": {f"module.{k}": v for k, v in sd.items()}}}
    images = torch.rand(1, 3, 70, 98, generator=torch.Generator().manual_seed(0))
    maps = []
    for file, obj in files.items():
        torch.save(obj, tmp_path / file)
        teacher = build_image_backbone("vit_small_patch14_reg4_dinov2", tmp_path / file, depth=depth, embed_dim=dim,
                                       num_heads=2)
        assert teacher.weights_format == "DINOv2", file
        maps.append(teacher(images))
    assert all(torch.equal(m, maps[0]) for m in maps[1:])


def test_moco_v2_resnet50_is_the_official_query_encoder(tmp_path) -> None:
    import torchvision

    torch.manual_seed(0)
    official = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[True, True, True])
    for m in official.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    encoder_q = {f"module.encoder_q.{k}": v for k, v in official.state_dict().items() if not k.startswith("fc.")}
    encoder_q.update({"module.encoder_q.fc.0.weight": torch.randn(16, 2048), "module.encoder_q.fc.2.weight":
                      torch.randn(4, 16), "module.queue": torch.randn(4, 8)})
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": encoder_q,
                "optimizer": {"state": {}, "param_groups": []}}, tmp_path / "moco_v2_800ep_pretrain.pth.tar")
    # main_lincls.py L251-260: keep module.encoder_q.* except fc, strip the prefix, load strict=False
    state = {k[len("module.encoder_q."):]: v for k, v in encoder_q.items()
             if k.startswith("module.encoder_q") and not k.startswith("module.encoder_q.fc")}
    reference = copy.deepcopy(official)  # the same network, its weights wiped (cheaper than a second init)
    for tensor in reference.state_dict().values():
        tensor.zero_()
    assert set(reference.load_state_dict(state, strict=False).missing_keys) == {"fc.weight", "fc.bias"}
    body = torch.nn.Sequential(*list(reference.children())[:-2]).eval()
    teacher = build_image_backbone("resnet50", tmp_path / "moco_v2_800ep_pretrain.pth.tar")
    assert teacher.weights_format == "MoCo-v2"
    images = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = body(normalise_and_pad(images, 1))
    assert torch.equal(teacher(images), ref)


def sam_vit_b() -> dict[str, torch.Tensor]:
    """sam_vit_b_01ec64.pth key layout (a few blocks are enough to be recognised)."""
    sd = {"image_encoder.pos_embed": torch.zeros(1, 64, 64, 768),
          "image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16),
          "image_encoder.patch_embed.proj.bias": torch.zeros(768),
          "image_encoder.neck.0.weight": torch.zeros(256, 768, 1, 1),
          "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": torch.zeros(2, 128),
          "mask_decoder.iou_token.weight": torch.zeros(1, 256)}
    for i in range(2):
        sd.update({f"image_encoder.blocks.{i}.attn.qkv.weight": torch.zeros(3 * 768, 768),
                   f"image_encoder.blocks.{i}.attn.rel_pos_h": torch.zeros(27, 64),
                   f"image_encoder.blocks.{i}.mlp.lin1.weight": torch.zeros(3072, 768)})
    return sd


def dinov3_vit_s16() -> dict[str, torch.Tensor]:
    """dinov3_vits16_pretrain_lvd1689m-08c60483.pth key layout, depth 1."""
    d = 384
    sd = {"cls_token": torch.zeros(1, 1, d), "storage_tokens": torch.zeros(1, 4, d), "mask_token": torch.zeros(1, d),
          "patch_embed.proj.weight": torch.zeros(d, 3, 16, 16), "patch_embed.proj.bias": torch.zeros(d),
          "rope_embed.periods": torch.ones(16), "norm.weight": torch.ones(d), "norm.bias": torch.zeros(d)}
    b = "blocks.0."
    sd.update({b + "norm1.weight": torch.ones(d), b + "attn.qkv.weight": torch.zeros(3 * d, d),
               b + "attn.qkv.bias": torch.zeros(3 * d), b + "attn.qkv.bias_mask": torch.ones(3 * d),
               b + "attn.proj.weight": torch.zeros(d, d), b + "ls1.gamma": torch.ones(d),
               b + "mlp.fc1.weight": torch.zeros(4 * d, d), b + "mlp.fc2.weight": torch.zeros(d, 4 * d)})
    return sd


@pytest.mark.parametrize("case", ["vit_b_file_to_vit_s", "dinov3_file_to_dinov2", "sam_file_to_dino"])
def test_a_file_of_another_family_or_size_is_one_line_saying_what_it_is(tmp_path, case: str) -> None:
    if case == "vit_b_file_to_vit_s":
        name, sd, says = "vit_small_patch14_dinov2", official_vit(768, 1, 14, 37, dinov2=True), \
            ["DINOv2 ViT-B/14 checkpoint (mask_token, ls1.gamma)", "use teacher.backbone=vit_base_patch14_dinov2"]
    elif case == "dinov3_file_to_dinov2":
        name, sd, says = "vit_small_patch14_dinov2", dinov3_vit_s16(), ["DINOv3", "ViT-S/16"]
        if "vit_small_patch16_dinov3" in TEACHERS:  # the DINOv3 family recognises its own files
            says.append("use teacher.backbone=vit_small_patch16_dinov3")
    else:
        name, sd, says = "vit_small_patch16", sam_vit_b(), ["SAM ViT-B/16", "image_encoder."]
    path = tmp_path / f"{case}.pth"
    torch.save(sd, path)
    with pytest.raises(DataError) as err:
        build_image_backbone(name, path, depth=1)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)) and f"teacher.backbone={name}" in message
    assert "looks like a" in message and all(s in message for s in says), message
