"""Backbones as Hugging Face Hub folders: ``config.json`` (what to build), ``model.safetensors`` (the weights, no
pickle) and a model card ``README.md``, so a backbone can be handed to someone without its run folder and read by
anyone with ``safetensors``.

Keys in ``model.safetensors``: ``backbone.<name>`` for the 3D network's state dict and, for a probe / fine-tuning
export, ``classifier.weight`` / ``classifier.bias`` of the linear head (``config.json`` then has a ``head``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from seal.core.atomic import default_mode
from seal.core.errors import ConfigError, DataError

HUB_FORMAT = "seal-backbone-hub-v1"
CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"
BACKBONE, HEAD = "backbone.", "classifier."


def is_hub_folder(path: str | Path) -> bool:
    """A folder holding a seal ``config.json`` (whether or not its weights are sound)."""
    return Path(path).is_dir() and (Path(path) / CONFIG).is_file()


def write_hub_folder(out: Path, config: dict[str, Any], tensors: dict[str, torch.Tensor], card: str) -> Path:
    """Write the folder atomically: it is built beside ``out`` and renamed into place, so an interrupted export
    leaves no half-written folder. ``out`` may be new, empty, or an earlier seal export (replaced); any other
    non-empty folder is refused."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_hub_folder(out))):
        raise ConfigError(f"export.out={out}: exists and is not an earlier seal export; choose a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(default_mode(directory=True))  # a folder to share, not mkdtemp's private 0700
    try:
        weights = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
        safetensors.torch.save_file(weights, str(staging / WEIGHTS), metadata={"format": "pt", "seal": HUB_FORMAT})
        (staging / WEIGHTS).chmod(default_mode())  # safetensors writes it private (0600)
        (staging / CONFIG).write_text(json.dumps({"format": HUB_FORMAT, **config}, indent=2) + "\n")
        (staging / CARD).write_text(card)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def read_hub_config(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of a seal export, checked to be one (one line naming the file otherwise)."""
    path = Path(folder) / CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(path, f"cannot be read as JSON: {err}".split("\n")[0]) from None
    if not isinstance(config, dict) or config.get("format") != HUB_FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise DataError(path, f"is not a seal backbone export (format {found!r}, expected {HUB_FORMAT!r})",
                        "export a run with `seal export RUN --out DIR`")
    for key in ("backbone", "voxel"):
        if not isinstance(config.get(key), dict):
            raise DataError(path, f"has no '{key}' section", "export the run again with `seal export`")
    return config


def read_hub_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` (CPU)."""
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise DataError(path, "not found: the export folder has no weights", "export the run again with `seal export`")
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own error types for truncated or foreign files
        raise DataError(path, f"cannot be read as safetensors: {err}".split("\n")[0]) from None


def split_weights(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix`` with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_strict(path: Path, module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into ``module`` exactly: every key present, none extra, every shape as the config builds it;
    otherwise one line naming the file, the first offending key and both shapes."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise DataError(path, f"does not fit the {what} config.json describes (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]})", "config.json and model.safetensors must come from one export")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise DataError(path, f"does not fit the {what} config.json describes: {key} has shape "
                                  f"{list(tensor.shape)} in the file, {list(expected[key].shape)} in the config",
                            "config.json and model.safetensors must come from one export")
    module.load_state_dict(state, strict=True)


__all__ = ["CARD", "CONFIG", "HUB_FORMAT", "WEIGHTS", "is_hub_folder", "load_strict", "read_hub_config",
           "read_hub_weights", "split_weights", "write_hub_folder"]
