"""Released ScaLR / ScaLR+ WaffleIron checkpoints as seal backbones: detect the layout, infer the shape, load
strictly.

Layout (valeoai/ScaLR): a ``torch.save`` dict whose ``"model_point"`` (scalr_plus utils/distiller.py:252-256,
finetune.py:270; main finetune.py:254-257 also reads ``"model_points"``) holds the state dict of the whole
``Segmenter`` - ``embed.*``, ``waffleiron.{channel_mix,spatial_mix}.{d}.*`` and the distillation head
``classif.*`` - under a ``module.`` prefix when saved from DDP (stripped by finetune.py:271-276 before a strict
load). Fine-tuned files keep it under ``"net"`` (scalr_plus utils/finetuner.py:286). seal's `WaffleIron` names its
submodules like the official ones, so the mapping is: strip ``module.``, keep ``embed.*`` and ``waffleiron.*``
unchanged, set ``classif.*`` aside (returned in the metadata as ``head``).

Inferred from tensor shapes: depth (count of ``waffleiron.channel_mix.{d}``), width (``embed.conv1`` out), input
feature count (``embed.conv1`` in; 5 = intensity, xyz, radius), norm (BatchNorm running stats or not). Not in the
tensors, so taken from the packaged shape of that width (WI-48-768 for 768, ...) unless ``config`` sets them: the
grids and fov, and the activation - guessed from the head: an MLP head is ScaLR+ (GELU, scalr_plus
configs/pretrain/WI_768-ScaLR_plus.yaml:14-15), a linear one ScaLR (ReLU, main configs/pretrain/WI_768_pretrain.yaml
has no ``gelu``). ScaLR standardises intensity per dataset (scalr_plus datasets/pc_dataset.py:116-119):
nuScenes raw 0..255 with mean 18.742355, std 22.04632 (datasets/nuscenes_for_scalr.py:29-30; seal's 0..1 nuScenes
intensity: 0.0735, 0.08646), SemanticKITTI 0.28613698, 0.14090556 (datasets/semantic_kitti_for_scalr.py:27-28):
set ``waffleiron.intensity_mean/std`` in ``config`` for the data at hand.
"""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from seal.core.checkpoint import load_checkpoint
from seal.core.config import BackboneConfig, WaffleIronConfig
from seal.core.errors import ConfigError, DataError
from seal.models.waffleiron import SHAPES, WaffleIron

FORMAT = "scalr-waffleiron"
STATE_KEYS = ("model_point", "model_points", "net")  # where ScaLR's scripts keep the network's state dict
VOXEL = {"size": 0.1, "mode": "cartesian", "angle_bin_deg": 1.0}  # WI_768-ScaLR_plus.yaml:11 voxel_size 0.1
NUSCENES_INTENSITY = (0.0735, 0.08646)  # nuscenes_for_scalr.py:29-30 (18.742355, 22.04632 on 0..255) / 255
_LAYER = re.compile(r"^waffleiron\.channel_mix\.(\d+)\.")
_HINT = ("give the model.pth of a ScaLR / ScaLR+ release (WI_768-ScaLR_plus-pretrained.tar.gz, untarred) or a "
         "seal backbone.pt")


def scalr_state_dict(payload: Any) -> tuple[dict[str, torch.Tensor], str] | None:
    """(the network's state dict with any ``module.`` prefix stripped, where it was found) when ``payload`` has
    ScaLR's layout; None otherwise."""
    if not isinstance(payload, dict):
        return None
    where, state = next(((k, payload[k]) for k in STATE_KEYS if isinstance(payload.get(k), dict)), ("", payload))
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        return None
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if "embed.conv1.weight" not in state or "waffleiron.channel_mix.0.mlp.0.weight" not in state:
        return None
    return state, where or "top level"


def head_kind(state: dict[str, torch.Tensor]) -> str:
    """The ``classif`` head: "mlp" (ScaLR+ distillation), "linear" (ScaLR distillation), "probe" (BatchNorm +
    conv of a linear-probing / fine-tuning run, scalr_plus finetune.py:281-289) or "none"."""
    if "classif.weight" in state:
        return "linear"
    if "classif.2.weight" in state:
        return "mlp"
    if "classif.1.weight" in state:
        return "probe"
    return "none"


def infer_config(state: dict[str, torch.Tensor], config: BackboneConfig | None = None
                 ) -> tuple[BackboneConfig, list[str]]:
    """The `BackboneConfig` a ScaLR state dict fits and the assumptions made (what the tensors cannot tell).
    Without a ``config`` naming waffleiron, intensity is standardised with ScaLR's nuScenes statistics."""
    notes = []
    if config is None or config.name != "waffleiron":
        mean, std = NUSCENES_INTENSITY
        config = BackboneConfig(name="waffleiron", waffleiron=WaffleIronConfig(intensity_mean=mean, intensity_std=std))
        notes.append(f"intensity standardised with ScaLR's nuScenes statistics ({mean}, {std} on 0..1): set "
                     "model.backbone.waffleiron.intensity_mean/std for other data")
    base = config
    wi = base.waffleiron if isinstance(base.waffleiron, WaffleIronConfig) else WaffleIronConfig(**base.waffleiron)
    depth = 1 + max(int(m.group(1)) for k in state if (m := _LAYER.match(k)))
    width, in_feats = (int(v) for v in state["embed.conv1.weight"].shape[:2])
    norm = "batchnorm" if "waffleiron.channel_mix.0.norm.running_mean" in state else "layernorm"
    shape = next((name for name, s in SHAPES.items() if s["width"] == width and s["depth"] == depth), None)
    if shape is None:
        shape = wi.shape
        notes.append(f"no packaged shape is WI-{depth}-{width}: grids and fov of {shape}")
    head = head_kind(state)
    activation = wi.activation or {"mlp": "gelu", "linear": "relu"}.get(head)
    if wi.activation is None:
        notes.append(f"activation {activation} guessed from the {head} distillation head" if activation else
                     f"activation {SHAPES[shape]['activation']} of {shape}: a {head} head does not tell")
    features = wi.input_features
    in_channels = base.in_channels
    if features is None:
        if in_feats < 5:
            raise ValueError(f"its embedding reads {in_feats} features; set model.backbone.waffleiron.input_features")
        features, in_channels = ["intensity", "xyz", "radius"], in_feats - 4
    wi = replace(wi, shape=shape, depth=depth, width=width, norm=norm, activation=activation, input_features=features)
    return replace(base, name="waffleiron", in_channels=in_channels, waffleiron=wi), notes


def load_scalr_checkpoint(path: str | Path, config: BackboneConfig | None = None, payload: Any = None
                          ) -> tuple[WaffleIron, dict[str, Any]]:
    """A released ScaLR / ScaLR+ file as (WaffleIron, metadata): metadata has seal's export keys (``format``,
    ``backbone_config``, ``voxel``) plus ``head`` (the ``classif.*`` tensors), ``source`` and ``notes``.
    ``config`` (``name=waffleiron``) fixes what the tensors cannot tell (grids, fov, activation, intensity
    normalisation); without one, the packaged shape of the file's width and nuScenes' intensity statistics."""
    path = Path(path)
    if payload is None:
        payload = read_payload(path)
    found = scalr_state_dict(payload)
    if found is None:
        raise DataError(path, f"is not a ScaLR / ScaLR+ WaffleIron checkpoint: it looks like {looks_like(payload)}",
                        _HINT)
    state, where = found
    try:
        cfg, notes = infer_config(state, config)
        model = WaffleIron(cfg)
        found = model.load_state_dict({k: v for k, v in state.items() if not k.startswith("classif.")}, strict=False)
    except (ValueError, RuntimeError, ConfigError) as err:  # shape mismatches: the first one named
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise DataError(path, f"has ScaLR's layout but does not load: {lines[1] if len(lines) > 1 else lines[0]}",
                        _HINT) from None
    if found.missing_keys or found.unexpected_keys:
        raise DataError(path, f"has ScaLR's layout but does not load: missing {found.missing_keys[:3]}, unexpected "
                              f"{found.unexpected_keys[:3]}", _HINT)
    meta = {"format": FORMAT, "backbone_config": asdict(cfg), "voxel": dict(VOXEL), "source": where,
            "head": {k: v for k, v in state.items() if k.startswith("classif.")}, "head_kind": head_kind(state),
            "notes": notes}
    return model, meta


def read_payload(path: Path) -> Any:
    """torch.load with ``weights_only=True``; a gzip / tar file (the release archive) is named as such."""
    if path.is_file():
        with open(path, "rb") as f:
            magic = f.read(262)
        if magic[:2] == b"\x1f\x8b" or magic[257:262] == b"ustar":
            raise DataError(path, "is a tar / gzip archive, not a checkpoint",
                            f"untar it (tar -xzf {path.name}) and give the model.pth inside")
    return load_checkpoint(path)


def looks_like(payload: Any) -> str:
    """What a loaded file that is not a ScaLR checkpoint is, in a few words: a seal file, a 2D teacher's
    checkpoint (`seal.models.teachers.identify_checkpoint`), else its type and keys."""
    if isinstance(payload, dict) and payload.get("format"):
        name = (payload.get("backbone_config") or {}).get("name", "minkunet")
        return f"a seal file ({payload['format']}, backbone {name})"
    state = payload.get("state_dict", payload.get("model", payload)) if isinstance(payload, dict) else payload
    if isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        from seal.models.teachers import identify_checkpoint

        what, names = identify_checkpoint(state)
        if what:
            return f"a {what}" + (f" (teacher.backbone={' or '.join(names)})" if names else "")
    if isinstance(payload, torch.Tensor):
        return f"a bare tensor of shape {tuple(payload.shape)}"
    if isinstance(payload, dict):
        return f"a dict with keys {sorted(map(str, payload))[:6]}"
    return f"a {type(payload).__name__}"


__all__ = ["FORMAT", "NUSCENES_INTENSITY", "head_kind", "infer_config", "load_scalr_checkpoint", "looks_like",
           "scalr_state_dict"]
