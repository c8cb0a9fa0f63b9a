"""Checkpoints written atomically and loaded with ``weights_only=True``; exact resume state included."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seal.core.atomic import write_bytes_atomic
from seal.core.errors import DataError


def rng_state() -> dict[str, Any]:
    """The global RNG states (python, numpy, torch CPU and CUDA) as weights_only-loadable objects."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": repr(random.getstate())}
    np_state = np.random.get_state()
    state["numpy"] = {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import ast

    torch.set_rng_state(state["torch"])
    version, internal, gauss = ast.literal_eval(state["python"])
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(("MT19937", state["numpy"]["key"].numpy().astype(np.uint32), state["numpy"]["pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any], *copies: Path) -> Path:
    """Write ``payload`` atomically to ``path`` (and each of ``copies``): a crash or a full disk mid-write leaves
    the previous file intact. It is serialised once, in memory, so a full disk is reported with the bytes needed."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    for target in (path, *copies):
        write_bytes_atomic(target, buffer.getbuffer())
    return path


# What each kind of seal checkpoint must hold (top-level keys), for the one-line message a malformed file gets.
SCHEMAS: dict[str, tuple[str, ...]] = {
    "training": ("model", "optimizer", "scheduler", "scaler", "rng", "epoch", "step_in_epoch", "global_step"),
    "backbone": ("format", "backbone_config", "voxel", "state_dict"),
    "segmentation": ("format", "backbone_config", "num_classes", "voxel", "state_dict"),
}


def _describe(obj: Any) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a bare tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, dict):
        return f"a dict with keys {sorted(map(str, obj))[:6]}"
    return f"a {type(obj).__name__}"


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu", kind: str | None = None
                    ) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; with ``kind`` (see `SCHEMAS`), check it holds what that kind
    of file must, so a wrong or malformed file is one line saying what it is and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt/unsafe files
        raise DataError(path, f"cannot be loaded as a seal checkpoint: {err}".split("\n")[0]) from err
    if kind is not None:
        expected = SCHEMAS[kind]
        missing = [k for k in expected if not isinstance(payload, dict) or k not in payload]
        if missing:
            raise DataError(path, f"holds {_describe(payload)}, not a seal {kind} checkpoint (expected a dict with "
                                  f"{', '.join(expected)}; missing {', '.join(missing[:4])})")
    return payload


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Keep the ``keep`` newest step-N.pt files (last.pt is never pruned)."""
    steps = sorted(folder.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for old in steps[:-keep] if keep > 0 else steps:
        old.unlink(missing_ok=True)
