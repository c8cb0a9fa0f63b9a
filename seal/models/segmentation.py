"""A segmentation network: the (pretrained) sparse backbone plus a 1x1 classifier over train ids 1..C."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seal.core.batch import BackboneInput, FrameSample
from seal.core.checkpoint import load_checkpoint, save_checkpoint
from seal.core.config import BackboneConfig
from seal.core.errors import ConfigError, DataError
from seal.models.backbones import SparseBackbone, build_backbone
from seal.models.export import backbone_config, load_backbone, load_hub_backbone

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

    def features(self, inputs: BackboneInput) -> torch.Tensor:
        """Per-voxel backbone features [M, C]."""
        return self.backbone(inputs)

    def forward(self, inputs: BackboneInput) -> torch.Tensor:
        """Per-voxel logits [M, num_classes]."""
        return self.classifier(self.features(inputs))


def build_model(pretrained: str | None, backbone_cfg: BackboneConfig, num_classes: int
                ) -> tuple[SegmentationModel, dict[str, Any]]:
    """A model from a `seal pretrain` export (its own backbone shape) or randomly initialised. BatchNorm
    momentum is a training setting, not part of the shape: a pretrained backbone takes ``backbone_cfg``'s
    (SLidR pretrains with 0.05 and fine-tunes with 0.02)."""
    if pretrained:
        backbone, meta = load_backbone(pretrained)
        require_finite(pretrained, backbone.state_dict(), DIVERGED_HINT)
        meta = {k: v for k, v in meta.items() if k in ("voxel", "backbone_config")}
        _set_bn_momentum(backbone, backbone_cfg.bn_momentum)
    else:
        backbone, meta = build_backbone(backbone_cfg), {"backbone_config": asdict(backbone_cfg)}
    return SegmentationModel(backbone, num_classes), meta


def first_nonfinite(tensors: dict[str, Any]) -> str | None:
    """'NAME is nan (k of n values)' for the first floating tensor of ``tensors`` holding a NaN or an inf, or None."""
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                kind = "nan" if bool(torch.isnan(t).any()) else "inf"
                return f"{name} is {kind} ({int(bad.sum())} of {t.numel()} values not finite)"
    return None


def require_finite(path: str | Path, tensors: dict[str, Any], hint: str) -> None:
    """Refuse a weights file with a non-finite tensor (a diverged run's), naming the file and the first such tensor
    (parameter or buffer: a BatchNorm running_var of inf counts)."""
    culprit = first_nonfinite(tensors)
    if culprit is not None:
        raise DataError(path, f"holds non-finite weights: {culprit}", hint)


DIVERGED_HINT = ("the pretraining run diverged; use the backbone.pt of a run that finished, or pretrain again "
                 "with a lower optim.lr")


def check_pretrained(path: str | Path) -> None:
    """Refuse a pretrained backbone file that cannot be loaded or holds a non-finite tensor, in one line naming it
    (what `build_model` does, for a caller that wants to refuse before it creates anything)."""
    backbone, _ = load_backbone(path)
    require_finite(path, backbone.state_dict(), DIVERGED_HINT)


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
    if path.is_dir():
        return _load_hub_model(path)
    payload = load_checkpoint(path, kind="segmentation")
    if payload.get("format") != FORMAT:
        raise DataError(path, "is not a seal segmentation checkpoint",
                        "use RUN_DIR/model.pt written by `seal probe` or `seal finetune`")
    try:
        model = SegmentationModel(build_backbone(backbone_config(payload["backbone_config"])), payload["num_classes"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, AttributeError, ConfigError) as err:
        raise DataError(path, f"does not hold the model it describes: {err}".split("\n")[0]) from None
    require_finite(path, payload["state_dict"], "its training diverged or it was written from a diverged backbone; "
                                                "train it again from a finite backbone.pt")
    return model, {k: v for k, v in payload.items() if k != "state_dict"}


def _load_hub_model(folder: Path) -> tuple[SegmentationModel, dict[str, Any]]:
    """A probe / fine-tuning run exported by `seal export`: its backbone and its linear head."""
    from seal.models.hub import HEAD, WEIGHTS, load_strict, read_hub_weights, split_weights

    backbone, meta = load_hub_backbone(folder)
    head = meta.get("head")
    if not isinstance(head, dict) or "num_classes" not in head:
        raise DataError(folder / "config.json", "describes a backbone without a classifier (a pretraining export)",
                        "evaluate the export of a `seal probe` or `seal finetune` run, or probe this backbone first")
    model = SegmentationModel(backbone, int(head["num_classes"]))
    load_strict(folder / WEIGHTS, model.classifier, split_weights(read_hub_weights(folder), HEAD), "classifier")
    require_finite(folder / WEIGHTS, model.state_dict(), "export a run that finished with finite weights")
    return model, {**meta, **{k: v for k, v in head.items() if k != "num_classes"}, "num_classes": head["num_classes"]}


@torch.no_grad()
def predict_frame(model: SegmentationModel, sample: FrameSample, device: torch.device) -> np.ndarray:
    """Train-id prediction (1..C) for every point of a voxelised sample."""
    logits = model(sample.backbone_input().to(device))
    return (logits.argmax(dim=1) + 1).cpu().numpy()[sample.inverse]
