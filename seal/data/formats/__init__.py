"""The dataset formats seal reads, each behind the `DatasetFormat` interface of the data model, one module each.

A format knows how to detect and open its layout, where predictions go in its own format, which few-shot
split is official for it, which Robo3D baseline its robustness numbers compare against, and the facts
`seal datasets` lists (title, layout, what it needs on disk, whether it has cameras and poses).

`FORMATS` (`seal.data.formats.registry`) holds the format classes: the built-ins, which the imports below
register, then the plugins of the entry-point group ``seal.formats``; `format_of` gives the (cached) format
object of a kind. Detection tries the formats by ``detect_priority`` (`detection_order`), not by import or name
order: a layout with a marker of its own (ScribbleKITTI's ``scribbles/``, SynLiDAR's ``annotations.yaml``, the
Robo3D corruption folders, ...) before the plain SemanticKITTI layout it shares, KITTI object last; SemanticPOSS
has no marker and is opened with ``kind="semanticposs"`` only.
"""

from __future__ import annotations

from seal.data.formats.daps3d import Daps3dFormat
from seal.data.formats.kitti_object import KittiObjectFormat
from seal.data.formats.nuscenes import NuScenesFormat
from seal.data.formats.nuscenes_c import NuScenesCFormat
from seal.data.formats.pandaset import PandaSetFormat
from seal.data.formats.registry import FORMATS, detection_order, format_of
from seal.data.formats.rellis3d import Rellis3dFormat
from seal.data.formats.scribblekitti import ScribbleKittiFormat
from seal.data.formats.semantickitti import SemanticKittiFormat
from seal.data.formats.semantickitti_c import SemanticKittiCFormat
from seal.data.formats.semanticposs import SemanticPossFormat
from seal.data.formats.semanticstf import SemanticStfFormat
from seal.data.formats.synlidar import SynLidarFormat
from seal.data.formats.synth4d import Synth4dFormat
from seal.data.formats.waymo import WaymoFormat

__all__ = ["FORMATS", "format_of", "detection_order", "NuScenesFormat", "NuScenesCFormat", "WaymoFormat",
           "SemanticKittiFormat", "ScribbleKittiFormat", "SemanticPossFormat", "SemanticStfFormat", "SynLidarFormat",
           "Rellis3dFormat", "Daps3dFormat", "Synth4dFormat", "SemanticKittiCFormat", "KittiObjectFormat",
           "PandaSetFormat"]
