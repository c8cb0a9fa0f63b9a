"""One registry idiom for every pluggable kind: each registered name resolves and builds, and every config choice
list, ``--help`` choice and validation message is its registry's."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

import seal.core.config as config_module
from seal.cli.components import all_kinds
from seal.core.errors import ConfigError
from seal.core.registry import REGISTRY, Registry, registered_fields, registry_for
from seal.core.schemas import PretrainSchema
from seal.core.settings import load_config

KINDS = all_kinds()


def _config_classes() -> list[type]:
    return [c for c in vars(config_module).values() if isinstance(c, type) and dataclasses.is_dataclass(c)]


def test_every_kind_is_a_registry_with_built_ins():
    assert set(KINDS) == {"seal.formats", "seal.superpixels", "seal.teachers", "seal.backbones", "seal.engines",
                          "seal.corruptions", "seal.objectives"}
    for group, registry in KINDS.items():
        assert isinstance(registry, Registry) and registry.group == group
        assert registry.names(), group
        assert all(registry.source(n) == "seal" for n in registry.names())


def test_every_registry_field_is_marked_and_every_marked_field_has_a_registry():
    marked = {(c, name) for c in _config_classes() for name, rule in getattr(c, "RULES", {}).items()
              if rule == REGISTRY}
    assert marked, "no config field chooses from a registry"
    for cls, name in marked:
        assert registry_for(cls, name) is not None, f"{cls.__name__}.{name} is marked REGISTRY but none fills it"
    for cls, name in registered_fields():
        assert getattr(cls, "RULES", {}).get(name) == REGISTRY, f"{cls.__name__}.{name} lacks the REGISTRY rule"
        assert name in {f.name for f in dataclasses.fields(cls)}


def _subparser(parser: argparse.ArgumentParser, *names: str) -> argparse.ArgumentParser:
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def _choices(parser: argparse.ArgumentParser, flag: str) -> tuple:
    return tuple(next(a for a in parser._actions if flag in a.option_strings).choices)


def test_help_choices_and_validation_read_the_registries():
    from seal.cli.main import build_parser

    parser = build_parser()
    formats, methods = KINDS["seal.formats"], KINDS["seal.superpixels"]
    assert _choices(_subparser(parser, "info"), "--kind") == formats.choices()
    assert _choices(_subparser(parser, "superpixels"), "--method") == methods.choices()
    assert _choices(_subparser(parser, "pretrain"), "--objective") == KINDS["seal.objectives"].choices()
    for key, registry in (("superpixels.method", methods), ("data.kind", formats),
                          ("teacher.backbone", KINDS["seal.teachers"]), ("model.engine", KINDS["seal.engines"]),
                          ("model.backbone.name", KINDS["seal.backbones"])):
        with pytest.raises(ConfigError) as err:
            load_config(PretrainSchema, overrides=[f"{key}=no_such_name"])
        message = str(err.value)
        assert key in message and "\n" not in message
        assert all(name in message for name in registry.choices())
    for registry in KINDS.values():  # the one line of a registry's own lookup
        with pytest.raises(ConfigError, match="choose one of " + ", ".join(registry.choices())):
            registry.get("no_such_name")


def test_seal_config_lists_registered_choices(capsys):
    from seal.cli.main import main

    assert main(["config", "pretrain"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("method:"))
    assert all(name in line for name in KINDS["seal.superpixels"].names())


def test_every_dataset_format_resolves(tmp_path):
    from seal.data import get_format

    for name in KINDS["seal.formats"]:
        fmt = get_format(name)
        assert fmt.name == name and fmt.title and fmt.layout
        assert fmt.detect(tmp_path) is False  # an empty folder is no dataset


def test_every_superpixel_method_builds(tmp_path):
    from seal.core.config import SuperpixelConfig
    from seal.superpixels import Superpixelizer, build_superpixelizer

    (tmp_path / "sam.pth").write_bytes(b"")
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({}))
    cfg = SuperpixelConfig()
    cfg.sam.checkpoint, cfg.hf.model_dir, cfg.precomputed.folder = str(tmp_path / "sam.pth"), str(tmp_path / "hf"), \
        str(tmp_path)
    cfg.sam2.checkpoint = str(tmp_path / "sam.pth")  # only checked to exist until the first image
    image = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    for name in KINDS["seal.superpixels"]:
        method = build_superpixelizer(dataclasses.replace(cfg, method=name))
        assert isinstance(method, Superpixelizer) and method.name == name
        assert isinstance(method.params(), dict)
        if name == "slic":
            assert method(image).shape == image.shape[:2]


def test_every_teacher_builds_and_gives_its_stride_and_width():
    import torch

    from seal.models import TEACHERS
    from seal.models.teachers import build_image_backbone

    tiny_vit = {"depth": 1, "embed_dim": 32, "num_heads": 2}
    tiny = {"vit": tiny_vit, "radio": tiny_vit, "sam": tiny_vit,  # the published C-RADIO / SAM sizes take minutes
            "sam2": {"embed_dim": 8, "num_heads": 1, "stages": (1, 1, 2, 1), "global_att_blocks": (3,)},
            "convnext": {"depths": (1, 1, 1, 1), "dims": (8, 16, 32, 64)}}  # DINOv3 ConvNeXt-L: 198M parameters
    import importlib.util

    needs = {"sam2": "sam2", "sam": "segment_anything"}  # families built on an optional package (their extras)
    for name in TEACHERS:
        spec = TEACHERS.get(name)
        if spec.family in needs and importlib.util.find_spec(needs[spec.family]) is None:
            continue  # without the extra the build is one line naming it (tests/test_teachers_radio_sam.py)
        kwargs = tiny.get(spec.family, {})
        if getattr(spec, "needs_truth", False):  # the oracle controls: no weights, so no warning; read class maps
            teacher = build_image_backbone(name, None, **kwargs)
        else:
            with pytest.warns(UserWarning, match="RANDOM"):
                teacher = build_image_backbone(name, None, **kwargs)
        assert teacher.stride == spec.stride, name
        images = torch.rand(1, 3, 2 * spec.stride, 3 * spec.stride)
        truth = torch.randint(0, 5, (1, 2 * spec.stride, 3 * spec.stride))
        out = teacher(images, truth) if teacher.needs_truth else teacher(images)
        assert out.shape == (1, teacher.out_channels, 2, 3), name
        assert torch.isfinite(out).all()


def test_every_backbone_builds_and_runs(tmp_path):
    import torch

    from seal.core.batch import BackboneInput
    from seal.core.config import BackboneConfig, WaffleIronConfig
    from seal.models import BACKBONES
    from seal.models.backbones import build_backbone

    gen = torch.Generator().manual_seed(0)
    cells = torch.randperm(64 * 64 * 8, generator=gen)[:3000]
    coords = torch.stack([torch.zeros_like(cells), cells // (64 * 8), (cells // 8) % 64, cells % 8], 1).int()
    inputs = BackboneInput(coords, torch.rand(len(coords), 1), coords[:, 1:].float() * 0.1 - 3.0, 1)
    for name in BACKBONES:
        model = build_backbone(BackboneConfig(name=name, stem_channels=8, planes=[8] * 8, layers=[1] * 8,
                                              waffleiron=WaffleIronConfig(shape="tiny")))
        out = model(inputs)
        assert out.shape == (len(coords), model.out_channels)  # per-voxel features, in the input's order
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_every_engine_resolves():
    from seal.models import ENGINES

    for name in ENGINES:
        spec = ENGINES.get(name)
        assert spec.install and isinstance(spec.installed(), bool)
    assert ENGINES.choices()[0] == "auto"


def test_every_corruption_applies_to_a_real_frame(semantickitti_tiny):
    from seal.data import open_dataset
    from seal.robustness import CORRUPTIONS, corrupt_frame

    dataset = open_dataset(semantickitti_tiny)
    frame = dataset[0]
    for name in CORRUPTIONS:
        out = corrupt_frame(frame, name, "moderate", dataset.label_map, seed=0)
        assert out.points.dtype == np.float32 and out.points.shape[1] == 4 and len(out.points) > 0, name
        assert out.labels is not None and len(out.labels) == len(out.points), name
        assert out.id == frame.id and np.isfinite(out.points).all(), name  # effects: tests/test_corruptions.py


def test_every_objective_is_a_config_layer():
    from seal.losses.objectives import OBJECTIVES

    terms = ("vfm", "tmp", "p2s", "ppkt", "scalr")
    for name in OBJECTIVES:
        cfg = load_config(PretrainSchema, [OBJECTIVES.get(name).layer()])
        weights = {t: getattr(cfg.loss, t) for t in terms}
        assert any(weights.values()), name
    assert load_config(PretrainSchema, [OBJECTIVES.get("slidr").layer()]).superpixels.method == "slic"
