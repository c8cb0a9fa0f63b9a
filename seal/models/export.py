"""Pretrained backbones as plain state dicts: loadable with ``weights_only=True`` by seal or anyone with the network.

The stored ``backbone_config`` names the family (``name``); files written before families had names hold none and
load as ``minkunet``, the only family then."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from seal.core.checkpoint import SCHEMAS, save_checkpoint
from seal.core.config import BackboneConfig, WaffleIronConfig
from seal.core.errors import ConfigError, DataError
from seal.models.backbones import SparseBackbone, build_backbone

FORMAT = "seal-backbone-v1"


def export_backbone(path: Path, backbone: SparseBackbone, voxel: dict[str, Any], extra: dict[str, Any] | None = None
                    ) -> Path:
    """Write the backbone's weights with the config that rebuilds it and the voxelisation it expects."""
    payload = {"format": FORMAT, "backbone_config": asdict(backbone.config), "voxel": dict(voxel),
               "state_dict": {k: v.detach().cpu() for k, v in backbone.state_dict().items()}}
    payload.update(extra or {})
    return save_checkpoint(path, payload)


def backbone_config(stored: dict[str, Any]) -> BackboneConfig:
    """The `BackboneConfig` of a file's ``backbone_config`` (its nested sections back to dataclasses)."""
    out = dict(stored)
    if isinstance(out.get("waffleiron"), dict):
        out["waffleiron"] = WaffleIronConfig(**out["waffleiron"])
    return BackboneConfig(**out)


def load_backbone(path: str | Path, config: BackboneConfig | None = None) -> tuple[SparseBackbone, dict[str, Any]]:
    """Rebuild a backbone from an exported file (or a pretraining checkpoint) or a released ScaLR / ScaLR+
    WaffleIron checkpoint (`seal.models.waffleiron_weights`, recognised by its keys; ``config``, when it names
    waffleiron, sets what such a file cannot tell: grids, activation, intensity statistics); returns (model,
    metadata)."""
    from seal.models import waffleiron_weights as scalr

    path = Path(path)
    if path.is_dir():
        return load_hub_backbone(path)
    payload = scalr.read_payload(path)
    if scalr.scalr_state_dict(payload) is not None:
        return scalr.load_scalr_checkpoint(path, config, payload=payload)
    missing = [k for k in SCHEMAS["backbone"] if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise DataError(path, f"holds {scalr.looks_like(payload)}, not a seal backbone checkpoint (expected a dict "
                              f"with {', '.join(SCHEMAS['backbone'])}; missing {', '.join(missing[:4])}) nor a "
                              "ScaLR / ScaLR+ WaffleIron checkpoint")
    if payload.get("format") != FORMAT:
        raise DataError(path, "is not a seal backbone export", "use RUN_DIR/backbone.pt written by `seal pretrain`")
    try:
        model = build_backbone(backbone_config(payload["backbone_config"]))
        missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
    except (TypeError, ValueError, RuntimeError, AttributeError, ConfigError) as err:
        raise DataError(path, f"has a malformed backbone description: {err}".split("\n")[0]) from None
    if missing or unexpected:
        raise DataError(path, f"does not fit the {model.config.name} backbone it describes (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    return model, {k: v for k, v in payload.items() if k != "state_dict"}


def hub_config(backbone: SparseBackbone, voxel: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``config.json`` of an export: the backbone's shape and the voxelisation it expects, enough to rebuild it
    without the weights file."""
    from seal import __version__

    return {"library_name": "seal", "seal_version": __version__, "architecture": backbone.config.name,
            "backbone": asdict(backbone.config), "voxel": dict(voxel), "feature_dim": backbone.out_channels,
            "num_parameters": sum(p.numel() for p in backbone.parameters()), **extra}


def load_hub_backbone(folder: Path) -> tuple[SparseBackbone, dict[str, Any]]:
    """A backbone from a `seal export` folder, built from ``config.json`` alone and loaded strictly."""
    from seal.models.hub import BACKBONE, WEIGHTS, load_strict, read_hub_config, read_hub_weights, split_weights

    config = read_hub_config(folder)
    try:
        model = build_backbone(backbone_config(config["backbone"]))
    except (TypeError, ValueError, ConfigError) as err:
        raise DataError(folder / "config.json", f"has a malformed backbone section: {err}".split("\n")[0]) from None
    load_strict(folder / WEIGHTS, model, split_weights(read_hub_weights(folder), BACKBONE),
                f"{model.config.name} backbone")
    meta = {k: v for k, v in config.items() if k != "backbone"}
    return model, {**meta, "backbone_config": config["backbone"]}


__all__ = ["backbone_config", "export_backbone", "hub_config", "load_backbone", "load_hub_backbone", "FORMAT"]
