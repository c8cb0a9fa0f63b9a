"""Reading published image-backbone checkpoints (MoCo-v2, torchvision, DINO, DINOv2) into seal's teachers.

The formats are told apart by their key names, so a user only ever names a file (`teacher.weights`); the file is
opened with `torch.load(..., weights_only=True)` and never executes code.
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from seal.core.errors import ConfigError, DataError

__all__ = ["read_checkpoint", "convert_resnet_state_dict", "convert_vit_state_dict", "load_weights_into"]

_WRAPPERS = ("state_dict", "model", "module")  # dict entries that hold the real weights in training checkpoints


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint file and return its flat {name: tensor} weights (the DINO teacher if it holds one)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(
            f"teacher.weights: file {path} does not exist. Put the downloaded checkpoint there (e.g. "
            "moco_v2_800ep_pretrain.pth.tar, dino_deitsmall16_pretrain.pth, dinov2_vits14_pretrain.pth) or set "
            "teacher.weights to its path; seal never downloads weights itself."
        )
    if not path.is_file():
        raise ConfigError(f"teacher.weights: {path} is a directory, not a checkpoint file; name the .pth file itself.")
    try:
        # DINO training checkpoints carry their argparse.Namespace of options next to the weights.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(
            path,
            f"cannot be opened with weights_only=True ({str(exc).splitlines()[0]})",
            "re-save only its weights: torch.save(torch.load(p, weights_only=False)['state_dict'], 'weights.pth')",
        ) from exc
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise DataError(path, f"is not a PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc
    return _unwrap(obj, path)


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Find the weight dictionary inside a checkpoint: plain, {'state_dict': ...}, {'model': ...} or DINO's."""
    for _ in range(3):  # wrappers nest at most a couple of levels in the published files
        if not isinstance(obj, dict):
            break
        if isinstance(obj.get("teacher"), dict):  # DINO training checkpoint: the teacher is the model to distil
            obj = obj["teacher"]
        elif isinstance(obj.get("student"), dict):
            obj = obj["student"]
        else:
            inner = next((obj[k] for k in _WRAPPERS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict):
        raise DataError(path, f"holds a {type(obj).__name__}, not a dictionary of weights")
    weights = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not weights:
        raise DataError(path, f"holds no weight tensors (top-level keys: {sorted(map(str, obj))[:8]})")
    return weights


def _strip_prefix(sd: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Keep only the keys under the first prefix that occurs, with that prefix removed."""
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in sd):
            return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return sd


def convert_resnet_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """MoCo-v2 / torchvision ResNet weights -> torchvision key names without the classifier; returns (dict, format)."""
    fmt = "MoCo-v2" if any(k.startswith("module.encoder_q.") for k in sd) else "torchvision"
    sd = _strip_prefix(sd, ("module.encoder_q.", "encoder_q.", "module.backbone.", "backbone.", "module."))
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}, fmt


def convert_vit_state_dict(sd: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
    """DINO / DINOv2 ViT weights -> the timm VisionTransformer `model`'s key names and token-grid size."""
    from timm.layers import resample_abs_pos_embed

    sd = _strip_prefix(sd, ("module.backbone.", "backbone.", "module."))
    fmt = "DINOv2" if "mask_token" in sd else "DINO"
    sd = {k: v for k, v in sd.items() if k != "mask_token" and not k.startswith("head.")}
    if "register_tokens" in sd:  # DINOv2 with registers: timm keeps cls+registers outside the position grid
        sd["reg_token"] = sd.pop("register_tokens")
        sd["cls_token"] = sd["cls_token"] + sd["pos_embed"][:, 0]
        sd["pos_embed"] = sd["pos_embed"][:, 1:]
    target = getattr(model, "pos_embed", None)
    if "pos_embed" in sd and isinstance(target, torch.Tensor) and sd["pos_embed"].shape != target.shape:
        n_prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 1))
        sd["pos_embed"] = resample_abs_pos_embed(
            sd["pos_embed"], new_size=list(model.patch_embed.grid_size), num_prefix_tokens=n_prefix
        )
    return sd, fmt


def _examples(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def load_weights_into(module: nn.Module, sd: dict[str, torch.Tensor], path: Path, arch: str, strict: bool) -> int:
    """Copy `sd` into `module`, checking names and shapes; returns how many tensors were loaded.

    strict=True refuses any missing, unexpected or mis-shaped tensor (a teacher that is half random would
    silently ruin pretraining); strict=False loads what fits and warns with the rest.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} (file {list(sd[k].shape)} vs model {list(own[k].shape)})"
             for k in own if k in sd and sd[k].shape != own[k].shape]
    fits = {k: v for k, v in sd.items() if k in own and v.shape == own[k].shape}
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_examples(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_examples(unexpected)})")
    if wrong:
        problems.append(f"{len(wrong)} with the wrong shape ({_examples(wrong, 2)})")
    if problems and (strict or not fits):
        raise DataError(
            path,
            f"weights do not fit teacher backbone {arch!r}: " + "; ".join(problems),
            "check that teacher.weights is a checkpoint of teacher.backbone (MoCo-v2/torchvision ResNet, DINO or "
            "DINOv2 ViT of the same size)" + ("" if not fits else ", or load what fits with strict=False"),
        )
    if problems:
        warnings.warn(f"{path}: loaded {len(fits)} tensors into {arch!r}, skipped " + "; ".join(problems),
                      stacklevel=3)
    module.load_state_dict(fits, strict=False)
    return len(fits)
