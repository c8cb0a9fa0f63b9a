"""SAM superpixels: Segment Anything's automatic mask generator, its overlapping masks painted into one map.

The masks overlap, so they are painted larger first and smaller ones win (as the Seal reference does); pixels no
mask covers are uncovered (-1 -> the reserved "none" id), never id 0 of the largest mask, and ids are relabelled
densely into uint16 by `finalize`, so nothing wraps at 255 (both bugs of the official script, docs/METHOD.md §3).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.config import SamConfig, SuperpixelConfig
from seal.core.errors import ConfigError, SealError
from seal.superpixels.base import (
    IN_MEMORY,
    SUPERPIXELS,
    Superpixelizer,
    checkpoint_key,
    load_sam_weights,
    paint_masks,
)

MODEL_TYPES = ("vit_h", "vit_l", "vit_b")
CHECKPOINT_HINT = ("download a SAM checkpoint (sam_vit_h_4b8939.pth, sam_vit_l_0b3195.pth or sam_vit_b_01ec64.pth, "
                   "from https://github.com/facebookresearch/segment-anything#model-checkpoints) beforehand and set "
                   "superpixels.sam.checkpoint to its path, with superpixels.sam.model_type matching it")


def _import_segment_anything() -> Any:
    try:
        import segment_anything
    except ImportError as err:
        raise SealError("SAM superpixels need the segment-anything package: pip install 'seal[sam]' "
                        "(or pip install segment-anything)") from err
    return segment_anything


_D = SamConfig()  # the one place the defaults are written


@SUPERPIXELS.register("sam")
class SamSuperpixels(Superpixelizer):
    """Segment Anything (automatic mask generator) -> one label map per image.

    ``checkpoint`` is a local SAM weight file of architecture ``model_type``; nothing is downloaded. ``model`` is an
    already built ``segment_anything.modeling.Sam``: alone it is used as is (tests, models built in memory), with a
    ``checkpoint`` the file's weights are loaded into it (custom architectures). The model and the mask generator
    are built once, on the first image, and reused.
    """

    name = "sam"

    @classmethod
    def from_config(cls, cfg: SuperpixelConfig) -> SamSuperpixels:
        if not cfg.sam.checkpoint:
            raise ConfigError("superpixels.method=sam needs superpixels.sam.checkpoint=PATH (a local SAM "
                              "checkpoint such as sam_vit_h_4b8939.pth; seal never downloads weights)")
        return cls(device=cfg.device, **asdict(cfg.sam))

    def __init__(self, checkpoint: str | Path | None, model_type: str = _D.model_type,
                 points_per_side: int = _D.points_per_side, pred_iou_thresh: float = _D.pred_iou_thresh,
                 stability_score_thresh: float = _D.stability_score_thresh,
                 min_mask_region_area: int = _D.min_mask_region_area, device: str = "cpu", model: Any = None) -> None:
        self.checkpoint = None if checkpoint is None else Path(checkpoint).expanduser().resolve()
        if self.checkpoint is None and model is None:
            raise ConfigError(f"superpixels.sam.checkpoint is not set: {CHECKPOINT_HINT}")
        if self.checkpoint is not None and not self.checkpoint.is_file():
            raise ConfigError(f"superpixels.sam.checkpoint: {self.checkpoint} does not exist; {CHECKPOINT_HINT}")
        if model is None and model_type not in MODEL_TYPES:
            raise ConfigError(f"superpixels.sam.model_type is {model_type!r}; use one of {', '.join(MODEL_TYPES)} "
                              "(the architecture of the checkpoint file)")
        if points_per_side < 1:
            raise ConfigError(f"superpixels.sam.points_per_side must be >= 1, got {points_per_side}")
        self.model_type = model_type
        self.points_per_side = int(points_per_side)
        self.pred_iou_thresh = float(pred_iou_thresh)
        self.stability_score_thresh = float(stability_score_thresh)
        self.min_mask_region_area = int(min_mask_region_area)
        self.device = device
        self._model = model
        self._model_given = model is not None
        self._generator: Any = None

    def params(self) -> dict[str, Any]:
        checkpoint = checkpoint_key(self.checkpoint)
        return {"checkpoint": checkpoint, "model_type": IN_MEMORY if self._model_given else self.model_type,
                "points_per_side": self.points_per_side, "pred_iou_thresh": self.pred_iou_thresh,
                "stability_score_thresh": self.stability_score_thresh,
                "min_mask_region_area": self.min_mask_region_area}

    def _build_model(self) -> Any:
        """The Sam module: built from ``model_type`` (or the given one) with the checkpoint's weights loaded."""

        segment_anything = _import_segment_anything()
        model = self._model
        if model is None:
            # the registry's builders call torch.load themselves when given a checkpoint; build empty, load here
            model = segment_anything.sam_model_registry[self.model_type](checkpoint=None)
        if self.checkpoint is not None:
            load_sam_weights(model, self.checkpoint, self.device, "SAM", "superpixels.sam.checkpoint", ".pth",
                             "superpixels.sam.model_type", self.model_type, "vit_h / vit_l / vit_b")
        return model.to(self.device).eval()

    def _mask_generator(self) -> Any:
        if self._generator is None:
            segment_anything = _import_segment_anything()
            if self.min_mask_region_area > 0:
                try:
                    import cv2  # noqa: F401
                except ImportError as err:
                    raise SealError("superpixels.sam.min_mask_region_area > 0 needs OpenCV: pip install "
                                    "opencv-python-headless, or set it to 0") from err
            self._model = self._build_model()
            self._generator = segment_anything.SamAutomaticMaskGenerator(
                self._model, points_per_side=self.points_per_side, pred_iou_thresh=self.pred_iou_thresh,
                stability_score_thresh=self.stability_score_thresh, min_mask_region_area=self.min_mask_region_area,
                output_mode="binary_mask")
        return self._generator

    def segment(self, image: np.ndarray, context: dict[str, Any] | None = None) -> np.ndarray:
        import torch

        generator = self._mask_generator()
        with torch.inference_mode():
            records = generator.generate(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
        return paint_masks([record["segmentation"] for record in records], image.shape[:2])
