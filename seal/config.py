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
class SealConfig:
    """The root of every seal configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    voxel: VoxelConfig = field(default_factory=VoxelConfig)


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
