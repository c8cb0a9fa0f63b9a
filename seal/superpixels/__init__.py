"""2D superpixels from SLIC or a vision foundation model, behind one interface (SPEC section 3)."""

from __future__ import annotations

from dataclasses import asdict

from seal.core.config import SUPERPIXEL_METHODS, SuperpixelConfig
from seal.core.errors import ConfigError
from seal.superpixels.base import NONE, Superpixelizer, finalize, load_segments, paint_masks, save_segments

METHODS = SUPERPIXEL_METHODS


def build_superpixelizer(cfg: SuperpixelConfig) -> Superpixelizer:
    """The method ``cfg.method`` names, configured from its section; heavy libraries load lazily."""
    if cfg.method == "slic":
        from seal.superpixels.slic import SlicSuperpixels

        return SlicSuperpixels(**asdict(cfg.slic))
    if cfg.method == "sam":
        from seal.superpixels.sam import SamSuperpixels

        if not cfg.sam.checkpoint:
            raise ConfigError("superpixels.method=sam needs superpixels.sam.checkpoint=PATH (a local SAM "
                              "checkpoint such as sam_vit_h_4b8939.pth; seal never downloads weights)")
        return SamSuperpixels(device=cfg.device, **asdict(cfg.sam))
    if cfg.method == "hf":
        from seal.superpixels.huggingface import HuggingFaceSuperpixels

        if not cfg.hf.model_dir:
            raise ConfigError("superpixels.method=hf needs superpixels.hf.model_dir=FOLDER (a local transformers "
                              "segmentation model saved with save_pretrained)")
        return HuggingFaceSuperpixels(device=cfg.device, **asdict(cfg.hf))
    if cfg.method == "precomputed":
        from seal.superpixels.precomputed import PrecomputedSuperpixels

        if not cfg.precomputed.folder:
            raise ConfigError("superpixels.method=precomputed needs superpixels.precomputed.folder=FOLDER")
        return PrecomputedSuperpixels(**asdict(cfg.precomputed))
    if cfg.method == "oracle":
        from seal.superpixels.oracle import OracleSuperpixels

        return OracleSuperpixels(**asdict(cfg.oracle))
    raise ConfigError(f"superpixels.method={cfg.method!r} is unknown: choose one of {', '.join(METHODS)}")


__all__ = ["NONE", "METHODS", "Superpixelizer", "build_superpixelizer", "finalize", "load_segments",
           "paint_masks", "save_segments"]
