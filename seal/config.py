"""Typed configuration: dataclass schemas, YAML files and ``key=value`` overrides through OmegaConf.

Every command builds its config the same way: defaults of the schema, then the YAML file (if any), then the
command-line overrides. Unknown keys and ill-typed values are errors that name the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from seal.errors import ConfigError

T = TypeVar("T")


@dataclass
class DataConfig:
    """Which dataset to read and how."""

    path: str = ""
    kind: str | None = None        # semantickitti | nuscenes | kitti-object; detected when null
    label_map: str | None = None   # packaged name or YAML path (SemanticKITTI layout only)
    version: str | None = None     # nuScenes version folder, e.g. v1.0-trainval
    sweeps: bool = False           # nuScenes: every LiDAR sweep instead of keyframes only
    sequences: list[str] | None = None  # keep only these sequences / scenes (e.g. pretrain on train only)


@dataclass
class ProjectionConfig:
    """Point -> pixel pairing (SPEC section 2)."""

    min_depth: float = 1.0


@dataclass
class VoxelConfig:
    """Voxelisation of the 3D input (SPEC section 5)."""

    size: float = 0.1
    mode: str = "cylindrical"      # cylindrical | cartesian
    angle_bin_deg: float = 1.0


@dataclass
class CacheConfig:
    """Where stage artefacts go: null = DATASET/seal_cache, or ~/.cache/seal/... when the dataset is read-only."""

    root: str | None = None


@dataclass
class SlicConfig:
    n_segments: int = 150
    compactness: float = 6.0
    sigma: float = 3.0
    work_width: int = 800          # run SLIC on a copy this wide (0 = full resolution, as the reference)


@dataclass
class SamConfig:
    checkpoint: str | None = None  # local SAM checkpoint, e.g. sam_vit_h_4b8939.pth
    model_type: str = "vit_h"
    points_per_side: int = 32
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    min_mask_region_area: int = 0


@dataclass
class HuggingFaceConfig:
    model_dir: str | None = None   # local folder of a transformers segmentation model
    mode: str = "auto"             # auto | panoptic | semantic
    threshold: float = 0.5
    overlap_threshold: float = 0.8


@dataclass
class PrecomputedConfig:
    folder: str | None = None
    pattern: str = "{sequence}/{camera}/{frame_name}"
    none_value: int | None = None  # the value the producer used for "no segment" (None: every value is one)


@dataclass
class SuperpixelConfig:
    """2D superpixels (SPEC section 3): one uint16 map per camera image, 0 = covered by no segment."""

    method: str = "slic"           # slic | sam | hf | precomputed
    device: str = "cpu"
    slic: SlicConfig = field(default_factory=SlicConfig)
    sam: SamConfig = field(default_factory=SamConfig)
    hf: HuggingFaceConfig = field(default_factory=HuggingFaceConfig)
    precomputed: PrecomputedConfig = field(default_factory=PrecomputedConfig)


@dataclass
class GroundConfig:
    """RANSAC ground removal, per range sector so sloped or uneven roads still fit."""

    distance: float = 0.25         # inlier distance to the plane, metres
    iterations: int = 100
    sectors: int = 1               # range sectors (1 = one plane for the whole sweep)
    sector_range: float = 20.0     # metres per sector when sectors > 1
    max_tilt_deg: float = 20.0     # reject candidate planes steeper than this (walls are not ground)
    sensor_height: float | None = None  # prior: reject planes far from this height below the sensor


@dataclass
class SuperpointConfig:
    """3D superpoints for the temporal terms (SPEC section 4)."""

    gap: int = 1                   # pair frame t with t+gap
    ground: GroundConfig = field(default_factory=GroundConfig)
    ground_mode: str = "segment"   # segment: ground is one segment of its own; ignore: ground gets -1
    min_cluster_size: int = 20     # HDBSCAN
    min_samples: int | None = None
    cluster_selection_epsilon: float = 0.3
    max_range: float = 60.0        # points farther than this are not clustered (sparse, unreliable)
    voxel: float = 0.15            # cluster voxel centroids of this size, then spread ids back (speed)
    seed: int = 0


@dataclass
class SealConfig:
    """The root of every seal configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    voxel: VoxelConfig = field(default_factory=VoxelConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    superpixels: SuperpixelConfig = field(default_factory=SuperpixelConfig)
    superpoints: SuperpointConfig = field(default_factory=SuperpointConfig)


def load_config(schema: type[T] = SealConfig, path: str | Path | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Schema defaults <- YAML file <- ``key=value`` overrides, validated against the schema."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = OmegaConf.structured(schema)
    layers: list[Any] = []
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            layers.append(OmegaConf.load(path))
        except Exception as err:  # yaml errors come in several types
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. voxel.size=0.05)")
    try:
        if overrides:
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        merged = OmegaConf.merge(base, *layers)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or getattr(err, "key", None)
        where = f"{path}" if path else "command line"
        raise ConfigError(f"config key {key!r} ({where}): {err.msg if hasattr(err, 'msg') else err}".split("\n")[0]
                          .rstrip(".") + ". `seal config` lists the valid keys.") from None


def dump_config(config: Any) -> str:
    """The resolved config as YAML (what a run directory records)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(config))
