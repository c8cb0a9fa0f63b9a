"""A segmentation network: the (pretrained) sparse backbone plus a 1x1 classifier over train ids 1..C."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seal.core.batch import FrameSample
from seal.core.checkpoint import load_checkpoint, save_checkpoint
from seal.core.config import BackboneConfig
from seal.core.errors import ConfigError, DataError
from seal.models.backbones import SparseBackbone, build_backbone
from seal.models.export import load_backbone
from seal.models.sparse import sparse_tensor

FORMAT = "seal-segmentation-v1"


class SegmentationModel(nn.Module):
    """Backbone + linear classifier; column j of the logits is train id j+1 (0 = ignore is never predicted)."""

    def __init__(self, backbone: SparseBackbone, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(backbone.out_channels, num_classes)
        self.frozen = False

    def freeze_backbone(self) -> None:
        """Linear probing: no gradient into the backbone and its BatchNorm kept in eval mode."""
        self.frozen = True
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> SegmentationModel:
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def features(self, coords: torch.Tensor, feats: torch.Tensor, batch_size: int) -> torch.Tensor:
        return self.backbone(sparse_tensor(feats, coords, batch_size))

    def forward(self, coords: torch.Tensor, feats: torch.Tensor, batch_size: int) -> torch.Tensor:
        return self.classifier(self.features(coords, feats, batch_size))


def build_model(pretrained: str | None, backbone_cfg: BackboneConfig, num_classes: int
                ) -> tuple[SegmentationModel, dict[str, Any]]:
    """A model from a `seal pretrain` export (its own backbone shape) or randomly initialised. BatchNorm
    momentum is a training setting, not part of the shape: a pretrained backbone takes ``backbone_cfg``'s
    (SLidR pretrains with 0.05 and fine-tunes with 0.02)."""
    if pretrained:
        backbone, meta = load_backbone(pretrained)
        meta = {k: v for k, v in meta.items() if k in ("voxel", "backbone_config")}
        _set_bn_momentum(backbone, backbone_cfg.bn_momentum)
    else:
        backbone, meta = build_backbone(backbone_cfg), {"backbone_config": asdict(backbone_cfg)}
    return SegmentationModel(backbone, num_classes), meta


def _set_bn_momentum(backbone: SparseBackbone, momentum: float) -> None:
    for module in backbone.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = momentum
    backbone.config = replace(backbone.config, bn_momentum=momentum)


def save_model(path: Path, model: SegmentationModel, info: dict[str, Any]) -> Path:
    payload = {"format": FORMAT, "backbone_config": asdict(model.backbone.config),
               "num_classes": model.classifier.out_features,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **info}
    return save_checkpoint(path, payload)


def load_model(path: str | Path) -> tuple[SegmentationModel, dict[str, Any]]:
    """A trained segmentation model and its metadata (label map name, class names, voxelisation, ...)."""
    path = Path(path)
    payload = load_checkpoint(path, kind="segmentation")
    if payload.get("format") != FORMAT:
        raise DataError(path, "is not a seal segmentation checkpoint",
                        "use RUN_DIR/model.pt written by `seal probe` or `seal finetune`")
    try:
        model = SegmentationModel(build_backbone(BackboneConfig(**payload["backbone_config"])), payload["num_classes"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, AttributeError, ConfigError) as err:
        raise DataError(path, f"does not hold the model it describes: {err}".split("\n")[0]) from None
    return model, {k: v for k, v in payload.items() if k != "state_dict"}


@torch.no_grad()
def predict_frame(model: SegmentationModel, sample: FrameSample, device: torch.device) -> np.ndarray:
    """Train-id prediction (1..C) for every point of a voxelised sample."""
    coords = torch.from_numpy(np.column_stack([np.zeros(len(sample.coords), np.int32), sample.coords]))
    logits = model(coords.to(device), torch.from_numpy(sample.feats).to(device), 1)
    return (logits.argmax(dim=1) + 1).cpu().numpy()[sample.inverse]
