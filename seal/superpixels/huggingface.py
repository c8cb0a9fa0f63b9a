"""Superpixels from a local Hugging Face segmentation model (Mask2Former-like panoptic, SegFormer-like semantic).

This is how the paper's X-Decoder / OpenSeeD / SEEM-style sources are reproduced with models one can run here:

- panoptic (``AutoModelForUniversalSegmentation``: Mask2Former, MaskFormer, ...): the processor's
  ``post_process_panoptic_segmentation`` gives one segment per thing instance; stuff classes are passed as
  ``label_ids_to_fuse`` so all segments of one stuff class merge (docs/METHOD.md §3). Which classes are stuff comes
  from ``stuff_classes`` (ids or label names) if given, else from a ``stuff_classes`` / ``label_ids_to_fuse``
  entry in the model's config.json, else from the processor's ``metadata["thing_ids"]`` (OneFormer) as their
  complement; with none of these nothing is fused (finer superpixels, never merged wrongly). Pixels the model
  assigns to no segment (id 0 / -1 in the processor's output) are uncovered.
- semantic (``AutoModelForSemanticSegmentation``: SegFormer, UperNet, ...): the class map is split into
  connected components (4-connectivity, `split_components`), one superpixel each, so two separate cars of the
  same class stay two superpixels.

``mode="auto"`` is panoptic when the config's model type has a universal-segmentation head, else semantic;
"semantic" on a universal model uses its semantic post-processing. Nothing is downloaded: ``model_dir`` is a
folder written by ``save_pretrained`` (model and image processor), loaded with ``local_files_only=True``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.config import HuggingFaceConfig, SuperpixelConfig
from seal.core.errors import ConfigError, SealError
from seal.superpixels.base import SUPERPIXELS, Superpixelizer

MODES = ("auto", "panoptic", "semantic")


def split_components(classes: np.ndarray) -> np.ndarray:
    """A semantic class map -> one id per 4-connected component of each class; negative classes stay -1."""
    from scipy import ndimage

    classes = np.asarray(classes)
    out = np.full(classes.shape, -1, dtype=np.int64)
    offset = 0
    for value in np.unique(classes[classes >= 0]):
        components, count = ndimage.label(classes == value)
        inside = components > 0
        out[inside] = components[inside] + offset - 1
        offset += count
    return out


def folder_fingerprint(folder: Path) -> str:
    """A hash of a model folder: the text of its .json files plus name, size and mtime of every other file.

    Swapping weights (or the processor's settings) changes it, so cached superpixels of the old model are not
    reused; hashing the weight files' bytes would cost seconds per run for large models.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        if path.suffix == ".json":
            digest.update(path.read_bytes())
        else:
            stat = path.stat()
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as err:
        raise SealError("Hugging Face superpixels need the transformers package: pip install 'seal[hf]' "
                        "(or pip install transformers)") from err
    return transformers


_D = HuggingFaceConfig()  # the one place the defaults are written


@SUPERPIXELS.register("hf")
class HuggingFaceSuperpixels(Superpixelizer):
    """A local Hugging Face segmentation model -> one label map per image (see the module docstring).

    The model is loaded on the first image (so a run whose maps are all cached never loads it) and reused.
    ``threshold`` and ``overlap_threshold`` are the panoptic post-processing's score and mask-overlap thresholds.
    """

    name = "hf"

    @classmethod
    def from_config(cls, cfg: SuperpixelConfig) -> HuggingFaceSuperpixels:
        if not cfg.hf.model_dir:
            raise ConfigError("superpixels.method=hf needs superpixels.hf.model_dir=FOLDER (a local transformers "
                              "segmentation model saved with save_pretrained)")
        return cls(device=cfg.device, **asdict(cfg.hf))

    def __init__(self, model_dir: str | Path, mode: str = _D.mode, threshold: float = _D.threshold,
                 overlap_threshold: float = _D.overlap_threshold, device: str = "cpu",
                 stuff_classes: Iterable[int | str] | None = None) -> None:
        self.model_dir = Path(model_dir).expanduser().resolve()
        if not self.model_dir.is_dir():
            raise ConfigError(f"superpixels.hf.model_dir: {self.model_dir} is not a folder; save a Hugging Face "
                              "segmentation model and its image processor there (save_pretrained) beforehand")
        if not (self.model_dir / "config.json").is_file():
            raise ConfigError(f"superpixels.hf.model_dir: {self.model_dir} has no config.json; point it at a "
                              "folder written by save_pretrained (model and image processor)")
        if mode not in MODES:
            raise ConfigError(f"superpixels.hf.mode is {mode!r}; use one of {', '.join(MODES)}")
        self.mode = mode
        self.threshold = float(threshold)
        self.overlap_threshold = float(overlap_threshold)
        self.device = device
        self.stuff_classes = None if stuff_classes is None else list(stuff_classes)
        self._fingerprint = folder_fingerprint(self.model_dir)
        self._loaded: tuple[Any, Any, str, set[int]] | None = None

    def params(self) -> dict[str, Any]:
        return {"model_dir": str(self.model_dir), "fingerprint": self._fingerprint, "mode": self.mode,
                "threshold": self.threshold, "overlap_threshold": self.overlap_threshold,
                "stuff_classes": self.stuff_classes}

    def _load(self) -> tuple[Any, Any, str, set[int]]:
        """(processor, model, resolved mode, stuff class ids), loaded once."""
        if self._loaded is not None:
            return self._loaded
        transformers = _import_transformers()
        from transformers.models.auto.modeling_auto import MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES

        where = f"superpixels.hf.model_dir: {self.model_dir}"
        try:
            config = transformers.AutoConfig.from_pretrained(self.model_dir, local_files_only=True)
            processor = transformers.AutoImageProcessor.from_pretrained(self.model_dir, local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(f"{where} cannot be loaded as a Hugging Face model with its image processor "
                              f"({str(err)[:300]}); save both there with save_pretrained") from err
        universal = config.model_type in MODEL_FOR_UNIVERSAL_SEGMENTATION_MAPPING_NAMES
        mode = ("panoptic" if universal else "semantic") if self.mode == "auto" else self.mode
        if mode == "panoptic" and not (universal and hasattr(processor, "post_process_panoptic_segmentation")):
            raise ConfigError(f"{where} ({config.model_type}) has no panoptic head; set superpixels.hf.mode to "
                              "semantic or auto")
        auto_class = (transformers.AutoModelForUniversalSegmentation if universal
                      else transformers.AutoModelForSemanticSegmentation)
        try:
            model = auto_class.from_pretrained(self.model_dir, local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(f"{where} ({config.model_type}) cannot be loaded as a segmentation model "
                              f"({str(err)[:300]})") from err
        self._loaded = (processor, model.to(self.device).eval(), mode, self._stuff_ids(config, processor))
        return self._loaded

    def _stuff_ids(self, config: Any, processor: Any) -> set[int]:
        """Class ids whose segments merge into one per image (see the module docstring for the sources)."""
        id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
        names = {v: k for k, v in id2label.items()}
        given = self.stuff_classes
        if given is None:
            given = getattr(config, "stuff_classes", None) or getattr(config, "label_ids_to_fuse", None)
        if given is None:
            thing_ids = (getattr(processor, "metadata", None) or {}).get("thing_ids")
            return set(id2label) - {int(i) for i in thing_ids} if thing_ids is not None else set()
        stuff = set()
        for item in given:
            if isinstance(item, str) and not item.lstrip("-").isdigit():
                if item not in names:
                    raise ConfigError(f"superpixels.hf.stuff_classes: {item!r} is not a class of the model in "
                                      f"{self.model_dir} (classes: {', '.join(sorted(names))[:300]})")
                stuff.add(names[item])
            else:
                stuff.add(int(item))
        return stuff

    def segment(self, image: np.ndarray, context: dict[str, Any] | None = None) -> np.ndarray:
        import torch

        processor, model, mode, stuff = self._load()
        size = image.shape[:2]
        extra = {"task_inputs": ["panoptic"]} if "task_inputs" in getattr(processor, "model_input_names", ()) else {}
        inputs = processor(images=[np.ascontiguousarray(image[..., :3])], return_tensors="pt", **extra)
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = model(**inputs)
        if mode == "semantic":
            classes = processor.post_process_semantic_segmentation(outputs, target_sizes=[size])[0]
            return split_components(classes.cpu().numpy())
        result = processor.post_process_panoptic_segmentation(
            outputs, threshold=self.threshold, overlap_mask_area_threshold=self.overlap_threshold,
            label_ids_to_fuse=stuff, target_sizes=[size])[0]
        segmentation = result["segmentation"].cpu().numpy().astype(np.int64)
        ids = np.array([info["id"] for info in result["segments_info"]], dtype=np.int64)
        return np.where(np.isin(segmentation, ids), segmentation, -1)

