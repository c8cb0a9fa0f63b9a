"""Frozen image teachers and the trainable 2D head: shapes, freezing, checkpoint formats, loud failures."""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from seal.core.errors import ConfigError, SealError
from seal.models.teachers import (
    TEACHERS,
    FrozenImageBackbone,
    ImageHead,
    ImageTeacher,
    RandomTeacherWarning,
    TeacherSpec,
    build_image_backbone,
)

TINY_VIT = {"depth": 2, "embed_dim": 64, "num_heads": 2}


def random_backbone(name: str, seed: int = 0, **kwargs) -> FrozenImageBackbone:
    torch.manual_seed(seed)
    with pytest.warns(RandomTeacherWarning):
        return build_image_backbone(name, None, **kwargs)


def images(b: int = 1, h: int = 64, w: int = 96, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def resnet() -> FrozenImageBackbone:
    return random_backbone("resnet50")


@pytest.fixture(scope="module")
def other_resnet() -> FrozenImageBackbone:
    """A second random init: the weights that the checkpoint-format tests write to disk."""
    return random_backbone("resnet50", seed=1)


def test_resnet50_dilated_has_output_stride_4(resnet: FrozenImageBackbone) -> None:
    out = resnet(images(2))
    assert out.shape == (2, 2048, 16, 24)
    assert (resnet.out_channels, resnet.stride) == (2048, 4)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert not out.requires_grad


def test_backbone_never_trains_but_head_does(resnet: FrozenImageBackbone) -> None:
    torch.manual_seed(0)
    teacher = ImageTeacher(resnet, out_dim=64)
    teacher.train()
    bns = [m for m in resnet.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.training is False for m in bns) and resnet.training is False
    assert teacher.head.training is True
    assert not any(p.requires_grad for p in resnet.parameters())

    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    head_before = teacher.head.proj.weight.detach().clone()
    opt = torch.optim.SGD(teacher.head_parameters(), lr=0.5)
    target = torch.nn.functional.normalize(torch.randn(1, 64, 1, 1), dim=1)
    for step in range(3):
        x = images(2, 32, 48, seed=step)
        loss = -(teacher(x) * target).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        assert teacher.head.proj.weight.grad is not None and teacher.head.proj.weight.grad.abs().sum() > 0
        opt.step()
    after = resnet.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():  # parameters and BatchNorm buffers, bit for bit
        assert torch.equal(v, after[k]), k
    assert all(p.grad is None for p in resnet.parameters())
    assert not torch.equal(head_before, teacher.head.proj.weight)


@pytest.mark.parametrize("fmt", ["moco", "torchvision"])
def test_resnet_published_formats_load(
    tmp_path, resnet: FrozenImageBackbone, other_resnet: FrozenImageBackbone, fmt: str
) -> None:
    saved = other_resnet
    sd = saved.net.state_dict()
    if fmt == "moco":  # moco_v2_800ep_pretrain.pth.tar layout: query encoder + MLP head + key encoder + queue
        ckpt = {f"module.encoder_q.{k}": v for k, v in sd.items()}
        ckpt.update({"module.encoder_q.fc.0.weight": torch.randn(2048, 2048), "module.encoder_q.fc.0.bias":
                     torch.randn(2048), "module.encoder_q.fc.2.weight": torch.randn(128, 2048),
                     "module.encoder_k.conv1.weight": torch.randn(64, 3, 7, 7), "module.queue": torch.randn(128, 8)})
        obj = {"epoch": 800, "arch": "resnet50", "state_dict": ckpt}
    else:  # plain torchvision file with its classifier
        obj = {**sd, "fc.weight": torch.randn(1000, 2048), "fc.bias": torch.randn(1000)}
    path = tmp_path / "weights.pth"
    torch.save(obj, path)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomTeacherWarning)
        loaded = build_image_backbone("resnet50", path)
    assert loaded.pretrained is True and str(path) in loaded.description
    assert loaded.weights_format == ("MoCo-v2" if fmt == "moco" else "torchvision")
    assert torch.equal(loaded.net.conv1.weight, sd["conv1.weight"])
    x = images(1, 32, 32)
    assert torch.equal(loaded(x), saved(x))
    assert not torch.allclose(loaded(x), resnet(x))  # resnet fixture: a different random init


def test_dino_training_checkpoint_loads_and_pads(tmp_path) -> None:
    src = random_backbone("vit_small_patch16", seed=1, img_size=64, **TINY_VIT)
    teacher = {f"backbone.{k}": v for k, v in src.net.state_dict().items()}
    teacher["head.mlp.0.weight"] = torch.randn(32, 64)  # DINO projection head: dropped
    student = {f"module.{k}": torch.zeros_like(v) for k, v in teacher.items()}
    path = tmp_path / "checkpoint.pth"
    torch.save({"teacher": teacher, "student": student, "epoch": 3, "args": argparse.Namespace(arch="vit_small")}, path)

    vit = build_image_backbone("vit_small_patch16", path, img_size=64, **TINY_VIT)
    assert vit.pretrained and vit.weights_format == "DINO" and (vit.stride, vit.out_channels) == (16, 64)
    assert torch.equal(vit.net.blocks[1].attn.qkv.weight, src.net.blocks[1].attn.qkv.weight)  # teacher, not student
    out = vit(images(2))
    assert out.shape == (2, 64, 4, 6)
    assert torch.equal(out, src(images(2)))
    odd = vit(images(1, 70, 100))
    assert odd.shape == (1, 64, 5, 7) and torch.isfinite(odd).all()
    assert vit.output_size(70, 100) == (5, 7)


def test_dinov2_naming_with_mask_token_and_other_grid(tmp_path) -> None:
    src = random_backbone("vit_small_patch14_dinov2", seed=2, img_size=70, **TINY_VIT)  # 5x5 position grid
    sd = dict(src.net.state_dict())
    sd["mask_token"] = torch.zeros(1, 64)  # dinov2_vits14_pretrain.pth carries it; timm has no such parameter
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(sd, path)

    # built for a 4x4 grid, but the file's 5x5 grid is kept: the official forward resamples from the trained grid at
    # every input size (issue 17; before, it was resampled once at load time and again at run time)
    vit = build_image_backbone("vit_small_patch14_dinov2", path, img_size=56, **TINY_VIT)
    assert vit.weights_format == "DINOv2" and vit.stride == 14
    assert torch.equal(vit.net.pos_embed, sd["pos_embed"]) and vit.net.pos_embed.shape == (1, 1 + 25, 64)
    assert torch.equal(vit.net.blocks[0].ls1.gamma, sd["blocks.0.ls1.gamma"])
    out = vit(images(1, 56, 84))
    assert out.shape == (1, 64, 4, 6) and torch.equal(out, src(images(1, 56, 84)))


def test_dinov2_with_registers(tmp_path) -> None:
    src = random_backbone("vit_small_patch14_reg4_dinov2", seed=3, img_size=56, **TINY_VIT)
    sd = dict(src.net.state_dict())
    reg, cls, pos = sd.pop("reg_token"), sd.pop("cls_token"), sd.pop("pos_embed")
    sd.update(register_tokens=reg, cls_token=cls, mask_token=torch.zeros(1, 64),
              pos_embed=torch.cat([torch.zeros(1, 1, 64), pos], dim=1))  # original layout: cls has a position
    path = tmp_path / "dinov2_vits14_reg4_pretrain.pth"
    torch.save(sd, path)
    vit = build_image_backbone("vit_small_patch14_reg4_dinov2", path, img_size=56, **TINY_VIT)
    assert torch.equal(vit.net.reg_token, reg) and torch.equal(vit.net.cls_token, cls)
    out = vit(images(1, 56, 70))
    assert out.shape == (1, 64, 4, 5) and torch.equal(out, src(images(1, 56, 70)))


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="teacher.weights") as err:
        build_image_backbone("resnet50", tmp_path / "nope.pth")
    assert "nope.pth" in str(err.value)


def test_wrong_keys_name_the_file(tmp_path) -> None:
    path = tmp_path / "wrong.pth"
    torch.save({"encoder.weird.weight": torch.zeros(3), "conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    with pytest.raises(SealError, match="wrong.pth") as err:
        build_image_backbone("vit_small_patch16", path, **TINY_VIT)
    assert "missing" in str(err.value) and "unexpected" in str(err.value)

    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="skipped"):
        partial = build_image_backbone("resnet50", path, strict=False)
    assert torch.equal(partial.net.conv1.weight, torch.zeros(64, 3, 7, 7))

    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(SealError, match="junk.pth"):
        build_image_backbone("resnet50", junk)


def test_random_init_is_loud() -> None:
    with pytest.warns(RandomTeacherWarning, match="RANDOM"):
        vit = build_image_backbone("vit_small_patch16", None, **TINY_VIT)
    assert vit.pretrained is False and "RANDOM" in vit.description


def test_unsupported_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="teacher.backbone"):
        build_image_backbone("not_a_model", None)
    with pytest.raises(ConfigError, match="VisionTransformer"):
        build_image_backbone("resnet18", None)  # a timm ResNet: no dilated stride-4 variant


def test_image_head_upsamples_and_normalises() -> None:
    torch.manual_seed(0)
    head = ImageHead(32, out_dim=64)
    out = head(torch.randn(2, 32, 4, 6), (64, 96))
    assert out.shape == (2, 64, 64, 96)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2, 64, 96), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------------------------------------------
# The registry: every built-in name builds as its spec says; a new family is one TeacherSpec
# ----------------------------------------------------------------------------------------------------------------

BUILT_IN = ("resnet101", "resnet50", "vit_base_patch14_dinov2", "vit_base_patch14_reg4_dinov2", "vit_base_patch16",
            "vit_base_patch8", "vit_giant_patch14_dinov2", "vit_giant_patch14_reg4_dinov2",
            "vit_large_patch14_dinov2", "vit_large_patch14_reg4_dinov2", "vit_small_patch14_dinov2",
            "vit_small_patch14_reg4_dinov2", "vit_small_patch16", "vit_small_patch8")


def test_the_registry_holds_the_built_in_teachers() -> None:
    names = TEACHERS.names()  # sorted built-ins (these and other families'), then plugins
    assert [n for n in names if n in BUILT_IN] == list(BUILT_IN)
    built_ins = [n for n in names if TEACHERS.source(n) == "seal"]
    assert names[:len(built_ins)] == tuple(built_ins)
    for name in BUILT_IN:
        spec = TEACHERS.get(name)
        assert isinstance(spec, TeacherSpec) and TEACHERS.source(name) == "seal"
        assert spec.family in ("resnet", "vit") and spec.source and spec.formats and spec.licence
        assert (spec.stride, spec.width) == ((4, 2048) if spec.family == "resnet" else
                                             (int(name.split("_patch")[1][:2].rstrip("_")),
                                              {"small": 384, "base": 768, "large": 1024, "giant": 1536}[
                                                  name.split("_")[1]]))


@pytest.mark.parametrize("name", [n for n in BUILT_IN if n.startswith("vit_")])
def test_every_vit_teacher_builds_with_its_stride(name) -> None:
    spec = TEACHERS.get(name)
    vit = random_backbone(name, img_size=56, **TINY_VIT)
    assert (vit.kind, vit.stride, vit.out_channels, vit.spec) == ("vit", spec.stride, 64, spec)
    assert vit.net.num_prefix_tokens == (5 if "reg4" in name else 1)
    assert vit(images(1, 30, 44)).shape == (1, 64, -(-30 // spec.stride), -(-44 // spec.stride))


@pytest.mark.parametrize("name", ["resnet101", "vit_small_patch16", "vit_small_patch14_reg4_dinov2"])
def test_the_published_size_has_the_spec_width(name) -> None:
    assert random_backbone(name).out_channels == TEACHERS.get(name).width


def test_an_unknown_name_is_one_line_listing_the_teachers() -> None:
    with pytest.raises(ConfigError) as err:
        build_image_backbone("vit_tiny_patch16_224", None)
    message = str(err.value)
    assert "\n" not in message and message.startswith("teacher.backbone='vit_tiny_patch16_224'")
    assert all(name in message for name in BUILT_IN) and "seal.teachers" in message


@dataclass(frozen=True)
class ToyTeacher(TeacherSpec):
    """A plugin's family: one strided convolution, its own normalisation and weight-file format."""

    def create(self, model_kwargs):
        return nn.Conv2d(3, model_kwargs.get("width", self.width), self.stride, stride=self.stride), \
            model_kwargs.get("width", self.width), self.stride

    def convert(self, state_dict, net):
        return {k.removeprefix("toy."): v for k, v in state_dict.items()}, "toy"

    def features(self, net, images, size):
        return net(images)


TOY = ToyTeacher("toy", "conv", 4, 8, ("toy",), "a test", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setattr(TEACHERS, "_entries", dict(TEACHERS._entries))
    TEACHERS.register("toy_conv", TOY)
    return TOY


def test_a_new_family_is_one_teacher_spec(toy_registered, tmp_path) -> None:
    assert "toy_conv" in TEACHERS.names()
    random = random_backbone("toy_conv", width=6)
    assert (random.kind, random.stride, random.out_channels) == ("toy", 4, 6)
    x = images(1, 32, 48)
    torch.testing.assert_close(random(x), random.net((x - 0.5) / 0.25))  # the spec's normalisation
    torch.save({f"toy.{k}": v for k, v in random.net.state_dict().items()}, tmp_path / "toy.pth")
    loaded = build_image_backbone("toy_conv", tmp_path / "toy.pth", width=6)
    assert loaded.pretrained and loaded.weights_format == "toy" and "toy weights" in loaded.description
    assert torch.equal(loaded(x), random(x)) and not any(p.requires_grad for p in loaded.parameters())


def test_a_registered_object_without_build_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(TEACHERS, "_entries", dict(TEACHERS._entries))
    TEACHERS.register("not_a_spec", object())
    with pytest.raises(ConfigError, match="not a TeacherSpec"):
        build_image_backbone("not_a_spec", None)
