"""Reading published image-backbone checkpoints into seal's teachers, and telling what a checkpoint file is.

The formats are told apart by their key names, so a user only ever names a file (`teacher.weights`); the file is
opened with `torch.load(..., weights_only=True)` and never executes code. `guess_checkpoint` names the kind of
network a file holds from its keys and shapes (SAM, DINOv3, C-RADIO, DINOv2, DINO, ResNet), so that a file given to
the wrong teacher fails with one line saying what it is.
"""

from __future__ import annotations

import argparse
import pickle
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from seal.core.errors import ConfigError, DataError

__all__ = ["RESNET_PREFIXES", "VIT_PREFIXES", "checkpoint_width", "convert_resnet_state_dict",
           "convert_vit_state_dict", "guess_checkpoint", "load_weights_into", "read_checkpoint", "strip_prefix",
           "unchunk_blocks", "vit_size"]

# dict entries that hold the real weights in training checkpoints; the EMA first, as C-RADIO's torch-hub
# hubconf loads ``state_dict_ema`` when a file has one
_WRAPPERS = ("state_dict_ema", "state_dict", "model", "module")
# what wraps a backbone's keys in the published training checkpoints, most specific first
RESNET_PREFIXES = ("module.encoder_q.", "encoder_q.", "module.backbone.", "backbone.", "module.")
VIT_PREFIXES = ("teacher.backbone.", "module.backbone.", "backbone.", "module.")
_SIZES = {384: "S", 768: "B", 1024: "L", 1152: "SO400M", 1280: "H", 1536: "g", 4096: "7B"}
_CHUNKED = re.compile(r"^blocks\.\d+\.(\d+)\.")  # DINOv2 training (block_chunks): blocks.<chunk>.<block>.*


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
    if path.suffix == ".safetensors":  # Hugging Face weights (e.g. C-RADIO's model.safetensors): tensors only
        from safetensors.torch import load_file
        try:
            tensors = load_file(path)
        except Exception as exc:  # safetensors raises its own error types for a damaged file
            raise DataError(path, f"is not a safetensors file ({type(exc).__name__}: {exc})") from exc
        return _unwrap(tensors, path)
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
        if isinstance(obj.get("teacher"), dict):  # DINO / DINOv2 training checkpoint: the teacher is distilled
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


def strip_prefix(sd: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Keep only the keys under the first prefix that occurs, with that prefix removed."""
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in sd):
            return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return sd


def unchunk_blocks(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DINOv2 training checkpoints (``block_chunks`` > 0) name blocks ``blocks.<chunk>.<i>.*``; i is global."""
    return {_CHUNKED.sub(r"blocks.\1.", k): v for k, v in sd.items()}


def vit_size(width: int) -> str:
    """The usual size letter of a ViT of this embedding width (384 -> S, 768 -> B, 1024 -> L, 1536 -> g)."""
    return _SIZES.get(int(width), f"{width}-wide")


def checkpoint_width(sd: dict[str, torch.Tensor]) -> int | None:
    """The embedding width of a ViT checkpoint (or a ResNet's last stage), read from the tensor shapes."""
    for key in ("cls_token", "patch_embed.proj.weight", "layer4.0.conv3.weight", "layer4.0.conv2.weight"):
        for prefix in ("", *VIT_PREFIXES, *RESNET_PREFIXES):
            if prefix + key in sd:
                t = sd[prefix + key]
                return int(t.shape[-1] if key == "cls_token" else t.shape[0])
    return None


def _resnet_depth(sd: dict[str, torch.Tensor]) -> int | None:
    blocks = tuple(len({k.split(".")[1] for k in sd if k.startswith(f"layer{i}.")}) for i in (1, 2, 3, 4))
    bottleneck = "layer1.0.conv3.weight" in sd
    return {((3, 4, 6, 3), False): 34, ((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), True): 50,
            ((3, 4, 23, 3), True): 101, ((3, 8, 36, 3), True): 152}.get((blocks, bottleneck))


def _has(sd: dict[str, torch.Tensor], *parts: str) -> bool:
    return any(p in k for p in parts for k in sd)


def _shape(sd: dict[str, torch.Tensor], key: str, dim: int) -> int | None:
    return int(sd[key].shape[dim]) if key in sd and sd[key].dim() > 0 else None


def guess_checkpoint(sd: dict[str, torch.Tensor]) -> str | None:
    """What network a checkpoint holds, from its keys and shapes alone ("DINOv3 ViT-S/16 checkpoint
    (storage_tokens, rope_embed.periods)"), or None; the fallback when no registered teacher recognises a file."""
    if any(k.startswith("image_encoder.trunk.") for k in sd):  # SAM 2 / 2.1 (Hiera)
        dim = _shape(sd, "image_encoder.trunk.patch_embed.proj.weight", 0)
        n_blocks = len({k.split(".")[3] for k in sd if k.startswith("image_encoder.trunk.blocks.")})
        size = {96: "T" if n_blocks <= 12 else "S", 112: "B+", 144: "L"}.get(dim or 0, f"{dim}-wide")
        return f"SAM 2 Hiera-{size} checkpoint (image_encoder.trunk.*)"
    if any(k.startswith("image_encoder.") for k in sd):  # SAM v1
        dim = _shape(sd, "image_encoder.patch_embed.proj.weight", 0)
        return f"SAM ViT-{vit_size(dim or 0)}/16 image-encoder checkpoint (image_encoder.*)"
    radio = next((p for p in ("radio_model.", "base_model.", "input_conditioner.") if any(k.startswith(p) for k in sd)),
                 None)
    if radio is not None:
        emb = next((v for k, v in sd.items() if k.endswith("patch_generator.embedder.weight")), None)
        size = f" ViT-{vit_size(emb.shape[0])}/16" if emb is not None else ""
        return f"C-RADIO{size} checkpoint ({radio}*)"
    moco = any(k.startswith("module.encoder_q.") for k in sd)
    sd = unchunk_blocks(strip_prefix(sd, RESNET_PREFIXES[:2] + VIT_PREFIXES))
    width, patch = checkpoint_width(sd), _shape(sd, "patch_embed.proj.weight", -1)
    if "storage_tokens" in sd or _has(sd, "rope_embed.periods"):
        plus = "+" if _has(sd, "mlp.w1.") and width in (384, 1024, 1280) else ""
        return f"DINOv3 ViT-{vit_size(width or 0)}{plus}/{patch} checkpoint (storage_tokens, rope_embed.periods)"
    if "downsample_layers.0.0.weight" in sd and _has(sd, "stages.0.0.dwconv"):
        dim = _shape(sd, "downsample_layers.0.0.weight", 0)
        depth = len({k.split(".")[2] for k in sd if k.startswith("stages.2.")})
        size = {96: "T" if depth <= 9 else "S", 128: "B", 192: "L"}.get(dim or 0, f"{dim}-wide")
        return f"ConvNeXt-{size} checkpoint (downsample_layers, stages; e.g. DINOv3 ConvNeXt)"
    if "register_tokens" in sd:
        return f"DINOv2 ViT-{vit_size(width or 0)}/{patch} checkpoint with registers (register_tokens)"
    if "mask_token" in sd or _has(sd, ".ls1.gamma"):
        return f"DINOv2 ViT-{vit_size(width or 0)}/{patch} checkpoint (mask_token, ls1.gamma)"
    if "pos_embed" in sd and "cls_token" in sd and _has(sd, ".attn.qkv."):
        tokens = int(sd["pos_embed"].shape[1])
        return f"DINO ViT-{vit_size(width or 0)}/{patch} checkpoint (pos_embed of {tokens} tokens, no layer scale)"
    if "layer4.0.conv1.weight" in sd:
        depth = _resnet_depth(sd)
        return f"{'MoCo-v2 ' if moco else ''}ResNet{'-' + str(depth) if depth else ''} checkpoint (layer1-4)"
    return None


def convert_resnet_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """MoCo-v2 / torchvision ResNet weights -> torchvision key names without the classifier; returns (dict, format).

    MoCo-v2 (``module.encoder_q.*``; main_lincls.py keeps the query encoder and drops its MLP head ``fc.*``)."""
    fmt = "MoCo-v2" if any(k.startswith(("module.encoder_q.", "encoder_q.")) for k in sd) else "torchvision"
    sd = strip_prefix(sd, RESNET_PREFIXES)
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}, fmt


def convert_vit_state_dict(sd: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], str]:
    """DINO / DINOv2 ViT weights (release files and training checkpoints) -> timm VisionTransformer key names.

    The file's position grid becomes `model`'s (its ``pos_embed`` is replaced when the sizes differ): the official
    models interpolate from the grid they were trained with at every forward, never once at load time."""
    sd = unchunk_blocks(strip_prefix(sd, VIT_PREFIXES))
    fmt = "DINOv2" if "mask_token" in sd else "timm" if "reg_token" in sd else "DINO"
    sd = {k: v for k, v in sd.items() if k != "mask_token" and not k.startswith(("head.", "dino_head.", "ibot_head."))}
    sd = {k.replace(".mlp.w12.", ".mlp.fc1.").replace(".mlp.w3.", ".mlp.fc2."): v for k, v in sd.items()}  # SwiGLU
    if "register_tokens" in sd and "pos_embed" in sd:  # DINOv2 with registers: timm keeps cls+registers outside
        sd["reg_token"] = sd.pop("register_tokens")  # the position grid, the cls position folded into the token
        sd["cls_token"] = sd["cls_token"] + sd["pos_embed"][:, :1]
        sd["pos_embed"] = sd["pos_embed"][:, 1:]
    own = getattr(model, "pos_embed", None)
    pos = sd.get("pos_embed")
    if isinstance(own, nn.Parameter) and pos is not None and pos.dim() == 3 and pos.shape[2] == own.shape[2] \
            and pos.shape[1] != own.shape[1]:
        n_prefix = own.shape[1] - int(model.patch_embed.num_patches)
        grid = round((pos.shape[1] - n_prefix) ** 0.5)
        if grid * grid + n_prefix == pos.shape[1]:
            model.pos_embed = nn.Parameter(torch.zeros_like(pos), requires_grad=own.requires_grad)
            pe = model.patch_embed
            patch = pe.patch_size
            pe.grid_size, pe.num_patches = (grid, grid), grid * grid
            pe.img_size = (grid * patch[0], grid * patch[1])
    return sd, fmt


def _examples(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def load_weights_into(module: nn.Module, sd: dict[str, torch.Tensor], path: Path, arch: str, strict: bool,
                      explain: Callable[[], str] | None = None) -> int:
    """Copy `sd` into `module`, checking names and shapes; returns how many tensors were loaded.

    strict=True refuses any missing, unexpected or mis-shaped tensor (a teacher that is half random would
    silently ruin pretraining) with one line; `explain()` (called only then) says what the file looks like.
    strict=False loads what fits and warns with the rest.
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
        what = explain() if explain is not None else ""
        advice = "" if what else ("; check that teacher.weights is a checkpoint of teacher.backbone (MoCo-v2/"
                                  "torchvision ResNet, DINO or DINOv2 ViT of the same size)")
        if fits and not what:
            advice += ", or load what fits with strict=False"
        raise DataError(path, f"weights do not fit teacher.backbone={arch}" + (f": {what}" if what else ""),
                        "; ".join(problems) + advice)
    if problems:
        warnings.warn(f"{path}: loaded {len(fits)} tensors into {arch!r}, skipped " + "; ".join(problems),
                      stacklevel=3)
    module.load_state_dict(fits, strict=False)
    return len(fits)
