"""Robustness tools: the Robo3D corruptions x three severities (docs/METHOD.md §9), applied to frames on the fly or
written as a dataset, and the physics of the weather ones.

- `registry`: `CORRUPTIONS` (plugins: entry-point group ``seal.corruptions``), `severities`, `corrupt_frame`;
- `corruptions`: the eight Robo3D corruptions, registered in Robo3D's order;
- `weather`: fog, snow and wet-ground models on raw points; `rings`: beam index from elevation;
- `dataset`: `corrupt_dataset`, a corrupted copy on disk (`seal corrupt`).

It sits above `seal.data` (it writes with its SemanticKITTI writer); `seal.data` never imports it.
"""

from __future__ import annotations

from seal.core.config import SEVERITIES
from seal.robustness.corruptions import (  # registers the eight built-ins
    GROUND_CLASSES,
    VEHICLE_CLASSES,
    BeamParams,
    CrosstalkParams,
    IncompleteEchoParams,
    MotionBlurParams,
)
from seal.robustness.dataset import RECORD_FILE, corrupt_dataset, label_map_yaml
from seal.robustness.registry import (
    CORRUPTIONS,
    PARAMETERS,
    Corrupted,
    Corruption,
    CorruptionContext,
    check_corruption,
    corrupt_frame,
    corrupt_frame_with_origin,
    corruption_parameters,
    corruption_rng,
    get_corruption,
    severities,
)
from seal.robustness.rings import estimate_rings
from seal.robustness.weather import FogParams, SnowParams, WetGroundParams

__all__ = ["CORRUPTIONS", "SEVERITIES", "PARAMETERS", "VEHICLE_CLASSES", "GROUND_CLASSES", "Corruption",
           "CorruptionContext", "Corrupted", "severities", "get_corruption", "BeamParams", "MotionBlurParams",
           "IncompleteEchoParams", "CrosstalkParams", "FogParams", "SnowParams", "WetGroundParams",
           "check_corruption", "corruption_parameters", "corruption_rng", "estimate_rings", "corrupt_frame",
           "corrupt_frame_with_origin", "corrupt_dataset", "label_map_yaml", "RECORD_FILE"]
