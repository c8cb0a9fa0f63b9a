"""The dataset formats seal reads, each behind the `DatasetFormat` interface of the data model.

A format knows how to detect and open its layout, where predictions go in its own format, which few-shot
split is official for it, which Robo3D baseline its robustness numbers compare against, and the facts
`seal datasets` lists (title, layout, what it needs on disk, whether it has cameras and poses).

`FORMATS` is in detection order: a layout with a marker of its own (ScribbleKITTI's ``scribbles/``, SynLiDAR's
``annotations.yaml``, the Robo3D corruption folders, ...) is tried before the plain SemanticKITTI layout it
shares; SemanticPOSS has no marker and is opened with ``kind="semanticposs"`` only.
"""

from __future__ import annotations

from seal.core.frame import DatasetFormat
from seal.data.formats.kitti import (
    Daps3dFormat,
    KittiObjectFormat,
    Rellis3dFormat,
    ScribbleKittiFormat,
    SemanticKittiCFormat,
    SemanticKittiFormat,
    SemanticPossFormat,
    SemanticStfFormat,
    SynLidarFormat,
    Synth4dFormat,
)
from seal.data.formats.others import NuScenesCFormat, NuScenesFormat, WaymoFormat

FORMATS: dict[str, DatasetFormat] = {f.name: f for f in (
    NuScenesFormat(), WaymoFormat(), SemanticKittiCFormat(), NuScenesCFormat(), ScribbleKittiFormat(),
    SemanticStfFormat(), Rellis3dFormat(), Daps3dFormat(), Synth4dFormat(), SynLidarFormat(), SemanticPossFormat(),
    SemanticKittiFormat(), KittiObjectFormat())}

__all__ = ["FORMATS", "NuScenesFormat", "NuScenesCFormat", "WaymoFormat", "SemanticKittiFormat",
           "ScribbleKittiFormat", "SemanticPossFormat", "SemanticStfFormat", "SynLidarFormat", "Rellis3dFormat",
           "Daps3dFormat", "Synth4dFormat", "SemanticKittiCFormat", "KittiObjectFormat"]
