"""The presets' recipes against their sources (SLidR's config/slidr_minkunet.yaml and downstream configs): every
number of a paper-scale preset names its source, the lr is SLidR's 0.5 for a global batch of 4, SLidR's
pretraining BatchNorm momentum 0.05 does not leak into fine-tuning (SLidR: 0.02)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from seal.core.config import BackboneConfig, DownstreamOptimConfig, DownstreamTrainConfig, OptimConfig
from seal.core.schemas import PretrainSchema
from seal.core.settings import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "seal" / "configs"
PAPER_PRESETS = ["pretrain_nuscenes.yaml", "pretrain_semantickitti.yaml"]


@pytest.mark.parametrize("name", PAPER_PRESETS)
def test_paper_presets_are_slidrs_recipe(name) -> None:
    cfg = load_config(PretrainSchema, CONFIGS / name)
    o = cfg.optim
    assert (o.lr, o.lr_reference_batch, o.momentum, o.dampening, o.weight_decay, o.epochs) == (
        0.5, 4, 0.9, 0.1, 0.0001, 50)
    assert cfg.train.batch_size == 4          # one process: exactly SLidR's lr 0.5 for its global batch of 4
    assert cfg.train.batch_size / o.lr_reference_batch * o.lr == 0.5
    assert (cfg.voxel.size, cfg.voxel.mode, cfg.voxel.angle_bin_deg) == (0.1, "cylindrical", 1.0)
    assert cfg.model.backbone.bn_momentum == 0.05
    assert cfg.model.backbone.planes == [32, 64, 128, 256, 256, 128, 96, 96]      # Res16UNet34C
    assert cfg.model.backbone.layers == [2, 3, 4, 6, 2, 2, 2, 2]
    assert cfg.model.proj_dim == 64 and cfg.loss.tau == 0.07                       # model_n_out, NCE_temperature
    a = cfg.augment
    assert a.crop_size == [224, 416] and a.crop_ratio == pytest.approx([14 / 9, 17 / 9])
    assert a.crop_scale == [0.3, 1.0] and a.min_pairings_per_image == 1024
    assert (cfg.superpixels.method, cfg.superpixels.slic.n_segments, cfg.superpixels.slic.compactness,
            cfg.superpixels.slic.sigma) == ("slic", 150, 6.0, 3.0)
    assert cfg.teacher.backbone == "resnet50"


@pytest.mark.parametrize("name", [*PAPER_PRESETS, "pretrain_tiny.yaml", "downstream_tiny.yaml"])
def test_every_number_of_a_preset_names_its_source(name) -> None:
    """Every line of a preset holding a number carries a comment (the source, "seal's", or "unverified")."""
    bare = [line for line in (CONFIGS / name).read_text().splitlines()
            if not line.lstrip().startswith("#") and re.search(r":\s*[^#]*\d", line) and "#" not in line
            and not re.match(r"\s*(num_workers|log_every|checkpoint_every|fraction): ", line)
            and not re.search(r"_sequences: ", line)]
    assert not bare, f"{name}: numbers without a source: {bare}"
    if name in PAPER_PRESETS:
        text = (CONFIGS / name).read_text()
        assert "SLidR" in text and "unverified" in text


def test_defaults_follow_slidr() -> None:
    assert OptimConfig().lr_reference_batch == 4 and OptimConfig().lr == 0.5
    d = DownstreamOptimConfig()
    assert (d.lr, d.head_lr, d.momentum, d.dampening, d.weight_decay, d.epochs, d.lr_reference_batch) == (
        0.05, 2.0, 0.9, 0.1, 0.0001, 100, None)
    assert DownstreamTrainConfig().batch_size == 16
    assert BackboneConfig().bn_momentum == 0.02


def test_a_pretrained_backbone_takes_the_downstream_bn_momentum(tmp_path) -> None:
    from seal.models.export import export_backbone
    from seal.models.minkunet import MinkUNet
    from seal.models.segmentation import build_model

    tiny = dict(stem_channels=8, planes=[8, 8, 8, 8, 8, 8, 8, 8], layers=[1] * 8)
    torch.manual_seed(0)
    backbone = MinkUNet(BackboneConfig(**tiny, bn_momentum=0.05))
    path = export_backbone(tmp_path / "backbone.pt", backbone, {"size": 0.1})
    model, _ = build_model(str(path), BackboneConfig(bn_momentum=0.02), 3)
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.momentum == 0.02 for m in norms)
    assert model.backbone.config.bn_momentum == 0.02 and model.backbone.config.planes == tiny["planes"]
    exported = backbone.state_dict()
    assert all(torch.equal(v, exported[k]) for k, v in model.backbone.state_dict().items())
