"""2D superpixels from SLIC or a vision foundation model, behind one interface (docs/METHOD.md §3).

Methods are registered in `SUPERPIXELS` beside their class (``@SUPERPIXELS.register("slic")``); a third-party
method registers a `Superpixelizer` subclass through the entry-point group ``seal.superpixels``. Importing this
package registers the built-ins (their heavy libraries load only when a method runs).
"""

from __future__ import annotations

from seal.core.config import SuperpixelConfig
from seal.superpixels import huggingface, oracle, precomputed, sam, sam2, slic  # noqa: F401 - they register themselves
from seal.superpixels.base import (
    NONE,
    SUPERPIXELS,
    Superpixelizer,
    finalize,
    load_segments,
    paint_masks,
    save_segments,
)


def build_superpixelizer(cfg: SuperpixelConfig) -> Superpixelizer:
    """The method ``cfg.method`` names, configured from its section; one line listing the methods otherwise."""
    return SUPERPIXELS.get(cfg.method).from_config(cfg)


__all__ = ["NONE", "SUPERPIXELS", "Superpixelizer", "build_superpixelizer", "finalize", "load_segments",
           "paint_masks", "save_segments"]
