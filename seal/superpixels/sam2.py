"""SAM 2 superpixels: Meta's SAM 2 automatic mask generator (Hiera T/S/B+/L), its masks painted into one map.

The same id rules as `seal.superpixels.sam`: the overlapping masks are painted larger first so smaller ones win,
pixels no mask covers are uncovered (-1 -> the reserved "none" id 0), and `finalize` relabels densely into uint16.

What runs batched: the point prompts, ``points_per_batch`` at a time through the prompt encoder and mask decoder
(SAM 2's generator). `Sam2Superpixels.batch` also runs the image encoder once for several images (one forward of
a [B, 3, 1024, 1024] tensor); the superpixel stage calls the method one image at a time, so there it encodes one.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.config import Sam2Config, SuperpixelConfig
from seal.core.errors import ConfigError, SealError
from seal.superpixels.base import (
    IN_MEMORY,
    SUPERPIXELS,
    Superpixelizer,
    checkpoint_key,
    finalize,
    load_sam_weights,
    paint_masks,
)

MODEL_CFGS = tuple(Sam2Config.RULES["model_cfg"].split("|"))  # sam2.1_hiera_t ... sam2_hiera_l
CHECKPOINT_HINT = ("download a SAM 2 checkpoint (sam2.1_hiera_tiny.pt, sam2.1_hiera_small.pt, "
                   "sam2.1_hiera_base_plus.pt or sam2.1_hiera_large.pt, from "
                   "https://github.com/facebookresearch/sam2#download-checkpoints) beforehand and set "
                   "superpixels.sam2.checkpoint to its path, with superpixels.sam2.model_cfg matching it "
                   "(sam2.1_hiera_t / _s / _b+ / _l)")
INSTALL_HINT = ("SAM 2 superpixels need Meta's sam2 package (PyPI ships it as an sdist only): SAM2_BUILD_CUDA=0 pip "
                "install --no-deps --no-build-isolation sam2==1.1.0, then pip install --no-deps hydra-core==1.3.8 "
                "antlr4-python3-runtime==4.9.3 iopath==0.1.10 portalocker")
DTYPES = ("float32", "bfloat16")

_D = Sam2Config()  # the one place the defaults are written


def config_name(model_cfg: str) -> str:
    """The hydra config sam2 packages for ``model_cfg``: sam2.1_hiera_t -> configs/sam2.1/sam2.1_hiera_t.yaml."""
    if model_cfg not in MODEL_CFGS:
        raise ConfigError(f"superpixels.sam2.model_cfg is {model_cfg!r}; use one of {', '.join(MODEL_CFGS)} "
                          "(the architecture of the checkpoint file)")
    return f"configs/{model_cfg.split('_hiera_')[0]}/{model_cfg}.yaml"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """hydra 1.3 under omegaconf 2.4 warns on every import and compose, and SAM 2's transforms use the deprecated
    torch.jit.script; none of it concerns the user."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"hydra\..*")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"hydra\..*")
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
        yield


def _import_sam2() -> Any:
    try:
        with _quiet():
            import sam2.automatic_mask_generator
            import sam2.build_sam  # noqa: F401 - the builder the method uses
    except ImportError as err:
        raise SealError(f"{INSTALL_HINT} ({err})") from err
    return sam2


def build_sam2_model(model_cfg: str, overrides: Sequence[str] = (), device: str = "cpu") -> Any:
    """SAM 2 of architecture ``model_cfg`` (plus hydra ``overrides``), randomly initialised, in eval mode."""
    sam2 = _import_sam2()
    with _quiet():
        return sam2.build_sam.build_sam2(config_name(model_cfg), None, device=device, mode="eval",
                                         hydra_overrides_extra=list(overrides))


def _rgb(image: np.ndarray) -> np.ndarray:
    """A writable HxWx3 uint8 copy (torch warns on the read-only arrays image decoders return)."""
    return np.array(image[..., :3], dtype=np.uint8, order="C")


def _preset_image(predictor: Any, features: dict[str, Any], size: tuple[int, int], image: Any) -> None:
    """Stands in for ``SAM2ImagePredictor.set_image``: the features of ``image`` were computed in a batch."""
    predictor.reset_predictor()
    predictor._features, predictor._orig_hw, predictor._is_image_set = features, [size], True


@SUPERPIXELS.register("sam2")
class Sam2Superpixels(Superpixelizer):
    """SAM 2 (automatic mask generator) -> one label map per image.

    ``checkpoint`` is a local SAM 2 file (official layout ``{"model": state_dict}``) of architecture ``model_cfg``
    (+ ``overrides``); nothing is downloaded. ``model`` is an already built ``SAM2Base``: alone it is used as is
    (tests), with a ``checkpoint`` the file's weights are loaded into it. Built once, on the first image.
    """

    name = "sam2"

    @classmethod
    def from_config(cls, cfg: SuperpixelConfig) -> Sam2Superpixels:
        if not cfg.sam2.checkpoint:
            raise ConfigError("superpixels.method=sam2 needs superpixels.sam2.checkpoint=PATH (a local SAM 2 "
                              "checkpoint such as sam2.1_hiera_large.pt; seal never downloads weights)")
        return cls(device=cfg.device, **asdict(cfg.sam2))

    def __init__(self, checkpoint: str | Path | None, model_cfg: str = _D.model_cfg, overrides: Sequence[str] = (),
                 points_per_side: int = _D.points_per_side, points_per_batch: int = _D.points_per_batch,
                 pred_iou_thresh: float = _D.pred_iou_thresh,
                 stability_score_thresh: float = _D.stability_score_thresh,
                 min_mask_region_area: int = _D.min_mask_region_area, dtype: str = _D.dtype, device: str = "cpu",
                 model: Any = None) -> None:
        self.checkpoint = None if checkpoint is None else Path(checkpoint).expanduser().resolve()
        if self.checkpoint is None and model is None:
            raise ConfigError(f"superpixels.sam2.checkpoint is not set: {CHECKPOINT_HINT}")
        if self.checkpoint is not None and not self.checkpoint.is_file():
            raise ConfigError(f"superpixels.sam2.checkpoint: {self.checkpoint} does not exist; {CHECKPOINT_HINT}")
        if model is None:
            config_name(model_cfg)  # a wrong name fails here, before any image
        for key, value in (("points_per_side", points_per_side), ("points_per_batch", points_per_batch)):
            if value < 1:
                raise ConfigError(f"superpixels.sam2.{key} must be >= 1, got {value}")
        if dtype not in DTYPES:
            raise ConfigError(f"superpixels.sam2.dtype is {dtype!r}; use one of {', '.join(DTYPES)}")
        self.model_cfg = model_cfg
        self.overrides = [str(o) for o in overrides]
        self.points_per_side = int(points_per_side)
        self.points_per_batch = int(points_per_batch)
        self.pred_iou_thresh = float(pred_iou_thresh)
        self.stability_score_thresh = float(stability_score_thresh)
        self.min_mask_region_area = int(min_mask_region_area)
        self.dtype = dtype
        self.device = device
        self._model = model
        self._model_given = model is not None
        self._generator: Any = None

    def params(self) -> dict[str, Any]:
        checkpoint = checkpoint_key(self.checkpoint)
        # points_per_batch only groups the work: the masks do not depend on it
        return {"checkpoint": checkpoint, "model_cfg": IN_MEMORY if self._model_given else self.model_cfg,
                "overrides": [] if self._model_given else self.overrides, "points_per_side": self.points_per_side,
                "pred_iou_thresh": self.pred_iou_thresh, "stability_score_thresh": self.stability_score_thresh,
                "min_mask_region_area": self.min_mask_region_area, "dtype": self.dtype}

    def _build_model(self) -> Any:
        """The SAM2Base module: built from ``model_cfg`` (or the given one) with the checkpoint's weights loaded."""

        model = self._model if self._model is not None else build_sam2_model(self.model_cfg, self.overrides)
        if self.checkpoint is not None:
            load_sam_weights(model, self.checkpoint, "cpu", "SAM 2", "superpixels.sam2.checkpoint", ".pt",
                             "superpixels.sam2.model_cfg", self.model_cfg, ", ".join(MODEL_CFGS))
        return model.to(self.device).eval()

    def _mask_generator(self) -> Any:
        if self._generator is None:
            sam2 = _import_sam2()
            if self.min_mask_region_area > 0:
                try:
                    from sam2 import _C  # noqa: F401 - SAM 2's connected-components kernel
                except ImportError as err:
                    raise SealError("superpixels.sam2.min_mask_region_area > 0 needs sam2's CUDA extension "
                                    "(sam2._C, built when sam2 is installed with SAM2_BUILD_CUDA=1 on a CUDA "
                                    "machine); without it SAM 2 skips that step: set it to 0") from err
            self._model = self._build_model()
            with _quiet():
                self._generator = sam2.automatic_mask_generator.SAM2AutomaticMaskGenerator(
                    self._model, points_per_side=self.points_per_side, points_per_batch=self.points_per_batch,
                    pred_iou_thresh=self.pred_iou_thresh, stability_score_thresh=self.stability_score_thresh,
                    min_mask_region_area=self.min_mask_region_area, output_mode="binary_mask")
            # SAM 2 writes its feature-map sizes for a 1024 input; derive them (equal there) so smaller models run
            size = int(self._model.image_size)
            self._generator.predictor._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8),
                                                        (size // 16, size // 16)]
        return self._generator

    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    def _paint(self, records: list[dict[str, Any]], shape: tuple[int, ...]) -> np.ndarray:
        return paint_masks([record["segmentation"] for record in records], (shape[0], shape[1]))

    def segment(self, image: np.ndarray, context: dict[str, Any] | None = None) -> np.ndarray:
        import torch

        generator = self._mask_generator()
        with torch.inference_mode(), self._autocast():
            records = generator.generate(_rgb(image))
        return self._paint(records, image.shape)

    def batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Finished uint16 maps of several images, their image encoder run as one batch (then prompts per image).

        The same maps as calling the method on each image, up to float rounding of the batched encoder.
        """
        import torch

        generator = self._mask_generator()
        predictor = generator.predictor
        rgb = [_rgb(image) for image in images]
        maps = []
        with torch.inference_mode(), self._autocast():
            predictor.set_image_batch(rgb)
            features, sizes = predictor._features, predictor._orig_hw
            try:
                for index, image in enumerate(rgb):
                    one = {"image_embed": features["image_embed"][index:index + 1],
                           "high_res_feats": [level[index:index + 1] for level in features["high_res_feats"]]}
                    # generate() calls set_image once (crop_n_layers=0): it gets this image's batched features
                    predictor.set_image = partial(_preset_image, predictor, one, sizes[index])
                    maps.append(finalize(self._paint(generator.generate(image), image.shape)))
            finally:
                predictor.__dict__.pop("set_image", None)
                predictor.reset_predictor()
        return maps
